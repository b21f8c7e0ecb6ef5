"""podman and podman-compose as `make deploy-check` runs them: the project's containers.conf, the
topology's compose files, and health checks driven from here.

Health checks: podman 4.3 schedules them with systemd timers, and on a machine without systemd
(this one) no check ever runs by itself, so a container stays "starting".  `wait_healthy` runs
each container's check with `podman healthcheck run` until it passes, which is what the timer
would do; DISABLE_HC_SYSTEMD keeps podman from trying to create the timers at all.
podman-compose also ignores `depends_on: condition: service_healthy` before podman 4.6: the check
starts the topology in the order docs/deploy.md gives, waiting for health between the steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "containers.conf"
COMPOSE_FILES = [ROOT / "compose.yaml", ROOT / "deploy" / "compose.podman.yaml"]
# Its own project name: `down -v` at the start must never remove a real deployment's volumes.
PROJECT = "archivist-check"
VENV = ROOT / ".deploy" / "venv"
PODMAN_COMPOSE = "podman-compose==1.6.0"

SETTINGS = {"CONTAINERS_CONF": str(CONF), "DISABLE_HC_SYSTEMD": "true"}


def run(args: list[str], *, log: Path | None = None, check: bool = True,
        timeout: float | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command with podman's settings; its output goes to `log` (appended) when given,
    else is captured.  A failure raises with the command's last lines."""
    env = {**os.environ, **SETTINGS, **(env or {})}
    if log is None:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    else:
        with log.open("a") as out:
            out.write(f"\n$ {' '.join(args)}\n")
            out.flush()
            done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout)
    if check and done.returncode != 0:
        tail = (done.stdout or "") + (done.stderr or "") if log is None else \
            "".join(log.read_text(errors="replace").splitlines(True)[-12:])
        raise RuntimeError(f"{' '.join(args[-4:])} failed ({done.returncode}):\n{tail}")
    return done


def podman(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(["podman", *args], **kw)


def compose(*args: str, **kw) -> subprocess.CompletedProcess:
    files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
    return run([str(VENV / "bin" / "podman-compose"), "-p", PROJECT, *files, *args], **kw)


def ensure_podman_compose() -> None:
    """podman-compose from PyPI, pinned, in a virtual environment of its own (Debian 12's
    package is 1.0.3, which predates compose files' `!reset`)."""
    if (VENV / "bin" / "podman-compose").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", PODMAN_COMPOSE], check=True)


def missing_tools() -> list[str]:
    """Debian packages this check needs that are not installed."""
    tools = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
    return [package for tool, package in tools.items() if shutil.which(tool) is None]


def container(service: str) -> str:
    """The container podman-compose names for a service of the check's project."""
    return f"{PROJECT}_{service}_1"


def health(name: str) -> str:
    """One run of the container's health check: 'healthy', or what went wrong."""
    done = podman("healthcheck", "run", name, check=False, timeout=60)
    return "healthy" if done.returncode == 0 else (done.stdout + done.stderr).strip() or "unhealthy"


def wait_healthy(services: list[str], timeout_s: float) -> None:
    """Until every service's health check passes (each is run every 2 s)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(services)
    while waiting:
        state = {service: health(container(service)) for service in waiting}
        waiting = [service for service, status in state.items() if status != "healthy"]
        if waiting and time.monotonic() > deadline:
            logs = {s: podman("logs", "--tail", "15", container(s), check=False) for s in waiting}
            raise RuntimeError("not healthy in time: " + "; ".join(
                f"{s}: {state[s]}\n{logs[s].stdout}{logs[s].stderr}" for s in waiting))
        if waiting:
            time.sleep(2)


def image_size(image: str) -> int:
    """Bytes, as `podman images` counts them (all layers, uncompressed)."""
    info = json.loads(podman("image", "inspect", image).stdout)
    return int(info[0]["Size"])


def image_exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0
