"""The chat stream contract and request validation, with a scripted (fake) chat model."""

import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import SystemMessage
from starlette.requests import ClientDisconnect

from app.core.config import Settings
from tests.conftest import ClientLeavingAfterTokens, chat_scope, signup
from tests.fakes import FakeRegistry


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"id": "conv-1", "messages": [{"role": "user", "content": "Hi there"}]}
    value.update(overrides)
    return value


@pytest.fixture
async def fake(make_settings: Callable[..., Settings], make_client: Any) -> Callable[..., Any]:
    async def build(
        settings_overrides: dict[str, Any] | None = None, **script: Any
    ) -> tuple[httpx.AsyncClient, FakeRegistry]:
        settings = make_settings(**(settings_overrides or {}))
        registry = FakeRegistry(settings, **script)
        return await make_client(settings, registry), registry

    return build


async def test_reply_streams_start_tokens_end_as_ndjson(fake: Any) -> None:
    client, _ = await fake()
    response = await client.post("/api/v1/chat", json=body())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    lines = events(response)
    assert [e["type"] for e in lines] == ["start", "token", "token", "token", "token", "title", "end"]
    start, end = lines[0], lines[-1]
    assert start["id"] == "conv-1" and start["model"] == "fake-model"
    assert "".join(e["content"] for e in lines if e["type"] == "token") == "Hello, world!"
    assert end["message_id"] == start["message_id"]
    assert end["finish_reason"] == "stop"
    assert end["usage"]["prompt_tokens"] == 11 and end["usage"]["completion_tokens"] == 4
    assert end["timings"]["ttft_ms"] >= 0 and end["timings"]["tokens_per_second"] >= 0


async def test_reply_hitting_max_tokens_ends_with_length(fake: Any) -> None:
    client, _ = await fake(finish_reason="length")
    lines = events(await client.post("/api/v1/chat", json=body()))
    assert lines[-1]["finish_reason"] == "length"


async def test_system_prompt_and_options_reach_the_model(fake: Any) -> None:
    client, registry = await fake()
    data = {"prompt": "Answer in French.", "temperature": 0.2, "top_p": 0.5, "max_tokens": 64}
    response = await client.post("/api/v1/chat", json=body(data=data))
    assert response.status_code == 200
    model = registry.last_model
    assert model is not None and model.options is not None
    sent = model.seen[0]
    assert isinstance(sent[0], SystemMessage) and sent[0].text == "Answer in French."
    assert sent[-1].text == "Hi there"
    assert (model.options.temperature, model.options.top_p, model.options.max_tokens) == (0.2, 0.5, 64)


async def test_assistant_and_system_roles_are_accepted(fake: Any) -> None:
    client, _registry = await fake()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Joke?"},
    ]
    response = await client.post("/api/v1/chat", json=body(messages=messages))
    assert response.status_code == 200
    stored = (await client.get("/api/v1/conversations/conv-1")).json()["messages"]
    assert [m["role"] for m in stored] == ["system", "user", "ai", "user", "ai"]


BAD_REQUESTS = [
    ("not json", b"{not json", "invalid_json"),
    ("body not an object", json.dumps(["x"]).encode(), "invalid_body"),
    ("id missing", json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "missing_field"),
    ("id wrong type", json.dumps(body(id=42)).encode(), "invalid_type"),
    ("messages missing", json.dumps({"id": "c"}).encode(), "missing_field"),
    ("messages wrong type", json.dumps(body(messages="hello")).encode(), "invalid_type"),
    ("messages empty", json.dumps(body(messages=[])).encode(), "empty_messages"),
    ("unknown role", json.dumps(body(messages=[{"role": "robot", "content": "x"}])).encode(), "unknown_role"),
    ("content not a string", json.dumps(body(messages=[{"role": "user", "content": 5}])).encode(), "invalid_content"),
    (
        "last message not from user",
        json.dumps(body(messages=[{"role": "user", "content": "a"}, {"role": "ai", "content": "b"}])).encode(),
        "last_message_not_user",
    ),
    ("unknown model", json.dumps(body(data={"model": "no-such-model"})).encode(), "unknown_model"),
    ("temperature too high", json.dumps(body(data={"temperature": 2.5})).encode(), "option_out_of_range"),
    ("temperature negative", json.dumps(body(data={"temperature": -0.1})).encode(), "option_out_of_range"),
    ("top_p zero", json.dumps(body(data={"top_p": 0})).encode(), "option_out_of_range"),
    ("top_p above one", json.dumps(body(data={"top_p": 1.5})).encode(), "option_out_of_range"),
    ("max_tokens zero", json.dumps(body(data={"max_tokens": 0})).encode(), "option_out_of_range"),
    ("max_tokens beyond context", json.dumps(body(data={"max_tokens": 4096})).encode(), "option_out_of_range"),
]


