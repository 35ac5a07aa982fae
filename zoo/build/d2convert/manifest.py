"""The files `zoo convert-d2` writes: ``NAME.toml`` (the manifest: the detectron2 builder, its arguments from the
config, the category names, the parity sizes and methods of torchvision's Faster R-CNN R50-FPN) and
``NAME.safetensors`` (the converted weights). Needs torch."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...core.manifest import METHODS, from_dict, templates
from ...errors import ConversionError
from .. import scaffold
from . import checkpoint, config, spec, state

TEMPLATE = "fasterrcnn_resnet50_fpn"  # the parity sizes and methods start from torchvision's R50-FPN
TEMPLATES = {spec.RCNN_BUILDER: ("Faster R-CNN", TEMPLATE), spec.MASK_BUILDER: ("Mask R-CNN", "maskrcnn_resnet50_fpn"),
             spec.RETINA_BUILDER: ("RetinaNet", "retinanet_resnet50_fpn"),
             spec.KEYPOINT_BUILDER: ("Keypoint R-CNN", "keypointrcnn_resnet50_fpn"),
             spec.CASCADE_BUILDER: ("Cascade R-CNN", TEMPLATE),
             spec.CASCADE_MASK_BUILDER: ("Cascade Mask R-CNN", "maskrcnn_resnet50_fpn"),
             spec.POINTREND_BUILDER: ("PointRend R-CNN", "maskrcnn_resnet50_fpn"),
             spec.PANOPTIC_BUILDER: ("Panoptic FPN", "maskrcnn_resnet50_fpn")}
# COCO panoptic's 53 stuff categories (panoptic_coco_categories.json, id order), detectron2's sem_seg channels 1..53
COCO_STUFF = (
    "banner", "blanket", "bridge", "cardboard", "counter", "curtain", "door-stuff", "floor-wood", "flower", "fruit",
    "gravel", "house", "light", "mirror-stuff", "net", "pillow", "platform", "playingfield", "railroad", "river", "road",
    "roof", "sand", "sea", "shelf", "snow", "stairs", "tent", "towel", "wall-brick", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "window-blind", "window-other", "tree-merged", "fence-merged", "ceiling-merged",
    "sky-other-merged", "cabinet-merged", "table-merged", "floor-other-merged", "pavement-merged", "mountain-merged",
    "grass-merged", "dirt-merged", "paper-merged", "food-other-merged", "building-other-merged", "rock-merged",
    "wall-other-merged", "rug-merged")
# a panoptic artifact against eager: the share of pixels whose segment agrees (segments matched by their pixels), and
# the sem_seg logits' largest difference (measured, docs/detectron2.md: <= 2e-4 and 99.99%+ for every method)
PANOPTIC_TOLERANCE = {"panoptic_agree": 0.999, "sem_seg_atol": 0.01}


@dataclass
class Converted:
    name: str
    manifest: Path
    weights: Path
    tensors: int
    num_classes: int


def coco_names() -> list[str]:
    """detectron2's COCO ``thing_classes`` (contiguous ids 0..79): COCO's category names in id order, which
    torchvision's list holds with "N/A" at the unused ids."""
    return [c for c in templates()[TEMPLATE].categories[1:] if c != "N/A"]


def categories(s: spec.Spec) -> list[str]:
    if s.dataset.startswith("coco") and s.num_classes == 80:
        names = coco_names()
    elif s.dataset.startswith("keypoints_coco") and s.num_classes == 1:
        names = ["person"]
    else:
        names = [f"class{i}" for i in range(s.num_classes)]
    return ["__background__"] + names


def stuff_categories(s: spec.Spec) -> list[str]:
    """The sem_seg channels' names: detectron2's "things" (every thing class) first, then the stuff classes."""
    count = s.args["sem_seg_num_classes"]
    if s.dataset.startswith("coco") and count == len(COCO_STUFF) + 1:
        return ["things", *COCO_STUFF]
    return ["things"] + [f"stuff{i}" for i in range(1, count)]


def default_name(config_path: Path) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", config_path.stem.lower()).strip("_") or "detectron2_model"


def document(name: str, s: spec.Spec, source: str) -> dict:
    args = dict(s.args)
    what, template = TEMPLATES[s.builder]
    doc = scaffold.manifest_doc(name, s.builder, args.pop("num_classes"), categories(s), builder_args=args,
                                template_name=template)
    backbone = f"X-{args['depth']}-{args['num_groups']}x{args['width_per_group']}d" if args["num_groups"] > 1 else \
        f"R-{args['depth']}"
    doc["description"] = (f"detectron2 {what} {backbone}-FPN ({s.num_classes} classes), converted by zoo convert-d2 "
                          f"from {source}.")
    # detectron2's pixel space: 0-255, in the input format's channel order (the model converts from RGB in [0, 1])
    doc["input"] = {"min_size": args["min_size"], "max_size": args["max_size"], "image_mean": args["pixel_mean"],
                    "image_std": args["pixel_std"]}
    doc["export"], doc["unsupported"] = exports(doc["export"], s.builder)
    if s.builder == spec.PANOPTIC_BUILDER:
        doc["weights"]["stuff_categories"] = stuff_categories(s)
        for entry in doc["export"]:
            entry["tolerance"] = dict(entry["tolerance"], **PANOPTIC_TOLERANCE)
    names = templates()[template].weights.get("keypoint_names", [])
    if s.builder == spec.KEYPOINT_BUILDER and args["num_keypoints"] == len(names):
        doc["weights"]["keypoint_names"] = list(names)  # COCO's 17
    return doc


