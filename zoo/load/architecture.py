"""Eager torchvision models from manifests: the builder a manifest names, run with its arguments, and the stored
weights fitted strictly. The loader's eager method and the export child use it. Needs torch."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import torch

from ..core import settings
from ..errors import IntegrityError, ZooError
from ..core.manifest import Manifest


# what a store's index may name without the user's say-so: torchvision's builders, the package's own demo detector and
# its detectron2 models (zoo.models.detectron2.BUILDERS exactly)
TRUSTED_BUILDERS = ("torchvision.models.detection.", "zoo.build.demo.detector:", "zoo.models.detectron2.")
DOWNLOADING_ARGS = ("weights", "weights_backbone")  # torchvision downloads (and unpickles) what these name


def _consented(builder_path: str) -> bool:
    """A module the user lists in $ZOO_TRUSTED_BUILDERS (comma-separated module names; a name covers its
    submodules)."""
    module = builder_path.partition(":")[0] if ":" in builder_path else builder_path.rpartition(".")[0]
    allowed = settings.trusted_builders()
    return any(module == p or module.startswith(p + ".") for p in allowed)


def _registered(builder_path: str):
    """torchvision's registered detection builder that ``builder_path`` names exactly, or None."""
    import torchvision.models as tvm
    import torchvision.models.detection as det
    prefix = "torchvision.models.detection."
    name = builder_path[len(prefix):] if builder_path.startswith(prefix) else None
    if name is None or name not in tvm.list_models(module=det):
        return None
    return tvm.get_model_builder(name)


def _package_builder(builder_path: str) -> bool:
    """One of the package's own detectron2 builders, named exactly (their arguments are numbers and strings)."""
    from ..models.detectron2 import BUILDERS
    return builder_path in BUILDERS


def _index_builder(manifest: Manifest):
    """The builder (and arguments) a manifest from a store's index may run. A shipped model's must be exactly the
    shipped manifest's; a model of your own may name only torchvision's registered detection builders, the package's
    detectron2 builders (or a module you consented to in $ZOO_TRUSTED_BUILDERS), and never weights to download."""
    from ..core.manifest import all_manifests
    from ..errors import ConsentError
    shipped = all_manifests().get(manifest.name)
    if shipped is not None:
        if (manifest.builder, manifest.builder_args) != (shipped.builder, shipped.builder_args):
            raise IntegrityError(
                f"{manifest.path}: {manifest.name} is a shipped model, but the index names builder "
                f"{manifest.builder}(**{manifest.builder_args}) where zoo ships {shipped.builder}"
                f"(**{shipped.builder_args}): refused (an index cannot choose a shipped model's code or arguments; "
                "rebuild the store with this zoo, or load an exported artifact)")
        return _import(manifest), dict(shipped.builder_args)
    fn = _registered(manifest.builder)
    if fn is None and not _package_builder(manifest.builder) and not _consented(manifest.builder):
        raise ConsentError(
            f"{manifest.path}: builder {manifest.builder!r} comes from the store's index and is not one of "
            "torchvision's registered detection builders; running code a store names needs your consent: add its "
            "module to $ZOO_TRUSTED_BUILDERS (comma-separated), or use the onnx artifact, which needs no builder")
    return fn or _import(manifest), {k: v for k, v in manifest.builder_args.items() if k not in DOWNLOADING_ARGS}


def _import(manifest: Manifest):
    module, sep, fn = manifest.builder.partition(":")
    if not sep:
        module, _, fn = manifest.builder.rpartition(".")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as e:
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} cannot be imported ({e}): the eager method and "
                       f"building need the model's code importable (install it or put it on PYTHONPATH); exported "
                       f"artifacts load without it") from None


def builder(manifest: Manifest):
    """The manifest's builder: 'package.module:function' or the dotted 'module.function' (from a store's index: see
    _index_builder)."""
    return _index_builder(manifest)[0] if manifest.source == "index" else _import(manifest)


def returned_outputs(model: torch.nn.Module) -> list[str]:
    """The keys a torchvision detection model returns per image: boxes, labels, scores, and masks (a Mask R-CNN: its
    RoI heads have a mask head) or keypoints and keypoints_scores (a Keypoint R-CNN); a panoptic model's (it has a
    semantic head) sem_seg, panoptic_seg and segments_info."""
    heads = getattr(model, "roi_heads", None)
    return (["boxes", "labels", "scores"] + (["masks"] if heads is not None and heads.has_mask() else [])
            + (["keypoints", "keypoints_scores"] if heads is not None and heads.has_keypoint() else [])
            + (["sem_seg", "panoptic_seg", "segments_info"] if hasattr(model, "sem_seg_head") else []))


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
    torchvision's builders also get ``weights=None, weights_backbone=None`` (no download); from a store's index they
    get them always, whatever the index says (nothing on a load path downloads or unpickles)."""
    model = make(manifest, **extra)
    classes = num_classes(model)
    if classes is not None and classes != len(manifest.categories):
        raise ZooError(f"{manifest.path}: the builder makes a model of {classes} classes but weights.categories names "
                       f"{len(manifest.categories)}: one name per class, the background included")
    return model.eval()


def make(manifest: Manifest, **extra) -> torch.nn.Module:
    """What the builder returns for the manifest's ``builder_args`` (see architecture), not yet checked against the
    manifest's categories."""
    if manifest.source == "index":
        fn, args = _index_builder(manifest)
    else:
        fn, args = _import(manifest), manifest.builder_args
    kwargs = {**args, **extra}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    for key in DOWNLOADING_ARGS:
        if key in params:
            if manifest.source == "index":
                kwargs[key] = None
            else:
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


def fit_state(model: torch.nn.Module, state: dict, what: str, name: str) -> torch.nn.Module:
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


def stored_model(manifest: Manifest, weights_file: str | Path | bytes, device: str = "cpu", **kwargs) -> torch.nn.Module:
    """The eager reference: torchvision's architecture with the exact stored weights (safetensors, no pickle), from a
    file name or from the file's bytes; ``kwargs`` go to the builder (e.g. box_score_thresh)."""
    from safetensors.torch import load, load_file

    is_bytes = isinstance(weights_file, bytes)
    state = load(weights_file) if is_bytes else load_file(str(weights_file))
    what = "the stored weights" if is_bytes else str(weights_file)
    return fit_state(architecture(manifest, **kwargs), state, what, manifest.name).to(device)
