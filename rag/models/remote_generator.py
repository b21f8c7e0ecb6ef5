"""Generation on OpenAI-compatible model servers (ARCHIVIST_LLM_URL): `python -m llama_cpp.server`,
llama.cpp's `llama-server` with parallel slots, vLLM.

Several URLs are used in turn (round-robin) and stand in for each other: a server that refuses
the connection, times out or answers 5xx before the first token is skipped for the next one, and
after a full round the whole list is tried again with a growing pause.  Once a reply has started
streaming it is not retried elsewhere (the client has part of it): a server dying mid-reply is a
GenerationError.  When no server answers, ModelServerUnavailableError names them (HTTP 503);
search never touches this module, so it keeps working.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Iterator

from rag.core.errors import GenerationError
from rag.core.sections import LlmConfig, SamplingParams
from rag.models.server_pool import NoServerAnswered, ServerPool, Skip, describe, http_client

log = logging.getLogger(__name__)

_TOKENIZE_ROUTES = (  # (path below the server root, body key, how to read the answer)
    ("/extras/tokenize/count", "input", lambda reply: reply["count"]),  # llama_cpp.server
    ("/tokenize", "content", lambda reply: len(reply["tokens"])),        # llama.cpp llama-server
)


class ModelServerUnavailableError(GenerationError):
    """No model server at ARCHIVIST_LLM_URL answered (HTTP 503)."""


def estimate_tokens(text: str) -> int:
    """A count never below the true one, for servers that cannot count: a byte-level BPE token
    covers at least one UTF-8 byte.  It over-counts English about fourfold (digits and
    identifiers much less), so fewer passages fit than could: a reason to use a server that
    tokenizes."""
    return len(text.encode("utf-8"))


class OpenAICompatibleGenerator:
    """The Generator interface (rag/models/generator.py) over one or more model servers."""

    def __init__(self, cfg: LlmConfig) -> None:
        self._pool = ServerPool(cfg.servers)
        self.urls = self._pool.urls
        self.context_window = cfg.n_ctx
        self._model = cfg.servers.served_model
        self._http = http_client(cfg.servers)
        self._tokenize: tuple[str, str, object] | None | bool = None  # unknown / route / False
        self._unreachable_until = 0.0
        # What the answer records and cache keys call this model: stable, and known without
        # asking a server that may be down.
        self.name = f"{self._model or 'served'}@{self.urls[0]}"

    def close(self) -> None:
        self._http.close()

    # --- generation --------------------------------------------------------------------
    def generate(self, messages: list[dict[str, str]], params: SamplingParams,
                 stop: list[str] | None = None) -> Iterator[str]:
        body = {"messages": messages, "stream": True, "temperature": params.temperature,
                "top_p": params.top_p, "max_tokens": params.max_tokens, "seed": params.seed,
                "stop": stop or []}
        if self._model:
            body["model"] = self._model
        url, response = self._first_to_answer(body)
        try:
            yield from self._pieces(url, response)
        finally:
            response.close()

    def _first_to_answer(self, body: dict):
        def ask(url: str):
            request = self._http.build_request("POST", f"{url}/chat/completions", json=body)
            response = self._http.send(request, stream=True)
            if response.status_code >= 500 or response.status_code == 429:
                response.close()
                raise Skip(f"HTTP {response.status_code}")
            if response.status_code >= 400:  # the request itself is wrong: retrying won't help
                detail = response.read().decode("utf-8", "replace")[:300]
                response.close()
                raise GenerationError(
                    f"The model server at {url} refused the request (HTTP "
                    f"{response.status_code}): {detail}",
                    hint="Check ARCHIVIST_LLM_SERVED_MODEL and ARCHIVIST_LLM_API_KEY, and that the "
                         "server's context is at least ARCHIVIST_N_CTX tokens.")
            return url, response

        try:
            return self._pool.first_answer(ask)
        except NoServerAnswered as exc:
            raise ModelServerUnavailableError(
                f"No model server answered: {exc}",
                hint="Check that the model server is running and reachable there (e.g. `python -m "
                     "llama_cpp.server --model FILE.gguf --port 8080`) and that ARCHIVIST_LLM_URL "
                     "names its /v1 address. Search keeps working meanwhile; the next question "
                     "after it is back is answered.") from None

    @staticmethod
    def _pieces(url: str, response) -> Iterator[str]:
        import httpx

        finished = False  # a reply ends with [DONE] or a finish_reason; anything else was cut
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                choices = json.loads(data).get("choices") or [{}]
                finished = finished or bool(choices[0].get("finish_reason"))
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield piece
            problem = None if finished else "the connection closed before the reply's end"
        except (httpx.TransportError, ValueError) as exc:
            problem = describe(exc)
        if problem:
            raise GenerationError(f"The model server at {url} stopped in the middle of a reply "
                                  f"({problem}).",
                                  hint="Ask again: another server (or this one, once back) "
                                       "will answer.")

    # --- token counting ----------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """The served model's own count where the server offers one (llama_cpp.server,
        llama-server), else a safe over-estimate (see estimate_tokens)."""
        import httpx

        if self._tokenize is False or time.monotonic() < self._unreachable_until:
            return estimate_tokens(text)
        routes = [self._tokenize] if self._tokenize else list(_TOKENIZE_ROUTES)
        for url in self.urls:  # not the pool's order: counting must not take a generation's turn
            root = url[:-3] if url.endswith("/v1") else url
            for path, key, read in routes:
                try:
                    reply = self._http.post(f"{root}{path}", json={key: text}, timeout=10)
                except httpx.TransportError:
                    break  # this server is down: the next one may count
                if reply.status_code == 200:
                    try:
                        count = int(read(reply.json()))
                    except (ValueError, KeyError, TypeError):
                        continue
                    self._tokenize = (path, key, read)
                    return count
            else:  # it answered, but on no tokenizer route: servers of one URL list are alike
                if self._tokenize is None:
                    log.info("the model server offers no tokenizer route: counting by estimate")
                    self._tokenize = False
                return estimate_tokens(text)
        # nobody answered: don't pay a connection attempt per passage until one may be back
        self._unreachable_until = time.monotonic() + 5.0
        return estimate_tokens(text)

    def probe(self) -> str | None:
        """Why no server answers /models right now, or None when one does (start-up check)."""
        import httpx

        problems = []
        for url in self.urls:
            try:
                if self._http.get(f"{url}/models", timeout=5).status_code < 500:
                    return None
                problems.append(f"{url} (server error)")
            except httpx.HTTPError as exc:
                problems.append(f"{url} ({describe(exc)})")
        return "; ".join(problems)