def exports(template: list[dict], builder: str) -> tuple[list[dict], list[dict]]:
    """The methods the detectron2 model exports with (tracing, scripting, ONNX by the legacy exporter, which traces,
    and torch.export: programs that give eager's outputs exactly, docs/detectron2.md), from the template's tables,
    and why AOTInductor is left out."""
    by_method = {e["method"]: e for e in template}
    scripting = dict(by_method["scripting"], devices=["cpu"])  # measured on CPU only (torchvision's also on CUDA)
    onnx = {k: v for k, v in by_method["onnx"].items() if k != "exporter"}
    onnx["opset"], onnx["devices"] = 17, ["cpu"]  # (likewise: never run on CUDA here)
    # torch.export: the template's entry (torchvision's Keypoint R-CNN has none: its decoding loop does not export
    # there, while the zoo's detectron2 models write theirs as torch.while_loop), else the tracing entry's settings
    program = by_method.get("export") or dict(by_method["tracing"], method="export", format="pt2")
    done = [by_method["tracing"], scripting, onnx, dict(program, devices=["cpu"])]
    if builder == spec.KEYPOINT_BUILDER:
        # a keypoint is the argmax of its heatmap resized to its box: an artifact's rounding can swap two near-tied
        # peaks (measured: 1 keypoint of 748 on a parity image, 5.8 px, logits within 1e-5)
        done = [dict(e, tolerance=dict(e["tolerance"], keypoint_atol=KEYPOINT_ATOL)) for e in done]
    return done, [{"method": "aoti", "runtime": METHODS["aoti"][0], "reason": AOTI}]


KEYPOINT_ATOL = 8.0  # px, as torchvision's Keypoint R-CNN's ONNX entry (its template) allows for the same reason
AOTI = "AOTInductor packages of detectron2 models (compiled from the export method's program) were not built or measured"


def convert(checkpoint_path: str | Path, config_path: str | Path, out: str | Path, name: str | None = None,
            force: bool = False) -> Converted:
    from safetensors.torch import save_file

    from ...load.architecture import architecture
    checkpoint_path, config_path, out = Path(checkpoint_path), Path(config_path), Path(out)
    name = name or default_name(config_path)
    s = spec.from_config(config.load(config_path))
    weights = checkpoint.read(checkpoint_path)
    doc = document(name, s, f"{checkpoint_path.name} and {config_path.name}")
    toml_path, weights_path = out / f"{name}.toml", out / f"{name}.safetensors"
    for p in (toml_path, weights_path):
        if p.exists() and not force:
            raise ConversionError(f"{p} exists; pick another --out or --name, or pass --force")
    model = architecture(from_dict(doc, str(toml_path), ""))
    tensors = fit(model, weights, str(checkpoint_path), name, s.num_classes, s.classes_key, s.agnostic_boxes)
    out.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(tensors.items())), str(weights_path))
    scaffold.write_doc(doc, toml_path)
    return Converted(name, toml_path, weights_path, len(tensors), s.num_classes)


def fit(model, weights: dict, source: str, name: str, num_classes: int, classes_key: str, agnostic_boxes: bool) -> dict:
    """The detectron2 state dict ``weights`` converted for ``model`` (the config's architecture) and loaded into it,
    strictly: the tensors, by the zoo's names."""
    import torch

    from ...load.architecture import fit_state
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tensors = {k: torch.from_numpy(v) for k, v in
               state.convert(weights, expected, source, num_classes, classes_key, agnostic_boxes).items()}
    fit_state(model, tensors, source, name)
    return tensors


def fit_official(model, manifest, path: str | Path, source: str) -> None:
    """A shipped detectron2 manifest's official checkpoint (``path``, downloaded from ``source``) into ``model``."""
    retina = manifest.builder == spec.RETINA_BUILDER
    fit(model, checkpoint.read(path), source, manifest.name, len(manifest.categories) - 1,
        "MODEL.RETINANET.NUM_CLASSES" if retina else "MODEL.ROI_HEADS.NUM_CLASSES",
        manifest.builder in (spec.CASCADE_BUILDER, spec.CASCADE_MASK_BUILDER))
