"""TensorRT backend (methods ``tensorrt`` and ``tensorrt-fp16``): the model's ONNX file run by onnxruntime-gpu's
TensorRT execution provider on an NVIDIA GPU; numpy in, numpy out, no torch.

TensorRT builds an engine for the GPU at the first load (minutes for a detector) and onnxruntime caches it; the cache
lives under the zoo home in a folder named by the GPU and the TensorRT version, as an engine runs only where it was
built. fp32 by default; ``tensorrt-fp16`` lets TensorRT pick fp16 kernels, an approximate artifact of its own. Nodes
TensorRT does not take run on the CUDA provider. The bytes are scanned for external data (``onnxscan``) first.

Untested: no GPU was lent to the sessions that wrote it (docs/gpu.md). On a machine without CUDA or without the
TensorRT provider, opening it is refused with what to install."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ...core import settings
from ...errors import UnsupportedError
from .onnxruntime import OnnxRuntimeBackend

PROVIDER = "TensorrtExecutionProvider"
INSTALL = ("pip install onnxruntime-gpu tensorrt (onnxruntime-gpu built with TensorRT, a CUDA driver and an NVIDIA "
           "GPU), or load the model with runtime='onnxruntime'")


def gpu_name(index: int) -> str:
    """The GPU's product name from nvidia-smi (the driver's own tool): part of the engine cache's key."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(index)],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        raise UnsupportedError(f"runtime='tensorrt' needs an NVIDIA GPU: nvidia-smi cannot list GPU {index} here; "
                               + INSTALL) from None
    return out or f"gpu{index}"


def tensorrt_version() -> str:
    try:
        import tensorrt
    except ImportError:
        return "unknown"
    return tensorrt.__version__


def cache_dir(index: int) -> Path:
    """$ZOO_HOME/tensorrt/<GPU>-trt<version>: engines built for one GPU model and one TensorRT version only."""
    key = re.sub(r"[^A-Za-z0-9.]+", "-", f"{gpu_name(index)}-trt{tensorrt_version()}").strip("-")
    return settings.default_home() / "tensorrt" / key


def session_providers(device: str, fp16: bool) -> list:
    """The provider list for ``device`` ("cuda" or "cuda:N"), refusing clearly where TensorRT cannot run."""
    import onnxruntime as ort
    kind, _, number = device.partition(":")
    if kind != "cuda":
        raise UnsupportedError(f"runtime='tensorrt' runs on an NVIDIA GPU, not {device!r}: load it with "
                               "device='cuda', or use runtime='onnxruntime' or 'openvino' on the CPU")
    available = ort.get_available_providers()
    if PROVIDER not in available:
        raise UnsupportedError(f"runtime='tensorrt' needs onnxruntime's {PROVIDER}, which this onnxruntime "
                               f"{ort.__version__} does not have (available: {', '.join(available)}): " + INSTALL)
    index = int(number or 0)
    cache = cache_dir(index)
    cache.mkdir(parents=True, exist_ok=True)
    options = {"device_id": index, "trt_fp16_enable": fp16, "trt_engine_cache_enable": True,
               "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
    return [(PROVIDER, options), ("CUDAExecutionProvider", {"device_id": index})]


class TensorRtBackend(OnnxRuntimeBackend):
    """onnxruntime's backend (the external-data scan, the session, the run) with the TensorRT provider list, which
    refuses on a machine without it before the file is read."""

    def __init__(self, path: str | bytes, batch: int, device: str = "cuda", threads: int | None = None,
                 fp16: bool = False):
        super().__init__(path, batch, device, threads, session_providers(device, fp16))
