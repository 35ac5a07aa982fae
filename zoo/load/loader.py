"""`zoo.load`: find the artifact in a source's index, fetch and verify it, return a callable detector."""
from __future__ import annotations

import functools
import warnings

from ..core import schema, store, trust
from ..errors import (CpuFeatureWarning, InputError, IntegrityError, NotAvailableError, RuntimeFailure,
                      SeededWeightsWarning, UnknownModelError, UnsupportedError, ZooError, first_line)
from ..core.cpu import missing_features
from ..core.manifest import APPROXIMATE_METHODS, D2_BUILDERS, EXACT_OF, RUNTIMES, Manifest, from_dict, resolve
from .runtimes import open_backend, reads_by_name, require, thresholds
from .runtimes.base import Detector
from ..core.settings import default_home
from .sources import open_source
from .stamps import home_for_stamps
from .verified import load_verified


def select(manifest, index: dict, runtime: str, method: str | None, device: str, code_ok: bool = True) -> dict:
    """The index entry for (runtime, method), after checking the combination against the manifest. With no method
    and ``code_ok`` false (an untrusted source), only data methods are candidates (zoo/core/trust.py)."""
    if runtime not in RUNTIMES:
        raise UnsupportedError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    allowed = manifest.methods_for(runtime)
    if method is not None and method not in allowed:
        raise UnsupportedError(manifest._unsupported_message(method=method, runtime=runtime))
    entry = index.get("models", {}).get(manifest.name)
    if entry is None:
        raise NotAvailableError(f"{manifest.name} is not in this store; build it: zoo build {manifest.name} --out STORE")
    candidates = [a for a in entry["artifacts"] if a["runtime"] == runtime and (method is None or a["method"] == method)
                  and (method is not None or code_ok or not trust.is_code(a["method"]))]
    if not candidates:
        have = ", ".join(f"{a['runtime']}/{a['method']}" for a in entry["artifacts"])
        untrusted = "" if code_ok or method else " that is data (its code methods need your consent)"
        raise NotAvailableError(f"the store has no {runtime}/{method or 'any'} artifact{untrusted} for {manifest.name} "
                                f"(it has: {have})")
    if method is None and runtime == "pytorch":  # prefer exported artifacts over eager, scripting first
        order = {"scripting": 0, "tracing": 1, "aoti": 2, "export": 3, "eager": 4}
        candidates.sort(key=lambda a: order.get(a["method"], 9))
    if method is None:  # an approximate (int8) artifact only when asked for by name
        candidates.sort(key=lambda a: a["method"] in APPROXIMATE_METHODS)
    artifact = candidates[0]
    if device.split(":")[0] not in artifact["devices"]:
        raise UnsupportedError(f"{manifest.name} {artifact['method']} runs on {', '.join(artifact['devices'])}, "
                               f"not {device!r}" + (" (a traced graph keeps the device it was traced on)"
                                                    if artifact["method"] == "tracing" else ""))
    return {**entry, "artifact": artifact}


def channel_name(name: str) -> str:
    """The model name the channel pins ``name`` under: a shipped manifest's name for a name or alias; any other name
    is looked up as it is (only an explicit source can hold a model of your own)."""
    try:
        return resolve(name).name
    except UnknownModelError:
        return name


def manifest_for(name: str, index: dict, origin: str) -> Manifest:
    """The manifest a store's model was built with: the copy its index entry carries (so a model of your own loads
    without its manifest file), else the shipped manifest of that name or alias."""
    models = index.get("models", {})
    entry = models.get(name) or next((e for e in models.values() if name in e.get("aliases", [])), None)
    if entry is None:
        try:
            entry = models.get(resolve(name).name)
        except UnknownModelError as e:
            raise UnknownModelError(f"{e}; {origin} has: {', '.join(sorted(models)) or 'no models'}") from None
    if entry is None or "manifest" not in entry:
        return resolve(name)
    return from_dict(entry["manifest"], f"{origin}: index entry {entry['name']!r}", entry.get("manifest_sha256", ""),
                     source="index")


