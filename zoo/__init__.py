"""zoo: torchvision detection models as verified, parity-checked TorchScript and ONNX artifacts.

``import zoo`` does not import torch: the onnxruntime path runs without it.
"""
from .errors import (IntegrityError, InputError, ManifestError, NotAvailableError, ParityError, UnknownModelError,
                     UnsupportedError, ZooError)

from .core.version import __version__
__all__ = ["load", "ZooError", "ManifestError", "UnknownModelError", "UnsupportedError", "IntegrityError",
           "NotAvailableError", "InputError", "ParityError", "__version__"]


def load(name, runtime="onnxruntime", method=None, device="cpu", source=None, revision=None, **kwargs):
    """Load a model from a store; see zoo.load.loader.load."""
    from .load.loader import load as _load
    return _load(name, runtime=runtime, method=method, device=device, source=source, revision=revision, **kwargs)
