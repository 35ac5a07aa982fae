"""detectron2's pre- and post-processing around torchvision's ``GeneralizedRCNNTransform``.

The zoo hands a model RGB images in [0, 1]; detectron2's models see 0-255 images in ``INPUT.FORMAT`` (BGR for its
model zoo), resized by ``ResizeShortestEdge`` (short side to ``MIN_SIZE_TEST`` unless the long side would pass
``MAX_SIZE_TEST``, each side rounded with ``int(x + 0.5)``) with PIL's bilinear filter on uint8 pixels
(``pilresize``: reproduced exactly), then normalised with ``PIXEL_MEAN``/``PIXEL_STD`` and zero-padded to a multiple
of 32. Boxes go back to the input size scaled, clipped, and empty ones dropped (``detector_postprocess``); masks are
pasted into the input size as detectron2 pastes them (``masks.paste_masks``); keypoints scaled like the boxes. Under
tracing the sizes are computed from the image's shape as float64 tensors, so a traced model resizes like eager at
every size; TorchScript (scripting) compiles the eager code itself (its floats are Python's doubles); under torch.export
(``SymbolicD2Transform``) the sizes are symbolic ints and the same double arithmetic runs on them."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
import torchvision
from torch import Tensor
from torch.nn import functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import boxes as box_ops

from . import pilresize
from .modes import fresh
from .masks import paste_masks


def resized_size(h: int, w: int, short: int, longest: int) -> Tuple[int, int]:
    """detectron2's ``ResizeShortestEdge.get_output_shape``."""
    scale = short * 1.0 / min(h, w)
    newh, neww = (short * 1.0, scale * w) if h < w else (scale * h, short * 1.0)
    if max(newh, neww) > longest:
        scale = longest * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def traced_size(hw: Tensor, short: float, longest: float) -> Tensor:
    """``resized_size`` on a float64 (2,) [height, width] tensor, with the same float64 operations (1-element
    tensors: the legacy ONNX exporter would write 0-dim float64 ones as float32)."""
    h, w = hw[:1], hw[1:]
    size = torch.full_like(h, short)
    scale = size / torch.minimum(h, w)
    newh = torch.where(h < w, size, scale * h)
    neww = torch.where(h < w, scale * w, size)
    big = torch.maximum(newh, neww)
    scale = torch.full_like(h, longest) / big
    newh = torch.where(big > longest, newh * scale, newh)
    neww = torch.where(big > longest, neww * scale, neww)
    return torch.floor(torch.cat([newh, neww]) + 0.5)


def symbolic_resized_size(h, w, short: float, longest: float):
    """``resized_size`` for torch.export, on symbolic ints: the same double arithmetic, with ``torch.sym_min`` /
    ``torch.sym_ite`` for Python's ``min`` and ``if`` (which would guard on the example's orientation: the program
    would then refuse the other one) and ``math.trunc`` for ``int`` (both truncate; only the first serialises). With
    plain ints it returns ``resized_size``'s."""
    hf, wf = torch.sym_float(h), torch.sym_float(w)
    fixed = hf * 0.0 + short  # the short side, of the other branch's type (sym_ite wants one)
    scale = short / torch.sym_min(hf, wf)
    newh = torch.sym_ite(h < w, fixed, scale * hf)
    neww = torch.sym_ite(h < w, scale * wf, fixed)
    # detectron2 scales by longest / max(...) only where the long side passes it: where it does not, that ratio is
    # >= 1 (IEEE division is monotonic), so the min with 1 is the same rule without a condition on the symbols
    shrink = torch.sym_min(1.0, longest / torch.sym_max(newh, neww))
    return math.trunc(newh * shrink + 0.5), math.trunc(neww * shrink + 0.5)


def fresh_size(side, bound: int):
    """A resized side as a fresh symbol (``modes.fresh``), checked to lie in [1, ``bound``]: the same value, but what
    follows the resize (every feature map's size) is then written in terms of one symbol rather than the size rule's
    whole expression, which the saved program would spell out in each of its thousands of tensor shapes (measured:
    most of a minute of sympy parsing to load a small model's program)."""
    return fresh(torch.scalar_tensor(side, dtype=torch.int64), bound)


def scaled_xy(xy: Tensor, size: Tuple[int, int], original: Tuple[int, int]) -> Tensor:
    """Points (..., 2) from the resized image to the input's size, with the ratios ``resize_boxes`` uses."""
    ratio_h = torch.tensor(original[0], dtype=torch.float32, device=xy.device) / torch.tensor(
        size[0], dtype=torch.float32, device=xy.device)  # (torch.tensor, as there: it takes torch.export's symbols)
    ratio_w = torch.tensor(original[1], dtype=torch.float32, device=xy.device) / torch.tensor(
        size[1], dtype=torch.float32, device=xy.device)
    return xy * torch.stack([ratio_w, ratio_h]).to(xy)


