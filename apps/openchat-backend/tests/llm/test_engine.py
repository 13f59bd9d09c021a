"""Engine sizing and supervision pieces that need no model."""

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.llm.engine import EngineBusyError, EngineProcess, EngineSettings, ExitWatch, describe_exit, plan_slots
from app.llm.gguf_info import GgufInfo, read_gguf_info, read_metadata
from tests.conftest import FAST_MODEL, MODELS_DIR

GIB = 1024**3


def test_slots_are_two_per_core_between_2_and_8() -> None:
    assert plan_slots(0, cpus=1, kv_bytes_per_slot=0, memory=16 * GIB) == 2
    assert plan_slots(0, cpus=2, kv_bytes_per_slot=0, memory=16 * GIB) == 4
    assert plan_slots(0, cpus=64, kv_bytes_per_slot=0, memory=16 * GIB) == 8


def test_slots_never_take_more_than_a_quarter_of_the_memory() -> None:
    # 1.5B model, 8,192-token slots: 28 KiB a token, 224 MiB a slot.
    per_slot = 28672 * 8192
    assert plan_slots(0, cpus=2, kv_bytes_per_slot=per_slot, memory=24 * GIB) == 4
    assert plan_slots(0, cpus=2, kv_bytes_per_slot=per_slot, memory=2 * GIB) == 2
    assert plan_slots(0, cpus=2, kv_bytes_per_slot=per_slot, memory=GIB // 2) == 1


def test_configured_slots_win_over_the_cpu_count() -> None:
    assert plan_slots(6, cpus=2, kv_bytes_per_slot=0, memory=16 * GIB) == 6


def test_exits_are_described_by_their_signal() -> None:
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert "OOM" in describe_exit(-signal.SIGKILL)
    assert describe_exit(3) == "exited with status 3"


def test_gguf_metadata_of_a_bundled_model() -> None:
    info = read_gguf_info(MODELS_DIR / f"{FAST_MODEL}.gguf")
    assert info.context_length == 32768  # read under its architecture's keys: qwen2.context_length
    # Qwen2.5 0.5B: 24 layers, 2 KV heads of 64 dimensions, K and V in f16.
    assert info.kv_bytes_per_token == 24 * 2 * (64 + 64) * 2
    metadata = read_metadata(MODELS_DIR / f"{FAST_MODEL}.gguf")
    assert metadata["general.architecture"] == "qwen2" and metadata["qwen2.block_count"] == 24


@pytest.mark.parametrize("content", [b"not a model", b"GGUF\x03\x00\x00\x00\x01", b""])
def test_a_file_that_is_not_a_gguf_model_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        read_gguf_info(path)


def idle_engine(tmp_path: Path, slots: int, queue_size: int) -> EngineProcess:
    """An engine's bookkeeping, with no server started."""
    settings = EngineSettings(
        binary=tmp_path / "llama-server",
        threads=1,
        slots=slots,
        context_tokens=4096,
        cache_ram_mib=0,
        queue_size=queue_size,
        log_dir=tmp_path,
    )
    info = GgufInfo(name="m", context_length=4096, kv_bytes_per_token=0)
    return EngineProcess("m", tmp_path / "m.gguf", info, settings)


def test_background_work_takes_only_a_free_slot_and_gives_it_up_to_a_user(tmp_path: Path) -> None:
    engine = idle_engine(tmp_path, slots=2, queue_size=1)
    given_up: list[str] = []
    title = engine.admit_background(lambda: given_up.append("title"))
    engine.admit()  # a user: the other slot is free
    assert (engine.generating, engine.queue_length, given_up) == (2, 0, [])
    # No free slot: background work does not wait in line.
    with pytest.raises(EngineBusyError):
        engine.admit_background(lambda: given_up.append("second"))
    # A user who would wait takes the background work's slot instead.
    engine.admit()
    assert given_up == ["title"] and (engine.generating, engine.queue_length) == (2, 0)
    engine.release_background(title)  # it ends after giving up: the slot is the user's now
    assert (engine.generating, engine.queue_length) == (2, 0)
    engine.admit()  # the line, then full
    with pytest.raises(EngineBusyError):
        engine.admit()
    assert (engine.generating, engine.queue_length) == (2, 1)
    for _ in range(3):
        engine.release(1.0)
    assert (engine.generating, engine.queue_length) == (0, 0)


def test_background_work_that_ends_gives_its_slot_back(tmp_path: Path) -> None:
    engine = idle_engine(tmp_path, slots=1, queue_size=0)
    engine.release_background(engine.admit_background(lambda: None))
    engine.admit()
    assert engine.generating == 1


def test_exit_watch_sees_a_process_end_and_sleeps_until_then() -> None:
    """The engine's supervisor waits on its process between health checks: it must notice the
    end at once, and not wake up in between (each wake-up takes a core from the engine)."""
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with ExitWatch(running) as watch:
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
            assert not watch.ended_within(1.0)
            switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw - before
        # Popen.wait(timeout=1) polls: about 25 sleeps a second. A pidfd: one.
        assert switches <= 3, f"woke {switches} times while waiting"
    finally:
        running.kill()
        running.wait()

    ending = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with ExitWatch(ending) as watch:
        assert watch.ended_within(30.0)
    assert ending.wait() == 3
