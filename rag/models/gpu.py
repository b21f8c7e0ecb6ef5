"""Where models run: the llama.cpp backend, GPU layers ('auto' or a number), VRAM, the embedder's
device.

Standard library only (llama_cpp, torch and pynvml are imported inside the functions that need
them), so bench/gpu.py can use these probes on a machine that has none of Archivist's
dependencies, and so `archivist doctor` and /v1/health report what the benchmark measured with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

AUTO = "auto"

# Words of llama_print_system_info() that name a GPU backend, in the order they are looked for.
# A build with a GPU backend lists it before "CPU : ..." (e.g. "CUDA : ARCHS = 900 | ...").
_BACKEND_WORDS = (("CUDA", "CUDA"), ("ROCm", "ROCm"), ("HIP", "ROCm"), ("Metal", "Metal"),
                  ("MTL", "Metal"), ("Vulkan", "Vulkan"), ("SYCL", "SYCL"), ("OpenCL", "OpenCL"))


def usable_cpus() -> int:
    """CPUs this process may run on (taskset, cpuset), which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build has a GPU backend (it says nothing about a GPU being there)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def system_info() -> str:
    """llama.cpp's own description of its build: backends and CPU features."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    return (info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)).strip()


def llama_backend() -> str:
    """'CPU', or the GPU backend llama.cpp was built with ('CUDA', 'Metal', ...; 'GPU' when the
    build offloads but its system info names no backend this code knows)."""
    if not gpu_offload_supported():
        return "CPU"
    try:
        info = system_info()
    except (AttributeError, OSError):  # an old binding without the call
        return "GPU"
    return next((name for word, name in _BACKEND_WORDS if word in info), "GPU")


def nvidia_gpu() -> str | None:
    """Evidence that this machine has an NVIDIA GPU (its device, driver or tool), if any."""
    for path in ("/dev/nvidia0", "/proc/driver/nvidia/version"):
        if os.path.exists(path):
            return path
    return shutil.which("nvidia-smi")


def gpu_present() -> str | None:
    """Evidence of a GPU llama.cpp could use: NVIDIA's, an AMD compute device, or a Mac's."""
    if sys.platform == "darwin":
        return "macOS (Metal)"  # every Mac llama.cpp's Metal backend supports has a GPU
    if os.path.exists("/dev/kfd"):
        return "/dev/kfd"
    return nvidia_gpu()


def resolve_gpu_layers(setting: int | str) -> int:
    """The n_gpu_layers given to llama.cpp.  'auto' means every layer when the build can offload
    and a GPU is there, else none: asking a CPU build for layers only earns a warning."""
    if setting != AUTO:
        return int(setting)
    return -1 if gpu_offload_supported() and gpu_present() else 0


def layers_offloaded(requested: int, model_layers: int | None, backend: str) -> int | None:
    """Repeating layers llama.cpp puts on the GPU for n_gpu_layers=`requested` (it also moves the
    output layer once all of these are there); None when the model's layer count is unknown."""
    if backend == "CPU" or requested == 0:
        return 0
    if model_layers is None:
        return None
    return model_layers if requested < 0 else min(requested, model_layers)


def model_layers(metadata: dict[str, str] | None) -> int | None:
    """The model's repeating layers (`<arch>.block_count` in its GGUF metadata)."""
    if not metadata:
        return None
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.block_count") if arch else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def vram() -> dict[str, Any] | None:
    """GPU memory in use on each NVIDIA GPU (MiB), through NVML when pynvml is installed, else
    nvidia-smi; None when neither answers (no NVIDIA GPU, or no way to ask)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                mem = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i))
                gpus.append({"index": i, "used_mib": mem.used // 2**20,
                             "total_mib": mem.total // 2**20})
            return {"source": "nvml", "gpus": gpus}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - not installed, no driver, no GPU: try nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=index,memory.used,memory.total",
                              "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        gpus = [{"index": int(i), "used_mib": int(u), "total_mib": int(t)}
                for i, u, t in (line.split(",") for line in out.strip().splitlines())]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {"source": "nvidia-smi", "gpus": gpus} if gpus else None


def torch_cuda() -> bool:
    """Whether torch can use a CUDA GPU (False with a CPU-only torch, or none installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_has_amx_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 matrices in AMX tiles (Intel Xeon since Sapphire
    Rapids): there the embedder runs in bf16 at about twice fp32 ONNX's tokens/s.  Without AMX,
    bf16 is emulated or converted and slower than fp32, so it is never chosen."""
    return "amx_bf16" in cpu_flags()


def resolve_embed_device(setting: str) -> str:
    """The torch device for the embedder: 'auto' is 'cuda' when torch sees a CUDA GPU."""
    if setting == AUTO:
        return "cuda" if torch_cuda() else "cpu"
    return setting


def describe(n_gpu_layers: int | str, generator: Any = None, embedder: Any = None) -> dict[str, Any]:
    """Where the models run, for `archivist doctor` and /v1/health.  `generator`, `embedder`: the
    loaded models, if any (nothing is loaded here); without a loaded chat model the layers it
    would get are worked out from the setting, and the model's layer count is unknown (null)."""
    backend = llama_backend()
    resolved = getattr(generator, "n_gpu_layers", None)
    if resolved is None:
        resolved = resolve_gpu_layers(n_gpu_layers)
    layers = getattr(generator, "model_layers", None)
    return {
        "llama_cpp_backend": backend,
        "gpu_found": gpu_present(),
        "gpu_layers": {"requested": n_gpu_layers, "resolved": resolved, "model_layers": layers,
                       "offloaded": layers_offloaded(resolved, layers, backend)},
        "vram": vram(),
        "embedding_device": getattr(embedder, "device", None),
        "embedding_precision": getattr(embedder, "precision", None),
    }
