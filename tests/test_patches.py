"""The export patches: the exact-resize transform (the resized size equals eager's under tracing and scripting, at many
sizes) and trace-safe batched NMS."""
import random
import warnings

import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform, _resize_image_and_masks

from torchvision.ops import boxes as box_ops

from zoo.export.patches import ExactResizeTransform, nms_groups, trace_safe

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SIZES = [(375, 500), (311, 400), (400, 600), (333, 333), (1, 7)] + \
        [(random.Random(i).randint(40, 900), random.Random(i + 1000).randint(40, 900)) for i in range(40)]


class Resized(torch.nn.Module):
    def __init__(self, transform):
        super().__init__()
        self.t = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.t.resize(image, None)[0]


def eager_size(h, w, min_size, max_size):
    return tuple(_resize_image_and_masks(torch.zeros(3, h, w), min_size, max_size)[0].shape[-2:])


@pytest.mark.parametrize("min_size, max_size", [(800, 1333), (320, 640)])
def test_traced_and_scripted_resize_match_eager_sizes(min_size, max_size):
    exact = ExactResizeTransform(min_size, max_size, MEAN, STD).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Resized(exact), (torch.zeros(3, 320, 416),), check_trace=False)
        scripted = torch.jit.script(Resized(exact))
    for h, w in SIZES:
        want = eager_size(h, w, min_size, max_size)
        image = torch.zeros(3, h, w)
        assert tuple(traced(image).shape[-2:]) == want, (h, w)
        assert tuple(scripted(image).shape[-2:]) == want, (h, w)
        assert tuple(exact.resize(image, None)[0].shape[-2:]) == want, (h, w)


def test_unpatched_torchvision_still_rounds_differently_when_traced():
    """The bug the patch exists for: traced torchvision resizes 1 px short at some sizes. If torchvision fixes it,
    this fails and the patch can go."""
    plain = GeneralizedRCNNTransform(800, 1333, MEAN, STD).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Resized(plain), (torch.zeros(3, 320, 416),), check_trace=False)
    wrong = [(h, w) for h, w in SIZES if tuple(traced(torch.zeros(3, h, w)).shape[-2:]) != eager_size(h, w, 800, 1333)]
    assert (375, 500) in wrong and (311, 400) in wrong


def test_resized_pixels_equal_eager():
    exact = ExactResizeTransform(800, 1333, MEAN, STD).eval()
    image = torch.rand(3, 375, 500, generator=torch.Generator().manual_seed(0))
    assert torch.equal(exact.resize(image, None)[0], _resize_image_and_masks(image, 800, 1333)[0])


def random_detections(n, labels, seed):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * 300
    boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=gen) * 60], dim=1)
    return boxes, torch.rand(n, generator=gen), torch.randint(0, labels, (n,), generator=gen)


class BatchedNMS(torch.nn.Module):
    def forward(self, boxes, scores, idxs):
        return box_ops.batched_nms(boxes, scores, idxs, 0.5)


def test_per_label_nms_traced_equals_eager_on_other_inputs():
    """Traced on one input within trace_safe, the graph keeps eager's result (indices, in order) on inputs of other
    sizes, with absent labels, above and below eager's 4000-box switch, and on no boxes at all."""
    with warnings.catch_warnings(), trace_safe(groups=10):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(BatchedNMS(), random_detections(50, 10, 0), check_trace=False)
    cases = [random_detections(n, labels, seed) for seed, (n, labels) in enumerate([(300, 10), (2000, 3), (6000, 10)])]
    cases.append((torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64)))
    for boxes, scores, idxs in cases:
        want = box_ops.batched_nms(boxes, scores, idxs, 0.5)
        assert torch.equal(traced(boxes, scores, idxs), want), len(boxes)


def test_nms_groups_cover_classes_and_rpn_levels():
    from torchvision.models.detection import keypointrcnn_resnet50_fpn, ssdlite320_mobilenet_v3_large
    kp = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2)
    assert nms_groups(kp, 2) == 5  # the RPN's 5 feature levels outnumber 2 classes
    assert nms_groups(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None), 91) == 91


class PasteMasks(torch.nn.Module):
    def forward(self, masks, boxes, image):
        from torchvision.models.detection import transform
        return transform.paste_masks_in_image(masks, boxes, image.shape[-2:])


def random_masks(n: int, h: int, w: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.7 + 0.3  # from sub-pixel boxes to most of the image
    boxes = torch.cat([xy, torch.minimum(xy + wh, torch.tensor([w, h]))], 1)  # detections are clipped to the image
    return torch.rand(n, 1, 28, 28, generator=g), boxes, torch.zeros(3, h, w)


def test_batched_mask_paste_traced_equals_eager_at_other_sizes_and_counts():
    """Traced within trace_safe on 5 masks of one image size, the batched paste gives eager's per-mask paste (resize,
    crop at the border, zeros elsewhere) for other counts and sizes, and an empty result for no detections."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    with warnings.catch_warnings(), trace_safe(groups=2):
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(PasteMasks(), random_masks(5, 120, 160, 0), check_trace=False)
    for seed, (n, h, w) in enumerate([(40, 333, 517), (1, 64, 64), (100, 480, 640)], start=1):
        masks, boxes, image = random_masks(n, h, w, seed)
        want, got = paste_masks_in_image(masks, boxes, (h, w)), traced(masks, boxes, image)
        assert got.shape == want.shape == (n, 1, h, w)
        assert (got - want).abs().max() < 1e-4, (n, h, w)
    masks, boxes, image = random_masks(0, 90, 70, 9)
    assert traced(masks, boxes, image).shape == (0, 1, 90, 70)


def test_top_candidates_equal_eager_threshold_then_topk():
    """RetinaNet's candidates, top-k first then the threshold: the same scores and indices, best first, as eager's
    threshold-then-top-k, with more, fewer or no scores above the threshold than k."""
    from torchvision.models.detection import _utils as det_utils
    from zoo.export.patches import _top_candidates
    for seed, (n, shift) in enumerate([(50_000, -3.0), (2_000, -3.0), (500, 0.0), (1_000, -20.0)]):
        logits = torch.randn(n // 10, 10, generator=torch.Generator().manual_seed(seed)) + shift
        scores = torch.sigmoid(logits).flatten()
        keep = scores > 0.05
        want_scores, order = scores[keep].topk(det_utils._topk_min(torch.where(keep)[0], 1000, 0))
        got_scores, got_idxs = _top_candidates(logits, 1000, 0.05)
        assert torch.equal(got_scores, want_scores) and torch.equal(got_idxs, torch.where(keep)[0][order]), n
