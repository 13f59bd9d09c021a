"""Prompt progress: `progress` events before the first token of a long prompt (scripted model
that sends progress chunks like the local engine's; the real engine is in tests/integration)."""

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk

from app.core.config import Settings
from app.llm.openai_compatible import ProgressChatOpenAI
from app.llm.registry import ChatOptions, ModelInfo, ModelRegistry
from app.schemas import ProgressEvent
from app.services.chat import LONG_PROMPT_TOKENS, PROGRESS_INTERVAL_S, ReplyState
from tests.fakes import FakeRegistry

BODY = {"id": "conv-1", "messages": [{"role": "user", "content": "A long pasted document…"}]}


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


@pytest.fixture
async def fake(make_settings: Callable[..., Settings], make_client: Any) -> Callable[..., Any]:
    async def build(**script: Any) -> httpx.AsyncClient:
        settings = make_settings()
        client: httpx.AsyncClient = await make_client(settings, FakeRegistry(settings, **script))
        return client

    return build


def progress_chunk(processed: int, total: int) -> AIMessageChunk:
    progress = {"processed": processed, "total": total, "cache": 0, "time_ms": 0}
    return AIMessageChunk(content="", response_metadata={"prompt_progress": progress})


async def test_a_model_that_reports_no_progress_gets_no_progress_events(fake: Any) -> None:
    client = await fake()
    kinds = [e["type"] for e in events(await client.post("/api/v1/chat", json=BODY))]
    assert kinds == ["start", "token", "token", "token", "token", "title", "end"]


async def test_a_long_prompt_reports_its_progress_before_the_first_token(fake: Any) -> None:
    client = await fake(progress=[(0, 2000), (512, 2000), (1024, 2000), (2000, 2000)])
    lines = events(await client.post("/api/v1/chat", json=BODY))
    kinds = [e["type"] for e in lines]
    first_token = kinds.index("token")
    progress = [e for e in lines if e["type"] == "progress"]
    assert kinds[0] == "start" and kinds[1] == "progress" and "progress" not in kinds[first_token:]
    assert progress[0] == {"type": "progress", "processed": 0, "total": 2000}
    assert all(0 <= e["processed"] <= e["total"] == 2000 for e in progress)
    assert [e["processed"] for e in progress] == sorted(e["processed"] for e in progress)
    assert "".join(e["content"] for e in lines if e["type"] == "token") == "Hello, world!"


async def test_a_prompt_read_in_one_step_gets_no_progress_events(fake: Any) -> None:
    # As the engine reports a short prompt: before its first step, then done.
    client = await fake(progress=[(0, LONG_PROMPT_TOKENS), (LONG_PROMPT_TOKENS, LONG_PROMPT_TOKENS)])
    kinds = [e["type"] for e in events(await client.post("/api/v1/chat", json=BODY))]
    assert kinds == ["start", "token", "token", "token", "token", "title", "end"]


async def test_the_response_begins_at_a_long_prompts_progress_and_a_short_one_waits(fake: Any) -> None:
    # A failure before the first token: after a long prompt's progress the response has begun,
    # so it is an in-band error; a short prompt's response has not, so it is still a 500.
    long = await fake(progress=[(0, LONG_PROMPT_TOKENS + 1)], fail_at=0)
    response = await long.post("/api/v1/chat", json=BODY)
    assert response.status_code == 200
    assert [e["type"] for e in events(response)] == ["start", "progress", "error"]

    short = await fake(progress=[(0, LONG_PROMPT_TOKENS)], fail_at=0)
    response = await short.post("/api/v1/chat", json={**BODY, "id": "conv-2"})
    assert response.status_code == 500 and response.json()["code"] == "model_failed"
    # Most of a long prompt read from the cache leaves a short one to read.
    cached = await fake(progress=[(1500, 1500 + LONG_PROMPT_TOKENS)], fail_at=0)
    assert (await cached.post("/api/v1/chat", json={**BODY, "id": "conv-3"})).status_code == 500


