"""Whom a request comes from (forwarding headers believed only from trusted proxies), login limits
that nobody can use to lock another person out, the Origin check on POST /auth/*, and the body
limit for a chunked body. Through the ASGI app with a chosen peer address, and through uvicorn."""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from limits.storage import memory as memory_storage

from app.core import rate_limit
from app.core.config import Settings
from app.main import create_app
from tests.conftest import ClientLeavingAfterTokens, chat_scope, serving
from tests.fakes import FakeRegistry

PASSWORD = "correct horse battery"
OWNER = "owner@example.com"
Peers = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def peers(make_settings: Callable[..., Settings], request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """`start(**settings)` builds one app; `client(address)` is then a client whose TCP peer is `address`."""
    stack = contextlib.AsyncExitStack()

    async def start(**overrides: Any) -> Peers:
        settings = make_settings(auth_mode="required", **overrides)
        app: FastAPI = create_app(settings, registry=FakeRegistry(settings))
        manager = await stack.enter_async_context(LifespanManager(app))

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        return client

    async with stack:
        yield start


async def login(client: httpx.AsyncClient, password: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/api/v1/auth/login", json={"email": OWNER, "password": password}, headers=headers)


async def signup(client: httpx.AsyncClient, email: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD}, headers=headers)


# --- Client address -------------------------------------------------------------------------


async def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(peers: Any) -> None:
    client = await peers(rate_limit_signup="2/minute")  # trusted: loopback only (the default)
    stranger = client("203.0.113.7")
    for n in range(2):
        assert (await signup(stranger, f"s{n}@example.com", forwarded_for=f"198.51.100.{n}")).status_code == 201
    # A made-up address per request changes nothing: the limit counts the peer.
    refused = await signup(stranger, "s2@example.com", forwarded_for="198.51.100.99")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    # Another machine has its own budget.
    assert (await signup(client("203.0.113.8"), "other@example.com")).status_code == 201


async def test_a_trusted_proxys_chain_is_honoured_from_the_right(peers: Any) -> None:
    client = await peers(rate_limit_signup="1/minute", trusted_proxies=["10.0.0.0/8"])
    proxy = client("10.0.0.1")
    # Two users behind the proxy, each with a spoofed entry on the left of its chain.
    assert (await signup(proxy, "a@example.com", forwarded_for="1.1.1.1, 192.0.2.1, 10.0.0.2")).status_code == 201
    assert (await signup(proxy, "b@example.com", forwarded_for="1.1.1.1, 192.0.2.2, 10.0.0.2")).status_code == 201
    # The first user again, with another spoofed entry: still 192.0.2.1, over its limit.
    again = await signup(proxy, "c@example.com", forwarded_for="8.8.8.8, 192.0.2.1, 10.0.0.2")
    assert again.status_code == 429


async def test_with_no_trusted_proxy_even_loopback_is_not_believed(peers: Any) -> None:
    client = await peers(rate_limit_signup="1/minute", trusted_proxies=[])
    local = client("127.0.0.1")
    assert (await signup(local, "a@example.com", forwarded_for="192.0.2.1")).status_code == 201
    assert (await signup(local, "b@example.com", forwarded_for="192.0.2.2")).status_code == 429


# --- Login limits ---------------------------------------------------------------------------


async def test_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(peers: Any) -> None:
    client = await peers(rate_limit_login="10/minute")  # the defaults of the login limits
    assert (await signup(client("192.0.2.50"), OWNER)).status_code == 201
    proxy = client("127.0.0.1")  # the bundled Next.js server, passing each attacker's address on

    # Ten wrong passwords, each from another address (the attack of issue 10)...
    for n in range(10):
        assert (await login(proxy, "wrong password", forwarded_for=f"198.51.100.{n}")).status_code == 401
    # ...and the owner, from an address never used before, logs in.
    owner = await login(proxy, PASSWORD, forwarded_for="192.0.2.77")
    assert owner.status_code == 200 and owner.json()["access_token"]

    # Ten more from one address: that address is refused, by the limit per account and address.
    for _ in range(10):
        assert (await login(proxy, "wrong password", forwarded_for="203.0.113.66")).status_code == 401
    refused = await login(proxy, PASSWORD, forwarded_for="203.0.113.66")
    assert refused.status_code == 429 and "from your address" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The owner still logs in.
    assert (await login(proxy, PASSWORD, forwarded_for="192.0.2.77")).status_code == 200


class FrozenClock:
    """`time` as the rate limits see it (in-memory storage), standing still unless moved: the
    delays below are seconds long, and a slow machine must not see them run out mid-test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(memory_storage, "time", frozen)
    monkeypatch.setattr(rate_limit, "time", frozen)
    return frozen


async def test_many_failures_across_addresses_slow_the_account_down_but_not_its_owners_address(
    peers: Any, clock: FrozenClock
) -> None:
    client = await peers(rate_limit_login="10/minute", login_backoff_after=5)
    assert (await signup(client("192.0.2.50"), OWNER)).status_code == 201
    assert (await login(client("192.0.2.60"), PASSWORD)).status_code == 200  # the owner's usual place

    for n in range(5):
        assert (await login(client(f"198.51.100.{n}"), "wrong password")).status_code == 401
    # A new address must wait a little (seconds, not a lock), whatever the password...
    delayed = await login(client("198.51.100.200"), PASSWORD)
    assert delayed.status_code == 429 and "many failed logins" in delayed.json()["detail"]
    assert delayed.headers["retry-after"] == "1"
    # ...the owner's known address is not delayed.
    assert (await login(client("192.0.2.60"), PASSWORD)).status_code == 200

    # Once the delay is over, one more failure doubles it.
    clock.now += 1
    assert (await login(client("198.51.100.201"), "wrong password")).status_code == 401
    assert (await login(client("198.51.100.202"), PASSWORD)).headers["retry-after"] == "2"
    clock.now += 2
    assert (await login(client("198.51.100.202"), PASSWORD)).status_code == 200


async def test_replicas_sharing_redis_share_the_login_delay(peers: Any, redis_url: str) -> None:
    replica_a = await peers(redis_url=redis_url, login_backoff_after=1)
    replica_b = await peers(redis_url=redis_url, login_backoff_after=1)
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    assert (await signup(replica_a("192.0.2.50"), email)).status_code == 201
    right = {"email": email, "password": PASSWORD}
    wrong = {"email": email, "password": "wrong password"}
    home = replica_a("192.0.2.60")
    assert (await home.post("/api/v1/auth/login", json=right)).status_code == 200
    # Six failures (from the owner's own, known, address, which the delay never stops): the last
    # one asks for 2**5 s, capped at 30 s (a real Redis TTL: long enough not to run out here).
    for _ in range(6):
        assert (await home.post("/api/v1/auth/login", json=wrong)).status_code == 401
    delayed = await replica_b("198.51.100.200").post("/api/v1/auth/login", json=right)
    assert delayed.status_code == 429 and 20 <= int(delayed.headers["retry-after"]) <= 30
    assert (await replica_b("192.0.2.60").post("/api/v1/auth/login", json=right)).status_code == 200


async def test_successful_logins_do_not_count_against_the_account_and_address(peers: Any) -> None:
    client = await peers(rate_limit_login="3/minute")
    home = client("192.0.2.60")
    assert (await signup(home, OWNER)).status_code == 201
    for _ in range(6):
        assert (await login(home, PASSWORD)).status_code == 200


async def test_one_address_trying_many_accounts_is_limited(peers: Any) -> None:
    client = await peers(rate_limit_login_address="4/minute")
    stuffer = client("203.0.113.9")
    for n in range(4):
        response = await stuffer.post("/api/v1/auth/login", json={"email": f"u{n}@example.com", "password": "x"})
        assert response.status_code == 401
    response = await stuffer.post("/api/v1/auth/login", json={"email": "u9@example.com", "password": "x"})
    assert response.status_code == 429 and "retry-after" in response.headers


# --- Origin ---------------------------------------------------------------------------------


async def test_auth_posts_from_another_sites_page_are_refused(peers: Any) -> None:
    client = (await peers())("192.0.2.1")
    evil = {"Origin": "https://evil.example"}
    for path in ("signup", "login", "refresh", "logout"):
        refused = await client.post(f"/api/v1/auth/{path}", json={"email": OWNER, "password": PASSWORD}, headers=evil)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "cross_origin" and "OPENCHAT_CORS_ORIGINS" in refused.json()["detail"]
    assert (
        await client.post(
            "/api/v1/auth/signup", json={"email": OWNER, "password": "x" * 10}, headers={"Origin": "null"}
        )
    ).status_code == 403
    # Reading is not refused; nothing was created by the refused sign-up.
    status = await client.get("/api/v1/auth/status", headers=evil)
    assert status.status_code == 200 and status.json()["has_users"] is False

    # The site's own origin, an allowed one (OPENCHAT_CORS_ORIGINS), and no Origin (scripts) work.
    assert (await signup(client, OWNER)).status_code == 201
    for headers in ({"Origin": "http://test"}, {"Origin": "http://localhost:3000"}, {}):
        response = await client.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}, headers=headers)
        assert response.status_code == 200, headers


# --- Through uvicorn ------------------------------------------------------------------------


async def test_through_uvicorn_only_the_apps_trusted_proxies_decide(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auth_mode="required", rate_limit_signup="1/minute", trusted_proxies=[])
    app = create_app(settings, registry=FakeRegistry(settings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await signup(client, "a@example.com", forwarded_for="192.0.2.1")).status_code == 201
        assert (await signup(client, "b@example.com", forwarded_for="192.0.2.2")).status_code == 429


def chunks(total: int, size: int = 64 * 1024) -> Any:
    async def generate() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            yield b" " * min(size, total - sent)
            sent += size

    return generate()


async def test_an_oversized_chunked_body_is_413(make_settings: Callable[..., Settings], make_client: Any) -> None:
    settings = make_settings(max_body_bytes=100_000)
    client = await make_client(settings, FakeRegistry(settings))
    response = await client.post("/api/v1/chat", content=chunks(300_000), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    # A chunked body under the limit is read as usual.
    body = b'{"id": "c1", "messages": [{"role": "user", "content": "hi"}]}'

    async def small() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    ok = await client.post("/api/v1/chat", content=small(), headers={"Content-Type": "application/json"})
    assert ok.status_code == 200 and '"type":"end"' in ok.text.replace(" ", "")


async def test_an_oversized_chunked_body_is_413_through_uvicorn(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(max_body_bytes=100_000)
    app = create_app(settings, registry=FakeRegistry(settings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/chat", content=chunks(300_000), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413 and "larger than 100000 bytes" in response.json()["detail"]


async def test_a_chunked_chat_request_still_notices_the_client_leaving(make_settings: Callable[..., Settings]) -> None:
    """Every POST through the Next.js proxy is chunked, so the body is read by the body limit
    first; the chat must still see the client go away mid-reply (and stop, as it is not resumable)."""
    settings = make_settings()
    app = create_app(settings, registry=FakeRegistry(settings, tokens=[f" t{i}" for i in range(40)], delay=0.02))
    request = json.dumps({"id": "left", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    client_gone = ClientLeavingAfterTokens([request[:20], request[20:]])  # leaves after the second token

    scope = chat_scope(request)
    scope["headers"] = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    async with LifespanManager(app) as manager:
        await manager.app(scope, client_gone.receive, client_gone.send)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            reply = (await client.get("/api/v1/conversations/left")).json()["messages"][-1]
    assert (reply["status"], reply["finish_reason"]) == ("cancelled", "cancelled")
    assert len(reply["content"].split()) < 40
