"""Hostile sizes: too many messages or too long a message is refused before anything is stored
or started, and a long history is trimmed counting each message once."""

import json
from collections.abc import Callable
from typing import Any

import httpx
from langchain_core.messages import BaseMessage

from app.core.config import Settings
from app.llm.registry import ModelInfo
from tests.fakes import FakeRegistry


class CountingRegistry(FakeRegistry):
    """Records how many messages the token counters were given."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.prompt_messages_counted = 0  # over every whole-prompt count
        self.messages_counted_each = 0

    async def count_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> int:
        self.prompt_messages_counted += len(messages)
        return await super().count_tokens(info, messages)

    async def count_message_tokens(self, info: ModelInfo, messages: list[BaseMessage]) -> list[int]:
        self.messages_counted_each += len(messages)
        return [sum(len(m.text.split()) + 4 for m in [message]) for message in messages]


def history(messages: int, content: str = "hi") -> list[dict[str, str]]:
    """`messages` alternating user and ai messages, ending with the user's."""
    roles = ["ai", "user"] * messages
    return [{"role": role, "content": content} for role in roles[-messages:]]


async def client_for(
    make_settings: Callable[..., Settings], make_client: Any, **overrides: Any
) -> tuple[httpx.AsyncClient, CountingRegistry]:
    settings = make_settings(**overrides)
    registry = CountingRegistry(settings)
    return await make_client(settings, registry), registry


async def test_too_many_messages_is_400_and_nothing_is_stored_or_started(make_settings: Any, make_client: Any) -> None:
    client, registry = await client_for(make_settings, make_client)
    # The request: 30,000 tiny messages, under the body limit.
    body = json.dumps({"id": "flood", "messages": history(30_001)}, separators=(",", ":")).encode()
    assert len(body) < 1_000_000
    response = await client.post("/api/v1/chat", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_messages"
    assert "30,001 messages" in response.json()["detail"]
    assert "1,000" in response.json()["detail"] and "OPENCHAT_MAX_MESSAGES" in response.json()["detail"]
    assert registry.last_model is None and registry.prompt_messages_counted == 0
    assert (await client.get("/api/v1/conversations/flood")).status_code == 404
    # At the limit it is served.
    response = await client.post("/api/v1/chat", json={"id": "flood", "messages": history(1000)})
    assert response.status_code == 200
    assert len((await client.get("/api/v1/conversations/flood")).json()["messages"]) == 1001


async def test_the_message_limit_is_a_setting(make_settings: Any, make_client: Any) -> None:
    client, _ = await client_for(make_settings, make_client, max_messages=3)
    response = await client.post("/api/v1/chat", json={"id": "c", "messages": history(5)})
    assert response.status_code == 400 and response.json()["code"] == "too_many_messages"
    assert (await client.post("/api/v1/chat", json={"id": "c", "messages": history(3)})).status_code == 200


async def test_a_too_long_message_is_400_and_nothing_is_stored(make_settings: Any, make_client: Any) -> None:
    client, registry = await client_for(make_settings, make_client, max_message_chars=1000)
    messages = history(3, "x" * 1000)
    messages[1]["content"] = "y" * 1001  # the reply in the middle: any message counts
    response = await client.post("/api/v1/chat", json={"id": "long", "messages": messages})
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "message_too_long"
    assert "Message 2 has 1,001 characters" in error["detail"] and "OPENCHAT_MAX_MESSAGE_CHARS" in error["detail"]
    assert registry.last_model is None
    assert (await client.get("/api/v1/conversations/long")).status_code == 404
    messages[1]["content"] = "y" * 1000
    assert (await client.post("/api/v1/chat", json={"id": "long", "messages": messages})).status_code == 200


async def test_the_default_message_length_limit_takes_a_long_paste(make_settings: Any, make_client: Any) -> None:
    client, _ = await client_for(make_settings, make_client)
    paste = "word " * 19_000  # 95,000 characters: a long document pasted in whole
    response = await client.post("/api/v1/chat", json={"id": "p", "messages": [{"role": "user", "content": paste}]})
    # Served up to the model's window: far too long for it, which says so in its own words.
    assert response.json()["code"] == "message_too_long" and "context tokens" in response.json()["detail"]
    response = await client.post("/api/v1/chat", json={"id": "p", "messages": [{"role": "user", "content": paste * 2}]})
    assert response.json()["code"] == "message_too_long" and "100,000" in response.json()["detail"]


async def test_trimming_a_long_history_counts_each_message_once(make_settings: Any, make_client: Any) -> None:
    client, registry = await client_for(make_settings, make_client)
    messages = history(999, "a few words here")
    response = await client.post("/api/v1/chat", json={"id": "c", "messages": messages})
    assert response.status_code == 200
    trimmed = next(json.loads(line) for line in response.text.splitlines() if '"trimmed"' in line)
    kept = 999 - trimmed["omitted_messages"]
    assert registry.messages_counted_each == 999
    # Whole prompts: the last message alone, then what was kept; never the whole history.
    assert registry.prompt_messages_counted == 1 + kept
