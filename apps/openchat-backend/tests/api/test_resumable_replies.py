"""Resumable replies (data.resumable): the reply goes on when its client leaves, GET
/conversations/{id}/stream replays and follows it, POST /conversations/{id}/stop stops it. The
app runs behind a real uvicorn on loopback (real disconnects, real streaming), with the
scripted chat model paused at a token until the test lets it go on: nothing depends on timing."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app import crud
from app.core.config import Settings
from app.main import create_app
from tests.conftest import ClientLeavingAfterTokens, chat_scope, serving, signup
from tests.fakes import FakeRegistry

TOKENS = [f" w{i}" for i in range(12)]
FULL_TEXT = "".join(TOKENS)
PAUSE_AT = 3  # the model streams this many tokens, then waits for the test


def body(conversation: str, resumable: bool = True) -> dict[str, Any]:
    return {
        "id": conversation,
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "data": {"resumable": resumable},
    }


class Paused:
    """The scripted model's script: it stops before token PAUSE_AT until `go_on()`."""

    def __init__(self) -> None:
        self.paused = asyncio.Event()
        self.gate = asyncio.Event()

    def script(self) -> dict[str, Any]:
        return {"tokens": TOKENS, "pause_at": PAUSE_AT, "paused": self.paused, "gate": self.gate}

    def go_on(self) -> None:
        self.gate.set()


@pytest.fixture
def build(make_settings: Callable[..., Settings]) -> Callable[..., tuple[Any, FakeRegistry, Paused]]:
    def make(**settings: Any) -> tuple[Any, FakeRegistry, Paused]:
        paused = Paused()
        config = make_settings(**settings)
        registry = FakeRegistry(config, **paused.script())
        return create_app(config, registry=registry), registry, paused

    return make


