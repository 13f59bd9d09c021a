"""Stateless API replicas, as docker-compose's `scale` profile runs them, without Docker: on loopback,
PostgreSQL and Redis (tests/conftest.py), nginx with the shipped proxy settings
(deploy/nginx/openchat-api.conf), two backend processes (`uvicorn app:app`, OPENCHAT_LOCAL_MODELS=off,
one DATABASE_URL, REDIS_URL and OPENCHAT_SECRET_KEY, each its own data folder) and one
OpenAI-compatible inference server: llama.cpp's llama-server (the binary `make engine` builds)
serving the bundled 0.5B model, reached through OPENAI_COMPATIBLE_BASE_URL.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.core.config import BACKEND_DIR, Settings
from app.core.db import ALEMBIC_DIR
from tests.conftest import FAST_MODEL, MODELS_DIR, _fresh_postgres_database, answers, free_port, wait_until

ROOT = BACKEND_DIR.parents[1]
MODEL_ID = f"openai-compatible/{FAST_MODEL}"
PASSWORD = "correct horse battery"
SAVE_INTERVAL_S = 0.5  # a reply's lease lapses after 6 of these (3 s) once its replica is gone
FAILED_LOGINS_ALLOWED = 3  # per account and address (OPENCHAT_RATE_LIMIT_LOGIN)
# Long enough to hold a reply generating while other requests are made (not read meanwhile).
LONG = "Count from 1 to 300, one number per line, nothing else."
WAIT_S = 180  # for the real model (and its engine's start) on a loaded machine


@dataclass
class Fleet:
    replicas: dict[str, str]  # name -> base URL
    processes: dict[str, subprocess.Popen[bytes]]
    balancer: str  # nginx
    database_url: str


def nginx_config(folder: Path, port: int, upstreams: list[str]) -> str:
    servers = "".join(f"        server {upstream} max_fails=1 fail_timeout=5s;\n" for upstream in upstreams)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in kinds)
    return f"""
