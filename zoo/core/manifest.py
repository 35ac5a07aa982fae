"""Manifests: one TOML file per model (manifests/), parsed and validated into typed objects; the support matrix."""
from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import settings
from . import trust
from ..errors import ManifestError, UnknownModelError, UnsupportedError

MANIFEST_DIR = Path(__file__).parent.parent / "manifests"
METHODS = {"tracing": ("pytorch", "torchscript"), "scripting": ("pytorch", "torchscript"), "onnx": ("onnxruntime", "onnx"),
           "export": ("pytorch", "pt2"), "aoti": ("pytorch", "aoti"), "openvino": ("openvino", "onnx"),
           "tensorrt": ("tensorrt", "onnx"), "tensorrt-fp16": ("tensorrt", "onnx"),  # NVIDIA GPUs: docs/gpu.md
           "onnx-int8": ("onnxruntime", "onnx"),  # the onnx file quantized to int8: docs/int8.md
           "openvino-int8": ("openvino", "onnx"),  # the onnx file quantized to int8 by NNCF, run by OpenVINO: docs/int8.md
           "openvino-bf16": ("openvino", "onnx")}  # the onnx file, run by OpenVINO in bfloat16: docs/openvino.md
# methods whose artifact is an ONNX file made by the ONNX exporter (zoo/export/onnx.py), each run by its own runtime:
# they take the exporter's settings (opset, exporter) in their [[export]] entry
ONNX_METHODS = tuple(m for m, (_, fmt) in METHODS.items() if fmt == "onnx")
# methods whose build takes minutes per model (AOTInductor compiles C++): CI's stores and the reference lock leave them
# out, `zoo build` builds them where a manifest lists them (docs/torch-export.md)
SLOW_METHODS = ("aoti",)
# approximate methods (lower precision): gated on agreement AP against eager (zoo/build/accuracy.py), not on
# detection-by-detection parity; their [[export]] entry states ACCURACY_KEYS (min_agreement_ap50 at least)
# (method -> the exact method of the same runtime, what to load instead where the approximation does not hold)
EXACT_OF = {"onnx-int8": "onnx", "openvino-int8": "openvino", "openvino-bf16": "openvino", "tensorrt-fp16": "tensorrt"}
APPROXIMATE_METHODS = tuple(EXACT_OF)
ACCURACY_KEYS = ("min_agreement_ap50", "min_agreement_ap")
MAP_LOSS_KEY = "max_map_loss"  # APPROXIMATE_METHODS: COCO mAP points the artifact may lose against eager under --eval
RUNTIMES = ("onnxruntime", "pytorch", "openvino", "tensorrt")
OUTPUT_KEYS = ("boxes", "labels", "scores", "masks", "keypoints", "keypoints_scores",
               "sem_seg", "panoptic_seg", "segments_info")  # the last three: a panoptic model's (docs/detectron2.md)
DEVICES = ("cpu", "cuda")
TOLERANCE_KEYS = ("min_matched", "iou", "box_atol", "score_atol", "mask_atol", "mask_iou", "keypoint_atol",
                  "max_borderline", "panoptic_agree", "sem_seg_atol")
MAP_TOLERANCE = 0.1  # points of COCO mAP an artifact may differ from eager under `zoo build --eval` ([eval] map_tolerance)
CHECKPOINT_FORMATS = ("torchvision", "detectron2")  # what weights.url holds: a state dict, or a detectron2 checkpoint
BUILDER = r"[A-Za-z_][\w.]*(\.|:)[A-Za-z_]\w*"  # module.function or package.module:function
# [random_weights]: layer name -> number tables of the seeded recipe (see zoo/build/seeded.py), `spread` first
RANDOM_WEIGHT_TABLES = ("spread", "weight_mean", "background_weight_mean", "bias", "class_bias", "background_bias")


