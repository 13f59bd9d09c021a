"""`make stress`: OpenChat under load, pass or fail (issue 10, "Hardening" -> "Load").

1. **Chat load**: 50 signed-up users chat at once for 2 minutes with the real 0.5B local model,
   the backend on its default limits (4 slots, a line of 4, 2 replies per user, 60 chats a minute).
   Each client loops over short chats (a few turns per conversation, then a new one) and waits
   out every 429's Retry-After. Passes when the backend is alive and /readyz answers 200 at the
   end, every request got 200 and a stream ending in `end` or 429 with Retry-After (nothing else,
   no `error` event), and /healthz, polled every 100 ms by a separate process, has p99 < 100 ms.
2. **Soak**: 200 concurrent streams for 5 minutes from a deterministic fake model: the
   `openai-compatible` provider (LangChain's ChatOpenAI) in front of benchmarks/fake_engine.py,
   which streams a fixed reply slowly so that the streams overlap. A benchmark setting only: the
   backend serves it because this run points OPENAI_COMPATIBLE_BASE_URL at it. Passes when every
   request ends with `end`, and the backend's RSS and open file descriptors at rest (every stream
   ended) grow less than 10% from after a 30 s warm-up to the end (also sampled every 5 s under load).

Exits 1 when a criterion is not met. Prints a summary table; `--report` also writes it as Markdown.
Run: python -m benchmarks.stress [--only chat|soak] [--clients 50 --seconds 120] [--streams 200 --soak-seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx

from benchmarks.backend import Backend, free_port
from benchmarks.backend import alive as alive_pid
from benchmarks.capacity import cpu_seconds, python_server, wait_for
from benchmarks.common import SMALL_MODEL, fmt, log, percentile, rss_mib
from benchmarks.report import machine

HEALTHZ_EVERY_S = 0.1
HEALTHZ_P99_LIMIT_MS = 100.0
GROWTH_LIMIT = 0.10
TURNS = 3  # user messages per conversation before a client starts a new one
REQUEST_TIMEOUT_S = 180.0  # a stream silent this long counts as hung
FAKE_MODEL = "openai-compatible/fake-model"


@dataclass
class Tally:
    """What every client saw, added up."""

    completed: int = 0  # 200 and a stream that ended with `end`
    refused: int = 0  # 429 with a Retry-After header
    tokens: int = 0  # completion tokens the `end` events reported
    finish: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # 429 codes
    failures: Counter[str] = field(default_factory=Counter)  # anything else, by kind
    seconds: list[float] = field(default_factory=list)  # each completed request's, sent to `end`
    ttft_ms: list[float] = field(default_factory=list)  # each completed request's first token
    retry_after: list[float] = field(default_factory=list)

    def fail(self, kind: str) -> None:
        self.failures[kind] += 1

    def add(self, other: Tally) -> None:
        self.completed += other.completed
        self.refused += other.refused
        self.tokens += other.tokens
        for mine, theirs in (
            (self.finish, other.finish),
            (self.refusals, other.refusals),
            (self.failures, other.failures),
        ):
            mine.update(theirs)
        self.seconds += other.seconds
        self.ttft_ms += other.ttft_ms
        self.retry_after += other.retry_after


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_mib: float
    fds: int


@dataclass
class Check:
    name: str
    result: str
    limit: str
    ok: bool


async def chat_once(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], tally: Tally
) -> str | float | None:
    """One POST /api/v1/chat read to its end: the reply's text when it completed, the seconds to
    wait when it was refused (429's Retry-After), None when it failed (counted in the tally)."""
    started = time.monotonic()
    try:
        async with client.stream("POST", "/api/v1/chat", json=body, headers=headers) as response:
            if response.status_code == 429:
                await response.aread()
                retry_after = response.headers.get("retry-after", "")
                if not retry_after.isdigit():
                    tally.fail(f"429 without a Retry-After header: {response.text[:100]}")
                    return None
                tally.refused += 1
                tally.retry_after.append(float(retry_after))
                with contextlib.suppress(ValueError):
                    tally.refusals[response.json().get("code", "?")] += 1
                return float(retry_after)
            if response.status_code != 200:
                await response.aread()
                tally.fail(f"{response.status_code} {response.text[:120]}")
                return None
            parts: list[str] = []
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind = event.get("type")
                if kind == "token":
                    if not parts:
                        tally.ttft_ms.append((time.monotonic() - started) * 1000)
                    parts.append(event["content"])
                elif kind == "end":
                    tally.seconds.append(time.monotonic() - started)
                    tally.completed += 1
                    tally.tokens += (event.get("usage") or {}).get("completion_tokens") or 0
                    tally.finish[event.get("finish_reason", "?")] += 1
                    return "".join(parts)
                elif kind == "error":
                    tally.fail(f"error event {event.get('code')}: {str(event.get('message'))[:100]}")
                    return None
            tally.fail("stream ended without an `end` event")
    except (httpx.HTTPError, ValueError) as error:
        tally.fail(f"{type(error).__name__}: {str(error)[:100]}")
    return None


async def client_loop(
    client: httpx.AsyncClient,
    deadline: float,
    tally: Tally,
    headers: dict[str, str],
    options: dict[str, Any],
    delay_s: float = 0.0,
) -> None:
    """Short chats until the deadline, the first after `delay_s`: a few turns per conversation (the
    whole history sent each time, as the web app does), then a new one. A refused chat is sent
    again after Retry-After."""
    await asyncio.sleep(delay_s)
    messages: list[dict[str, str]] = []
    conversation = ""
    while (left := deadline - time.monotonic()) > 0:
        if not messages or (len(messages) >= 2 * TURNS and messages[-1]["role"] == "ai"):
            messages, conversation = [], f"stress-{uuid.uuid4().hex}"
        if not messages or messages[-1]["role"] == "ai":
            messages.append({"role": "user", "content": f"Question {random.randrange(10**6)}: name a colour."})
        outcome = await chat_once(client, {"id": conversation, "messages": messages, "data": options}, headers, tally)
        if isinstance(outcome, str):
            # An empty reply cannot be sent back as history: the next chat starts a new conversation.
            messages = [*messages, {"role": "ai", "content": outcome}] if outcome.strip() else []
        elif outcome is None:
            messages = []  # failed: go on with a new conversation, a second later
            await asyncio.sleep(min(1.0, left))
        else:
            # Retry-After honoured, plus jitter so that the refused clients do not all come back at once.
            await asyncio.sleep(min(outcome + random.random(), max(0.0, deadline - time.monotonic())))


def probe_healthz(url: str, probing: EventType, stop: EventType, results: Connection) -> None:
    """In its own process (the clients' work must not delay it): GET /healthz every 100 ms on a
    keep-alive connection until `stop` is set (`probing` is set once it has begun); sends back
    each answer's latency in ms, the slowest, and what went wrong with the others."""
    latencies: list[float] = []
    slowest: list[tuple[float, int]] = []  # (seconds into the run, ms) of the probes over 500 ms
    failures: Counter[str] = Counter()
    begun = time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = client.get("/healthz").status_code
                if status != 200:
                    failures[f"status {status}"] += 1
            except httpx.HTTPError as error:
                failures[f"{type(error).__name__}: {error}"] += 1
            elapsed = time.perf_counter() - started
            probing.set()
            latencies.append(elapsed * 1000)
            if elapsed > 0.5:
                slowest.append((round(time.monotonic() - begun - elapsed, 1), round(elapsed * 1000)))
            stop.wait(max(0.0, HEALTHZ_EVERY_S - elapsed))
    results.send((latencies, slowest, failures))


async def sample_process(
    pid: int, every_s: float, started: float, until: float, samples: list[Sample], tally: Tally
) -> None:
    """The backend's RSS and open file descriptors every `every_s` until `until`; progress every ~15 s."""
    logged = started
    while True:
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            fds = 0
        now = time.monotonic()
        samples.append(Sample(now - started, rss_mib(pid)["rss"], fds))
        if now - logged >= 15:
            logged = now
            log(
                f"   {now - started:.0f} s: {tally.completed} completed, {tally.refused} refused,"
                f" {sum(tally.failures.values())} failed; backend RSS {samples[-1].rss_mib:.0f} MiB, {fds} fds"
            )
        if now >= until:
            return
        await asyncio.sleep(every_s)


async def run_clients(
    url: str,
    headers: list[dict[str, str]],
    options: dict[str, Any],
    seconds: float,
    pid: int,
    every_s: float,
    stagger_s: float = 0.0,
) -> tuple[Tally, list[Sample], float]:
    """Every client (one per headers entry) loops until `seconds` have passed, then finishes its
    last chat; their starts spread evenly over `stagger_s`. Returns the tally, the backend's
    samples during the load, and the whole wall time."""
    tally, samples = Tally(), list[Sample]()
    limits = httpx.Limits(max_connections=len(headers) + 8, max_keepalive_connections=len(headers) + 8)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=30)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        started = time.monotonic()
        deadline = started + seconds
        sampler = asyncio.create_task(sample_process(pid, every_s, started, deadline, samples, tally))
        spread = stagger_s / len(headers)
        await asyncio.gather(
            *(client_loop(client, deadline, tally, h, options, i * spread) for i, h in enumerate(headers))
        )
        await sampler
    return tally, samples, time.monotonic() - started


