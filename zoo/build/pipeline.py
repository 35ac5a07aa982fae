"""The build pipeline: manifests -> weights -> exports -> parity against eager -> store (index, metadata, cards).

Nothing written here carries a timestamp, an absolute path or a host name: the same command with the same toolchain
gives the same bytes (checked by `zoo build --check`).
"""
from __future__ import annotations

import contextlib
import copy
import json
import platform
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import accuracy, card, trainedlike
from .calibration import open_images, record
from ..core.settings import debug
from ..core import parity, staging, store
from ..core.manifest import APPROXIMATE_METHODS, METHODS, Manifest, parse, resolve
from ..core.progress import Stages
from ..core.reference import save_reference
from ..core.timing import timed_calls
from ..errors import ParityError, ZooError, first_line

GREY = (300, 400)
# Seeded weights, eager references and parity figures are float reductions whose rounding depends on the number of
# threads torch and onnxruntime split them over (seen: 1 and 2 threads gave different seeded weights). A build pins
# both, so that any machine with the same toolchain rebuilds the same bytes; the lock records it.
BUILD_THREADS = 2


@dataclass
class ModelOutcome:
    """What building one model gave. ``entry``: its index entry (eager and the exports that passed; None when the
    builder failed as a whole); ``built`` / ``failed``: the methods whose export passed / failed its export, parity or
    eval; ``kept``: earlier artifacts carried over unchanged; ``dropped``: earlier artifacts a full rebuild with other
    weights made stale; ``refused``: why nothing of the model was stored (its previous entry then stays as it was)."""
    name: str
    entry: dict | None = None
    selected: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    refused: str | None = None

    @property
    def stored(self) -> list[str]:
        return [] if self.refused else list(self.built)

    @property
    def not_stored(self) -> list[str]:
        """The methods asked for that are not in the store now (every one of them when the model was refused)."""
        return ([m for m in self.selected if m not in self.failed] + self.failed) if self.refused else list(self.failed)


@dataclass
class BuildResult:
    models: list[ModelOutcome] = field(default_factory=list)

    @property
    def built(self) -> list[str]:
        return [f"{m.name}/{x}" for m in self.models for x in m.stored]

    @property
    def failed(self) -> list[str]:
        return [f"{m.name}/{x}" for m in self.models for x in m.not_stored]

    @property
    def lines(self) -> list[str]:
        return [line for m in self.models for line in m.lines]

    def summary(self, out, seconds: float) -> str:
        """The build's last line: what was stored, what failed its checks, which models were refused."""
        checked = [f"{m.name}/{x}" for m in self.models for x in m.failed]
        refused = [m.name for m in self.models if m.refused]
        return (f"built {len(self.built)} artifacts into {out} in {seconds:.0f}s"
                + (f"; {len(checked)} FAILED parity or export and were not stored: {', '.join(checked)}"
                   if checked else "")
                + (f"; nothing stored for {', '.join(refused)} (see its FAIL line; the store keeps its previous entry)"
                   if refused else ""))


