"""Drop-in for torchvision code: torchvision's documented inference code with only the line that builds the
model replaced by zoo.load; module-like behaviour; score_thresh / detections_per_img equal to torchvision's arguments."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import read_image, write_png
from torchvision.models.detection import (FasterRCNN_MobileNet_V3_Large_320_FPN_Weights, KeypointRCNN_ResNet50_FPN_Weights,
                                          MaskRCNN_ResNet50_FPN_Weights)
from torchvision.utils import draw_bounding_boxes, draw_keypoints, draw_segmentation_masks

import zoo
from zoo.load import architecture as models
from zoo.core import parity
from zoo.errors import NotAvailableError, UnsupportedError
from zoo.core.manifest import resolve
from zoo.core.reference import load_reference
from zoo.load.runtimes import thresholds

SSD, RCNN = "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn"
RUNTIME = {"onnx": "onnxruntime", "tracing": "pytorch", "scripting": "pytorch", "eager": "pytorch", "export": "pytorch",
           "aoti": "pytorch"}


def exported_methods(store: Path, name: str) -> list[str]:
    """The exported methods the store has for ``name`` (a prebuilt ZOO_TEST_FULL_STORE may hold only some)."""
    entry = json.loads((Path(store) / "index.json").read_text())["models"].get(name)
    methods = [a["method"] for a in entry["artifacts"] if a["method"] != "eager"] if entry else []
    assert methods, f"{store} has no exported artifact of {name}"
    return methods


def torchvision_model(store: Path, name: str, **kwargs) -> torch.nn.Module:
    """torchvision's own model, built with ``kwargs`` (e.g. box_score_thresh), holding the store's weights."""
    return models.stored_model(resolve(name), Path(store) / "models" / name / "weights.safetensors", **kwargs)


def tolerance(name: str, method: str) -> parity.Tolerance:
    return parity.Tolerance.from_dict(resolve(name).export(method).tolerance)


def assert_like(reference: dict, got: dict, tol: parity.Tolerance) -> None:
    """Every detection matched (same label, box within the parity tolerance), up to near-ties at the threshold."""
    _, p = parity.match(parity._numpy(reference), parity._numpy(got), tol)
    assert p.n_reference > 0, "the test needs detections"
    assert p.matched >= max(p.n_reference, p.n_candidate) - p.borderline, p
    assert p.max_box_diff <= tol.box_atol and p.max_score_diff <= tol.score_atol, p
    assert p.max_mask_diff <= tol.mask_atol and p.max_keypoint_diff <= tol.keypoint_atol, p


def assert_drawn_alike(a: torch.Tensor, b: torch.Tensor, at_most: float = 0.001) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    differ = float((a != b).any(dim=0).float().mean())
    assert differ <= at_most, f"{differ:.2%} of the pixels drawn differently"


# --- torchvision's documented examples -------------------------------------------------------------------------------

def models_page_example(model, weights, categories, image_file):
    """The object-detection example of torchvision's models page, as written there after its model line."""
    img = read_image(image_file)
    model.eval()
    preprocess = weights.transforms()
    batch = [preprocess(img)]
    prediction = model(batch)[0]
    labels = [categories[i] for i in prediction["labels"]]  # the page: weights.meta["categories"]
    box = draw_bounding_boxes(img, boxes=prediction["boxes"], labels=labels, colors="red", width=4)
    return prediction, labels, box


def decisive_image_file(store: Path, name: str, directory: Path) -> str:
    """The store's reference image as a PNG file. Seeded weights saturate on natural photos (scores of exactly 1.0,
    in any order), which makes the drawing order arbitrary; on this image every score differs."""
    with np.load(Path(store) / "models" / name / "reference.npz") as z:
        image = torch.from_numpy(z["image"])
    write_png(image, str(directory / "image.png"))
    return str(directory / "image.png")


