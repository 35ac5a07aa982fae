"""A detectron2 config as the zoo's builder and its arguments (``zoo.models.detectron2``), or a refusal naming the
config key the converter cannot reproduce and what it supports instead."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConversionError
from .config import Config

RCNN_BUILDER = "zoo.models.detectron2.rcnn:faster_rcnn"
MASK_BUILDER = "zoo.models.detectron2.rcnn:mask_rcnn"
RETINA_BUILDER = "zoo.models.detectron2.retinanet:retinanet"
KEYPOINT_BUILDER = "zoo.models.detectron2.rcnn:keypoint_rcnn"
CASCADE_BUILDER = "zoo.models.detectron2.cascade:cascade_rcnn"
CASCADE_MASK_BUILDER = "zoo.models.detectron2.cascade:cascade_mask_rcnn"
POINTREND_BUILDER = "zoo.models.detectron2.pointrend:pointrend_rcnn"
PANOPTIC_BUILDER = "zoo.models.detectron2.panoptic:panoptic_fpn"
MASK_HEADS = ("MaskRCNNConvUpsampleHead", "PointRendMaskHead")
ROI_HEADS = ("StandardROIHeads", "CascadeROIHeads", "PointRendROIHeads")  # (PointRend's: StandardROIHeads'
# inference, with its checkpoint renames)
FPN_LEVELS = ["p2", "p3", "p4", "p5", "p6"]
RETINA_LEVELS = ["p3", "p4", "p5", "p6", "p7"]
STAGES = ["res2", "res3", "res4", "res5"]
DEPTHS = (50, 101, 152)
FROZEN_NORMS = ("FrozenBN", "BN", "SyncBN", "naiveSyncBN")  # all are a fixed affine map at inference


@dataclass
class Spec:
    builder: str
    args: dict = field(default_factory=dict)
    num_classes: int = 80           # detectron2's NUM_CLASSES (no background)
    dataset: str = ""               # DATASETS.TEST[0], for the category names
    classes_key: str = "MODEL.ROI_HEADS.NUM_CLASSES"
    agnostic_boxes: bool = False    # one box regression for every class (a cascade's)


def _expect(cfg: Config, key: str, allowed, what: str) -> None:
    value = cfg[key]
    ok = value in allowed if isinstance(allowed, (tuple, set)) else value == allowed
    if not ok:
        raise ConversionError(f"{cfg.path}: {key} = {value!r}: zoo convert-d2 reproduces {what}, not this; "
                              "convert a config without it (or a model trained without it)")


def _resnet_args(cfg: Config, backbone: str = "build_resnet_fpn_backbone", stages: list = STAGES) -> dict:
    _expect(cfg, "MODEL.BACKBONE.NAME", backbone, f"ResNet-FPN backbones ({backbone} for this architecture)")
    deform = cfg["MODEL.RESNETS.DEFORM_ON_PER_STAGE"]
    if any(deform):
        raise ConversionError(f"{cfg.path}: MODEL.RESNETS.DEFORM_ON_PER_STAGE = {deform}: deformable convolution is "
                              "not reproduced by zoo convert-d2 (it needs detectron2's compiled op); convert a model "
                              "without it")
    _expect(cfg, "MODEL.RESNETS.DEPTH", DEPTHS, "ResNet depths 50, 101 and 152 (bottleneck blocks)")
    _expect(cfg, "MODEL.RESNETS.NORM", FROZEN_NORMS, "batch norms (FrozenBN, BN, SyncBN), frozen at inference")
    _expect(cfg, "MODEL.RESNETS.RES5_DILATION", 1, "RES5_DILATION 1")
    _expect(cfg, "MODEL.RESNETS.OUT_FEATURES", stages, f"FPN over {stages}")
    _expect(cfg, "MODEL.FPN.IN_FEATURES", stages, f"FPN over {stages}")
    _expect(cfg, "MODEL.FPN.NORM", "", "FPN without a norm (NORM '')")
    _expect(cfg, "MODEL.FPN.FUSE_TYPE", "sum", "FPN sum fusion")
    return {"depth": cfg["MODEL.RESNETS.DEPTH"], "num_groups": cfg["MODEL.RESNETS.NUM_GROUPS"],
            "width_per_group": cfg["MODEL.RESNETS.WIDTH_PER_GROUP"], "stride_in_1x1": cfg["MODEL.RESNETS.STRIDE_IN_1X1"],
            "stem_out_channels": cfg["MODEL.RESNETS.STEM_OUT_CHANNELS"],
            "res2_out_channels": cfg["MODEL.RESNETS.RES2_OUT_CHANNELS"], "fpn_out_channels": cfg["MODEL.FPN.OUT_CHANNELS"]}


def _input_args(cfg: Config) -> dict:
    _expect(cfg, "INPUT.FORMAT", ("BGR", "RGB"), "BGR and RGB inputs")
    _expect(cfg, "TEST.AUG.ENABLED", False, "single-scale inference (no test-time augmentation)")
    min_size = cfg["INPUT.MIN_SIZE_TEST"]
    if not isinstance(min_size, int):
        raise ConversionError(f"{cfg.path}: INPUT.MIN_SIZE_TEST = {min_size!r}: expected one size (an integer)")
    return {"pixel_mean": [float(v) for v in cfg["MODEL.PIXEL_MEAN"]], "pixel_std": [float(v) for v in cfg["MODEL.PIXEL_STD"]],
            "input_format": cfg["INPUT.FORMAT"], "min_size": min_size, "max_size": cfg["INPUT.MAX_SIZE_TEST"]}


def _anchor_args(cfg: Config, levels: int) -> dict:
    _expect(cfg, "MODEL.ANCHOR_GENERATOR.NAME", "DefaultAnchorGenerator",
            "axis-aligned anchors (DefaultAnchorGenerator; rotated boxes are not supported)")
    sizes, ratios = cfg["MODEL.ANCHOR_GENERATOR.SIZES"], cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"]
    for key, value in (("SIZES", sizes), ("ASPECT_RATIOS", ratios)):
        if not (isinstance(value, list) and value and all(isinstance(v, list) for v in value)
                and len(value) in (1, levels)):
            raise ConversionError(f"{cfg.path}: MODEL.ANCHOR_GENERATOR.{key} = {value!r}: expected one list, or one "
                                  f"per level ({levels})")
    return {"anchor_sizes": sizes, "aspect_ratios": ratios, "anchor_offset": float(cfg["MODEL.ANCHOR_GENERATOR.OFFSET"])}


def _rpn_args(cfg: Config) -> dict:
    _expect(cfg, "MODEL.PROPOSAL_GENERATOR.NAME", "RPN", "the RPN proposal generator")
    _expect(cfg, "MODEL.LOAD_PROPOSALS", False, "proposals from the RPN (not precomputed ones)")
    _expect(cfg, "MODEL.RPN.HEAD_NAME", "StandardRPNHead", "detectron2's StandardRPNHead")
    _expect(cfg, "MODEL.RPN.IN_FEATURES", FPN_LEVELS, f"an RPN over {FPN_LEVELS}")
    _expect(cfg, "MODEL.RPN.CONV_DIMS", [-1], "the RPN head's one convolution (CONV_DIMS [-1])")
    return {**_anchor_args(cfg, len(FPN_LEVELS)), "rpn_pre_nms_top_n_test": cfg["MODEL.RPN.PRE_NMS_TOPK_TEST"],
            "rpn_post_nms_top_n_test": cfg["MODEL.RPN.POST_NMS_TOPK_TEST"], "rpn_nms_thresh": cfg["MODEL.RPN.NMS_THRESH"],
            "rpn_min_box_size": float(cfg["MODEL.PROPOSAL_GENERATOR.MIN_SIZE"]),
            "rpn_bbox_reg_weights": [float(v) for v in cfg["MODEL.RPN.BBOX_REG_WEIGHTS"]]}


def _box_args(cfg: Config) -> dict:
    _expect(cfg, "MODEL.ROI_HEADS.NAME", ROI_HEADS,
            "StandardROIHeads, CascadeROIHeads and PointRendROIHeads (no custom RoI head)")
    _expect(cfg, "MODEL.ROI_HEADS.IN_FEATURES", FPN_LEVELS[:4], f"RoI heads over {FPN_LEVELS[:4]}")
    _expect(cfg, "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "the FastRCNNConvFCHead box head (no custom head)")
    _expect(cfg, "MODEL.ROI_BOX_HEAD.NORM", "", "a box head without a norm (NORM '')")
    _expect(cfg, "MODEL.ROI_BOX_HEAD.POOLER_TYPE", ("ROIAlignV2", "ROIAlign"), "ROIAlignV2 and ROIAlign pooling")
    cascade = _cascade(cfg)
    _expect(cfg, "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", cascade,
            "class-agnostic box regression in a cascade (detectron2's CascadeROIHeads asserts it) and class-specific "
            "box regression otherwise")
    _expect(cfg, "MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE", False, "softmax box scores")
    # (a cascade's stages have weights of their own: detectron2 reads no ROI_BOX_HEAD.BBOX_REG_WEIGHTS for it)
    regression = {"cascade_bbox_reg_weights": _stage_weights(cfg)} if cascade else \
        {"bbox_reg_weights": [float(v) for v in cfg["MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS"]]}
    return {"box_num_conv": cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"], "box_conv_dim": cfg["MODEL.ROI_BOX_HEAD.CONV_DIM"],
            "box_num_fc": cfg["MODEL.ROI_BOX_HEAD.NUM_FC"], "box_fc_dim": cfg["MODEL.ROI_BOX_HEAD.FC_DIM"],
            "pooler_resolution": cfg["MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION"],
            "pooler_sampling_ratio": cfg["MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO"],
            "pooler_aligned": cfg["MODEL.ROI_BOX_HEAD.POOLER_TYPE"] == "ROIAlignV2",
            "box_score_thresh": float(cfg["MODEL.ROI_HEADS.SCORE_THRESH_TEST"]),
            "box_nms_thresh": float(cfg["MODEL.ROI_HEADS.NMS_THRESH_TEST"]),
            "box_detections_per_img": cfg["TEST.DETECTIONS_PER_IMAGE"], **regression}


def _cascade(cfg: Config) -> bool:
    return cfg["MODEL.ROI_HEADS.NAME"] == "CascadeROIHeads"


def _stage_weights(cfg: Config) -> list:
    """A cascade's box-regression weights, four a stage, one stage per IoU threshold."""
    weights = cfg["MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS"]
    ious = cfg["MODEL.ROI_BOX_CASCADE_HEAD.IOUS"]
    if not (isinstance(weights, list) and weights and all(isinstance(w, list) and len(w) == 4 for w in weights)
            and isinstance(ious, list) and len(ious) == len(weights)):
        raise ConversionError(f"{cfg.path}: MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS = {weights!r} (IOUS = "
                              f"{ious!r}): zoo convert-d2 reproduces cascades of four weights a stage, one stage per IoU "
                              "threshold, not this; give each stage its weights and its IoU")
    return [[float(v) for v in w] for w in weights]


