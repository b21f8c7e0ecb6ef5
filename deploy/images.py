"""The images `make deploy-check` builds, with no registry: a Debian 12 base made by debootstrap,
the project's Dockerfile on top of it, and PostgreSQL 15 from Debian's package."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from podman import SETTINGS, ROOT, podman, run

BASE = "localhost/archivist-base:bookworm"
ARCHIVIST = "localhost/archivist:latest"
POSTGRES = "localhost/archivist-postgres:15"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY = os.environ.get("DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
# What the Dockerfile expects of its PYTHON_IMAGE (python:3.11-slim-bookworm has it): Python 3.11
# as `python`, venv with its bundled pip, and CA certificates.  python3-distutils is listed
# because python3.11-venv needs it through a virtual package, which debootstrap cannot resolve.
BASE_PACKAGES = ["python3.11", "python3-venv", "python3-distutils", "python-is-python3",
                 "ca-certificates"]


def build_base(log: Path) -> None:
    """debootstrap a minimal bookworm with Python 3.11, bring it up to date with the security
    archive, and import it as BASE (one layer)."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="archivist-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
             "bookworm", str(rootfs), MIRROR], log=log)
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n"
            f"deb {SECURITY} bookworm-security main\n")
        run(["chroot", str(rootfs), "sh", "-c",
             "apt-get update -q && apt-get upgrade -y -q && apt-get clean "
             "&& rm -rf /var/lib/apt/lists/*"], log=log,
            env={"DEBIAN_FRONTEND": "noninteractive"})
        with log.open("a") as out:
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                                   stdout=subprocess.PIPE)
            done = subprocess.run(["podman", "import", "--change", "ENV LANG=C.UTF-8",
                                   "--change", 'CMD ["python3"]', "-", BASE],
                                  stdin=tar.stdout, stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, **SETTINGS})
            tar.stdout.close()
            if tar.wait() != 0 or done.returncode != 0:
                raise RuntimeError(f"importing the root file system failed: see {log}")


def host_pip_settings() -> dict[tuple[str, str], str]:
    """The host's pip settings, {(section, name): value}, from its config files and PIP_*
    variables (`pip config list`; a variable wins over a file, as in pip)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                          capture_output=True, text=True)
    files, variables = {}, {}
    for line in done.stdout.splitlines():  # global.find-links='/opt/wheels', :env:.cert='...'
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if section == ":env:":
            variables[("global", name)] = ast.literal_eval(value)
        elif section:
            files[(section, name)] = ast.literal_eval(value)
    return {**files, **variables}


def _host_paths(name: str, value: str) -> list[Path]:
    """The local files and folders a pip setting refers to.  A file:// index is mounted with
    its parent: an index's pages link to files beside it (simple/x/ -> ../../files/)."""
    paths = []
    for token in value.split():
        if token.startswith("file://"):
            path = Path(urlsplit(token).path)
            paths.append(path.parent if "index-url" in name else path)
        elif token.startswith("/"):
            paths.append(Path(token))
    return [path for path in paths if path.exists() and path != Path("/")]


def pip_build_args(workdir: Path) -> list[str]:
    """`podman build` arguments that give pip in the build the host's settings: a pip.conf with
    them, mounted as the build's /etc/pip.conf, and every local index, wheel folder, constraints
    file and CA bundle they name, mounted read-only at the same path (only while RUN steps run:
    none of it is copied into the image)."""
    settings = host_pip_settings()
    sections: dict[str, list[str]] = {}
    mounts: set[Path] = set()
    for (section, name), value in settings.items():
        # a value of several lines (one URL a line) continues indented, as in any pip.conf
        sections.setdefault(section, []).append(f"{name} = " + value.replace("\n", "\n    "))
        mounts.update(_host_paths(name, value))
    conf = workdir / "pip.conf"
    conf.write_text("".join(f"[{section}]\n" + "\n".join(lines) + "\n"
                            for section, lines in sections.items()))
    args = ["-v", f"{conf}:/etc/pip.conf:ro"]
    for path in sorted(mounts):
        args += ["-v", f"{path}:{path}:ro"]
    return args


def _build_args(fresh: bool) -> list[str]:
    """--format docker keeps the Dockerfile's HEALTHCHECK (OCI images have no such field);
    --network host lets RUN steps reach the package archives as the host does; fresh: no
    layer of an earlier build is reused."""
    return ["build", "--format", "docker", "--network", "host", *(["--no-cache"] if fresh else [])]


def build(log: Path, workdir: Path, fresh: bool) -> None:
    """The Archivist image from the project's Dockerfile on BASE."""
    podman(*_build_args(fresh), "--build-arg", f"PYTHON_IMAGE={BASE}", *pip_build_args(workdir),
           # as `make install`: empty unless given (here torch's CPU wheel is in the host's index)
           "--build-arg", f"TORCH_PIP_ARGS={os.environ.get('TORCH_PIP_ARGS', '')}",
           "-t", ARCHIVIST, str(ROOT), log=log)


def build_postgres(log: Path, fresh: bool) -> None:
    podman(*_build_args(fresh), "--build-arg", f"BASE_IMAGE={BASE}", "-t", POSTGRES,
           str(ROOT / "deploy" / "postgres"), log=log)
