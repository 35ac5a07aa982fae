"""The `zoo` command line, each command run in its own process as a user would."""
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import run_zoo

IMAGE = Path(__file__).resolve().parent.parent / "zoo" / "data" / "astronaut.jpg"


def test_list_and_info():
    out = run_zoo("list").stdout
    for name in ("maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn", "ssd300_vgg16", "fcos_resnet50_fpn"):
        assert name in out
    assert max(len(line) for line in out.splitlines()) < 140  # short cells: the reasons are in `zoo info`
    assert "unsupported (zoo info)" in out and "supported (when asked)" in out
    assert out.rstrip().endswith("why a combination is unsupported, with the figures: zoo info MODEL")
    rows = run_zoo("list", "mask_rcnn").stdout.strip().splitlines()[2:-2]
    assert all(r.startswith("maskrcnn_resnet50_fpn ") for r in rows) and len(rows) == 7  # aoti, openvino refused
    rows = run_zoo("list", "--method", "onnx", "--runtime", "onnxruntime").stdout.splitlines()[2:]
    assert len(rows) == 12 and all(" onnx " in r for r in rows)
    proc = run_zoo("list", "mask_rcn", check=False)
    assert proc.returncode == 2 and "did you mean 'mask_rcnn'" in proc.stderr
    assert "| unsupported: " in run_zoo("list", "--markdown").stdout  # the README's table keeps the reasons
    assert "sha256 GB/s   how fast" in run_zoo("bench", "--help").stdout
    info = run_zoo("info", "keypoint_rcnn").stdout
    assert "unsupported: openvino/openvino: OpenVINO runs this model's ONNX graph" in info
    assert "export:   export    -> pytorch" in info  # its decoding loop exports as a torch.while_loop
    info = run_zoo("info", "mask_rcnn").stdout
    assert "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth" in info and "mask_map 34.6" in info and "opset 18 (dynamo exporter)" in info


def test_predict_prints_detections_and_draws_them(light_store, tmp_path):
    pic = tmp_path / "vis.png"
    proc = run_zoo("predict", IMAGE, "--model", "ssdlite", "--runtime", "onnxruntime", "--source", light_store,
                   "--out", pic, "--top", "3", "--threshold", "0")
    out = proc.stdout
    assert "s/img warm (median of 3; first call" in out and "seeded random weights" in out and "parity vs eager" in out
    assert "3 of " in out and "detections with score >= 0 (--threshold):" in out
    import re
    rows = [ln for ln in out.splitlines() if re.match(r"^  \S.* \d\.\d{3}  \[[\d.]+, [\d.]+, [\d.]+, [\d.]+\]$", ln)]
    assert len(rows) == 3, out
    drawn = np.asarray(Image.open(pic).convert("RGB"))
    original = np.asarray(Image.open(IMAGE).convert("RGB"))
    head = 3 * 20 + 6  # title, "N of M shown" and the seeded-weights banner above the image (zoo/viz.py)
    assert drawn.shape[0] > original.shape[0] + head and drawn.shape[1] >= original.shape[1]
    inner = drawn[head:head + original.shape[0], :original.shape[1]]
    assert (np.abs(inner.astype(int) - original).sum(axis=2) > 60).mean() > 0.002


def test_verify_ok_then_tampered(light_store, tmp_path):
    out = run_zoo("verify", light_store).stdout
    assert out.rstrip().endswith(": all ok, 0 bad") and " artifacts reproduce their reference outputs" in out
    copy = tmp_path / "store"
    shutil.copytree(light_store, copy)
    pt = copy / "models" / "ssdlite320_mobilenet_v3_large" / "scripting" / "model.pt"
    pt.write_bytes(pt.read_bytes()[:-10] + b"0123456789")
    proc = run_zoo("verify", copy, check=False)
    assert proc.returncode == 1
    assert "hash mismatch" in proc.stdout and "ssdlite320_mobilenet_v3_large/scripting/model.pt" in proc.stdout


