"""The reference file (``reference.npz``): one replay image and the eager outputs on it, written by the build and
replayed by `zoo verify`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import store


def save_reference(path: Path, image: np.ndarray, outputs: dict) -> None:
    """One replay image (uint8) and the eager outputs on it; masks as uint8 probabilities to stay small."""
    arrays = {"image": image}
    for k, v in outputs.items():
        arrays[k] = np.round(v * 255).astype(np.uint8) if k == "masks" else v
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    store.atomic_write(path, buf.getvalue())


def load_reference(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    image = arrays.pop("image").astype(np.float32) / np.float32(255)
    if "masks" in arrays:
        arrays["masks"] = arrays["masks"].astype(np.float32) / 255
    return image, arrays
