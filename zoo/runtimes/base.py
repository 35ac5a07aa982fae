"""The callable `zoo.load` returns: validates input, batches, converts outputs back to the input's kind."""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from ..errors import RuntimeFailure, first_line
from .inputs import check_images


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


def _to_torch(x):
    import torch
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


class Detector:
    """``model(images) -> list of dicts``, torchvision's interface, whatever runs underneath."""

    def __init__(self, backend: Backend, keys: Sequence[str], info: dict, categories: list[str]):
        self.backend, self.keys, self.info, self.categories = backend, list(keys), info, categories

    def __call__(self, images) -> list[dict]:
        images, kind = check_images(images)
        if self.backend.wants == "numpy":
            images = [_to_numpy(im) for im in images]
        else:
            images = [_to_torch(im) for im in images]
        step = self.backend.batch or len(images)
        results: list[dict] = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            real = len(chunk)
            chunk = chunk + [chunk[-1]] * (step - real)  # a fixed-batch artifact gets a full batch
            results += unflatten(self._run(chunk), self.keys, step)[:real]
        convert = _to_torch if kind == "torch" else _to_numpy
        return [{k: convert(v) for k, v in r.items()} for r in results]

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
        return f"<zoo model {self.info.get('model')} runtime={a.get('runtime')} method={a.get('method')}>"
