"""1. One stream: the OpenChat API vs the engine it runs (llama-server, directly) vs plain llama-cpp-python.

The three paths take turns run by run (the order rotates each run), so machine noise hits them alike.
Each path gets its own series of prompts that differ only in a number, so no path ever finds its
prompt already in a cache (the API and the engine-direct path share one llama-server)."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.backend import Backend, Engine
from benchmarks.common import MODEL_FILES, MODELS_DIR, log, median
from benchmarks.measure import Stream, api_chat, engine_chat
from benchmarks.plain import PlainLlama

MAX_TOKENS = 128
PROMPT = "Explain what a hash map is and show a short Python example."
PATHS = ("api", "engine", "plain")
PATH_NAMES = {
    "api": "OpenChat API (POST /api/v1/chat, NDJSON)",
    "engine": "engine directly (llama-server /v1/chat/completions, SSE)",
    "plain": "plain llama-cpp-python (in process)",
}


def prompt(path: str, run: int) -> str:
    # Same length and wording on every path; only the number differs.
    return f"Question {100 * (PATHS.index(path) + 1) + run}. {PROMPT}"


@dataclass
class PathResult:
    streams: list[Stream] = field(default_factory=list)  # the measured runs (warm-up excluded)

    @property
    def ttft_ms(self) -> float:
        return median([s.ttft_ms for s in self.streams if s.ok])

    @property
    def decode_tps(self) -> float:
        return median([s.decode_tps for s in self.streams if s.ok])

    @property
    def tokens(self) -> list[int]:
        return [len(s.stamps) for s in self.streams]


@dataclass
class SingleResult:
    model_id: str
    threads: int
    context: int
    flash_attn: str  # as llama.cpp resolved `auto` for plain llama-cpp-python
    runs: int
    paths: dict[str, PathResult]

    def ratio(self, a: str, b: str) -> float:
        return self.paths[a].decode_tps / self.paths[b].decode_tps


def single_stream(backend: Backend, model_id: str, runs: int) -> SingleResult:
    engine: Engine = backend.engine(model_id)
    context = engine.ctx_size // max(engine.slots, 1)
    log(
        f"== 1. one stream, {model_id}: API vs engine vs plain llama-cpp-python "
        f"({engine.threads} threads, n_ctx {context}, "
        f"{runs} runs + 1 warm-up)"
    )
    plain = PlainLlama(MODELS_DIR / MODEL_FILES[model_id], threads=engine.threads, context=context)
    log(f"   plain llama-cpp-python loaded: flash attention {plain.flash_attn}")
    results = {path: PathResult() for path in PATHS}

    def one(path: str, run: int) -> Stream:
        messages = [{"role": "user", "content": prompt(path, run)}]
        if path == "api":
            return api_chat(backend.client, model_id, messages, MAX_TOKENS)
        if path == "engine":
            return engine_chat(backend.engine(model_id), messages, MAX_TOKENS)
        started, stamps = plain.stream(messages, MAX_TOKENS)
        return Stream(started=started, stamps=stamps, status=200, ended=stamps[-1] if stamps else started)

    try:
        for run in range(runs + 1):  # run 0 warms each path up and is not counted
            order = PATHS[run % 3 :] + PATHS[: run % 3]
            for path in order:
                stream = one(path, run)
                label = "warm-up" if run == 0 else f"run {run}/{runs}"
                if not stream.ok:
                    raise RuntimeError(f"{path} {label} failed: status {stream.status} {stream.error}")
                if stream.completion_tokens is not None and abs(stream.completion_tokens - len(stream.stamps)) > 1:
                    log(f"   note: {path} sent {len(stream.stamps)} text chunks for {stream.completion_tokens} tokens")
                log(
                    f"   {label:>8} {path:<6} TTFT {stream.ttft_ms:6.0f} ms, decode {stream.decode_tps:5.1f} tok/s, "
                    f"{len(stream.stamps)} tokens"
                )
                if run:
                    results[path].streams.append(stream)
    finally:
        plain.close()
    return SingleResult(model_id, engine.threads, context, plain.flash_attn, runs, results)