@contextlib.contextmanager
def fixed_threads(n: int = BUILD_THREADS):
    """torch's intra-op thread count set to ``n`` while the block runs (see BUILD_THREADS)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def toolchain(runtime: str | None = None) -> dict:
    """The versions a build ran with (the lock's and every metadata.json's); an artifact of ``runtime`` "openvino" or
    "tensorrt" also records that package's (only there, so that adding the runtime changed no other artifact's
    metadata)."""
    import torch
    import torchvision
    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
                "numpy": np.__version__, "build_threads": BUILD_THREADS}
    for mod in ("onnx", "onnxruntime", "safetensors") + ((runtime,) if runtime in ("openvino", "tensorrt") else ()):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return versions


def parity_images(manifest: Manifest) -> dict[str, list[np.ndarray]]:
    """Seeded, smooth uint8 images: one per parity size, a constant grey one (no detections), and a mixed batch."""
    rng = np.random.default_rng(20240607)

    def smooth(h: int, w: int) -> np.ndarray:
        coarse = rng.random((3, max(2, h // 24), max(2, w // 24)))
        ys = np.linspace(0, coarse.shape[1] - 1, h)
        xs = np.linspace(0, coarse.shape[2] - 1, w)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, coarse.shape[1] - 1), np.minimum(x0 + 1, coarse.shape[2] - 1)
        fy, fx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
        img = (coarse[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + coarse[:, y1][:, :, x0] * fy * (1 - fx)
               + coarse[:, y0][:, :, x1] * (1 - fy) * fx + coarse[:, y1][:, :, x1] * fy * fx)
        return np.round(img * 255).astype(np.uint8)

    return {
        "sizes": [smooth(h, w) for h, w in manifest.parity["sizes"]],
        "grey": [np.full((3, *GREY), 128, np.uint8)],
        "batch": [smooth(h, w) for h, w in manifest.parity["batch"]],
    }


def as_float(images: list[np.ndarray]) -> list[np.ndarray]:
    return [im.astype(np.float32) / np.float32(255) for im in images]


def _weights(manifest: Manifest, spec: str):
    from . import weights as models
    kind, seed = models.parse_weights(spec)
    if kind == "file":
        return models.file_model(manifest, spec)
    return models.random_model(manifest, seed) if kind == "random" else models.official_model(manifest)


@dataclass
class Reference:
    """What every artifact of one model is checked against: the stored weights, the eager outputs on the parity
    images (one by one, and per batch size as the artifact runs them), the replay reference file, eager's mAP."""
    weights_rel: str
    weights_info: dict
    weights_record: dict
    ref_rel: str
    singles: list
    constant: frozenset
    batch: list
    ref_single: list
    spread: dict
    settings: dict
    eager_time: object = None      # zoo.core.timing's figures of eager's calls
    eager_backend: object = None
    eager: object = None           # the Detector over eager_backend
    eager_map: dict | None = None
    eval_data: object = None
    ref_batches: dict = field(default_factory=dict)  # batch size -> eager on the chunks the artifact runs
    user: object = None            # calibration.UserImages of `zoo build --calibration DIR`, or None
    ref_user: list = field(default_factory=list)     # eager on user.images, one by one
    exported: dict = field(default_factory=dict)     # export.share_key -> (file, settings) of a plain ONNX export

    @property
    def user_images(self) -> list:
        return self.user.images if self.user else []

    def for_batch(self, batch_size):
        """Eager's outputs on the batch images in chunks of ``batch_size`` (padding a batch changes the features)."""
        if batch_size not in self.ref_batches:
            self.eager_backend.batch = batch_size
            self.ref_batches[batch_size] = self.eager(self.batch)
        return self.ref_batches[batch_size]


@dataclass
class Checked:
    """An exported artifact that passed parity (and, with a dataset, the mAP check)."""
    settings: dict
    checks: dict
    timing: object                 # zoo.core.timing's figures of the artifact's calls
    art_map: dict | None = None
    accuracy: dict | None = None   # an approximate method's gate figures (zoo/build/accuracy.py)


def build_model(manifest: Manifest, out: Path, *, weights: str, methods: list[str] | None, command: str, bar,
                eval_data=None, calibration=None) -> ModelOutcome:
    """Build one model into ``out``: its weights, eager reference and each selected export. An artifact failing its
    export, parity or (with ``eval_data``, a coco_eval.Dataset) a COCO mAP beyond the manifest's map_tolerance of
    eager's is removed and reported in the outcome; anything else wrong with the model raises. ``calibration``: the
    user's images (calibration.UserImages) an approximate method also calibrates and is gated on."""
    ref = eager_reference(manifest, out, weights, bar, eval_data)
    user = _if_approximate(manifest, methods, calibration)
    if user:
        add_user_images(manifest, ref, user, bar)
    outcome = ModelOutcome(manifest.name, entry=_entry(manifest, ref),
                           selected=[e.method for e in manifest.selected(methods)])
    for spec in manifest.selected(methods):
        artifact, line = build_artifact(manifest, out, ref, spec, command, bar)
        outcome.lines.append(line)
        if artifact is None:
            outcome.failed.append(spec.method)
        else:
            outcome.entry["artifacts"].append(artifact)
            outcome.built.append(spec.method)
        bar.update(1)
    return outcome


