"""`zoo bench`: latency, load time, memory and size of each artifact against the eager reference, in one process."""
from __future__ import annotations

import ctypes
import gc
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..core import settings, text


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim), so that the next block's peak
    counts the memory it uses, not only what it could not take from what an earlier run freed."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed memory may be reused unseen and the peak then reads low


class PeakRss:
    """Samples this process's resident memory while a block runs; ``peak`` is the increase over the start, which is
    taken after freed memory went back to the OS."""

    def __init__(self, interval: float = 0.005):
        import psutil
        self.proc, self.interval, self.peak = psutil.Process(), interval, 0

    def __enter__(self):
        release_freed_memory()
        self.start = self.proc.memory_info().rss
        self.high, self.running = self.start, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.high = max(self.high, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.high, self.proc.memory_info().rss) - self.start


PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")  # the package's photos (zoo/data/README.md)


def sample_image(size: tuple[int, int], photo: str = PHOTOS[0]) -> np.ndarray:
    from importlib.resources import files
    from PIL import Image
    with Image.open(files("zoo") / "data" / photo) as im:
        rgb = np.asarray(im.convert("RGB").resize((size[1], size[0])), dtype=np.float32) / 255
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _raw_load(artifact: dict, path: str, threads: int) -> float:
    """Seconds the runtime itself needs to create the session / load the module (no zoo around it)."""
    t0 = time.perf_counter()
    if artifact["runtime"] == "onnxruntime":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    elif artifact["runtime"] == "openvino":
        import openvino as ov

        from ..load.runtimes.openvino import compile_config
        ov.Core().compile_model(path, "CPU", compile_config(threads, artifact["method"]))
    elif artifact["method"] == "export":
        from ..load.runtimes.pt2 import load_program
        load_program(path)
    elif artifact["method"] == "aoti":
        from ..load.runtimes.aoti import load_package
        load_package(path)
    else:
        from ..load.runtimes.torchscript import jit_load
        jit_load(path)
    return time.perf_counter() - t0


def measure(load, image, warmup: int, repeat: int, photos: list | None = None) -> dict:
    """Load, first call, warm-up, timed calls and peak memory of one model; its outputs on ``photos`` (for the
    accuracy columns) are taken after the timing, outside the memory block's figures that matter."""
    with PeakRss() as mem:
        t0 = time.perf_counter()
        model = load()
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        model([image])
        first = time.perf_counter() - t0
        for _ in range(warmup):
            model([image])
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = model([image])
            times.append(time.perf_counter() - t0)
    return {"load_s": t_load, "first_s": first, "median_s": statistics.median(times),
            "p90_s": float(np.percentile(times, 90)), "peak_mb": mem.peak / 2**20,
            "detections": int(len(out[0]["scores"])), "photo_outputs": [model([p])[0] for p in photos or []]}


def bench(names: list[str], source: str, runtime: str | None = None, method: str | None = None, warmup: int = 1,
          repeat: int = 5, threads: int = 2, size: tuple[int, int] = (480, 640), json_out: str | None = None,
          explicit: bool = False, plot_out: str | None = None, trust_code: bool = False) -> list[dict]:
    """Bench ``names`` found in ``source`` (those it lacks are skipped, and named when ``explicit``): one row per
    artifact and the eager reference, each model's rows sorted by median latency; with ``plot_out``, a PNG of latency
    against agreement AP50 (one point per artifact). Code artifacts (tracing, scripting, export, aoti) of a source not
    trusted (docs/security.md) are skipped, and said, unless ``trust_code``."""
    import torch
    from tqdm.auto import tqdm

    from ..core.progress import Stages
    torch.set_num_threads(threads)
    image = sample_image(size)
    photos = [sample_image(size, p) for p in PHOTOS] if _has_pycocotools() else None
    rows, unpinned = [], []
    with tqdm(total=len(names), desc="zoo bench", unit="model", file=sys.stderr) as tq, Stages(tq) as bar:
        _bench_models(names, source, runtime, method, warmup, repeat, threads, (image, photos), explicit, bar, rows,
                      unpinned, trust_code)
    if not rows and unpinned:
        raise unpinned[0]
    print(table(rows, size, threads))
    if photos is None:
        print("accuracy columns left empty: agreement AP needs pycocotools (pip install 'zoo[eval]')")
    if json_out:
        Path(json_out).write_text(json.dumps({"size": list(size), "threads": threads, "photos": list(PHOTOS),
                                              "rows": rows}, indent=2))
    if plot_out:
        from .plot import latency_accuracy
        latency_accuracy(rows, plot_out, f"zoo bench: {size[0]}x{size[1]}, {threads} threads, CPU")
        print(f"plot written to {plot_out}")
    return rows


