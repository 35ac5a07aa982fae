"""Make torchvision detection models export to graphs that behave like eager PyTorch.

Three defects of traced graphs, each measured by tests/test_patches.py, are fixed here:

* ``ExactResizeTransform`` computes the resized image size the way eager PyTorch does (``floor(size * scale)`` in
  float64). torchvision computes it in float32 under tracing and scripting, which makes ~12-15% of input sizes
  come out 1 px smaller and then gives wrong boxes. The size is computed from 1-D float64 tensors under tracing
  because the legacy ONNX exporter silently casts 0-dim float64 tensors to float32.
* ``trace_safe()`` replaces, while a model is traced, two functions whose data-dependent branches tracing freezes:
  ``BoxCoder.decode`` (``if box_sum > 0`` crashes on an image without proposals) and batched NMS (tracing records
  the coordinate trick: ``boxes.max()`` of an empty tensor crashes onnxruntime, and one NMS over all classes at once
  is slow); the replacement runs NMS per label, as eager does on CPU for large inputs. It also replaces mask
  pasting: tracing records torchvision's ONNX loop, which grows the output with one ``cat`` per detection (quadratic
  copying: 1.5 s of a traced Mask R-CNN call); the replacement pastes all masks at once with two batched matmuls.
  And RetinaNet's candidate selection takes the top-k before the score threshold (the same set), which spares
  onnxruntime a NonZero over the whole score map.
"""

import contextlib
import math
from typing import Dict, List, Optional, Tuple

import torch
import torchvision
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection import roi_heads
from torchvision.models.detection import transform as det_transform
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import boxes as box_ops


@torch.jit.unused
def _traced_size(image: Tensor, min_size: float, max_size: float) -> List[int]:
    # Under tracing: a dynamic size, from 1-D float64 tensors (0-dim ones would be exported as float32).
    # Divide tensors, never `float / tensor`: PyTorch computes that as reciprocal() * float, which rounds
    # differently from eager's Python division and lands 1 px off at some sizes (311x400 at min_size 320).
    hw = torch._shape_as_tensor(image)[-2:].to(torch.float64)
    scale = torch.minimum(hw.new_full((1,), min_size) / hw.amin(0, keepdim=True),
                          hw.new_full((1,), max_size) / hw.amax(0, keepdim=True))
    size = torch.floor(hw * scale).to(torch.int64)
    return [size[0], size[1]]  # type: ignore[list-item]  # tensors stand in for ints while tracing


