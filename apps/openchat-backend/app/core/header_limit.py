"""Refuses requests whose headers add up to more than MAX_HEADER_BYTES with 431, in the error
shape. uvicorn's default HTTP parser (httptools) reads headers of any size; this keeps a 100 KB
cookie or token from reaching authentication, storage or logs. (The memory was spent already:
a proxy in front, or `uvicorn --http h11`, limits what is read.)"""

import json

from starlette.types import ASGIApp, Receive, Scope, Send

# Twice what a browser sends with every cookie of this app; the total nginx allows by default.
MAX_HEADER_BYTES = 32 * 1024


class HeaderSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_bytes:
            body = json.dumps(
                {
                    "detail": f"The request headers are larger than {self.max_bytes} bytes: "
                    "send fewer or smaller headers (cookies, tokens).",
                    "code": "headers_too_large",
                }
            ).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 431, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
