"""HTTP requests to the API replicas, as a client would send them (stdlib only: the check runs
before, and without, the project's virtual environment)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

REPLICAS = {"api": "http://127.0.0.1:8000", "api-2": "http://127.0.0.1:8001"}
LLM_URL = "http://127.0.0.1:8080/v1"  # ARCHIVIST_LLM_URL in deploy/compose.podman.yaml
# Answered by data/harbour-light-handbook.md, the sample document the check ingests.
QUESTION = "How much does full membership of the cooperative cost per year?"
# Asked first while the model server is down: an answer asked before would come from the
# response cache (in PostgreSQL) without the model.
UNCACHED = "On which VHF channel does the rescue launch listen?"
SOURCE = "harbour-light-handbook.md"


def post(url: str, body: dict, key: str, timeout: float = 300) -> tuple[int, dict]:
    """(status, JSON body) of a POST; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def search(replica: str, key: str) -> list[tuple[str, str]]:
    """(source, chunk id) of the top passages for QUESTION; raises unless the reply is 200."""
    status, body = post(f"{REPLICAS[replica]}/v1/search", {"question": QUESTION, "top_k": 4}, key)
    if status != 200:
        raise AssertionError(f"search on {replica}: {status} {body}")
    return [(hit["source"], hit["chunk_id"]) for hit in body["results"]]


def ask(replica: str, key: str, question: str = QUESTION) -> tuple[int, dict]:
    return post(f"{REPLICAS[replica]}/v1/ask", {"question": question}, key)


def citations(body: dict) -> list[tuple[str, str]]:
    return [(c["source"], c["chunk_id"]) for c in body.get("citations", [])]
