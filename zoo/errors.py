"""The zoo's exceptions: each says what was expected, so a user never has to read a torch traceback."""


def first_line(e: BaseException) -> str:
    """An exception's first line (at most 300 characters), to quote another library's error inside ours."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose."""


class ManifestError(ZooError, ValueError):
    """A manifest file is malformed: names the file, the key and what was expected."""


class UnknownModelError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


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


class ConsentError(ZooError, PermissionError):
    """Code from a source (a TorchScript, torch.export or AOTInductor artifact, a builder) that the user did not say
    they trust: names the source and the three ways to consent."""