def eager_reference(manifest: Manifest, out: Path, weights: str, bar, eval_data=None) -> Reference:
    """Store the weights (OUT/models/NAME/weights.safetensors), run eager on the parity images, write the replay
    reference and check that seeded weights behave like a trained detector's."""
    from safetensors.torch import save_file

    from . import weights as models
    from ..load.architecture import check_outputs
    from ..load.runtimes.base import Detector
    from ..load.runtimes.eager import EagerBackend

    name = manifest.name
    (out / "models" / name).mkdir(parents=True, exist_ok=True)
    bar.set_postfix_str(f"{name}: weights")
    model, weights_info = _weights(manifest, weights)
    check_outputs(manifest, model)
    weights_rel = f"models/{name}/weights.safetensors"
    # one metadata key: safetensors writes its metadata map in a per-process random order (a Rust HashMap)
    save_file(models.state_dict_for_store(model), str(out / weights_rel),
              metadata={"zoo": json.dumps({"model": name, "weights": _label(weights)}, sort_keys=True)})
    del model
    weights_record = store.file_record(out, weights_rel)
    weights_info["sha256"] = weights_record["sha256"]
    bar.update(1)

    images = parity_images(manifest)
    singles = as_float(images["sizes"] + images["grey"])
    constant = frozenset(range(len(images["sizes"]), len(singles)))  # the grey image ranks ties, see parity
    batch = as_float(images["batch"])
    eager_backend = EagerBackend(manifest, str(out / weights_rel))
    eager = Detector(eager_backend, manifest.outputs, {}, manifest.categories)
    bar.set_postfix_str(f"{name}: eager reference on {len(singles)} parity images")
    ref_single, eager_time = timed_one_by_one(eager, singles)
    ref_rel = f"models/{name}/reference.npz"
    save_reference(out / ref_rel, images["sizes"][0], ref_single[0])
    # the content images (not the grey one), one by one: seeded weights must behave like a trained detector's
    spread = trainedlike.summary(ref_single[:-1] + one_by_one(eager, batch))
    missed = trainedlike.failures(spread, len(manifest.categories)) if weights_info["kind"] == "random" else []
    if missed:
        raise ZooError(f"{name}: seeded weights (recipe {weights_info['recipe']['recipe_version']}) do not behave like "
                       f"a trained detector on the parity images: " + "; ".join(missed[:4])
                       + f"; change [random_weights] in {manifest.path} (see zoo/build/seeded.py)")
    ref = Reference(weights_rel, weights_info, weights_record, ref_rel, singles, constant, batch, ref_single, spread,
                    models.baked_settings(eager_backend.model), eager_time, eager_backend, eager, eval_data=eval_data)
    ref.eager_map = _eval(eager, eval_data, f"{name} eager", bar)
    return ref


def add_user_images(manifest: Manifest, ref: Reference, user, bar) -> None:
    """The --calibration images (calibration.UserImages) and eager's detections on them, once, into ``ref``: the
    approximate methods calibrate and are gated on them too."""
    bar.set_postfix_str(f"{manifest.name}: eager on the {len(user.images)} --calibration images")
    ref.user, ref.ref_user = user, one_by_one(ref.eager, user.images)


def _entry(manifest: Manifest, ref: Reference) -> dict:
    """The model's index entry with its eager artifact (the exports are appended as they pass)."""
    entry = {"name": manifest.name, "aliases": list(manifest.aliases), "categories": manifest.categories,
             "outputs": list(manifest.outputs), "weights": {**ref.weights_info, "file": ref.weights_record},
             "manifest_sha256": manifest.digest, "manifest": manifest.raw, "score_spread": ref.spread,
             "settings": ref.settings,  # what a loaded model can and cannot change
             "artifacts": [{"method": "eager", "runtime": "pytorch", "format": "safetensors", "batch": None,
                            "devices": ["cpu", "cuda"], "files": {"weights": ref.weights_record}}]}
    if ref.eager_map:
        entry["eval"] = {"dataset": ref.eval_data.root.name, "images": len(ref.eval_data.files), "eager": ref.eager_map}
    return entry


