"""The openai-compatible chat model's streaming: the SSE reading (the fast path for one event per
piece and the full decoder for everything else give the same data), and its pieces (a token's
text alone, every other chunk as ChatOpenAI makes it)."""

import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.core.config import BACKEND_DIR
from app.llm.openai_compatible import (
    ProgressChatOpenAI,
    loopback_http_client,
    remote_http_client,
    sse_data,
    token_text,
)
from app.llm.streaming import message_pieces
from benchmarks.fake_engine import make_app
from tests.api.conftest import fake_reply
from tests.conftest import serving


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


def token_chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": None, **extra.pop("choice", {})}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [choice], **extra}


@pytest.mark.parametrize(
    ("chunk", "text"),
    [
        (token_chunk({"content": "Hi"}), "Hi"),
        (token_chunk({"content": " there", "role": "assistant"}), " there"),
        (token_chunk({"content": "x", "reasoning_content": None, "tool_calls": None}), "x"),  # vLLM's nulls
        (token_chunk({"role": "assistant", "content": None}), None),  # the opening chunk
        (token_chunk({"content": ""}), None),
        (token_chunk({}, choice={"finish_reason": "stop"}), None),
        (token_chunk({"content": "end"}, choice={"finish_reason": "length"}), None),
        (token_chunk({"content": "Hi"}, choice={"logprobs": {"content": []}}), None),
        (token_chunk({"content": "Hi"}, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}), None),
        (token_chunk({"content": "Hi"}, prompt_progress={"total": 9, "processed": 9}), None),
        (token_chunk({"content": "", "tool_calls": [{"index": 0, "function": {"name": "f"}}]}), None),
        (token_chunk({"content": "Hi", "role": "user"}), None),
        ({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}, None),
    ],
)
def test_only_a_chunk_holding_nothing_but_text_is_a_plain_token(chunk: dict[str, Any], text: str | None) -> None:
    assert token_text(chunk) == text


def chat_model(base_url: str, local: bool = False) -> ProgressChatOpenAI:
    """The chat model as the registry makes it for a remote server, or for a local engine."""
    return ProgressChatOpenAI(
        model="fake-model",
        base_url=base_url,
        api_key="k",
        stream_usage=True,
        max_retries=0,
        http_async_client=loopback_http_client(30) if local else remote_http_client(base_url, 30),
    )


def summary(chunks: list[AIMessageChunk]) -> list[tuple[str, Any, Any]]:
    return [(c.text, c.usage_metadata, c.response_metadata.get("finish_reason")) for c in chunks]


@pytest.mark.parametrize("local", [False, True], ids=["remote", "local-engine"])
async def test_tokens_stream_as_their_text_and_every_other_chunk_as_chatopenai_makes_it(local: bool) -> None:
    """stream_pieces against ChatOpenAI's own streaming (message_pieces), from the same server,
    through either HTTP client."""
    async with serving(make_app(tokens=6)) as url:
        model = chat_model(f"{url}/v1", local)
        pieces = [piece async for piece in model.stream_pieces([HumanMessage("Hi")])]
        chunks = [chunk async for chunk in message_pieces(model, [HumanMessage("Hi")])]
    texts = [piece for piece in pieces if isinstance(piece, str)]
    assert texts == [chunk.text for chunk in chunks if chunk.text] and "".join(texts) == fake_reply(6)
    others = [piece for piece in pieces if not isinstance(piece, str)]
    assert summary(others) == summary([chunk for chunk in chunks if not chunk.text])
    assert others[-1].usage_metadata and others[-1].usage_metadata["output_tokens"] == 6
    assert any(chunk.response_metadata.get("finish_reason") == "stop" for chunk in others)


async def test_a_compressed_stream_is_decoded() -> None:
    """aiohttp's body is read as it comes only when it is not encoded; a gzipped stream (a proxy
    in front of the server may compress it) goes through the decoder."""
    words = ["Hello", " gz", "ipped"]
    events = [token_chunk({"role": "assistant", "content": None})] + [token_chunk({"content": w}) for w in words]
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"

    async def completions(_request: Request) -> Response:
        headers = {"Content-Encoding": "gzip"}
        return Response(gzip.compress(body), media_type="text/event-stream", headers=headers)

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    async with serving(app) as url:
        pieces = [piece async for piece in chat_model(f"{url}/v1").stream_pieces([HumanMessage("Hi")])]
    assert [piece for piece in pieces if isinstance(piece, str)] == words
