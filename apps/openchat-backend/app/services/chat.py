"""POST /api/v1/chat: prepare the conversation, start the model, stream NDJSON events.

Everything that can fail before the first token (bad model, busy queue, an engine that
is restarting) is answered with an HTTP status; after that, failures go in-band as one
`error` event. Blocking work (database) runs in threads; every model, local ones included,
is reached over HTTP (local models run in their own supervised process, app/llm/engine.py).

Fairness: one user has at most `user_max_generations` replies generating or waiting at
once, and no reply runs longer than `max_generation_s` (it ends as `length`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.core.config import Settings
from app.core.errors import ApiError
from app.core.metrics import CHAT_REPLIES, TIME_TO_FIRST_TOKEN, TOKENS_PER_SECOND
from app.llm.engine import EngineBusyError, EngineProcess, EngineUnavailableError
from app.llm.registry import ChatOptions, ModelInfo, ModelRegistry
from app.schemas import (
    TEMPERATURE,
    TOP_P,
    ChatRequest,
    EndEvent,
    ErrorEvent,
    StartEvent,
    StreamEvent,
    Timings,
    TitleEvent,
    TokenEvent,
    TrimmedEvent,
    Usage,
    max_tokens_range,
)

log = logging.getLogger(__name__)

MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {"user": HumanMessage, "ai": AIMessage, "system": SystemMessage}


def encode(event: StreamEvent) -> bytes:
    return (event.model_dump_json() + "\n").encode()


async def trim_history(
    messages: list[BaseMessage], budget: int, count_tokens: Callable[[list[BaseMessage]], Awaitable[int]]
) -> tuple[list[BaseMessage], int]:
    """Drop the oldest turns (system messages kept) until the prompt fits in `budget` tokens.

    Returns the messages to send and how many were left out. Raises ValueError when even
    the system prompt plus the last message do not fit.
    """
    if await count_tokens(messages) <= budget:
        return messages, 0
    system = [m for m in messages if isinstance(m, SystemMessage)]
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    if await count_tokens(system + rest[-1:]) > budget:
        raise ValueError("last message too long")
    # Fewest dropped messages that fit; the token count shrinks as more are dropped.
    low, high = 0, len(rest) - 1
    while low < high:
        middle = (low + high) // 2
        if await count_tokens(system + rest[middle:]) <= budget:
            high = middle
        else:
            low = middle + 1
    # A history should not open with a reply whose question was dropped.
    while low < len(rest) - 1 and not isinstance(rest[low], HumanMessage):
        low += 1
    return system + rest[low:], low


@dataclass
class PreparedChat:
    conversation_id: str
    message_id: str
    reply_position: int
    model: ModelInfo
    messages: list[BaseMessage]
    omitted: int
    prompt_tokens_estimate: int
    options: ChatOptions
    started: float


@dataclass
class ReplyState:
    parts: list[str] = field(default_factory=list)
    token_events: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def absorb(self, chunk: AIMessageChunk, now: float) -> str:
        if chunk.usage_metadata:
            self.usage = dict(chunk.usage_metadata)
        reason = chunk.response_metadata.get("finish_reason")
        if reason:
            self.finish_reason = reason
        text = chunk.text
        if text:
            self.parts.append(text)
            self.token_events += 1
            if self.first_token_at is None:
                self.first_token_at = now
            self.last_token_at = now
        return text


def finish_reason(status: str, state: ReplyState) -> str | None:
    """The contract's finish reason for a stored reply: stop, length, cancelled (None for errors)."""
    if status == "cancelled":
        return "cancelled"
    if status == "error":
        return None
    return "length" if state.finish_reason == "length" else "stop"


