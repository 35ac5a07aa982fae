"""detectron2's ``DefaultAnchorGenerator``: per level, cell anchors of area size**2 at each aspect ratio, not rounded
(torchvision rounds them), on a grid of the level's fixed stride (torchvision derives the stride from the padded
image size, 60 px instead of 64 for P6 of a 480-row image)."""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> Tensor:
    """``generate_cell_anchors``: (len(sizes) * len(aspect_ratios), 4) anchors centred on 0, sizes outermost."""
    anchors = []
    for size in sizes:
        area = float(size) ** 2.0
        for ratio in aspect_ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


class D2AnchorGenerator(nn.Module):
    """Anchors for every feature map, the same for each image of the batch (torchvision's RPN interface)."""

    def __init__(self, sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]],
                 strides: Sequence[int], offset: float = 0.0):
        super().__init__()
        if len(aspect_ratios) == 1:  # detectron2 broadcasts one list of ratios (or sizes) to every level
            aspect_ratios = list(aspect_ratios) * len(strides)
        if len(sizes) == 1:
            sizes = list(sizes) * len(strides)
        self.sizes = [list(s) for s in sizes]  # per level (torchvision's attribute: zoo.export counts the levels)
        self.strides = [int(s) for s in strides]
        self.offset = float(offset)
        self._anchors_per_location = [len(s) * len(r) for s, r in zip(sizes, aspect_ratios)]
        # every level's cell anchors in one buffer (it follows the model's device), split per level in forward
        self.register_buffer("cell_anchors", torch.cat([cell_anchors(s, r) for s, r in zip(sizes, aspect_ratios)]),
                             persistent=False)

    def num_anchors_per_location(self) -> List[int]:
        return self._anchors_per_location

    def _cells(self) -> List[Tensor]:
        return list(self.cell_anchors.split(self._anchors_per_location))

    def forward(self, image_list: ImageList, feature_maps: List[Tensor]) -> List[Tensor]:
        levels = []
        for feature, stride, base in zip(feature_maps, self.strides, self._cells()):
            h, w = feature.shape[-2], feature.shape[-1]
            base = base.to(device=feature.device)
            shifts_x = torch.arange(w, dtype=torch.float32, device=feature.device) * stride + self.offset * stride
            shifts_y = torch.arange(h, dtype=torch.float32, device=feature.device) * stride + self.offset * stride
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            levels.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        anchors = torch.cat(levels)
        return [anchors for _ in range(len(image_list.image_sizes))]
