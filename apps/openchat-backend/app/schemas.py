"""API shapes: request bodies, responses, the sampling options' ranges, and the typed NDJSON
stream events (declared here so that they are part of the OpenAPI schema, see `openapi_extra_schemas`)."""

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import annotated_types
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# "assistant" and "system" are accepted too; "assistant" is stored as "ai".
ROLE_ALIASES = {"user": "user", "human": "user", "ai": "ai", "assistant": "ai", "system": "system"}


class RequestBody(BaseModel):
    """A request body's model: its text is stored exactly as sent or refused, never altered. NUL is
    refused on every database (PostgreSQL cannot store it in text), and so is half a surrogate pair
    (not Unicode text: it cannot be encoded to be stored or sent back)."""

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        if "\x00" in value:
            raise PydanticCustomError(
                "nul_character",
                "'{field}' contains a NUL character (\\u0000), which cannot be stored: remove it.",
                {"field": info.field_name},
            )
        try:
            value.encode()
        except UnicodeEncodeError:  # JSON may escape half a surrogate pair ("\ud800"): not text
            raise PydanticCustomError(
                "invalid_text",
                "'{field}' contains an unpaired surrogate (\\ud800-\\udfff), which is not text: send valid Unicode.",
                {"field": info.field_name},
            ) from None
        return value


class ChatMessageIn(RequestBody):
    # Checked by the validators below, with readable errors (content: the schema says a string).
    role: str
    content: Any = Field(json_schema_extra={"type": "string"})

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLE_ALIASES:
            raise PydanticCustomError(
                "unknown_role",
                "Unknown role '{role}': use 'user', 'ai' ('assistant') or 'system'.",
                {"role": role},
            )
        return ROLE_ALIASES[role]

    @field_validator("content")
    @classmethod
    def _string_content(cls, content: Any) -> str:
        if not isinstance(content, str):
            raise PydanticCustomError("invalid_content", "Message content must be a string.")
        return content


# -- sampling options: their defaults and ranges are written here and nowhere else ----------


class SamplingRange(BaseModel):
    """An option's default and inclusive range [min, max]; a control steps by `step`."""

    model_config = ConfigDict(frozen=True)

    default: int | float
    min: int | float
    max: int | float
    step: int | float


class SamplingOut(BaseModel):
    """The sampling options one model accepts (GET /api/v1/models, per model)."""

    temperature: SamplingRange
    top_p: SamplingRange
    max_tokens: SamplingRange


TEMPERATURE = SamplingRange(default=0.7, min=0.0, max=2.0, step=0.05)
TOP_P = SamplingRange(default=0.95, min=0.01, max=1.0, step=0.01)
MAX_TOKENS_CAP = 32_768  # the most tokens any one reply may ask for, whatever the model