@dataclass(frozen=True)
class ReplyNumbers:
    """Token counts and timings of one reply, computed once when it ends."""

    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    tokens_per_second: float

    @classmethod
    def of(cls, chat: PreparedChat, state: ReplyState) -> ReplyNumbers:
        usage = state.usage or {}
        # Providers that report no usage: one token per streamed chunk is the best estimate.
        completion = usage.get("output_tokens") or state.token_events
        speed = 0.0
        if state.first_token_at and state.last_token_at and completion > 1:
            elapsed = state.last_token_at - state.first_token_at
            speed = (completion - 1) / elapsed if elapsed > 0 else 0.0
        return cls(
            prompt_tokens=usage.get("input_tokens") or chat.prompt_tokens_estimate,
            cached_prompt_tokens=(usage.get("input_token_details") or {}).get("cache_read") or 0,
            completion_tokens=completion,
            ttft_ms=round((state.first_token_at - chat.started) * 1000, 1) if state.first_token_at else None,
            tokens_per_second=round(speed, 2),
        )


def engine_unavailable(error: EngineUnavailableError) -> ApiError:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return ApiError(503, "engine_unavailable", str(error), headers=headers)


class UserGenerations:
    """How many replies each user has generating or waiting; more than `limit` gets 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, user_id: str) -> Any:
        with self._lock:
            if self._counts.get(user_id, 0) >= self.limit:
                raise ApiError(
                    429,
                    "too_many_generations",
                    f"You already have {self.limit} replies generating or waiting. "
                    "Wait for one to finish, or stop it, then send again.",
                    headers={"Retry-After": "5"},
                )
            self._counts[user_id] = self._counts.get(user_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[user_id] -= 1
                if not self._counts[user_id]:
                    del self._counts[user_id]


@dataclass
class Generation:
    """A started reply: the model's stream, what it produced before the response began, and
    the places (user's and engine's) it holds until it ends."""

    places: AsyncExitStack
    stream: AsyncGenerator[AIMessageChunk, None] | None = None
    early: list[tuple[AIMessageChunk, float]] = field(default_factory=list)  # with the time each arrived
    engine: EngineProcess | None = None
    engine_lifetime: int = 0

    async def lost_engine(self) -> bool:
        """Whether the local engine's process ended under this reply (its supervisor notices within moments)."""
        if self.engine is None:
            return False
        for _ in range(20):
            if self.engine.lifetime != self.engine_lifetime:
                return True
            await anyio.sleep(0.05)
        return False


