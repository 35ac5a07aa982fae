"""Request and response bodies of the served models: image bytes in, detections as JSON out. No Ray here."""
from __future__ import annotations

import io

import numpy as np

from ..errors import InputError

NPY_MAGIC = b"\x93NUMPY"
EXPECTED = "a PNG or JPEG image, or a .npy float32 array [3, H, W] with values in [0, 1]"


def decode_image(body: bytes) -> np.ndarray:
    """Request body -> float32 [3, H, W] in [0, 1]. A .npy array is passed on as it is (the model checks it)."""
    if not body:
        raise InputError(f"empty request body: expected {EXPECTED}")
    if body.startswith(NPY_MAGIC):
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except ValueError as e:
            raise InputError(f"unreadable .npy body ({e}): expected {EXPECTED}") from None
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f".npy body has dtype {array.dtype}: expected {EXPECTED} (divide uint8 pixels by 255)")
        return array
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(body)) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255)
    except UnidentifiedImageError:
        raise InputError(f"the body is not an image format Pillow knows: expected {EXPECTED}") from None
    except OSError as e:  # a truncated or corrupt PNG/JPEG
        raise InputError(f"the image could not be decoded ({e}): expected {EXPECTED}") from None
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def parse_score_thresh(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise InputError(f"score_thresh must be a number in [0, 1], got {text!r}")
    return value


def encode_masks(masks: np.ndarray) -> list[dict]:
    """[N, 1, H, W] probabilities -> COCO RLE of each mask thresholded at 0.5 (torchvision's convention)."""
    from pycocotools import mask as mask_utils
    binary = np.asfortranarray((np.asarray(masks)[:, 0] >= 0.5).transpose(1, 2, 0).astype(np.uint8))
    return [{"size": r["size"], "counts": r["counts"].decode("ascii")} for r in mask_utils.encode(binary)]


def to_json(det: dict, categories: list[str]) -> dict:
    """Detections as JSON-ready lists: float32 values become the doubles that hold them exactly."""
    out = {k: np.asarray(v).tolist() for k, v in det.items() if k != "masks"}
    out["label_names"] = [categories[i] if 0 <= i < len(categories) else str(i) for i in out["labels"]]
    if "masks" in det:
        out["masks"] = encode_masks(det["masks"])
    return out
