"""Commands that build: `zoo build`, `zoo eval`, `zoo demo`."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ZooError
from .options import EXPORTED, RUNTIMES, table
from .predict import cmd_predict


def add_build(sub) -> None:
    s = sub.add_parser("build", help="export, parity-check and store models")
    s.add_argument("names", nargs="*", help="models (default: all)")
    s.add_argument("--method", action="append", choices=EXPORTED)
    s.add_argument("--weights", default="random:0",
                   help="official | random:SEED | a checkpoint FILE (.pth state dict or .safetensors) (default random:0)")
    s.add_argument("--manifest", action="append", metavar="FILE", help="a manifest of your own (any file name)")
    s.add_argument("--eval", metavar="DATASET", help="refuse artifacts whose COCO mAP on this COCO-format directory "
                   "differs from eager's by more than the manifest's eval.map_tolerance")
    s.add_argument("--out", help="store directory")
    s.add_argument("--check", metavar="LOCK", help="rebuild what LOCK lists and compare digests")
    s.add_argument("--lock", metavar="LOCK", help="after building, write a lock of the store's digests")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="export and check each (model, method) as a task on a Ray cluster (ADDRESS, or $RAY_ADDRESS, "
                        "or a local Ray; put it after the model names); needs zoo[serve]")
    s.set_defaults(fn=cmd_build)


def cmd_build(a) -> int:
    from ..core.manifest import all_manifests
    if not a.check and not a.out:
        raise ZooError("zoo build needs --out STORE (a directory)")
    builder = None
    if a.ray is not None:
        from ..build.raybuild import RayBuilder
        builder = RayBuilder(a.ray)
    if a.check:
        from ..build.reproduce import check
        rc = check(a.check, a.names or None, progress=not a.quiet, builder=builder)
        print(builder.summary() if builder else "", end="\n" if builder else "")
        return rc
    names = a.names or ([] if a.manifest else list(all_manifests()))
    from ..build.pipeline import build
    t0 = time.perf_counter()
    result = build(names, a.out, a.weights, a.method or None, progress=not a.quiet, manifest_files=a.manifest,
                   eval_dir=a.eval, builder=builder)
    print("\n".join(result.lines + ([builder.summary()] if builder else [])))
    print(result.summary(a.out, time.perf_counter() - t0))
    if a.lock:
        from ..build.reproduce import write_lock
        write_lock(a.out, a.lock)
        print(f"wrote lock {a.lock}")
    return 1 if result.failed else 0


def add_eval(sub) -> None:
    s = sub.add_parser("eval", help="COCO mAP of eager and each stored artifact on a COCO-format dataset")
    s.add_argument("name")
    s.add_argument("--data", required=True, help="directory with images and a COCO instances JSON")
    s.add_argument("--source", default=None, help="store dir, mirror URL or hf://ORG/REPO (default $ZOO_SOURCE)")
    s.add_argument("--runtime", choices=RUNTIMES, help="only this runtime's artifacts")
    s.add_argument("--method", choices=EXPORTED, help="only this method's artifact")
    s.add_argument("--revision", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_eval)


def cmd_eval(a) -> int:
    from ..build.coco_eval import evaluate_store
    manifest, rows = evaluate_store(a.name, a.data, a.source, a.runtime, a.method, a.revision, progress=not a.quiet)
    print(table(rows, ["artifact", *(k for k in rows[0] if k not in ("artifact", "ok"))]))
    bad = [r["artifact"] for r in rows if not r["ok"]]
    print(f"{len(rows) - 1} artifact(s) against eager on {a.data}; tolerance {manifest.map_tolerance} mAP points"
          + (f"; OUTSIDE it: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def add_demo(sub) -> None:
    s = sub.add_parser("demo", help="build a small model offline, load it like a user, predict on the shipped image")
    s.add_argument("--model", default="ssdlite320_mobilenet_v3_large")
    s.add_argument("--out", default="zoo-demo")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_demo)


def cmd_demo(a) -> int:
    """Build a small model into a local store with seeded weights, then load it as a user would and run it."""
    from importlib.resources import files
    out = Path(a.out)
    store_dir = out / "store"
    print(f"1/3 building {a.model} (seeded random weights, no network) into {store_dir} ...")
    from ..build.pipeline import build
    # the two artifacts the demo loads (a plain `zoo build` makes every method of the manifest)
    result = build([a.model], store_dir, "random:0", methods=["onnx", "scripting"], progress=not a.quiet)
    print("\n".join(result.lines))
    if result.failed:
        return 1
    image = str(files("zoo") / "data" / "astronaut.jpg")
    for runtime in ("onnxruntime", "pytorch"):
        print(f"\n{'2/3' if runtime == 'onnxruntime' else '3/3'} zoo.load({a.model!r}, runtime={runtime!r}, source={str(store_dir)!r}) on {image}")
        ns = argparse.Namespace(model=a.model, runtime=runtime, method=None, device="cpu", source=str(store_dir),
                                revision=None, offline=False, image=image, top=5,
                                out=str(out / f"demo_{runtime}.png"))
        cmd_predict(ns)
    return 0
