"""Small helpers shared by the benchmark modules (no imports from the app: the benchmark is an outside client)."""

from __future__ import annotations

import math
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BACKEND_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = BACKEND_DIR.parents[1]
MODELS_DIR = BACKEND_DIR / "models"
BIG_MODEL = "qwen2.5-coder-1.5b-instruct"
SMALL_MODEL = "qwen2.5-coder-0.5b-instruct"
MODEL_FILES = {BIG_MODEL: f"{BIG_MODEL}.gguf", SMALL_MODEL: f"{SMALL_MODEL}.gguf"}

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, with the time since the benchmark started."""
    elapsed = time.monotonic() - _STARTED
    print(f"[{int(elapsed // 60):02d}:{elapsed % 60:04.1f}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): with n samples, p99 is the largest for n < 100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS and its parts (anonymous memory, file pages such as the mmapped model) in MiB."""
    numbers = {"rss": 0.0, "anon": 0.0, "file": 0.0}
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = keys.get(line.split(":", 1)[0] + ":")
            if key:
                numbers[key] = int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return numbers


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def terminate(process: subprocess.Popen[bytes], name: str, grace_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if it is still running after `grace_s` (said in the log)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log(f"   {name} ignored SIGTERM for {grace_s:.0f} s; killing it")
        process.kill()
        process.wait()
