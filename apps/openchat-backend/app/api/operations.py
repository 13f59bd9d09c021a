"""Who may read the operator pages: /metrics (OPENCHAT_METRICS) and the API docs, /docs, /redoc
and /openapi.json (OPENCHAT_API_DOCS). Each is `open`, `off` (404) or `token`: the request
carries OPENCHAT_OPS_TOKEN as `Authorization: Bearer <token>` (Prometheus' `authorization`) or as
the password of HTTP Basic (any user name), which a browser asks for on the docs page."""

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from app.core.config import Settings
from app.core.errors import ApiError

Access = Literal["open", "token", "off"]


def _presented_token(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password
    return None


def check_access(request: Request, access: Access, settings: Settings) -> None:
    """Raise 404 (`off`) or 401 (`token`, and the request does not carry it)."""
    if access == "open":
        return
    if access == "off":
        raise ApiError(404, "not_found", "Not Found")
    presented = _presented_token(request.headers.get("authorization", ""))
    expected = settings.ops_token or ""
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "This page needs the operator token (OPENCHAT_OPS_TOKEN), as a Bearer token or a Basic password.",
            headers={"WWW-Authenticate": 'Basic realm="OpenChat operations", charset="UTF-8"'},
        )


def add_api_docs(app: FastAPI, settings: Settings, openapi: Callable[[], dict[str, Any]]) -> None:
    """FastAPI's docs pages and schema, behind OPENCHAT_API_DOCS (none of them when `off`)."""
    if settings.api_docs_access == "off":
        return

    def guard(request: Request) -> None:
        check_access(request, settings.api_docs_access, settings)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(request: Request) -> JSONResponse:
        guard(request)
        return JSONResponse(openapi())

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        guard(request)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        guard(request)
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API")