def request_checks(tally: Tally, allow_429: bool) -> list[Check]:
    answered = tally.completed + tally.refused + sum(tally.failures.values())
    checks = [
        Check(
            "requests failed (not 200 + `end`" + (", nor 429 + Retry-After)" if allow_429 else ")"),
            f"{sum(tally.failures.values())} of {answered}",
            "0",
            not tally.failures,
        )
    ]
    if not allow_429:
        checks.append(Check("429 refusals", str(tally.refused), "0", tally.refused == 0))
    checks.append(Check("requests completed", f"{tally.completed:,}", "> 0", tally.completed > 0))
    return checks


def describe(tally: Tally) -> list[str]:
    lines = [f"- completed: {tally.completed:,} ({dict(tally.finish)}), completion tokens: {tally.tokens:,}"]
    lines.append(
        f"- completed requests: seconds from sent to `end` p50 {fmt(percentile(tally.seconds, 50), 1)},"
        f" p99 {fmt(percentile(tally.seconds, 99), 1)}, max {fmt(max(tally.seconds, default=math.nan), 1)};"
        f" first token p50 {fmt(percentile(tally.ttft_ms, 50))} ms, p99 {fmt(percentile(tally.ttft_ms, 99))} ms"
    )
    lines.append(
        f"- 429 with Retry-After: {tally.refused:,} ({dict(tally.refusals)}),"
        f" Retry-After p50 {fmt(percentile(tally.retry_after, 50))} s,"
        f" max {fmt(max(tally.retry_after, default=math.nan))} s"
    )
    lines += [f"- FAILED x{count}: {kind}" for kind, count in tally.failures.most_common(10)]
    return lines


