"""`zoo demo`: the demo detector, trained for real (zoo/build/demo/train.py), built through every method into a store,
loaded as a user loads a model, and run on a scene it never trained on; its detections are compared with the
scene's ground truth, and pictures, parity and timing figures are written. A second run reuses the store."""
from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

import numpy as np

NAME = "shapes_detector"
SCENE_SEED = 2026  # not the training seed (0) nor the held-out one (1)
ZOOM = 3           # the scenes are 128 px: pictures are drawn three times larger


def manifest_path() -> Path:
    return Path(str(files("zoo") / "build" / "demo" / "shapes_detector.toml"))


def scene(seed: int = SCENE_SEED, objects: int = 3):
    """A held-out scene with at least ``objects`` shapes: (float [3, H, W] image, [(class name, [x0, y0, x1, y1])])."""
    from . import shapes
    rng = np.random.default_rng(seed)
    while True:
        im, found = shapes.sample(rng)
        if len(found) >= objects:
            image = np.ascontiguousarray(np.asarray(im, dtype=np.float32).transpose(2, 0, 1)) / np.float32(255)
            return image, [(shapes.CLASSES[c], [x, y, x + w, y + h]) for c, (x, y, w, h), _ in found]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def against_truth(det: dict, categories: list[str], truth: list, threshold: float) -> tuple[int, int, int]:
    """(objects found, objects, false detections): each detection at or above ``threshold``, best first, takes the
    unclaimed ground-truth object of its class with IoU >= 0.5."""
    claimed, false = set(), 0
    for i in np.argsort(-np.asarray(det["scores"]), kind="stable"):
        if det["scores"][i] < threshold:
            continue
        name, box = categories[int(det["labels"][i])], [float(v) for v in det["boxes"][i]]
        hit = next((k for k, (c, b) in enumerate(truth) if k not in claimed and c == name and iou(box, b) >= 0.5), None)
        if hit is None:
            false += 1
        else:
            claimed.add(hit)
    return len(claimed), len(truth), false


def _reusable(store_dir: Path, manifest, weights: Path) -> bool:
    """The store already holds the demo detector built from this manifest and checkpoint, every default method."""
    from ...core import store
    try:
        entry = store.load_index(store_dir)["models"].get(NAME)
    except Exception:  # no store, or a broken one: build
        return False
    if not entry or entry.get("manifest_sha256") != manifest.digest:
        return False
    if entry["weights"].get("source_sha256") != store.sha256_file(weights):
        return False
    return {a["method"] for a in entry["artifacts"]} >= {e.method for e in manifest.selected(None)}


def run(out: str | Path, threshold: float = 0.5, quiet: bool = False) -> int:
    import warnings

    from ...ops import viz
    from ...errors import ParityError
    from ...load.loader import load
    from ...core.manifest import parse
    from ..pipeline import build
    from ...core.timing import timed_calls
    from .train import checkpoint, shipped_info

    t_start = time.perf_counter()
    out = Path(out)
    store_dir = out / "store"
    manifest = parse(str(manifest_path()))
    weights = checkpoint()
    trained = shipped_info()
    print(f"the demo detector: {manifest.description} Checkpoint {weights.name} (held-out box mAP "
          f"{trained['heldout']['box_map']:.1f} on {trained['heldout']['images']} scenes it never saw; re-train: "
          f"{trained['command']})")
    if _reusable(store_dir, manifest, weights):
        print(f"1/3 reusing {store_dir}: it holds {NAME} built from this checkpoint and manifest "
              "(delete it to rebuild)")
    else:
        methods = ", ".join(e.method for e in manifest.selected(None))
        print(f"1/3 building {NAME} through every method ({methods}) into {store_dir}: export, parity check "
              "against eager, store")
        result = build([], store_dir, str(weights), progress=not quiet, manifest_files=[str(manifest_path())])
        print("\n".join(result.lines))
        if result.failed:
            raise ParityError(f"the demo build failed for {', '.join(result.failed)} (see above)")
    image, truth = scene()
    big = np.repeat(np.repeat(image, ZOOM, axis=1), ZOOM, axis=2)
    scene_path = out / "scene.png"
    from PIL import Image
    Image.fromarray((big.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(scene_path)
    print(f"2/3 a scene it never trained on ({scene_path}): "
          + ", ".join(f"{c} at [{', '.join(f'{v:.0f}' for v in b)}]" for c, b in truth))
    print(f"3/3 zoo.load({NAME!r}, runtime=..., source={str(store_dir)!r}), as a user loads it:")
    ok = True
    for runtime in ("onnxruntime", "pytorch"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load(NAME, runtime=runtime, source=str(store_dir))
        art = model.info["artifact"]
        runs, timing = timed_calls(lambda im: model([im])[0], [image] * 6)
        det = runs[0]
        found, total, false = against_truth(det, model.categories, truth, threshold)
        ok = ok and found == total  # every object found; the false detections are reported, not hidden
        par = model.info.get("metadata", {}).get("parity", {}).get("results", {}).get("sizes+grey", {})
        print(f"  {runtime}/{art['method']}: found {found} of {total} objects (right class, IoU >= 0.5), "
              f"{false} false detection{'s' if false != 1 else ''} at score >= {threshold:g}; {timing.text()}; "
              f"parity vs eager at build: the worst image {par.get('min_matched_fraction', 0):.0%} matched, "
              f"max box diff {par.get('max_box_diff', 0):.2g}px")
        shown = {k: (v * ZOOM if k == "boxes" else v) for k, v in det.items()}
        pic = viz.draw(big, shown, model.categories, out / f"demo_{runtime}.png", threshold,
                       f"{NAME} {runtime}/{art['method']}: {found} of {total} objects found")
        print(f"  picture: {pic}")
    print(f"demo done in {time.perf_counter() - t_start:.0f}s (a second run reuses {store_dir}); the COCO "
          "architectures run too, with seeded random weights: zoo demo --model ssdlite")
    return 0 if ok else 1
