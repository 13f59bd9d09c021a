"""Liveness, readiness and metrics."""

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from app.api.deps import get_session_factory
from app.core.config import Settings
from app.main import create_app
from tests.conftest import free_port
from tests.fakes import FakeRegistry


async def test_healthz_and_readyz_when_everything_is_there(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings))
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "default_model": "ok: fake-model"}
    assert ready.json()["engines"] == {}  # fake models run no local engine


async def test_readyz_is_503_without_any_model(make_settings: Any, make_client: Any, tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    client = await make_client(make_settings(models_dir=empty))
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "make setup" in ready.json()["checks"]["default_model"]
    # Chat says what to do instead of failing obscurely.
    response = await client.post("/api/v1/chat", json={"id": "x", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 500 and "make setup" in response.json()["detail"]


async def test_metrics_count_requests_and_reply_timings(make_settings: Any, make_client: Any) -> None:
    settings = make_settings()
    client = await make_client(settings, FakeRegistry(settings))
    await client.post("/api/v1/chat", json={"id": "m", "messages": [{"role": "user", "content": "hi"}]})
    text = (await client.get("/metrics")).text
    assert 'openchat_http_requests_total{handler="chat",method="POST",status="200"}' in text
    assert 'openchat_chat_replies_total{finish_reason="stop",model="fake-model"}' in text
    assert 'openchat_time_to_first_token_seconds_count{model="fake-model"}' in text
    assert 'openchat_tokens_per_second_count{model="fake-model"}' in text
    assert "openchat_queue_length" in text


OPS_TOKEN = "operator-token-0123456789-abcdefghijklmnop"
DOCS = ["/openapi.json", "/docs", "/redoc"]


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()}


async def test_api_docs_are_off_by_default(make_settings: Any, make_client: Any) -> None:
    settings = make_settings(api_docs_access=Settings.model_fields["api_docs_access"].default)
    client = await make_client(settings, FakeRegistry(settings))
    for path in DOCS:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


async def test_api_docs_open_or_behind_the_operator_token(make_settings: Any, make_client: Any) -> None:
    open_settings = make_settings(api_docs_access="open")
    open_client = await make_client(open_settings, FakeRegistry(open_settings))
    assert (await open_client.get("/openapi.json")).json()["info"]["title"] == "OpenChat"
    assert "swagger-ui" in (await open_client.get("/docs")).text
    assert "redoc" in (await open_client.get("/redoc")).text

    settings = make_settings(api_docs_access="token", ops_token=OPS_TOKEN)
    client = await make_client(settings, FakeRegistry(settings))
    for path in DOCS:
        refused = await client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic")  # the browser asks for it
        assert "OPENCHAT_OPS_TOKEN" in refused.json()["detail"]
        assert (await client.get(path, headers=basic("wrong"))).status_code == 401
        assert (await client.get(path, headers=basic(OPS_TOKEN))).status_code == 200, path
    schema = await client.get("/openapi.json", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert "/api/v1/chat" in schema.json()["paths"]


async def test_metrics_open_off_or_behind_the_operator_token(make_settings: Any, make_client: Any) -> None:
    default = make_settings(metrics_access=Settings.model_fields["metrics_access"].default)
    assert (await (await make_client(default, FakeRegistry(default))).get("/metrics")).status_code == 200

    off = make_settings(metrics_access="off")
    assert (await (await make_client(off, FakeRegistry(off))).get("/metrics")).status_code == 404

    settings = make_settings(metrics_access="token", ops_token=OPS_TOKEN)
    client = await make_client(settings, FakeRegistry(settings))
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert scraped.status_code == 200 and "openchat_http_requests_total" in scraped.text
    assert (await client.get("/metrics", headers=basic(OPS_TOKEN))).status_code == 200


def test_token_access_without_a_strong_operator_token_is_refused_at_start(make_settings: Any) -> None:
    for short in (None, "short"):
        with pytest.raises(ValidationError, match="set OPENCHAT_OPS_TOKEN"):
            make_settings(metrics_access="token", ops_token=short)


async def test_readyz_says_the_database_is_down_without_the_drivers_message(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    app = create_app(settings, registry=FakeRegistry(settings))
    # A real driver failing to connect: PostgreSQL on a port where nothing listens.
    port = free_port()
    nowhere = create_engine(f"postgresql+psycopg://openchat:hunter2@127.0.0.1:{port}/openchat")
    app.dependency_overrides[get_session_factory] = lambda: sessionmaker(bind=nowhere)

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "error: unreachable"
    assert str(port) not in ready.text and "connection" not in ready.text.lower()
    assert any(str(port) in record.getMessage() for record in caplog.records)  # the detail is in the log
    nowhere.dispose()
