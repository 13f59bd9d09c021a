"""Streaming capacity: what each server adds between its users and a fast engine, at concurrency
1, 4, 16 and 64, side by side in one run.

Every peer is put in front of the same fake OpenAI-compatible engine (benchmarks/fake_engine.py),
which streams a 200-token reply at once, so that the numbers measure the servers, not a model:

- **engine directly**: the fake engine's own SSE, the ceiling;
- **floor**: a bare Starlette endpoint that proxies the engine into OpenChat's NDJSON events
  (benchmarks/floor.py), the least any chat server does per token;
- **OpenChat**: POST /api/v1/chat through the openai-compatible provider (LangChain's ChatOpenAI);
- **Open WebUI**: its POST /api/chat/completions (benchmarks/open_webui.py), pinned version, in a
  venv of its own.

One async client (httpx) in the benchmark process drives every peer the same way; the peers take
turns level by level. A request fails unless it gets 200 and the whole reply's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.backend import Backend, free_port
from benchmarks.common import BACKEND_DIR, percentile, rss_mib, terminate

TOKENS = 200
LEVELS = (1, 4, 16, 64)
EXPECTED = "".join(f" tok{i}" if i else "tok" for i in range(TOKENS))
OPENCHAT_MODEL = "openai-compatible/fake-model"


@dataclass
class Peer:
    """A server under test: where to POST a chat, and how its stream is framed."""

    name: str
    version: str
    pid: int  # the server process (CPU and RSS are read from /proc)
    url: str
    body: Callable[[str], dict[str, Any]]
    format: str  # "ndjson" (OpenChat's events) or "sse" (OpenAI's chunks)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """One chat as the client saw it: when each HTTP chunk carrying reply text arrived, and the
    raw body (parsed only after the level, so that parsing does not slow the client down)."""

    started: float = 0.0
    stamps: list[float] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    status: int = 0
    error: str | None = None


@dataclass
class Level:
    peer: str
    concurrency: int
    requests: int
    failed: int
    tokens_per_s: float
    ttft_ms: tuple[float, float]  # p50, p99
    gap_ms: tuple[float, float]  # inter-token gap p50, p99
    cpu_percent: float  # of one core, over the level
    rss_mib: float  # after the level
    errors: list[str]
    client_cpu_percent: float = 0.0  # the benchmark client's own, to show it was not the bottleneck
    ttfts: list[float] = field(default_factory=list, repr=False)  # ms, each request's
    gaps: list[float] = field(default_factory=list, repr=False)  # ms, between chunks carrying text


def text_of(line: str, framing: str) -> str:
    """The reply text a stream line carries ("" for other events)."""
    if framing == "ndjson":
        event = json.loads(line)
        return str(event["content"]) if event.get("type") == "token" else ""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return ""
    choices = json.loads(line[6:]).get("choices") or []
    return str((choices[0].get("delta") or {}).get("content") or "") if choices else ""


# A chunk carries reply text if it has a token event (NDJSON) or a non-empty delta (SSE).
TEXT_MARK = {"ndjson": re.compile(rb'"type":\s*"token"'), "sse": re.compile(rb'"content":\s*"[^"]')}


class Connection:
    """A keep-alive HTTP/1.1 connection that does as little as possible per chunk of a streamed
    body (httpx's pool and h11 parser cost more per chunk than the fastest servers, and made the
    client the bottleneck at 64 streams)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: bytes, headers: dict[str, str], mark: re.Pattern[bytes]) -> Request:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        reader, writer = self.reader, self.writer
        assert reader is not None
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        result = Request(started=time.perf_counter())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{head}\r\n".encode()
            + payload
        )
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        result.status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
                data = await reader.readexactly(size + 2)
                if mark.search(data):
                    result.stamps.append(time.perf_counter())
                result.body += data[:-2]
            await reader.readuntil(b"\r\n")  # the (empty) trailer
        else:
            result.body += await reader.readexactly(int(fields.get("content-length", "0")))
            result.stamps.append(time.perf_counter())
        if fields.get("connection", "").lower() == "close":
            self.close()
        return result

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def check(result: Request, framing: str) -> None:
    """After the level: the whole reply's text must have arrived with 200."""
    if result.error is not None:
        return
    if result.status != 200:
        result.error = f"{result.status} {bytes(result.body[:120]).decode(errors='replace')}"
        return
    text = "".join(text_of(line, framing) for line in result.body.decode().splitlines() if line.strip())
    if text.strip() != EXPECTED:
        result.error = f"incomplete reply ({len(text)} of {len(EXPECTED)} characters)"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_level(peer: Peer, concurrency: int, requests: int) -> Level:
    """`requests` chats, `concurrency` at a time, each worker on its own keep-alive connection."""
    url = urlsplit(peer.url)
    mark = TEXT_MARK[peer.format]
    queue = iter(range(requests))
    results: list[Request] = []

    async def worker() -> None:
        connection = Connection(url.hostname or "127.0.0.1", url.port or 80)
        try:
            for _ in queue:
                payload = json.dumps(peer.body(f"Question {uuid.uuid4().hex[:8]}: say something.")).encode()
                try:
                    results.append(await connection.post(url.path, payload, peer.headers, mark))
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
                    results.append(Request(error=f"{type(error).__name__}: {error}"))
                    connection.close()
        finally:
            connection.close()

    cpu_before, client_before, started = cpu_seconds(peer.pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu, client_cpu = cpu_seconds(peer.pid) - cpu_before, time.process_time() - client_before
    for result in results:
        check(result, peer.format)
    ok = [r for r in results if r.error is None]
    ttfts = [(r.stamps[0] - r.started) * 1000 for r in ok if r.stamps]
    gaps = [(b - a) * 1000 for r in ok for a, b in itertools.pairwise(r.stamps)]
    errors = sorted({r.error for r in results if r.error})
    return Level(
        peer=peer.name,
        concurrency=concurrency,
        requests=requests,
        failed=requests - len(ok),
        tokens_per_s=len(ok) * TOKENS / wall,
        ttft_ms=(percentile(ttfts, 50), percentile(ttfts, 99)),
        gap_ms=(percentile(gaps, 50), percentile(gaps, 99)),
        cpu_percent=100 * cpu / wall,
        rss_mib=rss_mib(peer.pid)["rss"],
        errors=errors[:3],
        client_cpu_percent=100 * client_cpu / wall,
        ttfts=ttfts,
        gaps=gaps,
    )


def requests_at(concurrency: int, quick: bool) -> int:
    return max(8, 2 * concurrency) if quick else max(40, 6 * concurrency)


# ---------------------------------------------------------------------------------------------
# The peers' processes


def wait_for(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


@contextlib.contextmanager
def python_server(
    module: str, port: int, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <module> --port <port> ...` from the backend directory (with `env` added to the
    environment), stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        cwd=BACKEND_DIR,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        yield process
    finally:
        terminate(process, module, grace_s=15)


@contextlib.contextmanager
def fake_engine() -> Iterator[Peer]:
    port = free_port()
    with python_server("benchmarks.fake_engine", port, "--tokens", str(TOKENS)) as process:
        base = f"http://127.0.0.1:{port}/v1"
        wait_for(f"{base}/models", process, "the fake engine")
        yield Peer(
            name="engine directly",
            version="benchmarks/fake_engine.py",
            pid=process.pid,
            url=f"{base}/chat/completions",
            body=lambda prompt: {
                "model": "fake-model",
                "messages": [{"role": "user", "content": prompt}],
                "stream": True,
            },
            format="sse",
        )


def openchat_body(prompt: str) -> dict[str, Any]:
    return {
        "id": f"bench-{uuid.uuid4().hex}",
        "messages": [{"role": "user", "content": prompt}],
        "data": {"model": OPENCHAT_MODEL},
    }


@contextlib.contextmanager
def floor(engine_base: str) -> Iterator[Peer]:
    port = free_port()
    with python_server("benchmarks.floor", port, "--engine", engine_base) as process:
        wait_for(f"http://127.0.0.1:{port}/", process, "the floor server")
        yield Peer(
            "floor (bare Starlette)",
            "benchmarks/floor.py",
            process.pid,
            f"http://127.0.0.1:{port}/api/v1/chat",
            openchat_body,
            "ndjson",
        )


@contextlib.contextmanager
def openchat(engine_base: str) -> Iterator[tuple[Peer, Backend]]:
    """OpenChat with no local model, its only model the fake engine's; auth off (Open WebUI runs
    with WEBUI_AUTH=False too), no summary titles (Open WebUI's title task is off too)."""
    empty = Path(tempfile.mkdtemp(prefix="openchat-bench-nomodels-"))
    env = {
        "OPENAI_COMPATIBLE_BASE_URL": engine_base,
        "OPENCHAT_MODELS_DIR": str(empty),
        "OPENCHAT_DEFAULT_MODEL": OPENCHAT_MODEL,
        "OPENCHAT_WARM_UP": "false",
        "OPENCHAT_GENERATE_TITLES": "false",
    }
    with Backend("capacity", env) as backend:
        yield (
            Peer("OpenChat", "this checkout", backend.pid, f"{backend.url}/api/v1/chat", openchat_body, "ndjson"),
            backend,
        )
