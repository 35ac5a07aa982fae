"""tracing -> TorchScript: a fixed batch, dynamic resolution."""
from typing import List

import torch

from .common import to_torchscript
from .patches import FlatOutputs, trace_safe


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, nms_groups: int) -> dict:
    def trace(module: FlatOutputs) -> torch.jit.ScriptModule:
        with torch.no_grad(), trace_safe(nms_groups):
            return torch.jit.trace(module, (example,), check_trace=False, strict=False)

    return {"exporter": "torch.jit.trace", "batch": len(example), **to_torchscript(wrapper, trace, path)}