# ---------------------------------------------------------------------------------------------
# 1. Chat load on the real 0.5B model


def sign_up(backend: Backend, clients: int) -> list[dict[str, str]]:
    """One account per client (a few at a time: each signup hashes a password in a worker thread)."""
    run = uuid.uuid4().hex[:8]

    def one(index: int) -> dict[str, str]:
        body = {"email": f"stress-{run}-{index}@example.com", "password": f"stress-{run}-pw"}
        response = backend.client.post("/api/v1/auth/signup", json=body)
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(clients)))


def chat_load(clients: int, seconds: float) -> tuple[list[Check], list[str]]:
    env = {
        "OPENCHAT_AUTH": "required",
        "OPENCHAT_DEFAULT_MODEL": SMALL_MODEL,
        # The defaults (benchmarks.backend raises them for the benchmarks; here they are what is tested).
        "OPENCHAT_QUEUE_SIZE": "4",
        "OPENCHAT_USER_MAX_GENERATIONS": "2",
        "OPENCHAT_RATE_LIMIT_CHAT": "60/minute",
        # Every client signs up from this one address.
        "OPENCHAT_RATE_LIMIT_SIGNUP": f"{2 * clients}/hour",
    }
    options = {"model": SMALL_MODEL, "temperature": 0.7, "max_tokens": 16}
    with Backend("stress-chat", env) as backend:
        engine = backend.engine(SMALL_MODEL)
        headers = sign_up(backend, clients)
        log(f"   {clients} users signed up; {clients} clients chat for {seconds:.0f} s ({engine.slots} slots)")
        spawn = multiprocessing.get_context("spawn")
        receive, send = spawn.Pipe(duplex=False)
        probing, stop = spawn.Event(), spawn.Event()
        prober = spawn.Process(target=probe_healthz, args=(backend.url, probing, stop, send), daemon=True)
        prober.start()
        probing.wait(timeout=120)
        cpu_before = {"backend": cpu_seconds(backend.pid), "engine": cpu_seconds(engine.pid)}
        tally, samples, wall = asyncio.run(run_clients(backend.url, headers, options, seconds, backend.pid, 1.0))
        stop.set()
        latencies, slowest, failures = receive.recv() if receive.poll(timeout=60) else ([], [], Counter(none=1))
        prober.join(timeout=10)
        alive = backend.process is not None and backend.process.poll() is None
        ready = alive and backend.client.get("/readyz", timeout=10).status_code == 200
        restarts = int(backend.engine_status(SMALL_MODEL).get("restarts", 0)) if alive else -1
        engine_alive = restarts == 0 and alive_pid(engine.pid)
        cpu = {
            "backend": cpu_seconds(backend.pid) - cpu_before["backend"] if alive else math.nan,
            "engine": cpu_seconds(engine.pid) - cpu_before["engine"] if engine_alive else math.nan,
        }
        engine_rss = rss_mib(engine.pid)["rss"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    checks = [
        Check("backend alive at the end", "yes" if alive else "no", "yes", alive),
        Check("/readyz at the end", "200" if ready else "not 200", "200", ready),
        Check("engine (llama-server) restarts", str(restarts) if restarts >= 0 else "unknown", "0", restarts == 0),
        *request_checks(tally, allow_429=True),
        Check(
            "/healthz p99 (ms)",
            f"{fmt(p99, 1)} (p50 {fmt(p50, 1)}, max {fmt(max(latencies, default=math.nan), 1)},"
            f" {len(latencies)} probes)",
            f"< {HEALTHZ_P99_LIMIT_MS:.0f}",
            bool(latencies) and p99 < HEALTHZ_P99_LIMIT_MS,
        ),
        Check(
            "/healthz probes not answered 200",
            f"{sum(failures.values())} {dict(failures) if failures else ''}".strip(),
            "0",
            bool(latencies) and not failures,
        ),
    ]
    details = [
        f"{clients} clients, {seconds:.0f} s of chats (all finished after {wall:.0f} s), model {SMALL_MODEL},"
        f" max_tokens {options['max_tokens']}, {engine.slots} slots, queue 4, 2 replies per user,"
        " 60 chats/minute per user",
        *describe(tally),
        f"- /healthz probes over 500 ms (s into the run, ms): {slowest or 'none'}",
        f"- completion tokens/s over the run: {tally.tokens / wall:.1f}",
        f"- backend RSS: start {samples[0].rss_mib:.0f} MiB, peak {max(s.rss_mib for s in samples):.0f} MiB,"
        f" end {samples[-1].rss_mib:.0f} MiB; engine (llama-server) RSS at the end {engine_rss:.0f} MiB",
        f"- CPU over the run (% of one core): backend {100 * cpu['backend'] / wall:.0f}%,"
        f" engine {100 * cpu['engine'] / wall:.0f}%",
    ]
    return checks, details


# ---------------------------------------------------------------------------------------------
# 2. Soak with the deterministic fake model


def growth(samples: list[Sample], warmup_s: float, value: Callable[[Sample], float]) -> tuple[float, float, float]:
    """(after warm-up, at the end, growth): medians of the first and of the last 30 s of samples
    after warm-up, so that one sample taken between two of a client's streams does not decide."""
    settled = [s for s in samples if s.at >= warmup_s]
    end = settled[-1].at
    first = statistics.median(value(s) for s in settled if s.at < settled[0].at + 30)
    last = statistics.median(value(s) for s in settled if s.at > end - 30)
    return first, last, (last - first) / first if first else float("nan")


def idle_state(backend: Backend) -> tuple[int, float]:
    """Open fds and RSS (MiB) at rest: after the last replies are stored and the engine has closed
    its idle keep-alive connections (uvicorn: after 5 s), and one more chat, for which the
    backend's connection pool lets go of those it finds closed."""
    time.sleep(8)
    body = {"id": f"stress-{uuid.uuid4().hex}", "messages": [{"role": "user", "content": "Hi"}]}
    with backend.client.stream("POST", "/api/v1/chat", json=body) as response:
        for _line in response.iter_lines():
            pass
    time.sleep(1)
    return len(os.listdir(f"/proc/{backend.pid}/fd")), rss_mib(backend.pid)["rss"]


def per_minute(samples: list[Sample], warmup_s: float, value: Callable[[Sample], float]) -> float:
    """The least-squares slope of a value after warm-up, per minute."""
    settled = [s for s in samples if s.at >= warmup_s]
    if len(settled) < 2:
        return math.nan
    return statistics.linear_regression([s.at for s in settled], [value(s) for s in settled]).slope * 60


def soak(streams: int, seconds: float, warmup_s: float, tokens: int, delay_ms: float) -> tuple[list[Check], list[str]]:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="openchat-stress-nomodels-") as no_models,
        python_server("benchmarks.fake_engine", port, "--tokens", str(tokens), "--delay-ms", str(delay_ms)) as engine,
    ):
        base = f"http://127.0.0.1:{port}/v1"
        wait_for(f"{base}/models", engine, "the fake engine")
        env = {
            "OPENAI_COMPATIBLE_BASE_URL": base,
            "OPENCHAT_MODELS_DIR": no_models,  # no local model: the fake one is the only one
            "OPENCHAT_DEFAULT_MODEL": FAKE_MODEL,
            "OPENCHAT_WARM_UP": "false",
            # Auth off: every client is the one user; let it have all its streams at once.
            "OPENCHAT_USER_MAX_GENERATIONS": str(2 * streams),
            "OPENCHAT_RATE_LIMIT_CHAT": "1000000/minute",
        }
        with Backend("stress-soak", env) as backend:
            idle = [idle_state(backend)]
            log(f"   {streams} streams for {seconds:.0f} s ({tokens} tokens each, one every {delay_ms:.0f} ms)")
            options = {"model": FAKE_MODEL, "max_tokens": tokens}
            cpu_before = cpu_seconds(backend.pid)
            # Warm-up, then the rest: the backend is measured idle after each (every stream ended),
            # where a leaked descriptor or buffer shows without the noise of the streams in flight.
            # Starts spread over one reply's length, so that the streams do not begin and end in step.
            stagger = tokens * delay_ms / 1000
            tally, samples, wall = Tally(), list[Sample](), 0.0
            for part_s in (warmup_s, seconds - warmup_s):
                run = run_clients(backend.url, [{}] * streams, options, part_s, backend.pid, 5.0, stagger)
                part, part_samples, part_wall = asyncio.run(run)
                tally.add(part)
                samples += [Sample(s.at + wall, s.rss_mib, s.fds) for s in part_samples]
                wall += part_wall
                idle.append(idle_state(backend))
            cpu = cpu_seconds(backend.pid) - cpu_before
            alive = backend.process is not None and backend.process.poll() is None
    loaded = {"RSS": growth(samples, warmup_s, lambda s: s.rss_mib), "fds": growth(samples, warmup_s, lambda s: s.fds)}
    trend = [per_minute(samples, warmup_s, value) for value in (lambda s: s.rss_mib, lambda s: float(s.fds))]
    (fds_warm, rss_warm), (fds_end, rss_end) = idle[1], idle[2]
    rss_growth, fds_growth = (rss_end - rss_warm) / rss_warm, (fds_end - fds_warm) / fds_warm
    checks = [
        Check("backend alive at the end", "yes" if alive else "no", "yes", alive),
        *request_checks(tally, allow_429=False),
        Check(
            "RSS growth, idle after warm-up -> idle at the end",
            f"{100 * rss_growth:+.1f}% ({rss_warm:.0f} -> {rss_end:.0f} MiB)",
            f"< {100 * GROWTH_LIMIT:.0f}%",
            rss_growth < GROWTH_LIMIT,
        ),
        Check(
            "open fds growth, idle after warm-up -> idle at the end",
            f"{100 * fds_growth:+.1f}% ({fds_warm} -> {fds_end})",
            f"< {100 * GROWTH_LIMIT:.0f}%",
            fds_growth < GROWTH_LIMIT,
        ),
    ]
    details = [
        f"{streams} concurrent streams, {seconds:.0f} s in two parts ({warmup_s:.0f} s warm-up, then the rest),"
        f" each run until every stream ended ({wall:.0f} s in all); fake engine: {tokens} tokens,"
        f" {delay_ms:.0f} ms apart; clients' starts spread over {stagger:.0f} s. Idle = 8 s after a part's last"
        " stream ended; RSS and fds also sampled every 5 s under load",
        *describe(tally),
        f"- requests/s {tally.completed / wall:.1f}, tokens/s {tally.tokens / wall:.0f};"
        f" backend CPU {100 * cpu / wall:.0f}% of one core",
        f"- idle (fds / RSS MiB): at start {idle[0][0]} / {idle[0][1]:.0f}, after warm-up {fds_warm} / {rss_warm:.0f},"
        f" at the end {fds_end} / {rss_end:.0f}",
        *(
            f"- {name} under load, median of the first 30 s after warm-up -> of the last 30 s:"
            f" {first:.0f} -> {last:.0f} ({100 * change:+.1f}%)"
            for name, (first, last, change) in loaded.items()
        ),
        f"- trend under load after warm-up (least squares): RSS {trend[0]:+.2f} MiB/min, fds {trend[1]:+.2f}/min",
        "- samples (s: RSS MiB / fds): " + ", ".join(f"{s.at:.0f}: {s.rss_mib:.0f}/{s.fds}" for s in samples[::6]),
    ]
    return checks, details


