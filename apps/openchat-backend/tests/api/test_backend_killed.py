"""A backend process killed (SIGKILL) in the middle of a reply: real uvicorn processes on one
database, the real LangChain chat model in front of the slow fake engine of
benchmarks/fake_engine.py. The user's message is kept, and the reply, with the text saved so
far, is marked interrupted: at the restart, or by another replica that shares the database,
which never touches the replies its live peers are generating."""

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import FAKE_MODEL_ID, fake_reply
from tests.conftest import _fresh_postgres_database, wait_until

TOKENS = 300
DELAY_MS = 20  # a reply of TOKENS streams for 6 s
FULL_TEXT = fake_reply(TOKENS)
SAVE_INTERVAL_S = 0.5  # the lease is six of these
QUESTION = "Tell me a long story."


@pytest.fixture
def backend_env() -> dict[str, str]:
    return {"OPENCHAT_REPLY_SAVE_INTERVAL_S": str(SAVE_INTERVAL_S)}


def messages(url: str, conversation: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/conversations/{conversation}", timeout=30)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["messages"]
    return found


def reply_shown(url: str, conversation: str) -> dict[str, Any]:
    """The reply as stored now: [user message, reply] once the request is stored."""
    found = messages(url, conversation)
    assert [m["role"] for m in found] == ["user", "ai"]
    assert (found[0]["content"], found[0]["status"]) == (QUESTION, "complete")
    return found[1]


def read_tokens(lines: Iterator[str], count: int) -> str:
    text = ""
    for line in lines:
        event = json.loads(line)
        assert event["type"] in ("start", "token"), event
        if event["type"] == "token":
            text += event["content"]
            count -= 1
            if not count:
                return text
    raise AssertionError("the stream ended early")


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def body(conversation: str) -> dict[str, Any]:
    return {"id": conversation, "messages": [{"role": "user", "content": QUESTION}]}


def test_a_reply_cut_by_sigkill_is_marked_interrupted_at_restart_with_its_text(
    start_backend: Any, start_fake_engine: Any, tmp_path: Path
) -> None:
    database, engine = f"sqlite:///{tmp_path / 'openchat.db'}", start_fake_engine(TOKENS, DELAY_MS)
    process, url = start_backend(database, engine)
    with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/api/v1/chat", json=body("k1")) as stream:
        lines = stream.iter_lines()  # kept: a dropped iterator closes the connection, which stops the reply
        received = read_tokens(lines, 20)
        # While it streams, the reply is stored as generating, with its text so far.
        generating = wait_until(lambda: (r := reply_shown(url, "k1"))["content"] and r, "partial text saved")
        assert generating["status"] == "generating" and FULL_TEXT.startswith(generating["content"])
        kill(process)
        assert received  # the client had tokens when the server went away

    _, url = start_backend(database, engine)  # restarted on the same database
    interrupted = wait_until(
        lambda: (r := reply_shown(url, "k1"))["status"] == "interrupted" and r, "the reply marked interrupted"
    )
    # The text saved before the kill is kept (a save may have come between the read and the kill).
    assert interrupted["content"].startswith(generating["content"]) and FULL_TEXT.startswith(interrupted["content"])
    assert (interrupted["finish_reason"], interrupted["model"]) == (None, FAKE_MODEL_ID)

    # Retry (the web app sends the conversation up to the question again): a whole reply.
    lines = httpx.post(f"{url}/api/v1/chat", json=body("k1"), timeout=60).text.splitlines()
    assert json.loads(lines[-1])["finish_reason"] == "stop"
    assert (reply_shown(url, "k1")["status"], reply_shown(url, "k1")["content"]) == ("complete", FULL_TEXT)


def test_replicas_on_one_database_mark_only_the_replies_of_a_dead_one(
    start_backend: Any, start_fake_engine: Any, postgres_server: str
) -> None:
    # A reply streams for a minute: it is still streaming while the second replica starts.
    database, engine = _fresh_postgres_database(postgres_server), start_fake_engine(TOKENS * 10, DELAY_MS)
    first, first_url = start_backend(database, engine)
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{first_url}/api/v1/chat", json=body("r1")) as stream,
    ):
        lines = stream.iter_lines()
        read_tokens(lines, 10)
        # A second replica starts while the first is replying: at start-up, and at each of its
        # saves while the reply goes on, it leaves the live reply alone.
        _, second_url = start_backend(database, engine)
        seen = []
        for _ in range(5):
            read_tokens(lines, 20)
            seen.append(reply_shown(second_url, "r1")["status"])
        assert seen == ["generating"] * 5
        kill(first)

    # The first replica is gone: the second marks its reply interrupted once its lease lapses.
    interrupted = wait_until(
        lambda: (r := reply_shown(second_url, "r1"))["status"] == "interrupted" and r, "the reply marked interrupted"
    )
    assert interrupted["content"] and fake_reply(TOKENS * 10).startswith(interrupted["content"])
