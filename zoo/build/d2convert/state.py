"""A detectron2 state dict as the zoo model's. The names stay detectron2's but for the heads torchvision's classes
hold (the RPN head, the mask predictor, RetinaNet's head); the class rows move to torchvision's order: the box
predictor's background from last to first, and a background (never used or never scored) gets rows of its own in the
class-specific box regression, the mask predictor and RetinaNet's classifier. Every tensor is checked against the model
the config makes: missing, unexpected and differently shaped ones are refused by their detectron2 names."""
from __future__ import annotations

import re

import numpy as np

from ...errors import ConversionError

# (detectron2 name pattern, zoo name); a group (\d+) of a subnet's Sequential index becomes the conv's number
RULES = [(r"proposal_generator\.rpn_head\.conv\.", "rpn.head.conv.0.0."),
         (r"proposal_generator\.rpn_head\.objectness_logits\.", "rpn.head.cls_logits."),
         (r"proposal_generator\.rpn_head\.anchor_deltas\.", "rpn.head.bbox_pred."),
         (r"roi_heads\.mask_head\.predictor\.", "roi_heads.mask_predictor."),
         (r"head\.cls_subnet\.(\d+)\.", "head.classification_head.conv.{}.0."),
         (r"head\.bbox_subnet\.(\d+)\.", "head.regression_head.conv.{}.0."),
         (r"head\.cls_score\.", "head.classification_head.cls_logits."),
         (r"head\.bbox_pred\.", "head.regression_head.bbox_reg.")]
# PointRend's checkpoints of its first weight format, renamed as its loader renames them (PointRendROIHeads and
# ConvFCHead._load_from_state_dict)
LEGACY = [(r"roi_heads\.mask_point_head\.", "roi_heads.mask_head.point_head."),
          (r"roi_heads\.mask_coarse_head\.", "roi_heads.mask_head.coarse_head."),
          (r"(roi_heads\.mask_head\.coarse_head\.)coarse_mask_fc", r"\1fc")]
# in detectron2's checkpoints but not parameters of its model: its loader ignores them too
IGNORED = ("pixel_mean", "pixel_std")
IGNORED_PARTS = ("cell_anchors", "num_batches_tracked")
# (a cascade's stage K: roi_heads.box_predictor.K.cls_score.)
CLS_SCORE, BBOX_PRED = r"roi_heads\.box_predictor\.(\d+\.)?cls_score\.", r"roi_heads\.box_predictor\.(\d+\.)?bbox_pred\."
MASK_PRED, RETINA_CLS = r"roi_heads\.mask_head\.predictor\.", r"head\.cls_score\."
NEVER = -1e4  # the bias of RetinaNet's background channel: sigmoid(-1e4) is 0 in float32


def _current(name: str) -> str:
    """A name of an older detectron2 weight format as detectron2 renames it on loading."""
    for pattern, new in LEGACY:
        name = re.sub("^" + pattern, new, name)
    return name