# ---------------------------------------------------------------------------------------------


def table(title: str, checks: list[Check]) -> list[str]:
    rows = [f"| {c.name} | {c.result} | {c.limit} | {'pass' if c.ok else '**FAIL**'} |" for c in checks]
    return [f"### {title}", "", "| check | result | criterion | verdict |", "|---|---|---|---|", *rows, ""]


def lscpu() -> list[str]:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        return ["```", *output.splitlines()[:10], "```"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["chat", "soak"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--tokens", type=int, default=50, help="fake engine: tokens per reply")
    parser.add_argument("--delay-ms", type=float, default=200, help="fake engine: delay between tokens")
    parser.add_argument("--report", type=Path, help="also write the results here (Markdown)")
    args = parser.parse_args()

    started = time.monotonic()
    sections: list[str] = []
    ok = True
    parts: list[tuple[str, Callable[[], tuple[list[Check], list[str]]]]] = []
    if args.only in (None, "chat"):
        parts.append(
            (f"Chat load: {args.clients} clients, {SMALL_MODEL}", lambda: chat_load(args.clients, args.seconds))
        )
    if args.only in (None, "soak"):
        parts.append(
            (
                f"Soak: {args.streams} streams from the fake model",
                lambda: soak(args.streams, args.soak_seconds, args.warmup, args.tokens, args.delay_ms),
            )
        )
    for title, part in parts:
        log(f"== {title}")
        try:
            checks, details = part()
        except Exception as error:  # noqa: BLE001 - a part that could not run fails, and the next still runs
            log(f"!! {title} could not run: {error}")
            checks, details = [Check("ran to the end", f"{type(error).__name__}: {error}", "yes", False)], []
        ok = ok and all(c.ok for c in checks)
        # Other work on the machine slows the engine down (its 2 threads wait for each other).
        load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
        sections += [*table(title, checks), *details, f"- machine load average (1 / 5 / 15 min) at the end: {load}", ""]
    summary = [
        f"## make stress: {'PASS' if ok else 'FAIL'} ({(time.monotonic() - started) / 60:.1f} min,"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        *sections,
    ]
    print("\n".join(summary))
    if args.report:
        text = ["# Stress results (`make stress`)", "", *machine(), "", *lscpu(), "", *summary]
        args.report.write_text("\n".join(text) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