@dataclass(frozen=True)
class Export:
    method: str
    runtime: str
    format: str
    batch: int | None            # None: dynamic
    devices: tuple[str, ...]
    tolerance: dict
    opset: int | None = None
    resolution: str = "dynamic"
    exporter: str | None = None  # ONNX_METHODS: "legacy" (TorchScript-based) or "dynamo" (from torch.export)
    accuracy: dict = field(default_factory=dict)  # APPROXIMATE_METHODS: ACCURACY_KEYS -> the least figure allowed
    max_map_loss: float | None = None  # APPROXIMATE_METHODS: MAP_LOSS_KEY, in place of [eval] map_tolerance

    @property
    def approximate(self) -> bool:
        return self.method in APPROXIMATE_METHODS

    @property
    def symbolic(self) -> bool:
        """Whether the artifact is made by torch.export (symbolic sizes: the export transform and patches)."""
        return self.method in ("export", "aoti") or self.exporter == "dynamo"

    @property
    def transform(self) -> str:
        """Which exact-resize transform the exporter gets (``patches.TRANSFORMS``)."""
        if self.exporter == "dynamo":
            return "float64"
        return "symbolic" if self.symbolic else "exact"

    @property
    def format_text(self) -> str:
        if self.opset is None:
            return self.format
        return f"{self.format} (opset {self.opset}, {self.exporter} exporter)"

    @property
    def batch_text(self) -> str:
        return "dynamic" if self.batch is None else f"fixed {self.batch}"


@dataclass(frozen=True)
class Unsupported:
    method: str
    runtime: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    name: str
    aliases: tuple[str, ...]
    family: str
    builder: str
    description: str
    outputs: tuple[str, ...]
    weights: dict
    input: dict
    random_weights: dict
    parity: dict
    exports: tuple[Export, ...]
    unsupported: tuple[Unsupported, ...] = ()
    path: str = ""
    digest: str = ""             # sha256 of the manifest file's bytes (provenance)
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    builder_args: dict = field(default_factory=dict)   # keyword arguments of the builder (num_classes, min_size, ...)
    map_tolerance: float = MAP_TOLERANCE
    source: str = "file"         # "index": carried by a store's index (its builder runs only when trusted, see models)

    @property
    def categories(self) -> list[str]:
        return list(self.weights["categories"])

    def map_off(self, method: str, diffs: dict[str, float]) -> dict[str, float]:
        """The iou types of ``diffs`` (an artifact's COCO mAP minus eager's, in points) beyond what ``method`` is
        allowed: an approximate method with ``max_map_loss`` may lose up to that much (and gain any); every other
        artifact must stay within ``map_tolerance`` of eager either way."""
        loss = self._map_loss(method)
        if loss is not None:
            return {t: d for t, d in diffs.items() if -d > loss}
        return {t: d for t, d in diffs.items() if abs(d) > self.map_tolerance}

    def _map_loss(self, method: str) -> float | None:
        return next((e.max_map_loss for e in self.exports if e.method == method), None)

    def map_bound(self, method: str) -> str:
        """``map_off``'s bound for ``method``, in words."""
        loss = self._map_loss(method)
        return (f"its {MAP_LOSS_KEY} {loss} points" if loss is not None
                else f"eval.map_tolerance {self.map_tolerance} points")

    def export(self, method: str) -> Export:
        for e in self.exports:
            if e.method == method:
                return e
        raise UnsupportedError(self._unsupported_message(method=method))

    def selected(self, methods: list[str] | None) -> list[Export]:
        """The exports a build makes: those of the ``methods`` named, or (None) every one but the ``SLOW_METHODS``,
        which are built only when named."""
        return [e for e in self.exports if (e.method in methods if methods else e.method not in SLOW_METHODS)]

    def methods_for(self, runtime: str) -> list[str]:
        found = [e.method for e in self.exports if e.runtime == runtime]
        return (["eager"] + found) if runtime == "pytorch" else found

    def _unsupported_message(self, method: str | None = None, runtime: str | None = None) -> str:
        why = [u.reason for u in self.unsupported if u.method == method and (runtime is None or u.runtime == runtime)]
        supported = ", ".join(f"runtime={e.runtime!r} method={e.method!r}" for e in self.exports)
        asked = " ".join(f"{k}={v!r}" for k, v in (("runtime", runtime), ("method", method)) if v)
        return (f"{self.name} does not support {asked}" + (f" ({why[0]})" if why else "")
                + f"; supported: {supported}, runtime='pytorch' method='eager'")


