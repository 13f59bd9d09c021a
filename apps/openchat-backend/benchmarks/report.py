"""The Markdown report (docs/benchmarks.md): the machine, each measurement, the targets and whether they were met."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cache import OTHER_TOKENS, ReturnResult, by_size
from benchmarks.common import BACKEND_DIR, BIG_MODEL, fmt, verdict
from benchmarks.concurrency import ConcurrencyResult
from benchmarks.crash import CrashResult
from benchmarks.frontend import FrontendResult
from benchmarks.single import PATH_NAMES, PATHS, SingleResult
from benchmarks.single import PROMPT as SINGLE_PROMPT

TARGET_PLAIN_RATIO = 0.95
TARGET_SCALING = 1.8
TARGET_RETURN_S = 1.5
TARGET_RETURN_SIZE = 3000


@dataclass
class Results:
    quick: bool
    models: list[str]
    runs: int
    levels: list[int]
    min_samples: int
    sizes: list[int]
    llama_cpp_version: str = ""
    llama_cpp_system_info: str = ""
    single: dict[str, SingleResult] = field(default_factory=dict)
    concurrency: dict[str, ConcurrencyResult] = field(default_factory=dict)
    cache_on: dict[str, list[ReturnResult]] = field(default_factory=dict)
    cache_off: dict[str, list[ReturnResult]] = field(default_factory=dict)
    crashes: dict[str, list[CrashResult]] = field(default_factory=dict)
    memory_idle: dict[str, dict[str, float]] = field(default_factory=dict)  # "backend" / model id -> rss parts
    slots: int = 0
    cache_ram_mib: int = 0
    frontend: FrontendResult | None = None
    errors: dict[str, str] = field(default_factory=dict)  # section -> what went wrong
    seconds: float = 0.0


def machine() -> list[str]:
    cpu = "unknown CPU"
    memory_kib = 0
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    build_info_path = BACKEND_DIR / ".venv" / "llama-server.build-info"
    try:
        build_info = build_info_path.read_text().strip()
    except OSError:
        build_info = "(no build-info file)"
    try:
        version = subprocess.run(
            [str(BACKEND_DIR / ".venv" / "bin" / "llama-server"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        server_version = " ".join((version.stdout + version.stderr).split())
    except OSError:
        server_version = "unknown"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- RAM: {memory_kib / 1024 / 1024:.1f} GiB",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python: {platform.python_version()}",
        f"- Engine (llama-server) build-info: `{build_info}`",
        f"- Engine version: {server_version}",
    ]


def _ms(value: float) -> str:
    return fmt(value, 0)


def _s(value_ms: float) -> str:
    return "n/a" if math.isnan(value_ms) else f"{value_ms / 1000:.2f}"


def targets(results: Results) -> list[str]:
    lines = ["| target | model | measured | met? |", "|---|---|---|---|"]
    for model, single in results.single.items():
        ratio = single.ratio("api", "plain")
        ok = None if math.isnan(ratio) else ratio >= TARGET_PLAIN_RATIO
        lines.append(
            f"| one stream: decode tokens/s through the API / plain llama-cpp-python >= {TARGET_PLAIN_RATIO} "
            f"| {model} | {fmt(ratio, 2)} | {verdict(ok)} |"
        )
    for model, conc in results.concurrency.items():
        scaling = conc.scaling(4)
        measured = "not measured in this run" if math.isnan(scaling) else f"{scaling:.2f}x"
        ok = None if math.isnan(scaling) else scaling >= TARGET_SCALING
        lines.append(
            f"| total tokens/s with 4 streams / with 1 stream >= {TARGET_SCALING}x | {model} | {measured} "
            f"| {verdict(ok)} |"
        )
    big = by_size(results.cache_on.get(BIG_MODEL, [])).get(TARGET_RETURN_SIZE)
    if big is not None:
        ttft = big.back.ttft_ms
        lines.append(
            f"| back to a {TARGET_RETURN_SIZE:,}-token conversation, with the cache: TTFT <= {TARGET_RETURN_S} s "
            f"| {BIG_MODEL} | {_s(ttft)} s ({big.back.prompt_tokens} prompt tokens) "
            f"| {verdict(ttft <= TARGET_RETURN_S * 1000)} |"
        )
    else:
        lines.append(
            f"| back to a {TARGET_RETURN_SIZE:,}-token conversation, with the cache: TTFT <= {TARGET_RETURN_S} s "
            f"| {BIG_MODEL} | not measured in this run | n/a |"
        )
    return lines


def single_section(results: Results) -> list[str]:
    lines = [
        "## 1. One stream: OpenChat API vs the engine directly vs plain llama-cpp-python",
        "",
        f'Prompt "Question N. {SINGLE_PROMPT}" (N differs per path and run, so no path finds its prompt cached), '
        f"temperature 0, max_tokens 128, the engine's thread count and per-slot context on every path. Median of "
        f"{results.runs} run(s) after one discarded warm-up; the three paths take turns run by run (rotating "
        "order). TTFT: from sending the request (or calling llama-cpp-python) to the first text received, "
        "measured by the client. Decode tokens/s: (text chunks - 1) / (time of the last - time of the first); "
        "each chunk is one token.",
        "",
        "- **OpenChat API**: POST /api/v1/chat (NDJSON) on a backend started with default settings; includes "
        "HTTP, validation, token counting, database writes and LangChain.",
        "- **engine directly**: the same llama-server process the backend started, its OpenAI-compatible "
        "/v1/chat/completions (SSE) with the same sampling.",
        "- **plain llama-cpp-python**: `Llama.create_chat_completion(stream=True)` in the benchmark process, "
        f"llama-cpp-python {results.llama_cpp_version} built here with CMAKE_ARGS=-DGGML_NATIVE=OFF (the engine's "
        "portable flags), with flash attention `auto` like the engine (llama-server's default).",
        "",
        "| model | path | TTFT (ms) | decode tokens/s | tokens per run |",
        "|---|---|---|---|---|",
    ]
    for model, single in results.single.items():
        for path in PATHS:
            numbers = single.paths[path]
            tokens = sorted(set(numbers.tokens))
            lines.append(
                f"| {model} | {PATH_NAMES[path]} | {_ms(numbers.ttft_ms)} | {fmt(numbers.decode_tps, 1)} "
                f"| {', '.join(map(str, tokens))} |"
            )
    lines += ["", "| model | threads | n_ctx | flash attention | API / plain llama-cpp-python | API / engine |"]
    lines += ["|---|---|---|---|---|---|"]
    for model, single in results.single.items():
        ratio = single.ratio("api", "plain")
        ok = None if math.isnan(ratio) else ratio >= TARGET_PLAIN_RATIO
        lines.append(
            f"| {model} | {single.threads} | {single.context} | {single.flash_attn} "
            f"| {fmt(ratio, 3)} (target >= {TARGET_PLAIN_RATIO}: {verdict(ok)}) "
            f"| {fmt(single.ratio('api', 'engine'), 3)} |"
        )
    if results.llama_cpp_system_info:
        lines += ["", f"llama-cpp-python's system info: `{results.llama_cpp_system_info}`"]
    return lines


def concurrency_section(results: Results) -> list[str]:
    lines = [
        "## 2. Several streams at once through the API",
        "",
        f"One backend with default settings ({results.slots} slots per model on this machine). Concurrency c = c "
        "simultaneous POST /api/v1/chat streams, each with its own prompt, temperature 0, max_tokens 128; rounds "
        f"of c are repeated until there are at least {results.min_samples} requests. Total tokens/s = generated "
        "tokens (usage.completion_tokens) / wall time of the rounds. TTFT per request, measured by the client "
        "(a request waiting for a free slot counts its wait); p99 is nearest-rank, i.e. the slowest for fewer "
        "than 100 samples.",
        "",
        "| model | streams | requests | total tokens/s | vs 1 stream | per-stream decode tokens/s "
        "| TTFT p50 (ms) | TTFT p99 (ms) | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, conc in results.concurrency.items():
        for level in conc.levels:
            lines.append(
                f"| {model} | {level.concurrency} | {len(level.streams)} | {fmt(level.total_tps, 1)} "
                f"| {fmt(conc.scaling(level.concurrency), 2)}x | {fmt(level.per_stream_tps, 1)} "
                f"| {_ms(level.ttft_p50)} | {_ms(level.ttft_p99)} | {level.failures} |"
            )
    lines.append("")
    for model, conc in results.concurrency.items():
        scaling = conc.scaling(4)
        if math.isnan(scaling):
            lines.append(f"- {model}: no 4-stream round in this run (target: >= {TARGET_SCALING}x 1 stream).")
        else:
            lines.append(
                f"- {model}: 4 streams give {scaling:.2f}x the total tokens/s of 1 stream "
                f"(target >= {TARGET_SCALING}x: {verdict(scaling >= TARGET_SCALING)})."
            )
    return lines


def cache_section(results: Results) -> list[str]:
    lines = [
        "## 3. Going back to a conversation: time to first token, with and without the prompt cache",
        "",
        "For each size: a conversation of user/ai turns (generated text, sized with the engine's own chat "
        "template and tokenizer) is sent (max_tokens 16, temperature 0); then more other conversations at once "
        f"than the engine has slots (about {OTHER_TOKENS} tokens each), so every slot, that conversation's "
        "included, is taken over; then the conversation's next turn (its history, the reply, a short new question). "
        "Prompt and cached tokens are the `end` event's usage.prompt_tokens and usage.cached_prompt_tokens; TTFT "
        "is measured by the client. *With the cache*: the default backend (`--cache-ram "
        f"{results.cache_ram_mib}` MiB per model); *without*: a second backend with OPENCHAT_ENGINE_CACHE_MIB=0. "
        "The first visit (whole prompt computed) is shown for comparison.",
        "",
        "| model | conversation | prompt tokens (back) | cache | cached tokens | TTFT back (ms) "
        "| TTFT first visit (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in results.models:
        on, off = by_size(results.cache_on.get(model, [])), by_size(results.cache_off.get(model, []))
        for size in results.sizes:
            for label, found in (("with", on.get(size)), ("without", off.get(size))):
                if found is None:
                    continue
                back = found.back
                lines.append(
                    f"| {model} | ~{size:,} tokens | {back.prompt_tokens} | {label} | {back.cached_prompt_tokens} "
                    f"| {_ms(back.ttft_ms)} | {_ms(found.first.ttft_ms)} |"
                )
    big = by_size(results.cache_on.get(BIG_MODEL, [])).get(TARGET_RETURN_SIZE)
    lines.append("")
    if big is not None:
        lines.append(
            f"Target: {BIG_MODEL}, back to a {TARGET_RETURN_SIZE:,}-token conversation with the cache, TTFT <= "
            f"{TARGET_RETURN_S} s: measured {_s(big.back.ttft_ms)} s, "
            f"{verdict(big.back.ttft_ms <= TARGET_RETURN_S * 1000)}."
        )
    else:
        lines.append(
            f"Target: {BIG_MODEL}, back to a {TARGET_RETURN_SIZE:,}-token conversation with the cache, "
            f"TTFT <= {TARGET_RETURN_S} s: not measured in this run."
        )
    for model in results.models:
        for found in results.cache_off.get(model, []):
            prompt = found.back.prompt_tokens or 0
            if prompt and (found.back.cached_prompt_tokens or 0) > prompt // 2:
                lines.append(
                    f"\nNote: without the cache, {model} still reused {found.back.cached_prompt_tokens} of "
                    f"{prompt} tokens at ~{found.size}: the conversation's slot was not taken over."
                )
    return lines


def crash_section(results: Results) -> list[str]:
    lines = [
        "## 4. From an engine crash to the next first token",
        "",
        "While the model is idle, its engine process (llama-server) is sent SIGKILL (as the OOM killer would) "
        "or SIGSEGV (as a crash in native code would); a chat request is sent at once and again every 100 ms "
        "while the backend refuses it. Time from the kill to the first token received by the client; "
        "the backend restarts the engine itself.",
        "",
        "| model | signal | kill -> first token (s) | attempts | refused attempts got | engine pid | "
        "backend's record of the exit |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, crashes in results.crashes.items():
        for crash in crashes:
            answers = ", ".join(f"{n}x {what}" for what, n in crash.answers.items()) or "none"
            lines.append(
                f"| {model} | {crash.signal_name} | {crash.seconds:.2f} | {crash.attempts} | {answers} "
                f"| {crash.old_pid} -> {crash.new_pid} | {crash.last_exit} |"
            )
    return lines


def _mem(parts: dict[str, float] | None) -> str:
    if not parts:
        return "n/a"
    return f"{parts['rss']:,.0f} ({parts['anon']:,.0f} + {parts['file']:,.0f})"


def memory_section(results: Results) -> list[str]:
    lines = [
        "## 5. Memory",
        "",
        "VmRSS in MiB from /proc/<pid>/status, as (anonymous + file pages; the engine's file pages are mostly the "
        "memory-mapped model, shared with the page cache). *Idle*: after start and warm-up of "
        f"{', '.join(results.models)}, before any measurement. *Loaded*: the highest value sampled every 100 ms "
        "while 4 streams ran (part 2), for that model.",
    ]
    backend_loaded: dict[str, dict[str, dict[str, float]]] = {}
    levels: set[int] = set()
    for model, conc in results.concurrency.items():
        sampled = conc.sampled()
        if sampled is not None and sampled.rss_peak:
            backend_loaded[model] = sampled.rss_peak
            levels.add(sampled.concurrency)
    loaded_backend = max((peak["backend"] for peak in backend_loaded.values()), key=lambda p: p["rss"], default=None)
    if levels and levels != {4}:
        lines[-1] += f" (This run had no 4-stream round: loaded = while {', '.join(map(str, sorted(levels)))} ran.)"
    lines += ["", "| process | idle RSS (MiB) | loaded RSS, max (MiB) |", "|---|---|---|"]
    lines.append(f"| backend (uvicorn) | {_mem(results.memory_idle.get('backend'))} | {_mem(loaded_backend)} |")
    for name, parts in results.memory_idle.items():
        if name == "backend":
            continue
        peak = backend_loaded.get(name)
        lines.append(f"| engine {name} | {_mem(parts)} | {_mem(peak['engine'] if peak else None)} |")
    return lines


def frontend_section(result: FrontendResult | None) -> list[str]:
    lines = ["## Streaming, end to end (0.5B model, 300 tokens, temperature 0)", ""]
    if result is None or result.skipped:
        reason = result.skipped if result else "not run"
        return [*lines, f"Skipped: {reason}."]
    lines += [
        "Arrival gaps between token lines of one reply, read from the socket, straight from the backend and "
        "through the Next.js standalone server's proxy.",
        "",
        "| path | tokens | network reads | gap p50 (ms) | gap p95 (ms) | gap max (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, gaps in (("backend directly", result.direct), ("through the Next.js proxy", result.proxied)):
        if gaps is not None:
            lines.append(
                f"| {name} | {gaps.tokens} | {gaps.reads} | {gaps.p50:.1f} | {gaps.p95:.1f} | {gaps.max:.1f} |"
            )
    lines += [
        "",
        "Rendering a long reply as Markdown in Chromium (requestAnimationFrame gaps while it streams):",
        "",
        f"    {result.browser}",
    ]
    return lines


def render(results: Results) -> str:
    title = "# Benchmarks"
    how = "`make bench` (`python -m benchmarks.run` in apps/openchat-backend)"
    if results.quick:
        title += " (quick smoke run)"
        how = (
            "`python -m benchmarks.run --quick`: a smoke test (1 run, the 0.5B model only, concurrency 1 and 2, "
            "the 500-token size only); its numbers are noisy and its targets are not the real verdict"
        )
    lines = [
        title,
        "",
        f"Run on {time.strftime('%Y-%m-%d %H:%M')} ({results.seconds / 60:.1f} min) by {how}.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Targets",
        "",
        *targets(results),
        "",
    ]
    if results.errors:
        lines += ["## Errors", ""]
        lines += [f"- {section}: {error}" for section, error in results.errors.items()]
        lines.append("")
    for section in (
        single_section(results),
        concurrency_section(results),
        cache_section(results),
        crash_section(results),
        memory_section(results),
        frontend_section(results.frontend),
    ):
        lines += [*section, ""]
    return "\n".join(lines)