def max_tokens_range(context_window: int, configured_default: int) -> SamplingRange:
    """A reply must leave the prompt room in the context window: at most one token less than it.
    Without `max_tokens`, a reply may use the configured default, at most half the window."""
    return SamplingRange(
        default=min(configured_default, context_window // 2),
        min=1,
        max=min(context_window - 1, MAX_TOKENS_CAP),
        step=1,
    )


def sampling(context_window: int, configured_default: int) -> SamplingOut:
    return SamplingOut(
        temperature=TEMPERATURE, top_p=TOP_P, max_tokens=max_tokens_range(context_window, configured_default)
    )


RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


class ChatOptionsIn(RequestBody):
    """The chat options a request may set (ChatData) and a conversation stores (ConversationSettings)."""

    # Where the options sit in the request body, for error messages.
    option_prefix: ClassVar[str] = "data."

    model: str | None = Field(None, max_length=300)
    prompt: str | None = Field(None, max_length=20_000)
    # Strict numbers: `true`, "0.7" or 512.0 are refused, not read as numbers.
    temperature: float | None = Field(None, ge=TEMPERATURE.min, le=TEMPERATURE.max, strict=True)
    top_p: float | None = Field(None, ge=TOP_P.min, le=TOP_P.max, strict=True)
    # Each model allows less than this (max_tokens_range); the chat service checks that.
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CAP, strict=True)

    @field_validator("temperature", "top_p", "max_tokens", mode="wrap")
    @classmethod
    def _in_range(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """An out-of-range option is refused with its whole range, so the client knows what to send."""
        try:
            return handler(value)
        except ValidationError as error:
            if error.errors()[0]["type"] not in RANGE_ERRORS:
                raise
            constraints = cls.model_fields[info.field_name or ""].metadata
            low = next(c.ge for c in constraints if isinstance(c, annotated_types.Ge))
            high = next(c.le for c in constraints if isinstance(c, annotated_types.Le))
            raise PydanticCustomError(
                "option_out_of_range",
                "Option '{prefix}{name}' must be between {low} and {high}; got {value}.",
                {"prefix": cls.option_prefix, "name": info.field_name, "low": low, "high": high, "value": value},
            ) from None


class ChatData(ChatOptionsIn):
    resumable: bool = Field(
        False,
        strict=True,
        description="Keep generating when the client disconnects (until the reply ends, hits max_tokens or the "
        "time limit, or POST /conversations/{id}/stop): the reply can be followed again with GET "
        "/conversations/{id}/stream. Without it, a client that disconnects stops the reply.",
    )


def _chat_request_schema(schema: dict[str, Any]) -> None:
    # `"data": null` is accepted (as no options); and an example, for readers and for the fuzz test.
    schema["properties"]["data"] = {"anyOf": [schema["properties"]["data"], {"type": "null"}]}
    schema["examples"] = [
        {
            "id": "c0f1",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "ai", "content": "Hello!"},
                {"role": "user", "content": "Tell me a joke"},
            ],
            "data": {"prompt": "You are a concise assistant.", "temperature": 0.7, "max_tokens": 512},
        }
    ]


class ChatRequest(RequestBody):
    # Extra keys are ignored so that clients may send more than the contract asks.
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
    messages: list[ChatMessageIn] = Field(min_length=1)
    data: ChatData = Field(default_factory=ChatData)

    model_config = ConfigDict(str_strip_whitespace=False, json_schema_extra=_chat_request_schema)

    @field_validator("data", mode="before")
    @classmethod
    def _no_data_is_no_options(cls, value: Any) -> Any:
        return {} if value is None else value  # `"data": null` has always been accepted

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_type", "Field 'id' must be a string.")
        return value

    @model_validator(mode="after")
    def _ends_with_user(self) -> "ChatRequest":
        if self.messages[-1].role != "user":
            raise PydanticCustomError("last_message_not_user", "The last message must be from the user.")
        return self


# -- stream events (one JSON object per line) -------------------------------------------------


class Event(BaseModel):
    # `type` has a default so that events are built without repeating it; it is always sent,
    # so the (serialization) schema marks it, and every field with a default, as required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class StartEvent(Event):
    type: Literal["start"] = "start"
    id: str
    message_id: str
    model: str


class TrimmedEvent(Event):
    """Earlier messages were left out of the prompt so that it fits the model's context window."""

    type: Literal["trimmed"] = "trimmed"
    omitted_messages: int


class ProgressEvent(Event):
    """How much of a long prompt the model has read, before its first token (the local engine
    reports it; other providers send none). `processed` counts cached tokens too, <= `total`."""

    type: Literal["progress"] = "progress"
    processed: int
    total: int


class TokenEvent(Event):
    type: Literal["token"] = "token"
    content: str


class TitleEvent(Event):
    """The conversation's new title, after its first exchange: the first message cut short (just
    before `end`), then the model's summary (after `end`, when it is written soon enough)."""

    type: Literal["title"] = "title"
    title: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    # Prompt tokens served from the KV cache of the previous turn (local models).
    cached_prompt_tokens: int


class Timings(BaseModel):
    ttft_ms: float
    tokens_per_second: float


class EndEvent(Event):
    type: Literal["end"] = "end"
    message_id: str
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: Usage
    timings: Timings


class ErrorEvent(Event):
    """A failure after the stream began; the stream ends after it."""

    type: Literal["error"] = "error"
    code: str
    message: str


StreamEvent = Annotated[
    StartEvent | TrimmedEvent | ProgressEvent | TokenEvent | TitleEvent | EndEvent | ErrorEvent,
    Field(discriminator="type"),
]
STREAM_EVENT_REF = "#/components/schemas/StreamEvent"

