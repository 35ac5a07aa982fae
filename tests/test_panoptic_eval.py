"""Panoptic quality as panopticapi computes it (zoo/build/panoptic_eval.py, hotcoco's pq_compute), on a dataset the
test writes in COCO panoptic format, with figures worked out by hand; and what a broken panoptic dataset is told."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo.build import coco_eval, panoptic_eval
from zoo.errors import DataError

THINGS = ["__background__", "cat"]  # the model's labels
STUFF = ["things", "sky-other-merged"]  # its sem_seg channels
CATEGORIES = [{"id": 17, "name": "cat", "isthing": 1}, {"id": 187, "name": "sky-other-merged", "isthing": 0}]


def _png(ids: np.ndarray) -> Image.Image:
    return Image.fromarray(np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8))


@pytest.fixture
def dataset(tmp_path):
    """One 20x20 image: a cat in rows 0-9, columns 0-9 (segment 5, 100 px), sky everywhere else (segment 9)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "panoptic").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    ids = np.full((20, 20), 9)
    ids[:10, :10] = 5
    _png(ids).save(tmp_path / "panoptic" / "a.png")
    (tmp_path / "panoptic.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 20}],
        "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
            {"id": 5, "category_id": 17, "iscrowd": 0, "area": 100, "bbox": [0, 0, 10, 10]},
            {"id": 9, "category_id": 187, "iscrowd": 0, "area": 300, "bbox": [0, 0, 20, 20]}]}],
        "categories": CATEGORIES}))
    return tmp_path


def _output(cat_columns: int) -> dict:
    """The model's output: the cat in rows 0-9 and its first ``cat_columns`` columns (segment 1), sky elsewhere (2)."""
    ids = np.full((20, 20), 2, np.int32)
    ids[:10, :cat_columns] = 1
    return {"panoptic_seg": ids, "segments_info": np.array([[1, 1, 1, 0, 10 * cat_columns],
                                                            [2, 1, 0, -1, 400 - 10 * cat_columns]])}


def test_pq_as_panopticapi_computes_it(dataset):
    """The cat predicted 10x8 (IoU 80/100), the sky then 320 px over its 300 (IoU 300/320): both matched (IoU > 0.5),
    PQ the mean of the categories' (RQ 1): things 80, stuff 93.75, all 86.875; exact, 100 everywhere."""
    instances, panoptic = coco_eval.open_datasets(dataset)
    assert instances is None and panoptic.files == {1: dataset / "images" / "a.png"}
    got = panoptic_eval.score(panoptic, {1: _output(8)}, THINGS, STUFF)
    assert got == {"pq": 86.875, "sq": 86.875, "rq": 100.0, "pq_th": 80.0, "sq_th": 80.0, "rq_th": 100.0,
                   "pq_st": 93.75, "sq_st": 93.75, "rq_st": 100.0}
    assert panoptic_eval.score(panoptic, {1: _output(10)}, THINGS, STUFF)["pq"] == 100.0


def test_a_segment_at_half_the_pixels_is_no_match(dataset):
    """The cat predicted 10x5: IoU 50/100 is not above 0.5, so a false positive and a false negative (RQ 0 for the
    cat, PQ_th 0); the sky (350 px over 300, IoU 300/350) still matched."""
    got = panoptic_eval.score(coco_eval.open_datasets(dataset)[1], {1: _output(5)}, THINGS, STUFF)
    assert got["pq_th"] == 0.0 and got["rq_th"] == 0.0
    assert got["pq_st"] == round(100 * 300 / 350, 3)


def test_a_model_category_the_dataset_lacks_is_left_void(dataset):
    """A stuff segment named as no category of the dataset's: its pixels are void (not a false positive)."""
    out = _output(10)
    out["segments_info"][1, 1] = 2  # a channel the dataset has no category for
    got = panoptic_eval.score(coco_eval.open_datasets(dataset)[1], {1: out}, THINGS, STUFF + ["sand"])
    assert got["pq_th"] == 100.0 and got["rq_st"] == 0.0  # the sky missed (a false negative), nothing wrong added


def test_broken_panoptic_datasets_are_named(dataset):
    (dataset / "panoptic" / "a.png").unlink()
    with pytest.raises(DataError, match=r"1 PNG\(s\) missing under .*panoptic \(panopticapi's folder"):
        coco_eval.open_datasets(dataset)
    doc = json.loads((dataset / "panoptic.json").read_text())
    del doc["categories"][0]["isthing"]
    (dataset / "panoptic.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"panoptic\.json: not a valid coco_panoptic file: categories\[0\]"):
        coco_eval.open_datasets(dataset)
    with pytest.raises(DataError, match="not a directory"):
        coco_eval.open_datasets(dataset / "nothing")
