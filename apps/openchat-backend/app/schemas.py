"""API shapes: request bodies, responses, and the typed NDJSON stream events."""

import re
from datetime import datetime
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

# "assistant" and "system" are accepted too; "assistant" is stored as "ai".
ROLE_ALIASES = {"user": "user", "human": "user", "ai": "ai", "assistant": "ai", "system": "system"}


class ChatMessageIn(BaseModel):
    role: str
    content: Any

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


class ChatData(BaseModel):
    model: str | None = Field(None, max_length=300)
    prompt: str | None = Field(None, max_length=20_000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=32_768)


class ChatRequest(BaseModel):
    # Extra keys are ignored so that clients may send more than the contract asks.
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
    messages: list[ChatMessageIn] = Field(min_length=1)
    data: ChatData | None = None

    model_config = ConfigDict(str_strip_whitespace=False)

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


class StartEvent(TypedDict):
    type: Literal["start"]
    id: str
    message_id: str
    model: str


class TrimmedEvent(TypedDict):
    type: Literal["trimmed"]
    omitted_messages: int


class TokenEvent(TypedDict):
    type: Literal["token"]
    content: str


class TitleEvent(TypedDict):
    type: Literal["title"]
    title: str


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    # Prompt tokens served from the KV cache of the previous turn (local models).
    cached_prompt_tokens: int


class Timings(TypedDict):
    ttft_ms: float
    tokens_per_second: float


class EndEvent(TypedDict):
    type: Literal["end"]
    message_id: str
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: Usage
    timings: Timings


class ErrorEvent(TypedDict):
    type: Literal["error"]
    code: str
    message: str


StreamEvent = StartEvent | TrimmedEvent | TokenEvent | TitleEvent | EndEvent | ErrorEvent


# -- models and conversations -----------------------------------------------------------------


class ModelOut(BaseModel):
    id: str
    name: str
    provider: Literal["local", "together", "openai-compatible"]
    context_length: int
    default: bool


class ModelsOut(BaseModel):
    models: list[ModelOut]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    content: str
    status: str
    model: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    tokens_per_second: float | None
    created_at: datetime


class ConversationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime


class ConversationOut(ConversationSummary):
    settings: dict[str, Any]
    messages: list[MessageOut]


class ConversationPage(BaseModel):
    conversations: list[ConversationSummary]
    next_cursor: str | None


class ConversationPatch(BaseModel):
    title: str = Field(min_length=1, max_length=200)

    @field_validator("title")
    @classmethod
    def _not_blank(cls, title: str) -> str:
        title = title.strip()
        if not title:
            raise PydanticCustomError("invalid_request", "The title must not be blank.")
        return title


# -- auth -------------------------------------------------------------------------------------

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
