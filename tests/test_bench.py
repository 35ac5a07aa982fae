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
    stdout = run_zoo("bench", SSD, "--source", light_store, "--repeat", "2", "--warmup", "0", "--size", "240x320",
                     "--json", out).stdout
    report = json.loads(out.read_text())
    assert report["size"] == [240, 320] and report["threads"] == 2
    rows = {r["method"]: r for r in report["rows"]}
    index = json.loads((light_store / "index.json").read_text())["models"][SSD]
    assert set(rows) == {a["method"] for a in index["artifacts"]} == {"eager", "tracing", "scripting", "onnx", "openvino", "export"}
    eager = rows["eager"]
    for artifact in index["artifacts"]:
        row = rows[artifact["method"]]
        assert row["model"] == SSD and row["detections"] > 0
        assert row["p90_s"] >= row["median_s"] > 0 and row["first_s"] > 0 and row["load_s"] > 0
        assert row["median_s_vs_eager"] == pytest.approx(row["median_s"] / eager["median_s"])
        assert row["peak_mb"] > 1, row  # each run's own memory, not only what an earlier run left free
        assert f"{row['method']}" in stdout and f"{row['median_s']:.3f}" in stdout
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
