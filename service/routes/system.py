"""Is it working: /v1/health and the Prometheus /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from rag.core.errors import ArchivistError
from rag.models.files import SHIPPED_EMBED_MODELS
from rag.models.gpu import describe
from service.deps import LibraryDep

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(description="'ok' when the index is open and models are loaded.")
    chunks: int = Field(description="Chunks in the default collection's index.")
    collection: str = Field(description="The default collection.")
    collections: list[str] = Field(description="Every collection.")
    embed_model: str
    embed_models: dict[str, str] = Field(
        description="The embedding models that ship with this install and what each is for "
        "(ARCHIVIST_EMBED_MODEL, then `archivist reindex`).")
    llm_model: str | None = Field(description="GGUF file name, once loaded.")
    llm_sha256: str | None = Field(None, description="The loaded chat model file's sha256.")
    gpu: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the models run: llama_cpp_backend ('CPU', 'CUDA', 'Metal', ...), "
        "gpu_found, gpu_layers {requested, resolved, model_layers, offloaded} (model_layers null "
        "until the chat model is loaded), vram (MiB per GPU; null where not measurable), "
        "embedding_device ('cpu', 'cuda:0'; null until the embedder is loaded), "
        "embedding_precision ('fp32', 'bf16', 'int8'; null until loaded or on an embedding server).")


@router.get("/v1/health", response_model=Health, summary="Service status")
def health(library: LibraryDep) -> Health:
    settings = library.settings
    try:
        with library.collection().views.reading() as view:
            chunks, status = view.store.count(), "ok"
    except ArchivistError as exc:
        chunks, status = 0, f"error: {exc}"
    return Health(status=status, chunks=chunks, collection=settings.collection,
                  collections=library.names(), embed_model=settings.embedding.embed_model,
                  embed_models=SHIPPED_EMBED_MODELS, llm_model=library.models.loaded_llm_name,
                  llm_sha256=library.models.loaded_llm_sha256,
                  gpu=describe(settings.llm.n_gpu_layers, library.models.loaded_generator,
                               library.models.loaded_embedder))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(request: Request) -> Response:
    """Requests and latency by route and status, generation queue, tokens generated and
    tokens/s, ingest counts, index size; Prometheus text format."""
    body, content_type = request.app.state.metrics.render()  # a sync route: reading the index is I/O
    return Response(body, media_type=content_type)