class ChatService:
    def __init__(self, settings: Settings, registry: ModelRegistry, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.registry = registry
        self.sessions = sessions
        self.user_generations = UserGenerations(settings.user_max_generations)

    async def prepare(self, request: ChatRequest, user_id: str, started: float) -> PreparedChat:
        data = request.data
        model = await self.registry.get(data.model if data else None)
        if model is None:
            if data and data.model:
                raise ApiError(400, "unknown_model", f"Unknown model '{data.model}'. GET /api/v1/models lists them.")
            raise ApiError(
                500,
                "no_model",
                "No model is available. Run `make setup` to assemble the bundled models, "
                "or configure TOGETHER_API_KEY or OPENAI_COMPATIBLE_BASE_URL.",
            )
        window = self.registry.context_window(model)
        allowed = max_tokens_range(window, self.settings.default_max_tokens)
        requested = data.max_tokens if data else None
        if requested is not None and requested > allowed.max:
            raise ApiError(
                400,
                "option_out_of_range",
                f"Option 'data.max_tokens' must be between {allowed.min} and {allowed.max} for {model.name} "
                f"(its context window is {window} tokens); got {requested}.",
            )
        max_tokens = int(requested or allowed.default)
        settings = {
            "model": model.id,
            "prompt": data.prompt if data else None,
            "temperature": data.temperature if data else None,
            "top_p": data.top_p if data else None,
            "max_tokens": data.max_tokens if data else None,
        }
        messages: list[BaseMessage] = []
        if data and data.prompt:
            messages.append(SystemMessage(data.prompt))
        messages += [MESSAGE_CLASSES[m.role](m.content) for m in request.messages]
        budget = window - max_tokens

        counted: dict[tuple[int, ...], int] = {}

        async def count(batch: list[BaseMessage]) -> int:
            # Trimming ends by measuring what it kept; a local engine measures over HTTP, so once is enough.
            key = tuple(id(message) for message in batch)
            if key not in counted:
                counted[key] = await self.registry.count_tokens(model, batch)
            return counted[key]

        try:
            kept, omitted = await trim_history(messages, budget, count)
            prompt_tokens = await count(kept)
        except EngineUnavailableError as error:
            raise engine_unavailable(error) from error
        except ValueError as error:
            raise ApiError(
                400,
                "message_too_long",
                f"The last message is too long for {model.name}: with max_tokens={max_tokens} the prompt may use "
                f"{budget} of its {window} context tokens. Shorten the message or lower max_tokens.",
            ) from error
        except Exception as error:  # the model file could not be loaded, for example
            log.exception("Model %s failed before generation", model.id)
            raise ApiError(500, "model_failed", f"The model {model.id} failed to start: {error}") from error
        # Stored only once the request is known to fit: a refused request leaves nothing behind.
        incoming = [crud.IncomingMessage(role=m.role, content=m.content) for m in request.messages]

        def store_user_messages() -> int:
            with self.sessions() as session:
                _conversation, position = crud.sync_conversation(session, user_id, request.id, incoming, settings)
                return position

        try:
            position = await anyio.to_thread.run_sync(store_user_messages)
        except crud.NotFoundError as error:
            raise ApiError(404, "not_found", f"Conversation '{request.id}' not found.") from error

        options = ChatOptions(
            temperature=data.temperature if data and data.temperature is not None else TEMPERATURE.default,
            top_p=data.top_p if data and data.top_p is not None else TOP_P.default,
            max_tokens=max_tokens,
        )
        return PreparedChat(
            conversation_id=request.id,
            message_id=uuid.uuid4().hex,
            reply_position=position,
            model=model,
            messages=kept,
            omitted=omitted,
            prompt_tokens_estimate=prompt_tokens,
            options=options,
            started=started,
        )

    async def start(self, chat: PreparedChat, user_id: str) -> Generation:
        """Take the user's and the engine's places, start the model and wait for its first token,
        so that early failures get a status code."""
        places = AsyncExitStack()
        generation = Generation(places=places)
        try:
            places.enter_context(self.user_generations.hold(user_id))
            generation.engine = await places.enter_async_context(self.registry.reserve(chat.model))
            generation.engine_lifetime = generation.engine.lifetime if generation.engine else 0
            model = self.registry.chat_model(chat.model, chat.options)
            # astream is an async generator; typed as an iterator upstream.
            generation.stream = cast(AsyncGenerator[AIMessageChunk, None], model.astream(chat.messages))
            places.push_async_callback(generation.stream.aclose)
            # Remote servers may open with empty role chunks; wait for text or the end.
            while not generation.early or not (generation.early[-1][0].text or generation.early[-1][0].usage_metadata):
                chunk = await anext(generation.stream, None)
                if chunk is None:
                    break
                generation.early.append((chunk, time.monotonic()))
        except ApiError:
            await places.aclose()
            raise
        except EngineBusyError as error:
            await places.aclose()
            raise ApiError(
                429,
                "model_busy",
                f"{chat.model.name} is busy with other requests and its queue is full; retry in {error.retry_after} s.",
                headers={"Retry-After": str(error.retry_after)},
            ) from error
        except EngineUnavailableError as error:
            await places.aclose()
            await self._finish(chat, ReplyState(), "error", error=str(error))
            raise engine_unavailable(error) from error
        except Exception as error:
            await places.aclose()
            if await generation.lost_engine():
                log.error("The local engine for %s died before the first token", chat.model.id)
                await self._finish(chat, ReplyState(), "error", error="engine_crashed")
                raise ApiError(
                    503,
                    "engine_restarting",
                    f"The local engine for {chat.model.name} stopped and is restarting; your message is saved. "
                    "Retry in a few seconds.",
                    headers={"Retry-After": "5"},
                ) from error
            log.exception("Model %s failed before the first token", chat.model.id)
            await self._finish(chat, ReplyState(), "error", error=str(error))
            raise ApiError(
                500,
                "model_failed",
                f"The model {chat.model.id} failed before replying: {error}. Try again, or pick another model.",
            ) from error
        return generation

    async def events(self, chat: PreparedChat, generation: Generation) -> AsyncIterator[bytes]:
        """The NDJSON body. On client disconnect (cancellation) the partial reply is kept."""
        state = ReplyState()
        deadline = chat.started + self.settings.max_generation_s
        assert generation.stream is not None
        try:
            yield encode(StartEvent(id=chat.conversation_id, message_id=chat.message_id, model=chat.model.id))
            if chat.omitted:
                yield encode(TrimmedEvent(omitted_messages=chat.omitted))
            outcome = "cancelled"
            try:
                for chunk, arrived in generation.early:
                    if text := state.absorb(chunk, arrived):
                        yield encode(TokenEvent(content=text))
                async for chunk in generation.stream:
                    now = time.monotonic()
                    if text := state.absorb(chunk, now):
                        yield encode(TokenEvent(content=text))
                    if now > deadline and state.usage is None:
                        state.finish_reason = "length"  # a runaway reply: end it as if max_tokens was hit
                        break
                outcome = "complete"
            except Exception as error:  # in-band: the stream has begun
                outcome = "error"
                crashed = await generation.lost_engine()
                if crashed:
                    log.error("The local engine for %s died while streaming", chat.model.id)
                else:
                    log.exception("Model %s failed while streaming", chat.model.id)
                await self._finish(chat, state, "error", error="engine_crashed" if crashed else str(error))
                yield encode(
                    ErrorEvent(
                        code="engine_crashed" if crashed else "model_failed",
                        message=(
                            "The local engine stopped while replying and is restarting. Your message is saved; "
                            "press Retry in a few seconds."
                            if crashed
                            else f"The model stopped with an error: {error}. Your message is saved; press Retry."
                        ),
                    )
                )
                return
            finally:
                if outcome == "cancelled":
                    # Client gone or stop pressed: stop the model and keep what was generated.
                    with anyio.CancelScope(shield=True):
                        await generation.places.aclose()
                        await self._finish(chat, state, "cancelled")
            await generation.places.aclose()  # frees the engine slot before the database write
            title, numbers = await self._finish(chat, state, "complete")
            if title:
                yield encode(TitleEvent(title=title))
            yield encode(self._end_event(chat, state, numbers))
        finally:
            with anyio.CancelScope(shield=True):
                await generation.places.aclose()

    async def _finish(
        self, chat: PreparedChat, state: ReplyState, status: str, error: str | None = None
    ) -> tuple[str | None, ReplyNumbers]:
        """Record metrics and store the reply; returns the new title (if any) and the reply's numbers."""
        numbers = ReplyNumbers.of(chat, state)
        finish = finish_reason(status, state)
        CHAT_REPLIES.labels(chat.model.id, finish or "error").inc()
        if state.first_token_at is not None:
            TIME_TO_FIRST_TOKEN.labels(chat.model.id).observe(state.first_token_at - chat.started)
        if status == "complete" and numbers.tokens_per_second:
            TOKENS_PER_SECOND.labels(chat.model.id).observe(numbers.tokens_per_second)

        def store() -> str | None:
            with self.sessions() as session:
                return crud.store_reply(
                    session,
                    conversation_id=chat.conversation_id,
                    message_id=chat.message_id,
                    position=chat.reply_position,
                    content="".join(state.parts),
                    status=status,
                    model=chat.model.id,
                    finish_reason=finish,
                    error=error,
                    prompt_tokens=numbers.prompt_tokens,
                    completion_tokens=numbers.completion_tokens,
                    ttft_ms=numbers.ttft_ms,
                    tokens_per_second=numbers.tokens_per_second or None,
                )

        return await anyio.to_thread.run_sync(store), numbers

    def _end_event(self, chat: PreparedChat, state: ReplyState, numbers: ReplyNumbers) -> EndEvent:
        # An empty reply has no first token: report the time until the model finished.
        ttft = numbers.ttft_ms if numbers.ttft_ms is not None else round((time.monotonic() - chat.started) * 1000, 1)
        return EndEvent(
            message_id=chat.message_id,
            finish_reason="length" if state.finish_reason == "length" else "stop",
            usage=Usage(
                prompt_tokens=numbers.prompt_tokens,
                completion_tokens=numbers.completion_tokens,
                cached_prompt_tokens=numbers.cached_prompt_tokens,
            ),
            timings=Timings(ttft_ms=ttft, tokens_per_second=numbers.tokens_per_second),
        )
