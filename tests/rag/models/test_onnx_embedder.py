"""The onnxruntime embedder (ARCHIVIST_EMBED_BACKEND=onnx, onnx-int8) and torch in bf16
(torch-bf16) against torch in fp32, on the real all-MiniLM-L6-v2: same vectors, same token
counts, same fingerprint where the weights are the same."""

from __future__ import annotations

import numpy as np
import pytest

from rag.core.errors import ConfigError
from rag.models.files import resolve_embed_model

# Lengths from one word to past the model's window, so batches mix heavily padded rows.
TEXTS = ["Harbour", "What VHF channel does the rescue launch use?",
         "Every sailor wears a buoyancy aid. " * 12, "索引 的 建立 与 维护 " * 40,
         "VACUUM reclaims storage occupied by dead tuples. " * 60, ""]


@pytest.fixture(scope="module")
def onnx_embedder():
    from rag.models.onnx_embedder import OnnxEmbedder, ensure_fp32

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
    from rag.models.onnx_embedder import INT8_SHA256, OnnxEmbedder, int8_path

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
    from rag.core.settings import Settings
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.loaded import load_embedder
    from rag.models.onnx_embedder import OnnxEmbedder

    assert isinstance(load_embedder(Settings(embed_backend="onnx")), OnnxEmbedder)
    assert isinstance(load_embedder(Settings(embed_backend="torch")), SentenceTransformerEmbedder)


@pytest.mark.parametrize("kind", ["torch_bert fp32", "torch_bert bf16", "sentence-transformers bf16"])
def test_torch_in_bf16_and_the_lean_bert_give_sentence_transformers_vectors(real_embedder, kind):
    """bf16 runs on any CPU (slowly without AMX), so this holds on every machine."""
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.torch_embedder import TorchBertEmbedder, is_plain_bert

    model = resolve_embed_model("all-MiniLM-L6-v2")
    bf16 = kind.endswith("bf16")
    if kind.startswith("torch_bert"):
        assert is_plain_bert(model)
        ours = TorchBertEmbedder(model, "all-MiniLM-L6-v2", batch_size=2, bf16=bf16)
    else:
        ours = SentenceTransformerEmbedder(model, "all-MiniLM-L6-v2", batch_size=2, bf16=True)
    got, fp32 = np.array(ours.embed(TEXTS)), np.array(real_embedder.embed(TEXTS))
    assert ours.precision == ("bf16" if bf16 else "fp32") and real_embedder.precision == "fp32"
    assert got.shape == (len(TEXTS), 384)
    assert (got * fp32).sum(axis=1).min() > (0.9995 if bf16 else 0.999999)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert ours.fingerprint == real_embedder.fingerprint
    for text in TEXTS:
        assert ours.count_tokens(text) == real_embedder.count_tokens(text)


def test_only_plain_mean_pooled_bert_folders_go_to_the_lean_bert(tmp_path):
    import shutil

    from rag.models.torch_embedder import is_plain_bert

    model = resolve_embed_model("all-MiniLM-L6-v2")
    copy = tmp_path / "model"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    (copy / "model.safetensors").symlink_to(model / "model.safetensors")
    assert is_plain_bert(copy)
    (copy / "1_Pooling" / "config.json").write_text(
        (model / "1_Pooling" / "config.json").read_text().replace(
            '"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    assert not is_plain_bert(copy)  # CLS pooling: sentence-transformers runs it
    assert not is_plain_bert(tmp_path / "missing")


@pytest.mark.parametrize("amx, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_takes_bf16_only_for_bulk_embedding_where_the_cpu_has_amx(monkeypatch, amx, expected):
    from rag.core.settings import Settings
    from rag.models import loaded
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.onnx_embedder import OnnxEmbedder
    from rag.models.torch_embedder import TorchBertEmbedder

    monkeypatch.setattr(loaded, "cpu_has_amx_bf16", lambda: amx)
    bulk = loaded.load_embedder(loaded.for_bulk_embedding(Settings()))
    assert bulk.precision == expected and bulk._batch_size == 8
    assert isinstance(bulk, TorchBertEmbedder if amx else OnnxEmbedder)
    serving = loaded.load_embedder(Settings())  # a process that may generate
    assert isinstance(serving, OnnxEmbedder) and serving.precision == "fp32"
    explicit = Settings(embed_backend="torch")
    assert loaded.for_bulk_embedding(explicit) is explicit
    assert isinstance(loaded.load_embedder(explicit), SentenceTransformerEmbedder)


def test_cpu_flags_are_read_from_proc_cpuinfo():
    from rag.models.gpu import cpu_flags, cpu_has_amx_bf16

    flags = cpu_flags()
    assert not flags or {"fpu"} <= flags  # every x86 lists fpu; elsewhere the set may be empty
    assert cpu_has_amx_bf16() == ("amx_bf16" in flags)


def test_one_text_and_a_batch_run_on_their_own_sessions_with_the_same_vectors(onnx_embedder):
    """A single text (a question) runs where onnxruntime's threads spin; a batch where they
    sleep: the same weights, so the same vectors either way."""
    alone = np.array([onnx_embedder.embed([text])[0] for text in TEXTS])
    together = np.array(onnx_embedder.embed(TEXTS))
    assert onnx_embedder._single is not onnx_embedder._session
    assert np.abs(alone - together).max() < 1e-5


def test_the_export_keeps_its_weights_beside_it_and_an_older_export_is_converted(tmp_path, monkeypatch):
    """Weights in a file of their own (mapped, shared by sessions and processes), readable by a
    container's service user; an export of the single-file days is converted on first use."""
    import stat

    import onnx

    from rag.models import onnx_embedder as module

    model = resolve_embed_model("all-MiniLM-L6-v2")
    installed = module.ensure_fp32(model)
    weights = installed.with_name(installed.name + ".weights")
    assert installed.stat().st_size < 1_000_000 < weights.stat().st_size
    monkeypatch.setattr(module, "cache_dir", lambda: tmp_path)
    older = tmp_path / installed.name.replace("model.fp32.mapped.onnx", "model.fp32.onnx")
    onnx.save_model(onnx.load(str(installed)), str(older))  # one file, weights inside
    converted = module.ensure_fp32(model)
    assert converted == tmp_path / installed.name and not older.exists()
    mode = (tmp_path / weights.name).stat().st_mode
    assert stat.S_IMODE(mode) & 0o044 == 0o044  # group and others may read it
    a = module.OnnxEmbedder(converted, model, "all-MiniLM-L6-v2").embed(TEXTS[:3])
    b = module.OnnxEmbedder(installed, model, "all-MiniLM-L6-v2").embed(TEXTS[:3])
    assert np.abs(np.array(a) - np.array(b)).max() < 1e-6
