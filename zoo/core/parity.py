"""Parity of two detectors' outputs, by matched detections (the rule below), in numpy only.

Detections are matched greedily, highest reference score first, to the unmatched candidate with the same label and
the highest IoU above ``iou``, or else the nearest one whose every coordinate lies within ``box_atol``: IoU says
nothing about boxes of zero area (a point, or a box clipped flat at the image border, common with seeded weights),
and little about boxes a few pixels wide. A reference detection left unmatched is *borderline* when its score lies
within ``score_atol`` of the lowest score the reference kept (the top-k / threshold cut-off, where near-equal scores may
swap in or out); those are reported apart and allowed up to ``max_borderline``. Differences (boxes, scores, masks,
keypoints) are measured on matched pairs only, on what a user sees: a mask inside its detection's box (the reference
box, rounded outwards), binarised at 0.5 (the pair's IoU must be at least ``mask_iou``) and as probabilities (mean
absolute difference inside the box at most ``mask_atol``; over the whole image, noise confined to a small box would
average out); a keypoint by its distance, each visible keypoint on its own (at most ``keypoint_atol``).
A panoptic model's outputs are compared per image: ``sem_seg`` by its largest logit difference (at most
``sem_seg_atol``), ``panoptic_seg`` by the share of pixels whose segment agrees (at least ``panoptic_agree``) once the
segments are matched one to one, most shared pixels first, a candidate segment only to a reference segment of its
category and kind (thing or stuff; ``segments_info``); pixels in no segment agree with pixels in none.
An image whose ranking ties has no meaningful matching: only its output
shapes and dtypes are checked, and it is reported as tied. That is an image whose reference scores tie, or one the
caller names as unranked: a constant image, whose translation-invariant features give thousands of anchors the same
objectness, so which of them pass the RPN's top-k is a tie-break (onnxruntime's TopK breaks ties unlike torch's).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    min_matched: float = 0.95      # matched / max(n_reference, n_candidate), not counting borderline misses
    iou: float = 0.9               # a match needs this IoU or more
    box_atol: float = 1.0          # pixels, max abs over matched boxes
    score_atol: float = 0.01       # max abs over matched scores
    mask_atol: float = 0.05        # mean abs difference of a matched mask's probabilities inside its box, worst mask
    mask_iou: float = 0.9          # IoU of a matched pair's masks binarised at 0.5 inside the box, worst mask
    keypoint_atol: float = 2.0     # pixels, distance of a matched visible keypoint, worst keypoint
    max_borderline: float = 0.05   # borderline misses / n_reference
    panoptic_agree: float = 0.999  # share of pixels in the matched segment (panoptic_seg), worst image
    sem_seg_atol: float = 0.01     # max abs difference of the sem_seg logits

    @classmethod
    def from_dict(cls, d: dict) -> "Tolerance":
        return cls(**d)


@dataclass
class ImageParity:
    n_reference: int
    n_candidate: int
    matched: int
    borderline: int
    max_box_diff: float = 0.0
    max_score_diff: float = 0.0
    max_mask_diff: float = 0.0
    min_mask_iou: float = 1.0
    max_keypoint_diff: float = 0.0
    panoptic_agree: float | None = None    # a panoptic model's figures (None for the others)
    max_sem_seg_diff: float | None = None
    tied: bool = False             # the ranking ties: matching is meaningless there (reported, not enforced)
    constant: bool = False         # named unranked by the caller (a constant input): checked like a tied one


@dataclass
class Report:
    images: list[ImageParity] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def matched_fraction(self) -> float:
        fractions = [_fraction(p) for p in self.images if not p.tied]
        return min(fractions) if fractions else 1.0

    def summary(self) -> dict:
        worst = lambda key: max((getattr(p, key) for p in self.images), default=0.0)  # noqa: E731
        panoptic = [p for p in self.images if p.panoptic_agree is not None]
        return {
            "ok": self.ok,
            "images": len(self.images),
            "detections": sum(p.n_reference for p in self.images),
            "min_matched_fraction": round(self.matched_fraction, 4),
            "borderline": sum(p.borderline for p in self.images),
            "tied_images": sum(p.tied for p in self.images),
            "max_box_diff": _r(worst("max_box_diff")),
            "max_score_diff": _r(worst("max_score_diff")),
            "max_mask_diff": _r(worst("max_mask_diff")),
            "min_mask_iou": _r(min((p.min_mask_iou for p in self.images), default=1.0)),
            "max_keypoint_diff": _r(worst("max_keypoint_diff")),
            **({"min_panoptic_agree": _r(min(p.panoptic_agree for p in panoptic)),
                "max_sem_seg_diff": _r(max(p.max_sem_seg_diff for p in panoptic))} if panoptic else {}),
            "failures": list(self.failures),
        }

    def line(self) -> str:
        """Counts that add up: "155 of 155 detections matched on 2 images; 1 constant image checked for shapes only"."""
        s = self.summary()
        ranked = [p for p in self.images if not p.tied]
        constant = sum(p.constant for p in self.images)
        tied = sum(p.tied and not p.constant for p in self.images)
        apart = [f"{n} {what} image{'s' if n > 1 else ''}" for n, what in ((constant, "constant"),
                                                                            (tied, "tied-score")) if n]
        plural = lambda n: "" if n == 1 else "s"  # noqa: E731
        return (f"{sum(p.matched for p in ranked)} of {sum(p.n_reference for p in ranked)} detections matched on "
                f"{len(ranked)} image{plural(len(ranked))}"
                + (f"; {' and '.join(apart)} checked for shapes only" if apart else "")
                + (f"; {s['borderline']} borderline swap{plural(s['borderline'])} allowed" if s["borderline"] else "")
                + f"; max diff box {s['max_box_diff']:.3g}px score {s['max_score_diff']:.3g}"
                + (f" mask {s['max_mask_diff']:.3g} (IoU >= {s['min_mask_iou']:.3g})" if s["max_mask_diff"] else "")
                + (f" keypoint {s['max_keypoint_diff']:.3g}px" if s["max_keypoint_diff"] else "")
                + (f" sem_seg {s['max_sem_seg_diff']:.3g}; panoptic pixels agree >= {s['min_panoptic_agree']:.6g}"
                   if "min_panoptic_agree" in s else ""))


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def _fraction(p: ImageParity) -> float:
    denominator = max(p.n_reference - p.borderline, p.n_candidate - p.borderline, 0)
    return 1.0 if denominator == 0 else min(1.0, p.matched / denominator)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] against every box in b [M,4] (xyxy)."""
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(ref: dict, cand: dict, tol: Tolerance) -> tuple[list[tuple[int, int]], ImageParity]:
    rb, cb = np.asarray(ref["boxes"], np.float64).reshape(-1, 4), np.asarray(cand["boxes"], np.float64).reshape(-1, 4)
    rl, cl = np.asarray(ref["labels"]).reshape(-1), np.asarray(cand["labels"]).reshape(-1)
    rs, cs = np.asarray(ref["scores"], np.float64).reshape(-1), np.asarray(cand["scores"], np.float64).reshape(-1)
    iou = box_iou(rb, cb) if len(rb) and len(cb) else np.zeros((len(rb), len(cb)))
    dist = np.abs(rb[:, None, :] - cb[None, :, :]).max(axis=2) if len(rb) and len(cb) else np.zeros_like(iou)
    fits = (rl[:, None] == cl[None, :]) & ((iou >= tol.iou) | (dist <= tol.box_atol))
    taken = np.zeros(len(cb), bool)
    pairs: list[tuple[int, int]] = []
    for i in np.argsort(-rs, kind="stable"):
        free = np.flatnonzero(fits[i] & ~taken)
        if free.size:
            j = int(free[np.lexsort((dist[i, free], -iou[i, free]))[0]])  # highest IoU, then nearest
            taken[j] = True
            pairs.append((int(i), j))
    matched_ref, matched_cand = {i for i, _ in pairs}, {j for _, j in pairs}
    cutoff = rs.min() if len(rs) else 0.0
    near = lambda s: s - cutoff <= tol.score_atol  # noqa: E731
    missed = sum(1 for i in range(len(rs)) if i not in matched_ref and near(rs[i]))
    # a miss at the cut-off is borderline only if something explains it: a candidate detection near the cut-off
    # that took its place (a swap), or the candidate keeping fewer detections (it fell below the threshold)
    swapped_in = sum(1 for j in range(len(cs)) if j not in matched_cand and near(cs[j]))
    borderline = min(missed, swapped_in + max(0, len(rs) - len(cs)))
    p = ImageParity(len(rb), len(cb), len(pairs), borderline)
    if pairs:
        i, j = map(list, zip(*pairs))
        p.max_box_diff = float(np.abs(rb[i] - cb[j]).max())
        p.max_score_diff = float(np.abs(rs[i] - cs[j]).max())
        if "masks" in ref:
            rm, cm = np.asarray(ref["masks"], np.float32), np.asarray(cand["masks"], np.float32)
            figures = [mask_figures(rm[a], cm[b], rb[a]) for a, b in pairs]
            p.max_mask_diff = max(d for d, _ in figures)
            p.min_mask_iou = min(iou for _, iou in figures)
        if "keypoints" in ref:
            rk, ck = np.asarray(ref["keypoints"], np.float64), np.asarray(cand["keypoints"], np.float64)
            distance = np.linalg.norm(rk[i][..., :2] - ck[j][..., :2], axis=-1)
            visible = rk[i][..., 2] > 0 if rk.shape[-1] > 2 else np.ones(distance.shape, bool)
            p.max_keypoint_diff = float(distance[visible].max()) if visible.any() else 0.0
    return pairs, p


