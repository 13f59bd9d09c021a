"""Shipped packaging stays valid: compose file, Dockerfiles, documented configuration."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_docker_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: run `make test` (it installs the Debian package)"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "--profile", "postgres", "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"backend", "frontend", "postgres"} <= set(services)
    assert services["frontend"]["environment"]["BACKEND_URL"] == "http://backend:8000"
    # Only the frontend is published; the backend (metrics, docs) stays on the internal network.
    assert "ports" not in services["backend"]
    assert [str(port.get("published", port)) for port in services["frontend"]["ports"]] == ["3000"]


@pytest.mark.parametrize("app", ["openchat-backend", "openchat-frontend"])
def test_dockerfiles_are_multi_stage_and_run_as_non_root(app: str) -> None:
    dockerfile = (ROOT / "apps" / app / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_every_setting_is_documented_in_env_example() -> None:
    documented = (ROOT / ".env.example").read_text()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        name = alias.choices[0] if alias is not None and hasattr(alias, "choices") else None
        assert name and re.search(rf"^#?\s*{name}=", documented, re.MULTILINE), f"{name} is not in .env.example"


def test_make_and_the_docker_image_build_the_same_portable_engine() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "apps" / "openchat-backend" / "Dockerfile").read_text()
    assert re.search(r"^ENGINE_VARIANT \?= portable$", makefile, re.MULTILINE)
    assert "scripts/build-engine.sh /opt/engine portable" in dockerfile
    assert "OPENCHAT_ENGINE_BIN=/opt/engine/bin/llama-server" in dockerfile
    # Both go through the one script, whose portable flags never assume the build machine's CPU.
    script = (ROOT / "apps" / "openchat-backend" / "scripts" / "build-engine.sh").read_text()
    portable = re.search(r"^\s*portable\) flags\+=\((.*)\) ;;$", script, re.MULTILINE)
    assert portable and portable.group(1) == "-DGGML_NATIVE=OFF"