class D2Transform(GeneralizedRCNNTransform):
    """RGB [0, 1] in; detectron2's pixels, resize, normalisation and padding out. ``image_mean``/``image_std`` are
    detectron2's ``PIXEL_MEAN``/``PIXEL_STD`` (0-255, in the input format's channel order)."""

    export_name = ("D2Transform (detectron2's size rule and PIL's bilinear resize, sizes from the image under tracing, "
                   "eager's code under scripting)")

    def __init__(self, min_size: int, max_size: int, pixel_mean: List[float], pixel_std: List[float],
                 input_format: str = "BGR", size_divisible: int = 32):
        super().__init__(min_size, max_size, list(pixel_mean), list(pixel_std), size_divisible=size_divisible)
        self.bgr = input_format == "BGR"

    def normalize(self, image: Tensor) -> Tensor:
        """To detectron2's pixel space (0-255, its channel order); the mean and std come after the resize."""
        if not image.is_floating_point():
            raise TypeError(f"Expected input images to be of floating type (in range [0, 1]), but found type "
                            f"{image.dtype} instead")
        if self.bgr:
            image = image.flip(0)
        return image * 255.0

    def target_size(self, image: Tensor) -> Tensor:
        """detectron2's resized [height, width], float64; MIN_SIZE_TEST 0 keeps the size (detectron2 does not
        resize)."""
        hw = torch._shape_as_tensor(image)[-2:].to(device=image.device, dtype=torch.float64)
        short = int(self.min_size[-1])
        if short == 0:
            return hw
        if torchvision._is_tracing():
            return traced_size(hw, float(short), float(self.max_size))
        size = resized_size(int(image.shape[-2]), int(image.shape[-1]), short, int(self.max_size))
        return torch.tensor([float(size[0]), float(size[1])], dtype=torch.float64, device=image.device)

    def resize_pixels(self, image: Tensor) -> Tensor:
        """The 0-255 image at detectron2's size in integer pixels, as PIL resizes detectron2's uint8 image."""
        dtype = image.dtype
        pixels = torch.floor(image.to(torch.float64) + 0.5).clamp(0.0, 255.0)
        return pilresize.resize(pixels, self.target_size(image)).to(dtype)

    def resize(self, image: Tensor, target: Optional[Dict[str, Tensor]] = None
               ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        torch._assert(target is None and not self.training, "the detectron2 transform is for inference only")
        image = self.resize_pixels(image)
        dtype, device = image.dtype, image.device
        mean = torch.as_tensor(self.image_mean, dtype=dtype, device=device)
        std = torch.as_tensor(self.image_std, dtype=dtype, device=device)
        return (image - mean[:, None, None]) / std[:, None, None], target

    def postprocess(self, result: List[Dict[str, Tensor]], image_shapes: List[Tuple[int, int]],
                    original_image_sizes: List[Tuple[int, int]]) -> List[Dict[str, Tensor]]:
        if self.training:
            return result
        out: List[Dict[str, Tensor]] = []
        for pred, im_s, o_im_s in zip(result, image_shapes, original_image_sizes):
            boxes = box_ops.clip_boxes_to_image(resize_boxes(pred["boxes"], im_s, o_im_s), o_im_s)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            kept: Dict[str, Tensor] = {}
            for k, v in pred.items():
                kept[k] = boxes[keep] if k == "boxes" else v[keep]
            if "keypoints" in kept:  # detector_postprocess: x and y scaled like the boxes
                k = kept["keypoints"]
                kept["keypoints"] = torch.cat([scaled_xy(k[..., :2], im_s, o_im_s), k[..., 2:]], dim=-1)
            if "masks" in kept:
                kept["masks"] = paste_masks(kept["masks"], kept["boxes"], o_im_s[0], o_im_s[1])
            out.append(kept)
        return out

    def export_transform(self, kind: str) -> "D2Transform":
        """The transform for an export (``zoo.export.common.exportable``): this one for tracing, the legacy ONNX
        exporter (its sizes follow the image under tracing) and scripting (TorchScript compiles the eager path);
        ``SymbolicD2Transform`` for torch.export. The dynamo ONNX exporter's form is not made."""
        if kind == "exact":
            return self
        if kind == "symbolic":
            new = SymbolicD2Transform(int(self.min_size[-1]), int(self.max_size), self.image_mean, self.image_std,
                                      "BGR" if self.bgr else "RGB", self.size_divisible)
            return new.train(self.training)
        raise NotImplementedError(f"the detectron2 transform has no {kind!r} export form (the dynamo ONNX exporter)")


class SymbolicD2Transform(D2Transform):
    """``D2Transform`` for torch.export, where image sizes are symbolic ints: detectron2's size rule by
    ``symbolic_resized_size``, PIL's resize by ``pilresize.symbolic_resize``, the batch padded by ``F.pad`` to an
    integer ceiling (torchvision's ``float(size)`` would fix the example's padded size)."""

    export_name = ("SymbolicD2Transform (detectron2's size rule and PIL's bilinear resize on torch.export's symbolic "
                   "sizes)")

    def resize_pixels(self, image: Tensor) -> Tensor:
        dtype = image.dtype
        pixels = torch.floor(image.to(torch.float64) + 0.5).clamp(0.0, 255.0)
        h, w = image.shape[-2], image.shape[-1]
        if int(self.min_size[-1]):
            h, w = symbolic_resized_size(h, w, float(self.min_size[-1]), float(self.max_size))
            bound = max(int(self.min_size[-1]), int(self.max_size)) + 1
            h, w = fresh_size(h, bound), fresh_size(w, bound)
        return pilresize.symbolic_resize(pixels, h, w).to(dtype)

    def batch_images(self, images: List[Tensor], size_divisible: int = 32) -> Tensor:
        def ceil(side: int) -> int:
            return (side + size_divisible - 1) // size_divisible * size_divisible
        height, width = ceil(max(im.shape[1] for im in images)), ceil(max(im.shape[2] for im in images))
        return torch.stack([F.pad(im, (0, width - im.shape[2], 0, height - im.shape[1])) for im in images])
