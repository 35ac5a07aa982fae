"""detectron2's Panoptic FPN (``PanopticFPN``; builder ``zoo.models.detectron2.panoptic:panoptic_fpn``): a Mask R-CNN
with detectron2's semantic FPN head beside its instance branch, and the merge of the two into a panoptic segmentation,
all in the model (and so in every artifact: tracing, scripting and ONNX carry the merge in their graphs).

* The **semantic head** (``SemSegFPNHead``): each of ``p2..p5`` through 3x3 convolutions (GroupNorm, ReLU) and 2x
  bilinear upsamplings down to ``COMMON_STRIDE``, summed, a 1x1 predictor, then upsampled by ``COMMON_STRIDE``;
  the logits are cropped to the resized image and resized (bilinear) to the input's size (``sem_seg_postprocess``).
* The **merge** (``combine_semantic_and_instance_outputs``): the detections in score order, from those at
  ``INSTANCES_CONFIDENCE_THRESH`` or more, each mask (``>= 0.5``) placed where it overlaps the segments already
  placed by at most ``OVERLAP_THRESH`` of its area (on the pixels still free); then each stuff class of the semantic
  argmax (not channel 0, detectron2's "things") on the pixels still free, where it has ``STUFF_AREA_LIMIT`` pixels or
  more. The instance loop runs in the graph (``torch.jit._script_if_tracing``: a trace records it as a loop, ONNX as
  a ``Loop``), branch-free; the stuff step is vectorised.

Outputs per image, besides Mask R-CNN's: ``sem_seg`` (C, H, W) float logits, ``panoptic_seg`` (H, W) int32 segment
ids (0: no segment) and ``segments_info`` (S, 5) int64, one row a segment: id, category (a thing's label, 1 + its
detectron2 class, or a stuff's ``sem_seg`` channel), isthing (1 or 0), instance (the detection's index, -1 for
stuff), area (pixels). Parameter names are detectron2's (``sem_seg_head.p4.2.norm.weight``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from .modes import exporting, loop_over
from .rcnn import FPN_STRIDES, mask_rcnn

SEGMENT_COLUMNS = ("id", "category", "isthing", "instance", "area")  # segments_info's columns


class ConvNormReLU(nn.Conv2d):
    """detectron2's ``Conv2d(..., norm=get_norm(norm), activation=F.relu)``: GroupNorm of 32 groups as ``.norm``
    (no bias) for ``"GN"``, a bias and no norm for ``""``."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=not norm)
        self.norm = nn.GroupNorm(32, out_channels) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self._conv_forward(x, self.weight, self.bias)
        if not torch.jit.is_scripting() and exporting():
            more_than_one_pixel(x)
        return F.relu(self.norm(x))


@torch.jit.unused
def more_than_one_pixel(x: Tensor) -> None:
    """Tell torch.export that a feature map has more than one value per channel, as GroupNorm checks (a guard on
    the fresh symbols of the resized size, ``transform.fresh_size``, that it could not decide): true of any image
    detectron2's size rule resizes, whose long side is at least min(MIN_SIZE_TEST, MAX_SIZE_TEST), far above the
    coarsest level's stride."""
    torch._check(x.shape[0] * x.shape[-2] * x.shape[-1] > 1)


