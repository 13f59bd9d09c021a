"""Which llama-server build to ship: portable vs native-minus-AMX, on both bundled models.

    python -m benchmarks.engine_variants PORTABLE_BIN NATIVE_BIN

Both servers run at once (one slot, all cores) and take turns on the same prompts, so
machine noise hits them equally; decode and prompt speeds are the server's own timings.
Prints a Markdown table.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.config import get_settings
from app.llm.bundled import BUNDLED_MODELS
from app.llm.engine import free_loopback_port

RUNS = 5
PROMPT = "Question {run}. Explain what a hash map is and show a short Python example."


def start(binary: str, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_loopback_port()
    threads = str(os.cpu_count() or 1)
    command = [binary, "-m", str(model), "--port", str(port), "-t", threads, "-tb", threads, "-np", "1"]
    process = subprocess.Popen(
        [*command, "-c", "4096", "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{binary} did not start")


def generate(url: str, run: int) -> tuple[float, float]:
    body = {
        "prompt": f"<|im_start|>user\n{PROMPT.format(run=run)}<|im_end|>\n<|im_start|>assistant\n",
        "n_predict": 128,
        "temperature": 0,
        "cache_prompt": False,
        "ignore_eos": True,
    }
    timings = httpx.post(f"{url}/completion", json=body, timeout=300).json()["timings"]
    return float(timings["predicted_per_second"]), float(timings["prompt_per_second"])


def main() -> int:
    binaries = {"portable": sys.argv[1], "native minus AMX": sys.argv[2]}
    settings = get_settings()
    print("| model | build | decode tokens/s (median of 5) | prompt tokens/s |")
    print("|---|---|---|---|")
    for model in BUNDLED_MODELS:
        servers = {name: start(binary, settings.models_dir / model.filename) for name, binary in binaries.items()}
        try:
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
            for run in range(RUNS + 1):
                for name, (_process, url) in servers.items():
                    speeds = generate(url, run)
                    if run:  # run 0 warms up
                        results[name].append(speeds)
            for name, runs in results.items():
                decode = statistics.median(r[0] for r in runs)
                prompt = statistics.median(r[1] for r in runs)
                print(f"| {model.id} | {name} | {decode:.1f} | {prompt:.1f} |", flush=True)
        finally:
            for process, _url in servers.values():
                process.terminate()
                process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
