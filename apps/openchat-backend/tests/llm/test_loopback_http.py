"""The local engine's HTTP transport (app/llm/loopback_http.py), against a raw server on loopback
that sends exactly the bytes each test needs: what it sends, a body read as it arrives, and every
way a response can fail (silence, a connection cut, nothing listening, a reader that leaves)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx2
import openai
import pytest
from langchain_core.messages import HumanMessage

from app.llm.loopback_http import BODY_PIECES, ResponseReader
from app.llm.openai_compatible import ProgressChatOpenAI, loopback_http_client
from app.llm.streaming import StreamInterruptedError
from tests.conftest import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


@asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[str]:
    """`handle` serving each connection on a free loopback port; yields the base URL."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handle(reader, writer)
        except asyncio.CancelledError:
            pass  # the test is over
        finally:
            writer.transport.abort()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def test_the_request_is_sent_whole_and_the_body_read_piece_by_piece_as_it_comes() -> None:
    requests: list[tuple[bytes, bytes]] = []
    first_read = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await read_request(reader))
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await first_read.wait()  # the second piece is sent only once the first was read
        writer.write(chunk(b"data: two\n\n") + chunk(b""))
        await writer.drain()
        writer.close()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        request = client.build_request(
            "POST", f"{url}/v1/chat/completions", json={"a": 1}, headers={"Authorization": "Bearer k"}
        )
        response = await client.send(request, stream=True)
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        pieces = []
        async for piece in response.aiter_raw():
            pieces.append(piece)
            first_read.set()
        await response.aclose()
    assert pieces == [b"data: one\n\n", b"data: two\n\n"]
    head, body = requests[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and body == b'{"a":1}'
    lines = head.lower().split(b"\r\n")
    assert b"authorization: bearer k" in lines and b"connection: close" in lines
    assert b"content-length: 7" in lines and b"host: 127.0.0.1:" + url.rsplit(":", 1)[1].encode() in lines


async def test_a_server_silent_for_the_read_timeout_fails_the_read_with_a_read_timeout() -> None:
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await release.wait()

    async with raw_server(handle) as url, loopback_http_client(0.3) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        body = response.aiter_raw()
        assert await anext(body) == b"data: one\n\n"
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx2.ReadTimeout, match=r"sent nothing for 0\.3 s"):
            await anext(body)
        assert 0.25 < asyncio.get_running_loop().time() - started < 2
        await response.aclose()
        release.set()


async def test_a_server_silent_before_its_headers_times_the_request_out() -> None:
    async def handle(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handle) as url, loopback_http_client(0.3) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.post(url, content=b"{}")


async def test_a_connection_cut_mid_body_fails_the_read() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        writer.transport.abort()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        with pytest.raises(httpx2.RemoteProtocolError, match="disconnected"):
            async for _piece in response.aiter_raw():
                pass
        await response.aclose()


async def test_nothing_listening_is_a_connection_error_that_the_sdk_reports_as_such() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with loopback_http_client(5) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.post(f"{url}/chat/completions", content=b"{}")
        sdk = openai.AsyncOpenAI(base_url=url, api_key="k", http_client=client, max_retries=0)
        with pytest.raises(openai.APIConnectionError, match="Connection error"):
            await sdk.models.list()


async def test_an_error_status_reaches_the_sdk_with_the_servers_message() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"error": {"message": "Invalid API Key", "type": "authentication_error"}}'
        writer.write(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", http_client=client, max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="Invalid API Key"):
            await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])


async def test_a_body_that_ends_with_the_connection_is_complete_when_it_closes() -> None:
    """HTTP/1.1 allows a body with neither a length nor chunks: the connection's end is its end."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        response = await client.post(url, content=b"{}")
    assert response.status_code == 200 and response.text == "all of it"


async def test_closing_the_response_early_closes_the_connection_the_server_sees_it() -> None:
    """What stops the engine's generation when a user presses Stop."""
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        if await reader.read() == b"":  # the client closed its side
            closed.set()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        assert await anext(response.aiter_raw()) == b"data: one\n\n"
        await response.aclose()
        await asyncio.wait_for(closed.wait(), 2)


async def test_a_request_cancelled_before_the_headers_closes_the_connection() -> None:
    """A stop while a long prompt is read: the engine sees the connection close and stops."""
    closed = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if await reader.read() == b"":
            closed.set()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        request = asyncio.create_task(client.post(url, content=b"{}"))
        await asyncio.sleep(0.2)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        await asyncio.wait_for(closed.wait(), 2)


async def test_a_body_far_ahead_of_its_reader_arrives_whole() -> None:
    """Past the read-ahead limit the socket is no longer read until the reader catches up."""
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    async with raw_server(handle) as url, loopback_http_client(5) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        reader = response.extensions[BODY_PIECES].__self__  # the bound pieces() of the response's reader
        assert isinstance(reader, ResponseReader)
        await asyncio.sleep(0.3)  # the server writes all it can meanwhile
        assert reader._paused
        received = b"".join([piece async for piece in response.aiter_raw()])
        await response.aclose()
    assert received == body


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("hang", "upstream_timeout", "sent nothing for 0.3 s"),
        ("die", "upstream_disconnected", "closed the connection before the reply was finished"),
    ],
)
async def test_an_engine_that_hangs_or_dies_mid_reply_ends_the_stream_with_the_matching_error(
    fault: str, code: str, message: str
) -> None:
    """The chat model as the registry makes it for the local engine: the tokens before the fault
    arrive, then the error the client's `error` event carries."""
    release = asyncio.Event()
    token = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(HEAD + chunk(token) + chunk(token))
        await writer.drain()
        if fault == "die":
            writer.transport.abort()
        await release.wait()

    async with raw_server(handle) as url, loopback_http_client(0.3) as client:
        model = ProgressChatOpenAI(
            model="m", base_url=f"{url}/v1", api_key="k", timeout=0.3, max_retries=0, http_async_client=client
        )
        texts = []
        with pytest.raises(StreamInterruptedError, match=message) as raised:
            async for piece in model.stream_pieces([HumanMessage("Hi")]):
                texts.append(piece)
        release.set()
    assert texts == ["Hi", "Hi"] and raised.value.code == code
