"""Open WebUI, pinned and in a venv of its own, as the peer OpenChat's streaming overhead is
measured against: both in front of the same fake engine (benchmarks/fake_engine.py).

What is measured is Open WebUI's direct streaming path: `POST /api/chat/completions` with only
`model`, `messages` and `"stream": true`, as a plain API client sends it. Without `chat_id` and
`session_id` the request is served in the request itself ("Legacy/direct" in its `main.py`): the
engine's SSE bytes are passed through a wrapper to the client, with no socket.io events and no
background task. The browser UI sends `chat_id`, `session_id` and `id`: that request only answers
`{"task_ids": [...]}` and the reply arrives over socket.io while a background task writes it to
the chat in the database; a client that reads SSE never sees it. The direct path is the fair
peer of OpenChat's POST /api/v1/chat: one HTTP request, the reply streamed in its response.

Per-request database work on that path (SQLite in DATA_DIR): no chat storage (nothing is saved
without `chat_id`), but reads: the user behind the token, the model's entry, and several config
keys (Open WebUI keeps its config in the database); the user's last-active time is written in a
fire-and-forget task (at most once a minute).

Smoke check: python -m benchmarks.open_webui --engine-port 9100
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.backend import free_port
from benchmarks.common import BACKEND_DIR, log, rss_mib, terminate

VERSION = "0.12.4"
NAME = "Open WebUI"
INSTALL_SCRIPT = BACKEND_DIR / "scripts" / "install-open-webui.sh"
DEFAULT_VENV = Path.home() / ".cache" / "openchat" / "bench" / f"open-webui-{VERSION}"
MODEL = "fake-model"
START_TIMEOUT_S = 300.0  # its first start creates the database (~100 migrations) on 2 shared cores
# The account Open WebUI signs every client in as when WEBUI_AUTH=False (routers/auths.py).
DEFAULT_USER = {"email": "admin@localhost", "password": "admin"}


@dataclass(frozen=True)
class Peer:
    """A chat server under test, as the benchmark client sees it."""

    name: str
    version: str
    pid: int  # the Python server process itself (its CPU time and RSS are read from /proc)
    url: str  # where a chat is POSTed
    headers: dict[str, str]
    model: str
    format: str = "sse"

    def body(self, prompt: str) -> dict[str, Any]:
        """A streamed chat with one user message (no chat_id/session_id: the direct SSE path)."""
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}], "stream": True}


def install(venv: Path = DEFAULT_VENV) -> Path:
    """Install Open WebUI in `venv` (does nothing once done); returns the venv's python."""
    subprocess.run(["bash", str(INSTALL_SCRIPT), str(venv)], check=True)
    installed = (venv / ".openchat-installed").read_text()
    if f"open-webui=={VERSION}" not in installed.split():
        raise RuntimeError(f"{INSTALL_SCRIPT.name} installed {installed.strip()}, not open-webui=={VERSION}")
    return venv / "bin" / "python"


