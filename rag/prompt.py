"""The chat prompt: numbered passages and the question."""

from __future__ import annotations

import re

NO_ANSWER = "The documents do not contain an answer to this question."

# Kept short and plain: the default 135M-parameter model copies elaborate formatting (fences,
# source labels, "Question:") into its answer instead of following it.  Compared by hand on the
# test corpus (see the closing note of issue 2); prompt hardening comes with answer verification.
SYSTEM = (
    "Answer the question using only the context. Cite the passage number like [1]. If the context "
    f"does not contain the answer, say: {NO_ANSWER}"
)
STOP = ["\nQuestion:", "\n\n\n"]

_REFUSAL = re.compile(r"(do(es)? not|don't|doesn't) contain (an |the |any )?(answer|information)|"
                      r"\bI (do not|don't) know\b|cannot answer|can't answer", re.IGNORECASE)


def build_messages(question: str, passages: list[str],
                   history: list[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """System rules, earlier turns of the conversation, then passages and the question."""
    messages = [{"role": "system", "content": SYSTEM}]
    for asked, answered in history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    context = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(passages, start=1))
    messages.append({"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"})
    return messages


def is_refusal(answer: str) -> bool:
    return bool(_REFUSAL.search(answer))


def clean_markers(answer: str, passages: int) -> str:
    """Drop [n] markers that point at no passage (small models invent them)."""
    return re.sub(r"\s?\[(\d+)\]", lambda m: m.group(0) if 1 <= int(m.group(1)) <= passages else "",
                  answer)
