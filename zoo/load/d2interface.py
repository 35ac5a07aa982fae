"""detectron2's model interface over a zoo detector (what detectron2's Caffe2Model wrapper gave its exported models):
``[{"image": CHW uint8 in the model's input format, "height": h, "width": w}]`` in, ``[{"instances": Instances}]``
out, with ``pred_boxes`` (``.tensor``), ``scores``, ``pred_classes`` (detectron2's 0-based ids), ``pred_masks``
(boolean, ``>= 0.5``) and ``pred_keypoints`` (x, y, score) where the model has them; a panoptic model's
``sem_seg`` (C, H, W) logits and ``panoptic_seg``: its (H, W) segment ids and ``segments_info``, detectron2's dicts
(``id``, ``isthing``, ``category_id``: a thing's 0-based class or a stuff's sem_seg channel; a thing's ``score`` and
``instance_id``, a stuff's ``area``). ``Instances`` here is an object
with detectron2's fields, ``len()``, ``has()`` and ``get_fields()``; detectron2 is not imported.

    import zoo
    from zoo.load.d2interface import Detectron2Interface
    model = Detectron2Interface(zoo.load("my_d2_model", runtime="onnxruntime", source="store"))
    instances = model([{"image": bgr_chw_uint8, "height": h, "width": w}])[0]["instances"]

The zoo's detectron2 models resize the image themselves, as detectron2's ``DefaultPredictor`` does before its model:
pass the image as read (``height``/``width`` its own size, or left out). Where they name another size (detectron2's
convention for an image already resized), boxes and keypoints are scaled to it and masks, sem_seg and panoptic_seg
resized (nearest), which detectron2 computes from its own resized image instead."""
from __future__ import annotations

import numpy as np

from ..errors import InputError


class Boxes:
    """detectron2's ``Boxes``: the (N, 4) x1, y1, x2, y2 array as ``.tensor``."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __len__(self) -> int:
        return len(self.tensor)

    def __repr__(self) -> str:
        return f"Boxes({self.tensor!r})"


class Instances:
    """The fields of detectron2's ``Instances`` for one image: attributes, ``len()``, ``has()``, ``get_fields()``."""

    def __init__(self, image_size: tuple[int, int], **fields):
        self.__dict__["image_size"] = image_size
        self.__dict__["_fields"] = dict(fields)

    def __getattr__(self, name: str):
        fields = self.__dict__["_fields"]
        if name not in fields:
            raise AttributeError(f"Cannot find field '{name}' in the given Instances (it has {', '.join(fields)})")
        return fields[name]

    def has(self, name: str) -> bool:
        return name in self._fields

    def get_fields(self) -> dict:
        return dict(self._fields)

    def __len__(self) -> int:
        return len(next(iter(self._fields.values()))) if self._fields else 0

    def __repr__(self) -> str:
        return f"Instances(num_instances={len(self)}, image_height={self.image_size[0]}, " \
               f"image_width={self.image_size[1]}, fields=[{', '.join(self._fields)}])"


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


class Detectron2Interface:
    """``detector``: what ``zoo.load`` returns (or an eager zoo model); ``input_format``: the channel order of the
    images given (detectron2's ``INPUT.FORMAT``; its model zoo's is BGR)."""

    def __init__(self, detector, input_format: str = "BGR"):
        if input_format not in ("BGR", "RGB"):
            raise InputError(f"input_format must be 'BGR' or 'RGB' (detectron2's INPUT.FORMAT), got {input_format!r}")
        self.detector, self.bgr = detector, input_format == "BGR"

    def _image(self, item):
        if not isinstance(item, dict) or "image" not in item:
            raise InputError("expected detectron2's inputs: a list of dicts {'image': CHW uint8 array or tensor, "
                             "'height': h, 'width': w}, got " + type(item).__name__)
        image = item["image"]
        if getattr(image, "ndim", None) != 3 or image.shape[0] != 3:
            raise InputError(f"'image' must be CHW with 3 channels, got shape {tuple(getattr(image, 'shape', ()))}")
        if _is_torch(image):
            image = image.flip(0) if self.bgr else image
            return image.float() / 255.0
        image = np.asarray(image)
        return np.ascontiguousarray(image[::-1] if self.bgr else image, dtype=np.float32) / 255.0

    def __call__(self, inputs: list) -> list[dict]:
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise InputError("expected detectron2's inputs: a non-empty list of dicts {'image', 'height', 'width'}")
        images = [self._image(item) for item in inputs]
        outputs = self.detector(images)
        return [{"instances": self._instances(item, image, out), **self._panoptic(item, image, out)}
                for item, image, out in zip(inputs, images, outputs)]

    @staticmethod
    def _panoptic(item: dict, image, out: dict) -> dict:
        """A panoptic model's ``sem_seg`` and ``panoptic_seg``: (ids, ``segments_info`` as detectron2's dicts)."""
        if "panoptic_seg" not in out:
            return {}
        size = _output_size(item, image)
        segments = []
        for seg_id, category, isthing, instance, area in np.asarray(out["segments_info"]).tolist():
            if isthing:
                segments.append({"id": seg_id, "isthing": True, "score": float(out["scores"][instance]),
                                 "category_id": category - 1, "instance_id": instance})
            else:
                segments.append({"id": seg_id, "isthing": False, "category_id": category, "area": area})
        return {"sem_seg": _nearest(out["sem_seg"], *size), "panoptic_seg": (_nearest(out["panoptic_seg"], *size),
                                                                            segments)}

    @staticmethod
    def _instances(item: dict, image, out: dict) -> Instances:
        h, w = int(image.shape[-2]), int(image.shape[-1])
        height, width = _output_size(item, image)
        sx, sy = width / w, height / h
        fields = {"pred_boxes": Boxes(_scaled(out["boxes"], [sx, sy, sx, sy])), "scores": out["scores"],
                  "pred_classes": out["labels"] - 1}
        if "masks" in out:
            fields["pred_masks"] = _nearest(out["masks"][:, 0] >= 0.5, height, width)
        if "keypoints" in out:
            fields["pred_keypoints"] = _scaled(out["keypoints"], [sx, sy, 1.0])
        return Instances((height, width), **fields)


def _output_size(item: dict, image) -> tuple[int, int]:
    """detectron2's output size: the input's ``height`` and ``width``, by default the image's own."""
    return int(item.get("height", image.shape[-2])), int(item.get("width", image.shape[-1]))


def _nearest(x, height: int, width: int):
    """``x`` (..., h, w) resized to (height, width) by the nearest pixel; as given where the size is the same."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if (height, width) == (h, w):
        return x
    rows, cols = np.arange(height) * h // height, np.arange(width) * w // width
    if _is_torch(x):
        import torch
        rows, cols = torch.as_tensor(rows, device=x.device), torch.as_tensor(cols, device=x.device)
    return x[..., rows, :][..., cols]


def _scaled(x, factors: list):
    """``x * factors`` along the last axis, a tensor or an array as given."""
    return x * (x.new_tensor(factors) if _is_torch(x) else np.asarray(factors, dtype=np.float32))
