"""TorchScript artifacts are saved frozen (batch norm folded into the convolutions) with channels_last weights, and
still compute what the eager module computes, at other sizes than the example too."""
import warnings
from typing import List

import pytest
import torch

from zoo.export.common import TORCHSCRIPT_OPTIMISATIONS, to_torchscript


class ConvBN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)
        self.bn.weight.data.uniform_(0.5, 2)
        self.bn.bias.data.uniform_(-1, 1)
        self.head = torch.nn.Conv2d(8, 2, 1)

    def forward(self, images: List[torch.Tensor]) -> List[torch.Tensor]:
        return [self.head(torch.relu(self.bn(self.conv(im[None]))))[0] for im in images]


def graph_kinds(module) -> set:
    return {node.kind() for node in module.graph.nodes()}


@pytest.mark.parametrize("method", ["trace", "script"])
def test_artifact_is_frozen_channels_last_and_matches_eager(method, tmp_path):
    eager = ConvBN().eval()
    example = [torch.rand(3, 20, 24)]
    make = (lambda m: torch.jit.trace(m, (example,))) if method == "trace" else torch.jit.script
    path = str(tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settings = to_torchscript(ConvBN().eval(), make, path)
        loaded = torch.jit.load(path)
    assert settings == {"optimisations": TORCHSCRIPT_OPTIMISATIONS}

    assert list(loaded.parameters()) == [] and "aten::batch_norm" not in graph_kinds(loaded)
    weights = [t for t in loaded.code_with_constants[1].const_mapping.values() if t.dim() == 4]
    assert len(weights) == 2  # the folded 3x3 convolution and the 1x1 head
    folded = next(w for w in weights if w.shape[-1] == 3)
    assert folded.is_contiguous(memory_format=torch.channels_last) and not folded.is_contiguous()

    images = [torch.rand(3, 20, 24), torch.rand(3, 33, 17)] if method == "script" else [torch.rand(3, 31, 29)]
    with torch.no_grad():
        for got, want in zip(loaded(images), eager(images)):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