@pytest.mark.parametrize(("case", "raw", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
async def test_bad_requests_get_400_with_readable_detail_and_stable_code(
    fake: Any, case: str, raw: bytes, code: str
) -> None:
    client, registry = await fake()
    response = await client.post("/api/v1/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["code"] == code
    assert isinstance(payload["detail"], str) and len(payload["detail"]) > 10
    assert registry.last_model is None  # the model was never started


async def test_body_over_the_limit_is_413(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(max_body_bytes=2048)
    client = await make_client(settings, FakeRegistry(settings))
    response = await client.post("/api/v1/chat", json=body(messages=[{"role": "user", "content": "x" * 5000}]))
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_busy_model_is_429_with_retry_after_and_the_message_is_kept(fake: Any) -> None:
    client, _ = await fake(busy_retry_after=7)
    response = await client.post("/api/v1/chat", json=body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["code"] == "model_busy"
    stored = (await client.get("/api/v1/conversations/conv-1")).json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [("user", "Hi there")]


async def test_failure_before_first_token_is_500_and_keeps_the_user_message(fake: Any) -> None:
    client, _ = await fake(fail_at=0)
    response = await client.post("/api/v1/chat", json=body())
    assert response.status_code == 500
    assert response.json()["code"] == "model_failed"
    stored = (await client.get("/api/v1/conversations/conv-1")).json()["messages"]
    assert stored[0]["content"] == "Hi there"
    assert stored[1]["status"] == "error"


async def test_failure_after_streaming_began_is_an_in_band_error_event(fake: Any) -> None:
    client, _ = await fake(fail_at=2)
    response = await client.post("/api/v1/chat", json=body())
    assert response.status_code == 200
    lines = events(response)
    assert [e["type"] for e in lines] == ["start", "token", "token", "error"]
    assert lines[-1]["code"] == "model_failed" and "Retry" in lines[-1]["message"]
    reply = (await client.get("/api/v1/conversations/conv-1")).json()["messages"][-1]
    assert (reply["status"], reply["content"]) == ("error", "Hello,")


async def test_long_history_is_trimmed_oldest_first_keeping_the_system_prompt(fake: Any) -> None:
    client, registry = await fake()
    history = []
    for turn in range(12):
        history += [
            {"role": "user", "content": f"question {turn} " + "word " * 10},
            {"role": "ai", "content": f"answer {turn} " + "word " * 10},
        ]
    history.append({"role": "user", "content": "the last question"})
    data = {"model": "fake-small", "prompt": "System rules.", "max_tokens": 100}
    lines = events(await client.post("/api/v1/chat", json=body(messages=history, data=data)))

    trimmed = [e for e in lines if e["type"] == "trimmed"]
    assert trimmed and trimmed[0]["omitted_messages"] > 0
    assert registry.last_model is not None
    sent = registry.last_model.seen[0]
    assert sent[0].text == "System rules."
    assert sent[1].type == "human"  # history never opens with an orphaned reply
    assert sent[-1].text == "the last question"
    assert len(sent) == 1 + len(history) - trimmed[0]["omitted_messages"]
    assert sum(len(m.text.split()) + 4 for m in sent) <= 256 - 100


async def test_a_message_longer_than_the_context_is_400(fake: Any) -> None:
    client, _ = await fake()
    huge = "word " * 300
    response = await client.post(
        "/api/v1/chat", json=body(messages=[{"role": "user", "content": huge}], data={"model": "fake-small"})
    )
    assert response.status_code == 400
    assert response.json()["code"] == "message_too_long"
    # A refused request leaves no half-made conversation behind.
    assert (await client.get("/api/v1/conversations/conv-1")).status_code == 404


async def test_a_reply_past_the_generation_time_limit_ends_as_length(fake: Any) -> None:
    client, _ = await fake({"max_generation_s": 0.5}, tokens=[f" t{i}" for i in range(40)], delay=0.05)
    lines = events(await client.post("/api/v1/chat", json=body(id="runaway")))
    tokens = [e for e in lines if e["type"] == "token"]
    assert lines[-1]["type"] == "end" and lines[-1]["finish_reason"] == "length"
    assert 3 <= len(tokens) < 40  # stopped well before the model's own end
    stored = (await client.get("/api/v1/conversations/runaway")).json()["messages"][-1]
    assert stored["finish_reason"] == "length" and stored["content"] == "".join(e["content"] for e in tokens)


async def test_one_user_may_have_two_replies_generating_and_a_third_gets_429(fake: Any) -> None:
    import asyncio

    client, _ = await fake({"user_max_generations": 2}, tokens=["slow"] * 40, delay=0.05)
    running = [asyncio.create_task(client.post("/api/v1/chat", json=body(id=f"r{n}"))) for n in range(2)]
    for conversation in ("r0", "r1"):  # both requests got past validation and storage: they are generating
        while (await client.get(f"/api/v1/conversations/{conversation}")).status_code != 200:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    refused = await client.post("/api/v1/chat", json=body(id="r3"))
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_generations"
    assert int(refused.headers["retry-after"]) >= 1
    assert [(await task).status_code for task in running] == [200, 200]
    # Once they are done, the user may chat again.
    assert (await client.post("/api/v1/chat", json=body(id="r4"))).status_code == 200


async def test_a_client_that_leaves_mid_reply_keeps_the_partial_reply_as_cancelled(make_settings: Any) -> None:
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    settings = make_settings(user_max_generations=1)
    app = create_app(settings, registry=FakeRegistry(settings, tokens=[f" t{i}" for i in range(40)], delay=0.02))
    request = json.dumps(body(id="left")).encode()
    tab = ClientLeavingAfterTokens([request])  # the browser tab closes after the second token

    async with LifespanManager(app) as manager:
        await manager.app(chat_scope(request), tab.receive, tab.send)
        streamed = tab.events()
        tokens = "".join(e["content"] for e in streamed if e["type"] == "token")
        assert streamed[-1]["type"] == "token" and len(tokens.split()) < 40

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            reply = (await client.get("/api/v1/conversations/left")).json()["messages"][-1]
            assert (reply["status"], reply["finish_reason"]) == ("cancelled", "cancelled")
            assert reply["content"].startswith(tokens) and len(reply["content"].split()) < 40
            # Its places were given back: the user (allowed one reply at a time) may chat again.
            assert (await client.post("/api/v1/chat", json=body(id="next"))).status_code == 200


async def left_at_once(app: Any, conversation_id: str, spec_version: str) -> None:
    """A chat request whose client is gone by the time the response begins (the tab closed, or
    Stop was pressed, while the model was starting). ASGI 2.3 servers (uvicorn) have the
    disconnect waiting; under 2.4 the first write fails."""
    request = json.dumps(body(id=conversation_id)).encode()
    pending = [{"type": "http.request", "body": request, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if spec_version == "2.4":
            raise OSError("the client is gone")

    scope = chat_scope(request)
    scope["asgi"]["spec_version"] = spec_version
    with contextlib.suppress(ClientDisconnect):
        await app(scope, receive, send)


@pytest.mark.parametrize(
    ("tokens", "delay", "spec_version", "status"),
    [
        ([f" t{i}" for i in range(40)], 0.05, "2.3", "cancelled"),  # left while the model was generating
        ([" a", " b", " c"], 0.0, "2.3", "complete"),  # left as the model finished
        ([f" t{i}" for i in range(40)], 0.05, "2.4", "cancelled"),  # no line was ever read
    ],
)
async def test_a_client_that_leaves_before_the_first_line_gives_its_places_back_and_keeps_the_reply(
    make_settings: Any, tokens: list[str], delay: float, spec_version: str, status: str
) -> None:
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    settings = make_settings(user_max_generations=1)
    app = create_app(settings, registry=FakeRegistry(settings, tokens=tokens, delay=delay))
    async with LifespanManager(app) as manager:
        await left_at_once(manager.app, "gone", spec_version)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            messages = (await client.get("/api/v1/conversations/gone")).json()["messages"]
            assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("ai", status)]
            assert messages[1]["content"].startswith(tokens[0])
            # The user (allowed one reply at a time) may chat again: the places were given back.
            assert (await client.post("/api/v1/chat", json=body(id="next"))).status_code == 200


async def test_data_may_be_absent_or_null(fake: Any) -> None:
    client, registry = await fake()
    for data in ({}, {"data": None}, {"data": {}}):
        response = await client.post("/api/v1/chat", json=body(**data))
        assert response.status_code == 200, (data, response.text)
        assert registry.last_model is not None and registry.last_model.options is not None
        assert registry.last_model.options.top_p == 0.95


async def test_someone_elses_conversation_is_404_even_when_the_model_fails_and_nothing_is_stored(fake: Any) -> None:
    # The access is checked while the model starts: a refusal to store must still win.
    client, _ = await fake({"auth_mode": "required"})
    alice = await signup(client)
    assert (await client.post("/api/v1/chat", json=body(id="mine"), headers=alice)).status_code == 200
    failing, _ = await fake({"auth_mode": "required"}, fail_at=0)
    mallory = await signup(failing)

    hijack = await failing.post(
        "/api/v1/chat", json=body(id="mine", messages=[{"role": "user", "content": "x"}]), headers=mallory
    )

    assert hijack.status_code == 404 and hijack.json()["code"] == "not_found"
    kept = (await client.get("/api/v1/conversations/mine", headers=alice)).json()
    assert [(m["role"], m["content"], m["status"]) for m in kept["messages"]] == [
        ("user", "Hi there", "complete"),
        ("ai", "Hello, world!", "complete"),
    ]


async def test_the_access_check_before_the_first_token_refuses_on_each_database(
    database_url: str, make_settings: Callable[..., Settings], make_client: Any
) -> None:
    """SQLite is read on the event loop, PostgreSQL in a worker thread (app/core/db.py): on both,
    someone else's conversation is a 404 and a token that outlived its account a 401, before any
    line, with nothing stored for them; the owner's next message is stored."""
    import sqlalchemy

    settings = make_settings(database_url=database_url, auth_mode="required")
    client = await make_client(settings, FakeRegistry(settings))
    alice, mallory = await signup(client), await signup(client, "mallory@example.com")
    assert (await client.post("/api/v1/chat", json=body(id="alices"), headers=alice)).status_code == 200

    hijack = await client.post("/api/v1/chat", json=body(id="alices"), headers=mallory)
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DELETE FROM users WHERE email = 'mallory@example.com'"))
    gone = await client.post("/api/v1/chat", json=body(id="mallorys"), headers=mallory)
    history = [*body()["messages"], {"role": "ai", "content": "Hello, world!"}, {"role": "user", "content": "More"}]
    follow_up = await client.post("/api/v1/chat", json=body(id="alices", messages=history), headers=alice)

    assert (hijack.status_code, hijack.json()["code"]) == (404, "not_found")
    assert (gone.status_code, gone.json()["code"]) == (401, "unauthorized")
    assert follow_up.status_code == 200 and json.loads(follow_up.text.splitlines()[-1])["type"] == "end"
    with engine.connect() as connection:
        conversations = connection.execute(sqlalchemy.text("SELECT id FROM conversations")).scalars().all()
        contents = (
            connection.execute(
                sqlalchemy.text("SELECT content FROM messages WHERE conversation_id = 'alices' ORDER BY position")
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert conversations == ["alices"]
    assert contents == ["Hi there", "Hello, world!", "More", "Hello, world!"]
