"""`make bench`: the five benchmarks of issue 14 and the embedding ceiling, one after the other,
each in its own process; results in bench/results/*.json and the table bench/results/bench.md.

    .venv/bin/python bench/run.py [--quick] [--only ingest search generation rss embed]
    .venv/bin/python bench/run.py --table-only      # rebuild bench.md from the JSON files

--quick: every 10th file of the corpus for the ingest benchmarks (the rest is unchanged).
Every figure is a ratio measured within one run, or a latency: absolute times drift on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# name -> (script, extra arguments, quick extra arguments)
BENCHES = {
    "ingest": ("bench/ingest_bench.py", [], ["--quick"]),
    "embed": ("bench/embed_speed.py", [], ["--files", "10"]),
    "search": ("bench/search_latency.py", [], []),
    "generation": ("bench/generation_overhead.py", [], []),
    "rss": ("bench/serve_rss.py", [], ["--seconds", "30"]),
}


def load(name: str) -> dict | list | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def table() -> str:
    lines = ["| # | benchmark | measured | target | |", "|---|---|---|---|---|"]

    def row(n, what, measured, target, ok):
        lines.append(f"| {n} | {what} | {measured} | {target} | {_met(ok)} |")

    ingest = load("ingest")
    if ingest:
        scope = "every 10th file" if ingest["quick"] else "full corpus"
        for r in ingest["full_ingest"]:
            o, n = r["ours"], r["naive"]
            row(1, f"full ingest, {r['corpus']} ({r['files']} files, {r['mb']:.1f} MB, {scope})",
                f"Archivist {o['seconds']:.0f} s vs naive {n['seconds']:.0f} s "
                f"(**{n['seconds'] / o['seconds']:.2f}×** naive's speed); MB/s {o['mb_per_s']:.3f} vs "
                f"{n['mb_per_s']:.3f}; chunks/s {o['chunks_per_s']:.1f} vs {n['chunks_per_s']:.1f}; "
                f"embedded tokens/s {o['embedded_tokens_per_s']:.0f} vs {n['embedded_tokens_per_s']:.0f}; "
                f"share of each chunk's tokens embedded {o['share_seen']:.0%} vs {n['share_seen']:.0%}",
                "no slower than naive (≥ 1.00×)", o["seconds"] <= n["seconds"])
            for ours_q, naive_q in zip(o.get("retrieval", []), n.get("retrieval", [])):
                if ours_q["answerable"]:
                    row(1, f"retrieval on that index, {ours_q['name']} ({ours_q['answerable']} questions)",
                        f"hit@5 / MRR@10: Archivist {ours_q['hit_at_5']:.3f} / {ours_q['mrr_at_10']:.3f}, "
                        f"naive {naive_q['hit_at_5']:.3f} / {naive_q['mrr_at_10']:.3f}",
                        "equal or better", ours_q["hit_at_5"] >= naive_q["hit_at_5"]
                        and ours_q["mrr_at_10"] >= naive_q["mrr_at_10"])
                else:
                    row(1, f"retrieval on that index, {ours_q['name']} ({ours_q['unanswerable']} "
                        "unanswerable)", f"refused by retrieval: Archivist "
                        f"{ours_q['refused_unanswerable']:.2f}, naive {naive_q['refused_unanswerable']:.2f}",
                        "", None)
        for r in ingest["resync"]:
            target, ok = "", None
            if r["scenario"] == "unchanged":
                target, ok = "≤ 3% of full ingest", r["share_of_full_ingest"] <= 0.03
            elif "renamed" in r["scenario"]:
                target, ok = "0 chunks embedded", r["chunks_embedded"] == 0
            row(2, f"re-sync: {r['scenario']}",
                f"{r['seconds']:.1f} s = {r['share_of_full_ingest']:.1%} of the full ingest; "
                f"{r['chunks_embedded']} chunks embedded", target, ok)
    search = load("search")
    if search:
        for r in search:
            for mode in ("dense", "hybrid"):
                m = r[mode]
                big = r["chunks"] >= 100_000
                row(3, f"search, {mode}, {r['chunks']:,} chunks",
                    f"p50 {m['p50_ms']:.1f} ms, p95 {m['p95_ms']:.1f} ms",
                    "p95 < 50 ms at 100k" if big else "", m["p95_ms"] < 50 if big else None)
    gen = load("generation")
    if gen:
        s = gen["summary"]
        row(4, f"generation, {s['model']}, {s['threads']} threads (medians)",
            f"/v1/ask: TTFT {s['served']['ttft_ms']:.0f} ms, {s['served']['tokens_per_s']:.1f} tok/s; "
            f"bare llama_cpp: TTFT {s['bare']['ttft_ms']:.0f} ms, {s['bare']['tokens_per_s']:.1f} tok/s; "
            f"overhead on tokens/s **{s['tokens_per_s_overhead']:.1%}**",
            "overhead ≤ 10% of tokens/s", s["tokens_per_s_overhead"] <= 0.10)
    rss = load("rss")
    if rss:
        row(5, f"`archivist serve` RSS, defaults ({rss['clients']} clients, {rss['seconds']:.0f} s, "
            f"{rss['requests']} requests)",
            f"idle {rss['idle_rss_mb']:.0f} MB; peak under load {rss['load_peak_mb']:.0f} MB",
            "< 1.5 GB", rss["load_peak_mb"] < 1536)
    embed = load("embed")
    if embed:
        lines.append("")
        lines.append(f"Embedding against the ceiling: fp32 matrix product (torch, {embed['threads']} "
                     f"threads) {embed['gemm_gflops']:.0f} GFLOP/s ÷ {embed['mflop_per_token']:.1f} "
                     f"MFLOP/token = **{embed['ceiling_tokens_per_s']:.0f} tokens/s**; CPU: "
                     f"{', '.join(embed['cpu_has'])}. Target: ≥ 80% of the ceiling."
                     + (f" The same probe in bf16 (AMX tiles): {embed['bf16_gemm_gflops']:.0f} "
                        f"GFLOP/s = {embed['bf16_ceiling_tokens_per_s']:.0f} tokens/s."
                        if "bf16_gemm_gflops" in embed else ""))
        lines.append("")
        lines.append("| variant | corpus | tokens/s | share of fp32 ceiling | share of bf16 ceiling "
                     "| vs torch | cosine to torch (mean / min) |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in embed["rows"]:
            bf16 = f"{r['share_of_bf16_ceiling']:.0%}" if "share_of_bf16_ceiling" in r else "–"
            lines.append(f"| {r['variant']} | {r['corpus']} | {r['tokens_per_s']:.0f} | "
                         f"{r['share_of_ceiling']:.0%} | {bf16} | {r['speedup_vs_torch']:.2f}× | "
                         f"{r['cosine_to_torch_mean']:.5f} / {r['cosine_to_torch_min']:.5f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.table_only:
        for name in args.only:
            script, extra, quick = BENCHES[name]
            started = time.perf_counter()
            print(f"== {name}: {script}", flush=True)
            done = subprocess.run([sys.executable, script, *extra, *(quick if args.quick else []),
                                   "--json", str(RESULTS / f"{name}.json")], cwd=ROOT,
                                  stdout=subprocess.DEVNULL)
            print(f"== {name}: exit {done.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
            if done.returncode:
                failed.append(name)
    text = table()
    (RESULTS / "bench.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