def _has_pycocotools() -> bool:
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        return False
    return True


def _bench_models(names, source, runtime, method, warmup, repeat, threads, images, explicit, bar, rows, unpinned,
                  trust_code):
    """Measure each model's eager reference and artifacts into ``rows``, saying on ``bar`` which one runs."""
    from ..load.sources import open_source

    shared = open_source(source) if source or settings.source_spec() else None
    shared_index = shared.index() if shared else None
    for name in names:
        found = _find(name, shared, shared_index, explicit, bar, unpinned)
        if found:
            rows += sorted(_bench_model(*found, source, runtime, method, warmup, repeat, threads, images, bar, trust_code),
                           key=lambda r: r["median_s"])
        bar.update(1)


def _find(name, shared, shared_index, explicit, bar, unpinned):
    """(manifest, source, index entry) of ``name``: from the source given, else the channel's repository for the
    model; None (said on ``bar`` when ``explicit``) where the model is not there."""
    from ..core.manifest import resolve
    from ..errors import NotAvailableError
    from ..load.loader import manifest_for
    from ..load.sources import open_source

    if shared:  # the store's index knows its models, yours included
        src, index = shared, shared_index
        manifest = manifest_for(name, index, src.description)
    else:  # no source: the channel's repository for this model
        manifest = resolve(name)
        try:
            src = open_source(None, model=manifest.name)
        except NotAvailableError as e:
            if explicit:
                raise
            unpinned.append(e)
            return None
        index = src.index()
    entry = index.get("models", {}).get(manifest.name)
    if entry is None:
        if explicit:
            bar.write(f"{manifest.name}: not in {src.description}, skipped")
        return None
    return manifest, src, entry


def _bench_model(manifest, src, entry, source, runtime, method, warmup, repeat, threads, images, bar,
                 trust_code) -> list[dict]:
    """The eager reference's row, then one row per artifact (``runtime`` / ``method`` only, when given)."""
    image, photos = images
    from ..core import trust
    from ..load.loader import load

    def open_model(runtime_: str, method_: str):
        return load(manifest.name, runtime=runtime_, method=method_, source=source, threads=threads, trust_code=trust_code)

    bar.set_postfix_str(f"{manifest.name} pytorch/eager")
    eager = measure(lambda: open_model("pytorch", "eager"), image, warmup, repeat, photos)
    eager_size = entry["weights"]["file"]["size"]
    rows = [_row(manifest.name, "pytorch", "eager", eager, eager, eager_size, eager_size)]
    for artifact in entry["artifacts"]:
        if artifact["method"] == "eager" or (runtime and artifact["runtime"] != runtime) or (method and artifact["method"] != method):
            continue
        if trust.is_code(artifact["method"]) and not trust.trusted(src, trust_code):
            bar.write(f"{manifest.name} {artifact['method']}: skipped, code from a source you did not say you trust "
                      f"({trust.consent_hint(src)})")
            continue
        bar.set_postfix_str(f"{manifest.name} {artifact['runtime']}/{artifact['method']}")
        m = measure(lambda: open_model(artifact["runtime"], artifact["method"]), image, warmup, repeat, photos)
        row = _row(manifest.name, artifact["runtime"], artifact["method"], m, eager,
                   artifact["files"]["model"]["size"], eager_size)
        if source and Path(source).is_dir():  # the raw runtime needs the file's local path
            row.update(_load_overhead(artifact, Path(source), threads,
                                      lambda: open_model(artifact["runtime"], artifact["method"])))
        rows.append(row)
    return rows


# each side of load/runtime is the best of 2 loads, or of up to 7 while they take under 3 s in all (small files load in
# 0.05-0.3 s, where a best of 2 on a busy machine moved the ratio by 0.3)
LOADS, LOADS_BUDGET_S = (2, 7), 3.0


