"""scripting -> TorchScript: dynamic batch and resolution (control flow is kept)."""
from typing import List

import torch

from .common import to_torchscript
from .patches import FlatOutputs, device_safe_default_boxes


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str) -> dict:
    device_safe_default_boxes(wrapper.model)  # a scripted SSD must also run where torch.jit.load maps it (cuda)
    return {"exporter": "torch.jit.script", "batch": "dynamic", **to_torchscript(wrapper, torch.jit.script, path)}
