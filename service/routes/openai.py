"""OpenAI-compatible endpoints, so existing OpenAI clients and chat UIs can talk to Archivist.

A "model" is a collection.  Chat completions answer the last user message from that collection's
documents, earlier messages being the conversation; the citations, which OpenAI's schema has no
place for, travel in an extra top-level `archivist` field.  Sampling parameters sent by the
client (temperature, max_tokens, ...) are ignored: the server's settings decide, so recorded
answers stay reproducible.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.core.errors import BadRequestError, NotFoundError
from rag.core.shapes import sha256_text
from rag.library import Collection, Library
from rag.models.files import SHIPPED_EMBED_MODELS
from service.auth import Principal
from service.deps import LibraryDep, PrincipalDep, actor_of
from service.streams import event_stream, metered

router = APIRouter(tags=["OpenAI-compatible"])
PATHS = ("/v1/chat/completions", "/v1/models", "/v1/embeddings")
MAX_EMBED_INPUTS = 2048  # OpenAI's own limit per request


_ERROR_TYPES = {404: ("invalid_request_error", "model_not_found"),
                422: ("invalid_request_error", "invalid_request"),
                429: ("rate_limit_error", "queue_full"),
                409: ("server_error", "index_busy"),
                503: ("server_error", "unavailable")}


def is_openai_path(path: str) -> bool:
    return path in PATHS


def error_response(status: int, message: str, hint: str | None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error shape, which OpenAI clients parse; detail/hint as on every other route."""
    kind, code = _ERROR_TYPES.get(status, ("server_error", "internal_error"))
    text = f"{message} {hint}" if hint else message
    return JSONResponse({"error": {"message": text, "type": kind, "code": code, "param": None},
                         "detail": message, "hint": hint}, status_code=status, headers=headers)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted, not used

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The text of the message; of a multi-part message, its text parts."""
        if isinstance(self.content, list):
            return "\n".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: the server's settings apply

    model: str = Field(description="A collection name (GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, description="The last one must be the "
                                        "user's question; earlier ones are the conversation.")
    stream: bool = False
    top_k: int | None = Field(None, description="Archivist extension: passages to retrieve.")


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # user, dimensions: not supported, ignored

    model: str = Field(description="A collection name, or the name of the default collection's "
                       "embedding model (e.g. 'all-MiniLM-L6-v2'): that model is used.")
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "passage"] = Field(
        "query", description="What the texts are, for models trained with a prompt for each "
        "(multilingual-e5: 'query: ', 'passage: '): 'passage' for documents to be searched, "
        "'query' for searches and for texts compared with each other (the default, as the "
        "model's authors advise when the role is unknown). Archivist's own extension.")


def split_conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message) and the earlier (user, assistant) exchanges.  System
    messages are dropped: the answer prompt is the server's, so that answers stay grounded."""
    if messages[-1].role != "user":
        raise BadRequestError(f"The last message is from {messages[-1].role!r}; it must be the "
                              "user's question.", hint="End `messages` with a user message.")
    history, pending = [], None
    for message in messages[:-1]:
        if message.role == "user":
            pending = message.text()
        elif message.role == "assistant" and pending is not None:
            history.append((pending, message.text()))
            pending = None
    return messages[-1].text(), history


def model_collection(library: Library, who: Principal, model: str) -> Collection:
    """The collection named by `model`, if the caller may read it; any unknown name, even one
    that could not be a collection (e.g. 'gpt-3.5-turbo'), is a 404 as OpenAI clients expect."""
    visible = [name for name in library.names() if who.can("read", name)]
    if model not in visible:
        raise NotFoundError(f"No model {model!r}: models are the collections.",
                            hint=f"Use one of: {', '.join(visible)} (GET /v1/models).")
    return library.collection(model)


def _extension(answer: Any) -> dict:
    return answer.model_dump(mode="json", exclude={"debug"})


# One Server-Sent Event, as documented for streaming replies.
SSE_EVENT = {"type": "object",
             "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}


@router.get("/v1/models", summary="Collections, as OpenAI models")
def list_models(library: LibraryDep, who: PrincipalDep) -> dict:
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "archivist"}
                     for name in library.names() if who.can("read", name)]}


@router.post("/v1/chat/completions", summary="Answer the last message, with citations",
             responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                              "description": "JSON, or chunks as Server-Sent Events with "
                              "`stream: true`."}})
def chat_completions(body: ChatCompletionRequest, request: Request, library: LibraryDep,
                     who: PrincipalDep):
    """OpenAI's chat completion, non-streaming or `stream: true` (chunks, then `data: [DONE]`).
    The extra field `archivist` (on the last chunk when streaming) holds the citations,
    `refused`, `reason`, the verified `answer` and its `answer_id`."""
    assistant = model_collection(library, who, body.model).assistant
    question, history = split_conversation(body.messages)
    events = metered(request, assistant.start(question, body.top_k, history=history,
                                              actor=actor_of(who), action="openai.chat"))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    if body.stream:
        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": body.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if extra is not None:
                data["archivist"] = extra
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def encode(kind: str, data: Any) -> str:
            if kind == "citations":
                return chunk({"role": "assistant", "content": ""})
            if kind == "token":
                return chunk({"content": data})
            if kind == "done":
                return chunk({}, "stop", _extension(data)) + "data: [DONE]\n\n"
            if kind == "error":
                text = " ".join(filter(None, (data["detail"], data["hint"])))
                return f"data: {json.dumps({'error': {'message': text, 'type': 'server_error'}})}\n\n"
            return ""

        return event_stream(request, events, encode)

    answer = events.result()["done"]
    return {"id": completion_id, "object": "chat.completion", "created": created,
            "model": body.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.answer}}],
            "archivist": _extension(answer)}


@router.post("/v1/embeddings", summary="Embed texts with a collection's embedding model")
def embeddings(body: EmbeddingRequest, library: LibraryDep, who: PrincipalDep) -> dict:
    default = library.settings.collection
    collection = None
    if (body.model not in library.names() and who.can("read", default)
            and (body.model == library.settings.embedding.embed_model
                 or body.model in SHIPPED_EMBED_MODELS)):
        # another Archivist embedding through this one, for a collection of any shipped model
        embedder = library.models.embedder_for(body.model)
    else:
        collection = model_collection(library, who, body.model)
        embedder = collection.embedder
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > MAX_EMBED_INPUTS or not all(t.strip() for t in texts):
        raise BadRequestError(f"`input` must be 1 to {MAX_EMBED_INPUTS} non-empty strings.",
                              hint="Send a string or a list of strings.")
    vectors = embedder.embed(texts, body.input_type)  # a sync route: runs in a worker thread
    tokens = sum(embedder.count_tokens(t) for t in texts)
    # Recorded before the vectors leave, as every operation is; the texts by digest only (an
    # ingest through an embedding server sends every chunk of a corpus here).
    library.audit.append(actor_of(who), "embed", "ok", collection.name if collection else None, {
        "model": body.model, "fingerprint": embedder.fingerprint, "input_type": body.input_type,
        "inputs": len(texts), "tokens": tokens,
        "inputs_sha256": sha256_text(json.dumps(texts, ensure_ascii=False))})

    def encoded(vector: list[float]) -> list[float] | str:
        if body.encoding_format == "base64":  # little-endian float32, as OpenAI sends it
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return [float(v) for v in vector]

    return {"object": "list", "model": body.model,
            "data": [{"object": "embedding", "index": i, "embedding": encoded(v)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            # what an Archivist using this server (ARCHIVIST_EMBED_URL) records in its index
            "archivist": {"fingerprint": embedder.fingerprint, "max_tokens": embedder.max_tokens}}
