"""onnx -> ONNX for onnxruntime: the whole model (resize, heads, NMS, mask pasting) in one graph, fixed batch,
dynamic resolution. The legacy TorchScript-based exporter is used: torch.export (dynamo=True) cannot handle the
detection heads' data-dependent shapes."""
from typing import List

import torch

from .patches import FlatOutputs, trace_safe


def io_names(keys: List[str], batch: int) -> tuple[list[str], list[str]]:
    suffix = (lambda i: "") if batch == 1 else (lambda i: f"_{i}")
    return [f"image{suffix(i)}" for i in range(batch)], [f"{k}{suffix(i)}" for i in range(batch) for k in keys]


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, opset: int, nms_groups: int) -> dict:
    inputs, outputs = io_names(wrapper.keys, len(example))
    dynamic = {name: {1: "height", 2: "width"} for name in inputs}
    dynamic.update({name: {0: "detections"} for name in outputs})
    with torch.no_grad(), trace_safe(nms_groups):
        torch.onnx.export(wrapper, (example,), path, opset_version=opset, dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True)
    return {"exporter": "torch.onnx.export(dynamo=False)", "opset": opset, "batch": len(example),
            "inputs": inputs, "outputs": outputs}
