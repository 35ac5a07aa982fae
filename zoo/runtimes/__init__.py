"""Runtimes: the callables `zoo.load` returns. ``base`` holds the interface (no torch); one module per backend."""
from __future__ import annotations


def open_backend(manifest, method: str, runtime: str, path, batch: int | None, device: str = "cpu",
                 threads: int | None = None):
    """The backend that runs ``path``: eager weights, an ONNX file, a TorchScript file or a torch.export program (each
    imports its runtime). The torch.export backend also takes a binary file-like object for ``path``."""
    if method == "eager":
        from .eager import EagerBackend
        return EagerBackend(manifest, path, device)
    if runtime == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend
        return OnnxRuntimeBackend(path, batch or 1, device, threads)
    if method == "export":
        from .pt2 import ExportedProgramBackend
        return ExportedProgramBackend(path, batch, device)
    from .torchscript import TorchScriptBackend
    return TorchScriptBackend(path, batch, device)
