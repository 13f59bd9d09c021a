"""Sign-up, login, JWT verification, refresh rotation and reuse detection, logout, auth-off mode."""

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from app.core.config import Settings
from app.core.security import AUDIENCE, ISSUER, is_weak_secret, load_secret_key
from tests.api.test_refresh_tokens import age_rotations
from tests.conftest import signup
from tests.fakes import FakeRegistry

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(auth_mode="required")  # type: ignore[no-any-return]


@pytest.fixture
async def client(settings: Settings, make_client: Any) -> httpx.AsyncClient:
    return await make_client(settings, FakeRegistry(settings))  # type: ignore[no-any-return]


def secret_of(settings: Settings) -> str:
    """The signing key the app generated on first start."""
    return (settings.data_dir / "secret_key").read_text().strip()


def use_refresh_cookie(client: httpx.AsyncClient, value: str | None) -> None:
    client.cookies.clear()
    if value:
        client.cookies.set("openchat_refresh", value, path="/api/v1/auth")


async def test_signup_then_me_and_login_normalises_email(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/signup", json={"email": "  Ada@Example.COM ", "password": PASSWORD})
    assert response.status_code == 201
    token = response.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 15 * 60
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/api/v1/auth" in cookie
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["email"] == "ada@example.com"

    login = await client.post("/api/v1/auth/login", json={"email": "ADA@example.com", "password": PASSWORD})
    assert login.status_code == 200 and login.json()["access_token"]


async def test_signup_rules_and_duplicates(client: httpx.AsyncClient) -> None:
    short = await client.post("/api/v1/auth/signup", json={"email": "a@b.co", "password": "short"})
    assert short.status_code == 400 and short.json()["code"] == "weak_password"
    bad_email = await client.post("/api/v1/auth/signup", json={"email": "not-an-email", "password": PASSWORD})
    assert bad_email.status_code == 400 and bad_email.json()["code"] == "invalid_email"
    await signup(client, "dup@example.com")
    again = await client.post("/api/v1/auth/signup", json={"email": "DUP@example.com", "password": PASSWORD})
    assert again.status_code == 409 and again.json()["code"] == "email_taken"


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: httpx.AsyncClient) -> None:
    await signup(client, "bob@example.com")
    wrong = await client.post("/api/v1/auth/login", json={"email": "bob@example.com", "password": "nope nope nope"})
    unknown = await client.post("/api/v1/auth/login", json={"email": "who@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_refresh_rotates_and_reuse_revokes_the_whole_login(client: httpx.AsyncClient, settings: Settings) -> None:
    await signup(client, "carol@example.com")
    first_cookie = client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert first_cookie

    rotated = await client.post("/api/v1/auth/refresh")
    assert rotated.status_code == 200 and rotated.json()["access_token"]
    second_cookie = client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert second_cookie and second_cookie != first_cookie

    # The old token comes back after the grace window (stolen?): refused, and the current one dies with it.
    age_rotations(settings, settings.refresh_grace_s + 5)
    use_refresh_cookie(client, first_cookie)
    reused = await client.post("/api/v1/auth/refresh")
    assert reused.status_code == 401 and reused.json()["code"] == "refresh_reused"
    use_refresh_cookie(client, second_cookie)
    current = await client.post("/api/v1/auth/refresh")
    assert current.status_code == 401


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    await signup(client)
    cookie = client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert (await client.post("/api/v1/auth/logout")).status_code == 204
    use_refresh_cookie(client, cookie)
    assert (await client.post("/api/v1/auth/refresh")).status_code == 401


TOKEN_DETAILS = {
    "Authentication required: send 'Authorization: Bearer <access token>'.",
    "The access token has expired; refresh it or log in again.",
    "The access token uses an algorithm that is not accepted.",
    "The access token's signature is not valid.",
    "The access token is malformed; send it exactly as the server issued it.",
    "The access token was not issued for this API.",
}


def _forge(secret: str, **changes: Any) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "x",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "type": "access",
    }
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_bad_tokens_are_401_with_a_clear_detail(client: httpx.AsyncClient, settings: Settings) -> None:
    headers = await signup(client)
    token = headers["Authorization"].split()[1]
    secret = secret_of(settings)
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]

    header, payload, signature = token.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["sub"] = "someone-else"
    tampered = ".".join(
        [header, base64.urlsafe_b64encode(json.dumps(tampered_payload).encode()).decode().rstrip("="), signature]
    )
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    cases = {
        "missing": None,
        "garbage": "not.a.token",
        "tampered": tampered,
        "alg none": f"{none_header}.{payload}.",
        "other algorithm": jwt.encode({"sub": user_id, "iss": ISSUER, "aud": AUDIENCE}, secret, algorithm="HS512"),
        "expired": _forge(secret, sub=user_id, exp=datetime.now(UTC) - timedelta(seconds=5)),
        "wrong audience": _forge(secret, sub=user_id, aud="someone-else"),
        "wrong issuer": _forge(secret, sub=user_id, iss="evil"),
        "wrong key": _forge("another-secret-that-is-long-enough-0123456789", sub=user_id),
    }
    for case, bad in cases.items():
        response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {bad}"} if bad else {})
        assert response.status_code == 401, case
        assert response.headers["www-authenticate"] == "Bearer"
        assert len(response.json()["detail"]) > 10, case
        # One of our fixed sentences, never the decoder's own words ("Not enough segments"...).
        assert response.json()["detail"] in TOKEN_DETAILS, (case, response.json()["detail"])
    expired = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {cases['expired']}"})
    assert "expired" in expired.json()["detail"]
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200


