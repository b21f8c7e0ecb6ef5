"""`archivist doctor`: what is configured, what is on disk, and proof that it all works offline."""

from __future__ import annotations

import json
from typing import Any

from rag.core.errors import ArchivistError
from rag.core.offline import OFFLINE_ENV, NetworkGuard
from rag.core.settings import Settings
from rag.library import Library
from rag.models.files import describe_files, resolve_embed_model
from rag.models.repository import ModelRepository


def _models(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        embed_dir = resolve_embed_model(s.embedding.embed_model)
        weights = {p.name: p for p in embed_dir.iterdir() if p.suffix in (".safetensors", ".bin")}
        out["embedding"] = {"model": s.embedding.embed_model, "directory": str(embed_dir),
                            "files": describe_files(weights)}
        source = embed_dir / "source.json"
        if source.is_file():  # made here from packaged files (multilingual-e5-small): which ones
            out["embedding"]["made_from"] = json.loads(source.read_text())["sha256"]
    except ArchivistError as exc:
        out["embedding"] = {"error": str(exc)}
    try:
        active = ModelRepository(s.models_dir, s.llm.llm_model).active_path()
        out["llm"] = describe_files({"gguf": active})[0]
    except ArchivistError as exc:
        out["llm"] = {"error": str(exc)}
    return out


def _collection_models(library: Library) -> dict[str, str]:
    """Each collection's embedding model (its own choice, else ARCHIVIST_EMBED_MODEL)."""
    out = {}
    for name in library.names():
        try:
            out[name] = library.collection(name).embed_model
        except ArchivistError as exc:
            out[name] = f"error: {exc}"
    return out


def _model_advice(library: Library) -> dict[str, str]:
    advice = {}
    for name in library.names():
        try:
            said = library.collection(name).model_advice()
        except ArchivistError:
            continue  # a broken marker: the models check says why
        if said:
            advice[name] = said
    return advice


def _offline(library: Library) -> dict[str, Any]:
    """Exercise every model and parser resource with outbound connections blocked."""
    import os

    from ingest.parsers import parse_text_like

    steps: dict[str, str] = {}
    checks = [("parse (unstructured)", lambda: parse_text_like(b"Title\n\nA sentence. Another one.", "text")),
              ("embed", lambda: library.models.embedder.embed(["offline check"]))]
    for model in _chosen_models(library):  # collections with a model of their own
        checks.append((f"embed ({model})", lambda model=model: library.models.embedder_for(
            model).embed(["offline check"])))
    checks.append(("chat model", lambda: library.models.generator.count_tokens("offline check")))
    with NetworkGuard() as guard:
        for name, step in checks:
            try:
                step()
                steps[name] = "ok"
            except Exception as exc:  # report every failure, keep checking the rest
                steps[name] = f"failed: {exc}"
    missing_env = [k for k, v in OFFLINE_ENV.items() if os.environ.get(k) != v]
    ok = not guard.attempts and all(v == "ok" for v in steps.values()) and not missing_env
    return {"ok": ok, "steps": steps, "network_attempts": guard.attempts,
            "offline_switches_missing": missing_env}


def _chosen_models(library: Library) -> list[str]:
    """The embedding models collections chose other than ARCHIVIST_EMBED_MODEL (a broken marker
    is reported under models.collections)."""
    chosen = {m for m in _collection_models(library).values() if not m.startswith("error: ")}
    return sorted(chosen - {library.settings.embedding.embed_model})


def _gpu(library: Library) -> dict[str, Any]:
    """Where the models run.  Runs after the offline checks, which loaded both models, so the
    layers offloaded and the embedding device are those of the loaded models."""
    from rag.models.generator import REINSTALL_CUDA, usable_cpus
    from rag.models.gpu import describe, system_info

    s, models = library.settings, library.models
    out = describe(s.llm.n_gpu_layers, models.loaded_generator, models.loaded_embedder)
    supported = out["llama_cpp_backend"] != "CPU"
    if supported:
        note = (f"llama.cpp has a {out['llama_cpp_backend']} backend; "
                f"{out['gpu_layers']['offloaded']} of {out['gpu_layers']['model_layers']} layers "
                "are offloaded.")
    else:
        note = f"llama.cpp was built for the CPU only. For a GPU: {REINSTALL_CUDA}."
    # The first keys are the ones this report had before; kept for scripts that read them.
    return {"llama_cpp_gpu_offload": supported, "n_gpu_layers": s.llm.n_gpu_layers,
            **out, "llama_cpp_system_info": system_info(),
            "n_threads": s.llm.n_threads or usable_cpus(), "note": note}


def _index(library: Library) -> dict[str, Any]:
    try:
        collection = library.collection()
        with collection.views.reading(check=False) as view:
            out = {"chunks": view.store.count(), "generation": view.generation,
                   "build": collection.build_info(), "vectors": str(library.settings.chroma)}
            missed, checked = view.store.unreachable()
    except ArchivistError as exc:
        return {"error": str(exc)}
    out["reachable"] = {"checked": checked, "found": checked - len(missed)}
    if missed:
        out["reachable"]["hint"] = (
            f"{len(missed)} of {checked} sampled chunks are not found by a search with their own "
            f"vector (e.g. {missed[0]}): the vector index's graph no longer reaches them, so "
            f"dense search misses them. `archivist reindex --collection {collection.name}` "
            f"builds a fresh one without downtime.")
    return out


def _database(s: Settings) -> dict[str, Any] | None:
    """Whether the shared PostgreSQL database (ARCHIVIST_DB_URL) answers; None when unused."""
    if not s.db_url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(s.db_url)
    shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()  # no password
    try:
        import psycopg

        with psycopg.connect(s.db_url, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return {"url": shown, "ok": True, "server_version": version}
    except Exception as exc:  # psycopg.Error, or a URL it cannot parse: say which and why
        reason = str(exc).replace(s.db_url, shown).strip().splitlines()[0]
        return {"url": shown, "ok": False, "error": reason,
                "hint": "Check that PostgreSQL runs there and that ARCHIVIST_DB_URL's user, "
                        "password and database are right."}


def run_checks(library: Library) -> dict[str, Any]:
    s = library.settings
    return {
        "config": s.model_dump(mode="json"),
        "models": {**_models(s), "collections": _collection_models(library),
                   "advice": _model_advice(library)},
        "offline": _offline(library),
        "gpu": _gpu(library),
        "index": _index(library),
        "database": _database(s),
    }