def test_verify_replay_catches_a_valid_but_wrong_artifact(light_store, tmp_path):
    """An artifact whose hashes are re-signed in the index but whose outputs are wrong fails the replay."""
    import json

    from zoo.core import store
    copy = tmp_path / "store"
    shutil.copytree(light_store, copy)
    model = "fasterrcnn_mobilenet_v3_large_320_fpn"
    ref = copy / "models" / model / "reference.npz"
    with np.load(ref) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["boxes"] = arrays["boxes"] + 5.0
    np.savez_compressed(ref, **arrays)
    index = json.loads((copy / "index.json").read_text())
    for a in index["models"][model]["artifacts"]:
        if "reference" in a["files"]:
            a["files"]["reference"] = store.file_record(copy, a["files"]["reference"]["path"])
    (copy / "index.json").write_text(json.dumps(index))
    proc = run_zoo("verify", copy, model, check=False)
    assert proc.returncode == 1 and "parity failure" in proc.stdout and "box diff" in proc.stdout


def test_path_prints_a_verified_artifact_and_refuses_a_tampered_one(light_store, tmp_path):
    path = Path(run_zoo("path", "ssdlite", "--runtime", "pytorch", "--method", "scripting", "--source", light_store).stdout.strip())
    assert path.is_file() and path.name == "model.pt"
    copy = tmp_path / "store"
    shutil.copytree(light_store, copy)
    target = copy / "models" / "ssdlite320_mobilenet_v3_large" / "scripting" / "model.pt"
    target.write_bytes(b"not a model")
    proc = run_zoo("path", "ssdlite", "--runtime", "pytorch", "--method", "scripting", "--source", copy, check=False)
    assert proc.returncode == 2 and "sha256 mismatch" in proc.stderr and proc.stdout == ""


def test_errors_are_one_clear_line():
    proc = run_zoo("info", "yolo", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("zoo: error: unknown model 'yolo'") and "Traceback" not in proc.stderr
    proc = run_zoo("build", "ssd", "--weights", "pretrained", "--out", "/tmp/x", check=False)
    assert proc.returncode == 2 and "'official' or 'random:SEED'" in proc.stderr


def test_demo_with_a_coco_architecture_says_its_weights_are_random(tmp_path):
    out = run_zoo("demo", "--model", "ssdlite", "--out", tmp_path / "demo", "--quiet").stdout
    assert "ok   ssdlite320_mobilenet_v3_large" in out and "seeded random weights" in out
    assert "parity vs eager" in out and "load" in out
    for runtime in ("onnxruntime", "pytorch"):
        width, height = Image.open(tmp_path / "demo" / f"demo_{runtime}.png").size
        assert width >= 512 and height > 512  # the image, with its header and legend


def test_every_option_has_help_and_errors_speak_the_cli_s_words():
    import argparse

    from zoo.cli.main import cli_words, parser
    missing = [f"zoo {name} {a.option_strings or a.dest}" for name, sub in
               parser()._subparsers._group_actions[0].choices.items() for a in sub._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing
    assert cli_words("pass source= (a store) or revision=") == "pass --source (a store) or --revision"


def test_zoo_piped_into_head_ends_quietly_and_main_leaves_signal_handlers_alone():
    """The executable takes the default SIGPIPE action (`zoo list | head -1`: no BrokenPipeError traceback); `main`
    called inside a program does not, or that program would die on its next write to a closed pipe (the CI run of
    stop 29 ended with exit 141 that way, after a test called `main` in the pytest process)."""
    import signal
    import subprocess
    import sys
    proc = subprocess.run(f"{sys.executable} -m zoo.cli list | head -1", shell=True, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("model") and proc.stderr == "", proc.stderr
    from zoo.cli import main
    before = signal.getsignal(signal.SIGPIPE)
    assert main(["list", "mask_rcnn"]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before