def _mask_args(cfg: Config) -> dict:
    _expect(cfg, "MODEL.ROI_MASK_HEAD.NAME", MASK_HEADS,
            "the MaskRCNNConvUpsampleHead and PointRendMaskHead mask heads (no custom head)")
    if cfg["MODEL.ROI_MASK_HEAD.NAME"] == "PointRendMaskHead":
        return _pointrend_args(cfg)
    _expect(cfg, "MODEL.ROI_MASK_HEAD.NORM", "", "a mask head without a norm (NORM '')")
    _expect(cfg, "MODEL.ROI_MASK_HEAD.POOLER_TYPE", ("ROIAlignV2", "ROIAlign"), "ROIAlignV2 and ROIAlign pooling")
    _expect(cfg, "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", False, "class-specific masks")
    return {"mask_num_conv": cfg["MODEL.ROI_MASK_HEAD.NUM_CONV"], "mask_conv_dim": cfg["MODEL.ROI_MASK_HEAD.CONV_DIM"],
            "mask_pooler_resolution": cfg["MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION"],
            "mask_pooler_sampling_ratio": cfg["MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO"],
            "mask_pooler_aligned": cfg["MODEL.ROI_MASK_HEAD.POOLER_TYPE"] == "ROIAlignV2"}


def _pointrend_args(cfg: Config) -> dict:
    """PointRend's coarse and point heads (projects/PointRend: PointRendMaskHead, StandardPointHead)."""
    _expect(cfg, "MODEL.ROI_MASK_HEAD.POINT_HEAD_ON", True, "PointRend with its point head (POINT_HEAD_ON True)")
    _expect(cfg, "MODEL.ROI_MASK_HEAD.IN_FEATURES", ["p2"], "a coarse mask head on p2")
    _expect(cfg, "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", False, "class-specific masks")
    _expect(cfg, "MODEL.POINT_HEAD.NAME", "StandardPointHead", "the StandardPointHead point head (not the implicit one)")
    _expect(cfg, "MODEL.POINT_HEAD.IN_FEATURES", ["p2"], "a point head on p2")
    _expect(cfg, "MODEL.POINT_HEAD.CLS_AGNOSTIC_MASK", False, "class-specific point predictions")
    _expect(cfg, "MODEL.POINT_HEAD.NUM_CLASSES", cfg["MODEL.ROI_HEADS.NUM_CLASSES"],
            "a point head of the RoI heads' classes (detectron2 asserts it)")
    conv_dim, channels = cfg["MODEL.ROI_MASK_HEAD.CONV_DIM"], cfg["MODEL.FPN.OUT_CHANNELS"]
    if not isinstance(conv_dim, int) or conv_dim > channels:
        raise ConversionError(f"{cfg.path}: MODEL.ROI_MASK_HEAD.CONV_DIM = {conv_dim!r}: zoo convert-d2 reproduces "
                              f"PointRend's coarse head with at most the FPN's {channels} channels "
                              "(MODEL.FPN.OUT_CHANNELS), not this; detectron2's ConvFCHead only reduces them")
    return {"mask_conv_dim": conv_dim, "mask_fc_dim": cfg["MODEL.ROI_MASK_HEAD.FC_DIM"],
            "mask_num_fc": cfg["MODEL.ROI_MASK_HEAD.NUM_FC"],
            "mask_pooler_resolution": cfg["MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION"],
            "mask_output_side_resolution": cfg["MODEL.ROI_MASK_HEAD.OUTPUT_SIDE_RESOLUTION"],
            "point_fc_dim": cfg["MODEL.POINT_HEAD.FC_DIM"], "point_num_fc": cfg["MODEL.POINT_HEAD.NUM_FC"],
            "point_coarse_pred_each_layer": cfg["MODEL.POINT_HEAD.COARSE_PRED_EACH_LAYER"],
            "subdivision_steps": cfg["MODEL.POINT_HEAD.SUBDIVISION_STEPS"],
            "subdivision_num_points": cfg["MODEL.POINT_HEAD.SUBDIVISION_NUM_POINTS"]}


