"""What a GGUF file says about itself: name, context length and KV-cache size per token.

Only the header's key-value section is read, scalars kept and arrays skipped. Written by
hand because the `gguf` package's reader builds every array (the 150,000-entry vocabulary)
and every tensor record first: 15 s a file here, against milliseconds for this.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

F16_BYTES = 2
MAGIC = b"GGUF"
STRING, ARRAY = 8, 9
# value type -> struct format of one scalar
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
MAX_KEYS = 1_000_000


@dataclass(frozen=True)
class GgufInfo:
    name: str
    context_length: int
    kv_bytes_per_token: int  # f16 K and V over every layer: what one token of context costs in RAM


def _read(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError("file is truncated (its GGUF header ends early)")
    return data


def _unpack(file: BinaryIO, fmt: str) -> int | float | bool:
    value: int | float | bool = struct.unpack(fmt, _read(file, struct.calcsize(fmt)))[0]
    return value


def _string(file: BinaryIO) -> str:
    length = int(_unpack(file, "<Q"))
    return _read(file, length).decode("utf-8", errors="replace")


def _skip_array(file: BinaryIO) -> None:
    element_type = int(_unpack(file, "<I"))
    count = int(_unpack(file, "<Q"))
    if element_type == STRING:
        for _ in range(count):
            file.seek(int(_unpack(file, "<Q")), 1)
    elif element_type in SCALARS:
        file.seek(count * struct.calcsize(SCALARS[element_type]), 1)
    elif element_type == ARRAY:
        for _ in range(count):
            _skip_array(file)
    else:
        raise ValueError(f"unknown GGUF array type {element_type}")


def read_metadata(path: Path) -> dict[str, str | int | float | bool]:
    """Every scalar key of the header (arrays such as the vocabulary are skipped)."""
    values: dict[str, str | int | float | bool] = {}
    with path.open("rb") as file:
        if file.read(4) != MAGIC:
            raise ValueError("file is not a valid GGUF (bad magic)")
        version = int(_unpack(file, "<I"))
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        _tensors, keys = _unpack(file, "<Q"), int(_unpack(file, "<Q"))
        if keys > MAX_KEYS:
            raise ValueError("file is not a valid GGUF (implausible header)")
        for _ in range(keys):
            key = _string(file)
            value_type = int(_unpack(file, "<I"))
            if value_type == STRING:
                values[key] = _string(file)
            elif value_type == ARRAY:
                _skip_array(file)
            elif value_type in SCALARS:
                values[key] = _unpack(file, SCALARS[value_type])
            else:
                raise ValueError(f"unknown GGUF value type {value_type}")
    return values


def read_gguf_info(path: Path) -> GgufInfo:
    """Raises ValueError (or OSError) for a file that is not a readable GGUF model."""
    meta = read_metadata(path)
    arch = str(meta.get("general.architecture") or "")
    if not arch:
        raise ValueError("file is not a usable GGUF model (no general.architecture in its metadata)")

    def number(key: str, default: int) -> int:
        return int(meta.get(f"{arch}.{key}") or default)

    heads = number("attention.head_count", 1)
    key_length = number("attention.key_length", number("embedding_length", 0) // max(heads, 1))
    value_length = number("attention.value_length", key_length)
    return GgufInfo(
        name=str(meta.get("general.name") or path.stem),
        context_length=number("context_length", 2048),
        kv_bytes_per_token=number("block_count", 0)
        * number("attention.head_count_kv", heads)
        * (key_length + value_length)
        * F16_BYTES,
    )
