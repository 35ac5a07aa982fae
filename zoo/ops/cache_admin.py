"""`zoo cache list | prune | clear`: what the download cache under ZOO_HOME holds, and removing what no index needs.

Blobs (``blobs/sha256/..``) are kept for the indexes recorded in ``indexes/`` (every index fetched through the
cache). Each blob is removed under its own lock, the one a fetch takes, so a concurrent download is never cut."""
from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..core import store
from ..errors import IntegrityError, ZooError
from ..load.sources.cache import MARKER, Cache

LAYOUT = ("blobs", "indexes", "official", "hub", "verified")  # the only directories clear removes
TRUSTED = store.TRUSTED_CHECKPOINTS  # kept by clear


def _require_zoo_home(home: Path) -> None:
    """Deleting happens only where zoo marked the directory as its own (sources/cache.py mark_home)."""
    if not (home / MARKER).is_file():
        raise ZooError(f"{home} is not a zoo home (it has no {MARKER} marker, which zoo writes into every cache it "
                       "creates): refusing to delete anything there. Check ZOO_HOME / --cache-dir; if this really is "
                       f"a zoo cache made by an older zoo, create the marker: touch {home / MARKER}")


@dataclass
class Blob:
    path: Path
    size: int
    uses: list[tuple[str, str]]    # (model, file path in the store) of every recorded index listing it


def recorded_uses(home: Path) -> dict[str, list[tuple[str, str]]]:
    """sha256 -> [(model, path)] over every index the cache recorded; an unreadable index is skipped with a warning."""
    uses: dict[str, set] = {}
    for copy in sorted((Path(home) / "indexes").glob("*.json")):
        try:
            index = store.read_index_bytes(copy.read_bytes(), str(copy))
        except (OSError, IntegrityError) as e:
            warnings.warn(f"skipping {copy}: {e}", stacklevel=2)
            continue
        for name, entry in index["models"].items():
            for record in store.iter_files({"models": {name: entry}}):
                uses.setdefault(record["sha256"], set()).add((name, record["path"]))
    return {k: sorted(v) for k, v in uses.items()}


def blobs(home: Path) -> list[Blob]:
    uses = recorded_uses(home)
    out = []
    for path in sorted((Path(home) / "blobs" / "sha256").glob("*/*")):
        if store.DIGEST.fullmatch(path.name) and path.is_file():
            out.append(Blob(path, path.stat().st_size, uses.get(path.name, [])))
    return out


def human(size: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


def list_rows(home: Path) -> list[dict]:
    """One row per cached blob and model using it (like ``hf cache ls``), unreferenced blobs last."""
    rows = []
    for b in blobs(home):
        for model, rel in b.uses or [("(no recorded index)", "-")]:
            rows.append({"model": model, "file": rel, "size": human(b.size), "sha256": b.path.name[:12],
                         "_bytes": b.size})
    rows.sort(key=lambda r: (r["model"].startswith("("), r["model"], r["file"]))
    return rows


def extra_dirs(home: Path) -> list[tuple[str, int]]:
    """Other cached trees: official checkpoints, huggingface_hub's cache, verified-file stamps."""
    out = []
    for name in ("official", "hub", "verified"):
        d = Path(home) / name
        if d.is_dir():
            out.append((name, sum(p.stat().st_size for p in d.rglob("*") if p.is_file() and not p.is_symlink())))
    return out


def _remove_blob(cache: Cache, path: Path) -> None:
    with cache.lock(path.name):  # the fetch's own lock: never under a download in progress
        path.unlink(missing_ok=True)
    # the lock file stays: deleting it could let a process waiting on it and a new one both hold "the" lock


def prune(home: Path, dry_run: bool = False) -> list[Blob]:
    """Remove the blobs no recorded index lists; returns them (with ``dry_run``, only returns them)."""
    home = Path(home)
    if not home.is_dir():
        return []
    _require_zoo_home(home)
    cache = Cache(home)
    with FileLock(str(home / "cache.lock")):
        gone = [b for b in blobs(home) if not b.uses]
        if not dry_run:
            for b in gone:
                _remove_blob(cache, b.path)
    return gone


def clear(home: Path, dry_run: bool = False) -> int:
    """Remove everything the cache holds (blobs, recorded indexes, stamps, official checkpoints, Hub copies), in a
    marked zoo home only, but the record of checkpoint digests trusted on first use (TRUSTED); returns the bytes
    freed (with ``dry_run``, that would be freed, removing nothing)."""
    home = Path(home)
    if not home.is_dir():
        return 0
    _require_zoo_home(home)
    freed = sum(b.size for b in blobs(home)) + sum(size for _, size in extra_dirs(home))
    if dry_run:
        return freed
    cache = Cache(home)
    with FileLock(str(home / "cache.lock")):
        for b in blobs(home):
            _remove_blob(cache, b.path)
        for name in ("indexes", "official", "hub", "verified"):
            shutil.rmtree(home / name, ignore_errors=True)
    return freed
