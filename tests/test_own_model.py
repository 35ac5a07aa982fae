"""Your own model through the pipeline: a small Faster R-CNN trained here for real on synthetic
shapes (tests/trained/, checkpoint cached between sessions) is built from its own manifest and a `.pth` checkpoint
with every method, parity-checked, gated on COCO mAP against eager, evaluated with `zoo eval`, and loaded by name from
the store alone in a fresh process. Plus the refusals: checkpoints that do not fit, pickled objects, broken datasets."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_zoo

TESTS = REPO / "tests"
MANIFEST = TESTS / "trained" / "my_detector.toml"
CATEGORIES = ["__background__", "circle", "square", "triangle"]
LEARNED = 50.0  # held-out box mAP points the trained detector must beat (the shipped one: 62.8, docs/own-models.md)


def pythonpath(with_tests: bool) -> dict:
    """The subprocess's PYTHONPATH: this one's (it finds zoo), with or without tests/ (where the builder lives)."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != TESTS]
    return {"PYTHONPATH": os.pathsep.join(([str(TESTS)] if with_tests else []) + parts)}


@pytest.fixture(scope="session")
def checkpoint():
    from trained.train import checkpoint
    return checkpoint()


@pytest.fixture(scope="session")
def heldout(tmp_path_factory):
    from trained import shapes
    return shapes.write_coco(tmp_path_factory.mktemp("heldout"), 60, seed=1)  # training used seed 0


@pytest.fixture(scope="session")
def own_store(tmp_path_factory, checkpoint, heldout):
    out = tmp_path_factory.mktemp("own") / "store"
    run_zoo("build", "--manifest", MANIFEST, "--weights", checkpoint, "--out", out, "--eval", heldout, "--quiet",
            env=pythonpath(True))
    return out


@pytest.mark.slow
def test_build_exports_every_method_gated_on_parity_and_map(own_store, checkpoint):
    from zoo.core.store import sha256_file
    entry = json.loads((own_store / "index.json").read_text())["models"]["my_detector"]
    # every method but aoti, which a build makes only when asked (test_aoti_package_...)
    assert {a["method"] for a in entry["artifacts"]} == {"eager", "tracing", "scripting", "onnx", "export"}
    assert entry["weights"]["kind"] == "file" and entry["weights"]["source_sha256"] == sha256_file(checkpoint)
    assert entry["manifest"]["builder"] == "trained.detector:build" and entry["categories"] == CATEGORIES
    eager = entry["eval"]["eager"]["bbox"]["map"]
    assert eager > LEARNED, f"the trained detector reaches only {eager} box mAP on held-out images"
    for method in ("tracing", "scripting", "onnx", "export"):
        meta = json.loads((own_store / "models" / "my_detector" / method / "metadata.json").read_text())
        assert abs(meta["eval"]["artifact"]["bbox"]["map"] - eager) <= 0.1
        assert meta["parity"]["results"]["sizes+grey"]["min_matched_fraction"] >= 0.95


MASK_MANIFEST = TESTS / "trained" / "my_mask_detector.toml"
MASK_LEARNED = 40.0  # held-out mask mAP points the trained Mask R-CNN must beat (measured: docs/own-models.md)


@pytest.fixture(scope="session")
def mask_store(tmp_path_factory, heldout):
    from trained.mask_detector import checkpoint
    out = tmp_path_factory.mktemp("own-mask") / "store"
    run_zoo("build", "--manifest", MASK_MANIFEST, "--weights", checkpoint(), "--out", out, "--eval", heldout,
            "--quiet", env=pythonpath(True))
    return out


