"""Chat replies: check and store the request, start the model, and produce the reply's events.

`ChatService.reply` does everything that can fail before the first token (bad model, busy
queue, an engine that is restarting) and answers it with an HTTP status (ApiError). It
returns a started `Reply`, whose `events()` are the typed stream events of app/schemas.py, a
token as its text (ReplyEvent); after the first token (or a long prompt's first progress),
failures go in-band as one `error` event. After a conversation's first exchange, its summary
title is written in the background (app/services/summary_titles.py) and stored; it is not sent
in the stream, which ends with `end`. The API layer encodes the events (NDJSON,
app/api/routes/chat.py), so that another API can reuse this service.

Blocking work (database) runs in threads; every model, local ones included, is reached over
HTTP (local models run in their own supervised process, app/llm/engine.py).

Fairness: one user has at most `user_max_generations` replies generating or waiting at
once, and no reply runs longer than `max_generation_s` (it ends as `length`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.lowlevel
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.core.config import Settings
from app.core.errors import ACCOUNT_GONE, ApiError
from app.core.metrics import CHAT_REPLIES, TIME_TO_FIRST_TOKEN, TOKENS_PER_SECOND
from app.llm.engine import PROMPT_BATCH_TOKENS, EngineBusyError, EngineProcess, EngineUnavailableError
from app.llm.registry import ChatOptions, ModelInfo, ModelRegistry
from app.llm.streaming import ReplyPiece, StreamInterruptedError, stream_reply
from app.schemas import (
    TEMPERATURE,
    TOP_P,
    ChatRequest,
    EndEvent,
    ErrorEvent,
    ProgressEvent,
    ReplyEvent,
    StartEvent,
    Timings,
    TitleEvent,
    TrimmedEvent,
    Usage,
    max_tokens_range,
)
from app.services.background import BackgroundTasks
from app.services.live_replies import LiveReplies
from app.services.summary_titles import SummaryTitles
from app.services.user_generations import user_generations

log = logging.getLogger(__name__)

MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {"user": HumanMessage, "ai": AIMessage, "system": SystemMessage}
ReplyStatus = Literal["complete", "cancelled", "error"]  # how a reply ended (stored `generating` until then)
FinishReason = Literal["stop", "length", "cancelled"]
# The local engine reads a prompt in steps and reports its progress after each. A prompt it
# reads in one step gets no progress events: the response waits for its first token, so that a
# failure until then is still an HTTP status. A longer one's response begins with its progress.
LONG_PROMPT_TOKENS = PROMPT_BATCH_TOKENS
PROGRESS_INTERVAL_S = 0.25  # the most often a progress event is sent
# The longest a reply streams before it lets other requests run (when its tokens come faster
# than it can send them, as from a fast remote engine, it would never wait otherwise).
TURN_S = 0.002
# A request is stored after its first lines are sent, or after this long if its first token is slower.
STORE_AFTER_S = 0.1
REQUESTS_STORED_WAIT_S = 2.0


Counter = Callable[[list[BaseMessage]], Awaitable[int]]
EachCounter = Callable[[list[BaseMessage]], Awaitable[list[int]]]


async def trim_history(
    messages: list[BaseMessage], budget: int, count_tokens: Counter, count_each: EachCounter
) -> tuple[list[BaseMessage], int, int]:
    """Drop the oldest turns (system messages kept) until the prompt fits in `budget` tokens.

    `count_tokens` counts a whole prompt exactly; `count_each` gives each message's share of it.
    Each message is counted once (count_each); whole prompts are counted only once they fit the
    budget (and the last message alone), so the work grows with the history, not its square.
    Returns the messages to send, how many were left out, and the prompt's tokens. Raises
    ValueError when even the system prompt plus the last message do not fit.
    """
    system = [m for m in messages if isinstance(m, SystemMessage)]
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    last_alone = await count_tokens(system + rest[-1:])
    if last_alone > budget:
        raise ValueError("last message too long")
    sizes = await count_each(messages)
    rest_sizes = [size for message, size in zip(messages, sizes, strict=True) if not isinstance(message, SystemMessage)]
    # The most recent messages whose shares fit beside the system prompt and the last message.
    first = len(rest) - 1  # the oldest message kept
    used = last_alone
    while first > 0 and used + rest_sizes[first - 1] <= budget:
        first -= 1
        used += rest_sizes[first]
    while True:
        # A history should not open with a reply whose question was dropped.
        while 0 < first < len(rest) - 1 and not isinstance(rest[first], HumanMessage):
            first += 1
        kept = system + rest[first:]
        tokens = last_alone if first == len(rest) - 1 else await count_tokens(kept)
        if tokens <= budget:
            return kept, first, tokens
        # The shares were a little off (tokens merging across messages): drop what covers the excess.
        excess = tokens - budget
        while excess > 0 and first < len(rest) - 1:
            excess -= rest_sizes[first]
            first += 1


@dataclass
class ReplyState:
    parts: list[str] = field(default_factory=list)
    token_events: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None
    finish_reason: str | None = None  # the model's own; `length` when the time limit ended it
    usage: dict[str, Any] | None = None
    first_progress: ProgressEvent | None = None
    progress_at: float | None = None  # when the last progress event was sent

    def event(self, piece: ReplyPiece, now: float) -> str | ProgressEvent | None:
        """What the client is told of a piece: its text (a token event) or, until the first token
        of a long prompt, how much of it the model has read (at most every PROGRESS_INTERVAL_S)."""
        if text := self.absorb(piece, now):
            return text
        progress = prompt_progress(piece) if self.first_token_at is None else None
        if progress is None:
            return None
        self.first_progress = self.first_progress or progress
        if not long_prompt(self.first_progress):
            return None
        if self.progress_at is not None and now - self.progress_at < PROGRESS_INTERVAL_S:
            return None
        self.progress_at = now
        return progress

    def absorb(self, piece: ReplyPiece, now: float) -> str:
        if isinstance(piece, str):  # a token: the usual piece
            text = piece
        else:
            if piece.usage_metadata:
                self.usage = dict(piece.usage_metadata)
            reason = piece.response_metadata.get("finish_reason")
            if reason:
                self.finish_reason = reason
            text = piece.text
        if text:
            self.parts.append(text)
            self.token_events += 1
            if self.first_token_at is None:
                self.first_token_at = now
            self.last_token_at = now
        return text


def prompt_progress(piece: ReplyPiece) -> ProgressEvent | None:
    """The prompt progress a chunk carries (the local engine's, app/llm/openai_compatible.py)."""
    raw = None if isinstance(piece, str) else piece.response_metadata.get("prompt_progress")
    if not isinstance(raw, dict):
        return None
    try:
        return ProgressEvent(processed=raw.get("processed"), total=raw.get("total"))
    except ValidationError:
        return None


def long_prompt(first_progress: ProgressEvent) -> bool:
    """Whether the engine reads the prompt in several steps, from its first progress report
    (which counts the tokens it found in its cache as read)."""
    return first_progress.total - first_progress.processed > LONG_PROMPT_TOKENS


def begins_response(piece: ReplyPiece) -> bool:
    """Whether the response may begin with this piece: text, the end, or the progress of a long prompt."""
    if isinstance(piece, str):
        return True
    if piece.text or piece.usage_metadata:
        return True
    progress = prompt_progress(piece)
    return progress is not None and long_prompt(progress)


def finish_reason(status: Literal["complete", "cancelled"], state: ReplyState) -> FinishReason:
    """The contract's finish reason of a reply that ended with `status` (a failed one has none).
    The stored reply and the `end` event both take it from here."""
    if status == "cancelled":
        return "cancelled"
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
    def of(cls, reply: Reply, state: ReplyState) -> ReplyNumbers:
        usage = state.usage or {}
        # Providers that report no usage: one token per streamed chunk is the best estimate.
        completion = usage.get("output_tokens") or state.token_events
        speed = 0.0
        if state.first_token_at and state.last_token_at and completion > 1:
            elapsed = state.last_token_at - state.first_token_at
            speed = (completion - 1) / elapsed if elapsed > 0 else 0.0
        return cls(
            prompt_tokens=usage.get("input_tokens") or reply.prompt_tokens_estimate,
            cached_prompt_tokens=(usage.get("input_token_details") or {}).get("cache_read") or 0,
            completion_tokens=completion,
            ttft_ms=round((state.first_token_at - reply.started) * 1000, 1) if state.first_token_at else None,
            tokens_per_second=round(speed, 2),
        )


def check_size(request: ChatRequest, settings: Settings) -> None:
    """Refuse a request with more messages, or a longer message, than the server takes (400),
    before anything is counted, stored or started."""
    if len(request.messages) > settings.max_messages:
        raise ApiError(
            400,
            "too_many_messages",
            f"The conversation has {len(request.messages):,} messages; this server takes at most "
            f"{settings.max_messages:,} in one request (OPENCHAT_MAX_MESSAGES). Start a new conversation.",
        )
    for number, message in enumerate(request.messages, 1):
        if len(message.content) > settings.max_message_chars:
            raise ApiError(
                400,
                "message_too_long",
                f"Message {number} has {len(message.content):,} characters; this server takes at most "
                f"{settings.max_message_chars:,} per message (OPENCHAT_MAX_MESSAGE_CHARS). Shorten it, "
                "or send it in parts.",
            )


def sentence(error: Exception) -> str:
    """An error's message as a sentence ("Connection error." stays as it is)."""
    text = str(error).strip() or type(error).__name__
    return text if text.endswith((".", "!", "?")) else f"{text}."


def engine_unavailable(error: EngineUnavailableError) -> ApiError:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return ApiError(503, "engine_unavailable", str(error), headers=headers)


class PendingWrites:
    """The requests being stored, per user, until each is."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[asyncio.Future[None]]] = {}

    def track(self, user_id: str, write: asyncio.Future[None]) -> None:
        self._by_user.setdefault(user_id, set()).add(write)
        write.add_done_callback(lambda _: self._forget(user_id, write))

    def _forget(self, user_id: str, write: asyncio.Future[None]) -> None:
        writes = self._by_user.get(user_id, set())
        writes.discard(write)
        if not writes:
            self._by_user.pop(user_id, None)

    async def wait(self, user_id: str, timeout_s: float) -> None:
        if writes := self._by_user.get(user_id):
            await asyncio.wait(set(writes), timeout=timeout_s)


@contextmanager
def refused_as_status(conversation_id: str) -> Iterator[None]:
    """A refusal to store a chat's request (crud) as the ApiError that says why (404, 401)."""
    try:
        yield
    except crud.NotFoundError as error:
        raise ApiError(404, "not_found", f"Conversation '{conversation_id}' not found.") from error
    except crud.UnknownUserError as error:
        raise ApiError(401, "unauthorized", ACCOUNT_GONE, headers={"WWW-Authenticate": "Bearer"}) from error


@dataclass
class Reply:
    """One reply to a chat request: what the model is asked and, once it has begun, its stream
    (with the chunks that came before the response began) and the places (the user's and the
    engine's) it holds until it ends. `ChatService.reply` returns it started; read `events()` once."""

    conversation_id: str
    message_id: str
    position: int
    model: ModelInfo
    messages: list[BaseMessage]
    omitted: int  # earlier messages left out of the prompt
    prompt_tokens_estimate: int
    options: ChatOptions
    started: float
    deadline: float  # still generating then: it ends as `length`
    sessions: sessionmaker[Session]
    # Whether the request may be stored (its conversation is the user's), checked while the model
    # starts. Its messages are stored once the first lines are out, or after STORE_AFTER_S if the
    # model is slower to start (start_storing): on two cores, writing them while a local engine
    # computed the first token delayed that token by 2-4 ms (docs/benchmarks.md).
    access_checked: asyncio.Future[None]
    store_user_messages: Callable[[], None]
    live: LiveReplies  # saves the text so far while it generates (stored `generating` with the request)
    state: ReplyState = field(default_factory=ReplyState)
    ended: bool = False  # finish() has run: the reply is stored as it ended
    places: AsyncExitStack = field(default_factory=AsyncExitStack)
    stream: AsyncGenerator[ReplyPiece, None] | None = None
    early: list[tuple[ReplyPiece, float]] = field(default_factory=list)  # with the time each arrived
    engine: EngineProcess | None = None
    engine_lifetime: int = 0
    chat_model: BaseChatModel | None = None
    titles: SummaryTitles | None = None  # None: no summary titles
    events_read: bool = False
    user_messages_stored: asyncio.Future[None] | None = None  # started by start_storing()
    writes: PendingWrites | None = None  # where its store is tracked (ChatService.requests_stored)
    user_id: str = ""

    async def events(self) -> AsyncGenerator[ReplyEvent, None]:
        """The reply's events. On cancellation (client gone, stop) the partial reply is kept."""
        assert self.stream is not None, "a reply's events are read once it has started"
        self.events_read = True
        state = self.state
        try:
            outcome: ReplyStatus = "cancelled"
            try:
                yield StartEvent(id=self.conversation_id, message_id=self.message_id, model=self.model.id)
                if self.omitted:
                    yield TrimmedEvent(omitted_messages=self.omitted)
                for piece, arrived in self.early:
                    if event := state.event(piece, arrived):
                        yield event
                # Runs once these lines are written: the response writes them when this waits.
                self.start_storing()
                turn_began = last = time.monotonic()
                async for piece in self.stream:
                    now = time.monotonic()
                    if now - last > TURN_S:
                        # A gap: this reply waited for the piece, and the other requests ran meanwhile.
                        turn_began = now
                    last = now
                    if event := state.event(piece, now):
                        yield event
                    if now > self.deadline and state.usage is None:
                        state.finish_reason = "length"  # a runaway reply: end it as if max_tokens was hit
                        break
                    if now - turn_began > TURN_S:
                        # Pieces already received are read and sent without waiting (a fast remote
                        # engine): let the other requests (a new one's first token) run before going on.
                        await anyio.lowlevel.checkpoint()
                        turn_began = last = time.monotonic()
                outcome = "complete"
            except Exception as error:  # in-band: the stream has begun
                outcome = "error"
                crashed = await self.lost_engine()
                if crashed:
                    log.error("The local engine for %s died while streaming", self.model.id)
                else:
                    log.exception("Model %s failed while streaming", self.model.id)
                yield await self._failed(state, error, crashed)
                return
            finally:
                if outcome == "cancelled":
                    # Client gone or stop pressed: stop the model and keep what was generated.
                    with anyio.CancelScope(shield=True):
                        await self.places.aclose()
                        await self.finish(state, "cancelled")
            with anyio.CancelScope(shield=True):  # a client leaving now must not lose the finished reply
                await self.places.aclose()  # frees the engine slot before the database write
                title, numbers = await self.finish(state, "complete")
            if title:
                yield TitleEvent(title=title)
            # `end` is the stream's last event (clients may close on it): the summary title is
            # only stored, in the background; the web app reads it back from the conversation.
            yield self._end_event(state, numbers)
        finally:
            with anyio.CancelScope(shield=True):
                await self.places.aclose()

    async def abandon(self) -> None:
        """Called when the response is over. If its events were never read (the client left while
        the model was starting, and the response was cancelled before its first line), stop the
        model, give back the user's and the engine's places, and keep what arrived as cancelled."""
        if self.events_read:
            return  # events() kept the reply and gave the places back
        self.events_read = True
        with anyio.CancelScope(shield=True):
            await self.places.aclose()
            state = ReplyState()
            for chunk, arrived in self.early:
                state.absorb(chunk, arrived)
            await self.finish(state, "cancelled")

    def stopped_end_event(self) -> EndEvent:
        """The `end` of a reply whose events were cancelled (stopped): events() stored it as
        cancelled but sends no `end`, its client being gone; a resumable reply's readers get this."""
        end = self._end_event(self.state, ReplyNumbers.of(self, self.state))
        return end.model_copy(update={"finish_reason": "cancelled"})

    async def _failed(self, state: ReplyState, error: Exception, crashed: bool) -> ErrorEvent:
        """Store a reply that failed while streaming; returns the event that says so."""
        await self.finish(state, "error", error="engine_crashed" if crashed else str(error))
        if crashed:
            return ErrorEvent(
                code="engine_crashed",
                message="The local engine stopped while replying and is restarting. Your message is saved; "
                "press Retry in a few seconds.",
            )
        if isinstance(error, StreamInterruptedError):  # a remote server that hung or went away
            return ErrorEvent(code=error.code, message=f"{error} Your message is saved; press Retry.")
        return ErrorEvent(
            code="model_failed",
            message=f"The model stopped with an error: {sentence(error)} Your message is saved; press Retry.",
        )

    async def lost_engine(self) -> bool:
        """Whether the local engine's process ended under this reply (its supervisor notices within moments)."""
        if self.engine is None:
            return False
        for _ in range(20):
            if self.engine.lifetime != self.engine_lifetime:
                return True
            await anyio.sleep(0.05)
        return False

    async def access_was_checked(self) -> None:
        """Wait for the check that the request may be stored; ApiError (404, 401) when it may not."""
        await self._refused_as_status(self.access_checked)

    def start_storing(self) -> asyncio.Future[None]:
        """Store the request's messages and the generating reply, once its access is checked (once,
        in a thread)."""
        if self.user_messages_stored is None:
            self.user_messages_stored = asyncio.ensure_future(self._store_user_messages())
            if self.writes is not None:
                self.writes.track(self.user_id, self.user_messages_stored)
        return self.user_messages_stored

    async def _store_user_messages(self) -> None:
        await self.access_checked
        await anyio.to_thread.run_sync(self.store_user_messages)

    async def user_messages_were_stored(self) -> None:
        """Store the request's messages unless done or under way, and wait for them; ApiError when
        they could not be (someone else's conversation, a gone account)."""
        await self._refused_as_status(self.start_storing())

    async def _refused_as_status(self, storing: Awaitable[None]) -> None:
        with refused_as_status(self.conversation_id):
            await storing

    async def finish(
        self, state: ReplyState, status: ReplyStatus, error: str | None = None
    ) -> tuple[str | None, ReplyNumbers]:
        """Record metrics and store the reply; returns the new title (if any) and the reply's numbers.
        A new title is the first message cut short; its summary is then written in the background."""
        self.ended = True
        self.live.remove(self.message_id)  # its final row replaces the generating one
        numbers = ReplyNumbers.of(self, state)
        try:
            await self.user_messages_were_stored()
        except Exception:  # noqa: BLE001 - someone else's conversation, a gone account, a database error
            return None, numbers  # the reply cannot be stored without the request
        finish = finish_reason(status, state) if status != "error" else None
        CHAT_REPLIES.labels(self.model.id, finish or "error").inc()
        if state.first_token_at is not None:
            TIME_TO_FIRST_TOKEN.labels(self.model.id).observe(state.first_token_at - self.started)
        if status == "complete" and numbers.tokens_per_second:
            TOKENS_PER_SECOND.labels(self.model.id).observe(numbers.tokens_per_second)
        record = crud.ReplyRecord(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            position=self.position,
            content="".join(state.parts),
            status=status,
            model=self.model.id,
            finish_reason=finish,
            error=error,
            prompt_tokens=numbers.prompt_tokens,
            completion_tokens=numbers.completion_tokens,
            ttft_ms=numbers.ttft_ms,
            tokens_per_second=numbers.tokens_per_second or None,
            omitted_messages=self.omitted,
        )

        def store() -> str | None:
            with self.sessions() as session:
                return crud.store_reply(session, record)

        try:
            title = await anyio.to_thread.run_sync(store)
        except Exception:  # the database went down meanwhile: the stream still ends as it should
            # Its generating row, with the text saved so far, is marked interrupted once its lease lapses.
            log.exception("Could not store the reply %s of conversation %s", self.message_id, self.conversation_id)
            return None, numbers
        if title and status != "error" and self.titles is not None and self.chat_model is not None:
            question = next((m.text for m in self.messages if isinstance(m, HumanMessage)), "")
            self.titles.start(self.conversation_id, title, self.model, self.chat_model, question, record.content)
        return title, numbers

    async def discard(self) -> None:
        """A reply that never began and will not (its request failed, or its client left, before the
        model's first token): keep the user's messages, remove its generating row. A row left
        behind, say when the database is down, is marked interrupted once its lease lapses."""
        self.live.remove(self.message_id)
        if self.ended:
            return

        def delete() -> None:
            with self.sessions() as session:
                crud.discard_pending_reply(session, self.message_id)

        try:
            await self.user_messages_were_stored()
            await anyio.to_thread.run_sync(delete)
        except Exception:  # noqa: BLE001 - nothing was stored, or the database is down (see above)
            return

    def _end_event(self, state: ReplyState, numbers: ReplyNumbers) -> EndEvent:
        # An empty reply has no first token: report the time until the model finished.
        ttft = numbers.ttft_ms if numbers.ttft_ms is not None else round((time.monotonic() - self.started) * 1000, 1)
        return EndEvent(
            message_id=self.message_id,
            finish_reason=finish_reason("complete", state),
            usage=Usage(
                prompt_tokens=numbers.prompt_tokens,
                completion_tokens=numbers.completion_tokens,
                cached_prompt_tokens=numbers.cached_prompt_tokens,
            ),
            timings=Timings(ttft_ms=ttft, tokens_per_second=numbers.tokens_per_second),
        )


class ChatService:
    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        sessions: sessionmaker[Session],
        loop_reader: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.sessions = sessions
        self.loop_reader = loop_reader  # app/core/db.py make_event_loop_reader
        self.user_generations = user_generations(settings)  # shared through Redis when REDIS_URL is set
        self.background = BackgroundTasks()
        self.live = LiveReplies(sessions, settings.reply_save_interval_s, settings.reply_lease_s)
        self._saving: asyncio.Task[None] | None = None
        self.titles = SummaryTitles(registry, sessions, self.background) if settings.generate_titles else None
        self.writes = PendingWrites()

    async def requests_stored(self, user_id: str) -> None:
        """Wait (REQUESTS_STORED_WAIT_S at most) until the user's chat requests being stored are:
        the web app reads its list as a reply starts, just before its request is stored."""
        await self.writes.wait(user_id, REQUESTS_STORED_WAIT_S)

    async def start(self) -> None:
        """At app start-up (after the migrations): mark interrupted the replies of a process that
        was killed, then save the replies being generated every interval (app/services/live_replies.py)."""
        self.live.mark_interrupted()  # one UPDATE, run as the migrations are (start-up waits for both)
        self._saving = asyncio.get_running_loop().create_task(self.live.run())

    async def aclose(self) -> None:
        """At app shutdown: cancel the background work (summary titles) still running."""
        if self._saving is not None:
            self._saving.cancel()
            await asyncio.gather(self._saving, return_exceptions=True)
        await self.background.aclose()
        await self.user_generations.aclose()

    async def reply(self, request: ChatRequest, user_id: str, started: float) -> Reply:
        """Check the request, start the model and wait for its first token (or a long prompt's
        first progress), so that whatever fails until then is an ApiError (an HTTP status). The
        request is stored once the reply's first lines are out (Reply.start_storing). `started`
        is when the request arrived (time.monotonic()), for the reply's timings and time limit."""
        reply = await self._prepare(request, user_id, started)
        self.live.add(reply.message_id, reply.state)  # its lease is renewed from now on, until it ends
        # A model slow to start (loading, a long prompt, a remote server): the request is stored meanwhile.
        store_soon = asyncio.get_running_loop().call_later(STORE_AFTER_S, reply.start_storing)
        try:
            try:
                await self._start(reply, user_id)
            except ApiError:
                await reply.user_messages_were_stored()  # a 404 or 401 wins over the model's error
                raise
            try:
                await reply.access_was_checked()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await reply.places.aclose()  # stops the model
                raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await reply.discard()  # unless it was stored as failed
            raise
        finally:
            store_soon.cancel()
        return reply

    async def _prepare(self, request: ChatRequest, user_id: str, started: float) -> Reply:
        check_size(request, self.settings)
        data = request.data
        model = await self.registry.get(data.model)
        if model is None:
            if data.model and (problem := self.registry.model_problems.get(data.model)):
                raise ApiError(
                    500, "model_unavailable", f"The model {data.model} cannot be used: {problem}. Pick another model."
                )
            if data.model:
                raise ApiError(400, "unknown_model", f"Unknown model '{data.model}'. GET /api/v1/models lists them.")
            raise ApiError(
                500,
                "no_model",
                "No model is available. Run `make setup` to assemble the bundled models, "
                "or configure TOGETHER_API_KEY or OPENAI_COMPATIBLE_BASE_URL.",
            )
        window = self.registry.context_window(model)
        allowed = max_tokens_range(window, self.settings.default_max_tokens)
        if data.max_tokens is not None and data.max_tokens > allowed.max:
            raise ApiError(
                400,
                "option_out_of_range",
                f"Option 'data.max_tokens' must be between {allowed.min} and {allowed.max} for {model.name} "
                f"(its context window is {window} tokens); got {data.max_tokens}.",
            )
        max_tokens = int(data.max_tokens or allowed.default)
        settings = {
            "model": model.id,
            "prompt": data.prompt,
            "temperature": data.temperature,
            "top_p": data.top_p,
            "max_tokens": data.max_tokens,
        }
        messages: list[BaseMessage] = []
        if data.prompt:
            messages.append(SystemMessage(data.prompt))
        messages += [MESSAGE_CLASSES[m.role](m.content) for m in request.messages]
        budget = window - max_tokens

        async def count(batch: list[BaseMessage]) -> int:
            return await self.registry.count_tokens(model, batch)

        async def count_each(batch: list[BaseMessage]) -> list[int]:
            return await self.registry.count_message_tokens(model, batch)

        bound = self.registry.prompt_tokens_bound(model, messages)
        try:
            if bound is not None and bound <= budget:
                # It surely fits: no exact count (two HTTP calls to a local engine before the first token).
                kept, omitted, prompt_tokens = messages, 0, bound
            else:
                kept, omitted, prompt_tokens = await trim_history(messages, budget, count, count_each)
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
        # The reply is stored with the request, as generating: a process killed mid-reply leaves it.
        pending = crud.PendingReply(uuid.uuid4().hex, model.id, self.live.lease_expires_at())

        def check_access(engine: Engine) -> None:
            with engine.connect() as connection:
                crud.check_chat_access(connection, user_id, request.id)

        def store_user_messages() -> None:
            with self.sessions() as session:
                crud.sync_conversation(session, user_id, request.id, incoming, settings, pending)

        access_checked = asyncio.get_running_loop().create_future()
        if self.loop_reader is not None:  # refused here, before the model starts
            with refused_as_status(request.id):
                check_access(self.loop_reader)
            access_checked.set_result(None)
        else:  # checked in a thread while the model starts (ChatService.reply)
            access_checked = asyncio.ensure_future(anyio.to_thread.run_sync(check_access, self.sessions.kw["bind"]))

        options = ChatOptions(
            temperature=data.temperature if data.temperature is not None else TEMPERATURE.default,
            top_p=data.top_p if data.top_p is not None else TOP_P.default,
            max_tokens=max_tokens,
            # prompt_tokens is at least the prompt's length, and a shorter prompt shows no progress.
            prompt_progress=prompt_tokens > LONG_PROMPT_TOKENS,
        )
        return Reply(
            conversation_id=request.id,
            message_id=pending.message_id,
            position=len(incoming),
            access_checked=access_checked,
            store_user_messages=store_user_messages,
            model=model,
            messages=kept,
            omitted=omitted,
            prompt_tokens_estimate=prompt_tokens,
            options=options,
            started=started,
            deadline=started + self.settings.max_generation_s,
            sessions=self.sessions,
            live=self.live,
            titles=self.titles,
            writes=self.writes,
            user_id=user_id,
        )

    async def _start(self, reply: Reply, user_id: str, retry: bool = True) -> None:
        """Take the user's and the engine's places, start the model and wait for its first token.
        A local engine found dead before the first token is waited for and asked again, once (it
        died a moment ago, before its supervisor noticed: the request goes to its restart)."""
        places = reply.places
        try:
            await places.enter_async_context(self.user_generations.hold(user_id))
            reply.engine = await places.enter_async_context(self.registry.reserve(reply.model))
            reply.engine_lifetime = reply.engine.lifetime if reply.engine else 0
            reply.chat_model = self.registry.chat_model(reply.model, reply.options)
            reply.stream = stream_reply(reply.chat_model, reply.messages)
            places.push_async_callback(reply.stream.aclose)
            # Servers may open with empty role chunks; wait for text, the end, or a long prompt's progress.
            while not reply.early or not begins_response(reply.early[-1][0]):
                chunk = await anext(reply.stream, None)
                if chunk is None:
                    break
                reply.early.append((chunk, time.monotonic()))
        except ApiError:
            await places.aclose()
            raise
        except EngineBusyError as error:
            await places.aclose()
            raise ApiError(
                429,
                "model_busy",
                f"{reply.model.name} is busy with other requests and its queue is full; "
                f"retry in {error.retry_after} s.",
                headers={"Retry-After": str(error.retry_after)},
            ) from error
        except EngineUnavailableError as error:
            await places.aclose()
            await reply.finish(ReplyState(), "error", error=str(error))
            raise engine_unavailable(error) from error
        except Exception as error:
            await places.aclose()
            if await reply.lost_engine():
                if retry and not reply.early:
                    log.warning("The local engine for %s had stopped; asking its restart", reply.model.id)
                    reply.places, reply.stream = AsyncExitStack(), None
                    return await self._start(reply, user_id, retry=False)
                log.error("The local engine for %s died before the first token", reply.model.id)
                await reply.finish(ReplyState(), "error", error="engine_crashed")
                raise ApiError(
                    503,
                    "engine_restarting",
                    f"The local engine for {reply.model.name} stopped and is restarting; your message is saved. "
                    "Retry in a few seconds.",
                    headers={"Retry-After": "5"},
                ) from error
            log.exception("Model %s failed before the first token", reply.model.id)
            await reply.finish(ReplyState(), "error", error=str(error))
            raise ApiError(
                500,
                "model_failed",
                f"The model {reply.model.id} failed before replying: {sentence(error)} "
                "Try again, or pick another model.",
            ) from error