@pytest.fixture
async def served(build: Callable[..., tuple[Any, FakeRegistry, Paused]]) -> AsyncIterator[Callable[..., Any]]:
    """Serves an app (uvicorn, loopback): start(**settings) -> (client, registry, paused)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**settings: Any) -> tuple[httpx.AsyncClient, FakeRegistry, Paused]:
            app, registry, paused = build(**settings)
            url = await stack.enter_async_context(serving(app))
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            return client, registry, paused

        yield start


async def read_until_tokens(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """The events read until `count` tokens have come."""
    read: list[dict[str, Any]] = []
    while sum(e["type"] == "token" for e in read) < count:
        read.append(json.loads(await anext(lines)))
    return read


async def read_to_end(lines: AsyncIterator[str]) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in lines if line]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "token")


async def stored_reply(client: httpx.AsyncClient, conversation: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/conversations/{conversation}", **kwargs)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()["messages"][-1]
    assert reply["role"] == "ai"
    return reply


async def listed(client: httpx.AsyncClient, conversation: str, **kwargs: Any) -> dict[str, Any]:
    page = (await client.get("/api/v1/conversations", **kwargs)).json()["conversations"]
    found: dict[str, Any] = next(c for c in page if c["id"] == conversation)
    return found


async def until_stored(client: httpx.AsyncClient, conversation: str) -> dict[str, Any]:
    """The reply once it is no longer `generating` (waits for the task that generates it)."""
    for _ in range(1000):
        reply = await stored_reply(client, conversation)
        if reply["status"] != "generating":
            return reply
        await asyncio.sleep(0.02)
    raise AssertionError("the reply is still generating")


async def test_a_resumable_reply_goes_on_after_its_client_leaves_and_is_stored_complete(
    build: Callable[..., tuple[Any, FakeRegistry, Paused]],
) -> None:
    # Driven at the ASGI level, as test_chat's client-leaves tests are: the app call returns once
    # the response is over, so the client is surely gone before the model goes on.
    app, registry, paused = build()
    request = json.dumps(body("left")).encode()
    tab = ClientLeavingAfterTokens([request])  # the tab is refreshed after the second token

    async with LifespanManager(app) as manager:
        await manager.app(chat_scope(request), tab.receive, tab.send)
        received = tab.events()
        assert received[-1]["type"] == "token"  # the response ended without `end`: its client left

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            reply = await stored_reply(client, "left")
            assert reply["status"] == "generating"  # still going with no client
            paused.go_on()
            reply = await until_stored(client, "left")
            assert (reply["status"], reply["finish_reason"], reply["content"]) == ("complete", "stop", FULL_TEXT)
    assert registry.last_model is not None and registry.last_model.produced == len(TOKENS)


async def test_stream_replays_from_the_first_token_then_follows_live_and_two_readers_get_the_same_lines(
    served: Any,
) -> None:
    client, _, paused = await served()
    async with (
        client.stream("POST", "/api/v1/chat", json=body("c1")) as chat,
        client.stream("GET", "/api/v1/conversations/c1/stream") as first,
        client.stream("GET", "/api/v1/conversations/c1/stream") as second,
    ):
        assert chat.status_code == first.status_code == second.status_code == 200
        assert first.headers["content-type"].startswith("application/x-ndjson")
        readers = [chat.aiter_lines(), first.aiter_lines(), second.aiter_lines()]
        # Attached mid-reply (the model waits after PAUSE_AT tokens): the text so far is replayed.
        so_far = [await read_until_tokens(lines, PAUSE_AT) for lines in readers]
        assert so_far[1] == so_far[0] == so_far[2]
        assert so_far[0][0]["type"] == "start" and text_of(so_far[0]) == "".join(TOKENS[:PAUSE_AT])
        paused.go_on()  # the rest comes live
        rest = [await read_to_end(lines) for lines in readers]
    assert rest[1] == rest[0] == rest[2]
    assert rest[0][-1]["type"] == "end" and rest[0][-1]["finish_reason"] == "stop"
    assert text_of(so_far[1] + rest[1]) == FULL_TEXT
    reply = await stored_reply(client, "c1")
    assert (reply["status"], reply["content"]) == ("complete", FULL_TEXT)
    assert rest[0][-1]["message_id"] == reply["id"]
    # Once it has ended, there is nothing to follow.
    assert (await client.get("/api/v1/conversations/c1/stream")).status_code == 204


async def test_stream_is_204_when_nothing_generates_and_404_for_an_unknown_conversation(served: Any) -> None:
    client, _, paused = await served()
    paused.go_on()
    assert (await client.post("/api/v1/chat", json=body("done"))).status_code == 200
    response = await client.get("/api/v1/conversations/done/stream")
    assert response.status_code == 204 and response.content == b""
    missing = await client.get("/api/v1/conversations/nope/stream")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await client.post("/api/v1/conversations/done/stop")).status_code == 204  # nothing to stop
    assert (await stored_reply(client, "done"))["status"] == "complete"


async def test_stop_ends_the_stream_as_cancelled_stores_the_text_so_far_and_stops_the_model(served: Any) -> None:
    client, registry, _ = await served()  # the model is never let go on: only a stop ends it
    async with (
        client.stream("POST", "/api/v1/chat", json=body("s1")) as chat,
        client.stream("GET", "/api/v1/conversations/s1/stream") as follower,
    ):
        chat_lines, follower_lines = chat.aiter_lines(), follower.aiter_lines()
        before = await read_until_tokens(chat_lines, PAUSE_AT)
        await read_until_tokens(follower_lines, PAUSE_AT)

        stopped = await client.post("/api/v1/conversations/s1/stop")
        assert stopped.status_code == 204
        # Answered once the reply is stored: it reads back cancelled with its text so far.
        reply = await stored_reply(client, "s1")
        assert (reply["status"], reply["finish_reason"]) == ("cancelled", "cancelled")
        assert reply["content"] == "".join(TOKENS[:PAUSE_AT])

        for lines in (chat_lines, follower_lines):
            end = await read_to_end(lines)
            assert [e["type"] for e in end] == ["end"]
            assert end[0]["finish_reason"] == "cancelled" and end[0]["message_id"] == reply["id"]
    assert text_of(before) == reply["content"]
    model = registry.last_model
    assert model is not None and model.closed and model.produced == PAUSE_AT  # the model stopped there
    assert not (await listed(client, "s1"))["generating"]


async def test_a_stop_while_the_reply_starts_stops_it_at_its_first_token(served: Any) -> None:
    client, registry, paused = await served()
    registry.script["pause_at"] = 0  # the model starts, and waits before its first token
    chat = asyncio.create_task(client.post("/api/v1/chat", json=body("early")))
    await paused.paused.wait()
    while (await client.get("/api/v1/conversations/early")).status_code != 200:  # the request is stored
        await asyncio.sleep(0.02)
    # Nothing can stop the model before its first token: the stop is kept, and waits (a few seconds).
    assert (await client.post("/api/v1/conversations/early/stop")).status_code == 204
    paused.go_on()
    lines = [json.loads(line) for line in (await chat).text.splitlines()]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "end"
    assert lines[-1]["finish_reason"] == "cancelled"
    reply = await stored_reply(client, "early")
    assert (reply["status"], reply["content"]) == ("cancelled", text_of(lines))
    model = registry.last_model
    assert model is not None and model.closed and model.produced < len(TOKENS)


async def test_without_resumable_a_client_that_leaves_still_stops_the_reply(
    build: Callable[..., tuple[Any, FakeRegistry, Paused]],
) -> None:
    app, registry, paused = build()
    request = json.dumps(body("plain", resumable=False)).encode()
    pending = [{"type": "http.request", "body": request, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await paused.paused.wait()  # the model has streamed PAUSE_AT tokens
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    async with LifespanManager(app) as manager:
        await manager.app(chat_scope(request), receive, send)
        paused.go_on()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            reply = await stored_reply(client, "plain")
    assert (reply["status"], reply["content"]) == ("cancelled", "".join(TOKENS[:PAUSE_AT]))
    assert registry.last_model is not None and registry.last_model.produced == PAUSE_AT


async def test_another_user_gets_404_on_stream_and_stop_and_the_reply_goes_on(served: Any) -> None:
    client, _, paused = await served(auth_mode="required")
    alice, mallory = await signup(client), await signup(client)
    async with client.stream("POST", "/api/v1/chat", json=body("mine"), headers=alice) as chat:
        lines = chat.aiter_lines()
        await read_until_tokens(lines, PAUSE_AT)
        for method, path in (("GET", "stream"), ("POST", "stop")):
            refused = await client.request(method, f"/api/v1/conversations/mine/{path}", headers=mallory)
            assert refused.status_code == 404 and refused.json()["code"] == "not_found"
        paused.go_on()
        assert (await read_to_end(lines))[-1]["finish_reason"] == "stop"
    reply = await stored_reply(client, "mine", headers=alice)
    assert (reply["status"], reply["content"]) == ("complete", FULL_TEXT)


async def test_the_list_shows_generating_while_the_reply_is_generated(served: Any) -> None:
    client, _, paused = await served()
    async with client.stream("POST", "/api/v1/chat", json=body("g1")) as chat:
        lines = chat.aiter_lines()
        await read_until_tokens(lines, PAUSE_AT)
        assert (await listed(client, "g1"))["generating"] is True
        assert (await client.get("/api/v1/conversations/g1")).json()["generating"] is True
        paused.go_on()
        await read_to_end(lines)
    assert (await listed(client, "g1"))["generating"] is False
    assert (await client.get("/api/v1/conversations/g1")).json()["generating"] is False


@pytest.fixture
def slow_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that takes 0.3 s to store a chat's request (which a chat does just after its first lines)."""
    sync_conversation = crud.sync_conversation

    def slowly(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return sync_conversation(*args, **kwargs)

    monkeypatch.setattr(crud, "sync_conversation", slowly)


@contextlib.asynccontextmanager
async def started_chat(client: httpx.AsyncClient, conversation: str) -> AsyncIterator[AsyncIterator[str]]:
    """A chat's response lines, once its `start` line has been read."""
    async with client.stream("POST", "/api/v1/chat", json=body(conversation)) as chat:
        lines = chat.aiter_lines()
        assert json.loads(await anext(lines))["type"] == "start"
        yield lines


@pytest.mark.usefixtures("slow_store")
async def test_a_reply_is_listed_found_and_followed_as_soon_as_it_starts(served: Any) -> None:
    # The web app reads its list on `start`: reads of conversations wait for the request's write.
    client, _, paused = await served()
    async with started_chat(client, "s1") as lines:
        assert (await listed(client, "s1"))["generating"] is True
        found = (await client.get("/api/v1/conversations/s1")).json()
        assert [m["role"] for m in found["messages"]] == ["user", "ai"] and found["generating"] is True
        async with client.stream("GET", "/api/v1/conversations/s1/stream") as follower:
            assert follower.status_code == 200
            paused.go_on()
            assert (await read_to_end(follower.aiter_lines()))[-1]["finish_reason"] == "stop"
        await read_to_end(lines)


@pytest.mark.usefixtures("slow_store")
async def test_a_stop_pressed_as_the_reply_starts_stops_it(served: Any) -> None:
    client, registry, _ = await served()
    async with started_chat(client, "s2") as lines:
        assert (await client.post("/api/v1/conversations/s2/stop")).status_code == 204
        assert (await read_to_end(lines))[-1]["finish_reason"] == "cancelled"
    reply = await stored_reply(client, "s2")
    assert reply["status"] == "cancelled"
    model = registry.last_model
    assert model is not None and model.closed and model.produced < len(TOKENS)


async def test_resumable_must_be_a_boolean(served: Any) -> None:
    client, _, _ = await served()
    response = await client.post("/api/v1/chat", json={**body("b"), "data": {"resumable": "yes"}})
    assert response.status_code == 400


async def test_a_follower_on_another_replica_ends_with_reply_lost_when_the_generating_replica_is_gone(
    served: Any, redis_url: str
) -> None:
    # Two replicas in this process, sharing the database and Redis. A replica that dies stops
    # renewing its reply's live key, which then lapses: here it is removed as if it had.
    import redis

    from app.services.reply_relay import live_key

    replica_a, _, _ = await served(redis_url=redis_url)
    replica_b, _, _ = await served(redis_url=redis_url)
    conversation = f"lost-{uuid.uuid4().hex[:8]}"
    async with (
        replica_a.stream("POST", "/api/v1/chat", json=body(conversation)) as chat,
        replica_b.stream("GET", f"/api/v1/conversations/{conversation}/stream") as follower,
    ):
        assert follower.status_code == 200
        lines = follower.aiter_lines()
        assert text_of(await read_until_tokens(lines, PAUSE_AT)) == text_of(
            await read_until_tokens(chat.aiter_lines(), PAUSE_AT)
        )
        redis.Redis.from_url(redis_url).delete(live_key(conversation))
        rest = await read_to_end(lines)
    assert [e["type"] for e in rest] == ["error"] and rest[0]["code"] == "reply_lost"
