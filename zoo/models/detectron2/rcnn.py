"""The builders a converted detectron2 R-CNN's manifest names (``zoo.models.detectron2.rcnn:faster_rcnn``, ``:mask_rcnn``,
``:keypoint_rcnn``):
torchvision's ``GeneralizedRCNN`` with detectron2's ResNet-FPN, anchors, proposal selection, RoIAlignV2 pooler, box
head and post-processing. Every argument is a detectron2 config value (``zoo convert-d2`` writes them from the
config); the defaults are detectron2's ``faster_rcnn_R_50_FPN_3x``. Labels are 1 + detectron2's class id (0 is the
background, as in torchvision)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.rpn import RPNHead

from .anchors import D2AnchorGenerator
from .backbone import FPN, ResNet
from .heads import D2RoIHeads, box_head, head_channels
from .keypoints import D2KeypointRoIHeads, KeypointHead
from .masks import mask_head
from .pooler import D2RoIPooler
from .rpn import D2RPN
from .transform import D2Transform

FPN_STRIDES = [4, 8, 16, 32, 64]  # p2..p6
BGR_MEAN = [103.530, 116.280, 123.675]
UNIT_STD = [1.0, 1.0, 1.0]  # MSRA and Caffe2 backbones: the std is folded into conv1's weights


def resnet_fpn(depth: int = 50, num_groups: int = 1, width_per_group: int = 64, stride_in_1x1: bool = True,
               stem_out_channels: int = 64, res2_out_channels: int = 256, fpn_out_channels: int = 256) -> FPN:
    return FPN(ResNet(depth, num_groups, width_per_group, stride_in_1x1, stem_out_channels, res2_out_channels),
               fpn_out_channels)


def faster_rcnn(
    num_classes: int = 81, depth: int = 50, num_groups: int = 1, width_per_group: int = 64, stride_in_1x1: bool = True,
    stem_out_channels: int = 64, res2_out_channels: int = 256, fpn_out_channels: int = 256,
    anchor_sizes: Sequence[Sequence[float]] = ((32,), (64,), (128,), (256,), (512,)),
    aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),), anchor_offset: float = 0.0,
    rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000, rpn_nms_thresh: float = 0.7,
    rpn_min_box_size: float = 0.0, rpn_bbox_reg_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    box_num_conv: int = 0, box_conv_dim: int = 256, box_num_fc: int = 2, box_fc_dim: int = 1024,
    pooler_resolution: int = 7, pooler_sampling_ratio: int = 0, pooler_aligned: bool = True,
    bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0), box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5, box_detections_per_img: int = 100, pixel_mean: Optional[List[float]] = None,
    pixel_std: Optional[List[float]] = None, input_format: str = "BGR", min_size: int = 800, max_size: int = 1333,
    heads: type = D2RoIHeads,
) -> GeneralizedRCNN:
    """detectron2's Faster R-CNN with an FPN; ``num_classes`` counts the background (detectron2's NUM_CLASSES + 1);
    ``heads``: the RoI heads' class (the keypoint builder's own)."""
    backbone = resnet_fpn(depth, num_groups, width_per_group, stride_in_1x1, stem_out_channels, res2_out_channels,
                          fpn_out_channels)
    anchors = D2AnchorGenerator(anchor_sizes, aspect_ratios, FPN_STRIDES, anchor_offset)
    per_location = anchors.num_anchors_per_location()
    if len(set(per_location)) != 1:
        raise ValueError(f"every level needs the same number of anchors per location (the RPN head is shared), got "
                         f"{per_location}")
    rpn = D2RPN(anchors, RPNHead(fpn_out_channels, per_location[0]), 0.7, 0.3, 256, 0.5,
                dict(training=2000, testing=rpn_pre_nms_top_n_test), dict(training=1000, testing=rpn_post_nms_top_n_test),
                rpn_nms_thresh, min_box_size=rpn_min_box_size)
    rpn.box_coder = BoxCoder(tuple(float(w) for w in rpn_bbox_reg_weights))
    pooler = D2RoIPooler(["p2", "p3", "p4", "p5"], FPN_STRIDES[:4], pooler_resolution, pooler_sampling_ratio,
                         pooler_aligned)
    head = box_head(fpn_out_channels, pooler_resolution, box_num_conv, box_conv_dim, box_num_fc, box_fc_dim)
    features = head_channels(box_num_conv, box_conv_dim, box_num_fc, box_fc_dim, fpn_out_channels, pooler_resolution)
    roi_heads = heads(pooler, head, FastRCNNPredictor(features, num_classes), 0.5, 0.5, 512, 0.25,
                           tuple(float(w) for w in bbox_reg_weights), box_score_thresh, box_nms_thresh,
                           box_detections_per_img)
    transform = D2Transform(min_size, max_size, pixel_mean or BGR_MEAN, pixel_std or UNIT_STD, input_format)
    return GeneralizedRCNN(backbone, rpn, roi_heads, transform).eval()


def mask_rcnn(mask_num_conv: int = 4, mask_conv_dim: int = 256, mask_pooler_resolution: int = 14,
              mask_pooler_sampling_ratio: int = 0, mask_pooler_aligned: bool = True, **faster) -> GeneralizedRCNN:
    """detectron2's Mask R-CNN: ``faster_rcnn(**faster)`` with its mask branch (class-specific masks; the predictor's
    channel 0 is the background's, never selected)."""
    return with_masks(faster_rcnn(**faster), mask_num_conv, mask_conv_dim, mask_pooler_resolution,
                      mask_pooler_sampling_ratio, mask_pooler_aligned)


def with_masks(model: GeneralizedRCNN, num_conv: int, conv_dim: int, pooler_resolution: int, pooler_sampling_ratio: int,
               pooler_aligned: bool) -> GeneralizedRCNN:
    """``model`` with detectron2's mask branch on its RoI heads' detections, one mask channel per class (its
    classifier's)."""
    heads = model.roi_heads
    channels = model.backbone.out_channels
    heads.mask_roi_pool = D2RoIPooler(["p2", "p3", "p4", "p5"], FPN_STRIDES[:4], pooler_resolution,
                                      pooler_sampling_ratio, pooler_aligned)
    heads.mask_head = mask_head(channels, num_conv, conv_dim)
    heads.mask_predictor = nn.Conv2d(conv_dim, heads.num_classes(), 1)
    return model.eval()


def keypoint_rcnn(num_keypoints: int = 17, keypoint_conv_dims: Sequence[int] = (512,) * 8,
                  keypoint_pooler_resolution: int = 14, keypoint_pooler_sampling_ratio: int = 0,
                  keypoint_pooler_aligned: bool = True, **faster) -> GeneralizedRCNN:
    """detectron2's Keypoint R-CNN: ``faster_rcnn(**faster)`` with its keypoint branch."""
    model = faster_rcnn(heads=D2KeypointRoIHeads, **faster)
    heads = model.roi_heads
    heads.d2_keypoint_pool = D2RoIPooler(["p2", "p3", "p4", "p5"], FPN_STRIDES[:4], keypoint_pooler_resolution,
                                         keypoint_pooler_sampling_ratio, keypoint_pooler_aligned)
    heads.keypoint_head = KeypointHead(model.backbone.out_channels, list(keypoint_conv_dims), num_keypoints)
    return model.eval()
