"""Every model and method of the manifests: built with seeded weights, parity-checked against eager, replayed in a
fresh process, and checked against the output contract (masks, keypoints) at the model's default input size."""
import json

import numpy as np
import pytest

import zoo
from conftest import full_store_methods, heavy_models, run_zoo
from zoo.build import trainedlike
from zoo.core.manifest import all_manifests


def test_every_combination_builds_and_matches_eager(full_store):
    store_dir, result = full_store
    assert not result.failed, "\n".join(result.lines)
    index = json.loads((store_dir / "index.json").read_text())
    assert {o.name for o in result.models} == set(heavy_models())
    for m in map(all_manifests().get, heavy_models()):  # the light models: built and checked by the light store
        built = {a["method"]: a for a in index["models"][m.name]["artifacts"]}
        assert {"eager"} | set(full_store_methods(m)) <= set(built), m.name  # a prebuilt store may hold more
        for e in m.exports:
            if e.method not in built:
                continue
            meta = json.loads((store_dir / built[e.method]["files"]["metadata"]["path"]).read_text())
            results = meta["parity"]["results"]
            assert all(r["ok"] for r in results.values()), (m.name, e.method, results)
            assert results["sizes+grey"]["images"] == len(m.parity["sizes"]) + 1
            assert results["batch"]["images"] == len(m.parity["batch"])
            assert results["sizes+grey"]["detections"] > 0


def test_seeded_weights_behave_like_trained_ones(full_store, light_store):
    """Per model, all 12, the figures of eager on each content image of the parity set meet zoo.build.trainedlike's
    criteria: a few to a few dozen detections (not the cap), spread scores, more than one label, plausible boxes (see
    docs/seeded-weights.md). As the build recorded them for the models of the light and full stores, measured here
    as the build measures them for the others."""
    from zoo.build.pipeline import seeded_figures
    for m in all_manifests().values():
        stored = {**json.loads((light_store / "index.json").read_text())["models"],
                  **json.loads((full_store[0] / "index.json").read_text())["models"]}
        figures = stored[m.name]["score_spread"] if m.name in stored else seeded_figures(m, 0)
        assert len(figures["images"]) == len(m.parity["sizes"]) + len(m.parity["batch"]), m.name
        assert trainedlike.failures(figures, len(m.categories)) == [], (m.name, figures)
        assert figures["distinct_scores"] >= figures["detections"] - trainedlike.MAX_TIED * len(figures["images"])


def test_manifests_keep_torchvision_default_input_sizes():
    """Parity runs at the model's default resolution: images of any size are resized inside the model to the
    manifest's min/max size, which must be torchvision's own (no smaller setting hides a failure)."""
    from zoo.load import architecture as models
    for m in all_manifests().values():
        t = models.architecture(m).transform
        if t.fixed_size:
            assert m.input["fixed_size"] == list(t.fixed_size)
        else:
            assert (m.input["min_size"], m.input["max_size"]) == (t.min_size[-1], t.max_size), m.name


def test_full_store_verifies_and_replays_in_a_fresh_process(full_store):
    out = run_zoo("verify", full_store[0]).stdout
    assert out.strip().endswith(" 0 bad"), out[-3000:]


@pytest.mark.parametrize("name, keys", [("maskrcnn_resnet50_fpn", {"masks"}),
                                         ("keypointrcnn_resnet50_fpn", {"keypoints", "keypoints_scores"})])
def test_masks_and_keypoints_contract(full_store, name, keys):
    from zoo.core.reference import load_reference
    model = zoo.load(name, runtime="onnxruntime", source=full_store[0])
    # the store's replay image: a smooth one like photos (trained-like seeded weights detect little in white noise)
    image, _ = load_reference(full_store[0] / "models" / name / "reference.npz")
    h, w = image.shape[-2:]
    out = model([image])[0]
    n = len(out["scores"])
    assert n > 0 and keys <= set(out)
    if "masks" in keys:
        assert out["masks"].shape == (n, 1, h, w) and out["masks"].dtype == np.float32
        assert 0 <= out["masks"].min() and out["masks"].max() <= 1
    if "keypoints" in keys:
        assert out["keypoints"].shape == (n, 17, 3) and out["keypoints"].dtype == np.float32
        assert out["keypoints_scores"].shape == (n, 17) and out["keypoints_scores"].dtype == np.float32
        inside = out["keypoints"][..., 0]
        assert inside.min() >= -1 and inside.max() <= w + 1
