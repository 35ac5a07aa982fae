"""detectron2's PointRend for instance segmentation (``projects/PointRend``: ``PointRendMaskHead`` with
``StandardPointHead``; builder ``zoo.models.detectron2.pointrend:pointrend_rcnn``): a Faster R-CNN whose masks come
from a coarse head and a point head.

* The **coarse head** (``ConvFCHead``) gets each detection's features bilinearly sampled (``grid_sample``, as
  detectron2's ``point_sample``) at a regular ``POOLER_RESOLUTION``-square grid of points in its box on ``p2``: a 1x1
  convolution to ``CONV_DIM`` channels where the FPN has more, a 2x2 stride-2 convolution, ``NUM_FC`` fully connected
  layers (ReLUs) and a linear prediction of (classes, ``OUTPUT_SIDE_RESOLUTION``, same) logits.
* **Adaptive subdivision** (``_subdivision_inference``): the initial resolution doubles (and a step is dropped) while
  four times its square fits in ``SUBDIVISION_NUM_POINTS``; the point head predicts a regular grid at it, then each of
  the remaining ``SUBDIVISION_STEPS`` upsamples the logits 2x (bilinear), picks the ``SUBDIVISION_NUM_POINTS`` most
  uncertain cells (``-|logit|`` of the detection's class; ``topk``) and replaces their logits by the point head's
  prediction there (``scatter``). With detectron2's 7 and 5 steps of 784 points: 28x28, then 56, 112, 224.
* The **point head** (``StandardPointHead``): per point, the fine-grained ``p2`` features and the coarse logits
  (all classes, sampled at the point), ``NUM_FC`` 1x1 ``Conv1d`` layers with ReLUs (the coarse logits concatenated
  again after each, ``COARSE_PRED_EACH_LAYER``) and a ``Conv1d`` predictor.

The logits are carried for the detection's own class only (detectron2 upsamples and scatters every class's channel,
then keeps that one: each channel is computed on its own, so the kept values are the same), and the sigmoid of the
final map is pasted into the image as the other Mask R-CNNs' masks are (``masks.paste_masks``). The heads keep
detectron2's class order and names (``roi_heads.mask_head.coarse_head.fc1.weight``,
``roi_heads.mask_head.point_head.predictor.weight``). Everything traces (the numbers of points are fixed by the
config) and compiles under TorchScript."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from .heads import D2RoIHeads
from .rcnn import FPN_STRIDES, faster_rcnn


def regular_grid(side: int) -> Tensor:
    """detectron2's ``generate_regular_grid_point_coords``: (side * side, 2) x, y cell centres in [0, 1]."""
    aff = torch.tensor([[[0.5, 0, 0.5], [0, 0.5, 0.5]]])
    return F.affine_grid(aff, [1, 1, side, side], align_corners=False).view(-1, 2)


def point_sample(features: Tensor, points: Tensor) -> Tensor:
    """``features`` (N, C, H, W) at ``points`` (N, P, 2) in [0, 1]: (N, C, P)."""
    return F.grid_sample(features, 2.0 * points.unsqueeze(2) - 1.0, align_corners=False).squeeze(3)


def in_image(boxes: Tensor, points: Tensor) -> Tensor:
    """``get_point_coords_wrt_image``: box-relative points (R, P, 2) in image pixels, in detectron2's order of
    operations."""
    x = points[:, :, 0] * (boxes[:, None, 2] - boxes[:, None, 0]) + boxes[:, None, 0]
    y = points[:, :, 1] * (boxes[:, None, 3] - boxes[:, None, 1]) + boxes[:, None, 1]
    return torch.stack([x, y], dim=2)


def fine_grained(feature: Tensor, stride: int, boxes: List[Tensor], points: Tensor) -> Tensor:
    """``point_sample_fine_grained_features`` on one level: each image's boxes' points (R, P, 2), box-relative, as
    (R, C, P) features sampled from ``feature`` (N, C, H, W) (its size times its stride: the padded image's)."""
    pixels = in_image(torch.cat(boxes), points).split([b.shape[0] for b in boxes])  # (traced sizes: not len())
    out: List[Tensor] = []
    for i, p in enumerate(pixels):
        sampled = F.grid_sample(feature[i:i + 1], 2.0 * _relative(p, feature, stride).unsqueeze(0) - 1.0,
                                align_corners=False)
        out.append(sampled.squeeze(0).transpose(1, 0))
    return torch.cat(out, dim=0)


