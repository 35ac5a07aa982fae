"""torch.export artifacts (method `export`, a .pt2 ExportedProgram) beyond the build's parity images: an image with
exactly one detection and one with none (torchvision's fake nms kernel alone makes such programs fail), loaded from
verified bytes in memory."""
import io

import pytest
import torch

from zoo import models
from zoo.export import common, pt2
from zoo.export.patches import nms_groups
from zoo.manifest import resolve
from zoo.runtimes import open_backend
from zoo.runtimes.base import Detector

SSD = "ssdlite320_mobilenet_v3_large"


@pytest.fixture(scope="module")
def one_and_none():
    """ssdlite with seeded weights and its score threshold between the two best scores of a black image (one
    detection there; images of noise saturate at 1.0, ties), a grey image (best score ~0.03: none), and the program
    exported from that model, as bytes."""
    manifest = resolve(SSD)
    model = models.random_model(manifest, 0)[0].eval()
    one, none = torch.zeros(3, 300, 400), torch.full((3, 300, 400), 0.5)
    with torch.no_grad():
        first, second = model([one])[0]["scores"][:2].tolist()
        assert first > second, "the black image's best score is tied: pick another image"
        model.score_thresh = (first + second) / 2
        assert model([none])[0]["scores"].numel() == 0
    images = [one, none]
    wrapper = common.exportable(model, manifest, symbolic=True)
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
