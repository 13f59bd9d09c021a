"""An OpenAI-compatible server that dies or hangs in the middle of a reply (the real LangChain
chat model in front of the fake engine of benchmarks/fake_engine.py, over real HTTP): the
client gets an error event, the partial reply is kept, and the next request works."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from benchmarks.fake_engine import make_app
from tests.api.conftest import FAKE_MODEL_ID, fake_reply
from tests.conftest import serving

TOKENS = 10
HALF_TEXT = fake_reply(TOKENS // 2)
FULL_TEXT = fake_reply(TOKENS)


class Fault:
    """What the fake engine does halfway through its next reply: nothing, die (the connection
    drops without the end of the stream) or hang (it stops sending, until the test ends)."""

    def __init__(self) -> None:
        self.next: str | None = None
        self.released = asyncio.Event()

    async def __call__(self) -> None:
        fault, self.next = self.next, None  # only one reply fails
        if fault == "die":
            raise ConnectionAbortedError("the engine died")
        if fault == "hang":
            await self.released.wait()


@pytest.fixture
async def engine() -> AsyncIterator[tuple[str, Fault]]:
    fault = Fault()
    async with serving(make_app(TOKENS, midway=fault)) as url:
        try:
            yield f"{url}/v1", fault
        finally:
            fault.released.set()


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def chat(conversation: str, *texts: str) -> dict[str, Any]:
    messages = []
    for index, text in enumerate(texts):
        messages.append({"role": "user" if index % 2 == 0 else "ai", "content": text})
    return {"id": conversation, "messages": messages, "data": {"model": FAKE_MODEL_ID}}


@pytest.mark.parametrize(
    ("fault", "code", "said"),
    [
        ("die", "upstream_disconnected", "closed the connection before the reply was finished"),
        ("hang", "upstream_timeout", "sent nothing for 1 s"),
    ],
)
async def test_a_server_that_dies_or_hangs_mid_reply_ends_it_with_an_error_and_the_next_works(
    make_settings: Any, make_client: Any, engine: tuple[str, Fault], fault: str, code: str, said: str
) -> None:
    url, faults = engine
    client = await make_client(make_settings(openai_compatible_base_url=url, upstream_timeout_s=1))
    faults.next = fault

    failed = events(await client.post("/api/v1/chat", json=chat("c1", "Hi")))
    assert [e["type"] for e in failed] == ["start", *["token"] * (TOKENS // 2), "error"]
    assert failed[-1]["code"] == code
    assert said in failed[-1]["message"] and "press Retry" in failed[-1]["message"]
    stored = (await client.get("/api/v1/conversations/c1")).json()["messages"]
    assert [(m["role"], m["status"], m["content"]) for m in stored] == [
        ("user", "complete", "Hi"),
        ("ai", "error", HALF_TEXT),
    ]

    # Retry: the same request again gets the whole reply.
    retried = events(await client.post("/api/v1/chat", json=chat("c1", "Hi")))
    assert retried[-1]["type"] == "end" and retried[-1]["finish_reason"] == "stop"
    assert "".join(e["content"] for e in retried if e["type"] == "token") == FULL_TEXT
    stored = (await client.get("/api/v1/conversations/c1")).json()["messages"]
    assert [(m["status"], m["content"]) for m in stored] == [("complete", "Hi"), ("complete", FULL_TEXT)]


async def test_a_remote_server_is_reached_through_the_proxy_the_environment_names(
    make_settings: Any, make_client: Any, engine: tuple[str, Fault], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a company proxy, HTTP_PROXY / HTTPS_PROXY is how a model server is reached. Here
    the proxy is the fake engine itself, and the server's own name resolves nowhere."""
    url, _ = engine
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url.removesuffix("/v1"))
    client = await make_client(make_settings(openai_compatible_base_url="http://model-server.invalid/v1"))

    replied = events(await client.post("/api/v1/chat", json=chat("c1", "Hi")))
    assert replied[-1]["type"] == "end" and replied[-1]["finish_reason"] == "stop"
    assert "".join(e["content"] for e in replied if e["type"] == "token") == FULL_TEXT


async def test_a_server_gone_before_the_chat_is_reported_as_unreachable_and_the_message_kept(
    make_settings: Any, make_client: Any
) -> None:
    async with serving(make_app(TOKENS)) as url:  # listed while it runs, then stopped
        client = await make_client(make_settings(openai_compatible_base_url=f"{url}/v1"))
        assert FAKE_MODEL_ID in [m["id"] for m in (await client.get("/api/v1/models")).json()["models"]]

    response = await client.post("/api/v1/chat", json=chat("c1", "Hi"))
    assert response.status_code == 500 and response.json()["code"] == "model_failed"
    assert "failed before replying: Connection error. Try again" in response.json()["detail"]
    stored = (await client.get("/api/v1/conversations/c1")).json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [("user", "Hi"), ("ai", "")]