def _keypoint_args(cfg: Config) -> dict:
    _expect(cfg, "MODEL.ROI_KEYPOINT_HEAD.NAME", "KRCNNConvDeconvUpsampleHead",
            "the KRCNNConvDeconvUpsampleHead keypoint head (no custom head)")
    _expect(cfg, "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE", ("ROIAlignV2", "ROIAlign"), "ROIAlignV2 and ROIAlign pooling")
    return {"num_keypoints": cfg["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS"],
            "keypoint_conv_dims": [int(d) for d in cfg["MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS"]],
            "keypoint_pooler_resolution": cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION"],
            "keypoint_pooler_sampling_ratio": cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO"],
            "keypoint_pooler_aligned": cfg["MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE"] == "ROIAlignV2"}


def _classes(cfg: Config, key: str) -> int:
    num_classes = cfg[key]
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConversionError(f"{cfg.path}: {key} = {num_classes!r}: expected a positive integer")
    return num_classes


def _dataset(cfg: Config) -> str:
    datasets = cfg["DATASETS.TEST"]
    return datasets[0] if datasets else ""


def _retinanet(cfg: Config) -> Spec:
    _expect(cfg, "MODEL.RETINANET.IN_FEATURES", RETINA_LEVELS, f"RetinaNet over {RETINA_LEVELS}")
    _expect(cfg, "MODEL.RETINANET.NUM_CONVS", 4, "RetinaNet heads of 4 convolutions (torchvision's)")
    _expect(cfg, "MODEL.RETINANET.NORM", "", "RetinaNet heads without a norm (NORM '')")
    num_classes = _classes(cfg, "MODEL.RETINANET.NUM_CLASSES")
    args = {"num_classes": num_classes + 1, **_resnet_args(cfg, "build_retinanet_resnet_fpn_backbone", STAGES[1:]),
            **_anchor_args(cfg, len(RETINA_LEVELS)),
            "score_thresh": float(cfg["MODEL.RETINANET.SCORE_THRESH_TEST"]),
            "nms_thresh": float(cfg["MODEL.RETINANET.NMS_THRESH_TEST"]),
            "topk_candidates": cfg["MODEL.RETINANET.TOPK_CANDIDATES_TEST"],
            "detections_per_img": cfg["TEST.DETECTIONS_PER_IMAGE"],
            "bbox_reg_weights": [float(v) for v in cfg["MODEL.RETINANET.BBOX_REG_WEIGHTS"]], **_input_args(cfg)}
    return Spec(RETINA_BUILDER, args, num_classes, _dataset(cfg), "MODEL.RETINANET.NUM_CLASSES")


