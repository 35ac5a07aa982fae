"""tracing -> TorchScript: a fixed batch, dynamic resolution."""
from typing import List

import torch

from .patches import FlatOutputs, trace_safe


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str) -> dict:
    with torch.no_grad(), trace_safe():
        traced = torch.jit.trace(wrapper, (example,), check_trace=False, strict=False)
    torch.jit.save(traced, path)
    return {"exporter": "torch.jit.trace", "batch": len(example)}
