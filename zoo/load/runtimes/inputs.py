"""Validation of the images given to a loaded model (torchvision's convention), with errors that say what was expected."""
from __future__ import annotations

import sys

import numpy as np

from ...errors import InputError

EXPECTED = "a list of [3, H, W] float images with values in [0, 1] (torch tensors or numpy arrays)"


def _is_torch(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def check_images(images) -> tuple[list[np.ndarray] | list, str]:
    """Returns the images (unchanged type, float32) and 'torch' or 'numpy'."""
    if not isinstance(images, (list, tuple)):
        raise InputError(f"expected {EXPECTED}, got {type(images).__name__}"
                         + (" (wrap a single image in a list: model([image]))" if hasattr(images, "shape") else ""))
    if not images:
        raise InputError(f"expected {EXPECTED}, got an empty list")
    kinds = {"torch" if _is_torch(im) else "numpy" if isinstance(im, np.ndarray) else type(im).__name__ for im in images}
    if len(kinds) > 1:
        raise InputError(f"expected {EXPECTED}, all of one kind; got a mix of {', '.join(sorted(kinds))}")
    kind = kinds.pop()
    if kind not in ("torch", "numpy"):
        raise InputError(f"expected {EXPECTED}, got a list of {kind}")
    out = []
    for i, im in enumerate(images):
        shape = tuple(im.shape)
        dtype = str(im.dtype).replace("torch.", "")
        if len(shape) != 3:
            raise InputError(f"image {i}: expected shape [3, H, W], got {list(shape)}"
                             + (" (a batch tensor? pass a list of images)" if len(shape) == 4 else ""))
        if shape[0] != 3:
            hint = " (HWC layout? transpose to CHW: image.permute(2, 0, 1) / image.transpose(2, 0, 1))" if shape[-1] == 3 else ""
            raise InputError(f"image {i}: expected 3 channels first, [3, H, W], got {list(shape)}{hint}")
        if shape[1] < 1 or shape[2] < 1:
            raise InputError(f"image {i}: expected a non-empty image, got {list(shape)}")
        if not dtype.startswith(("float", "bfloat")):
            hint = " (convert: image.float() / 255)" if dtype == "uint8" else ""
            raise InputError(f"image {i}: expected a float image in [0, 1], got dtype {dtype}{hint}")
        if kind == "torch":
            im = im.float()
            lo, hi = float(im.min()), float(im.max())
        else:
            im = im.astype(np.float32, copy=False)
            lo, hi = float(im.min()), float(im.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(f"image {i}: expected values in [0, 1], got [{lo:.3g}, {hi:.3g}]"
                             + (" (divide by 255)" if hi > 1.5 else ""))
        out.append(im)
    return out, kind
