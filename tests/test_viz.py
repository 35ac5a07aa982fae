"""Pictures people can read: the display threshold, "N of M shown", labels clear of the header and of each other,
no placeholder class names. Pillow only, no model."""
import numpy as np
from PIL import Image

from zoo.ops import viz
from zoo.core.manifest import resolve

CATS = resolve("ssdlite").categories


def crowded(n=44, seed=0):
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, 400, n), rng.uniform(0, 300, n)
    y0[:6] = 0  # boxes touching the top edge: their labels go inside
    boxes = np.stack([x0, y0, x0 + rng.uniform(30, 200, n), y0 + rng.uniform(30, 200, n)], 1).clip(0, 479)
    return {"boxes": boxes.astype(np.float32), "scores": rng.uniform(0.3, 1, n).astype(np.float32),
            "labels": rng.choice([1, 12, 18, 44, 3], n)}  # 12: COCO's N/A


def test_threshold_and_placeholder_names():
    det = crowded()
    keep = viz.shown(det, 0.5, 30)
    assert keep and all(det["scores"][i] >= 0.5 for i in keep) and len(keep) <= 30
    assert list(det["scores"][keep]) == sorted(det["scores"][keep], reverse=True)
    assert CATS[12] == "N/A" and viz.label_name(CATS, 12) == "id 12 (unnamed)" and viz.label_name(CATS, 1) == "person"


def test_labels_never_overlap_nor_cover_the_header(tmp_path, monkeypatch):
    placed = []
    real = viz._Layout.place

    def spy(self, *args):
        spot = real(self, *args)
        placed.append(spot)
        return spot
    monkeypatch.setattr(viz._Layout, "place", spy)
    img = np.full((3, 480, 640), 0.5, np.float32)
    out = viz.draw(img, crowded(), CATS, tmp_path / "p.png", 0.5, "title", "SEEDED RANDOM WEIGHTS")
    spots = [s for s in placed if s is not None]
    head = Image.open(out).size[1] - 480 - (20 + 8)  # header height: the picture minus image and legend
    assert len(spots) >= 20  # most of the 30 shown get a label
    for k, (x0, y0, x1, y1) in enumerate(spots):
        assert y0 >= head, "a label under the header"
        for a, b, c, d in spots[k + 1:]:
            assert x1 <= a or x0 >= c or y1 <= b or y0 >= d, "two labels overlap"