@pytest.mark.slow
def test_a_trained_mask_rcnn_builds_with_its_masks_within_the_per_mask_gate(mask_store):
    """Box and mask mAP learned for real; every artifact's mask mAP within a tenth of eager's, and its masks at IoU
    >= the manifest's mask_iou inside each box."""
    entry = json.loads((mask_store / "index.json").read_text())["models"]["my_mask_detector"]
    assert {a["method"] for a in entry["artifacts"]} == {"eager", "tracing", "scripting", "onnx"}
    eager = entry["eval"]["eager"]
    assert eager["bbox"]["map"] > LEARNED and eager["segm"]["map"] > MASK_LEARNED, eager
    for method in ("tracing", "scripting", "onnx"):
        meta = json.loads((mask_store / "models" / "my_mask_detector" / method / "metadata.json").read_text())
        for task in ("bbox", "segm"):
            assert abs(meta["eval"]["artifact"][task]["map"] - eager[task]["map"]) <= 0.1, (method, task)
        assert meta["parity"]["tolerance"]["mask_iou"] == 0.9
        for result in meta["parity"]["results"].values():
            assert result["min_mask_iou"] >= 0.9, (method, result)


@pytest.mark.slow
def test_the_trained_mask_rcnns_masks_made_noise_inside_their_boxes_fail_at_every_parity_size(mask_store,
                                                                                               monkeypatch):
    """An artifact whose masks are noise inside each (exact) box, as an AOTInductor package of a trained Mask R-CNN
    gave: the gate fails it at every parity size and in the batch; the artifact as built passes."""
    from zoo.build.pipeline import as_float, parity_images
    from zoo.core import parity
    from zoo.core.manifest import parse
    from zoo.load.loader import load
    monkeypatch.setenv("ZOO_TRUSTED_BUILDERS", "trained")
    m = parse(MASK_MANIFEST)
    eager = load("my_mask_detector", runtime="pytorch", method="eager", source=mask_store)
    traced = load("my_mask_detector", runtime="pytorch", method="tracing", source=mask_store)
    images = parity_images(m)
    rng = np.random.default_rng(0)
    tol = parity.Tolerance.from_dict(m.exports[0].tolerance)
    for k, image in enumerate(as_float(images["sizes"] + images["batch"])):
        ref, got = parity._numpy(eager([image])[0]), parity._numpy(traced([image])[0])
        assert len(ref["boxes"]) >= 2, f"image {k}: the trained model found too little to test"
        assert parity.compare([ref], [got], tol).ok
        noisy = {**got, "masks": got["masks"].copy()}
        for j, box in enumerate(got["boxes"]):
            x0, y0 = np.maximum(np.floor(box[:2]).astype(int), 0)
            x1, y1 = np.ceil(box[2:]).astype(int)
            region = noisy["masks"][j, :, y0:y1, x0:x1]
            region[...] = rng.random(region.shape)
        report = parity.compare([ref], [noisy], tol)
        assert not report.ok and any("mask IoU" in f for f in report.failures), (k, report.summary())


@pytest.mark.slow
def test_zoo_eval_prints_each_artifact_within_a_tenth_of_eager(own_store, heldout):
    proc = run_zoo("eval", "my_detector", "--data", heldout, "--source", own_store, "--quiet",
                   env={**pythonpath(True), "ZOO_TRUSTED_BUILDERS": "trained"})
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if "/" in line.split()[0]}
    assert set(rows) == {"pytorch/eager", "pytorch/tracing", "pytorch/scripting", "pytorch/export", "onnxruntime/onnx"}
    assert float(rows["pytorch/eager"][0]) > LEARNED and rows["pytorch/eager"][2] == "reference"
    for name, (box_map, _, diff) in rows.items():
        if name != "pytorch/eager":
            assert abs(float(diff)) <= 0.1 and abs(float(box_map) - float(rows["pytorch/eager"][0])) <= 0.1


