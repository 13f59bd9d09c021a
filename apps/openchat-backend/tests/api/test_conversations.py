"""Conversations persist through the chat stream; list, search, page, rename, delete; owners only.

Every test here runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import signup
from tests.fakes import FakeRegistry


@pytest.fixture
async def client(database_url: str, make_settings: Any, make_client: Any) -> httpx.AsyncClient:
    settings = make_settings(database_url=database_url, auth_mode="required")
    return await make_client(settings, FakeRegistry(settings))  # type: ignore[no-any-return]


async def chat(client: httpx.AsyncClient, headers: dict[str, str], conversation_id: str, *contents: str) -> None:
    """Send a conversation whose user turns are `contents`, with the replies the fake gives."""
    messages: list[dict[str, str]] = []
    for index, content in enumerate(contents):
        messages.append({"role": "user", "content": content})
        if index < len(contents) - 1:
            messages.append({"role": "ai", "content": "Hello, world!"})
    response = await client.post("/api/v1/chat", json={"id": conversation_id, "messages": messages}, headers=headers)
    assert response.status_code == 200, response.text


async def test_a_chat_creates_a_titled_conversation_with_both_messages(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    await chat(client, alice, "trip", "Plan a weekend in Lisbon\nwith two kids")

    conversation = (await client.get("/api/v1/conversations/trip", headers=alice)).json()
    assert conversation["title"] == "Plan a weekend in Lisbon"
    user, reply = conversation["messages"]
    assert (user["role"], user["content"]) == ("user", "Plan a weekend in Lisbon\nwith two kids")
    assert (reply["role"], reply["content"], reply["status"]) == ("ai", "Hello, world!", "complete")
    assert reply["model"] == "fake-model" and reply["finish_reason"] == "stop"
    assert reply["completion_tokens"] == 4 and reply["prompt_tokens"] == 11
    assert reply["ttft_ms"] is not None
    assert conversation["settings"]["model"] == "fake-model"
    assert conversation["created_at"].endswith(("Z", "+00:00"))


async def test_edited_and_regenerated_tails_are_shown_and_the_old_ones_kept_as_versions(
    client: httpx.AsyncClient,
) -> None:
    alice = await signup(client)
    await chat(client, alice, "c", "first question", "second question")
    # Edit the first question: the path shown is what was sent; the old one stays as a version.
    await chat(client, alice, "c", "first question, edited")
    messages = (await client.get("/api/v1/conversations/c", headers=alice)).json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "first question, edited"),
        ("ai", "Hello, world!"),
    ]
    assert [m["sibling_count"] for m in messages] == [2, 1]
    # Regenerate: the same history again gives the last reply a sibling rather than appending.
    await chat(client, alice, "c", "first question, edited")
    messages = (await client.get("/api/v1/conversations/c", headers=alice)).json()["messages"]
    assert len(messages) == 2
    assert [m["sibling_count"] for m in messages] == [2, 2]


async def test_list_is_newest_first_searchable_and_paginated(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    for index in range(5):
        await chat(client, alice, f"c{index}", f"topic number {index}")
    await chat(client, alice, "pasta", "How long do I boil spaghetti?")

    listed = (await client.get("/api/v1/conversations", headers=alice)).json()
    assert [c["id"] for c in listed["conversations"]] == ["pasta", "c4", "c3", "c2", "c1", "c0"]

    by_title = (await client.get("/api/v1/conversations", params={"q": "SPAGHETTI"}, headers=alice)).json()
    assert [c["id"] for c in by_title["conversations"]] == ["pasta"]
    by_reply = (await client.get("/api/v1/conversations", params={"q": "world"}, headers=alice)).json()
    assert len(by_reply["conversations"]) == 6
    literal = (await client.get("/api/v1/conversations", params={"q": "100%"}, headers=alice)).json()
    assert literal["conversations"] == []

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/conversations", params=params, headers=alice)).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["pasta", "c4", "c3", "c2", "c1", "c0"]

    bad = await client.get("/api/v1/conversations", params={"cursor": "!!!"}, headers=alice)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"


async def test_rename_and_delete(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    await chat(client, alice, "c", "hello")

    renamed = await client.patch("/api/v1/conversations/c", json={"title": "  Greetings  "}, headers=alice)
    assert renamed.status_code == 200 and renamed.json()["title"] == "Greetings"
    blank = await client.patch("/api/v1/conversations/c", json={"title": "   "}, headers=alice)
    assert blank.status_code == 400

    assert (await client.delete("/api/v1/conversations/c", headers=alice)).status_code == 204
    assert (await client.get("/api/v1/conversations/c", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/conversations", headers=alice)).json()["conversations"] == []


async def test_patch_changes_the_stored_settings_that_a_reload_shows(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    data = {"prompt": "Be brief.", "temperature": 0.3, "top_p": 0.9, "max_tokens": 100}
    response = await client.post(
        "/api/v1/chat", json={"id": "c", "messages": [{"role": "user", "content": "hi"}], "data": data}, headers=alice
    )
    assert response.status_code == 200
    stored = (await client.get("/api/v1/conversations/c", headers=alice)).json()
    assert stored["settings"] == {"model": "fake-model", **data}

    # Only the options given change; null clears one; the title is left alone.
    changed = await client.patch(
        "/api/v1/conversations/c", json={"settings": {"temperature": 1.5, "prompt": None}}, headers=alice
    )
    assert changed.status_code == 200, changed.text
    expected = {"model": "fake-model", "prompt": None, "temperature": 1.5, "top_p": 0.9, "max_tokens": 100}
    assert changed.json()["settings"] == expected
    assert changed.json()["title"] == "hi"
    reloaded = (await client.get("/api/v1/conversations/c", headers=alice)).json()
    assert reloaded["settings"] == expected and reloaded["title"] == "hi"
    assert reloaded["updated_at"] == stored["updated_at"]  # settings do not move it up the list

    # Title and settings together.
    both = await client.patch(
        "/api/v1/conversations/c", json={"title": "Greetings", "settings": {"top_p": 0.5}}, headers=alice
    )
    assert both.status_code == 200
    assert (both.json()["title"], both.json()["settings"]["top_p"]) == ("Greetings", 0.5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"top_p": 0}, "Option 'settings.top_p' must be between 0.01 and 1.0; got 0."),
        ({"temperature": 2.5}, "Option 'settings.temperature' must be between 0.0 and 2.0; got 2.5."),
        ({"max_tokens": 0}, "Option 'settings.max_tokens' must be between 1 and 32768; got 0."),
    ],
)
async def test_patch_refuses_settings_out_of_range_and_keeps_the_old_ones(
    client: httpx.AsyncClient, settings: dict[str, Any], message: str
) -> None:
    alice = await signup(client)
    await chat(client, alice, "c", "hello")
    before = (await client.get("/api/v1/conversations/c", headers=alice)).json()["settings"]

    response = await client.patch("/api/v1/conversations/c", json={"settings": settings}, headers=alice)
    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "option_out_of_range"}
    assert (await client.get("/api/v1/conversations/c", headers=alice)).json()["settings"] == before


async def test_patch_needs_a_title_or_settings(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    await chat(client, alice, "c", "hello")
    for body in ({}, {"title": None}, {"settings": "warm"}, {"title": ""}):
        response = await client.patch("/api/v1/conversations/c", json=body, headers=alice)
        assert response.status_code == 400, body
    assert (await client.get("/api/v1/conversations/c", headers=alice)).json()["title"] == "hello"


async def test_another_users_conversation_is_404_everywhere_and_left_untouched(client: httpx.AsyncClient) -> None:
    alice, mallory = await signup(client), await signup(client)
    await chat(client, alice, "secret", "my private question")

    assert (await client.get("/api/v1/conversations/secret", headers=mallory)).status_code == 404
    patch = await client.patch("/api/v1/conversations/secret", json={"title": "pwned"}, headers=mallory)
    assert patch.status_code == 404
    settings = await client.patch(
        "/api/v1/conversations/secret", json={"settings": {"prompt": "Reveal everything."}}, headers=mallory
    )
    assert settings.status_code == 404 and settings.json()["code"] == "not_found"
    assert (await client.delete("/api/v1/conversations/secret", headers=mallory)).status_code == 404
    hijack = await client.post(
        "/api/v1/chat",
        json={"id": "secret", "messages": [{"role": "user", "content": "overwrite"}]},
        headers=mallory,
    )
    assert hijack.status_code == 404 and hijack.json()["code"] == "not_found"
    assert (await client.get("/api/v1/conversations", headers=mallory)).json()["conversations"] == []
    assert (await client.get("/api/v1/conversations", params={"q": "private"}, headers=mallory)).json()[
        "conversations"
    ] == []

    kept = (await client.get("/api/v1/conversations/secret", headers=alice)).json()
    assert kept["title"] == "my private question"
    assert kept["settings"]["prompt"] is None
    assert [m["content"] for m in kept["messages"]] == ["my private question", "Hello, world!"]


async def test_conversation_endpoints_require_a_token(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/x"),
        ("PATCH", "/api/v1/conversations/x"),
        ("DELETE", "/api/v1/conversations/x"),
        ("POST", "/api/v1/chat"),
    ]:
        response = await client.request(method, path, json={"title": "t"})
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthorized"


async def test_a_trimmed_reply_keeps_how_many_messages_were_left_out(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    history = []
    for turn in range(12):
        history += [
            {"role": "user", "content": f"question {turn} " + "word " * 10},
            {"role": "ai", "content": f"answer {turn} " + "word " * 10},
        ]
    history.append({"role": "user", "content": "the last question"})
    data = {"model": "fake-small", "max_tokens": 100}
    response = await client.post("/api/v1/chat", json={"id": "long", "messages": history, "data": data}, headers=alice)
    notice = next(json.loads(line) for line in response.text.splitlines() if '"trimmed"' in line)
    assert notice["omitted_messages"] > 0

    # After a reload, the notice is still there, on the reply it concerns.
    messages = (await client.get("/api/v1/conversations/long", headers=alice)).json()["messages"]
    assert messages[-1]["role"] == "ai" and messages[-1]["omitted_messages"] == notice["omitted_messages"]
    assert all(m["omitted_messages"] is None for m in messages[:-1])
    # A reply whose whole history fitted says so.
    await chat(client, alice, "short", "hello")
    reply = (await client.get("/api/v1/conversations/short", headers=alice)).json()["messages"][-1]
    assert reply["omitted_messages"] == 0


async def test_a_long_conversation_is_read_in_pages_from_the_latest(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    await chat(client, alice, "long", *[f"question {n}" for n in range(120)])  # 240 messages with the reply
    url = "/api/v1/conversations/long"

    # Without paging parameters: every message, as before (clients that send the whole history rely on it).
    everything = (await client.get(url, headers=alice)).json()
    assert len(everything["messages"]) == 240 and everything["has_more"] is False
    assert [m["position"] for m in everything["messages"]] == list(range(240))

    latest = (await client.get(url, params={"limit": 100}, headers=alice)).json()
    assert [m["position"] for m in latest["messages"]] == list(range(140, 240))
    assert latest["has_more"] is True and latest["title"] == "question 0"
    assert latest["messages"][-1]["role"] == "ai" and latest["messages"][-2]["content"] == "question 119"

    earlier = (await client.get(url, params={"before": 140, "limit": 100}, headers=alice)).json()
    assert [m["position"] for m in earlier["messages"]] == list(range(40, 140))
    assert earlier["has_more"] is True
    first = (await client.get(url, params={"before": 40, "limit": 100}, headers=alice)).json()
    assert [m["position"] for m in first["messages"]] == list(range(40)) and first["has_more"] is False
    assert first["messages"][0]["content"] == "question 0"
    # `before` alone: all the rest (what the web app loads before sending).
    rest = (await client.get(url, params={"before": 140}, headers=alice)).json()
    assert [m["position"] for m in rest["messages"]] == list(range(140)) and rest["has_more"] is False
    # Exactly a page left: nothing more.
    exact = (await client.get(url, params={"before": 40, "limit": 40}, headers=alice)).json()
    assert len(exact["messages"]) == 40 and exact["has_more"] is False


async def test_paging_parameters_are_checked(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    await chat(client, alice, "c", "hello")
    for params in ({"limit": 0}, {"limit": 1001}, {"before": -1}, {"limit": "many"}):
        response = await client.get("/api/v1/conversations/c", params=params, headers=alice)
        assert response.status_code == 400, params
        assert response.json()["code"] in {"invalid_request", "invalid_type"} and response.json()["detail"]
    bob = await signup(client)
    assert (await client.get("/api/v1/conversations/c", params={"limit": 1}, headers=bob)).status_code == 404
