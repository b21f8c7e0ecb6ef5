"""The onnxruntime embedder (ARCHIVIST_EMBED_BACKEND=onnx, onnx-int8) against the torch one, on the
real all-MiniLM-L6-v2: same vectors, same token counts, same fingerprint where the weights are
the same."""

from __future__ import annotations

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.models import resolve_embed_model

# Lengths from one word to past the model's window, so batches mix heavily padded rows.
TEXTS = ["Harbour", "What VHF channel does the rescue launch use?",
         "Every sailor wears a buoyancy aid. " * 12, "索引 的 建立 与 维护 " * 40,
         "VACUUM reclaims storage occupied by dead tuples. " * 60, ""]


@pytest.fixture(scope="module")
def onnx_embedder():
    from rag.onnx_embedder import OnnxEmbedder, ensure_fp32

    model = resolve_embed_model("all-MiniLM-L6-v2")
    return OnnxEmbedder(ensure_fp32(model), model, "all-MiniLM-L6-v2", batch_size=2)


def test_fp32_export_gives_torchs_vectors_in_the_callers_order(onnx_embedder, real_embedder):
    ours, torch = np.array(onnx_embedder.embed(TEXTS)), np.array(real_embedder.embed(TEXTS))
    assert ours.shape == torch.shape == (len(TEXTS), 384)
    assert (ours * torch).sum(axis=1).min() > 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_fp32_export_reads_indexes_built_with_torch(onnx_embedder, real_embedder):
    assert onnx_embedder.fingerprint == real_embedder.fingerprint
    assert onnx_embedder.max_tokens == real_embedder.max_tokens == 256
    for text in TEXTS:
        assert onnx_embedder.count_tokens(text) == real_embedder.count_tokens(text)


def test_int8_model_is_checked_and_has_a_fingerprint_of_its_own(real_embedder, tmp_path):
    from rag.onnx_embedder import INT8_SHA256, OnnxEmbedder, int8_path

    model = resolve_embed_model("all-MiniLM-L6-v2")
    int8 = OnnxEmbedder(int8_path(), model, "all-MiniLM-L6-v2", expected_sha256=INT8_SHA256)
    assert int8.fingerprint != real_embedder.fingerprint
    cosine = (np.array(int8.embed(TEXTS[:3])) * np.array(real_embedder.embed(TEXTS[:3]))).sum(axis=1)
    assert cosine.min() > 0.99
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(int8_path().read_bytes()[:-1] + b"\0")
    with pytest.raises(ConfigError, match="sha256"):
        OnnxEmbedder(tampered, model, "all-MiniLM-L6-v2", expected_sha256=INT8_SHA256)


def test_the_setting_picks_the_backend(tmp_path):
    from rag.embedder import SentenceTransformerEmbedder
    from rag.onnx_embedder import OnnxEmbedder
    from rag.settings import Settings
    from rag.shared_models import load_embedder

    assert isinstance(load_embedder(Settings(embed_backend="onnx")), OnnxEmbedder)
    assert isinstance(load_embedder(Settings(embed_backend="torch")), SentenceTransformerEmbedder)
