"""scripting -> TorchScript: dynamic batch and resolution (control flow is kept)."""
from typing import List

import torch

from .common import save_torchscript
from .patches import FlatOutputs


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str) -> dict:
    scripted = torch.jit.script(wrapper)
    save_torchscript(scripted, path)
    return {"exporter": "torch.jit.script", "batch": "dynamic"}