def _relative(p: Tensor, feature: Tensor, stride: int) -> Tensor:
    """Points (R, P, 2) in image pixels over detectron2's [w, h] / (1 / stride), the padded image's size, in float32.
    Under tracing that size is a traced tensor (an int would be the example's); elsewhere ints, or torch.export's
    symbolic ints (a tensor made of those has no data while exporting): the same float32 divisions."""
    if torch.jit.is_tracing():
        hw = torch._shape_as_tensor(feature)[-2:].to(torch.float32)
        return p / (torch.stack([hw[1], hw[0]]) * float(stride))
    return torch.stack([p[:, :, 0] / (feature.shape[-1] * stride), p[:, :, 1] / (feature.shape[-2] * stride)], dim=2)


class CoarseHead(nn.Sequential):
    """detectron2's ``ConvFCHead``: (R, C, S, S) pooled features -> (R, classes, side, side) logits."""

    def __init__(self, in_channels: int, conv_dim: int, fc_dims: List[int], num_classes: int, pooler_resolution: int,
                 side: int):
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        if in_channels > conv_dim:
            layers["reduce_channel_dim_conv"] = nn.Conv2d(in_channels, conv_dim, 1)
            layers["reduce_channel_relu"] = nn.ReLU()
        layers["reduce_spatial_dim_conv"] = nn.Conv2d(conv_dim, conv_dim, 2, stride=2)
        layers["reduce_spatial_relu"] = nn.ReLU()
        layers["flatten"] = nn.Flatten()
        size = conv_dim * pooler_resolution * pooler_resolution // 4
        for k, dim in enumerate(fc_dims):
            layers[f"fc{k + 1}"] = nn.Linear(size, dim)
            layers[f"fc_relu{k + 1}"] = nn.ReLU()
            size = dim
        layers["prediction"] = nn.Linear(size, num_classes * side * side)
        super().__init__(layers)
        self.num_classes, self.side = num_classes, side

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        for layer in self:  # (nn.Sequential's own forward: TorchScript compiles no super() call)
            x = layer(x)
        return x.view(n, self.num_classes, self.side, self.side)


class PointHead(nn.Sequential):
    """detectron2's ``StandardPointHead``: fine-grained (R, C, P) and coarse (R, classes, P) features -> (R, classes,
    P) logits."""

    def __init__(self, in_channels: int, num_classes: int, fc_dim: int, num_fc: int, coarse_each_layer: bool = True):
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        size = in_channels + num_classes
        for k in range(num_fc):
            layers[f"fc{k + 1}"] = nn.Conv1d(size, fc_dim, 1)
            size = fc_dim + (num_classes if coarse_each_layer else 0)
        layers["predictor"] = nn.Conv1d(size, num_classes, 1)
        super().__init__(layers)
        self.num_fc, self.coarse_each_layer = num_fc, coarse_each_layer

    def forward(self, fine: Tensor, coarse: Tensor) -> Tensor:
        x = torch.cat((fine, coarse), dim=1)
        for k, layer in enumerate(self):
            x = layer(x)
            if k < self.num_fc:
                x = F.relu(x)
                if self.coarse_each_layer:
                    x = torch.cat((x, coarse), dim=1)
        return x


