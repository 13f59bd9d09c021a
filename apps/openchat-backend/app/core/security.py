"""Passwords (Argon2 via pwdlib), JWT access tokens (PyJWT, HS256 pinned) and refresh tokens."""

import base64
import hashlib
import hmac
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import redis
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
        _refuse_if_weak(settings, settings.secret_key, "OPENCHAT_SECRET_KEY", "Set it to")
        return settings.secret_key
    path: Path = settings.data_dir / "secret_key"
    if not path.is_file():
        _write_new_key(path)
    key = path.read_text().strip()
    _refuse_if_weak(
        settings,
        key,
        f"The secret key in {path}",
        "Delete the file (a new key is generated; everyone logs in again) or set OPENCHAT_SECRET_KEY to",
    )
    return key


def _refuse_if_weak(settings: Settings, key: str, what: str, fix: str) -> None:
    if not is_weak_secret(key):
        return
    if settings.environment != "development":
        raise RuntimeError(
            f"{what} is too weak (at least {MIN_SECRET_LENGTH} random characters). {fix} a strong one, "
            "e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    log.warning("%s is weak; it is refused outside OPENCHAT_ENV=development.", what)


def _write_new_key(path: Path) -> None:
    """Write a new key so that no reader ever sees a partial file, and so that workers starting
    together agree: the complete file is hard-linked into place, which fails if one is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another worker's key won: everyone reads that one
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name survives a crash too
        finally:
            os.close(directory)
    finally:
        os.unlink(temporary)


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    login_id: str | None  # the refresh-token family it came from (None: issued before tokens named it)


def create_access_token(secret: str, user_id: str, minutes: float, login_id: str) -> tuple[str, int]:
    now = datetime.now(UTC)
    expires = timedelta(minutes=minutes)
    claims: dict[str, Any] = {
        "sub": user_id,
        "sid": login_id,  # logout ends every access token of the login (EndedLogins)
        "iat": now,
        "nbf": now,
        "exp": now + expires,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "type": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), int(expires.total_seconds())


# Fixed sentences: the decoder's own messages describe its internals, not what the client should do.
_TOKEN_ERRORS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The access token has expired; refresh it or log in again."),
    (jwt.ImmatureSignatureError, "The access token is not valid yet; check the clock of the machine that sent it."),
    (jwt.InvalidAlgorithmError, "The access token uses an algorithm that is not accepted."),
    (jwt.InvalidSignatureError, "The access token's signature is not valid."),
    (jwt.DecodeError, "The access token is malformed; send it exactly as the server issued it."),
    (jwt.InvalidAudienceError, "The access token was not issued for this API."),
    (jwt.InvalidIssuerError, "The access token was not issued for this API."),
    (jwt.MissingRequiredClaimError, "The access token lacks required claims; log in again."),
]
INVALID_TOKEN = "The access token is not valid; log in again."


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """The claims of a valid access token, or TokenError with a fixed, readable reason."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # pinned: `none` and every other algorithm are refused
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        reason = next((text for kind, text in _TOKEN_ERRORS if isinstance(error, kind)), INVALID_TOKEN)
        raise TokenError(reason) from error
    if claims.get("type") != "access":
        raise TokenError("This token is not an access token.")
    login_id = claims.get("sid")
    return AccessClaims(str(claims["sub"]), str(login_id) if login_id is not None else None)


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the hash stored for it (the token itself is never stored)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def successor_refresh_token(secret: str, token: str) -> str:
    """The token that replaces `token` when it is rotated. Derived, not random, so that a request
    racing the rotation (two tabs) can be handed the same successor without storing it."""
    digest = hmac.new(secret.encode(), b"openchat-refresh-successor\0" + token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EndedLogins:
    """Logins ended by logout or by refresh-token reuse, remembered until their last access token
    expires, so that those tokens stop working at once. Checked on every authenticated request:
    a dict lookup in memory, or one Redis call when REDIS_URL is set (shared by replicas); never
    the database."""

    def __init__(self, settings: Settings) -> None:
        self.ttl_s = math.ceil(settings.access_token_minutes * 60) + 1
        self._redis = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        self.blocking = self._redis is not None  # a network call: run it in a thread
        self._ended: dict[str, float] = {}  # login id -> when its last access token expires
        self._lock = threading.Lock()

    def end(self, login_id: str) -> None:
        if self._redis is not None:
            self._redis.set(f"openchat:ended-login:{login_id}", 1, ex=self.ttl_s)
            return
        now = time.monotonic()
        with self._lock:
            self._ended = {key: until for key, until in self._ended.items() if until > now}
            self._ended[login_id] = now + self.ttl_s

    def is_ended(self, login_id: str) -> bool:
        if self._redis is not None:
            return bool(self._redis.exists(f"openchat:ended-login:{login_id}"))
        until = self._ended.get(login_id)
        return until is not None and until > time.monotonic()
