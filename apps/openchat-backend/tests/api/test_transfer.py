"""Export (OpenChat JSON, Markdown) and import (OpenChat JSON, ChatGPT, Open WebUI): round trips,
branches and the path shown, bad files refused whole, duplicates skipped, size limits, owners only.

Every test here runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.db import make_engine, make_session_factory
from app.models import Conversation, Message
from app.schemas import OpenChatExport
from tests.conftest import signup
from tests.fakes import FakeRegistry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SETTINGS = {"model": "fake-model", "prompt": "Be brief.", "temperature": 0.3, "top_p": 0.9, "max_tokens": 256}
CODE_REPLY = "Pack light:\n\n```python\nbag = ['passport', 'charger']\nprint(len(bag))\n```\n\nBon voyage, Zoë! 🧳"


@pytest.fixture
def settings(database_url: str, make_settings: Any) -> Any:
    return make_settings(database_url=database_url, auth_mode="required", max_body_bytes=1024)


@pytest.fixture
async def client(settings: Any, make_client: Any) -> httpx.AsyncClient:
    return await make_client(settings, FakeRegistry(settings))  # type: ignore[no-any-return]


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/api/v1/auth/me", headers=headers)).json()["id"])


def seed_branched_conversation(database_url: str, owner: str) -> None:
    """A conversation as branching leaves it: the first reply regenerated (two versions), the
    first question edited (two versions, the edit answered with an error), a follow-up on the
    regenerated reply stopped by the user; shown: the regenerated reply's path."""

    def reply(id: str, parent: str, minutes: int, content: str, **numbers: Any) -> Message:
        return Message(
            id=id,
            conversation_id="trip",
            parent_id=parent,
            role="ai",
            content=content,
            model="fake-model",
            created_at=T0 + timedelta(minutes=minutes),
            **numbers,
        )

    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        session.add(
            Conversation(
                id="trip",
                user_id=owner,
                title="Trip plans: Zürich → Kraków",
                settings=SETTINGS,
                created_at=T0,
                updated_at=T0 + timedelta(minutes=30),
                active_leaf_id="r2",
            )
        )
        session.flush()
        session.add(
            Message(
                id="q1", conversation_id="trip", position=0, role="user", content="What should I pack?", created_at=T0
            )
        )
        session.flush()
        session.add_all(
            [
                reply(
                    "r1",
                    "q1",
                    1,
                    "A toothbrush.",
                    position=1,
                    status="complete",
                    finish_reason="stop",
                    prompt_tokens=12,
                    completion_tokens=4,
                    ttft_ms=120.5,
                    tokens_per_second=14.25,
                    omitted_messages=0,
                ),
                reply(
                    "r1b",
                    "q1",
                    2,
                    CODE_REPLY,
                    position=1,
                    status="complete",
                    finish_reason="length",
                    prompt_tokens=12,
                    completion_tokens=40,
                    ttft_ms=98.0,
                    tokens_per_second=15.5,
                ),
                Message(
                    id="q1e",
                    conversation_id="trip",
                    position=0,
                    role="user",
                    content="What should I pack for Kraków?",
                    created_at=T0 + timedelta(minutes=10),
                ),
            ]
        )
        session.flush()
        session.add_all(
            [
                Message(
                    id="q2",
                    conversation_id="trip",
                    parent_id="r1b",
                    position=2,
                    role="user",
                    content="And for the kids?",
                    created_at=T0 + timedelta(minutes=3),
                ),
                reply("r3", "q1e", 11, "", position=1, status="error", error="The model failed."),
            ]
        )
        session.flush()
        session.add(
            reply(
                "r2",
                "q2",
                4,
                "Snacks and a",
                position=3,
                status="cancelled",
                finish_reason="cancelled",
                prompt_tokens=60,
                completion_tokens=3,
                ttft_ms=80.0,
                tokens_per_second=12.0,
            )
        )
        session.commit()
    engine.dispose()


