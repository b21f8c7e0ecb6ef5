"""Answer quality on tests/answers: right answers, refusals, invented facts, per answer mode and
language, with the real models.

    .venv/bin/python bench/answers.py                       # final held-back questions, every mode
    .venv/bin/python bench/answers.py --set tune --set dev --mode auto --show-wrong
    ARCHIVIST_LLM_MODEL=/models/qwen.gguf .venv/bin/python bench/answers.py

Indexes data/harbour-light-handbook.md, tests/answers/docs/ and docs-final/ into a temporary folder, asks
every question of the set in each mode (the generative and auto modes run the chat model: about
ten minutes for both on 2 cores), prints a Markdown table and writes it, with every wrong answer,
to bench/results/answers-<set>-<model>.json.  Sets (tests/answers/README.md): `tune` and `dev`
are tuned on; `final` is the held-back set, only ever reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ANSWERS = ROOT / "tests" / "answers"
MODES = ("extractive", "auto", "generative")
SETS = ("tune", "dev", "final")


def corpus(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "harbour-light-handbook.md", dest)
    for folder in ("docs", "docs-final"):
        for path in sorted((ANSWERS / folder).glob("*")) if (ANSWERS / folder).is_dir() else ():
            shutil.copy(path, dest)
    return dest


def split_by_language(questions: Path, dest: Path) -> dict[str, Path]:
    """One question file per language: English and Chinese are reported apart."""
    from rag.language.text import is_cjk

    lines = [line for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = {}
    for language, wanted in (("English", False), ("Chinese", True)):
        path = dest / f"{questions.stem}.{'zh' if wanted else 'en'}.jsonl"
        path.write_text("\n".join(line for line in lines if is_cjk(json.loads(line)["q"]) == wanted) + "\n",
                        encoding="utf-8")
        out[language] = path
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", choices=SETS,
                        help="question sets, asked together (default: final)")
    parser.add_argument("--mode", action="append", choices=MODES)
    parser.add_argument("--show-wrong", action="store_true", help="print every wrong answer")
    args = parser.parse_args()

    from ingest.indexer import Indexer
    from rag.answering.evaluation import AnswerReport
    from rag.core.offline import enforce_offline
    from rag.core.sections import EmbeddingConfig
    from rag.core.settings import load_settings
    from rag.library import Library

    enforce_offline()
    work = Path(tempfile.mkdtemp(prefix="archivist-answers-"))
    try:
        settings = load_settings(data_dir=corpus(work / "data"), index_dir=work / "index", watch=False)
        library = Library(settings)
        report = Indexer(library.default).ingest()
        assert not report.failed, report.failures
        chosen = "+".join(args.set or ["final"])
        questions = work / f"questions.{chosen}.jsonl"
        questions.write_text("\n".join((ANSWERS / f"questions.{name}.jsonl").read_text(encoding="utf-8").strip()
                                       for name in chosen.split("+")) + "\n", encoding="utf-8")
        files = split_by_language(questions, work)
        assistant = library.default.assistant
        reports: list[AnswerReport] = [
            r for r in assistant.evaluate(list(files.values()), 4, answers=True,
                                          modes=args.mode or list(MODES))
            if isinstance(r, AnswerReport)]
        followups = {mode: conversations(assistant, mode, chosen) for mode in (args.mode or list(MODES))}
        model = library.models.llm_name()
        embed_model = library.settings.embedding.embed_model
        library.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = {path.name: language for language, path in files.items()}
    rows = ["| mode | language | right | wrongly refused | unanswerable refused | invented facts "
            "| supported sentences | quoted |", "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        rows.append(f"| {r.mode} | {names[r.name]} | {_pct(r.right)} | {_pct(r.refused_answerable)} "
                    f"| {_pct(r.refused_unanswerable)} | {_pct(r.invented)} "
                    f"| {_pct(r.supported_sentences)} | {_pct(r.quoted)} |")
    print(f"{chosen} questions, chat model {model}\n")
    print("\n".join(rows))
    print("\n| mode | follow-up turns answered right |\n|---|---|")
    for mode, turns in followups.items():
        right = [t for t in turns if t["right"]]
        print(f"| {mode} | {len(right)}/{len(turns)} |")
    if args.show_wrong:
        for r in reports:
            for wrong in r.wrong:
                print(f"\n[{r.mode}] {wrong['id']} {wrong['q']}\n  expected {wrong['a']}\n  got {wrong['got']!r}")
        for mode, turns in followups.items():
            for t in turns:
                if not t["right"]:
                    print(f"\n[{mode}] {t['id']} {t['q']} (searched: {t['query']})\n  expected {t['a']}\n  got {t['got']!r}")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    suffix = "" if embed_model == EmbeddingConfig().embed_model else f"-{embed_model}"
    out = results / f"answers-{chosen}-{Path(model).stem}{suffix}.json"
    out.write_text(json.dumps({"set": chosen, "model": model, "embed_model": embed_model, "language": names,
                               "reports": [r.to_dict() for r in reports], "follow_ups": followups},
                              indent=2, ensure_ascii=False))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


def conversations(assistant, mode: str, chosen: str) -> list[dict]:
    """Every follow-up turn (each turn after the first) of the conversations that go with the
    sets: conversations.jsonl (tuned on) with tune or dev, conversations.final.jsonl with final;
    each asked in its conversation: did the answer hold the expected fact?"""
    from rag.answering.evaluation import Question, is_right

    turns = []
    names = (["conversations.jsonl"] if {"tune", "dev"} & set(chosen.split("+")) else []) + \
        (["conversations.final.jsonl"] if "final" in chosen.split("+") else [])
    lines = [line for name in names for line in (ANSWERS / name).read_text(encoding="utf-8").splitlines()
             if line.strip()]
    for line in lines:
        conversation = json.loads(line)
        history: list[tuple[str, str]] = []
        for number, turn in enumerate(conversation["turns"]):
            answer = assistant.start(turn["q"], history=history, debug=True, mode=mode).result()["done"]
            if number and turn.get("a"):
                question = Question(conversation["id"], turn["q"], tuple(turn["expect"]), tuple(turn["a"]))
                turns.append({"id": f"{conversation['id']}.{number}", "q": turn["q"], "a": turn["a"],
                              "query": answer.query, "got": answer.answer[:300],
                              "right": bool(is_right(answer, question))})
            history.append((answer.query or turn["q"], answer.answer))
    return turns


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


if __name__ == "__main__":
    sys.exit(main())