def _load_overhead(artifact: dict, store_dir: Path, threads: int, open_model) -> dict:
    """zoo.load's warm time against the runtime opening the same file by itself, and the file's hashing speed."""
    from ..core.store import sha256_file

    path = str(store_dir / artifact["files"]["model"]["path"])
    raw, warm = [], []
    while len(raw) < LOADS[0] or (len(raw) < LOADS[1] and sum(raw) + sum(warm) < LOADS_BUDGET_S):
        raw.append(_raw_load(artifact, path, threads))  # interleaved: a machine slowing down slows both alike
        warm.append(_timed(open_model))
    raw, warm = min(raw), min(warm)
    t0 = time.perf_counter()
    sha256_file(path)
    return dict(raw_load_s=raw, warm_load_s=warm, load_vs_runtime=warm / raw,
                sha256_gb_s=artifact["files"]["model"]["size"] / (time.perf_counter() - t0) / 1e9)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _row(name, runtime, method, m, eager, size, eager_size) -> dict:
    from .agreement import agreement_ap
    keys = ("load_s", "first_s", "median_s", "p90_s", "peak_mb")
    row = {"model": name, "runtime": runtime, "method": method, "detections": m["detections"], "size_mb": size / 2**20}
    if m["photo_outputs"]:  # against eager's confident boxes on the package's photos
        row["agreement"] = agreement_ap(eager["photo_outputs"], m["photo_outputs"])
    row.update({k: m[k] for k in keys})
    row.update({f"{k}_vs_eager": (m[k] / eager[k] if eager[k] else None) for k in keys})
    row["size_vs_eager"] = size / eager_size
    return row


COLUMNS = {
    "median_s": "seconds per call, median of the timed calls (after the first and the warm-up)",
    "x eager": "median_s / eager's median_s (< 1.0: faster than eager)",
    "p90_s": "seconds per call, 90th percentile of the timed calls",
    "agree AP50": "agreement AP50: COCO box AP at IoU 0.5 of the artifact's detections on the package's three photos, "
                  "eager's detections scoring >= 0.5 taken as the ground truth (1.0: eager's boxes; '-': eager has "
                  "none there, or no pycocotools)",
    "agree AP": "the same, AP averaged over IoU 0.5:0.95 (how exactly the boxes agree)",
    "first_s": "the first call alone (graph optimisation, allocation: paid once)",
    "load_s": "zoo.load, sha256 verification included",
    "peak_mb": "peak resident memory while loading and running",
    "size_mb": "the artifact's file size",
    "load/runtime": "zoo.load (verified, warm) / the runtime opening the same file by itself: the zoo's overhead "
                    "(a store source only)",
    "sha256 GB/s": "how fast the artifact's file hashes here: what verifying it costs a first load (a store "
                   "source only)",
}


def columns_help() -> str:
    return "\n".join(f"  {name:13s} {text}" for name, text in COLUMNS.items())


def table(rows: list[dict], size, threads) -> str:
    head = (f"zoo bench: input {size[0]}x{size[1]}, {threads} threads, CPU; one row per artifact and the eager "
            f"reference; columns:\n{columns_help()}\n")
    cols = ["model", "runtime", "method", *COLUMNS]
    cells = [dict(zip(cols, [r["model"], r["runtime"], r["method"], f"{r['median_s']:.3f}", f"{r['median_s_vs_eager']:.2f}",
                             f"{r['p90_s']:.3f}", *_agreement_cells(r), f"{r['first_s']:.3f}", f"{r['load_s']:.2f}", f"{r['peak_mb']:.0f}",
                             f"{r['size_mb']:.0f}", f"{r['load_vs_runtime']:.2f}" if "load_vs_runtime" in r else "-",
                             f"{r['sha256_gb_s']:.2f}" if "sha256_gb_s" in r else "-"])) for r in rows]
    return head + text.table(cells, cols, rule=False)


def _agreement_cells(row: dict) -> tuple[str, str]:
    a = row.get("agreement")
    return (f"{a['ap50']:.3f}", f"{a['ap']:.3f}") if a else ("-", "-")