def mask_figures(ref_mask: np.ndarray, cand_mask: np.ndarray, box) -> tuple[float, float]:
    """(mean abs probability difference, IoU of the masks binarised at 0.5) inside ``box`` (xyxy, rounded outwards,
    at least one pixel) of two image-sized masks [..., H, W]. Two masks both empty there agree: IoU 1."""
    h, w = ref_mask.shape[-2:]
    x0, y0 = (min(max(int(np.floor(v)), 0), n - 1) for v, n in ((box[0], w), (box[1], h)))
    x1, y1 = (max(min(int(np.ceil(v)), n), m + 1) for v, n, m in ((box[2], w, x0), (box[3], h, y0)))
    r, c = ref_mask[..., y0:y1, x0:x1], cand_mask[..., y0:y1, x0:x1]
    rb, cb = r >= 0.5, c >= 0.5
    union = np.logical_or(rb, cb).sum()
    iou = float(np.logical_and(rb, cb).sum() / union) if union else 1.0
    return float(np.abs(r - c).mean()), iou


def panoptic_agreement(ref: dict, cand: dict) -> float:
    """The share of pixels whose ``panoptic_seg`` segments agree (the rule in the module's docstring)."""
    rp, cp = np.asarray(ref["panoptic_seg"], np.int64), np.asarray(cand["panoptic_seg"], np.int64)
    if rp.shape != cp.shape:
        return 0.0
    kind = lambda info: {int(r[0]): (int(r[1]), int(r[2])) for r in np.asarray(info).reshape(-1, 5)}  # noqa: E731
    rk, ck = kind(ref["segments_info"]), kind(cand["segments_info"])
    pairs, counts = np.unique(np.stack([rp.ravel(), cp.ravel()]), axis=1, return_counts=True)
    agree, used_ref, used_cand = 0, set(), set()
    for k in np.argsort(-counts, kind="stable"):
        r, c = int(pairs[0, k]), int(pairs[1, k])
        if r in used_ref or c in used_cand or (r == 0) != (c == 0) or (r and rk.get(r) != ck.get(c)):
            continue
        used_ref.add(r)
        used_cand.add(c)
        agree += int(counts[k])
    return agree / rp.size if rp.size else 1.0


