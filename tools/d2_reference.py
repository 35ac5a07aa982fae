"""Record detectron2's own outputs for the convert-d2 tests (tests/test_convert_d2.py), with detectron2 installed.

    /work/d2env/bin/python tools/d2_reference.py [--config tests/fixtures/d2/small_faster_rcnn_R_50_FPN.yaml]
        [--out tests/fixtures/d2] [--seed 0] [--target 25]
    /work/d2env/bin/python tools/d2_reference.py --config tests/fixtures/d2/small_mask_rcnn_R_50_FPN.yaml
    /work/d2env/bin/python tools/d2_reference.py --config tests/fixtures/d2/small_cascade_mask_rcnn_R_50_FPN.yaml
    /work/d2env/bin/python tools/d2_reference.py --config tests/fixtures/d2/small_panoptic_fpn_R_50.yaml
    /work/d2env/bin/python tools/d2_reference.py --config tests/fixtures/d2/small_pointrend_rcnn_R_50_FPN.yaml \
        --pointrend DETECTRON2_SOURCE/projects/PointRend

Run it with a Python where detectron2 is installed (a side environment: detectron2 is no dependency of the zoo, of its
tests or of CI; docs/detectron2.md says how it was built here). It

1. builds detectron2's model from the config (the small fixture config by default: detectron2's
   faster_rcnn_R_50_FPN_3x.yaml, followed through its ``_BASE_`` chain, with narrow widths and a 320 px test size),
   seeded (``--seed``);
2. calibrates the random weights so they detect like a trained model does (plain random init gives 0-3 detections):
   every frozen batch norm's statistics from its input on the calibration photo (the astronaut), the RPN's logits and
   deltas and the box predictor's logits and deltas rescaled to a spread, and the background logit's bias chosen so
   the calibration photo gets about ``--target`` detections (and a Mask R-CNN's mask logits spread, centred; a
   RetinaNet's classifier and box logits spread and shifted together so the three photos get about ``--target``; a
   Panoptic FPN's semantic predictor spread, with its biases jittered so a few stuff classes cover most pixels);
3. saves the checkpoint as detectron2's model zoo stores it (``CONFIG_STEM.pkl``: a pickled
   ``{"model": {name: numpy array}, "__author__": ...}``; the weights rounded to float16 values and stored as
   float16 arrays, to keep the committed files small: detectron2's loader copies them into its float32 model),
   re-loads it with detectron2's ``DetectionCheckpointer`` into a fresh model (the outputs recorded come from it);
4. runs detectron2's eager model as ``DefaultPredictor`` does (``ResizeShortestEdge`` with PIL on the uint8 BGR
   image, then the model with the original height and width) on the package's three photos at odd sizes, and writes
   ``photos.npz`` (shared by every config: ``NAME/image``, uint8 RGB, the inputs; ``NAME/d2_input_MIN_MAX``, uint8
   BGR, the resized image detectron2's model saw at ``INPUT.MIN_SIZE_TEST``/``MAX_SIZE_TEST``) and
   ``CONFIG_STEM.npz``: per photo ``NAME/boxes``, ``NAME/scores``, ``NAME/classes`` (detectron2's 0-based class
   ids), ``NAME/masks`` (Mask R-CNN: its boolean masks at the input size, ``np.packbits`` along the rows),
   ``NAME/keypoints`` (Keypoint R-CNN: x, y, score), ``NAME/proposals`` (R-CNNs: the RPN's first 50), a Panoptic
   FPN's ``NAME/sem_seg_argmax``, ``NAME/sem_seg_samples``, ``NAME/panoptic_seg``, ``NAME/segments_info``
   (``panoptic_arrays``); and
   ``CONFIG_STEM.json`` (sizes, counts, the detectron2 and torch versions, the seed and calibration figures).

To re-record after changing the config or the calibration: run the command above and commit the changed files under
tests/fixtures/d2/ (README.md there lists them).
"""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "zoo" / "data"
# (name, height, width): odd sizes; at MIN_SIZE_TEST 320 / MAX_SIZE_TEST 512 the astronaut is scaled down, the cat
# up, and the coffee up to the long-side limit (298x512)
PHOTOS = (("astronaut", 401, 533), ("chelsea", 300, 451), ("coffee", 233, 401))


