"""The embedder's own thread: callers from many threads get their own vectors, batched together,
errors reach every caller of a batch, and a forked child gets a thread of its own."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.models.embedder import _Worker


def slow_encode(calls: list, delay: float = 0.05):
    def encode(texts):
        calls.append((threading.current_thread().name, list(texts)))
        time.sleep(delay)  # long enough for other callers to queue up behind
        return [[float(len(t)), float(t.count("x"))] for t in texts]
    return encode


def test_callers_get_their_own_vectors_and_wait_together_in_batches():
    calls: list = []
    worker = _Worker(slow_encode(calls), batch_size=8)
    texts = ["x" * i for i in range(1, 41)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda t: worker.run([t]), texts))
    assert results == [[[float(len(t)), float(len(t))]] for t in texts]
    assert {name for name, _ in calls} == {"embedder"}  # never on a caller's thread
    sizes = [len(batch) for _, batch in calls]
    assert max(sizes) <= 8 and sum(sizes) == 40
    assert len(calls) < 40  # waiting questions went in together


def test_a_job_bigger_than_a_batch_runs_alone_and_whole():
    calls: list = []
    worker = _Worker(slow_encode(calls), batch_size=4)
    with ThreadPoolExecutor(3) as pool:
        small = [pool.submit(worker.run, ["a"]) for _ in range(2)]
        big = pool.submit(worker.run, [f"t{i}" for i in range(10)])
        assert len(big.result()) == 10 and all(len(f.result()) == 1 for f in small)
    assert [10] == [len(b) for _, b in calls if len(b) > 4]


def test_an_error_reaches_every_caller_of_the_batch_and_the_worker_goes_on():
    failing = {"on": True}

    def encode(texts):
        time.sleep(0.05)
        if failing["on"]:
            raise RuntimeError("model broke")
        return [[1.0] for _ in texts]

    worker = _Worker(encode, batch_size=8)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker.run, [str(i)]) for i in range(4)]
        for future in futures:
            with pytest.raises(RuntimeError, match="model broke"):
                future.result()
    failing["on"] = False
    assert worker.run(["again"]) == [[1.0]]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_a_thread_of_its_own():
    worker = _Worker(lambda texts: [[2.0] for _ in texts], batch_size=8)
    assert worker.run(["parent"]) == [[2.0]]
    pid = os.fork()
    if pid == 0:  # the child inherited the queue but not the thread
        ok = False
        try:
            ok = worker.run(["child"]) == [[2.0]]
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:  # hung: the child was waiting on a thread it does not have
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's embed never returned")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_the_real_model_gives_each_thread_the_vector_it_would_get_alone(real_embedder):
    texts = [f"question number {i} about {'paid leave ' * (i % 7)}travel" for i in range(24)]
    alone = [real_embedder.embed([t])[0] for t in texts]
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda t: real_embedder.embed([t])[0], texts))
    for a, b in zip(alone, together):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4  # padding in a batch: rounding only
