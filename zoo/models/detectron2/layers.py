"""detectron2's basic layers: the frozen batch norm, the convolution that carries its norm as ``.norm`` (the names
its checkpoints use) and the heads' stacks of 3x3 convolutions."""
from __future__ import annotations

from collections import OrderedDict
from typing import List

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters, all four buffers (detectron2's FrozenBatchNorm2d; its
    inference path is ``F.batch_norm(training=False)``)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class ConvNorm(nn.Conv2d):
    """A convolution followed by its frozen batch norm (detectron2's ``Conv2d(..., norm=...)``); no bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups,
                         dilation=dilation, bias=False)
        self.norm = FrozenBatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self._conv_forward(x, self.weight, self.bias))


def conv_relus(prefix: str, in_channels: int, dims: List[int]) -> "OrderedDict[str, nn.Module]":
    """3x3 convolutions (padding 1, with bias) of ``dims`` channels, each followed by a ReLU, named
    ``{prefix}1..N`` as detectron2's heads name them (the ReLUs hold no weights; their names are free)."""
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for k, dim in enumerate(dims):
        layers[f"{prefix}{k + 1}"] = nn.Conv2d(in_channels if k == 0 else dims[k - 1], dim, 3, padding=1)
        layers[f"{prefix}_relu{k + 1}"] = nn.ReLU()
    return layers
