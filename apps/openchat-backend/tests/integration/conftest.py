"""A real uvicorn server on loopback, serving the real bundled models."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from app.core.config import Settings
from app.main import create_app
from tests.conftest import free_port


@pytest.fixture
def live_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., str]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: Any) -> str:
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
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)
