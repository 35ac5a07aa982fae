"""zoo: torchvision detection models exported by tracing, scripting, ONNX, torch.export and AOTInductor, parity-checked
against eager PyTorch and loaded with sha256 verification.

The public surface: ``zoo.load`` (zoo.load.loader.load), ``zoo.Detector`` (what it returns), every error a user can
get, ``__version__``. ``import zoo`` does not import torch: the onnxruntime path runs without it. Where the rest lives:
docs/architecture.md.
"""
from .core.version import __version__
from .errors import (ChannelError, ConsentError, ConversionError, CpuFeatureWarning, DataError, IntegrityError, InputError, ManifestError,
                     MissingExtraError, NotAvailableError, ParityError, ReleaseRefused, RuntimeFailure,
                     UnknownModelError, UnsupportedError, ZooError)
# imported here, not on first use: importing the zoo.load package later would rebind zoo.load to it
from .load.loader import load
from .load.runtimes.base import Detector

__all__ = ["load", "Detector", "ZooError", "ManifestError", "UnknownModelError", "UnsupportedError", "IntegrityError",
           "NotAvailableError", "InputError", "ParityError", "DataError", "MissingExtraError", "RuntimeFailure",
           "ChannelError", "ReleaseRefused", "ConsentError", "ConversionError", "CpuFeatureWarning", "__version__"]
