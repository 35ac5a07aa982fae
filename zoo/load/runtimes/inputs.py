"""Validation of the images given to a loaded model (torchvision's convention), with errors that say what was expected."""
from __future__ import annotations

import sys

import numpy as np

from ...errors import InputError

EXPECTED = ("a list of [3, H, W] float images with values in [0, 1] (torch tensors or numpy arrays), or of PIL "
            "images")


def _imported_class(module: str, name: str):
    """``module.name`` if the module is imported already, else None (nothing of that class can exist yet). A module
    another thread is still importing is in sys.modules without its attributes: None too (the Ray Serve replica
    decodes a first PNG, importing PIL.Image, while it checks a .npy request's array)."""
    return getattr(sys.modules.get(module), name, None)


def _is_torch(x) -> bool:
    tensor = _imported_class("torch", "Tensor")
    return tensor is not None and isinstance(x, tensor)


def _is_pil(x) -> bool:
    image = _imported_class("PIL.Image", "Image")
    return image is not None and isinstance(x, image)


def from_pil(image) -> np.ndarray:
    """A PIL image as torchvision's ``to_tensor(image.convert("RGB"))`` makes it, in numpy: RGB, uint8 / 255 in float32,
    [3, H, W] (the same float32 values, bit for bit)."""
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)


def fix_hint(shape: tuple, dtype: str, kind: str) -> str:
    """One expression that turns a common near-miss (HWC, uint8, grayscale [H, W] or [1, H, W]) into [3, H, W] float
    in [0, 1], every fix at once (e.g. ``image.permute(2, 0, 1).float() / 255``); '' when the shape is none of those."""
    torch = kind == "torch"
    steps = []
    if len(shape) == 3 and shape[-1] in (1, 3) and shape[0] not in (1, 3):  # HWC
        steps.append(".permute(2, 0, 1)" if torch else ".transpose(2, 0, 1)")
        channels = shape[-1]
    elif len(shape) == 2:
        steps.append("[None]")
        channels = 1
    elif len(shape) == 3 and shape[0] in (1, 3):
        channels = shape[0]
    else:
        return ""
    if channels == 1:
        steps.append(".expand(3, -1, -1)" if torch else ".repeat(3, axis=0)")
    if dtype == "uint8":
        steps.append(".float() / 255" if torch else ".astype(np.float32) / 255")
    elif not dtype.startswith(("float", "bfloat")):
        return ""
    if not steps:
        return ""
    return f"image{''.join(steps)}"


def check_images(images) -> tuple[list[np.ndarray] | list, str]:
    """Returns the images (unchanged type, float32) and 'torch' or 'numpy' (PIL images become numpy arrays, see
    from_pil)."""
    if not isinstance(images, (list, tuple)):
        raise InputError(f"expected {EXPECTED}, got {type(images).__name__}"
                         + (" (wrap a single image in a list: model([image]))"
                            if hasattr(images, "shape") or _is_pil(images) else ""))
    if not images:
        raise InputError(f"expected {EXPECTED}, got an empty list")
    if all(_is_pil(im) for im in images):
        images = [from_pil(im) for im in images]
    kinds = {"torch" if _is_torch(im) else "numpy" if isinstance(im, np.ndarray) else
             "PIL" if _is_pil(im) else type(im).__name__ for im in images}
    if len(kinds) > 1:
        raise InputError(f"expected {EXPECTED}, all of one kind; got a mix of {', '.join(sorted(kinds))}")
    kind = kinds.pop()
    if kind not in ("torch", "numpy"):
        raise InputError(f"expected {EXPECTED}, got a list of {kind}")
    out = []
    for i, im in enumerate(images):
        shape = tuple(im.shape)
        dtype = str(im.dtype).replace("torch.", "")
        hint = fix_hint(shape, dtype, kind)
        if len(shape) != 3 or shape[0] != 3:
            what = ("a grayscale image?" if len(shape) == 2 or (len(shape) == 3 and 1 in (shape[0], shape[-1]))
                    else "HWC layout?" if len(shape) == 3 and shape[-1] == 3 else
                    "a batch tensor? pass a list of images" if len(shape) == 4 else "")
            fix = f"convert: {hint}" if hint else ""
            raise InputError(f"image {i}: expected shape [3, H, W] (3 channels first), got {list(shape)}"
                             + (f" ({' '.join(filter(None, [what, fix]))})" if what or fix else ""))
        if shape[1] < 1 or shape[2] < 1:
            raise InputError(f"image {i}: expected a non-empty image, got {list(shape)}")
        if not dtype.startswith(("float", "bfloat")):
            raise InputError(f"image {i}: expected a float image in [0, 1], got dtype {dtype}"
                             + (f" (convert: {hint})" if hint else ""))
        if kind == "torch":
            if im.is_meta or im.layout != sys.modules["torch"].strided:
                what = "a meta tensor (no data)" if im.is_meta else f"a {im.layout} tensor"
                raise InputError(f"image {i}: expected a dense tensor with data, got {what} (use .to_dense() or "
                                 "real data)")
            im = im.float()
            lo, hi = float(im.min()), float(im.max())
        else:
            if isinstance(im, np.ma.MaskedArray):  # min/max skip masked values: a masked NaN would pass unseen
                im = np.ma.getdata(im)
            im = im.astype(np.float32, copy=False)
            lo, hi = float(im.min()), float(im.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(f"image {i}: expected values in [0, 1], got [{lo:.3g}, {hi:.3g}]"
                             + (" (divide by 255)" if hi > 1.5 else ""))
        out.append(im)
    return out, kind
