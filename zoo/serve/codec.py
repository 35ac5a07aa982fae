"""Request and response bodies of the served models: image bytes in, detections as JSON out. No Ray here."""
from __future__ import annotations

import io

import numpy as np

from ..core.settings import positive_number
from ..errors import InputError

NPY_MAGIC = b"\x93NUMPY"
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
EXPECTED = "a PNG or JPEG image, or a .npy float32 array [3, H, W] with values in [0, 1]"
MAX_BODY = 32 << 20        # bytes of a request body (ZOO_SERVE_MAX_BODY): a 413 beyond
MAX_PIXELS = 25_000_000    # H * W of an image (ZOO_SERVE_MAX_PIXELS), checked from the header before decoding: a 400


def max_body() -> int:
    return positive_number("ZOO_SERVE_MAX_BODY", MAX_BODY, " of bytes", integer=True)


def max_pixels() -> int:
    return positive_number("ZOO_SERVE_MAX_PIXELS", MAX_PIXELS, " of pixels", integer=True)


class BodyTooLarge(InputError):
    """A request body over the server's limit (HTTP 413)."""


async def read_body(request, limit: int | None = None) -> bytes:
    """The request's body, refused (BodyTooLarge) as soon as it is known to exceed ``limit``: from its
    Content-Length before a byte is read, else while it streams in. ``request``: anything with ``headers`` and an
    async ``stream()`` (Starlette's Request)."""
    limit = max_body() if limit is None else limit
    declared = request.headers.get("content-length")
    too_large = f"request body over the server's limit of {limit} bytes (ZOO_SERVE_MAX_BODY): send a smaller image"
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(too_large)
    parts, got = [], 0
    async for chunk in request.stream():
        got += len(chunk)
        if got > limit:
            raise BodyTooLarge(too_large)
        parts.append(chunk)
    return b"".join(parts)


def _check_pixels(h: int, w: int, what: str) -> None:
    if h * w > max_pixels():
        raise InputError(f"{what} is {w}x{h} = {h * w} pixels, over the server's limit of {max_pixels()} "
                         "(ZOO_SERVE_MAX_PIXELS): resize it first (the model resizes to about 800x1333 anyway)")


def _decode_npy(body: bytes) -> np.ndarray:
    """A .npy body whose header is checked against the body's length before anything is allocated."""
    fmt = np.lib.format
    f = io.BytesIO(body)
    try:
        version = fmt.read_magic(f)
        shape, fortran, dtype = (fmt.read_array_header_1_0(f) if version == (1, 0) else
                                 fmt.read_array_header_2_0(f, max_header_size=10_000))
    except Exception as e:  # numpy raises ValueError, SyntaxError, tokenize.TokenError...: all the client's fault
        raise InputError(f"malformed .npy header ({str(e)[:200]}): expected {EXPECTED}") from None
    if not np.issubdtype(dtype, np.floating) or dtype.hasobject:
        raise InputError(f".npy body has dtype {dtype}: expected {EXPECTED} (divide uint8 pixels by 255)")
    if len(shape) != 3 or shape[0] != 3:
        hwc = " (HWC layout? send array.transpose(2, 0, 1))" if len(shape) == 3 and shape[-1] == 3 else ""
        raise InputError(f".npy body has shape {list(shape)}: expected {EXPECTED}{hwc}")
    _check_pixels(shape[1], shape[2], "the .npy array")
    need = int(np.prod(shape)) * dtype.itemsize
    data = body[f.tell():]
    if len(data) != need:
        raise InputError(f".npy header says {list(shape)} {dtype} ({need} bytes) but the body holds {len(data)} bytes "
                         f"after it: expected {EXPECTED}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(array)


def decode_image(body: bytes) -> np.ndarray:
    """Request body -> float32 [3, H, W] in [0, 1]: PNG or JPEG only (its size read from the header and checked
    before decoding), or a .npy float array passed on as it is (the model checks its values). Every bad body is an
    InputError (a 400), never another exception."""
    if not body:
        raise InputError(f"empty request body: expected {EXPECTED}")
    if body.startswith(NPY_MAGIC):
        return _decode_npy(body)
    if not body.startswith((PNG_MAGIC, JPEG_MAGIC)):
        raise InputError(f"the body is neither PNG nor JPEG nor .npy: expected {EXPECTED}")
    from PIL import Image
    try:
        with Image.open(io.BytesIO(body), formats=["PNG", "JPEG"]) as im:  # reads the header only
            _check_pixels(im.size[1], im.size[0], "the image")
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255)
    except InputError:
        raise
    except Exception as e:  # truncated, corrupt, a decompression bomb (Pillow's own limit): the client's fault
        raise InputError(f"the image could not be decoded ({type(e).__name__}: {str(e)[:200]}): expected "
                         f"{EXPECTED}") from None
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


def encode_segments(panoptic: np.ndarray, segments: np.ndarray) -> list[dict]:
    """A panoptic model's ``panoptic_seg`` (H, W) and ``segments_info`` rows -> one dict a segment: id, category,
    isthing, instance, area (``segments_info``'s columns) and the segment's pixels as COCO RLE."""
    from pycocotools import mask as mask_utils
    out = []
    for seg_id, category, isthing, instance, area in np.asarray(segments).reshape(-1, 5).tolist():
        rle = mask_utils.encode(np.asfortranarray((np.asarray(panoptic) == seg_id).astype(np.uint8)))
        out.append({"id": seg_id, "category": category, "isthing": bool(isthing), "instance": instance, "area": area,
                    "rle": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
    return out


PER_IMAGE = ("masks", "sem_seg", "panoptic_seg", "segments_info")  # encoded (or left out), not listed pixel by pixel


def to_json(det: dict, categories: list[str]) -> dict:
    """Detections as JSON-ready lists: float32 values become the doubles that hold them exactly; masks as COCO RLE; a
    panoptic model's segmentation as ``segments`` (each with its RLE), its ``sem_seg`` logits (C x H x W floats: tens
    of megabytes of JSON) left out."""
    out = {k: np.asarray(v).tolist() for k, v in det.items() if k not in PER_IMAGE}
    out["label_names"] = [categories[i] if 0 <= i < len(categories) else str(i) for i in out["labels"]]
    if "masks" in det:
        out["masks"] = encode_masks(det["masks"])
    if "panoptic_seg" in det:
        out["segments"] = encode_segments(det["panoptic_seg"], det["segments_info"])
    return out
