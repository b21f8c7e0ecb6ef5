"""Chat templates: the GGUF's own, or, for a file without one, ChatML with a warning."""

from __future__ import annotations

import logging

import gguf
import pytest

from rag.core.sections import SamplingParams
from rag.models.generator import LlamaCppGenerator
from rag.models.repository import bundled_model, read_header


@pytest.mark.slow
def test_a_model_without_a_chat_template_answers_with_chatml_and_says_so(tmp_path, caplog,
                                                                          real_generator):
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    # The bundled model with its template removed: the same weights, a real load.
    reader = gguf.GGUFReader(bundled_model().path)
    plain = tmp_path / "plain.gguf"
    writer = gguf.GGUFWriter(str(plain), arch="llama", endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {}, ["tokenizer.chat_template"])
    assert read_header(plain)["chat_template"] is False

    with caplog.at_level(logging.WARNING, logger="rag.models.generator"):
        generator = LlamaCppGenerator(plain, n_ctx=1024, n_threads=None, n_gpu_layers=0)
    try:
        assert generator.template == "chatml" and generator._llm.chat_format == "chatml"
        assert "plain.gguf has no chat template: using the chatml template" in caplog.text
        reply = "".join(generator.generate([{"role": "user", "content": "Say hello."}],
                                           SamplingParams(max_tokens=8)))
        assert reply.strip()
    finally:
        generator.close()
    assert real_generator.template == "gguf"  # the bundled file carries its own