# An event of a reply as the chat service yields it: a token comes as its text (a str), the
# TokenEvent it stands for left unbuilt. Nearly every event is a token, and each is handled on a
# core the local engine keeps busy, with cold caches: building the model cost 12-19 µs there
# against 0.6 µs in a warm loop (benchmarks/cold_path.py, docs/benchmarks.md section 6).
ReplyEvent = StreamEvent | str

TOKEN_LINE_START = b'{"type":"token","content":'


def ndjson_line(event: ReplyEvent) -> bytes:
    """An event as one line of the NDJSON stream. A token's line, from its text, is encoded by
    orjson between fixed bytes: the same bytes as pydantic writes for its TokenEvent
    (tests/test_schemas.py), which the other events are written by."""
    if isinstance(event, str):
        return TOKEN_LINE_START + orjson.dumps(event) + b"}\n"
    return event.model_dump_json().encode() + b"\n"


def openapi_extra_schemas() -> dict[str, Any]:
    """OpenAPI components for the stream events, which no route declares as a response model:
    each event model, and `StreamEvent`, their union (oneOf, discriminated by `type`)."""
    ref_template = "#/components/schemas/{model}"
    union = TypeAdapter(StreamEvent).json_schema(mode="serialization", ref_template=ref_template)
    definitions = union.pop("$defs")
    return {**definitions, "StreamEvent": {"title": "StreamEvent", **union}}


# -- errors, as each route documents them -----------------------------------------------------


class ErrorOut(BaseModel):
    """Every error answered before a stream begins (app/core/errors.py)."""

    detail: str = Field(description="A readable sentence that says what went wrong and what to change")
    code: str = Field(description="A stable code for programs, e.g. `unknown_model` or `rate_limited`")


ERROR_DESCRIPTIONS = {
    400: "Invalid request: not JSON, a field missing or of the wrong type, or a value out of range",
    401: "Authentication required: the access token is missing, invalid or expired",
    403: "Refused: sent from another site's page (Origin), or not allowed",
    404: "Not found, or not the caller's",
    409: "Conflicts with what is stored",
    413: "The request body is larger than the configured limit",
    429: "Too many requests: wait `Retry-After` seconds",
    500: "The server failed",
    503: "The database or the model's engine is unavailable or overloaded for now; retry later",
}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}


