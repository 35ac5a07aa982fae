"""detectron2's ``ROIPooler`` for FPN levels: each box to level ``floor(4 + log2(sqrt(area) / 224 + 1e-8))``
clamped to the pooled levels, pooled by RoIAlign at that level's stride; ``ROIAlignV2`` is ``aligned=True`` (the
half-pixel shift), ``ROIAlign`` ``aligned=False``; sampling ratio ``POOLER_SAMPLING_RATIO`` (0: adaptive)."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


class D2RoIPooler(nn.Module):
    def __init__(self, featmap_names: Sequence[str], strides: Sequence[int], output_size: int,
                 sampling_ratio: int = 0, aligned: bool = True, canonical_box_size: int = 224,
                 canonical_level: int = 4):
        super().__init__()
        self.featmap_names = list(featmap_names)
        self.scales = [1.0 / s for s in strides]
        self.min_level = int(round(math.log2(strides[0])))
        self.max_level = int(round(math.log2(strides[-1])))
        self.output_size = int(output_size)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.canonical_box_size = float(canonical_box_size)
        self.canonical_level = float(canonical_level)

    def levels(self, boxes: Tensor) -> Tensor:
        """``assign_boxes_to_levels``: the index into the pooled levels of each box."""
        sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        level = torch.floor(self.canonical_level + torch.log2(sizes / self.canonical_box_size + 1e-8))
        return (torch.clamp(level, min=self.min_level, max=self.max_level) - self.min_level).to(torch.int64)

    def forward(self, x: Dict[str, Tensor], boxes: List[Tensor], image_shapes: List[Tuple[int, int]]) -> Tensor:
        features = [x[name] for name in self.featmap_names]
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], float(i)), b], dim=1) for i, b in enumerate(boxes)])
        levels = self.levels(rois[:, 1:])
        out = torch.zeros((rois.shape[0], features[0].shape[1], self.output_size, self.output_size),
                          dtype=features[0].dtype, device=features[0].device)
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            inds = torch.where(levels == level)[0]
            pooled = roi_align(feature, rois[inds], (self.output_size, self.output_size), scale, self.sampling_ratio,
                               self.aligned)
            out.index_put_((inds,), pooled)
        return out
