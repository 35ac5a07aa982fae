"""The callable `zoo.load` returns: validates input, batches, converts outputs back to the input's kind."""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ...errors import RuntimeFailure, UnsupportedError, first_line
from .inputs import check_images
from .thresholds import IMAGE_OUTPUTS, Limits, keep_indices, limits_for, renumbered_segments


class Backend(Protocol):
    batch: int | None          # fixed batch size of the artifact, None when dynamic
    wants: str                 # "numpy" or "torch": what run() takes and returns

    def run(self, images: list) -> list[Any]:
        """Flat outputs of len(images) * len(keys) arrays/tensors."""


def unflatten(flat: Sequence, keys: Sequence[str], n: int) -> list[dict]:
    if len(flat) != n * len(keys):
        raise RuntimeError(f"artifact returned {len(flat)} outputs for {n} images x {len(keys)} keys")
    return [{k: flat[i * len(keys) + j] for j, k in enumerate(keys)} for i in range(n)]


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _to_torch(x, device: str = "cpu"):
    """An ordinary tensor on ``device``, even when called under torch.inference_mode(): the caller may edit it in place
    afterwards (an inference tensor is copied once, the only case that costs a copy)."""
    import torch
    with torch.inference_mode(False):
        if not isinstance(x, torch.Tensor):
            return torch.from_numpy(np.ascontiguousarray(x)).to(device)
        x = x.detach()
        return (x.clone() if x.is_inference() else x).to(device)


def _take(x, keep: np.ndarray):
    return x[keep] if isinstance(x, np.ndarray) else x[_to_torch(keep, str(x.device))]


def _device_name(device) -> str | None:
    """'cpu', 'cuda', 'cuda:1' from a string or a torch.device; None for anything else (a dtype, a tensor)."""
    if isinstance(device, str):
        return device
    return str(device) if type(device).__name__ == "device" else None


class Detector:
    """``model(images) -> list of dicts``, torchvision's interface, whatever runs underneath.

    Module-like where torchvision code relies on it: ``eval()``, ``train(False)``, ``to(device)`` / ``cpu()`` /
    ``cuda()`` (which reopen the artifact there), ``training``, ``device``. ``score_thresh`` / ``detections_per_img``
    (at load, or per call) filter the artifact's outputs exactly; see thresholds.py."""

    training = False

    def __init__(self, backend: Backend, keys: Sequence[str], info: dict, categories: list[str],
                 settings: dict | None = None, limits: Limits = Limits(), device: str = "cpu",
                 reopen: Callable[..., "Detector"] | None = None):
        self.backend, self.keys, self.info, self.categories = backend, list(keys), info, categories
        self.settings, self.limits, self.device, self._reopen = settings, limits, device, reopen

    @property
    def name(self) -> str:
        return self.info.get("model", "this model")

    def __call__(self, images, *, score_thresh: float | None = None, detections_per_img: int | None = None,
                 **torchvision_names) -> list[dict]:
        limits = limits_for(self.settings, dict(score_thresh=score_thresh, detections_per_img=detections_per_img,
                                             **torchvision_names), self.limits, self.name)
        images, kind = check_images(images)
        if self.backend.wants == "numpy":
            images = [_to_numpy(im) for im in images]
        else:
            images = [_to_torch(im, self.device) for im in images]
        step = self.backend.batch or len(images)
        results: list[dict] = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            real = len(chunk)
            chunk = chunk + [chunk[-1]] * (step - real)  # a fixed-batch artifact gets a full batch
            results += unflatten(self._run(chunk), self.keys, step)[:real]
        if kind == "torch":
            convert = lambda x: _to_torch(x, self.device)  # noqa: E731
        else:
            convert = _to_numpy
        return [{k: convert(v) for k, v in self._limit(r, limits).items()} for r in results]

    def _limit(self, result: dict, limits: Limits) -> dict:
        keep = keep_indices(_to_numpy(result["scores"]), limits) if limits != Limits() else None
        if keep is None:
            return result
        out = {k: v if k in IMAGE_OUTPUTS else _take(v, keep) for k, v in result.items()}
        if "segments_info" in result:
            segments = renumbered_segments(_to_numpy(result["segments_info"]), keep, len(result["scores"]), self.name)
            out["segments_info"] = segments if isinstance(result["segments_info"], np.ndarray) else _to_torch(segments)
        return out

    # --- module-like ---
    def eval(self) -> "Detector":
        return self

    def train(self, mode: bool = True) -> "Detector":
        if mode:
            raise UnsupportedError(f"{self.name} is an exported artifact for inference only: it cannot be put in "
                                   "training mode (train() / train(True)); fine-tune torchvision's model instead "
                                   "(the store's weights are its safetensors file)")
        return self

    def cpu(self) -> "Detector":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Detector":
        return self.to("cuda" if device is None else f"cuda:{device}")

    def to(self, *args, **kwargs) -> "Detector":
        """Reopen the artifact on another device, in place (like torch.nn.Module.to); returns the model."""
        device = _device_name(kwargs.pop("device", args[0] if args else None))
        if device is None or kwargs or len(args) > 1:
            raise UnsupportedError(f"{self.name}: only .to(device) is supported ('cpu', 'cuda' or a torch.device), "
                                   f"got .to({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"
                                   "; an exported artifact keeps its dtype (float32)")
        if device == self.device:
            return self
        artifact = self.info.get("artifact", {})
        if device.split(":")[0] not in artifact.get("devices", ()):
            raise UnsupportedError(f"{self.name} {artifact.get('method')} ({artifact.get('runtime')}) runs on "
                                   f"{', '.join(artifact.get('devices', ()))} only, not {device!r}; where each method "
                                   f"runs: {where_methods_run(self.info.get('manifest', {}))}; load another with "
                                   f"zoo.load({self.name!r}, runtime=..., method=..., device={device!r})")
        if self._reopen is None:
            raise UnsupportedError(f"{self.name}: this model was not opened by zoo.load and cannot be moved; "
                                   f"load it with zoo.load(..., device={device!r})")
        moved = self._reopen(device=device)
        self.backend, self.info, self.device = moved.backend, moved.info, moved.device
        return self

    def _run(self, chunk: list) -> list:
        """The backend on one batch; a failure of onnxruntime or torch becomes a RuntimeFailure saying what to do."""
        try:
            return self.backend.run(chunk)
        except Exception as e:
            a = self.info.get("artifact", {})
            raise RuntimeFailure(
                f"{self.info.get('model', 'the model')} ({a.get('runtime', '?')}/{a.get('method', '?')}) failed on "
                f"images of shape {[list(im.shape) for im in chunk]}: {type(e).__name__}: {first_line(e)}; check the "
                "device and memory, or try another runtime/method (zoo.load(..., runtime=, method=))") from e

    def __repr__(self) -> str:
        a = self.info.get("artifact", {})
        return (f"<zoo model {self.info.get('model')} runtime={a.get('runtime')} method={a.get('method')} "
                f"device={self.device}>")


def where_methods_run(manifest_raw: dict) -> str:
    """'tracing (pytorch): cpu; scripting (pytorch): cpu, cuda; ...' from a manifest's exports, eager included."""
    runs = [f"{e['method']} ({e['runtime']}): {', '.join(e['devices'])}" for e in manifest_raw.get("export", [])]
    return "; ".join(runs + ["eager (pytorch): cpu, cuda"])
