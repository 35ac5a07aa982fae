"""TorchScript backend (tracing or scripting artifacts): torch tensors in and out."""
from __future__ import annotations

import io
import warnings

import torch

from ..errors import UnsupportedError


def torch_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise UnsupportedError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device != "cpu" and not torch.cuda.is_available():
        raise UnsupportedError(f"device={device!r} but torch has no usable CUDA device "
                               f"(torch {torch.__version__}, cuda build: {torch.version.cuda})")
    return torch.device(device)


def register_torchvision_ops() -> None:
    import torchvision  # noqa: F401  (registers torchvision::nms, roi_align for TorchScript)


def jit_load(path: str | bytes, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """torch.jit.load of a file name or of the file's bytes, with torchvision's ops registered, without torch 2.14's
    deprecation warning on every load."""
    register_torchvision_ops()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
        return torch.jit.load(io.BytesIO(path) if isinstance(path, bytes) else path, map_location=device)


class TorchScriptBackend:
    wants = "torch"

    def __init__(self, path: str | bytes, batch: int | None, device: str = "cpu"):
        self.device = torch_device(device)
        self.module = jit_load(path, self.device).eval()
        self.batch = batch

    def run(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        # no_grad, not inference_mode: callers may edit the outputs in place (as torchvision's); same speed measured
        with torch.no_grad(), warnings.catch_warnings():
            # torchvision's scripted detectors warn on every call that they return (losses, detections): expected here
            warnings.filterwarnings("ignore", message=r".*always returns a \(Losses, Detections\)", category=UserWarning)
            return list(self.module([im.to(self.device) for im in images]))