def build_artifact(manifest: Manifest, out: Path, ref: Reference, spec, command: str, bar) -> tuple[dict | None, str]:
    """Export one method into OUT/models/NAME/METHOD and check it: returns its index entry (None when it failed, its
    directory then removed) and its summary line."""
    from ..export import FILENAMES
    name = manifest.name
    bar.set_postfix_str(f"{name} {spec.method}: exporting")
    adir = out / "models" / name / spec.method
    if adir.exists():
        shutil.rmtree(adir)
    adir.mkdir(parents=True)
    art_rel = f"models/{name}/{spec.method}/{FILENAMES[spec.method]}"
    try:
        checked = export_and_check(manifest, out, ref, spec, art_rel, bar)
    except ZooError as e:
        shutil.rmtree(adir, ignore_errors=True)
        return None, f"FAIL {name:40s} {spec.method:9s} {e}"
    bar.set_postfix_str(f"{name} {spec.method}: writing")
    art_record = store.file_record(out, art_rel)
    meta_rel = f"models/{name}/{spec.method}/metadata.json"
    store.atomic_write(out / meta_rel, store.canonical_json(_metadata(manifest, ref, spec, checked, art_record,
                                                                      command)))
    artifact = {
        "method": spec.method, "runtime": spec.runtime, "format": spec.format, "batch": spec.batch,
        "opset": spec.opset, "devices": list(spec.devices),
        "parity": {"ok": all(r.ok for r in checked.checks.values()),
                   "min_matched_fraction": min(r.matched_fraction for r in checked.checks.values())},
        "files": {"model": art_record, "metadata": store.file_record(out, meta_rel),
                  "reference": store.file_record(out, ref.ref_rel)},
    }
    if checked.accuracy:
        artifact["accuracy"] = {"ok": True, **{k: checked.accuracy["agreement"][k] for k in ("ap50", "ap")}}
    gate = accuracy.line(checked.accuracy) if checked.accuracy else checked.checks["sizes+grey"].line()
    return artifact, f"ok   {name:40s} {spec.method:9s} {gate}; {checked.timing.text()} vs eager {ref.eager_time.text()}"


def gpu_name() -> str:
    import torch
    return torch.cuda.get_device_name(torch.cuda.current_device())


def calibration_images(ref: Reference) -> list[np.ndarray]:
    """The images a quantizing method calibrates its activation ranges on: the build's own (the parity images), then
    the user's (--calibration)."""
    return ref.singles + ref.batch + ref.user_images


def _export(manifest: Manifest, out: Path, ref: Reference, spec, art_rel: str) -> dict:
    """The export child's settings; a quantizing (approximate) method gets calibration_images in an .npz. A plain ONNX
    file another method of this build exported with the same settings (openvino's is onnx's) is copied, not made
    again: the exporter is deterministic, so the bytes are the same, and the export takes a minute on a large model."""
    from ..export import share_key
    from ..load.runtimes.openvino import PRECISIONS
    key = share_key(spec)
    if key in ref.exported and (out / ref.exported[key][0]).is_file():
        shutil.copyfile(out / ref.exported[key][0], out / art_rel)
        settings = copy.deepcopy(ref.exported[key][1])
    else:
        settings = _export_in_child(manifest, out, ref, spec, art_rel)
        if key is not None:
            ref.exported[key] = (art_rel, copy.deepcopy(settings))
    if spec.method in PRECISIONS:  # openvino-bf16: the file is the onnx method's, the precision is the method's own
        settings["inference_precision"] = PRECISIONS[spec.method]
    return settings


def _export_in_child(manifest: Manifest, out: Path, ref: Reference, spec, art_rel: str) -> dict:
    from ..export import export_in_child
    args = (manifest.path, str(out / ref.weights_rel), spec.method, str(out / art_rel))
    if not spec.approximate:
        return export_in_child(*args)
    with tempfile.TemporaryDirectory(prefix="zoo-calibration-") as tmp:
        path = str(Path(tmp) / "calibration.npz")
        np.savez(path, **{f"image_{i}": im for i, im in enumerate(calibration_images(ref))})
        settings = export_in_child(*args, calibration=path)
    if "quantization" in settings:  # the child counts every image; which of them were the user's is known here
        settings["quantization"].update(record(ref.user))
    return settings


