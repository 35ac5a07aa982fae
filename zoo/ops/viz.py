"""Pictures of detections people can read: only detections at or above a display threshold, "N of M shown", labels
that never cover one another nor sit under the header (a label inside its box when the box touches the top edge), a
colour per class with a legend, masks as tinted overlays, keypoints as dots; a panoptic segmentation as tinted,
outlined, named segments (``draw_panoptic``). Pillow only."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]
PLACEHOLDERS = ("N/A", "__background__", "")  # COCO's unused ids and the background: never shown as a class name
DISPLAY_THRESHOLD = 0.5


def read_image(path: str | Path) -> np.ndarray:
    """An image file as a float32 [3, H, W] array in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read the image {path}: {e}; give a JPEG or PNG file") from None
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def label_name(categories: list[str], label: int) -> str:
    """The class name a picture shows: an id with no real name (COCO's N/A placeholders) is shown as its number."""
    name = categories[label] if 0 <= label < len(categories) else ""
    return name if name not in PLACEHOLDERS else f"id {label} (unnamed)"


def shown(det: dict, threshold: float = DISPLAY_THRESHOLD, max_boxes: int = 30) -> list[int]:
    """Indices of the detections a picture draws: score >= threshold, highest first, at most ``max_boxes``."""
    scores = np.asarray(det["scores"], dtype=np.float64)
    return [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold][:max_boxes]


@dataclass
class _Layout:
    taken: list

    def free(self, box) -> bool:
        x0, y0, x1, y1 = box
        return all(x1 <= a or x0 >= c or y1 <= b or y0 >= d for a, b, c, d in self.taken)

    def place(self, candidates: list, step: float, bottom: float):
        """The first candidate position (shifted down in ``step`` until free, within ``bottom``) that overlaps no
        label placed before; None when there is no room."""
        for x0, y0, x1, y1 in candidates:
            while y1 <= bottom:
                if self.free((x0, y0, x1, y1)):
                    self.taken.append((x0, y0, x1, y1))
                    return x0, y0, x1, y1
                y0, y1 = y0 + step, y1 + step
        return None


def draw(image: np.ndarray, det: dict, categories: list[str], out: str | Path,
         threshold: float = DISPLAY_THRESHOLD, title: str = "", banner: str = "", max_boxes: int = 30) -> Path:
    """Write a PNG of ``image`` with the detections at or above ``threshold``. A header above the image holds the
    title, "N of M shown" and ``banner`` (red, e.g. "seeded random weights: the boxes are meaningless"); a legend
    below it names each class drawn; the picture itself holds only boxes, masks, keypoints and their labels."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    base = (np.asarray(image).transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
    height, width = base.shape[:2]
    keep = shown(det, threshold, max_boxes)
    total = len(det["scores"])
    labels = [int(det["labels"][i]) for i in keep]
    classes = list(dict.fromkeys(labels))  # in order of their best detection
    colour = {c: PALETTE[k % len(PALETTE)] for k, c in enumerate(classes)}
    canvas = base.astype(np.float32)
    if "masks" in det:
        for i, c in zip(keep, labels):
            m = np.asarray(det["masks"][i, 0]) > 0.5
            canvas[m] = canvas[m] * 0.5 + np.array(colour[c]) * 0.5

    counts = (f"{len(keep)} of {total} detections shown (score >= {threshold:g})"
              + (f", the {max_boxes} best" if len(keep) == max_boxes and total > max_boxes else ""))
    pic, head_h = _framed(canvas, title, counts, banner, legend=bool(classes))
    d = ImageDraw.Draw(pic)
    layout = _Layout([])
    text_h = 16
    bottom = head_h + height
    for i, c in zip(keep, labels):
        x0, y0, x1, y1 = [float(v) for v in det["boxes"][i]]
        y0, y1 = y0 + head_h, y1 + head_h
        d.rectangle([x0, y0, x1, y1], outline=colour[c], width=2)
        if "keypoints" in det:
            for x, y, v in np.asarray(det["keypoints"][i]):
                if v > 0:
                    d.ellipse([x - 2, y + head_h - 2, x + 2, y + head_h + 2], fill=colour[c])
    for i, c in zip(keep, labels):  # labels after every box: no box line crosses a label
        x0, y0, x1, y1 = [float(v) for v in det["boxes"][i]]
        y0, y1 = y0 + head_h, y1 + head_h
        text = f"{label_name(categories, c)} {float(det['scores'][i]):.2f}"
        tw = d.textlength(text, font=font) + 6
        x = min(max(0.0, x0), max(0.0, width - tw))
        above = (x, y0 - text_h, x + tw, y0)
        inside = (x, y0 + 1, x + tw, y0 + 1 + text_h)
        spot = layout.place([above] if y0 - text_h >= head_h else [inside], text_h, bottom)
        if spot is None:
            spot = layout.place([(x, head_h, x + tw, head_h + text_h)], text_h, bottom)
        if spot is not None:
            d.rectangle(spot, fill=colour[c])
            d.text((spot[0] + 3, spot[1] + 1), text, fill=(0, 0, 0), font=font)
    if classes:
        x, y = 6, head_h + height + 6
        for c in classes:
            name = label_name(categories, c)
            d.rectangle([x, y + 2, x + 12, y + 14], fill=colour[c])
            d.text((x + 16, y), name, fill=(255, 255, 255), font=font)
            x += 16 + int(d.textlength(name, font=font)) + 14
    return _save(pic, out)


def _framed(canvas: np.ndarray, title: str, counts: str, banner: str, legend: bool):
    """The picture: a header (the title, the counts line, the red banner) above ``canvas`` (H, W, 3) and room for a
    legend line below it where ``legend``. Returns (the image, the header's height)."""
    from PIL import Image, ImageDraw, ImageFont

    font, big = ImageFont.load_default(size=13), ImageFont.load_default(size=16)
    header = [(title, big, (255, 255, 255)), (counts, font, (255, 255, 255))]
    if banner:
        header.append((banner, big, (255, 80, 80)))
    line_h = 20
    head_h = line_h * len(header) + 6
    height, width = canvas.shape[:2]
    width_needed = max([width] + [int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=f)) + 12
                                  for t, f, _ in header])
    pic = Image.new("RGB", (width_needed, head_h + height + (line_h + 8 if legend else 0)), (0, 0, 0))
    pic.paste(Image.fromarray(canvas.astype(np.uint8)), (0, head_h))
    d = ImageDraw.Draw(pic)
    for k, (text, f, fill) in enumerate(header):
        d.text((6, 3 + k * line_h), text, fill=fill, font=f)
    return pic, head_h


