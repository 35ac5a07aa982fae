"""`zoo build --calibration DIR`: the user's own images, added to the build's images that approximate methods
(zoo.core.manifest.APPROXIMATE_METHODS) calibrate on and are gated on (docs/int8.md). Read before anything is built,
so that a wrong directory fails at once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ZooError

SUFFIXES = (".png", ".jpg", ".jpeg")
EXPECTED = "a directory of .png/.jpg images"


@dataclass
class UserImages:
    """The images of ``--calibration DIR``, RGB float32 [3, H, W] in [0, 1], in file-name order. ``name``: the
    directory's name (what the metadata records of it: no path)."""
    name: str
    images: list[np.ndarray]


def open_images(path: str | Path) -> UserImages:
    """The PNG / JPEG files of ``path`` (other files are ignored); a ZooError saying what was expected and what was
    found when it is not a directory, holds no such file, or one of them cannot be read."""
    from ..ops.viz import read_image
    root = Path(path)
    if not root.is_dir():
        raise ZooError(f"--calibration {path}: expected {EXPECTED}, found "
                       + ("a file" if root.exists() else "nothing (no such directory)"))
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        others = sorted(p.name for p in root.iterdir())
        raise ZooError(f"--calibration {path}: expected {EXPECTED}, found "
                       + (f"no .png/.jpg file among its {len(others)} entries ({', '.join(others[:5])}"
                          + (", ..." if len(others) > 5 else "") + ")" if others else "an empty directory"))
    try:
        return UserImages(root.resolve().name, [read_image(p) for p in files])
    except InputError as e:
        raise ZooError(f"--calibration {path}: expected {EXPECTED}, found one that is not: {e}") from None


def record(user: UserImages | None) -> dict:
    """What the metadata records of them (the quantization settings, the accuracy gate's figures): how many, and the
    directory's name."""
    return {"user_images": len(user.images), "user_directory": user.name} if user else {"user_images": 0}