class PointRendMaskHead(nn.Module):
    def __init__(self, coarse_head: CoarseHead, point_head: PointHead, stride: int, pooler_resolution: int,
                 side: int, steps: int, num_points: int):
        super().__init__()
        self.coarse_head, self.point_head = coarse_head, point_head
        self.stride, self.num_points = int(stride), int(num_points)
        while 4 * side ** 2 <= num_points:  # detectron2's adjustment of the initial resolution
            side *= 2
            steps -= 1
        self.side, self.steps = side, steps
        self.register_buffer("pooler_grid", regular_grid(pooler_resolution), persistent=False)
        self.register_buffer("initial_grid", regular_grid(side), persistent=False)
        self.pooler_resolution = int(pooler_resolution)

    def point_logits(self, feature: Tensor, boxes: List[Tensor], points: Tensor, coarse: Tensor, classes: Tensor
                     ) -> Tensor:
        """The point head's logits of each detection's class at its points: (R, 1, P)."""
        logits = self.point_head(fine_grained(feature, self.stride, boxes, points), point_sample(coarse, points))
        return logits.gather(1, classes.view(-1, 1, 1).expand(-1, 1, logits.shape[2]))

    def forward(self, feature: Tensor, boxes: List[Tensor], classes: Tensor) -> Tensor:
        """``feature``: p2; ``boxes`` per image; ``classes``: detectron2's (0-based) of every box. Returns the mask
        probabilities (R, 1, side * 2^steps, same)."""
        r = classes.shape[0]
        pooled = fine_grained(feature, self.stride, boxes, self.pooler_grid.expand(r, -1, -1))
        coarse = self.coarse_head(pooled.reshape(r, pooled.shape[1], self.pooler_resolution,
                                                 self.pooler_resolution))
        side = self.side
        logits = self.point_logits(feature, boxes, self.initial_grid.expand(r, -1, -1), coarse,
                                   classes).reshape(r, 1, side, side)
        for _ in range(self.steps):
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
            side *= 2
            uncertainty = -torch.abs(logits).reshape(r, side * side)
            indices = torch.topk(uncertainty, k=min(side * side, self.num_points), dim=1)[1]
            step = 1.0 / float(side)
            points = torch.stack([step / 2.0 + (indices % side).to(torch.float) * step,
                                  step / 2.0 + torch.div(indices, side, rounding_mode="floor").to(torch.float) * step],
                                 dim=2)
            found = self.point_logits(feature, boxes, points, coarse, classes)
            logits = logits.reshape(r, 1, side * side).scatter(2, indices.unsqueeze(1), found).view(r, 1, side, side)
        return logits.sigmoid()


class D2PointRendRoIHeads(D2RoIHeads):
    """The R-CNN's box branch, then PointRend's masks of its detections (``masks``: probabilities, pasted into the
    image by the transform). Inference only."""

    def has_mask(self) -> bool:
        return True  # (torchvision's asks for its own mask pooler and predictor, which PointRend has none of)

    def forward(self, features: Dict[str, Tensor], proposals: List[Tensor], image_shapes: List[Tuple[int, int]],
                targets: Optional[List[Dict[str, Tensor]]] = None
                ) -> Tuple[List[Dict[str, Tensor]], Dict[str, Tensor]]:
        torch._assert(targets is None and not self.training, "the detectron2 PointRend heads are for inference only")
        result = self.detect(features, proposals, image_shapes)
        boxes = [r["boxes"] for r in result]
        masks = self.mask_head(features["p2"], boxes, torch.cat([r["labels"] for r in result]) - 1)
        for r, m in zip(result, masks.split([b.shape[0] for b in boxes])):
            r["masks"] = m
        return result, {}


def pointrend_rcnn(mask_conv_dim: int = 256, mask_fc_dim: int = 1024, mask_num_fc: int = 2,
                   mask_pooler_resolution: int = 14, mask_output_side_resolution: int = 7, point_fc_dim: int = 256,
                   point_num_fc: int = 3, point_coarse_pred_each_layer: bool = True, subdivision_steps: int = 5,
                   subdivision_num_points: int = 784, **faster) -> GeneralizedRCNN:
    """detectron2's PointRend R-CNN (``pointrend_rcnn_R_50_FPN_3x_coco``'s defaults): ``faster_rcnn(**faster)`` with
    the coarse and point heads on ``p2``."""
    model = faster_rcnn(heads=D2PointRendRoIHeads, **faster)
    channels = model.backbone.out_channels
    if channels < mask_conv_dim:
        raise ValueError(f"the coarse mask head's CONV_DIM ({mask_conv_dim}) must not exceed the FPN's channels "
                         f"({channels}): detectron2's ConvFCHead only reduces them")
    num_classes = model.roi_heads.num_classes() - 1  # detectron2's (its masks' channels)
    coarse = CoarseHead(channels, mask_conv_dim, [mask_fc_dim] * mask_num_fc, num_classes, mask_pooler_resolution,
                        mask_output_side_resolution)
    point = PointHead(channels, num_classes, point_fc_dim, point_num_fc, point_coarse_pred_each_layer)
    # (detectron2's names: roi_heads.mask_head.coarse_head.*, roi_heads.mask_head.point_head.*)
    model.roi_heads.mask_head = PointRendMaskHead(coarse, point, FPN_STRIDES[0], mask_pooler_resolution,
                                                  mask_output_side_resolution, subdivision_steps,
                                                  subdivision_num_points)
    return model.eval()