def _panoptic_args(cfg: Config) -> dict:
    """Panoptic FPN's semantic head (SemSegFPNHead) and its merge's thresholds, on a Mask R-CNN."""
    _expect(cfg, "MODEL.MASK_ON", True, "Panoptic FPN with its mask head (MASK_ON True)")
    _expect(cfg, "MODEL.KEYPOINT_ON", False, "Panoptic FPN without keypoints")
    _expect(cfg, "MODEL.ROI_HEADS.NAME", "StandardROIHeads", "Panoptic FPN on the standard RoI heads")
    _expect(cfg, "MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead", "Panoptic FPN with Mask R-CNN's mask head")
    _expect(cfg, "MODEL.SEM_SEG_HEAD.NAME", "SemSegFPNHead", "detectron2's SemSegFPNHead semantic head")
    _expect(cfg, "MODEL.SEM_SEG_HEAD.NORM", ("GN", ""), "a semantic head with GroupNorm (GN) or no norm ('')")
    _expect(cfg, "MODEL.SEM_SEG_HEAD.COMMON_STRIDE", (4, 8, 16, 32), "a common stride of 4, 8, 16 or 32")
    features = cfg["MODEL.SEM_SEG_HEAD.IN_FEATURES"]
    levels = FPN_LEVELS[:4]
    if not (isinstance(features, list) and features and features == [f for f in levels if f in features]):
        raise ConversionError(f"{cfg.path}: MODEL.SEM_SEG_HEAD.IN_FEATURES = {features!r}: zoo convert-d2 reproduces a "
                              f"semantic head over FPN levels among {levels} in that order, not this")
    stride = cfg["MODEL.SEM_SEG_HEAD.COMMON_STRIDE"]
    if stride > 4 * 2 ** levels.index(features[0]):
        raise ConversionError(f"{cfg.path}: MODEL.SEM_SEG_HEAD.COMMON_STRIDE = {stride}: zoo convert-d2 reproduces a "
                              f"common stride at most the finest level's ({features[0]}: "
                              f"{4 * 2 ** levels.index(features[0])}), not this")
    dims = cfg["MODEL.SEM_SEG_HEAD.CONVS_DIM"]
    if not isinstance(dims, int) or dims < 1 or (cfg["MODEL.SEM_SEG_HEAD.NORM"] == "GN" and dims % 32):
        raise ConversionError(f"{cfg.path}: MODEL.SEM_SEG_HEAD.CONVS_DIM = {dims!r}: zoo convert-d2 reproduces a "
                              "positive number of channels, a multiple of 32 with NORM GN (its 32 groups), not this")
    return {"sem_seg_num_classes": _classes(cfg, "MODEL.SEM_SEG_HEAD.NUM_CLASSES"), "sem_seg_conv_dims": dims,
            "sem_seg_common_stride": cfg["MODEL.SEM_SEG_HEAD.COMMON_STRIDE"], "sem_seg_norm": cfg["MODEL.SEM_SEG_HEAD.NORM"],
            "sem_seg_in_features": features,
            "combine_overlap_thresh": float(cfg["MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH"]),
            "combine_stuff_area_thresh": float(cfg["MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT"]),
            "combine_instances_score_thresh": float(cfg["MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH"])}


