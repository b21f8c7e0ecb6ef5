"""`make deploy-check`: build the images and run compose.yaml's topology with podman on this
machine, then check what a team adopting Archivist relies on, and print a short report.

    python3 deploy/check.py [--fresh] [--keep]

--fresh builds every image from nothing (debootstrap again, no cached layer), so the build
times are those of a clean machine; --keep leaves the topology running at the end (project
archivist-check).  Needs root (debootstrap, podman as root) and Debian 12's podman, runc and
debootstrap, which it installs when missing.  Logs go to .deploy/*.log (the build logs start with
the exact podman commands); the report also to .deploy/report.txt."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import images
import podman
import probes
from podman import ROOT, compose

WORK = ROOT / ".deploy"
INFRA = ["postgres", "chroma", "llm"]
REPLICAS = list(probes.REPLICAS)
PORTS = {5432: "postgres", 8100: "chroma", 8080: "llm", 8000: "api", 8001: "api-2"}
# compose.yaml's variables: the locally built images instead of the registry's
os.environ.update(ARCHIVIST_IMAGE=images.ARCHIVIST, POSTGRES_IMAGE=images.POSTGRES)


class Report:
    """Figures and check results, printed at the end whatever happened."""

    def __init__(self) -> None:
        self.figures: list[tuple[str, str]] = []
        self.checks: list[tuple[str, str, str]] = []

    def figure(self, name: str, value: str) -> None:
        self.figures.append((name, value))

    def check(self, name: str, fn) -> bool:
        try:
            self.checks.append(("PASS", name, fn()))
            return True
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the run stops
            self.checks.append(("FAIL", name, str(exc).strip()[:600]))
            return False

    def text(self) -> str:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
        podman_version = (podman.podman("--version", check=False).stdout.strip()
                          if shutil.which("podman") else "no podman")
        lines = [f"deploy-check: {cpu}, {os.cpu_count()} cores; {podman_version}"]
        lines += [f"  {name:<26} {value}" for name, value in self.figures]
        lines += [f"  {status} {name}: {detail}" for status, name, detail in self.checks]
        return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def prepare(report: Report, fresh: bool) -> None:
    """Tools, then the three images, timed."""
    if os.geteuid() != 0:
        sys.exit("deploy-check runs podman as root (and debootstrap): run it as root")
    if missing := podman.missing_tools():
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True)
    podman.ensure_podman_compose()
    (WORK / "compose.log").write_text("")
    compose("down", "-v", log=WORK / "compose.log", check=False)  # the last run's, volumes too
    busy = [f"{port} ({name})" for port, name in PORTS.items() if _listening(port)]
    if busy:
        sys.exit(f"ports in use on 127.0.0.1: {', '.join(busy)}: the topology needs them "
                 "(host networking); stop what listens there")
    builds = (("base image (debootstrap)", images.BASE, images.build_base),
              ("archivist image", images.ARCHIVIST, lambda log: images.build(log, WORK, fresh)),
              ("postgres image", images.POSTGRES, lambda log: images.build_postgres(log, fresh)))
    for name, image, build in builds:
        log = WORK / f"build-{image.split('/')[-1].split(':')[0]}.log"
        log.write_text("")
        if image == images.BASE and podman.image_exists(image) and not fresh:
            report.figure(name, f"{_megabytes(podman.image_size(image))} (kept from a last run)")
            continue
        started = time.monotonic()
        build(log)
        report.figure(name, f"{_megabytes(podman.image_size(image))}, "
                            f"built in {_minutes(time.monotonic() - started)}")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def up(report: Report, label: str, key: bool) -> str:
    """docs/deploy.md's order: the servers, then (with `key`) an admin key, then the replicas;
    returns the key, or ''."""
    log = WORK / "compose.log"
    started = time.monotonic()
    compose("up", "-d", *INFRA, log=log)
    podman.wait_healthy(INFRA, timeout_s=600)
    servers = time.monotonic() - started
    secret = ""
    if key:
        created = compose("run", "--rm", "api", "keys", "create", "--role", "admin",
                          "--note", "deploy-check")
        secret = next(line.strip() for line in created.stdout.splitlines()
                      if line.startswith("ak_"))
    compose("up", "-d", *REPLICAS, log=log)
    podman.wait_healthy(REPLICAS, timeout_s=600)
    report.figure(f"time to healthy, {label}",
                  f"{_minutes(time.monotonic() - started)} from `up` (postgres, chroma, llm "
                  f"{_minutes(servers)}; then {'an admin key and ' if key else ''}"
                  "both replicas)")
    return secret


def listening_addresses() -> dict[int, set[str]]:
    """{port: addresses listened on} for the topology's ports, from /proc/net/tcp{,6}: with
    host networking the containers' sockets are the host's."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) in PORTS:  # 0A: LISTEN
                found.setdefault(int(port, 16), set()).add(_address(address))
    return found


