"""Application factory: settings, database (migrated at start), model registry and its local
engines (started with the app, stopped at its shutdown), the chat service (its background
work cancelled at shutdown), routes."""

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import crud
from app.api.operations import add_api_docs
from app.api.routes import auth, chat, conversations, health, models, replies, transfer
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_event_loop_reader, make_session_factory, open_pool, run_migrations
from app.core.errors import install_error_handlers
from app.core.header_limit import HeaderSizeLimitMiddleware
from app.core.log_context import configure_logging
from app.core.middleware import BodySizeLimitMiddleware, MetricsMiddleware, RequestIdMiddleware
from app.core.rate_limit import RateLimits
from app.core.security import EndedLogins, load_secret_key
from app.core.security_headers import SecurityHeadersMiddleware
from app.llm.registry import ModelRegistry
from app.schemas import complete_openapi
from app.services.chat import ChatService
from app.services.reply_runs import ReplyRuns

log = logging.getLogger("openchat")


def operation_id(route: APIRoute) -> str:
    # The function's name (`list_conversations`): the frontend's generated client calls it
    # `listConversations` (FastAPI's default id is `list_conversations_api_v1_conversations_get`).
    return route.name


# Database work runs in threads, which share the interpreter with the event loop. While streams
# keep the loop busy, a thread waits Python's switch interval (5 ms by default) each time it takes
# the interpreter back after a database call; with several calls per request, a new chat's first
# token waited seconds at 64 streams (docs/benchmarks.md). 1 ms keeps that wait short.
SWITCH_INTERVAL_S = 0.001

# The garbage collector, once the app has started. Its objects then (modules, classes, the ORM's
# and LangChain's tables) live as long as the process: frozen, collections no longer walk them.
# Young collections run every GC_THRESHOLDS[0] new objects instead of 700, older ones rarely.
# Every token wakes the backend on a CPU that a local engine keeps busy, its caches cold, and
# collections were a fifth of the backend's time per token (docs/benchmarks.md).
GC_THRESHOLDS = (20_000, 50, 100)


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    configure_logging()
    engine = make_engine(
        settings.sqlalchemy_url, settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_s
    )
    sessions = make_session_factory(engine)
    owns_registry = registry is None  # a registry passed in (tests) is closed by whoever made it
    registry = registry or ModelRegistry(settings)
    loop_reader = make_event_loop_reader(engine)
    chat_service = ChatService(settings, registry, sessions, loop_reader)
    reply_runs = ReplyRuns(settings.redis_url)  # resumable replies

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        run_migrations(engine)
        open_pool(engine)
        if loop_reader is not None:
            open_pool(loop_reader)
        if settings.auth_mode == "off":  # the one owner of everything, known before any request
            with sessions() as session:
                app.state.local_user_id = crud.get_or_create_local_user(session).id
        app.state.secret_key = load_secret_key(settings)
        await chat_service.start()  # replies of a killed process are marked interrupted
        await reply_runs.start()
        default = await registry.get(None)
        if default is None:
            log.warning("No models found in %s: run `make setup` to assemble the bundled ones.", settings.models_dir)
        elif settings.warm_up and registry.is_engine_backed(default):
            registry.engine(default)  # starts its engine in the background: the first reply need not wait
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()  # what the app held can be collected once it is gone (tests make many apps)
            await reply_runs.aclose()  # resumable replies still generating are stored cancelled
            await chat_service.aclose()  # summary titles still being written: the fallback titles stay
            await registry.aclose_clients()
            if owns_registry:
                await anyio.to_thread.run_sync(registry.close)
            engine.dispose()
            if loop_reader is not None:
                loop_reader.dispose()

    app = FastAPI(
        title="OpenChat",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Served by add_api_docs below, behind OPENCHAT_API_DOCS.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = sessions
    app.state.registry = registry
    app.state.rate_limits = RateLimits(settings)
    app.state.ended_logins = EndedLogins(settings)
    app.state.chat_service = chat_service
    app.state.reply_runs = reply_runs

    api = APIRouter(prefix="/api/v1")
    for module in (chat, models, conversations, replies, transfer, auth):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        # FastAPI's schema, completed: the chat stream's events, no 422, no security when auth is off.
        if app.openapi_schema is None:
            complete_openapi(FastAPI.openapi(app), auth_required=settings.auth_mode == "required")
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    add_api_docs(app, settings, openapi)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, own_limit_paths={transfer.IMPORT_PATH}
    )
    app.add_middleware(MetricsMiddleware)
    # The one place that decides whom a request comes from (rate limits, cookies' Secure flag):
    # forwarding headers count only from OPENCHAT_TRUSTED_PROXIES. Every start path runs uvicorn
    # with --no-proxy-headers, so that uvicorn's own handling does not decide first.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(RequestIdMiddleware, trust_incoming=settings.trust_request_id)  # all of it has the id
    app.add_middleware(HeaderSizeLimitMiddleware)  # refused before the app reads them
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every response has the headers
    return app
