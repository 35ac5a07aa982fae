"""The builder a converted detectron2 RetinaNet's manifest names (``zoo.models.detectron2.retinanet:retinanet``):
torchvision's ``RetinaNet`` with detectron2's ResNet-FPN (P3-P5 and P6/P7 from C5), its anchors (three sizes per
octave and three ratios, not rounded, fixed strides 8..128), pre-processing and post-processing. The classification
head has a background channel per anchor first (never scored: zero weights, bias -1e4), so labels are 1 +
detectron2's class id as for the R-CNNs. Every argument is a detectron2 config value (``zoo convert-d2`` writes them);
the defaults are detectron2's ``retinanet_R_50_FPN_3x``."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
from torchvision.ops import boxes as box_ops

from .anchors import D2AnchorGenerator
from .backbone import FPN, ResNet
from .rcnn import BGR_MEAN, UNIT_STD
from .transform import D2Transform

RETINA_STRIDES = [8, 16, 32, 64, 128]  # p3..p7
OCTAVES = [[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]]


class D2RetinaNet(RetinaNet):
    """detectron2's RetinaNet inference: per level the scores over ``SCORE_THRESH_TEST``, their top
    ``TOPK_CANDIDATES_TEST``, boxes decoded and not clipped (torchvision clips them before NMS), NMS per class on
    detectron2's 0-based ids, the first ``DETECTIONS_PER_IMAGE``."""

    def postprocess_detections(self, head_outputs: Dict[str, List[Tensor]], anchors: List[List[Tensor]],
                               image_shapes: List[Tuple[int, int]]) -> List[Dict[str, Tensor]]:
        detections: List[Dict[str, Tensor]] = []
        for index in range(len(image_shapes)):
            boxes_all: List[Tensor] = []
            scores_all: List[Tensor] = []
            labels_all: List[Tensor] = []
            for deltas, logits, level_anchors in zip([br[index] for br in head_outputs["bbox_regression"]],
                                                     [cl[index] for cl in head_outputs["cls_logits"]], anchors[index]):
                num_classes = logits.shape[-1]
                scores = torch.sigmoid(logits).flatten()
                keep = scores > self.score_thresh
                scores = scores[keep]
                idxs = torch.where(keep)[0]
                scores, order = scores.topk(det_utils._topk_min(idxs, self.topk_candidates, 0))
                idxs = idxs[order]
                anchor_idxs = torch.div(idxs, num_classes, rounding_mode="floor")
                boxes_all.append(self.box_coder.decode_single(deltas[anchor_idxs], level_anchors[anchor_idxs]))
                scores_all.append(scores)
                labels_all.append(idxs % num_classes)
            boxes, scores, labels = torch.cat(boxes_all), torch.cat(scores_all), torch.cat(labels_all)
            keep = box_ops.batched_nms(boxes, scores, labels - 1, self.nms_thresh)[: self.detections_per_img]
            detections.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return detections


def retinanet(
    num_classes: int = 81, depth: int = 50, num_groups: int = 1, width_per_group: int = 64, stride_in_1x1: bool = True,
    stem_out_channels: int = 64, res2_out_channels: int = 256, fpn_out_channels: int = 256,
    anchor_sizes: Sequence[Sequence[float]] = OCTAVES, aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    anchor_offset: float = 0.0, score_thresh: float = 0.05, nms_thresh: float = 0.5, topk_candidates: int = 1000,
    detections_per_img: int = 100, bbox_reg_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    pixel_mean: Optional[List[float]] = None, pixel_std: Optional[List[float]] = None, input_format: str = "BGR",
    min_size: int = 800, max_size: int = 1333,
) -> RetinaNet:
    """detectron2's RetinaNet; ``num_classes`` counts the background channel (detectron2's NUM_CLASSES + 1)."""
    backbone = FPN(ResNet(depth, num_groups, width_per_group, stride_in_1x1, stem_out_channels, res2_out_channels),
                   fpn_out_channels, in_stages=(3, 4, 5), p6p7=True)
    anchors = D2AnchorGenerator(anchor_sizes, aspect_ratios, RETINA_STRIDES, anchor_offset)
    per_location = anchors.num_anchors_per_location()
    if len(set(per_location)) != 1:
        raise ValueError(f"every level needs the same number of anchors per location (the head is shared), got "
                         f"{per_location}")
    head = RetinaNetHead(fpn_out_channels, per_location[0], num_classes)
    model = D2RetinaNet(backbone, num_classes, min_size, max_size, head=head, score_thresh=score_thresh,
                        nms_thresh=nms_thresh, detections_per_img=detections_per_img, topk_candidates=topk_candidates)
    model.anchor_generator = anchors
    model.box_coder = det_utils.BoxCoder(tuple(float(w) for w in bbox_reg_weights))
    model.transform = D2Transform(min_size, max_size, pixel_mean or BGR_MEAN, pixel_std or UNIT_STD, input_format)
    return model.eval()
