"""Eager torchvision models from manifests, with official, seeded, stored or the user's own weights. Needs torch."""
from __future__ import annotations

import importlib
import inspect
import os
import pickle
import re
from pathlib import Path

import torch

from . import seeded
from .errors import IntegrityError, ZooError, plain
from .manifest import Manifest


TRUSTED_BUILDERS = "torchvision.models.detection."  # what a store's index may name without the user's say-so
CHECKPOINTS = (".pth", ".pt", ".safetensors")


def _trusted(manifest: Manifest) -> bool:
    """A manifest from a store's index names code to run: torchvision's builders, or modules the user lists in
    $ZOO_TRUSTED_BUILDERS (comma-separated module prefixes). A manifest file the user gave is trusted."""
    if manifest.source != "index" or manifest.builder.startswith(TRUSTED_BUILDERS):
        return True
    module = manifest.builder.split(":")[0]
    allowed = [p.strip() for p in os.environ.get("ZOO_TRUSTED_BUILDERS", "").split(",") if p.strip()]
    return any(module == p or module.startswith(p + ".") for p in allowed)


def builder(manifest: Manifest):
    """The manifest's builder: 'package.module:function' or the dotted 'module.function'."""
    module, sep, fn = manifest.builder.partition(":")
    if not sep:
        module, _, fn = manifest.builder.rpartition(".")
    if not _trusted(manifest):
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} comes from the store's index, and running code a "
                       f"store names needs your consent: add its module to $ZOO_TRUSTED_BUILDERS (comma-separated), "
                       f"or use an exported artifact (onnx, tracing, scripting), which needs no builder")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as e:
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} cannot be imported ({e}): the eager method and "
                       f"building need the model's code importable (install it or put it on PYTHONPATH); exported "
                       f"artifacts load without it") from None


def returned_outputs(model: torch.nn.Module) -> list[str]:
    """The keys a torchvision detection model returns per image: boxes, labels, scores, and masks (a Mask R-CNN: its
    RoI heads have a mask head) or keypoints and keypoints_scores (a Keypoint R-CNN)."""
    heads = getattr(model, "roi_heads", None)
    return (["boxes", "labels", "scores"] + (["masks"] if heads is not None and heads.has_mask() else [])
            + (["keypoints", "keypoints_scores"] if heads is not None and heads.has_keypoint() else []))


def check_outputs(manifest: Manifest, model: torch.nn.Module) -> None:
    """Refuse a manifest whose ``outputs`` leave out what the model returns (a build would drop them silently)."""
    missing = [k for k in returned_outputs(model) if k not in manifest.outputs]
    if missing:
        raise ZooError(f"{manifest.path}: outputs = {list(manifest.outputs)} leaves out {', '.join(missing)}, which "
                       f"the model ({type(model).__name__}) returns: add {', '.join(missing)} to outputs (every "
                       "artifact would drop them)")


def architecture(manifest: Manifest, **extra) -> torch.nn.Module:
    """The model the builder makes with the manifest's ``builder_args`` (and ``extra`` keyword arguments, e.g.
    box_score_thresh) and no weights loaded (eval mode).
    torchvision's builders also get ``weights=None, weights_backbone=None`` (no download)."""
    model = make(manifest, **extra)
    classes = num_classes(model)
    if classes is not None and classes != len(manifest.categories):
        raise ZooError(f"{manifest.path}: the builder makes a model of {classes} classes but weights.categories names "
                       f"{len(manifest.categories)}: one name per class, the background included")
    return model.eval()


def make(manifest: Manifest, **extra) -> torch.nn.Module:
    """What the builder returns for the manifest's ``builder_args`` (see architecture), not yet checked against the
    manifest's categories."""
    fn = builder(manifest)
    kwargs = {**manifest.builder_args, **extra}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    for key in ("weights", "weights_backbone"):
        if key in params:
            kwargs.setdefault(key, None)
    try:
        model = fn(**kwargs)
    except (TypeError, ValueError) as e:
        raise ZooError(f"{manifest.path}: builder {manifest.builder}(**{kwargs}) failed: {e}; "
                       f"check builder_args") from None
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "transform"):
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} returned {type(model).__name__}, expected a "
                       f"torchvision detection model (an nn.Module with a .transform, like FasterRCNN)")
    return model


def num_classes(model: torch.nn.Module) -> int | None:
    """The classes (background included) of an R-CNN's box predictor or a RetinaNet/FCOS head; None for others."""
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    if predictor is not None and hasattr(predictor, "cls_score"):
        return predictor.cls_score.out_features
    return getattr(getattr(getattr(model, "head", None), "classification_head", None), "num_classes", None)


def parse_weights(spec: str) -> tuple[str, int | None]:
    """'official', 'random:SEED' or a checkpoint file (kind 'file'; the spec is its path)."""
    if spec == "official":
        return "official", None
    kind, _, seed = spec.partition(":")
    if kind == "random" and seed.isdigit():
        return "random", int(seed)
    if spec.endswith(CHECKPOINTS):
        return "file", None
    raise ZooError(f"--weights must be 'official' or 'random:SEED' (SEED an integer), or a checkpoint file "
                   f"({', '.join(CHECKPOINTS)}), got {spec!r}")