def load(name: str, runtime: str = "onnxruntime", method: str | None = None, device: str = "cpu", source=None,
         revision: str | None = None, offline: bool | None = None, cache_dir=None, threads: int | None = None,
         score_thresh: float | None = None, detections_per_img: int | None = None, trust_code: bool = False,
         interface: str = "torchvision", **torchvision_names) -> Detector:
    """``interface="detectron2"`` (detectron2 models only) wraps the detector in detectron2's interface
    (zoo/load/d2interface.py: ``[{"image", "height", "width"}]`` in, ``[{"instances"}]`` out).
    ``trust_code=True`` consents to code artifacts (tracing, scripting, export, aoti) from this source; without it
    they load only from the pinned channel or a source in $ZOO_TRUSTED_SOURCES (zoo/core/trust.py, docs/security.md).
    ``score_thresh`` / ``detections_per_img`` (or torchvision's names for the family, e.g. box_score_thresh) raise
    the artifact's threshold / lower its count, exactly; see runtimes/thresholds.py."""
    if interface not in INTERFACES:
        raise InputError(f"interface must be one of {', '.join(map(repr, INTERFACES))}, got {interface!r}")
    if runtime in RUNTIMES:
        require(runtime)  # before anything is downloaded
    src = open_source(source, cache_dir=cache_dir, offline=offline, model=channel_name(name))
    index = src.index(revision)
    manifest = manifest_for(name, index, src.description)
    if interface == "detectron2":
        input_format = _detectron2_input_format(manifest)  # before a byte of the artifact is fetched
    code_ok = trust.trusted(src, trust_code)
    entry = select(manifest, index, runtime, method, device, code_ok)
    artifact = entry["artifact"]
    trust.require(src, artifact["method"], manifest.name, trust_code)  # before a byte of it is fetched
    wanted = dict(score_thresh=score_thresh, detections_per_img=detections_per_img, **torchvision_names)
    limits = thresholds.limits_for(entry.get("settings"), wanted, model=manifest.name)
    info = {"model": manifest.name, "source": src.description, "origin": _origin(src, source), "artifact": artifact,
            "weights": {k: v for k, v in entry["weights"].items() if k != "file"}, "manifest": manifest.raw}
    if "metadata" in artifact["files"]:
        meta = artifact["files"]["metadata"]
        info["metadata"] = schema.parse("metadata", src.fetch(meta).read_bytes(),
                                        f"{meta['path']} from {src.description}")
    _warn_seeded(manifest.name, entry["weights"], src.description)
    _warn_isa(manifest.name, artifact["method"], info.get("metadata", {}))
    record = store.payload(artifact)
    what = f"{record['path']} from {src.description}"
    backend = _open_verified(src, record, what, _opener(manifest, artifact, info, what, device, threads), cache_dir,
                             by_name=reads_by_name(artifact["runtime"], artifact["method"]))
    reopen = functools.partial(load, name, runtime, artifact["method"], source=source, revision=revision,
                               offline=offline, cache_dir=cache_dir, threads=threads, trust_code=trust_code, **wanted)
    detector = Detector(backend, entry["outputs"], info, entry["categories"], entry.get("settings"), limits, device,
                        reopen)
    if interface == "detectron2":
        from .d2interface import Detectron2Interface
        return Detectron2Interface(detector, input_format)
    return detector


INTERFACES = ("torchvision", "detectron2")


def _detectron2_input_format(manifest) -> str:
    """The channel order detectron2's users hand a detectron2 model (its config's ``INPUT.FORMAT``); other models
    have no detectron2 interface: their labels are not detectron2's class ids."""
    if not manifest.builder.startswith(D2_BUILDERS):
        raise InputError(f"interface='detectron2' is for detectron2 models (made by `zoo convert-d2` or detectron2's "
                         f"model-zoo manifests); {manifest.name} is built by {manifest.builder}: leave interface out "
                         "for torchvision's interface")
    return manifest.builder_args.get("input_format", "BGR")


