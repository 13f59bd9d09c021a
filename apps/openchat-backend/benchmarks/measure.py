"""Stream readers: one chat through the OpenChat API (NDJSON) or straight to an engine (OpenAI SSE),
timed by the client; several at once; and a memory sampler."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.backend import Engine
from benchmarks.common import rss_mib

Messages = list[dict[str, str]]


@dataclass
class Stream:
    """One streamed reply as the client saw it."""

    started: float  # perf_counter when the request was sent
    stamps: list[float] = field(default_factory=list)  # arrival of each chunk carrying text
    status: int = 0  # HTTP status; 0 = no answer
    error: str | None = None
    text: str = ""
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    completion_tokens: int | None = None
    server_ttft_ms: float | None = None
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and bool(self.stamps)

    @property
    def ttft_ms(self) -> float:
        return (self.stamps[0] - self.started) * 1000 if self.stamps else math.nan

    @property
    def decode_tps(self) -> float:
        """Tokens per second after the first one: (token chunks - 1) / (last - first arrival)."""
        if len(self.stamps) < 2 or self.stamps[-1] <= self.stamps[0]:
            return math.nan
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0])

    @property
    def tokens(self) -> int:
        """Generated tokens: as the server counted them, else the chunks that carried text."""
        return self.completion_tokens if self.completion_tokens is not None else len(self.stamps)


def chat_body(model_id: str, messages: Messages, max_tokens: int, conversation_id: str | None = None) -> dict[str, Any]:
    return {
        "id": conversation_id or f"bench-{uuid.uuid4().hex}",
        "messages": messages,
        "data": {"model": model_id, "temperature": 0.0, "max_tokens": max_tokens},
    }


def api_chat(
    client: httpx.Client,
    model_id: str,
    messages: Messages,
    max_tokens: int,
    conversation_id: str | None = None,
    on_first_token: Callable[[], None] | None = None,
) -> Stream:
    """POST /api/v1/chat and read the NDJSON stream to its end (messages use the API's roles: user, ai)."""
    body = chat_body(model_id, messages, max_tokens, conversation_id)
    result = Stream(started=time.perf_counter())
    parts: list[str] = []
    try:
        with client.stream("POST", "/api/v1/chat", json=body) as response:
            result.status = response.status_code
            if response.status_code != 200:
                response.read()
                result.error = response.text[:300]
                return result
            for line in response.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind = event.get("type")
                if kind == "token":
                    result.stamps.append(time.perf_counter())
                    parts.append(event["content"])
                    if on_first_token is not None and len(result.stamps) == 1:
                        on_first_token()
                elif kind == "end":
                    usage = event.get("usage") or {}
                    result.prompt_tokens = usage.get("prompt_tokens")
                    result.cached_prompt_tokens = usage.get("cached_prompt_tokens")
                    result.completion_tokens = usage.get("completion_tokens")
                    result.server_ttft_ms = (event.get("timings") or {}).get("ttft_ms")
                elif kind == "error":
                    result.error = f"{event.get('code')}: {event.get('message')}"
    except httpx.HTTPError as error:
        result.error = f"{type(error).__name__}: {error}"
    finally:
        result.ended = time.perf_counter()
        result.text = "".join(parts)
    return result


OPENAI_ROLES = {"user": "user", "ai": "assistant", "assistant": "assistant", "system": "system"}


_ENGINE_CLIENTS: dict[str, httpx.Client] = {}


def engine_client(engine: Engine) -> httpx.Client:
    """One keep-alive client per engine, made before any timing (as the API path's client is):
    a new httpx client costs ~30 ms (its TLS context), a new connection a round trip."""
    key = f"{engine.url} {engine.api_key}"
    if key not in _ENGINE_CLIENTS:
        _ENGINE_CLIENTS[key] = httpx.Client(base_url=engine.url, headers=engine.headers, timeout=600)
    return _ENGINE_CLIENTS[key]


def engine_chat(engine: Engine, messages: Messages, max_tokens: int, timeout: float = 600) -> Stream:
    """POST /v1/chat/completions (stream) straight to the engine, with what the backend sends it."""
    body = {
        "model": engine.model_id,
        "messages": [{"role": OPENAI_ROLES[m["role"]], "content": m["content"]} for m in messages],
        "temperature": 0.0,
        "top_p": 0.95,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return sse_chat(engine_client(engine), "/v1/chat/completions", body, timeout=timeout)


def sse_chat(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 600
) -> Stream:
    """POST a streamed chat to an OpenAI-style SSE endpoint and read it to its end, timed by the client."""
    result = Stream(started=time.perf_counter())
    parts: list[str] = []
    try:
        with client.stream("POST", url, json=body, headers=headers, timeout=timeout) as response:
            result.status = response.status_code
            if response.status_code != 200:
                response.read()
                result.error = response.text[:300]
                return result
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                choices = chunk.get("choices") or []
                content = (choices[0].get("delta") or {}).get("content") if choices else None
                if content:
                    result.stamps.append(time.perf_counter())
                    parts.append(content)
                usage = chunk.get("usage")
                if usage:
                    result.prompt_tokens = usage.get("prompt_tokens")
                    result.completion_tokens = usage.get("completion_tokens")
                    details = usage.get("prompt_tokens_details") or {}
                    result.cached_prompt_tokens = details.get("cached_tokens")
                timings = chunk.get("timings")
                if timings and result.cached_prompt_tokens is None and "cache_n" in timings:
                    result.cached_prompt_tokens = timings["cache_n"]
    except httpx.HTTPError as error:
        result.error = f"{type(error).__name__}: {error}"
    finally:
        result.ended = time.perf_counter()
        result.text = "".join(parts)
    return result


def at_once(calls: list[Callable[[], Stream]]) -> tuple[list[Stream], float]:
    """Run the calls simultaneously (threads released together); returns the streams and the wall time
    from the first request sent to the last stream ended."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Stream]) -> Stream:
        gate.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        streams = list(pool.map(run, calls))
    wall = max(s.ended for s in streams) - min(s.started for s in streams)
    return streams, wall


class RssSampler:
    """Highest VmRSS of some processes, sampled every `interval` seconds while in the `with` block."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, dict[str, float]] = {name: {"rss": 0.0, "anon": 0.0, "file": 0.0} for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            now = rss_mib(pid)
            if now["rss"] > self.peak[name]["rss"]:
                self.peak[name] = now

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
