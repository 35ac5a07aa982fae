"""`zoo convert-d2` against detectron2 itself: the fixture checkpoint (tests/fixtures/d2, recorded by
tools/d2_reference.py with detectron2 installed; detectron2 is not needed here) converted through the command line,
the zoo's eager model run on the recorded photos and compared with detectron2's recorded detections; and the
refusals (pickled code, unsupported config keys, checkpoints that do not fit their config)."""
from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo.cli.main import main
from zoo.core.parity import Tolerance, match, panoptic_agreement
from zoo.errors import ConversionError

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "d2"
FASTER, MASK, RETINA = "small_faster_rcnn_R_50_FPN", "small_mask_rcnn_R_50_FPN", "small_retinanet_R_50_FPN"  # STEM.yaml, .pkl, .npz
X101 = "small_faster_rcnn_X_101_32x8d_FPN"  # ResNeXt: 32 groups, stride on the 3x3, torchvision's pixel std
KEYPOINT = "small_keypoint_rcnn_R_50_FPN"
CASCADE = "small_cascade_mask_rcnn_R_50_FPN"  # three box stages, class-agnostic boxes, masks on the last stage's
POINTREND = "small_pointrend_rcnn_R_50_FPN"  # coarse and point heads, 3 subdivision steps from 28x28 to 224x224
PANOPTIC = "small_panoptic_fpn_R_50"  # Mask R-CNN + the semantic FPN head (54 classes, GroupNorm), merged
NAMES = {FASTER: "d2_small", MASK: "d2_small_mask", RETINA: "d2_small_retina", X101: "d2_small_x101",
         KEYPOINT: "d2_small_keypoint", CASCADE: "d2_small_cascade", POINTREND: "d2_small_pointrend",
         PANOPTIC: "d2_small_panoptic"}  # converted
MASKED = (MASK, CASCADE, POINTREND, PANOPTIC)
BUILT = [FASTER, MASK, RETINA, CASCADE, POINTREND, PANOPTIC]  # the slow tests build each head once (the X-101 differs in its backbone only)
CHECKPOINT = FIXTURES / f"{FASTER}.pkl"
CONFIG = FIXTURES / f"{FASTER}.yaml"
PHOTOS = ("astronaut", "chelsea", "coffee")
EXACT = Tolerance(min_matched=1.0, iou=0.999, box_atol=0.01, score_atol=1e-4, max_borderline=0.0)


@pytest.fixture(scope="module")
def photos():
    return np.load(FIXTURES / "photos.npz")


@pytest.fixture(scope="module")
def recorded():
    """detectron2's recorded outputs by config stem."""
    return {stem: np.load(FIXTURES / f"{stem}.npz") for stem in NAMES}


@pytest.fixture(scope="module")
def reference(recorded):
    return recorded[FASTER]


def convert_all(out: Path) -> dict:
    """Each fixture checkpoint through `zoo convert-d2` into OUT: stem -> (manifest, weights)."""
    done = {}
    for stem, name in NAMES.items():
        assert main(["convert-d2", str(FIXTURES / f"{stem}.pkl"), "--config", str(FIXTURES / f"{stem}.yaml"),
                     "--out", str(out), "--name", name]) == 0
        done[stem] = (out / f"{name}.toml", out / f"{name}.safetensors")
    return done


@pytest.fixture(scope="module")
def conversions(tmp_path_factory):
    return convert_all(tmp_path_factory.mktemp("d2"))


@pytest.fixture(scope="module")
def converted(conversions):
    return conversions[FASTER]


@pytest.fixture(scope="module")
def models(conversions):
    from zoo.core.manifest import parse
    from zoo.load.architecture import stored_model
    return {stem: stored_model(parse(toml), weights) for stem, (toml, weights) in conversions.items()}


@pytest.fixture(scope="module")
def model(models):
    return models[FASTER]


def _detect(model, rgb: np.ndarray) -> dict:
    import torch
    with torch.no_grad():
        out = model([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0])[0]
    return {k: v.numpy() for k, v in out.items()}


def _d2(reference, name: str) -> dict:
    """detectron2's detections in torchvision's terms (label = class id + 1)."""
    return {"boxes": reference[f"{name}/boxes"], "scores": reference[f"{name}/scores"],
            "labels": reference[f"{name}/classes"] + 1}


def _assert_all_matched(reference, name: str, ours: dict) -> list:
    d2 = _d2(reference, name)
    pairs, p = match(d2, ours, EXACT)
    assert p.n_candidate == p.n_reference, (name, p)  # (the small X-101 finds nothing in the cat photo: nor may we)
    assert p.matched == p.n_reference, (name, p)
    assert p.max_box_diff <= 0.01 and p.max_score_diff <= 1e-4, (name, p)
    return pairs


@pytest.mark.parametrize("stem", list(NAMES))
@pytest.mark.parametrize("name", PHOTOS)
def test_eager_gives_detectron2s_detections(models, recorded, photos, stem, name):
    """From the photo as the zoo hands it over (RGB in [0, 1]) to detectron2's recorded detections (its
    DefaultPredictor path: PIL resize of the uint8 BGR image, then the model): every one matched, boxes within
    0.01 px. For the Mask R-CNN, each matched detection's mask binarised at 0.5 against detectron2's ``pred_masks``.
    The Keypoint R-CNN's keypoints within 0.01 px, their scores within 1e-4.
    Measured (docs/detectron2.md): 44, 44, 205, 34 and 53 detections all matched, box difference 0.0 with one thread (as
    detectron2 was recorded), <= 1.2e-4 px with two; every mask pixel equal with one thread."""
    ours = _detect(models[stem], photos[f"{name}/image"])
    pairs = _assert_all_matched(recorded[stem], name, ours)
    if stem in MASKED:
        h, w = photos[f"{name}/image"].shape[:2]
        assert ours["masks"].shape == (len(recorded[stem][f"{name}/scores"]), 1, h, w)
        _assert_masks_match(recorded[stem], name, ours["masks"], pairs)
    if stem == KEYPOINT:
        _assert_keypoints_match(recorded[stem][f"{name}/keypoints"], ours, pairs)
    if stem == PANOPTIC:
        _assert_panoptic_match(recorded[stem], name, ours)


def _d2_panoptic(reference, name: str) -> dict:
    """detectron2's recorded panoptic output in the zoo's terms: a thing segment's category is its label (1 + the
    class id)."""
    info = reference[f"{name}/segments_info"].copy()
    info[:, 1] += info[:, 2]
    return {"panoptic_seg": reference[f"{name}/panoptic_seg"], "segments_info": info}


def _assert_panoptic_match(reference, name: str, ours: dict, agree: float = 0.9999, sem_atol: float = 1e-4) -> None:
    """``sem_seg`` at the recorded pixels within ``sem_atol`` (every channel) and its argmax on every pixel but 0.01%;
    ``panoptic_seg`` and ``segments_info`` as detectron2's: the segments in its order with its ids, categories and
    instances, and at least ``agree`` of the pixels in the same segment (parity's rule)."""
    from zoo.core.parity import panoptic_agreement
    sem = np.asarray(ours["sem_seg"])
    h, w = reference[f"{name}/panoptic_seg"].shape
    assert sem.shape == (54, h, w) and np.asarray(ours["panoptic_seg"]).dtype == np.int32
    rows, cols = reference[f"{name}/sem_seg_pixels"].T
    assert np.abs(sem[:, rows, cols] - reference[f"{name}/sem_seg_samples"]).max() <= sem_atol
    assert (sem.argmax(0) != reference[f"{name}/sem_seg_argmax"]).mean() <= 1e-4
    d2 = _d2_panoptic(reference, name)
    segments = np.asarray(ours["segments_info"])
    assert np.array_equal(segments[:, :4], d2["segments_info"][:, :4]), name
    assert np.abs(segments[:, 4] - d2["segments_info"][:, 4]).max() <= 0.001 * h * w
    assert panoptic_agreement(d2, {k: np.asarray(ours[k]) for k in d2}) >= agree