_WARNED: set = set()


def _warn_seeded(model: str, weights: dict, where: str) -> None:
    """Once per process and model: seeded random weights run, but what they detect means nothing."""
    if weights.get("kind") == "random" and (model, where) not in _WARNED:
        _WARNED.add((model, where))
        warnings.warn(f"{model} from {where} has seeded random weights (seed {weights.get('seed')}), not trained "
                      "ones: it runs, but its detections are meaningless (build with --weights official or your own "
                      "checkpoint for real ones)", SeededWeightsWarning, stacklevel=4)


def _warn_isa(model: str, method: str, metadata: dict) -> None:
    """An approximate artifact proven on CPU features this CPU lacks: its recorded accuracy does not carry over."""
    recorded = metadata.get("accuracy", {}).get("isa", [])
    missing = missing_features(recorded) if method in APPROXIMATE_METHODS else []
    if missing:
        figures, runtime = metadata["accuracy"]["agreement"], metadata.get("runtime", "its runtime")
        warnings.warn(f"{model} {method} was built and its accuracy measured (agreement AP50 {figures['ap50']}) on a "
                      f"CPU with {', '.join(recorded)}; this CPU lacks {', '.join(missing)}: {runtime} runs other "
                      "low-precision kernels here, so its accuracy and speed may differ (rebuild it here, `zoo build ... "
                      f"--method {method}`, to measure them on this CPU, or load method={EXACT_OF[method]!r})",
                      CpuFeatureWarning, stacklevel=3)


def _origin(src, source) -> str:
    """Which of the places a load looks in gave the model: source=, ZOO_SOURCE, or (by name) the channel, an
    imported bundle or the local store."""
    from ..core.settings import source_spec
    return "source=" if source is not None else ("ZOO_SOURCE" if source_spec() else getattr(src, "origin", "channel"))


def _opener(manifest, artifact: dict, info: dict, what: str, device: str, threads: int | None):
    """The runtime's loader of an artifact's verified bytes; its own failures become a RuntimeFailure saying what to
    do (load_verified still reports an IntegrityError first where the bytes were bad)."""
    def open_bytes(data: bytes | str):
        try:
            return open_backend(manifest, artifact["method"], artifact["runtime"], data, artifact["batch"], device,
                                threads)
        except ZooError:
            raise
        except Exception as e:
            built = {k: v for k, v in info.get("metadata", {}).get("toolchain", {}).items()
                     if k in ("onnxruntime", "openvino", "tensorrt", "torch", "torchvision")}
            raise RuntimeFailure(f"{artifact['runtime']} could not load {what}: {type(e).__name__}: {first_line(e)}; "
                                 "the file's sha256 matched, so the installed runtime differs from the one that built "
                                 f"it ({built or 'see its metadata.json'}): install those versions") from e
    return open_bytes


def _open_verified(src, record: dict, what: str, open_bytes, cache_dir, by_name: bool):
    """The backend made from ``record``'s bytes, hashed while the runtime reads them (unless stamped as verified). A
    damaged copy in the download cache is removed and fetched once more (online); anything else is an IntegrityError."""
    stamp_home = home_for_stamps(default_home(cache_dir))
    path = src.fetch(record, verify=False)
    try:
        return load_verified(path, record["sha256"], what, open_bytes, stamp_home=stamp_home, by_name=by_name)
    except IntegrityError:
        cache = getattr(src, "cache", None)
        if cache is None or not cache.holds(path):
            raise
        if src.offline:
            path.unlink(missing_ok=True)
            raise IntegrityError(f"{what}: the cached copy at {path} did not match its sha256 {record['sha256']} and "
                                 "was removed; offline, it cannot be fetched again: go online and load again") from None
        cache.evict(record, src.description)  # fetched once more, verified as it arrives
        return load_verified(src.fetch(record, verify=False), record["sha256"], what, open_bytes, stamp_home=stamp_home,
                             by_name=by_name)
