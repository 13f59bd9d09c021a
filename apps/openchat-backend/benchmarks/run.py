"""`make bench`: both bundled models, llama-cpp-python directly vs through the OpenChat API.

Same prompt, same sampling (temperature 0), same thread count, in the same run. Prints a
Markdown report and writes it to docs/benchmarks.md with the machine it ran on.
"""

import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.core.config import BACKEND_DIR, get_settings
from app.llm.bundled import BUNDLED_MODELS

PROMPT = "Explain what a hash map is and show a short Python example."


def prompt(run: int) -> str:
    # A different opening each run, the same series on both paths: neither gets a full cache hit.
    return f"Question {run}. {PROMPT}"


MAX_TOKENS = 128
RUNS = 3
REPORT = BACKEND_DIR.parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        memory_kb = 0
    import llama_cpp

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, llama-cpp-python {llama_cpp.__version__}"
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def direct(path: Path, threads: int) -> dict[str, float]:
    """llama-cpp-python's own chat completion stream, no server."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
    ttfts, speeds = [], []
    for run in range(RUNS + 1):  # run 0 warms up (llama.cpp allocates its buffers) and is not counted
        started = time.perf_counter()
        stamps = []
        for chunk in llama.create_chat_completion(
            [{"role": "user", "content": prompt(run)}], temperature=0.0, max_tokens=MAX_TOKENS, stream=True
        ):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        if run:
            ttfts.append((stamps[0] - started) * 1000)
            speeds.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    memory = rss_mib(os.getpid())
    llama.close()
    return {"ttft_ms": statistics.median(ttfts), "tokens_per_second": statistics.median(speeds), "rss_mib": memory}


def through_api(url: str, model_id: str, server_pid: int) -> dict[str, float]:
    ttfts, speeds = [], []
    with httpx.Client(base_url=url, timeout=300) as client:
        for run in range(RUNS + 1):
            body = {
                "id": f"bench-{model_id}-{run}-{time.time_ns()}",
                "messages": [{"role": "user", "content": prompt(run)}],
                "data": {"model": model_id, "temperature": 0.0, "max_tokens": MAX_TOKENS},
            }
            started = time.perf_counter()
            stamps = []
            with client.stream("POST", "/api/v1/chat", json=body) as response:
                for line in response.iter_lines():
                    if json.loads(line)["type"] == "token":
                        stamps.append(time.perf_counter())
            if run:
                ttfts.append((stamps[0] - started) * 1000)
                speeds.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {
        "ttft_ms": statistics.median(ttfts),
        "tokens_per_second": statistics.median(speeds),
        "rss_mib": rss_mib(server_pid),
    }


FRONTEND_DIR = BACKEND_DIR.parent / "openchat-frontend"
LONG_PROMPT = "Write a detailed essay about the history of computing."


def token_gaps(url: str) -> dict[str, float]:
    """Arrival gaps between token lines of one long reply, as a client sees them."""
    body = {
        "id": f"bench-gaps-{time.time_ns()}",
        "messages": [{"role": "user", "content": LONG_PROMPT}],
        "data": {"model": "qwen2.5-coder-0.5b-instruct", "max_tokens": 300, "temperature": 0.0},
    }
    stamps: list[float] = []
    reads = 0
    buffer = b""
    with httpx.Client(timeout=300) as client, client.stream("POST", f"{url}/api/v1/chat", json=body) as response:
        for chunk in response.iter_raw():
            reads += 1
            now = time.perf_counter()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            stamps += [now for line in lines if line and json.loads(line)["type"] == "token"]
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(stamps))
    return {
        "tokens": len(stamps),
        "reads": reads,
        "p50": statistics.median(gaps),
        "p95": gaps[int(len(gaps) * 0.95)],
        "max": gaps[-1],
    }


def frontend_rows(backend_url: str) -> list[str]:
    """Token gaps through the Next.js proxy and frame gaps in Chromium, if the frontend is built."""
    if not (FRONTEND_DIR / ".next" / "BUILD_ID").exists():
        return ["", "(Frontend not built: run `make setup` to include the browser measurements.)"]
    port = 8766
    env = {**os.environ, "BACKEND_URL": backend_url, "PORT": str(port), "NEXT_TELEMETRY_DISABLED": "1"}
    front = subprocess.Popen(
        ["npm", "run", "start"],
        cwd=FRONTEND_DIR,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v1/models").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        lines = [
            "",
            "## Streaming, end to end (0.5B model, 300 tokens, temperature 0)",
            "",
            "| path | tokens | network reads | gap p50 (ms) | gap p95 (ms) | gap max (ms) |",
            "|---|---|---|---|---|---|",
        ]
        for name, target in (("backend directly", backend_url), ("through the Next.js proxy", url)):
            gaps = token_gaps(target)
            lines.append(
                f"| {name} | {gaps['tokens']:.0f} | {gaps['reads']:.0f} | {gaps['p50']:.1f} | {gaps['p95']:.1f} "
                f"| {gaps['max']:.1f} |"
            )
        browser = subprocess.run(
            ["node", "scripts/bench-stream.mjs", url], cwd=FRONTEND_DIR, capture_output=True, text=True, check=False
        )
        lines += [
            "",
            "Rendering a long reply as Markdown in Chromium (requestAnimationFrame gaps while it streams):",
            "",
            f"    {browser.stdout.strip() or browser.stderr.strip()[-300:]}",
        ]
        return lines
    finally:
        os.killpg(front.pid, 15)
        front.wait(timeout=30)


def main() -> int:
    settings = get_settings()
    threads = settings.local_threads or os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "OPENCHAT_AUTH": "off",
            "OPENCHAT_DATA_DIR": data,
            "DATABASE_URL": f"sqlite:///{data}/b.db",
            "OPENCHAT_QUEUE_SIZE": "8",
        }
        port = 8765
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"],
            cwd=BACKEND_DIR,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            extra: list[str] = []
            for model in BUNDLED_MODELS:
                path = settings.models_dir / model.filename
                print(f"== {model.id}: llama-cpp-python directly", file=sys.stderr)
                plain = direct(path, threads)
                print(f"== {model.id}: through POST /api/v1/chat", file=sys.stderr)
                api = through_api(url, model.id, server.pid)
                rows.append((model.id, plain, api))
            print("== streaming through the frontend", file=sys.stderr)
            extra = frontend_rows(url)
        finally:
            server.terminate()
            server.wait(timeout=30)
    lines = [
        "# Benchmarks",
        "",
        f"Run by `make bench` on {time.strftime('%Y-%m-%d')}. Machine: {machine()}.",
        "",
        f'Prompt: "Question N. {PROMPT}", temperature 0, max_tokens {MAX_TOKENS}, {threads} threads, '
        f"median of {RUNS} runs after one discarded warm-up run (N = 0..{RUNS}, the same series on both paths).",
        "TTFT through the API is measured by the client from sending the request (includes HTTP, validation,",
        "database writes and trimming); decode speed is from the first to the last token line received.",
        "RSS: the direct process after loading that model; the API server with the models it has loaded so far.",
        "",
        "| model | path | TTFT (ms) | decode tokens/s | RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for model_id, plain, api in rows:
        for name, numbers in (("llama-cpp-python direct", plain), ("OpenChat API (NDJSON over HTTP)", api)):
            lines.append(
                f"| {model_id} | {name} | {numbers['ttft_ms']:.0f} | {numbers['tokens_per_second']:.1f} "
                f"| {numbers['rss_mib']:.0f} |"
            )
    report = "\n".join(lines + extra) + "\n"
    print(report)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
