"""The build pipeline: manifests -> weights -> exports -> parity against eager -> store (index, metadata, cards).

Nothing written here carries a timestamp, an absolute path or a host name: the same command with the same toolchain
gives the same bytes (checked by `zoo build --check`).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import card, trainedlike
from ..core import parity, staging, store
from ..errors import ParityError, ZooError
from ..core.manifest import METHODS, SLOW_METHODS, Manifest, parse, resolve
from ..core.progress import Stages
from ..core.reference import save_reference
from ..core.timing import timed_calls

GREY = (300, 400)
# Seeded weights, eager references and parity figures are float reductions whose rounding depends on the number of
# threads torch and onnxruntime split them over (seen: 1 and 2 threads gave different seeded weights). A build pins
# both, so that any machine with the same toolchain rebuilds the same bytes; the lock records it.
BUILD_THREADS = 2


@dataclass
class BuildResult:
    built: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


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


def toolchain() -> dict:
    import torch
    import torchvision
    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
                "numpy": np.__version__, "build_threads": BUILD_THREADS}
    for mod in ("onnx", "onnxruntime", "safetensors"):
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


def build_model(manifest: Manifest, out: Path, weights: str, methods: list[str] | None, bar, result: BuildResult,
                command: str, eval_data=None) -> dict:
    """Build one model into ``out``; returns its index entry. Artifacts failing parity are removed and reported; with
    ``eval_data`` (a coco_eval.Dataset) so is an artifact whose COCO mAP differs from eager's by more than the
    manifest's map_tolerance."""
    from safetensors.torch import save_file

    from . import weights as models
    from ..export import FILENAMES, export_in_child
    from ..load.runtimes import open_backend
    from ..load.runtimes.base import Detector
    from ..load.runtimes.eager import EagerBackend

    name = manifest.name
    mdir = out / "models" / name
    mdir.mkdir(parents=True, exist_ok=True)
    bar.set_postfix_str(f"{name}: weights")
    model, weights_info = _weights(manifest, weights)
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
    ref_batches: dict = {}  # eager on the same chunks the artifact runs (padding a batch changes the features)
    ref_rel = f"models/{name}/reference.npz"
    save_reference(out / ref_rel, images["sizes"][0], ref_single[0])
    # the content images (not the grey one), one by one: seeded weights must behave like a trained detector's
    spread = trainedlike.summary(ref_single[:-1] + one_by_one(eager, batch))
    missed = trainedlike.failures(spread, len(manifest.categories)) if weights_info["kind"] == "random" else []
    if missed:
        raise ZooError(f"{name}: seeded weights (recipe {weights_info['recipe']['recipe_version']}) do not behave like "
                       f"a trained detector on the parity images: " + "; ".join(missed[:4])
                       + f"; change [random_weights] in {manifest.path} (see zoo/build/seeded.py)")

    entry = {"name": name, "aliases": list(manifest.aliases), "categories": manifest.categories,
             "outputs": list(manifest.outputs), "weights": {**weights_info, "file": weights_record},
             "manifest_sha256": manifest.digest, "manifest": manifest.raw, "score_spread": spread,
             "settings": models.baked_settings(eager_backend.model),  # what a loaded model can and cannot change
             "artifacts": [{"method": "eager", "runtime": "pytorch", "format": "safetensors", "batch": None,
                            "devices": ["cpu", "cuda"], "files": {"weights": weights_record}}]}
    eager_map = _eval(eager, eval_data, f"{name} eager", bar)
    if eager_map:
        entry["eval"] = {"dataset": eval_data.root.name, "images": len(eval_data.files), "eager": eager_map}
    for spec in manifest.selected(methods):
        bar.set_postfix_str(f"{name} {spec.method}: exporting")
        adir = mdir / spec.method
        if adir.exists():
            shutil.rmtree(adir)
        adir.mkdir(parents=True)
        art_rel = f"models/{name}/{spec.method}/{FILENAMES[spec.method]}"
        try:
            settings = export_in_child(manifest.path, str(out / weights_rel), spec.method, str(out / art_rel))
            backend = open_backend(manifest, spec.method, spec.runtime, str(out / art_rel), spec.batch,
                                   threads=BUILD_THREADS)
            detector = Detector(backend, manifest.outputs, {}, manifest.categories)
            tol = parity.Tolerance.from_dict(spec.tolerance)
            bar.set_postfix_str(f"{name} {spec.method}: loading the artifact")
            got_single, art_time = timed_one_by_one(detector, singles, bar, f"{name} {spec.method}: checking parity")
            bar.set_postfix_str(f"{name} {spec.method}: checking parity on a batch of {len(batch)}")
            if spec.batch not in ref_batches:
                eager_backend.batch = spec.batch
                ref_batches[spec.batch] = eager(batch)
            checks = {"sizes+grey": parity.compare(ref_single, got_single, tol, constant),
                      "batch": parity.compare(ref_batches[spec.batch], detector(batch), tol)}
            failures = [f"{k}: {f}" for k, r in checks.items() for f in r.failures]
            if failures:
                raise ParityError("; ".join(failures[:6]))
            art_map = _eval(detector, eval_data, f"{name} {spec.method}", bar)
            if art_map:
                _check_map(manifest, eager_map, art_map)
        except ZooError as e:
            shutil.rmtree(adir, ignore_errors=True)
            result.failed.append(f"{name}/{spec.method}")
            result.lines.append(f"FAIL {name:40s} {spec.method:9s} {e}")
            bar.update(1)
            continue
        art_record = store.file_record(out, art_rel)
        metadata = {
            "model": name, "method": spec.method, "runtime": spec.runtime, "format": spec.format,
            "batch": spec.batch, "resolution": "dynamic", "devices": list(spec.devices), "opset": spec.opset,
            "artifact_sha256": art_record["sha256"], "manifest_sha256": manifest.digest, "weights": weights_info,
            "export": settings, "toolchain": toolchain(), "command": command,
            "parity": {"reference": "eager PyTorch (torchvision) with the stored weights",
                       "tolerance": parity.tolerance_dict(tol),
                       "input_sizes": [list(im.shape[-2:]) for im in singles],
                       "batch_sizes": [list(im.shape[-2:]) for im in batch],
                       "results": {k: r.summary() for k, r in checks.items()}},
        }
        if art_map:
            metadata["eval"] = {**entry["eval"], "artifact": art_map}
        bar.set_postfix_str(f"{name} {spec.method}: writing")
        meta_rel = f"models/{name}/{spec.method}/metadata.json"
        store.atomic_write(out / meta_rel, store.canonical_json(metadata))
        entry["artifacts"].append({
            "method": spec.method, "runtime": spec.runtime, "format": spec.format, "batch": spec.batch,
            "opset": spec.opset, "devices": list(spec.devices),
            "parity": {"ok": True, "min_matched_fraction": min(r.matched_fraction for r in checks.values())},
            "files": {"model": art_record, "metadata": store.file_record(out, meta_rel),
                      "reference": store.file_record(out, ref_rel)},
        })
        result.built.append(f"{name}/{spec.method}")
        result.lines.append(f"ok   {name:40s} {spec.method:9s} {checks['sizes+grey'].line()}; "
                            f"{art_time.text()} vs eager {eager_time.text()}")
        bar.update(1)
    return entry


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


