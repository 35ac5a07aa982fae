"""The seeded-weights criteria (zoo/build/trainedlike.py) on synthetic outputs, and the build refusing weights that miss
them. The criteria on every model's real eager outputs are asserted in test_all_models.py."""
import json

import numpy as np
import pytest

from zoo.build import trainedlike
from zoo.errors import ManifestError
from zoo.core.manifest import resolve

from conftest import REPO

NAME = "ssdlite320_mobilenet_v3_large"


def detections(n, rng, labels=(1, 3, 7), scores=None, side=(20.0, 80.0)):
    """n trained-like detections: square-ish boxes, spread scores, a few labels."""
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.uniform(*side, (n, 2))
    return {"boxes": np.concatenate([xy, xy + wh], 1).astype(np.float32),
            "labels": np.asarray([labels[i % len(labels)] for i in range(n)], np.int64),
            "scores": (np.sort(rng.uniform(0.05, 0.95, n))[::-1] if scores is None else scores).astype(np.float32)}


def check(outputs, num_classes=91):
    # through JSON: the build records the summary in the index, and the tests re-check it from there
    return trainedlike.failures(json.loads(json.dumps(trainedlike.summary(outputs))), num_classes)


def test_trained_like_outputs_pass():
    rng = np.random.default_rng(0)
    assert check([detections(n, rng) for n in (3, 12, 40, 60)]) == []


def test_a_panoptic_output_must_hold_things_and_stuff_somewhere():
    """segments_info rows [id, category, isthing, instance, area]: detections only under the merge's threshold leave
    stuff alone on every image, which fails naming the counts; things beside stuff on one image pass. A model
    without segments_info records no such figures (torchvision's stores keep their bytes)."""
    rng = np.random.default_rng(0)
    stuff_only = np.asarray([[1, 3, 0, -1, 900], [2, 7, 0, -1, 400]], np.int64)
    both = np.asarray([[1, 5, 1, 0, 300], [2, 3, 0, -1, 900]], np.int64)
    plain = [detections(n, rng) for n in (3, 12)]
    assert check([dict(out, segments_info=stuff_only) for out in plain]) == [
        "no image's panoptic output holds both things and stuff (things [0, 0], stuff [2, 2]): "
        + trainedlike.ADVICE["panoptic"]]
    assert check([dict(plain[0], segments_info=stuff_only), dict(plain[1], segments_info=both)]) == []
    assert "things" not in trainedlike.summary(plain)["images"][0]


def test_saturated_outputs_fail_naming_counts_ties_and_the_setting():
    """What the seeded recipe 1 gave: the cap of detections, every score 1.0."""
    rng = np.random.default_rng(1)
    found = check([detections(300, rng, scores=np.ones(300)) for _ in range(2)])
    assert any("image 0: 300 detections, more than a trained model's 60" in f for f in found), found
    assert any("image 1: 300 of 300 scores tied" in f and "scores saturate" in f and "random_weights.background_bias" in f
               for f in found), found


def test_too_few_detections_fail():
    rng = np.random.default_rng(2)
    found = check([detections(5, rng), detections(0, rng)])
    assert len(found) == 1 and found[0].startswith("image 1: 0 detections, fewer than 2: raise random_weights.bias")


def test_top_scores_must_be_distinct_to_four_decimals_and_ties_few():
    rng = np.random.default_rng(3)
    close = 0.5 + np.arange(30)[::-1] * 2e-5  # all distinct, but 20 of them only ~5 apart at 4 decimals
    found = check([detections(30, rng, scores=close)])
    assert len(found) == 1 and "the top 20 scores are only" in found[0] and "scores crowd together" in found[0], found
    few_ties = np.sort(rng.uniform(0.05, 0.95, 30))[::-1]
    few_ties[-3:] = few_ties[-3]  # three equal low scores: allowed
    assert check([detections(30, rng, scores=few_ties)]) == []
    few_ties[-4:] = few_ties[-4]
    assert "4 of 30 scores tied" in check([detections(30, rng, scores=few_ties)])[0]


def test_one_label_fails_unless_the_model_has_one_class():
    rng = np.random.default_rng(4)
    outputs = [detections(10, rng, labels=(1,)) for _ in range(3)]
    found = check(outputs)
    assert len(found) == 1 and found[0].startswith("1 distinct label(s) [1] over all images") \
        and "random_weights.class_bias" in found[0]
    assert check(outputs, num_classes=2) == []  # Keypoint R-CNN: person or not


def test_sliver_boxes_fail():
    """A Keypoint R-CNN box measured on seeded weights: 0.16 px wide, 677 px tall."""
    rng = np.random.default_rng(5)
    good = detections(20, rng)
    slivers = detections(20, rng)
    slivers["boxes"][:4, 2] = slivers["boxes"][:4, 0] + 0.16
    assert check([good, slivers]) == []  # 4 of 20: a few odd boxes are fine
    slivers["boxes"][:, 2] = slivers["boxes"][:, 0] + 0.16
    found = check([good, slivers])
    assert len(found) == 1 and found[0].startswith("image 1: 20 of 20 boxes implausible") \
        and "box regression layers" in found[0]
    tall = detections(20, rng)
    tall["boxes"][:, 3] = tall["boxes"][:, 1] + 40 * (tall["boxes"][:, 2] - tall["boxes"][:, 0])
    assert "boxes implausible" in check([tall])[0]


def test_build_refuses_seeded_weights_that_saturate(tmp_path, monkeypatch):
    """Recipe settings that saturate the classifier (no negative weight mean): the build names what failed, with the
    numbers, and the manifest key to change; nothing is exported."""
    d = tmp_path / "manifests"
    d.mkdir()
    text = (REPO / "manifests" / f"{NAME}.toml").read_text()
    assert "weight_mean" in text
    text = "\n".join(line for line in text.splitlines() if not line.startswith("weight_mean"))
    (d / f"{NAME}.toml").write_text(text)
    monkeypatch.setenv("ZOO_MANIFESTS", str(d))
    from zoo.build.pipeline import build
    result = build([NAME], tmp_path / "store", "random:0", ["onnx"], progress=False)
    assert result.failed == [f"{NAME}/onnx"], result.lines
    line = result.lines[0]
    assert "do not behave like a trained detector" in line and "image 0: 300 detections" in line, line
    assert "random_weights.background_bias" in line and str(d / f"{NAME}.toml") in line, line
    assert not (tmp_path / "store" / "models" / NAME).exists()


def test_recipe_tables_name_layers_of_the_model():
    """A class setting on a layer whose outputs are not anchors x classes is refused by name."""
    import torch
    from zoo.build import seeded
    from zoo.load import architecture as models
    m = resolve(NAME)
    rw = {**m.random_weights, "background_bias": {"head.regression_head.module_list.0.1": 1.0},
          "spread": {**m.random_weights["spread"], "head.regression_head.module_list.0.1": 0.01}}
    with pytest.raises(ManifestError, match="head.regression_head.module_list.0.1.*not a multiple of the 91 classes"):
        seeded.redraw_heads(models.architecture(m), rw, torch.Generator().manual_seed(0), len(m.categories))
