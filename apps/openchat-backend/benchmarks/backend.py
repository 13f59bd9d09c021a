"""A real OpenChat backend in a subprocess (uvicorn on a free loopback port, its own temporary data
directory), and the llama-server engines it starts, found from outside through /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import BACKEND_DIR, log, terminate

START_TIMEOUT_S = 120.0
ENGINE_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may contain spaces and parentheses
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


def option(args: list[str], name: str) -> str | None:
    try:
        return args[args.index(name) + 1]
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Engine:
    """One llama-server process as its command line describes it."""

    model_id: str
    pid: int
    port: int
    api_key: str
    threads: int
    slots: int
    ctx_size: int
    cache_ram_mib: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @classmethod
    def from_cmdline(cls, pid: int, args: list[str]) -> Engine | None:
        alias, port, key = option(args, "--alias"), option(args, "--port"), option(args, "--api-key")
        if not (alias and port and key):
            return None
        return cls(
            model_id=alias,
            pid=pid,
            port=int(port),
            api_key=key,
            threads=int(option(args, "--threads") or 0),
            slots=int(option(args, "--parallel") or 1),
            ctx_size=int(option(args, "--ctx-size") or 0),
            cache_ram_mib=int(option(args, "--cache-ram") or -1),
        )


def engines_of(backend_pid: int) -> dict[str, Engine]:
    """The live llama-server children of a backend process, by model id."""
    found: dict[str, Engine] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if parent_pid(pid) != backend_pid or not alive(pid):
            continue
        engine = Engine.from_cmdline(pid, cmdline(pid))
        if engine is not None:
            found[engine.model_id] = engine
    return found


class Backend:
    """`uvicorn app:app` with the given settings; use as a context manager (always stopped)."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"openchat-bench-{name}-"))
        # Outside the data directory, so it outlives the backend; the engines' logs are in <data>/logs.
        self.log_path = Path(tempfile.gettempdir()) / f"openchat-bench-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.seen_engine_pids: set[int] = set()
        self.client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(600, connect=10))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OPENCHAT_AUTH": "off",
            "OPENCHAT_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": f"sqlite:///{self.data_dir}/b.db",
            "OPENCHAT_QUEUE_SIZE": "16",
            "OPENCHAT_RATE_LIMIT_CHAT": "100000/minute",
            # One benchmark client is one user: let it have as many replies in flight as it sends.
            "OPENCHAT_USER_MAX_GENERATIONS": "64",
            **self.extra_env,
        }

    def __enter__(self) -> Backend:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        settings = " ".join(f"{k}={v}" for k, v in self.extra_env.items()) or "default settings"
        log(f"== starting backend '{self.name}' on port {self.port} ({settings}); its log: {self.log_path}")
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app:app",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--no-proxy-headers",
                ],
                cwd=BACKEND_DIR,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"backend '{self.name}' exited with status {self.process.returncode}: {self.log_tail()}"
                )
            try:
                if self.client.get("/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"backend '{self.name}' did not answer /healthz within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def log_tail(self, size: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def readyz(self) -> dict[str, Any]:
        response = self.client.get("/readyz", timeout=10)
        body: dict[str, Any] = response.json()
        return body

    def engine_status(self, model_id: str) -> dict[str, Any]:
        status: dict[str, Any] = self.readyz().get("engines", {}).get(model_id, {})
        return status

    def engines(self) -> dict[str, Engine]:
        found = engines_of(self.pid)
        self.seen_engine_pids.update(e.pid for e in found.values())
        return found

    def engine(self, model_id: str, timeout: float = ENGINE_TIMEOUT_S) -> Engine:
        """The model's engine once the backend reports it ready (waits for a restart to finish)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.engine_status(model_id).get("state")
            engine = self.engines().get(model_id)
            if state == "ready" and engine is not None:
                return engine
            if state == "failed":
                raise RuntimeError(f"engine for {model_id} failed: {self.engine_status(model_id)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine for {model_id} not ready within {timeout:.0f} s (state {state})")
            time.sleep(0.1)

    def warm_up(self, model_id: str) -> Engine:
        """One short chat: starts the model's engine (and loads its weights) before anything is measured."""
        log(f"   warming up {model_id}")
        body = {
            "id": f"bench-warmup-{uuid.uuid4().hex}",
            "messages": [{"role": "user", "content": "Say hi."}],
            "data": {"model": model_id, "temperature": 0.0, "max_tokens": 4},
        }
        for _ in range(3):
            with self.client.stream("POST", "/api/v1/chat", json=body) as response:
                if response.status_code == 200:
                    for _line in response.iter_lines():
                        pass
                    return self.engine(model_id)
                response.read()
                log(f"   warm-up got {response.status_code}: {response.text[:200]}; retrying")
            time.sleep(2)
        raise RuntimeError(f"could not warm up {model_id}")

    def stop(self) -> None:
        """Terminate the backend; its engines die with it. Kill any that did not (and say so)."""
        process = self.process
        if process is not None:
            self.engines()  # remember the current engines, to check they are gone afterwards
            terminate(process, f"backend '{self.name}'")
            deadline = time.monotonic() + 15
            left = [pid for pid in self.seen_engine_pids if alive(pid)]
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                left = [pid for pid in left if alive(pid)]
            for pid in left:
                log(f"   WARNING: engine process {pid} outlived backend '{self.name}'; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process = None
            text = self.log_tail(10**9)
            chained = text.count("The above exception was the direct cause") + text.count(
                "During handling of the above"
            )
            errors = text.count("Traceback (most recent call last)") - chained
            notes = [f"{len(left)} engine(s) left behind"] if left else []
            notes += [f"{errors} exception(s) logged in {self.log_path}"] if errors else []
            log(f"== backend '{self.name}' stopped" + (f" ({'; '.join(notes)})" if notes else ""))
        self.client.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
