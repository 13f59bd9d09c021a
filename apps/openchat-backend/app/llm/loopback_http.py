"""HTTP/1.1 to the local engine, as a transport of the openai SDK's HTTP client (httpx2).

In front of the local engine, the backend's CPU per token is taken from the two cores the
engine decodes with, and each token wakes the backend with cold caches: every layer a token
goes through costs tens of microseconds (docs/benchmarks.md, section 6). aiohttp's reader was a
third of the backend's Python work per token (a read timer moved per piece, a stream reader with
its waiters, flow-control calls). This one parses the response with httptools (the C parser
uvicorn serves with) in an asyncio Protocol: a body piece is appended to a list and wakes the
one reader; the silence limit is one timer per response, moved only when it fires.

What it does not do, since the engine is a server the backend started on 127.0.0.1: TLS, proxies,
redirects, compression or keep-alive. Each request has a connection of its own (microseconds
on loopback; llama-server closes kept-alive connections on its own schedule, and a request sent on
one as it closed failed, about 1 in 65 quick requests), and closing the response closes it, which
stops the engine's generation.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import httptools
import httpx2

# A body read no further than this ahead of its reader: the socket is not read meanwhile.
READ_AHEAD_BYTES = 1 << 20

# Where an HTTP transport of the model servers leaves a function giving the response's body
# pieces as they arrive, unwrapped (this one's and ModelServerTransport's): DictChunkStream reads
# a stream from it, skipping httpx's wrappers, each a wake-up of cold code per token.
BODY_PIECES = "openchat_body_pieces"


class ResponseReader(asyncio.Protocol):
    """One HTTP/1.1 response, read as it arrives. `head` resolves once the status and headers
    are in; `pieces()` yields the body as it comes. A response silent for `silence_s` (before
    its headers or between two body pieces) fails with httpx2.ReadTimeout; a connection closed
    before the response's end, with httpx2.RemoteProtocolError."""

    def __init__(self, request: httpx2.Request, silence_s: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._request = request
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.head: asyncio.Future[tuple[int, bytes, list[tuple[bytes, bytes]]]] = self._loop.create_future()
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._complete = False  # the whole response is in
        self._ends_at_close = False  # a body with neither a length nor chunks ends with the connection
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None  # the reader's, while it waits for a piece
        self._silence_s = silence_s
        self._heard_at = self._loop.time()
        self._watchdog = self._loop.call_later(silence_s, self._check_silence) if silence_s else None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is one, not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # the engine never upgrades a connection
            self._fail(httpx2.RemoteProtocolError("The server switched protocols", request=self._request))
        except httptools.HttpParserError as error:
            self._fail(httpx2.RemoteProtocolError(f"Invalid HTTP response: {error}", request=self._request))

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None and self._ends_at_close:
            self.on_message_complete()
        if not self._complete:
            reason = f": {exc}" if exc else ""
            message = f"Server disconnected without sending a complete response{reason}"
            self._fail(httpx2.RemoteProtocolError(message, request=self._request))

    # httptools' callbacks

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._heard_at = self._loop.time()
        names = {name.lower() for name, _value in self._headers}
        status = self._parser.get_status_code()
        self._ends_at_close = (
            b"content-length" not in names
            and b"transfer-encoding" not in names
            and status >= 200
            and status not in (204, 304)
        )
        if not self.head.done():
            self.head.set_result((status, self._reason, self._headers))

    def on_body(self, body: bytes) -> None:
        self._heard_at = self._loop.time()
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_AHEAD_BYTES and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        self._stop_watchdog()
        self._wake()

    # the reader's side

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives: what came since the last piece, joined."""
        while True:
            if self._body:
                piece = self._body[0] if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self._buffered = 0
                if self._paused and self._transport is not None and not self._transport.is_closing():
                    self._paused = False
                    self._transport.resume_reading()
                yield piece
            elif self._complete:
                return
            elif self._error is not None:
                raise self._error
            else:
                self._waiter = self._loop.create_future()
                await self._waiter

    def close(self) -> None:
        """Close the connection (the engine stops generating when it sees it closed)."""
        self._stop_watchdog()
        self.head.cancel()  # nobody waits for it any more (no-op once it is in)
        if self._transport is not None:
            self._transport.close()
        if not self._complete and self._error is None:
            self._error = httpx2.ReadError("The response was closed before its end", request=self._request)

    # internals

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        if not self.head.done():
            self.head.set_exception(error)
        self._stop_watchdog()
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    def _check_silence(self) -> None:
        """The watchdog: it fires `silence_s` after it was set, and is set again for the rest
        of the time when something was heard meanwhile (no timer is moved per piece)."""
        assert self._silence_s is not None
        quiet_s = self._loop.time() - self._heard_at
        if quiet_s < self._silence_s:
            self._watchdog = self._loop.call_later(self._silence_s - quiet_s, self._check_silence)
            return
        self._watchdog = None
        message = f"The server sent nothing for {self._silence_s:g} s"
        self._fail(httpx2.ReadTimeout(message, request=self._request))

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


class ResponseReaderStream(httpx2.AsyncByteStream):
    def __init__(self, reader: ResponseReader) -> None:
        self._reader = reader

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._reader.pieces()

    async def aclose(self) -> None:
        self._reader.close()


class LoopbackTransport(httpx2.AsyncBaseTransport):
    """Plain HTTP/1.1 to a server on this machine, a connection per request. Errors are httpx's,
    as the openai SDK expects of a transport: a refused connection is ConnectError (the SDK says
    "Connection error."), a server silent past the read timeout ReadTimeout."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.scheme != "http":
            raise httpx2.UnsupportedProtocol(f"Only plain http to a local engine, not {request.url}", request=request)
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                transport, reader = await loop.create_connection(
                    lambda: ResponseReader(request, timeouts.get("read")), request.url.host, request.url.port or 80
                )
        except TimeoutError as error:
            message = f"Timed out connecting to {request.url.netloc.decode()}"
            raise httpx2.ConnectTimeout(message, request=request) from error
        except OSError as error:
            raise httpx2.ConnectError(str(error), request=request) from error
        transport.write(request_head(request, len(body)) + body)
        try:
            status, reason, headers = await reader.head
        except BaseException:
            reader.close()
            raise
        return httpx2.Response(
            status_code=status,
            headers=headers,
            stream=ResponseReaderStream(reader),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason, BODY_PIECES: reader.pieces},
        )


# Request headers the transport sets itself: the body is sent whole, on a connection of its own.
OWN_HEADERS = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


def request_head(request: httpx2.Request, body_length: int) -> bytes:
    """The request line and headers, with `Connection: close` (a connection per request)."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    lines += [name + b": " + value for name, value in request.headers.raw if name.lower() not in OWN_HEADERS]
    lines += [b"Content-Length: %d" % body_length, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"
