"""All configuration in one object, read from the environment (see `.env.example`)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BACKEND_DIR = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_ID = "qwen2.5-coder-1.5b-instruct"
MIN_OPS_TOKEN_LENGTH = 32
# A generating reply's lease lasts this many save intervals: a few missed saves (a busy database)
# do not make a live reply look interrupted.
REPLY_LEASE_INTERVALS = 6


def _env(name: str) -> AliasChoices:
    # Accept both the documented environment name and the attribute name (tests use the latter).
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    environment: Literal["development", "production", "test"] = Field(
        "development", validation_alias=_env("OPENCHAT_ENV")
    )
    data_dir: Path = Field(BACKEND_DIR / "data", validation_alias=_env("OPENCHAT_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    # Connections kept open, and how many more may open under load. Requests hold one only for
    # their reads and writes, never while a reply streams: a handful serves many streams.
    db_pool_size: int = Field(5, ge=1, validation_alias=_env("OPENCHAT_DB_POOL_SIZE"))
    db_max_overflow: int = Field(10, ge=0, validation_alias=_env("OPENCHAT_DB_MAX_OVERFLOW"))
    # How long a request waits for a free connection before it fails (503).
    db_pool_timeout_s: float = Field(30, gt=0, validation_alias=_env("OPENCHAT_DB_POOL_TIMEOUT_S"))

    auth_mode: Literal["required", "off"] = Field("required", validation_alias=_env("OPENCHAT_AUTH"))
    secret_key: str | None = Field(None, validation_alias=_env("OPENCHAT_SECRET_KEY"))
    # A float so that tests can use seconds-long tokens (0.1 = 6 s).
    access_token_minutes: float = Field(15, gt=0, validation_alias=_env("OPENCHAT_ACCESS_TOKEN_MINUTES"))
    refresh_token_days: int = Field(30, ge=1, validation_alias=_env("OPENCHAT_REFRESH_TOKEN_DAYS"))
    # A refresh token presented again within this many seconds of its rotation (two tabs
    # refreshing at once) gets the same successor; later, its reuse ends the whole login.
    refresh_grace_s: float = Field(20, ge=0, le=300, validation_alias=_env("OPENCHAT_REFRESH_GRACE_S"))
    # Who may read /metrics, and the API docs (/docs, /redoc, /openapi.json): `open`, `off`
    # (404), or `token` (Authorization: Bearer <OPENCHAT_OPS_TOKEN>, or HTTP Basic with it as the
    # password, which a browser asks for). Metrics are counters without user data, scraped on the
    # internal network; the docs are off unless asked for.
    metrics_access: Literal["open", "token", "off"] = Field("open", validation_alias=_env("OPENCHAT_METRICS"))
    api_docs_access: Literal["open", "token", "off"] = Field("off", validation_alias=_env("OPENCHAT_API_DOCS"))
    ops_token: str | None = Field(None, validation_alias=_env("OPENCHAT_OPS_TOKEN"))
    # Keep the X-Request-ID of an incoming request (else a new id): only behind a proxy that sets it.
    trust_request_id: bool = Field(False, validation_alias=_env("OPENCHAT_TRUST_REQUEST_ID"))

    models_dir: Path = Field(BACKEND_DIR / "models", validation_alias=_env("OPENCHAT_MODELS_DIR"))
    default_model: str = Field(DEFAULT_MODEL_ID, validation_alias=_env("OPENCHAT_DEFAULT_MODEL"))
    # The local engine: llama.cpp's llama-server, built by `make engine` (app/llm/engine.py).
    engine_binary: Path = Field(
        BACKEND_DIR / ".venv" / "bin" / "llama-server", validation_alias=_env("OPENCHAT_ENGINE_BIN")
    )
    # Context window of each conversation on a local model (capped by what the model was trained for).
    local_context_tokens: int = Field(8192, ge=512, validation_alias=_env("OPENCHAT_LOCAL_CONTEXT"))
    # 0 = every core.
    local_threads: int = Field(0, ge=0, validation_alias=_env("OPENCHAT_LOCAL_THREADS"))
    # Conversations a local model generates at once; 0 = sized from the CPU count and memory.
    local_slots: int = Field(0, ge=0, le=64, validation_alias=_env("OPENCHAT_LOCAL_SLOTS"))
    # RAM for recent conversations' KV cache, so going back to one is warm (per model).
    engine_cache_mib: int = Field(2048, ge=0, validation_alias=_env("OPENCHAT_ENGINE_CACHE_MIB"))
    # Start the default local model with the app, so the first reply does not wait for it.
    warm_up: bool = Field(True, validation_alias=_env("OPENCHAT_WARM_UP"))
    # Requests that may wait for a slot of a busy local model before new ones get 429.
    queue_size: int = Field(4, ge=0, validation_alias=_env("OPENCHAT_QUEUE_SIZE"))
    # Fairness: replies one user may have generating or waiting at once (one running, one waiting).
    user_max_generations: int = Field(2, ge=1, validation_alias=_env("OPENCHAT_USER_MAX_GENERATIONS"))
    # A reply that runs longer than this ends as `length`.
    max_generation_s: float = Field(600, gt=0, validation_alias=_env("OPENCHAT_MAX_GENERATION_S"))
    # A reply is stored as it generates: its partial text is saved this often (seconds), which also
    # renews its lease. A reply whose lease lapses (REPLY_LEASE_INTERVALS of these: its process was
    # killed) is marked interrupted, at start-up or by any replica sharing the database.
    reply_save_interval_s: float = Field(5, gt=0, validation_alias=_env("OPENCHAT_REPLY_SAVE_INTERVAL_S"))
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias=_env("OPENCHAT_MAX_BODY_BYTES"))
    # POST /api/v1/import takes a whole export file (read as a stream, spooled to a temporary file
    # in TMPDIR): this limit instead of OPENCHAT_MAX_BODY_BYTES.
    max_import_bytes: int = Field(100_000_000, ge=1024, validation_alias=_env("OPENCHAT_MAX_IMPORT_BYTES"))
    default_max_tokens: int = Field(1024, ge=1, validation_alias=_env("OPENCHAT_DEFAULT_MAX_TOKENS"))
    # After a conversation's first exchange, ask its model for a short summary title (in the
    # background; the first message, cut short, is the title until then and whenever that fails).
    generate_titles: bool = Field(True, validation_alias=_env("OPENCHAT_GENERATE_TITLES"))
    # The most messages one chat request may carry (the whole conversation: 500 exchanges), and
    # the longest message in characters (about 25,000 tokens, more than a local model's window).
    max_messages: int = Field(1000, ge=2, validation_alias=_env("OPENCHAT_MAX_MESSAGES"))
    max_message_chars: int = Field(100_000, ge=1, validation_alias=_env("OPENCHAT_MAX_MESSAGE_CHARS"))

    together_api_key: str | None = Field(None, validation_alias=_env("TOGETHER_API_KEY"))
    together_base_url: str = Field("https://api.together.xyz/v1", validation_alias=_env("TOGETHER_BASE_URL"))
    openai_compatible_base_url: str | None = Field(None, validation_alias=_env("OPENAI_COMPATIBLE_BASE_URL"))
    openai_compatible_api_key: str | None = Field(None, validation_alias=_env("OPENAI_COMPATIBLE_API_KEY"))
    # A remote model server (Together, OpenAI-compatible) silent this long, to connect or between
    # two chunks of a reply, is given up on: the reply ends with an error event.
    upstream_timeout_s: float = Field(60, gt=0, validation_alias=_env("OPENCHAT_UPSTREAM_TIMEOUT_S"))

    # Rate limits ("N/second|minute|hour|day"); shared through Redis when REDIS_URL is set.
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    rate_limit_login: str = Field("10/minute", validation_alias=_env("OPENCHAT_RATE_LIMIT_LOGIN"))
    rate_limit_signup: str = Field("20/hour", validation_alias=_env("OPENCHAT_RATE_LIMIT_SIGNUP"))
    rate_limit_chat: str = Field("60/minute", validation_alias=_env("OPENCHAT_RATE_LIMIT_CHAT"))
    # Login: OPENCHAT_RATE_LIMIT_LOGIN counts failed logins per account and address; this counts
    # every login attempt per address, whatever the account (one machine trying many accounts).
    rate_limit_login_address: str = Field("30/minute", validation_alias=_env("OPENCHAT_RATE_LIMIT_LOGIN_ADDRESS"))
    # After this many failed logins to one account within 15 minutes, from any addresses, each
    # further attempt waits a short delay that doubles with each failure (up to 30 s), except from
    # an address that logged in to that account before. Never a lock on the account alone.
    login_backoff_after: int = Field(20, ge=1, validation_alias=_env("OPENCHAT_LOGIN_BACKOFF_AFTER"))
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or networks,
    # comma-separated ("*" = any, "" = none). Loopback: the bundled Next.js server on this machine.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        ["127.0.0.1", "::1"], validation_alias=_env("OPENCHAT_TRUSTED_PROXIES")
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    cors_origins: list[str] = Field(
        ["http://localhost:3000", "http://127.0.0.1:3000"], validation_alias=_env("OPENCHAT_CORS_ORIGINS")
    )

    @model_validator(mode="after")
    def _ops_token_when_needed(self) -> "Settings":
        if "token" in (self.metrics_access, self.api_docs_access) and len(self.ops_token or "") < MIN_OPS_TOKEN_LENGTH:
            raise ValueError(
                f"OPENCHAT_METRICS or OPENCHAT_API_DOCS is `token`: set OPENCHAT_OPS_TOKEN to at least "
                f"{MIN_OPS_TOKEN_LENGTH} random characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        return self

    @property
    def reply_lease_s(self) -> float:
        return self.reply_save_interval_s * REPLY_LEASE_INTERVALS

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'openchat.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
