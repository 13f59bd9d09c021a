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
import uvicorn
from asgi_lifespan import LifespanManager

from app.core.config import Settings
from app.main import create_app
from benchmarks.fake_engine import MODEL, WORD, make_app
from tests.conftest import free_port, signup

STREAMS = 64
TOKENS = 40
MODEL_ID = f"openai-compatible/{MODEL}"
EXPECTED_TEXT = "".join(f" {WORD}{i}" if i else WORD for i in range(TOKENS))


class Midway:
    """Holds every stream after half of its tokens until all STREAMS are there (or a time-out),
    and notes how many database connections were checked out at that moment."""

    def __init__(self) -> None:
        self.arrived = 0
        self.all_there = asyncio.Event()
        self.connections_in_use: int | None = None
        self.pool: Any = None

    async def __call__(self) -> None:
        self.arrived += 1
        if self.arrived == STREAMS:
            self.connections_in_use = self.pool.checkedout()
            self.all_there.set()
        # Some streams may never get here: the test says how many did.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_there.wait(), timeout=30)


@pytest.fixture
async def engine_with_midway() -> AsyncIterator[tuple[str, Midway]]:
    midway = Midway()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(TOKENS, midway=midway), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/v1", midway
    server.should_exit = True
    await task


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
        default_model=MODEL_ID,
        user_max_generations=STREAMS,
        # The default pool (5 + 10): before the fix the 16th stream waited for a connection.
        db_pool_timeout_s=5,
    )
    app = create_app(settings)
    midway.pool = app.state.engine.pool
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        await chat_at_once(client, midway)


async def chat_at_once(client: httpx.AsyncClient, midway: Midway) -> None:
    headers = await signup(client)
    ids = [f"capacity-{uuid.uuid4().hex}" for _ in range(STREAMS)]

    async def chat(conversation_id: str) -> httpx.Response:
        message = {"role": "user", "content": f"Question {conversation_id}"}
        body = {"id": conversation_id, "messages": [message], "data": {"model": MODEL_ID}}
        return await client.post("/api/v1/chat", json=body, headers=headers, timeout=120)

    responses = await asyncio.gather(*(chat(conversation_id) for conversation_id in ids))

    failed = [r.text[:200] for r in responses if r.status_code != 200]
    assert not failed, f"{len(failed)} of {STREAMS} failed, e.g. {failed[0]}"
    assert midway.arrived == STREAMS, f"only {midway.arrived} of {STREAMS} streams were generating at once"
    assert midway.connections_in_use == 0, "database connections were held while every stream was mid-reply"
    for response in responses:
        events = [json.loads(line) for line in response.text.splitlines()]
        assert events[-1]["type"] == "end" and events[-1]["finish_reason"] == "stop"
        assert "".join(e["content"] for e in events if e["type"] == "token") == EXPECTED_TEXT
    for conversation_id in ids:
        stored = (await client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)).json()
        assert [(m["role"], m["status"]) for m in stored["messages"]] == [("user", "complete"), ("ai", "complete")]
        assert stored["messages"][1]["content"] == EXPECTED_TEXT
