"""The real bundled 0.5B model through the HTTP API of a real server."""

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_MODEL, MODELS_DIR
from tests.integration.conftest import engine_idle, engine_tokens_generated

LONG_PROMPT = "Write a detailed, step by step essay about the history of computers, at least 600 words."


def chat_body(conversation_id: str, content: str = "Say hello and introduce yourself.", **data: Any) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "messages": [{"role": "user", "content": content}],
        "data": {"model": FAST_MODEL, "temperature": 0.2, "max_tokens": 48, **data},
    }


def read_stream(client: httpx.Client, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Events of one reply and the number of separate network reads that carried tokens."""
    found: list[dict[str, Any]] = []
    reads_with_tokens = 0
    buffer = b""
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_raw():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            parsed = [json.loads(line) for line in lines if line]
            reads_with_tokens += any(e["type"] == "token" for e in parsed)
            found += parsed
    return found, reads_with_tokens


def wait_until(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_models_lists_both_bundled_models_and_dropped_in_gguf(live_server: Any, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    for path in MODELS_DIR.glob("*.gguf"):
        (models_dir / path.name).symlink_to(path)
    (models_dir / "my-own-model.gguf").symlink_to(MODELS_DIR / f"{FAST_MODEL}.gguf")
    (models_dir / "broken.gguf").write_bytes(b"not a model")
    url = live_server(models_dir=models_dir, default_model="qwen2.5-coder-1.5b-instruct")
    models = httpx.get(f"{url}/api/v1/models").json()["models"]
    by_id = {m["id"]: m for m in models}
    assert set(by_id) == {"qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "my-own-model"}
    assert by_id["qwen2.5-coder-1.5b-instruct"]["default"] is True
    assert [m["id"] for m in models if m["default"]] == ["qwen2.5-coder-1.5b-instruct"]
    # Named from its GGUF metadata; its context is the model's own, capped by configuration.
    assert by_id["my-own-model"]["name"] == "Qwen2.5 Coder 0.5B Instruct AWQ"
    assert all(m["provider"] == "local" and m["context_length"] == 8192 for m in models)
    # A reply may ask for at most one token less than the context window; by default half of it at most.
    assert all(m["sampling"]["max_tokens"]["max"] == 8191 for m in models)
    default = min(url.app.state.settings.default_max_tokens, 8192 // 2)
    assert all(m["sampling"]["max_tokens"]["default"] == default for m in models)


def test_a_real_reply_streams_token_by_token(live_server: Any) -> None:
    url = live_server()
    with httpx.Client(base_url=url, timeout=120) as client:
        found, reads = read_stream(client, chat_body("real-1"))
        kinds = [e["type"] for e in found]
        assert kinds[0] == "start" and kinds[-1] == "end"
        tokens = [e["content"] for e in found if e["type"] == "token"]
        assert len(tokens) >= 5
        assert reads >= 3, "tokens arrived in too few network reads: something buffers the stream"
        end = found[-1]
        assert end["finish_reason"] in ("stop", "length")
        assert end["usage"]["completion_tokens"] >= len(tokens) - 1
        assert end["usage"]["prompt_tokens"] > 10
        assert end["timings"]["tokens_per_second"] > 0
        stored = client.get("/api/v1/conversations/real-1").json()["messages"][-1]
        assert stored["content"] == "".join(tokens)
        assert stored["model"] == FAST_MODEL and stored["completion_tokens"] == end["usage"]["completion_tokens"]


def test_the_next_turn_reuses_the_kv_cache(live_server: Any) -> None:
    url = live_server()
    with httpx.Client(base_url=url, timeout=120) as client:
        first, _ = read_stream(client, chat_body("kv", "Name three colours."))
        reply = "".join(e["content"] for e in first if e["type"] == "token")
        body = chat_body("kv")
        body["messages"] = [
            {"role": "user", "content": "Name three colours."},
            {"role": "ai", "content": reply},
            {"role": "user", "content": "And three animals?"},
        ]
        second, _ = read_stream(client, body)
        usage = second[-1]["usage"]
        assert usage["cached_prompt_tokens"] >= first[-1]["usage"]["prompt_tokens"] - 1
        assert usage["cached_prompt_tokens"] < usage["prompt_tokens"]


def test_health_is_answered_while_the_model_generates(live_server: Any) -> None:
    url = live_server()
    with (
        httpx.Client(base_url=url, timeout=120) as client,
        client.stream("POST", "/api/v1/chat", json=chat_body("busy", LONG_PROMPT, max_tokens=200)) as response,
    ):
        lines = response.iter_lines()
        next(lines)
        assert json.loads(next(lines))["type"] == "token"
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        # The reply was still streaming when health answered.
        assert json.loads(next(lines))["type"] == "token"


def test_disconnect_stops_the_model_frees_the_engine_and_keeps_the_partial_reply(live_server: Any) -> None:
    url = live_server(local_slots=1)
    received = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        read_stream(client, chat_body("warm"))  # the engine is up
        generated_before = engine_tokens_generated(url.engine(FAST_MODEL))
        with client.stream("POST", "/api/v1/chat", json=chat_body("gone", LONG_PROMPT, max_tokens=400)) as response:
            for line in response.iter_lines():
                received += json.loads(line)["type"] == "token"
                if received == 5:
                    break  # the client goes away mid-reply
        engine = url.engine(FAST_MODEL)
        # The engine itself stops generating, and its place is given back.
        wait_until(lambda: engine_idle(engine), seconds=5)
        wait_until(lambda: engine.generating == 0, seconds=5)
        assert engine_tokens_generated(engine) - generated_before <= received + 3

        def stored_reply() -> dict[str, Any] | None:
            messages = client.get("/api/v1/conversations/gone").json()["messages"]
            return messages[-1] if messages[-1]["role"] == "ai" else None

        wait_until(lambda: stored_reply() is not None)
        reply = stored_reply()
        assert reply is not None
        assert reply["status"] == "cancelled" and reply["finish_reason"] == "cancelled"
        # Generation stopped within a few tokens of the disconnect, far from the 400 allowed.
        assert received <= reply["completion_tokens"] <= received + 10
        assert len(reply["content"]) > 0
        # The engine serves the next request normally.
        found, _ = read_stream(client, chat_body("after"))
        assert found[-1]["type"] == "end"


@pytest.mark.parametrize("queue_size", [0, 1])
def test_a_second_request_waits_in_the_queue_or_gets_429(live_server: Any, queue_size: int) -> None:
    url = live_server(queue_size=queue_size, local_slots=1)
    with (
        httpx.Client(base_url=url, timeout=120) as first,
        httpx.Client(base_url=url, timeout=120) as second,
        first.stream("POST", "/api/v1/chat", json=chat_body("q1", LONG_PROMPT, max_tokens=60)) as running,
    ):
        lines = running.iter_lines()
        next(lines)  # generating now
        if queue_size == 0:
            refused = second.post("/api/v1/chat", json=chat_body("q2"))
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["code"] == "model_busy"
        else:
            found: list[dict[str, Any]] = []
            waiter = threading.Thread(target=lambda: found.extend(read_stream(second, chat_body("q2"))[0]))
            waiter.start()
            wait_until(lambda: url.engine(FAST_MODEL).queue_length == 1)
            metrics = httpx.get(f"{url}/metrics").text
            assert f'openchat_queue_length{{model="{FAST_MODEL}"}} 1.0' in metrics
            rest = [json.loads(line) for line in lines]
            assert rest[-1]["type"] == "end"
            waiter.join(timeout=120)
            assert found and found[-1]["type"] == "end"


def test_history_beyond_the_context_window_is_trimmed(live_server: Any) -> None:
    url = live_server(local_context_tokens=1024)
    history: list[dict[str, str]] = []
    for turn in range(12):
        history += [
            {"role": "user", "content": f"Tell me fact number {turn} about the ocean. " + "Please be thorough. " * 8},
            {"role": "ai", "content": f"Fact {turn}: the ocean is deep. " + "It covers most of Earth. " * 8},
        ]
    history.append({"role": "user", "content": "Summarise in one sentence."})
    body = {"id": "long", "messages": history, "data": {"model": FAST_MODEL, "max_tokens": 32}}
    with httpx.Client(base_url=url, timeout=120) as client:
        found, _ = read_stream(client, body)
    trimmed = [e for e in found if e["type"] == "trimmed"]
    assert trimmed and 0 < trimmed[0]["omitted_messages"] < len(history)
    assert found[-1]["type"] == "end"
    assert found[-1]["usage"]["prompt_tokens"] <= 1024 - 32
    # The stored reply keeps the notice.
    reply = httpx.get(f"{url}/api/v1/conversations/long").json()["messages"][-1]
    assert reply["omitted_messages"] == trimmed[0]["omitted_messages"]
