"""What each step of a token's path costs with cold CPU caches, beside its cost in a warm loop.

In front of the local engine, the engine's weights stream through the caches at every decoding
step, so each token wakes the backend's code cold: a step that costs well under a microsecond in
a warm loop can cost ten there (docs/benchmarks.md, section 6). This times each step right after
summing an array larger than the caches, the median of many calls, and the same step in a loop.

    .venv/bin/python -m benchmarks.cold_path
"""

import statistics
import time
from collections.abc import Callable

import orjson

from app.llm.openai_compatible import plain_events, token_text
from app.schemas import TokenEvent, ndjson_line
from app.services.chat import ReplyState

EVICTING_BYTES = 64 * 1024 * 1024  # more than the last-level cache of the machines this runs on
COLD_CALLS = 300
WARM_CALLS = 20_000

PIECE = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":" hello"}}],'
    b'"object":"chat.completion.chunk"}\n\n'
)
DATA = plain_events(PIECE)[0]  # type: ignore[index]
CHUNK = orjson.loads(DATA)


def cold_us(step: Callable[[], object], evicting: bytearray) -> float:
    times = []
    for _ in range(COLD_CALLS):
        evicting[::64] = bytes(len(evicting) // 64)  # touch every cache line
        started = time.perf_counter_ns()
        step()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def warm_us(step: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    for _ in range(WARM_CALLS):
        step()
    return (time.perf_counter_ns() - started) / WARM_CALLS / 1000


def main() -> None:
    state = ReplyState()
    steps: dict[str, Callable[[], object]] = {
        "an empty call": lambda: None,
        "split the SSE piece (plain_events)": lambda: plain_events(PIECE),
        "parse the chunk (orjson.loads)": lambda: orjson.loads(DATA),
        "take its text (token_text)": lambda: token_text(CHUNK),
        "count it in the reply (ReplyState.event)": lambda: state.event(" hello", 1.0),
        "build a TokenEvent (pydantic)": lambda: TokenEvent(content=" hello"),
        "write the token's line from its text": lambda: ndjson_line(" hello"),
    }
    evicting = bytearray(EVICTING_BYTES)
    print(f"{'step':45s} {'cold (µs)':>10s} {'warm (µs)':>10s}")
    for name, step in steps.items():
        print(f"{name:45s} {cold_us(step, evicting):10.2f} {warm_us(step):10.2f}")


if __name__ == "__main__":
    main()
