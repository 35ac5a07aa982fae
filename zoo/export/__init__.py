"""Exporters: one module per method. Each takes the exportable wrapper and example images and writes one file.

``export_in_child`` runs an exporter in a fresh Python process with ``PYTHONHASHSEED=0``: scripted TorchScript orders
its ``__constants__`` by Python's randomised string hash, so a fixed seed is what makes its bytes reproducible, and a
child process also proves the artifact comes from the stored weights file alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import ZooError

FILENAMES = {"tracing": "model.pt", "scripting": "model.pt", "onnx": "model.onnx", "export": "model.pt2", "aoti": "model.pt2",
             "openvino": "model.onnx", "tensorrt": "model.onnx", "tensorrt-fp16": "model.onnx", "onnx-int8": "model.onnx",
             "openvino-int8": "model.onnx", "openvino-bf16": "model.onnx"}
# the methods whose file is the ONNX exporter's output as it is (each run by its own runtime): its bytes depend only on
# the model and share_key(spec), so a build exports it once and copies it for the other methods with the same key
PLAIN_ONNX = ("onnx", "openvino", "openvino-bf16", "tensorrt", "tensorrt-fp16")


def share_key(spec) -> tuple | None:
    """What a plain ONNX export's bytes and settings depend on besides the model (zoo.export.run reads these of the
    [[export]] entry), or None for a method whose file is its own."""
    if spec.method not in PLAIN_ONNX:
        return None
    return spec.opset, spec.exporter, spec.batch, spec.transform, spec.symbolic


def export_in_child(manifest_path: str, weights_file: str, method: str, out: str, calibration: str | None = None) -> dict:
    """Export in a subprocess; returns the exporter's settings (recorded in the metadata). ``calibration``: an .npz
    of the images a quantizing method calibrates on (zoo/export/int8.py)."""
    env = dict(os.environ, PYTHONHASHSEED="0", ZOO_EXPORT_PARENT=str(os.getpid()))
    cmd = [sys.executable, "-m", "zoo.export.run", manifest_path, weights_file, method, out,
           *([calibration] if calibration else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ZooError(f"exporting {Path(manifest_path).stem} with {method} failed:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