class _Checker:
    """Walks a parsed TOML document; every error names the file, the key and what was expected."""

    def __init__(self, path: Path | str, doc: dict):
        self.path, self.doc = path, doc

    def fail(self, key: str, expected: str, got: Any = None) -> None:
        got_text = "" if got is None else f", got {got!r}"
        raise ManifestError(f"{self.path}: key '{key}': expected {expected}{got_text}")

    def get(self, table: dict, key: str, where: str, kind: type | tuple, expected: str, required: bool = True):
        full = f"{where}.{key}" if where else key
        if key not in table:
            if required:
                self.fail(full, f"{expected} (missing)")
            return None
        value = table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
            self.fail(full, expected, value)
        return value

    def strings(self, table: dict, key: str, where: str, required: bool = True, allowed: tuple = ()) -> tuple[str, ...]:
        value = self.get(table, key, where, list, "a list of strings", required) or []
        full = f"{where}.{key}" if where else key
        for v in value:
            if not isinstance(v, str) or (allowed and v not in allowed):
                self.fail(full, "strings from " + ", ".join(allowed) if allowed else "a list of strings", v)
        return tuple(value)

    def size(self, table: dict, key: str, where: str, required: bool = True) -> list[int] | None:
        value = self.get(table, key, where, list, "[height, width] in pixels", required)
        if value is not None and (len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            self.fail(f"{where}.{key}", "[height, width], two positive integers", value)
        return value

    def no_unknown(self, table: dict, allowed: set, where: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(f"{where}.{key}" if where else key, "no such key (allowed: " + ", ".join(sorted(allowed)) + ")")


def parse(path: Path | str) -> Manifest:
    """A manifest file. Any file name works here; in a manifest directory the stem must be the model's name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest: {e.strerror}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid TOML: {e}") from None
    return from_dict(doc, str(path), hashlib.sha256(data).hexdigest())


def from_dict(doc: dict, origin: str, digest: str, source: str = "file") -> Manifest:
    """Validate a parsed manifest (a file's TOML, or the copy a store's index carries); ``origin`` names it in errors.
    Each table is checked by a step of its own, in the order the file lists them (the first error is the one named)."""
    if not isinstance(doc, dict):
        raise ManifestError(f"{origin}: expected a manifest table, got {type(doc).__name__}")
    c = _Checker(origin, doc)
    c.no_unknown(doc, {"name", "aliases", "family", "builder", "builder_args", "description", "outputs", "weights",
                       "input", "random_weights", "parity", "eval", "export", "unsupported"}, "")
    name, builder, builder_args = _identity(c, doc)
    map_tolerance = _eval(c, doc)
    outputs = c.strings(doc, "outputs", "", allowed=OUTPUT_KEYS)
    if outputs[:3] != ("boxes", "labels", "scores"):
        c.fail("outputs", "to start with boxes, labels, scores", list(outputs))
    w, inp, rw, par = _weights(c, doc), _input(c, doc), _random_weights(c, doc), _parity(c, doc)
    exports = _exports(c, doc)
    unsupported = _unsupported(c, doc, exports)
    return Manifest(
        name=name, aliases=c.strings(doc, "aliases", "", required=False), family=c.get(doc, "family", "", str, "a family"),
        builder=builder, description=c.get(doc, "description", "", str, "a one-line description"), outputs=outputs,
        weights=w, input=inp, random_weights=rw, parity=par, exports=tuple(exports), unsupported=tuple(unsupported),
        path=origin, digest=digest, raw=doc, builder_args=dict(builder_args),
        map_tolerance=MAP_TOLERANCE if map_tolerance is None else float(map_tolerance), source=source,
    )


def _identity(c: _Checker, doc: dict) -> tuple[str, str, dict]:
    """name, builder and builder_args."""
    name = c.get(doc, "name", "", str, "the model's name, a string")
    if not re.fullmatch(r"[a-z0-9_]+", name):
        c.fail("name", "lower-case letters, digits and '_'", name)
    builder = c.get(doc, "builder", "", str, "'torchvision.models.detection.NAME' or 'package.module:function'")
    if not re.fullmatch(BUILDER, builder):
        c.fail("builder", "a dotted path 'module.function' or 'package.module:function'", builder)
    builder_args = c.get(doc, "builder_args", "", dict, "a table of the builder's keyword arguments", required=False) or {}
    return name, builder, builder_args


def _eval(c: _Checker, doc: dict) -> float | None:
    """[eval]: map_tolerance, when given."""
    ev = c.get(doc, "eval", "", dict, "an [eval] table", required=False) or {}
    c.no_unknown(ev, {"map_tolerance"}, "eval")
    map_tolerance = c.get(ev, "map_tolerance", "eval", (int, float), "a number of mAP points (0-100 scale)", required=False)
    if map_tolerance is not None and map_tolerance < 0:
        c.fail("eval.map_tolerance", "a non-negative number of mAP points", map_tolerance)
    return map_tolerance


def _weights(c: _Checker, doc: dict) -> dict:
    w = c.get(doc, "weights", "", dict, "a [weights] table")
    c.no_unknown(w, {"enum", "url", "sha256", "license", "recipe", "num_params", "categories", "keypoint_names", "metrics",
                      "stuff_categories", "checkpoint", "config"}, "weights")
    # url/sha256 name official weights (`--weights official`); a model of your own has none and builds from a file
    url = c.get(w, "url", "weights", str, "the official weights' URL", required=False)
    # checkpoint: what the URL holds: a torchvision state dict, or a detectron2 checkpoint converted at build time
    # (detectron2 publishes no digest: its sha256 is the one of the first download, kept in the cache and the store)
    form = c.get(w, "checkpoint", "weights", str, "'torchvision' or 'detectron2'", required=False) or "torchvision"
    if form not in CHECKPOINT_FORMATS:
        c.fail("weights.checkpoint", "'torchvision' or 'detectron2'", form)
    c.get(w, "config", "weights", str, "the detectron2 config the checkpoint was trained with", required=False)
    sha = c.get(w, "sha256", "weights", str, "the weights' sha256: 64 hex digits, or the 8+ digit prefix torchvision checks",
                required=url is not None and form == "torchvision")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{8,64}", sha):
        c.fail("weights.sha256", "8 to 64 lower-case hex digits", sha)
    c.get(w, "license", "weights", str, "an SPDX license name", required=False)
    if not c.strings(w, "categories", "weights"):
        c.fail("weights.categories", "the label names, index 0 first (usually '__background__')", [])
    c.get(w, "metrics", "weights", dict, "a table of COCO metrics", required=False)
    if "stuff_categories" in w and not c.strings(w, "stuff_categories", "weights"):
        c.fail("weights.stuff_categories", "the sem_seg channels' names (a panoptic model's), channel 0 first", [])
    return w


def _input(c: _Checker, doc: dict) -> dict:
    inp = c.get(doc, "input", "", dict, "an [input] table")
    c.no_unknown(inp, {"min_size", "max_size", "fixed_size", "image_mean", "image_std"}, "input")
    if "fixed_size" not in inp:
        c.get(inp, "min_size", "input", int, "an integer (pixels)")
        c.get(inp, "max_size", "input", int, "an integer (pixels)")
    else:
        c.size(inp, "fixed_size", "input")
    return inp


def _random_weights(c: _Checker, doc: dict) -> dict:
    """[random_weights]: needed only for `--weights random:SEED` (checked there): a model of your own builds from its
    checkpoint."""
    rw = c.get(doc, "random_weights", "", dict, "a [random_weights] table", required=False) or {}
    c.no_unknown(rw, {"bn_recalibration", *RANDOM_WEIGHT_TABLES}, "random_weights")
    c.get(rw, "bn_recalibration", "random_weights", bool, "true or false", required=bool(rw))
    spread = c.get(rw, "spread", "random_weights", dict, "a table of layer name = std", required=bool(rw)) or {}
    for k, v in spread.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            c.fail(f"random_weights.spread.{k}", "a positive number", v)
    for table in RANDOM_WEIGHT_TABLES[1:]:
        for k, v in (c.get(rw, table, "random_weights", dict, f"a table of layer name = {table}", required=False) or {}).items():
            if k not in spread or not isinstance(v, (int, float)) or isinstance(v, bool):
                c.fail(f"random_weights.{table}.{k}", "a number, for a layer also listed under spread", v)
    return rw


def _parity(c: _Checker, doc: dict) -> dict:
    par = c.get(doc, "parity", "", dict, "a [parity] table")
    c.no_unknown(par, {"export_size", "sizes", "batch"}, "parity")
    c.size(par, "export_size", "parity")
    sizes = c.get(par, "sizes", "parity", list, "a list of [height, width]")
    if len(sizes) < 2:
        c.fail("parity.sizes", "at least two sizes", sizes)
    for i, _ in enumerate(sizes):
        c.size(dict(enumerate(sizes)), i, "parity.sizes")  # type: ignore[arg-type]
    if par["export_size"] in sizes:
        c.fail("parity.sizes", "sizes that differ from parity.export_size", sizes)
    batch = c.get(par, "batch", "parity", list, "a list of [height, width]")
    for i, _ in enumerate(batch):
        c.size(dict(enumerate(batch)), i, "parity.batch")  # type: ignore[arg-type]
    return par


def _exports(c: _Checker, doc: dict) -> list[Export]:
    exports: list[Export] = []
    for n, e in enumerate(c.get(doc, "export", "", list, "an array of [[export]] tables", required=False) or []):
        export = _export(c, e, f"export[{n}]")
        if any(x.method == export.method for x in exports):
            c.fail(f"export[{n}].method", "each method once", export.method)
        exports.append(export)
    return exports


def _export(c: _Checker, e, where: str) -> Export:
    """One [[export]] table."""
    if not isinstance(e, dict):
        c.fail(where, "a table", e)
    c.no_unknown(e, {"method", "runtime", "format", "opset", "exporter", "batch", "resolution", "devices",
                     "tolerance", *ACCURACY_KEYS, MAP_LOSS_KEY}, where)
    method = c.get(e, "method", where, str, "one of " + ", ".join(METHODS))
    if method not in METHODS:
        c.fail(f"{where}.method", "one of " + ", ".join(METHODS), method)
    runtime, fmt = METHODS[method]
    if c.get(e, "runtime", where, str, f"'{runtime}'") != runtime:
        c.fail(f"{where}.runtime", f"'{runtime}' for method {method}", e["runtime"])
    if c.get(e, "format", where, str, f"'{fmt}'") != fmt:
        c.fail(f"{where}.format", f"'{fmt}' for method {method}", e["format"])
    batch_v = c.get(e, "batch", where, (int, str), "a fixed batch size (integer) or \"dynamic\"")
    if (isinstance(batch_v, str) and batch_v != "dynamic") or (isinstance(batch_v, int) and batch_v < 1):
        c.fail(f"{where}.batch", "a positive integer or \"dynamic\"", batch_v)
    if method in ("tracing", "export", "aoti") and batch_v == "dynamic":
        c.fail(f"{where}.batch", f"a fixed integer: {method} fixes the batch size (the length of the image list)",
               batch_v)
    if c.get(e, "resolution", where, str, "\"dynamic\"") != "dynamic":
        c.fail(f"{where}.resolution", "\"dynamic\"", e["resolution"])
    devices = c.strings(e, "devices", where, allowed=DEVICES)
    opset = c.get(e, "opset", where, int, "an ONNX opset number (16 or more)", required=(method in ONNX_METHODS))
    if opset is not None and opset < 16:
        c.fail(f"{where}.opset", "16 or more (roi_align(aligned=True) needs opset 16)", opset)
    exporter = _exporter(c, e, where, method)
    accuracy = _accuracy(c, e, where, method)
    max_map_loss = _map_loss(c, e, where, method)
    # an approximate method's tolerance only sets what its recorded detection-by-detection figures count as matched
    tol = c.get(e, "tolerance", where, dict, "a table of parity bounds", required=not accuracy) or {}
    for k, v in tol.items():
        if k not in TOLERANCE_KEYS:
            c.fail(f"{where}.tolerance.{k}", "one of " + ", ".join(TOLERANCE_KEYS))
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            c.fail(f"{where}.tolerance.{k}", "a non-negative number", v)
    return Export(method, runtime, fmt, None if batch_v == "dynamic" else batch_v, devices, dict(tol), opset,
                  exporter=exporter, accuracy=accuracy, max_map_loss=max_map_loss)


def _accuracy(c: _Checker, e: dict, where: str, method: str) -> dict:
    """The APPROXIMATE_METHODS' accuracy bounds (min_agreement_ap50 required, min_agreement_ap optional, each in
    [0, 1]); the other methods are parity-gated and take none."""
    given = [k for k in ACCURACY_KEYS if k in e]
    if method not in APPROXIMATE_METHODS:
        if given:
            c.fail(f"{where}.{given[0]}", f"no accuracy bound: method {method} is exact and gated by its tolerance "
                   f"table (only {', '.join(APPROXIMATE_METHODS)} take {', '.join(ACCURACY_KEYS)})", e[given[0]])
        return {}
    bounds = {}
    for k in ACCURACY_KEYS:
        v = c.get(e, k, where, (int, float), f"the least agreement AP with eager allowed, a number in [0, 1] "
                  f"(method {method} is approximate and gated on it)", required=(k == "min_agreement_ap50"))
        if v is not None and not 0 <= v <= 1:
            c.fail(f"{where}.{k}", "a number in [0, 1] (COCO AP is a fraction here, not points)", v)
        if v is not None:
            bounds[k] = float(v)
    return bounds


def _map_loss(c: _Checker, e: dict, where: str, method: str) -> float | None:
    """An approximate method's max_map_loss (COCO mAP points, >= 0), optional; exact methods take none (they are held
    to [eval] map_tolerance)."""
    if MAP_LOSS_KEY not in e:
        return None
    if method not in APPROXIMATE_METHODS:
        c.fail(f"{where}.{MAP_LOSS_KEY}", f"no {MAP_LOSS_KEY}: method {method} is exact and held to [eval] "
               f"map_tolerance (only {', '.join(APPROXIMATE_METHODS)} take it)", e[MAP_LOSS_KEY])
    v = c.get(e, MAP_LOSS_KEY, where, (int, float), "the COCO mAP points (0-100 scale) the artifact may lose against "
              "eager under zoo build --eval")
    if v < 0:
        c.fail(f"{where}.{MAP_LOSS_KEY}", "a non-negative number of mAP points", v)
    return float(v)


def _exporter(c: _Checker, e: dict, where: str, method: str) -> str | None:
    """The ONNX_METHODS: "legacy" (the default) or "dynamo"; other methods have no choice."""
    exporter = c.get(e, "exporter", where, str, "\"legacy\" or \"dynamo\"", required=False)
    if method not in ONNX_METHODS and exporter is not None:
        c.fail(f"{where}.exporter", f"no exporter key: only the ONNX methods ({', '.join(ONNX_METHODS)}) have a "
               "choice of exporters", exporter)
    if method in ONNX_METHODS:
        exporter = exporter or "legacy"
        if exporter not in ("legacy", "dynamo"):
            c.fail(f"{where}.exporter", "\"legacy\" (torch.onnx.export(dynamo=False)) or \"dynamo\"", exporter)
    return exporter


def _unsupported(c: _Checker, doc: dict, exports: list[Export]) -> list[Unsupported]:
    unsupported = []
    for n, u in enumerate(c.get(doc, "unsupported", "", list, "an array of [[unsupported]] tables", required=False) or []):
        where = f"unsupported[{n}]"
        c.no_unknown(u, {"method", "runtime", "reason"}, where)
        m = c.get(u, "method", where, str, "a method name")
        if m not in METHODS:
            c.fail(f"{where}.method", "one of " + ", ".join(METHODS), m)
        if m in {x.method for x in exports}:
            c.fail(f"{where}.method", "a method that is not also listed under [[export]]", m)
        unsupported.append(Unsupported(m, c.get(u, "runtime", where, str, "a runtime"), c.get(u, "reason", where, str, "why")))
    return unsupported


def manifest_dir() -> Path:
    """$ZOO_MANIFESTS, else the package's manifests (zoo/manifests: a link to the repository's manifests/ in a
    checkout, a copy in a wheel)."""
    return settings.manifests_dir() or MANIFEST_DIR


@lru_cache(maxsize=8)
def _load_all(directory: str) -> dict[str, Manifest]:
    found = {}
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        raise ManifestError(f"{directory}: no manifest files (*.toml)")
    for f in files:
        m = parse(f)
        if f.stem != m.name:
            raise ManifestError(f"{f}: key 'name': expected the file's stem {f.stem!r}, got {m.name!r}")
        found[m.name] = m
    names = set(found)
    for m in found.values():
        for a in m.aliases:
            if a in names:
                raise ManifestError(f"{m.path}: key 'aliases': expected names no other manifest uses, got {a!r}")
            names.add(a)
    return found


def all_manifests(directory: str | Path | None = None) -> dict[str, Manifest]:
    """torchvision's detectors (the manifest directory's own files): what `zoo build`, `zoo release` and `zoo bench`
    take when no model is named, and the README's support table."""
    return dict(_load_all(str(directory or manifest_dir())))


