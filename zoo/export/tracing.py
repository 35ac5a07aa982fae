"""tracing -> TorchScript: a fixed batch, dynamic resolution."""
from typing import List

import torch

from .common import save_torchscript
from .patches import FlatOutputs, trace_safe


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, nms_groups: int) -> dict:
    with torch.no_grad(), trace_safe(nms_groups):
        traced = torch.jit.trace(wrapper, (example,), check_trace=False, strict=False)
    save_torchscript(traced, path)
    return {"exporter": "torch.jit.trace", "batch": len(example)}
