"""Titles: the fallback from the first message, and cleaning what a model answers when asked
for a summary title (outputs as small instruct models really give them)."""

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from app.services.titles import SUMMARY_MAX_TOKENS, TITLE_MAX_CHARS, clean_title, make_title, summarize_title


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Reverse a list in Python", "Reverse a list in Python"),
        ('"Reversing a List in Python"', "Reversing a List in Python"),
        ("“Reversing a List in Python”", "Reversing a List in Python"),
        ("'TCP vs UDP'", "TCP vs UDP"),
        ("Title: Reversing a List in Python.", "Reversing a List in Python"),
        ("**Title:** Python List Reversal", "Python List Reversal"),
        ('Conversation title - "Sorting a dict by value"!', "Sorting a dict by value"),
        ("# Python List Reversal", "Python List Reversal"),
        ("*XSS Test Payload*", "XSS Test Payload"),
        ("`my_list[::-1]` slicing explained", "my_list[::-1] slicing explained"),
        ("Autumn's whispers", "Autumn's whispers"),
        ("  Reverse   a list\tin Python  ", "Reverse a list in Python"),
        ("Title:\nTCP vs UDP\n\nThis title sums up the comparison.", "TCP vs UDP"),
        ("\n\nXSS Test Payload\n", "XSS Test Payload"),
        ("Hi Chat", "Hi Chat"),
    ],
)
def test_clean_title_keeps_only_the_title(raw: str, title: str) -> None:
    assert clean_title(raw) == title


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   \n\n ",
        '""',
        "Title:",
        "...",
        "I'm sorry, but I can't help with that.",
        "I’m sorry, I cannot create a title for this conversation.",
        "Sorry, I can't do that.",
        "As an AI language model, I don't name conversations.",
        # It answered the question instead of naming the conversation.
        "You can reverse a list in Python with slicing, my_list[::-1], or with the reverse() method in place.",
    ],
)
def test_clean_title_gives_none_when_there_is_no_title(raw: str) -> None:
    assert clean_title(raw) is None


def test_clean_title_cuts_a_long_title_at_a_word_boundary() -> None:
    raw = "Understanding Asynchronous Generators, Context Managers and Cancellation Semantics"
    title = clean_title(raw)
    assert title == "Understanding Asynchronous Generators, Context Managers and"
    assert len(title) <= TITLE_MAX_CHARS


def test_clean_title_cuts_one_endless_word_at_the_limit() -> None:
    assert clean_title("x" * 100) == "x" * TITLE_MAX_CHARS


def test_make_title_uses_the_first_line_of_the_first_message() -> None:
    assert make_title("\n## How do I reverse a list?\nI tried reversed().") == "How do I reverse a list?"
    assert make_title("   \n ") == "New chat"
    long = "Please explain in detail how Python decides which method to call with multiple inheritance"
    assert make_title(long) == "Please explain in detail how Python decides which method to…"


class TitleModel(BaseChatModel):
    """Answers every call with `answer` (or raises it) and records what it was asked."""

    answer: str | Exception
    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "title-fake"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.calls.append((messages, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.answer))])


async def test_summarize_title_asks_briefly_and_cleans_the_answer() -> None:
    model = TitleModel(answer='Title: "Reversing a List in Python."')
    reply = "Use slicing: my_list[::-1] returns a reversed copy. " * 200  # a long reply is cut in the prompt
    title = await summarize_title(model, "How do I reverse a list in Python?", reply)
    assert title == "Reversing a List in Python"
    [(messages, kwargs)] = model.calls
    assert kwargs["temperature"] == 0 and kwargs["max_tokens"] == SUMMARY_MAX_TOKENS
    prompt = messages[-1].text
    assert "How do I reverse a list in Python?" in prompt and "my_list[::-1]" in prompt
    assert len(prompt) < 3000


async def test_summarize_title_gives_none_on_a_refusal_or_a_failure() -> None:
    refusing = TitleModel(answer="I'm sorry, but I can't help with that.")
    assert await summarize_title(refusing, "hi", "Hello!") is None
    unreachable = TitleModel(answer=ConnectionError("the engine is restarting"))
    assert await summarize_title(unreachable, "hi", "Hello!") is None
