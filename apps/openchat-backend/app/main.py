"""Application factory: settings, database (migrated at start), model registry, routes."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.routes import auth, chat, conversations, health, models
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_session_factory, run_migrations
from app.core.errors import install_error_handlers
from app.core.middleware import BodySizeLimitMiddleware, MetricsMiddleware
from app.core.rate_limit import RateLimits
from app.core.security import load_secret_key
from app.llm.registry import ModelRegistry
from app.services.chat import ChatService

log = logging.getLogger("openchat")


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    sessions = make_session_factory(engine)
    registry = registry or ModelRegistry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        run_migrations(engine)
        app.state.secret_key = load_secret_key(settings)
        default = await registry.get(None)
        if default is None:
            log.warning("No models found in %s: run `make setup` to assemble the bundled ones.", settings.models_dir)
        elif default.provider == "local" and default.path is not None:
            # Load the default model in the background so the first reply does not wait for it.
            warm = registry.engine(default)
            threading.Thread(target=warm.load, name="warm-up", daemon=True).start()
        yield
        engine.dispose()

    app = FastAPI(title="OpenChat", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = sessions
    app.state.registry = registry
    app.state.rate_limits = RateLimits(settings)
    app.state.chat_service = ChatService(settings, registry, sessions)

    api = APIRouter(prefix="/api/v1")
    for module in (chat, models, conversations, auth):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    install_error_handlers(app)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
