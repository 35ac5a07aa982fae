"""The images a COCO-format annotation file names (instances or panoptic), found in its dataset directory."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..errors import DataError


def image_files(root: Path, doc: dict, path: Path) -> dict[int, Path]:
    """Image id -> file, for every image ``doc`` (read from ``path``) names: under images/ or the directory."""
    files, missing = {}, []
    for n, im in enumerate(doc["images"]):
        name = PurePosixPath(im["file_name"])
        if name.is_absolute() or ".." in name.parts or "\\" in im["file_name"]:
            raise DataError(f"{path}: images[{n}].file_name: expected a file name inside {root} (relative, no '..'), "
                            f"got {im['file_name']!r}")
        found = [p for p in (root / "images" / im["file_name"], root / im["file_name"]) if p.is_file()]
        if found:
            files[im["id"]] = found[0]
        else:
            missing.append(im["file_name"])
    if missing:
        raise DataError(f"{path}: {len(missing)} image(s) missing under {root / 'images'} or {root}: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return files