def photo(name: str, h: int, w: int) -> np.ndarray:
    """uint8 RGB HxWx3."""
    return np.asarray(Image.open(DATA / f"{name}.jpg").convert("RGB").resize((w, h), Image.BILINEAR))


def build(config: Path, seed: int, pointrend: Path | None = None):
    """``pointrend``: detectron2's ``projects/PointRend`` (its source tree's; not installed with detectron2), for a
    PointRend config."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    cfg = get_cfg()
    if pointrend is not None:
        import sys
        sys.path.insert(0, str(pointrend))
        from point_rend import add_pointrend_config  # registers PointRend's heads too
        add_pointrend_config(cfg)
    cfg.merge_from_file(str(config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    torch.manual_seed(seed)
    return cfg, build_model(cfg).eval()


def predict(cfg, model, rgb: np.ndarray) -> tuple[dict, np.ndarray]:
    """DefaultPredictor's path: the resized uint8 BGR image and the model's instances at the input size."""
    from detectron2.data import transforms as T
    bgr = rgb[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else rgb
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    resized = aug.get_transform(bgr).apply_image(bgr)
    image = torch.as_tensor(np.ascontiguousarray(resized.astype("float32").transpose(2, 0, 1)))
    with torch.no_grad():
        result = model([{"image": image, "height": rgb.shape[0], "width": rgb.shape[1]}])[0]
    out = result["instances"]
    found = {"boxes": out.pred_boxes.tensor.numpy(), "scores": out.scores.numpy(), "classes": out.pred_classes.numpy()}
    if "panoptic_seg" in result:
        found.update(panoptic_arrays(result))
    if out.has("pred_masks"):  # bool (N, H, W) at the input size, packed 8 pixels a byte
        found["masks"] = np.packbits(out.pred_masks.numpy(), axis=-1)
    if out.has("pred_keypoints"):  # (N, K, 3): x, y, score at the input size
        found["keypoints"] = out.pred_keypoints.numpy()
    return found, resized


SEM_SEG_SAMPLES = 128  # pixels whose every sem_seg logit is recorded (the whole (C, H, W) map would be megabytes)


def sem_seg_pixels(h: int, w: int) -> np.ndarray:
    """The recorded sem_seg pixels: (SEM_SEG_SAMPLES, 2) row, column, seeded by the size."""
    gen = np.random.default_rng(h * 10007 + w)
    return np.stack([gen.integers(0, h, SEM_SEG_SAMPLES), gen.integers(0, w, SEM_SEG_SAMPLES)], axis=1)


def panoptic_arrays(result: dict) -> dict:
    """A Panoptic FPN's outputs: ``sem_seg_argmax`` (H, W) uint8, ``sem_seg_samples`` (C, SEM_SEG_SAMPLES) float32
    logits at ``sem_seg_pixels`` (SEM_SEG_SAMPLES, 2: row, column), ``panoptic_seg`` (H, W) int32 and
    ``segments_info`` (S, 5) int64 rows of id, category_id (detectron2's: a thing's 0-based class or a stuff's
    sem_seg channel), isthing, instance_id (-1 for stuff), area (pixels of the segment in panoptic_seg)."""
    sem = result["sem_seg"]
    panoptic, info = result["panoptic_seg"]
    pixels = sem_seg_pixels(*sem.shape[1:])
    rows, cols = pixels.T
    table = [[s["id"], s["category_id"], int(s["isthing"]), s.get("instance_id", -1), int((panoptic == s["id"]).sum())]
             for s in info]
    return {"sem_seg_argmax": sem.argmax(0).numpy().astype(np.uint8), "sem_seg_samples": sem[:, rows, cols].numpy(),
            "sem_seg_pixels": pixels,
            "panoptic_seg": panoptic.numpy().astype(np.int32), "segments_info": np.asarray(table, np.int64).reshape(-1, 5)}


def _bisect(count, lo: float, hi: float, target: int, more_when_higher: bool) -> tuple[float, int]:
    """The bias (between lo and hi) at which ``count(bias)`` detections come closest to ``target`` from below."""
    for _ in range(10):
        mid = (lo + hi) / 2
        if (count(mid) > target) == more_when_higher:
            hi = mid
        else:
            lo = mid
    best = lo if more_when_higher else hi
    return best, count(best)


def _spread(layer, inputs: list, std: float, gen, jitter: float = 0.0) -> None:
    """Random weights whose outputs on ``inputs`` have ``std``, centred per output channel (no class wins everywhere),
    plus a random ``jitter`` of the biases."""
    conv = {4: torch.nn.functional.conv2d, 3: torch.nn.functional.conv1d}.get(layer.weight.dim())
    layer.weight.normal_(0, 1, generator=gen)

    def outputs():
        if conv is not None:
            return torch.cat([conv(x, layer.weight, padding=layer.padding).transpose(0, 1).flatten(1)
                              for x in inputs], dim=1).T
        return torch.cat([x.flatten(1) for x in inputs]) @ layer.weight.T

    out = outputs()
    layer.weight.mul_(std / (out - out.mean(0)).std())
    layer.bias.copy_(-outputs().mean(0) + jitter * torch.randn(layer.bias.shape, generator=gen))


def _unit_std(cfg, model, photos: list, layer) -> None:
    """``layer``'s weight and bias scaled so its outputs on the photos have std 1."""
    seen = []
    hook = layer.register_forward_hook(lambda m, i, o: seen.append(o.flatten()))
    for rgb in photos:
        predict(cfg, model, rgb)
    hook.remove()
    std = torch.cat(seen).std()
    layer.weight.div_(std)
    layer.bias.div_(std)


