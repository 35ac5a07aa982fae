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


class _Leaf(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class _Swapped(torch.nn.Module):
    """Swapped for a new module that does not hold it (as detectron2's FPN is): freed during the prepare pass."""
    def __init__(self):
        super().__init__()
        self.leaf = _Leaf()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # not scriptable: its prepared form is

    def __prepare_scriptable__(self):
        return _Doubled(self.leaf)


class _Doubled(torch.nn.Module):
    def __init__(self, leaf):
        super().__init__()
        self.leaf = leaf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.leaf(x) * 2


class _Difference(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x - y


class _Holder(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, x + 1)


class _Maker(torch.nn.Module):
    """Makes new modules when prepared (as the detectron2 keypoint heads do), the first right after _Swapped is freed."""
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __prepare_scriptable__(self):
        return _Holder(_Difference())


class _Both(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.swapped, self.maker = _Swapped(), _Maker()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swapped(x) + self.maker(x)


def test_scripting_keeps_swapped_modules_alive_so_a_new_module_never_takes_a_freed_ones_place():
    """torch.jit.script's __prepare_scriptable__ pass memoizes modules by id(): a module created after a swapped-out
    one was freed can get its address and be scripted as the freed one's replacement ("forward(_Doubled self, Tensor
    x)" for the _Difference; measured in a fresh process with plain torch.jit.script). zoo's script keeps every
    module alive while it runs."""
    from zoo.export.scripting import script
    for _ in range(5):
        scripted = script(_Both())
        assert scripted(torch.ones(1)).item() == (1 + 1) * 2 + (1 - 2)
