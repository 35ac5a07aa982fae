"""TorchScript backend (tracing or scripting artifacts): torch tensors in and out."""
from __future__ import annotations

import contextlib
import io
import warnings

import torch

from ...errors import UnsupportedError


def torch_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise UnsupportedError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device != "cpu" and not torch.cuda.is_available():
        raise UnsupportedError(f"device={device!r} but torch has no usable CUDA device "
                               f"(torch {torch.__version__}, cuda build: {torch.version.cuda})")
    return torch.device(device)


@contextlib.contextmanager
def full_precision(device: torch.device):
    """While a model runs on CUDA: convolutions in IEEE float32, not cuDNN's default TF32, which moved ssdlite's scores
    by up to 0.044 from the CPU's on an H200 (tests/cuda_check.py, docs/dropin.md): beyond the parity tolerance the
    artifacts are proven to. The caller's cuDNN settings are restored afterwards; on the CPU nothing changes."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, benchmark_limit=cudnn.benchmark_limit,
                     deterministic=cudnn.deterministic, allow_tf32=False, fp32_precision="ieee"):
        yield


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
        with torch.no_grad(), full_precision(self.device), warnings.catch_warnings():
            # torchvision's scripted detectors warn on every call that they return (losses, detections): expected here
            warnings.filterwarnings("ignore", message=r".*always returns a \(Losses, Detections\)", category=UserWarning)
            return list(self.module([im.to(self.device) for im in images]))
