"""Shared fixtures: databases (SQLite file, PostgreSQL server), apps, clients, users, processes."""

import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.core.config import BACKEND_DIR, Settings
from app.llm.registry import ModelRegistry
from app.main import create_app

MODELS_DIR = Path(os.environ.get("OPENCHAT_MODELS_DIR", BACKEND_DIR / "models"))
FAST_MODEL = "qwen2.5-coder-0.5b-instruct"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """Calls `condition` every 0.1 s until it returns something true, and returns that."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not reached within {seconds:.0f} s: {what}"
        time.sleep(0.1)
    return result


def answers(process: subprocess.Popen[bytes], url: str) -> bool:
    """Whether `url`, served by `process`, answers 200 (for `wait_until`); fails once the process has ended."""
    assert process.poll() is None, f"the process for {url} ended with status {process.returncode}"
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def start_process() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts a command in the backend's folder (`subprocess.Popen`'s keywords); stops it after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, cwd=BACKEND_DIR, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """`app` served by uvicorn on loopback, in this event loop, as every start path runs it
    (--no-proxy-headers: the app's OPENCHAT_TRUSTED_PROXIES alone decides); yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test` (it installs the postgresql package).")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback, or OPENCHAT_TEST_POSTGRES_URL if given."""
    given = os.environ.get("OPENCHAT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="openchat-pg-"))
    data = root / "data"
    port = free_port()
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _fresh_postgres_database(server_url: str) -> str:
    import sqlalchemy

    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Persistence tests run once on each supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'openchat.db'}"
    return _fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite:///{tmp_path / 'openchat.db'}",
            "auth_mode": "off",
            "models_dir": MODELS_DIR,
            "default_model": FAST_MODEL,
            # Engines start on first use in tests: most never chat with a local model.
            "warm_up": False,
            # A summary title is one more generation after each first exchange: tests that count
            # what the model did would see it. Title tests turn it on.
            "generate_titles": False,
            "together_api_key": None,
            "openai_compatible_base_url": None,
            "secret_key": None,
            "rate_limit_login": "1000/minute",
            "rate_limit_signup": "1000/minute",
            "rate_limit_chat": "1000/minute",
            # Tests read the schema over HTTP (off by default: see test_health).
            "api_docs_access": "open",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """Builds an app (optionally with another registry) and an in-process client for it."""
    managers: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def build(settings: Settings, registry: ModelRegistry | None = None) -> httpx.AsyncClient:
        app: FastAPI = create_app(settings, registry=registry)
        manager = LifespanManager(app)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test")
        managers.append((manager, client))
        return client

    yield build
    for manager, client in managers:
        await client.aclose()
        await manager.__aexit__(None, None, None)


async def signup(
    client: httpx.AsyncClient, email: str | None = None, password: str = "correct horse battery"
) -> dict[str, str]:
    """A new account; returns the Authorization header for it."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def chat_scope(request: bytes) -> dict[str, Any]:
    """The ASGI scope uvicorn gives a POST /api/v1/chat with this body: for tests that drive the
    app with their own `receive` and `send` (a client that leaves mid-stream, say)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # what uvicorn serves
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/chat",
        "raw_path": b"/api/v1/chat",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(request)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }


class ClientLeavingAfterTokens:
    """An ASGI client of POST /api/v1/chat (with `chat_scope`) that sends its request in `parts`
    and disconnects once `tokens` token lines have come: a tab closed or refreshed mid-reply."""

    def __init__(self, parts: list[bytes], tokens: int = 2) -> None:
        self.pending = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)
        ]
        self.sent: list[bytes] = []
        self.tokens = tokens
        self.enough = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.pending:
            return self.pending.pop(0)
        await self.enough.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            self.sent.append(message.get("body", b""))
            if b"".join(self.sent).count(b'"token"') >= self.tokens:
                self.enough.set()

    def events(self) -> list[dict[str, Any]]:
        """The NDJSON events it received."""
        return [json.loads(line) for line in b"".join(self.sent).decode().splitlines()]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway Redis server on loopback (shared rate limits between replicas)."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed: run `make test` (it installs the Debian package).")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
