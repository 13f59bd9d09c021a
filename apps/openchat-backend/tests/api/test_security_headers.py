"""Every API response carries the security headers; the chat stream is passed through unchanged."""

import json
from typing import Any

import httpx
from starlette.responses import HTMLResponse

from app.core.security_headers import SecurityHeadersMiddleware
from tests.fakes import FakeRegistry

DATA_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def assert_security_headers(response: httpx.Response, csp: str = DATA_CSP) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["content-security-policy"] == csp
    # Added once, not appended to a value the route already had.
    for name in ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy"):
        assert len(response.headers.get_list(name)) == 1, name


async def test_json_answers_and_errors_carry_the_headers(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(max_body_bytes=2048)
    client = await make_client(settings, FakeRegistry(settings))

    models = await client.get("/api/v1/models")
    assert models.status_code == 200
    assert_security_headers(models)

    missing = await client.get("/api/v1/conversations/no-such-conversation")
    assert missing.status_code == 404
    assert_security_headers(missing)

    bad = await client.post("/api/v1/chat", content=b"not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert_security_headers(bad)

    # Refused by the body limit, outside the routes.
    oversized = {"id": "x", "messages": [{"role": "user", "content": "x" * 5000}]}
    too_large = await client.post("/api/v1/chat", json=oversized)
    assert too_large.status_code == 413
    assert_security_headers(too_large)

    assert_security_headers(await client.get("/healthz"))


async def test_the_chat_stream_gets_the_headers_and_its_lines_unchanged(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings))
    response = await client.post("/api/v1/chat", json={"id": "c1", "messages": [{"role": "user", "content": "Hi"}]})

    assert response.status_code == 200
    assert_security_headers(response)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["cache-control"] == "no-cache"
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "end"
    assert "".join(e["content"] for e in lines if e["type"] == "token") == "Hello, world!"


async def test_an_html_page_may_run_its_scripts_but_not_be_framed() -> None:
    # Like FastAPI's /docs (which may be turned off by configuration): a page, not data.
    page = SecurityHeadersMiddleware(HTMLResponse("<h1>API docs</h1>", headers={"X-Frame-Options": "SAMEORIGIN"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=page), base_url="http://test") as client:
        response = await client.get("/")
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    # A header the response set itself is kept.
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
