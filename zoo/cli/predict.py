"""Commands that load a model as a user does: `zoo predict`, `zoo path`."""
from __future__ import annotations

import time
from pathlib import Path

from .options import add_source_args


def add_predict(sub) -> None:
    s = sub.add_parser("predict", help="run a model on an image, print detections, draw a picture")
    s.add_argument("image")
    add_source_args(s)
    s.add_argument("--out", help="write the picture here (PNG)")
    s.add_argument("--top", type=int, default=10)
    s.set_defaults(fn=cmd_predict)


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


def _load(a):
    from ..load.loader import load
    return load(a.model, runtime=a.runtime, method=a.method, device=a.device, source=a.source, revision=a.revision,
                offline=True if a.offline else None)


def add_path(sub) -> None:
    s = sub.add_parser("path", help="print the local path of a verified artifact (for shell scripts and C++)")
    s.add_argument("model")
    add_source_args(s, model=False)
    s.set_defaults(fn=cmd_path)


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