class SemSegFPNHead(nn.Module):
    """(N, C, H, W) logits at the padded image's size from the FPN levels ``in_features`` (strides ``strides``). Its
    modules are named as detectron2's (``p2``.. and ``predictor``); under ``torch.jit.script`` it becomes a
    ``ScriptableSemSegHead`` (``__prepare_scriptable__``)."""

    def __init__(self, in_features: Sequence[str], strides: Sequence[int], in_channels: int, num_classes: int,
                 conv_dims: int, common_stride: int, norm: str):
        super().__init__()
        self.in_features = list(in_features)
        self.common_stride = int(common_stride)
        for name, stride in zip(self.in_features, strides):
            layers: List[nn.Module] = []
            for k in range(max(1, stride.bit_length() - common_stride.bit_length())):  # log2(stride / common)
                layers.append(ConvNormReLU(in_channels if k == 0 else conv_dims, conv_dims, norm))
                if stride != common_stride:
                    layers.append(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
            self.add_module(name, nn.Sequential(*layers))
        self.predictor = nn.Conv2d(conv_dims, num_classes, 1)

    @property
    def scale_heads(self) -> List[nn.Module]:
        return [getattr(self, name) for name in self.in_features]

    def forward(self, features: Dict[str, Tensor]) -> Tensor:
        x = features[self.in_features[0]]  # (TorchScript wants it defined before the loop)
        for i, head in enumerate(self.scale_heads):
            y = head(features[self.in_features[i]])
            x = y if i == 0 else x + y
        return F.interpolate(self.predictor(x), scale_factor=float(self.common_stride), mode="bilinear",
                             align_corners=False)

    def __prepare_scriptable__(self) -> "ScriptableSemSegHead":
        return ScriptableSemSegHead(self)


class ScriptableSemSegHead(nn.Module):
    """What ``torch.jit.script`` compiles for a ``SemSegFPNHead``: its scale heads in a module list."""

    def __init__(self, head: SemSegFPNHead):
        super().__init__()
        self.in_features = head.in_features
        self.common_stride = head.common_stride
        self.scale_heads = nn.ModuleList(head.scale_heads)
        self.predictor = head.predictor

    forward = SemSegFPNHead.forward


def sem_seg_postprocess(logits: Tensor, size: Tuple[int, int], original: Tuple[int, int]) -> Tensor:
    """detectron2's ``sem_seg_postprocess``: (C, H, W) logits of the padded image cropped to the resized image's
    ``size`` and resized (bilinear) to the input's ``original`` size."""
    cropped = logits[:, : size[0], : size[1]].unsqueeze(0)
    return F.interpolate(cropped, size=(original[0], original[1]), mode="bilinear", align_corners=False)[0]


def _place(mask: Tensor, kept: Tensor, at: Tensor, order: Tensor, panoptic: Tensor, ids: Tensor, count: Tensor,
           overlap: float) -> Tuple[Tensor, Tensor, Tensor]:
    """One step of the merge's instance loop: instance ``at`` (its ``mask`` (H, W) bool, ``kept`` its score at the
    threshold or more) is placed when kept, not empty and overlapping the segments placed before it by at most
    ``overlap`` of its area; it gets the pixels still free. Returns the new ``panoptic``, ``ids`` and ``count``."""
    area = mask.sum()
    taken = (mask & (panoptic > 0)).sum()
    # detectron2: intersect_area * 1.0 / mask_area > overlap (in Python floats: float64)
    fits = taken.to(torch.float64) / area.clamp(min=1).to(torch.float64) <= overlap
    placed = kept & (area > 0) & fits
    count = count + placed.to(torch.int32)
    return torch.where(mask & placed & (panoptic == 0), count, panoptic), torch.where((order == at) & placed, count,
                                                                                    ids), count


def _start(masks: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The loop's state before the first instance: segment ids (H, W), instance ids (N,), their order and count."""
    n = masks.shape[0]
    return (torch.zeros([masks.shape[1], masks.shape[2]], dtype=torch.int32, device=masks.device),
            torch.zeros([n], dtype=torch.int32, device=masks.device), torch.arange(n, device=masks.device),
            torch.zeros([], dtype=torch.int32, device=masks.device))


@torch.jit._script_if_tracing
def place_things(masks: Tensor, keep: Tensor, overlap: float) -> Tuple[Tensor, Tensor]:
    """The instance half of the merge: ``masks`` (N, H, W) bool in score order, ``keep`` (N,) bool (the score at the
    threshold or more). Returns the (H, W) int32 segment ids and each instance's id (N,) int32 (0: not placed).
    detectron2's loop, branch-free (``_place``); torch.export takes ``things_by_while_loop``."""
    panoptic, ids, order, count = _start(masks)
    for i in range(masks.shape[0]):
        panoptic, ids, count = _place(masks[i], keep[i], order[i], order, panoptic, ids, count, overlap)
    return panoptic, ids


@torch.jit.unused
def things_by_while_loop(masks: Tensor, keep: Tensor, overlap: float) -> Tuple[Tensor, Tensor]:
    """``place_things`` for torch.export: the same loop as ``torch.while_loop`` (a Python loop would unroll at the
    example's count of detections, a data-dependent size); the same values."""
    panoptic, ids, order, count = _start(masks)

    def body(i: Tensor, panoptic: Tensor, ids: Tensor, count: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        at = i.reshape(1)
        return _place(masks.index_select(0, at)[0], keep.index_select(0, at)[0], i, order, panoptic, ids, count,
                      overlap)

    panoptic, ids, _ = loop_over(masks.shape[0], body, (panoptic, ids, count))
    return panoptic, ids


def pixel_counts(values: Tensor, bins: int) -> Tensor:
    """How many of ``values`` (int64, in [0, bins)) fall in each bin: (bins,) int64 (a scatter-add, as ONNX has it)."""
    flat = values.reshape(-1)
    return torch.zeros([bins], dtype=torch.int64, device=values.device).scatter_add(0, flat, torch.ones_like(flat))


def combine(masks: Tensor, scores: Tensor, labels: Tensor, semantic: Tensor, num_classes: int, overlap: float,
            stuff_area: float, score_thresh: float) -> Tuple[Tensor, Tensor]:
    """detectron2's ``combine_semantic_and_instance_outputs``: the detections' ``masks`` (N, H, W) probabilities,
    ``scores`` and ``labels``, and the (H, W) int64 semantic argmax over ``num_classes`` channels. Returns
    ``panoptic_seg`` and ``segments_info``: the things in placing order, then the stuff classes in ascending order
    (detectron2's order, and its consecutive ids)."""
    order = torch.argsort(-scores)
    if not torch.jit.is_scripting() and exporting():
        panoptic, ids = things_by_while_loop(masks[order] >= 0.5, scores[order] >= score_thresh, overlap)
    else:
        panoptic, ids = place_things(masks[order] >= 0.5, scores[order] >= score_thresh, overlap)
    things = ids.to(torch.int64)
    placed = torch.nonzero(things > 0).squeeze(1)
    thing_area = pixel_counts(panoptic.to(torch.int64), things.shape[0] + 1)
    free = panoptic == 0
    # the stuff classes: present in the argmax, not channel 0 ("things"), with enough free pixels
    classes = torch.arange(num_classes, device=semantic.device)
    present = pixel_counts(semantic, num_classes) > 0
    stuff_area_of = pixel_counts(torch.where(free, semantic, num_classes), num_classes + 1)[:num_classes]
    stuff = present & (classes > 0) & (stuff_area_of.to(torch.float64) >= stuff_area)
    stuff_ids = torch.where(stuff, (things > 0).sum() + torch.cumsum(stuff.to(torch.int64), 0), 0)
    panoptic = torch.where(free, stuff_ids[semantic].to(torch.int32), panoptic)
    kept = torch.nonzero(stuff).squeeze(1)
    thing_rows = torch.stack([things[placed], labels[order][placed], torch.ones_like(placed), order[placed],
                              thing_area[things[placed]]], dim=1)
    stuff_rows = torch.stack([stuff_ids[kept], kept, torch.zeros_like(kept), torch.full_like(kept, -1),
                              stuff_area_of[kept]], dim=1)
    return panoptic, torch.cat([thing_rows, stuff_rows])


class D2PanopticFPN(GeneralizedRCNN):
    """A Mask R-CNN's modules with ``sem_seg_head`` and the merge's three thresholds; inference only."""

    def __init__(self, rcnn: GeneralizedRCNN, sem_seg_head: SemSegFPNHead, overlap_thresh: float,
                 stuff_area_thresh: float, instances_score_thresh: float):
        super().__init__(rcnn.backbone, rcnn.rpn, rcnn.roi_heads, rcnn.transform)
        self.sem_seg_head = sem_seg_head
        self.num_sem_classes = sem_seg_head.predictor.out_channels
        self.overlap_thresh = float(overlap_thresh)
        self.stuff_area_thresh = float(stuff_area_thresh)
        self.instances_score_thresh = float(instances_score_thresh)

    def forward(self, images: List[Tensor], targets: Optional[List[Dict[str, Tensor]]] = None
                ) -> Tuple[Dict[str, Tensor], List[Dict[str, Tensor]]]:
        torch._assert(targets is None and not self.training, "the detectron2 Panoptic FPN is for inference only")
        original: List[Tuple[int, int]] = []
        for img in images:
            original.append((img.shape[-2], img.shape[-1]))
        batch, _ = self.transform(images, None)
        features = self.backbone(batch.tensors)
        proposals, _ = self.rpn(batch, features, None)
        detections, _ = self.roi_heads(features, proposals, batch.image_sizes, None)
        detections = self.transform.postprocess(detections, batch.image_sizes, original)
        logits = self.sem_seg_head(features)
        for k, det in enumerate(detections):
            sem_seg = sem_seg_postprocess(logits[k], batch.image_sizes[k], original[k])
            panoptic, segments = combine(det["masks"][:, 0], det["scores"], det["labels"], sem_seg.argmax(0),
                                         self.num_sem_classes, self.overlap_thresh, self.stuff_area_thresh,
                                         self.instances_score_thresh)
            det["sem_seg"] = sem_seg
            det["panoptic_seg"] = panoptic
            det["segments_info"] = segments
        if torch.jit.is_scripting():
            return {}, detections
        return detections  # (eager and traced: the detections, as torchvision's)


def panoptic_fpn(sem_seg_num_classes: int = 54, sem_seg_conv_dims: int = 128, sem_seg_common_stride: int = 4,
                 sem_seg_norm: str = "GN", sem_seg_in_features: Sequence[str] = ("p2", "p3", "p4", "p5"),
                 combine_overlap_thresh: float = 0.5, combine_stuff_area_thresh: float = 4096.0,
                 combine_instances_score_thresh: float = 0.5, **mask) -> D2PanopticFPN:
    """detectron2's Panoptic FPN: ``mask_rcnn(**mask)`` with the semantic FPN head (``SEM_SEG_HEAD.*``) and the
    merge's thresholds (``PANOPTIC_FPN.COMBINE.*``)."""
    rcnn = mask_rcnn(**mask)
    names = ["p2", "p3", "p4", "p5"]
    unknown = [f for f in sem_seg_in_features if f not in names]
    if unknown:
        raise ValueError(f"the semantic head reads FPN levels among {names}, got {list(sem_seg_in_features)}")
    strides = [FPN_STRIDES[names.index(f)] for f in sem_seg_in_features]
    head = SemSegFPNHead(sem_seg_in_features, strides, rcnn.backbone.out_channels, sem_seg_num_classes,
                         sem_seg_conv_dims, sem_seg_common_stride, sem_seg_norm)
    return D2PanopticFPN(rcnn, head, combine_overlap_thresh, combine_stuff_area_thresh,
                         combine_instances_score_thresh).eval()
