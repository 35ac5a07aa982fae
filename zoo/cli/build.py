"""Commands that build: `zoo build`, `zoo eval`, `zoo convert-d2`, `zoo demo`."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ZooError
from .options import EXPORTED, RUNTIMES, score_arg, table
from .predict import cmd_predict


def add_build(sub) -> None:
    s = sub.add_parser("build", help="export, parity-check and store models")
    s.add_argument("names", nargs="*", help="models (default: all)")
    s.add_argument("--method", action="append", choices=EXPORTED)
    s.add_argument("--weights", default=None,
                   help="official | random:SEED | a checkpoint FILE (.pth state dict or .safetensors) (default: "
                        "official into your local store, random:0 with --out)")
    s.add_argument("--manifest", action="append", metavar="FILE", help="a manifest of your own (any file name)")
    s.add_argument("--eval", metavar="DATASET", help="refuse artifacts whose COCO mAP on this COCO-format directory "
                   "differs from eager's by more than the manifest's eval.map_tolerance")
    s.add_argument("--calibration", metavar="DIR", help="a directory of your own .png/.jpg images: approximate "
                   "methods (onnx-int8) calibrate on them and are gated on them too, with the build's own images")
    s.add_argument("--out", help="store directory (default: your local store $ZOO_HOME/store, where zoo.load "
                   "looks when given no source)")
    s.add_argument("--check", metavar="LOCK", help="rebuild what LOCK lists and compare digests")
    s.add_argument("--lock", metavar="LOCK", help="after building, write a lock of the store's digests")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="export and check each (model, method) as a task on a Ray cluster (ADDRESS, or $RAY_ADDRESS, "
                        "or a local Ray; put it after the model names); needs zoo[serve]")
    s.set_defaults(fn=cmd_build)


def cmd_build(a) -> int:
    from ..core.manifest import all_manifests
    local = not a.check and not a.out
    if local:  # the user's own store: what zoo.load(NAME) with no source finds
        from ..core.settings import local_store
        a.out = str(local_store())
    weights = a.weights or ("official" if local else "random:0")
    builder = None
    if a.ray is not None:
        from ..build.raybuild import NO_CALIBRATION, RayBuilder
        if a.calibration:  # said before any Ray task starts
            raise ZooError(NO_CALIBRATION)
        builder = RayBuilder(a.ray)
    if a.check:
        from ..build.reproduce import check
        rc = check(a.check, a.names or None, progress=not a.quiet, builder=builder)
        print(builder.summary() if builder else "", end="\n" if builder else "")
        return rc
    names = a.names or ([] if a.manifest else list(all_manifests()))
    from ..build.pipeline import build
    if local:
        print(f"building {', '.join(names) or 'every model'} into your local store {a.out} (zoo.load finds it there "
              f"with no source) with {_weights_words(weights)}")
    t0 = time.perf_counter()
    result = build(names, a.out, weights, a.method or None, progress=not a.quiet, manifest_files=a.manifest,
                   eval_dir=a.eval, builder=builder, calibration=a.calibration)
    print("\n".join(result.lines + ([builder.summary()] if builder else [])))
    print(result.summary(a.out, time.perf_counter() - t0))
    if weights == "official" and any(host in line and line.startswith("FAIL") for line in result.lines for host in
                                     ("download.pytorch.org", "dl.fbaipublicfiles.com")):
        again = " ".join(["zoo build", *names, *(f"--method {m}" for m in a.method or []),
                          *([] if local else [f"--out {a.out}"]), "--weights random:0"])
        print(f"no network? `{again}` builds with seeded random weights "
              "instead (no download; the detections are meaningless, for trying the tool out)")
    elif local and result.built:
        first = names[0] if names else "NAME"
        print(f"load it: python -c 'import zoo; zoo.load(\"{first}\", runtime=\"onnxruntime\")'")
    if a.lock:
        from ..build.reproduce import write_lock
        write_lock(a.out, a.lock)
        print(f"wrote lock {a.lock}")
    return 1 if result.failed else 0


def _weights_words(weights: str) -> str:
    if weights == "official":
        return ("the official weights (downloaded once, sha256-checked: torchvision's from download.pytorch.org, "
                "detectron2's from dl.fbaipublicfiles.com, converted)")
    if weights.startswith("random:"):
        return f"seeded random weights ({weights}: no download; the detections are meaningless)"
    return f"the checkpoint {weights}"


def add_eval(sub) -> None:
    s = sub.add_parser("eval", help="COCO mAP (and a panoptic model's PQ) of eager and each stored artifact on a "
                       "COCO-format dataset")
    s.add_argument("name")
    s.add_argument("--data", required=True, help="directory with images and a COCO instances JSON, a COCO panoptic "
                   "JSON (panoptic.json and its PNGs in panoptic/), or both")
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
    print(f"{len(rows) - 1} artifact(s) against eager on {a.data}; tolerance {manifest.map_tolerance} points (mAP, PQ)"
          + (f"; OUTSIDE it: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def add_convert_d2(sub) -> None:
    s = sub.add_parser("convert-d2", help="a detectron2 checkpoint and its config as a manifest and weights for "
                       "zoo build --manifest")
    s.add_argument("checkpoint", help="detectron2's model_final_*.pkl (read without unpickling code) or a .pth")
    s.add_argument("--config", required=True, help="the detectron2 YAML config it was trained with (_BASE_ files "
                   "beside it)")
    s.add_argument("--out", required=True, help="directory for NAME.toml and NAME.safetensors")
    s.add_argument("--name", help="the model's name (default: the config's file name, lower-case)")
    s.add_argument("--force", action="store_true", help="overwrite NAME.toml and NAME.safetensors")
    s.set_defaults(fn=cmd_convert_d2)


def cmd_convert_d2(a) -> int:
    from ..build.d2convert.manifest import convert
    r = convert(a.checkpoint, a.config, a.out, a.name, a.force)
    print(f"wrote {r.manifest} and {r.weights} ({r.tensors} tensors, {r.num_classes} classes); build it: zoo build "
          f"--manifest {r.manifest} --weights {r.weights} --out STORE")
    return 0


def add_demo(sub) -> None:
    s = sub.add_parser("demo", help="build the trained demo detector offline through every method, load it like a "
                       "user, check it on a scene it never saw")
    s.add_argument("--model", default=None, help="a COCO architecture to build with seeded random weights and run "
                   "on the shipped photo instead (e.g. ssdlite: it runs, its boxes are meaningless); default: the "
                   "trained demo detector on a synthetic scene")
    s.add_argument("--out", default="zoo-demo", help="directory for the demo's store and pictures (default zoo-demo)")
    s.add_argument("--threshold", type=score_arg, default=0.5, help="draw only detections with at least this score "
                   "(default 0.5)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_demo)


def cmd_demo(a) -> int:
    """The trained demo detector end to end (zoo/build/demo/run.py); with --model, a COCO architecture with seeded weights."""
    if a.model is None:
        from ..build.demo.run import run
        return run(a.out, a.threshold, a.quiet)
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
        step = "2/3" if runtime == "onnxruntime" else "3/3"
        print(f"\n{step} zoo.load({a.model!r}, runtime={runtime!r}, source={str(store_dir)!r}) on {image}")
        ns = argparse.Namespace(model=a.model, runtime=runtime, method=None, device="cpu", source=str(store_dir),
                                revision=None, offline=False, image=image, top=10, threshold=a.threshold,
                                repeat=3, trust_code=True, out=str(out / f"demo_{runtime}.png"))  # its own store
        cmd_predict(ns)
    return 0
