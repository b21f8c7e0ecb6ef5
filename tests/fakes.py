"""Deterministic stand-ins for unit tests of the logic around the models."""

from __future__ import annotations

import hashlib
import math
from typing import Iterator, Sequence

from rag.core.sections import SamplingParams


class FakeEmbedder:
    """Bag-of-words vectors: texts sharing words are similar.  Records every text it embeds
    (`record=False` for long runs such as the load test, where the record would grow forever)."""

    name = "fake"
    fingerprint = "fake:64"
    dimension = 64
    max_tokens = 256

    def __init__(self, record: bool = True) -> None:
        self.embedded: list[str] = []
        self.record = record

    def embed(self, texts: Sequence[str], kind: str = "passage") -> list[list[float]]:
        if self.record:
            self.embedded.extend(texts)
        vectors = []
        for text in texts:
            vec = [0.0] * self.dimension
            for word in text.lower().split():
                vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            vectors.append([v / norm for v in vec])
        return vectors

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


class FakeGenerator:
    """Replies from a queue and records the messages it was given (unless `record=False`)."""

    name = "fake.gguf"
    context_window = 4096

    def __init__(self, *replies: str, record: bool = True) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []
        self.record = record

    def generate(self, messages, params: SamplingParams, stop=None) -> Iterator[str]:
        if self.record:
            self.calls.append(messages)
        reply = self.replies.pop(0) if self.replies else "Fake answer [1]."
        yield from reply.split(" ")[:1]
        for word in reply.split(" ")[1:]:
            yield " " + word

    def count_tokens(self, text: str) -> int:
        return len(text.split())
