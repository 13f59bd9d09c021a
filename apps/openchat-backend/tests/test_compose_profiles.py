"""Every docker-compose profile validates (`docker-compose config`, no engine needed) and says what
docs/deployment.md says: the embedded default, `scale` (PostgreSQL, Redis, nginx, API replicas
without local models, a llama.cpp inference server) and `scale` + `vllm`."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]


def compose_config(profiles: list[str], env_file: str | None = None) -> dict[str, Any]:
    """The services these profiles start, as docker-compose renders them (it validates the file)."""
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: run `make test` (it installs the Debian package)"
    command = [compose, "-f", str(ROOT / "docker-compose.yml")]
    command += [option for profile in profiles for option in ("--profile", profile)]
    command += ["--env-file", str(ROOT / "deploy" / env_file)] if env_file else []
    checked = subprocess.run([*command, "config", "-q"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert checked.returncode == 0, checked.stderr
    rendered = subprocess.run([*command, "config"], capture_output=True, text=True, cwd=ROOT, check=True)
    services: dict[str, Any] = yaml.safe_load(rendered.stdout)["services"]
    # `config` lists every service; those of other profiles do not start.
    return {name: s for name, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}


def published(services: dict[str, Any]) -> dict[str, list[str]]:
    return {
        name: [str(port.get("published", port)) if isinstance(port, dict) else str(port) for port in service["ports"]]
        for name, service in services.items()
        if service.get("ports")
    }


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", service.get("scale", 1)))


def test_default_is_the_embedded_backend_and_the_frontend() -> None:
    services = compose_config([])
    assert set(services) == {"backend", "frontend"}
    assert replicas(services["backend"]) == 1
    assert services["backend"]["build"]["args"]["BUNDLED_MODELS"] == "baked"
    assert services["frontend"]["environment"]["BACKEND_URL"] == "http://backend:8000"
    assert published(services) == {"frontend": ["3000"]}


def test_scale_profile_runs_replicas_behind_nginx_on_postgres_redis_and_an_inference_server() -> None:
    services = compose_config(["scale"], "scale.env")
    assert {"postgres", "redis", "lb", "api", "inference"} <= set(services)
    assert replicas(services["backend"]) == 0  # the embedded backend gives way to the replicas
    assert replicas(services["api"]) >= 2 and replicas(services["inference"]) == 1
    api = services["api"]
    assert api["build"]["args"]["BUNDLED_MODELS"] == "mounted"
    assert api["environment"]["OPENCHAT_LOCAL_MODELS"] == "off"
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert api["environment"]["OPENAI_COMPATIBLE_BASE_URL"] == "http://inference:8080/v1"
    assert "/opt/engine/bin/llama-server" in services["inference"]["command"]
    assert services["frontend"]["environment"]["BACKEND_URL"] == "http://lb:8080"
    assert published(services) == {"frontend": ["3000"]}
    # nginx gets the shipped configuration: unbuffered streaming, long read timeout.
    mounted = {
        volume.split(":")[1] if isinstance(volume, str) else volume["target"] for volume in services["lb"]["volumes"]
    }
    assert {"/etc/nginx/nginx.conf", "/etc/nginx/openchat-api.conf"} <= mounted
    proxy = (ROOT / "deploy" / "nginx" / "openchat-api.conf").read_text()
    assert "proxy_buffering off;" in proxy and "proxy_read_timeout 900s;" in proxy
    assert "server api:8000" in (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()


def test_vllm_profile_replaces_the_cpu_inference_server_with_vllm_on_gpus() -> None:
    services = compose_config(["scale", "vllm"], "vllm.env")
    assert replicas(services["inference"]) == 0
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert services["api"]["environment"]["OPENAI_COMPATIBLE_BASE_URL"] == "http://vllm:8000/v1"


def test_profiles_validate_without_an_env_file() -> None:
    for profiles in ([], ["postgres"], ["scale"], ["scale", "vllm"]):
        services = compose_config(profiles)
        assert published(services) == {"frontend": ["3000"]}
