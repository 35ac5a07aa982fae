"""detectron2's YAML configs: read with yaml's SafeLoader (no Python tags; detectron2's one ``eval``, of RetinaNet's
anchor sizes, is recognised by its text and replaced by its value), ``_BASE_`` chains followed as detectron2 follows
them (a path relative to the file that names it; a list merges in order; the file's own keys win), over detectron2's
defaults for the keys the converter reads. Needs PyYAML (zoo[build])."""
from __future__ import annotations

import ast
from pathlib import Path

from ...errors import ConversionError, MissingExtraError, first_line

BASE_KEY = "_BASE_"
MAX_DEPTH = 16

# detectron2's defaults (detectron2/config/defaults.py) for every key the converter reads
DEFAULTS = {
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN", "MODEL.MASK_ON": False, "MODEL.KEYPOINT_ON": False,
    "MODEL.LOAD_PROPOSALS": False, "MODEL.PIXEL_MEAN": [103.530, 116.280, 123.675], "MODEL.PIXEL_STD": [1.0, 1.0, 1.0],
    "INPUT.FORMAT": "BGR", "INPUT.MIN_SIZE_TEST": 800, "INPUT.MAX_SIZE_TEST": 1333,
    "MODEL.BACKBONE.NAME": "build_resnet_backbone",
    "MODEL.RESNETS.DEPTH": 50, "MODEL.RESNETS.OUT_FEATURES": ["res4"], "MODEL.RESNETS.NUM_GROUPS": 1,
    "MODEL.RESNETS.NORM": "FrozenBN", "MODEL.RESNETS.WIDTH_PER_GROUP": 64, "MODEL.RESNETS.STRIDE_IN_1X1": True,
    "MODEL.RESNETS.RES5_DILATION": 1, "MODEL.RESNETS.RES2_OUT_CHANNELS": 256, "MODEL.RESNETS.STEM_OUT_CHANNELS": 64,
    "MODEL.RESNETS.DEFORM_ON_PER_STAGE": [False, False, False, False],
    "MODEL.FPN.IN_FEATURES": [], "MODEL.FPN.OUT_CHANNELS": 256, "MODEL.FPN.NORM": "", "MODEL.FPN.FUSE_TYPE": "sum",
    "MODEL.PROPOSAL_GENERATOR.NAME": "RPN", "MODEL.PROPOSAL_GENERATOR.MIN_SIZE": 0,
    "MODEL.ANCHOR_GENERATOR.NAME": "DefaultAnchorGenerator", "MODEL.ANCHOR_GENERATOR.SIZES": [[32, 64, 128, 256, 512]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.5, 1.0, 2.0]], "MODEL.ANCHOR_GENERATOR.OFFSET": 0.0,
    "MODEL.RPN.HEAD_NAME": "StandardRPNHead", "MODEL.RPN.IN_FEATURES": ["res4"], "MODEL.RPN.BBOX_REG_WEIGHTS": [1.0] * 4,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000, "MODEL.RPN.POST_NMS_TOPK_TEST": 1000, "MODEL.RPN.NMS_THRESH": 0.7,
    "MODEL.RPN.CONV_DIMS": [-1],
    "MODEL.ROI_HEADS.NAME": "Res5ROIHeads", "MODEL.ROI_HEADS.NUM_CLASSES": 80, "MODEL.ROI_HEADS.IN_FEATURES": ["res4"],
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.05, "MODEL.ROI_HEADS.NMS_THRESH_TEST": 0.5,
    "MODEL.ROI_BOX_HEAD.NAME": "", "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": [10.0, 10.0, 5.0, 5.0],
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": 14, "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": 0,
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE": "ROIAlignV2", "MODEL.ROI_BOX_HEAD.NUM_FC": 0, "MODEL.ROI_BOX_HEAD.FC_DIM": 1024,
    "MODEL.ROI_BOX_HEAD.NUM_CONV": 0, "MODEL.ROI_BOX_HEAD.CONV_DIM": 256, "MODEL.ROI_BOX_HEAD.NORM": "",
    "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": False, "MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE": False,
    "MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": [[10.0, 10.0, 5.0, 5.0], [20.0, 20.0, 10.0, 10.0],
                                                    [30.0, 30.0, 15.0, 15.0]],
    "MODEL.ROI_BOX_CASCADE_HEAD.IOUS": [0.5, 0.6, 0.7],
    "MODEL.ROI_MASK_HEAD.NAME": "MaskRCNNConvUpsampleHead", "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION": 14,
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO": 0, "MODEL.ROI_MASK_HEAD.POOLER_TYPE": "ROIAlignV2",
    "MODEL.ROI_MASK_HEAD.CONV_DIM": 256, "MODEL.ROI_MASK_HEAD.NUM_CONV": 0, "MODEL.ROI_MASK_HEAD.NORM": "",
    "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK": False,
    # PointRend's (projects/PointRend/point_rend/config.py)
    "MODEL.ROI_MASK_HEAD.IN_FEATURES": ["p2"], "MODEL.ROI_MASK_HEAD.FC_DIM": 1024, "MODEL.ROI_MASK_HEAD.NUM_FC": 2,
    "MODEL.ROI_MASK_HEAD.OUTPUT_SIDE_RESOLUTION": 7, "MODEL.ROI_MASK_HEAD.POINT_HEAD_ON": False,
    "MODEL.POINT_HEAD.NAME": "StandardPointHead", "MODEL.POINT_HEAD.NUM_CLASSES": 80, "MODEL.POINT_HEAD.FC_DIM": 256,
    "MODEL.POINT_HEAD.NUM_FC": 3, "MODEL.POINT_HEAD.IN_FEATURES": ["p2"], "MODEL.POINT_HEAD.SUBDIVISION_STEPS": 5,
    "MODEL.POINT_HEAD.SUBDIVISION_NUM_POINTS": 784, "MODEL.POINT_HEAD.CLS_AGNOSTIC_MASK": False,
    "MODEL.POINT_HEAD.COARSE_PRED_EACH_LAYER": True,
    "MODEL.ROI_KEYPOINT_HEAD.NAME": "KRCNNConvDeconvUpsampleHead", "MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION": 14,
    "MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO": 0, "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE": "ROIAlignV2",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS": [512] * 8, "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS": 17,
    "MODEL.RETINANET.NUM_CLASSES": 80, "MODEL.RETINANET.IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
    "MODEL.RETINANET.NUM_CONVS": 4, "MODEL.RETINANET.NORM": "", "MODEL.RETINANET.SCORE_THRESH_TEST": 0.05,
    "MODEL.RETINANET.TOPK_CANDIDATES_TEST": 1000, "MODEL.RETINANET.NMS_THRESH_TEST": 0.5,
    "MODEL.RETINANET.BBOX_REG_WEIGHTS": [1.0, 1.0, 1.0, 1.0],
    "MODEL.SEM_SEG_HEAD.NAME": "SemSegFPNHead", "MODEL.SEM_SEG_HEAD.IN_FEATURES": ["p2", "p3", "p4", "p5"],
    "MODEL.SEM_SEG_HEAD.NUM_CLASSES": 54, "MODEL.SEM_SEG_HEAD.CONVS_DIM": 128, "MODEL.SEM_SEG_HEAD.COMMON_STRIDE": 4,
    "MODEL.SEM_SEG_HEAD.NORM": "GN", "MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH": 0.5,
    "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT": 4096, "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH": 0.5,
    "TEST.DETECTIONS_PER_IMAGE": 100, "TEST.AUG.ENABLED": False, "DATASETS.TEST": [],
}


