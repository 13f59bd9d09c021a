"""The LangChain chat model of a local model, used directly: the engine's OpenAI-compatible
endpoint through the same `ChatOpenAI` path as remote servers (sync, async, early close,
a summary title)."""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from app.core.config import Settings
from app.llm.registry import ChatOptions, ModelRegistry
from app.services.titles import SUMMARY_MAX_TOKENS, TITLE_MAX_CHARS, make_title, summarize_title
from tests.conftest import FAST_MODEL
from tests.integration.conftest import engine_idle, engine_slots, engine_tokens_generated


@pytest.fixture
async def registry(make_settings: Callable[..., Settings]) -> AsyncIterator[ModelRegistry]:
    registry = ModelRegistry(make_settings(local_slots=1))
    yield registry
    await registry.aclose_clients()
    registry.close()


async def local_model(registry: ModelRegistry, max_tokens: int = 24, temperature: float = 0.0) -> Any:
    info = next(m for m in registry._local_models() if m.id == FAST_MODEL)
    await registry.engine(info).ready()
    return registry.chat_model(info, ChatOptions(temperature=temperature, top_p=0.95, max_tokens=max_tokens))


async def test_invoke_and_stream_return_a_real_reply_with_usage(registry: ModelRegistry) -> None:
    model = await local_model(registry)
    reply = await model.ainvoke([SystemMessage("Answer in one short sentence."), HumanMessage("What is Python?")])
    assert "python" in reply.text.lower()
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 3
    chunks = [chunk.text async for chunk in model.astream("Count from one to five.")]
    assert len([c for c in chunks if c]) >= 5


async def test_closing_the_stream_early_stops_generation_in_the_engine(registry: ModelRegistry) -> None:
    model = await local_model(registry, max_tokens=400)
    engine = registry.engines.find(FAST_MODEL)
    assert engine is not None
    generated_before = engine_tokens_generated(engine)
    stream = model.astream("Write a very long story about a dragon.")
    received = 0
    async for chunk in stream:
        received += bool(chunk.text)
        if received == 3:
            slot = engine_slots(engine)[0]  # one slot: ours
            assert slot["is_processing"]  # the engine is generating for us
            # It runs ahead of this reader while we look: what it had decoded when we closed.
            decoded_at_close = slot["next_token"][0]["n_decoded"]
            break
    await stream.aclose()
    # What it had decoded once the close was done (this process may take a moment to run it on a busy machine).
    slot = engine_slots(engine)[0]
    decoded_after_close = slot["next_token"][0]["n_decoded"] if slot["is_processing"] else 0
    deadline = time.monotonic() + 10
    while not engine_idle(engine):
        assert time.monotonic() < deadline, "the engine kept generating after the stream was closed"
        await asyncio.sleep(0.02)  # the loop must run: closing the HTTP stream happens on it
    # The engine generated only a token or two past the close, far from the 400 allowed.
    closed_at = max(received, decoded_at_close, decoded_after_close)
    assert engine_tokens_generated(engine) - generated_before <= closed_at + 3
    reply = await model.ainvoke("Say OK.")
    assert reply.text


async def test_the_model_summarises_the_first_exchange_in_a_short_title(registry: ModelRegistry) -> None:
    # A chat's own settings: the title asks for far fewer tokens, and no randomness.
    model = await local_model(registry, max_tokens=2048, temperature=0.7)
    question = "How do I reverse a list in Python?"
    reply = "Use slicing: my_list[::-1] returns a reversed copy. To reverse the list in place, call my_list.reverse()."
    title = await summarize_title(model, question, reply)
    assert title is not None
    assert 0 < len(title) <= TITLE_MAX_CHARS and "\n" not in title
    assert not re.search(r"[\"“”`]", title) and title[0] not in "'‘" and title[-1] not in "'’"
    # A summary, not the first message again.
    words = re.findall(r"\w+", title.lower())
    assert title != make_title(question) and words != re.findall(r"\w+", question.lower())
    assert "list" in words or any(word.startswith("revers") for word in words)
    # The engine ran it with the title's own limits, not the chat's (its one slot: ours).
    engine = registry.engines.find(FAST_MODEL)
    assert engine is not None
    params = engine_slots(engine)[0]["params"]
    assert params["n_predict"] == SUMMARY_MAX_TOKENS and params["temperature"] == 0


async def test_the_prompt_bound_used_to_skip_counting_is_never_below_the_engines_count(
    registry: ModelRegistry,
) -> None:
    # A chat whose bound fits is sent without an exact count: the bound must hold for any text.
    info = next(m for m in registry._local_models() if m.id == FAST_MODEL)
    await registry.engine(info).ready()
    texts = [
        "Hi",
        "",
        "def f(x):\n    return {k: v for k, v in x.items() if v}\n" * 20,
        "Grüße aus Köln, naïve café, 日本語のテキスト, Ελληνικά, עברית, 🙂🚀👩‍💻" * 10,
        "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 40,
        "\n\n\t  \u00a0\u200b" * 50,
    ]
    for prompt in (None, "You are terse."):
        for text in texts:
            messages = ([SystemMessage(prompt)] if prompt else []) + [HumanMessage(text), HumanMessage(text[::-1])]
            exact = await registry.count_tokens(info, messages)
            bound = registry.prompt_tokens_bound(info, messages)
            assert bound is not None and bound >= exact, (text[:40], bound, exact)


async def test_each_messages_share_adds_up_to_the_engines_count_of_the_prompt(registry: ModelRegistry) -> None:
    # Trimming adds these shares up to pick the messages kept (app/services/chat.py): with the
    # real template and tokenizer, they must add up to the prompt's exact count, or nearly.
    info = next(m for m in registry._local_models() if m.id == FAST_MODEL)
    await registry.engine(info).ready()
    texts = [
        "Hi",
        "",
        "def f(x):\n    return {k: v for k, v in x.items() if v}\n",
        "Grüße aus Köln, 日本語のテキスト, 🙂🚀👩‍💻",
        "  leading and trailing spaces  ",
        "\n\nblank lines around\n\n",
        "<|im_end|> typed by a user",
    ]
    messages = [SystemMessage("You are terse.")] + [
        (HumanMessage if index % 2 == 0 else AIMessage)(text) for index, text in enumerate(texts * 3)
    ]
    messages.append(HumanMessage("last"))
    shares = await registry.count_message_tokens(info, messages)
    exact = await registry.count_tokens(info, messages)
    # The system prompt and the last message are always kept: the others' shares add up to the rest.
    alone = await registry.count_tokens(info, [messages[0], messages[-1]])
    # Within a token a message (a typed "<|im_end|>" is one token in the prompt, several in a share).
    assert abs(exact - (alone + sum(shares[1:-1]))) <= len(messages), (exact, alone, shares)
    plain = [HumanMessage(f"question {n} about Python") for n in range(20)]
    assert sum(await registry.count_message_tokens(info, plain[:-1])) + await registry.count_tokens(
        info, plain[-1:]
    ) == await registry.count_tokens(info, plain)
    # Counted once: the same texts again are remembered, and give the same shares.
    assert await registry.count_message_tokens(info, messages) == shares
