"""AOTInductor backend (``aoti`` packages): compiled kernels, torch tensors in and out."""
from __future__ import annotations

import io
import logging
from typing import BinaryIO

import torch

from .torchscript import full_precision, register_torchvision_ops, torch_device


def load_package(source: str | bytes | BinaryIO):
    """``torch._inductor.aoti_load_package`` of a path, of the file's bytes (as zoo.load passes them once verified) or
    of a binary file-like object. torchvision's operators must be registered first (the kernels call them)."""
    register_torchvision_ops()
    # loading imports torch's C++ extension tools, which warn "No CUDA runtime is found" on every CPU machine: not
    # news for a CPU package
    cpp_extension_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_extension_log.level
    cpp_extension_log.setLevel(logging.ERROR)
    try:
        import torch._inductor
        return torch._inductor.aoti_load_package(io.BytesIO(source) if isinstance(source, bytes) else source)
    finally:
        cpp_extension_log.setLevel(level)


class AotiBackend:
    wants = "torch"

    def __init__(self, source: str | bytes | BinaryIO, batch: int | None, device: str = "cpu"):
        self.device = torch_device(device)  # compiled for the build's device (cpu)
        self.runner = load_package(source)
        self.batch = batch

    def run(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        # contiguous: a compiled package reads its inputs with the strides it was compiled for, without checking them
        # (measured: a channels-last view of an image, as torchvision's decoder returns, gave 0-1 detections for 14)
        with torch.no_grad(), full_precision(self.device):
            return list(self.runner([im.to(self.device).contiguous() for im in images]))
