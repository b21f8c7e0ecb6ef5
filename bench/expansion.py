"""Query expansion measured: each question set searched as asked and with the chat model's names
added (rag/retrieval/expansion.py), over an index already built, in one run.  Prints hit@1, hit@5,
MRR@10, passage@5 and the search's median time (expansion included) for both, and writes every
expansion to --json.

    .venv/bin/python bench/expansion.py --index .eval/ours-index-zh-hard --data .eval/corpus-zh \\
        --set tests/eval/questions.zh-hard.heldout.jsonl \\
        --model /tmp/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

Without --model the configured chat model is used (the bundled SmolLM2-135M by default).  Fetch
Qwen with `ARCHIVIST_MODELS_DIR=/tmp/models archivist models pull qwen2.5-coder-0.5b-instruct-q4_k_m`.
Tune on the tuning halves only; run the held-back halves once the settings are chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answering.evaluation import evaluate, load_questions  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index folder (ARCHIVIST_INDEX_DIR)")
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder it indexes")
    parser.add_argument("--set", action="append", type=Path, required=True, dest="sets")
    parser.add_argument("--model", type=Path, help="chat model GGUF (default: the configured one)")
    parser.add_argument("--which", choices=["all", "cjk"], default="all",
                        help="questions to expand (ARCHIVIST_QUERY_EXPANSION)")
    parser.add_argument("--json", type=Path, help="write the reports and every expansion here")
    args = parser.parse_args()
    enforce_offline()

    from rag.core.settings import Settings
    from rag.library import Library

    overrides = {"query_expansion": args.which}
    if args.model:
        overrides["llm_model"] = args.model
    library = Library(Settings(data_dir=args.data, index_dir=args.index, **overrides))
    assistant = library.default.assistant
    print(f"chat model: {library.default.models.llm_name()}, expanding: {args.which}")
    results, expansions = [], {}
    with library.default.views.reading() as view:
        retriever = assistant.retriever(view)

        def expanded(question: str, top_k: int):
            expansions[question] = assistant.expander.expand(question)
            return retriever.search(question, top_k, expansion=expansions[question])

        for path in args.sets:
            questions = load_questions(path)
            assistant.expander.expand(questions[0].q)  # the model loads outside the timings
            for label, search in (("as asked", retriever.search), ("expanded", expanded)):
                r = evaluate(path.name, questions, search, 10)
                p5 = "-" if r.passage_at_5 is None else f"{r.passage_at_5:.3f}"
                print(f"{path.name:<36} {label:<9} n={r.answerable:<3} hit@1 {r.hit_at_1:.3f}  "
                      f"hit@5 {r.hit_at_5:.3f}  MRR@10 {r.mrr_at_10:.3f}  passage@5 {p5}  "
                      f"p50 {r.latency_p50_ms:.0f} ms", flush=True)
                results.append({"set": path.name, "search": label, **r.to_dict()})
    if args.json:
        args.json.write_text(json.dumps({"model": library.default.models.llm_name(), "which": args.which,
                                         "reports": results, "expansions": expansions},
                                        ensure_ascii=False, indent=2))
    library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
