"""Request dependencies. Tests override these (`app.dependency_overrides`) as seams."""

from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.core.config import Settings
from app.core.errors import ACCOUNT_GONE, ApiError
from app.core.rate_limit import RateLimits
from app.core.security import EndedLogins, TokenError, decode_access_token
from app.llm.registry import ModelRegistry
from app.models import User
from app.services.chat import ChatService


# The getters of what the app holds are `async def`: FastAPI runs a plain `def` dependency in a
# worker thread, a thread hop per dependency and request (a chat request had four).
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_session(factory: Annotated[sessionmaker[Session], Depends(get_session_factory)]) -> Iterator[Session]:
    with factory() as session:
        yield session


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
SessionDep = Annotated[Session, Depends(get_session)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy says (OPENCHAT_TRUSTED_PROXIES),
    as ProxyHeadersMiddleware resolved it; a forwarding header from anyone else is ignored."""
    return request.client.host if request.client else "unknown"


bearer = HTTPBearer(auto_error=False)


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def get_current_user_id(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Whom the request acts for, from its access token alone: no database, no thread (but one
    Redis call for ended logins when REDIS_URL is set). The chat route needs no more (the
    account's existence is checked where its messages are stored)."""
    if settings.auth_mode == "off":
        local_user_id: str = request.app.state.local_user_id  # created at start-up
        return local_user_id
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("Authentication required: send 'Authorization: Bearer <access token>'.")
    try:
        claims = decode_access_token(request.app.state.secret_key, credentials.credentials)
    except TokenError as error:
        raise unauthorized(str(error)) from error
    if claims.login_id is not None:
        ended: EndedLogins = request.app.state.ended_logins
        login_ended = (
            await anyio.to_thread.run_sync(ended.is_ended, claims.login_id)
            if ended.blocking
            else ended.is_ended(claims.login_id)
        )
        if login_ended:
            raise unauthorized("This login has ended (logged out); log in again.")
    return claims.user_id


CurrentUserId = Annotated[str, Depends(get_current_user_id)]


async def get_chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


async def requests_stored(user_id: CurrentUserId, service: ChatServiceDep) -> None:
    """Before reading the user's conversations: their chat requests being stored are (a chat
    stores its request just after its first lines, app/services/chat.py)."""
    await service.requests_stored(user_id)


RequestsStored = Depends(requests_stored)


def get_current_user(user_id: CurrentUserId, sessions: SessionFactoryDep) -> User:
    # A session of its own, closed before the route runs: a dependency's session stays open
    # (with its connection) until the response ends, which for a chat is the whole stream.
    with sessions() as session:
        user = crud.get_user(session, user_id)
    if user is None:
        raise unauthorized(ACCOUNT_GONE)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
