"""Questions: /v1/ask, /v1/search, /v1/chat, and the records they leave (/v1/conversations,
/v1/answers: reading one is recorded in the audit log, as asking was)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from rag.core.errors import NotFoundError
from rag.core.shapes import Answer, SearchResults
from rag.retrieval.retriever import SearchFilter
from service.deps import LibraryDep, PrincipalDep, actor_of, assistant_for
from service.routes.openai import SSE_EVENT
from service.streams import event_stream, metered

router = APIRouter(tags=["questions"])


class QueryRequest(BaseModel):
    question: str = Field(description="The question, in any language.", examples=["How long is the warranty?"])
    collection: str | None = Field(None, description="Collection to search (default: "
                                   "ARCHIVIST_COLLECTION, 'default'); results never cross collections.")
    top_k: int | None = Field(None, description="Passages to retrieve (default: ARCHIVIST_TOP_K).")
    path: str | None = Field(None, description="Only files under this path prefix or matching this "
                             "glob, e.g. 'reports/' or 'finance/**/*.pdf'.")
    types: list[str] | None = Field(None, description="Only these file types, e.g. [\"pdf\", \"docx\"].")

    debug: bool = Field(False, description="Ask only: include prompt packing details.")
    mode: Literal["auto", "generative", "extractive"] | None = Field(
        None, description="Ask and chat: how to write the answer (default: ARCHIVIST_ANSWER_MODE, "
        "'auto'): 'generative' (the model's reply, verified), 'extractive' (the passages' best "
        "sentences quoted, no model) or 'auto' (the model's reply when every sentence of it is "
        "verified, else the quotes, with the reply as `draft`).")
    stream: bool = Field(False, description="Ask and chat: reply with Server-Sent Events: "
                         "`citations`, then `token` events as the model writes, then `done` with "
                         "the verified answer. Disconnecting stops the generation.")

    def filter(self) -> SearchFilter | None:
        filt = SearchFilter(path=self.path, types=tuple(self.types or ()))
        return filt if filt.active else None


class ChatRequest(QueryRequest):
    question: str = Field(description="The next message of the conversation.")
    conversation_id: str | None = Field(None, description="Conversation to continue; leave out "
                                        "to start one.")


class ChatReply(Answer):
    conversation_id: str = Field(description="Pass it back to continue the conversation.")


# Routes that stream with `"stream": true` reply 200 text/event-stream as well as JSON.
SSE_RESPONSE = {200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                      "description": "JSON, or Server-Sent Events with `\"stream\": true`."}}


@router.post("/v1/ask", response_model=Answer, responses=SSE_RESPONSE,
             summary="Answer a question from the documents")
def ask(body: QueryRequest, request: Request, library: LibraryDep, who: PrincipalDep):
    """Retrieve the best passages and answer with the local model, citing them as [n].

    `refused` is true, with a `reason`, when the documents hold nothing relevant enough; a
    repeated question is answered from its record (`cached`).  Neither waits for the model.
    With `"stream": true` the reply is an event stream (see the `stream` field)."""
    assistant = assistant_for(library, who, body.collection)
    stream = metered(request, assistant.start(body.question, body.top_k, filt=body.filter(),
                                              debug=body.debug, mode=body.mode,
                                              actor=actor_of(who)))
    if body.stream:
        return event_stream(request, stream)
    return stream.result()["done"]


@router.post("/v1/search", response_model=SearchResults, summary="Rank passages for a question")
def search(body: QueryRequest, library: LibraryDep, who: PrincipalDep) -> SearchResults:
    """Retrieval only: the passages an answer would be based on, best first."""
    assistant = assistant_for(library, who, body.collection)
    return SearchResults(results=assistant.search(body.question, body.top_k, body.filter(),
                                                  actor=actor_of(who)))


@router.post("/v1/chat", response_model=ChatReply, responses=SSE_RESPONSE,
             summary="Ask within a conversation")
def chat(body: ChatRequest, request: Request, library: LibraryDep, who: PrincipalDep):
    """Like /v1/ask, but follow-up questions ("and its page size?") are understood in the
    context of the conversation's earlier turns, which are kept on the server.  Streams
    like /v1/ask, with a first `conversation` event."""
    assistant = assistant_for(library, who, body.collection)
    stream = metered(request, assistant.start_chat(body.question, body.conversation_id,
                                                   body.top_k, body.filter(), mode=body.mode,
                                                   actor=actor_of(who)))
    if body.stream:
        return event_stream(request, stream)
    seen = stream.result()
    return ChatReply(conversation_id=seen["conversation"], **seen["done"].model_dump())


@router.get("/v1/conversations/{conversation_id}", summary="A conversation's turns")
def conversation(conversation_id: str, library: LibraryDep, who: PrincipalDep) -> dict:
    """Every question and answer of the conversation, oldest first (404 unless the caller may
    read the conversation's collection)."""
    name = library.records_store().conversation_collection(conversation_id)
    if name is None or not who.can("read", name):
        raise NotFoundError(f"No conversation {conversation_id!r}.",
                            hint="Conversation ids come from /v1/chat replies.")
    turns = library.collection(name).assistant.conversation(conversation_id)
    library.audit.append(actor_of(who), "conversation.read", "ok", name,
                         {"conversation_id": conversation_id, "turns": len(turns)})
    return {"conversation_id": conversation_id, "collection": name, "turns": turns}


@router.get("/v1/answers/{answer_id}", summary="An answer's audit record")
def answer_record(answer_id: str, library: LibraryDep, who: PrincipalDep) -> dict:
    """The answer as returned, with what produced it: query searched, passages (chunk ids and
    content hashes), model file and sha256, embedding model, index version, parameters,
    timings (404 unless the caller may read the answer's collection)."""
    record = library.records_store().get_answer(answer_id)
    if record is None or not who.can("read", record["collection"]):
        raise NotFoundError(f"No answer {answer_id!r}.", hint="Answer ids come from ask and chat replies.")
    library.audit.append(actor_of(who), "answer.read", "ok", record["collection"],
                         {"answer_id": answer_id})
    return record
