"""Pictures of detections: boxes with label names and scores, masks as tinted overlays, keypoints as dots. Pillow only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]


def read_image(path: str | Path) -> np.ndarray:
    """An image file as a float32 [3, H, W] array in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read the image {path}: {e}; give a JPEG or PNG file") from None
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def draw(image: np.ndarray, det: dict, categories: list[str], out: str | Path, score_min: float = 0.0,
         title: str = "", max_boxes: int = 30) -> Path:
    from PIL import Image, ImageDraw

    base = (np.asarray(image).transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
    canvas = base.astype(np.float32)
    keep = [i for i in np.argsort(-np.asarray(det["scores"]))[:max_boxes] if det["scores"][i] >= score_min]
    if "masks" in det:
        for i in keep:
            m = np.asarray(det["masks"][i, 0]) > 0.5
            canvas[m] = canvas[m] * 0.5 + np.array(PALETTE[i % len(PALETTE)]) * 0.5
    pic = Image.fromarray(canvas.astype(np.uint8))
    d = ImageDraw.Draw(pic)
    for i in keep:
        color = PALETTE[i % len(PALETTE)]
        x0, y0, x1, y1 = [float(v) for v in det["boxes"][i]]
        d.rectangle([x0, y0, x1, y1], outline=color, width=2)
        label = int(det["labels"][i])
        name = categories[label] if 0 <= label < len(categories) else str(label)
        text = f"{name} {float(det['scores'][i]):.2f}"
        tw = d.textlength(text)
        d.rectangle([x0, max(0, y0 - 12), x0 + tw + 4, max(12, y0)], fill=color)
        d.text((x0 + 2, max(0, y0 - 12)), text, fill=(0, 0, 0))
        if "keypoints" in det:
            for x, y, v in np.asarray(det["keypoints"][i]):
                if v > 0:
                    d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
    if title:
        d.rectangle([0, 0, d.textlength(title) + 6, 14], fill=(0, 0, 0))
        d.text((3, 1), title, fill=(255, 255, 255))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pic.save(out)
    return out
