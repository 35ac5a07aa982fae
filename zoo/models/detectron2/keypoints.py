"""detectron2's keypoint branch: ``KRCNNConvDeconvUpsampleHead`` (3x3 convolutions ``conv_fcn1..N`` with ReLUs, a 4x4
stride-2 ``score_lowres`` deconvolution, then 2x bilinear upsampling) and ``heatmaps_to_keypoints`` (each heatmap
resized bicubically to its box's ceiled size, the peak's pixel centre scaled back into the box, its logit and its
score: the peak's probability under a softmax over the heatmap's own resolution). The decoding loops over the
detections, each at its own size: TorchScript compiles the loop (scripting, and under tracing: a trace would freeze
it at the example's count), torch.export writes it as a ``torch.while_loop``. The heads run the box branch
(``D2RoIHeads.detect``), then this one: TorchScript compiles no ``super()`` call."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .heads import D2RoIHeads
from .layers import conv_relus
from .modes import exporting, fresh, loop_over


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


def _decode(heatmaps: Tensor, height: int, width: int, width_correction: Tensor, height_correction: Tensor,
            offset_x: Tensor, offset_y: Tensor) -> Tensor:
    """One detection's (K, 4) keypoints: its heatmaps (K, h, w) resized bicubically to (``height``, ``width``), each
    peak's pixel centre times the corrections (the box's size over its ceiling) plus the offsets (the box's corner),
    the peak's logit and its score."""
    num_keypoints = heatmaps.shape[0]
    roi_map = F.interpolate(heatmaps.unsqueeze(0), size=(height, width), mode="bicubic", align_corners=False)[0]
    max_score = roi_map.reshape(num_keypoints, -1).max(1)[0].reshape(num_keypoints, 1, 1)  # (K, 1, 1)
    full = (roi_map - max_score).exp()
    pooled = (heatmaps - max_score).exp()
    scores = full / pooled.sum((1, 2), keepdim=True)
    w = roi_map.shape[2]
    flat = roi_map.reshape(num_keypoints, -1)
    pos = flat.argmax(1, keepdim=True)  # the peak: (K, 1) in the flattened map
    x_int = pos[:, 0] % w
    y_int = torch.div(pos[:, 0] - x_int, w, rounding_mode="floor")
    x = (x_int.to(heatmaps.dtype) + 0.5) * width_correction + offset_x
    y = (y_int.to(heatmaps.dtype) + 0.5) * height_correction + offset_y
    logit, score = flat.gather(1, pos)[:, 0], scores.reshape(num_keypoints, -1).gather(1, pos)[:, 0]
    return torch.stack([x, y, logit, score], dim=1)


def _box_terms(rois: Tensor) -> List[Tensor]:
    """Each box's ceiled height and width, width and height over their ceilings, and corner x and y: (N,) each."""
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil, heights_ceil = widths.ceil(), heights.ceil()
    return [heights_ceil, widths_ceil, widths / widths_ceil, heights / heights_ceil, rois[:, 0], rois[:, 1]]


@torch.jit._script_if_tracing
def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> Tensor:
    """(#rois, K, 4): x, y, logit and score per keypoint (detectron2's ``heatmaps_to_keypoints``). A loop over the
    detections, each heatmap at its own box's size: eager runs it as Python, a trace records it as a TorchScript loop
    (``torch.jit._script_if_tracing``; the ONNX exporter as a ``Loop``), scripting compiles it; torch.export takes
    ``keypoints_by_while_loop``."""
    heights_ceil, widths_ceil, width_corrections, height_corrections, offset_x, offset_y = _box_terms(rois)
    rows: List[Tensor] = [maps.new_zeros(0, maps.shape[1], 4)]  # (no detection: the empty (0, K, 4))
    for i in range(rois.shape[0]):
        rows.append(_decode(maps[i], int(heights_ceil[i]), int(widths_ceil[i]), width_corrections[i],
                            height_corrections[i], offset_x[i], offset_y[i]).unsqueeze(0))
    return torch.cat(rows)


# a bound on a box's ceiled side, for torch.export's checks (boxes lie in the resized image: at most MAX_SIZE_TEST)
MAX_BOX_SIDE = 1 << 16


@torch.jit.unused
def keypoints_by_while_loop(maps: Tensor, rois: Tensor) -> Tensor:
    """``heatmaps_to_keypoints`` for torch.export: the same loop as ``torch.while_loop`` (a Python loop would unroll
    at the example's count of detections, a data-dependent size), each box's ceiled size read as fresh symbols
    inside the body; the same values."""
    terms = _box_terms(rois)  # (one tensor each for the sizes and the factors: a loop takes no aliased inputs)
    sizes = torch.stack(terms[:2], 1).to(torch.int64)  # (N, 2): each box's ceiled height and width
    factors = torch.stack(terms[2:], 1)  # (N, 4): the corrections and offsets

    def body(i: Tensor, out: Tensor) -> Tuple[Tensor]:
        at = i.reshape(1)
        height, width = (fresh(side, MAX_BOX_SIDE) for side in sizes.index_select(0, at)[0].unbind())
        row = _decode(maps.index_select(0, at)[0], height, width, *factors.index_select(0, at)[0].unbind())
        return (out.index_copy(0, at, row[None]),)

    return loop_over(rois.shape[0], body, (maps.new_zeros(rois.shape[0], maps.shape[1], 4),))[0]


def with_keypoints(result: List[Dict[str, Tensor]], logits: Tensor) -> List[Dict[str, Tensor]]:
    """Each image's detections with their ``keypoints`` and ``keypoints_scores``, decoded from the keypoint head's
    ``logits`` (one heatmap stack per detection, the images' detections in order)."""
    boxes = [r["boxes"] for r in result]
    rois = torch.cat(boxes)
    decoded = keypoints_by_while_loop(logits.detach(), rois) if not torch.jit.is_scripting() and exporting() else \
        heatmaps_to_keypoints(logits.detach(), rois)
    found = decoded.split([b.shape[0] for b in boxes])  # (not len())
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