def from_config(cfg: Config) -> Spec:
    if cfg["MODEL.META_ARCHITECTURE"] == "RetinaNet":
        return _retinanet(cfg)
    _expect(cfg, "MODEL.META_ARCHITECTURE", ("GeneralizedRCNN", "PanopticFPN"),
            "GeneralizedRCNN (Faster, Mask, Keypoint, Cascade R-CNN and PointRend), PanopticFPN and RetinaNet")
    num_classes = _classes(cfg, "MODEL.ROI_HEADS.NUM_CLASSES")
    args = {"num_classes": num_classes + 1, **_resnet_args(cfg), **_rpn_args(cfg), **_box_args(cfg), **_input_args(cfg)}
    masks, keypoints = cfg["MODEL.MASK_ON"], cfg["MODEL.KEYPOINT_ON"]
    if masks and keypoints:
        raise ConversionError(f"{cfg.path}: MODEL.MASK_ON and MODEL.KEYPOINT_ON are both true: zoo convert-d2 "
                              "reproduces a mask or a keypoint head, not both at once")
    if masks:
        args.update(_mask_args(cfg))
    if keypoints:
        args.update(_keypoint_args(cfg))
    cascade = _cascade(cfg)
    pointrend = masks and cfg["MODEL.ROI_MASK_HEAD.NAME"] == "PointRendMaskHead"
    if cascade and keypoints:
        raise ConversionError(f"{cfg.path}: MODEL.KEYPOINT_ON with MODEL.ROI_HEADS.NAME = CascadeROIHeads: zoo "
                              "convert-d2 reproduces a cascade with or without masks, not with keypoints")
    if cascade and pointrend:
        raise ConversionError(f"{cfg.path}: MODEL.ROI_MASK_HEAD.NAME = PointRendMaskHead with MODEL.ROI_HEADS.NAME "
                              "= CascadeROIHeads: zoo convert-d2 reproduces PointRend on the standard RoI heads, not "
                              "on a cascade")
    if cfg["MODEL.META_ARCHITECTURE"] == "PanopticFPN":
        return Spec(PANOPTIC_BUILDER, {**args, **_panoptic_args(cfg)}, num_classes, _dataset(cfg))
    if cascade:
        return Spec(CASCADE_MASK_BUILDER if masks else CASCADE_BUILDER, args, num_classes, _dataset(cfg),
                    agnostic_boxes=True)
    builder = POINTREND_BUILDER if pointrend else MASK_BUILDER if masks else \
        KEYPOINT_BUILDER if keypoints else RCNN_BUILDER
    return Spec(builder, args, num_classes, _dataset(cfg))
