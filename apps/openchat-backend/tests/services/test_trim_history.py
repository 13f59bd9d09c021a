"""History trimming: oldest turns go first, system prompts stay, nothing starts with a reply."""

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.services.chat import trim_history


def count_words(messages: list[BaseMessage]) -> int:
    return sum(len(m.text.split()) for m in messages)


async def words(messages: list[BaseMessage]) -> int:
    return count_words(messages)


def conversation(turns: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("sys prompt")]
    for turn in range(turns):
        messages += [HumanMessage(f"q{turn} a b c"), AIMessage(f"r{turn} a b c")]
    return [*messages, HumanMessage("last one")]


async def test_everything_fits_nothing_is_dropped() -> None:
    messages = conversation(3)
    assert await trim_history(messages, 1000, words) == (messages, 0)


async def test_oldest_turns_are_dropped_first_and_the_system_prompt_kept() -> None:
    messages = conversation(10)  # 2 + 10*8 + 2 = 84 words
    kept, omitted = await trim_history(messages, 30, words)
    assert kept[0].text == "sys prompt"
    assert isinstance(kept[1], HumanMessage)
    assert kept[-1].text == "last one"
    assert count_words(kept) <= 30
    assert omitted == len(messages) - len(kept)
    # As many recent turns as fit: adding back the newest dropped turn would overflow.
    dropped = [m for m in messages if m not in kept]
    assert count_words([*kept, *dropped[-2:]]) > 30


async def test_a_single_message_that_cannot_fit_is_an_error() -> None:
    with pytest.raises(ValueError):
        await trim_history([SystemMessage("s"), HumanMessage("x " * 50)], 10, words)
