"""The local engine: one llama.cpp `llama-server` process per GGUF model, supervised.

Native code can crash (SIGSEGV, SIGILL, abort, the OOM killer); the API, sign-in and
everyone's history must not go down with it, so models run in child processes:

- `EngineProcess` starts its server on loopback with a random API key, waits until it
  answers and has generated a token (the self-test), then watches it. When it dies it is
  logged, counted and restarted with backoff; three failed starts in a row (a build whose
  instructions this CPU refuses, say) mark the model unavailable with what to do.
- The server runs several slots with continuous batching, so several people are served at
  once, and keeps recent conversations' KV cache in RAM (`--cache-ram`), so going back to
  one does not recompute it.
- `LocalEngines` owns them all; the app creates it at start and closes it at shutdown.

Generations reach the server through LangChain's OpenAI-compatible chat model (see
registry.py); closing that stream closes the HTTP request, which frees the slot at once.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import math
import os
import resource
import secrets
import select
import signal
import socket
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import httpx

from app.llm.gguf_info import GgufInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

EngineState = Literal["stopped", "starting", "ready", "restarting", "failed"]

START_TIMEOUT_S = 300.0  # loading a large model from a cold disk
READY_WAIT_S = 120.0  # how long a request waits for a starting or restarting engine before 503
HEALTH_INTERVAL_S = 5.0
HEALTH_FAILURES_BEFORE_KILL = 3
FAILED_STARTS_BEFORE_GIVING_UP = 3
LOG_TAIL_BYTES = 4000
# Prompt tokens the server reads per step (its default is 2048). A long prompt reports its
# progress after each step, and the other slots generate a token between steps: at the 35-80
# prompt tokens/s of 2 cores (docs/engine.md), 2048 tokens are up to a minute with neither.
# Steps this size still keep the CPU busy with large matrix products.
PROMPT_BATCH_TOKENS = 256
# Message texts whose token counts are remembered (per model): a long conversation's history.
TEXT_TOKENS_REMEMBERED = 20_000
REBUILD_HINT = (
    "Rebuild the engine for this machine with `make engine-rebuild` (it builds a portable llama-server "
    "that uses no instruction this CPU may refuse), then restart OpenChat. Remote providers keep working."
)


class EngineBusyError(RuntimeError):
    """Every slot is generating and the waiting line is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The model is busy; retry in {retry_after} s.")
        self.retry_after = retry_after


class EngineUnavailableError(RuntimeError):
    """The engine is (re)starting, or failed to start and was given up on."""

    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class EngineSettings:
    binary: Path
    threads: int  # 0 = every core
    slots: int  # 0 = sized from the CPU count and memory
    context_tokens: int  # per slot, capped by what the model was trained for
    cache_ram_mib: int
    queue_size: int  # requests that may wait when every slot is busy
    log_dir: Path


