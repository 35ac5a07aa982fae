"""COCO-style mAP of a loaded detector on a COCO-format dataset directory; pycocotools does the scoring (and
panoptic quality where the directory has a COCO panoptic JSON: panoptic_eval.py).

A dataset directory holds the instances JSON (``annotations.json``, or one ``annotations/instances*.json`` or one
``*.json``) and the images it names (``file_name`` relative to ``images/`` or to the directory). Model labels are
matched to the dataset's categories by name. Figures are in points (mAP x 100), like COCO's published numbers.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import schema
from ..errors import DataError
from .dataset_files import image_files

IOU_TYPES = {"bbox": "boxes", "segm": "masks", "keypoints": "keypoints"}  # pycocotools' name -> the output needed


@dataclass
class Dataset:
    root: Path
    annotations: Path
    doc: dict
    files: dict[int, Path]  # image id -> file

    @property
    def categories(self) -> dict[str, int]:
        return {c["name"]: c["id"] for c in self.doc["categories"]}


def _find_annotations(root: Path) -> Path | None:
    for pattern in ("annotations.json", "annotations/instances*.json", "*.json"):
        found = sorted(p for p in root.glob(pattern) if not p.name.startswith("panoptic"))  # (panoptic_eval's)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise DataError(f"{root}: several annotation files match {pattern} ({', '.join(f.name for f in found)}); "
                            f"keep one, or name it annotations.json")
    return None


def _annotations_file(root: Path) -> Path:
    found = _find_annotations(root)
    if found is None:
        raise DataError(f"{root}: no COCO instances JSON (expected annotations.json, annotations/instances*.json or "
                        "*.json)")
    return found


def open_dataset(directory: str | Path) -> Dataset:
    """Read and check the annotations and that every image exists; errors say which file and what was expected."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"--data {root}: not a directory (expected images and a COCO instances JSON)")
    path = _annotations_file(root)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text: {e}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{path}: key {key!r}: expected a list (COCO instances format), got {type(doc.get(key)).__name__}")
    schema.check("coco", doc, str(path), DataError, "fix the annotations (COCO instances format)")
    _check_ids(doc, path)
    return Dataset(root, path, doc, image_files(root, doc, path))


def _check_ids(doc: dict, path: Path) -> None:
    """Ids unique per list, and every annotation naming an image and a category the file has (pycocotools would
    silently keep one of two images with the same id, or fail deep inside with a KeyError)."""
    for key in ("images", "annotations", "categories"):
        seen: set = set()
        for n, item in enumerate(doc[key]):
            if item["id"] in seen:
                raise DataError(f"{path}: {key}[{n}].id: {item['id']} is used twice; each of the {key} needs its own id")
            seen.add(item["id"])
    images, categories = {im["id"] for im in doc["images"]}, {c["id"] for c in doc["categories"]}
    for n, a in enumerate(doc["annotations"]):
        for field, known in (("image_id", images), ("category_id", categories)):
            if a[field] not in known:
                raise DataError(f"{path}: annotations[{n}].{field}: {a[field]} is not the id of any of the file's "
                                f"{'images' if field == 'image_id' else 'categories'}")


def label_map(model_categories: list[str], dataset: Dataset) -> dict[int, int]:
    """Model label -> dataset category id, by name."""
    ids = dataset.categories
    mapping = {label: ids[name] for label, name in enumerate(model_categories) if name in ids}
    if not mapping:
        raise DataError(f"{dataset.annotations}: none of the dataset's categories ({', '.join(list(ids)[:8])}) is one "
                        f"of the model's ({', '.join(model_categories[:8])}); labels are matched by name")
    return mapping


def iou_types(keys: list[str], dataset: Dataset) -> list[str]:
    """bbox always; segm / keypoints where the model outputs them and the dataset annotates them."""
    annotated = {"segm": "segmentation", "keypoints": "keypoints"}
    return [t for t, out in IOU_TYPES.items() if out in keys
            and (t == "bbox" or any(annotated[t] in a for a in dataset.doc["annotations"]))]


def _results(image_id: int, det: dict, mapping: dict[int, int], types: list[str]) -> list[dict]:
    from pycocotools import mask as mask_utils
    out = []
    for i, label in enumerate(np.asarray(det["labels"]).tolist()):
        if label not in mapping:
            continue
        x0, y0, x1, y1 = (float(v) for v in det["boxes"][i])
        r = {"image_id": image_id, "category_id": mapping[label], "bbox": [x0, y0, x1 - x0, y1 - y0],
             "score": float(det["scores"][i])}
        if "segm" in types:
            rle = mask_utils.encode(np.asfortranarray((np.asarray(det["masks"][i, 0]) > 0.5).astype(np.uint8)))
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        if "keypoints" in types:
            r["keypoints"] = np.asarray(det["keypoints"][i], dtype=np.float64).reshape(-1).tolist()
        out.append(r)
    return out


def open_datasets(directory: str | Path):
    """The directory's COCO instances dataset and COCO panoptic dataset (``panoptic_eval``): either may be absent
    (None), not both."""
    from .panoptic_eval import find, open_panoptic
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"--data {root}: not a directory (expected images and a COCO instances or panoptic JSON)")
    panoptic_json = find(root)
    panoptic = None if panoptic_json is None else open_panoptic(root, panoptic_json)
    if panoptic is not None and _find_annotations(root) is None:
        return None, panoptic
    return open_dataset(root), panoptic