def _address(hex_address: str) -> str:
    """/proc/net/tcp's hex address (32-bit words in host order) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def checks(report: Report) -> None:
    """Each check in turn; the first failure stops the rest (they build on each other)."""
    state: dict = {}

    def healthy() -> str:
        state["key"] = up(report, "first start", key=True)
        return f"{', '.join(INFRA + REPLICAS)} pass `podman healthcheck run`"

    def loopback() -> str:
        found = listening_addresses()
        assert set(found) == set(PORTS), f"not listening: {set(PORTS) - set(found)}"
        wider = {port: addresses for port, addresses in found.items()
                 if addresses != {"127.0.0.1"}}
        assert not wider, f"listening beyond loopback: {wider}"
        return "ports " + ", ".join(f"{p} ({PORTS[p]})" for p in sorted(PORTS)) + \
            " listen on 127.0.0.1 only"

    def ingest() -> str:
        key = state["key"]
        done = compose("run", "--rm", "api", "ingest", timeout=1800)
        hits = probes.search("api", key)
        assert hits and hits[0][0] == probes.SOURCE, f"search after ingest: {hits}"
        state["hits"] = hits
        return f"`run --rm api ingest` of ./data: {done.stdout.strip().splitlines()[-1]}"

    def same_citations() -> str:
        key = state["key"]
        replies = [probes.ask(replica, key) for replica in REPLICAS]
        for replica, (status, body) in zip(REPLICAS, replies):
            assert status == 200, f"ask on {replica}: {status} {body}"
        first, second = (probes.citations(body) for _, body in replies)
        assert first and first == second, f"api: {first}\napi-2: {second}"
        cited = ", ".join(f"{source}#{chunk[:8]}" for source, chunk in first)
        return f"the same citations from api and api-2: {cited}"

    def llm_killed() -> str:
        key = state["key"]
        compose("kill", "llm", log=WORK / "compose.log")
        status, body = probes.ask("api-2", key, probes.UNCACHED)
        assert status == 503 and probes.LLM_URL in body.get("detail", ""), f"{status} {body}"
        assert probes.search("api-2", key) == state["hits"], "search changed without the model"
        return f"ask 503 ({body['detail'][:90]}...); search still 200"

    def llm_restarted() -> str:
        key = state["key"]
        compose("start", "llm", log=WORK / "compose.log")
        podman.wait_healthy(["llm"], timeout_s=300)
        status, body = probes.ask("api", key, probes.UNCACHED)
        assert status == 200 and body["answer"].strip(), f"{status} {body}"
        return f"ask 200 again: {body['answer'].strip()[:70]!r}"

    def volumes_kept() -> str:
        key = state["key"]
        compose("down", log=WORK / "compose.log")
        up(report, "after down && up", key=False)
        hits = probes.search("api-2", key)
        assert hits == state["hits"], f"before: {state['hits']}\nafter: {hits}"
        status, body = probes.ask("api", key)
        assert status == 200, f"ask after restart: {status} {body}"
        return "same search hits and key after `down` and `up` (named volumes)"

    for name, fn in (("health checks", healthy), ("loopback only", loopback),
                     ("ingest from a container", ingest),
                     ("ask through both replicas", same_citations),
                     ("llm container killed", llm_killed), ("llm restarted", llm_restarted),
                     ("down && up keeps the index", volumes_kept)):
        if not report.check(name, fn):
            break


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="build every image from nothing")
    parser.add_argument("--keep", action="store_true", help="leave the topology running")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    report = Report()
    try:
        prepare(report, args.fresh)
        checks(report)
    finally:
        if not args.keep:
            compose("down", log=WORK / "compose.log", check=False)
        text = report.text()
        print(text)
        (WORK / "report.txt").write_text(text + "\n")
    return 1 if any(status == "FAIL" for status, *_ in report.checks) else 0


if __name__ == "__main__":
    sys.exit(main())
