"""Refresh-token rotation under concurrency (two tabs refreshing at once, a stolen token raced
against its owner), on SQLite and PostgreSQL; access tokens end with their login."""

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from app import crud
from app.core.config import Settings
from app.core.db import make_engine, run_migrations
from app.core.security import hash_refresh_token
from app.models import RefreshToken
from tests.conftest import signup
from tests.fakes import FakeRegistry

REFRESH = "/api/v1/auth/refresh"
PARALLEL = 5


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(auth_mode="required", database_url=database_url)


@pytest.fixture
async def app_client(settings: Settings, make_client: Any) -> httpx.AsyncClient:
    return await make_client(settings, FakeRegistry(settings))  # type: ignore[no-any-return]


def tab(client: httpx.AsyncClient, refresh_token: str) -> httpx.AsyncClient:
    """Another client of the same app holding this refresh cookie (a browser tab)."""
    other = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    other.cookies.set("openchat_refresh", refresh_token, path="/api/v1/auth")
    return other


def cookie(response: httpx.Response) -> str | None:
    return response.cookies.get("openchat_refresh")


def tokens(settings: Settings) -> list[RefreshToken]:
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    with Session(engine) as session:
        rows = list(session.scalars(sqlalchemy.select(RefreshToken).order_by(RefreshToken.created_at)))
    engine.dispose()
    return rows