def evaluate(detector, dataset: Dataset | None, desc: str = "eval", progress: bool = True, panoptic=None,
             stuff: list[str] | None = None) -> dict[str, dict[str, float]]:
    """{iou type: {"map": mAP@[.5:.95], "map50": mAP@.5}} in points, over every image of ``dataset``; with a
    ``panoptic`` dataset (panoptic_eval) and a panoptic model (``stuff``: its sem_seg channels' names), also
    {"panoptic": {"pq", "sq", "rq", "pq_th", ...}}. Each image file is run once."""
    from tqdm.auto import tqdm

    from ..ops.viz import read_image

    if dataset is not None:
        label_map(detector.categories, dataset)  # no common category: say so before running the model
    panoptic = panoptic if panoptic is not None and "panoptic_seg" in detector.keys else None
    if dataset is None and panoptic is None:
        raise DataError(f"{detector.name} has no panoptic output and the data has no COCO instances JSON: give "
                        "annotations.json (COCO instances) to score its detections")
    files = sorted({f for d in (dataset, panoptic) if d is not None for f in d.files.values()})
    outputs = {f: detector([read_image(f)])[0] for f in tqdm(files, desc=desc, unit="img", disable=not progress,
                                                              file=sys.stderr, leave=False)}
    scores = {} if dataset is None else score(dataset, {i: outputs[f] for i, f in dataset.files.items()},
                                              detector.categories, detector.keys)
    if panoptic is not None:
        from .panoptic_eval import score as pq
        scores["panoptic"] = pq(panoptic, {i: outputs[f] for i, f in panoptic.files.items()}, detector.categories,
                                stuff or [])
    return scores


def score(dataset: Dataset, detections: dict[int, dict], categories: list[str], keys: list[str]) -> dict[str, dict[str, float]]:
    """pycocotools' mAP of ``detections`` (image id -> torchvision-style outputs, numpy) against ``dataset``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    mapping = label_map(categories, dataset)
    types = iou_types(keys, dataset)
    results = [r for image_id, det in sorted(detections.items()) for r in _results(image_id, det, mapping, types)]
    scores = {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and summary tables
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset.doc)  # COCOeval rewrites the ground truth's segmentations in place
        gt.createIndex()
        for t in types:
            if not results:
                scores[t] = {"map": 0.0, "map50": 0.0}
                continue
            ev = COCOeval(gt, gt.loadRes(results), iouType=t)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            scores[t] = {"map": round(max(0.0, float(ev.stats[0])) * 100, 3),
                         "map50": round(max(0.0, float(ev.stats[1])) * 100, 3)}
    return scores


HEADLINE = {"panoptic": "pq"}  # the figure an artifact is held to, per type (mAP for the others)


def differences(eager: dict, other: dict) -> dict[str, float]:
    """Per iou type: the artifact's mAP (PQ for panoptic) minus eager's, in points."""
    return {t: round(other[t][HEADLINE.get(t, "map")] - eager[t][HEADLINE.get(t, "map")], 3) for t in eager}


def _columns(t: str, v: dict, diff: str) -> dict:
    if t == "panoptic":
        return {"PQ": f"{v['pq']:.2f}", "SQ": f"{v['sq']:.2f}", "RQ": f"{v['rq']:.2f}", "PQ vs eager": diff}
    return {f"{t} mAP": f"{v['map']:.2f}", f"{t} mAP50": f"{v['map50']:.2f}", f"{t} vs eager": diff}


def evaluate_store(name: str, data: str | Path, source=None, runtime: str | None = None, method: str | None = None,
                   revision: str | None = None, progress: bool = True):
    """Eager and each of the store's artifacts of ``name`` (optionally one runtime / method) on ``data``: returns the
    manifest and one row per artifact (eager first) with mAP per iou type and the difference from eager."""
    from ..load.loader import load, manifest_for
    from ..load.sources import open_source

    dataset, panoptic = open_datasets(data)  # a broken dataset fails before any model loads
    src = open_source(source)
    index = src.index(revision)
    manifest = manifest_for(name, index, src.description)
    entry = index.get("models", {}).get(manifest.name)
    if entry is None:
        from ..errors import NotAvailableError
        raise NotAvailableError(f"{manifest.name} is not in {src.description}; build it first (zoo build ... --out STORE)")
    chosen = [a for a in entry["artifacts"] if a["method"] != "eager" and (runtime is None or a["runtime"] == runtime)
              and (method is None or a["method"] == method)]
    rows, eager = [], None
    for rt, m in [("pytorch", "eager")] + [(a["runtime"], a["method"]) for a in chosen]:
        detector = load(manifest.name, runtime=rt, method=m, source=source, revision=revision)
        scores = evaluate(detector, dataset, desc=f"{manifest.name} {rt}/{m}", progress=progress, panoptic=panoptic,
                          stuff=manifest.weights.get("stuff_categories"))
        eager = eager or scores
        diffs = differences(eager, scores)
        row = {"artifact": f"{rt}/{m}"}
        for t, v in scores.items():
            row.update(_columns(t, v, "reference" if m == "eager" else f"{diffs[t]:+.2f}"))
        row["ok"] = not manifest.map_off(m, diffs)
        rows.append(row)
    return manifest, rows
