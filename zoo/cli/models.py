"""Commands about the models themselves: `zoo list`, `zoo info`, `zoo new-manifest`."""
from __future__ import annotations

import json

from ..core.store import payload
from .options import LOADABLE, RUNTIMES, count_arg, table


def add_list(sub) -> None:
    s = sub.add_parser("list", help="models and their supported combinations (zoo list mask_rcnn, --method onnx)")
    s.add_argument("models", nargs="*", metavar="MODEL", help="only these models (names or aliases)")
    s.add_argument("--method", choices=LOADABLE, help="only this method")
    s.add_argument("--runtime", choices=RUNTIMES, help="only this runtime")
    s.add_argument("--markdown", action="store_true", help="the README's support table (every row, full reasons)")
    s.add_argument("--detectron2", action="store_true",
                   help="detectron2's model zoo entries instead (built by name: zoo build NAME --weights official)")
    s.set_defaults(fn=cmd_list)


def cmd_list(a) -> int:
    from ..core.manifest import D2_COLLECTION, resolve, support_markdown, support_rows
    collection = D2_COLLECTION if a.detectron2 else None
    if a.markdown:
        print(support_markdown(collection=collection))
        return 0
    names = {resolve(n).name for n in a.models}  # a typo gets its "did you mean"
    every = support_rows(collection=collection) + (support_rows(collection=D2_COLLECTION) if names and not collection else [])
    rows = [r for r in every if (not names or r["model"] in names) and (a.method is None or r["method"] == a.method)
            and (a.runtime is None or r["runtime"] == a.runtime)]
    if not rows:
        print("no combination matches (zoo list with no filter shows them all)")
        return 0
    refused = False
    for r in rows:  # one short cell: the reason is in `zoo info MODEL`
        if r["status"].startswith("unsupported"):
            r["status"], refused = "unsupported (zoo info)", True
        elif r["status"].startswith("supported (built when asked"):
            r["status"] = "supported (when asked)"
        r["format"] = r["format"].replace(" (opset ", " ").replace(", dynamo exporter)", "").replace(
            ", legacy exporter)", " legacy")
    print(table(rows, ["model", "alias", "method", "runtime", "format", "batch", "devices", "status"]))
    if refused:
        print("\nwhy a combination is unsupported, with the figures: zoo info MODEL")
    return 0


def add_info(sub) -> None:
    s = sub.add_parser("info", help="one model's manifest (and store entry with --source)")
    s.add_argument("name")
    s.add_argument("--source", default=None)
    s.set_defaults(fn=cmd_info)


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
        digest = f"sha256 {w['sha256']}..." if "sha256" in w else "sha256 trusted on first use (detectron2 publishes none)"
        print(f"official weights: {w['url']}  {digest}  license {w.get('license')}")
    if w.get("checkpoint") == "detectron2":
        print(f"detectron2 config: {w.get('config')} (its checkpoint is converted when built)")
    if "metrics" in w:
        print(f"COCO val2017: {', '.join(f'{k} {v}' for k, v in w['metrics'].items())}   params {w.get('num_params')}")
    print(f"input:    {json.dumps(m.input)}")
    print(f"outputs:  {', '.join(m.outputs)}   categories: {len(m.categories)}")
    for e in m.exports:
        opset = f" opset {e.opset} ({e.exporter} exporter)" if e.opset else ""
        print(f"export:   {e.method:9s} -> {e.runtime:11s} {e.format}{opset}, batch {e.batch_text}, "
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
            print(f"  artifact {art['runtime']}/{art['method']}: {payload(art)['path']}"
                  + (f", parity min matched {par:.3f}" if par is not None else " (reference)")
                  + (f", agreement AP50 {art['accuracy']['ap50']:.3f} AP {art['accuracy']['ap']:.3f} with eager (its gate)"
                     if "accuracy" in art else ""))
    return 0


def add_new_manifest(sub) -> None:
    s = sub.add_parser("new-manifest", help="write a starting manifest for a model of your own")
    s.add_argument("name", help="the model's name (lower-case letters, digits, _)")
    s.add_argument("--builder", required=True,
                   help="torchvision.models.detection.NAME or package.module:function returning a detection model")
    s.add_argument("--num-classes", type=count_arg(2), help="classes including the background (builder_args.num_classes)")
    s.add_argument("--categories", help="comma-separated label names, index 0 first (default __background__, class1, ...)")
    s.add_argument("--out", help="the file to write (default NAME.toml)")
    s.add_argument("--force", action="store_true", help="overwrite --out")
    s.set_defaults(fn=cmd_new_manifest)


def cmd_new_manifest(a) -> int:
    from ..build.scaffold import write
    categories = [c.strip() for c in a.categories.split(",")] if a.categories else None
    path = a.out or f"{a.name}.toml"
    doc = write(a.name, a.builder, path, a.num_classes, categories, a.force)
    print(f"wrote {path}: outputs = [{', '.join(doc['outputs'])}] (read from the model {a.builder} makes), "
          f"{len(doc['weights']['categories'])} categories; check builder_args, input, parity and export, then: "
          f"zoo build --manifest {path} --weights CHECKPOINT --out STORE")
    return 0
