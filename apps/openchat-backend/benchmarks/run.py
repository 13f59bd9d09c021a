"""`make bench`: the local models' speed through OpenChat, on both bundled models.

1. One stream: decode tokens/s and TTFT through the API vs the engine it runs (llama-server, directly)
   vs plain llama-cpp-python built with the same portable flags (benchmarks/single.py).
2. Total tokens/s and TTFT p50/p99 at concurrency 1, 2, 4, 8 (benchmarks/concurrency.py).
3. TTFT going back to a conversation of ~500/1,500/3,000 tokens, with and without the RAM prompt
   cache (benchmarks/cache.py).
4. Time from an engine crash (SIGKILL, SIGSEGV) to the next first token (benchmarks/crash.py).
5. Memory of the backend and the engines, idle and under load.
(+ token and frame gaps through the Next.js frontend, if its standalone build is there.)
6. OpenChat's own overhead side by side with Open WebUI (installed in a venv of its own) in front
   of a fast fake engine, its memory after 10,000 chats, and what it adds in front of the real
   engine (benchmarks/overhead.py). `--only overhead` runs this section alone.

Writes docs/benchmarks.md (the machine, every number, the targets and whether they were met).
`--quick` is a smoke test: 1 run, the 0.5B model, concurrency 1 and 2, the 500-token size; its report
goes to a temporary file unless --output says otherwise. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import overhead
from benchmarks.backend import Backend
from benchmarks.cache import returning
from benchmarks.common import BIG_MODEL, REPO_DIR, SMALL_MODEL, log, rss_mib
from benchmarks.concurrency import concurrency
from benchmarks.crash import crashes
from benchmarks.frontend import frontend
from benchmarks.plain import ensure_llama_cpp, system_info
from benchmarks.report import Results, machine, render
from benchmarks.single import single_stream

REPORT = REPO_DIR / "docs" / "benchmarks.md"
T = TypeVar("T")


def plan(quick: bool) -> Results:
    if quick:
        return Results(quick=True, models=[SMALL_MODEL], runs=1, levels=[1, 2], min_samples=4, sizes=[500])
    return Results(
        quick=False,
        models=[BIG_MODEL, SMALL_MODEL],
        runs=3,
        levels=[1, 2, 4, 8],
        min_samples=8,
        sizes=[500, 1500, 3000],
    )


def attempt(errors: dict[str, str], section: str, work: Callable[..., T], *args: Any) -> T | None:
    """Run one measurement; a failure is logged and reported, and the other measurements still run."""
    try:
        return work(*args)
    except Exception as error:  # noqa: BLE001 - the report says what failed
        log(f"!! {section} failed: {error}")
        traceback.print_exc(file=sys.stderr)
        errors[section] = f"{type(error).__name__}: {error}"
        return None


def memory_snapshot(backend: Backend) -> dict[str, dict[str, float]]:
    snapshot = {"backend": rss_mib(backend.pid)}
    for model_id, engine in sorted(backend.engines().items()):
        snapshot[model_id] = rss_mib(engine.pid)
    return snapshot


# Summary titles off: a title is one more generation after each conversation's first reply, which
# would run beside the next measured one.
DEFAULT_ENV = {"OPENCHAT_GENERATE_TITLES": "false"}


def real_engine_overhead(results: overhead.OverheadResults, backend: Backend) -> None:
    runs = 4 if results.quick else 20
    real = attempt(results.errors, "6. real engine", overhead.real_engine, backend, SMALL_MODEL, runs)
    results.real = real


def with_default_backend(results: Results, costs: overhead.OverheadResults) -> None:
    with Backend("default", DEFAULT_ENV) as backend:
        for model in results.models:
            backend.warm_up(model)
        engine = backend.engine(results.models[0])
        results.slots, results.cache_ram_mib = engine.slots, engine.cache_ram_mib
        time.sleep(2)  # let the warm-up settle before the idle reading
        results.memory_idle = memory_snapshot(backend)
        log(f"   idle RSS (MiB): { {name: round(parts['rss']) for name, parts in results.memory_idle.items()} }")
        for model in results.models:
            single = attempt(results.errors, f"1. one stream, {model}", single_stream, backend, model, results.runs)
            if single is not None:
                results.single[model] = single
        for model in results.models:
            section = f"2. concurrency, {model}"
            levels = attempt(results.errors, section, concurrency, backend, model, results.levels, results.min_samples)
            if levels is not None:
                results.concurrency[model] = levels
        for model in results.models:
            back = attempt(
                results.errors, f"3. with the cache, {model}", returning, backend, model, results.sizes, "cache"
            )
            if back is not None:
                results.cache_on[model] = back
        results.frontend = attempt(results.errors, "streaming end to end", frontend, backend.url)
        real_engine_overhead(costs, backend)
        for model in results.models:
            crashed = attempt(results.errors, f"4. crash, {model}", crashes, backend, model)
            if crashed is not None:
                results.crashes[model] = crashed


def with_cacheless_backend(results: Results) -> None:
    with Backend("no-cache", {**DEFAULT_ENV, "OPENCHAT_ENGINE_CACHE_MIB": "0"}) as backend:
        for model in results.models:
            backend.warm_up(model)
            back = attempt(
                results.errors, f"3. without the cache, {model}", returning, backend, model, results.sizes, "none"
            )
            if back is not None:
                results.cache_off[model] = back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 run, 0.5B only, fewer levels and sizes")
    parser.add_argument(
        "--output", type=Path, help=f"where to write the report (default {REPORT}; --quick: a temp file)"
    )
    parser.add_argument("--only", choices=["overhead"], help="run one section alone (its report goes to --output)")
    args = parser.parse_args(argv)
    output: Path = args.output or (
        Path(tempfile.gettempdir()) / "openchat-benchmarks-quick.md" if args.quick else REPORT
    )
    results = plan(args.quick)
    costs = overhead.OverheadResults(quick=args.quick, rounds=1 if args.quick else 3)
    started = time.monotonic()
    log(f"== OpenChat benchmark ({'quick' if args.quick else 'full'}): {', '.join(results.models)}")
    if args.only == "overhead":
        with Backend("default", DEFAULT_ENV) as backend:
            backend.warm_up(SMALL_MODEL)
            real_engine_overhead(costs, backend)
    else:
        # Before any backend starts: building the baseline takes every core for minutes the first time.
        results.llama_cpp_version = ensure_llama_cpp()
        results.llama_cpp_system_info = system_info()
        attempt(results.errors, "backend with default settings", with_default_backend, results, costs)
        attempt(results.errors, "backend without the prompt cache", with_cacheless_backend, results)
    attempt(costs.errors, "6. capacity", overhead.capacity, costs, overhead.default_levels(args.quick))
    plots = attempt(costs.errors, "6. plots", overhead.plot, costs, output.parent / "benchmarks") or []
    results.seconds = time.monotonic() - started
    if args.only:
        results.errors.update(costs.errors)
        report = "\n".join(["# Benchmarks: section 6 alone", "", *machine(), "", *overhead.render(costs, plots)])
    else:
        report = render(results) + "\n" + "\n".join(overhead.render(costs, plots)) + "\n"
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    log(f"== report written to {output} ({results.seconds / 60:.1f} min)")
    return 1 if results.errors or costs.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
