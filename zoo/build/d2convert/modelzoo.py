"""detectron2's COCO model zoo as zoo manifests (``manifests/detectron2/``): each entry's config converted as `zoo
convert-d2` converts it, with the official checkpoint's URL and the AP detectron2 publishes for it (MODEL_ZOO.md;
PointRend: projects/PointRend/README.md). `zoo build NAME --weights official` downloads the checkpoint, reads it
without unpickling code and converts it at build time (zoo/build/weights.py). tools/d2_model_zoo.py writes the files
from detectron2's configs. Needs torch (the converter checks the architecture's parameters)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import config, spec
from .manifest import document

URL = "https://dl.fbaipublicfiles.com/detectron2/"
LICENSE = "CC-BY-SA-3.0"  # MODEL_ZOO.md: "All models available for download ... are licensed under" CC BY-SA 3.0


@dataclass(frozen=True)
class Entry:
    name: str            # detectron2's, the config's stem (the manifest's alias; its name is the lower-case form)
    config: str          # under detectron2's configs/ (PointRend: under projects/PointRend/configs/)
    checkpoint: str      # model_id/model_final_*.pkl, detectron2's model_zoo.py
    metrics: dict = field(default_factory=dict)  # COCO val2017 as published

    @property
    def url(self) -> str:
        where = "PointRend/" + self.config if self.config.startswith("InstanceSegmentation/") else self.config
        return URL + where.removesuffix(".yaml") + "/" + self.checkpoint

    @property
    def manifest_name(self) -> str:
        return self.name.lower()


ENTRIES = (
    Entry("faster_rcnn_R_50_FPN_3x", "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", "137849458/model_final_280758.pkl",
          {"box_map": 40.2}),
    Entry("faster_rcnn_R_101_FPN_3x", "COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml",
          "137851257/model_final_f6e8b1.pkl", {"box_map": 42.0}),
    Entry("faster_rcnn_X_101_32x8d_FPN_3x", "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
          "139173657/model_final_68b088.pkl", {"box_map": 43.0}),
    Entry("retinanet_R_50_FPN_3x", "COCO-Detection/retinanet_R_50_FPN_3x.yaml", "190397829/model_final_5bd44e.pkl",
          {"box_map": 38.7}),
    Entry("retinanet_R_101_FPN_3x", "COCO-Detection/retinanet_R_101_FPN_3x.yaml", "190397697/model_final_971ab9.pkl",
          {"box_map": 40.4}),
    Entry("mask_rcnn_R_50_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
          "137849600/model_final_f10217.pkl", {"box_map": 41.0, "mask_map": 37.2}),
    Entry("mask_rcnn_R_101_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
          "138205316/model_final_a3ec72.pkl", {"box_map": 42.9, "mask_map": 38.6}),
    Entry("mask_rcnn_X_101_32x8d_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml",
          "139653917/model_final_2d9806.pkl", {"box_map": 44.3, "mask_map": 39.5}),
    Entry("keypoint_rcnn_R_50_FPN_3x", "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml",
          "137849621/model_final_a6e10b.pkl", {"box_map": 55.4, "kp_map": 65.5}),
    Entry("keypoint_rcnn_R_101_FPN_3x", "COCO-Keypoints/keypoint_rcnn_R_101_FPN_3x.yaml",
          "138363331/model_final_997cc7.pkl", {"box_map": 56.4, "kp_map": 66.1}),
    Entry("keypoint_rcnn_X_101_32x8d_FPN_3x", "COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml",
          "139686956/model_final_5ad38f.pkl", {"box_map": 57.3, "kp_map": 66.0}),
    Entry("cascade_mask_rcnn_R_50_FPN_3x", "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
          "144998488/model_final_480dd8.pkl", {"box_map": 44.3, "mask_map": 38.5}),
    Entry("pointrend_rcnn_R_50_FPN_3x_coco", "InstanceSegmentation/pointrend_rcnn_R_50_FPN_3x_coco.yaml",
          "164955410/model_final_edd263.pkl", {"mask_map": 38.3}),
    Entry("panoptic_fpn_R_50_3x", "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml",
          "139514569/model_final_c10459.pkl", {"box_map": 40.0, "mask_map": 36.5, "pq": 41.5}),
    Entry("panoptic_fpn_R_101_3x", "COCO-PanopticSegmentation/panoptic_fpn_R_101_3x.yaml",
          "139514519/model_final_cafdb1.pkl", {"box_map": 42.4, "mask_map": 38.5, "pq": 43.0}),
)


# Seeded weights (--weights random:SEED, zoo/build/seeded.py) for the entries a recipe is measured for: the R-CNNs'
# classifier from N(-0.1425, 0.42) against a zero-mean background, whose bias is the one number set per entry (its
# detections on the build's images fall with it; docs/seeded-weights.md has the figures); RetinaNet's is torchvision's
# RetinaNet recipe with a bias on the classifier. The frozen batch norms are recalibrated (seeded.recalibrate_batchnorm).
CLS = "roi_heads.box_predictor.cls_score"
RCNN_RECIPE = {"bn_recalibration": True, "spread": {CLS: 0.42, "roi_heads.box_predictor.bbox_pred": 0.001},
               "weight_mean": {CLS: -0.1425}, "background_weight_mean": {CLS: 0.0}, "class_bias": {CLS: 1.0}}
SEEDED = {  # entry -> the classifier's background bias (RetinaNet: its bias), found by bisection on the build's images
    "faster_rcnn_R_50_FPN_3x": -1.5, "mask_rcnn_R_50_FPN_3x": -1.5, "pointrend_rcnn_R_50_FPN_3x_coco": -1.5,
    "cascade_mask_rcnn_R_50_FPN_3x": -3.328125, "keypoint_rcnn_R_50_FPN_3x": -8.75,
    "retinanet_R_50_FPN_3x": -4.0, "faster_rcnn_R_101_FPN_3x": -3.125, "mask_rcnn_R_101_FPN_3x": -3.125,
    "keypoint_rcnn_R_101_FPN_3x": -13.75, "faster_rcnn_X_101_32x8d_FPN_3x": -4.0, "mask_rcnn_X_101_32x8d_FPN_3x": -4.0,
    "keypoint_rcnn_X_101_32x8d_FPN_3x": -4.0,
    "panoptic_fpn_R_50_3x": 10.0, "panoptic_fpn_R_101_3x": 14.0, "retinanet_R_101_FPN_3x": -3.0,
}
# entry -> its classifier's (spread, weight_mean) where they are not the recipe's: Panoptic FPN's scores reach 1, so
# that the merge (instances over 0.5) keeps things; RetinaNet R-101's at 1.5x torchvision's, or its top scores tie
WIDE = {"panoptic_fpn_R_50_3x": (1.0, -0.1425), "panoptic_fpn_R_101_3x": (1.0, -0.1425),
        "retinanet_R_101_FPN_3x": (9.1982025, -2.5584405)}
RETINA_CLS = "head.classification_head.cls_logits"


def seeded_recipe(entry: Entry, builder: str, template: dict) -> dict | None:
    """The entry's [random_weights] table, or None where no recipe is measured for it. ``template``: the torchvision
    manifest's table the converter starts from (RetinaNet's)."""
    if entry.name not in SEEDED:
        return None
    x = SEEDED[entry.name]
    retina = builder == spec.RETINA_BUILDER
    layer = RETINA_CLS if retina else CLS
    table = {**template, "bias": {layer: x}} if retina else {**RCNN_RECIPE, "background_bias": {layer: x}}
    if entry.name in WIDE:
        spread, mean = WIDE[entry.name]
        table["spread"], table["weight_mean"] = {**table["spread"], layer: spread}, {layer: mean}
    if builder in (spec.CASCADE_BUILDER, spec.CASCADE_MASK_BUILDER):  # the same on each stage's classifier
        return {k: {n.replace("box_predictor.", f"box_predictor.{stage}."): v for n, v in value.items() for stage in
                    range(3)} if isinstance(value, dict) else value for k, value in table.items()}
    return table


def config_path(entry: Entry, d2_root: Path) -> Path:
    """The entry's config in a detectron2 source tree (or a copy of its configs/ and projects/ folders)."""
    if entry.config.startswith("InstanceSegmentation/"):
        return d2_root / "projects" / "PointRend" / "configs" / entry.config
    return d2_root / "configs" / entry.config


