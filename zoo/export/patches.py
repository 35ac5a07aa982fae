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
* ``export_safe()`` adds what ``torch.export`` (symbolic sizes, see docs/torch-export.md) needs on top of
  ``trace_safe()``: ``SymbolicResizeTransform`` (the resize scale as ``sym_min`` and the padded size as an integer
  ceiling, where Python's ``min`` and ``math.ceil(float(...))`` would fix the example's size), ``batched_nms`` without
  its branch on the data-dependent box count, the RoI pooler without ``len(rois)``, and torchvision's fake ``nms``
  kernel without its minimum of 2 kept boxes (which makes every exported program fail on an image with 0 or 1
  detections).
"""

import contextlib
import math
from typing import Dict, List, Optional, Tuple

import torch
import torchvision
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
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


def symbolic_size(h, w, min_size: float, max_size: float) -> List[int]:
    """Eager's resized size, ``floor(size * min(min_size / min(h, w), max_size / max(h, w)))`` in double precision,
    written so that ``torch.export`` keeps it symbolic: Python's ``min`` would guard on which side is shorter (fixing
    the example's orientation), ``math.floor`` of a symbolic float cannot be serialised, ``math.trunc`` can (and equals
    floor for these positive sizes). With plain ints it returns eager's ints."""
    scale = torch.sym_min(min_size / torch.sym_min(h, w), max_size / torch.sym_max(h, w))
    return [math.trunc(h * scale), math.trunc(w * scale)]


class SymbolicResizeTransform(ExactResizeTransform):
    """The exact-resize transform for ``torch.export``, where image sizes are symbolic integers: the resized size from
    ``symbolic_size`` and the padded batch size from an integer ceiling. torchvision pads to
    ``int(math.ceil(float(size) / 32) * 32)``: the float conversion evaluates the symbol, so the export silently
    specialises to the example's padded size and every other size fails at run time."""

    def resize(
        self, image: Tensor, target: Optional[Dict[str, Tensor]] = None
    ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        if self.fixed_size is not None:
            return super().resize(image, target)
        torch._assert(target is None and not self.training, "the export transform is for inference only")
        size = symbolic_size(image.shape[-2], image.shape[-1], float(self.min_size[-1]), float(self.max_size))
        return torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0], target

    def batch_images(self, images: List[Tensor], size_divisible: int = 32) -> Tensor:
        # zero padding as torchvision's, but by F.pad: its copy into a slice of a zero batch made the export assume
        # the example's padding (none at 320x416) for every size
        height = (max(im.shape[1] for im in images) + size_divisible - 1) // size_divisible * size_divisible
        width = (max(im.shape[2] for im in images) + size_divisible - 1) // size_divisible * size_divisible
        return torch.stack([torch.nn.functional.pad(im, (0, width - im.shape[2], 0, height - im.shape[1]))
                            for im in images])


class Float64ResizeTransform(SymbolicResizeTransform):
    """The symbolic transform for the dynamo ONNX exporter, which writes symbolic size arithmetic (``symbolic_size``)
    as float32 ONNX Cast/Div/Mul: measured, 3.2% (min_size 320) / 7.4% (min_size 800) of sizes in [200, 1200]^2 then
    came out 1 px off, with no box matched at e.g. 308x437. Here the resized size is computed from float64 tensors
    (an ONNX graph keeps a tensor's dtype; eager computes in Python's double precision) and read back with
    ``.item()``, so the ONNX graph computes eager's size."""

    def resize(
        self, image: Tensor, target: Optional[Dict[str, Tensor]] = None
    ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        if self.fixed_size is not None:
            return super().resize(image, target)
        torch._assert(target is None and not self.training, "the export transform is for inference only")
        h = torch.scalar_tensor(image.shape[-2], dtype=torch.float64)
        w = torch.scalar_tensor(image.shape[-1], dtype=torch.float64)
        scale = torch.minimum(torch.full_like(h, float(self.min_size[-1])) / torch.minimum(h, w),
                              torch.full_like(h, float(self.max_size)) / torch.maximum(h, w))
        new_h = torch.floor(h * scale).to(torch.int64).item()
        new_w = torch.floor(w * scale).to(torch.int64).item()
        torch._check(new_h >= 1)
        torch._check(new_w >= 1)
        size = [new_h, new_w]
        return torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0], target


FLOAT64_RESIZE = "Float64ResizeTransform (the resized size from float64 tensors, for the dynamo ONNX exporter)"
TRANSFORMS = {"exact": ExactResizeTransform, "symbolic": SymbolicResizeTransform, "float64": Float64ResizeTransform}