def _check_map(manifest: Manifest, eager_map: dict, art_map: dict) -> None:
    from .coco_eval import differences
    diffs = differences(eager_map, art_map)
    off = {t: d for t, d in diffs.items() if abs(d) > manifest.map_tolerance}
    if off:
        raise ParityError("COCO mAP differs from eager's by more than eval.map_tolerance "
                          f"{manifest.map_tolerance} points: " + ", ".join(
                              f"{t} {art_map[t]['map']:.2f} vs eager {eager_map[t]['map']:.2f}" for t in off))


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


def _keep_old_artifacts(old: dict | None, entry: dict, methods: list[str] | None, failed: set[str], out: Path,
                        stage: Path, order: list[str] | None = None) -> list[str]:
    """Add to ``entry`` the previous artifacts a partial rebuild (``--method``, or a default build, which leaves out
    the slow methods) did not replace, copying their files into the staging tree; returns the previous artifacts that
    would be lost because a requested method failed."""
    if not old:
        return []
    name = entry["name"]
    built = {a["method"] for a in entry["artifacts"]}
    same_weights = old.get("weights", {}).get("file") == entry["weights"]["file"]
    new_records = {(r["path"], r["sha256"]) for r in store.iter_files({"models": {name: entry}})}
    kept, lost = [], []
    for a in old["artifacts"]:
        if a["method"] in built:
            continue
        own = f"models/{name}/{a['method']}/"
        shared_ok = all(r["path"].startswith(own) or (r["path"], r["sha256"]) in new_records for r in a["files"].values())
        if (methods or a["method"] in SLOW_METHODS) and same_weights and shared_ok:
            src_dir, dest_dir = out / own, stage / own
            if src_dir.is_dir():
                shutil.copytree(src_dir, dest_dir, copy_function=staging.link_or_copy)
            kept.append(a)
        elif a["method"] in failed:
            lost.append(a["method"])
    rank = ["eager", *(order or METHODS)]  # a fresh build's order: the eager entry, then the manifest's exports
    entry["artifacts"] = sorted(entry["artifacts"] + kept,
                                key=lambda a: rank.index(a["method"]) if a["method"] in rank else len(rank))
    return lost


