"""PIL's bilinear resize of a uint8 image (what detectron2's ``ResizeTransform`` runs), reproduced exactly in torch:
PIL's per-axis coefficients (``precompute_coeffs``: each output's window of taps, the triangle filter widened by the
scale when shrinking, the taps summed in PIL's order), rounded to its 22-bit fixed point (``normalize_coeffs_8bpc``),
applied as float64 matrix products (exact for 8-bit pixels), each pass rounded and clipped like PIL's ``clip8``; the
horizontal pass first, then the vertical one, each only where that side changes (PIL copies an unchanged side).

Sizes may be tensors (under tracing) or symbolic ints (torch.export: ``symbolic_resize``): the window then has
``TRACED_TAPS`` taps, enough for shrinking a side by up to 16 times; eager and TorchScript (scripting) use exactly
PIL's window."""
from __future__ import annotations

import math

import torch
import torchvision
from torch import Tensor

PRECISION_BITS = 22  # 32 - 8 - 2, for 8-bit images
TRACED_TAPS = 2 * 16 + 1


def pil_weights(in_size: Tensor, out_size: Tensor, taps: int, precision_bits: int = PRECISION_BITS) -> Tensor:
    """(out, in) float64 fixed-point coefficients for one axis; sizes are 1-element float64 tensors. (The constants
    are default arguments: TorchScript reads no global constants.)"""
    scale = in_size / out_size
    filterscale = torch.clamp(scale, min=1.0)
    support = filterscale  # the bilinear filter's support is 1
    center = (torch.arange(out_size.to(torch.int64)[0], dtype=torch.float64, device=in_size.device) + 0.5) * scale
    xmin = torch.floor(center - support + 0.5).clamp(min=0.0)
    xmax = torch.minimum(torch.floor(center + support + 0.5), in_size) - xmin
    k = torch.arange(taps, dtype=torch.float64, device=in_size.device)
    w = _fixed_point(center, xmin, xmax, k, taps, 1.0 / filterscale, precision_bits)
    index = torch.minimum(xmin[:, None] + k[None, :], in_size - 1).to(torch.int64)
    columns = torch.arange(in_size.to(torch.int64)[0], dtype=torch.float64, device=in_size.device)
    dense = torch.zeros_like(center[:, None] * columns[None, :])  # (out, in), sized from tensors
    return dense.scatter_add(1, index, w)


def symbolic_pil_weights(in_size: int, out_size: int, taps: int, device: torch.device,
                         precision_bits: int = PRECISION_BITS) -> Tensor:
    """``pil_weights`` for torch.export, the sizes symbolic ints: the same float64 values, with ``torch.sym_max``
    and clamps by symbolic floats where a tensor's ``float()`` would fix the example's size."""
    in_f, out_f = torch.sym_float(in_size), torch.sym_float(out_size)
    scale = in_f / out_f
    filterscale = torch.sym_max(scale, 1.0)
    center = (torch.arange(out_size, dtype=torch.float64, device=device) + 0.5) * scale
    xmin = torch.floor(center - filterscale + 0.5).clamp(min=0.0)
    xmax = torch.floor(center + filterscale + 0.5).clamp(max=in_f) - xmin
    k = torch.arange(taps, dtype=torch.float64, device=device)
    w = _fixed_point(center, xmin, xmax, k, taps, center.new_full((1,), 1.0 / filterscale), precision_bits)
    index = (xmin[:, None] + k[None, :]).clamp(max=in_f - 1).to(torch.int64)
    return torch.zeros(out_size, in_size, dtype=torch.float64, device=device).scatter_add(1, index, w)


def _fixed_point(center: Tensor, xmin: Tensor, xmax: Tensor, k: Tensor, taps: int, ss: Tensor,
                 precision_bits: int) -> Tensor:
    """The taps' triangle-filter weights (``ss``: 1 / the filter's scale), normalised and rounded as PIL does."""
    w = (1.0 - ((k[None, :] + xmin[:, None] - center[:, None] + 0.5) * ss).abs()).clamp(min=0.0)
    w = torch.where(k[None, :] < xmax[:, None], w, torch.zeros_like(w))
    total = torch.zeros_like(center)
    for i in range(taps):  # in PIL's order: a float sum depends on it
        total = total + w[:, i]
    return torch.floor(w / torch.where(total == 0, torch.ones_like(total), total)[:, None]
                       * float(1 << precision_bits) + 0.5)


def pil_pass(image: Tensor, weights: Tensor, dim: int, precision_bits: int = PRECISION_BITS) -> Tensor:
    """One pass over integer pixels (float64): the weighted sum, half added, shifted, clipped to 0..255."""
    out = torch.matmul(image, weights.T) if dim == -1 else torch.matmul(weights, image)
    return torch.floor((out + float(1 << (precision_bits - 1))) / float(1 << precision_bits)).clamp(0.0, 255.0)


def _taps(in_size: int, out_size: int) -> int:
    return int(math.ceil(max(in_size / out_size, 1.0))) * 2 + 1


def symbolic_resize(image: Tensor, height: int, width: int, taps: int = TRACED_TAPS) -> Tensor:
    """``resize`` for torch.export (symbolic sizes): both passes, as under tracing."""
    image = pil_pass(image, symbolic_pil_weights(image.shape[-1], width, taps, image.device), -1)
    return pil_pass(image, symbolic_pil_weights(image.shape[-2], height, taps, image.device), -2)


def resize(image: Tensor, size: Tensor, traced_taps: int = TRACED_TAPS) -> Tensor:
    """``image``: float64 integer pixels (C, H, W); ``size``: float64 (2,) [height, width]. Returns float64 pixels
    of that size as PIL computes them."""
    hw = torch._shape_as_tensor(image)[-2:].to(device=image.device, dtype=torch.float64)
    if torchvision._is_tracing():  # both passes always: a pass to the same size is exactly the identity
        image = pil_pass(image, pil_weights(hw[1:], size[1:], traced_taps), -1)
        return pil_pass(image, pil_weights(hw[:1], size[:1], traced_taps), -2)
    h, w = int(image.shape[-2]), int(image.shape[-1])
    new_h, new_w = int(size[0]), int(size[1])
    if w != new_w:
        image = pil_pass(image, pil_weights(hw[1:], size[1:], _taps(w, new_w)), -1)
    if h != new_h:
        image = pil_pass(image, pil_weights(hw[:1], size[:1], _taps(h, new_h)), -2)
    return image
