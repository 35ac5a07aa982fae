"""The demo shows a detector that works: the shipped checkpoint's held-out mAP, and `zoo demo` end to end (every
method built, loaded as a user would, detections compared with the held-out scene's ground truth, pictures written),
then a second run that reuses its store."""
import json
import re

from PIL import Image

from conftest import run_zoo

HELDOUT_MAP = 50.0  # box mAP points the shipped checkpoint must beat on 60 held-out scenes (see shapes_detector.json)


def test_shipped_checkpoint_is_what_its_record_says_and_detects():
    from zoo.core import store
    from zoo.build.demo import train
    info = train.shipped_info()
    assert store.sha256_file(train.shipped_path()) == info["sha256"]
    assert info["code_digest"] == train.cache_key(), "training code changed: re-train with python -m zoo.build.demo.train"
    assert train.checkpoint() == train.shipped_path()
    box_map = train.heldout_map(train.shipped_path())
    assert box_map > HELDOUT_MAP and abs(box_map - info["heldout"]["box_map"]) < 0.01, box_map
    assert train.shipped_path().stat().st_size < 8 * 2**20  # "a few MB"


def test_demo_builds_every_method_and_finds_the_scene_s_objects(tmp_path):
    out = run_zoo("demo", "--out", tmp_path / "demo", "--quiet").stdout
    for method in ("tracing", "scripting", "onnx", "export"):
        assert re.search(rf"^ok   shapes_detector +{method} ", out, re.M), out
    rows = re.findall(r"^  (\w+)/(\w+): found (\d+) of (\d+) objects .*?, (\d+) false detections? at score", out, re.M)
    assert {r[0] for r in rows} == {"onnxruntime", "pytorch"}, out
    assert all(r[2] == r[3] and int(r[3]) >= 3 and int(r[4]) <= 2 for r in rows), out  # measured: 3 of 3, 2 false
    assert "s/img warm (median of 5; first call" in out and "parity vs eager at build" in out
    for runtime in ("onnxruntime", "pytorch"):
        assert Image.open(tmp_path / "demo" / f"demo_{runtime}.png").size[0] >= 384
    again = run_zoo("demo", "--out", tmp_path / "demo", "--quiet").stdout
    assert "1/3 reusing" in again and "ok   shapes_detector" not in again
    index = json.loads((tmp_path / "demo" / "store" / "index.json").read_text())
    assert index["models"]["shapes_detector"]["weights"]["kind"] == "file"
