"""What the embedders that run a BERT-style encoder themselves share: the fast tokenizer, batches
cut from length-sorted texts, mean pooling and normalisation (sentence-transformers' Pooling and
Normalize modules, for models that use mean pooling).

Batches are padded only to the longest text of the batch, so short passages do not pay for long
ones (bench/embed_speed.py measures it).  Subclasses run the encoder: onnxruntime
(rag/models/onnx_embedder.py) or torch (rag/models/torch_embedder.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from rag.models.embedder import Kind, _Worker, prefixed, prompts


def mean_pooling_model(model_dir: Path) -> bool:
    """Whether `model_dir` is a sentence-transformers folder of a transformer, mean pooling and
    normalisation, in that order, and nothing else."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    return kinds == ["Transformer", "Pooling", "Normalize"] and modes == {"pooling_mode_mean_tokens"}


class PooledEmbedder:
    """The Embedder interface (rag/models/embedder.py) over `_hidden`, which subclasses
    implement."""

    name: str
    fingerprint: str
    dimension: int
    device = "cpu"
    precision = "fp32"

    def __init__(self, model_dir: Path, name: str, batch_size: int) -> None:
        from tokenizers import Tokenizer

        self.name = name
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_tokens = int(config["max_seq_length"])
        # One tokenizer counts and encodes, truncating here rather than by its setting: a second
        # one for counting cost 290 MB with multilingual-e5-small's 250,002-piece vocabulary.
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()  # tokenizer.json pads to 128; batches pad themselves
        self._tokenizer.no_truncation()
        self._batch_size = batch_size
        self._worker = _Worker(self._encode, batch_size)
        self.prompts = prompts(model_dir)

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> list[list[float]]:
        if not texts:
            return []
        return self._worker.run(prefixed(texts, kind, self.prompts))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids with the model's special tokens, cut to its window as the tokenizer's own
        truncation would: the text's tokens shortened, the closing special token kept (BERT's
        [CLS] ... [SEP], XLM-RoBERTa's <s> ... </s>: one special token at each end)."""
        out = []
        for encoding in self._tokenizer.encode_batch(texts):
            ids = encoding.ids
            out.append(ids if len(ids) <= self.max_tokens else ids[:self.max_tokens - 1] + ids[-1:])
        return out

    def _hidden(self, ids, mask):
        """The encoder's last hidden states (batch x width x dimension, float32 numpy) for token
        ids and attention mask (batch x width, int64 numpy)."""
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        encodings = self._ids(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for first in range(0, len(order), self._batch_size):
            rows = order[first:first + self._batch_size]
            width = max(len(encodings[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i])
                ids[r, :n] = encodings[i]
                mask[r, :n] = 1
            hidden = self._hidden(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out.tolist()