def _fit(model: torch.nn.Module, state: dict, what: str, name: str) -> torch.nn.Module:
    """Load ``state`` strictly: a missing, unexpected or differently shaped tensor is an error that names the keys
    (``num_batches_tracked`` may be missing: FrozenBatchNorm checkpoints lack it and eval mode never reads it)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (model: {tuple(own[k].shape)})" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{label} {len(keys)}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
        raise IntegrityError(f"{what} does not fit {name}'s architecture: {'; '.join(parts)}. Check the manifest's "
                             f"builder and builder_args (num_classes counts the background) against the checkpoint")
    model.load_state_dict(state, strict=False)
    return model.eval()


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or ``.pth``/``.pt``. A ``.pth`` is unpickled with ``weights_only=True``:
    tensors and plain containers only, so a pickled object is refused before any of its code runs."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", plain(str(e)))
        what = f"pickled code (it calls {found.group(1)})" if found else "pickled code"
        raise ZooError(f"{path} is not a plain state dict: it holds {what}, which zoo does not unpickle (loading it "
                       "would run code the file names). Save the weights alone and pass that file: "
                       "torch.save(model.state_dict(), 'weights.pth'), or safetensors.torch.save_file("
                       "model.state_dict(), 'weights.safetensors')") from None
    except Exception as e:  # a truncated or foreign file: torch and safetensors raise many kinds
        raise ZooError(f"{path} cannot be read as a {path.suffix} checkpoint: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        inner = [k for k in ("model", "state_dict") if isinstance(state, dict) and isinstance(state.get(k), dict)]
        hint = f" (it holds {inner[0]!r}: save checkpoint[{inner[0]!r}] alone)" if inner else ""
        raise ZooError(f"{path} holds a {type(state).__name__}, not a state dict of name -> tensor{hint}")
    return state


def file_model(manifest: Manifest, path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The manifest's architecture with the user's checkpoint (``--weights FILE``)."""
    from .store import sha256_file
    model = _fit(architecture(manifest), read_checkpoint(path), str(path), manifest.name)
    return model, {"kind": "file", "file_name": Path(path).name, "source_sha256": sha256_file(path)}


def random_model(manifest: Manifest, seed: int) -> tuple[torch.nn.Module, dict]:
    if not manifest.random_weights:
        raise ZooError(f"{manifest.path} has no [random_weights] table: build it from a checkpoint (--weights FILE)")
    torch.manual_seed(seed)
    model = architecture(manifest)
    recipe = seeded.apply_recipe(model, seed, manifest.random_weights, len(manifest.categories))
    return model, {"kind": "random", "seed": seed, "recipe": recipe,
                   "note": "seeded random weights for offline builds: detections are meaningless"}


def torch_hub_checkpoint(url: str, sha_prefix: str) -> tuple[Path | None, str | None]:
    """The checkpoint torchvision itself would have downloaded: ``torch.hub.get_dir()/checkpoints/<url basename>``,
    checked as torchvision checks it (the hash prefix in the file name, ``-<hex>.``, starts its sha256) and against
    the manifest's prefix. Returns (path, full sha256), or (None, None) when it is absent or does not pass."""
    import re
    import warnings

    from .store import sha256_file
    name = url.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not path.is_file():
        return None, None
    digest = sha256_file(path)
    in_name = re.search(r"-([a-f0-9]*)\.", name)
    if (in_name and not digest.startswith(in_name.group(1))) or not digest.startswith(sha_prefix):
        warnings.warn(f"{path} (torchvision's download cache) has sha256 {digest}, not the expected {sha_prefix}...: "
                      "not used, downloading instead", stacklevel=3)
        return None, None
    return path, digest


def official_model(manifest: Manifest, cache_dir: str | Path | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The manifest's official checkpoint: from torchvision's own download cache when it is there and passes
    torchvision's check, else downloaded with a hash check; loaded with ``weights_only=True``. The full sha256 of the
    file used is recorded (``checkpoint_sha256``)."""
    from .download import download
    from .store import PART, sha256_file

    if "url" not in manifest.weights:
        raise ZooError(f"{manifest.path} names no official weights (weights.url): build it from a checkpoint "
                       f"(--weights FILE)")
    url, sha = manifest.weights["url"], manifest.weights["sha256"]
    filename = url.rsplit("/", 1)[-1]
    if not PART.fullmatch(filename):  # it names a file in the cache: a plain name only
        raise ZooError(f"{manifest.path}: weights url {url!r} must end in a plain file name (letters, digits, '_', "
                       "'.', '+', '-'), as torchvision's checkpoint URLs do")
    path, digest = torch_hub_checkpoint(url, sha)
    if path is None:
        cache = Path(cache_dir or os.environ.get("ZOO_HOME", Path.home() / ".cache" / "zoo")) / "official"
        path = cache / filename
        if path.exists() and not sha256_file(path).startswith(sha):
            path.unlink()
        if not path.exists():
            download(url, path, sha, progress=progress)
        digest = sha256_file(path)
    model = _fit(architecture(manifest), torch.load(path, map_location="cpu", weights_only=True), url, manifest.name)
    return model, {"kind": "official", "url": url, "sha256_expected": sha, "checkpoint_sha256": digest,
                   "enum": manifest.weights.get("enum")}


def state_dict_for_store(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in sorted(model.state_dict().items())}


def stored_model(manifest: Manifest, weights_file: str | Path | bytes, device: str = "cpu", **kwargs) -> torch.nn.Module:
    """The eager reference: torchvision's architecture with the exact stored weights (safetensors, no pickle), from a
    file name or from the file's bytes; ``kwargs`` go to the builder (e.g. box_score_thresh)."""
    from safetensors.torch import load, load_file

    is_bytes = isinstance(weights_file, bytes)
    state = load(weights_file) if is_bytes else load_file(str(weights_file))
    what = "the stored weights" if is_bytes else str(weights_file)
    return _fit(architecture(manifest, **kwargs), state, what, manifest.name).to(device)


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
