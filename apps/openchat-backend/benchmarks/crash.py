"""4. From an engine crash to the next first token: kill the idle engine of a model, send a chat at once
(again every 100 ms while the backend answers that the engine is restarting) and time from the kill
to the first token received."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.backend import Backend
from benchmarks.common import log
from benchmarks.measure import Stream, api_chat

RETRY_EVERY_S = 0.1
GIVE_UP_S = 300.0
RETRIED_STATUSES = {500, 502, 503, 504, 429}


@dataclass
class CrashResult:
    model_id: str
    signal_name: str
    seconds: float  # kill -> first token
    old_pid: int
    new_pid: int
    attempts: int
    answers: Counter[str] = field(default_factory=Counter)  # what the failed attempts got
    last_exit: str | None = None


def describe(stream: Stream) -> str:
    """A refused attempt in a few words: status and the API's error code."""
    if stream.status == 0:
        return "no connection"
    if stream.status == 200:
        return f"200 then {(stream.error or 'no token').split(':', 1)[0]}"
    try:
        code = json.loads(stream.error or "").get("code")
    except ValueError:
        code = None
    return f"{stream.status} {code}" if code else str(stream.status)


def wait_idle(backend: Backend, model_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.engine_status(model_id)
        if status.get("state") == "ready" and not status.get("generating") and not status.get("waiting"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"engine for {model_id} did not become idle")


def crash(backend: Backend, model_id: str, sig: signal.Signals) -> CrashResult:
    engine = backend.engine(model_id)
    wait_idle(backend, model_id)
    time.sleep(1)  # truly idle: nothing in flight, health checks settled
    messages = [{"role": "user", "content": f"Crash test {uuid.uuid4().hex[:8]}. Say hello."}]
    answers: Counter[str] = Counter()
    attempts = 0
    killed = time.perf_counter()
    os.kill(engine.pid, sig)
    while True:
        attempts += 1
        stream = api_chat(backend.client, model_id, messages, 8)
        if stream.ok:
            break
        answers[describe(stream)] += 1
        if stream.status not in RETRIED_STATUSES | {0, 200}:
            raise RuntimeError(f"unexpected answer after the crash: {stream.status} {stream.error}")
        if time.perf_counter() - killed > GIVE_UP_S:
            raise RuntimeError(f"no token within {GIVE_UP_S:.0f} s of the crash")
        time.sleep(RETRY_EVERY_S)
    seconds = stream.stamps[0] - killed
    new = backend.engine(model_id)
    status = backend.engine_status(model_id)
    result = CrashResult(model_id, sig.name, seconds, engine.pid, new.pid, attempts, answers, status.get("last_exit"))
    log(
        f"   {sig.name}: first token {seconds:.2f} s after the kill, {attempts} attempt(s) "
        f"({dict(answers) or 'none refused'}), engine pid {engine.pid} -> {new.pid}, last_exit: {result.last_exit}"
    )
    return result


def crashes(backend: Backend, model_id: str) -> list[CrashResult]:
    log(f"== 4. engine crash -> next first token, {model_id}")
    return [crash(backend, model_id, sig) for sig in (signal.SIGKILL, signal.SIGSEGV)]
