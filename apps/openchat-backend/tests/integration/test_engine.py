"""The local engine on the real 0.5B model: crashes, several users at once, warm conversations."""

import json
import os
import signal
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_MODEL, free_port
from tests.integration.test_local_model import LONG_PROMPT, chat_body, read_stream, wait_until


def stored_reply(client: httpx.Client, conversation_id: str) -> dict[str, Any] | None:
    messages = client.get(f"/api/v1/conversations/{conversation_id}").json()["messages"]
    return messages[-1] if messages[-1]["role"] == "ai" else None


@pytest.mark.parametrize("crash", [signal.SIGSEGV, signal.SIGKILL], ids=["SIGSEGV", "SIGKILL"])
def test_an_engine_crash_mid_reply_ends_it_in_band_and_the_next_chat_streams(
    live_server: Any, crash: signal.Signals
) -> None:
    url = live_server()
    with httpx.Client(base_url=url, timeout=120) as client:
        read_stream(client, chat_body("before"))  # the engine is up
        engine = url.engine(FAST_MODEL)
        events: list[dict[str, Any]] = []
        with client.stream("POST", "/api/v1/chat", json=chat_body("crash", LONG_PROMPT, max_tokens=400)) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                events.append(json.loads(line))
                if events[-1]["type"] == "token" and sum(e["type"] == "token" for e in events) == 3:
                    assert engine.pid is not None
                    os.kill(engine.pid, crash)
        # The stream ended with one in-band error after the tokens it had, and the API is up.
        assert events[-1]["type"] == "error" and events[-1]["code"] == "engine_crashed"
        assert "Retry" in events[-1]["message"]
        assert client.get("/healthz").json() == {"status": "ok"}
        reply = stored_reply(client, "crash")
        assert reply is not None and reply["status"] == "error"
        assert reply["content"] == "".join(e["content"] for e in events if e["type"] == "token")
        # Readiness and metrics show the restart and how the engine died.
        wait_until(lambda: client.get("/readyz").json()["engines"][FAST_MODEL]["state"] == "ready", seconds=60)
        status = client.get("/readyz").json()["engines"][FAST_MODEL]
        assert status["restarts"] == 1 and crash.name in status["last_exit"]
        assert f'openchat_engine_restarts_total{{model="{FAST_MODEL}"}} 1.0' in client.get("/metrics").text
        # The next chat streams on the restarted engine.
        found, _ = read_stream(client, chat_body("after"))
        assert found[-1]["type"] == "end" and sum(e["type"] == "token" for e in found) >= 3


def test_the_first_request_after_a_crash_is_served_by_the_restarted_engine(live_server: Any) -> None:
    url = live_server()
    with httpx.Client(base_url=url, timeout=120) as client:
        read_stream(client, chat_body("before"))
        engine = url.engine(FAST_MODEL)
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        # At once, before the backend has noticed: the request waits for the restart instead of failing.
        found, _ = read_stream(client, chat_body("right-after"))
        assert found[-1]["type"] == "end" and sum(e["type"] == "token" for e in found) >= 3
        assert client.get("/readyz").json()["engines"][FAST_MODEL]["restarts"] == 1


def test_four_users_stream_at_once_and_a_third_reply_of_one_user_gets_429(live_server: Any) -> None:
    url = live_server(auth_mode="required", local_slots=4)
    with httpx.Client(base_url=url, timeout=180) as client:
        users = [signup_sync(client) for _ in range(4)]
        first_token_at: dict[int, float] = {}
        ended_at: dict[int, float] = {}
        errors: list[str] = []

        def chat(user: int, conversation: str, max_tokens: int) -> None:
            try:
                body = chat_body(conversation, LONG_PROMPT, max_tokens=max_tokens)
                with client.stream("POST", "/api/v1/chat", json=body, headers=users[user]) as response:
                    assert response.status_code == 200, response.read()
                    for line in response.iter_lines():
                        event = json.loads(line)
                        if event["type"] == "token":
                            first_token_at.setdefault(user, time.monotonic())
                        assert event["type"] != "error", event
                ended_at[user] = time.monotonic()
            except Exception as error:
                errors.append(f"user {user}: {error!r}")

        threads = [threading.Thread(target=chat, args=(user, f"u{user}", 80)) for user in range(4)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(first_token_at) == 4 or bool(errors) or len(ended_at) > 0, seconds=120)
        # Every user was streaming before anyone had finished: served at once, not one after another.
        assert not errors and len(first_token_at) == 4 and not ended_at, (errors, first_token_at, ended_at)
        # User 0 already has one reply generating; a second one is allowed (it may wait), a third is not.
        second = threading.Thread(target=chat, args=(0, "u0-second", 8))
        second.start()
        # It waits for a slot: the four are still generating.
        waiting = f'openchat_queue_length{{model="{FAST_MODEL}"}} 1.0'
        wait_until(lambda: waiting in client.get("/metrics").text)
        refused = client.post("/api/v1/chat", json=chat_body("u0-third"), headers=users[0])
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_generations" and int(refused.headers["retry-after"]) >= 1
        # Other users are not affected by user 0's limit.
        found, _ = read_stream_as(client, chat_body("u1-second", max_tokens=8), users[1])
        assert found[-1]["type"] == "end"
        for thread in [*threads, second]:
            thread.join(timeout=180)
        assert not errors and len(ended_at) == 4


