"""Panoptic quality (PQ, SQ, RQ) of a loaded panoptic model on a COCO panoptic dataset: panopticapi's ``pq_compute``
as hotcoco reproduces it (``hotcoco.panoptic.pq_compute``: same arguments, same results).

A dataset directory holds ``panoptic.json`` (or one ``annotations/panoptic*.json``; panopticapi's format: images,
per-image annotations with their PNG's ``file_name`` and ``segments_info``, categories with ``isthing``), its PNGs in
the folder of the JSON's name without ``.json`` (panopticapi's convention: ``panoptic/``), and the images it names
(``file_name`` under ``images/`` or the directory). The model's segments are matched to the dataset's categories by
name: a thing's label name (``weights.categories``), a stuff's sem_seg channel name (``weights.stuff_categories``);
pixels of a segment whose name the dataset lacks are left void. Figures are in points (x 100), as published."""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import schema
from ..errors import DataError, MissingExtraError
from .dataset_files import image_files


@dataclass
class PanopticDataset:
    root: Path
    annotations: Path
    pngs: Path
    doc: dict
    files: dict[int, Path]  # image id -> image file


def find(root: Path) -> Path | None:
    """The directory's panoptic JSON, if it has one."""
    found = [root / "panoptic.json"] if (root / "panoptic.json").is_file() else \
        sorted((root / "annotations").glob("panoptic*.json"))
    if len(found) > 1:
        raise DataError(f"{root}: several panoptic annotation files ({', '.join(f.name for f in found)}); keep one, "
                        "or name it panoptic.json")
    return found[0] if found else None


def open_panoptic(root: Path, path: Path) -> PanopticDataset:
    """Read and check the panoptic JSON, its PNGs and images (found as the instances reader finds them)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid UTF-8 JSON: {e}") from None
    schema.check("coco_panoptic", doc, str(path), DataError, "fix the annotations (COCO panoptic format)")
    pngs = path.with_suffix("")
    missing = [a["file_name"] for a in doc["annotations"] if not (pngs / a["file_name"]).is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} PNG(s) missing under {pngs} (panopticapi's folder: the JSON's name "
                        f"without .json): {', '.join(missing[:5])}")
    return PanopticDataset(root, path, pngs, doc, image_files(root, doc, path))


def category_ids(dataset: PanopticDataset, things: list[str], stuff: list[str]) -> tuple[dict, dict]:
    """(thing label -> category id, sem_seg channel -> category id), by name and kind."""
    kinds = {(c["name"], bool(c["isthing"])): c["id"] for c in dataset.doc["categories"]}
    thing_ids = {label: kinds[(n, True)] for label, n in enumerate(things) if (n, True) in kinds}
    stuff_ids = {channel: kinds[(n, False)] for channel, n in enumerate(stuff) if (n, False) in kinds}
    if not thing_ids and not stuff_ids:
        raise DataError(f"{dataset.annotations}: none of its categories is one of the model's things or stuff "
                        f"({', '.join(things[1:5])}, ...; {', '.join(stuff[1:5])}, ...); they are matched by name")
    return thing_ids, stuff_ids


def prediction(det: dict, thing_ids: dict, stuff_ids: dict) -> tuple[np.ndarray, list[dict]]:
    """A model's panoptic output as panopticapi's: the (H, W, 3) uint8 PNG of its ids and its segments (only those
    of the dataset's categories, with pixels)."""
    ids = np.asarray(det["panoptic_seg"]).astype(np.int64)
    segments, kept = [], np.zeros(ids.max() + 1 if ids.size else 1, bool)
    for seg_id, category, isthing, _, _ in np.asarray(det["segments_info"]).tolist():
        category_id = (thing_ids if isthing else stuff_ids).get(category)
        if category_id is not None and (ids == seg_id).any():
            segments.append({"id": seg_id, "category_id": category_id, "iscrowd": 0})
            kept[seg_id] = True
    ids = np.where(kept[ids], ids, 0)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8), segments


def score(dataset: PanopticDataset, outputs: dict[int, dict], things: list[str], stuff: list[str]) -> dict:
    """PQ, SQ, RQ (all, things, stuff) of ``outputs`` (image id -> a panoptic model's outputs, numpy) in points."""
    try:
        from hotcoco import panoptic
    except ImportError:
        raise MissingExtraError("panoptic quality needs hotcoco (panopticapi's pq_compute): pip install "
                                "'zoo[eval]'") from None
    from PIL import Image

    thing_ids, stuff_ids = category_ids(dataset, things, stuff)
    annotations = {a["image_id"]: a for a in dataset.doc["annotations"]}
    with tempfile.TemporaryDirectory(prefix="zoo-pq-") as tmp:
        folder = Path(tmp) / "pred"
        folder.mkdir()
        predicted = []
        for image_id, det in sorted(outputs.items()):
            png, segments = prediction(det, thing_ids, stuff_ids)
            name = annotations[image_id]["file_name"]
            Image.fromarray(png).save(folder / name)
            predicted.append({"image_id": image_id, "file_name": name, "segments_info": segments})
        pred_json = Path(tmp) / "pred.json"
        pred_json.write_text(json.dumps({"annotations": predicted, "categories": dataset.doc["categories"]}))
        with contextlib.redirect_stdout(io.StringIO()):  # pq_compute prints its table
            results = panoptic.pq_compute(str(dataset.annotations), str(pred_json), str(dataset.pngs), str(folder))
    return {f"{k.lower()}{suffix}": round(100 * float(results[part][k]), 3)
            for part, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")) for k in ("pq", "sq", "rq")}
