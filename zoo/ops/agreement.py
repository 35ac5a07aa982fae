"""Agreement AP: how well one detector's boxes reproduce another's, scored by pycocotools as COCO box AP with the
reference's confident detections taken as the ground truth. Where detection-by-detection parity cannot hold (a
lower-precision artifact), this is the accuracy figure that needs no labels: 1.0 for a detector compared with
itself, lower as boxes move, labels change or detections appear and vanish."""
from __future__ import annotations

import contextlib
import io

import numpy as np

GROUND_TRUTH_SCORE = 0.5  # the reference's detections at or above this score are the ground truth


def _xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def ground_truth(reference: list[dict], threshold: float = GROUND_TRUTH_SCORE) -> dict:
    """A COCO ground-truth document from the reference's detections at or above ``threshold`` (image ids from 1)."""
    images, annotations, labels = [], [], set()
    for image_id, det in enumerate(reference, 1):
        images.append({"id": image_id})
        for box, label, score in zip(np.asarray(det["boxes"]).reshape(-1, 4), np.asarray(det["labels"]).reshape(-1),
                                     np.asarray(det["scores"]).reshape(-1)):
            if score >= threshold:
                xywh = _xywh(box)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                    "bbox": xywh, "area": max(xywh[2], 0.0) * max(xywh[3], 0.0), "iscrowd": 0})
                labels.add(int(label))
    return {"images": images, "annotations": annotations, "categories": [{"id": c} for c in sorted(labels)]}


def agreement_ap(reference: list[dict], candidate: list[dict], threshold: float = GROUND_TRUTH_SCORE) -> dict | None:
    """{"ap": COCO AP@[.5:.95], "ap50": AP@.5, "ground_truth": how many boxes} of ``candidate``'s detections (every
    one, with its score) against ``reference``'s at or above ``threshold``, image by image; None when the reference
    has no such detection on any image (nothing to agree on)."""
    if len(reference) != len(candidate):
        raise ValueError(f"agreement_ap: {len(reference)} reference images, {len(candidate)} candidate images")
    doc = ground_truth(reference, threshold)
    if not doc["annotations"]:
        return None
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    results = [{"image_id": image_id, "category_id": int(label), "bbox": _xywh(box), "score": float(score)}
               for image_id, det in enumerate(candidate, 1)
               for box, label, score in zip(np.asarray(det["boxes"]).reshape(-1, 4),
                                            np.asarray(det["labels"]).reshape(-1), np.asarray(det["scores"]).reshape(-1))]
    if not results:
        return {"ap": 0.0, "ap50": 0.0, "ground_truth": len(doc["annotations"])}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and summary tables
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"ap": round(max(0.0, float(ev.stats[0])), 4), "ap50": round(max(0.0, float(ev.stats[1])), 4),
            "ground_truth": len(doc["annotations"])}
