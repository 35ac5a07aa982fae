"""detectron2's keypoint branch: ``KRCNNConvDeconvUpsampleHead`` (3x3 convolutions ``conv_fcn1..N`` with ReLUs, a 4x4
stride-2 ``score_lowres`` deconvolution, then 2x bilinear upsampling) and ``heatmaps_to_keypoints`` (each heatmap
resized bicubically to its box's ceiled size, the peak's pixel centre scaled back into the box, its logit and its
score: the peak's probability under a softmax over the heatmap's own resolution). The decoding loops over the
detections, each at its own size: TorchScript compiles the loop (scripting), a trace would freeze it at the example's
count. The heads run the box branch (``D2RoIHeads.detect``), then this one: TorchScript compiles no ``super()`` call."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .heads import D2RoIHeads
from .layers import conv_relus


class KeypointHead(nn.Sequential):
    def __init__(self, in_channels: int, conv_dims: List[int], num_keypoints: int):
        layers = conv_relus("conv_fcn", in_channels, conv_dims)
        layers["score_lowres"] = nn.ConvTranspose2d(conv_dims[-1] if conv_dims else in_channels, num_keypoints, 4,
                                                    stride=2, padding=1)
        super().__init__(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self:  # (nn.Sequential's own forward: TorchScript compiles no super() call)
            x = layer(x)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


@torch.jit._script_if_tracing
def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> Tensor:
    """(#rois, K, 4): x, y, logit and score per keypoint (detectron2's ``heatmaps_to_keypoints``). A loop over the
    detections, each heatmap at its own box's size: eager runs it as Python, a trace records it as a TorchScript loop
    (``torch.jit._script_if_tracing``; the ONNX exporter as a ``Loop``), scripting compiles it."""
    offset_x, offset_y = rois[:, 0], rois[:, 1]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil, heights_ceil = widths.ceil(), heights.ceil()
    num_keypoints = maps.shape[1]
    width_corrections, height_corrections = widths / widths_ceil, heights / heights_ceil
    rows: List[Tensor] = [maps.new_zeros(0, num_keypoints, 4)]  # (no detection: the empty (0, K, 4))
    for i in range(rois.shape[0]):
        size = (int(heights_ceil[i]), int(widths_ceil[i]))
        roi_map = F.interpolate(maps[i:i + 1], size=size, mode="bicubic", align_corners=False)[0]
        max_score = roi_map.reshape(num_keypoints, -1).max(1)[0].reshape(num_keypoints, 1, 1)  # (K, 1, 1)
        full = (roi_map - max_score).exp()
        pooled = (maps[i] - max_score).exp()
        scores = full / pooled.sum((1, 2), keepdim=True)
        w = roi_map.shape[2]
        flat = roi_map.reshape(num_keypoints, -1)
        pos = flat.argmax(1, keepdim=True)  # the peak: (K, 1) in the flattened map
        x_int = pos[:, 0] % w
        y_int = torch.div(pos[:, 0] - x_int, w, rounding_mode="floor")
        x = (x_int.to(maps.dtype) + 0.5) * width_corrections[i] + offset_x[i]
        y = (y_int.to(maps.dtype) + 0.5) * height_corrections[i] + offset_y[i]
        logit, score = flat.gather(1, pos)[:, 0], scores.reshape(num_keypoints, -1).gather(1, pos)[:, 0]
        rows.append(torch.stack([x, y, logit, score], dim=1).unsqueeze(0))
    return torch.cat(rows)


def with_keypoints(result: List[Dict[str, Tensor]], logits: Tensor) -> List[Dict[str, Tensor]]:
    """Each image's detections with their ``keypoints`` and ``keypoints_scores``, decoded from the keypoint head's
    ``logits`` (one heatmap stack per detection, the images' detections in order)."""
    boxes = [r["boxes"] for r in result]
    found = heatmaps_to_keypoints(logits.detach(), torch.cat(boxes)).split([b.shape[0] for b in boxes])  # (not len())
    for r, k in zip(result, found):
        r["keypoints"] = k[:, :, [0, 1, 3]]
        r["keypoints_scores"] = k[:, :, 2]
    return result


class D2KeypointRoIHeads(D2RoIHeads):
    """The RoI heads with detectron2's keypoint branch (torchvision's own keypoint branch stays off: its
    ``keypoint_roi_pool`` is None). Each detection gets ``keypoints`` (K, 3): x, y and detectron2's keypoint score
    (``pred_keypoints``), and ``keypoints_scores`` (K): the heatmap logit at the peak. Inference only."""

    def has_keypoint(self) -> bool:
        return self._modules.get("d2_keypoint_pool") is not None  # set by the keypoint builder

    def forward(self, features: Dict[str, Tensor], proposals: List[Tensor], image_shapes: List[Tuple[int, int]],
                targets: Optional[List[Dict[str, Tensor]]] = None
                ) -> Tuple[List[Dict[str, Tensor]], Dict[str, Tensor]]:
        torch._assert(targets is None and not self.training, "the detectron2 keypoint heads are for inference only")
        result = self.detect(features, proposals, image_shapes)
        logits = self.keypoint_head(self.d2_keypoint_pool(features, [r["boxes"] for r in result], image_shapes))
        return with_keypoints(result, logits), {}
