"""The floor of the capacity benchmark: a bare Starlette endpoint that does the least any chat
server must do per token. It streams a chat from an OpenAI-compatible engine (httpx), reads
each SSE line (json.loads), and sends the same NDJSON events as OpenChat's POST /api/v1/chat
(start, one token line per chunk, end). No auth, no database, no LangChain.

With --local, in front of the real local engine (section 6's real-engine table): the engine is
read as OpenChat reads it (app/llm/loopback_http.py, its body pieces directly, the plain SSE
events split as they are, orjson), with its key from ENGINE_API_KEY: the least an ASGI app
does per token there, beside the least relay (no framework at all).

Run: python -m benchmarks.floor --port 9200 --engine http://127.0.0.1:9100/v1 [--local]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator

import httpx
import httpx2
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def make_local_app(engine_url: str, api_key: str) -> Starlette:
    # Imported here: the fake-engine floor stays bare (its memory is in the capacity tables).
    from app.llm.loopback_http import BODY_PIECES, LoopbackTransport
    from app.llm.openai_compatible import sse_data
    from app.schemas import ndjson_line
    from benchmarks.measure import OPENAI_ROLES

    client = httpx2.AsyncClient(base_url=engine_url, transport=LoopbackTransport(), timeout=120)
    headers = {"Authorization": f"Bearer {api_key}"}

    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        options = body.get("data") or {}
        upstream = {
            "model": options.get("model", "model"),
            "messages": [{"role": OPENAI_ROLES[m["role"]], "content": m["content"]} for m in body["messages"]],
            **{key: options[key] for key in ("temperature", "top_p", "max_tokens") if key in options},
            "stream": True,
        }
        response = await client.send(
            client.build_request("POST", "/chat/completions", json=upstream, headers=headers), stream=True
        )

        async def events() -> AsyncIterator[bytes]:
            try:
                yield orjson.dumps({"type": "start", "id": body["id"]}) + b"\n"
                async for data in sse_data(response.extensions[BODY_PIECES]()):
                    choices = None if data.startswith("[DONE]") else orjson.loads(data).get("choices")
                    if choices and (text := choices[0]["delta"].get("content")):
                        yield ndjson_line(text)
                yield b'{"type":"end","finish_reason":"stop"}\n'
            finally:
                await response.aclose()

        return StreamingResponse(events(), media_type="application/x-ndjson")

    async def ready(_request: Request) -> Response:
        return Response(b"")

    return Starlette(routes=[Route("/", ready), Route("/api/v1/chat", chat, methods=["POST"])])


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
    parser.add_argument("--local", action="store_true", help="the real local engine (its key: ENGINE_API_KEY)")
    args = parser.parse_args()
    app = make_local_app(args.engine, os.environ["ENGINE_API_KEY"]) if args.local else make_app(args.engine)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
