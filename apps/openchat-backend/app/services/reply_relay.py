"""Resumable replies across replicas, through Redis (REDIS_URL; app/services/reply_runs.py).

Writing: each run's lines are appended to the Redis stream `openchat:reply:<conversation id>` by
one writer task, which sends the new lines of every run in one transaction, a few milliseconds
apart: a reply never waits for Redis, and a slow Redis only delays the other replicas' readers.
While a run is live, `openchat:reply-live:<conversation id>` holds its message id with a short
expiry that the writer renews; a new run's first write replaces the stream of the previous one,
and its last line and the live key's removal go in one transaction. The stream expires a few
minutes after its last write.

Reading (GET /stream on a replica without the run): nothing live is 204; else the stream is read
from its first entry and followed (XREAD BLOCK) until its last line. If the live key lapses
first (the replica generating died), the reader gets an error line and the stream ends.

Stopping: POST /stop publishes the conversation id on `openchat:reply-stop`; every replica
listens and stops the run it has, and the sender waits until the live key is gone (the reply is
stored by then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

import anyio
import redis.asyncio
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from app.services.reply_runs import ReplyRun

log = logging.getLogger(__name__)

# Every event is encoded with its `type` first: the last line of a reply starts with one of these.
LAST_LINE_STARTS = (b'{"type":"end"', b'{"type":"error"')
STOP_CHANNEL = "openchat:reply-stop"
WRITE_INTERVAL_S = 0.005  # the writer's pause between two writes: lines are sent in batches
LIVE_TTL_S = 10  # a live run's key lapses this long after its replica stopped renewing it
RENEW_S = 2  # how often the writer renews the live keys when no line came
STREAM_TTL_S = 300  # a stream is kept this long after its last write, for readers still on it
FOLLOW_BLOCK_MS = 1000  # a reader checks the live key when nothing came for this long
POLL_S = 0.05  # how often a stop checks whether the stopped reply is stored
LOST_LINE = (
    b'{"type":"error","code":"reply_lost","message":"The server generating this reply stopped. '
    b'Its text so far is saved; press Retry."}\n'
)


def is_last_line(line: bytes) -> bool:
    return line.startswith(LAST_LINE_STARTS)


def stream_key(conversation_id: str) -> str:
    return f"openchat:reply:{conversation_id}"


def live_key(conversation_id: str) -> str:
    return f"openchat:reply-live:{conversation_id}"


class ReplyRelay:
    def __init__(self, url: str, stop_here: Callable[[str], Any]) -> None:
        self.redis = redis.asyncio.Redis.from_url(url)
        self.stop_here = stop_here  # stops a conversation's reply in this process
        self._written: dict[ReplyRun, int] = {}  # runs being relayed -> their lines written (-1: none yet)
        self._pending = asyncio.Event()  # a relayed run has changed
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False  # the last write failed (logged once)

    async def start(self) -> None:
        try:
            await self._pubsub.subscribe(STOP_CHANNEL)  # before the app serves: no stop is missed
        except RedisError:
            log.exception("Could not subscribe to reply stops in Redis; retrying in the background")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write()), loop.create_task(self._listen())]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with anyio.move_on_after(2):  # the last lines of the replies stopped at shutdown
            try:
                await self._flush()
            except RedisError:
                log.warning("Could not relay the last lines of the replies stopped at shutdown")
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()

    def relay(self, run: ReplyRun) -> None:
        self._written[run] = -1
        run.on_change = self._changed
        self._pending.set()

    def _changed(self, run: ReplyRun) -> None:
        self._pending.set()

    async def _write(self) -> None:
        while True:
            with anyio.move_on_after(RENEW_S):
                await self._pending.wait()
            self._pending.clear()
            try:
                await self._flush()
            except RedisError:
                if not self._failing:
                    log.exception("Could not relay replies to Redis; other replicas cannot follow them meanwhile")
                self._failing = True
                for run in [run for run in self._written if run.done]:
                    del self._written[run]  # given up: their readers elsewhere see the live key lapse
                await anyio.sleep(1)
                continue
            self._failing = False
            await anyio.sleep(WRITE_INTERVAL_S)

    async def _flush(self) -> None:
        if not self._written:
            return
        pipe = self.redis.pipeline(transaction=True)
        sent: dict[ReplyRun, tuple[int, bool]] = {}
        for run, written in self._written.items():
            stream, live = stream_key(run.conversation_id), live_key(run.conversation_id)
            if written < 0:
                pipe.delete(stream)  # the previous reply's lines
            done, total = run.done, len(run.lines)
            for line in run.lines[max(written, 0) : total]:
                pipe.xadd(stream, {"line": line})
            pipe.expire(stream, STREAM_TTL_S)
            if done:
                pipe.delete(live)
            else:
                pipe.set(live, run.message_id, ex=LIVE_TTL_S)
            sent[run] = (total, done)
        await pipe.execute()
        for run, (total, done) in sent.items():
            if done:
                del self._written[run]
            else:
                self._written[run] = total

    async def follow(self, conversation_id: str) -> AsyncGenerator[bytes, None] | None:
        """The lines of the conversation's reply live on another replica, from the first; None
        when none is live."""
        if not await self.redis.exists(live_key(conversation_id)):
            return None
        return self._follow(conversation_id)

    async def _follow(self, conversation_id: str) -> AsyncGenerator[bytes, None]:
        stream, live = stream_key(conversation_id), live_key(conversation_id)
        last_id: bytes | str = "0-0"
        checked = False  # the live key was found gone, and the stream read once more
        try:
            while True:
                # RESP2: [[stream, [(entry id, {b"line": line}), ...]]], or nothing
                found: Any = await self.redis.xread({stream: last_id}, block=None if checked else FOLLOW_BLOCK_MS)
                if found:
                    entries = found[0][1]
                    last_id = entries[-1][0]
                    lines = [fields[b"line"] for _, fields in entries]
                    yield b"".join(lines)
                    if is_last_line(lines[-1]):
                        return
                elif checked:
                    yield LOST_LINE
                    return
                elif not await self.redis.exists(live):
                    checked = True  # its last lines may have come with the key's removal: one more read
        except RedisError:
            log.exception("Lost Redis while following the reply of conversation %s", conversation_id)
            yield LOST_LINE

    async def stop(self, conversation_id: str) -> None:
        await self.redis.publish(STOP_CHANNEL, conversation_id)

    async def wait_stopped(self, conversation_id: str) -> None:
        """Until no reply of the conversation is live on any replica (it is stored by then)."""
        while await self.redis.exists(live_key(conversation_id)):  # noqa: ASYNC110 - state in Redis, not here
            await anyio.sleep(POLL_S)

    async def _listen(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(STOP_CHANNEL)
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        self.stop_here(message["data"].decode())
            except RedisError:
                log.warning("Lost the Redis subscription to reply stops; retrying", exc_info=True)
                await anyio.sleep(1)
