"""GET /api/v1/models: every model the configured providers offer."""

from fastapi import APIRouter

from app.api.deps import RegistryDep
from app.schemas import ModelOut, ModelsOut

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsOut)
async def list_models(registry: RegistryDep) -> ModelsOut:
    models = await registry.list_models()
    return ModelsOut(models=[ModelOut(**m.public()) for m in models])
