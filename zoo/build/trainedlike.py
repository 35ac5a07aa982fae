"""Do seeded weights behave like a trained detector? Criteria on eager outputs, checked by the build (no torch).

Random weights tend to saturate: every candidate scores 1.0, each image returns the detection cap, one label, sliver
boxes. Then top-k, NMS order and the cap are decided by tie-breaking, parity never exercises the ordering a trained
model depends on, and the bench pays for 100-300 detections. The build keeps seeded weights only where, on every
content image of the parity set (not the constant grey one):

- the image has a trained model's count of detections above the model's score threshold: a few to a few dozen;
- its scores are spread: at most ``MAX_TIED`` share a value exactly, and the top ``TOP`` are distinct to ``DECIMALS``
  decimals;
- most boxes have plausible shapes (a side of ``MIN_SIDE`` px or more, aspect ratio at most ``MAX_ASPECT``);

and, over all images, more than one label occurs (where the model has more than one class); a panoptic model's
output (``segments_info``) holds both things and stuff on at least one image (its detections reach the merge's
instance threshold, and the semantic head leaves stuff beside them).
"""
from __future__ import annotations

import numpy as np

MIN_DETECTIONS, MAX_DETECTIONS = 2, 60
MAX_TIED = 3
TOP, DECIMALS = 20, 4
SATURATED = 0.999  # a top score this high: ties come from saturation, else from scores crowding together
MIN_SIDE, MAX_ASPECT, MIN_PLAUSIBLE = 2.0, 10.0, 0.8

# which [random_weights] setting moves each criterion (see zoo/build/seeded.py)
FEWER = ("lower random_weights.bias of the classification layers (sigmoid heads) or raise their "
         "random_weights.background_bias (softmax heads)")
ADVICE = {
    "few": "raise random_weights.bias of the classification layers (sigmoid heads) or lower their "
           "random_weights.background_bias (softmax heads)",
    "many": FEWER,
    "saturated": f"scores saturate: {FEWER}, or lower random_weights.spread of the classification layers",
    "crowded": "scores crowd together: raise random_weights.spread of the classification layers (and their "
               "random_weights.weight_mean in proportion, to keep the count)",
    "labels": "lower random_weights.class_bias (one class dominates) or raise random_weights.spread of the "
              "classification layers",
    "boxes": "lower random_weights.spread of the box regression layers (boxes then stay near their anchors)",
    "panoptic": "the merge keeps detections scoring over its instance threshold: raise random_weights.spread of the "
                "classification layers (wider scores; raise their background_bias to keep the count)",
}


def image_summary(out: dict) -> dict:
    """JSON-able figures of one image's outputs (``boxes`` [N,4] xyxy, ``labels`` [N], ``scores`` [N])."""
    scores = np.asarray(out["scores"], dtype=np.float64).reshape(-1)
    boxes = np.asarray(out["boxes"], dtype=np.float64).reshape(-1, 4)
    _, counts = np.unique(scores, return_counts=True)
    top = np.sort(scores)[::-1][:TOP]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    short, long = np.minimum(w, h), np.maximum(w, h)
    plausible = (short >= MIN_SIDE) & (long <= MAX_ASPECT * np.maximum(short, 1e-9))
    segments = {}
    if "segments_info" in out:  # a panoptic model's: [id, category, isthing, instance, area] per segment
        isthing = np.asarray(out["segments_info"]).reshape(-1, 5)[:, 2]
        segments = {"things": int((isthing == 1).sum()), "stuff": int((isthing == 0).sum())}
    return {"detections": int(scores.size),
            "labels": sorted({int(x) for x in np.asarray(out["labels"]).reshape(-1)}), **segments,
            "tied": int(counts[counts > 1].sum()),
            "top_distinct": int(np.unique(np.round(top, DECIMALS)).size), "top": int(top.size),
            "plausible_boxes": int(plausible.sum()),
            "score_min": round(float(scores.min()), 4) if scores.size else None,
            "score_max": round(float(scores.max()), 4) if scores.size else None}


def summary(outputs: list[dict]) -> dict:
    """Figures of the content images' outputs: totals (as the index recorded them before) and one entry per image."""
    images = [image_summary(out) for out in outputs]
    scores = np.concatenate([np.asarray(out["scores"]).reshape(-1) for out in outputs]) if outputs else np.zeros(0)
    return {"detections": int(scores.size), "distinct_scores": int(np.unique(scores).size),
            "score_min": round(float(scores.min()), 4) if scores.size else None,
            "score_max": round(float(scores.max()), 4) if scores.size else None,
            "labels": sorted({label for im in images for label in im["labels"]}), "images": images}


def failures(figures: dict, num_classes: int) -> list[str]:
    """What ``figures`` (from ``summary``) miss of the criteria, each with its numbers and the setting to change;
    empty when they behave like a trained detector. ``num_classes`` counts the background class."""
    found = []
    for k, im in enumerate(figures["images"]):
        n = im["detections"]
        if n < MIN_DETECTIONS:
            found.append(("few", f"image {k}: {n} detections, fewer than {MIN_DETECTIONS}"))
        elif n > MAX_DETECTIONS:
            found.append(("many", f"image {k}: {n} detections, more than a trained model's {MAX_DETECTIONS}"))
        tied = "saturated" if (im["score_max"] or 0) >= SATURATED else "crowded"
        if im["tied"] > MAX_TIED:
            found.append((tied, f"image {k}: {im['tied']} of {n} scores tied (at most {MAX_TIED}; scores "
                                  f"{im['score_min']}..{im['score_max']})"))
        elif im["top_distinct"] < im["top"]:
            found.append((tied, f"image {k}: the top {im['top']} scores are only {im['top_distinct']} distinct "
                                  f"to {DECIMALS} decimals (scores {im['score_min']}..{im['score_max']})"))
        if n and im["plausible_boxes"] < MIN_PLAUSIBLE * n:
            found.append(("boxes", f"image {k}: {n - im['plausible_boxes']} of {n} boxes implausible (a side under "
                                   f"{MIN_SIDE} px or an aspect ratio over {MAX_ASPECT}; at most "
                                   f"{1 - MIN_PLAUSIBLE:.0%} allowed)"))
    if num_classes > 2 and len(figures["labels"]) < 2:
        found.append(("labels", f"{len(figures['labels'])} distinct label(s) {figures['labels']} over all images, "
                                f"expected more than one of the {num_classes - 1} classes"))
    panoptic = [im for im in figures["images"] if "things" in im]
    if panoptic and not any(im["things"] and im["stuff"] for im in panoptic):
        found.append(("panoptic", "no image's panoptic output holds both things and stuff (things "
                                  f"{[im['things'] for im in panoptic]}, stuff {[im['stuff'] for im in panoptic]})"))
    return [f"{msg}: {ADVICE[kind]}" for kind, msg in found]
