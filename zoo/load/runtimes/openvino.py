"""OpenVINO backend (methods ``openvino``, ``openvino-bf16`` and ``openvino-int8``): the model's ONNX file, run by
OpenVINO on the CPU; numpy in, numpy out, no torch.

The bytes are scanned like onnxruntime's (``onnxscan.check_model``: no external data) and handed to OpenVINO as
bytes, so it reads nothing but what was verified. Compiled for the CPU in float32 (``INFERENCE_PRECISION_HINT``):
the CPU plugin's default on a CPU with bf16 or AMX is bfloat16, which moved SSDlite's boxes by 0.16 px and its scores
by 0.016 here (and by 10 px with other weights); in f32 it matches onnxruntime within 3e-5 px and 1e-6 in score
(docs/openvino.md). Method ``openvino-bf16`` asks for bfloat16 on purpose (an approximate artifact, gated on
agreement AP at build time); ``openvino-int8``'s file is quantized (QDQ, zoo/export/int8.py), its int8 kernels chosen
by the plugin whatever the hint, the rest in float32. Input sizes stay as dynamic as the ONNX graph declares them."""
from __future__ import annotations

import threading

import numpy as np

from ...errors import RuntimeFailure, UnsupportedError

PRECISION = "f32"
PRECISIONS = {"openvino-bf16": "bf16"}  # method -> INFERENCE_PRECISION_HINT; every other method: PRECISION


def precision(method: str) -> str:
    return PRECISIONS.get(method, PRECISION)


def compile_config(threads: int | None, method: str = "openvino") -> dict:
    """The CPU plugin's settings for ``method``: its inference precision, ``threads`` intra-op threads when given."""
    config = {"INFERENCE_PRECISION_HINT": precision(method)}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


class OpenVinoBackend:
    wants = "numpy"

    def __init__(self, path: str | bytes, batch: int, device: str = "cpu", threads: int | None = None,
                 what: str = "the ONNX file", method: str = "openvino"):
        if device.split(":")[0] != "cpu":
            raise UnsupportedError(f"runtime='openvino' runs on the CPU only here (its CPU plugin), not {device!r}: "
                                   "load it with device='cpu', or use runtime='onnxruntime' (method onnx) on CUDA")
        import openvino as ov

        from .onnxscan import check_model
        if isinstance(path, bytes):
            data = path
        else:
            what = str(path) if what == "the ONNX file" else what
            with open(path, "rb") as f:
                data = f.read()
        check_model(data, what)  # before OpenVINO sees a byte of it
        try:
            core = ov.Core()
            model = core.read_model(data)  # bytes: the model itself, not a path; its weights are inside
            self.compiled = core.compile_model(model, "CPU", compile_config(threads, method))
        except Exception as e:  # OpenVINO raises RuntimeError (and its own types) with multi-page C++ messages
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeFailure(f"OpenVINO {ov.__version__} could not compile {what} for the CPU: {first[:300]}; "
                                 "its sha256 matched, so this OpenVINO cannot run this graph: install the version "
                                 "its metadata.json records (toolchain.openvino), or load it with "
                                 "runtime='onnxruntime'") from None
        self.outputs = list(self.compiled.outputs)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one infer request: calls from several threads take turns
        self.batch = batch

    def run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        with self.lock:
            result = self.request.infer({i: np.ascontiguousarray(im) for i, im in enumerate(images)})
            return [np.asarray(result[o]) for o in self.outputs]  # copies (share_outputs=False)
