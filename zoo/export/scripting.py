"""scripting -> TorchScript: dynamic batch and resolution (control flow is kept)."""
from typing import List

import torch

from .common import to_torchscript
from .patches import FlatOutputs


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str) -> dict:
    return {"exporter": "torch.jit.script", "batch": "dynamic", **to_torchscript(wrapper, torch.jit.script, path)}
