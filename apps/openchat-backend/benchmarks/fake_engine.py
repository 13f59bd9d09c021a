"""A fake OpenAI-compatible engine that streams its whole reply at once: the peer every chat
app is put in front of when its own overhead is measured (benchmarks/capacity.py), and the
engine of the many-streams test (tests/api/test_chat_capacity.py).

`GET /v1/models` lists one model; `POST /v1/chat/completions` with `"stream": true` answers
`tokens` SSE chunks (OpenAI's format, one word each), a last chunk with `finish_reason` and
usage, and `data: [DONE]`. The chunks are encoded once at start, so that the engine costs as
little as possible per token. Without `"stream": true` it answers the whole reply in one JSON.

Run: python -m benchmarks.fake_engine --port 9100 [--tokens 200] [--delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "fake-model"
CONTEXT_LENGTH = 32768
WORD = "tok"


def sse(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chunk(index: int, delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def make_app(tokens: int = 200, delay_s: float = 0.0, midway: Callable[[], Awaitable[None]] | None = None) -> Starlette:
    """The engine's ASGI app: `tokens` chunks per reply, `delay_s` between them (0: all at once).
    Tests may pass `midway`, awaited by every stream after half of its tokens."""
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
    head = sse(chunk(0, {"role": "assistant", "content": ""}))
    body = [sse(chunk(0, {"content": f" {WORD}{i}" if i else WORD})) for i in range(tokens)]
    tail = sse({**chunk(0, {}, "stop"), "usage": None}) + sse({**chunk(0, {}), "choices": [], "usage": usage})
    tail += b"data: [DONE]\n\n"
    text = "".join(f" {WORD}{i}" if i else WORD for i in range(tokens))

    async def models(_request: Request) -> Response:
        entry = {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench", "context_length": CONTEXT_LENGTH}
        return JSONResponse({"object": "list", "data": [entry]})

    async def stream() -> AsyncIterator[bytes]:
        yield head
        for index, line in enumerate(body):
            if midway is not None and index == tokens // 2:
                await midway()
            if delay_s:
                await asyncio.sleep(delay_s)
            yield line
        yield tail

    async def completions(request: Request) -> Response:
        payload = await request.json()
        if payload.get("stream"):
            return StreamingResponse(stream(), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", completions, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    app = make_app(args.tokens, args.delay_ms / 1000)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
