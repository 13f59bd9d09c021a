"""Many users streaming at once through the openai-compatible provider (the real LangChain chat
model) in front of a fake engine: nobody waits for the database while tokens stream."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from benchmarks.fake_engine import make_app
from tests.api.conftest import FAKE_MODEL_ID, fake_reply
from tests.conftest import serving

STREAMS = 64
TOKENS = 40
EXPECTED_TEXT = fake_reply(TOKENS)


class Midway:
    """Holds every reply halfway (the engine waits after half of its tokens) until every client
    has received a token (or a time-out), and notes how many database connections are checked
    out then, when all STREAMS are streaming at once. Each chat stores its request just after
    its first token (a short write): the count is taken once those are done, or after 10 s."""

    def __init__(self) -> None:
        self.first_tokens = 0
        self.all_streaming = asyncio.Event()
        self.connections_in_use: int | None = None
        self.pool: Any = None
        self.counting: asyncio.Task[None] | None = None

    def got_first_token(self) -> None:
        self.first_tokens += 1
        if self.first_tokens == STREAMS:
            self.counting = asyncio.get_running_loop().create_task(self.count_connections())

    async def count_connections(self) -> None:
        deadline = asyncio.get_running_loop().time() + 10
        while self.pool.checkedout() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        self.connections_in_use = self.pool.checkedout()
        self.all_streaming.set()

    async def __call__(self) -> None:
        # Some clients may never get a token: the test says how many did.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_streaming.wait(), timeout=30)


@pytest.fixture
async def engine_with_midway() -> AsyncIterator[tuple[str, Midway]]:
    midway = Midway()
    async with serving(make_app(TOKENS, midway=midway)) as url:
        yield f"{url}/v1", midway


async def test_64_concurrent_streams_all_complete_and_none_holds_a_database_connection(
    database_url: str,
    make_settings: Callable[..., Settings],
    engine_with_midway: tuple[str, Midway],
) -> None:
    engine_url, midway = engine_with_midway
    settings = make_settings(
        database_url=database_url,
        auth_mode="required",
        openai_compatible_base_url=engine_url,
        default_model=FAKE_MODEL_ID,
        user_max_generations=STREAMS,
        # The default pool (5 + 10): before the fix the 16th stream waited for a connection.
        db_pool_timeout_s=5,
        # The process's periodic save of every reply's text so far takes one connection for a moment
        # (not a stream's): out of the way here, where the connections in use are counted at one instant.
        reply_save_interval_s=3600,
    )
    app: FastAPI = create_app(settings)
    midway.pool = app.state.engine.pool
    limits = httpx.Limits(max_connections=STREAMS + 4)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await chat_at_once(client, midway)


async def chat_at_once(client: httpx.AsyncClient, midway: Midway) -> None:
    signed_up = await client.post(
        "/api/v1/auth/signup", json={"email": "many@example.com", "password": "correct horse battery"}
    )
    headers = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
    ids = [f"capacity-{uuid.uuid4().hex}" for _ in range(STREAMS)]

    async def chat(conversation_id: str) -> tuple[int, list[dict[str, Any]], str]:
        message = {"role": "user", "content": f"Question {conversation_id}"}
        body = {"id": conversation_id, "messages": [message], "data": {"model": FAKE_MODEL_ID}}
        events: list[dict[str, Any]] = []
        async with client.stream("POST", "/api/v1/chat", json=body, headers=headers) as response:
            if response.status_code != 200:
                return response.status_code, [], (await response.aread()).decode()[:200]
            async for line in response.aiter_lines():
                events.append(json.loads(line))
                if events[-1]["type"] == "token" and sum(e["type"] == "token" for e in events) == 1:
                    midway.got_first_token()
        return 200, events, ""

    results = await asyncio.gather(*(chat(conversation_id) for conversation_id in ids))

    failed = [text for status, _, text in results if status != 200]
    assert not failed, f"{len(failed)} of {STREAMS} failed, e.g. {failed[0]}"
    assert midway.first_tokens == STREAMS, f"only {midway.first_tokens} of {STREAMS} were streaming at once"
    assert midway.connections_in_use == 0, "database connections were held while every stream was mid-reply"
    for _, events, _ in results:
        assert events[-1]["type"] == "end" and events[-1]["finish_reason"] == "stop"
        assert "".join(e["content"] for e in events if e["type"] == "token") == EXPECTED_TEXT
    for conversation_id in ids:
        stored = (await client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)).json()
        assert [(m["role"], m["status"]) for m in stored["messages"]] == [("user", "complete"), ("ai", "complete")]
        assert stored["messages"][1]["content"] == EXPECTED_TEXT
