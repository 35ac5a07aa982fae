"""detectron2's mask branch: ``MaskRCNNConvUpsampleHead`` (3x3 convolutions ``mask_fcn1..N``, a 2x2 stride-2
``deconv``, ReLUs; its 1x1 ``predictor`` is torchvision's ``mask_predictor`` here, with a background channel first)
and ``paste_masks_in_image`` as detectron2 runs it on CPU: each mask bilinearly sampled (``grid_sample``) at the
pixel centres of its box, only within the box's integer bounds widened by a pixel (``skip_empty``), zero elsewhere.
The pasted masks stay probabilities: ``>= 0.5`` is detectron2's ``pred_masks``. All masks are pasted at once, so it
traces for any number of detections."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .layers import conv_relus


def mask_head(in_channels: int, num_conv: int, conv_dim: int) -> nn.Sequential:
    layers = conv_relus("mask_fcn", in_channels, [conv_dim] * num_conv)
    channels = conv_dim if num_conv else in_channels
    layers["deconv"] = nn.ConvTranspose2d(channels, conv_dim, 2, stride=2)
    layers["deconv_relu"] = nn.ReLU()
    return nn.Sequential(layers)


def paste_masks(masks: Tensor, boxes: Tensor, height: int, width: int) -> Tensor:
    """``masks`` (N, 1, M, M) probabilities, ``boxes`` (N, 4) at the output size; returns (N, 1, height, width).
    The sizes are used as ``torch.arange``'s end only, so they stay what they are: ints (eager, scripting), traced
    sizes (tracing) or symbolic ints (torch.export)."""
    n = masks.shape[0]
    x0, y0, x1, y1 = boxes[:, 0:1], boxes[:, 1:2], boxes[:, 2:3], boxes[:, 3:4]
    img_y = torch.arange(height, device=masks.device, dtype=torch.float32) + 0.5
    img_x = torch.arange(width, device=masks.device, dtype=torch.float32) + 0.5
    ys = (img_y[None, :] - y0) / (y1 - y0) * 2 - 1  # (N, H)
    xs = (img_x[None, :] - x0) / (x1 - x0) * 2 - 1  # (N, W)
    grid = torch.stack([xs[:, None, :].expand(n, ys.shape[1], xs.shape[1]),
                        ys[:, :, None].expand(n, ys.shape[1], xs.shape[1])], dim=3)
    pasted = F.grid_sample(masks.float(), grid.to(masks.dtype), align_corners=False)
    # detectron2 pastes each mask (on CPU) into the box's integer bounds widened by one pixel only
    left = torch.clamp(torch.floor(x0) - 1, min=0.0)
    top = torch.clamp(torch.floor(y0) - 1, min=0.0)
    right = torch.minimum(torch.ceil(x1) + 1, img_x[-1:] + 0.5)  # the width, exactly (a float32 below 2**24)
    bottom = torch.minimum(torch.ceil(y1) + 1, img_y[-1:] + 0.5)
    cols = (img_x[None, :] - 0.5 >= left) & (img_x[None, :] - 0.5 < right)  # (N, W)
    rows = (img_y[None, :] - 0.5 >= top) & (img_y[None, :] - 0.5 < bottom)  # (N, H)
    inside = rows[:, None, :, None] & cols[:, None, None, :]
    return torch.where(inside, pasted, torch.zeros_like(pasted))
