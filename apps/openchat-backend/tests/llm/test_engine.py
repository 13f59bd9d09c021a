"""Engine sizing and supervision pieces that need no model."""

import signal
from pathlib import Path

import pytest

from app.llm.engine import describe_exit, plan_slots
from app.llm.gguf_info import read_gguf_info, read_metadata
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
