"""The scaled-out topology, all real and on loopback: a Chroma server (`chroma run`), a PostgreSQL
cluster, a model server (`python -m llama_cpp.server` with the bundled model) and two
`archivist serve` processes configured only by environment variables, as on two hosts (each has
its own data and index folders; they share nothing but the servers).

Through the two replicas: the CLI's ingest is searched identically on both and identically to
the embedded mode, in English and Chinese; a conversation started on one continues on the other;
a file uploaded to one is found by the other; a model server killed mid-answer is a clear error
and a 503 naming it while search goes on, and its return is noticed."""

from __future__ import annotations

import shutil
import threading

import httpx
import pytest

from tests.chroma_server import ChromaServer
from tests.model_server import ModelServer
from tests.replica import Replica, run_cli

QUESTIONS = ["Which port does the metrics exporter listen on?",
             "How many days of paid leave do employees get?",
             "员工每年有多少天带薪年假？"]
ASK = {"question": "How many days of paid leave do employees get?", "mode": "generative"}


def _search(replica: Replica, question: str) -> list[tuple[str, str, float]]:
    reply = httpx.post(f"{replica.url}/v1/search", json={"question": question, "top_k": 4},
                       timeout=60)
    assert reply.status_code == 200, reply.text
    return [(c["source"], c["chunk_id"], round(c["score"], 4)) for c in reply.json()["results"]]


@pytest.fixture(scope="module")
def topology(tmp_path_factory, corpus, postgres_server):
    root = tmp_path_factory.mktemp("topology")
    chroma = ChromaServer(root / "chroma").start()
    model = ModelServer().start()
    shared = {"chroma_url": chroma.url, "db_url": postgres_server.fresh_database(),
              "llm_url": model.url, "llm_retries": "0", "min_score": "0.1"}
    hosts = []
    for name in ("a", "b"):
        (root / name).mkdir()
        shutil.copytree(corpus, root / name / "data")  # each host's own copy of the documents
        hosts.append(root / name)
    replicas = []
    try:
        run_cli(hosts[0], "ingest", **shared)  # the CLI writes straight to the servers
        replicas = [Replica(host, **shared).start() for host in hosts]
        yield replicas, model
    finally:
        for replica in replicas:
            replica.stop()
        model.stop()
        chroma.stop()


def test_both_replicas_search_alike_and_like_the_embedded_mode(topology, ingested):
    (a, b), _ = topology
    for question in QUESTIONS:
        on_a = _search(a, question)
        assert on_a and on_a == _search(b, question), question
        embedded = [(c.source, c.chunk_id, round(c.score, 4))
                    for c in ingested.assistant.search(question, 4)]
        # the same chunks, ids and order; the scores agree to rounding (float32 on the server)
        assert [hit[:2] for hit in on_a] == [hit[:2] for hit in embedded], question
        assert all(abs(x[2] - y[2]) < 1e-3 for x, y in zip(on_a, embedded)), question
    assert _search(a, QUESTIONS[2])[0][0] == "legacy/gbk.txt"
    # nothing of Chroma or the shared state is written on a replica's host
    for replica in (a, b):
        index = replica.root / "index"
        assert not (index / "chroma").exists() and not list(index.rglob("*.sqlite3")), \
            sorted(index.rglob("*"))


def test_a_conversation_started_on_one_replica_continues_on_the_other(topology):
    (a, b), _ = topology
    first = httpx.post(f"{a.url}/v1/chat", json={**ASK, "question": "Where do visitors park?"},
                       timeout=120)
    assert first.status_code == 200, first.text
    conversation = first.json()["conversation_id"]
    second = httpx.post(f"{b.url}/v1/chat", timeout=120,
                        json={**ASK, "question": "Behind which building?",
                              "conversation_id": conversation})
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == conversation
    turns = httpx.get(f"{a.url}/v1/conversations/{conversation}", timeout=30).json()
    assert [t["question"] for t in turns["turns"]] == ["Where do visitors park?",
                                                      "Behind which building?"]


def test_a_file_uploaded_to_one_replica_is_found_on_the_other(topology):
    (a, b), _ = topology
    question = "When does the ferry to Kerrowan leave?"
    assert "ferry.txt" not in [hit[0] for hit in _search(b, question)]
    text = b"The ferry to Kerrowan leaves at 07:40 from pier 3.\n"
    reply = httpx.post(f"{a.url}/v1/documents", files={"file": ("ferry.txt", text, "text/plain")},
                       timeout=120)
    assert reply.status_code == 201, reply.text
    # at once: b notices the new index version at its next request
    assert "ferry.txt" in [hit[0] for hit in _search(b, question)]


def test_a_model_server_killed_mid_answer_is_a_clear_error_then_a_503_and_its_return_is_noticed(
        topology):
    (a, b), model = topology
    events: list[tuple[str, str]] = []
    first_token = threading.Event()

    def stream() -> None:
        with httpx.stream("POST", f"{a.url}/v1/ask", json={**ASK, "stream": True},
                          timeout=120) as reply:
            kind = None
            for line in reply.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind:
                    events.append((kind, line[5:].strip()))
                    if kind == "token":
                        first_token.set()
        first_token.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert first_token.wait(120)
    model.stop()  # killed, as a crash would: mid-reply
    reader.join(120)
    kinds = [kind for kind, _ in events]
    assert "token" in kinds and kinds[-1] == "error", kinds
    assert "done" not in kinds

    reply = httpx.post(f"{b.url}/v1/ask", json=ASK, timeout=120)
    assert reply.status_code == 503, reply.text
    assert model.url in reply.json()["detail"]
    assert _search(b, ASK["question"])[0][0] == "handbook.md"  # search does not need the model

    model.start()  # returns once it answers: the very next question must succeed
    reply = httpx.post(f"{a.url}/v1/ask", json=ASK, timeout=120)
    assert reply.status_code == 200, reply.text
    assert reply.json()["answer"].strip()
