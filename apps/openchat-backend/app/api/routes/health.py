"""Liveness, readiness and Prometheus metrics (outside /api/v1)."""

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.deps import RegistryDep, SessionFactoryDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(registry: RegistryDep, sessions: SessionFactoryDep) -> JSONResponse:
    checks: dict[str, str] = {}

    def database() -> None:
        with sessions() as session:
            session.execute(text("SELECT 1"))

    try:
        await anyio.to_thread.run_sync(database)
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {error}"
    model = await registry.get(None)
    # Listed means the GGUF metadata was read (local) or the provider answered (remote).
    checks["default_model"] = f"ok: {model.id}" if model else "error: no model available (run `make setup`)"
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics")
async def metrics(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
