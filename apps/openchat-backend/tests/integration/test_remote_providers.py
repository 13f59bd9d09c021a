"""The together and openai-compatible providers against a real OpenAI-compatible server.

llama.cpp's llama-server (the local engine's own binary) serves the bundled 0.5B model on
loopback; the providers talk to it exactly as they would to Together AI, vLLM or Ollama.
"""

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import FAST_MODEL, MODELS_DIR, free_port
from tests.integration.test_local_model import read_stream

ALIAS = "qwen-remote"


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    port = free_port()
    engine = Settings(_env_file=None).engine_binary  # type: ignore[call-arg]
    command = [str(engine), "--model", str(MODELS_DIR / f"{FAST_MODEL}.gguf"), "--alias", ALIAS]
    command += ["--host", "127.0.0.1", "--port", str(port), "--ctx-size", "4096", "--parallel", "1", "--no-webui"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"llama-server did not start: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize(
    ("provider", "settings"),
    [
        ("together", lambda url: {"together_api_key": "test-key", "together_base_url": url}),
        ("openai-compatible", lambda url: {"openai_compatible_base_url": url}),
    ],
)
def test_remote_provider_lists_and_streams(live_server: Any, openai_server: str, provider: str, settings: Any) -> None:
    url = live_server(**settings(openai_server))
    with httpx.Client(base_url=url, timeout=120) as client:
        models = client.get("/api/v1/models").json()["models"]
        remote = [m for m in models if m["provider"] == provider]
        assert [m["id"] for m in remote] == [f"{provider}/{ALIAS}"]
        assert any(m["provider"] == "local" and m["default"] for m in models)

        body = {
            "id": f"remote-{provider}",
            "messages": [{"role": "user", "content": "Count from one to ten in words."}],
            "data": {"model": f"{provider}/{ALIAS}", "temperature": 0.1, "max_tokens": 24},
        }
        found, reads = read_stream(client, body)
        tokens = [e["content"] for e in found if e["type"] == "token"]
        assert found[0] == {**found[0], "type": "start", "model": f"{provider}/{ALIAS}"}
        assert len(tokens) >= 5 and reads >= 3
        end = found[-1]
        assert end["type"] == "end"
        assert end["usage"]["completion_tokens"] >= 5 and end["usage"]["prompt_tokens"] > 5
        # max_tokens reached the server: 24 tokens at most.
        assert end["usage"]["completion_tokens"] <= 24
        stored = client.get(f"/api/v1/conversations/remote-{provider}").json()["messages"][-1]
        assert stored["content"] == "".join(tokens) and stored["model"] == f"{provider}/{ALIAS}"


def test_together_falls_back_to_a_curated_list_when_unreachable(live_server: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    url = live_server(together_api_key="test-key", together_base_url=closed)
    models = httpx.get(f"{url}/api/v1/models", timeout=30).json()["models"]
    together = [m["id"] for m in models if m["provider"] == "together"]
    assert "together/meta-llama/Llama-3.3-70B-Instruct-Turbo" in together
