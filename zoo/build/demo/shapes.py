"""A synthetic COCO-format dataset: filled circles, squares and triangles of random colours and sizes on varied
backgrounds (gradients, noise, stripes, distractor blobs). Deterministic for a seed; no downloads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
SIZE = 128


def _background(rng: np.random.Generator) -> Image.Image:
    h = w = SIZE
    kind = rng.integers(3)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, w)[None, :, None] if kind != 1 else np.linspace(0, 1, h)[:, None, None]
    img = a * (1 - t) + b * t + np.zeros((h, w, 3))
    if kind == 2:  # stripes
        period = rng.integers(6, 20)
        img[(np.arange(h) // period % 2 == 0)] *= 0.7
    img += rng.normal(0, rng.uniform(3, 20), img.shape)  # texture
    im = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(rng.integers(0, 4)):  # distractors: thin lines, which are none of the classes
        x0, y0, x1, y1 = rng.integers(0, SIZE, 4)
        draw.line([(x0, y0), (x1, y1)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    return im


def _overlaps(box, boxes) -> bool:
    return any(not (box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]) for b in boxes)


def _outline(shape: str, x: int, y: int, s: int) -> list[tuple[float, float]]:
    if shape == "circle":
        r = s / 2
        return [(x + r + r * np.cos(a), y + r + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 32, endpoint=False)]
    if shape == "square":
        return [(x, y), (x + s - 1, y), (x + s - 1, y + s - 1), (x, y + s - 1)]
    return [(x + s / 2, y), (x, y + s - 1), (x + s - 1, y + s - 1)]


def sample(rng: np.random.Generator) -> tuple[Image.Image, list[tuple[int, list[float], list[float]]]]:
    """One image and its objects as (category index 0..2, [x, y, w, h], outline polygon [x0, y0, x1, y1, ...])."""
    im = _background(rng)
    draw = ImageDraw.Draw(im)
    objects, boxes = [], []
    for _ in range(rng.integers(1, 5)):
        s = int(rng.integers(18, 52))
        x, y = int(rng.integers(0, SIZE - s)), int(rng.integers(0, SIZE - s))
        box = (x, y, x + s, y + s)
        if _overlaps(box, boxes):
            continue
        c = int(rng.integers(len(CLASSES)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        outline = _outline(CLASSES[c], x, y, s)
        if CLASSES[c] == "circle":
            draw.ellipse(box, fill=colour)
        else:
            draw.polygon(outline, fill=colour)
        boxes.append(box)
        objects.append((c, [float(x), float(y), float(s), float(s)], [round(float(v), 2) for p in outline for v in p]))
    return im, objects


def samples(n: int, seed: int) -> list[tuple[Image.Image, list]]:
    rng = np.random.default_rng(seed)
    return [sample(rng) for _ in range(n)]


def write_coco(directory: str | Path, n: int, seed: int) -> Path:
    """``directory/images/*.png`` and ``directory/annotations.json`` (COCO instances format, boxes and outline
    polygons); returns the directory."""
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, (im, objects) in enumerate(samples(n, seed), start=1):
        name = f"{i:04d}.png"
        im.save(directory / "images" / name)
        images.append({"id": i, "file_name": name, "height": SIZE, "width": SIZE})
        for c, (x, y, w, h), outline in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": c + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0, "segmentation": [outline]})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    (directory / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return directory