LOAD = """
import json, os, sys
import zoo
from zoo.errors import ZooError
from zoo.ops.viz import read_image
store, image = sys.argv[1], sys.argv[2]
out = {}
for runtime, method in (("onnxruntime", "onnx"), ("pytorch", "scripting"), ("pytorch", "tracing")):
    model = zoo.load("my_detector", runtime=runtime, method=method, source=store)
    det = model([read_image(image)])[0]
    out[method] = {"categories": model.categories, "boxes": det["boxes"].tolist(), "labels": det["labels"].tolist(),
                   "scores": det["scores"].tolist()}
for trusted in ("", "trained"):  # eager needs the builder: first the store may not choose code, then it is not there
    os.environ["ZOO_TRUSTED_BUILDERS"] = trusted
    try:
        zoo.load("my_detector", runtime="pytorch", method="eager", source=store)
    except ZooError as e:
        out["eager " + (trusted or "untrusted")] = str(e)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_load_by_name_from_the_store_alone(own_store, heldout, tmp_path):
    """A fresh process where neither the manifest nor the model's code is installed: the index carries the manifest."""
    doc = json.loads((heldout / "annotations.json").read_text())
    image = doc["images"][0]
    truth = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
    proc = subprocess.run([sys.executable, "-c", LOAD, str(own_store), str(heldout / "images" / image["file_name"])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, **pythonpath(False), "ZOO_TRUSTED_BUILDERS": ""})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for method in ("onnx", "scripting", "tracing"):
        got = out[method]
        assert got["categories"] == CATEGORIES
        # every ground-truth shape is found: a detection of its class, IoU > 0.5, score > 0.5
        for a in truth:
            x, y, w, h = a["bbox"]
            assert any(label == a["category_id"] and score > 0.5 and _iou(box, [x, y, x + w, y + h]) > 0.5
                       for box, label, score in zip(got["boxes"], got["labels"], got["scores"])), (method, a, got)
    assert "ZOO_TRUSTED_BUILDERS" in out["eager untrusted"]
    assert "cannot be imported" in out["eager trained"] and "exported artifacts load without it" in out["eager trained"]


@pytest.mark.slow
def test_info_download_and_verify_know_the_model_from_the_index(own_store, tmp_path):
    """The store's own model is found by `zoo info`, `zoo download` and `zoo verify` without its manifest file."""
    env = pythonpath(False)
    info = run_zoo("info", "my_detector", "--source", own_store, env=env).stdout
    assert 'builder:  trained.detector:build {"num_classes": 4}' in info and "store weights: file" in info
    run_zoo("download", "my_detector", "--runtime", "onnxruntime", "--source", own_store, "--to", tmp_path / "b", env=env)
    out = run_zoo("verify", tmp_path / "b", "my_detector", env=env).stdout
    assert "my_detector onnxruntime/onnx" in out and "0 bad" in out