def manifest_doc(entry: Entry, d2_root: Path) -> dict:
    s = spec.from_config(config.load(config_path(entry, d2_root)))
    doc = document(entry.manifest_name, s, f"detectron2's {entry.config}")
    doc["aliases"] = [entry.name]
    what = re.sub(r" \(\d+ classes\), converted by .*", "", doc["description"])
    doc["description"] = f"{what}, detectron2's COCO model zoo ({entry.name}), converted at build time."
    metrics = {k: entry.metrics[k] for k in ("box_map", "mask_map", "kp_map", "pq") if k in entry.metrics}
    doc["weights"] = {"checkpoint": "detectron2", "url": entry.url, "config": entry.config, "license": LICENSE,
                      "recipe": "https://github.com/facebookresearch/detectron2/blob/main/MODEL_ZOO.md",
                      "num_params": _parameters(doc), **doc["weights"], "metrics": metrics}
    from ...core.manifest import templates
    recipe = seeded_recipe(entry, doc["builder"], dict(templates()["retinanet_resnet50_fpn"].raw["random_weights"]))
    if recipe:
        doc["random_weights"] = recipe
    return doc


def _parameters(doc: dict) -> int:
    from ...core.manifest import from_dict
    from ...load.architecture import architecture
    return sum(p.numel() for p in architecture(from_dict(doc, doc["name"], "")).parameters())


def write_all(d2_root: str | Path, out: str | Path) -> list[Path]:
    from .. import scaffold
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in ENTRIES:
        path = out / f"{entry.manifest_name}.toml"
        scaffold.write_doc(manifest_doc(entry, Path(d2_root)), path)
        written.append(path)
    return written


def markdown(directory: str | Path | None = None) -> str:
    """docs/detectron2.md's table of the entries (kept in sync by a test): name, what, published AP, methods."""
    from ...core.manifest import d2_manifests
    lines = ["| `zoo build NAME --weights official` | model | COCO val2017 (published) | methods | params |",
             "|---|---|---|---|---|"]
    found = {m.aliases[0]: m for m in d2_manifests(directory).values()}
    for entry in ENTRIES:
        m = found[entry.name]
        ap = ", ".join(f"{METRIC_NAMES[k]} {v}" for k, v in m.weights["metrics"].items())
        what = m.description.split(",")[0].removeprefix("detectron2 ")
        lines.append(f"| `{entry.name}` | {what} | {ap} | {', '.join(e.method for e in m.exports)} | "
                     f"{m.weights['num_params'] / 1e6:.1f} M |")
    return "\n".join(lines)


METRIC_NAMES = {"box_map": "box AP", "mask_map": "mask AP", "kp_map": "keypoint AP", "pq": "PQ"}
