"""The build pipeline: manifests -> weights -> exports -> parity against eager -> store (index, metadata, cards).

Nothing written here carries a timestamp, an absolute path or a host name: the same command with the same toolchain
gives the same bytes (checked by `zoo build --check`).
"""
from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import card, parity, store, trainedlike
from .errors import ParityError, ZooError
from .manifest import Manifest, resolve

GREY = (300, 400)


@dataclass
class BuildResult:
    built: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def toolchain() -> dict:
    import torch
    import torchvision
    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
                "numpy": np.__version__}
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
    from . import models
    kind, seed = models.parse_weights(spec)
    return models.random_model(manifest, seed) if kind == "random" else models.official_model(manifest)


def _save_reference(path: Path, image: np.ndarray, outputs: dict) -> None:
    """One replay image (uint8) and the eager outputs on it; masks as uint8 probabilities to stay small."""
    arrays = {"image": image}
    for k, v in outputs.items():
        arrays[k] = np.round(v * 255).astype(np.uint8) if k == "masks" else v
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    store.atomic_write(path, buf.getvalue())


def load_reference(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    image = arrays.pop("image").astype(np.float32) / np.float32(255)
    if "masks" in arrays:
        arrays["masks"] = arrays["masks"].astype(np.float32) / 255
    return image, arrays


def build_model(manifest: Manifest, out: Path, weights: str, methods: list[str] | None, bar, result: BuildResult,
                command: str) -> dict:
    """Build one model into ``out``; returns its index entry. Artifacts failing parity are removed and reported."""
    import torch
    from safetensors.torch import save_file

    from . import models
    from .export import FILENAMES, export_in_child
    from .runtimes import open_backend
    from .runtimes.base import Detector
    from .runtimes.eager import EagerBackend

    name = manifest.name
    mdir = out / "models" / name
    mdir.mkdir(parents=True, exist_ok=True)
    bar.set_postfix_str(f"{name}: weights")
    model, weights_info = _weights(manifest, weights)
    weights_rel = f"models/{name}/weights.safetensors"
    # one metadata key: safetensors writes its metadata map in a per-process random order (a Rust HashMap)
    save_file(models.state_dict_for_store(model), str(out / weights_rel),
              metadata={"zoo": json.dumps({"model": name, "weights": weights}, sort_keys=True)})
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
    t0 = time.perf_counter()
    ref_single = one_by_one(eager, singles)
    eager_time = (time.perf_counter() - t0) / len(singles)
    ref_batches: dict = {}  # eager on the same chunks the artifact runs (padding a batch changes the features)
    ref_rel = f"models/{name}/reference.npz"
    _save_reference(out / ref_rel, images["sizes"][0], ref_single[0])
    # the content images (not the grey one), one by one: seeded weights must behave like a trained detector's
    spread = trainedlike.summary(ref_single[:-1] + one_by_one(eager, batch))
    missed = trainedlike.failures(spread, len(manifest.categories)) if weights_info["kind"] == "random" else []
    if missed:
        raise ZooError(f"{name}: seeded weights (recipe {weights_info['recipe']['recipe_version']}) do not behave like "
                       f"a trained detector on the parity images: " + "; ".join(missed[:4])
                       + f"; change [random_weights] in {manifest.path} (see zoo/seeded.py)")

    entry = {"name": name, "aliases": list(manifest.aliases), "categories": manifest.categories,
             "outputs": list(manifest.outputs), "weights": {**weights_info, "file": weights_record},
             "manifest_sha256": manifest.digest, "score_spread": spread,
             "artifacts": [{"method": "eager", "runtime": "pytorch", "format": "safetensors", "batch": None,
                            "devices": ["cpu", "cuda"], "files": {"weights": weights_record}}]}
    for spec in manifest.exports:
        if methods and spec.method not in methods:
            continue
        bar.set_postfix_str(f"{name}: {spec.method}")
        adir = mdir / spec.method
        if adir.exists():
            shutil.rmtree(adir)
        adir.mkdir(parents=True)
        art_rel = f"models/{name}/{spec.method}/{FILENAMES[spec.method]}"
        try:
            settings = export_in_child(manifest.path, str(out / weights_rel), spec.method, str(out / art_rel))
            backend = open_backend(manifest, spec.method, spec.runtime, str(out / art_rel), spec.batch)
            detector = Detector(backend, manifest.outputs, {}, manifest.categories)
            tol = parity.Tolerance.from_dict(spec.tolerance)
            t0 = time.perf_counter()
            got_single = one_by_one(detector, singles)
            art_time = (time.perf_counter() - t0) / len(singles)
            if spec.batch not in ref_batches:
                eager_backend.batch = spec.batch
                ref_batches[spec.batch] = eager(batch)
            checks = {"sizes+grey": parity.compare(ref_single, got_single, tol, constant),
                      "batch": parity.compare(ref_batches[spec.batch], detector(batch), tol)}
            failures = [f"{k}: {f}" for k, r in checks.items() for f in r.failures]
            if failures:
                raise ParityError("; ".join(failures[:6]))
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
                            f"{art_time:.2f}s/img vs eager {eager_time:.2f}s/img")
        bar.update(1)
    card_rel = f"models/{name}/README.md"
    store.atomic_write(out / card_rel, card.model_card(manifest, entry).encode("utf-8"))
    entry["card"] = store.file_record(out, card_rel)
    return entry


def one_by_one(detector, images: list) -> list[dict]:
    return [detector([im])[0] for im in images]


def write_index(out: Path, models: dict) -> None:
    index = {"format": store.FORMAT, "models": dict(sorted(models.items()))}
    store.atomic_write(out / store.INDEX, store.canonical_json(index))


def build(names: list[str], out: str | Path, weights: str = "random:0", methods: list[str] | None = None,
          progress: bool = True, manifest_dir: str | None = None) -> BuildResult:
    from tqdm.auto import tqdm

    from .models import parse_weights
    parse_weights(weights)  # a malformed spec is the user's error, not a model's build failure
    out = Path(out)
    manifests = [resolve(n, manifest_dir) for n in names]
    out.mkdir(parents=True, exist_ok=True)
    existing = store.load_index(out)["models"] if (out / store.INDEX).exists() else {}
    steps = sum(1 + sum(1 for e in m.exports if not methods or e.method in methods) for m in manifests)
    result = BuildResult()
    method_arg = "".join(f" --method {m}" for m in methods or [])
    with tqdm(total=steps, desc="zoo build", unit="step", disable=not progress, file=sys.stderr) as bar:
        for m in manifests:
            command = f"zoo build {m.name}{method_arg} --weights {weights}"
            try:
                entry = build_model(m, out, weights, methods, bar, result, command)
            except ZooError as e:  # e.g. seeded weights unlike a trained detector's: report, build the other models
                # its files may be half replaced: drop the model from the store rather than leave a stale entry
                shutil.rmtree(out / "models" / m.name, ignore_errors=True)
                existing.pop(m.name, None)
                write_index(out, existing)
                skipped = [x.method for x in m.exports if not methods or x.method in methods]
                result.failed += [f"{m.name}/{x}" for x in skipped]
                result.lines.append(f"FAIL {m.name:40s} {'all':9s} {e}")
                bar.update(1 + len(skipped))
                continue
            old = existing.get(m.name)
            if old and methods and old.get("weights", {}).get("file") == entry["weights"]["file"]:
                kept = [a for a in old["artifacts"] if a["method"] not in {x["method"] for x in entry["artifacts"]}]
                entry["artifacts"] = sorted(entry["artifacts"] + kept, key=lambda a: a["method"])
            existing[m.name] = entry
            write_index(out, existing)
    return result