def build_command(what: str, methods: list[str] | None, weights: str, eval_data=None) -> str:
    """The command recorded in each artifact's metadata (so it must not depend on where or how the build ran):
    ``what`` is the model's name, or ``--manifest FILE`` for a manifest of your own."""
    return (f"zoo build {what}{''.join(f' --method {m}' for m in methods or [])} --weights {_label(weights)}"
            + (f" --eval {eval_data.root.name}" if eval_data else ""))


def build(names: list[str], out: str | Path, weights: str = "random:0", methods: list[str] | None = None,
          progress: bool = True, manifest_dir: str | None = None, manifest_files: list[str] | None = None,
          eval_dir: str | Path | None = None, builder=None) -> BuildResult:
    """``manifest_files``: manifests of your own (any file name) built with the named ones; ``eval_dir``: a
    COCO-format dataset on which each artifact's mAP must stay within its manifest's eval.map_tolerance of eager's.

    Build each model in OUT/.staging and swap it into the store only when it built: a model that fails, by a
    ZooError or any other exception, is reported and leaves its previous entry byte-for-byte intact, and the other
    models still build. (A KeyboardInterrupt stops the build, leaving the store as it was before that model.)
    ``builder`` builds one model (build_model's signature and result); the default builds here, see zoo.build.raybuild
    for a Ray cluster."""
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
    out.mkdir(parents=True, exist_ok=True)
    with staging.store_lock(out):
        staging.clean_stale(out)
        if (out / store.INDEX).exists():
            existing = store.load_index(out)["models"]
        else:
            existing = {}
            write_index(out, existing)  # an empty store is still a store
    steps = sum(1 + len(m.selected(methods)) for m in manifests)
    result = BuildResult()
    commands = {m.name: build_command(f"--manifest {Path(m.path).name}" if any(m is o for o in own) else m.name,
                                      methods, weights, eval_data) for m in manifests}
    if hasattr(builder, "prepare"):  # a cluster builder starts every model's work at once (zoo.build.raybuild)
        builder.prepare([(m, commands[m.name]) for m in manifests], weights, methods)
    with fixed_threads(), tqdm(total=steps, desc="zoo build", unit="step", disable=not progress, file=sys.stderr) as tq, \
            Stages(tq) as bar:  # each stage's elapsed seconds keep ticking on the bar
        for m in manifests:
            command = commands[m.name]
            stage = staging.new_dir(out, m.name)
            failed_before, built_before = len(result.failed), len(result.built)
            try:
                entry = (builder or build_model)(m, stage, weights, methods, bar, result, command, eval_data)
                failed = {f.split("/", 1)[1] for f in result.failed[failed_before:]}
                lost = _keep_old_artifacts(existing.get(m.name), entry, methods, failed, out, stage,
                                           [e.method for e in m.exports])
                if lost:
                    same = existing[m.name]["weights"]["file"] == entry["weights"]["file"]
                    raise ZooError(f"{', '.join(lost)} failed" + ("" if same else " and the new weights differ from "
                                   "the stored ones") + ": the previous entry is kept as it was")
                write_card(m, stage, entry)  # every artifact of the entry, those kept from before too
                existing = staging.commit(out, stage, m.name, existing, entry)  # merged under the store's lock
            except Exception as e:  # ZooError or not: report it, keep the previous entry, build the other models
                del result.built[built_before:]  # built, but not stored
                skipped = [x.method for x in m.selected(methods)]
                result.failed += [f"{m.name}/{x}" for x in skipped if f"{m.name}/{x}" not in result.failed]
                what = str(e) if isinstance(e, ZooError) else (f"{type(e).__name__}: {e} (unexpected; run with "
                                                               "ZOO_DEBUG=1 for the traceback)")
                result.lines.append(f"FAIL {m.name:40s} {'all':9s} {what}; the store keeps its previous "
                                    f"{m.name} entry" + ("" if m.name in existing else " (none)"))
                if os.environ.get("ZOO_DEBUG") and not isinstance(e, ZooError):
                    traceback.print_exc()
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    with contextlib.suppress(OSError):
        (out / staging.STAGING).rmdir()  # only when empty: another build may be staging there
    return result
