"""2. Several people at once: c simultaneous streams through the API, each with its own prompt.

Rounds of c streams are repeated until there are at least `min_samples` requests, so that the
TTFT p99 is over enough samples. Total tokens/s = generated tokens / wall time of the rounds.
During the concurrency-4 rounds the memory of the backend and of the engine is sampled (part 5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

from benchmarks.backend import Backend
from benchmarks.common import log, median, percentile
from benchmarks.measure import RssSampler, Stream, api_chat, at_once

MAX_TOKENS = 128
TOPICS = (
    "Explain what a hash map is and show a short Python example.",
    "Explain how binary search works and show a short Python example.",
    "Explain what a linked list is and show a short Python example.",
    "Explain what recursion is and show a short Python example.",
)
SAMPLED_LEVEL = 4  # memory is sampled while this many streams run (or the most there are)


@dataclass
class LevelResult:
    concurrency: int
    streams: list[Stream] = field(default_factory=list)
    wall_s: float = 0.0
    rss_peak: dict[str, dict[str, float]] | None = None

    @property
    def ok(self) -> list[Stream]:
        return [s for s in self.streams if s.ok]

    @property
    def failures(self) -> int:
        return len(self.streams) - len(self.ok)

    @property
    def total_tps(self) -> float:
        return sum(s.tokens for s in self.ok) / self.wall_s if self.wall_s else math.nan

    @property
    def ttft_p50(self) -> float:
        return median([s.ttft_ms for s in self.ok])

    @property
    def ttft_p99(self) -> float:
        return percentile([s.ttft_ms for s in self.ok], 99)

    @property
    def per_stream_tps(self) -> float:
        return median([s.decode_tps for s in self.ok])


@dataclass
class ConcurrencyResult:
    model_id: str
    slots: int
    levels: list[LevelResult]
    sampled_level: int

    def sampled(self) -> LevelResult | None:
        return self.level(self.sampled_level)

    def level(self, concurrency: int) -> LevelResult | None:
        return next((r for r in self.levels if r.concurrency == concurrency), None)

    def scaling(self, concurrency: int) -> float:
        one, many = self.level(1), self.level(concurrency)
        if one is None or many is None:
            return math.nan
        return many.total_tps / one.total_tps


def concurrency(backend: Backend, model_id: str, levels: list[int], min_samples: int) -> ConcurrencyResult:
    engine = backend.engine(model_id)  # ready, and the process to watch
    log(f"== 2. concurrency {levels} through the API, {model_id} ({engine.slots} slots, >= {min_samples} samples)")
    results = []
    sequence = 0
    sampled_level = SAMPLED_LEVEL if SAMPLED_LEVEL in levels else max(levels)
    for level in levels:
        result = LevelResult(level)
        rounds = math.ceil(min_samples / level)
        # Memory (part 5): sampled while this level runs.
        sampler = RssSampler({"backend": backend.pid, "engine": engine.pid}) if level == sampled_level else None
        with sampler or nullcontext():
            for _ in range(rounds):
                calls: list[Callable[[], Stream]] = []
                for _ in range(level):
                    sequence += 1
                    text = f"Request {1000 + sequence}. {TOPICS[sequence % len(TOPICS)]}"
                    messages = [{"role": "user", "content": text}]
                    calls.append(partial(api_chat, backend.client, model_id, messages, MAX_TOKENS))
                streams, wall = at_once(calls)
                result.streams += streams
                result.wall_s += wall
        if sampler is not None:
            result.rss_peak = sampler.peak
        for stream in result.streams:
            if not stream.ok:
                log(f"   a request failed: status {stream.status} {stream.error}")
        log(
            f"   c={level}: {result.total_tps:5.1f} tok/s total, TTFT p50 {result.ttft_p50:6.0f} ms "
            f"p99 {result.ttft_p99:6.0f} ms ({len(result.ok)} ok, {result.failures} failed, {rounds} rounds)"
        )
        results.append(result)
    return ConcurrencyResult(model_id, engine.slots, results, sampled_level)
