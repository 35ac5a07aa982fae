"""`zoo bench`: one row per artifact plus the eager reference, ratios computed against eager, memory measured per
run, and clear errors for bad options. Nothing here asserts a time: the figures are checked for consistency only."""
import json

import numpy as np
import pytest

from conftest import LIGHT, run_zoo
from zoo.ops.bench import PeakRss

SSD = LIGHT[0]


def test_peak_counts_memory_that_an_earlier_block_freed():
    # 64 KiB blocks come from the heap; small pins between them keep the freed blocks below the heap's top, where
    # glibc keeps them mapped and a later block reuses them without growing the RSS, unless they are trimmed
    pins = []
    for _ in range(2):
        with PeakRss() as mem:
            held = []
            for _ in range(3200):  # 200 MiB, every page written
                held.append(np.ones(8192))
                pins.append(bytes(1000))
        del held
        assert mem.peak > 150 * 2**20, mem.peak


def test_bench_rows_ratios_and_json(light_store, tmp_path):
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    stdout = run_zoo("bench", SSD, "--source", light_store, "--repeat", "2", "--warmup", "0", "--size", "240x320",
                     "--json", out, "--plot", plot).stdout
    report = json.loads(out.read_text())
    assert report["size"] == [240, 320] and report["threads"] == 2
    rows = {r["method"]: r for r in report["rows"]}
    index = json.loads((light_store / "index.json").read_text())["models"][SSD]
    assert set(rows) == {a["method"] for a in index["artifacts"]} == {"eager", "tracing", "scripting", "onnx", "openvino", "export"}
    eager = rows["eager"]
    medians = [r["median_s"] for r in report["rows"]]
    assert medians == sorted(medians)  # the table users choose from: fastest first
    assert "agree AP50" in stdout and report["photos"] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
    assert eager["agreement"]["ap50"] == eager["agreement"]["ap"] == 1.0 and eager["agreement"]["ground_truth"] > 0
    from PIL import Image
    with Image.open(plot) as im:  # one point per artifact: a real PNG, not an empty file
        assert im.format == "PNG" and im.size[0] >= 600 and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10
    for artifact in index["artifacts"]:
        row = rows[artifact["method"]]
        assert row["model"] == SSD and row["detections"] > 0
        assert row["p90_s"] >= row["median_s"] > 0 and row["first_s"] > 0 and row["load_s"] > 0
        assert row["median_s_vs_eager"] == pytest.approx(row["median_s"] / eager["median_s"])
        assert row["peak_mb"] > 1, row  # each run's own memory, not only what an earlier run left free
        assert f"{row['method']}" in stdout and f"{row['median_s']:.3f}" in stdout
        # f32 artifacts that passed parity give eager's confident boxes on the photos too
        assert row["agreement"]["ap50"] >= 0.95, row
        if artifact["method"] != "eager":
            assert row["size_mb"] * 2**20 == artifact["files"]["model"]["size"]
            assert row["load_vs_runtime"] > 0 and row["sha256_gb_s"] > 0


def test_bench_names_a_model_the_store_lacks(light_store):
    out = run_zoo("bench", "ssd300_vgg16", "--source", light_store, "--repeat", "1").stdout
    assert "ssd300_vgg16: not in" in out and "skipped" in out


@pytest.mark.parametrize("args, expected", [(["--size", "480"], "expected HxW in pixels"),
                                            (["--size", "0x640"], "expected HxW in pixels"),
                                            (["--repeat", "0"], "expected an integer >= 1"),
                                            (["--warmup", "-1"], "expected an integer >= 0")])
def test_bench_rejects_bad_options_clearly(light_store, args, expected):
    proc = run_zoo("bench", SSD, "--source", light_store, *args, check=False)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr


def test_agreement_ap_is_one_against_itself_and_falls_as_detections_drift():
    from zoo.ops.agreement import agreement_ap
    rng = np.random.default_rng(0)

    def detections(n):
        xy, wh = rng.uniform(0, 300, (n, 2)), rng.uniform(20, 100, (n, 2))
        return {"boxes": np.concatenate([xy, xy + wh], 1).astype(np.float32), "labels": rng.integers(1, 5, n),
                "scores": rng.uniform(0.3, 1, n).astype(np.float32)}
    ref = [detections(10), detections(7)]
    itself = agreement_ap(ref, ref)
    assert itself["ap"] == itself["ap50"] == 1.0 and itself["ground_truth"] == sum(
        int((d["scores"] >= 0.5).sum()) for d in ref)
    moved = agreement_ap(ref, [{**d, "boxes": d["boxes"] + rng.normal(0, 6, d["boxes"].shape)} for d in ref])
    assert moved["ap50"] > 0.8 and moved["ap"] < 0.8  # roughly right boxes, not exact ones
    relabelled = agreement_ap(ref, [{**d, "labels": d["labels"] % 4 + 1} for d in ref])
    assert relabelled["ap50"] == 0.0
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int), "scores": np.zeros(0)}
    assert agreement_ap(ref, [empty, empty]) == {"ap": 0.0, "ap50": 0.0, "ground_truth": itself["ground_truth"]}
    assert agreement_ap([empty, empty], ref) is None  # nothing confident to agree on
