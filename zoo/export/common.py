"""What every exporter shares: the exportable wrapper, example images, and quiet, recorded warnings."""
import contextlib
import copy
import warnings
from typing import Iterator, List

import torch

from ..manifest import Manifest
from .patches import FlatOutputs, make_exportable
from .relocate import relocate


def exportable(model: torch.nn.Module, manifest: Manifest) -> FlatOutputs:
    """A copy of ``model`` with the exact-resize transform, returning flat outputs in the manifest's key order."""
    return FlatOutputs(make_exportable(copy.deepcopy(model)).eval(), list(manifest.outputs)).eval()


def example_images(manifest: Manifest, batch: int) -> List[torch.Tensor]:
    """Seeded images at the manifest's export size (parity is then checked at other sizes)."""
    h, w = manifest.parity["export_size"]
    gen = torch.Generator().manual_seed(1234)
    return [torch.rand(3, h, w, generator=gen) for _ in range(batch)]


@contextlib.contextmanager
def recorded_warnings(into: dict) -> Iterator[None]:
    """torch.jit's deprecation notices and tracer warnings are expected here: record them, don't print them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}" for w in caught})
    into["warnings"] = messages


def save_torchscript(module: torch.jit.ScriptModule, path: str) -> None:
    """``torch.jit.save``, then make the recorded source paths relative so the bytes do not depend on the checkout."""
    torch.jit.save(module, path)
    relocate(path)