AOTI = """
import json, sys, torch
import zoo
from zoo.ops.viz import read_image
store, image = sys.argv[1], sys.argv[2]
pixels = torch.as_tensor(read_image(image))
strided = pixels.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # channels-last, as torchvision's decoder gives
assert not strided.is_contiguous()
out = {}
for method in ("aoti", "eager"):
    model = zoo.load("my_detector", runtime="pytorch", method=method, source=store)
    out[method] = {k: v.tolist() for k, v in model([pixels])[0].items()}
    out[method + " strided"] = {k: v.tolist() for k, v in model([strided])[0].items()}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_aoti_package_compiles_passes_parity_and_map_and_loads(own_store, checkpoint, heldout, tmp_path):
    """`zoo build --method aoti` (asked for: compiling takes minutes for torchvision's models) compiles the trained
    detector with AOTInductor into a store that already holds the other methods, which it keeps; the package passes
    the parity and mAP gates and loads through zoo.load in a fresh process, giving eager's detections."""
    store = tmp_path / "store"
    shutil.copytree(own_store, store)
    run_zoo("build", "--manifest", MANIFEST, "--weights", checkpoint, "--method", "aoti", "--out", store,
            "--eval", heldout, "--quiet", env=pythonpath(True))
    entry = json.loads((store / "index.json").read_text())["models"]["my_detector"]
    assert {a["method"] for a in entry["artifacts"]} == {"eager", "tracing", "scripting", "onnx", "export", "aoti"}
    meta = json.loads((store / "models" / "my_detector" / "aoti" / "metadata.json").read_text())
    assert meta["export"]["compile_seconds"] > 0 and meta["format"] == "aoti"
    assert all(r["ok"] for r in meta["parity"]["results"].values()), meta["parity"]
    assert abs(meta["eval"]["artifact"]["bbox"]["map"] - entry["eval"]["eager"]["bbox"]["map"]) <= 0.1
    doc = json.loads((heldout / "annotations.json").read_text())
    image = heldout / "images" / doc["images"][0]["file_name"]
    proc = subprocess.run([sys.executable, "-c", AOTI, str(store), str(image)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, **pythonpath(True), "ZOO_TRUSTED_BUILDERS": "trained"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for got in ("aoti", "aoti strided"):  # a package reads inputs with its compiled strides: the backend must not care
        assert out[got]["labels"] == out["eager"]["labels"] and len(out[got]["labels"]) > 0, got
        for a, b in zip(out[got]["boxes"], out["eager"]["boxes"]):
            assert max(abs(x - y) for x, y in zip(a, b)) < 0.5, got
    # the C++ example runs the same package (AOTIModelPackageLoader, no Python) with the same detections
    from cpp_runner import as_arrays, run_cpp, zoo_infer_binary
    cpp = as_arrays(run_cpp(zoo_infer_binary(), store / "models" / "my_detector" / "aoti" / "model.pt2",
                            ["boxes", "labels", "scores"], [image], batch=1)[0])
    assert cpp["labels"].tolist() == out["aoti"]["labels"]
    assert abs(cpp["boxes"] - np.array(out["aoti"]["boxes"], np.float32).reshape(-1, 4)).max() < 0.01
    bench = tmp_path / "bench.json"
    run_zoo("bench", "my_detector", "--source", store, "--method", "aoti", "--repeat", "2", "--warmup", "0",
            "--size", "128x160", "--json", bench, env={**pythonpath(True), "ZOO_TRUSTED_BUILDERS": "trained"})
    rows = {r["method"]: r for r in json.loads(bench.read_text())["rows"]}
    assert set(rows) == {"eager", "aoti"} and rows["aoti"]["load_s"] > 0 and rows["aoti"]["median_s"] > 0


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture
def manifest():
    from zoo.core.manifest import parse
    return parse(MANIFEST)


def test_checkpoint_that_does_not_fit_is_refused_naming_the_keys(manifest, tmp_path):
    import torch

    from trained.detector import build
    from zoo.build import weights as models
    from zoo.errors import IntegrityError
    wrong = tmp_path / "three_classes.pth"
    torch.save(build(num_classes=3).state_dict(), wrong)
    with pytest.raises(IntegrityError) as e:
        models.file_model(manifest, wrong)
    assert "wrong shape" in str(e.value) and "roi_heads.box_predictor.cls_score.weight (3, 128)" in str(e.value)
    assert "num_classes" in str(e.value)
    state = build(num_classes=4).state_dict()
    del state["backbone.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    partial = tmp_path / "partial.safetensors"
    from safetensors.torch import save_file
    save_file(state, str(partial))
    with pytest.raises(IntegrityError, match=r"missing 1: backbone\.0\.weight; unexpected 1: extra\.weight"):
        models.file_model(manifest, partial)


@pytest.mark.slow
def test_build_refuses_a_checkpoint_for_another_num_classes(tmp_path):
    import torch

    from trained.detector import build
    wrong = tmp_path / "three_classes.pth"
    torch.save(build(num_classes=3).state_dict(), wrong)
    proc = run_zoo("build", "--manifest", MANIFEST, "--weights", wrong, "--out", tmp_path / "store", "--quiet",
                   env=pythonpath(True), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "FAIL my_detector" in proc.stdout and "roi_heads.box_predictor.cls_score.weight" in proc.stdout
    assert not (tmp_path / "store").exists()  # a failed first build leaves no store behind


def test_builder_args_that_disagree_with_the_categories_are_refused(manifest):
    import dataclasses

    from zoo.load import architecture as models
    from zoo.errors import ZooError
    with pytest.raises(ZooError, match="makes a model of 5 classes but weights.categories names 4"):
        models.architecture(dataclasses.replace(manifest, builder_args={"num_classes": 5}))
    with pytest.raises(ZooError, match=r"trained.detector:build\(\*\*\{'colour': 1\}\) failed: .*check builder_args"):
        models.architecture(dataclasses.replace(manifest, builder_args={"colour": 1}))


class Payload:
    """A pickled object whose loading would run code: it would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_object_in_a_pth_is_refused_and_never_run(manifest, tmp_path):
    import torch

    from zoo.build import weights as models
    from zoo.errors import ZooError
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    torch.save({"model": Payload(marker)}, evil)
    with pytest.raises(ZooError, match=r"not a plain state dict: it holds pickled code \(it calls [\w.]*getattr\), which zoo "
                                       r"does not unpickle .* torch.save\(model.state_dict\(\), 'weights.pth'\)") as e:
        models.file_model(manifest, evil)
    assert not marker.exists()
    assert "\x1b" not in str(e.value) and "two options" not in str(e.value), str(e.value)  # torch's text is not quoted
    garbage = tmp_path / "garbage.pth"  # not a refusal of code: torch's unpickler stops at the first byte
    garbage.write_bytes(b"garbage\n")
    with pytest.raises(ZooError, match=r"garbage.pth cannot be read as a .pth checkpoint \(not a file torch.save "
                                       r"wrote, or a damaged one: Unsupported operand 103\)"):
        models.read_checkpoint(garbage)
    nested = tmp_path / "training.pth"  # a training checkpoint: plain data, but not a state dict
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, nested)
    with pytest.raises(ZooError, match=r"not a state dict.*save checkpoint\['model'\] alone"):
        models.read_checkpoint(nested)


def test_safetensors_checkpoint_loads_the_same_weights(manifest, tmp_path):
    import torch
    from safetensors.torch import save_file

    from trained.detector import build
    from zoo.build import weights as models
    state = build(num_classes=4).state_dict()
    save_file(state, str(tmp_path / "w.safetensors"))
    model, info = models.file_model(manifest, tmp_path / "w.safetensors")
    assert info["kind"] == "file" and info["file_name"] == "w.safetensors" and len(info["source_sha256"]) == 64
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "annotations.json").write_text('{"images": [}'), r"annotations.json: not valid JSON: .* line 1"),
    (lambda d: (d / "images" / "0002.png").unlink(), r"1 image\(s\) missing .*: 0002.png"),
    (lambda d: (d / "annotations.json").write_text('{"images": [], "annotations": {}}'), r"key 'annotations': expected a list"),
])
def test_broken_dataset_gets_a_clear_error(tmp_path, damage, message):
    from trained import shapes
    data = shapes.write_coco(tmp_path / "data", 3, seed=5)
    damage(data)
    proc = run_zoo("eval", "my_detector", "--data", data, "--source", tmp_path / "no-store", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    import re
    assert re.search(message, proc.stderr), proc.stderr


def test_new_manifest_gives_a_file_that_builds_the_architecture(tmp_path):
    from zoo.load import architecture as models
    from zoo.core.manifest import parse, resolve
    out = tmp_path / "pets.toml"
    run_zoo("new-manifest", "pets", "--builder", "torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn",
            "--num-classes", "3", "--categories", "__background__,cat,dog", "--out", out)
    m = parse(out)
    shipped = resolve("fasterrcnn_mobilenet_v3_large_320_fpn")
    assert m.name == "pets" and m.builder_args == {"num_classes": 3} and m.categories == ["__background__", "cat", "dog"]
    assert m.exports == shipped.exports and m.parity == shipped.parity and m.map_tolerance == 0.1
    assert models.architecture(m).roi_heads.box_predictor.cls_score.out_features == 3
    custom = tmp_path / "shapes.toml"
    run_zoo("new-manifest", "shapes", "--builder", "trained.detector:build", "--num-classes", "4", "--out", custom,
            env=pythonpath(True))
    assert isinstance(models.architecture(parse(custom)).backbone, __import__("torch").nn.Sequential)
    proc = run_zoo("new-manifest", "bad", "--builder", "trained.detector:build", "--num-classes", "3",
                   "--categories", "a,b", "--out", tmp_path / "bad.toml", check=False, env=pythonpath(True))
    assert proc.returncode == 2 and "must equal the number of categories" in proc.stderr
    proc = run_zoo("new-manifest", "lost", "--builder", "trained.detector:build", "--out", tmp_path / "lost.toml",
                   check=False, env=pythonpath(False))
    assert proc.returncode == 2 and "trained.detector cannot be imported" in proc.stderr and "PYTHONPATH" in proc.stderr, \
        proc.stderr
    assert not (tmp_path / "lost.toml").exists()


def test_coco_scoring_of_known_answers(tmp_path):
    """zoo.build.coco_eval.score on answers whose mAP is known: the ground truth itself (boxes and masks, under a model whose
    label order differs from the dataset's ids) scores 100; boxes moved by 40% of their size score nothing at IoU 0.5
    and masks still 100; swapped labels score 0."""
    import numpy as np
    from pycocotools import mask as mask_utils

    from trained import shapes
    from zoo.build.coco_eval import open_dataset, score
    data = open_dataset(shapes.write_coco(tmp_path / "d", 6, seed=3))
    model_order = ["__background__", "triangle", "circle", "square"]  # dataset ids: circle 1, square 2, triangle 3
    label_of = {1: 2, 2: 3, 3: 1}

    def answers(shift=0.0, swap=False):
        out = {}
        for image in data.doc["images"]:
            anns = [a for a in data.doc["annotations"] if a["image_id"] == image["id"]]
            h, w = image["height"], image["width"]
            masks = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))) for a in anns]
            out[image["id"]] = {
                "boxes": np.array([[x + shift * bw, y, x + bw + shift * bw, y + bh]
                                   for x, y, bw, bh in (a["bbox"] for a in anns)], np.float32),
                "labels": np.array([label_of[a["category_id"]] % 3 + 1 if swap else label_of[a["category_id"]] for a in anns]),
                "scores": np.linspace(1.0, 0.9, len(anns), dtype=np.float32),
                "masks": np.stack(masks)[:, None].astype(np.float32)}
        return out

    keys = ["boxes", "labels", "scores", "masks"]
    assert score(data, answers(), model_order, keys) == {"bbox": {"map": 100.0, "map50": 100.0},
                                                         "segm": {"map": 100.0, "map50": 100.0}}
    moved = score(data, answers(shift=0.4), model_order, keys)
    assert moved["bbox"] == {"map": 0.0, "map50": 0.0} and moved["segm"]["map"] == 100.0
    assert score(data, answers(swap=True), model_order, keys)["bbox"]["map"] == 0.0


def test_map_gate_refuses_beyond_the_manifest_tolerance(manifest):
    """The rule `zoo build --eval` applies after parity (the trained detector's artifacts all land at +0.00)."""
    from zoo.errors import ParityError
    from zoo.build.pipeline import _check_map
    eager = {"bbox": {"map": 66.9, "map50": 85.2}, "segm": {"map": 60.0, "map50": 80.0}}
    _check_map(manifest, "onnx", eager, {"bbox": {"map": 66.85, "map50": 85.0}, "segm": {"map": 60.1, "map50": 80.0}})
    with pytest.raises(ParityError, match=r"more than eval.map_tolerance 0.1 points: segm 59.80 vs eager 60.00"):
        _check_map(manifest, "onnx", eager, {"bbox": {"map": 66.9, "map50": 85.2}, "segm": {"map": 59.8, "map50": 80.0}})