def export_and_check(manifest: Manifest, out: Path, ref: Reference, spec, art_rel: str, bar) -> Checked:
    """Export (in a child process), run the artifact on the parity images and compare with eager; raises a ZooError
    (ParityError) when it fails. An approximate method's comparison is recorded, and its gate is agreement AP
    (zoo/build/accuracy.py)."""
    from ..load.runtimes import open_backend
    from ..load.runtimes.base import Detector
    settings = _export(manifest, out, ref, spec, art_rel)
    device = "cuda" if spec.runtime == "tensorrt" else "cpu"  # TensorRT runs on NVIDIA GPUs only; eager stays on the CPU
    backend = open_backend(manifest, spec.method, spec.runtime, str(out / art_rel), spec.batch, device, BUILD_THREADS)
    detector = Detector(backend, manifest.outputs, {}, manifest.categories)
    tol = parity.Tolerance.from_dict(spec.tolerance)
    bar.set_postfix_str(f"{manifest.name} {spec.method}: loading the artifact")
    got_single, seconds = timed_one_by_one(detector, ref.singles, bar, f"{manifest.name} {spec.method}: checking parity")
    bar.set_postfix_str(f"{manifest.name} {spec.method}: checking parity on a batch of {len(ref.batch)}")
    got_batch = detector(ref.batch)
    checks = {"sizes+grey": parity.compare(ref.ref_single, got_single, tol, ref.constant),
              "batch": parity.compare(ref.for_batch(spec.batch), got_batch, tol)}
    failures = [f"{k}: {f}" for k, r in checks.items() for f in r.failures]
    agreement = None
    if spec.approximate:
        bar.set_postfix_str(f"{manifest.name} {spec.method}: agreement AP with eager")
        got_user = one_by_one(detector, ref.user_images)
        agreement = accuracy.check(spec, ref.ref_single + ref.for_batch(spec.batch) + ref.ref_user,
                                   got_single + got_batch + got_user, ref.user, gpu_name() if device == "cuda" else None)
    elif failures:
        raise ParityError("; ".join(failures[:6]))
    art_map = _eval(detector, ref.eval_data, f"{manifest.name} {spec.method}", bar)
    if art_map:
        _check_map(manifest, spec.method, ref.eager_map, art_map)
    return Checked(settings, checks, seconds, art_map, agreement)


def _metadata(manifest: Manifest, ref: Reference, spec, checked: Checked, art_record: dict, command: str) -> dict:
    metadata = {
        "model": manifest.name, "method": spec.method, "runtime": spec.runtime, "format": spec.format,
        "batch": spec.batch, "resolution": "dynamic", "devices": list(spec.devices), "opset": spec.opset,
        "artifact_sha256": art_record["sha256"], "manifest_sha256": manifest.digest, "weights": ref.weights_info,
        "export": checked.settings, "toolchain": toolchain(spec.runtime), "command": command,
        "parity": {"reference": "eager PyTorch (torchvision) with the stored weights",
                   "tolerance": parity.tolerance_dict(parity.Tolerance.from_dict(spec.tolerance),
                                                      "panoptic_seg" in manifest.outputs),
                   "input_sizes": [list(im.shape[-2:]) for im in ref.singles],
                   "batch_sizes": [list(im.shape[-2:]) for im in ref.batch],
                   "results": {k: r.summary() for k, r in checked.checks.items()}},
    }
    if checked.accuracy:
        metadata["parity"]["gated"] = False  # recorded only: the accuracy gate decides
        metadata["accuracy"] = checked.accuracy
    if checked.art_map:
        metadata["eval"] = {"dataset": ref.eval_data.root.name, "images": len(ref.eval_data.files),
                            "eager": ref.eager_map, "artifact": checked.art_map, "bound": manifest.map_bound(spec.method)}
    return metadata


def write_card(manifest: Manifest, out: Path, entry: dict) -> None:
    card_rel = f"models/{manifest.name}/README.md"
    store.atomic_write(out / card_rel, card.model_card(manifest, entry).encode("utf-8"))
    entry["card"] = store.file_record(out, card_rel)


def _label(weights: str) -> str:
    """The weights spec as recorded: a checkpoint by its file name (no absolute path in a store)."""
    from .weights import parse_weights
    return Path(weights).name if parse_weights(weights)[0] == "file" else weights


def _eval(detector, dataset, desc: str, bar) -> dict | None:
    """COCO mAP of ``detector`` on ``dataset`` (None without one)."""
    if dataset is None:
        return None
    from .coco_eval import evaluate
    bar.set_postfix_str(desc + ": eval")
    return evaluate(detector, dataset, desc=desc, progress=not bar.disable)


