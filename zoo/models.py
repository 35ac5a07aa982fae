"""Eager torchvision models from manifests, with official, seeded or stored weights. Needs torch."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from . import seeded
from .errors import IntegrityError, ZooError
from .manifest import Manifest


def builder(manifest: Manifest):
    module, _, fn = manifest.builder.rpartition(".")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as e:
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} cannot be imported: {e}") from None


def architecture(manifest: Manifest, **kwargs) -> torch.nn.Module:
    """The model with torchvision's architecture and no weights loaded (eval mode); ``kwargs`` go to the builder."""
    return builder(manifest)(weights=None, weights_backbone=None, **kwargs).eval()


def parse_weights(spec: str) -> tuple[str, int | None]:
    """'official' or 'random:SEED'."""
    if spec == "official":
        return "official", None
    kind, _, seed = spec.partition(":")
    if kind == "random" and seed.isdigit():
        return "random", int(seed)
    raise ZooError(f"--weights must be 'official' or 'random:SEED' (SEED an integer), got {spec!r}")


def random_model(manifest: Manifest, seed: int) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = architecture(manifest)
    rw = manifest.random_weights
    recipe = seeded.make_decisive(model, seed, rw["spread"], rw["bn_recalibration"], rw.get("bias"))
    return model, {"kind": "random", "seed": seed, "recipe": recipe,
                   "note": "seeded random weights for offline builds: detections are meaningless"}


def official_model(manifest: Manifest, cache_dir: str | Path | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Download the manifest's official checkpoint, check its hash, load it with ``weights_only=True``."""
    from .http import download

    url, sha = manifest.weights["url"], manifest.weights["sha256"]
    cache = Path(cache_dir or os.environ.get("ZOO_HOME", Path.home() / ".cache" / "zoo")) / "official"
    path = cache / url.rsplit("/", 1)[-1]
    if path.exists():
        from .store import sha256_file
        if not sha256_file(path).startswith(sha):
            path.unlink()
    if not path.exists():
        download(url, path, sha, progress=progress)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = architecture(manifest)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # torchvision's official checkpoints come from FrozenBatchNorm models: no num_batches_tracked, unused in eval
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise IntegrityError(f"{url} does not fit {manifest.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), {"kind": "official", "url": url, "sha256_expected": sha, "enum": manifest.weights.get("enum")}


def state_dict_for_store(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in sorted(model.state_dict().items())}


def stored_model(manifest: Manifest, weights_file: str | Path, device: str = "cpu", **kwargs) -> torch.nn.Module:
    """The eager reference: torchvision's architecture with the exact stored weights (safetensors, no pickle);
    ``kwargs`` go to the builder (e.g. box_score_thresh)."""
    from safetensors.torch import load_file

    model = architecture(manifest, **kwargs)
    state = load_file(str(weights_file))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise IntegrityError(f"{weights_file} does not fit {manifest.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval().to(device)


def baked_settings(model: torch.nn.Module) -> dict:
    """The torchvision keyword arguments an export freezes into the artifact, with the eager model's values, and which
    of them are the score threshold and the detection count (the two a loaded model can still raise / lower).

    R-CNNs name them ``box_score_thresh`` / ``box_detections_per_img``; RetinaNet, FCOS and SSD ``score_thresh`` /
    ``detections_per_img``. All compare ``scores > threshold`` and keep the first k after NMS, highest score first."""
    t = model.transform
    values: dict = {"image_mean": [float(v) for v in t.image_mean], "image_std": [float(v) for v in t.image_std]}
    if t.fixed_size is not None:
        values["fixed_size"] = [int(v) for v in t.fixed_size]
    else:
        values.update(min_size=int(t.min_size[-1]), max_size=int(t.max_size))
    if hasattr(model, "roi_heads"):
        rpn, heads = model.rpn, model.roi_heads
        values.update(box_score_thresh=float(heads.score_thresh), box_detections_per_img=int(heads.detections_per_img),
                      box_nms_thresh=float(heads.nms_thresh), rpn_pre_nms_top_n_test=int(rpn._pre_nms_top_n["testing"]),
                      rpn_post_nms_top_n_test=int(rpn._post_nms_top_n["testing"]), rpn_nms_thresh=float(rpn.nms_thresh),
                      rpn_score_thresh=float(rpn.score_thresh))
        return {"score_thresh": "box_score_thresh", "detections_per_img": "box_detections_per_img", "baked": values}
    values.update(score_thresh=float(model.score_thresh), detections_per_img=int(model.detections_per_img),
                  nms_thresh=float(model.nms_thresh), topk_candidates=int(model.topk_candidates))
    return {"score_thresh": "score_thresh", "detections_per_img": "detections_per_img", "baked": values}
