"""The export patches: the exact-resize transform (the resized size equals eager's under tracing and scripting, at many
sizes) and trace-safe batched NMS."""
import copy
import random
import warnings

import numpy as np

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


# torch.export: export_safe and the symbolic transform. Each module is exported once at one input and then run at
# others: a replacement that let the export fix a size or a count shows up as a wrong result or a refused input.

def export_program(module, args, dynamic_shapes, groups=2):
    from zoo.export.patches import export_safe
    with torch.no_grad(), export_safe(groups):
        return torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False).module()


def test_symbolic_size_equals_eager_with_ints_and_when_exported():
    from zoo.export.patches import SymbolicResizeTransform, symbolic_size
    for min_size, max_size in [(800, 1333), (320, 640)]:
        for h, w in SIZES:
            assert tuple(symbolic_size(h, w, float(min_size), float(max_size))) == eager_size(h, w, min_size, max_size)
    exact = SymbolicResizeTransform(800, 1333, MEAN, STD).eval()
    dim = torch.export.Dim("side", min=2, max=4096)
    exported = export_program(Resized(exact), (torch.zeros(3, 320, 416),), ({1: dim, 2: torch.export.Dim("w", min=2,
                                                                                                         max=4096)},))
    for h, w in [s for s in SIZES if min(s) >= 2][:20]:  # portrait, landscape and square, across the trap sizes
        assert tuple(exported(torch.zeros(3, h, w)).shape[-2:]) == eager_size(h, w, 800, 1333), (h, w)


class Batched(torch.nn.Module):
    def __init__(self, transform):
        super().__init__()
        self.t = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.t.batch_images([image], 32)


def test_exported_padding_is_eager_ceiling_at_other_sizes():
    """torchvision's float ceiling fixes the example's padded size under torch.export; the integer one does not."""
    from zoo.export.patches import SymbolicResizeTransform
    plain = GeneralizedRCNNTransform(800, 1333, MEAN, STD).eval()
    exported = export_program(Batched(SymbolicResizeTransform(800, 1333, MEAN, STD).eval()),
                              (torch.rand(3, 320, 416),),
                              ({1: torch.export.Dim("h", min=2, max=4096), 2: torch.export.Dim("w", min=2, max=4096)},))
    for h, w in [(320, 416), (321, 417), (800, 1088), (799, 1066), (33, 2)]:
        image = torch.rand(3, h, w)
        assert torch.equal(exported(image), plain.batch_images([image], 32)), (h, w)


class SelectThenNMS(torch.nn.Module):
    """A data-dependent box count, as in every detector: the boxes above a score threshold, then batched NMS."""

    def forward(self, boxes, scores, idxs):
        keep = scores > 0.2
        return box_ops.batched_nms(boxes[keep], scores[keep], idxs[keep], 0.5)


def test_exported_batched_nms_equals_eager_for_none_one_and_many_boxes():
    """Exported within export_safe: eager's kept indices (in order) for 0 and 1 selected boxes (torchvision's fake
    nms kernel alone makes the program assert 2 or more), a few, and above eager's 4000-box switch."""
    n = torch.export.Dim("n", min=2, max=100_000)
    exported = export_program(SelectThenNMS(), random_detections(50, 10, 0), ({0: n}, {0: n}, {0: n}), groups=10)
    for seed, (count, labels) in enumerate([(300, 10), (6000, 10), (2, 3)], start=1):
        boxes, scores, idxs = random_detections(count, labels, seed)
        for cut in (None, 1, 0):  # all scores, only the best one above the threshold, none above it
            if cut is not None:
                scores = torch.where(scores >= scores.max(), scores, torch.zeros_like(scores)) * cut
            assert torch.equal(exported(boxes, scores, idxs), SelectThenNMS()(boxes, scores, idxs)), (count, cut)


def test_export_safe_restores_torchvision():
    from torchvision.models.detection import roi_heads
    from torchvision.ops import poolers
    from zoo.export.patches import export_safe
    before = (box_ops.batched_nms, poolers._multiscale_roi_align, roi_heads.heatmaps_to_keypoints)
    kernel = lambda: torch._library.simple_registry.singleton.find("torchvision::nms").fake_impl.kernel.func  # noqa
    fake = kernel()
    with export_safe(2):
        assert kernel() is not fake and box_ops.batched_nms is not before[0]
        assert roi_heads.heatmaps_to_keypoints is not before[2]
    assert (box_ops.batched_nms, poolers._multiscale_roi_align, roi_heads.heatmaps_to_keypoints) == before
    assert kernel() is fake


