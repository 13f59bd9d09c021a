"""The SSE reading of the openai-compatible chat model: the fast path for one event per piece
and the full decoder for everything else give the same data."""

from collections.abc import AsyncIterator

import pytest

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
    ],
)
async def test_other_framings_go_through_the_full_decoder(parts: tuple[bytes, ...]) -> None:
    assert await read(*parts) == ['{"a":1}', '{"b":2}', "[DONE]"]


async def test_an_event_of_several_data_lines_is_joined_with_newlines() -> None:
    assert await read(b"data: first\ndata: second\n\n") == ["first\nsecond"]