def tree(export: dict[str, Any]) -> dict[str, Any]:
    """A conversation of an export without its ids: each message by its path of (role, content)
    from the root, with everything else it holds; the path shown; the rest of the conversation."""
    (conversation,) = export["conversations"]
    by_id = {m["id"]: m for m in conversation["messages"]}

    def key(message_id: str) -> tuple[tuple[str, str], ...]:
        message = by_id[message_id]
        own = (message["role"], message["content"])
        return (*key(message["parent_id"]), own) if message["parent_id"] else (own,)

    messages = {
        key(m["id"]): {k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in conversation["messages"]
    }
    siblings: dict[Any, list[str]] = {}
    for m in conversation["messages"]:  # each message's versions, in the order listed
        siblings.setdefault(key(m["parent_id"]) if m["parent_id"] else (), []).append(m["content"])
    rest = {k: v for k, v in conversation.items() if k not in ("id", "messages", "active_leaf_id")}
    return {"messages": messages, "versions": siblings, "shown": key(conversation["active_leaf_id"]), **rest}


async def export_json(client: httpx.AsyncClient, headers: dict[str, str], conversation_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/conversations/{conversation_id}/export", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def import_file(client: httpx.AsyncClient, headers: dict[str, str], body: bytes) -> httpx.Response:
    return await client.post("/api/v1/import", content=body, headers={**headers, "Content-Type": "application/json"})


async def listed(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/conversations", params={"limit": 100}, headers=headers)
    return response.json()["conversations"]  # type: ignore[no-any-return]


async def test_a_json_export_imported_by_another_user_is_the_same_conversation(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice, bob = await signup(client), await signup(client)
    seed_branched_conversation(database_url, await user_id(client, alice))

    response = await client.get("/api/v1/conversations/trip/export", params={"format": "openchat"}, headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Trip-plans-Zurich-Krakow.json"')
    assert "filename*=UTF-8''Trip%20plans%20Z%C3%BCrich%20%E2%86%92%20Krak%C3%B3w.json" in disposition
    original = response.json()
    assert (original["format"], original["version"]) == ("openchat", 1)
    OpenChatExport.model_validate(original)  # the shape the API schema documents
    assert len(original["conversations"][0]["messages"]) == 7

    imported = await import_file(client, bob, response.content)
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert (result["imported"], result["duplicates"]) == (1, 0)
    (new_id,) = result["conversation_ids"]
    assert new_id != "trip"

    copy = await export_json(client, bob, new_id)
    assert tree(copy) == tree(original)  # content, numbers, settings, branches, versions' order, path shown
    assert tree(copy)["shown"][-1] == ("ai", "Snacks and a")
    assert {m["id"] for m in copy["conversations"][0]["messages"]}.isdisjoint(
        m["id"] for m in original["conversations"][0]["messages"]
    )
    # What each of them opens is the same.
    alice_view = (await client.get("/api/v1/conversations/trip", headers=alice)).json()
    bob_view = (await client.get(f"/api/v1/conversations/{new_id}", headers=bob)).json()
    fields = (
        "position",
        "role",
        "content",
        "status",
        "model",
        "prompt_tokens",
        "ttft_ms",
        "sibling_index",
        "sibling_count",
    )
    shown = [[m[f] for f in fields] for m in alice_view["messages"]]
    assert [[m[f] for f in fields] for m in bob_view["messages"]] == shown
    assert [row[2][:12] for row in shown] == ["What should ", "Pack light:\n", "And for the ", "Snacks and a"]
    assert [(row[-2], row[-1]) for row in shown] == [(0, 2), (1, 2), (0, 1), (0, 1)]
    assert bob_view["settings"] == alice_view["settings"] == SETTINGS
    assert bob_view["title"] == "Trip plans: Zürich → Kraków"
    # Alice still has hers alone; Bob cannot see it.
    assert [c["id"] for c in await listed(client, alice)] == ["trip"]
    assert (await client.get("/api/v1/conversations/trip", headers=bob)).status_code == 404


async def test_markdown_export_is_the_path_shown_with_code_blocks_intact(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice = await signup(client)
    seed_branched_conversation(database_url, await user_id(client, alice))

    response = await client.get("/api/v1/conversations/trip/export", params={"format": "markdown"}, headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"].startswith('attachment; filename="Trip-plans-Zurich-Krakow.md"')
    text = response.text
    assert text.startswith("# Trip plans: Zürich → Kraków\n")
    assert "## System prompt\n\nBe brief.\n" in text
    shown = [
        "## User\n\nWhat should I pack?\n",
        f"## Assistant · fake-model\n\n{CODE_REPLY}\n",
        "## User\n\nAnd for the kids?\n",
        "## Assistant · fake-model\n\nSnacks and a\n\n_(This reply stopped before it finished.)_\n",
    ]
    positions = [text.index(part) for part in shown]
    assert positions == sorted(positions)
    # The other versions are not on the path shown.
    assert "A toothbrush." not in text and "Kraków?" not in text


async def test_export_all_streams_every_conversation_and_imports_back(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice, bob = await signup(client), await signup(client)
    seed_branched_conversation(database_url, await user_id(client, alice))
    for name in ("chatgpt_conversations.json", "open_webui_chats.json"):
        assert (await import_file(client, alice, (FIXTURES / name).read_bytes())).status_code == 200

    async with client.stream("GET", "/api/v1/export", headers=alice) as response:
        assert response.status_code == 200
        assert response.headers["content-disposition"].startswith('attachment; filename="openchat-export-')
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    everything = json.loads(body)
    titles = [c["title"] for c in everything["conversations"]]
    assert titles[0] == "Trip plans: Zürich → Kraków"  # newest first, as listed
    assert sorted(titles) == sorted(c["title"] for c in await listed(client, alice))
    assert len(titles) == 5

    result = (await import_file(client, bob, body)).json()
    assert (result["imported"], result["duplicates"]) == (5, 0)
    assert sorted(c["title"] for c in await listed(client, bob)) == sorted(titles)


async def test_chatgpt_export_imports_its_tree_and_the_path_shown(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    response = await import_file(client, alice, (FIXTURES / "chatgpt_conversations.json").read_bytes())
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["duplicates"]) == (2, 0)
    sorting, trip = result["conversation_ids"]  # in file order

    export = (await export_json(client, alice, sorting))["conversations"][0]
    assert export["title"] == "Sorting in Python — ソート"
    assert export["created_at"] == "2024-06-01T08:20:00.123456Z"
    messages = export["messages"]
    # The hidden system message and the empty root are left out: the question is the root.
    assert [(m["role"], m["content"][:12]) for m in messages] == [
        ("user", "How do I sor"),
        ("ai", "Use `sorted`"),
        ("ai", "`operator.it"),
        ("user", "Und absteige"),
        ("ai", "降順には `revers"),
    ]
    question, first, regenerated, follow_up, answer = messages
    assert question["parent_id"] is None and question["content"].endswith("Grüße aus München 🇩🇪")
    assert first["parent_id"] == regenerated["parent_id"] == question["id"]  # two versions of the reply
    assert (first["model"], regenerated["model"]) == ("gpt-4o", "gpt-4o-mini")
    assert first["finish_reason"] == "stop" and first["status"] == "complete"
    assert "```python\nfrom operator import itemgetter\n\npairs.sort(key=itemgetter(1))\n```" in regenerated["content"]
    assert follow_up["parent_id"] == regenerated["id"] and answer["parent_id"] == follow_up["id"]
    assert follow_up["content"] == "Und absteigend? 日本語で説明してください。"
    assert export["active_leaf_id"] == answer["id"]  # current_node

    # What the user sees: the regenerated reply's path, as ChatGPT showed it.
    view = (await client.get(f"/api/v1/conversations/{sorting}", headers=alice)).json()["messages"]
    assert [m["id"] for m in view] == [question["id"], regenerated["id"], follow_up["id"], answer["id"]]
    assert (view[1]["sibling_index"], view[1]["sibling_count"]) == (1, 2)  # ‹ 2 / 2 ›
    markdown = (await client.get(f"/api/v1/conversations/{sorting}/export?format=markdown", headers=alice)).text
    assert "`operator.itemgetter`" in markdown and "Use `sorted`" not in markdown
    assert "```python\npairs.sort(key=itemgetter(1), reverse=True)\n```" in markdown

    export = (await export_json(client, alice, trip))["conversations"][0]
    by_content = {m["content"][:20]: m for m in export["messages"]}
    lisbon, porto = by_content["Plan three days in L"], by_content["[image]\n\nPlan three "]
    assert lisbon["parent_id"] is None and porto["parent_id"] is None  # the edited first question
    assert porto["content"].endswith("Porto — with kids, near this map")
    assert by_content["Day 1: Alfama and th"]["finish_reason"] == "length"
    # The tool call and its result are left out; the answer hangs from the question.
    answer = by_content["Day 1: Ribeira and a"]
    assert answer["parent_id"] == porto["id"] and len(export["messages"]) == 4
    assert export["active_leaf_id"] == answer["id"]


async def test_open_webui_export_imports_its_tree_settings_and_numbers(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    response = await import_file(client, alice, (FIXTURES / "open_webui_chats.json").read_bytes())
    assert response.status_code == 200, response.text
    regex, shopping = response.json()["conversation_ids"]

    export = (await export_json(client, alice, regex))["conversations"][0]
    assert export["title"] == "Regex help ✨"
    # Open WebUI's model is another server's; max_tokens 100000 is out of OpenChat's range.
    assert export["settings"] == {
        "model": None,
        "prompt": "Answer briefly.",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": None,
    }
    question, first, regenerated, follow_up, answer = export["messages"]
    assert first["parent_id"] == regenerated["parent_id"] == question["id"]
    assert (first["prompt_tokens"], first["completion_tokens"]) == (31, 18)  # Ollama's names
    assert (regenerated["prompt_tokens"], regenerated["completion_tokens"]) == (29, 35)  # OpenAI's
    assert 're.fullmatch(r"\\d{4} [A-Za-zÀ-ÿ]+", "8001 Zürich")' in regenerated["content"]
    assert follow_up["parent_id"] == regenerated["id"] and export["active_leaf_id"] == answer["id"]

    export = (await export_json(client, alice, shopping))["conversations"][0]
    first_question, edited, first_reply, failed = export["messages"]
    assert first_question["parent_id"] is None and edited["parent_id"] is None
    assert (failed["status"], failed["error"]) == ("error", "Ollama: 500, model runner has unexpectedly stopped")
    # Open WebUI showed the first version (currentId), not the newest.
    assert export["active_leaf_id"] == first_reply["id"]
    view = (await client.get(f"/api/v1/conversations/{shopping}", headers=alice)).json()
    assert [m["content"][:12] for m in view["messages"]] == ["Eine Einkauf", "- 400 g Mehl"]
    assert view["messages"][0]["sibling_count"] == 2 and view["messages"][0]["sibling_index"] == 0


async def test_a_bad_record_is_named_and_nothing_is_stored(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    records = json.loads((FIXTURES / "chatgpt_conversations.json").read_text())
    bad = json.loads(json.dumps(records[0]))
    bad["title"] = "Trip plans"
    del bad["mapping"]["aaa7c3d4-5555-4f40-c3d4-000000000006"]["message"]["author"]["role"]
    response = await import_file(client, alice, json.dumps([*records, bad, records[1]]).encode())
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_record",
        "detail": "Conversation 3 ('Trip plans'): message 'aaa7c3d4-5555-4f40-c3d4-000000000006' has no role.",
    }
    assert await listed(client, alice) == []

    # A cut-short file: the same, after the records that were read.
    whole = (FIXTURES / "open_webui_chats.json").read_bytes()
    response = await import_file(client, alice, whole[: len(whole) - 200])
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"
    assert "after conversation 1" in response.json()["detail"]
    assert await listed(client, alice) == []


async def test_a_second_import_of_the_same_file_skips_its_conversations(client: httpx.AsyncClient) -> None:
    alice, bob = await signup(client), await signup(client)
    body = (FIXTURES / "chatgpt_conversations.json").read_bytes()
    assert (await import_file(client, alice, body)).json()["imported"] == 2

    again = (await import_file(client, alice, body)).json()
    assert again == {"imported": 0, "duplicates": 2, "conversation_ids": []}
    assert len(await listed(client, alice)) == 2
    # One conversation changed since (continued in ChatGPT): that one is new.
    records = json.loads(body)
    records[1]["mapping"]["b0000006-0000-4000-8000-00000000a006"]["message"]["content"]["parts"] = ["Changed."]
    changed = (await import_file(client, alice, json.dumps(records).encode())).json()
    assert (changed["imported"], changed["duplicates"]) == (1, 1)
    # Duplicates are per user.
    assert (await import_file(client, bob, body)).json()["imported"] == 2


async def test_files_over_the_import_limit_are_413_and_the_body_limit_does_not_apply(
    database_url: str, make_settings: Any, make_client: Any
) -> None:
    settings = make_settings(database_url=database_url, max_body_bytes=1024, max_import_bytes=20_000)
    client = await make_client(settings, FakeRegistry(settings))
    small = (FIXTURES / "open_webui_chats.json").read_bytes()  # over the 1 KB body limit
    assert 1024 < len(small) < 20_000
    assert (await import_file(client, {}, small)).status_code == 200

    big = json.dumps({"format": "openchat", "version": 1, "conversations": [], "pad": "x" * 20_000}).encode()
    response = await import_file(client, {}, big)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert "OPENCHAT_MAX_IMPORT_BYTES" in response.json()["detail"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    response = await client.post("/api/v1/import", content=chunked())
    assert response.status_code == 413
    assert len(await listed(client, {})) == 2  # from the first import only


@pytest.mark.parametrize(
    ("body", "code", "said"),
    [
        (b"", "empty_body", "was empty"),
        (b"<html>not json</html>", "invalid_json", "not valid JSON"),
        (b'{"conversations": []}', "unknown_format", "no known format"),
        (b'[{"messages": []}]', "unknown_format", "no known format"),
        (b'{"format": "openchat", "version": 9, "conversations": []}', "unknown_format", "version 9"),
    ],
)
async def test_not_json_or_an_unknown_format_is_400(
    client: httpx.AsyncClient, body: bytes, code: str, said: str
) -> None:
    alice = await signup(client)
    response = await import_file(client, alice, body)
    assert response.status_code == 400
    assert response.json()["code"] == code and said in response.json()["detail"]


async def test_only_the_owner_exports_and_import_needs_a_login(client: httpx.AsyncClient, database_url: str) -> None:
    alice, bob = await signup(client), await signup(client)
    seed_branched_conversation(database_url, await user_id(client, alice))
    for export_format in ("openchat", "markdown"):
        response = await client.get(f"/api/v1/conversations/trip/export?format={export_format}", headers=bob)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = await client.get("/api/v1/conversations/trip/export?format=pdf", headers=alice)
    assert response.status_code == 400
    bobs = json.loads(
        b"".join([chunk async for chunk in (await client.get("/api/v1/export", headers=bob)).aiter_bytes()])
    )
    assert bobs["conversations"] == []
    assert (await import_file(client, {}, b"[]")).status_code == 401
    assert (await client.get("/api/v1/export")).status_code == 401


def chatgpt_export(path: Path, conversations: int) -> None:
    """A ChatGPT conversations.json of `conversations` ten-message conversations (~8.5 KB each),
    written one conversation at a time."""
    paragraph = "A paragraph with umlauts (äöü), 日本語 and code:\n\n```python\nprint('hello')\n```\n" * 6
    with path.open("w", encoding="utf-8") as file:
        file.write("[")
        for number in range(conversations):
            mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None, "children": ["m0"]}}
            for index in range(10):
                mapping[f"m{index}"] = {
                    "id": f"m{index}",
                    "parent": f"m{index - 1}" if index else "root",
                    "children": [f"m{index + 1}"] if index < 9 else [],
                    "message": {
                        "id": f"m{index}",
                        "author": {"role": "assistant" if index % 2 else "user"},
                        "create_time": 1717000000 + number * 100 + index,
                        "content": {"content_type": "text", "parts": [f"{number}-{index} {paragraph}"]},
                        "status": "finished_successfully",
                        "metadata": {"model_slug": "gpt-4o"},
                        "recipient": "all",
                    },
                }
            record = {"id": f"c{number}", "title": f"Conversation {number}", "mapping": mapping, "current_node": "m9"}
            file.write(("," if number else "") + json.dumps(record, ensure_ascii=False))
        file.write("]")


async def test_a_file_of_tens_of_megabytes_imports_streamed(
    tmp_path: Path, make_settings: Any, make_client: Any
) -> None:
    """Figures on this machine (time, memory) are in the import notes; none is asserted here."""
    settings = make_settings()  # SQLite, auth off
    client = await make_client(settings, FakeRegistry(settings))
    path = tmp_path / "conversations.json"
    chatgpt_export(path, 2500)
    size = path.stat().st_size
    assert 20_000_000 < size < 50_000_000

    async def upload() -> AsyncIterator[bytes]:  # from disk, as a browser sends it
        with path.open("rb") as file:
            while chunk := file.read(1 << 16):
                yield chunk

    response = await client.post("/api/v1/import", content=upload(), headers={"Content-Length": str(size)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["imported"] == 2500 and result["duplicates"] == 0
    last = (await export_json(client, {}, result["conversation_ids"][-1]))["conversations"][0]
    assert last["title"] == "Conversation 2499" and len(last["messages"]) == 10
    assert last["messages"][9]["content"].startswith("2499-9 A paragraph with umlauts (äöü), 日本語")


def openchat_file(*messages: dict[str, Any], **conversation: Any) -> bytes:
    record = {"id": "c", "title": "Notes", "messages": list(messages), **conversation}
    return json.dumps({"format": "openchat", "version": 1, "conversations": [record]}).encode()


async def test_a_reply_exported_while_generating_imports_as_interrupted(client: httpx.AsyncClient) -> None:
    alice = await signup(client)
    body = openchat_file(
        {"id": "q", "parent_id": None, "role": "user", "content": "Count to ten"},
        {"id": "r", "parent_id": "q", "role": "ai", "content": "1, 2, 3", "status": "generating", "model": "m"},
    )
    (new_id,) = (await import_file(client, alice, body)).json()["conversation_ids"]
    reply = (await export_json(client, alice, new_id))["conversations"][0]["messages"][1]
    assert (reply["content"], reply["status"]) == ("1, 2, 3", "interrupted")
    assert reply["error"] == "The reply was still generating when it was exported."


@pytest.mark.parametrize(
    ("messages", "said"),
    [
        (
            [{"id": "a", "role": "user", "content": "x"}, {"id": "a", "role": "ai", "content": "y"}],
            "message 'a' appears twice.",
        ),
        (
            [{"id": "a", "parent_id": "zz", "role": "user", "content": "x"}],
            "message 'a' has parent 'zz', which is not in the file.",
        ),
        (
            [
                {"id": "a", "parent_id": "b", "role": "user", "content": "x"},
                {"id": "b", "parent_id": "a", "role": "ai", "content": "y"},
            ],
            "messages 'a', 'b' form a cycle of parents.",
        ),
        ([{"id": "a", "role": "robot", "content": "x"}], "message 'a' has an unknown role 'robot'"),
        ([{"id": "a", "role": "user", "content": 42}], "message 'a' has no text 'content'."),
        ([{"id": "a", "role": "user", "content": "nul \u0000"}], "message 'a': 'content' contains a NUL character"),
        (
            [{"id": "a", "role": "ai", "content": "x", "prompt_tokens": -1}],
            "message 'a': 'prompt_tokens' must be a whole number of at least 0.",
        ),
    ],
)
async def test_each_kind_of_bad_record_is_said_plainly(
    client: httpx.AsyncClient, messages: list[dict[str, Any]], said: str
) -> None:
    alice = await signup(client)
    response = await import_file(client, alice, openchat_file(*messages))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"Conversation 1 ('Notes'): {said}")
    response = await import_file(
        client, alice, openchat_file({"id": "a", "role": "user", "content": "x"}, settings={"temperature": 9})
    )
    assert response.status_code == 400
    assert "temperature" in response.json()["detail"] and "between 0.0 and 2.0" in response.json()["detail"]