def compare(reference: list[dict], candidate: list[dict], tol: Tolerance, unranked: frozenset = frozenset()) -> Report:
    """Compare per-image outputs (dicts of arrays or tensors) of a reference and a candidate detector; the images whose
    indices are in ``unranked`` (constant inputs) are checked like tied ones."""
    report = Report()
    if len(reference) != len(candidate):
        report.failures.append(f"{len(candidate)} outputs for {len(reference)} images")
        return report
    for k, (ref, cand) in enumerate(zip(reference, candidate)):
        ref, cand = _numpy(ref), _numpy(cand)
        if set(ref) - set(cand):
            report.failures.append(f"image {k}: outputs {', '.join(sorted(set(ref) - set(cand)))} are missing")
            continue
        _, p = match(ref, cand, tol)
        if "panoptic_seg" in ref:
            p.panoptic_agree = panoptic_agreement(ref, cand)
            rs, cs = np.asarray(ref["sem_seg"], np.float64), np.asarray(cand["sem_seg"], np.float64)
            p.max_sem_seg_diff = float(np.abs(rs - cs).max()) if rs.shape == cs.shape and rs.size else 0.0
        p.constant = k in unranked
        p.tied = p.constant or is_tied(ref["scores"])
        report.images.append(p)
        shape_ok = all(cand[key].shape[1:] == ref[key].shape[1:] and cand[key].dtype == ref[key].dtype for key in ref)
        if not shape_ok:
            report.failures.append(f"image {k}: output shapes/dtypes differ from the reference's")
        if p.tied:
            continue  # e.g. a constant image on seeded weights: every score equal, any survivor of NMS is as good
        checks = [
            (_fraction(p) >= tol.min_matched, f"matched {_fraction(p):.3f} < {tol.min_matched}"),
            (p.borderline <= max(1.0, tol.max_borderline * p.n_reference),
             f"{p.borderline} borderline misses > {tol.max_borderline:.0%} of {p.n_reference}"),
            (p.max_box_diff <= tol.box_atol, f"box diff {p.max_box_diff:.4g}px > {tol.box_atol}"),
            (p.max_score_diff <= tol.score_atol, f"score diff {p.max_score_diff:.4g} > {tol.score_atol}"),
            (p.max_mask_diff <= tol.mask_atol, f"mask diff inside the box {p.max_mask_diff:.4g} > {tol.mask_atol}"),
            (p.min_mask_iou >= tol.mask_iou, f"mask IoU at 0.5 inside the box {p.min_mask_iou:.4g} < {tol.mask_iou}"),
            (p.max_keypoint_diff <= tol.keypoint_atol,
             f"keypoint distance {p.max_keypoint_diff:.4g}px > {tol.keypoint_atol}"),
        ]
        if p.panoptic_agree is not None and p.max_sem_seg_diff is not None:
            checks += [(p.panoptic_agree >= tol.panoptic_agree,
                        f"panoptic pixels agree {p.panoptic_agree:.6f} < {tol.panoptic_agree}"),
                       (p.max_sem_seg_diff <= tol.sem_seg_atol,
                        f"sem_seg diff {p.max_sem_seg_diff:.4g} > {tol.sem_seg_atol}")]
        report.failures += [f"image {k}: {msg}" for good, msg in checks if not good]
    return report


def is_tied(scores) -> bool:
    """Scores too tied for matching to mean anything: fewer than 90% distinct among 10 or more."""
    scores = np.asarray(scores).reshape(-1)
    return scores.size >= 10 and np.unique(scores).size < 0.9 * scores.size


def _numpy(d: dict) -> dict:
    return {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in d.items()}


PANOPTIC_TOLERANCE = ("panoptic_agree", "sem_seg_atol")


def tolerance_dict(tol: Tolerance, panoptic: bool = False) -> dict:
    """The tolerance as recorded; a panoptic model's keys only for a panoptic model (what other models' records
    hold stays as it was)."""
    return {k: v for k, v in asdict(tol).items() if panoptic or k not in PANOPTIC_TOLERANCE}