async def test_auth_off_needs_no_token(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(auth_mode="off")
    client = await make_client(settings, FakeRegistry(settings))
    response = await client.post("/api/v1/chat", json={"id": "solo", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    listed = (await client.get("/api/v1/conversations")).json()["conversations"]
    assert [c["id"] for c in listed] == ["solo"]
    assert (await client.get("/api/v1/auth/me")).json()["email"] == "local@openchat.invalid"


async def test_secret_key_is_generated_once_and_kept_with_the_data(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(auth_mode="required")
    first = await make_client(settings, FakeRegistry(settings))
    token = (await signup(first))["Authorization"]
    key_file = settings.data_dir / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    # A restarted server keeps the key, so logged-in users stay logged in.
    second = await make_client(settings, FakeRegistry(settings))
    assert (await second.get("/api/v1/auth/me", headers={"Authorization": token})).status_code == 200


def test_workers_starting_together_write_one_key_atomically(make_settings: Any) -> None:
    settings = make_settings(auth_mode="required")
    workers = 8
    barrier = threading.Barrier(workers)

    def start() -> str:
        barrier.wait(timeout=30)
        return load_secret_key(settings)

    with ThreadPoolExecutor(workers) as pool:
        keys = list(pool.map(lambda _: start(), range(workers)))

    key_file = settings.data_dir / "secret_key"
    assert set(keys) == {key_file.read_text().strip()}
    assert not is_weak_secret(keys[0])
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert [path.name for path in settings.data_dir.iterdir()] == ["secret_key"]  # no temporary file left


@pytest.mark.parametrize("content", ["", "changeme", "short-key"])
def test_a_weak_key_file_is_refused_outside_development(make_settings: Any, content: str) -> None:
    settings = make_settings(auth_mode="required", environment="production")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "secret_key").write_text(content)
    with pytest.raises(RuntimeError, match="too weak") as refused:
        load_secret_key(settings)
    assert "Delete the file" in str(refused.value) and str(settings.data_dir) in str(refused.value)
    # Development still starts, with a warning.
    assert load_secret_key(make_settings(auth_mode="required", environment="development")) == content


async def test_weak_secret_is_refused_in_production(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(auth_mode="required", environment="production", secret_key="changeme")
    with pytest.raises(RuntimeError, match="too weak"):
        await make_client(settings, FakeRegistry(settings))


async def test_rate_limits_answer_429_with_retry_after(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(
        auth_mode="required", rate_limit_login="3/minute", rate_limit_signup="2/minute", rate_limit_chat="2/minute"
    )
    client = await make_client(settings, FakeRegistry(settings))
    headers = await signup(client, "limits@example.com")

    # Login: failures per account and address, then even the right password waits.
    for _ in range(3):
        await client.post("/api/v1/auth/login", json={"email": "limits@example.com", "password": "wrong wrong"})
    blocked = await client.post("/api/v1/auth/login", json={"email": "limits@example.com", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json()["code"] == "rate_limited"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60

    # Sign-up: per IP (one was used above).
    await signup(client)
    too_many = await client.post("/api/v1/auth/signup", json={"email": "third@example.com", "password": PASSWORD})
    assert too_many.status_code == 429 and "retry-after" in too_many.headers

    # Chat: per user.
    body = {"id": "rl", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert (await client.post("/api/v1/chat", json=body, headers=headers)).status_code == 200
    limited = await client.post("/api/v1/chat", json=body, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


async def test_replicas_sharing_redis_share_the_chat_limit(
    make_settings: Any, make_client: Any, redis_url: str
) -> None:
    settings = make_settings(auth_mode="off", rate_limit_chat="2/minute", redis_url=redis_url)
    replica_a = await make_client(settings, FakeRegistry(settings))
    replica_b = await make_client(settings, FakeRegistry(settings))
    body = {"id": "shared", "messages": [{"role": "user", "content": "hi"}]}
    assert (await replica_a.post("/api/v1/chat", json=body)).status_code == 200
    assert (await replica_b.post("/api/v1/chat", json=body)).status_code == 200
    refused = await replica_a.post("/api/v1/chat", json=body)
    assert refused.status_code == 429 and "retry-after" in refused.headers


async def test_status_tells_a_new_install_from_one_with_accounts(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/auth/status")).json() == {"mode": "required", "has_users": False}
    await signup(client)
    assert (await client.get("/api/v1/auth/status")).json() == {"mode": "required", "has_users": True}


async def test_a_token_that_outlived_its_account_is_refused_by_chat_and_me(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    import sqlalchemy

    headers = await signup(client, "gone@example.com")
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DELETE FROM users WHERE email = 'gone@example.com'"))

    chat = await client.post(
        "/api/v1/chat", json={"id": "after-delete", "messages": [{"role": "user", "content": "Hi"}]}, headers=headers
    )
    me = await client.get("/api/v1/auth/me", headers=headers)

    for response in (chat, me):
        assert response.status_code == 401
        assert response.json()["detail"] == "The account for this token no longer exists."
    with engine.connect() as connection:
        stored = connection.execute(sqlalchemy.text("SELECT count(*) FROM conversations")).scalar_one()
    engine.dispose()
    assert stored == 0
