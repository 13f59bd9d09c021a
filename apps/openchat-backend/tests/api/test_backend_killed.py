"""A backend process killed (SIGKILL) in the middle of a reply: real uvicorn processes on one
database, the real LangChain chat model in front of the slow fake engine of
benchmarks/fake_engine.py. The user's message is kept, and the reply, with the text saved so
far, is marked interrupted: at the restart, or by another replica that shares the database,
which never touches the replies its live peers are generating."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import BACKEND_DIR
from benchmarks.fake_engine import MODEL, WORD
from tests.conftest import _fresh_postgres_database, free_port

TOKENS = 300
DELAY_MS = 20  # a reply of TOKENS streams for 6 s
MODEL_ID = f"openai-compatible/{MODEL}"


def reply_text(tokens: int) -> str:
    """The fake engine's whole reply of `tokens` tokens."""
    return "".join(f" {WORD}{i}" if i else WORD for i in range(tokens))


FULL_TEXT = reply_text(TOKENS)
SAVE_INTERVAL_S = 0.5  # the lease is six of these
QUESTION = "Tell me a long story."


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not reached: {what}"
        time.sleep(0.1)
    return result


def answers(process: subprocess.Popen[bytes], url: str) -> bool:
    assert process.poll() is None, "the process ended"
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def fake_engine(processes: list[subprocess.Popen[bytes]]) -> Callable[[int], str]:
    """Starts a fake engine whose replies are `tokens` long (DELAY_MS each); returns its URL."""

    def start(tokens: int) -> str:
        port = free_port()
        command = [sys.executable, "-m", "benchmarks.fake_engine", "--port", str(port)]
        process = subprocess.Popen([*command, "--tokens", str(tokens), "--delay-ms", str(DELAY_MS)], cwd=BACKEND_DIR)
        processes.append(process)
        url = f"http://127.0.0.1:{port}/v1"
        wait_until(lambda: answers(process, f"{url}/models"), "the fake engine started")
        return url

    return start


@pytest.fixture
def backends(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> Callable[[str, str], tuple[subprocess.Popen[bytes], str]]:
    """Starts a backend process (`uvicorn app:app`, as deployed) on a database and an engine."""
    models = tmp_path / "no-local-models"
    models.mkdir()

    def start(database_url: str, engine_url: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "OPENCHAT_AUTH": "off",
            "OPENCHAT_DATA_DIR": str(tmp_path / "data"),
            "OPENCHAT_MODELS_DIR": str(models),
            "OPENCHAT_DEFAULT_MODEL": MODEL_ID,
            "OPENAI_COMPATIBLE_BASE_URL": engine_url,
            "OPENCHAT_WARM_UP": "false",
            "OPENCHAT_GENERATE_TITLES": "false",
            "OPENCHAT_REPLY_SAVE_INTERVAL_S": str(SAVE_INTERVAL_S),
        }
        command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen([*command, "--log-level", "warning"], cwd=BACKEND_DIR, env=env)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(process, f"{url}/healthz"), "the backend started")
        return process, url

    return start


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
    backends: Any, fake_engine: Any, tmp_path: Path
) -> None:
    database, engine = f"sqlite:///{tmp_path / 'openchat.db'}", fake_engine(TOKENS)
    process, url = backends(database, engine)
    with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/api/v1/chat", json=body("k1")) as stream:
        lines = stream.iter_lines()  # kept: a dropped iterator closes the connection, which stops the reply
        received = read_tokens(lines, 20)
        # While it streams, the reply is stored as generating, with its text so far.
        generating = wait_until(lambda: (r := reply_shown(url, "k1"))["content"] and r, "partial text saved")
        assert generating["status"] == "generating" and FULL_TEXT.startswith(generating["content"])
        kill(process)
        assert received  # the client had tokens when the server went away

    _, url = backends(database, engine)  # restarted on the same database
    interrupted = wait_until(
        lambda: (r := reply_shown(url, "k1"))["status"] == "interrupted" and r, "the reply marked interrupted"
    )
    # The text saved before the kill is kept (a save may have come between the read and the kill).
    assert interrupted["content"].startswith(generating["content"]) and FULL_TEXT.startswith(interrupted["content"])
    assert (interrupted["finish_reason"], interrupted["model"]) == (None, MODEL_ID)

    # Retry (the web app sends the conversation up to the question again): a whole reply.
    lines = httpx.post(f"{url}/api/v1/chat", json=body("k1"), timeout=60).text.splitlines()
    assert json.loads(lines[-1])["finish_reason"] == "stop"
    assert (reply_shown(url, "k1")["status"], reply_shown(url, "k1")["content"]) == ("complete", FULL_TEXT)


def test_replicas_on_one_database_mark_only_the_replies_of_a_dead_one(
    backends: Any, fake_engine: Any, postgres_server: str
) -> None:
    # A reply streams for a minute: it is still streaming while the second replica starts.
    database, engine = _fresh_postgres_database(postgres_server), fake_engine(TOKENS * 10)
    first, first_url = backends(database, engine)
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{first_url}/api/v1/chat", json=body("r1")) as stream,
    ):
        lines = stream.iter_lines()
        read_tokens(lines, 10)
        # A second replica starts while the first is replying: at start-up, and at each of its
        # saves while the reply goes on, it leaves the live reply alone.
        _, second_url = backends(database, engine)
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
    assert interrupted["content"] and reply_text(TOKENS * 10).startswith(interrupted["content"])
