"""GET /api/v1/models: every model the configured providers offer."""

from fastapi import APIRouter

from app.api.deps import RegistryDep, SettingsDep
from app.schemas import ModelOut, ModelsOut, sampling

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsOut)
async def list_models(registry: RegistryDep, settings: SettingsDep) -> ModelsOut:
    models = await registry.list_models()
    return ModelsOut(
        models=[
            ModelOut(**m.public(), sampling=sampling(registry.context_window(m), settings.default_max_tokens))
            for m in models
        ]
    )
