"""The first questions a new user asks: `make run` indexes only data/harbour-light-handbook.md;
these are twelve plain questions about it, each answered by a sentence in it (the first twelve
of tests/answers/questions.tune.jsonl).

    .venv/bin/python bench/sample_questions.py [--mode auto]

Prints each question with the answer (or the refusal and its reason), whether the answer holds
the expected fact, and the model's unverified draft when the answer quotes the handbook instead.
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["auto", "generative", "extractive"], default="auto")
    args = parser.parse_args()

    from ingest.indexer import Indexer
    from rag.answering.evaluation import Question, is_right
    from rag.core.offline import enforce_offline
    from rag.core.settings import load_settings
    from rag.library import Library

    enforce_offline()
    lines = (ROOT / "tests" / "answers" / "questions.tune.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line) for line in lines if line.strip()][:12]
    work = Path(tempfile.mkdtemp(prefix="archivist-sample-"))
    try:
        (work / "data").mkdir()
        shutil.copy(ROOT / "data" / "harbour-light-handbook.md", work / "data")
        library = Library(load_settings(data_dir=work / "data", index_dir=work / "index", watch=False))
        Indexer(library.default).ingest()
        assistant = library.default.assistant
        right = 0
        for item in questions:
            answer = assistant.start(item["q"], debug=True, mode=args.mode).result()["done"]
            ok = bool(is_right(answer, Question(item["id"], item["q"], tuple(item["expect"]), tuple(item["a"]))))
            right += ok
            shown = f"refused: {answer.reason}" if answer.refused else answer.answer
            print(f"- {'right' if ok else 'WRONG'}: {item['q']}\n    {shown}")
            if answer.draft:
                print(f"    (the model's unverified draft: {answer.draft!r})")
        print(f"\n{right}/{len(questions)} answered right ({args.mode}, {library.models.llm_name()})")
        library.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
