"""Liveness, readiness and metrics."""

from pathlib import Path
from typing import Any

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
