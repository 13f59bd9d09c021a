"""The floor of the capacity benchmark: a bare Starlette endpoint that does the least any chat
server must do per token. It streams a chat from an OpenAI-compatible engine (httpx), reads
each SSE line (json.loads), and sends the same NDJSON events as OpenChat's POST /api/v1/chat
(start, one token line per chunk, end). No auth, no database, no LangChain.

Run: python -m benchmarks.floor --port 9200 --engine http://127.0.0.1:9100/v1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def make_app(engine_url: str) -> Starlette:
    client = httpx.AsyncClient(base_url=engine_url, timeout=None, limits=httpx.Limits(max_connections=None))

    async def chat(request: Request) -> Response:
        body = await request.json()
        upstream = {"model": body["data"]["model"], "messages": body["messages"], "stream": True}

        async def events() -> AsyncIterator[bytes]:
            yield json.dumps({"type": "start", "id": body["id"]}).encode() + b"\n"
            async with client.stream("POST", "/chat/completions", json=upstream) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    choices = json.loads(line[6:])["choices"]
                    if choices and (text := choices[0]["delta"].get("content")):
                        yield json.dumps({"type": "token", "content": text}).encode() + b"\n"
            yield b'{"type":"end","finish_reason":"stop"}\n'

        return StreamingResponse(events(), media_type="application/x-ndjson")

    return Starlette(routes=[Route("/api/v1/chat", chat, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", required=True, help="the engine's OpenAI base URL, e.g. http://127.0.0.1:9100/v1")
    args = parser.parse_args()
    uvicorn.run(make_app(args.engine), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