async def test_the_model_is_asked_for_progress_only_when_the_prompt_is_longer_than_one_step(
    make_settings: Callable[..., Settings], make_client: Any
) -> None:
    # Asking costs the engine time before its first token; a shorter prompt would show nothing.
    registry = FakeRegistry(make_settings())
    client = await make_client(make_settings(), registry)
    assert (await client.post("/api/v1/chat", json=BODY)).status_code == 200
    assert registry.last_model is not None and registry.last_model.options is not None
    assert registry.last_model.options.prompt_progress is False
    long = {"id": "conv-2", "messages": [{"role": "user", "content": "word " * LONG_PROMPT_TOKENS}]}
    assert (await client.post("/api/v1/chat", json=long)).status_code == 200
    assert registry.last_model.options.prompt_progress is True


def test_the_local_engine_is_asked_for_progress_only_when_the_options_say_so(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    registry = ModelRegistry(make_settings())
    engine = SimpleNamespace(base_url="http://127.0.0.1:9", api_key="k")
    monkeypatch.setattr(registry, "engine", lambda info: engine)
    info = ModelInfo(id="m", name="m", provider="local", context_length=4096, path=tmp_path / "m.gguf")
    short = registry.chat_model(info, ChatOptions(temperature=0.7, top_p=0.95, max_tokens=64))
    long = registry.chat_model(info, ChatOptions(temperature=0.7, top_p=0.95, max_tokens=64, prompt_progress=True))
    assert isinstance(short, ProgressChatOpenAI) and isinstance(long, ProgressChatOpenAI)
    assert short.extra_body == {"max_tokens": 64}
    assert long.extra_body == {"max_tokens": 64, "return_progress": True}


def test_progress_is_sent_at_most_every_interval_and_only_before_the_first_token() -> None:
    state = ReplyState()
    step = PROGRESS_INTERVAL_S
    assert state.event(progress_chunk(0, 3000), now=10.0) == ProgressEvent(processed=0, total=3000)
    assert state.event(progress_chunk(512, 3000), now=10.0 + step / 2) is None  # too soon
    assert state.event(progress_chunk(1024, 3000), now=10.0 + step) == ProgressEvent(processed=1024, total=3000)
    assert state.event(AIMessageChunk(content="Hi"), now=20.0) == "Hi"  # a token event, as its text
    assert state.event(progress_chunk(3000, 3000), now=30.0) is None
    # A prompt read in one step, or mostly from the cache: nothing to show.
    assert ReplyState().event(progress_chunk(0, LONG_PROMPT_TOKENS), now=0.0) is None
    cached = ReplyState()
    assert cached.event(progress_chunk(2900, 3000), now=0.0) is None
    assert cached.event(progress_chunk(3000, 3000), now=1.0) is None
    # Malformed progress is ignored.
    bad = AIMessageChunk(content="", response_metadata={"prompt_progress": {"total": 5}})
    assert ReplyState().event(bad, now=0.0) is None


def test_the_openai_compatible_chat_model_keeps_llama_servers_prompt_progress(
    make_settings: Callable[..., Settings],
) -> None:
    registry = ModelRegistry(make_settings(openai_compatible_base_url="http://127.0.0.1:9/v1"))
    info = ModelInfo(id="openai-compatible/m", name="m", provider="openai-compatible", context_length=4096)
    model = registry.chat_model(info, ChatOptions(temperature=0.7, top_p=0.95, max_tokens=64))
    assert isinstance(model, ProgressChatOpenAI)
    # Progress is asked of the local engine only (registry.chat_model); a remote server is not asked.
    assert model.extra_body == {"max_tokens": 64}
    # A chunk as llama-server streams it before the first token.
    raw = {
        "choices": [{"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}],
        "created": 1,
        "id": "chatcmpl-1",
        "model": "m",
        "object": "chat.completion.chunk",
        "prompt_progress": {"total": 4016, "cache": 0, "processed": 2048, "time_ms": 7258},
    }
    generation = model._convert_chunk_to_generation_chunk(raw, AIMessageChunk, None)
    assert generation is not None and generation.message.text == ""
    assert generation.message.response_metadata["prompt_progress"]["processed"] == 2048
    # A chunk without it is unchanged.
    plain = {**raw, "choices": [{"finish_reason": None, "index": 0, "delta": {"content": "Hi"}}]}
    del plain["prompt_progress"]
    generation = model._convert_chunk_to_generation_chunk(plain, AIMessageChunk, None)
    assert generation is not None and "prompt_progress" not in generation.message.response_metadata
