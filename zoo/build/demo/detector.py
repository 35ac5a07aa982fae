"""The demo detector: torchvision's Faster R-CNN around a tiny convolutional backbone (one feature map at stride 8),
small enough to train on two CPU cores in about two minutes (zoo/build/demo/train.py). Plain convolutions, batch norm and ReLU:
it traces, scripts and exports to ONNX like torchvision's own backbones."""
from __future__ import annotations

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def backbone() -> nn.Sequential:
    net = nn.Sequential(*_block(3, 16, 2), *_block(16, 32, 2), *_block(32, 64, 2), *_block(64, 64, 1))
    net.out_channels = 64
    return net


def build(num_classes: int = 4, min_size: int = 128, max_size: int = 192, box_score_thresh: float = 0.05) -> FasterRCNN:
    """``num_classes`` counts the background: 4 for the three shapes."""
    return FasterRCNN(
        backbone(), min_size=min_size, max_size=max_size,
        rpn_anchor_generator=AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(64 * 7 * 7, 128), box_predictor=FastRCNNPredictor(128, num_classes),
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128, box_batch_size_per_image=128,
        box_score_thresh=box_score_thresh, box_detections_per_img=50,
    )
