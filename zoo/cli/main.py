"""The `zoo` command line."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import ZooError
from ..core.manifest import METHODS

EXPORTED = tuple(METHODS)           # the methods a build makes
LOADABLE = EXPORTED + ("eager",)  # and the reference a store also holds


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip()  # noqa: E731
    return "\n".join([line({c: c for c in columns}), line({c: "-" * widths[c] for c in columns})] + [line(r) for r in rows])


def cmd_list(a) -> int:
    from ..core.manifest import support_markdown, support_rows
    if a.markdown:
        print(support_markdown())
        return 0
    print(table(support_rows(), ["model", "alias", "method", "runtime", "format", "batch", "devices", "status"]))
    return 0


def cmd_info(a) -> int:
    from ..core.manifest import resolve
    index = None
    if a.source:  # a model of your own is known from the store's index alone
        from ..load.loader import manifest_for
        from ..load.sources import open_source
        src = open_source(a.source)
        index = src.index()
    m = manifest_for(a.name, index, src.description) if index is not None else resolve(a.name)
    w = m.weights
    print(f"{m.name}  ({', '.join(m.aliases) or 'no alias'})  {m.description}")
    print(f"builder:  {m.builder}" + (f" {json.dumps(m.builder_args)}" if m.builder_args else ""))
    if "url" in w:
        print(f"official weights: {w['url']}  sha256 {w['sha256']}...  license {w.get('license')}")
    if "metrics" in w:
        print(f"COCO val2017: {', '.join(f'{k} {v}' for k, v in w['metrics'].items())}   params {w.get('num_params')}")
    print(f"input:    {json.dumps(m.input)}")
    print(f"outputs:  {', '.join(m.outputs)}   categories: {len(m.categories)}")
    for e in m.exports:
        print(f"export:   {e.method:9s} -> {e.runtime:11s} {e.format}{f' opset {e.opset} ({e.exporter} exporter)' if e.opset else ''}, batch {e.batch_text}, "
              f"devices {', '.join(e.devices)}, tolerance {e.tolerance}")
    for u in m.unsupported:
        print(f"unsupported: {u.method}/{u.runtime}: {u.reason}")
    if index is not None:
        entry = index.get("models", {}).get(m.name)
        if not entry:
            print(f"store {a.source}: not built")
            return 0
        wi = entry["weights"]
        print(f"store weights: {wi['kind']}" + (f" (seed {wi['seed']}; detections are meaningless)" if wi["kind"] == "random" else "")
              + (f" {wi['file_name']} (sha256 {wi['source_sha256']})" if wi["kind"] == "file" else "")
              + f", sha256 {wi['file']['sha256']}")
        for art in entry["artifacts"]:
            par = art.get("parity", {}).get("min_matched_fraction")
            print(f"  artifact {art['runtime']}/{art['method']}: {art['files'].get('model', art['files'].get('weights'))['path']}"
                  + (f", parity min matched {par:.3f}" if par is not None else " (reference)"))
    return 0


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


def cmd_eval(a) -> int:
    from ..build.coco_eval import evaluate_store
    manifest, rows = evaluate_store(a.name, a.data, a.source, a.runtime, a.method, a.revision, progress=not a.quiet)
    print(table(rows, ["artifact", *(k for k in rows[0] if k not in ("artifact", "ok"))]))
    bad = [r["artifact"] for r in rows if not r["ok"]]
    print(f"{len(rows) - 1} artifact(s) against eager on {a.data}; tolerance {manifest.map_tolerance} mAP points"
          + (f"; OUTSIDE it: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def cmd_new_manifest(a) -> int:
    from ..build.scaffold import write
    categories = [c.strip() for c in a.categories.split(",")] if a.categories else None
    path = a.out or f"{a.name}.toml"
    doc = write(a.name, a.builder, path, a.num_classes, categories, a.force)
    print(f"wrote {path}: outputs = [{', '.join(doc['outputs'])}] (read from the model {a.builder} makes), "
          f"{len(doc['weights']['categories'])} categories; check builder_args, input, parity and export, then: "
          f"zoo build --manifest {path} --weights CHECKPOINT --out STORE")
    return 0


def cmd_verify(a) -> int:
    from ..ops.verify import verify_path
    lines = verify_path(a.path, a.name, a.runtime, do_replay=not a.no_replay)
    for line in lines:
        if not line.ok or a.verbose or " " in line.what:  # file lines only when bad (or -v); every replay line
            print(line)
    bad = [x for x in lines if not x.ok]
    print(f"{len(lines) - len(bad)} ok, {len(bad)} bad")
    return 1 if bad else 0


def cmd_cache(a) -> int:
    from ..ops import cache_admin
    from ..core.settings import default_home
    home = default_home(a.cache_dir)
    if a.action == "list":
        rows = cache_admin.list_rows(home)
        if rows:
            print(table(rows, ["model", "file", "size", "sha256"]))
        blobs = cache_admin.blobs(home)
        unused = [b for b in blobs if not b.uses]
        for name, size in cache_admin.extra_dirs(home):
            print(f"{name + '/':10s} {cache_admin.human(size)}")
        print(f"{home}: {len(blobs)} blob(s), {cache_admin.human(sum(b.size for b in blobs))}"
              + (f"; {len(unused)} listed by no recorded index ({cache_admin.human(sum(b.size for b in unused))}): "
                 "zoo cache prune" if unused else ""))
    elif a.action == "prune":
        gone = cache_admin.prune(home, dry_run=a.dry_run)
        for b in gone:
            print(f"{'would remove' if a.dry_run else 'removed'} {b.path} ({cache_admin.human(b.size)})")
        print(f"{'would free' if a.dry_run else 'freed'} {cache_admin.human(sum(b.size for b in gone))} "
              f"in {len(gone)} blob(s) that no recorded index lists")
    else:
        print(f"freed {cache_admin.human(cache_admin.clear(home))} from {home}")
    return 0


def _load(a):
    from ..load.loader import load
    return load(a.model, runtime=a.runtime, method=a.method, device=a.device, source=a.source, revision=a.revision,
                offline=True if a.offline else None)


def cmd_predict(a) -> int:
    from ..ops import viz
    t0 = time.perf_counter()
    model = _load(a)
    t_load = time.perf_counter() - t0
    image = viz.read_image(a.image)
    t0 = time.perf_counter()
    det = model([image])[0]
    t_run = time.perf_counter() - t0
    weights = model.info["weights"]
    art = model.info["artifact"]
    print(f"{model.info['model']} {art['runtime']}/{art['method']} from {model.info['source']}: "
          f"{len(det['scores'])} detections in {t_run:.2f}s (load {t_load:.2f}s)")
    if weights["kind"] == "random":
        print(f"NOTE: seeded random weights (seed {weights['seed']}): the detections below are meaningless")
    if "parity" in art:
        par = model.info.get("metadata", {}).get("parity", {}).get("results", {})
        for k, r in par.items():
            print(f"parity vs eager ({k}): matched {r['min_matched_fraction']:.2f} of {r['detections']} detections, "
                  f"max box diff {r['max_box_diff']:.3g}px, max score diff {r['max_score_diff']:.3g}")
    for i in list(reversed(det["scores"].argsort()))[:a.top]:
        label = int(det["labels"][i])
        name = model.categories[label] if label < len(model.categories) else str(label)
        box = ", ".join(f"{v:.1f}" for v in det["boxes"][i])
        print(f"  {name:16s} {float(det['scores'][i]):.3f}  [{box}]")
    if a.out:
        title = f"{model.info['model']} {art['runtime']}/{art['method']}" + (" (seeded random weights)" if weights["kind"] == "random" else "")
        print(f"picture: {viz.draw(image, det, model.categories, a.out, title=title)}")
    return 0


def cmd_path(a) -> int:
    model_path = _artifact_path(a)
    print(model_path)
    return 0


def _artifact_path(a) -> Path:
    from ..load.loader import channel_name, manifest_for, select
    from ..load.sources import open_source
    src = open_source(a.source, offline=True if a.offline else None, model=channel_name(a.model))
    index = src.index(a.revision)
    entry = select(manifest_for(a.model, index, src.description), index, a.runtime, a.method, a.device)
    role = "model" if "model" in entry["artifact"]["files"] else "weights"
    return src.fetch(entry["artifact"]["files"][role])


def cmd_download(a) -> int:
    from ..load.bundles import download
    digest = download(a.names, a.to, runtime=a.runtime, method=a.method, source=a.source, revision=a.revision)
    print(f"bundle {a.to}: index sha256 {digest} (pin it: revision='{digest}')")
    return 0


def cmd_import(a) -> int:
    from ..load.bundles import import_bundle
    added, present, indexes = import_bundle(a.bundle)
    print(f"imported {a.bundle}: {added} file(s) added to the cache, {present} already there (all hashed), "
          f"{indexes} pinned index(es); zoo.load(NAME, runtime=...) now needs no network for these")
    return 0


def cmd_pin(a) -> int:
    from ..publish.pin import pin
    ch = pin(a.specs, a.out, org=a.org)
    for name, p in sorted(ch.models.items()):
        print(f"{name}: hf://{p.repo}@{p.commit} index sha256 {p.index_sha256}")
    print(f"wrote {a.out} (use it: ZOO_CHANNEL={a.out})")
    return 0


def cmd_release(a) -> int:
    from ..load.channel import shipped_path
    from ..publish.release import release
    if not a.to.startswith("hf://") or "/" in a.to[len("hf://"):].strip("/"):
        raise ZooError(f"zoo release --to expects hf://ORG (one repository per model is made there), got {a.to!r}")
    result = release(a.to[len("hf://"):].strip("/"), a.store, a.channel_out or shipped_path(), a.names or None,
                     a.method or None, a.lock, progress=not a.quiet)
    print("\n".join(result.lines))
    return 0


def cmd_publish(a) -> int:
    from ..publish.mirror import publish
    print(publish(a.store, a.to, revision=a.revision, message=a.message))
    return 0


def cmd_bench(a) -> int:
    from ..ops.bench import bench
    from ..core.manifest import all_manifests
    bench(a.names or list(all_manifests()), a.source, a.runtime, a.method, a.warmup, a.repeat, a.threads, a.size,
          a.json, explicit=bool(a.names))
    return 0


def _image_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    if not (h.isdigit() and w.isdigit() and int(h) > 0 and int(w) > 0):
        raise argparse.ArgumentTypeError(f"expected HxW in pixels, like 480x640, got {text!r}")
    return int(h), int(w)


def _count(minimum: int):
    def parse(text: str) -> int:
        if not (text.isdigit() and int(text) >= minimum):
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return int(text)
    return parse


def cmd_serve(a) -> int:
    from ..serve import require_ray
    from ..serve.config import ServeSpec
    require_ray("zoo serve")
    spec = ServeSpec(a.model, a.runtime, a.method, a.source, a.threads, a.replicas, a.min_replicas, a.max_replicas)
    if a.config_out:
        from ..serve.config import write_config
        print(f"wrote {write_config(spec, a.config_out, a.host or '0.0.0.0', a.port)}: "
              f"deploy it with `serve deploy {a.config_out}`")
        return 0
    from ..serve.run import serve_forever
    return serve_forever(spec, a.host or "127.0.0.1", a.port, a.address)


def cmd_bench_serve(a) -> int:
    from ..serve import require_ray
    require_ray("zoo bench-serve")
    from ..serve.bench import bench_serve, table
    rows = bench_serve(a.model, a.source, a.runtime, a.method, a.threads, a.replicas, a.requests, a.port, a.image,
                       a.json)
    print(table(rows))
    return 0


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


def _source_args(p, model=True):
    if model:
        p.add_argument("--model", required=True, help="model name or alias")
    p.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "pytorch"])
    p.add_argument("--method", default=None, choices=LOADABLE)
    p.add_argument("--device", default="cpu")
    p.add_argument("--source", default=None, help="store dir, http(s) mirror URL or hf://ORG/REPO (default $ZOO_SOURCE)")
    p.add_argument("--revision", default=None, help="pin: index sha256 (mirror/bundle) or commit (hf://)")
    p.add_argument("--offline", action="store_true", help="never open a socket (also ZOO_OFFLINE=1)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo", description="Detection model zoo: build, verify, distribute and run exported torchvision detectors.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="models and their supported combinations")
    s.add_argument("--markdown", action="store_true", help="the README's support table")
    s.set_defaults(fn=cmd_list)
    s = sub.add_parser("info", help="one model's manifest (and store entry with --source)")
    s.add_argument("name")
    s.add_argument("--source", default=None)
    s.set_defaults(fn=cmd_info)
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
    s = sub.add_parser("eval", help="COCO mAP of eager and each stored artifact on a COCO-format dataset")
    s.add_argument("name")
    s.add_argument("--data", required=True, help="directory with images and a COCO instances JSON")
    s.add_argument("--source", default=None, help="store dir, mirror URL or hf://ORG/REPO (default $ZOO_SOURCE)")
    s.add_argument("--runtime", choices=["onnxruntime", "pytorch"], help="only this runtime's artifacts")
    s.add_argument("--method", choices=EXPORTED, help="only this method's artifact")
    s.add_argument("--revision", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_eval)
    s = sub.add_parser("new-manifest", help="write a starting manifest for a model of your own")
    s.add_argument("name", help="the model's name (lower-case letters, digits, _)")
    s.add_argument("--builder", required=True,
                   help="torchvision.models.detection.NAME or package.module:function returning a detection model")
    s.add_argument("--num-classes", type=_count(2), help="classes including the background (builder_args.num_classes)")
    s.add_argument("--categories", help="comma-separated label names, index 0 first (default __background__, class1, ...)")
    s.add_argument("--out", help="the file to write (default NAME.toml)")
    s.add_argument("--force", action="store_true", help="overwrite --out")
    s.set_defaults(fn=cmd_new_manifest)
    s = sub.add_parser("verify", help="re-hash a store, bundle or cache and replay reference inputs")
    s.add_argument("path")
    s.add_argument("name", nargs="?")
    s.add_argument("--runtime", choices=["onnxruntime", "pytorch"])
    s.add_argument("--no-replay", action="store_true", help="hashes and provenance only")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_verify)
    s = sub.add_parser("predict", help="run a model on an image, print detections, draw a picture")
    s.add_argument("image")
    _source_args(s)
    s.add_argument("--out", help="write the picture here (PNG)")
    s.add_argument("--top", type=int, default=10)
    s.set_defaults(fn=cmd_predict)
    s = sub.add_parser("path", help="print the local path of a verified artifact (for shell scripts and C++)")
    s.add_argument("model")
    _source_args(s, model=False)
    s.set_defaults(fn=cmd_path)
    s = sub.add_parser("download", help="write a self-contained bundle for air-gapped machines")
    s.add_argument("names", nargs="+")
    s.add_argument("--runtime", choices=["onnxruntime", "pytorch"])
    s.add_argument("--method", choices=LOADABLE)
    s.add_argument("--source", default=None, help="default $ZOO_SOURCE, else the official channel")
    s.add_argument("--revision", default=None)
    s.add_argument("--to", required=True)
    s.set_defaults(fn=cmd_download)
    s = sub.add_parser("import", help="fill the cache from a bundle made by `zoo download` (air-gapped machines)")
    s.add_argument("bundle")
    s.set_defaults(fn=cmd_import)
    s = sub.add_parser("pin", help="write a channel file pinning published hf:// repositories (commit + index sha256)")
    s.add_argument("specs", nargs="+", metavar="hf://ORG/REPO[@REVISION]")
    s.add_argument("--out", required=True, help="channel file to write (load it with ZOO_CHANNEL=FILE)")
    s.add_argument("--org", default=None)
    s.set_defaults(fn=cmd_pin)
    s = sub.add_parser("release", help="build with official weights, publish one Hub repository per model, pin them")
    s.add_argument("names", nargs="*", help="models (default: all)")
    s.add_argument("--to", required=True, help="hf://ORG")
    s.add_argument("--method", action="append", choices=EXPORTED, help="default: all")
    s.add_argument("--store", default="release-store", help="store directory to build into (default release-store)")
    s.add_argument("--lock", default=None, help="lock file (default STORE.lock.json)")
    s.add_argument("--channel-out", default=None, help="channel file to rewrite (default: the package's official.toml)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_release)
    s = sub.add_parser("publish", help="publish a store as a static mirror tree, to hf://ORG/REPO or hf://ORG")
    s.add_argument("store")
    s.add_argument("--to", required=True, help="directory, hf://ORG/REPO (the whole store) or hf://ORG (a repository per model)")
    s.add_argument("--revision", default="main", help="branch to commit to (hf://)")
    s.add_argument("--message", default=None)
    s.set_defaults(fn=cmd_publish)
    s = sub.add_parser("bench", help="latency, load time, memory and size of each artifact vs eager")
    s.add_argument("names", nargs="*")
    s.add_argument("--source", default=None, help="default $ZOO_SOURCE, else the official channel")
    s.add_argument("--runtime", choices=["onnxruntime", "pytorch"])
    s.add_argument("--method", choices=EXPORTED)
    s.add_argument("--warmup", type=_count(0), default=1, help="untimed calls after the first (default 1)")
    s.add_argument("--repeat", type=_count(1), default=5, help="timed calls (default 5)")
    s.add_argument("--threads", type=_count(1), default=2)
    s.add_argument("--size", type=_image_size, default=(480, 640), help="input HxW (default 480x640)")
    s.add_argument("--json", help="also write the figures as JSON here")
    s.set_defaults(fn=cmd_bench)
    s = sub.add_parser("cache", help="what the download cache holds (list), remove unreferenced blobs (prune), or all")
    s.add_argument("action", choices=["list", "prune", "clear"])
    s.add_argument("--dry-run", action="store_true", help="prune: only say what would be removed")
    s.add_argument("--cache-dir", default=None, help="the zoo home (default $ZOO_HOME, else ~/.cache/zoo)")
    s.set_defaults(fn=cmd_cache)
    s = sub.add_parser("serve", help="serve a model over HTTP on Ray Serve (or write a config for `serve deploy`)")
    s.add_argument("model", help="model name or alias")
    s.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "pytorch"])
    s.add_argument("--method", default=None, choices=LOADABLE)
    s.add_argument("--source", default=None, help="store, mirror URL or hf://ORG/REPO; every node must reach it")
    s.add_argument("--replicas", type=_count(1), default=1)
    s.add_argument("--min-replicas", type=_count(0), default=None, help="autoscaling lower bound (with --max-replicas)")
    s.add_argument("--max-replicas", type=_count(1), default=None, help="autoscaling upper bound")
    s.add_argument("--threads", type=_count(1), default=1, help="runtime threads (and CPUs held) per replica")
    s.add_argument("--host", default=None, help="HTTP host (default 127.0.0.1, in a --config-out file 0.0.0.0)")
    s.add_argument("--port", type=_count(1), default=8000)
    s.add_argument("--address", default=None, help="Ray cluster to serve on (default $RAY_ADDRESS or a local Ray)")
    s.add_argument("--config-out", metavar="FILE", help="write a Serve config for `serve deploy FILE` and exit")
    s.set_defaults(fn=cmd_serve)
    s = sub.add_parser("bench-serve", help="requests/s and p50/p95 served on Ray Serve (1, 2, 4 replicas) vs in-process")
    s.add_argument("model")
    s.add_argument("--source", default=None)
    s.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "pytorch"])
    s.add_argument("--method", default=None, choices=LOADABLE)
    s.add_argument("--threads", type=_count(1), default=1, help="runtime threads, in-process and per replica")
    s.add_argument("--replicas", type=_count(1), nargs="+", default=[1, 2, 4])
    s.add_argument("--requests", type=_count(1), default=40, help="timed requests per row (default 40)")
    s.add_argument("--port", type=_count(1), default=8011)
    s.add_argument("--image", help="JPEG/PNG to send (default: the shipped astronaut.jpg)")
    s.add_argument("--json", help="also write the figures as JSON here")
    s.set_defaults(fn=cmd_bench_serve)
    s = sub.add_parser("demo", help="build a small model offline, load it like a user, predict on the shipped image")
    s.add_argument("--model", default="ssdlite320_mobilenet_v3_large")
    s.add_argument("--out", default="zoo-demo")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    import signal
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `zoo list | head` ends quietly
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ZooError as e:
        print(f"zoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an environment problem: one line, the traceback on request
        import os
        if os.environ.get("ZOO_DEBUG"):
            raise
        from ..errors import first_line
        print(f"zoo: unexpected {type(e).__name__}: {first_line(e)}\nrun with ZOO_DEBUG=1 for the traceback",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