class DeviceSafeDefaultBoxGenerator(DefaultBoxGenerator):
    """SSD's default-box generator with its grid made on the device of its box sizes. torchvision makes the grid on
    the CPU and keeps the sizes (``_wh_pairs``) in a plain list, which stays on the CPU in eager mode; but
    ``torch.jit.freeze`` inlines that list as constants, which ``torch.jit.load(map_location="cuda")`` moves to the GPU:
    measured on an H200, every scripted SSD failed on CUDA with "Expected all tensors to be on the same device" in
    ``torch.cat((shifts, wh_pairs))``. The same values on either device."""

    def _grid_default_boxes(self, grid_sizes: List[List[int]], image_size: List[int],
                            dtype: torch.dtype = torch.float32) -> Tensor:
        default_boxes = []
        for k, f_k in enumerate(grid_sizes):
            if self.steps is not None:
                x_f_k = image_size[1] / self.steps[k]
                y_f_k = image_size[0] / self.steps[k]
            else:
                y_f_k, x_f_k = f_k
            device = self._wh_pairs[k].device
            shifts_x = ((torch.arange(0, f_k[1], device=device) + 0.5) / x_f_k).to(dtype=dtype)
            shifts_y = ((torch.arange(0, f_k[0], device=device) + 0.5) / y_f_k).to(dtype=dtype)
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x = shift_x.reshape(-1)
            shift_y = shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y) * len(self._wh_pairs[k]), dim=-1).reshape(-1, 2)
            _wh_pair = self._wh_pairs[k].clamp(min=0, max=1) if self.clip else self._wh_pairs[k]
            wh_pairs = _wh_pair.repeat((f_k[0] * f_k[1]), 1)
            default_boxes.append(torch.cat((shifts, wh_pairs), dim=1))
        return torch.cat(default_boxes, dim=0)


def device_safe_default_boxes(model: torch.nn.Module) -> torch.nn.Module:
    """Give an SSD model (in place) ``DeviceSafeDefaultBoxGenerator``; other models are returned as they are."""
    generator = getattr(model, "anchor_generator", None)
    if type(generator) is DefaultBoxGenerator:
        generator.__class__ = DeviceSafeDefaultBoxGenerator
    return model


def frozen_head_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Replace (in place) the ``BatchNorm2d`` layers of the RoI heads by torchvision's ``FrozenBatchNorm2d`` with the
    same statistics: the same eval-mode arithmetic (``x * scale + shift``; within float rounding). ``batch_norm`` checks
    whether its input is empty, a guard on the data-dependent RoI count that stops torch.export in the heads of the v2
    models (measured: ``GuardOnDataDependentSymNode: Eq(12544*Min(1000, u185), 0)`` in Faster R-CNN v2's box head)."""
    from torchvision.ops.misc import FrozenBatchNorm2d
    heads = getattr(model, "roi_heads", None)
    if heads is None:
        return model
    for parent in heads.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.BatchNorm2d) and child.track_running_stats:
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key).detach())
                setattr(parent, name, frozen)
    return model


def make_exportable(model: torch.nn.Module, transform: str = "exact") -> torch.nn.Module:
    """Swap in an exact-resize transform (in place; ``TRANSFORMS``: ``symbolic`` for torch.export, ``float64`` for
    the dynamo ONNX exporter, which also get ``frozen_head_batch_norms``); the weights' values are untouched."""
    model.transform = TRANSFORMS[transform].replacing(model.transform)
    if transform != "exact":
        frozen_head_batch_norms(model)
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


def _multiscale_roi_align(x_filtered: List[Tensor], boxes: List[Tensor], output_size: List[int], sampling_ratio: int,
                          scales: Optional[List[float]], mapper) -> Tensor:
    """torchvision's ``_multiscale_roi_align`` (eager path) with ``rois.shape[0]`` for ``len(rois)``: ``len`` must
    return a Python int, which a data-dependent RoI count under torch.export is not."""
    from torchvision.ops import poolers, roi_align
    rois = poolers._convert_to_roi_format(boxes)
    if len(x_filtered) == 1:
        return roi_align(x_filtered[0], rois, output_size=output_size, spatial_scale=scales[0],
                         sampling_ratio=sampling_ratio)
    levels = mapper(boxes)
    result = x_filtered[0].new_zeros((rois.shape[0], x_filtered[0].shape[1], *output_size))
    for level, (feature, scale) in enumerate(zip(x_filtered, scales)):
        idx = torch.where(levels == level)[0]
        pooled = roi_align(feature, rois[idx], output_size=output_size, spatial_scale=scale,
                           sampling_ratio=sampling_ratio)
        result[idx] = pooled.to(result.dtype)
    return result


