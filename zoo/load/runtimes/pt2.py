"""torch.export backend (``.pt2`` ExportedPrograms): torch tensors in and out."""
from __future__ import annotations

import io
from typing import BinaryIO

import torch

from .torchscript import full_precision, register_torchvision_ops, torch_device


def load_program(source: str | bytes | BinaryIO) -> torch.nn.Module:
    """``torch.export.load`` of a path, of the file's bytes (as zoo.load passes them once verified) or of a binary
    file-like object, as a callable module. torchvision's operators must be registered before the program is read."""
    register_torchvision_ops()
    return torch.export.load(io.BytesIO(source) if isinstance(source, bytes) else source).module()


class ExportedProgramBackend:
    wants = "torch"

    def __init__(self, source: str | bytes | BinaryIO, batch: int | None, device: str = "cpu"):
        self.device = torch_device(device)  # the manifests list cpu only: a program keeps the device it was exported on
        self.module = load_program(source)
        self.batch = batch

    def run(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad(), full_precision(self.device):  # not inference_mode: outputs stay ordinary tensors a caller may edit in place
            return list(self.module([im.to(self.device) for im in images]))
