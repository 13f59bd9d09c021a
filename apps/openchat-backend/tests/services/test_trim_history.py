"""History trimming: oldest turns go first, system prompts stay, nothing starts with a reply,
and each message is counted once (the work grows with the history, not its square)."""

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.services.chat import trim_history


def count_words(messages: list[BaseMessage]) -> int:
    return sum(len(m.text.split()) for m in messages)


class Counters:
    """A word-counting tokenizer that records what it was asked: whole prompts (`count`) and
    each message's share (`count_each`)."""

    def __init__(self, template_tokens: int = 0) -> None:
        self.template_tokens = template_tokens  # what the template adds once per prompt
        self.prompts_counted: list[int] = []  # the length of every prompt counted whole
        self.messages_counted = 0

    async def count(self, messages: list[BaseMessage]) -> int:
        self.prompts_counted.append(len(messages))
        return self.template_tokens + count_words(messages)

    async def count_each(self, messages: list[BaseMessage]) -> list[int]:
        self.messages_counted += len(messages)
        return [count_words([m]) for m in messages]


def conversation(turns: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("sys prompt")]
    for turn in range(turns):
        messages += [HumanMessage(f"q{turn} a b c"), AIMessage(f"r{turn} a b c")]
    return [*messages, HumanMessage("last one")]


async def test_everything_fits_nothing_is_dropped() -> None:
    messages = conversation(3)
    counters = Counters()
    assert await trim_history(messages, 1000, counters.count, counters.count_each) == (messages, 0, 28)


@pytest.mark.parametrize("template_tokens", [0, 7])
async def test_oldest_turns_are_dropped_first_and_the_system_prompt_kept(template_tokens: int) -> None:
    messages = conversation(10)  # 2 + 10*8 + 2 = 84 words
    counters = Counters(template_tokens)
    kept, omitted, tokens = await trim_history(messages, 30, counters.count, counters.count_each)
    assert kept[0].text == "sys prompt"
    assert isinstance(kept[1], HumanMessage)
    assert kept[-1].text == "last one"
    assert tokens == template_tokens + count_words(kept) <= 30
    assert omitted == len(messages) - len(kept)
    # As many recent turns as fit: adding back the newest dropped turn would overflow.
    dropped = [m for m in messages if m not in kept]
    assert template_tokens + count_words([*kept, *dropped[-2:]]) > 30


async def test_shares_that_undercount_still_give_a_prompt_that_fits() -> None:
    # Tokens merging across messages make the whole prompt a little longer than its shares.
    messages = conversation(10)
    counters = Counters()

    async def undercount_each(batch: list[BaseMessage]) -> list[int]:
        # Recent messages' shares too small, older ones' too large (their sum is about right).
        sizes = await counters.count_each(batch)
        return [size - 2 if index > len(sizes) // 2 else size + 2 for index, size in enumerate(sizes)]

    kept, _, tokens = await trim_history(messages, 30, counters.count, undercount_each)
    assert len(counters.prompts_counted) == 3  # the first pick was too long, so it was counted again
    assert tokens == count_words(kept) <= 30
    assert isinstance(kept[1], HumanMessage) and kept[-1].text == "last one"


async def test_a_single_message_that_cannot_fit_is_an_error() -> None:
    counters = Counters()
    with pytest.raises(ValueError):
        await trim_history([SystemMessage("s"), HumanMessage("x " * 50)], 10, counters.count, counters.count_each)


@pytest.mark.parametrize("turns", [50, 1500, 15_000])
async def test_each_message_is_counted_once_and_whole_prompts_a_few_times(turns: int) -> None:
    # Structural, not timed: trimming a history of n messages counts each of them once, and
    # whole prompts only as long as what is kept, so its work is linear in n.
    messages = conversation(turns)
    counters = Counters(template_tokens=5)
    kept, _, _ = await trim_history(messages, 100, counters.count, counters.count_each)
    assert counters.messages_counted == len(messages)
    # Whole prompts: the last message alone, then the kept one; never the whole history.
    assert counters.prompts_counted == [2, len(kept)]