def templates() -> dict[str, Manifest]:
    """The package's own torchvision manifests, whatever $ZOO_MANIFESTS says: what `zoo new-manifest` and `zoo
    convert-d2` start a manifest from (parity sizes, methods, seeded-weights recipe, COCO's names)."""
    return all_manifests(MANIFEST_DIR)


D2_COLLECTION = "detectron2"  # manifests/detectron2/: detectron2's COCO model zoo, made by tools/d2_model_zoo.py
D2_BUILDERS = "zoo.models.detectron2."  # the builders of detectron2's architectures (zoo convert-d2 writes them)


def d2_manifests(directory: str | Path | None = None) -> dict[str, Manifest]:
    """detectron2's model zoo entries (the ``detectron2/`` folder of the manifest directory): built by name only,
    from detectron2's official checkpoints (converted at build time) or seeded weights."""
    folder = Path(directory or manifest_dir()) / D2_COLLECTION
    return dict(_load_all(str(folder))) if folder.is_dir() else {}


@lru_cache(maxsize=8)
def _every(directory: str) -> dict[str, Manifest]:
    """Both collections, by name; a name or alias of a detectron2 entry that a manifest of the directory also uses
    is refused."""
    found, d2 = _load_all(directory), d2_manifests(directory)
    names = {n for m in found.values() for n in (m.name, *m.aliases)}
    for m in d2.values():
        for n in (m.name, *m.aliases):
            if n in names:
                key = "name" if n == m.name else "aliases"
                raise ManifestError(f"{m.path}: key '{key}': expected a name no manifest of {directory} uses, "
                                    f"got {n!r}")
    return {**found, **d2}


