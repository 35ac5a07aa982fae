"""Model cards (README.md per model), with the Hugging Face Hub's YAML metadata block."""
from __future__ import annotations

from ..core.manifest import Manifest


def model_card(manifest: Manifest, entry: dict) -> str:
    w = entry["weights"]
    random, own = w["kind"] == "random", w["kind"] == "file"
    metrics = {} if own else manifest.weights.get("metrics", {})
    origin = "detectron2" if manifest.weights.get("checkpoint") == "detectron2" else "torchvision"
    yaml = ["---", f"license: {manifest.weights.get('license', 'other').lower()}", "library_name: zoo",
            "pipeline_tag: object-detection", "tags:", "- object-detection", f"- {origin}", "- onnx", "- torchscript",
            f"- {manifest.family}"] + ([] if own else ["datasets:", "- detection-datasets/coco"])
    if random:
        yaml += ["- seeded-random-weights"]
    elif metrics:
        yaml += ["model-index:", f"- name: {manifest.name}", "  results:", "  - task:", "      type: object-detection",
                 "    dataset:", "      name: COCO val2017", "      type: detection-datasets/coco", "    metrics:"]
        yaml += [f"    - type: {k}\n      value: {v}" for k, v in sorted(metrics.items())]
    yaml.append("---")
    provenance = (f"**Seeded random weights** (seed {w['seed']}, recipe v{w['recipe']['recipe_version']}): built offline, "
                  "the detections are meaningless; use them to test deployment, not to detect objects."
                  if random else f"the checkpoint `{w['file_name']}` (sha256 `{w['source_sha256']}`), not torchvision's "
                  "official weights." if own else f"Official detectron2 weights (its COCO model zoo, `{w.get('config')}`) from "
                  f"{w.get('url')}, checkpoint sha256 `{w.get('checkpoint_sha256')}`, converted by zoo." if origin ==
                  "detectron2" else f"Official torchvision weights `{w.get('enum')}` from {w.get('url')}.")
    rows = ["| method | runtime | format | batch | devices | parity (min matched) |", "|---|---|---|---|---|---|"]
    for a in entry["artifacts"]:
        batch = "dynamic" if a["batch"] is None else f"fixed {a['batch']}"
        par = "reference" if a["method"] == "eager" else f"{a['parity']['min_matched_fraction']:.2f}" + (
            f" (approximate: gated on agreement AP50 {a['accuracy']['ap50']:.2f} with eager)" if "accuracy" in a else "")
        rows.append(f"| {a['method']} | {a['runtime']} | {a['format']} | {batch} | {', '.join(a['devices'])} | {par} |")
    official = ", ".join(f"{k} {v}" for k, v in sorted(metrics.items()))
    evaluated = entry.get("eval")
    body = [
        f"# {manifest.name}", "", manifest.description, "", f"Weights: {provenance}",
        f"Weights file sha256: `{w['sha256']}`.", "",
        *([f"Official COCO val2017 metrics of the {origin} weights: {official} (they apply to official weights only).", ""]
          if metrics else []),
        *([f"COCO-style mAP of eager PyTorch on `{evaluated['dataset']}` ({evaluated['images']} images): "
           + ", ".join(f"{t} {v['map']:.1f}" for t, v in evaluated["eager"].items()) + ".", ""] if evaluated else []),
        "## Artifacts", "", *rows, "",
        "## Use", "", "```python", "import zoo", f'model = zoo.load("{manifest.name}", runtime="onnxruntime", source="<this store>")',
        "detections = model([image])  # image: float [3, H, W] in [0, 1]", "```", "",
        f"Categories: {len(manifest.categories)} ({', '.join(manifest.categories[:6])}, ...).", "",
    ]
    return "\n".join(yaml + body)
