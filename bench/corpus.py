"""The public evaluation corpus: Debian documentation packages, copied into one folder.

English: postgresql-doc-15 (about 1,200 HTML pages).  Chinese: debian-reference-zh-cn (about 14
large HTML chapters).  Installed with apt when absent (root needed; otherwise the command to run is
printed).  Copies, not links: ingest does not follow symbolic links.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = {
    "postgresql": ("postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html"), "*.html"),
    "debian-reference": ("debian-reference-zh-cn", Path("/usr/share/debian-reference"), "*.zh-cn.html"),
}


def ensure_installed() -> None:
    missing = [pkg for pkg, src, _ in PACKAGES.values() if not src.is_dir()]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        sys.exit(f"The evaluation corpus needs {', '.join(missing)}: run `sudo {' '.join(command)}`.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command, check=True, env=env)


def build_corpus(dest: Path) -> Path:
    """Copy the HTML pages into dest/<name>/ (idempotent); returns dest."""
    ensure_installed()
    for name, (_, src, pattern) in PACKAGES.items():
        target = dest / name
        files = sorted(src.glob(pattern))
        if target.is_dir() and len(list(target.iterdir())) == len(files):
            continue
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, target / path.name)
    return dest


if __name__ == "__main__":
    print(build_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else ".eval/corpus")))
