"""Model assembly from parts: checksums verified, progress shown, work never done twice."""

import hashlib
import sys
from pathlib import Path

import pytest

from app.llm.bundled import BUNDLED_MODELS, AssemblyError, BundledModel, assemble, is_assembled
from tests.conftest import MODELS_DIR


def fake_parts(root: Path, prefix: str, chunks: list[bytes]) -> None:
    for number, chunk in enumerate(chunks, start=1):
        package = root / f"{prefix}{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(chunk)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[BundledModel, bytes]:
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"second part" * 500, b"tail"]
    prefix = f"openchat_test_part_{tmp_path.name.replace('-', '_')}_"
    fake_parts(tmp_path / "site", prefix, chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)
    model = BundledModel(
        id="tiny-test",
        name="Tiny",
        package_prefix=prefix,
        parts=3,
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    return model, whole


def test_parts_are_joined_in_order_and_verified(
    parts: tuple[BundledModel, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, whole = parts
    target = assemble(model, tmp_path / "models")
    assert target.read_bytes() == whole
    assert is_assembled(model, tmp_path / "models")
    assert "Assembling tiny-test" in capsys.readouterr().err  # the progress bar


def test_a_second_run_does_not_reassemble(parts: tuple[BundledModel, bytes], tmp_path: Path) -> None:
    model, _ = parts
    target = assemble(model, tmp_path / "models")
    stamp = target.stat().st_mtime_ns
    assemble(model, tmp_path / "models")
    assert target.stat().st_mtime_ns == stamp


def test_a_checksum_mismatch_leaves_no_file_and_says_what_to_do(
    parts: tuple[BundledModel, bytes], tmp_path: Path
) -> None:
    model, _ = parts
    broken = BundledModel(**{**model.__dict__, "sha256": "0" * 64})
    with pytest.raises(AssemblyError, match="make models-reinstall"):
        assemble(broken, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_part_package_is_reported(tmp_path: Path) -> None:
    model = BundledModel(id="x", name="x", package_prefix="openchat_no_such_part_", parts=1, size=1, sha256="0")
    with pytest.raises(AssemblyError, match="not installed"):
        assemble(model, tmp_path)


@pytest.mark.parametrize("model", BUNDLED_MODELS, ids=lambda m: m.id)
def test_the_bundled_models_are_assembled_with_the_contract_checksums(model: BundledModel) -> None:
    assert is_assembled(model, MODELS_DIR), f"run `make models` ({sys.executable})"
    assert (MODELS_DIR / model.filename).stat().st_size == model.size
