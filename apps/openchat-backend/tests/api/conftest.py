"""The fake engine of benchmarks/fake_engine.py (its model id and its replies, for the tests that
serve it in process) and processes: the fake engine, and backends (`uvicorn app:app`, as deployed)
in front of it, reached through the real LangChain chat model."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.fake_engine import MODEL, WORD
from tests.conftest import answers, free_port, wait_until

FAKE_MODEL_ID = f"openai-compatible/{MODEL}"


def fake_reply(tokens: int) -> str:
    """The fake engine's whole reply of `tokens` tokens."""
    return "".join(f" {WORD}{i}" if i else WORD for i in range(tokens))


@pytest.fixture
def start_fake_engine(start_process: Callable[..., subprocess.Popen[bytes]]) -> Callable[[int, int], str]:
    """Starts a fake engine whose replies are `tokens` long, one token each `delay_ms`; returns its URL."""

    def start(tokens: int, delay_ms: int) -> str:
        port = free_port()
        command = [sys.executable, "-m", "benchmarks.fake_engine", "--port", str(port)]
        process = start_process([*command, "--tokens", str(tokens), "--delay-ms", str(delay_ms)])
        url = f"http://127.0.0.1:{port}/v1"
        wait_until(lambda: answers(process, f"{url}/models"), "the fake engine started")
        return url

    return start


@pytest.fixture
def backend_env() -> dict[str, str]:
    """More environment for the backends of `start_backend`: a test module overrides it."""
    return {}


@pytest.fixture
def start_backend(
    tmp_path: Path, start_process: Callable[..., subprocess.Popen[bytes]], backend_env: dict[str, str]
) -> Callable[[str, str], tuple[subprocess.Popen[bytes], str]]:
    """Starts a backend process on a database and a fake engine; returns it and its URL."""
    models = tmp_path / "no-local-models"
    models.mkdir()

    def start(database_url: str, engine_url: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "OPENCHAT_AUTH": "off",
            "OPENCHAT_DATA_DIR": str(tmp_path / "data"),
            "OPENCHAT_MODELS_DIR": str(models),
            "OPENCHAT_DEFAULT_MODEL": FAKE_MODEL_ID,
            "OPENAI_COMPATIBLE_BASE_URL": engine_url,
            "OPENCHAT_WARM_UP": "false",
            "OPENCHAT_GENERATE_TITLES": "false",
            **backend_env,
        }
        command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
        process = start_process([*command, "--log-level", "warning"], env=env)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(process, f"{url}/healthz"), "the backend started")
        return process, url

    return start