def _check_map(manifest: Manifest, method: str, eager_map: dict, art_map: dict) -> None:
    from .coco_eval import differences
    off = manifest.map_off(method, differences(eager_map, art_map))
    if off:
        raise ParityError(f"COCO mAP differs from eager's by more than {manifest.map_bound(method)}: " + ", ".join(
            f"{t} {art_map[t]['map']:.2f} vs eager {eager_map[t]['map']:.2f}" for t in off))


def seeded_figures(manifest: Manifest, seed: int) -> dict:
    """The figures a seeded build records as the model's ``score_spread`` (eager on the content parity images,
    trainedlike.summary), without building anything: the weights stay in memory."""
    from safetensors.torch import save

    from . import weights as models
    from ..load.runtimes.base import Detector
    from ..load.runtimes.eager import EagerBackend
    model, _ = models.random_model(manifest, seed)
    eager = Detector(EagerBackend(manifest, save(models.state_dict_for_store(model))), manifest.outputs, {},
                     manifest.categories)
    del model
    images = parity_images(manifest)
    with fixed_threads():
        return trainedlike.summary(one_by_one(eager, as_float(images["sizes"] + images["batch"])))


def one_by_one(detector, images: list) -> list[dict]:
    return [detector([im])[0] for im in images]


def timed_one_by_one(detector, images: list, bar=None, stage: str = ""):
    """Each image alone, each call timed (zoo.timing: the first call apart from the warm median); with ``bar``, the
    stage says "image k of n"."""
    count = iter(range(1, len(images) + 1))

    def run(im):
        if bar is not None:
            bar.set_postfix_str(f"{stage} image {next(count)} of {len(images)}")
        return detector([im])[0]
    return timed_calls(run, images)


def write_index(out: Path, models: dict) -> None:
    store.atomic_write(out / store.INDEX, store.index_bytes(models))


@dataclass
class Carried:
    kept: list[dict] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)   # method -> why
    lost: list[str] = field(default_factory=list)


def carry_over(old: dict | None, entry: dict, methods: list[str] | None, failed: set[str], out: Path, stage: Path,
               order: list[str] | None = None) -> Carried:
    """Decide for each artifact of the previous entry ``old`` that this build did not replace: *kept* (added to
    ``entry``, its files copied into the staging tree), *dropped* (a default build with other weights, no method
    failing: a slow method's package, or a method no longer in the manifest, was made from the weights this build
    replaced; or a method the manifest no longer exports) or *lost* (anything else: the model must then not be stored,
    so that the previous entry stays whole).

    An artifact is kept when the weights are the same and each file it shares with the model (the weights, the replay
    reference) is byte-identical in the staging tree, or absent there (then copied in): a file being re-listed by a
    new artifact is not the test, since a build whose one method failed re-lists nothing."""
    if not old:
        return Carried()
    name = entry["name"]
    built = {a["method"] for a in entry["artifacts"]}
    same_weights = old.get("weights", {}).get("file") == entry["weights"]["file"]
    carried, digests = Carried(), {}

    def staged_same(record: dict) -> bool:
        path = stage / store.safe_relpath(record["path"])
        if not path.is_file():
            return (out / store.safe_relpath(record["path"])).is_file()
        if record["path"] not in digests:
            digests[record["path"]] = store.sha256_file(path)
        return digests[record["path"]] == record["sha256"]

    for a in old["artifacts"]:
        method = a["method"]
        if method in built:
            continue
        own = f"models/{name}/{method}/"
        shared = [r for r in a["files"].values() if not r["path"].startswith(own)]
        if method in failed:
            carried.lost.append(method)
        elif (methods or method in (order or METHODS)) and same_weights and all(staged_same(r) for r in shared):
            carried.kept.append(a)
        elif not methods and not failed and not same_weights:
            carried.dropped[method] = "made from the previous weights, which this build replaced"
        elif not methods and not failed:
            carried.dropped[method] = "no longer among the manifest's exports"
        else:
            carried.lost.append(method)
    if carried.lost:
        return carried
    for a in carried.kept:
        own = f"models/{name}/{a['method']}/"
        if (out / own).is_dir():
            shutil.copytree(out / own, stage / own, copy_function=staging.link_or_copy)
        for r in a["files"].values():
            dest = stage / store.safe_relpath(r["path"])
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                staging.link_or_copy(str(out / store.safe_relpath(r["path"])), str(dest))
    rank = ["eager", *(order or METHODS)]  # a fresh build's order: the eager entry, then the manifest's exports
    entry["artifacts"] = sorted(entry["artifacts"] + carried.kept,
                                key=lambda a: rank.index(a["method"]) if a["method"] in rank else len(rank))
    return carried


