"""torch.export artifacts (method `export`, a .pt2 ExportedProgram) beyond the build's parity images: an image with
exactly one detection and one with none (torchvision's fake nms kernel alone makes such programs fail), loaded from
verified bytes in memory."""
import io

import pytest
import torch

from zoo.build import weights as models
from zoo.export import common, pt2
from zoo.export.patches import nms_groups
from zoo.core.manifest import resolve
from zoo.load.runtimes import open_backend
from zoo.load.runtimes.base import Detector

SSD = "ssdlite320_mobilenet_v3_large"


@pytest.fixture(scope="module")
def one_and_none():
    """ssdlite with seeded weights, two constant images, and its score threshold set between the best score of one
    of them and every other score of both (one detection there, none in the other), and the program exported from
    that model, as bytes."""
    manifest = resolve(SSD)
    model = models.random_model(manifest, 0)[0].eval()
    candidates = [torch.full((3, 300, 400), v) for v in (0.0, 0.5, 1.0)]
    with torch.no_grad():
        scores = [model([im])[0]["scores"] for im in candidates]
        best = max(range(len(candidates)), key=lambda i: float(scores[i][0]) if scores[i].numel() else -1.0)
        other = next(i for i in range(len(candidates)) if i != best)
        one, none = candidates[best], candidates[other]
        rest = torch.cat([scores[best][1:], scores[other]])
        top, below = float(scores[best][0]), float(rest.max()) if rest.numel() else 0.0
        assert top > below, "the best score is tied with another: pick other images"
        model.score_thresh = (top + below) / 2
        assert model([one])[0]["scores"].numel() == 1 and model([none])[0]["scores"].numel() == 0
    images = [one, none]
    wrapper = common.exportable(model, manifest, "symbolic")
    program = pt2.exported_program(wrapper, common.example_images(manifest, 1), nms_groups(model, 91))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return manifest, model, [images[0], none], buffer.getvalue()


@pytest.mark.slow
def test_exported_program_gives_one_and_no_detection_like_eager(one_and_none):
    manifest, model, images, data = one_and_none
    backend = open_backend(manifest, "export", "pytorch", io.BytesIO(data), 1)  # verified bytes, not a path
    detector = Detector(backend, manifest.outputs, {}, manifest.categories)
    for image, count in zip(images, (1, 0)):
        with torch.no_grad():
            want = model([image])[0]
        got = detector([image])[0]
        assert len(want["scores"]) == count and len(got["scores"]) == count
        for key in manifest.outputs:
            assert torch.equal(got[key], want[key]), key


@pytest.mark.slow
def test_dynamo_onnx_gives_one_and_no_detection_like_eager(one_and_none, tmp_path, monkeypatch):
    """The same model through the dynamo ONNX exporter (the ONNX method of eleven manifests), run by onnxruntime. Its
    optimiser never tries the rule left out for its quadratic matching (onnx.SLOW_REWRITE_RULES), the export records
    that, and the optimiser has its rules back afterwards."""
    from onnxscript import rewriter

    from zoo.export import onnx as zonnx
    slow = [r for r in rewriter._DEFAULT_REWRITE_RULES if getattr(r, "name", None) in zonnx.SLOW_REWRITE_RULES]
    assert [r.name for r in slow] == ["SlicesSplit"]
    tried = []
    monkeypatch.setattr(slow[0], "try_rewrite", lambda *a, **k: tried.append(1))
    manifest, model, images, _ = one_and_none
    path = tmp_path / "model.onnx"
    wrapper = common.exportable(model, manifest, manifest.export("onnx").transform)
    settings = zonnx.export(wrapper, common.example_images(manifest, 1), str(path), 18, nms_groups(model, 91),
                            "dynamo")
    assert tried == [] and settings["exporter"].endswith("optimised without the rewrite rules SlicesSplit")
    assert slow[0] in rewriter._DEFAULT_REWRITE_RULES
    backend = open_backend(manifest, "onnx", "onnxruntime", path.read_bytes(), 1)
    detector = Detector(backend, manifest.outputs, {}, manifest.categories)
    for image, count in zip(images, (1, 0)):
        with torch.no_grad():
            want = model([image])[0]
        got = detector([image])[0]
        assert len(got["scores"]) == count
        for key in manifest.outputs:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-3)
