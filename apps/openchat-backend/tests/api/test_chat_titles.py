"""Summary titles: written by the model after a conversation's first exchange, in the
background, after the reply's `end`, which stays the stream's last event (scripted model; its
summary is `ScriptedChatModel.title`)."""

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.services.chat import ChatService
from app.services.titles import SUMMARY_INSTRUCTIONS
from tests.conftest import chat_scope
from tests.fakes import FakeRegistry

QUESTION = "<script>alert('xss-user')</script> how do I reverse a list in python? I tried a for loop"
FALLBACK = "<script>alert('xss-user')</script> how do I reverse a list…"
SUMMARY = "Greeting the fake model"  # what the scripted model answers when asked for a title


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def first_message(conversation_id: str = "conv-1") -> dict[str, Any]:
    return {"id": conversation_id, "messages": [{"role": "user", "content": QUESTION}]}


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Callable[..., tuple[FastAPI, FakeRegistry]]:
    def build(**script: Any) -> tuple[FastAPI, FakeRegistry]:
        settings = make_settings(generate_titles=True)
        registry = FakeRegistry(settings, **script)
        return create_app(settings, registry=registry), registry

    return build


def service(app: FastAPI) -> ChatService:
    chat_service: ChatService = app.state.chat_service
    return chat_service


async def background_done(app: FastAPI) -> None:
    """Wait until the app's background work (summary titles) has ended."""
    with anyio.fail_after(10):
        while service(app).background.running:
            await anyio.sleep(0.01)


def client_of(manager: LifespanManager) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test")


async def stored_title(client: httpx.AsyncClient, conversation_id: str = "conv-1") -> str:
    title: str = (await client.get(f"/api/v1/conversations/{conversation_id}")).json()["title"]
    return title


def test_the_setting_is_on_by_default() -> None:
    assert Settings(_env_file=None).generate_titles  # type: ignore[call-arg]


async def test_the_summary_title_is_stored_after_the_stream_ends(make_app: Any) -> None:
    gate = anyio.Event()
    app, registry = make_app(title_gate=gate)
    async with LifespanManager(app) as manager, client_of(manager) as client:
        response = await client.post("/api/v1/chat", json=first_message())
        lines = events(response.text)
        kinds = [e["type"] for e in lines]
        # The first message cut short comes just before `end`, as before; `end` is the last event.
        assert kinds == ["start", "token", "token", "token", "token", "title", "end"]
        assert lines[5]["title"] == FALLBACK
        assert await stored_title(client) == FALLBACK  # while the model writes the summary
        gate.set()
        await background_done(app)
        assert await stored_title(client) == SUMMARY
        # Asked of the reply's own model, about the first exchange.
        model = registry.last_model
        assert model is not None and len(model.title_requests) == 1
        [system, exchange] = model.title_requests[0]
        assert system.text == SUMMARY_INSTRUCTIONS
        assert QUESTION in exchange.text and "Hello, world!" in exchange.text

        # Only the first exchange is named.
        follow_up = first_message()
        follow_up["messages"] += [{"role": "ai", "content": "Hello, world!"}, {"role": "user", "content": "More?"}]
        later = events((await client.post("/api/v1/chat", json=follow_up)).text)
        assert [e["type"] for e in later] == ["start", "token", "token", "token", "token", "end"]
        assert len(model.title_requests) == 1 and await stored_title(client) == SUMMARY


async def test_a_failing_summary_keeps_the_fallback_and_the_reply(make_app: Any) -> None:
    app, registry = make_app(title=RuntimeError("the engine fell over"))
    async with LifespanManager(app) as manager, client_of(manager) as client:
        response = await client.post("/api/v1/chat", json=first_message())
        assert response.status_code == 200
        lines = events(response.text)
        assert [e["type"] for e in lines] == ["start", "token", "token", "token", "token", "title", "end"]
        assert lines[-1]["finish_reason"] == "stop"
        assert registry.last_model is not None and len(registry.last_model.title_requests) == 1
        conversation = (await client.get("/api/v1/conversations/conv-1")).json()
        assert conversation["title"] == FALLBACK
        reply = conversation["messages"][-1]
        assert (reply["status"], reply["content"]) == ("complete", "Hello, world!")


@pytest.mark.parametrize("answer", ["", "I'm sorry, but I can't help with that."])
async def test_an_empty_or_unusable_summary_keeps_the_fallback(make_app: Any, answer: str) -> None:
    app, _registry = make_app(title=answer)
    async with LifespanManager(app) as manager, client_of(manager) as client:
        lines = events((await client.post("/api/v1/chat", json=first_message())).text)
        assert [e["type"] for e in lines][-2:] == ["title", "end"]
        assert await stored_title(client) == FALLBACK


async def test_a_rename_before_the_summary_wins(make_app: Any) -> None:
    gate = anyio.Event()
    app, _registry = make_app(title_gate=gate)
    async with LifespanManager(app) as manager, client_of(manager) as client:
        await client.post("/api/v1/chat", json=first_message())
        renamed = await client.patch("/api/v1/conversations/conv-1", json={"title": "Mine"})
        assert renamed.status_code == 200
        gate.set()
        await background_done(app)
        assert await stored_title(client) == "Mine"


async def test_the_summary_is_stored_when_the_client_left_after_end(make_app: Any) -> None:
    gate = anyio.Event()
    app, _registry = make_app(title_gate=gate)
    request = json.dumps(first_message()).encode()
    pending = [{"type": "http.request", "body": request, "more_body": False}]
    sent: list[bytes] = []
    ended = anyio.Event()

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await ended.wait()
        return {"type": "http.disconnect"}  # the tab closed right after the reply ended

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))
            if b'"type":"end"' in b"".join(sent):
                ended.set()

    scope = chat_scope(request)
    async with LifespanManager(app) as manager, client_of(manager) as client:
        await manager.app(scope, receive, send)  # returns once the response has given up on the client
        streamed = events(b"".join(sent).decode())
        assert [e["type"] for e in streamed][-2:] == ["title", "end"]
        assert service(app).background.running == 1  # still waiting for the model
        gate.set()
        await background_done(app)
        assert await stored_title(client) == SUMMARY


async def test_app_shutdown_cancels_a_summary_being_written(make_app: Any) -> None:
    app, registry = make_app(title_gate=anyio.Event())  # never set: the model never answers
    async with LifespanManager(app) as manager, client_of(manager) as client:
        await client.post("/api/v1/chat", json=first_message())
        assert service(app).background.running == 1
    assert service(app).background.running == 0  # cancelled, since the model never answered
    assert registry.last_model is not None and len(registry.last_model.title_requests) == 1


async def test_no_summary_when_generation_is_off(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(generate_titles=False)
    registry = FakeRegistry(settings)
    client = await make_client(settings, registry)
    lines = events((await client.post("/api/v1/chat", json=first_message())).text)
    assert [e["type"] for e in lines][-2:] == ["title", "end"]
    assert registry.last_model is not None and registry.last_model.title_requests == []
    assert await stored_title(client) == FALLBACK
