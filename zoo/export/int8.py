"""The int8 methods: the onnx method's ONNX file (same exporter, opset and settings), quantized with activation ranges
calibrated on the build's images, run as they enter the graph (the graph takes the images themselves: resize and
normalisation are inside it). Two quantizers, each a well-kept library's post-training quantization, each writing a
QDQ ONNX file (int8 weights, QuantizeLinear/DequantizeLinear pairs around what is quantized):

* ``onnx-int8``, run by onnxruntime: onnxruntime's static quantization, int8 weights per output channel, uint8
  activations with min-max ranges. Only the Conv, MatMul and Gemm nodes are quantized (the backbone, the heads'
  convolutions and box head's linear layers): the rest (resize, anchors, box decoding, TopK, NMS, RoiAlign) stays
  float32. Measured on the trained test detector, quantizing every operator onnxruntime can (None) also runs, but
  agrees less with eager: agreement AP50 0.96 and AP 0.76 against 1.0 and 0.92 for these three (docs/int8.md).
* ``openvino-int8``, run by OpenVINO: NNCF's ``quantize`` (its ONNX backend, the CPU's default preset: int8 weights
  per channel and int8 activations, fast bias correction), whose QDQ pairs OpenVINO's CPU plugin fuses into int8
  kernels. The same nodes are quantized (every other operator type is in NNCF's ignored scope): NNCF's own choice also
  quantizes element-wise operators of the box decoding, and OpenVINO then moved the trained test detector's boxes by
  2.8 px (median; agreement AP50 0.33, docs/int8.md).

Approximate artifacts: the build gates them on agreement AP, not on parity."""
from __future__ import annotations

import logging
import os
import tempfile
from typing import List

import numpy as np
import torch

from ..core.manifest import Export
from ..errors import ZooError
from . import onnx
from .patches import FlatOutputs

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def read_calibration(path: str | None, method: str = "onnx-int8") -> list[np.ndarray]:
    """The calibration images the build wrote (``image_0``, ``image_1``, ...: float32 [3, H, W] in [0, 1])."""
    if not path:
        raise ZooError(f"{method} needs calibration images: the build passes them (zoo/build/pipeline.py); run it "
                       f"through `zoo build --method {method}`")
    with np.load(path, allow_pickle=False) as data:
        return [data[f"image_{i}"] for i in range(len(data.files))]


def feeds(images: list[np.ndarray], inputs: list[str]) -> list[dict]:
    """``images`` as the graph's runs take them, ``len(inputs)`` images a run (a fixed-batch graph takes one input per
    image; a last incomplete batch is filled from the first images)."""
    n = len(inputs)
    padded = images + images[:(-len(images)) % n]
    return [dict(zip(inputs, padded[i:i + n])) for i in range(0, len(padded), n)]


class ImageReader:
    """onnxruntime's CalibrationDataReader (an instance by its ``get_next``: the class's subclass hook) over the
    ``feeds`` of ``images``."""

    def __init__(self, images: list[np.ndarray], inputs: list[str]):
        self.feeds = iter(feeds(images, inputs))

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def quantize_onnxruntime(fp32: str, path: str, images: list[np.ndarray], inputs: list[str]) -> dict:
    """``fp32`` quantized into ``path`` by onnxruntime (onnx-int8); returns what the metadata records of it."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(fp32, path, ImageReader(images, inputs), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(QUANTIZED_OPS), calibrate_method=CalibrationMethod.MinMax)
    return {"quantization": {
        "tool": f"onnxruntime.quantization.quantize_static (onnxruntime {onnxruntime.__version__})",
        "format": "QDQ", "weights": "int8, per channel", "activations": "uint8, min-max calibrated",
        "ops": list(QUANTIZED_OPS), "calibration_images": len(images),
        "calibration_sizes": [list(im.shape[-2:]) for im in images]}}


def import_nncf():
    """NNCF, with its telemetry off. NNCF reports each call to Intel's telemetry service (openvino-telemetry) unless it
    sees NNCF_CI, its own switch for automated runs, when it is first imported: a build sends nothing anywhere
    (air-gapped machines included). Set in this process only (the export child)."""
    os.environ["NNCF_CI"] = "1"
    try:
        import nncf
    except ImportError:
        raise ZooError("method openvino-int8 quantizes with NNCF, which is not installed: pip install 'zoo[nncf]'") from None
    return nncf


def quantize_nncf(fp32: str, path: str, images: list[np.ndarray], inputs: list[str]) -> dict:
    """``fp32`` quantized into ``path`` by NNCF (openvino-int8); returns what the metadata records of it."""
    nncf = import_nncf()
    import onnx as onnx_lib

    nncf.set_log_level(logging.WARNING)  # not a line per operator left out
    model = onnx_lib.load(fp32)
    others = sorted({node.op_type for node in model.graph.node} - set(QUANTIZED_OPS))
    runs = feeds(images, inputs)
    quantized = nncf.quantize(model, nncf.Dataset(runs), subset_size=len(runs), fast_bias_correction=True,
                              ignored_scope=nncf.IgnoredScope(types=others, validate=False))
    onnx_lib.save(quantized, path)  # one file: the graph and its int8 weights (far below protobuf's 2 GB)
    return {"quantization": {
        "tool": f"nncf.quantize (NNCF {nncf.__version__}, ONNX backend)", "format": "QDQ",
        "weights": "int8, per channel (NNCF's CPU preset)", "activations": "int8, ranges from the calibration images",
        "ops": list(QUANTIZED_OPS), "fast_bias_correction": True, "calibration_images": len(images),
        "calibration_sizes": [list(im.shape[-2:]) for im in images]}}


QUANTIZERS = {"onnx-int8": quantize_onnxruntime, "openvino-int8": quantize_nncf}


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, spec: Export, nms_groups: int,
           calibration: str | None) -> dict:
    images = read_calibration(calibration, spec.method)
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        settings = onnx.export(wrapper, example, fp32, spec.opset, nms_groups, spec.exporter)
        settings.update(QUANTIZERS[spec.method](fp32, path, images, settings["inputs"]))
    return settings