def _save(pic, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pic.save(out)
    return out


def _tint_segments(canvas: np.ndarray, ids: np.ndarray, segments: np.ndarray, categories: list[str],
                   stuff: list[str]) -> list:
    """Tint ``canvas`` (H, W, 3 float) segment by segment (a thing its own colour, a stuff class one); returns the
    labels to write, (name, (x, y, colour)), for segments of at least 0.2% of the pixels, at the segment's pixel
    nearest its centre of mass."""
    labels = []
    for k, (seg_id, category, isthing, _, _) in enumerate(segments.tolist()):
        mask = ids == seg_id
        colour = np.array(PALETTE[(k if isthing else category) % len(PALETTE)], np.float32)
        canvas[mask] = canvas[mask] * 0.4 + colour * 0.6
        ys, xs = np.nonzero(mask)
        if ys.size >= 0.002 * ids.size:
            nearest = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
            name = label_name(categories, category) if isthing else \
                (stuff[category] if 0 <= category < len(stuff) else f"stuff {category}")
            labels.append((name, (float(xs[nearest]), float(ys[nearest]), tuple(int(c) for c in colour))))
    return labels


def draw_panoptic(image: np.ndarray, det: dict, categories: list[str], stuff: list[str], out: str | Path,
                  title: str = "", banner: str = "") -> Path:
    """Write a PNG of a panoptic model's ``panoptic_seg``: each segment tinted (a thing its own colour, a stuff class
    one colour), outlined, and named where it is large enough (at the segment's pixel nearest its centre of mass;
    "things" the thing's label name, stuff its ``stuff`` name); a header counts the segments and the void pixels."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    ids = np.asarray(det["panoptic_seg"]).astype(np.int64)
    segments = np.asarray(det["segments_info"]).reshape(-1, 5)
    canvas = (np.asarray(image).transpose(1, 2, 0) * 255).clip(0, 255).astype(np.float32)
    names = _tint_segments(canvas, ids, segments, categories, stuff)
    edge = np.zeros(ids.shape, bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    canvas[edge] = 255.0
    things = int(segments[:, 2].sum())
    counts = (f"{len(segments)} segments: {things} things, {len(segments) - things} stuff; "
              f"{(ids == 0).mean():.1%} of the pixels in no segment")
    pic, head_h = _framed(canvas, title, counts, banner, legend=False)
    d = ImageDraw.Draw(pic)
    layout = _Layout([])
    for name, (x, y, colour) in names:
        tw = d.textlength(name, font=font) + 6
        x = min(max(0.0, x - tw / 2), max(0.0, ids.shape[1] - tw))
        spot = layout.place([(x, head_h + y - 8, x + tw, head_h + y + 8)], 16, head_h + ids.shape[0])
        if spot is not None:
            d.rectangle(spot, fill=colour)
            d.text((spot[0] + 3, spot[1] + 1), name, fill=(0, 0, 0), font=font)
    return _save(pic, out)
