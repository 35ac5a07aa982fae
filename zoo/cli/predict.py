"""Commands that load a model as a user does: `zoo predict`, `zoo path`."""
from __future__ import annotations

import time
from pathlib import Path

from ..core.store import payload
from .options import add_source_args, count_arg, score_arg


def add_predict(sub) -> None:
    s = sub.add_parser("predict", help="run a model on an image, print detections, draw a picture")
    s.add_argument("image")
    add_source_args(s)
    s.add_argument("--out", help="write the picture here (PNG; a panoptic model's segments also to OUT.panoptic.png)")
    s.add_argument("--top", type=count_arg(1), default=10, help="list and draw at most this many detections, best "
                   "first (default 10)")
    s.add_argument("--threshold", type=score_arg, default=0.5, help="list and draw only detections with at least this "
                   "score (default 0.5; the model itself returns everything above its own score_thresh)")
    s.add_argument("--repeat", type=count_arg(0), default=3, help="warm calls after the first, whose median is the "
                   "timing shown (default 3)")
    s.set_defaults(fn=cmd_predict)


RANDOM_BANNER = "SEEDED RANDOM WEIGHTS: these boxes are meaningless (the tool works; the model is untrained)"


def cmd_predict(a) -> int:
    from ..ops import viz
    from ..core.timing import timed_calls
    t0 = time.perf_counter()
    model = _load(a)
    t_load = time.perf_counter() - t0
    image = viz.read_image(a.image)
    runs, timing = timed_calls(lambda im: model([im])[0], [image] * (1 + a.repeat))
    det = runs[0]
    weights = model.info["weights"]
    art = model.info["artifact"]
    keep = viz.shown(det, a.threshold, a.top)
    print(f"{model.info['model']} {art['runtime']}/{art['method']} from {model.info['source']} "
          f"({model.info['origin']}): {len(det['scores'])} detections, {timing.text()}, load {t_load:.2f}s")
    if weights["kind"] == "random":
        print(f"NOTE: seeded random weights (seed {weights['seed']}): the detections below are meaningless")
    agreement = model.info.get("metadata", {}).get("accuracy", {}).get("agreement")
    if agreement:
        print(f"approximate artifact, gated at build on agreement AP with eager: AP50 {agreement['ap50']:.3f}, AP "
              f"{agreement['ap']:.3f} on {agreement['images']} images (parity below is recorded, not gated)")
    if "parity" in art:
        par = model.info.get("metadata", {}).get("parity", {}).get("results", {})
        for k, r in par.items():
            apart = r.get("tied_images", 0)
            print(f"parity vs eager at build ({k}): {r['detections']} detections on {r['images']} images, the worst "
                  f"image {r['min_matched_fraction']:.0%} matched"
                  + (f" ({apart} constant or tied-score image{'s' if apart > 1 else ''} checked for shapes only)"
                     if apart else "")
                  + f"; max box diff {r['max_box_diff']:.3g}px, max score diff {r['max_score_diff']:.3g}")
    print(f"{len(keep)} of {len(det['scores'])} detections with score >= {a.threshold:g} (--threshold):")
    for i in keep:
        box = ", ".join(f"{v:.1f}" for v in det["boxes"][i])
        print(f"  {viz.label_name(model.categories, int(det['labels'][i])):16s} {float(det['scores'][i]):.3f}  [{box}]")
    stuff = model.info.get("manifest", {}).get("weights", {}).get("stuff_categories", [])
    if "panoptic_seg" in det:
        segments = det["segments_info"]
        things = int(segments[:, 2].sum()) if len(segments) else 0
        print(f"panoptic: {len(segments)} segments ({things} things, {len(segments) - things} stuff)")
    if a.out:
        title = f"{model.info['model']} {art['runtime']}/{art['method']}"
        banner = RANDOM_BANNER if weights["kind"] == "random" else ""
        print(f"picture: {viz.draw(image, det, model.categories, a.out, a.threshold, title, banner, a.top)}")
        if "panoptic_seg" in det:
            out = Path(a.out).with_suffix(".panoptic.png")
            print(f"panoptic picture: {viz.draw_panoptic(image, det, model.categories, stuff, out, title, banner)}")
    return 0


def _load(a):
    import warnings

    from ..errors import SeededWeightsWarning
    from ..load.loader import load
    with warnings.catch_warnings():  # the commands say so in their own words (and in the picture)
        warnings.simplefilter("ignore", SeededWeightsWarning)
        return load(a.model, runtime=a.runtime, method=a.method, device=a.device, source=a.source,
                    revision=a.revision, offline=True if a.offline else None, trust_code=a.trust_code)


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
    return src.fetch(payload(entry["artifact"]))
