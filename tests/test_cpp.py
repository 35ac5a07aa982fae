"""The C++ example: built from the installed wheels, run on verified artifacts, compared with zoo.load in Python."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from conftest import REPO, run_zoo
from cpp_runner import as_arrays, run_cpp, zoo_infer_binary
from zoo.core.parity import Tolerance, compare
from zoo.ops.viz import read_image


@pytest.fixture(scope="session")
def zoo_infer():
    return zoo_infer_binary()


@pytest.fixture(scope="session")
def pngs(tmp_path_factory):
    """Lossless images, so that C++ (torchvision's decoder) and Python (Pillow) see the same pixels."""
    d = tmp_path_factory.mktemp("images")
    src = Image.open(REPO / "zoo" / "data" / "astronaut.jpg").convert("RGB")
    src.save(d / "astronaut.png")
    src.resize((500, 375)).save(d / "other.png")
    return [d / "astronaut.png", d / "other.png"]


def reference_png(store: Path, name: str, tag: str) -> Path:
    """The store's replay image of ``name`` (a parity image of the build) as a lossless PNG."""
    from zoo.core.reference import load_reference
    image, _ = load_reference(store / "models" / name / "reference.npz")
    path = store.parent / f"reference-{tag}.png".replace("/", "_")
    Image.fromarray(np.round(image * 255).astype(np.uint8).transpose(1, 2, 0)).save(path)
    return path


CASES = [("ssdlite320_mobilenet_v3_large", "scripting", "light"),
         ("fasterrcnn_mobilenet_v3_large_320_fpn", "tracing", "light"),
         ("fasterrcnn_mobilenet_v3_large_320_fpn", "scripting", "light"),
         pytest.param("maskrcnn_resnet50_fpn", "scripting", "full", marks=pytest.mark.uses_full_store)]


@pytest.mark.parametrize("name, method, which", CASES)
def test_cpp_matches_python(zoo_infer, pngs, request, name, method, which):
    source = request.getfixturevalue("light_store") if which == "light" else request.getfixturevalue("full_store")[0]
    artifact = run_zoo("path", name, "--runtime", "pytorch", "--method", method, "--source", source).stdout.strip()
    model = zoo.load(name, runtime="pytorch", method=method, source=source)
    keys = model.keys
    batch = model.info["artifact"]["batch"]
    # the photos, and the store's replay image of this model (seeded weights detect little in photos)
    files = pngs + [reference_png(Path(source), name, request.node.name)]
    cpp = run_cpp(zoo_infer, artifact, keys, files, batch)
    images = [read_image(p) for p in files]
    detected = 0
    py = model(images) if batch is None else [model([im])[0] for im in images]
    for c, p, im in zip(cpp, py, images):
        assert c["size"] == list(im.shape[1:])
        assert c["boxes"]["dtype"] == "float32" and c["labels"]["dtype"] == "int64" and c["scores"]["dtype"] == "float32"
        core = {k: p[k] for k in ("boxes", "labels", "scores")}  # masks come as shape + area, checked below
        report = compare([core], [as_arrays(c)], Tolerance(box_atol=0.01, score_atol=1e-4))
        assert report.ok, report.failures
        detected += report.images[0].n_reference
        if "masks" in keys:
            assert c["masks"]["shape"] == list(p["masks"].shape) and c["masks"]["shape"][2:] == list(im.shape[1:])
            assert c["masks"]["area_over_half"] == int((p["masks"] > 0.5).sum())
    assert detected > 0, "no image had a detection: nothing was compared"


def test_build_script_says_what_is_missing(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "cpp" / "build.sh")], capture_output=True, text=True,
                          env={**os.environ, "CXX": "no-such-compiler"})
    assert proc.returncode == 1 and "no C++ compiler 'no-such-compiler'" in proc.stderr
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    proc = subprocess.run(["bash", str(REPO / "cpp" / "build.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(fake)})
    assert proc.returncode == 1 and "cannot import torch and torchvision" in proc.stderr


def test_tampered_artifact_never_reaches_cpp(light_store, tmp_path):
    import shutil
    copy = tmp_path / "store"
    shutil.copytree(light_store, copy)
    pt = copy / "models" / "ssdlite320_mobilenet_v3_large" / "scripting" / "model.pt"
    pt.write_bytes(pt.read_bytes() + b"!")
    proc = run_zoo("path", "ssdlite", "--runtime", "pytorch", "--method", "scripting", "--source", copy, check=False)
    assert proc.returncode == 2 and proc.stdout == "" and "sha256 mismatch" in proc.stderr
