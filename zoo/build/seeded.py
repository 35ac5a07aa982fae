"""Seeded random weights that behave like a trained detector's (docs/seeded-weights.md).

Plain ``weights=None`` models score every detection 1/91, so every top-k and NMS choice is a tie and a parity check
means nothing; recipe 1 (spread only) saturated instead: the cap of detections, all scored 1.0, sliver boxes. Recipe 2,
set per model in the manifest's ``[random_weights]`` and recorded in each artifact's metadata:

1. heads: the layers under ``spread`` are re-drawn from N(``weight_mean``, std) (the mean on the non-background
   class outputs of classification layers, or all), with biases from ``bias``, ``class_bias`` (times one seeded N(0, 1)
   offset per class) and ``background_bias`` (class 0). Head inputs come after a ReLU, so a negative weight mean
   lowers a candidate's class logits in proportion to its feature magnitude: only candidates whose random features
   align with a class pass the score threshold, a few to a few dozen per image whatever the image's contrast, with
   spread scores (the role the focal-loss prior plays in training). Box regression layers get a small std, so boxes
   stay near their anchors or proposals (plausible shapes, no slivers);
2. BatchNorm recalibration: running statistics are re-estimated (cumulative average, ``momentum=None``) on seeded
   smooth images passed through the backbone, so activations keep a sane scale through the random network.

Whether the result behaves like a trained detector is checked by the build (``zoo.build.trainedlike``).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..errors import ManifestError
from ..core.manifest import RANDOM_WEIGHT_TABLES

RECIPE_VERSION = 2


def calibration_images(seed: int, count: int = 4, size: tuple[int, int] = (320, 416)) -> list[torch.Tensor]:
    """Seeded, smooth [3,H,W] images in [0,1] (low-frequency noise, which resembles photos more than white noise)."""
    gen = torch.Generator().manual_seed(seed)
    images = []
    for _ in range(count):
        coarse = torch.rand(1, 3, size[0] // 16, size[1] // 16, generator=gen)
        images.append(nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)[0])
    return images


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: list[torch.Tensor]) -> int:
    """Re-estimate BatchNorm running statistics on ``images``; returns how many layers were recalibrated. A
    detectron2 model's frozen batch norms (fixed statistics, no training mode) get their input's per-channel mean
    and variance in the same pass, before they normalise it: what a BatchNorm in training mode computes."""
    from ..models.detectron2.layers import FrozenBatchNorm2d
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    frozen = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    if frozen:
        return _recalibrate_frozen(model, frozen, images)
    if not bns:
        return 0
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    batch = model.transform(images)[0].tensors
    model.backbone(batch)
    for bn in bns:
        bn.momentum = 0.1  # torchvision's default; eval mode does not use it
    model.eval()
    return len(bns)


def _recalibrate_frozen(model: nn.Module, frozen: list, images: list[torch.Tensor]) -> int:
    def measure(layer, inputs):
        x = inputs[0]
        layer.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        layer.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))

    hooks = [m.register_forward_pre_hook(measure) for m in frozen]
    try:
        model.eval()
        model.backbone(model.transform(images)[0].tensors)
    finally:
        for h in hooks:
            h.remove()
    return len(frozen)


@torch.no_grad()
def redraw_heads(model: nn.Module, rw: Mapping, gen: torch.Generator, num_classes: int) -> None:
    """Re-draw the layers named under ``rw["spread"]`` (see the module docstring): weights from N(0, std), plus
    ``rw["weight_mean"]`` (on class 0's rows ``rw["background_weight_mean"]`` where given: softmax heads compare
    each class with the background, whose weights then keep mean 0); biases ``rw["bias"]`` (default 0), plus for
    classification layers (outputs = anchors x ``num_classes``, class-major per anchor) ``rw["class_bias"]`` times one
    seeded N(0, 1) offset per class (shared by all layers: some classes are more frequent than others) and
    ``rw["background_bias"]`` on class 0 (softmax heads: a larger background; sigmoid heads: a large negative one
    keeps the never-trained class 0 out)."""
    modules = dict(model.named_modules())
    offsets = torch.randn(num_classes, generator=gen)
    for name, std in sorted(rw["spread"].items()):
        if name not in modules:
            raise ManifestError(f"random-weights recipe names layer {name!r}, which {type(model).__name__} does not have")
        layer = modules[name]
        weight = torch.randn(layer.weight.shape, generator=gen) * std
        mean = float(rw.get("weight_mean", {}).get(name, 0.0))
        if mean:
            background = classes(name, weight.shape[0], num_classes) == 0
            weight[~background] += mean
            weight[background] += float(rw.get("background_weight_mean", {}).get(name, mean))
        layer.weight.copy_(weight)
        if layer.bias is None:
            continue
        bias = torch.full_like(layer.bias, float(rw.get("bias", {}).get(name, 0.0)))
        per_class = offsets * float(rw.get("class_bias", {}).get(name, 0.0))
        per_class[0] += float(rw.get("background_bias", {}).get(name, 0.0))
        if per_class.any():
            bias += per_class[classes(name, bias.numel(), num_classes)]
        layer.bias.copy_(bias)


def classes(layer: str, outputs: int, num_classes: int) -> torch.Tensor:
    """The class of each output channel of a classification layer (anchors x classes, class-major per anchor)."""
    if outputs % num_classes:
        raise ManifestError(f"random-weights recipe gives layer {layer!r} class settings, but its {outputs} outputs "
                            f"are not a multiple of the {num_classes} classes")
    return torch.arange(outputs) % num_classes


def apply_recipe(model: nn.Module, seed: int, rw: Mapping, num_classes: int) -> dict:
    """Apply the recipe of a manifest's ``[random_weights]`` table in place; returns its description for the metadata."""
    gen = torch.Generator().manual_seed(seed + 1)
    redraw_heads(model, rw, gen, num_classes)
    recalibrated = recalibrate_batchnorm(model, calibration_images(seed)) if rw["bn_recalibration"] else 0
    model.eval()
    return {
        "recipe_version": RECIPE_VERSION,
        "seed": seed,
        "bn_recalibrated_layers": recalibrated,
        "calibration_images": "4 seeded low-frequency noise images, 320x416",
        **{key: dict(sorted(rw[key].items())) for key in RANDOM_WEIGHT_TABLES if rw.get(key)},
    }
