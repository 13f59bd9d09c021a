"""ASGI middleware: request body limit (413), request metrics and request ids. All pass streams
through untouched (pure ASGI: no BaseHTTPMiddleware, which would buffer them through a queue)."""

import json
import logging
import re
import time
import uuid
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.log_context import request_id
from app.core.metrics import HTTP_REQUESTS

log = logging.getLogger(__name__)
access_log = logging.getLogger("openchat.access")
# What a proxy's request id looks like (nginx $request_id, a UUID, AWS's Root=1-...): no spaces,
# no control characters, so it cannot forge log lines.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


class BodySizeLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413: by Content-Length, or, for a chunked body (no
    length given), by reading it here first. A body-read error raised inside the app would not do:
    FastAPI turns any error while it reads a body into 400 "There was an error parsing the body"."""

    def __init__(self, app: ASGIApp, max_bytes: int, own_limit_paths: Collection[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes that take larger bodies and enforce their own limit as they stream them (import).
        self.own_limit_paths = frozenset(own_limit_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.own_limit_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            # The server delivers no more than the declared length.
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:  # no body
            await self.app(scope, receive, send)
            return
        # Chunked: at most max_bytes are held here, as the app would hold the body anyway.
        chunks: list[Message] = []
        received = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app will see it
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"The request body is larger than {self.max_bytes} bytes.", "code": "body_too_large"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Counts requests by handler name (not raw path, to keep label cardinality low)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            handler = getattr(scope.get("route"), "name", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], handler, str(status)).inc()


class RequestIdMiddleware:
    """Gives every HTTP request an id: in its `X-Request-ID` response header (streams too: the
    header goes out with the first line), in every log line written while it is handled, and in
    one access line when it ends (path without its query string, which may hold search text).

    An incoming `X-Request-ID` is kept only when `trust_incoming` (a proxy in front sets it) and it
    is a plain token; otherwise the id is new."""

    def __init__(self, app: ASGIApp, trust_incoming: bool = False) -> None:
        self.app = app
        self.trust_incoming = trust_incoming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self._incoming(scope) or uuid.uuid4().hex
        header = (b"x-request-id", rid.encode())
        status = 500
        started_response = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, with the request's id (uvicorn's own report of it would have none).
            log.exception("Unhandled error in %s %s", scope["method"], scope["path"])
            if started_response:
                raise  # the response had begun: the connection is closed
            await self._internal_error(send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status, elapsed_ms)
            request_id.reset(token)

    @staticmethod
    async def _internal_error(send: Send) -> None:
        body = json.dumps(
            {"detail": "The server failed to handle this request; it has been logged.", "code": "internal_error"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _incoming(self, scope: Scope) -> str | None:
        if not self.trust_incoming:
            return None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                return candidate if SANE_REQUEST_ID.fullmatch(candidate) else None
        return None
