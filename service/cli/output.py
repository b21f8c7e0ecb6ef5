"""How the CLI prints: JSON for scripts, plain text for people."""

from __future__ import annotations

import json

from rag.core.shapes import Answer, Citation


def print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def where(c: Citation) -> str:
    text = c.source + (f", page {c.page}" if c.page is not None else "")
    text += f" — {c.heading}" if c.heading else ""
    # OCR text may hold misread characters: say so where the source is named.
    return text + (f" (OCR, confidence {c.ocr_confidence:.2f})" if c.ocr and c.ocr_confidence is not None else "")


def print_answer(answer: Answer) -> None:
    print(answer.answer)
    if answer.refused and answer.reason:
        print(f"\n(refused: {answer.reason})")
    if answer.citations:
        print("\nClosest passages:" if answer.refused else "\nSources:")
        for c in answer.citations:
            print(f"  [{c.id}] {where(c)} (score {c.score:.2f})")
            if c.quote:
                print(f"      \u201c{c.quote}\u201d")
    unsupported = [s for s in answer.sentences if not s.supported]
    if unsupported:
        print("\nNot supported by the documents:")
        for sentence in unsupported:
            print(f"  - {sentence.text}" + (f" ({sentence.unsupported})" if sentence.unsupported else ""))
    if answer.draft:
        print("\nQuoted from the documents: the model's reply could not be verified against them.")
        print("The model's unverified reply:")
        print("  " + "\n  ".join(answer.draft.splitlines()))
    if answer.expansion:
        print(f"\n(also searched for, as the model suggested: {answer.expansion})")
    if answer.debug:
        print("\nDebug:", answer.debug.model_dump_json(indent=2))
