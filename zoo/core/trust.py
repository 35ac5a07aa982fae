"""Which artifacts are code, and which sources the user trusts to run code (docs/security.md).

Data: ``onnx``, ``onnx-int8``, the ``openvino`` and ``tensorrt`` methods (an ONNX graph of standard operators, refused if it
names external data) and ``eager`` (safetensors weights
into a torchvision builder the index cannot choose arguments for). Code: ``tracing`` and ``scripting`` (TorchScript
can call any registered operator, e.g. ``aten::from_file``, which reads any file: measured), ``export`` (the same
operators, and pickles the archive may ask for) and ``aoti`` (a shared library that is dlopened).

A source is trusted to run code when it is the pinned official channel (its index sha256 ships with the package), the
user's own local store (``$ZOO_HOME/store``, which only ``zoo build`` writes), when the call says ``trust_code=True``
(``--trust-code``), or when ``$ZOO_TRUSTED_SOURCES`` names it: comma-separated entries, each a directory (that store
and those below it), an ``http(s)://`` URL prefix or ``hf://ORG/REPO`` (``hf://ORG/*`` for an organisation)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConsentError
from .settings import trusted_sources

CODE_METHODS = frozenset({"tracing", "scripting", "export", "aoti"})
DATA_METHODS = frozenset({"onnx", "onnx-int8", "openvino", "openvino-int8", "openvino-bf16", "tensorrt", "tensorrt-fp16",
                          "eager"})
ENV = "ZOO_TRUSTED_SOURCES"
LOCAL_STORE = "local store"  # the origin the load path gives the user's own store (zoo.load.sources)


def is_code(method: str) -> bool:
    return method in CODE_METHODS


def kind(method: str) -> str:
    """'code' or 'data' (the support table's words)."""
    return "code" if is_code(method) else "data"


def _spec(src) -> str:
    """What the source is, as an entry of ZOO_TRUSTED_SOURCES would name it."""
    if getattr(src, "root", None) is not None:
        return str(Path(src.root).expanduser().resolve())
    if getattr(src, "base", None):
        return src.base
    if getattr(src, "repo", None):
        return f"hf://{src.repo}"
    return str(getattr(src, "description", src))


def _matches(entry: str, spec: str) -> bool:
    if entry.startswith(("http://", "https://")):
        return spec.startswith(entry)
    if entry.startswith("hf://"):
        return spec.startswith(entry[:-1]) if entry.endswith("*") else spec == entry
    if spec.startswith(("http://", "https://", "hf://")):
        return False
    root = Path(entry).expanduser().resolve()
    return Path(spec) == root or Path(spec).is_relative_to(root)


def trusted(src, trust_code: bool = False) -> bool:
    """May code from ``src`` run: the pinned channel, the user's local store, ``trust_code``, or an entry of
    $ZOO_TRUSTED_SOURCES."""
    if trust_code or getattr(src, "pinned_by", None) or getattr(src, "origin", None) == LOCAL_STORE:
        return True
    spec = _spec(src)
    return any(_matches(e, spec) for e in trusted_sources())


def consent_hint(src) -> str:
    return (f"pass trust_code=True (CLI: --trust-code) or add {_spec(src)!r} to ${ENV} (comma-separated) if you trust "
            "whoever can write that source")


def require(src, method: str, model: str, trust_code: bool = False) -> None:
    """ConsentError unless ``method``'s artifacts are data or ``src`` is trusted to run code."""
    if is_code(method) and not trusted(src, trust_code):
        raise ConsentError(
            f"{model} {method} is code, not data (a {method} artifact can read your files or run native code when it "
            f"is opened), and {src.description} is not a source you said you trust: {consent_hint(src)}; or load the "
            "data methods, which need no trust: runtime='onnxruntime' (onnx) or method='eager'")