def _yaml():
    try:
        import yaml
    except ImportError:
        raise MissingExtraError("reading a detectron2 config needs PyYAML, which is not installed: "
                                "pip install 'zoo[build]'") from None
    return yaml


# The one Python expression detectron2's own configs evaluate (Base-RetinaNet.yaml's anchor sizes, by
# `!!python/object/apply:eval`), by its text without spaces, and its value: that text and no other is accepted
KNOWN_EVALS = {"[[x,x*2**(1.0/3),x*2**(2.0/3)]forxin[32,64,128,256,512]]":
               [[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]]}
EVAL_TAG = "tag:yaml.org,2002:python/object/apply:eval"


def _loader(yaml):
    """yaml's SafeLoader and one more constructor: detectron2's known ``eval`` expressions as their values (nothing
    is evaluated; any other expression is refused)."""
    class Loader(yaml.SafeLoader):
        pass

    def known_eval(loader, node):
        args = loader.construct_sequence(node)
        text = "".join(str(args[0]).split()) if len(args) == 1 else None
        if text not in KNOWN_EVALS:
            raise yaml.constructor.ConstructorError(None, None, f"!!python/object/apply:eval {args!r}: zoo evaluates "
                                                    "no expression but detectron2's own anchor sizes",
                                                    node.start_mark)
        return KNOWN_EVALS[text]

    Loader.add_constructor(EVAL_TAG, known_eval)
    return Loader


