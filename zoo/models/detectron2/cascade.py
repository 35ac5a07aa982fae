"""detectron2's Cascade R-CNN (``CascadeROIHeads``; builders ``zoo.models.detectron2.cascade:cascade_rcnn`` and
``:cascade_mask_rcnn``): the box stages run in turn, each pooling the boxes the stage before it predicted (clipped to
the image), with a box head and a class-agnostic box predictor of its own and its own box-regression weights
(``ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS``; the IoU thresholds, ``IOUS``, only match boxes in training). At test time
the stages' class probabilities are averaged, the last stage's boxes kept, and detectron2's ``fast_rcnn_inference``
selects the detections; the mask branch (Cascade Mask R-CNN) runs on them as in Mask R-CNN. Parameter names are
detectron2's (``roi_heads.box_head.K.fc1.weight``, ``roi_heads.box_predictor.K.cls_score.weight``)."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import maskrcnn_inference
from torchvision.ops import boxes as box_ops

from .heads import D2RoIHeads
from .rcnn import faster_rcnn, with_masks

STAGE_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))  # detectron2's defaults


class D2CascadeRoIHeads(D2RoIHeads):
    """``box_head`` and ``box_predictor`` are ``nn.ModuleList``s, one entry a stage; ``stage_weights`` their box
    coders' weights. Inference only."""

    def __init__(self, box_roi_pool: nn.Module, box_heads: List[nn.Module], box_predictors: List[nn.Module],
                 stage_weights: Sequence[Sequence[float]], score_thresh: float, nms_thresh: float,
                 detections_per_img: int):
        if not len(box_heads) == len(box_predictors) == len(stage_weights) > 0:
            raise ValueError(f"a cascade needs one box head, predictor and set of weights a stage, got "
                             f"{len(box_heads)}, {len(box_predictors)} and {len(stage_weights)}")
        weights = [(float(w[0]), float(w[1]), float(w[2]), float(w[3])) for w in stage_weights]
        super().__init__(box_roi_pool, nn.ModuleList(box_heads), nn.ModuleList(box_predictors), 0.5, 0.5, 512, 0.25,
                         weights[0], score_thresh, nms_thresh, detections_per_img)
        self.stage_weights: List[Tuple[float, float, float, float]] = weights

    def num_classes(self) -> int:
        return self.box_predictor[0].cls_score.out_features

    def cascade(self, features: Dict[str, Tensor], proposals: List[Tensor], image_shapes: List[Tuple[int, int]]
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Each image's last-stage boxes (R, 1, 4) and its class probabilities averaged over the stages (R, K)."""
        per_image = [p.shape[0] for p in proposals]  # (traced sizes: not len())
        boxes = proposals
        total = torch.zeros(0)
        decoded = torch.zeros(0)
        for k, (head, predictor) in enumerate(zip(self.box_head, self.box_predictor)):
            if k > 0:
                boxes = [box_ops.clip_boxes_to_image(b, s) for b, s in zip(decoded.reshape(-1, 4).split(per_image),
                                                                           image_shapes)]
            logits, deltas = predictor(head(self.box_roi_pool(features, boxes, image_shapes)))
            decoded = BoxCoder(self.stage_weights[k]).decode(deltas, boxes)
            probs = F.softmax(logits, -1)
            total = probs if k == 0 else total + probs  # detectron2's sum, in its order
        scores = total * (1.0 / len(self.stage_weights))
        return list(decoded.split(per_image)), list(scores.split(per_image))

    def forward(self, features: Dict[str, Tensor], proposals: List[Tensor], image_shapes: List[Tuple[int, int]],
                targets: Optional[List[Dict[str, Tensor]]] = None
                ) -> Tuple[List[Dict[str, Tensor]], Dict[str, Tensor]]:
        torch._assert(targets is None and not self.training, "the detectron2 cascade is for inference only")
        boxes, scores, labels = self.select(*self.cascade(features, proposals, image_shapes), image_shapes)
        result: List[Dict[str, Tensor]] = [{"boxes": b, "labels": lab, "scores": s}
                                           for b, lab, s in zip(boxes, labels, scores)]
        if self.mask_roi_pool is not None and self.mask_head is not None and self.mask_predictor is not None:
            x = self.mask_head(self.mask_roi_pool(features, [r["boxes"] for r in result], image_shapes))
            probs = maskrcnn_inference(self.mask_predictor(x), [r["labels"] for r in result])
            for r, p in zip(result, probs):
                r["masks"] = p
        return result, {}


def _agnostic(predictor: nn.Module) -> nn.Module:
    """A copy of the box predictor with one box (4 deltas) for every class."""
    agnostic = copy.deepcopy(predictor)
    agnostic.bbox_pred = nn.Linear(predictor.bbox_pred.in_features, 4)
    return agnostic


def cascade_rcnn(cascade_bbox_reg_weights: Sequence[Sequence[float]] = STAGE_WEIGHTS, **faster) -> GeneralizedRCNN:
    """detectron2's Cascade R-CNN: ``faster_rcnn(**faster)`` (its ``bbox_reg_weights`` unused) with a box head and
    a class-agnostic predictor for each of ``cascade_bbox_reg_weights``."""
    model = faster_rcnn(**faster)
    heads = model.roi_heads
    model.roi_heads = D2CascadeRoIHeads(
        heads.box_roi_pool, [copy.deepcopy(heads.box_head) for _ in cascade_bbox_reg_weights],
        [_agnostic(heads.box_predictor) for _ in cascade_bbox_reg_weights], cascade_bbox_reg_weights,
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img)
    return model.eval()


def cascade_mask_rcnn(mask_num_conv: int = 4, mask_conv_dim: int = 256, mask_pooler_resolution: int = 14,
                      mask_pooler_sampling_ratio: int = 0, mask_pooler_aligned: bool = True,
                      **cascade) -> GeneralizedRCNN:
    """detectron2's Cascade Mask R-CNN: ``cascade_rcnn(**cascade)`` with Mask R-CNN's mask branch on the last stage's
    detections."""
    return with_masks(cascade_rcnn(**cascade), mask_num_conv, mask_conv_dim, mask_pooler_resolution,
                      mask_pooler_sampling_ratio, mask_pooler_aligned)