def _inputs(cfg, model, rgb, layer) -> list:
    """What ``layer`` gets on the photo (one tensor per call: per FPN level for a shared head)."""
    seen = []
    hook = layer.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    predict(cfg, model, rgb)
    hook.remove()
    return seen


def predict_batch(cfg, model, photos: list) -> None:
    """The model on the photos as one batch (for statistics only)."""
    from detectron2.data import transforms as T
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    batch = []
    for rgb in photos:
        bgr = rgb[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else rgb
        resized = aug.get_transform(bgr).apply_image(bgr)
        batch.append({"image": torch.as_tensor(np.ascontiguousarray(resized.astype("float32").transpose(2, 0, 1))),
                      "height": rgb.shape[0], "width": rgb.shape[1]})
    model(batch)


@torch.no_grad()
def calibrate(cfg, model, images: dict, seed: int, target: int | None, draws: int = 8) -> dict:
    """Trained-like statistics for random weights (see the module docstring)."""
    rgb = images["astronaut"]
    from detectron2.layers import FrozenBatchNorm2d
    gen = torch.Generator().manual_seed(seed + 1)
    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)]

    def fit(name, module):
        def hook(_, inputs):
            x = inputs[0]
            module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
            module.running_var.copy_(x.var(dim=(0, 2, 3)) + 1e-3)
            scale = 0.3 if name.endswith("conv3.norm") else 1.0  # a block's last norm: keep the residual tame
            module.weight.copy_(scale * (0.8 + 0.4 * torch.rand(module.weight.shape, generator=gen)))
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
        return module.register_forward_pre_hook(hook)

    hooks = [fit(n, m) for n, m in norms]
    # one pass: each norm is fitted to the input the norms before it produce (a RetinaNet's on the three photos)
    predict_batch(cfg, model, list(images.values()) if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else [rgb])
    for h in hooks:
        h.remove()
    figures = {"norms_fitted": len(norms)}
    if cfg.MODEL.META_ARCHITECTURE == "RetinaNet":
        return {**figures, **_calibrate_retinanet(cfg, model, list(images.values()), gen, target or 5, draws)}
    return {**figures, **_calibrate_rcnn(cfg, model, rgb, gen, target or 25)}


