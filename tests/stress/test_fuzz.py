"""Hostile requests: the HTTP API fuzzed from its own OpenAPI schema, and explicit edge cases.

Schemathesis generates valid and invalid requests for every operation and checks that none gets
a 5xx, that no body leaks a stack trace, and that replies match the documented schema.  The short
run covers the query routes in the normal suite; `make stress` runs every operation, longer.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from tests.http import local_client
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance)

from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.auth import KeyStore
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace

# A Python traceback, or one of its frames, in a reply (not merely echoed from the request).
TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line \d+')


@schemathesis.check
def no_stack_trace(ctx, response, case):
    sent = repr((case.path, case.path_parameters, case.query, case.body))
    for match in TRACE.finditer(response.text or ""):
        if match.group(0) not in sent:
            raise AssertionError(f"response body leaks a stack trace: {response.text[:300]}")


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, no_stack_trace]


def build_app(root, **overrides):
    # Schemathesis addresses the app as 'testserver', a name the app answers to only when told.
    settings = make_settings(root, min_score=0.1, allowed_hosts=["testserver"], **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "harbour.txt").write_text(
        "The rescue launch uses VHF channel 72.\n\nThe harbour opens at dawn.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    Workspace(library).indexer.ingest()
    return settings, create_app(settings, library=library)


# Built at import: schemathesis parametrizes from a schema object (its lazy `from_fixture` does
# not work with this pytest).  Fake models keep it fast; the folder goes away at exit.
_ROOT = Path(tempfile.mkdtemp(prefix="archivist-fuzz-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
_, FUZZ_APP = build_app(_ROOT)


@pytest.fixture(scope="module", autouse=True)
def fuzz_app_running():
    with local_client(FUZZ_APP):  # runs the lifespan (warm-up) once
        yield


# POST /v1/keys would create a key, after which every later request is a 401: the explicit
# tests below cover keys and roles instead.
schema = schemathesis.openapi.from_asgi("/openapi.json", FUZZ_APP).exclude(
    method="POST", path="/v1/keys")

QUICK = ("/v1/search", "/v1/ask", "/v1/chat", "/v1/chat/completions", "/v1/embeddings",
         "/v1/health", "/v1/answers/{answer_id}")


@schema.include(path=list(QUICK)).parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz_quick(case):
    case.call_and_validate(checks=CHECKS)


@pytest.mark.stress
@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_operation(case):
    case.call_and_validate(checks=CHECKS)


# Explicit hostile requests -------------------------------------------------------------------

@pytest.fixture
def world(tmp_path):
    settings, app = build_app(tmp_path, max_body_mb=0.01)
    with local_client(app) as client:
        yield client, KeyStore(settings.keys_path)


def test_oversized_json_is_413(world):
    client, _ = world
    body = json.dumps({"question": "x" * 20_000})
    reply = client.post("/v1/ask", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "too large" in reply.json()["detail"]
    openai = client.post("/v1/chat/completions", content=json.dumps(
        {"model": "default", "messages": [{"role": "user", "content": "y" * 20_000}]}))
    assert openai.status_code == 413 and openai.json()["error"]["message"]


def test_oversized_body_without_content_length_is_413(world):
    client, _ = world
    chunks = (b"x" * 4096 for _ in range(10))  # streamed: no Content-Length
    reply = client.post("/v1/search", content=chunks, headers={"content-type": "application/json"})
    assert reply.status_code == 413


def test_uploads_are_limited_by_max_file_mb_not_max_body_mb(world):
    client, _ = world
    text = ("The lighthouse keeper logs the weather every hour. " * 400).encode()  # ~20 kB
    reply = client.post("/v1/documents", files=[("file", ("log.txt", text, "text/plain"))])
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize("body", ['{"question": ', "not json", '{"question": 5}', "[]", ""])
def test_malformed_json_is_422(world, body):
    client, _ = world
    reply = client.post("/v1/ask", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert "Traceback" not in reply.text


def test_unknown_collection_is_404(world):
    client, _ = world
    reply = client.post("/v1/search", json={"question": "channel", "collection": "nosuch"})
    assert reply.status_code == 404


def test_missing_or_wrong_key_is_401_and_wrong_role_is_403(world):
    client, keys = world
    reader = keys.create("reader")
    assert client.post("/v1/search", json={"question": "channel"}).status_code == 401
    assert client.post("/v1/search", json={"question": "channel"},
                       headers={"Authorization": "Bearer ak_wrong"}).status_code == 401
    ok = client.post("/v1/search", json={"question": "channel"},
                     headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200
    for method, path, body in (("POST", "/v1/keys", {"role": "admin"}), ("GET", "/v1/keys", None),
                               ("POST", "/v1/collections", {"name": "x"})):
        reply = client.request(method, path, json=body, headers={"X-API-Key": reader})
        assert reply.status_code == 403, (path, reply.text)
    upload = client.post("/v1/documents", headers={"X-API-Key": reader},
                         files=[("file", ("n.txt", b"A note.\n", "text/plain"))])
    assert upload.status_code == 403