@pytest.mark.parametrize("method", ["onnx", "scripting", "tracing"])
def test_models_page_example(light_store, tmp_path, method):
    weights = FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT  # only its transforms(): nothing is downloaded
    image_file = decisive_image_file(light_store, RCNN, tmp_path)
    thresh = 0.15  # the page has box_score_thresh=0.9, for official weights; seeded weights score lower
    model = zoo.load(RCNN, runtime=RUNTIME[method], method=method, source=light_store, box_score_thresh=thresh)
    ours = models_page_example(model, weights, model.categories, image_file)
    eager = models_page_example(torchvision_model(light_store, RCNN, box_score_thresh=thresh), weights,
                                weights.meta["categories"], image_file)
    assert 0 < len(ours[1]) < 100
    assert model.categories == weights.meta["categories"]  # either spelling of the labels line works
    assert_like(eager[0], ours[0], tolerance(RCNN, method))
    assert sorted(ours[1]) == sorted(eager[1])
    assert_drawn_alike(ours[2], eager[2])


SEEDED_THRESHOLD = 0.2  # the gallery's 0.75 is for official weights; seeded ones score lower


def gallery_mask_rcnn(model, dog_int, score_threshold):
    """The visualization gallery's Mask R-CNN part, as written there after its model line (on one image)."""
    dog_list = [dog_int]
    transforms = MaskRCNN_ResNet50_FPN_Weights.DEFAULT.transforms()
    images = [transforms(d) for d in dog_list]
    model = model.eval()
    output = model(images)
    proba_threshold = 0.5
    boolean_masks = [out['masks'][out['scores'] > score_threshold] > proba_threshold for out in output]
    dogs_with_masks = [draw_segmentation_masks(img, masks=mask.squeeze(1)) for img, mask in zip(dog_list, boolean_masks)]
    return output, dogs_with_masks[0]


