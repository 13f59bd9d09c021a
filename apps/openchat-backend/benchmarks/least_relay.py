"""The least a Python server can do to relay a chat from the real engine, token by token: uvloop
protocols on both sides, the engine's chunked SSE parsed where it arrives (data_received), and
one NDJSON token line, as OpenChat writes it, sent to the client from there. No ASGI, no HTTP
library, no task or generator per token. Section 6 runs it beside OpenChat in front of the same
engine: what any relay costs the engine's decoding on this machine, the rest being OpenChat's.

Only what that measurement needs: one POST at a time per client connection, a new engine
connection per request, no error handling beyond closing.

Run: ENGINE_API_KEY=... python -m benchmarks.least_relay --port 9300 --engine-port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any, cast

import orjson
import uvloop

from app.schemas import TOKEN_LINE_START
from benchmarks.measure import OPENAI_ROLES


def chunk(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(body), body)


class EngineStream(asyncio.Protocol):
    """Reads the engine's chunked SSE response and writes each token's line to the client."""

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client
        self.buffer = b""
        self.in_body = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's, not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.in_body:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            buffer, self.in_body = buffer[end + 4 :], True
        out: list[bytes] = []
        while (line_end := buffer.find(b"\r\n")) >= 0:
            size = int(buffer[:line_end], 16)
            if len(buffer) < line_end + 4 + size:
                break
            payload, buffer = buffer[line_end + 2 : line_end + 2 + size], buffer[line_end + 4 + size :]
            if size == 0:  # the response's end
                out.append(chunk(b'{"type":"end","finish_reason":"stop"}\n') + b"0\r\n\r\n")
                assert self.transport is not None
                self.transport.close()
                break
            for line in payload.split(b"\n"):
                if not line.startswith(b"data: {"):
                    continue
                choices = orjson.loads(line[6:]).get("choices")
                if choices and (text := choices[0]["delta"].get("content")):
                    out.append(chunk(TOKEN_LINE_START + orjson.dumps(text) + b"}\n"))
        self.buffer = buffer
        if out:
            self.client.write(b"".join(out))


class ClientConnection(asyncio.Protocol):
    """Takes a POST whose body is OpenChat's chat request and relays the engine's reply to it."""

    def __init__(self, engine_port: int, api_key: str) -> None:
        self.engine_port = engine_port
        self.api_key = api_key
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.asking: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's, not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        assert self.transport is not None
        headers = self.buffer[:head_end].lower().split(b"\r\n")
        if headers[0].startswith(b"get "):  # a readiness check
            self.buffer = b""
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            return
        length = next(int(h.split(b":")[1]) for h in headers if h.startswith(b"content-length:"))
        if len(self.buffer) < head_end + 4 + length:
            return
        request: dict[str, Any] = orjson.loads(self.buffer[head_end + 4 : head_end + 4 + length])
        self.buffer = b""
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        options = request.get("data") or {}
        upstream = {
            "model": options.get("model", "model"),
            "messages": [{"role": OPENAI_ROLES[m["role"]], "content": m["content"]} for m in request["messages"]],
            "temperature": options.get("temperature", 0.7),
            "top_p": options.get("top_p", 0.95),
            "max_tokens": options.get("max_tokens", 512),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        self.asking = asyncio.get_running_loop().create_task(self.ask_engine(orjson.dumps(upstream)))

    async def ask_engine(self, body: bytes) -> None:
        assert self.transport is not None
        client = self.transport
        engine, _ = await asyncio.get_running_loop().create_connection(
            lambda: EngineStream(client), "127.0.0.1", self.engine_port
        )
        engine.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (self.api_key.encode(), len(body), body)
        )


async def serve(port: int, engine_port: int, api_key: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientConnection(engine_port, api_key), "127.0.0.1", port)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine-port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.engine_port, os.environ["ENGINE_API_KEY"]))


if __name__ == "__main__":
    main()
