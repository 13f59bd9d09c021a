"""Liveness, readiness and Prometheus metrics (outside /api/v1)."""

import logging

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError

from app import crud
from app.api.deps import RegistryDep, SessionFactoryDep, SettingsDep
from app.api.operations import check_access
from app.core.metrics import engine_metrics
from app.llm.registry import ModelInfo, ModelRegistry
from app.schemas import ReadinessOut, error_responses

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadinessOut, "description": "Ready: the database answers and the default model is available"},
        503: {"model": ReadinessOut, "description": "Not ready: `checks` says what is down"},
    },
)
async def readyz(registry: RegistryDep, sessions: SessionFactoryDep) -> JSONResponse:
    checks: dict[str, str] = {}

    def database() -> None:
        with sessions() as session:
            crud.ping_database(session)

    try:
        await anyio.to_thread.run_sync(database)
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - readiness reports any failure
        # What is down, not the driver's message (it names hosts, users, SQL): that goes to the log.
        log.warning("Readiness: the database check failed: %s", error)
        checks["database"] = "error: unreachable" if isinstance(error, OperationalError) else "error: query failed"
    model = await registry.get(None)
    # Listed means the GGUF metadata was read (local) or the provider answered (remote); a local
    # engine that was given up on is never the default.
    checks["default_model"] = default_model_line(registry, model)
    ready = all(value.startswith("ok") for value in checks.values())
    # Each local engine: state, slots, and every restart with how the last one ended.
    engines = registry.engines.status()
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            # Model files that cannot be used (not listed; the other models still serve): why.
            "model_problems": registry.model_problems,
            "engines": engines,
        },
        status_code=200 if ready else 503,
    )


def default_model_line(registry: ModelRegistry, model: ModelInfo | None) -> str:
    """The default model's readiness; when the configured one cannot serve, which does and why."""
    configured = registry.settings.default_model
    why = registry.model_problems.get(configured)
    if model is None:
        return f"error: no model available ({why or 'run `make setup`'})"
    if model.id == configured:
        return f"ok: {model.id}"
    if any(e.model_id == configured and e.state == "failed" for e in registry.engines.all()):
        why = why or "its engine failed to start"
    return f"ok: {model.id} (the configured default {configured} cannot be used: {why})" if why else f"ok: {model.id}"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"description": "Prometheus text format"},
        **error_responses(
            401,
            404,
            described={
                401: "OPENCHAT_METRICS=token: the operator token is missing or wrong",
                404: "OPENCHAT_METRICS=off",
            },
        ),
    },
)
async def metrics(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    check_access(request, settings.metrics_access, settings)  # OPENCHAT_METRICS
    return Response(generate_latest() + engine_metrics(registry.engines.all()), media_type=CONTENT_TYPE_LATEST)
