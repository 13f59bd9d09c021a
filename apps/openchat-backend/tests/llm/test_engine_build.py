"""The engine binary `make` built: portable across CPUs of this architecture.

A VM may report AMX without enabling it; llama.cpp built with -march=native there dies on
its first generation (general protection fault on `ldtilecfg`). The shipped build must
contain no AMX tile instruction and no AVX-512, so no such machine can crash it.
"""

import platform
import re
import shutil
import subprocess

import pytest

from app.core.config import Settings

AMX = re.compile(r"\s(ldtilecfg|sttilecfg|tileloadd|tileloaddt1|tilestored|tilerelease|tilezero|tdp\w+)\s")
AVX512 = re.compile(r"%zmm\d+|%k[1-7]\b")


@pytest.fixture(scope="module")
def disassembly() -> str:
    binary = Settings(_env_file=None).engine_binary  # type: ignore[call-arg]
    assert binary.is_file(), f"{binary} is missing: run `make engine`"
    objdump = shutil.which("objdump")
    assert objdump, "objdump is missing: run `make test` (it installs binutils)"
    result = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_engine_contains_no_amx_instruction(disassembly: str) -> None:
    assert len(disassembly) > 1_000_000  # really the engine's code
    found = sorted({match.group(1) for match in AMX.finditer(disassembly)})
    assert not found, f"AMX instructions in the engine: {found}; rebuild it with `make engine-rebuild`"


def test_the_engine_uses_no_avx512(disassembly: str) -> None:
    if platform.machine() == "x86_64":
        assert "%ymm" in disassembly  # the portable build still uses AVX2
    found = AVX512.search(disassembly)
    assert found is None, f"AVX-512 in the engine ({found.group(0) if found else ''}): not portable"


def test_the_engine_was_built_portable_with_its_recorded_flags() -> None:
    binary = Settings(_env_file=None).engine_binary  # type: ignore[call-arg]
    info = (binary.parent.parent / "llama-server.build-info").read_text()
    assert "variant=portable" in info and "-DGGML_NATIVE=OFF" in info