def gallery_keypoint_rcnn(model, person_int, detect_threshold):
    """The visualization gallery's Keypoint R-CNN part, as written there after its model line."""
    transforms = KeypointRCNN_ResNet50_FPN_Weights.DEFAULT.transforms()
    person_float = transforms(person_int)
    model = model.eval()
    outputs = model([person_float])
    kpts = outputs[0]['keypoints']
    scores = outputs[0]['scores']
    idx = torch.where(scores > detect_threshold)
    keypoints = kpts[idx]
    connect_skeleton = [(0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (0, 6), (5, 7), (6, 8), (7, 9), (8, 10), (5, 11),
                        (6, 12), (11, 13), (12, 14), (13, 15), (14, 16)]
    res = draw_keypoints(person_int, keypoints, connectivity=connect_skeleton, colors="blue", radius=4, width=3)
    return outputs, res


@pytest.mark.slow
@pytest.mark.parametrize("name, example, weights", [
    ("maskrcnn_resnet50_fpn", gallery_mask_rcnn, MaskRCNN_ResNet50_FPN_Weights.DEFAULT),
    ("keypointrcnn_resnet50_fpn", gallery_keypoint_rcnn, KeypointRCNN_ResNet50_FPN_Weights.DEFAULT)])
def test_gallery_example(full_store, tmp_path, name, example, weights):
    store = full_store[0]
    image = read_image(decisive_image_file(store, name, tmp_path))
    eager, eager_drawn = example(torchvision_model(store, name), image, SEEDED_THRESHOLD)
    assert (eager[0]["scores"] > SEEDED_THRESHOLD).sum() > 0
    for method in exported_methods(store, name):
        model = zoo.load(name, runtime=RUNTIME[method], method=method, source=store)
        assert model.categories == weights.meta["categories"]
        output, drawn = example(model, image, SEEDED_THRESHOLD)
        assert_like(eager[0], output[0], tolerance(name, method))
        assert_drawn_alike(drawn, eager_drawn)


# --- score_thresh / detections_per_img ---------------------------------------------------------------------------------

def threshold_between(scores: np.ndarray) -> float:
    """A threshold in the widest gap between the scores around the top quarter: detections on both sides of it, none
    within an artifact's score difference (~1e-5) of it."""
    scores = np.sort(np.asarray(scores, np.float64))[::-1]
    assert len(scores) >= 3, f"{len(scores)} detections: too few to cut through"
    lo = max(1, len(scores) // 8)  # at least two above the threshold, so that a count can cut through them
    hi = min(len(scores), max(len(scores) // 2, lo + 2))
    i = lo + int(np.argmax(scores[lo:hi - 1] - scores[lo + 1:hi]))
    return float(scores[i] + scores[i + 1]) / 2


def check_thresholds(store: Path, name: str, methods: list[str]) -> None:
    """On the store's decisive reference image: a threshold and a count cutting through the artifact's detections give
    what torchvision's model built with the family's arguments gives; exactly so for the eager runtime."""
    settings = json.loads((Path(store) / "index.json").read_text())["models"][name]["settings"]
    image, baked_out = load_reference(Path(store) / "models" / name / "reference.npz")
    image = torch.from_numpy(image)
    thresh = threshold_between(baked_out["scores"])
    count = int(np.sum(baked_out["scores"] > thresh)) // 2      # fewer than the threshold leaves
    assert 0 < count and np.sum(baked_out["scores"] <= thresh) > 0
    reference = torchvision_model(store, name, **{settings["score_thresh"]: thresh,
                                                  settings["detections_per_img"]: count})([image])[0]
    assert len(reference["scores"]) == count
    at_load = zoo.load(name, runtime="pytorch", method="eager", source=store,
                       **{settings["score_thresh"]: thresh, settings["detections_per_img"]: count})([image])[0]
    per_call = zoo.load(name, runtime="pytorch", method="eager", source=store)(
        [image], score_thresh=thresh, detections_per_img=count)[0]
    for got in (at_load, per_call):
        assert set(got) == set(reference)
        for key in reference:  # the mask and keypoint heads run on fewer boxes: float rounding may differ
            exact = key in ("boxes", "labels", "scores")
            assert torch.allclose(got[key], reference[key], rtol=0, atol=0 if exact else 1e-5), key
    only_thresh = torchvision_model(store, name, **{settings["score_thresh"]: thresh})([image])[0]
    for method in methods:
        model = zoo.load(name, runtime=RUNTIME[method], method=method, source=store)
        assert_like(reference, model([image], score_thresh=thresh, detections_per_img=count)[0], tolerance(name, method))
        assert_like(only_thresh, model([image], score_thresh=thresh)[0], tolerance(name, method))


@pytest.mark.parametrize("name", [SSD, RCNN])
def test_thresholds_equal_torchvision_arguments(light_store, name):
    check_thresholds(light_store, name, ["onnx", "scripting", "tracing"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn", "maskrcnn_resnet50_fpn",
                                  "keypointrcnn_resnet50_fpn"])
def test_thresholds_equal_torchvision_arguments_every_family(full_store, name):
    store = full_store[0]
    check_thresholds(store, name, exported_methods(store, name)[:1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(score_thresh=0.0001), r"score_thresh=0.0001 asks .* below 0.001.*exported with score_thresh=0.001.*only a "
                                r"threshold of 0.001 or more is exact.*build an artifact"),
    (dict(detections_per_img=301), r"more than 300 detections.*exported with detections_per_img=300.*300 or fewer"),
    (dict(nms_thresh=0.3), r"nms_thresh is baked into .* \(nms_thresh=0.55\).*manifest `builder`"),
    (dict(topk_candidates=50), r"topk_candidates is baked"),
    (dict(box_score_thresh=0.3), r"unknown argument box_score_thresh=0.3.*score_thresh \(>= 0.001\)"),
    (dict(score_thresh="high"), r"score_thresh must be a finite number .*got 'high'"),
    (dict(detections_per_img=2.5), r"detections_per_img must be a non-negative integer, got 2.5"),
    (dict(detections_per_img=True), r"detections_per_img must be a non-negative integer, got True"),
])
def test_threshold_errors_say_why(light_store, kwargs, message):
    with pytest.raises(UnsupportedError, match=message):
        zoo.load(SSD, source=light_store, **kwargs)
    model = zoo.load(SSD, source=light_store)
    with pytest.raises(UnsupportedError, match=message):
        model([torch.rand(3, 64, 64)], **kwargs)


def test_rcnn_baked_values_and_torchvision_names(light_store):
    with pytest.raises(UnsupportedError, match=r"score_thresh=0.01 asks .*box_score_thresh=0.05"):
        zoo.load(RCNN, source=light_store, score_thresh=0.01)
    for baked in ("box_nms_thresh", "rpn_post_nms_top_n_test", "min_size", "max_size"):
        with pytest.raises(UnsupportedError, match=f"{baked} is baked into {RCNN}'s exported artifact"):
            zoo.load(RCNN, source=light_store, **{baked: 1})
    with pytest.raises(UnsupportedError, match="score_thresh given twice"):
        zoo.load(RCNN, source=light_store, score_thresh=0.5, box_score_thresh=0.5)


def test_a_store_without_baked_values_says_to_rebuild():
    with pytest.raises(NotAvailableError, match="rebuild the store"):
        thresholds.limits_for(None, {"score_thresh": 0.5})
    assert thresholds.limits_for(None, {"score_thresh": None}) == thresholds.Limits()


def test_load_time_limits_are_the_default_and_a_call_may_change_them(light_store):
    image = torch.from_numpy(load_reference(light_store / "models" / RCNN / "reference.npz")[0])
    full = zoo.load(RCNN, source=light_store)([image])[0]
    model = zoo.load(RCNN, source=light_store, detections_per_img=3)
    assert torch.equal(model([image])[0]["boxes"], full["boxes"][:3])
    assert torch.equal(model([image], detections_per_img=5)[0]["boxes"], full["boxes"][:5])
    assert len(model([image], score_thresh=1.0)[0]["boxes"]) == 0
    numpy_out = model([image.numpy()])[0]
    assert isinstance(numpy_out["boxes"], np.ndarray) and np.array_equal(numpy_out["boxes"], full["boxes"][:3].numpy())


# --- module-like behaviour ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime, method", [("onnxruntime", "onnx"), ("pytorch", "scripting"), ("pytorch", "tracing"),
                                             ("pytorch", "eager")])
def test_module_like_and_ordinary_outputs(light_store, runtime, method):
    model = zoo.load(RCNN, runtime=runtime, method=method, source=light_store)
    assert model.eval() is model and model.train(False) is model and model.training is False
    assert model.to("cpu") is model and model.cpu() is model and model.to(torch.device("cpu")) is model
    assert model.device == "cpu" and model.categories[1] == "person" and model.info["model"] == RCNN
    for mode in (True, None):
        with pytest.raises(UnsupportedError, match="inference only.*train"):
            model.train() if mode is None else model.train(mode)
    with pytest.raises(UnsupportedError, match=r"only .to\(device\) is supported.*dtype"):
        model.to(torch.float16)
    image = torch.from_numpy(load_reference(light_store / "models" / RCNN / "reference.npz")[0])
    for context in (torch.no_grad, torch.inference_mode, torch.enable_grad):
        with context():
            out = model([image])[0]
        before = out["boxes"].clone()
        out["boxes"][:, 0] += 1   # torchvision's outputs are ordinary tensors: in-place edits work outside the context
        out["scores"].mul_(2)
        assert torch.equal(out["boxes"][:, 0], before[:, 0] + 1) and out["boxes"].device.type == "cpu"
    assert isinstance(model([image.numpy()])[0]["boxes"], np.ndarray)


def test_moving_to_cuda(light_store):
    """On a machine with CUDA the model reopens there and returns CUDA tensors; without, a clear error, model intact."""
    image = torch.rand(3, 200, 300)
    for runtime, method in (("pytorch", "scripting"), ("onnxruntime", "onnx")):
        model = zoo.load(SSD, runtime=runtime, method=method, source=light_store)
        if torch.cuda.is_available() and (runtime == "pytorch" or "CUDAExecutionProvider" in
                                          __import__("onnxruntime").get_available_providers()):
            assert model.cuda() is model and model.device == "cuda"
            assert model([image])[0]["boxes"].device.type == "cuda"
            assert model.to("cpu")([image])[0]["boxes"].device.type == "cpu"
        else:
            with pytest.raises(UnsupportedError, match="CUDA"):
                model.cuda()
            assert model.device == "cpu" and len(model([image])[0]["boxes"]) > 0
    traced = zoo.load(SSD, runtime="pytorch", method="tracing", source=light_store)
    with pytest.raises(UnsupportedError, match=r"tracing \(pytorch\) runs on cpu only, not 'cuda'.*scripting \(pytorch\): "
                                               r"cpu, cuda.*onnx \(onnxruntime\): cpu, cuda"):
        traced.to("cuda")
