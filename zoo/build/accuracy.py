"""The accuracy gate of approximate artifacts (zoo.core.manifest.APPROXIMATE_METHODS: int8 and the like), in place of
detection-by-detection parity, which cannot hold at int8: *agreement AP*, COCO box AP (pycocotools) of the
artifact's detections scored against eager's detections at or above GROUND_TRUTH_SCORE taken as the ground truth,
on the build's images (zoo/ops/agreement.py computes it). The manifest's [[export]] entry states the least figures
allowed (min_agreement_ap50, and optionally min_agreement_ap); the metadata records the measured ones and the CPU
features they were measured on (zoo.core.cpu), since an int8 artifact's accuracy depends on the ISA."""
from __future__ import annotations

import platform

from ..core.cpu import isa_features
from ..core.manifest import Export
from ..errors import ParityError
from ..ops.agreement import agreement_ap
from .calibration import record

# Eager's detections at or above this score are the ground truth. Lower than `zoo bench`'s 0.5 on photos: the build's
# images are smooth noise, on which a detector is less sure, and 0.3 gives the gate several times more boxes to agree
# on (trained test detector: 38 against 9); a ground-truth box whose int8 score drops below 0.3 still counts as found
# (every detection the artifact returns is scored, with its own score).
GROUND_TRUTH_SCORE = 0.3
GATE = (f"agreement AP: COCO box AP (pycocotools) of the artifact's detections against eager's detections scoring >= "
        f"{GROUND_TRUTH_SCORE} as the ground truth, on the build's images (and the user's, with --calibration)")


def check(spec: Export, reference: list[dict], candidate: list[dict], user=None, gpu: str | None = None) -> dict:
    """What the metadata records of an approximate artifact that passes: the measured figures, the bounds, the
    hardware; a ParityError giving the figures and the bounds when it does not. ``user``: the calibration.UserImages
    the last images are (--calibration), or None. ``gpu``: the GPU's name where the artifact ran on one (tensorrt-fp16:
    its kernels are the GPU's, so no CPU feature is recorded for a load elsewhere to miss), else the CPU's ISA."""
    figures = agreement_ap(reference, candidate, GROUND_TRUTH_SCORE)
    if figures is None:
        raise ParityError(f"agreement AP cannot be measured: eager has no detection scoring >= {GROUND_TRUTH_SCORE} "
                          f"on the {_images(len(reference), user)}, so there is nothing to agree on; an approximate "
                          "method needs a model that detects something on them")
    measured = {k: figures[k.removeprefix("min_agreement_")] for k in spec.accuracy}
    low = [k for k, bound in spec.accuracy.items() if measured[k] < bound]
    if low:
        raise ParityError(f"{spec.method} is less accurate than its manifest allows: " + ", ".join(
            f"agreement {k.removeprefix('min_agreement_').upper()} {measured[k]:.4f} < {k} {spec.accuracy[k]}"
            for k in low) + f" (measured AP50 {figures['ap50']:.4f}, AP {figures['ap']:.4f} against eager's "
            f"{figures['ground_truth']} detections scoring >= {GROUND_TRUTH_SCORE} on {_images(len(reference), user)})")
    return {"gate": GATE, "ok": True, "agreement": {**figures, "score_threshold": GROUND_TRUTH_SCORE,
                                                   "images": len(reference), **record(user)},
            "bounds": dict(spec.accuracy),
            **({"isa": [], "gpu": gpu} if gpu else {"isa": isa_features(), "machine": platform.machine()})}


def line(accuracy: dict) -> str:
    a = accuracy["agreement"]
    return (f"agreement AP50 {a['ap50']:.4f} AP {a['ap']:.4f} with eager's {a['ground_truth']} detections >= "
            f"{a['score_threshold']} on {a['images']} images (bounds: "
            + ", ".join(f"{k} {v}" for k, v in accuracy["bounds"].items()) + ")")


def _images(n: int, user) -> str:
    return (f"{n} images ({n - len(user.images)} of the build's, {len(user.images)} from --calibration {user.name})"
            if user else f"{n} build images")
