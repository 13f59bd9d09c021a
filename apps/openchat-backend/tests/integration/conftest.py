"""A real uvicorn server on loopback, serving the real bundled models."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.llm.engine import EngineProcess
from app.main import create_app
from tests.conftest import free_port


class LiveUrl(str):
    """The server's base URL, with its app for tests that look at the engines behind it."""

    app: FastAPI

    def engine(self, model_id: str) -> EngineProcess:
        engine = self.app.state.registry.engines.find(model_id)
        assert engine is not None, f"no engine was started for {model_id}"
        return engine  # type: ignore[no-any-return]


def engine_slots(engine: EngineProcess) -> list[dict[str, Any]]:
    """The engine's own view of its slots (llama-server's /slots), not the backend's bookkeeping."""
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    response = httpx.get(f"{engine.base_url}/slots", headers=headers, timeout=10)
    response.raise_for_status()
    slots: list[dict[str, Any]] = response.json()
    return slots


def engine_tokens_generated(engine: EngineProcess) -> int:
    """Every token the engine has generated since it started (llama-server's own counter)."""
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    text = httpx.get(f"{engine.base_url}/metrics", headers=headers, timeout=10).text
    line = next(line for line in text.splitlines() if line.startswith("llamacpp:tokens_predicted_total"))
    return int(float(line.split()[1]))


def engine_idle(engine: EngineProcess) -> bool:
    return not any(slot["is_processing"] for slot in engine_slots(engine))


@pytest.fixture
def live_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveUrl]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: Any) -> LiveUrl:
        app = create_app(make_settings(**overrides))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        url = LiveUrl(f"http://127.0.0.1:{port}")
        url.app = app
        return url

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)
