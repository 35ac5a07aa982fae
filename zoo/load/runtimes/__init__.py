"""Runtimes: the callables `zoo.load` returns. ``base`` holds the interface (no torch); one module per backend."""
from __future__ import annotations

import importlib

from ...errors import MissingExtraError

NEEDS = {"onnxruntime": (("onnxruntime", "onnx"), "onnxruntime"),
         "pytorch": (("torch", "torchvision", "safetensors"), "torch"),
         "openvino": (("openvino", "onnx"), "openvino"),
         "tensorrt": (("onnxruntime", "onnx"), "onnxruntime")}  # onnx: the external-data scan (onnxscan); tensorrt:
# onnxruntime-gpu with its TensorRT provider, checked when the backend opens (zoo/load/runtimes/tensorrt.py)


def require(runtime: str) -> None:
    """MissingExtraError (with the pip command) unless ``runtime``'s packages can be imported; checked before any
    download, so that a missing extra does not cost a fetch first."""
    packages, extra = NEEDS[runtime]
    missing = []
    for p in packages:
        try:
            importlib.import_module(p)  # needed next anyway; a broken install shows here too
        except ImportError:
            missing.append(p)
    if missing:
        raise MissingExtraError(f"runtime={runtime!r} needs {', '.join(missing)}, which is not installed: "
                                f"pip install 'zoo[{extra}]'")


def reads_by_name(runtime: str, method: str) -> bool:
    """Whether the runtime reads a file by its name faster than from bytes, so that zoo.load hands it the verified open
    file's name (zoo/load/verified.py). Measured: torch.jit.load 0.13 s by name against 0.29 s from bytes (scripted
    Mask R-CNN, 170 MB); an onnxruntime session 0.39 s against 0.49 s (SSDlite, 14 MB); OpenVINO the same either way."""
    return runtime == "onnxruntime" or method in ("tracing", "scripting")


def open_backend(manifest, method: str, runtime: str, path, batch: int | None, device: str = "cpu",
                 threads: int | None = None):
    """The backend that runs ``path`` (a file name, or the file's bytes as zoo.load passes them once verified, or the
    name of the verified open file where ``reads_by_name``; the torch.export backend also takes a binary file-like
    object): eager weights, an ONNX file, a TorchScript file or a torch.export program, or an ONNX file for OpenVINO
    (each imports its runtime)."""
    if method == "eager":
        from .eager import EagerBackend
        return EagerBackend(manifest, path, device)
    if runtime == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend
        return OnnxRuntimeBackend(path, batch or 1, device, threads, what=f"{manifest.name}'s {method} artifact")
    if runtime == "openvino":
        from .openvino import OpenVinoBackend
        return OpenVinoBackend(path, batch or 1, device, threads, what=f"{manifest.name}'s {method} artifact",
                              method=method)
    if runtime == "tensorrt":
        from .tensorrt import TensorRtBackend
        return TensorRtBackend(path, batch or 1, device, threads, fp16=method.endswith("-fp16"))
    if method == "export":
        from .pt2 import ExportedProgramBackend
        return ExportedProgramBackend(path, batch, device)
    if method == "aoti":
        from .aoti import AotiBackend
        return AotiBackend(path, batch, device)
    from .torchscript import TorchScriptBackend
    return TorchScriptBackend(path, batch, device)
