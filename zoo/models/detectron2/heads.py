"""detectron2's box head (``FastRCNNConvFCHead``) and its test-time box post-processing
(``fast_rcnn_inference``) in torchvision's RoI heads."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from .layers import conv_relus


def box_head(in_channels: int, resolution: int, num_conv: int, conv_dim: int, num_fc: int, fc_dim: int) -> nn.Sequential:
    """3x3 convolutions (each with ReLU), then fully connected layers (each with ReLU), detectron2's names."""
    layers = conv_relus("conv", in_channels, [conv_dim] * num_conv)
    channels = conv_dim if num_conv else in_channels
    layers["flatten"] = nn.Flatten()
    size = channels * resolution * resolution
    for k in range(num_fc):
        layers[f"fc{k + 1}"] = nn.Linear(size, fc_dim)
        layers[f"fc_relu{k + 1}"] = nn.ReLU()
        size = fc_dim
    return nn.Sequential(layers)


def head_channels(num_conv: int, conv_dim: int, num_fc: int, fc_dim: int, in_channels: int, resolution: int) -> int:
    """The features the box predictor gets."""
    if num_fc:
        return fc_dim
    return (conv_dim if num_conv else in_channels) * resolution * resolution


class D2RoIHeads(RoIHeads):
    """torchvision's RoI heads with detectron2's post-processing: softmax scores, class-specific boxes clipped,
    ``scores > SCORE_THRESH_TEST``, NMS per class, the first ``DETECTIONS_PER_IMAGE``; no small-box removal
    (torchvision drops boxes under 1e-2 px)."""

    def num_classes(self) -> int:
        """Classes with the background (the classifier's outputs)."""
        return self.box_predictor.cls_score.out_features

    def detect(self, features: Dict[str, Tensor], proposals: List[Tensor], image_shapes: List[Tuple[int, int]]
               ) -> List[Dict[str, Tensor]]:
        """The box branch at inference: each image's ``boxes``, ``labels`` and ``scores`` (for the heads that add a
        branch of their own after it; TorchScript compiles no ``super().forward``)."""
        class_logits, box_regression = self.box_predictor(self.box_head(self.box_roi_pool(features, proposals,
                                                                                          image_shapes)))
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        return [{"boxes": b, "labels": lab, "scores": s} for b, lab, s in zip(boxes, labels, scores)]

    def postprocess_detections(self, class_logits: Tensor, box_regression: Tensor, proposals: List[Tensor],
                               image_shapes: List[Tuple[int, int]]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        boxes_per_image = [b.shape[0] for b in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals).split(boxes_per_image, 0)
        pred_scores = F.softmax(class_logits, -1).split(boxes_per_image, 0)
        return self.select(list(pred_boxes), list(pred_scores), image_shapes)

    def select(self, pred_boxes: List[Tensor], pred_scores: List[Tensor], image_shapes: List[Tuple[int, int]]
               ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """detectron2's ``fast_rcnn_inference`` on each image's boxes (R, K, 4), or (R, 1, 4) class-agnostic, and
        class probabilities (R, K), the background's first."""
        all_boxes: List[Tensor] = []
        all_scores: List[Tensor] = []
        all_labels: List[Tensor] = []
        for boxes, scores, image_shape in zip(pred_boxes, pred_scores, image_shapes):
            num_classes = scores.shape[-1]
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape).expand(-1, num_classes, -1)
            labels = torch.arange(num_classes, device=scores.device).view(1, -1).expand_as(scores)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            inds = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
            # detectron2's class ids (0-based) for NMS: the coordinate trick offsets boxes by class, which rounds
            keep = box_ops.batched_nms(boxes, scores, labels - 1, self.nms_thresh)[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels
