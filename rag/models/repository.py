"""The model repository: the chat models on disk, what their GGUF headers say, and which is active.

Chat models are the `.gguf` files in the models folder (ARCHIVIST_MODELS_DIR, default ./models)
plus the bundled SmolLM2 file.  Which one answers, first match wins:

1. ARCHIVIST_LLM_MODEL (or `llm_model` in archivist.toml), when set: an explicit configuration
   is never overridden by state written elsewhere, so `archivist models use` refuses while it is set;
2. `models/active.json` (written by `archivist models use`, with the previous choice for rollback);
3. the bundled SmolLM2-135M-Instruct.

Reading a header takes seconds for a large vocabulary and hashing a file about a second per
100 MB, so both are cached in `models/.cache.json` by path, size and mtime: a replaced file is
read again, an unchanged one never.  Nothing here downloads anything (see rag/models/pull.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import ArchivistError, BadRequestError, ModelNotFoundError, NotFoundError
from rag.models.files import PACKAGED_LLM, _package_dir, file_sha256, resolve_llm_model

log = logging.getLogger(__name__)

STATE_FILE = "active.json"
CACHE_FILE = ".cache.json"
PARTIAL_DIR = ".partial"
# Used when a GGUF carries no chat template: most small instruct models are trained on ChatML.
FALLBACK_TEMPLATE = "chatml"


def _write_json(path: Path, data: Any) -> None:
    """Replace a small JSON file atomically, so a crash never leaves half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


class FileFacts:
    """sha256 and header facts per file, computed once per file version (path, size, mtime).

    Kept in memory, and in `cache_path` when given and its folder exists, so `models list` in a
    new process does not hash 500 MB again.  The server's audit records use the same cache."""

    def __init__(self, cache_path: Path | None = None) -> None:
        self._path = cache_path
        self._lock = threading.Lock()
        self._mem: dict[str, dict[str, Any]] = {}
        if cache_path and cache_path.is_file():
            try:
                self._mem = json.loads(cache_path.read_text())
            except (OSError, ValueError):
                self._mem = {}  # a damaged cache is only a slower start

    def _entry(self, path: Path) -> dict[str, Any]:
        stat = path.stat()
        key = str(path.resolve())
        stamp = [stat.st_size, stat.st_mtime_ns]
        with self._lock:
            entry = self._mem.get(key)
            if entry is None or entry.get("stamp") != stamp:
                entry = self._mem[key] = {"stamp": stamp}
            return entry

    def _get(self, path: Path, field: str, compute) -> Any:
        entry = self._entry(path)
        if field not in entry:
            value = compute(path)  # outside the lock: hashing takes seconds
            with self._lock:
                entry[field] = value
                self._save()
        return entry[field]

    def _save(self) -> None:
        if self._path and self._path.parent.is_dir():
            try:
                _write_json(self._path, self._mem)
            except OSError as exc:  # a read-only models folder still works, uncached
                log.debug("could not write %s: %s", self._path, exc)

    def sha256(self, path: Path) -> str:
        return self._get(path, "sha256", file_sha256)

    def cached_sha256(self, path: Path) -> str | None:
        """The sha256 if already known for this version of the file (reads nothing)."""
        try:
            return self._entry(path).get("sha256")
        except OSError:
            return None

    def remember_sha256(self, path: Path, digest: str) -> None:
        """A digest just measured elsewhere (a verified pull), so it is not read twice."""
        self._get(path, "sha256", lambda _: digest)

    def header(self, path: Path) -> dict[str, Any]:
        return self._get(path, "header", read_header)


def read_header(path: Path) -> dict[str, Any]:
    """Architecture, parameters, quantization, context length and chat template of a GGUF."""
    import gguf  # numpy-heavy: only when a header is read

    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError) as exc:  # truncated or not a GGUF
        return {"error": f"unreadable GGUF header: {exc}"}

    def value(key: str) -> Any:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    arch = value("general.architecture")
    file_type = value("general.file_type")
    try:
        quant = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quant = f"type {file_type}"
    # Few files state their parameter count; the tensor shapes always give it.
    params = value("general.parameter_count") or sum(int(t.n_elements) for t in reader.tensors)
    template = value("tokenizer.chat_template")
    return {"title": value("general.name"), "architecture": arch, "parameters": int(params),
            "size_label": value("general.size_label"), "quantization": quant,
            "context_length": value(f"{arch}.context_length") if arch else None,
            "chat_template": bool(template)}


@dataclass
class ModelFile:
    name: str  # the file name without .gguf: what `models use` takes
    path: Path
    bundled: bool = False

    def describe(self, facts: FileFacts, active: str | None) -> dict[str, Any]:
        header = facts.header(self.path)
        row = {"name": self.name, "file": self.path.name, "path": str(self.path),
               "bundled": self.bundled, "active": self.name == active,
               "bytes": self.path.stat().st_size, "sha256": facts.sha256(self.path), **header}
        if header.get("chat_template") is False:
            row["warning"] = f"no chat template in the file: the {FALLBACK_TEMPLATE} template is used"
        return row


def bundled_model() -> ModelFile | None:
    module, filename = PACKAGED_LLM
    base = _package_dir(module)
    if base is None or not (base / filename).is_file():
        return None
    return ModelFile(Path(filename).stem, base / filename, bundled=True)


class ModelRepository:
    """The models folder of one settings object: its files, the active choice, the caches."""

    def __init__(self, models_dir: Path, configured: Path | None = None) -> None:
        """`configured`: the llm_model setting, which wins over the folder's choice."""
        self.dir = models_dir
        self.configured = configured
        self.facts = FileFacts(models_dir / CACHE_FILE)

    # --- what is there -------------------------------------------------------------------
    def files(self) -> list[ModelFile]:
        """Every .gguf of the models folder (by name), then the bundled one."""
        found = [ModelFile(p.stem, p) for p in sorted(self.dir.glob("*.gguf")) if p.is_file()]
        bundled = bundled_model()
        if bundled and all(f.name != bundled.name for f in found):
            found.append(bundled)
        return found

    def find(self, name: str) -> ModelFile:
        stem = name.removesuffix(".gguf")
        for model in self.files():
            if model.name == stem:
                return model
        known = ", ".join(m.name for m in self.files()) or "none"
        raise NotFoundError(f"No model {name!r} in {self.dir} (found: {known}).",
                                 hint="`archivist models list` shows them; `archivist models pull "
                                      "NAME` fetches a catalogued one.")

    # --- which one is active -------------------------------------------------------------
    def state(self) -> dict[str, str | None]:
        path = self.dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {"current": None, "previous": None}
        except (OSError, ValueError) as exc:
            raise ArchivistError(f"{path} is unreadable: {exc}",
                                 hint="Delete it, then choose again with `archivist models use NAME`.")
        return {"current": data.get("current"), "previous": data.get("previous")}

    def active_path(self) -> Path:
        """The chat model file to load, by the precedence in the module doc."""
        if self.configured is not None:
            return resolve_llm_model(self.configured)
        current = self.state()["current"]
        if current:
            try:
                return self.find(current).path
            except NotFoundError as exc:  # a server error (503), not "no such thing" (404)
                raise ModelNotFoundError(
                    f"{self.dir / STATE_FILE} names the model {current!r}, which is not there.",
                    hint="Choose another with `archivist models use NAME`, or delete that file "
                         "to use the bundled model.") from exc
        return resolve_llm_model(None)

    def active_name(self) -> str | None:
        try:
            path = self.active_path()
        except ArchivistError:
            return None
        return path.stem

    def choose(self, name: str | None, previous: bool = False) -> ModelFile:
        """The model `use` would record (nothing written): `name`, or the previous one."""
        if self.configured is not None:
            raise BadRequestError(
                f"ARCHIVIST_LLM_MODEL is set ({self.configured}), and it wins over the models "
                "folder's choice.", hint="Unset ARCHIVIST_LLM_MODEL (or llm_model in "
                "archivist.toml) to choose models with `archivist models use`.")
        if previous:
            name = self.state()["previous"]
            if not name:
                raise BadRequestError("No previous model is recorded.",
                                     hint="`archivist models use NAME` records one.")
        if not name:
            raise BadRequestError("Name a model, or pass --previous.",
                                 hint="`archivist models list` shows them.")
        return self.find(name)

    def use(self, name: str | None, previous: bool = False) -> ModelFile:
        """Record `name` (or, with `previous`, the one before) as the active model; the one it
        replaces becomes the previous, so `use --previous` twice goes back and forth."""
        model = self.choose(name, previous)
        current = self.state()["current"] or self.active_name()
        if model.name != current:
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_json(self.dir / STATE_FILE, {"current": model.name, "previous": current})
        return model

    def list(self) -> list[dict[str, Any]]:
        active = self.active_name()
        rows = [m.describe(self.facts, active) for m in self.files()]
        if self.configured is not None and all(not r["active"] for r in rows):
            # A configured file outside the models folder is still the one in use.
            path = resolve_llm_model(self.configured)
            rows.append(ModelFile(path.stem, path).describe(self.facts, path.stem))
        return rows

