"""A Mask R-CNN of the user's own (``trained.mask_detector:build_mask``): the demo detector with a small mask branch,
trained for real on the shapes' exact masks. The checkpoint is committed beside this file (``mask_detector.pth``,
with ``mask_detector.json``: the training code's digest, its sha256, how long it took); when the training code
changes, ``checkpoint()`` trains once and caches it by the new digest (zoo/build/demo/train.py's cache).

    PYTHONPATH=tests python -m trained.mask_detector    # re-train (minutes on 2 cores) and rewrite both files"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from zoo.build.demo import detector, shapes, train

MASK_STEPS = 700  # the mask branch costs more per step than the detector's 900 steps; box and mask mAP both learn


def build_mask(num_classes: int = 4, **settings):
    """The demo detector (``settings`` as its ``build`` takes them) with torchvision's Mask R-CNN branch on its RoI
    heads, as ``MaskRCNN.__init__`` adds it: RoIAlign to 14x14, two 3x3 convolutions, 28x28 masks per class."""
    model = detector.build(num_classes, **settings)
    heads = model.roi_heads
    heads.mask_roi_pool = MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=2)
    heads.mask_head = MaskRCNNHeads(detector.backbone().out_channels, (64, 64), 1)
    heads.mask_predictor = MaskRCNNPredictor(64, 64, num_classes)
    return model


def mask(c: int, box: list[float]) -> np.ndarray:
    """The exact uint8 mask (SIZE x SIZE) of a shape of class index ``c`` in ``box`` [x, y, w, h], drawn as the
    scene draws it (zoo/build/demo/shapes.py)."""
    x, y, s = int(box[0]), int(box[1]), int(box[2])
    im = Image.new("L", (shapes.SIZE, shapes.SIZE), 0)
    draw = ImageDraw.Draw(im)
    if shapes.CLASSES[c] == "circle":
        draw.ellipse((x, y, x + s, y + s), fill=1)
    else:
        draw.polygon(shapes._outline(shapes.CLASSES[c], x, y, s), fill=1)
    return np.asarray(im, np.uint8)


def cache_key() -> str:
    """The digest of what trains it: the demo's training code and this module's recipe (above this function)."""
    own = Path(__file__).read_text(encoding="utf-8")
    return hashlib.sha256((train.cache_key() + own[:own.index("def cache_key")]).encode()).hexdigest()[:16]


SHIPPED = Path(__file__).with_name("mask_detector.pth")


def fit(log=None):
    return train.train(MASK_STEPS, log=log, build=build_mask, mask_of=mask)


def checkpoint() -> Path:
    """The committed checkpoint while the training code is the one it was made with; else trained once and cached."""
    info = SHIPPED.with_suffix(".json")
    if SHIPPED.is_file() and info.is_file() and json.loads(info.read_text())["code_digest"] == cache_key():
        return SHIPPED
    return train.cached("mask", cache_key(), fit)


if __name__ == "__main__":
    import torch

    from zoo.core.store import sha256_file
    t0 = time.perf_counter()
    train.save(fit(log=print), SHIPPED)
    info = {"code_digest": cache_key(), "sha256": sha256_file(SHIPPED), "steps": MASK_STEPS, "torch": torch.__version__,
            "train_seconds": round(time.perf_counter() - t0), "command": "PYTHONPATH=tests python -m trained.mask_detector"}
    SHIPPED.with_suffix(".json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    print(json.dumps(info, indent=1), file=sys.stderr)
