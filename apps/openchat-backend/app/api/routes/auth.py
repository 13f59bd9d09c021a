"""Sign-up, login, refresh (rotating, reuse-detecting), logout, me.

The access token (JWT, short-lived) goes in the JSON body and is kept in memory by the
client; the refresh token lives only in an httpOnly SameSite=Strict cookie on this path.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Request, Response
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from app.api.deps import CurrentUser, RateLimitsDep, SessionDep, SettingsDep, client_ip
from app.core.errors import ApiError
from app.core.security import (
    create_access_token,
    hash_password,
    hash_refresh_token,
    new_refresh_token,
    verify_password,
)
from app.models import RefreshToken, User, new_id

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "openchat_refresh"
COOKIE_PATH = "/api/v1/auth"
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Compared against when the email is unknown, so both cases take as long.
_DUMMY_HASH = hash_password("not-a-real-password-for-timing")


class Credentials(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, email: str) -> str:
        email = email.strip().lower()
        if not EMAIL_PATTERN.match(email):
            raise PydanticCustomError("invalid_email", "Enter a valid email address, like name@example.com.")
        return email


class SignupBody(Credentials):
    @field_validator("password")
    @classmethod
    def _password_rules(cls, password: str) -> str:
        if len(password) < 8:
            raise PydanticCustomError("weak_password", "The password must have at least 8 characters.")
        if len(set(password)) < 4:
            raise PydanticCustomError("weak_password", "The password is too simple: use more different characters.")
        return password


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class AuthStatusOut(BaseModel):
    mode: Literal["required", "off"]
    # False on a new install: the app then opens on the sign-up page rather than login.
    has_users: bool


class UserOut(BaseModel):
    id: str
    email: str
    created_at: datetime


def _issue(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: User,
    family_id: str | None = None,
) -> TokenOut:
    token, token_hash = new_refresh_token()
    expires = datetime.now(UTC) + timedelta(days=settings.refresh_token_days)
    session.add(
        RefreshToken(user_id=user.id, family_id=family_id or new_id(), token_hash=token_hash, expires_at=expires)
    )
    session.commit()
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


@router.post("/signup", response_model=TokenOut, status_code=201)
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
    user = User(email=body.email, hashed_password=hashed)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise ApiError(409, "email_taken", "An account with this email already exists. Log in instead.") from error
    return _issue(request, response, session, settings, user)


@router.post("/login", response_model=TokenOut)
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
    user = session.scalar(select(User).where(User.email == body.email))
    hashed = user.hashed_password if user and user.hashed_password else _DUMMY_HASH
    valid = verify_password(body.password, hashed)
    if not user or not user.hashed_password or not valid:
        raise ApiError(401, "invalid_credentials", "Email or password is incorrect.")
    return _issue(request, response, session, settings, user)


@router.post("/refresh", response_model=TokenOut)
def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    openchat_refresh: Annotated[str | None, Cookie()] = None,
) -> TokenOut:
    if not openchat_refresh:
        raise ApiError(401, "unauthorized", "No refresh token: log in again.")
    record = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(openchat_refresh)))
    now = datetime.now(UTC)
    if record is None:
        _clear_cookie(response)
        raise ApiError(401, "unauthorized", "The refresh token is not valid: log in again.")
    if record.used_at is not None or record.revoked_at is not None:
        # A rotated token came back: it may have been stolen. End that whole login.
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == record.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        session.commit()
        raise ApiError(
            401, "refresh_reused", "This session was ended for safety (a refresh token was reused). Log in again."
        )
    expires_at = record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=UTC)
    if expires_at <= now:
        raise ApiError(401, "unauthorized", "The session has expired: log in again.")
    record.used_at = now
    user = session.get(User, record.user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "The account no longer exists.")
    return _issue(request, response, session, settings, user, family_id=record.family_id)


@router.post("/logout", status_code=204)
def logout(
    response: Response, session: SessionDep, openchat_refresh: Annotated[str | None, Cookie()] = None
) -> Response:
    if openchat_refresh:
        record = session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(openchat_refresh))
        )
        if record is not None:
            session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == record.family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            session.commit()
    response.status_code = 204
    _clear_cookie(response)
    return response


@router.get("/status", response_model=AuthStatusOut)
def auth_status(session: SessionDep, settings: SettingsDep) -> AuthStatusOut:
    has_users = bool(session.scalar(select(exists().where(User.hashed_password.is_not(None)))))
    return AuthStatusOut(mode=settings.auth_mode, has_users=has_users)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, email=user.email, created_at=user.created_at)