def _export_nms(groups: int):
    """The per-label NMS of ``trace_safe`` for torch.export, on the boxes re-indexed by ``where(all true)``: the same
    rows, but their count becomes one fresh size symbol. Without that, the count is the sum over every class of
    ``Min(u_i, k)`` (SSD's per-class top-k) and that expression is written into the shape of each of the loop's ~2500
    tensors: loading ssdlite's program then took 95 s here, 90% of it sympy parsing those expressions."""
    per_group = _per_group_nms(groups)

    def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
        rows = torch.where(torch.ones_like(scores, dtype=torch.bool))[0]
        return per_group(boxes[rows], scores[rows], idxs[rows], iou_threshold)

    return batched_nms


def _fake_nms(dets: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    # torchvision's fake kernel (its shape checks are kept by the real kernel at run time) with a kept-box count of
    # 0 or more: its ``create_unbacked_symint()`` defaults to a minimum of 2, which the exported program then asserts.
    ctx = torch.library.get_ctx()
    return dets.new_empty(ctx.new_dynamic_size(), dtype=torch.long)


def _keypoints_by_while_loop(maps: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """torchvision's ``heatmaps_to_keypoints`` with its loop over the detections as a ``torch.while_loop`` (a Python
    loop stops torch.export at the data-dependent count): each box's ceiled size read as fresh symbols inside the
    body, the same arithmetic per detection, the same values."""
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    # one tensor each for the sizes and the box terms: a loop takes no aliased inputs
    sizes = torch.stack([heights.ceil(), widths.ceil()], 1).to(torch.int64)
    terms = torch.stack([widths, heights, rois[:, 0], rois[:, 1]], 1)
    num_keypoints = maps.shape[1]
    count = torch.scalar_tensor(rois.shape[0], dtype=torch.int64, device=maps.device)  # (a symbol is no loop input)

    def body(i: Tensor, xy: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        at = i.reshape(1)
        height, width = (side.item() for side in sizes.index_select(0, at)[0].unbind())
        for side in (height, width):
            torch._check(side >= 1)
            torch._check(side <= MAX_SIDE_CHECK)
        box_w, box_h, offset_x, offset_y = terms.index_select(0, at)[0].unbind()
        roi_map = torch.nn.functional.interpolate(maps.index_select(0, at)[0][:, None], size=(height, width),
                                                  mode="bicubic", align_corners=False)[:, 0]
        pos = roi_map.reshape(num_keypoints, -1).argmax(dim=1)
        x_int = pos % width
        y_int = torch.div(pos - x_int, width, rounding_mode="floor")
        x = (x_int.float() + 0.5) * (box_w / width) + offset_x
        y = (y_int.float() + 0.5) * (box_h / height) + offset_y
        row = torch.stack([x, y, torch.ones_like(x)])[None]  # (1, 3, K)
        score = roi_map[torch.arange(num_keypoints, device=roi_map.device), y_int, x_int][None]
        return i + 1, xy.index_copy(0, at, row), scores.index_copy(0, at, score)

    start = torch.zeros((), dtype=torch.int64, device=maps.device)
    xy = torch.zeros((rois.shape[0], 3, num_keypoints), dtype=torch.float32, device=maps.device)
    scores = torch.zeros((rois.shape[0], num_keypoints), dtype=torch.float32, device=maps.device)
    _, xy, scores = torch.while_loop(lambda i, xy, scores: i < count, body, (start, xy, scores))
    return xy.permute(0, 2, 1), scores


MAX_SIDE_CHECK = 1 << 16  # a bound on a box's ceiled side, for torch.export's checks

EXPORT_SAFE = ("SymbolicResizeTransform, batched_nms without its box-count branch, RoI pooling without len(rois), "
               "nms fake kernel with 0+ kept boxes, the keypoint decoding as a while_loop")


@contextlib.contextmanager
def export_safe(groups: int):
    """``trace_safe(groups)`` plus the replacements ``torch.export`` needs (``EXPORT_SAFE``). Use it with a model made
    by ``make_exportable(model, "symbolic")``. ``batched_nms`` becomes the per-label NMS of ``trace_safe``
    (see ``_export_nms``): torchvision's picks its implementation by ``boxes.numel() > 4000``, a guard on a
    data-dependent size."""
    from torchvision.ops import poolers
    saved = (box_ops.batched_nms, poolers._multiscale_roi_align, roi_heads.heatmaps_to_keypoints)
    library = torch.library.Library("torchvision", "FRAGMENT")
    with trace_safe(groups):
        try:
            torch.library.register_fake("torchvision::nms", _fake_nms, lib=library)
            box_ops.batched_nms = _export_nms(groups)
            poolers._multiscale_roi_align = _multiscale_roi_align
            roi_heads.heatmaps_to_keypoints = _keypoints_by_while_loop
            yield
        finally:
            box_ops.batched_nms, poolers._multiscale_roi_align, roi_heads.heatmaps_to_keypoints = saved
            library._destroy()  # torchvision's own fake kernel is back


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
