"""Passwords (Argon2 via pwdlib), JWT access tokens (PyJWT, HS256 pinned) and refresh tokens."""

import hashlib
import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "openchat"
AUDIENCE = "openchat-api"
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = {"secret", "changeme", "change-me", "changethis", "password", "openchat", "dev", "test"}

password_hash = PasswordHash((Argon2Hasher(),))


class TokenError(Exception):
    """An access token that must be refused; the message is safe to show."""


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return password_hash.verify(password, hashed)


def is_weak_secret(secret: str) -> bool:
    return len(secret) < MIN_SECRET_LENGTH or secret.lower() in WEAK_SECRETS or len(set(secret)) < 8


def load_secret_key(settings: Settings) -> str:
    """OPENCHAT_SECRET_KEY, or a key generated on first run and kept with the data."""
    if settings.secret_key:
        if is_weak_secret(settings.secret_key):
            if settings.environment != "development":
                raise RuntimeError(
                    "OPENCHAT_SECRET_KEY is too weak (at least 32 random characters). Generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
                )
            log.warning("OPENCHAT_SECRET_KEY is weak; it is refused outside OPENCHAT_ENV=development.")
        return settings.secret_key
    path: Path = settings.data_dir / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created with owner-only permissions; O_EXCL so two starting workers cannot both write.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def create_access_token(secret: str, user_id: str, minutes: float) -> tuple[str, int]:
    now = datetime.now(UTC)
    expires = timedelta(minutes=minutes)
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + expires,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "type": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), int(expires.total_seconds())


def decode_access_token(secret: str, token: str) -> str:
    """The user id in a valid access token, or TokenError with the reason."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # pinned: `none` and every other algorithm are refused
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenError("The access token has expired; refresh it or log in again.") from error
    except jwt.InvalidAlgorithmError as error:
        raise TokenError("The access token uses an algorithm that is not accepted.") from error
    except jwt.InvalidSignatureError as error:
        raise TokenError("The access token's signature is not valid.") from error
    except jwt.PyJWTError as error:
        raise TokenError(f"The access token is not valid ({error}).") from error
    if claims.get("type") != "access":
        raise TokenError("This token is not an access token.")
    return str(claims["sub"])


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the hash stored for it (the token itself is never stored)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