class SelectThenDecode(torch.nn.Module):
    """torchvision's keypoint decoding (a Python loop over the detections, each heatmap resized to its box) on a
    data-dependent number of detections."""

    def forward(self, maps, rois, scores):
        from torchvision.models.detection import roi_heads
        keep = scores > 0.5
        return roi_heads.heatmaps_to_keypoints(maps[keep], rois[keep])


def test_exported_keypoint_decoding_equals_torchvisions_for_other_counts_and_box_sizes():
    """The decoding as a torch.while_loop (export_safe's), exported on 12 detections, gives torchvision's keypoints
    and scores exactly for 0, 1 and 40 detections, boxes from under a pixel (clamped to 1) to 300 px and ragged."""
    def inputs(n, seed):
        g = torch.Generator().manual_seed(seed)
        boxes, scores, _ = random_detections(n, 2, seed)
        boxes[: n // 4, 2:] = boxes[: n // 4, :2] + torch.rand(n // 4, 2, generator=g) * 0.9  # slivers
        boxes[n // 4: n // 2, 2:] += torch.rand(n // 2 - n // 4, 2, generator=g) * 240  # large
        return torch.randn(n, 17, 56, 56, generator=g), boxes, scores

    n = torch.export.Dim("n", min=2, max=1000)
    exported = export_program(SelectThenDecode(), inputs(12, 0), ({0: n}, {0: n}, {0: n}))
    for count, seed in [(40, 1), (1, 2), (0, 3)]:
        maps, boxes, scores = inputs(max(count, 8), seed)
        if count < 2:
            scores = torch.where(scores >= scores.max(), scores, torch.zeros_like(scores)) * count
        want = SelectThenDecode()(maps, boxes, scores)
        got = exported(maps, boxes, scores)
        assert len(got) == 2 and all(g.shape == w.shape and torch.equal(g, w) for g, w in zip(got, want)), count


class SelectThenPool(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from torchvision.ops import MultiScaleRoIAlign
        self.pool = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)

    def forward(self, f0, f1, f2, boxes, scores):
        return self.pool({"0": f0, "1": f1, "2": f2}, [boxes[scores > 0.5]], [(256, 320)])


def test_exported_roi_pooling_equals_eager_for_other_counts():
    """The RoI pooler with a data-dependent RoI count (its ``len(rois)`` fails under torch.export), exported on 20
    boxes, equals eager's for 0, 1 and 300 boxes spread over the feature levels."""
    g = torch.Generator().manual_seed(0)
    feats = [torch.rand(1, 8, 64 // 2 ** i, 80 // 2 ** i, generator=g) for i in range(3)]

    def boxes(n, seed):
        b, s, _ = random_detections(n, 2, seed)
        return b * torch.tensor([0.8, 0.8, 1.0, 1.0]), s

    n = torch.export.Dim("n", min=2, max=10_000)
    exported = export_program(SelectThenPool().eval(), (*feats, *boxes(20, 0)), (None, None, None, {0: n}, {0: n}))
    for count, seed in [(300, 1), (1, 2), (0, 3)]:
        b, s = boxes(max(count, 2), seed)
        if count < 2:
            s = torch.where(s >= s.max(), s, torch.zeros_like(s)) * count
        want = SelectThenPool().eval()(*feats, b, s)
        got = exported(*feats, b, s)
        assert got.shape == want.shape and torch.equal(got, want), count


class SelectThenHead(torch.nn.Module):
    """torchvision's v2 box head (convolutions with batch norm) on a data-dependent number of RoI features."""

    def __init__(self):
        super().__init__()
        from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead
        self.roi_heads = torch.nn.Module()
        self.roi_heads.box_head = FastRCNNConvFCHead((8, 7, 7), [16, 16], [32], norm_layer=torch.nn.BatchNorm2d)

    def forward(self, features, scores):
        return self.roi_heads.box_head(features[scores > 0.5])


def test_frozen_head_batch_norms_export_and_equal_eager_for_other_counts():
    """batch_norm's empty-input check stops torch.export on a data-dependent RoI count (v2 heads); the frozen layers
    export, and give eager's batch norm (random statistics) for 0, 1 and 50 RoIs."""
    from zoo.export.patches import frozen_head_batch_norms
    g = torch.Generator().manual_seed(0)
    eager = SelectThenHead().eval()
    for m in eager.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
    n = torch.export.Dim("n", min=2, max=10_000)
    with pytest.raises(Exception, match="data-dependent"):
        export_program(eager, (torch.rand(20, 8, 7, 7, generator=g), torch.rand(20, generator=g)), ({0: n}, {0: n}))
    frozen = frozen_head_batch_norms(copy.deepcopy(eager))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.modules())
    exported = export_program(frozen, (torch.rand(20, 8, 7, 7, generator=g), torch.rand(20, generator=g)),
                              ({0: n}, {0: n}))
    for count in (50, 1, 0):
        features, scores = torch.rand(max(count, 2), 8, 7, 7, generator=g), torch.zeros(max(count, 2))
        scores[:count] = 1.0
        with torch.no_grad():
            want = eager(features, scores)
        assert want.shape[0] == count
        torch.testing.assert_close(exported(features, scores), want, rtol=1e-5, atol=1e-5)


def test_float64_resize_equals_eager_size_when_exported_to_onnx(tmp_path):
    """The dynamo ONNX exporter writes symbolic size arithmetic in float32 (1 px off at e.g. 308x437, 300x602 with
    min_size 800): Float64ResizeTransform's graph, run by onnxruntime, gives eager's resized size at the trap sizes."""
    import onnxruntime as ort
    from zoo.export.patches import Float64ResizeTransform, SymbolicResizeTransform
    traps = [(308, 437), (300, 602), (437, 308)]

    def onnx_sizes(transform_class, sizes):
        path = tmp_path / f"{transform_class.__name__}.onnx"
        dims = ({1: torch.export.Dim("h", min=2, max=4096), 2: torch.export.Dim("w", min=2, max=4096)},)
        torch.onnx.export(Resized(transform_class(800, 1333, MEAN, STD)).eval(), (torch.zeros(3, 320, 416),), str(path),
                          dynamo=True, input_names=["image"], dynamic_shapes=dims, external_data=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [tuple(session.run(None, {"image": np.zeros((3, h, w), np.float32)})[0].shape[-2:]) for h, w in sizes]

    sizes = traps + [s for s in SIZES if min(s) >= 2][:12]
    assert onnx_sizes(Float64ResizeTransform, sizes) == [eager_size(h, w, 800, 1333) for h, w in sizes]
    # the symbolic transform (exact in a .pt2 program) is what the ONNX translation gets wrong
    assert onnx_sizes(SymbolicResizeTransform, traps) != [eager_size(h, w, 800, 1333) for h, w in traps]


@pytest.mark.parametrize("builder", ["ssdlite320_mobilenet_v3_large", "ssd300_vgg16"])
def test_device_safe_default_boxes_equal_torchvision_and_follow_the_box_sizes_device(builder):
    """A scripted, frozen SSD holds its box sizes as constants that torch.jit.load(map_location="cuda") moves to the
    GPU while torchvision makes the grid on the CPU (measured: every scripted SSD failed on CUDA). The replacement gives
    torchvision's default boxes, and puts the grid on the sizes' device (the meta device stands in for CUDA here)."""
    from torchvision.models import detection
    from zoo.export.patches import DeviceSafeDefaultBoxGenerator, device_safe_default_boxes
    model = getattr(detection, builder)(weights=None, weights_backbone=None).eval()
    original = copy.deepcopy(model.anchor_generator)
    safe = device_safe_default_boxes(model).anchor_generator
    assert type(safe) is DeviceSafeDefaultBoxGenerator
    grids = [[[20, 20], [10, 10], [5, 5], [3, 3], [2, 2], [1, 1]], [[38, 38], [19, 19], [10, 10], [5, 5], [3, 3], [1, 1]]]
    for grid, size in zip(grids, ([320, 320], [300, 300])):
        grid = grid[:len(original._wh_pairs)]
        assert torch.equal(safe._grid_default_boxes(grid, size), original._grid_default_boxes(grid, size))
    for generator in (original, safe):
        generator._wh_pairs = [w.to("meta") for w in generator._wh_pairs]
    with pytest.raises(RuntimeError, match="device"):
        original._grid_default_boxes(grid, size)
    assert safe._grid_default_boxes(grid, size).device.type == "meta"
    assert device_safe_default_boxes(torch.nn.Linear(1, 1)).__class__ is torch.nn.Linear