def _d2_masks(reference, name: str, width: int) -> np.ndarray:
    """detectron2's recorded ``pred_masks`` (N, H, W) of the photo, unpacked."""
    return np.unpackbits(reference[f"{name}/masks"], axis=-1)[:, :, :width].astype(bool)


def _assert_masks_match(reference, name: str, masks: np.ndarray, pairs: list) -> None:
    """Each matched detection's mask (probabilities, (N, 1, H, W)) binarised at 0.5 against detectron2's
    ``pred_masks``: within 0.1% of the image's pixels per mask."""
    h, w = masks.shape[-2:]
    d2_masks = _d2_masks(reference, name, w)
    masks = masks.reshape(len(masks), h, w)
    wrong = max(int(((masks[j] >= 0.5) != d2_masks[i]).sum()) for i, j in pairs)
    assert wrong <= 0.001 * h * w, f"{name}: a mask has {wrong} pixels unlike detectron2's"


def _assert_keypoints_match(d2_keypoints: np.ndarray, ours: dict, pairs: list) -> None:
    """detectron2's ``pred_keypoints`` (x, y, score) of each matched detection: ours are (x, y, score) too."""
    assert ours["keypoints"].shape[1:] == (17, 3) and ours["keypoints_scores"].shape[1:] == (17,)
    for i, j in pairs:
        assert np.abs(ours["keypoints"][j, :, :2] - d2_keypoints[i, :, :2]).max() <= 0.01
        assert np.abs(ours["keypoints"][j, :, 2] - d2_keypoints[i, :, 2]).max() <= 1e-4


@pytest.mark.parametrize("name", PHOTOS)
def test_resize_is_detectron2s(model, reference, photos, name):
    """ResizeShortestEdge's size rule and PIL's bilinear pixels, exactly (the photos are shrunk, enlarged, and
    enlarged to the long-side limit)."""
    import torch
    t = model.transform
    rgb = torch.from_numpy(photos[f"{name}/image"]).permute(2, 0, 1).float() / 255.0
    ours = t.resize_pixels(t.normalize(rgb)).permute(1, 2, 0).numpy()
    d2 = photos[f"{name}/d2_input_320_512"]
    assert ours.shape == d2.shape
    assert np.array_equal(ours, d2.astype(np.float32))