def _calibrate_retinanet(cfg, model, photos: list, gen, target: int, draws: int = 8) -> dict:
    """On all the photos at once: a dense detector's top scores are the tail of ~10^6, which one photo's statistics
    do not set for another's. Of ``draws`` random classifiers, the one whose photos' detection counts are the most
    even (the largest smallest count) is kept."""
    head = model.head
    fpn = model.backbone
    levels = [fpn.fpn_output3, fpn.fpn_output4, fpn.fpn_output5, fpn.top_block.p6, fpn.top_block.p7]
    for layer in levels + [m for m in [*head.cls_subnet, *head.bbox_subnet] if isinstance(m, torch.nn.Conv2d)]:
        _unit_std(cfg, model, photos, layer)  # every level, and the shared head, at the same scale
    _spread(head.bbox_pred, [x for rgb in photos for x in _inputs(cfg, model, rgb, head.bbox_pred)], 0.2, gen)
    features = [x for rgb in photos for x in _inputs(cfg, model, rgb, head.cls_score)]

    def counts(shift, base):
        head.cls_score.bias.copy_(base + shift)
        return [len(predict(cfg, model, rgb)[0]["scores"]) for rgb in photos]

    best = None
    for _ in range(draws):
        _spread(head.cls_score, features, 1.5, gen, jitter=0.5)
        base = head.cls_score.bias.clone()
        shift, _ = _bisect(lambda v: min(counts(v, base)), -30.0, 10.0, target, more_when_higher=True)
        found = counts(shift, base)
        if best is None or min(found) > min(best[2]):
            best = (head.cls_score.weight.clone(), head.cls_score.bias.clone(), found, shift)
    head.cls_score.weight.copy_(best[0])
    head.cls_score.bias.copy_(best[1])
    return {"logit_shift": best[3], "detections_on_calibration_photos": best[2], "draws": draws}


def _calibrate_rcnn(cfg, model, rgb, gen, target: int) -> dict:
    head = model.proposal_generator.rpn_head
    seen = {}
    hook = head.register_forward_hook(lambda m, i, o: seen.update(logits=o[0], deltas=o[1]))
    predict(cfg, model, rgb)
    hook.remove()
    for layer, key, std in ((head.objectness_logits, "logits", 2.0), (head.anchor_deltas, "deltas", 0.2)):
        have = torch.cat([t.flatten() for t in seen[key]]).std()
        layer.weight.mul_(std / have)
        layer.bias.mul_(std / have)

    predictors = model.roi_heads.box_predictor  # a cascade's: one a stage, each spread on what the stages before give
    predictors = list(predictors) if isinstance(predictors, torch.nn.ModuleList) else [predictors]
    for predictor in predictors:
        x = _inputs(cfg, model, rgb, predictor)
        _spread(predictor.cls_score, x, 1.5, gen, jitter=0.5)
        _spread(predictor.bbox_pred, x, 0.5, gen)
    mask_head = getattr(model.roi_heads, "mask_head", None)
    # mask logits with a spread (init: std 0.001, every pixel at 0.5); PointRend's coarse head first, then its point
    # head (which also sees the coarse logits)
    mask_layers = [mask_head.coarse_head.prediction, mask_head.point_head.predictor] if hasattr(
        mask_head, "point_head") else [mask_head.predictor] if mask_head is not None else []
    for layer in mask_layers:
        _spread(layer, _inputs(cfg, model, rgb, layer), 3.0, gen)

    sem_seg_head = getattr(model, "sem_seg_head", None)
    if sem_seg_head is not None:  # Panoptic FPN: several stuff classes win somewhere (init: std 0.001)
        _spread(sem_seg_head.predictor, _inputs(cfg, model, rgb, sem_seg_head.predictor), 2.0, gen, jitter=3.0)

    def count(bias):
        for predictor in predictors:  # a cascade averages its stages' probabilities: the same bias in each
            predictor.cls_score.bias[-1] = bias  # detectron2's background logit is the last
        return len(predict(cfg, model, rgb)[0]["scores"])

    bias, found = _bisect(count, -10.0, 40.0, target, more_when_higher=False)
    return {"background_bias": bias, "detections_on_calibration_photo": found}


@torch.no_grad()
def to_half_precision_values(model) -> None:
    """Every float parameter and buffer rounded to a float16 value (kept as float32 in the model): the checkpoint
    then stores float16 arrays, half the bytes, with the very values detectron2 ran."""
    for v in model.state_dict().values():
        if v.is_floating_point():
            v.copy_(v.half().float())


def save_pkl(model, path: Path) -> None:
    state = {k: v.detach().cpu().numpy().astype(np.float16) if v.is_floating_point() else v.detach().cpu().numpy()
             for k, v in model.state_dict().items()}
    with open(path, "wb") as f:
        pickle.dump({"model": state, "__author__": "zoo tools/d2_reference.py (seeded, calibrated)"}, f)


def reloaded(cfg, path: Path):
    """A fresh model with the saved checkpoint, through detectron2's own loader."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model
    torch.manual_seed(12345)
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(str(path))
    return model


def main() -> int:
    import detectron2
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "tests/fixtures/d2/small_faster_rcnn_R_50_FPN.yaml")
    p.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/d2")
    p.add_argument("--pointrend", type=Path, default=None,
                   help="detectron2's projects/PointRend directory (its source tree's), for a PointRend config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=int, default=None,
                   help="detections to calibrate to: on the astronaut for an R-CNN (default 25), on the three photos "
                        "together for a RetinaNet (default 45)")
    p.add_argument("--draws", type=int, default=8, help="RetinaNet: random classifiers tried (the most even kept); "
                   "1 for a full-size model, where each costs minutes")
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg, model = build(a.config, a.seed, a.pointrend)
    images = {name: photo(name, h, w) for name, h, w in PHOTOS}
    calib = calibrate(cfg, model, images, a.seed, a.target, a.draws)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.config.stem
    ckpt = a.out / f"{stem}.pkl"
    to_half_precision_values(model)
    save_pkl(model, ckpt)
    model = reloaded(cfg, ckpt)

    arrays, record = {}, {}
    shared = a.out / "photos.npz"  # the inputs, and each test size's resized inputs, shared by every config
    inputs = dict(np.load(shared)) if shared.is_file() else {}
    inputs.update({f"{name}/image": rgb for name, rgb in images.items()})
    rpn = getattr(model, "proposal_generator", None)
    for name, rgb in images.items():
        out, resized = predict(cfg, model, rgb)
        inputs[f"{name}/d2_input_{cfg.INPUT.MIN_SIZE_TEST}_{cfg.INPUT.MAX_SIZE_TEST}"] = resized
        arrays.update({f"{name}/{k}": v for k, v in out.items()})
        if rpn is not None:
            proposals = []
            hook = rpn.register_forward_hook(lambda m, i, o: proposals.append(o[0][0]))
            predict(cfg, model, rgb)
            hook.remove()
            arrays[f"{name}/proposals"] = proposals[0].proposal_boxes.tensor[:50].numpy()
        record[name] = {"size": list(rgb.shape[:2]), "d2_input_size": list(resized.shape[:2]),
                        "detections": len(out["scores"]), "classes": len(set(out["classes"].tolist())),
                        "score_range": [float(out["scores"].min()), float(out["scores"].max())] if len(out["scores"])
                        else None}
        if "segments_info" in out:
            record[name]["segments"] = {"things": int(out["segments_info"][:, 2].sum()),
                                        "stuff": int((out["segments_info"][:, 2] == 0).sum())}
        print(name, record[name])
    np.savez_compressed(shared, **inputs)
    np.savez_compressed(a.out / f"{stem}.npz", **arrays)
    (a.out / f"{stem}.json").write_text(json.dumps({
        "config": str(a.config.relative_to(ROOT)) if a.config.is_relative_to(ROOT) else str(a.config),
        "checkpoint": ckpt.name, "seed": a.seed, "calibration": calib, "photos": record,
        "detectron2": detectron2.__version__, "torch": torch.__version__}, indent=1) + "\n")
    print(f"wrote {ckpt}, {a.out / 'photos.npz'}, {a.out / stem}.npz, {a.out / stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
