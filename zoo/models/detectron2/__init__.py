"""detectron2-faithful detectors built on torchvision's detection classes, with no detectron2 import: the same
pre-processing, anchors, proposals, RoIAlignV2 pooling and post-processing as detectron2's eager models, so a converted
detectron2 checkpoint (``zoo convert-d2``) gives detectron2's detections. Parameter names follow detectron2's
(``backbone.bottom_up.res2.0.conv1.weight``), so the conversion renames only the RPN head and reorders the box
predictor. Needs torch."""

# the builders a manifest (a store's index too) may name: zoo convert-d2 writes these
BUILDERS = ("zoo.models.detectron2.rcnn:faster_rcnn", "zoo.models.detectron2.rcnn:mask_rcnn",
            "zoo.models.detectron2.rcnn:keypoint_rcnn",
            "zoo.models.detectron2.retinanet:retinanet", "zoo.models.detectron2.cascade:cascade_rcnn",
            "zoo.models.detectron2.cascade:cascade_mask_rcnn", "zoo.models.detectron2.pointrend:pointrend_rcnn",
            "zoo.models.detectron2.panoptic:panoptic_fpn")