def settings(data_dir: Path, engine_base_url: str) -> dict[str, str]:
    """Its environment: offline, no login, one OpenAI connection, every extra task off."""
    return {
        # Required by the issue: nothing fetched from a hub, no login page.
        "OFFLINE_MODE": "true",  # also turns off the version check
        "HF_HUB_OFFLINE": "1",
        "WEBUI_AUTH": "False",
        # A fresh database and secret per run; the secret would otherwise go to a file in the cwd.
        "DATA_DIR": str(data_dir),
        "WEBUI_SECRET_KEY": secrets.token_urlsafe(32),
        # The engine: one OpenAI-compatible connection, no Ollama.
        "ENABLE_OPENAI_API": "True",
        "OPENAI_API_BASE_URL": engine_base_url,
        "OPENAI_API_KEY": "bench",
        "ENABLE_OLLAMA_API": "False",
        # Extra model calls around a chat (the UI asks for them; off so they cannot run).
        "ENABLE_TITLE_GENERATION": "False",
        "ENABLE_FOLLOW_UP_GENERATION": "False",
        "ENABLE_TAGS_GENERATION": "False",
        "ENABLE_AUTOCOMPLETE_GENERATION": "False",
        "ENABLE_SEARCH_QUERY_GENERATION": "False",
        "ENABLE_RETRIEVAL_QUERY_GENERATION": "False",
        "ENABLE_WEB_SEARCH": "False",
        "ENABLE_IMAGE_GENERATION": "False",
        "ENABLE_CODE_INTERPRETER": "False",
        # No embedding model loaded at start (it would be sentence-transformers/all-MiniLM-L6-v2,
        # not on disk offline): RAG is not on the measured path.
        "RAG_EMBEDDING_MODEL": "",
        # No usage telemetry from its libraries (chromadb's posthog, and the usual opt-outs).
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
        # One process, and warnings only, as OpenChat's benchmark backend runs (no access log line per request).
        "UVICORN_WORKERS": "1",
        "GLOBAL_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def serve(venv: Path, engine_base_url: str, port: int, model: str = MODEL, api_key: str = "bench") -> Iterator[Peer]:
    """Open WebUI on 127.0.0.1:`port` with a temporary DATA_DIR, signed in, in front of the engine at
    `engine_base_url` (its key `api_key`, serving `model`); stopped and cleaned on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="openchat-bench-open-webui-"))
    log_path = Path(tempfile.gettempdir()) / "openchat-bench-open-webui.log"
    base = f"http://127.0.0.1:{port}"
    log(f"== starting {NAME} {VERSION} on port {port}; its log: {log_path}")
    # python + the console script (not the script alone): the pid is the server's own, with no wrapper.
    command = [str(venv / "bin" / "python"), str(venv / "bin" / "open-webui"), "serve"]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=data_dir,
            env={**os.environ, **settings(data_dir, engine_base_url), "OPENAI_API_KEY": api_key},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        token = wait_ready(process, base, log_path, model)
        log(f"   {NAME} answered after {time.monotonic() - started:.1f} s")
        yield Peer(
            name=NAME,
            version=VERSION,
            pid=process.pid,
            url=f"{base}/api/chat/completions",
            headers={"Authorization": f"Bearer {token}"},
            model=model,
        )
    finally:
        terminate(process, NAME)
        shutil.rmtree(data_dir, ignore_errors=True)
        log(f"== {NAME} stopped")


def wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path, model: str = MODEL) -> str:
    """Wait until it answers, sign in as its default user and check that it lists `model`."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=base, timeout=10) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{NAME} exited with status {process.returncode}:\n{tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{NAME} not ready within {START_TIMEOUT_S:.0f} s:\n{tail(log_path)}")
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        signin = client.post("/api/v1/auths/signin", json=DEFAULT_USER)
        signin.raise_for_status()
        token: str = signin.json()["token"]
        models = client.get("/api/models", headers={"Authorization": f"Bearer {token}"})
        models.raise_for_status()
        ids = [model["id"] for model in models.json()["data"]]
        if model not in ids:
            raise RuntimeError(f"{NAME} does not list {model} (it lists {ids}):\n{tail(log_path)}")
        return token


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def stream_chat(peer: Peer, prompt: str) -> tuple[int, float]:
    """Stream one chat; returns the number of content deltas received and the time to the first one."""
    deltas, ttft = 0, float("nan")
    started = time.perf_counter()
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", peer.url, headers=peer.headers, json=peer.body(prompt)) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            choices = json.loads(line.removeprefix("data:")).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                deltas += 1
                if deltas == 1:
                    ttft = time.perf_counter() - started
    return deltas, ttft


@contextlib.contextmanager
def fake_engine(port: int, tokens: int) -> Iterator[str]:
    """benchmarks.fake_engine in a subprocess; yields its OpenAI base URL."""
    command = [sys.executable, "-m", "benchmarks.fake_engine", "--port", str(port), "--tokens", str(tokens)]
    process = subprocess.Popen(command, cwd=BACKEND_DIR, stdin=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fake engine did not start on port {port}")
            time.sleep(0.2)
        yield base_url
    finally:
        terminate(process, NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description="Smoke check: one streamed chat through Open WebUI.")
    parser.add_argument("--engine-port", type=int, default=9100)
    parser.add_argument("--port", type=int, default=0, help="Open WebUI's port (default: a free one)")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()
    with fake_engine(args.engine_port, args.tokens) as engine_url:
        install(args.venv)
        with serve(args.venv, engine_url, args.port or free_port()) as peer:
            idle = rss_mib(peer.pid)["rss"]
            deltas, ttft = stream_chat(peer, "Say hi.")
            after = rss_mib(peer.pid)["rss"]
    print(f"{peer.name} {peer.version} (pid {peer.pid}): {deltas} content tokens (expected {args.tokens})")
    print(f"TTFT {ttft * 1000:.1f} ms; RSS {idle:.0f} MiB idle, {after:.0f} MiB after the chat")
    if deltas != args.tokens:
        sys.exit(1)


if __name__ == "__main__":
    main()
