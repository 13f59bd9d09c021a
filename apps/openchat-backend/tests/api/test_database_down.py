"""PostgreSQL stopped and started again under a running app (a PostgreSQL server of this test's
own, so that stopping it leaves the other tests alone): while it is down /readyz says so and
requests get 503 database_unavailable with Retry-After; once it is back everything works,
without restarting the app."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _pg_bin, free_port, signup
from tests.fakes import FakeRegistry


class PostgresServer:
    """A PostgreSQL cluster on loopback that the test can stop and start again on the same port."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="openchat-pg-restart-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def chat(conversation: str, text: str) -> dict[str, Any]:
    return {"id": conversation, "messages": [{"role": "user", "content": text}]}


async def test_postgres_stopped_and_started_again(make_settings: Any, make_client: Any, own_postgres: Any) -> None:
    settings = make_settings(database_url=own_postgres.url, auth_mode="required")
    client = await make_client(settings, FakeRegistry(settings))
    auth = await signup(client)
    assert (await client.post("/api/v1/chat", json=chat("before", "Hi"), headers=auth)).status_code == 200

    own_postgres.stop()
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert ready.json()["checks"]["database"].startswith("error")
    refused = await client.post("/api/v1/chat", json=chat("during", "Hi"), headers=auth)
    assert refused.status_code == 503 and refused.json()["code"] == "database_unavailable"
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["detail"] == "The database is unavailable right now; retry in a few seconds."
    listed = await client.get("/api/v1/conversations", headers=auth)
    assert listed.status_code == 503 and listed.json()["code"] == "database_unavailable"
    login = await client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert login.status_code == 503 and login.json()["code"] == "database_unavailable"

    own_postgres.start()  # the same app, not restarted: its pool's dead connections are replaced
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    replied = await client.post("/api/v1/chat", json=chat("after", "Hi again"), headers=auth)
    assert replied.status_code == 200 and replied.text.splitlines()[-1].startswith('{"type":"end"')
    conversations = (await client.get("/api/v1/conversations", headers=auth)).json()["conversations"]
    assert sorted(c["id"] for c in conversations) == ["after", "before"]
    stored = (await client.get("/api/v1/conversations/after", headers=auth)).json()["messages"]
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [
        ("user", "Hi again", "complete"),
        ("ai", "Hello, world!", "complete"),
    ]
