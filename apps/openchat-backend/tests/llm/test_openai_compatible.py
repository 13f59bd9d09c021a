"""The SSE reading of the openai-compatible chat model: the fast path for one event per piece
and the full decoder for everything else give the same data."""

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from app.core.config import BACKEND_DIR
from app.llm.openai_compatible import sse_data


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(*parts: bytes) -> list[str]:
    return [data async for data in sse_data(pieces(*parts))]


async def test_one_event_per_piece_is_read_as_is() -> None:
    assert await read(b'data: {"a":1}\n\n', b'data: {"b":"x y"}\n\n', b"data: [DONE]\n\n") == [
        '{"a":1}',
        '{"b":"x y"}',
        "[DONE]",
    ]


async def test_several_whole_events_in_a_piece_are_split_as_they_are() -> None:
    """A reader behind a fast server gets several events in one piece."""
    assert await read(b'data: {"a":1}\n\ndata: {"b":"x y"}\n\n', b'data: {"c":3}\n\ndata: [DONE]\n\n') == [
        '{"a":1}',
        '{"b":"x y"}',
        '{"c":3}',
        "[DONE]",
    ]


@pytest.mark.parametrize(
    "parts",
    [
        # an event split across pieces, and two events in one piece
        (b'data: {"a"', b":1}\n", b'\ndata: {"b":2}\n\ndata: [DONE]\n\n'),
        # CRLF line endings
        (b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n', b"data: [DONE]\r\n\r\n"),
        # a comment (a keep-alive) and an event name before the data
        (b": keep-alive\n\n", b'event: message\ndata: {"a":1}\n\n', b'data: {"b":2}\n\ndata: [DONE]\n\n'),
        # no space after the colon; the last event without its blank line when the body ends
        (b'data:{"a":1}\n\n', b'data: {"b":2}\n\n', b"data: [DONE]"),
        # a whole event and a comment in one piece, then one split after its first line
        (b'data: {"a":1}\n\n: ping\n\n', b'data: {"b":2}\n', b"\ndata: [DONE]\n\n"),
    ],
)
async def test_other_framings_go_through_the_full_decoder(parts: tuple[bytes, ...]) -> None:
    assert await read(*parts) == ['{"a":1}', '{"b":2}', "[DONE]"]


async def test_an_event_of_several_data_lines_is_joined_with_newlines() -> None:
    assert await read(b"data: first\ndata: second\n\n") == ["first\nsecond"]


def test_building_a_chat_model_imports_nothing_once_the_app_is_loaded() -> None:
    """Chat models are built on the event loop: an import there (langchain_openai, the openai
    SDK's lazily loaded parts) stopped the whole server for seconds on its first chat. In a fresh
    interpreter, since this process has imported everything already."""
    script = """
import sys
import app.main
from app.llm.openai_compatible import loopback_http_client, remote_http_client
from app.llm.registry import ChatOptions, ModelRegistry
before = set(sys.modules)
for client in (loopback_http_client(5), remote_http_client("http://127.0.0.1:9/v1", 5)):
    ModelRegistry._openai_compatible(
        model="m", base_url="http://127.0.0.1:9/v1", api_key="k",
        options=ChatOptions(temperature=0.5, top_p=0.9, max_tokens=8), max_retries=0, http_async_client=client,
    )
print(sorted(set(sys.modules) - before))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BACKEND_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