def _refusal(carried: Carried, failed: list[str], same_weights: bool) -> str:
    """Why a model whose previous artifacts could not all be carried over is not stored."""
    why = []
    broken = [m for m in carried.lost if m in failed]
    stale = [m for m in carried.lost if m not in failed]
    if broken:
        why.append(f"{', '.join(broken)} failed" + ("" if same_weights else " and the new weights differ from the "
                                                    "stored ones"))
    if stale:
        why.append(f"the stored {', '.join(stale)} would be lost (" + (
            "made from the previous weights: build it with these weights too, --method " + " --method ".join(stale)
            if not same_weights else "its files differ from this build's") + ")")
    return "; ".join(why) + ": the previous entry is kept as it was"


def build_command(what: str, methods: list[str] | None, weights: str, eval_data=None, user=None) -> str:
    """The command recorded in each artifact's metadata (so it must not depend on where or how the build ran):
    ``what`` is the model's name, or ``--manifest FILE`` for a manifest of your own."""
    return (f"zoo build {what}{''.join(f' --method {m}' for m in methods or [])} --weights {_label(weights)}"
            + (f" --eval {eval_data.root.name}" if eval_data else "")
            + (f" --calibration {user.name}" if user else ""))


def build(names: list[str], out: str | Path, weights: str = "random:0", methods: list[str] | None = None,
          progress: bool = True, manifest_dir: str | None = None, manifest_files: list[str] | None = None,
          eval_dir: str | Path | None = None, builder=None, calibration: str | Path | None = None) -> BuildResult:
    """``manifest_files``: manifests of your own (any file name) built with the named ones; ``eval_dir``: a
    COCO-format dataset on which each artifact's mAP must stay within its manifest's eval.map_tolerance of eager's (an
    approximate method's: lose at most its max_map_loss); ``calibration``: a directory of the user's PNG / JPEG images
    that approximate methods also calibrate and are gated on (zoo/build/calibration.py; refused when no approximate method is built).

    Build each model in OUT/.staging and swap it into the store only when it built: a model that fails, by a
    ZooError or any other exception, is reported and leaves its previous entry byte-for-byte intact, and the other
    models still build; no build removes an earlier artifact it did not replace (see carry_over). A build that stores
    nothing into a directory that did not exist leaves none. (A KeyboardInterrupt stops the build, leaving the store as
    it was before that model.) ``builder`` builds one model (build_model's signature and result); the default builds
    here, see zoo.build.raybuild for a Ray cluster."""
    from tqdm.auto import tqdm

    from .weights import parse_weights
    if parse_weights(weights)[0] == "file" and not Path(weights).is_file():
        raise ZooError(f"--weights {weights}: no such checkpoint file")
    out = Path(out)
    own = [parse(f) for f in manifest_files or []]
    manifests = [resolve(n, manifest_dir) for n in names] + own
    eval_data = None
    if eval_dir is not None:
        from .coco_eval import open_dataset
        eval_data = open_dataset(eval_dir)  # a broken dataset fails before any export
    user = None
    if calibration is not None:
        user = calibration_for(manifests, methods, calibration)
    created = [p for p in (out, *out.parents) if not p.exists()]  # removed again if nothing is stored
    existing = _open_store(out)
    result = BuildResult()
    commands = {m.name: build_command(f"--manifest {Path(m.path).name}" if any(m is o for o in own) else m.name,
                                      methods, weights, eval_data, _if_approximate(m, methods, user)) for m in manifests}
    if hasattr(builder, "prepare"):  # a cluster builder starts every model's work at once (zoo.build.raybuild)
        builder.prepare([(m, commands[m.name]) for m in manifests], weights, methods)
    steps = sum(1 + len(m.selected(methods)) for m in manifests)
    try:
        with fixed_threads(), tqdm(total=steps, desc="zoo build", unit="step", disable=not progress,
                                   file=sys.stderr) as tq, Stages(tq) as bar:  # each stage's seconds keep ticking
            for m in manifests:
                result.models.append(_build_and_store(m, out, existing, builder=builder or build_model, bar=bar,
                                                      weights=weights, methods=methods, command=commands[m.name],
                                                      eval_data=eval_data, user=_if_approximate(m, methods, user)))
    finally:
        with contextlib.suppress(OSError):
            (out / staging.STAGING).rmdir()  # only when empty: another build may be staging there
        if not (out / store.INDEX).exists():
            for d in created:  # deepest first; rmdir: only what is still empty
                with contextlib.suppress(OSError):
                    d.rmdir()
    return result