def signup_sync(client: httpx.Client) -> dict[str, str]:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = client.post("/api/v1/auth/signup", json={"email": email, "password": "correct horse battery"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def read_stream_as(
    client: httpx.Client, body: dict[str, Any], headers: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    with client.stream("POST", "/api/v1/chat", json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        found = [json.loads(line) for line in response.iter_lines() if line]
    return found, len(found)


def long_history() -> list[dict[str, str]]:
    """About 1,500 tokens of earlier conversation."""
    history: list[dict[str, str]] = []
    for turn in range(10):
        history += [
            {"role": "user", "content": f"Step {turn}: explain how a hash map handles collision number {turn}. " * 3},
            {
                "role": "ai",
                "content": f"Collision {turn} goes to a chained bucket; lookups walk the chain and compare keys. " * 4,
            },
        ]
    return history


def test_going_back_to_a_long_conversation_is_warm_and_gives_the_cold_reply(live_server: Any) -> None:
    # Two slots and three other conversations in between: the long one must come back from the
    # engine's RAM cache, not from a slot that still holds it.
    warm_url = live_server(local_slots=2)
    cold_url = live_server(local_slots=2)
    first_turn = [*long_history(), {"role": "user", "content": "Summarise all of this in two sentences."}]
    options = {"model": FAST_MODEL, "temperature": 0.0, "max_tokens": 40}
    with httpx.Client(base_url=warm_url, timeout=180) as warm, httpx.Client(base_url=cold_url, timeout=180) as cold:
        found, _ = read_stream(warm, {"id": "long", "messages": first_turn, "data": options})
        reply = "".join(e["content"] for e in found if e["type"] == "token")
        first_prompt = found[-1]["usage"]["prompt_tokens"]
        assert first_prompt > 1000
        for other in range(3):
            read_stream(warm, chat_body(f"other-{other}", f"Write a haiku about the number {other}.", max_tokens=24))
        second_turn = [*first_turn, {"role": "ai", "content": reply}, {"role": "user", "content": "Now in one."}]
        body = {"id": "long", "messages": second_turn, "data": options}
        warm_found, _ = read_stream(warm, body)
        cold_found, _ = read_stream(cold, body)
    warm_usage, cold_usage = warm_found[-1]["usage"], cold_found[-1]["usage"]
    # Warm: the whole first turn came from the cache. Cold: nothing did.
    assert warm_usage["cached_prompt_tokens"] >= first_prompt
    assert cold_usage["cached_prompt_tokens"] == 0
    assert warm_usage["prompt_tokens"] == cold_usage["prompt_tokens"]
    # Same reply either way (temperature 0).
    warm_text = "".join(e["content"] for e in warm_found if e["type"] == "token")
    cold_text = "".join(e["content"] for e in cold_found if e["type"] == "token")
    assert warm_text and warm_text == cold_text


def test_an_engine_that_cannot_generate_leaves_the_rest_of_the_app_working(live_server: Any, tmp_path: Path) -> None:
    # An engine build this CPU refuses dies on its first generation (SIGILL); here, on start.
    broken = tmp_path / "llama-server"
    broken.write_text("#!/bin/sh\necho 'illegal instruction' >&2\nkill -ILL $$\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    url = live_server(engine_binary=broken, warm_up=True, data_dir=tmp_path / "data")
    with httpx.Client(base_url=url, timeout=60) as client:
        wait_until(lambda: client.get("/readyz").json()["engines"][FAST_MODEL]["state"] == "failed", seconds=30)
        engine = client.get("/readyz").json()["engines"][FAST_MODEL]
        assert "SIGILL" in engine["failure"] and "make engine-rebuild" in engine["failure"]
        # Still listed, but chatting with it says what failed and what to do; nothing else breaks.
        assert FAST_MODEL in [m["id"] for m in client.get("/api/v1/models").json()["models"]]
        refused = client.post("/api/v1/chat", json=chat_body("broken"))
        assert refused.status_code == 503 and refused.json()["code"] == "engine_unavailable"
        assert "make engine-rebuild" in refused.json()["detail"]
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/conversations").status_code == 200
    # The engine's own log says what happened.
    assert "illegal instruction" in (tmp_path / "data" / "logs" / f"engine-{FAST_MODEL}.log").read_text()


def test_no_engine_is_left_running_after_the_app_stops(make_settings: Any) -> None:
    import uvicorn

    from app.main import create_app

    app = create_app(make_settings(warm_up=True))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    engine = None

    def engine_ready() -> bool:
        nonlocal engine
        engine = app.state.registry.engines.find(FAST_MODEL)
        return engine is not None and engine.state == "ready"

    wait_until(engine_ready, seconds=120)
    assert engine is not None
    pid = engine.pid
    assert pid is not None
    server.should_exit = True
    thread.join(timeout=60)
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
