"""The eager reference: torchvision's model with the stored weights."""
from __future__ import annotations

import torch

from .. import architecture
from ...core.manifest import Manifest
from .torchscript import full_precision, torch_device


class EagerBackend:
    wants = "torch"
    batch: int | None = None   # eager takes any batch; the build sets this to mirror an artifact's chunking

    def __init__(self, manifest: Manifest, weights_file: str | bytes, device: str = "cpu"):
        self.device = torch_device(device)
        self.model = architecture.stored_model(manifest, weights_file, device=str(self.device))
        self.keys = list(manifest.outputs)

    def run(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad(), full_precision(self.device):
            detections = self.model([im.to(self.device) for im in images])
        return [d[k] for d in detections for k in self.keys]
