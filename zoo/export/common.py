"""What every exporter shares: the exportable wrapper, example images, quiet recorded warnings, and how a
TorchScript artifact is optimised and saved."""
import contextlib
import copy
import warnings
from typing import Callable, Iterator, List

import torch

from ..core.manifest import Manifest
from .patches import FlatOutputs, make_exportable
from .relocate import relocate


def exportable(model: torch.nn.Module, manifest: Manifest, transform: str = "exact") -> FlatOutputs:
    """A copy of ``model`` with an exact-resize transform (``patches.TRANSFORMS``; a transform of the package's own
    models makes its own, ``export_transform``), returning flat outputs in the manifest's key order."""
    model = copy.deepcopy(model)
    own = getattr(model.transform, "export_transform", None)
    if own is not None:
        model.transform = own(transform)
    else:
        make_exportable(model, transform)
    return FlatOutputs(model.eval(), list(manifest.outputs)).eval()


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


# What every TorchScript artifact gets on top of its traced or scripted graph; recorded in its metadata.
TORCHSCRIPT_OPTIMISATIONS = ("channels_last weights (oneDNN's faster convolution layout on CPU); torch.jit.freeze "
                             "(weights inlined as constants, batch norm folded into the convolutions)")


def to_torchscript(wrapper: FlatOutputs, make: Callable[[FlatOutputs], torch.jit.ScriptModule], path: str) -> dict:
    """``make`` (trace or script) the wrapper with channels_last weights, freeze the result, save it.

    Both rewrites change only float rounding (the build's parity check holds each artifact to its tolerance); together
    they make the ResNet-50 models ~25% faster than the same graph unfrozen in the default layout."""
    module = make(wrapper.to(memory_format=torch.channels_last)).eval()  # .to converts the wrapper in place
    save_torchscript(torch.jit.freeze(module), path)
    return {"optimisations": TORCHSCRIPT_OPTIMISATIONS}