def age_rotations(settings: Settings, seconds: float) -> None:
    """Move every rotation `seconds` into the past: the grace window is over, without waiting."""
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    with Session(engine) as session:
        session.execute(
            sqlalchemy.update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
        session.commit()
    engine.dispose()


@pytest.fixture
def all_read_before_any_rotates(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    """Holds each of `parties` refreshes of one token right after it read the token (still
    unused), until all have: the interleaving that let all of them rotate it before the fix."""

    def arrange(token_hash: str, parties: int) -> None:
        barrier = threading.Barrier(parties)
        read = crud.get_refresh_token

        def read_then_wait(session: Session, wanted: str) -> RefreshToken | None:
            record = read(session, wanted)
            if wanted == token_hash:
                barrier.wait(timeout=30)
            return record

        monkeypatch.setattr(crud, "get_refresh_token", read_then_wait)

    return arrange


async def test_parallel_refreshes_with_one_token_all_get_the_same_successor(
    app_client: httpx.AsyncClient, settings: Settings, all_read_before_any_rotates: Callable[[str, int], None]
) -> None:
    await signup(app_client, "tabs@example.com")
    first = app_client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert first
    all_read_before_any_rotates(hash_refresh_token(first), PARALLEL)

    tabs = [tab(app_client, first) for _ in range(PARALLEL)]
    responses = await asyncio.gather(*(t.post(REFRESH) for t in tabs))

    assert [r.status_code for r in responses] == [200] * PARALLEL, [r.text for r in responses]
    successors = {cookie(r) for r in responses}
    assert len(successors) == 1 and first not in successors
    # One rotation: the presented token, used once, and its one successor; nothing revoked.
    rows = tokens(settings)
    assert len(rows) == 2
    assert rows[0].used_at is not None and all(row.revoked_at is None for row in rows)
    # Every tab's access token works, and so does the shared successor.
    for response in responses:
        me = await app_client.get("/api/v1/auth/me", headers=bearer(response))
        assert me.status_code == 200
    successor = successors.pop()
    assert successor
    again = await tab(app_client, successor).post(REFRESH)
    assert again.status_code == 200 and cookie(again) not in (first, successor)


async def test_fifteen_rounds_of_three_refreshes_at_once_never_fork_or_end_the_login(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    """The issue's reproduction, without any arranged interleaving: three tabs, fifteen times."""
    await signup(app_client, "rounds@example.com")
    current = app_client.cookies.get("openchat_refresh", path="/api/v1/auth")
    for round_ in range(15):
        assert current
        responses = await asyncio.gather(*(tab(app_client, current).post(REFRESH) for _ in range(3)))
        assert [r.status_code for r in responses] == [200, 200, 200], (round_, [r.text for r in responses])
        successors = {cookie(r) for r in responses}
        assert len(successors) == 1 and current not in successors, round_
        current = successors.pop()
    rows = tokens(settings)
    assert len(rows) == 16 and all(row.revoked_at is None for row in rows)


async def test_reuse_after_the_grace_window_still_ends_the_login(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = await signup(app_client, "thief@example.com")
    stolen = app_client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert stolen
    owner = await tab(app_client, stolen).post(REFRESH)
    assert owner.status_code == 200
    age_rotations(settings, settings.refresh_grace_s + 5)

    reused = await tab(app_client, stolen).post(REFRESH)

    assert reused.status_code == 401 and reused.json()["code"] == "refresh_reused"
    assert all(row.revoked_at is not None for row in tokens(settings))
    owners_next = await tab(app_client, cookie(owner) or "").post(REFRESH)
    assert owners_next.status_code == 401
    # The login's access tokens stop working at once, not when they expire.
    for access in (headers, bearer(owner)):
        refused = await app_client.get("/api/v1/auth/me", headers=access)
        assert refused.status_code == 401 and "log in again" in refused.json()["detail"]


async def test_a_tab_late_with_an_old_token_gets_the_newest_successor(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    await signup(app_client, "slow-tab@example.com")
    first = app_client.cookies.get("openchat_refresh", path="/api/v1/auth")
    assert first
    # Tab A refreshes twice while tab B's refresh of the first token is still on its way.
    second = cookie(await tab(app_client, first).post(REFRESH))
    third = cookie(await tab(app_client, second or "").post(REFRESH))
    late = await tab(app_client, first).post(REFRESH)

    assert late.status_code == 200 and cookie(late) == third
    assert len(tokens(settings)) == 3  # the late one rotated nothing
    # Both tabs now hold the live token: the next refreshes work after the window too.
    age_rotations(settings, settings.refresh_grace_s + 5)
    assert (await tab(app_client, third or "").post(REFRESH)).status_code == 200


def test_only_one_of_two_rotations_of_the_same_token_wins(database_url: str) -> None:
    """The check-and-mark itself: two requests that both read the token as unused."""
    engine = make_engine(database_url)
    run_migrations(engine)
    expires = datetime.now(UTC) + timedelta(days=1)
    with Session(engine, expire_on_commit=False) as setup:
        user = crud.create_user(setup, "race@example.com", "x")
        crud.start_refresh_family(setup, user.id, "h0", expires)
    with Session(engine) as one, Session(engine) as two:
        seen_by_one, seen_by_two = crud.get_refresh_token(one, "h0"), crud.get_refresh_token(two, "h0")
        assert seen_by_one and seen_by_two and seen_by_one.used_at is None and seen_by_two.used_at is None
        one.commit()
        two.commit()  # both read it unused, then both try to rotate it
        won = [crud.rotate_refresh_token(one, seen_by_one, "h1", expires)]
        won.append(crud.rotate_refresh_token(two, seen_by_two, "h1-other", expires))
    assert won == [True, False]
    with Session(engine) as check:
        hashes = set(check.scalars(sqlalchemy.select(RefreshToken.token_hash)))
    assert hashes == {"h0", "h1"}
    engine.dispose()


async def test_logout_ends_the_access_tokens_of_that_login_only(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    kept = await signup(app_client, "two-logins@example.com")
    body = {"email": "two-logins@example.com", "password": "correct horse battery"}
    other_login = await app_client.post("/api/v1/auth/login", json=body)
    ended = bearer(other_login)

    assert (await app_client.post("/api/v1/auth/logout")).status_code == 204  # the cookie of the second login

    chat = {"id": "after-logout", "messages": [{"role": "user", "content": "Hi"}]}
    for_ended = await app_client.post("/api/v1/chat", json=chat, headers=ended)
    assert for_ended.status_code == 401 and "logged out" in for_ended.json()["detail"]
    assert (await app_client.get("/api/v1/auth/me", headers=ended)).status_code == 401
    assert (await app_client.get("/api/v1/auth/me", headers=kept)).status_code == 200


async def test_replicas_sharing_redis_share_ended_logins(make_settings: Any, make_client: Any, redis_url: str) -> None:
    settings = make_settings(auth_mode="required", redis_url=redis_url)
    replica_a = await make_client(settings, FakeRegistry(settings))
    replica_b = await make_client(settings, FakeRegistry(settings))
    headers = await signup(replica_a)
    assert (await replica_b.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await replica_a.post("/api/v1/auth/logout")).status_code == 204
    assert (await replica_b.get("/api/v1/auth/me", headers=headers)).status_code == 401


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (200, 201), response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
