"""ASGI middleware adding security headers to every HTTP response.

Only the response's start message is touched (its headers); body messages, and so the chat
stream's lines, pass through as they come.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API answers with data, never with a page: nothing in a response may run, load or be framed.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# /docs and /redoc are HTML pages that load Swagger UI or ReDoc from their CDN and run an inline
# script: they stay usable, but no other site may frame them.
PAGE_CSP = "frame-ancestors 'none'"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # "same-origin", not "no-referrer": with "no-referrer" browsers send `Origin: null` on
    # same-origin POSTs, which an Origin check would then refuse.
    "Referrer-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Adds nosniff, anti-framing, Referrer-Policy and a CSP to every response (keeping any a route set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS.items():
                    headers.setdefault(name, value)
                is_page = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("Content-Security-Policy", PAGE_CSP if is_page else DATA_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