class ExactResizeTransform(GeneralizedRCNNTransform):
    """``GeneralizedRCNNTransform`` whose inference resize matches eager PyTorch under tracing and scripting."""

    def resize(
        self, image: Tensor, target: Optional[Dict[str, Tensor]] = None
    ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        torch._assert(target is None and not self.training, "the export transform is for inference only")
        fixed = self.fixed_size
        if fixed is not None:
            size = [fixed[1], fixed[0]]
        elif torchvision._is_tracing():
            size = _traced_size(image, float(self.min_size[-1]), float(self.max_size))
        else:
            h, w = image.shape[-2], image.shape[-1]
            scale = min(float(self.min_size[-1]) / min(h, w), float(self.max_size) / max(h, w))
            size = [int(math.floor(h * scale)), int(math.floor(w * scale))]
        image = torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        return image, target

    @classmethod
    def replacing(cls, transform: GeneralizedRCNNTransform) -> "ExactResizeTransform":
        new = cls(
            transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
            size_divisible=transform.size_divisible, fixed_size=transform.fixed_size,
        )
        return new.train(transform.training)


def make_exportable(model: torch.nn.Module) -> torch.nn.Module:
    """Swap in the exact-resize transform (in place); the weights are untouched."""
    model.transform = ExactResizeTransform.replacing(model.transform)
    return model


def _decode(self: det_utils.BoxCoder, rel_codes: Tensor, boxes: List[Tensor]) -> Tensor:
    # BoxCoder.decode without the `if box_sum > 0` branches; the reshapes are no-ops for non-empty inputs and
    # also hold for zero boxes, where the original's frozen branch made `reshape(0, -1)` fail.
    concat_boxes = torch.cat(boxes, dim=0)
    rel_codes = rel_codes.reshape(concat_boxes.shape[0], rel_codes.shape[-1])
    pred_boxes = self.decode_single(rel_codes, concat_boxes)
    return pred_boxes.reshape(-1, rel_codes.shape[-1] // 4, 4)


def nms_groups(model: torch.nn.Module, num_classes: int) -> int:
    """How many label values batched NMS can see in ``model``: its classes, or the RPN's feature levels if more."""
    rpn = getattr(model, "rpn", None)
    levels = len(rpn.anchor_generator.sizes) if rpn is not None else 0
    return max(num_classes, levels)


def _per_group_nms(groups: int):
    """torchvision's ``_batched_nms_vanilla`` (what eager runs on CPU above 4000 boxes), unrolled over every possible
    label ``0..groups-1`` instead of ``torch.unique(idxs)``: an absent label selects no box, so the result is the same,
    and the loop no longer depends on the data. It also replaces the coordinate trick, which tracing otherwise
    records: that trick runs one NMS over all classes at once (671 of 767 ms of a traced ssdlite on 27k boxes) and
    takes ``boxes.max()``, which crashes onnxruntime on an empty tensor."""

    def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for group in range(groups):
            indices = torch.where(idxs == group)[0]
            keep = box_ops.nms(boxes[indices], scores[indices], iou_threshold)
            keep_mask[indices[keep]] = True
        keep_indices = torch.where(keep_mask)[0]
        return keep_indices[scores[keep_indices].sort(descending=True)[1]]

    return batched_nms


def _paste_weights(start: Tensor, length: Tensor, size: int, cells: int) -> Tensor:
    """[n, size, cells]: the weights by which image pixel p (along one axis) mixes the ``cells`` of a mask resized to
    ``length`` pixels and pasted at ``start``: F.interpolate's bilinear weights (align_corners=False), zero outside."""
    local = torch.arange(size, dtype=torch.float32, device=start.device)[None, :] - start[:, None].to(torch.float32)
    length = length[:, None].to(torch.float32)
    src = ((torch.full_like(length, cells) / length) * (local + 0.5) - 0.5).clamp(min=0)
    low = src.floor().clamp(max=cells - 1)
    frac = (src - low).clamp(0, 1)
    high = (low + 1).clamp(max=cells - 1)
    cell = torch.arange(cells, dtype=torch.float32, device=start.device)
    weights = ((1 - frac)[..., None] * (cell == low[..., None]).to(torch.float32)
               + frac[..., None] * (cell == high[..., None]).to(torch.float32))
    inside = ((local >= 0) & (local < length)).to(torch.float32)
    return weights * inside[..., None]


def _paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: Tuple[int, int], padding: int = 1) -> Tensor:
    """torchvision's paste_masks_in_image (same padding, box expansion, resize and crop) for all masks at once:
    rows @ mask @ cols^T, where rows and cols hold the bilinear resize weights placed at each box."""
    masks, scale = roi_heads.expand_masks(masks, padding=padding)
    boxes = roi_heads.expand_boxes(boxes, scale).to(dtype=torch.int64)
    im_h, im_w = img_shape
    cells = masks.shape[-1]
    rows = _paste_weights(boxes[:, 1], (boxes[:, 3] - boxes[:, 1] + 1).clamp(min=1), im_h, cells)
    cols = _paste_weights(boxes[:, 0], (boxes[:, 2] - boxes[:, 0] + 1).clamp(min=1), im_w, cells)
    return torch.bmm(torch.bmm(rows, masks[:, 0]), cols.transpose(1, 2))[:, None]


def _top_candidates(logits: Tensor, k: int, threshold: float) -> Tuple[Tensor, Tensor]:
    """The best ``k`` sigmoid scores above ``threshold`` and their flat indices, best first: eager thresholds the whole
    score map first (a NonZero over ~11M values at RetinaNet's first level, ~10% of an onnxruntime call), then takes
    the top k; taking the top k first and then thresholding gives the same set (up to ties at the k-th score)."""
    scores = torch.sigmoid(logits).flatten()
    scores, idxs = scores.topk(det_utils._topk_min(scores, k, 0))
    keep = scores > threshold
    return scores[keep], idxs[keep]


def _retinanet_postprocess(self: RetinaNet, head_outputs: Dict[str, List[Tensor]], anchors: List[List[Tensor]],
                           image_shapes: List[Tuple[int, int]]) -> List[Dict[str, Tensor]]:
    # RetinaNet.postprocess_detections with the candidate selection of _top_candidates; the rest is unchanged.
    detections: List[Dict[str, Tensor]] = []
    for index in range(len(image_shapes)):
        image_boxes, image_scores, image_labels = [], [], []
        for box_regression, logits, level_anchors in zip([br[index] for br in head_outputs["bbox_regression"]],
                                                         [cl[index] for cl in head_outputs["cls_logits"]],
                                                         anchors[index]):
            num_classes = logits.shape[-1]
            scores, topk_idxs = _top_candidates(logits, self.topk_candidates, self.score_thresh)
            anchor_idxs = torch.div(topk_idxs, num_classes, rounding_mode="floor")
            boxes = self.box_coder.decode_single(box_regression[anchor_idxs], level_anchors[anchor_idxs])
            image_boxes.append(box_ops.clip_boxes_to_image(boxes, image_shapes[index]))
            image_scores.append(scores)
            image_labels.append(topk_idxs % num_classes)
        boxes, scores, labels = torch.cat(image_boxes), torch.cat(image_scores), torch.cat(image_labels)
        keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        detections.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return detections


TRACE_SAFE = "trace_safe decode, per-label NMS, batched mask paste, RetinaNet top-k before threshold"


@contextlib.contextmanager
def trace_safe(groups: int):
    """Within this block, tracing records data-dependent branches of torchvision in a shape-generic way (what it
    replaces is named in ``TRACE_SAFE``, recorded in each artifact's provenance). ``groups``: the number of label values batched NMS can meet (see ``nms_groups``)."""
    saved = (det_utils.BoxCoder.decode, box_ops._batched_nms_coordinate_trick, det_transform.paste_masks_in_image,
             RetinaNet.postprocess_detections)
    det_utils.BoxCoder.decode = _decode
    box_ops._batched_nms_coordinate_trick = _per_group_nms(groups)
    det_transform.paste_masks_in_image = _paste_masks_in_image
    RetinaNet.postprocess_detections = _retinanet_postprocess
    try:
        yield
    finally:
        (det_utils.BoxCoder.decode, box_ops._batched_nms_coordinate_trick, det_transform.paste_masks_in_image,
         RetinaNet.postprocess_detections) = saved


class FlatOutputs(torch.nn.Module):
    """The exported interface: a list of images in, a flat list of tensors out.

    For image i the outputs are ``out[i * len(keys) + j] = detections[i][keys[j]]``. Every exporter uses this one
    convention (tracing cannot return dicts, ONNX has no dicts), and so do the runtimes and the C++ example.
    """

    def __init__(self, model: torch.nn.Module, keys: List[str]):
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, images: List[Tensor]) -> List[Tensor]:
        if torch.jit.is_scripting():
            detections = self.model(images)[1]
        else:
            detections = self.model(images)
        flat: List[Tensor] = []
        for det in detections:
            for key in self.keys:
                flat.append(det[key])
        return flat
