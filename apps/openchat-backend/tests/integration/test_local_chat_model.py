"""The LangChain chat model over llama.cpp, used directly (sync, async, early close)."""

import time
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from app.llm.local import ChatLocalLlama, to_llama_messages
from app.llm.registry import ChatOptions, ModelRegistry
from tests.conftest import FAST_MODEL


def local_model(make_settings: Any, max_tokens: int = 24) -> ChatLocalLlama:
    registry = ModelRegistry(make_settings())
    info = next(m for m in registry._local_models() if m.id == FAST_MODEL)
    model = registry.chat_model(info, ChatOptions(temperature=0.0, top_p=0.95, max_tokens=max_tokens))
    assert isinstance(model, ChatLocalLlama)
    return model


def test_invoke_and_stream_return_a_real_reply_with_usage(make_settings: Any) -> None:
    model = local_model(make_settings)
    reply = model.invoke([SystemMessage("Answer in one short sentence."), HumanMessage("What is Python?")])
    assert "python" in reply.text.lower()
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 3
    chunks = [chunk.text for chunk in model.stream("Count from one to five.")]
    assert len([c for c in chunks if c]) >= 5


async def test_closing_the_stream_early_stops_generation(make_settings: Any) -> None:
    model = local_model(make_settings, max_tokens=400)
    prompt = "Write a very long story about a dragon."
    stream = model.astream(prompt)
    received = 0
    async for chunk in stream:
        received += bool(chunk.text)
        if received == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while model.engine._pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert model.engine._pending == 0
    # The context holds the prompt plus only the few tokens generated before the close.
    prompt_tokens = len(model.engine.prompt_tokens(to_llama_messages([HumanMessage(prompt)])))
    assert model.engine._llama.n_tokens - prompt_tokens <= received + 5
    reply = await model.ainvoke("Say OK.")
    assert reply.text
