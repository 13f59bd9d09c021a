"""Sign-up, login, refresh (rotating, reuse-detecting), logout, me.

The access token (JWT, short-lived) goes in the JSON body and is kept in memory by the
client; the refresh token lives only in an httpOnly SameSite=Strict cookie on this path.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Request, Response

from app import crud
from app.api.deps import CurrentUser, RateLimitsDep, SessionDep, SettingsDep, client_ip
from app.core.errors import ApiError
from app.core.security import (
    create_access_token,
    hash_password,
    hash_refresh_token,
    new_refresh_token,
    successor_refresh_token,
    verify_password,
)
from app.models import User
from app.schemas import AuthStatusOut, Credentials, SignupBody, TokenOut, UserOut, error_responses


async def refuse_cross_origin(request: Request, settings: SettingsDep) -> None:
    """A browser says which page sent a POST (Origin): another site's page may not sign someone in
    or out here. Requests without an Origin (scripts, curl) are not from a browser page."""
    origin = request.headers.get("origin")
    if request.method in ("GET", "HEAD", "OPTIONS") or origin is None:
        return
    if origin == f"{request.url.scheme}://{request.url.netloc}" or origin in settings.cors_origins:
        return
    raise ApiError(
        403,
        "cross_origin",
        "Sign-up, login, refresh and logout are refused from another site's pages. "
        "If this is your own web app, add its origin to OPENCHAT_CORS_ORIGINS.",
    )


router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(refuse_cross_origin)])

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
) -> TokenOut:
    """A new login: a new family of refresh tokens, and an access token."""
    token, token_hash = new_refresh_token()
    family_id = crud.start_refresh_family(session, user.id, token_hash, _refresh_expiry(settings))
    return _tokens(request, response, settings, user.id, family_id, token)


def _refresh_expiry(settings: SettingsDep) -> datetime:
    return datetime.now(UTC) + timedelta(days=settings.refresh_token_days)


def _tokens(
    request: Request, response: Response, settings: SettingsDep, user_id: str, login_id: str, refresh_token: str
) -> TokenOut:
    """The refresh token in its cookie, and an access token of the same login in the body."""
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=settings.refresh_token_days * 86400,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https",
    )
    access, expires_in = create_access_token(
        request.app.state.secret_key, user_id, settings.access_token_minutes, login_id
    )
    return TokenOut(access_token=access, expires_in=expires_in)


def _end_login(request: Request, session: SessionDep, family_id: str) -> None:
    """Every refresh token of the login stops working, and so do its access tokens."""
    crud.revoke_refresh_family(session, family_id)
    request.app.state.ended_logins.end(family_id)


def _clear_cookie(response: Response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


@router.post(
    "/signup",
    response_model=TokenOut,
    status_code=201,
    responses=error_responses(
        400, 403, 409, 413, 429, 503, described={409: "An account with this email already exists"}
    ),
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
    responses=error_responses(400, 401, 403, 413, 429, 503, described={401: "Email or password is incorrect"}),
)
def login(
    body: Credentials,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenOut:
    # Per address, per (account, address), and a short growing delay per account (rate_limit.py).
    address = client_ip(request)
    limits.check_login(body.email, address)
    user = crud.get_user_by_email(session, body.email)
    hashed = user.hashed_password if user and user.hashed_password else _DUMMY_HASH
    valid = verify_password(body.password, hashed)
    if not user or not user.hashed_password or not valid:
        limits.login_failed(body.email, address)
        raise ApiError(401, "invalid_credentials", "Email or password is incorrect.")
    limits.login_succeeded(body.email, address)
    return _issue(request, response, session, settings, user)


# Rotations one refresh may follow within the grace window (tab A refreshed twice while tab B's
# refresh of the first token was in flight); more is not two tabs.
MAX_GRACE_HOPS = 4


@router.post(
    "/refresh",
    response_model=TokenOut,
    responses=error_responses(
        401, 403, 503, described={401: "The refresh cookie is missing, invalid, expired or was reused: log in again"}
    ),
)
def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    openchat_refresh: Annotated[str | None, Cookie()] = None,
) -> TokenOut:
    # Rotate the refresh token. Of concurrent refreshes with one token, exactly one rotates it;
    # within `refresh_grace_s` of that rotation the others get the same successor (the newest one,
    # if it was rotated again meanwhile). After the window, a rotated token coming back may have
    # been stolen: the whole login ends. (Comments, not a docstring: that would enter the schema.)
    if not openchat_refresh:
        raise ApiError(401, "unauthorized", "No refresh token: log in again.")
    secret: str = request.app.state.secret_key
    token = openchat_refresh
    family_id = ""
    for _ in range(MAX_GRACE_HOPS + 1):
        record = crud.get_refresh_token(session, hash_refresh_token(token))
        if record is None:
            _clear_cookie(response)
            raise ApiError(401, "unauthorized", "The refresh token is not valid: log in again.")
        if record.expires_at <= datetime.now(UTC):
            raise ApiError(401, "unauthorized", "The session has expired: log in again.")
        family_id = record.family_id
        successor = successor_refresh_token(secret, token)
        if record.revoked_at is None and record.used_at is None:
            if token != openchat_refresh:  # the current successor, reached within the window: hand it out
                return _tokens(request, response, settings, record.user_id, record.family_id, token)
            if crud.rotate_refresh_token(session, record, hash_refresh_token(successor), _refresh_expiry(settings)):
                return _tokens(request, response, settings, record.user_id, record.family_id, successor)
            session.refresh(record)  # another request rotated it (or ended the login) just now
        used_at = record.used_at
        if record.revoked_at is not None or used_at is None:
            break
        if (datetime.now(UTC) - used_at).total_seconds() > settings.refresh_grace_s:
            break
        token = successor  # rotated a moment ago by a concurrent request: follow it
    # A rotated token came back after the grace window (or the login had ended): it may have
    # been stolen. End that whole login.
    _end_login(request, session, family_id)
    _clear_cookie(response)
    raise ApiError(
        401, "refresh_reused", "This session was ended for safety (a refresh token was reused). Log in again."
    )


@router.post("/logout", status_code=204, responses=error_responses(403, 503))
def logout(
    request: Request,
    response: Response,
    session: SessionDep,
    openchat_refresh: Annotated[str | None, Cookie()] = None,
) -> Response:
    # Ends the login of the refresh cookie: its refresh tokens and its access tokens.
    if openchat_refresh:
        record = crud.get_refresh_token(session, hash_refresh_token(openchat_refresh))
        if record is not None:
            _end_login(request, session, record.family_id)
    response.status_code = 204
    _clear_cookie(response)
    return response


@router.get("/status", response_model=AuthStatusOut, responses=error_responses(503))
def auth_status(session: SessionDep, settings: SettingsDep) -> AuthStatusOut:
    return AuthStatusOut(mode=settings.auth_mode, has_users=crud.has_accounts(session))


@router.get("/me", response_model=UserOut, responses=error_responses(401, 503))
def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)
