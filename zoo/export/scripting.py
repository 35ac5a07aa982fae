"""scripting -> TorchScript: dynamic batch and resolution (control flow is kept)."""
from typing import List

import torch

from .common import to_torchscript
from .patches import FlatOutputs, device_safe_default_boxes


def script(module: torch.nn.Module):
    """``torch.jit.script`` with every submodule of ``module`` kept alive while it runs. Its ``__prepare_scriptable__``
    pass memoizes modules by ``id()`` and swaps the prepared ones into their parents in place, so a swapped-out module
    is freed mid-pass and a module created later by another ``__prepare_scriptable__`` can get its address, and so its
    memo entry (measured: the detectron2 Keypoint R-CNN's new box heads were scripted as the FPN that had been freed,
    "forward(ScriptableFPN self, Tensor x) ... found type 'Dict[str, Tensor]'")."""
    alive = list(module.modules())
    try:
        return torch.jit.script(module)
    finally:
        del alive


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str) -> dict:
    device_safe_default_boxes(wrapper.model)  # a scripted SSD must also run where torch.jit.load maps it (cuda)
    return {"exporter": "torch.jit.script", "batch": "dynamic", **to_torchscript(wrapper, script, path)}
