"""The zoo's exceptions: each says what was expected, so a user never has to read a torch traceback."""
import re

# terminal escape sequences (CSI such as colours, OSC, two-character ones) and other control characters but tab and
# newline: another library's text quoted in a message must not reach a terminal or a log as codes
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def plain(text: str) -> str:
    """``text`` without terminal escape codes or control characters."""
    return _ESCAPES.sub("", text)


def first_line(e: BaseException) -> str:
    """An exception's first line (at most 300 characters, no escape codes), to quote another library's error inside
    ours."""
    text = plain(str(e)).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose. Its message never carries terminal escape codes (a quoted
    torch or onnxruntime message may)."""

    def __str__(self) -> str:
        return plain(super().__str__())


class ManifestError(ZooError, ValueError):
    """A manifest file is malformed: names the file, the key and what was expected."""


class UnknownModelError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return plain(str(self.args[0]))


class UnsupportedError(ZooError, ValueError):
    """A method/runtime/device combination that the model or the store does not offer."""


class IntegrityError(ZooError):
    """A file's sha256 differs from the one its index records, or an index entry is unsafe."""


class NotAvailableError(ZooError):
    """A file or artifact cannot be had: missing in a source, or offline without a cached copy."""


class InputError(ZooError, TypeError):
    """Bad input to a loaded model."""


class ParityError(ZooError):
    """An exported artifact's outputs differ from eager PyTorch beyond its manifest's tolerance."""


class DataError(ZooError, ValueError):
    """An evaluation dataset is malformed: names the file and what was expected."""


class MissingExtraError(ZooError, ImportError):
    """A runtime the call needs is not installed: names the package and the pip command."""


class RuntimeFailure(ZooError, RuntimeError):
    """onnxruntime or torch failed while loading or running a verified artifact: says what to do."""


class ChannelError(ZooError):
    """A channel file is malformed: names the file, the key and what was expected."""


class ReleaseRefused(ZooError):
    """The store is not fit to publish: an artifact failed parity or some weights are not the official ones."""


class SeededWeightsWarning(UserWarning):
    """A loaded model has seeded random weights: it runs, its detections mean nothing (warned once per model)."""


class CpuFeatureWarning(UserWarning):
    """A loaded approximate (int8) artifact was built and proven on a CPU with instruction-set features this one lacks:
    its accuracy and speed here are not the ones its metadata records (names the missing features)."""


class ConsentError(ZooError, PermissionError):
    """Code from a source (a TorchScript, torch.export or AOTInductor artifact, a builder) that the user did not say
    they trust: names the source and the three ways to consent."""


class ConversionError(ZooError, ValueError):
    """A detectron2 checkpoint or config `zoo convert-d2` refuses: names the file, the config key or the tensors, and
    what was expected."""
