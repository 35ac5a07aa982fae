"""onnxruntime backend: numpy in, numpy out; no torch."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedError


def providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UnsupportedError("device='cuda' needs onnxruntime's CUDAExecutionProvider, which this onnxruntime "
                                   f"does not have (available: {ort.get_available_providers()}); "
                                   "install onnxruntime-gpu and a CUDA runtime")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise UnsupportedError(f"device must be 'cpu' or 'cuda', got {device!r}")


class OnnxRuntimeBackend:
    wants = "numpy"

    def __init__(self, path: str | bytes, batch: int, device: str = "cpu", threads: int | None = None,
                 session_providers: list | None = None, what: str | None = None):
        """``session_providers``: onnxruntime's provider list, when a runtime chooses its own (tensorrt); ``what``: the
        file's name in errors (zoo.load hands the bytes, or the name of the open file: /proc/self/fd/N)."""
        import onnxruntime as ort

        from .onnxscan import check_model
        if isinstance(path, bytes):
            check_model(path, what or "the ONNX file")
        else:  # what onnxruntime reads next: zoo.load drops the session if the file was written meanwhile
            with open(path, "rb") as f:
                check_model(f.read(), what or str(path))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, sess_options=options, providers=session_providers or providers(device))
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.batch = batch

    def run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {name: im for name, im in zip(self.inputs, images)})