def _merge(a: dict, b: dict) -> None:
    """detectron2's ``merge_a_into_b``: nested tables merged, everything else replaced."""
    for k, v in a.items():
        if isinstance(v, dict) and isinstance(b.get(k), dict):
            _merge(v, b[k])
        else:
            b[k] = v


def read_yaml(path: Path, depth: int = 0) -> dict:
    """The file's keys over its ``_BASE_`` chain's."""
    if depth > MAX_DEPTH:
        raise ConversionError(f"{path}: _BASE_ chains more than {MAX_DEPTH} files deep (a cycle?)")
    yaml = _yaml()
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader(yaml))  # safe: see _loader
    except OSError as e:
        raise ConversionError(f"config {path} cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConversionError(f"config {path} is not plain YAML (zoo reads configs with yaml.safe_load: no Python "
                              f"tags): {first_line(e)}") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConversionError(f"config {path}: expected a YAML mapping of detectron2 keys, got {type(doc).__name__}")
    bases = doc.pop(BASE_KEY, None)
    if bases is None:
        return doc
    merged: dict = {}
    for base in bases if isinstance(bases, list) else [bases]:
        if not isinstance(base, str) or base.startswith(("http://", "https://")):
            raise ConversionError(f"{path}: _BASE_ {base!r}: expected a file path (relative to {path.parent}); "
                                  "download a base config first, zoo reads local files only")
        base_path = Path(base).expanduser()
        base_path = base_path if base_path.is_absolute() else path.parent / base_path
        if not base_path.is_file():
            raise ConversionError(f"{path}: _BASE_ {base!r} names {base_path}, which does not exist: put the base "
                                  "configs it chains to beside it (detectron2's configs/ directory), as detectron2 "
                                  "needs them too")
        _merge(read_yaml(base_path, depth + 1), merged)
    _merge(doc, merged)
    return merged


def _plain(v):
    """Tuples (yacs's) as lists, nested too: what TOML can write."""
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


class Config:
    """A merged detectron2 config; ``cfg["MODEL.RESNETS.DEPTH"]`` is the YAML's value, else detectron2's default."""

    def __init__(self, doc: dict, path: Path):
        self.doc, self.path = doc, path

    def __contains__(self, key: str) -> bool:
        node = self.doc
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def __getitem__(self, key: str):
        node = self.doc
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if key not in DEFAULTS:
                    raise KeyError(key)
                return DEFAULTS[key]
            node = node[part]
        if isinstance(node, str) and node[:1] in "([":  # yacs reads "(10.0, 10.0, 5.0, 5.0)" as a tuple
            try:
                node = ast.literal_eval(node)
            except (ValueError, SyntaxError):
                pass
        return _plain(node)


def load(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"config {path} does not exist")
    return Config(read_yaml(path), path)