def test_pil_resize_on_random_images():
    """PIL's bilinear resize reproduced at scales from 1/6.7 to 25 (every pixel equal)."""
    import torch
    from PIL import Image

    from zoo.models.detectron2 import pilresize
    rng = np.random.default_rng(0)
    for h, w, nh, nw in [(100, 130, 800, 1040), (1000, 1333, 333, 444), (57, 91, 58, 90), (2000, 1500, 300, 225),
                         (31, 17, 800, 439), (64, 80, 64, 100)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
        x = torch.from_numpy(img).permute(2, 0, 1).double()
        x = pilresize.resize(x, torch.tensor([nh, nw], dtype=torch.float64))
        assert np.array_equal(x.permute(1, 2, 0).numpy().astype(np.uint8), pil), (h, w, nh, nw)


def test_the_export_forms_of_the_resize_are_eagers_on_plain_ints():
    """torch.export's forms of detectron2's size rule (the long-side rescale as a min with 1) and of PIL's resize
    (symbolic clamps, the 33-tap window) give eager's sizes and pixels when handed ints: the sides either way of the
    rescale, a long side landing exactly on MAX_SIZE, no resize (MIN_SIZE 0 keeps the size)."""
    import torch

    from zoo.models.detectron2 import pilresize
    from zoo.models.detectron2.transform import resized_size, symbolic_resized_size
    rng = np.random.default_rng(0)
    sizes = [(int(h), int(w)) for h, w in rng.integers(2, 3000, (500, 2))]
    sizes += [(800, 1333), (1333, 800), (600, 1000), (750, 1250), (480, 800), (800, 800), (2, 2999)]
    for short, longest in [(800, 1333), (320, 512), (640, 1000), (1000, 1000)]:
        for h, w in sizes:
            assert symbolic_resized_size(h, w, float(short), float(longest)) == resized_size(h, w, short, longest)
    for h, w, nh, nw in [(100, 130, 800, 1040), (1000, 1333, 333, 444), (57, 91, 58, 90), (64, 80, 64, 80)]:
        x = torch.from_numpy(rng.integers(0, 256, (3, h, w))).double()
        want = pilresize.resize(x, torch.tensor([nh, nw], dtype=torch.float64))
        assert torch.equal(pilresize.symbolic_resize(x, nh, nw), want), (h, w, nh, nw)


def test_proposals_are_detectron2s(model, reference, photos):
    """The RPN's first 50 proposals of the astronaut (anchors, top-k per level, NMS per level), within 1e-3 px
    (measured: 0 with one thread)."""
    seen = []
    hook = model.rpn.register_forward_hook(lambda m, i, o: seen.append(o[0][0]))
    try:
        _detect(model, photos["astronaut/image"])
    finally:
        hook.remove()
    assert len(seen[0]) == 1000
    assert np.abs(seen[0][:50].numpy() - reference["astronaut/proposals"]).max() < 1e-3


@pytest.mark.parametrize("stem", [*BUILT, KEYPOINT])
def test_the_scripted_model_is_eager(models, conversions, photos, stem):
    """The scripting method's ``torch.jit.script`` of the exportable model (what it compiles, before its freezing and
    channels_last weights) gives the eager model's outputs exactly, masks and keypoints included, called twice
    (TorchScript optimises its graph after the first calls). The Keypoint R-CNN on the astronaut (24 people; it finds
    none in the cat photo): its decoding loop compiled, not frozen at a count."""
    import torch

    from zoo.core.manifest import parse
    from zoo.export.common import exportable
    from zoo.export.scripting import script
    manifest = parse(conversions[stem][0])
    scripted = script(exportable(models[stem], manifest))
    name = "astronaut" if stem == KEYPOINT else "chelsea"
    image = torch.from_numpy(photos[f"{name}/image"]).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        eager = models[stem]([image])[0]
        assert stem != KEYPOINT or len(eager["boxes"]) > 0
        for _ in range(2):
            out = dict(zip(manifest.outputs, scripted([image])))
            assert all(torch.equal(out[k], eager[k]) for k in manifest.outputs), stem


def test_the_manifest(converted):
    """What convert-d2 writes: the detectron2 builder with the config's values (through its _BASE_ chain: depth
    from the 3x config, anchors from Base-RCNN-FPN, the widths and test size from the small config), COCO's names;
    tracing, scripting and ONNX listed, the others named."""
    from zoo.core.manifest import parse
    m = parse(converted[0])
    assert m.builder == "zoo.models.detectron2.rcnn:faster_rcnn"
    args = m.builder_args
    assert (args["depth"], args["stride_in_1x1"], args["width_per_group"], args["fpn_out_channels"]) == (50, True, 8, 32)
    assert args["anchor_sizes"] == [[32], [64], [128], [256], [512]] and args["rpn_pre_nms_top_n_test"] == 1000
    assert (args["min_size"], args["max_size"], args["pixel_std"], args["input_format"]) == (320, 512, [1.0] * 3, "BGR")
    assert (args["box_score_thresh"], args["box_nms_thresh"], args["box_detections_per_img"]) == (0.05, 0.5, 100)
    assert args["num_classes"] == 81 == len(m.categories)
    assert list(m.categories[:3]) == ["__background__", "person", "bicycle"] and m.categories[-1] == "toothbrush"
    assert "N/A" not in m.categories
    assert [e.method for e in m.exports] == ["tracing", "scripting", "onnx", "export"]
    assert all(tuple(e.devices) == ("cpu",) for e in m.exports)  # what was measured (no GPU run of these models)
    assert {u.method for u in m.unsupported} == {"aoti"}


@pytest.mark.parametrize("stem", [MASK, KEYPOINT])
def test_detectron2s_interface(models, recorded, photos, stem):
    """detectron2's inputs (BGR uint8 CHW, height, width) in, its instances out: the recorded classes, boxes, scores,
    masks and keypoints, by detectron2's field names; at another height and width (detectron2's convention for an
    image resized before its model), boxes scaled to it."""
    import torch

    from zoo.load.d2interface import Detectron2Interface
    rgb = photos["astronaut/image"]
    bgr = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1)))
    model = Detectron2Interface(models[stem])
    h, w = rgb.shape[:2]
    with torch.no_grad():
        out = model([{"image": bgr, "height": h, "width": w}])[0]["instances"]
        half = model([{"image": bgr, "height": h // 2, "width": w // 2}])[0]["instances"]
    ref = recorded[stem]
    assert len(out) == len(ref["astronaut/scores"]) and out.image_size == (h, w)
    order = np.argsort(-out.scores.numpy(), kind="stable")
    assert np.array_equal(out.pred_classes.numpy()[order], ref["astronaut/classes"])
    assert np.abs(out.pred_boxes.tensor.numpy()[order] - ref["astronaut/boxes"]).max() < 0.01
    if stem == MASK:
        d2_masks = _d2_masks(ref, "astronaut", w)
        assert out.pred_masks.dtype == torch.bool and (out.pred_masks.numpy()[order] != d2_masks).mean() < 1e-4
        assert tuple(half.pred_masks.shape[1:]) == (h // 2, w // 2)
    else:
        assert np.abs(out.pred_keypoints.numpy()[order] - ref["astronaut/keypoints"]).max() < 0.01
    sx, sy = (w // 2) / w, (h // 2) / h
    assert np.allclose(half.pred_boxes.tensor.numpy(), out.pred_boxes.tensor.numpy() * np.array([sx, sy, sx, sy]))
    assert out.has("scores") and not out.has("pred_keypoints" if stem == MASK else "pred_masks")
    with pytest.raises(zoo.InputError, match="detectron2's inputs"):
        model([bgr])


def test_detectron2s_interface_for_panoptic(models, recorded, photos):
    """A panoptic model under detectron2's interface: ``sem_seg`` and ``panoptic_seg`` as detectron2's (ids,
    segments_info dicts: a thing's 0-based class, score and instance, a stuff's area), the recorded segments; at
    half the height and width, the maps at that size."""
    import torch

    from zoo.load.d2interface import Detectron2Interface
    rgb = photos["coffee/image"]
    bgr = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1)))
    model = Detectron2Interface(models[PANOPTIC])
    h, w = rgb.shape[:2]
    with torch.no_grad():
        out = model([{"image": bgr, "height": h, "width": w}])[0]
        half = model([{"image": bgr, "height": h // 2, "width": w // 2}])[0]
    ids, segments = out["panoptic_seg"]
    assert tuple(out["sem_seg"].shape) == (54, h, w) and tuple(ids.shape) == (h, w)
    table = recorded[PANOPTIC]["coffee/segments_info"]
    assert [(s["id"], s["category_id"], s["isthing"]) for s in segments] == [(r[0], r[1], bool(r[2])) for r in table]
    instances = out["instances"]
    for s, row in zip(segments, table):
        if s["isthing"]:
            assert s["instance_id"] == row[3] and s["score"] == float(instances.scores[row[3]])
            assert instances.pred_classes[row[3]] == s["category_id"] and "area" not in s
        else:
            assert s["area"] == row[4] and "score" not in s
    assert tuple(half["sem_seg"].shape) == (54, h // 2, w // 2) and tuple(half["panoptic_seg"][0].shape) == (h // 2,
                                                                                                           w // 2)


def test_a_cascade_manifest(conversions):
    """The cascade builder with detectron2's three stages' box-regression weights (ROI_BOX_CASCADE_HEAD; no
    ROI_BOX_HEAD.BBOX_REG_WEIGHTS, which detectron2 does not read for a cascade); one box head and one class-agnostic
    box predictor a stage; tracing, scripting and ONNX, as the other R-CNNs."""
    from zoo.core.manifest import parse
    from zoo.load.architecture import architecture
    m = parse(conversions[CASCADE][0])
    assert m.builder == "zoo.models.detectron2.cascade:cascade_mask_rcnn"
    assert m.builder_args["cascade_bbox_reg_weights"] == [[10.0, 10.0, 5.0, 5.0], [20.0, 20.0, 10.0, 10.0],
                                                           [30.0, 30.0, 15.0, 15.0]]
    assert "bbox_reg_weights" not in m.builder_args and list(m.outputs) == ["boxes", "labels", "scores", "masks"]
    assert [e.method for e in m.exports] == ["tracing", "scripting", "onnx", "export"]
    heads = architecture(m).roi_heads
    assert len(heads.box_head) == len(heads.box_predictor) == 3
    assert [p.bbox_pred.out_features for p in heads.box_predictor] == [4, 4, 4]
    assert heads.mask_predictor.out_channels == 81


def test_a_cascade_averages_its_stages_scores(models, photos):
    """Each stage's class probabilities on the boxes the stage before it predicted, averaged: the detections' scores
    are the mean of the three stages' (with one stage's predictor alone the scores differ)."""
    import torch
    model = models[CASCADE]
    heads = model.roi_heads
    seen = []
    hooks = [p.register_forward_hook(lambda m, i, o: seen.append(torch.softmax(o[0], -1))) for p in heads.box_predictor]
    try:
        out = _detect(model, photos["astronaut/image"])
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == 3 and len(out["scores"]) > 0
    mean = (seen[0] + seen[1] + seen[2]) / 3
    assert all(np.isclose(mean[:, label].numpy(), s, atol=1e-6).any() for s, label in zip(out["scores"], out["labels"]))
    assert not all(np.isclose(seen[2][:, label].numpy(), s, atol=1e-6).any()
                   for s, label in zip(out["scores"], out["labels"]))


def test_a_pointrend_manifest(conversions):
    """PointRend's builder with its heads' config values; its coarse head has the channel-reducing convolution (the
    fixture's CONV_DIM 16 under the FPN's 32 channels) and subdivides from 28x28 in 3 steps (detectron2's adjustment
    of 7 and 5 steps to 784 points); tracing, scripting and ONNX."""
    from zoo.core.manifest import parse
    from zoo.load.architecture import architecture
    m = parse(conversions[POINTREND][0])
    assert m.builder == "zoo.models.detectron2.pointrend:pointrend_rcnn"
    args = m.builder_args
    assert (args["mask_conv_dim"], args["mask_output_side_resolution"], args["subdivision_steps"],
            args["subdivision_num_points"], args["point_num_fc"]) == (16, 7, 5, 784, 3)
    assert [e.method for e in m.exports] == ["tracing", "scripting", "onnx", "export"]
    head = architecture(m).roi_heads.mask_head
    assert (head.side, head.steps) == (28, 3) and head.coarse_head.reduce_channel_dim_conv.in_channels == 32


def test_pointrends_older_weight_names_convert_as_detectron2_renames_them(tmp_path, conversions):
    """A PointRend checkpoint of its first weight format (``roi_heads.mask_point_head.*``,
    ``roi_heads.mask_coarse_head.coarse_mask_fc1.*``) gives the same weights, as detectron2's loader renames them."""
    from safetensors.numpy import load_file

    from zoo.build.d2convert.checkpoint import read_pkl
    state = {k.replace("roi_heads.mask_head.point_head.", "roi_heads.mask_point_head.")
             .replace("roi_heads.mask_head.coarse_head.fc", "roi_heads.mask_coarse_head.coarse_mask_fc")
             .replace("roi_heads.mask_head.coarse_head.", "roi_heads.mask_coarse_head."): v
             for k, v in read_pkl(FIXTURES / f"{POINTREND}.pkl").items()}
    assert "roi_heads.mask_coarse_head.coarse_mask_fc1.weight" in state and "roi_heads.mask_point_head.fc1.weight" in state
    old = tmp_path / "old.pkl"
    with open(old, "wb") as f:
        pickle.dump({"model": state, "__author__": "test"}, f)
    assert main(["convert-d2", str(old), "--config", str(FIXTURES / f"{POINTREND}.yaml"), "--out", str(tmp_path),
                 "--name", "old"]) == 0
    a, b = load_file(str(tmp_path / "old.safetensors")), load_file(str(conversions[POINTREND][1]))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_panoptic_fpn_manifest(conversions):
    """Panoptic FPN's builder with the semantic head's and the merge's config values (the small config's thresholds),
    COCO panoptic's stuff names after detectron2's "things" channel, the panoptic outputs, and the panoptic parity
    rule in every method's tolerance; tracing, scripting and ONNX."""
    from zoo.core.manifest import parse
    m = parse(conversions[PANOPTIC][0])
    assert m.builder == "zoo.models.detectron2.panoptic:panoptic_fpn"
    args = m.builder_args
    assert (args["sem_seg_num_classes"], args["sem_seg_conv_dims"], args["sem_seg_common_stride"], args["sem_seg_norm"],
            args["sem_seg_in_features"]) == (54, 32, 4, "GN", ["p2", "p3", "p4", "p5"])
    assert (args["combine_overlap_thresh"], args["combine_stuff_area_thresh"],
            args["combine_instances_score_thresh"]) == (0.5, 1024.0, 0.1)
    stuff = m.weights["stuff_categories"]
    assert len(stuff) == 54 and stuff[:2] == ["things", "banner"] and stuff[-1] == "rug-merged"
    assert list(m.outputs) == ["boxes", "labels", "scores", "masks", "sem_seg", "panoptic_seg", "segments_info"]
    assert [e.method for e in m.exports] == ["tracing", "scripting", "onnx", "export"]
    assert all(e.tolerance["panoptic_agree"] == 0.999 and e.tolerance["sem_seg_atol"] == 0.01 for e in m.exports)


def _panoptic_model(conversions, **extra):
    from zoo.core.manifest import parse
    from zoo.load.architecture import architecture, fit_state
    from safetensors.torch import load_file
    manifest, weights = conversions[PANOPTIC]
    model = architecture(parse(manifest), **extra)
    fit_state(model, load_file(str(weights)), str(weights), "panoptic")
    return model


def test_panoptic_with_every_instance_under_the_merges_threshold(conversions, photos):
    """The astronaut with the merge's instance threshold above its best detection (0.43): the detections are
    returned as before, the panoptic output has stuff segments only, and they cover every pixel not left void."""
    ours = _detect(_panoptic_model(conversions, combine_instances_score_thresh=0.9), photos["astronaut/image"])
    assert len(ours["scores"]) == 26 and ours["scores"].max() < 0.9
    segments = ours["segments_info"]
    assert len(segments) > 5 and not segments[:, 2].any() and (segments[:, 3] == -1).all()
    assert np.array_equal(np.unique(ours["panoptic_seg"][ours["panoptic_seg"] > 0]), segments[:, 0])
    assert segments[:, 4].sum() == (ours["panoptic_seg"] > 0).sum()


def test_panoptic_of_an_empty_image_is_all_stuff(models):
    """A white image (no detection at all): the panoptic output is the semantic argmax's stuff, each segment
    its class's free pixels, ids 1.. in ascending class order."""
    ours = _detect(models[PANOPTIC], np.full((240, 300, 3), 255, np.uint8))
    assert len(ours["scores"]) == 0 and ours["masks"].shape == (0, 1, 240, 300)
    segments = ours["segments_info"]
    assert len(segments) >= 1 and not segments[:, 2].any()
    assert list(segments[:, 0]) == list(range(1, len(segments) + 1)) and (np.diff(segments[:, 1]) > 0).all()
    for seg_id, category, _, _, area in segments:
        assert (ours["panoptic_seg"] == seg_id).sum() == area == (ours["sem_seg"].argmax(0) == category).sum()


def test_a_keypoint_rcnn_manifest(conversions):
    """COCO's keypoint names and person; tracing, scripting, ONNX and export (on CPU; the keypoint decoding's loop
    over the detections is in the graph, in the program a torch.while_loop), a keypoint may move to a near-tied peak
    under the artifact's rounding (keypoint_atol); aoti named."""
    from zoo.core.manifest import parse
    m = parse(conversions[KEYPOINT][0])
    assert m.builder == "zoo.models.detectron2.rcnn:keypoint_rcnn" and list(m.categories) == ["__background__", "person"]
    assert m.weights["keypoint_names"][:3] == ["nose", "left_eye", "right_eye"] and len(m.weights["keypoint_names"]) == 17
    assert [(e.method, tuple(e.devices)) for e in m.exports] == [("tracing", ("cpu",)), ("scripting", ("cpu",)),
                                                                  ("onnx", ("cpu",)), ("export", ("cpu",))]
    assert all(e.tolerance["keypoint_atol"] == 8.0 for e in m.exports)
    assert {u.method for u in m.unsupported} == {"aoti"}
    assert next(e for e in m.exports if e.method == "export").format == "pt2"  # (the template lists no export)
    assert list(m.outputs) == ["boxes", "labels", "scores", "keypoints", "keypoints_scores"]


def test_keypoint_decoding_is_a_loop_in_the_trace(models, photos):
    """The traced Keypoint R-CNN decodes as many detections as an image has (24 people in the astronaut, none in the
    cat photo), each heatmap at its own box's size, as eager does: the loop is in the graph, not frozen at the
    example's count."""
    import torch

    from zoo.export.patches import FlatOutputs
    wrapper = FlatOutputs(models[KEYPOINT], ["boxes", "labels", "scores", "keypoints", "keypoints_scores"]).eval()
    images = {n: torch.from_numpy(photos[f"{n}/image"]).permute(2, 0, 1).float() / 255.0 for n in PHOTOS}
    counts = {}
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, ([images["coffee"]],), check_trace=False)
        for name, image in images.items():
            eager, ours = wrapper([image]), traced([image])
            assert all(torch.equal(a, b) for a, b in zip(eager, ours)), name
            counts[name] = len(eager[0])
    assert counts == {"astronaut": 24, "chelsea": 0, "coffee": 29}


def test_an_index_may_name_the_detectron2_builder(converted):
    """A store's index naming the package's detectron2 builder rebuilds it without $ZOO_TRUSTED_BUILDERS."""
    import dataclasses

    from zoo.core.manifest import parse
    from zoo.load.architecture import architecture
    m = dataclasses.replace(parse(converted[0]), source="index")
    assert architecture(m).roi_heads.box_predictor.cls_score.out_features == 81


def test_a_pth_converts_like_the_pkl(tmp_path, converted):
    """detectron2's training checkpoint ({"model": state_dict, "iteration": ...}, a .pth) gives the same weights."""
    import torch
    from safetensors.numpy import load_file

    from zoo.build.d2convert.checkpoint import read_pkl
    state = {k: torch.from_numpy(v) for k, v in read_pkl(CHECKPOINT).items()}
    torch.save({"model": state, "iteration": 270000, "optimizer": {"state": {}}}, tmp_path / "model_final.pth")
    assert main(["convert-d2", str(tmp_path / "model_final.pth"), "--config", str(CONFIG), "--out", str(tmp_path),
                 "--name", "from_pth"]) == 0
    a, b = load_file(str(tmp_path / "from_pth.safetensors")), load_file(str(converted[1]))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _convert(checkpoint, config=CONFIG, tmp_path=None):
    from zoo.build.d2convert.manifest import convert
    return convert(checkpoint, config, tmp_path, "refused")


def test_a_pkl_with_pickled_code_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "marker"
    bad = tmp_path / "model_final_evil.pkl"
    with open(bad, "wb") as f:
        pickle.dump({"model": {"backbone.x": np.zeros(3, np.float32), "y": _Evil(marker)}, "__author__": "x"}, f)
    with pytest.raises(ConversionError, match=r"pickled builtins\.exec, which is not a dict, list, string, number or "
                                              r"numpy array: refused without running it"):
        _convert(bad, tmp_path=tmp_path)
    assert main(["convert-d2", str(bad), "--config", str(CONFIG), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "builtins.exec" in err and "Traceback" not in err and "\x1b" not in err
    assert not marker.exists()
    assert not list(tmp_path.glob("*.safetensors"))


def test_a_damaged_pkl_is_named_as_such(tmp_path):
    bad = tmp_path / "model_final_cut.pkl"
    bad.write_bytes(CHECKPOINT.read_bytes()[:5000])
    with pytest.raises(ConversionError, match=r"cannot be read as a detectron2 \.pkl checkpoint"):
        _convert(bad, tmp_path=tmp_path)
    bad.write_bytes(b"\xbd not a pickle")
    with pytest.raises(ConversionError, match=r"not a pickle, or a damaged one"):
        _convert(bad, tmp_path=tmp_path)


def test_a_pth_with_pickled_code_is_refused_without_running_it(tmp_path):
    import torch
    marker = tmp_path / "marker"
    torch.save({"model": {"y": _Evil(marker)}}, tmp_path / "evil.pth")
    with pytest.raises(ConversionError, match=r"pickled code \(it calls (builtins\.)?exec\)"):
        _convert(tmp_path / "evil.pth", tmp_path=tmp_path)
    assert not marker.exists()


def test_a_yaml_with_python_tags_is_refused(tmp_path):
    marker = tmp_path / "marker"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f'MODEL: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConversionError, match="not plain YAML .*yaml.safe_load"):
        _convert(CHECKPOINT, bad, tmp_path)
    assert not marker.exists()


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(f'_BASE_: "{CONFIG}"\n{text}')
    return path


@pytest.mark.parametrize("text, key", [
    ("MODEL:\n  RESNETS:\n    DEFORM_ON_PER_STAGE: [False, True, True, True]\n", "MODEL.RESNETS.DEFORM_ON_PER_STAGE"),
    ("MODEL:\n  ANCHOR_GENERATOR:\n    NAME: RotatedAnchorGenerator\n", "MODEL.ANCHOR_GENERATOR.NAME"),
    ("MODEL:\n  ROI_HEADS:\n    NAME: Res5ROIHeads\n", "MODEL.ROI_HEADS.NAME"),
    # detectron2's CascadeROIHeads asserts class-agnostic boxes
    ("MODEL:\n  ROI_HEADS:\n    NAME: CascadeROIHeads\n", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG"),
    ("MODEL:\n  ROI_HEADS:\n    NAME: CascadeROIHeads\n  ROI_BOX_HEAD:\n    CLS_AGNOSTIC_BBOX_REG: True\n"
     "  ROI_BOX_CASCADE_HEAD:\n    IOUS: [0.5, 0.6]\n", "MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS"),
    ("MODEL:\n  ROI_BOX_HEAD:\n    NAME: MyHead\n", "MODEL.ROI_BOX_HEAD.NAME"),
    ("MODEL:\n  ROI_BOX_HEAD:\n    CLS_AGNOSTIC_BBOX_REG: True\n", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG"),
    ("MODEL:\n  RESNETS:\n    NORM: GN\n", "MODEL.RESNETS.NORM"),
    ("MODEL:\n  META_ARCHITECTURE: SemanticSegmentor\n", "MODEL.META_ARCHITECTURE"),
    ("MODEL:\n  META_ARCHITECTURE: PanopticFPN\n", "MODEL.MASK_ON"),  # (the Faster R-CNN config's)
    ("MODEL:\n  MASK_ON: True\n  ROI_MASK_HEAD:\n    CLS_AGNOSTIC_MASK: True\n", "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK"),
    ("MODEL:\n  KEYPOINT_ON: True\n  ROI_KEYPOINT_HEAD:\n    NAME: MyHead\n", "MODEL.ROI_KEYPOINT_HEAD.NAME"),
    ("MODEL:\n  MASK_ON: True\n  ROI_MASK_HEAD:\n    NAME: PointRendMaskHead\n    POINT_HEAD_ON: False\n",
     "MODEL.ROI_MASK_HEAD.POINT_HEAD_ON"),
    ("MODEL:\n  MASK_ON: True\n  ROI_MASK_HEAD:\n    NAME: PointRendMaskHead\n    POINT_HEAD_ON: True\n"
     "  POINT_HEAD:\n    NAME: ImplicitPointHead\n", "MODEL.POINT_HEAD.NAME"),
    ("MODEL:\n  MASK_ON: True\n  ROI_MASK_HEAD:\n    NAME: PointRendMaskHead\n    POINT_HEAD_ON: True\n"
     "    CONV_DIM: 64\n", "MODEL.ROI_MASK_HEAD.CONV_DIM"),
])
def test_an_unsupported_feature_is_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConversionError, match=rf"override\.yaml: {key} = .*(zoo convert-d2 .*not|not .*by zoo convert-d2)"):
        _convert(CHECKPOINT, _config(tmp_path, text), tmp_path)


@pytest.mark.parametrize("text, key", [
    ("MODEL:\n  SEM_SEG_HEAD:\n    CONVS_DIM: 48\n", "MODEL.SEM_SEG_HEAD.CONVS_DIM"),  # GN's 32 groups
    ("MODEL:\n  SEM_SEG_HEAD:\n    IN_FEATURES: [p2, p6]\n", "MODEL.SEM_SEG_HEAD.IN_FEATURES"),
    ("MODEL:\n  SEM_SEG_HEAD:\n    IN_FEATURES: [p3, p4]\n    COMMON_STRIDE: 16\n", "MODEL.SEM_SEG_HEAD.COMMON_STRIDE"),
    ("MODEL:\n  SEM_SEG_HEAD:\n    NORM: BN\n", "MODEL.SEM_SEG_HEAD.NORM"),
    ("MODEL:\n  SEM_SEG_HEAD:\n    NAME: MyHead\n", "MODEL.SEM_SEG_HEAD.NAME"),
    ("MODEL:\n  ROI_HEADS:\n    NAME: CascadeROIHeads\n  ROI_BOX_HEAD:\n    CLS_AGNOSTIC_BBOX_REG: True\n",
     "MODEL.ROI_HEADS.NAME"),
])
def test_an_unsupported_panoptic_fpn_is_refused_naming_the_key(tmp_path, text, key):
    path = tmp_path / "override.yaml"
    path.write_text(f'_BASE_: "{FIXTURES / f"{PANOPTIC}.yaml"}"\n{text}')
    with pytest.raises(ConversionError, match=rf"override\.yaml: {key} = .*zoo convert-d2 reproduces .*not"):
        _convert(FIXTURES / f"{PANOPTIC}.pkl", path, tmp_path)


def test_retinanets_eval_of_anchor_sizes_is_read_without_evaluating_anything(tmp_path):
    """Base-RetinaNet.yaml's `!!python/object/apply:eval` of its anchor sizes is known by its text (the value is the
    zoo's own); another expression is refused, and does not run."""
    from zoo.build.d2convert import config, spec
    args = spec.from_config(config.load(FIXTURES / f"{RETINA}.yaml")).args
    assert args["anchor_sizes"] == [[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]]
    marker = tmp_path / "marker"
    bad = _config(tmp_path, f"MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval "
                            f"[\"__import__('os').system('touch {marker}')\"]\n")
    with pytest.raises(ConversionError, match="zoo evaluates no expression but detectron2's own anchor sizes"):
        _convert(CHECKPOINT, bad, tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("text, key", [
    ("MODEL:\n  RETINANET:\n    NORM: GN\n", "MODEL.RETINANET.NORM"),
    ("MODEL:\n  RETINANET:\n    NUM_CONVS: 2\n", "MODEL.RETINANET.NUM_CONVS"),
    ("MODEL:\n  BACKBONE:\n    NAME: build_resnet_fpn_backbone\n", "MODEL.BACKBONE.NAME"),
])
def test_an_unsupported_retinanet_is_refused_naming_the_key(tmp_path, text, key):
    path = tmp_path / "override.yaml"
    path.write_text(f'_BASE_: "{FIXTURES / f"{RETINA}.yaml"}"\n{text}')
    with pytest.raises(ConversionError, match=rf"override\.yaml: {key} = .*zoo convert-d2 reproduces"):
        _convert(FIXTURES / f"{RETINA}.pkl", path, tmp_path)


def test_a_retinanet_of_other_classes_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "override.yaml"
    path.write_text(f'_BASE_: "{FIXTURES / f"{RETINA}.yaml"}"\nMODEL:\n  RETINANET:\n    NUM_CLASSES: 3\n')
    with pytest.raises(ConversionError, match=r"head\.cls_score\.weight has 720 rows, a model of 80 classes at 9 "
                                              r"anchors per location, but the config's MODEL\.RETINANET\.NUM_CLASSES = 3"):
        _convert(FIXTURES / f"{RETINA}.pkl", path, tmp_path)


def test_wrong_num_classes_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConversionError, match=r"roi_heads\.box_predictor\.cls_score\.weight has 81 rows, a model of "
                                              r"80 classes, but the config's MODEL\.ROI_HEADS\.NUM_CLASSES = 20"):
        _convert(CHECKPOINT, _config(tmp_path, "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 20\n"), tmp_path)


def test_missing_and_misshapen_tensors_are_refused_by_name(tmp_path):
    from zoo.build.d2convert.checkpoint import read_pkl
    state = read_pkl(CHECKPOINT)
    del state["backbone.fpn_output2.weight"], state["proposal_generator.rpn_head.anchor_deltas.bias"]
    state["roi_heads.extra.weight"] = np.zeros(2, np.float32)
    partial = tmp_path / "partial.pkl"
    with open(partial, "wb") as f:
        pickle.dump({"model": state, "__author__": "test"}, f)
    with pytest.raises(ConversionError, match=r"missing 2: backbone\.fpn_output2\.weight, proposal_generator\.rpn_head"
                                              r"\.anchor_deltas\.bias; unexpected 1: roi_heads\.extra\.weight"):
        _convert(partial, tmp_path=tmp_path)
    with pytest.raises(ConversionError, match=r"wrong shape \d+: backbone\.fpn_lateral2\.weight \(32, 32, 1, 1\) "
                                              r"\(config: \(64, 32, 1, 1\)\)"):
        _convert(CHECKPOINT, _config(tmp_path, "MODEL:\n  FPN:\n    OUT_CHANNELS: 64\n"), tmp_path)


def test_a_faster_rcnn_checkpoint_under_a_mask_config_is_refused_naming_the_mask_keys(tmp_path):
    with pytest.raises(ConversionError, match=r"missing 12: roi_heads\.mask_head\.mask_fcn1\.weight, .*MODEL\.MASK_ON"):
        _convert(CHECKPOINT, FIXTURES / f"{MASK}.yaml", tmp_path)


def test_a_missing_base_is_named(tmp_path):
    path = tmp_path / "orphan.yaml"
    path.write_text('_BASE_: "../Base-RCNN-FPN.yaml"\n')
    with pytest.raises(ConversionError, match=r"orphan\.yaml: _BASE_ '\.\./Base-RCNN-FPN\.yaml' names .* which does "
                                              "not exist"):
        _convert(CHECKPOINT, path, tmp_path)


def test_no_detectron2_import_in_the_package_or_its_tests():
    files = [*(REPO / "zoo" / "models").rglob("*.py"), *(REPO / "zoo" / "build" / "d2convert").rglob("*.py"),
             Path(__file__)]
    found = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{f}: {n}" for n in names if n.split(".")[0] == "detectron2"]
    assert not found, found


def build_d2_store(out: Path) -> None:
    """The converted fixture models built into OUT by `zoo build --manifest`, every method of BUILT_METHODS, each
    gated on parity against eager (the conversions beside it: the same bytes as the conversions fixture's)."""
    from conftest import run_zoo
    conversions = convert_all(out.parent / "converted")
    for stem, methods in BUILT_METHODS.items():
        manifest, weights = conversions[stem]
        run_zoo("build", "--manifest", manifest, "--weights", weights, "--out", out, "--quiet",
                *(x for _, method in methods for x in ("--method", method)))


@pytest.fixture(scope="module")
def d2_store(tmp_path_factory, pytestconfig):
    """The store of build_d2_store: built in the background since collection (conftest.BACKGROUND), else here."""
    from conftest import building, built_in_background
    what = "d2_store (the detectron2 fixture models, every method; 7-9 minutes here)"
    done = built_in_background(pytestconfig, "d2_store", what)
    if done is not None:
        return done[0]
    out = tmp_path_factory.mktemp("d2store") / "store"
    with building(pytestconfig, what):
        build_d2_store(out)
    return out


@pytest.fixture(scope="module")
def loaded(d2_store):
    """``zoo.load`` of a built artifact, once per module: its tests share it (a .pt2 program takes 10-20 s to load
    here, docs/torch-export.md)."""
    import zoo
    cache: dict = {}

    def load(stem: str, runtime: str, method: str):
        if (stem, runtime, method) not in cache:
            cache[stem, runtime, method] = zoo.load(NAMES[stem], runtime=runtime, method=method,
                                                    source=str(d2_store), trust_code=True)
        return cache[stem, runtime, method]
    return load


_METHODS = [("onnxruntime", "onnx"), ("pytorch", "tracing"), ("pytorch", "scripting")]
# what convert-d2 lists: every method but aoti for every architecture (torch.export: 13-29 s a small model here)
BUILT_METHODS = {stem: [*_METHODS, ("pytorch", "export")] for stem in [*BUILT, KEYPOINT]}


def _longest_shape_expression(program) -> int:
    """The longest symbolic expression in a saved torch.export program's graph (its tensor shapes, sizes, ranges)."""
    import json
    import zipfile
    with zipfile.ZipFile(program) as archive:
        doc = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("/models/model.json"))))
    longest, todo = 0, [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if isinstance(node.get("expr_str"), str):
                longest = max(longest, len(node["expr_str"]))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return longest


@pytest.mark.slow
def test_a_program_s_shapes_name_the_resized_size_as_one_symbol(d2_store):
    """A saved program writes every tensor's shape as an expression of the input's sizes: detectron2's size rule,
    spelled out in each (up to 15,263 characters), made loading the small Mask R-CNN's program take a minute of
    sympy parsing and exporting RetinaNet's seven. The resized sides are read back as fresh symbols
    (``transform.fresh_size``), so what follows the resize is written in terms of them (measured: 1,299 at most)."""
    for stem in BUILT_METHODS:
        assert _longest_shape_expression(d2_store / "models" / NAMES[stem] / "export" / "model.pt2") < 2000, stem


@pytest.mark.slow
@pytest.mark.parametrize("stem, runtime, method", [(stem, *rm) for stem, rms in BUILT_METHODS.items() for rm in rms])
def test_built_artifacts_give_detectron2s_detections(d2_store, loaded, recorded, photos, stem, runtime, method):
    """Each artifact, loaded from the store like a user loads it, against detectron2's recorded detections on the
    photos (sizes the artifacts were not traced at): every one matched, boxes within 0.01 px, the Mask R-CNN's
    masks binarised at 0.5 as detectron2's within 0.1% of the image's pixels per mask, the Keypoint R-CNN's keypoints
    within 0.01 px and their scores within 1e-4 (measured: docs/detectron2.md)."""
    import json

    model_name = NAMES[stem]
    entry = json.loads((d2_store / "index.json").read_text())["models"][model_name]
    built = {a["method"] for a in entry["artifacts"]} - {"eager"}  # (the stored eager model: the eager tests' own)
    assert built == {m for _, m in BUILT_METHODS[stem]}  # every exported artifact is tested here
    det = loaded(stem, runtime, method)
    for name in PHOTOS:
        rgb = photos[f"{name}/image"]
        out = det([rgb.transpose(2, 0, 1).astype(np.float32) / 255.0], score_thresh=0.05)[0]
        out = {k: np.asarray(v) for k, v in out.items()}
        pairs = _assert_all_matched(recorded[stem], name, out)
        if stem in MASKED:
            _assert_masks_match(recorded[stem], name, out["masks"], pairs)
        if stem == KEYPOINT:
            _assert_keypoints_match(recorded[stem][f"{name}/keypoints"], out, pairs)
        if stem == PANOPTIC:  # (the artifacts' rounding: ONNX's sem_seg within 2e-4 of eager's)
            _assert_panoptic_match(recorded[stem], name, out, agree=0.999, sem_atol=1e-3)


@pytest.mark.slow
def test_panoptic_artifact_limits_renumber_its_segments(d2_store, recorded, photos):
    """A loaded panoptic artifact under a higher score_thresh (at most the merge's 0.1): fewer detections, the same
    panoptic output, each thing segment's instance renumbered to the same detection; above the merge's threshold
    (its panoptic output was merged from detections that would be dropped) refused, saying what to do."""
    import zoo
    det = zoo.load(NAMES[PANOPTIC], runtime="onnxruntime", source=str(d2_store))
    image = photos["astronaut/image"].transpose(2, 0, 1).astype(np.float32) / 255.0
    full, fewer = det([image])[0], det([image], score_thresh=0.08)[0]
    assert 0 < len(fewer["scores"]) < len(full["scores"])
    assert np.array_equal(full["panoptic_seg"], fewer["panoptic_seg"])
    a, b = full["segments_info"], fewer["segments_info"]
    assert np.array_equal(np.delete(a, 3, axis=1), np.delete(b, 3, axis=1))
    things = a[:, 2] == 1
    assert things.sum() > 0 and np.array_equal(full["scores"][a[things, 3]], fewer["scores"][b[things, 3]])
    with pytest.raises(zoo.UnsupportedError, match=r"the limits drop \d+ detection\(s\) its panoptic_seg was merged "
                                                   r"from .* combine_instances_score_thresh"):
        det([image], score_thresh=0.2)


def _self_ground_truth(root: Path, model, manifest, photos) -> None:
    """The eager model's outputs on the photos written as its own ground truth, in COCO formats: the photos as PNGs
    in images/; every detection in annotations.json (COCO instances: boxes, masks as RLE, categories by label name);
    a panoptic model's segmentation in panoptic.json with its PNGs in panoptic/ (things by their label names, stuff
    by their channels')."""
    import json

    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils
    for sub in ("images", "panoptic"):
        (root / sub).mkdir(parents=True)
    things = [{"id": k, "name": n, "isthing": 1} for k, n in enumerate(manifest.categories) if k > 0]
    stuff = [{"id": 100 + k, "name": n, "isthing": 0}
             for k, n in enumerate(manifest.weights.get("stuff_categories", [])) if k > 0]
    images, instances, panoptic = [], [], []
    for k, name in enumerate(PHOTOS, start=1):
        rgb = photos[f"{name}/image"]
        Image.fromarray(rgb).save(root / "images" / f"{name}.png")
        images.append({"id": k, "file_name": f"{name}.png", "height": rgb.shape[0], "width": rgb.shape[1]})
        with torch.no_grad():
            out = {key: v.numpy() for key, v in model([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0])[0].items()}
        for box, label, mask in zip(out["boxes"].tolist(), out["labels"].tolist(), out["masks"][:, 0] >= 0.5):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            instances.append({"id": len(instances) + 1, "image_id": k, "category_id": label, "iscrowd": 0,
                              "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "area": float(mask.sum()),
                              "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
        if "panoptic_seg" in out:
            ids = out["panoptic_seg"].astype(np.int64)
            Image.fromarray(np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)).save(
                root / "panoptic" / f"{name}.png")
            segments = [{"id": i, "category_id": c if thing else 100 + c, "iscrowd": 0, "area": a}
                        for i, c, thing, _, a in out["segments_info"].tolist()]
            panoptic.append({"image_id": k, "file_name": f"{name}.png", "segments_info": segments})
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": instances,
                                                       "categories": things}))
    if panoptic:
        (root / "panoptic.json").write_text(json.dumps({"images": images, "annotations": panoptic,
                                                        "categories": things + stuff}))


@pytest.mark.slow
@pytest.mark.parametrize("stem", [CASCADE, POINTREND, PANOPTIC])
def test_zoo_eval_of_the_eager_model_against_its_own_output_is_100(d2_store, conversions, models, photos, tmp_path,
                                                                   capsys, monkeypatch, stem):
    """`zoo eval` on a dataset made of the eager model's own outputs on the photos: eager's box and mask AP are 100
    (a Panoptic FPN's PQ, SQ and RQ too, from its COCO panoptic JSON beside the instances'); each artifact's within
    the manifest's tolerance of eager (0.1 points), as the command reports (its rows read where it computes them:
    one evaluation, each artifact run once)."""
    from zoo.build import coco_eval
    from zoo.core.manifest import parse
    _self_ground_truth(tmp_path / "data", models[stem], parse(conversions[stem][0]), photos)
    computed = []
    evaluate_store = coco_eval.evaluate_store
    monkeypatch.setattr(coco_eval, "evaluate_store", lambda *a, **k: computed.append(evaluate_store(*a, **k))
                        or computed[-1])
    assert main(["eval", NAMES[stem], "--data", str(tmp_path / "data"), "--source", str(d2_store), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 artifact(s) against eager" in out and "OUTSIDE" not in out
    [(_, rows)] = computed
    assert rows[0]["artifact"] == "pytorch/eager" and {r["artifact"] for r in rows[1:]} == {
        "onnxruntime/onnx", "pytorch/tracing", "pytorch/scripting", "pytorch/export"}
    figures = ["bbox mAP", "segm mAP"] + (["PQ", "SQ", "RQ"] if stem == PANOPTIC else [])
    assert all(rows[0][f] == "100.00" for f in figures), rows[0]
    assert all(r["ok"] and float(r[f]) >= 99.9 for r in rows for f in figures), rows


@pytest.mark.slow
def test_zoo_predict_draws_the_panoptic_segments(d2_store, photos, tmp_path, capsys):
    """`zoo predict --out` on a panoptic model: the segments counted, and beside the detections' picture a picture of
    the segmentation: the photo tinted segment by segment (every pixel of a segment one colour over the photo),
    segments outlined, a header above it."""
    from PIL import Image
    rgb = photos["coffee/image"]
    Image.fromarray(rgb).save(tmp_path / "coffee.png")
    assert main(["predict", str(tmp_path / "coffee.png"), "--model", NAMES[PANOPTIC], "--source", str(d2_store),
                 "--runtime", "onnxruntime", "--out", str(tmp_path / "pic.png"), "--repeat", "0"]) == 0
    out = capsys.readouterr().out
    assert "panoptic: 16 segments (2 things, 14 stuff)" in out and "panoptic picture: " in out
    pic = np.asarray(Image.open(tmp_path / "pic.panoptic.png").convert("RGB")).astype(int)
    h, w = rgb.shape[:2]
    head = pic.shape[0] - h
    assert pic.shape[1] >= w and head > 20
    region = pic[head:, :w]
    assert (region == 255).all(axis=-1).mean() > 0.01  # the outlines
    assert np.abs(region - rgb).mean() > 20  # tinted


@pytest.mark.slow
def test_zoo_load_with_detectron2s_interface(d2_store, recorded, photos):
    """`zoo.load(..., interface="detectron2")` on the ONNX artifact (no torch in its path): detectron2's inputs as
    numpy (BGR uint8 CHW) in, its instances out, the recorded classes, boxes and masks; a bad interface name and a
    non-detectron2 use are refused by name."""
    import zoo
    model = zoo.load(NAMES[MASK], runtime="onnxruntime", source=str(d2_store), interface="detectron2")
    ref = recorded[MASK]
    for name in PHOTOS:
        rgb = photos[f"{name}/image"]
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))
        out = model([{"image": bgr, "height": h, "width": w}])[0]["instances"]
        assert len(out) == len(ref[f"{name}/scores"]) and out.image_size == (h, w)
        order = np.argsort(-out.scores, kind="stable")
        assert np.array_equal(out.pred_classes[order], ref[f"{name}/classes"])
        assert np.abs(out.pred_boxes.tensor[order] - ref[f"{name}/boxes"]).max() < 0.01
        d2_masks = _d2_masks(ref, name, w)
        assert out.pred_masks.dtype == bool and (out.pred_masks[order] != d2_masks).mean() < 1e-3
    with pytest.raises(zoo.InputError, match="interface must be one of 'torchvision', 'detectron2', got 'd2'"):
        zoo.load(NAMES[MASK], source=str(d2_store), interface="d2")


# a flat image (this grey level) where the seeded model scores every box under the threshold (others give 1-75 boxes)
FLAT = {CASCADE: 0.5, POINTREND: 1.0, PANOPTIC: 1.0, MASK: 1.0}
PANOPTIC_SHAPES = {"sem_seg": (54, 240, 300), "panoptic_seg": (240, 300)}


@pytest.mark.slow
@pytest.mark.parametrize("stem, runtime, method", [(stem, *rm) for stem in (CASCADE, POINTREND, PANOPTIC) for rm in _METHODS]
                         + [(stem, "pytorch", "export") for stem in (MASK, CASCADE, POINTREND, PANOPTIC)])
def test_artifacts_with_no_detection_and_in_a_batch(loaded, conversions, models, photos, stem, runtime, method):
    """The Cascade Mask R-CNN's, PointRend's and Panoptic FPN's artifacts and the masked models' programs on a flat
    image, where every box scores under the threshold (empty outputs of the right shapes, masks at the image's size:
    a program must not assume a detection), and, where the manifest gives the method a dynamic batch
    (scripting), on two photos of different sizes in one call: the eager model's detections on the same batch (a
    batch pads its images to one size, as detectron2's does, so they are not each photo's own)."""
    import torch

    from zoo.core.manifest import parse
    det = loaded(stem, runtime, method)
    flat = np.full((3, 240, 300), FLAT[stem], np.float32)
    with torch.no_grad():
        assert len(models[stem]([torch.from_numpy(flat)])[0]["boxes"]) == 0  # (eager finds nothing either)
    out = det([flat], score_thresh=0.05)[0]
    shapes = {k: np.asarray(v).shape for k, v in out.items()}
    if stem == PANOPTIC:  # all stuff: as the eager model's (test_panoptic_of_an_empty_image_is_all_stuff)
        segments = np.asarray(out["segments_info"])
        assert {k: shapes.pop(k) for k in (*PANOPTIC_SHAPES, "segments_info")} == {**PANOPTIC_SHAPES,
                                                                                   "segments_info": segments.shape}
        assert len(segments) >= 1 and not segments[:, 2].any()
    assert shapes == {"boxes": (0, 4), "labels": (0,), "scores": (0,), "masks": (0, 1, 240, 300)}
    entry = next(e for e in parse(conversions[stem][0]).exports if e.method == method)
    assert (entry.batch is None) == (method == "scripting")  # None: a dynamic batch
    if entry.batch is None:
        images = [photos[f"{n}/image"].transpose(2, 0, 1).astype(np.float32) / 255.0 for n in ("astronaut", "coffee")]
        with torch.no_grad():
            eager = models[stem]([torch.from_numpy(x) for x in images])
        for ours, ref in zip(det(images, score_thresh=0.05), eager):
            ours, ref = {k: np.asarray(v) for k, v in ours.items()}, {k: v.numpy() for k, v in ref.items()}
            pairs, p = match(ref, ours, EXACT)
            assert p.n_candidate == p.n_reference == p.matched > 0 and p.max_box_diff <= 0.01, p
            if stem == PANOPTIC:
                assert panoptic_agreement(ref, ours) >= 0.999 and np.abs(ref["sem_seg"] - ours["sem_seg"]).max() < 0.01
