"""A BERT encoder in a few lines of torch, for ARCHIVIST_EMBED_BACKEND=torch-bf16 (what `auto`
gives `archivist ingest` and `reindex` on CPUs with AMX: rag/models/loaded.py for_bulk_embedding).

Why not sentence-transformers: importing it (and transformers' modeling code) takes about 4 s
of every `archivist ingest`, against 1.4 s for torch alone; and in bf16 this runs 1.3x its
tokens/s (bench/embed_speed.py: fewer operators, Q, K and V in one product).  The forward pass is BERT's as published (post-layer-norm, exact GELU,
absolute positions), read from the model folder's safetensors weights; pooling and
normalisation are rag/models/pooled_embedder.py's.  Its vectors equal sentence-transformers' in fp32
to float rounding, so the index fingerprint is the same (tests/rag/models/test_onnx_embedder.py).

bf16: torch autocast runs the linear layers and attention in bfloat16, which CPUs with AMX
multiply in their tiles several times faster than fp32, and keeps layer norms, softmax and the
pooled output in fp32 (vectors within 1e-4 cosine of fp32's).
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.models.files import embed_model_fingerprint
from rag.models.pooled_embedder import PooledEmbedder, mean_pooling_model


def is_plain_bert(model_dir: Path) -> bool:
    """A BERT model with absolute positions and GELU, mean-pooled and normalised: what this
    module can run.  Anything else goes to sentence-transformers."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (model_dir / "model.safetensors").is_file() and mean_pooling_model(model_dir))


class TorchBertEmbedder(PooledEmbedder):
    def __init__(self, model_dir: Path, name: str, batch_size: int = 8, bf16: bool = True,
                 threads: int | None = None) -> None:
        """Reads the configuration only: torch and the weights load on the first embedding, so
        a run with nothing to embed (an unchanged re-sync) does not pay for them."""
        super().__init__(model_dir, name, batch_size)
        self._dir, self._threads = model_dir, threads
        self._config = json.loads((model_dir / "config.json").read_text())
        self.dimension = int(self._config["hidden_size"])
        self.precision = "bf16" if bf16 else "fp32"
        self._bf16 = bf16
        self._layers: list[tuple] = []
        self.fingerprint = f"{name}:{self.dimension}:{embed_model_fingerprint(model_dir)}"

    def _load(self) -> None:
        import torch
        from safetensors.torch import load_file

        from rag.models.gpu import usable_cpus

        torch.set_num_threads(self._threads or usable_cpus())
        config = self._config
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        w = {k.removeprefix("bert."): v.float() for k, v in load_file(str(self._dir / "model.safetensors")).items()}
        self._embeddings = (w["embeddings.word_embeddings.weight"], w["embeddings.position_embeddings.weight"],
                            w["embeddings.token_type_embeddings.weight"][0],
                            w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # The linear layers' weights are stored in the precision they run in: autocast would
        # otherwise convert every one of them on every call (its cast cache skips plain tensors).
        dense = torch.bfloat16 if self._bf16 else torch.float32
        layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def linear(name: str) -> tuple:
                return w[f"{p}{name}.weight"].to(dense), w[f"{p}{name}.bias"].to(dense)

            qkv = [linear(f"attention.self.{n}") for n in ("query", "key", "value")]
            layers.append((
                torch.cat([q[0] for q in qkv]), torch.cat([q[1] for q in qkv]),  # Q, K, V in one product
                *linear("attention.output.dense"),
                w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"],
                *linear("intermediate.dense"), *linear("output.dense"),
                w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]))
        self._layers = layers

    def _hidden(self, ids, mask):
        import contextlib

        import torch

        if not self._layers:  # on the worker thread that runs every encode: no lock needed
            self._load()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self._bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:  # autocast is per thread: entered on the encoding one
            return self._forward(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy()

    def _forward(self, ids, mask):
        from torch.nn import functional as F

        batch, width = ids.shape
        size = self.dimension
        heads, eps = self._heads, self._eps
        words, positions, token_type, ln_w, ln_b = self._embeddings
        x = F.layer_norm(words[ids] + positions[:width] + token_type, (size,), ln_w, ln_b, eps)
        keep = mask.bool()[:, None, None, :]  # attend to the text, not the padding
        for qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, up_w, up_b, down_w, down_b, ln2_w, ln2_b in self._layers:
            q, k, v = (t.view(batch, width, heads, -1).transpose(1, 2)
                       for t in F.linear(x, qkv_w, qkv_b).split(size, dim=-1))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            attended = attended.transpose(1, 2).reshape(batch, width, size)
            x = F.layer_norm(F.linear(attended, out_w, out_b) + x, (size,), ln1_w, ln1_b, eps)
            x = F.layer_norm(F.linear(F.gelu(F.linear(x, up_w, up_b)), down_w, down_b) + x,
                             (size,), ln2_w, ln2_b, eps)
        return x
