"""Missing or corrupt model files: each is named with what is wrong, in the log at start and in
/readyz, and the models whose files are sound keep serving (the real 0.5B model)."""

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_MODEL, MODELS_DIR
from tests.integration.test_local_model import read_stream

CONFIGURED = "qwen2.5-coder-1.5b-instruct"


@pytest.fixture
def damaged_models_dir(tmp_path: Path) -> Path:
    """The sound 0.5B model; the configured default cut short in its header (an interrupted copy);
    a file of garbage; a link to a file that is gone."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{FAST_MODEL}.gguf").symlink_to(MODELS_DIR / f"{FAST_MODEL}.gguf")
    with (MODELS_DIR / f"{CONFIGURED}.gguf").open("rb") as whole:
        (folder / f"{CONFIGURED}.gguf").write_bytes(whole.read(1_000_000))
    (folder / "garbage.gguf").write_bytes(b"this is not a model" * 100)
    (folder / "gone.gguf").symlink_to(tmp_path / "deleted.gguf")
    return folder


def test_damaged_model_files_are_reported_and_the_sound_model_serves(
    live_server: Any, damaged_models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="app.llm.registry")
    url = live_server(models_dir=damaged_models_dir, default_model=CONFIGURED)
    truncated = f"{CONFIGURED}.gguf: file is truncated (its GGUF header ends early)"
    problems = {
        CONFIGURED: truncated,
        "garbage": "garbage.gguf: file is not a valid GGUF (bad magic)",
        "gone": "gone.gguf: file is missing (a link to a file that is gone?)",
    }
    # The log at start names each file and what is wrong with it, once.
    logged = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
    assert sorted(logged) == sorted(
        f"Model {model} cannot be used and is not listed: {why}" for model, why in problems.items()
    )

    with httpx.Client(base_url=url, timeout=120) as client:
        ready = client.get("/readyz")
        # Ready: a sound model serves; readiness says which, and why the configured one cannot.
        assert ready.status_code == 200
        assert ready.json()["checks"]["default_model"] == (
            f"ok: {FAST_MODEL} (the configured default {CONFIGURED} cannot be used: {truncated})"
        )
        assert ready.json()["model_problems"] == problems

        models = client.get("/api/v1/models").json()["models"]
        assert [(m["id"], m["default"]) for m in models] == [(FAST_MODEL, True)]

        # Asked for by name, a damaged model says what is wrong; the sound one replies.
        refused = client.post(
            "/api/v1/chat",
            json={"id": "m1", "messages": [{"role": "user", "content": "Hi"}], "data": {"model": "garbage"}},
        )
        assert refused.status_code == 500 and refused.json()["code"] == "model_unavailable"
        assert refused.json()["detail"] == (
            "The model garbage cannot be used: garbage.gguf: file is not a valid GGUF (bad magic). Pick another model."
        )
        body = {"id": "m2", "messages": [{"role": "user", "content": "Say hello."}], "data": {"max_tokens": 8}}
        found, _ = read_stream(client, body)
        assert found[0]["model"] == FAST_MODEL and found[-1]["type"] == "end"


def test_a_missing_default_model_is_named_in_readyz(live_server: Any, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{FAST_MODEL}.gguf").symlink_to(MODELS_DIR / f"{FAST_MODEL}.gguf")
    url = live_server(models_dir=folder, default_model=CONFIGURED)
    ready = httpx.get(f"{url}/readyz", timeout=30).json()
    assert ready["checks"]["default_model"] == (
        f"ok: {FAST_MODEL} (the configured default {CONFIGURED} cannot be used: "
        f"{CONFIGURED}.gguf: file is missing: run `make setup` to assemble it)"
    )
