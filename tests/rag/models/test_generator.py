"""Where generation runs, and on how many threads, decided without loading a model."""

import logging
import os
from pathlib import Path

import llama_cpp
import pytest

from rag.models import generator
from rag.models.generator import LlamaCppGenerator, log_offload, usable_cpus


@pytest.mark.parametrize("supported, gpu, layers, level", [
    (False, "/dev/nvidia0", -1, logging.WARNING),  # the default, on a machine with a GPU
    (False, None, 20, logging.WARNING),  # asked for explicitly
    (False, None, -1, logging.INFO),  # the default on a CPU-only machine is no mistake
    (False, "/dev/nvidia0", 0, None),  # the CPU was asked for
    (True, "/dev/nvidia0", -1, None),  # offloads
    (False, "/dev/nvidia0", "auto", logging.WARNING),  # auto runs on the CPU, the GPU sits idle
    (False, None, "auto", logging.INFO),
    (True, "/dev/nvidia0", "auto", None),
])
def test_offload_message(monkeypatch, caplog, supported, gpu, layers, level):
    monkeypatch.setattr(generator, "gpu_offload_supported", lambda: supported)
    monkeypatch.setattr(generator, "nvidia_gpu", lambda: gpu)
    with caplog.at_level(logging.INFO, logger="rag.models.generator"):
        log_offload(layers)
    assert [r.levelno for r in caplog.records] == ([level] if level else [])
    if level == logging.WARNING:
        assert generator.REINSTALL_CUDA in caplog.text and "runs on the CPU" in caplog.text


def test_nvidia_gpu_names_what_it_found(monkeypatch):
    monkeypatch.setattr(os.path, "exists", lambda path: path == "/proc/driver/nvidia/version")
    assert generator.nvidia_gpu() == "/proc/driver/nvidia/version"
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    monkeypatch.setenv("PATH", "")
    assert generator.nvidia_gpu() is None


def test_usable_cpus_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert usable_cpus() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus() == 6


@pytest.mark.parametrize("asked, expected", [(None, 3), (2, 2)])
def test_threads_are_passed_to_llama_cpp_for_generation_and_prompt(monkeypatch, asked, expected):
    seen = {}

    class FakeLlama:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", FakeLlama)
    monkeypatch.setattr(generator, "usable_cpus", lambda: 3)
    gen = LlamaCppGenerator(Path("m.gguf"), n_ctx=512, n_threads=asked, n_gpu_layers=0)
    assert gen.n_threads == seen["n_threads"] == seen["n_threads_batch"] == expected


def test_the_real_model_runs_on_every_usable_cpu(real_generator):
    params = real_generator._llm.context_params
    assert real_generator.n_threads == params.n_threads == params.n_threads_batch == usable_cpus()


@pytest.mark.parametrize("supported, expected", [(True, -1), (False, 0)])
def test_auto_layers_reach_llama_cpp_resolved(monkeypatch, supported, expected):
    from rag.models import gpu

    seen = {}

    class FakeLlama:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", FakeLlama)
    monkeypatch.setattr(gpu, "gpu_offload_supported", lambda: supported)
    monkeypatch.setattr(gpu, "gpu_present", lambda: "/dev/nvidia0")
    gen = LlamaCppGenerator(Path("m.gguf"), n_ctx=512, n_threads=1, n_gpu_layers="auto")
    assert seen["n_gpu_layers"] == gen.n_gpu_layers == expected
    assert gen.gpu_layers_requested == "auto"
