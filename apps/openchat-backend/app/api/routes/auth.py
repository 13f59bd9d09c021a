"""Sign-up, login, refresh (rotating, reuse-detecting), logout, me.

The access token (JWT, short-lived) goes in the JSON body and is kept in memory by the
client; the refresh token lives only in an httpOnly SameSite=Strict cookie on this path.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Request, Response

from app import crud
from app.api.deps import CurrentUser, RateLimitsDep, SessionDep, SettingsDep, client_ip
from app.core.errors import ApiError
from app.core.security import (
    create_access_token,
    hash_password,
    hash_refresh_token,
    new_refresh_token,
    verify_password,
)
from app.models import RefreshToken, User
from app.schemas import AuthStatusOut, Credentials, SignupBody, TokenOut, UserOut, error_responses

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "openchat_refresh"
COOKIE_PATH = "/api/v1/auth"
# Compared against when the email is unknown, so both cases take as long.
_DUMMY_HASH = hash_password("not-a-real-password-for-timing")


def _issue(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: User,
    rotates: RefreshToken | None = None,
) -> TokenOut:
    token, token_hash = new_refresh_token()
    expires = datetime.now(UTC) + timedelta(days=settings.refresh_token_days)
    crud.store_refresh_token(session, user.id, token_hash, expires, rotates=rotates)
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=settings.refresh_token_days * 86400,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https",
    )
    access, expires_in = create_access_token(request.app.state.secret_key, user.id, settings.access_token_minutes)
    return TokenOut(access_token=access, expires_in=expires_in)


def _clear_cookie(response: Response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


@router.post(
    "/signup",
    response_model=TokenOut,
    status_code=201,
    responses=error_responses(400, 409, 413, 429, 503, described={409: "An account with this email already exists"}),
)
def signup(
    body: SignupBody,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenOut:
    limits.check("signup", f"ip:{client_ip(request)}")
    # A plain `def`: FastAPI runs it in a worker thread, so Argon2 (slow on purpose) never blocks the loop.
    hashed = hash_password(body.password)
    try:
        user = crud.create_user(session, body.email, hashed)
    except crud.EmailTakenError as error:
        raise ApiError(409, "email_taken", "An account with this email already exists. Log in instead.") from error
    return _issue(request, response, session, settings, user)


@router.post(
    "/login",
    response_model=TokenOut,
    responses=error_responses(400, 401, 413, 429, 503, described={401: "Email or password is incorrect"}),
)
def login(
    body: Credentials,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenOut:
    # Per IP (one machine trying many accounts) and per account (many machines, one account).
    limits.check("login", f"ip:{client_ip(request)}")
    limits.check("login", f"account:{body.email}")
    user = crud.get_user_by_email(session, body.email)
    hashed = user.hashed_password if user and user.hashed_password else _DUMMY_HASH
    valid = verify_password(body.password, hashed)
    if not user or not user.hashed_password or not valid:
        raise ApiError(401, "invalid_credentials", "Email or password is incorrect.")
    return _issue(request, response, session, settings, user)


@router.post(
    "/refresh",
    response_model=TokenOut,
    responses=error_responses(
        401, 503, described={401: "The refresh cookie is missing, invalid, expired or was reused: log in again"}
    ),
)
def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    openchat_refresh: Annotated[str | None, Cookie()] = None,
) -> TokenOut:
    if not openchat_refresh:
        raise ApiError(401, "unauthorized", "No refresh token: log in again.")
    record = crud.get_refresh_token(session, hash_refresh_token(openchat_refresh))
    if record is None:
        _clear_cookie(response)
        raise ApiError(401, "unauthorized", "The refresh token is not valid: log in again.")
    if record.used_at is not None or record.revoked_at is not None:
        # A rotated token came back: it may have been stolen. End that whole login.
        crud.revoke_refresh_family(session, record.family_id)
        raise ApiError(
            401, "refresh_reused", "This session was ended for safety (a refresh token was reused). Log in again."
        )
    expires_at = record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise ApiError(401, "unauthorized", "The session has expired: log in again.")
    user = crud.get_user(session, record.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "The account no longer exists.")
    return _issue(request, response, session, settings, user, rotates=record)


@router.post("/logout", status_code=204, responses=error_responses(503))
def logout(
    response: Response, session: SessionDep, openchat_refresh: Annotated[str | None, Cookie()] = None
) -> Response:
    if openchat_refresh:
        record = crud.get_refresh_token(session, hash_refresh_token(openchat_refresh))
        if record is not None:
            crud.revoke_refresh_family(session, record.family_id)
    response.status_code = 204
    _clear_cookie(response)
    return response


@router.get("/status", response_model=AuthStatusOut, responses=error_responses(503))
def auth_status(session: SessionDep, settings: SettingsDep) -> AuthStatusOut:
    return AuthStatusOut(mode=settings.auth_mode, has_users=crud.has_accounts(session))


@router.get("/me", response_model=UserOut, responses=error_responses(401, 503))
def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)