def zoo_name(name: str) -> str:
    for pattern, new in RULES:
        m = re.match(pattern, name)
        if m:
            return new.format(*(int(g) // 2 for g in m.groups())) + name[m.end():]
    return name


def d2_name(name: str) -> str:
    for pattern, new in RULES:
        m = re.match(re.escape(new).replace(r"\{\}", r"(\d+)"), name)
        if m:
            old = re.sub(r"\(\\d\+\)", lambda _: str(2 * int(m.group(1))), pattern).replace("\\", "")
            return old + name[m.end():]
    return name


def _reordered(name: str, v: np.ndarray, num_classes: int, agnostic_boxes: bool) -> np.ndarray:
    """The class rows in torchvision's order (``num_classes``: detectron2's, no background)."""
    if re.match(CLS_SCORE, name):  # (K + 1, ...): background last -> first
        return np.concatenate([v[-1:], v[:-1]])
    if re.match(BBOX_PRED, name) and not agnostic_boxes:  # (4K, ...): the background's 4 rows (zero) first
        return np.concatenate([np.zeros((4,) + v.shape[1:], v.dtype), v])
    if re.match(MASK_PRED, name):  # (K, ...): the background's channel (zero) first
        return np.concatenate([np.zeros((1,) + v.shape[1:], v.dtype), v])
    if re.match(RETINA_CLS, name):  # (A * K, ...): per anchor, a background channel first that never scores
        per_anchor = v.reshape((-1, num_classes) + v.shape[1:])
        fill = np.full if name.endswith("bias") else lambda shape, _, dtype: np.zeros(shape, dtype)
        background = fill((per_anchor.shape[0], 1) + v.shape[1:], NEVER, v.dtype)
        return np.concatenate([background, per_anchor], axis=1).reshape((-1,) + v.shape[1:])
    return v


def _d2_shape(name: str, shape: tuple, num_classes: int, agnostic_boxes: bool) -> tuple:
    """A zoo shape in detectron2's terms (without torchvision's background rows)."""
    rows = {BBOX_PRED: shape[0] - (0 if agnostic_boxes else 4), MASK_PRED: shape[0] - 1,
            RETINA_CLS: shape[0] // (num_classes + 1) * num_classes}
    return next(((n,) + tuple(shape[1:]) for prefix, n in rows.items() if re.match(prefix, name)), tuple(shape))


def _listed(keys: list[str]) -> str:
    return f"{len(keys)}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"


def _check_classes(state: dict, expected: dict, origin: str, num_classes: int, classes_key: str) -> None:
    """A classifier of another class count, named with the config key (before the shapes are listed)."""
    classifiers = [(n, 1) for n in state if re.fullmatch(CLS_SCORE + "weight", n)] + \
        [(n, None) for n in state if re.fullmatch(RETINA_CLS + "weight", n)]
    for name, per_class in classifiers:
        if zoo_name(name) not in expected:
            continue
        rows = state[name].shape[0]
        anchors = expected[zoo_name(name)][0] // (num_classes + 1) if per_class is None else 1
        have = rows - 1 if per_class else rows / anchors
        if have != num_classes:
            raise ConversionError(
                f"{origin}: {name} has {rows} rows, a model of {have:g} classes"
                + ("" if per_class else f" at {anchors} anchors per location")
                + f", but the config's {classes_key} = {num_classes}: pass the config the checkpoint was trained "
                f"with, or set {classes_key.rpartition('.')[2]} to match")


def convert(state: dict[str, np.ndarray], expected: dict[str, tuple], origin: str, num_classes: int,
            classes_key: str = "MODEL.ROI_HEADS.NUM_CLASSES", agnostic_boxes: bool = False) -> dict:
    """``expected``: the zoo model's state dict shapes; ``num_classes``: detectron2's (no background), read from
    ``classes_key``; ``agnostic_boxes``: the box predictors regress one box for every class. Returns name -> float32
    numpy array."""
    state = {_current(k): v for k, v in state.items() if k not in IGNORED and not any(p in k for p in IGNORED_PARTS)}
    _check_classes(state, expected, origin, num_classes, classes_key)
    out = {zoo_name(k): _reordered(k, v, num_classes, agnostic_boxes) for k, v in state.items()}
    missing = [d2_name(k) for k in expected if k not in out]
    unexpected = [k for k in state if zoo_name(k) not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} "
              f"(config: {_d2_shape(k, expected[zoo_name(k)], num_classes, agnostic_boxes)})"
              for k in state if zoo_name(k) in expected and tuple(out[zoo_name(k)].shape) != tuple(expected[zoo_name(k)])]
    if missing or unexpected or shapes:
        parts = [f"{label} {_listed(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
        raise ConversionError(f"{origin} does not fit the model its config describes: {'; '.join(parts)}. Pass the "
                              "config the checkpoint was trained with (MODEL.RESNETS.*, MODEL.FPN.*, "
                              "MODEL.ROI_BOX_HEAD.*, MODEL.ROI_HEADS.NUM_CLASSES, MODEL.MASK_ON, "
                              "MODEL.ROI_MASK_HEAD.*, MODEL.RETINANET.*)")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
