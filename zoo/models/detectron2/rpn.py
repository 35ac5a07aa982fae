"""detectron2's proposal selection at test time (``find_top_rpn_proposals``) in torchvision's RPN: the top
``PRE_NMS_TOPK_TEST`` logits per level, boxes clipped, boxes of width or height <= ``PROPOSAL_GENERATOR.MIN_SIZE``
dropped (torchvision drops those under 1e-3 px), NMS per level on the logits, the first ``POST_NMS_TOPK_TEST`` kept
over all levels."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import boxes as box_ops


class D2RPN(RegionProposalNetwork):
    def __init__(self, *args, min_box_size: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_box_size = float(min_box_size)

    def filter_proposals(self, proposals: Tensor, objectness: Tensor, image_shapes: List[Tuple[int, int]],
                         num_anchors_per_level: List[int]) -> Tuple[List[Tensor], List[Tensor]]:
        num_images = proposals.shape[0]
        device = proposals.device
        objectness = objectness.detach().reshape(num_images, -1)
        levels = torch.cat([torch.full((n,), idx, dtype=torch.int64, device=device)
                            for idx, n in enumerate(num_anchors_per_level)], 0).reshape(1, -1).expand_as(objectness)
        top_n_idx = self._get_top_n_idx(objectness, num_anchors_per_level)
        batch_idx = torch.arange(num_images, device=device)[:, None]
        objectness, levels, proposals = (objectness[batch_idx, top_n_idx], levels[batch_idx, top_n_idx],
                                         proposals[batch_idx, top_n_idx])
        final_boxes: List[Tensor] = []
        final_scores: List[Tensor] = []
        for boxes, scores, lvl, img_shape in zip(proposals, objectness, levels, image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, img_shape)
            keep = ((boxes[:, 2] - boxes[:, 0]) > self.min_box_size) & ((boxes[:, 3] - boxes[:, 1]) > self.min_box_size)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = box_ops.batched_nms(boxes, scores, lvl, self.nms_thresh)[: self.post_nms_top_n()]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores
