"""Plain llama-cpp-python, the baseline: installed into the backend venv from a wheel built here with
the engine's portable flags (GGML_NATIVE=OFF), never from pip's cache (which may hold a native build)."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common import BACKEND_DIR, log

WHEEL_CACHE = Path.home() / ".cache" / "openchat" / "wheels"
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF"
PACKAGE = "llama-cpp-python"


def engine_version() -> str:
    """The llama-cpp-python version pinned in engine.txt (the llama.cpp the engine is built from)."""
    for line in (BACKEND_DIR / "engine.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith(f"{PACKAGE}=="):
            return line.split("==", 1)[1].strip()
    raise RuntimeError(f"no {PACKAGE}==<version> line in engine.txt")


def wheel_dir(version: str) -> Path:
    return WHEEL_CACHE / f"portable-{version}"


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log("   $ " + " ".join(command[2:]))
    subprocess.run(command, check=True, env=env)


def _record_hashes(lines: list[str]) -> dict[str, str]:
    """Shared-library hashes from a wheel RECORD file: which build this is."""
    return {row[0]: row[1] for row in csv.reader(lines) if len(row) >= 2 and ".so" in row[0] and row[1]}


def _wheel_hashes(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        record = next(name for name in archive.namelist() if name.endswith(".dist-info/RECORD"))
        return _record_hashes(archive.read(record).decode().splitlines())


def _installed_hashes() -> dict[str, str]:
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return {}
    record = dist.read_text("RECORD") or ""
    hashes = _record_hashes(record.splitlines())
    if not hashes:  # an installer that wrote no RECORD hashes: hash the files ourselves
        for file in dist.files or []:
            if ".so" in file.name:
                digest = hashlib.sha256(Path(str(file.locate())).read_bytes()).digest()
                hashes[str(file)] = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hashes


def build_wheel(version: str) -> Path:
    folder = wheel_dir(version)
    wheels = sorted(folder.glob(f"llama_cpp_python-{version}-*.whl"))
    if wheels:
        return wheels[-1]
    folder.mkdir(parents=True, exist_ok=True)
    log(
        f"== building {PACKAGE}=={version} with CMAKE_ARGS={PORTABLE_CMAKE_ARGS} into {folder} "
        "(first time only: 5-9 minutes on 2 cores)"
    )
    env = {
        **os.environ,
        "CMAKE_ARGS": PORTABLE_CMAKE_ARGS,
        "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2"),
        "FORCE_CMAKE": "1",
    }
    started = time.monotonic()
    _pip("wheel", "--no-cache-dir", "--no-deps", "-w", str(folder), f"{PACKAGE}=={version}", env=env)
    log(f"   built in {time.monotonic() - started:.0f} s")
    wheels = sorted(folder.glob(f"llama_cpp_python-{version}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel left no {PACKAGE} wheel in {folder}")
    return wheels[-1]


def ensure_llama_cpp() -> str:
    """Make `import llama_cpp` give the portable build of the engine's version; returns the version."""
    version = engine_version()
    wheel = build_wheel(version)
    wanted = _wheel_hashes(wheel)
    spec = f"{PACKAGE}=={version}"
    try:
        installed_version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        installed_version = None
    if installed_version != version or _installed_hashes() != wanted:
        log(f"== installing {wheel.name} (portable build) into {Path(sys.executable).parents[1]}")
        folder = str(wheel.parent)
        # The package itself only from our folder; then its dependencies (numpy, jinja2, diskcache...) as usual.
        _pip("install", "--quiet", "--no-index", "--no-deps", "--force-reinstall", "--find-links", folder, spec)
        _pip("install", "--quiet", "--find-links", folder, "--only-binary", PACKAGE, spec)
        if _installed_hashes() != wanted:
            raise RuntimeError(f"the installed {PACKAGE} is not the portable wheel {wheel}")
        importlib.invalidate_caches()
    return version


_NATIVE_LOG: list[str] = []  # llama.cpp's own log lines while a model loads
_LOG_CALLBACK: object = None


def _capture_native_logs() -> None:
    """Keep llama.cpp's load log off stderr, in _NATIVE_LOG (it says how flash attention was resolved)."""
    import llama_cpp

    setter = getattr(llama_cpp, "llama_log_set", None)
    callback_type = getattr(llama_cpp, "llama_log_callback", None)
    if setter is None or callback_type is None:
        return

    def keep(level: int, text: bytes, user_data: object) -> None:
        if text:
            _NATIVE_LOG.append(text.decode(errors="replace"))

    global _LOG_CALLBACK
    _LOG_CALLBACK = callback_type(keep)  # kept alive: llama.cpp holds a raw pointer to it
    setter(_LOG_CALLBACK, None)


@contextmanager
def _flash_attn_auto() -> Iterator[None]:
    """llama-cpp-python's `flash_attn` is on/off; llama-server's default (what the engine runs with) is
    `auto`. While this is active, `flash_attn=True` asks llama.cpp for `auto`, so both resolve it alike."""
    from llama_cpp import llama_cpp as native

    enabled = native.LLAMA_FLASH_ATTN_TYPE_ENABLED
    native.LLAMA_FLASH_ATTN_TYPE_ENABLED = native.LLAMA_FLASH_ATTN_TYPE_AUTO
    try:
        yield
    finally:
        native.LLAMA_FLASH_ATTN_TYPE_ENABLED = enabled


class PlainLlama:
    """One model loaded in this process with llama-cpp-python, streaming chat completions: the same
    threads, per-slot context and flash attention setting (`auto`) as the engine."""

    def __init__(self, path: Path, threads: int, context: int) -> None:
        from llama_cpp import Llama

        _capture_native_logs()
        _NATIVE_LOG.clear()
        with _flash_attn_auto():
            self.llama = Llama(
                model_path=str(path),
                n_ctx=context,
                n_threads=threads,
                n_threads_batch=threads,
                flash_attn=True,
                verbose=False,
            )
        self.flash_attn = "auto"
        for line in _NATIVE_LOG:
            found = re.search(r"Flash Attention (?:was auto, set to )?(enabled|disabled)", line)
            if found:
                self.flash_attn = f"auto -> {found.group(1)}"

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, list[float]]:
        """Returns (start time, arrival time of each token chunk with text)."""
        started = time.perf_counter()
        stamps: list[float] = []
        for chunk in self.llama.create_chat_completion(
            messages,  # type: ignore[arg-type,unused-ignore]
            temperature=0.0,
            max_tokens=max_tokens,
            stream=True,
        ):
            delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index,unused-ignore]
            if delta.get("content"):
                stamps.append(time.perf_counter())
        return started, stamps

    def close(self) -> None:
        self.llama.close()


def system_info() -> str:
    import llama_cpp

    info: bytes = llama_cpp.llama_print_system_info()
    return info.decode(errors="replace").strip()


def _main() -> None:
    version = ensure_llama_cpp()
    print(version, system_info(), file=sys.stderr)


if __name__ == "__main__":
    _main()
