"""POST /api/v1/chat: stream a reply as NDJSON, one event per line (see app/services/chat.py)."""

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.api.deps import ChatServiceDep, CurrentUserId, RateLimitsDep
from app.schemas import STREAM_EVENT_REF, ChatRequest, ReplyEvent, error_responses, ndjson_line
from app.services.reply_runs import ReplyRuns

router = APIRouter(tags=["chat"])

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def get_reply_runs(request: Request) -> ReplyRuns:
    runs: ReplyRuns = request.app.state.reply_runs
    return runs


ReplyRunsDep = Annotated[ReplyRuns, Depends(get_reply_runs)]


async def reader_left() -> None:
    """A reader of a resumable reply leaving: the reply goes on (POST /stop stops it)."""


class EventStreamResponse(StreamingResponse):
    """A stream's events as NDJSON: each item of `lines` is a line already (bytes) or an event to
    encode (a reply's events, app/services/chat.py, whose tokens come as text).

    Each line is written as soon as it is produced, except in a burst. Lines produced without
    waiting (tokens already received, as from a fast engine under load) are held and written
    together when the stream lets the event loop run, which a reply does at least every TURN_S:
    one line per event still, but not one write (a system call) per line, which took a fifth of
    the server's time in a burst (docs/benchmarks.md).

    However the response ends, its lines are closed (which keeps a partial reply and stops the
    model) and then `on_close` runs: a response cancelled before reading its first line (the
    client left while the model was starting) would otherwise hold its places until the
    garbage collector, or forever."""

    def __init__(
        self, lines: AsyncGenerator[bytes | ReplyEvent, None], on_close: Callable[[], Awaitable[None]]
    ) -> None:
        # Not a body of bytes: stream_response reads self.lines and encodes what needs it.
        super().__init__(lines, media_type="application/x-ndjson", headers=STREAM_HEADERS)  # type: ignore[arg-type]
        self.lines = lines
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.lines.aclose()
                await self.on_close()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        loop = asyncio.get_running_loop()
        held: list[bytes] = []
        held_or_done = anyio.Event()
        finished = writing = waited = False

        def note_wait() -> None:  # runs only if the stream gave the event loop a turn
            nonlocal waited
            waited = True

        async def write(body: bytes) -> None:
            nonlocal writing
            writing = True
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            finally:
                writing = False

        async def produce() -> None:
            nonlocal waited, finished
            lines = aiter(self.lines)
            try:
                while True:
                    waited = False
                    marker = loop.call_soon(note_wait)
                    try:
                        item = await anext(lines)
                    except StopAsyncIteration:
                        return
                    finally:
                        marker.cancel()
                    line = item if isinstance(item, bytes) else ndjson_line(item)
                    if waited and not held and not writing:
                        await write(line)  # it came by itself: write it now
                    else:
                        held.append(line)
                        held_or_done.set()
            finally:
                finished = True
                held_or_done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(produce)
            while not finished or held:
                if not held:
                    await held_or_done.wait()
                    held_or_done = anyio.Event()
                    continue
                body = b"".join(held)
                held.clear()
                await write(body)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.post(
    "/chat",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": {"$ref": STREAM_EVENT_REF}}},
            "description": "One JSON event per line (a StreamEvent); clients ignore unknown types",
        },
        **error_responses(
            400,
            401,
            404,
            413,
            429,
            500,
            503,
            described={
                400: "Invalid request: not JSON, a field missing or of the wrong type, an unknown role or model, "
                "the last message not the user's, or an option out of range",
                404: "The conversation `id` is someone else's",
                429: "Model busy, too many replies of this user at once, or rate limited: wait `Retry-After` seconds",
                500: "The backend or the model failed before the first token",
                503: "The database or the local engine is unavailable or restarting; retry after `Retry-After`",
            },
        ),
    },
)
async def chat(
    body: ChatRequest, user_id: CurrentUserId, service: ChatServiceDep, limits: RateLimitsDep, runs: ReplyRunsDep
) -> StreamingResponse:
    """Stream a reply. With `data.resumable`, the reply goes on when the client leaves: this
    response is one of its readers, as GET /conversations/{id}/stream is (app/services/reply_runs.py)."""
    started = time.monotonic()
    if limits.blocking:
        await anyio.to_thread.run_sync(limits.check, "chat", f"user:{user_id}")
    else:
        limits.check("chat", f"user:{user_id}")
    if not body.data.resumable:
        reply = await service.reply(body, user_id, started)
        return EventStreamResponse(reply.events(), on_close=reply.abandon)
    with runs.starting(body.id) as starting:
        reply = await service.reply(body, user_id, started)  # failures until the first token are statuses
        run = runs.run(reply, starting)
    return EventStreamResponse(run.read(), on_close=reader_left)