class ExitWatch:
    """Waits for a process to end without waking until it does. `Popen.wait(timeout)` polls
    every few milliseconds up to 50 ms: for each engine, ~20 wake-ups a second of a thread that
    takes the interpreter's lock and a core from the engine generating beside it. A pidfd
    (Linux 5.3+) becomes readable when its process ends, so poll() on it sleeps until then."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pidfd: int | None = None
        self.poller = select.poll()

    def __enter__(self) -> ExitWatch:
        try:
            self.pidfd = os.pidfd_open(self.process.pid)
        except (AttributeError, OSError):  # not Linux, an older kernel, or the process is reaped
            return self
        self.poller.register(self.pidfd, select.POLLIN)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)

    def ended_within(self, seconds: float) -> bool:
        if self.pidfd is None:
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        return bool(self.poller.poll(seconds * 1000)) or self.process.poll() is not None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with status {code}"


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def available_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024**3


def plan_slots(requested: int, cpus: int, kv_bytes_per_slot: int, memory: int) -> int:
    """Parallel slots: two per core (a slot waiting on the next token leaves the core to another),
    2 to 8, and never more KV cache than a quarter of the available memory."""
    slots = requested or max(2, min(8, 2 * cpus))
    if kv_bytes_per_slot > 0:
        slots = min(slots, max(1, (memory // 4) // kv_bytes_per_slot))
    return max(1, slots)


def _child_setup() -> Callable[[], None]:
    """Runs in the child before exec: no core files (a crash of a 1 GB model would write one),
    and SIGTERM when the parent dies (Linux), so a killed backend leaves no engine behind."""
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    pr_set_pdeathsig = 1

    def setup() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if prctl is not None:
            prctl(pr_set_pdeathsig, signal.SIGTERM)

    return setup


class EngineProcess:
    """One GGUF model served by its own supervised llama-server."""

    def __init__(self, model_id: str, path: Path, info: GgufInfo, settings: EngineSettings) -> None:
        self.model_id = model_id
        self.path = path
        self.settings = settings
        self.context_per_slot = min(info.context_length, settings.context_tokens)
        self.threads = settings.threads or os.cpu_count() or 1
        self.slots = plan_slots(
            settings.slots,
            os.cpu_count() or 1,
            info.kv_bytes_per_token * self.context_per_slot,
            available_memory_bytes(),
        )
        self.api_key = secrets.token_urlsafe(24)
        self.port = 0
        self.state: EngineState = "stopped"
        self.restarts = 0  # times the server died or hung and was started again
        self.last_exit: str | None = None
        self.failure: str | None = None
        self.lifetime = 0  # increments each time a server process ends: a generation can tell it lost its server
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0  # admitted and not yet released: generating or waiting for a slot
        self._background: dict[int, Callable[[], None]] = {}  # places of background work: how to give each up
        self._background_keys = itertools.count()
        self._avg_seconds = 10.0  # running estimate of a generation's length, for Retry-After
        self._tokens_per_message: int | None = None  # the chat template's, measured once
        self._text_tokens: OrderedDict[bytes, int] = OrderedDict()  # tokens of recent message texts, by digest

    # -- public view -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def generating(self) -> int:
        return min(self._pending, self.slots)

    @property
    def queue_length(self) -> int:
        """Requests waiting for a free slot."""
        return max(0, self._pending - self.slots)

    @property
    def log_path(self) -> Path:
        return self.settings.log_dir / f"engine-{self.model_id}.log"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server in the background if it is not running (idempotent, non-blocking)."""
        with self._lock:
            if self._closing.is_set() or self.state == "failed":
                return
            if self._thread is None or not self._thread.is_alive():
                self.state = "starting"
                self._thread = threading.Thread(target=self._supervise, name=f"engine-{self.model_id}", daemon=True)
                self._thread.start()

    def _unavailable(self) -> EngineUnavailableError:
        if self.state == "failed":
            return EngineUnavailableError(
                f"The local engine for {self.model_id} could not start: {self.failure}", retry_after=None
            )
        return EngineUnavailableError(
            f"The local engine for {self.model_id} is {self.state}; retry in a few seconds.", retry_after=5
        )

    async def ready(self, wait_s: float = READY_WAIT_S) -> None:
        """Wait (without a thread) until the server can generate; a request arriving while it
        restarts waits for it rather than failing, up to `wait_s`."""
        self.start()
        deadline = time.monotonic() + wait_s
        while not self._ready.is_set():
            if self.state == "failed" or time.monotonic() > deadline:
                raise self._unavailable()
            await anyio.sleep(0.05)

    def close(self, timeout: float = 15.0) -> None:
        self._closing.set()
        self._ready.clear()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    # -- admission -------------------------------------------------------------------------

    def admit(self) -> None:
        """Take a place (a slot, or one in the bounded line) or raise EngineBusyError.

        A request that would wait for a slot takes over one held by background work instead."""
        with self._lock:
            if self._pending >= self.slots and self._background:
                _key, give_up = self._background.popitem()  # its place passes to this request
            else:
                if self._pending >= self.slots + self.settings.queue_size:
                    waiting_turns = (self._pending - self.settings.queue_size) / max(self.slots, 1)
                    retry = math.ceil(self._avg_seconds * max(waiting_turns, 1))
                    raise EngineBusyError(retry_after=max(1, min(retry, 120)))
                self._pending += 1
                return
        give_up()

    def admit_background(self, give_up: Callable[[], None]) -> int:
        """Take a free slot for background work (a summary title), which never waits for one
        nor keeps a user waiting: EngineBusyError when no slot is free, and `give_up` is called
        when a user's request needs the slot (that request then holds the place). Returns the
        key to pass to `release_background`."""
        with self._lock:
            if self._pending >= self.slots:
                raise EngineBusyError(retry_after=1)
            self._pending += 1
            key = next(self._background_keys)
            self._background[key] = give_up
            return key

    def release_background(self, key: int) -> None:
        with self._lock:
            if self._background.pop(key, None) is not None:  # not given up to a user
                self._pending = max(0, self._pending - 1)

    def release(self, seconds: float | None) -> None:
        with self._lock:
            self._pending = max(0, self._pending - 1)
            if seconds is not None:
                self._avg_seconds = 0.7 * self._avg_seconds + 0.3 * seconds

    # -- tokens ----------------------------------------------------------------------------

    async def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Exactly the tokens the server will see: its own chat template, then its tokenizer."""
        return await self._ask(lambda client: self._count(client, messages))

    async def count_message_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Each message's share of a prompt: its text's tokens plus the tokens the chat template
        puts around one message. Each text is tokenized once (remembered by its digest), so a
        conversation sent again with one more message costs one more count, not all of them."""
        return await self._ask(lambda client: self._count_each(client, messages))

    async def _ask(self, call: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run `call` with a client of the server. A server that died a moment ago (its supervisor
        has not noticed yet) is waited for once, so the first request after a crash is served
        by the restarted engine."""
        for attempt in range(2):
            await self.ready()
            lifetime = self.lifetime
            headers = {"Authorization": f"Bearer {self.api_key}"}
            try:
                # verify=False: plain HTTP on loopback; building the default TLS context took ~30 ms per client.
                async with httpx.AsyncClient(
                    base_url=self.base_url, headers=headers, timeout=60, verify=False
                ) as client:
                    return await call(client)
            except httpx.TransportError as error:
                if attempt:
                    raise self._unavailable() from error
                for _ in range(100):  # up to 2 s for its supervisor to see it end
                    if self.lifetime != lifetime:
                        break
                    await anyio.sleep(0.02)
        raise AssertionError("unreachable")

    async def _count(self, client: httpx.AsyncClient, messages: list[dict[str, str]]) -> int:
        templated = await client.post("/apply-template", json={"messages": messages})
        templated.raise_for_status()
        tokens = await client.post("/tokenize", json={"content": templated.json()["prompt"], "add_special": True})
        tokens.raise_for_status()
        return len(tokens.json()["tokens"])

    async def _count_each(self, client: httpx.AsyncClient, messages: list[dict[str, str]]) -> list[int]:
        if self._tokens_per_message is None:
            # What one more message adds besides its text: two copies of a message minus one.
            one = [{"role": "user", "content": "a"}]
            added = await self._count(client, one * 2) - await self._count(client, one)
            self._tokens_per_message = added - (await self._texts_tokens(client, ["a"]))[0]
        keys = [hashlib.blake2b(m["content"].encode(), digest_size=16).digest() for m in messages]
        new = {key: m["content"] for key, m in zip(keys, messages, strict=True) if key not in self._text_tokens}
        if new:
            for key, tokens in zip(new, await self._texts_tokens(client, list(new.values())), strict=True):
                self._text_tokens[key] = tokens
        counts = []
        for key in keys:
            self._text_tokens.move_to_end(key)
            counts.append(self._text_tokens[key] + self._tokens_per_message)
        while len(self._text_tokens) > TEXT_TOKENS_REMEMBERED:
            self._text_tokens.popitem(last=False)
        return counts

    async def _texts_tokens(self, client: httpx.AsyncClient, texts: list[str]) -> list[int]:
        """Each text's tokens, in one request (one per text took ~6 ms each): the texts joined by
        blank lines are tokenized with each token's bytes, and each token counts for the text its
        first byte is in. Blank lines are tokens of their own, so few tokens straddle two texts."""
        separator = b"\n\n"  # its own token(s), counted for no text
        encoded = [text.encode() for text in texts]
        body = {"content": separator.join(encoded).decode(), "with_pieces": True, "parse_special": False}
        response = await client.post("/tokenize", json=body)
        response.raise_for_status()
        counts = [0] * len(texts)
        starts = [0, *itertools.accumulate(len(text) + len(separator) for text in encoded)]
        index = offset = 0
        for token in response.json()["tokens"]:
            while index < len(texts) - 1 and offset >= starts[index + 1]:
                index += 1
            if offset < starts[index] + len(encoded[index]):  # not a separator's token
                counts[index] += 1
            piece = token["piece"]
            offset += len(piece.encode()) if isinstance(piece, str) else len(piece)
        return counts

    # -- supervision (its own thread) ------------------------------------------------------

    def _command(self) -> list[str]:
        return [
            str(self.settings.binary),
            "--model", str(self.path),
            "--alias", self.model_id,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--api-key", self.api_key,
            "--threads", str(self.threads),
            "--threads-batch", str(self.threads),
            "--parallel", str(self.slots),
            "--ctx-size", str(self.slots * self.context_per_slot),
            "--no-kv-unified",  # each slot its own window: one long conversation cannot starve the others
            "--cache-ram", str(self.settings.cache_ram_mib),
            "--cont-batching",
            "--batch-size", str(PROMPT_BATCH_TOKENS),
            "--metrics",
            "--slots",
            "--no-webui",
        ]  # fmt: skip

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.port = free_loopback_port()
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists() and self.log_path.stat().st_size > 20 * 1024 * 1024:
            self.log_path.unlink()
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting llama-server\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches the backend, which stops it
                preexec_fn=_child_setup(),
            )
        self._process = process
        return process

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(max(0, self.log_path.stat().st_size - LOG_TAIL_BYTES))
                return log_file.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, verify=False)  # loopback HTTP

    def _wait_until_serving(self, process: subprocess.Popen[bytes]) -> str | None:
        """None once the server answers and has generated a token; otherwise why it did not."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._client() as client:
            while True:
                if self._closing.is_set():
                    return "stopped"
                code = process.poll()
                if code is not None:
                    return describe_exit(code)
                if time.monotonic() > deadline:
                    return f"did not answer within {START_TIMEOUT_S:.0f} s"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            # The self-test: a build whose instructions this CPU refuses dies on its first generation.
            try:
                reply = client.post(
                    "/completion", json={"prompt": "Hello", "n_predict": 2, "cache_prompt": False}, timeout=120
                )
                reply.raise_for_status()
                return None
            except httpx.HTTPError as error:
                try:
                    code = process.wait(timeout=2)
                    return f"{describe_exit(code)} during its self-test generation"
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    return f"failed its self-test generation ({error})"

    def _watch(self, process: subprocess.Popen[bytes]) -> str:
        """Wait for the server to end; kill it if it stops answering. Returns how it ended."""
        failures = 0
        with self._client() as client, ExitWatch(process) as exit_watch:
            while True:
                if exit_watch.ended_within(HEALTH_INTERVAL_S):
                    return describe_exit(process.wait())
                try:
                    healthy = client.get("/health", timeout=HEALTH_INTERVAL_S).status_code == 200
                except httpx.TransportError:
                    healthy = False
                failures = 0 if healthy else failures + 1
                if failures >= HEALTH_FAILURES_BEFORE_KILL and not self._closing.is_set():
                    process.kill()
                    process.wait()
                    return f"stopped answering health checks for {failures * HEALTH_INTERVAL_S:.0f} s and was killed"

    def _supervise(self) -> None:
        failed_starts = 0
        backoff = 0.5
        while not self._closing.is_set():
            try:
                process = self._spawn()
            except OSError as error:
                self._give_up(f"cannot run {self.settings.binary}: {error}. Build it with `make engine`.")
                return
            problem = self._wait_until_serving(process)
            if problem is None:
                failed_starts, backoff = 0, 0.5
                self.failure = None
                self.state = "ready"
                self._ready.set()
                log.info("Local engine for %s ready on port %d (%d slots)", self.model_id, self.port, self.slots)
                ended = self._watch(process)
            else:
                failed_starts += 1
                ended = problem
            self._ready.clear()
            self.lifetime += 1
            if self._closing.is_set():
                break
            self.restarts += 1
            self.last_exit = ended
            log.error(
                "Local engine for %s %s; restarting it. Last lines of %s:\n%s",
                self.model_id,
                ended,
                self.log_path,
                self._log_tail()[-1500:],
            )
            if failed_starts >= FAILED_STARTS_BEFORE_GIVING_UP:
                self._give_up(f"it {ended} on {failed_starts} starts in a row. {REBUILD_HINT}")
                return
            self.state = "restarting"
            self._closing.wait(backoff)
            backoff = min(backoff * 2, 30.0)
        self.state = "stopped"

    def _give_up(self, reason: str) -> None:
        self.failure = reason
        self.state = "failed"
        log.error("Local model %s is unavailable: %s (engine log: %s)", self.model_id, reason, self.log_path)


class LocalEngines:
    """Every local engine of one app, by model file; created with the app, closed at its shutdown."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._engines: dict[Path, EngineProcess] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str, path: Path, info: GgufInfo) -> EngineProcess:
        with self._lock:
            engine = self._engines.get(path)
            if engine is None:
                engine = EngineProcess(model_id, path, info, self.settings)
                self._engines[path] = engine
            return engine

    def find(self, model_id: str) -> EngineProcess | None:
        return next((e for e in self.all() if e.model_id == model_id), None)

    def all(self) -> list[EngineProcess]:
        with self._lock:
            return list(self._engines.values())

    def close(self) -> None:
        engines = self.all()
        for engine in engines:
            engine._closing.set()
        for engine in engines:
            engine.close()

    def status(self) -> dict[str, Any]:
        return {
            e.model_id: {
                "state": e.state,
                "slots": e.slots,
                "generating": e.generating,
                "waiting": e.queue_length,
                "restarts": e.restarts,
                "last_exit": e.last_exit,
                "failure": e.failure,
            }
            for e in self.all()
        }
