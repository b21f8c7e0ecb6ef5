"""GPU configuration logic, on CI's CPU-only machines: 'auto' layers, the backend named from
llama.cpp's own report, VRAM where measurable, and what doctor and /v1/health say here."""

import subprocess
import sys

import pytest

from rag.core.errors import ConfigError
from rag.core.values import parse_gpu_layers
from rag.core.settings import load_settings
from rag.models import gpu


@pytest.mark.parametrize("given, parsed", [
    ("auto", "auto"), (" AUTO ", "auto"), ("-1", -1), ("0", 0), (" 12 ", 12), (20, 20), (-1, -1),
])
def test_gpu_layers_are_auto_or_a_count(given, parsed):
    assert parse_gpu_layers(given) == parsed


@pytest.mark.parametrize("given", ["all", "1.5", "", -2, True, 2.0])
def test_other_gpu_layers_are_refused(given):
    with pytest.raises(ValueError):
        parse_gpu_layers(given)


@pytest.mark.parametrize("env, value", [("auto", "auto"), ("24", 24), ("-1", -1)])
def test_environment_sets_gpu_layers(monkeypatch, env, value):
    monkeypatch.setenv("ARCHIVIST_N_GPU_LAYERS", env)
    assert load_settings().llm.n_gpu_layers == value


def test_a_bad_gpu_layers_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_N_GPU_LAYERS", "most")
    with pytest.raises(ConfigError, match="n_gpu_layers"):
        load_settings()


@pytest.mark.parametrize("supported, present, expected", [
    (True, "/dev/nvidia0", -1),  # a GPU build with a GPU: every layer
    (False, "/dev/nvidia0", 0),  # a CPU build: asking for layers would only earn a warning
    (True, None, 0),  # a GPU build on a machine without a GPU
    (False, None, 0),
])
def test_auto_offloads_only_with_a_gpu_backend_and_a_gpu(monkeypatch, supported, present, expected):
    monkeypatch.setattr(gpu, "gpu_offload_supported", lambda: supported)
    monkeypatch.setattr(gpu, "gpu_present", lambda: present)
    assert gpu.resolve_gpu_layers("auto") == expected
    assert gpu.resolve_gpu_layers(7) == 7  # a number is passed on as given


@pytest.mark.parametrize("supported, info, backend", [
    (False, "CPU : AVX2 = 1 |", "CPU"),
    # as the CUDA build made for the H200 reports itself (bench/results/gpu-h200.json)
    (True, "CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : AVX2 = 1 |", "CUDA"),
    (True, "MTL : EMBED_LIBRARY = 1 | CPU : NEON = 1 |", "Metal"),
    (True, "Vulkan : ... | CPU : AVX2 = 1 |", "Vulkan"),
    (True, "CPU : AVX2 = 1 |", "GPU"),  # offloads, but names no backend known here
])
def test_backend_is_named_from_llama_cpps_system_info(monkeypatch, supported, info, backend):
    monkeypatch.setattr(gpu, "gpu_offload_supported", lambda: supported)
    monkeypatch.setattr(gpu, "system_info", lambda: info)
    assert gpu.llama_backend() == backend


def test_this_machines_llama_cpp_is_the_cpu_build():
    # CI and the development machines run the CPU build: doctor and health must say so.
    assert gpu.llama_backend() == "CPU" and gpu.resolve_gpu_layers("auto") == 0
    assert "CPU :" in gpu.system_info()


@pytest.mark.parametrize("requested, layers, backend, offloaded", [
    (-1, 30, "CUDA", 30), (12, 30, "CUDA", 12), (99, 30, "CUDA", 30), (0, 30, "CUDA", 0),
    (-1, 30, "CPU", 0), (-1, None, "CUDA", None),
])
def test_layers_offloaded(requested, layers, backend, offloaded):
    assert gpu.layers_offloaded(requested, layers, backend) == offloaded


def test_model_layers_come_from_the_gguf_metadata():
    assert gpu.model_layers({"general.architecture": "llama", "llama.block_count": "30"}) == 30
    assert gpu.model_layers({"general.architecture": "qwen2"}) is None
    assert gpu.model_layers(None) is None


def test_vram_is_null_without_nvml_or_nvidia_smi(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    monkeypatch.setattr(gpu.shutil, "which", lambda name: None)
    assert gpu.vram() is None


def test_vram_from_nvidia_smi(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(gpu.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    answer = subprocess.CompletedProcess([], 0, stdout="0, 1589, 143771\n")
    monkeypatch.setattr(gpu.subprocess, "run", lambda *a, **k: answer)
    assert gpu.vram() == {"source": "nvidia-smi",
                          "gpus": [{"index": 0, "used_mib": 1589, "total_mib": 143771}]}


def test_embed_device(monkeypatch):
    monkeypatch.setattr(gpu, "torch_cuda", lambda: True)
    assert gpu.resolve_embed_device("auto") == "cuda"
    assert gpu.resolve_embed_device("cpu") == "cpu"
    monkeypatch.setattr(gpu, "torch_cuda", lambda: False)
    assert gpu.resolve_embed_device("auto") == "cpu"


def test_description_of_the_loaded_models_here(real_generator, real_embedder):
    # The real SmolLM2 on this CPU-only machine: 30 layers, none offloaded.
    out = gpu.describe("auto", real_generator, real_embedder)
    assert out["llama_cpp_backend"] == "CPU"
    assert out["gpu_layers"] == {"requested": "auto", "resolved": 0, "model_layers": 30,
                                 "offloaded": 0}
    assert out["embedding_device"] == "cpu"
    assert "vram" in out


def test_description_before_anything_is_loaded(monkeypatch):
    monkeypatch.setattr(gpu, "gpu_offload_supported", lambda: True)
    monkeypatch.setattr(gpu, "system_info", lambda: "CUDA : ARCHS = 900 |")
    monkeypatch.setattr(gpu, "gpu_present", lambda: "/dev/nvidia0")
    monkeypatch.setattr(gpu, "vram", lambda: None)
    out = gpu.describe("auto")
    assert out["llama_cpp_backend"] == "CUDA" and out["embedding_device"] is None
    assert out["gpu_layers"] == {"requested": "auto", "resolved": -1, "model_layers": None,
                                 "offloaded": None}