def _if_approximate(manifest: Manifest, methods: list[str] | None, user):
    """``user`` (the --calibration images) for a model with an approximate method among those built, else None."""
    return user if any(spec.approximate for spec in manifest.selected(methods)) else None


def calibration_for(manifests: list[Manifest], methods: list[str] | None, path: str | Path):
    """The images of ``--calibration`` ``path``; a ZooError when none of the methods built is approximate (the images
    would be read and used by nothing: a mistake, such as a forgotten ``--method onnx-int8``, better said at once)."""
    if not any(_if_approximate(m, methods, True) for m in manifests):
        built = sorted({spec.method for m in manifests for spec in m.selected(methods)})
        raise ZooError(f"--calibration {path}: only approximate methods ({', '.join(APPROXIMATE_METHODS)}) calibrate "
                       f"and are gated on the user's images, and none is among the methods built ("
                       f"{', '.join(built) or 'none'}): add --method onnx-int8, or leave --calibration out")
    return open_images(path)


def _open_store(out: Path) -> dict:
    """The models of the store at ``out`` (none yet: {}), after finishing or discarding what killed builds left."""
    if not out.is_dir():
        return {}
    with staging.store_lock(out):
        staging.clean_stale(out)
        return store.load_index(out)["models"] if (out / store.INDEX).exists() else {}


def _build_and_store(m: Manifest, out: Path, existing: dict, *, builder, bar, weights: str, methods: list[str] | None,
                     command: str, eval_data, user=None) -> ModelOutcome:
    """Build one model in its staging directory, carry over what it did not replace and swap it in; any failure
    leaves the previous entry as it was (``existing`` is updated when the model is stored)."""
    stage = staging.new_dir(out, m.name)
    outcome = ModelOutcome(m.name, selected=[x.method for x in m.selected(methods)])
    try:
        outcome = builder(m, stage, weights=weights, methods=methods, command=command, bar=bar, eval_data=eval_data,
                          **({"calibration": user} if user else {}))  # builders of their own need not take it
        old = existing.get(m.name)
        carried = carry_over(old, outcome.entry, methods, set(outcome.failed), out, stage, [e.method for e in m.exports])
        if carried.lost:
            raise ZooError(_refusal(carried, outcome.failed, old["weights"]["file"] == outcome.entry["weights"]["file"]))
        outcome.kept, outcome.dropped = [a["method"] for a in carried.kept], carried.dropped
        write_card(m, stage, outcome.entry)  # every artifact of the entry, those kept from before too
        existing.update(staging.commit(out, stage, m.name, existing, outcome.entry))  # merged under the store's lock
        if outcome.kept:
            outcome.lines.append(f"kept {m.name:40s} {', '.join(outcome.kept)}: not rebuilt, stored as before")
        outcome.lines += [f"drop {m.name:40s} {method:9s} {why}" for method, why in outcome.dropped.items()]
    except Exception as e:  # ZooError or not: report it, keep the previous entry, build the other models
        what = str(e) if isinstance(e, ZooError) else (f"{type(e).__name__}: {first_line(e)} (unexpected; run with "
                                                       "ZOO_DEBUG=1 for the traceback)")
        previous = existing.get(m.name)
        outcome.refused = what
        outcome.lines.append(f"FAIL {m.name:40s} {'all':9s} {what}; the store keeps its previous {m.name} entry"
                             + (f" ({', '.join(a['method'] for a in previous['artifacts'])})" if previous else " (none)"))
        if debug() and not isinstance(e, ZooError):
            traceback.print_exc()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return outcome
