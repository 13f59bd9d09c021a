"""The OpenAPI schema documents the chat stream's events and the sampling options, and the
server keeps to it: every streamed line is a StreamEvent; each model's exposed sampling
ranges are exactly what POST /chat accepts."""

from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import TypeAdapter

from app.llm.registry import ModelInfo
from app.schemas import StreamEvent
from tests.fakes import FakeRegistry

EVENTS = ["StartEvent", "TrimmedEvent", "ProgressEvent", "TokenEvent", "TitleEvent", "EndEvent", "ErrorEvent"]


async def test_the_chat_stream_is_documented_as_ndjson_stream_events(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings))
    schema = (await client.get("/openapi.json")).json()

    ok = schema["paths"]["/api/v1/chat"]["post"]["responses"]["200"]["content"]
    assert ok == {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/StreamEvent"}}}
    components = schema["components"]["schemas"]
    union = components["StreamEvent"]
    assert union["oneOf"] == [{"$ref": f"#/components/schemas/{name}"} for name in EVENTS]
    assert union["discriminator"]["propertyName"] == "type"
    assert union["discriminator"]["mapping"]["end"] == "#/components/schemas/EndEvent"
    for name in EVENTS:
        assert "type" in components[name]["required"], name
    usage = components[components["EndEvent"]["properties"]["usage"]["$ref"].rsplit("/", 1)[1]]
    assert set(usage["required"]) == {"prompt_tokens", "completion_tokens", "cached_prompt_tokens"}
    assert components["ModelOut"]["properties"]["sampling"] == {"$ref": "#/components/schemas/SamplingOut"}
    assert set(components["SamplingOut"]["required"]) == {"temperature", "top_p", "max_tokens"}
    assert set(components["SamplingRange"]["required"]) == {"default", "min", "max", "step"}


@pytest.mark.parametrize(
    ("script", "data"),
    [
        ({}, {}),
        ({"fail_at": 2}, {}),
        ({"tokens": ["Ünï", '\n\t"', "\x00"], "finish_reason": "length"}, {}),
        ({}, {"model": "fake-small", "prompt": "System rules.", "max_tokens": 100}),
        ({"progress": [(0, 2000), (2000, 2000)]}, {}),
    ],
    ids=["stop", "error", "odd text, length", "trimmed", "progress"],
)
async def test_every_streamed_line_is_a_stream_event_exactly(
    make_settings: Any, make_client: Any, script: dict[str, Any], data: dict[str, Any]
) -> None:
    settings = make_settings(generate_titles=True)  # a title event before `end`
    client = await make_client(settings, FakeRegistry(settings, **script))
    messages = [{"role": "user", "content": f"question {n} " + "word " * 10} for n in range(24)]
    response = await client.post("/api/v1/chat", json={"id": "s", "messages": messages, "data": data})
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    adapter = TypeAdapter(StreamEvent)
    for line in lines:
        # Parsed as the documented union and written back: the same bytes, nothing added or lost.
        assert adapter.dump_json(adapter.validate_json(line)).decode() == line
    assert len(lines) >= 3


SMALL_PROMPTS_MODELS = [
    ModelInfo(id="fake-model", name="Fake Model", provider="local", context_length=4096, default=True),
    ModelInfo(id="fake-small", name="Fake Small", provider="local", context_length=256),
    ModelInfo(id="fake-wide", name="Fake Wide", provider="together", context_length=131_072),
]


class TinyPromptRegistry(FakeRegistry):
    """Three context windows, and a prompt that takes one token a message, so that even the
    largest max_tokens a model accepts leaves the prompt room."""

    async def list_models(self) -> list[ModelInfo]:
        return SMALL_PROMPTS_MODELS

    async def count_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> int:
        return len(messages)


async def test_models_expose_sampling_defaults_and_ranges(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(default_max_tokens=1024)
    client = await make_client(settings, TinyPromptRegistry(settings))
    models = {m["id"]: m for m in (await client.get("/api/v1/models")).json()["models"]}
    assert models["fake-model"]["sampling"] == {
        "temperature": {"default": 0.7, "min": 0.0, "max": 2.0, "step": 0.05},
        "top_p": {"default": 0.95, "min": 0.01, "max": 1.0, "step": 0.01},
        "max_tokens": {"default": 1024, "min": 1, "max": 4095, "step": 1},
    }
    # The default max_tokens is at most half the window; the largest is below the window, and the cap.
    assert models["fake-small"]["sampling"]["max_tokens"] == {"default": 128, "min": 1, "max": 255, "step": 1}
    assert models["fake-wide"]["sampling"]["max_tokens"] == {"default": 1024, "min": 1, "max": 32768, "step": 1}


async def test_exposed_ranges_are_exactly_what_chat_accepts(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    registry = TinyPromptRegistry(settings)
    client = await make_client(settings, registry)
    checked = 0
    for model in (await client.get("/api/v1/models")).json()["models"]:
        for option, limits in model["sampling"].items():
            step = limits["step"]
            for value, accepted in [
                (limits["min"], True),
                (limits["max"], True),
                (round(limits["min"] - step, 2), False),
                (round(limits["max"] + step, 2), False),
            ]:
                data = {"model": model["id"], option: value}
                response = await client.post(
                    "/api/v1/chat", json={"id": "r", "messages": [{"role": "user", "content": "Hi"}], "data": data}
                )
                if accepted:
                    assert response.status_code == 200, (data, response.text)
                    assert registry.last_model is not None and registry.last_model.options is not None
                    assert getattr(registry.last_model.options, option) == value
                else:
                    assert response.status_code == 400, data
                    assert response.json()["code"] == "option_out_of_range", (data, response.text)
                checked += 1
    assert checked == 3 * 3 * 4


async def test_defaults_reach_the_model_when_options_are_absent(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    registry = TinyPromptRegistry(settings)
    client = await make_client(settings, registry)
    for model in (await client.get("/api/v1/models")).json()["models"]:
        data = {"model": model["id"]}
        response = await client.post(
            "/api/v1/chat", json={"id": "d", "messages": [{"role": "user", "content": "Hi"}], "data": data}
        )
        assert response.status_code == 200
        options = registry.last_model.options if registry.last_model else None
        assert options is not None
        sampling = model["sampling"]
        assert (options.temperature, options.top_p, options.max_tokens) == (
            sampling["temperature"]["default"],
            sampling["top_p"]["default"],
            sampling["max_tokens"]["default"],
        )


async def test_top_p_zero_is_refused_with_the_accepted_range(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings))
    response = await client.post(
        "/api/v1/chat", json={"id": "p", "messages": [{"role": "user", "content": "Hi"}], "data": {"top_p": 0}}
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Option 'data.top_p' must be between 0.01 and 1.0; got 0.",
        "code": "option_out_of_range",
    }
