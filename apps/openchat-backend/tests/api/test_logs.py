"""Request ids (X-Request-ID, in every log line of the request) and logs without secrets."""

import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from app.api.deps import get_registry
from app.main import create_app
from tests.conftest import free_port
from tests.fakes import FakeRegistry

PASSWORD = "sesame-Pa55word-never-logged"
QUESTION = "what is the launch code 7391-ALPHA"
REPLY_TOKENS = ["The code ", "is ", "ZEBRA-5521"]
SEARCH = "needle-4471-search"


def ids(responses: list[httpx.Response]) -> list[str]:
    return [response.headers["x-request-id"] for response in responses]


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "openchat.access"]


@pytest.fixture
def served(make_settings: Any) -> Iterator[str]:
    """The app behind a real uvicorn, logging as `uvicorn app:app` does (its own access log too)."""
    settings = make_settings(auth_mode="required", generate_titles=True)
    app = create_app(settings, registry=FakeRegistry(settings, tokens=REPLY_TOKENS, title="Launch codes"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_a_whole_session_logs_no_password_token_or_message(
    served: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # everything every library logs, far more than production
    client = httpx.Client(base_url=served, timeout=30)
    credentials = {"email": "secretive@example.com", "password": PASSWORD}

    signup = client.post("/api/v1/auth/signup", json=credentials)
    login = client.post("/api/v1/auth/login", json=credentials)
    bad_login = client.post("/api/v1/auth/login", json={**credentials, "password": PASSWORD + "x"})
    access = login.json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    chat = client.post(
        "/api/v1/chat", json={"id": "c1", "messages": [{"role": "user", "content": QUESTION}]}, headers=headers
    )
    search = client.get("/api/v1/conversations", params={"q": SEARCH}, headers=headers)
    refresh_cookie = client.cookies.get("openchat_refresh", path="/api/v1/auth")
    refreshed = client.post("/api/v1/auth/refresh")
    logout = client.post("/api/v1/auth/logout")
    after_logout = client.get("/api/v1/auth/me", headers=headers)
    client.close()

    responses = [signup, login, bad_login, chat, search, refreshed, logout, after_logout]
    assert [r.status_code for r in responses] == [201, 200, 401, 200, 200, 200, 204, 401]
    assert "ZEBRA-5521" in chat.text  # the reply really went through the model
    secrets = [
        PASSWORD,
        QUESTION,
        "ZEBRA-5521",
        SEARCH,
        signup.json()["access_token"],
        access,
        refreshed.json()["access_token"],
        refresh_cookie,
        refreshed.cookies.get("openchat_refresh"),
    ]
    # An access line is written once its response has ended, which can be just after the client
    # read it: wait (briefly) for the last one.
    deadline = time.monotonic() + 10
    while len(access_records(caplog)) < len(responses) and time.monotonic() < deadline:
        time.sleep(0.02)
    # The server's records (its threads; not this test's client saying what it sent), and what uvicorn printed.
    server = [r for r in caplog.records if r.thread != threading.main_thread().ident]
    handler = logging.StreamHandler()
    printed = capfd.readouterr()
    logged = "\n".join(handler.format(record) + str(record.__dict__) for record in server) + printed.out + printed.err
    assert server, "nothing was logged at all: the test would prove nothing"
    for secret in secrets:
        assert secret and secret not in logged, secret
    # Every request has its own id, in its response and in its access log line.
    assert len(set(ids(responses))) == len(responses)
    access_lines = {r.request_id: r.getMessage() for r in server if r.name == "openchat.access"}
    for response in responses:
        assert response.headers["x-request-id"] in access_lines
    assert access_lines[search.headers["x-request-id"]].startswith("GET /api/v1/conversations 200")


async def test_log_lines_written_while_a_reply_streams_name_its_request(
    make_settings: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings, fail_at=1))
    response = await client.post("/api/v1/chat", json={"id": "f", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and '"type":"error"' in response.text.replace(" ", "")
    failures = [record for record in caplog.records if "failed while streaming" in record.getMessage()]
    assert failures and {record.request_id for record in failures} == {response.headers["x-request-id"]}


@pytest.mark.parametrize(
    ("trusted", "incoming", "kept"),
    [
        (True, "proxy-1234abcd", True),
        (True, "1-67891233-abcdef012345678912345678", True),
        (True, "two words", False),
        (True, "x" * 200, False),
        (True, "forged\nline", False),
        (False, "proxy-1234abcd", False),
    ],
)
async def test_an_incoming_request_id_is_kept_only_from_a_trusted_proxy_and_when_plain(
    make_settings: Any, make_client: Any, trusted: bool, incoming: str, kept: bool
) -> None:
    settings = make_settings(trust_request_id=trusted)
    client = await make_client(settings, FakeRegistry(settings))
    raw_headers = [(b"x-request-id", incoming.encode())]
    response = await client.get("/healthz", headers=raw_headers)
    assert response.status_code == 200
    assert (response.headers["x-request-id"] == incoming) is kept
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]) or kept


async def test_an_unexpected_error_is_logged_with_the_request_id(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    app = create_app(settings, registry=FakeRegistry(settings))

    def broken_registry() -> None:
        raise RuntimeError("a bug")

    app.dependency_overrides[get_registry] = broken_registry
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        response = await client.get("/api/v1/models")

    assert response.status_code == 500 and response.json()["code"] == "internal_error"
    assert "a bug" not in response.text
    logged = [record for record in caplog.records if record.exc_info and "a bug" in str(record.exc_info[1])]
    assert [record.request_id for record in logged] == [response.headers["x-request-id"]]
