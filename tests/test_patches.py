"""The exact-resize transform: the resized size equals eager's under tracing and scripting, at many sizes."""
import random
import warnings

import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform, _resize_image_and_masks

from zoo.export.patches import ExactResizeTransform

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SIZES = [(375, 500), (311, 400), (400, 600), (333, 333), (1, 7)] + \
        [(random.Random(i).randint(40, 900), random.Random(i + 1000).randint(40, 900)) for i in range(40)]


class Resized(torch.nn.Module):
    def __init__(self, transform):
        super().__init__()
        self.t = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.t.resize(image, None)[0]


def eager_size(h, w, min_size, max_size):
    return tuple(_resize_image_and_masks(torch.zeros(3, h, w), min_size, max_size)[0].shape[-2:])


@pytest.mark.parametrize("min_size, max_size", [(800, 1333), (320, 640)])
def test_traced_and_scripted_resize_match_eager_sizes(min_size, max_size):
    exact = ExactResizeTransform(min_size, max_size, MEAN, STD).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Resized(exact), (torch.zeros(3, 320, 416),), check_trace=False)
        scripted = torch.jit.script(Resized(exact))
    for h, w in SIZES:
        want = eager_size(h, w, min_size, max_size)
        image = torch.zeros(3, h, w)
        assert tuple(traced(image).shape[-2:]) == want, (h, w)
        assert tuple(scripted(image).shape[-2:]) == want, (h, w)
        assert tuple(exact.resize(image, None)[0].shape[-2:]) == want, (h, w)


def test_unpatched_torchvision_still_rounds_differently_when_traced():
    """The bug the patch exists for (FINDINGS.md). If torchvision fixes it, this fails and the patch can go."""
    plain = GeneralizedRCNNTransform(800, 1333, MEAN, STD).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Resized(plain), (torch.zeros(3, 320, 416),), check_trace=False)
    wrong = [(h, w) for h, w in SIZES if tuple(traced(torch.zeros(3, h, w)).shape[-2:]) != eager_size(h, w, 800, 1333)]
    assert (375, 500) in wrong and (311, 400) in wrong


def test_resized_pixels_equal_eager():
    exact = ExactResizeTransform(800, 1333, MEAN, STD).eval()
    image = torch.rand(3, 375, 500, generator=torch.Generator().manual_seed(0))
    assert torch.equal(exact.resize(image, None)[0], _resize_image_and_masks(image, 800, 1333)[0])