# Ignored (with a warning) unless nginx runs as root: then its workers run as this user too.
user {pwd.getpwuid(os.getuid()).pw_name};
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    {temp}
    upstream openchat_api {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        # Which replica answered (the test kills the one streaming).
        add_header X-Upstream $upstream_addr always;
        include {ROOT / "deploy" / "nginx" / "openchat-api.conf"};
    }}
}}
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_server: str, redis_url: str) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet")
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], log_name: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        log = (folder / log_name).open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
        started.append(process)
        return process

    try:
        # The inference service.
        engine_port = free_port()
        engine_binary = Settings(_env_file=None).engine_binary  # type: ignore[call-arg]
        command = [str(engine_binary), "--model", str(MODELS_DIR / f"{FAST_MODEL}.gguf"), "--alias", FAST_MODEL]
        command += ["--host", "127.0.0.1", "--port", str(engine_port), "--parallel", "2", "--ctx-size", "8192"]
        engine = start(
            [*command, "--threads", "2", "--cont-batching", "--no-webui"],
            "llama-server.log",
        )
        wait_until(lambda: answers(engine, f"http://127.0.0.1:{engine_port}/health"), "llama-server is ready", WAIT_S)

        # Both replicas started at once on an empty database: each runs the migrations at start-up.
        database_url = _fresh_postgres_database(postgres_server)
        shared = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "OPENCHAT_SECRET_KEY": secrets.token_urlsafe(48),
            "OPENCHAT_AUTH": "required",
            "OPENCHAT_LOCAL_MODELS": "off",
            # Where bundled models are: not listed nor started all the same.
            "OPENCHAT_MODELS_DIR": str(MODELS_DIR),
            "OPENAI_COMPATIBLE_BASE_URL": f"http://127.0.0.1:{engine_port}/v1",
            "OPENCHAT_DEFAULT_MODEL": MODEL_ID,
            "OPENCHAT_GENERATE_TITLES": "false",
            "OPENCHAT_REPLY_SAVE_INTERVAL_S": str(SAVE_INTERVAL_S),
            "OPENCHAT_USER_MAX_GENERATIONS": "1",
            "OPENCHAT_RATE_LIMIT_LOGIN": f"{FAILED_LOGINS_ALLOWED}/hour",
            "OPENCHAT_RATE_LIMIT_SIGNUP": "1000/hour",
            "OPENCHAT_TRUSTED_PROXIES": "127.0.0.1",  # nginx
        }
        replicas, processes = {}, {}
        for name in ("a", "b"):
            port = free_port()
            env = {**os.environ, **shared, "OPENCHAT_DATA_DIR": str(folder / f"data-{name}")}
            command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
            processes[name] = start([*command, "--no-proxy-headers"], f"replica-{name}.log", cwd=BACKEND_DIR, env=env)
            replicas[name] = f"http://127.0.0.1:{port}"
        for name, url in replicas.items():
            wait_until(lambda: answers(processes[name], f"{url}/readyz"), f"replica {name} is ready", WAIT_S)  # noqa: B023

        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(nginx).exists(), "nginx is missing: run `make test` (it installs the Debian package)"
        nginx_port = free_port()
        config = folder / "nginx.conf"
        upstreams = [url.removeprefix("http://") for url in replicas.values()]
        config.write_text(nginx_config(folder, nginx_port, upstreams))
        balancer = start(
            [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log"), "-g", "daemon off;"],
            "nginx.log",
        )
        wait_until(lambda: answers(balancer, f"http://127.0.0.1:{nginx_port}/healthz"), "nginx answers", WAIT_S)
        yield Fleet(replicas, processes, f"http://127.0.0.1:{nginx_port}", database_url)
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def signup(url: str, email: str) -> dict[str, str]:
    response = httpx.post(f"{url}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}, timeout=30)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def login(url: str, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)


def chat_body(conversation: str, messages: list[dict[str, str]], max_tokens: int = 24) -> dict[str, Any]:
    return {"id": conversation, "messages": messages, "data": {"temperature": 0.1, "max_tokens": max_tokens}}


def chat(url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """A whole reply's events, and how many separate network reads carried tokens."""
    events: list[dict[str, Any]] = []
    reads_with_tokens, buffer = 0, b""
    with httpx.stream("POST", f"{url}/api/v1/chat", json=body, headers=headers, timeout=300) as response:
        assert response.status_code == 200, response.read()
        for data in response.iter_raw():
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            parsed = [json.loads(line) for line in lines if line]
            reads_with_tokens += any(event["type"] == "token" for event in parsed)
            events += parsed
    assert events[-1]["type"] == "end", events[-1]
    return events, reads_with_tokens


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(event["content"] for event in events if event["type"] == "token")


def conversation(url: str, headers: dict[str, str], conversation_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/conversations/{conversation_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def test_both_replicas_started_together_migrate_once_to_head(fleet: Fleet) -> None:
    script = Config()
    script.set_main_option("script_location", str(ALEMBIC_DIR))
    head = ScriptDirectory.from_config(script).get_current_head()
    engine = sqlalchemy.create_engine(fleet.database_url)
    with engine.connect() as connection:
        versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert versions == [head]
    for url in fleet.replicas.values():
        ready = httpx.get(f"{url}/readyz", timeout=30).json()
        assert ready["checks"]["database"] == "ok"
        assert ready["checks"]["default_model"] == f"ok: {MODEL_ID}"


def test_replicas_list_only_the_inference_servers_models(fleet: Fleet) -> None:
    for url in fleet.replicas.values():
        headers = signup(url, f"models-{uuid.uuid4().hex[:8]}@example.com")
        models = httpx.get(f"{url}/api/v1/models", headers=headers, timeout=30).json()["models"]
        assert [(m["id"], m["provider"], m["default"]) for m in models] == [(MODEL_ID, "openai-compatible", True)]


def test_sign_up_on_one_replica_then_log_in_and_chat_on_the_other(fleet: Fleet) -> None:
    replica_a, replica_b = fleet.replicas["a"], fleet.replicas["b"]
    email = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    on_a = signup(replica_a, email)
    response = login(replica_b, email)
    assert response.status_code == 200, response.text
    on_b = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert httpx.get(f"{replica_b}/api/v1/auth/me", headers=on_a, timeout=30).json()["email"] == email

    # A conversation started on A continues on B, with its whole history.
    first = [{"role": "user", "content": "Say hello in French."}]
    events, _ = chat(replica_a, on_a, chat_body("fleet-1", first))
    assert events[0]["model"] == MODEL_ID and text_of(events)
    history = [*first, {"role": "ai", "content": text_of(events)}, {"role": "user", "content": "And in Spanish?"}]
    events, _ = chat(replica_b, on_b, chat_body("fleet-1", history))
    stored = conversation(replica_a, on_a, "fleet-1")
    assert [(m["role"], m["content"]) for m in stored] == [
        *((m["role"], m["content"]) for m in history),
        ("ai", text_of(events)),
    ]
    assert [m["status"] for m in stored] == ["complete"] * 4


def test_rate_limits_and_the_generation_quota_are_shared(fleet: Fleet) -> None:
    replica_a, replica_b = fleet.replicas["a"], fleet.replicas["b"]
    # Failed logins to one account, alternating replicas: the limit counts them all.
    email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    signup(replica_a, email)
    for attempt in range(FAILED_LOGINS_ALLOWED):
        url = (replica_a, replica_b)[attempt % 2]
        assert login(url, email, "wrong password").status_code == 401
    refused = login((replica_a, replica_b)[FAILED_LOGINS_ALLOWED % 2], email)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"

    # One reply at a time per user (OPENCHAT_USER_MAX_GENERATIONS=1): while A generates one, B refuses another.
    headers = signup(replica_a, f"carol-{uuid.uuid4().hex[:8]}@example.com")
    long_body = chat_body("quota-1", [{"role": "user", "content": LONG}], max_tokens=600)
    with httpx.stream("POST", f"{replica_a}/api/v1/chat", json=long_body, headers=headers, timeout=300) as held:
        assert held.status_code == 200
        lines = held.iter_lines()
        assert json.loads(next(lines))["type"] == "start"
        refused = httpx.post(
            f"{replica_b}/api/v1/chat",
            json=chat_body("quota-2", [{"role": "user", "content": "Hi"}]),
            headers=headers,
            timeout=60,
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "too_many_generations"

    # The client left: A stops the reply and gives the place back; B then serves the user.
    def served() -> bool:
        body = chat_body("quota-2", [{"role": "user", "content": "Hi"}])
        response = httpx.post(f"{replica_b}/api/v1/chat", json=body, headers=headers, timeout=300)
        return response.status_code == 200

    wait_until(served, "B serves the user once A's reply stopped", WAIT_S)


def test_tokens_stream_one_by_one_through_nginx(fleet: Fleet) -> None:
    headers = signup(fleet.balancer, f"dave-{uuid.uuid4().hex[:8]}@example.com")
    body = chat_body("nginx-1", [{"role": "user", "content": "Count from one to ten in words."}], max_tokens=40)
    events, reads_with_tokens = chat(fleet.balancer, headers, body)
    tokens = [event for event in events if event["type"] == "token"]
    assert len(tokens) >= 8
    # Each token came in its own network read: nginx passed them on as they were generated, not
    # in one block at the end.
    assert reads_with_tokens >= len(tokens) // 2


def test_a_replica_killed_mid_stream_loses_no_message_and_the_other_keeps_serving(fleet: Fleet) -> None:
    balancer = fleet.balancer
    email = f"erin-{uuid.uuid4().hex[:8]}@example.com"
    headers = signup(balancer, email)
    question = {"role": "user", "content": LONG}
    received: list[dict[str, Any]] = []
    killed = None
    body = chat_body("killed-1", [question], 600)
    # The stream is cut off with its replica.
    with (
        pytest.raises(httpx.TransportError),
        httpx.stream("POST", f"{balancer}/api/v1/chat", json=body, headers=headers, timeout=300) as response,
    ):
        assert response.status_code == 200
        upstream = response.headers["x-upstream"]
        killed = next(name for name, url in fleet.replicas.items() if url.endswith(upstream))
        for line in filter(None, response.iter_lines()):
            received.append(json.loads(line))
            if sum(event["type"] == "token" for event in received) == 10:
                fleet.processes[killed].send_signal(signal.SIGKILL)
    assert killed is not None and fleet.processes[killed].wait(timeout=30) == -signal.SIGKILL
    assert not any(event["type"] == "end" for event in received)

    # Through nginx, the other replica answers: the question is stored, and the reply is marked
    # interrupted once its lease lapses (its replica no longer renews it), with its text so far.
    def interrupted() -> list[dict[str, Any]] | None:
        messages = conversation(balancer, headers, "killed-1")
        return messages if messages[-1]["status"] == "interrupted" else None

    messages = wait_until(interrupted, "the other replica marks the reply interrupted", WAIT_S)
    assert [(m["role"], m["content"]) for m in messages[:1]] == [("user", LONG)]
    assert len(messages) == 2
    saved, streamed = messages[1]["content"], text_of(received)
    assert saved.startswith(streamed) or streamed.startswith(saved)  # the same reply, saved as it went

    # Logins and chats keep working through nginx (every request, whichever replica it tries first).
    for attempt in range(3):
        response = login(balancer, email)
        assert response.status_code == 200, response.text
        assert re.fullmatch(r"127\.0\.0\.1:\d+(, 127\.0\.0\.1:\d+)?", response.headers["x-upstream"])
        events, _ = chat(balancer, headers, chat_body(f"after-{attempt}", [{"role": "user", "content": "Hi"}], 8))
        assert events[0]["type"] == "start"
    survivor = next(name for name in fleet.replicas if name != killed)
    assert fleet.processes[survivor].poll() is None
