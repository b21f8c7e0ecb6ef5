"""GET /metrics, request ids and JSON log lines, on a real index with a deterministic generator."""

import io
import json
import logging

import pytest
from tests.http import local_client
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from tests.workspace import Workspace
from service.logs import make_handler
from tests.fakes import FakeGenerator

QUESTION = "What is the maximum load of the Orion crane?"


class LoggingGenerator(FakeGenerator):
    """Logs from inside generation, which runs in a worker thread, not the request's task."""

    def generate(self, messages, params, stop=None):
        logging.getLogger("tests.generator").warning("generating")
        yield from super().generate(messages, params, stop)


@pytest.fixture
def app_and_engine(tmp_path, data_dir, real_embedder):
    ws = Workspace.make(tmp_path, embedder=real_embedder,
                    generator=LoggingGenerator("The maximum load is 18 tonnes [1]."))
    app = create_app(ws.settings, ws.library)
    report = ws.indexer.ingest()  # after create_app: the app counts the ingests it sees
    return app, ws, report


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_expose_requests_queue_tokens_ingest_and_index_size(app_and_engine):
    app, ws, report = app_and_engine
    with local_client(app) as client:
        assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200
        assert client.post("/v1/ask", json={"question": QUESTION}).json()["cached"]  # no new tokens
        assert client.post("/v1/search", json={"question": " "}).status_code == 422
        assert client.get("/v1/answers/nope").status_code == 404
        assert client.get("/no/such/page").status_code == 404
        reply = client.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    got = samples(reply.text)

    def request_count(method, route, status):
        return got[("archivist_http_requests_total",
                    (("method", method), ("route", route), ("status", status)))]

    assert request_count("POST", "/v1/ask", "200") == 2
    assert request_count("POST", "/v1/search", "422") == 1
    assert request_count("GET", "/v1/answers/{answer_id}", "404") == 1  # the template, not the id
    assert request_count("GET", "unmatched", "404") == 1
    assert got[("archivist_http_request_duration_seconds_count",
                (("method", "POST"), ("route", "/v1/ask"), ("status", "200")))] == 2
    assert got[("archivist_queue_waiting", ())] == 0 and got[("archivist_queue_running", ())] == 0
    assert got[("archivist_queue_limit", ())] == 8
    # "The maximum load is 18 tonnes [1]." is 7 pieces; the cached repeat generates nothing.
    assert got[("archivist_generated_tokens_total", ())] == 7
    assert got[("archivist_generation_tokens_per_second_count", ())] == 1
    assert report.added > 5
    assert got[("archivist_ingest_files_total", (("collection", "default"), ("outcome", "added")))] \
        == report.added
    assert got[("archivist_ingest_files_total", (("collection", "default"), ("outcome", "failed")))] \
        == report.failed
    assert got[("archivist_index_chunks", (("collection", "default"),))] == ws.store.count() > 0


def test_each_app_has_its_own_registry(app_and_engine):
    app, ws, _ = app_and_engine
    other = create_app(ws.settings, ws.library)  # would raise "Duplicated timeseries" if shared
    with local_client(other) as client:
        client.get("/v1/health")
        text = client.get("/metrics").text
    assert 'route="/v1/health"' in text
    assert 'archivist_ingest_files_total{collection="default",outcome="added"}' not in text


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root, access = logging.getLogger(), logging.getLogger("archivist.access")
    root.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    access.setLevel(old_level)
    root.removeHandler(handler)


def test_json_logs_carry_the_request_id_into_worker_threads(app_and_engine, json_log):
    app, _, _ = app_and_engine
    with local_client(app) as client:
        reply = client.post("/v1/ask", json={"question": QUESTION},
                            headers={"X-Request-ID": "req-42"})
        made = client.get("/v1/health")
        forged = client.get("/v1/health", headers={"X-Request-ID": "forged id\" level=ERROR"})
    assert reply.headers["X-Request-ID"] == "req-42"
    assert len(made.headers["X-Request-ID"]) == 32  # made up when none is sent
    assert len(forged.headers["X-Request-ID"]) == 32  # replaced: it could forge log lines

    lines = json_log()
    generating = next(line for line in lines if line["message"] == "generating")
    assert generating["request_id"] == "req-42" and generating["level"] == "WARNING"
    assert generating["logger"] == "tests.generator"
    access = next(line for line in lines
                  if line["logger"] == "archivist.access" and line["request_id"] == "req-42")
    assert access["route"] == "/v1/ask" and access["status"] == 200 and access["method"] == "POST"
    assert access["duration_ms"] > 0 and access["time"].endswith("Z")
    assert "POST /v1/ask 200" in access["message"]
    assert {line["request_id"] for line in lines if line["logger"] == "archivist.access"} == {
        "req-42", made.headers["X-Request-ID"], forged.headers["X-Request-ID"]}


def test_text_logs_name_the_request_id(app_and_engine):
    app, _, _ = app_and_engine
    stream = io.StringIO()
    handler = make_handler("text", stream)
    logger = logging.getLogger("tests.generator")
    logger.addHandler(handler)
    try:
        with local_client(app) as client:
            client.post("/v1/ask", json={"question": QUESTION}, headers={"X-Request-ID": "t-1"})
    finally:
        logger.removeHandler(handler)
    assert "WARNING tests.generator [t-1] generating" in stream.getvalue()
