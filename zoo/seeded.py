"""Seeded random weights that make decisive detectors (why they must be: below).

Plain ``weights=None`` models score every detection 1/91, so every top-k and NMS choice is a tie and a parity check
means nothing. The recipe (recorded in each artifact's metadata) has two steps:

1. BatchNorm recalibration: running statistics are re-estimated (cumulative average, ``momentum=None``) on seeded
   smooth images passed through the backbone, so activations keep a sane scale through the random network;
2. spread: the final classification layers named by the manifest are re-drawn from N(0, std) with zero bias, so
   scores spread out instead of tying.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

RECIPE_VERSION = 1


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
    """Re-estimate BatchNorm running statistics on ``images``; returns how many layers were recalibrated."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
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


@torch.no_grad()
def spread_classifiers(model: nn.Module, spread: Mapping[str, float], gen: torch.Generator,
                       bias: Mapping[str, float] | None = None) -> None:
    """Re-draw the named layers' weights from N(0, std); set their biases to ``bias`` (default 0).

    A negative bias puts the top candidates' logits on the steep part of the sigmoid: with thousands of candidates
    (RetinaNet, FCOS) the kept top-k otherwise all saturate near one score and tie at the cut-off."""
    bias = bias or {}
    modules = dict(model.named_modules())
    for name, std in sorted(spread.items()):
        if name not in modules:
            raise KeyError(f"random-weights recipe names layer {name!r}, which {type(model).__name__} does not have")
        layer = modules[name]
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * std)
        if layer.bias is not None:
            layer.bias.fill_(float(bias.get(name, 0.0)))


def make_decisive(model: nn.Module, seed: int, spread: Mapping[str, float], bn_recalibration: bool = True,
                  bias: Mapping[str, float] | None = None) -> dict:
    """Apply the recipe in place; returns its description for the metadata."""
    gen = torch.Generator().manual_seed(seed + 1)
    spread_classifiers(model, spread, gen, bias)
    recalibrated = recalibrate_batchnorm(model, calibration_images(seed)) if bn_recalibration else 0
    model.eval()
    return {
        "recipe_version": RECIPE_VERSION,
        "seed": seed,
        "bn_recalibrated_layers": recalibrated,
        "calibration_images": "4 seeded low-frequency noise images, 320x416",
        "spread": dict(sorted(spread.items())),
        **({"bias": dict(sorted(bias.items()))} if bias else {}),
    }
