"""PIL's bilinear resize of a uint8 image (what detectron2's ``ResizeTransform`` runs), reproduced exactly in torch:
PIL's per-axis coefficients (``precompute_coeffs``: each output's window of taps, the triangle filter widened by the
scale when shrinking, the taps summed in PIL's order), rounded to its 22-bit fixed point (``normalize_coeffs_8bpc``),
applied as float64 matrix products (exact for 8-bit pixels), each pass rounded and clipped like PIL's ``clip8``; the
horizontal pass first, then the vertical one, each only where that side changes (PIL copies an unchanged side).

Sizes may be tensors (under tracing): the window then has ``TRACED_TAPS`` taps, enough for shrinking a side by up to
16 times; eager and TorchScript (scripting) use exactly PIL's window."""
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
    ss = 1.0 / filterscale
    k = torch.arange(taps, dtype=torch.float64, device=in_size.device)
    w = (1.0 - ((k[None, :] + xmin[:, None] - center[:, None] + 0.5) * ss).abs()).clamp(min=0.0)
    w = torch.where(k[None, :] < xmax[:, None], w, torch.zeros_like(w))
    total = torch.zeros_like(center)
    for i in range(taps):  # in PIL's order: a float sum depends on it
        total = total + w[:, i]
    w = torch.floor(w / torch.where(total == 0, torch.ones_like(total), total)[:, None] * float(1 << precision_bits)
                    + 0.5)
    index = torch.minimum(xmin[:, None] + k[None, :], in_size - 1).to(torch.int64)
    columns = torch.arange(in_size.to(torch.int64)[0], dtype=torch.float64, device=in_size.device)
    dense = torch.zeros_like(center[:, None] * columns[None, :])  # (out, in), sized from tensors
    return dense.scatter_add(1, index, w)


def pil_pass(image: Tensor, weights: Tensor, dim: int, precision_bits: int = PRECISION_BITS) -> Tensor:
    """One pass over integer pixels (float64): the weighted sum, half added, shifted, clipped to 0..255."""
    out = torch.matmul(image, weights.T) if dim == -1 else torch.matmul(weights, image)
    return torch.floor((out + float(1 << (precision_bits - 1))) / float(1 << precision_bits)).clamp(0.0, 255.0)


def _taps(in_size: int, out_size: int) -> int:
    return int(math.ceil(max(in_size / out_size, 1.0))) * 2 + 1


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
