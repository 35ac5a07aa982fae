"""Score threshold and detection count of a loaded model: checked against the values baked into its artifact, then
applied to the artifact's outputs. No torch.

Every family (R-CNN, RetinaNet, FCOS, SSD) keeps ``scores > threshold`` before NMS and the first k detections after
it, highest score first (torchvision's roi_heads.py, retinanet.py, fcos.py, ssd.py). NMS only suppresses a box by a
higher-scoring one, and the per-level candidate top-k keeps the highest scores, so dropping the detections at or below
a *higher* threshold afterwards, then keeping the first k <= the baked count, gives exactly what the model built with
those arguments gives. The opposite (a lower threshold, more detections) would need what the artifact already dropped.

A panoptic model's ``sem_seg``, ``panoptic_seg`` and ``segments_info`` describe the image, not a detection: they are
kept whole, the segments' instance column renumbered to the kept detections. Exact while every detection a thing
segment was made from is kept (the merge's own instance threshold, ``combine_instances_score_thresh``, is at or above
the new threshold); otherwise the panoptic output was merged from detections the new limits drop, and is refused.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ...errors import NotAvailableError, UnsupportedError

DOC = "docs/dropin.md"
OURS = ("score_thresh", "detections_per_img")


@dataclass(frozen=True)
class Limits:
    score_thresh: float | None = None        # None: the artifact's own
    detections_per_img: int | None = None


def _check_value(key: str, value) -> None:
    if key == "score_thresh":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise UnsupportedError(f"score_thresh must be a finite number (a score between 0 and 1), got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise UnsupportedError(f"detections_per_img must be a non-negative integer, got {value!r}")


def limits_for(settings: dict | None, given: dict, default: Limits = Limits(), model: str = "this model") -> Limits:
    """The limits asked for by ``given`` (keyword arguments: score_thresh / detections_per_img, or torchvision's names
    for this family such as box_score_thresh), on top of ``default``; errors say what cannot be done and why."""
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return default
    if settings is None:
        raise NotAvailableError(f"{model}: this store's index does not record the values baked into its artifacts "
                                f"(it was built by an older zoo), so {', '.join(given)} cannot be checked; rebuild the "
                                "store with `zoo build`")
    baked = settings["baked"]
    names = {key: key for key in OURS} | {settings[key]: key for key in OURS}
    values: dict = {}
    for name, value in given.items():
        key = names.get(name)
        if key is None:
            raise UnsupportedError(_not_ours(name, value, settings, model))
        if key in values:
            raise UnsupportedError(f"{key} given twice (as {key} and as torchvision's {settings[key]}); pass one")
        _check_value(key, value)
        values[key] = value
    for key, value in values.items():
        tv, base = settings[key], baked[settings[key]]
        if (key == "score_thresh" and value < base) or (key == "detections_per_img" and value > base):
            raise UnsupportedError(_beyond_artifact(key, value, tv, base, model))
    return Limits(values.get("score_thresh", default.score_thresh),
                  values.get("detections_per_img", default.detections_per_img))


def _beyond_artifact(key: str, value, tv: str, base, model: str) -> str:
    if key == "score_thresh":
        what, exact = f"detections scoring at or below {base}", f"a threshold of {base} or more"
    else:
        what, exact = f"more than {base} detections per image", f"{base} or fewer"
    return (f"{key}={value} asks {model} for {what}, but its artifact was exported with {tv}={base} and never "
            f"returns them: after the fact only {exact} is exact. For {tv}={value}, build an artifact with that value "
            f"(see {DOC}, 'Values baked into an artifact')")


def _not_ours(name: str, value, settings: dict, model: str) -> str:
    baked = settings["baked"]
    changeable = (f"a loaded model changes only score_thresh (>= {baked[settings['score_thresh']]}) and "
                  f"detections_per_img (<= {baked[settings['detections_per_img']]})")
    if name in baked:
        return (f"{name} is baked into {model}'s exported artifact ({name}={baked[name]!r}) and cannot change after "
                f"export; {changeable}. For {name}={value!r}, build an artifact whose manifest `builder` returns the "
                f"model built with it, then load from that store (see {DOC}, 'Values baked into an artifact')")
    theirs = [settings[key] for key in OURS if settings[key] != key]
    fixed = sorted(set(baked) - {settings[key] for key in OURS})
    return (f"unknown argument {name}={value!r} for {model}: {changeable}"
            + (f" (torchvision's names: {', '.join(theirs)})" if theirs else "")
            + f"; baked into its artifact: {', '.join(fixed)}")


IMAGE_OUTPUTS = ("sem_seg", "panoptic_seg", "segments_info")  # a panoptic model's: of the image, not per detection
INSTANCE_COLUMN = 3  # segments_info: id, category, isthing, instance, area


def renumbered_segments(segments: np.ndarray, keep: np.ndarray, n: int, model: str = "this model") -> np.ndarray:
    """``segments_info`` (S, 5) with its instance column pointing into the ``keep`` subset of ``n`` detections."""
    new = np.full(n + 1, -1, np.int64)  # (index n: the -1 of a stuff segment)
    new[keep] = np.arange(keep.size)
    instances = segments[:, INSTANCE_COLUMN]
    lost = (instances >= 0) & (new[instances] < 0)
    if lost.any():
        raise UnsupportedError(
            f"{model}: the limits drop {int(lost.sum())} detection(s) its panoptic_seg was merged from (segments "
            f"{', '.join(str(int(i)) for i in segments[lost, 0])}); a panoptic model's limits keep at least what its "
            "merge used: a score_thresh at or below its combine_instances_score_thresh, and enough detections_per_img. "
            f"For a higher threshold, build the model with that combine_instances_score_thresh (see {DOC})")
    out = segments.copy()
    out[:, INSTANCE_COLUMN] = new[instances]
    return out


def keep_indices(scores: np.ndarray, limits: Limits) -> np.ndarray | None:
    """Indices of the detections to keep, in output order; None when all are kept."""
    n = scores.shape[0]
    keep = np.arange(n)
    if limits.score_thresh is not None:
        keep = np.flatnonzero(scores > np.float32(limits.score_thresh))  # float32, as torch compares a float32 tensor
    k = limits.detections_per_img
    if k is not None and keep.size > k:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:k]]
    return None if keep.size == n else keep