def resolve(name: str, directory: str | Path | None = None) -> Manifest:
    """A manifest by name or alias; an unknown name lists close matches."""
    if not isinstance(name, str):
        raise UnknownModelError(f"model name must be a string, got {type(name).__name__}")
    manifests = _every(str(directory or manifest_dir()))
    if name in manifests:
        return manifests[name]
    for m in manifests.values():
        if name in m.aliases:
            return m
    known = sorted(list(manifests) + [a for m in manifests.values() for a in m.aliases])
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (known: {', '.join(known)})")


def eager_devices(m: Manifest) -> tuple[str, ...]:
    """Where the eager model was run: torchvision's on the CPU and CUDA (docs/gpu.md), detectron2's on the CPU only
    (none was run on CUDA: their artifacts list the CPU too)."""
    return ("cpu",) if m.builder.startswith(D2_BUILDERS) else ("cpu", "cuda")


def support_rows(directory: str | Path | None = None, collection: str | None = None) -> list[dict]:
    """One row per model and method (eager included), for `zoo list` and the README table (torchvision's models;
    ``collection="detectron2"``: detectron2's model zoo entries)."""
    rows = []
    found = d2_manifests(directory) if collection == D2_COLLECTION else all_manifests(directory)
    for m in found.values():
        rows.append(dict(model=m.name, alias=", ".join(m.aliases), method="eager", runtime="pytorch", format="state dict",
                         batch="dynamic", devices=", ".join(eager_devices(m)), kind=trust.kind("eager"),
                         status="reference"))
        for e in m.exports:
            rows.append(dict(model=m.name, alias=", ".join(m.aliases), method=e.method, runtime=e.runtime,
                             format=e.format_text, batch=e.batch_text,
                             devices=", ".join(e.devices), kind=trust.kind(e.method),
                             status="supported" + (f" (built when asked: --method {e.method})"
                                                   if e.method in SLOW_METHODS else "")))
        for u in m.unsupported:
            rows.append(dict(model=m.name, alias=", ".join(m.aliases), method=u.method, runtime=u.runtime, format="-",
                             batch="-", devices="-", kind="-", status=f"unsupported: {u.reason}"))
    return rows


def support_markdown(directory: str | Path | None = None, collection: str | None = None) -> str:
    """The README's support table (kept in sync by a test); ``collection``: as support_rows."""
    lines = ["| model | alias | method | runtime | format | batch | resolution | devices | loads as | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in support_rows(directory, collection):
        res = "-" if r["status"].startswith("unsupported") else "dynamic"
        lines.append(f"| {r['model']} | {r['alias']} | {r['method']} | {r['runtime']} | {r['format']} | {r['batch']} | "
                     f"{res} | {r['devices']} | {r['kind']} | {r['status']} |")
    return "\n".join(lines)