def error_responses(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's error responses for its `responses=`: each status with the error shape and a
    description (the default one, or the route's own from `described`). A 429 always carries
    Retry-After; a 503 does when the server knows how long to wait."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": ErrorOut,
            "description": (described or {}).get(status, ERROR_DESCRIPTIONS[status]),
        }
        if status == 429:
            response["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}}
        if status == 503:
            response["headers"] = {"Retry-After": RETRY_AFTER}
        responses[status] = response
    return responses


def complete_openapi(schema: dict[str, Any], auth_required: bool) -> None:
    """Makes FastAPI's generated schema say what this app does (in place): adds the stream events,
    which no route declares as a response model; removes FastAPI's 422, since validation errors are
    answered 400 in the error shape (each route documents its 400); and, when authentication is
    off (OPENCHAT_AUTH=off), removes the security requirements, since no credentials are asked."""
    components = schema["components"]["schemas"]
    components.update(openapi_extra_schemas())
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in schema["paths"].values():
        for operation in path.values():
            operation["responses"].pop("422", None)
            if not auth_required:
                operation.pop("security", None)
    if not auth_required:
        schema["components"].pop("securitySchemes", None)


class ReadinessOut(BaseModel):
    """GET /readyz, with 200 when ready and 503 when not: each check says `ok…` or `error: …`."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    engines: dict[str, dict[str, Any]]


# -- models and conversations -----------------------------------------------------------------


class ModelOut(BaseModel):
    id: str
    name: str
    provider: Literal["local", "together", "openai-compatible"]
    context_length: int
    default: bool
    sampling: SamplingOut


class ModelsOut(BaseModel):
    models: list[ModelOut]


class MessageBase(BaseModel):
    """A stored message as the API shows it (`MessageOut`) and as an export writes it
    (`ExportedMessage`): declared once, so that the two cannot drift apart."""

    id: str
    # The message this one follows (None for the first message and its versions).
    parent_id: str | None
    role: Literal["user", "ai", "system"]
    content: str
    # A reply: `generating` while it is written (its text so far, saved every few seconds), then
    # how it ended; `interrupted` when the server stopped while it was generating (text so far kept).
    status: Literal["complete", "cancelled", "error", "generating", "interrupted"]
    model: str | None
    finish_reason: Literal["stop", "length", "cancelled"] | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    tokens_per_second: float | None
    # Earlier messages left out of the prompt of this reply to fit the context window
    # (replies only; None for replies stored before it was recorded).
    omitted_messages: int | None
    created_at: datetime


class MessageOut(MessageBase):
    model_config = ConfigDict(from_attributes=True)

    # Its place in the conversation, from 0 (its depth on the path): `before` of GET /conversations/{id} takes it.
    position: int
    # Its versions (the messages with its parent: edited or regenerated), itself included, oldest
    # first; POST /conversations/{id}/branch with one of them shows it.
    sibling_ids: list[str]
    sibling_index: int = Field(description="This message's index in `sibling_ids`, from 0")
    sibling_count: int = Field(description="How many versions: the length of `sibling_ids`")


class ConversationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_serialization_defaults_required=True)

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    generating: bool = Field(
        False,
        description="A reply of this conversation is being generated now (on any replica): "
        "GET /conversations/{id}/stream follows it",
    )


class ConversationSettings(ChatOptionsIn):
    """A conversation's chat options, changed with PATCH /conversations/{id}: the same ranges as
    the chat request's `data`. Only the options given change; `null` clears one (the model's
    default applies again)."""

    option_prefix: ClassVar[str] = "settings."


class StoredSettings(BaseModel):
    """A conversation's chat options as stored: those of its last chat request or PATCH. The
    web app shows them when the conversation is opened (the server is their source of truth).
    Each is always sent (`null`: not set, the model's default applies)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    model: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


class ConversationWithSettings(ConversationSummary):
    settings: StoredSettings


class ConversationOut(ConversationWithSettings):
    """A conversation with the messages of the path shown, oldest first: all of them, or the page asked for."""

    messages: list[MessageOut]
    # Whether messages earlier than the first one returned exist (GET ?before=<its position>).
    has_more: bool


class BranchBody(RequestBody):
    """Show another version of a message: the path goes through it and on to its newest reply."""

    message_id: str = Field(min_length=1, max_length=64)


class ConversationPage(BaseModel):
    conversations: list[ConversationSummary]
    next_cursor: str | None


class ConversationPatch(RequestBody):
    """Rename a conversation, change its settings, or both."""

    title: str | None = Field(None, min_length=1, max_length=200)
    settings: ConversationSettings | None = None

    @field_validator("title")
    @classmethod
    def _not_blank(cls, title: str | None) -> str | None:
        if title is None:
            return None
        title = title.strip()
        if not title:
            raise PydanticCustomError("invalid_request", "The title must not be blank.")
        return title

    @model_validator(mode="after")
    def _changes_something(self) -> "ConversationPatch":
        if self.title is None and self.settings is None:
            raise PydanticCustomError("invalid_request", "Nothing to change: send 'title', 'settings' or both.")
        return self


# -- auth -------------------------------------------------------------------------------------

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Credentials(RequestBody):
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


# -- export and import ------------------------------------------------------------------------


class ExportedMessage(MessageBase):
    """A message in an OpenChat JSON export: every version of every message is there."""

    # What went wrong with a reply that did not complete (exported, not shown by MessageOut).
    error: str | None


class ExportedConversation(BaseModel):
    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    settings: StoredSettings
    # The last message of the path shown.
    active_leaf_id: str | None
    # Parents before children; each message's versions oldest first.
    messages: list[ExportedMessage]


class OpenChatExport(BaseModel):
    """OpenChat's JSON export (GET /conversations/{id}/export, GET /export): lossless, and what
    POST /import reads back."""

    format: Literal["openchat"]
    version: Literal[1]
    exported_at: datetime
    conversations: list[ExportedConversation]


class ImportResult(BaseModel):
    """POST /api/v1/import: what the file added. Conversations imported before (by this user, from
    the same source with the same content) are skipped and counted in `duplicates`."""

    imported: int
    duplicates: int
    # The new conversations' ids, in file order.
    conversation_ids: list[str]
