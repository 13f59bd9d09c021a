"""Streaming, end to end (optional): token arrival gaps straight from the backend and through the
Next.js proxy (the standalone server), and frame gaps in Chromium while a long reply renders."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

import httpx

from benchmarks.backend import free_port
from benchmarks.common import BACKEND_DIR, SMALL_MODEL, log, median, percentile

FRONTEND_DIR = BACKEND_DIR.parent / "openchat-frontend"
SERVER = FRONTEND_DIR / ".next" / "standalone" / "server.js"
LONG_PROMPT = "Write a detailed essay about the history of computing."
TOKENS = 300


@dataclass
class Gaps:
    tokens: int
    reads: int
    p50: float
    p95: float
    max: float


def token_gaps(url: str) -> Gaps:
    """Arrival gaps between token lines of one long reply, as a client reading the socket sees them."""
    body = {
        "id": f"bench-gaps-{time.time_ns()}",
        "messages": [{"role": "user", "content": LONG_PROMPT}],
        "data": {"model": SMALL_MODEL, "max_tokens": TOKENS, "temperature": 0.0},
    }
    stamps: list[float] = []
    reads = 0
    buffer = b""
    with httpx.Client(timeout=300) as client, client.stream("POST", f"{url}/api/v1/chat", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            reads += 1
            now = time.perf_counter()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            stamps += [now for line in lines if line and json.loads(line)["type"] == "token"]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    return Gaps(len(stamps), reads, median(gaps), percentile(gaps, 95), max(gaps, default=float("nan")))


@dataclass
class FrontendResult:
    skipped: str | None = None
    direct: Gaps | None = None
    proxied: Gaps | None = None
    browser: str = ""


def frontend(backend_url: str) -> FrontendResult:
    if not SERVER.exists():
        return FrontendResult(skipped=f"{SERVER.relative_to(FRONTEND_DIR.parents[1])} is missing (build the frontend)")
    if shutil.which("node") is None:
        return FrontendResult(skipped="node is not installed")
    log("== streaming end to end: backend vs Next.js proxy, and Chromium frame gaps")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOSTNAME": "127.0.0.1",
        "BACKEND_URL": backend_url,
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    front = subprocess.Popen(
        ["node", str(SERVER)],
        cwd=SERVER.parent,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if front.poll() is not None:
                return FrontendResult(skipped=f"the Next.js server exited with status {front.returncode}")
            try:
                if httpx.get(f"{url}/api/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return FrontendResult(skipped="the Next.js server did not answer within 60 s")
            time.sleep(0.2)
        result = FrontendResult(direct=token_gaps(backend_url), proxied=token_gaps(url))
        browser = subprocess.run(
            ["node", "scripts/bench-stream.mjs", url],
            cwd=FRONTEND_DIR,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        result.browser = browser.stdout.strip() or browser.stderr.strip()[-300:]
        return result
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(front.pid, signal.SIGTERM)
        try:
            front.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(front.pid, signal.SIGKILL)
            front.wait()
