"""Every version kept: regenerate and edit-and-resend store siblings; GET shows one path with each
message's versions; POST /conversations/{id}/branch flips between them; sending continues from
the path shown.

Every test here runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app import crud
from app.core.db import make_engine, run_migrations
from tests.conftest import signup
from tests.fakes import FakeRegistry


@dataclass
class Chat:
    client: httpx.AsyncClient
    registry: FakeRegistry
    database_url: str
    headers: dict[str, str]

    async def send(self, conversation_id: str, *turns: str, reply: str = "Hello, world!") -> str:
        """Send a history (user, ai, user, ... ending with a user turn); the model answers `reply`.
        Returns the reply's message id."""
        self.registry.script["tokens"] = list(reply)
        roles = ["user", "ai"]
        messages = [{"role": roles[index % 2], "content": content} for index, content in enumerate(turns)]
        response = await self.client.post(
            "/api/v1/chat", json={"id": conversation_id, "messages": messages}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        start = json.loads(response.text.splitlines()[0])
        assert start["type"] == "start"
        return str(start["message_id"])

    async def shown(self, conversation_id: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/conversations/{conversation_id}", params=params, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def branch(self, conversation_id: str, message_id: str, **params: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/conversations/{conversation_id}/branch",
            json={"message_id": message_id},
            params=params,
            headers=self.headers,
        )

    def stored_rows(self, conversation_id: str) -> list[tuple[str, str]]:
        """Every stored message of the conversation (role, content), whichever path it is on."""
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                query = text(
                    "SELECT role, content FROM messages WHERE conversation_id = :c ORDER BY position, created_at"
                )
                return [(row[0], row[1]) for row in connection.execute(query, {"c": conversation_id})]
        finally:
            engine.dispose()


@pytest.fixture
async def chat(database_url: str, make_settings: Any, make_client: Any) -> Chat:
    settings = make_settings(database_url=database_url, auth_mode="required")
    registry = FakeRegistry(settings)
    client = await make_client(settings, registry)
    return Chat(client, registry, database_url, await signup(client))


def path(conversation: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in conversation["messages"]]


def versions(message: dict[str, Any]) -> tuple[int, int]:
    """What the UI shows under a message: `‹ index+1 / count ›`."""
    assert message["sibling_ids"][message["sibling_index"]] == message["id"]
    assert message["sibling_count"] == len(message["sibling_ids"])
    return message["sibling_index"] + 1, message["sibling_count"]


async def test_regenerate_keeps_the_old_reply_as_a_sibling_and_shows_the_new_one(chat: Chat) -> None:
    first = await chat.send("c", "Tell me a joke", reply="Why did the chicken")
    second = await chat.send("c", "Tell me a joke", reply="Knock knock")  # regenerate: the history without its reply

    conversation = await chat.shown("c")
    assert path(conversation) == [("user", "Tell me a joke"), ("ai", "Knock knock")]
    question, reply = conversation["messages"]
    assert reply["id"] == second and reply["sibling_ids"] == [first, second]
    assert versions(reply) == (2, 2) and versions(question) == (1, 1)
    assert reply["parent_id"] == question["id"] and question["parent_id"] is None
    assert [m["position"] for m in conversation["messages"]] == [0, 1]
    assert chat.stored_rows("c") == [("user", "Tell me a joke"), ("ai", "Why did the chicken"), ("ai", "Knock knock")]


async def test_flipping_back_shows_the_first_reply_and_the_path_below_it(chat: Chat) -> None:
    first = await chat.send("c", "Tell me a joke", reply="Why did the chicken")
    await chat.send("c", "Tell me a joke", "Why did the chicken", "Why?", reply="To cross the road")
    second = await chat.send("c", "Tell me a joke", reply="Knock knock")
    assert path(await chat.shown("c")) == [("user", "Tell me a joke"), ("ai", "Knock knock")]

    flipped = await chat.branch("c", first)
    assert flipped.status_code == 200, flipped.text
    assert path(flipped.json()) == [
        ("user", "Tell me a joke"),
        ("ai", "Why did the chicken"),
        ("user", "Why?"),
        ("ai", "To cross the road"),
    ]
    assert versions(flipped.json()["messages"][1]) == (1, 2)
    assert await chat.shown("c") == flipped.json()  # the choice is stored: a reload shows the same path

    back = await chat.branch("c", second)
    assert path(back.json()) == [("user", "Tell me a joke"), ("ai", "Knock knock")]
    assert versions(back.json()["messages"][1]) == (2, 2)


async def test_edit_and_resend_makes_a_sibling_of_the_user_message(chat: Chat) -> None:
    await chat.send("c", "first question", "Hello, world!", "second question")
    await chat.send("c", "first question", "Hello, world!", "second question, edited", reply="Edited answer")

    conversation = await chat.shown("c")
    assert path(conversation) == [
        ("user", "first question"),
        ("ai", "Hello, world!"),
        ("user", "second question, edited"),
        ("ai", "Edited answer"),
    ]
    edited = conversation["messages"][2]
    assert versions(edited) == (2, 2)
    assert all(versions(message) == (1, 1) for index, message in enumerate(conversation["messages"]) if index != 2)

    # The first message edited: a second root, with its own reply.
    await chat.send("c", "first question, edited")
    conversation = await chat.shown("c")
    assert path(conversation) == [("user", "first question, edited"), ("ai", "Hello, world!")]
    assert versions(conversation["messages"][0]) == (2, 2) and conversation["messages"][0]["parent_id"] is None

    # The old versions are all kept: flipping to the original first message shows its newest path.
    original = conversation["messages"][0]["sibling_ids"][0]
    assert path((await chat.branch("c", original)).json())[2:] == [
        ("user", "second question, edited"),
        ("ai", "Edited answer"),
    ]
    assert len(chat.stored_rows("c")) == 8


async def test_an_unchanged_history_resent_never_duplicates(chat: Chat) -> None:
    # An API client that sends the whole conversation each time.
    history = ["one"]
    for turn in ("two", "three"):
        await chat.send("c", *history)
        history += ["Hello, world!", turn]
    await chat.send("c", *history)
    assert len(chat.stored_rows("c")) == 6
    # The same history resent (a retry, or a regenerate): only a new reply each time.
    for _ in range(3):
        await chat.send("c", *history)
    rows = chat.stored_rows("c")
    assert [content for role, content in rows if role == "user"] == ["one", "two", "three"]
    assert len(rows) == 9
    conversation = await chat.shown("c")
    assert len(conversation["messages"]) == 6 and versions(conversation["messages"][-1]) == (4, 4)


async def test_sending_continues_from_the_path_shown_after_a_flip(chat: Chat) -> None:
    # Two versions of the reply with the same text: the message sent after a flip to the first
    # must follow the first, the one shown, not the newest.
    first = await chat.send("c", "Hi")
    second = await chat.send("c", "Hi")
    assert (await chat.branch("c", first)).status_code == 200

    await chat.send("c", "Hi", "Hello, world!", "And then?", reply="Then this")
    conversation = await chat.shown("c")
    assert path(conversation) == [("user", "Hi"), ("ai", "Hello, world!"), ("user", "And then?"), ("ai", "Then this")]
    reply_shown = conversation["messages"][1]
    assert reply_shown["id"] == first and versions(reply_shown) == (1, 2)
    assert conversation["messages"][2]["parent_id"] == first
    # The other version has nothing below it.
    assert path((await chat.branch("c", second)).json()) == [("user", "Hi"), ("ai", "Hello, world!")]


async def test_branch_is_404_for_another_user_and_for_a_message_not_in_the_conversation(chat: Chat) -> None:
    reply = await chat.send("c", "my private question")
    elsewhere = await chat.send("other", "another question")
    mallory = await signup(chat.client)

    stolen = await chat.client.post("/api/v1/conversations/c/branch", json={"message_id": reply}, headers=mallory)
    assert stolen.status_code == 404 and stolen.json()["code"] == "not_found"
    for message_id in (elsewhere, "0" * 32):
        response = await chat.branch("c", message_id)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert message_id in response.json()["detail"]
    assert (await chat.branch("nowhere", reply)).status_code == 404
    bad = await chat.client.post("/api/v1/conversations/c/branch", json={}, headers=chat.headers)
    assert bad.status_code == 400
    assert path(await chat.shown("c")) == [("user", "my private question"), ("ai", "Hello, world!")]


async def test_paging_works_on_the_path_shown(chat: Chat) -> None:
    turns = [f"question {n}" if n % 2 == 0 else "Hello, world!" for n in range(39)]  # 20 questions
    await chat.send("long", *turns)
    # A version of question 20 (position 20) with a different tail: 20 + 2 messages shown.
    await chat.send("long", *turns[:20], "question 20, edited", reply="Other")

    shown = await chat.shown("long", limit=5)
    assert [m["position"] for m in shown["messages"]] == list(range(17, 22)) and shown["has_more"] is True
    assert path(shown)[-2:] == [("user", "question 20, edited"), ("ai", "Other")]
    earlier = await chat.shown("long", before=17, limit=100)
    assert [m["position"] for m in earlier["messages"]] == list(range(17)) and earlier["has_more"] is False

    # Flipped back to the original question 20: the page is taken on that path; /branch pages too.
    original = shown["messages"][3]["sibling_ids"][0]
    flipped = (await chat.branch("long", original, limit=5)).json()
    assert [m["position"] for m in flipped["messages"]] == list(range(35, 40)) and flipped["has_more"] is True
    assert flipped["messages"][-1]["content"] == "Hello, world!"
    middle = await chat.shown("long", before=22, limit=2)
    assert path(middle) == [("user", "question 20"), ("ai", "Hello, world!")]


async def test_a_conversation_stored_before_branching_shows_unchanged_and_gets_versions(
    database_url: str, make_settings: Any, make_client: Any
) -> None:
    engine = make_engine(database_url)
    run_migrations(engine, "0003")
    written = [("user", "Hi", "complete"), ("ai", "Hello!", "complete"), ("user", "A joke?", "complete")]
    written.append(("ai", "Why did", "cancelled"))
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, created_at) VALUES ('u', :email, '2026-01-01')"),
            {"email": crud.LOCAL_USER_EMAIL},
        )
        connection.execute(
            text(
                "INSERT INTO conversations (id, user_id, title, settings, created_at, updated_at) "
                "VALUES ('old', 'u', 'Hi', '{}', '2026-01-01', '2026-01-01')"
            )
        )
        for position, (role, content, status) in enumerate(written):
            connection.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, position, role, content, status, created_at) "
                    "VALUES (:id, 'old', :position, :role, :content, :status, '2026-01-01')"
                ),
                {"id": f"m{position}", "position": position, "role": role, "content": content, "status": status},
            )
    engine.dispose()
    settings = make_settings(database_url=database_url, auth_mode="off")
    registry = FakeRegistry(settings)
    client = await make_client(settings, registry)  # its start-up runs migration 0004
    chat = Chat(client, registry, database_url, {})

    conversation = await chat.shown("old")
    assert [(m["role"], m["content"], m["status"]) for m in conversation["messages"]] == written
    assert [m["parent_id"] for m in conversation["messages"]] == [None, "m0", "m1", "m2"]
    assert all(versions(message) == (1, 1) for message in conversation["messages"])

    # Regenerating its last reply now keeps the old one.
    await chat.send("old", "Hi", "Hello!", "A joke?")
    conversation = await chat.shown("old")
    assert versions(conversation["messages"][-1]) == (2, 2)
    assert path((await chat.branch("old", "m3")).json())[-1] == ("ai", "Why did")
