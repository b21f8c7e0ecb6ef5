"""A short run of the load test (bench/load.py) with fake models: it must finish by itself, see no
error (not even a 429: five clients never fill the default queue of 8), and report every figure."""

from __future__ import annotations

from bench.load import KINDS, render, run


def test_load_smoke():
    report = run(clients=5, seconds=5, fake=True, timeout=30, warm_up=2)
    assert report["errors"] == {}, report["errors"]
    assert report["statuses"] == {"200": report["requests"]}
    assert report["ok"] > 0 and report["unfinished_clients"] == 0
    for kind in KINDS:
        figures = report["kinds"][kind]
        assert figures["ok"] > 0
        assert 0 < figures["p50_s"] <= figures["p95_s"] <= figures["p99_s"]
    assert report["share_429"] == 0
    assert report["rss_mb_before"] > 0 and report["rss_mb_after"] > 0
    assert {phase for _, _, phase in report["rss_mb_series"]} == {"warm-up", "run"}
    assert "p95" in render(report) and "RSS" in render(report)
