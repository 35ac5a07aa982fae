"""The store format: index.json, file records (path, size, sha256), safe relative paths, streaming hashes.

A store is a directory::

    index.json                          every model and artifact, with size + sha256 of each file
    models/NAME/weights.safetensors     the exact weights the artifacts were exported from
    models/NAME/README.md               model card
    models/NAME/METHOD/model.{pt,onnx}  the artifact
    models/NAME/METHOD/metadata.json    provenance and parity results
    models/NAME/METHOD/reference.npz    the parity inputs and eager outputs, replayed by `zoo verify`

Everything is written canonically (sorted keys, no timestamps, no absolute paths) so a rebuild is byte-identical.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, TypeVar

from .errors import IntegrityError, NotAvailableError

FORMAT = "zoo-store/1"
INDEX = "index.json"
T = TypeVar("T")


def sha256_file(path: str | Path, hashing: threading.Event | None = None) -> str:
    """One hashlib call over a read-only mmap of the file: hashlib releases the GIL for the whole call, so another
    thread (a runtime loading the same file) runs alongside it. ``hashing`` is set just before that call."""
    with open(path, "rb") as f:
        empty = os.fstat(f.fileno()).st_size == 0  # mmap refuses an empty file
        with contextlib.nullcontext(b"") if empty else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            if hashing:
                hashing.set()
            return hashlib.sha256(view).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; a store is served and shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_relpath(rel: str) -> str:
    """An index path must stay inside the store: relative, POSIX, no '..', no drive, no empty parts."""
    if not isinstance(rel, str) or not rel:
        raise IntegrityError(f"index path {rel!r} is not a non-empty string")
    p = PurePosixPath(rel)
    if p.is_absolute() or "\\" in rel or ":" in rel or any(part in ("..", ".", "") for part in rel.split("/")):
        raise IntegrityError(f"index path {rel!r} leaves the store (absolute, '..' or not a plain relative path): refused")
    return str(p)


def file_record(root: Path, rel: str) -> dict:
    rel = safe_relpath(rel)
    full = Path(root) / rel
    return {"path": rel, "size": full.stat().st_size, "sha256": sha256_file(full)}


def check_digest(path: Path, expected: str, name: str) -> None:
    _check(sha256_file(path), expected, name)


def _check(actual: str, expected: str, name: str) -> None:
    if actual != expected:
        raise IntegrityError(f"sha256 mismatch for {name}: index says {expected}, file has {actual}; refusing to load it")


def load_verified(path: Path, expected: str, name: str, load: Callable[[Path], T], stamp_home: Path | None = None) -> T:
    """``load(path)`` while another thread hashes the file; the loaded object is returned only if the sha256 matches
    (otherwise IntegrityError, also when the load itself failed on the bad bytes). The runtimes' loaders read the file
    at about the speed of SHA-256, so overlapping the two makes a verified load cost about what an unverified one does.
    With ``stamp_home`` (a zoo home), a file verified before and unchanged since (see zoo/stamps.py) is not hashed
    again, and a file that passes is stamped."""
    from . import stamps  # stamps writes through this module's atomic_write

    if stamp_home is not None and stamps.is_verified(stamp_home, path, expected):
        return load(path)
    before = os.stat(path)
    found: dict = {}
    hashing = threading.Event()

    def digest() -> None:
        try:
            found["sha256"] = sha256_file(path, hashing)
        except OSError as e:
            found["error"] = e
        finally:
            hashing.set()

    thread = threading.Thread(target=digest, name="zoo-sha256", daemon=True)
    thread.start()
    hashing.wait()
    try:
        loaded = load(path)
    except BaseException:
        thread.join()
        if "sha256" in found:
            _check(found["sha256"], expected, name)  # bad bytes explain the failure better than the runtime's error
        raise
    thread.join()
    if "error" in found:
        raise found["error"]
    _check(found["sha256"], expected, name)
    if stamp_home is not None:
        stamps.remember(stamp_home, path, expected, before)
    return loaded


def read_index_bytes(data: bytes, where: str) -> dict:
    try:
        index = json.loads(data)
    except ValueError as e:
        raise IntegrityError(f"{where}: index is not valid JSON ({e})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise IntegrityError(f"{where}: not a zoo store index (expected \"format\": \"{FORMAT}\")")
    for record in iter_files(index):
        safe_relpath(record.get("path"))
        if not isinstance(record.get("sha256"), str) or len(record["sha256"]) != 64:
            raise IntegrityError(f"{where}: index entry {record.get('path')!r} has no valid sha256")
    return index


def load_index(root: str | Path) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise NotAvailableError(f"{root} is not a zoo store: it has no {INDEX}")
    return read_index_bytes(path.read_bytes(), str(path))


def iter_files(index: dict) -> Iterator[dict]:
    """Every file record of an index, each once."""
    seen = set()
    for model in index.get("models", {}).values():
        records = [model.get("weights", {}).get("file"), model.get("card")]
        for artifact in model.get("artifacts", []):
            records += list(artifact.get("files", {}).values())
        for r in records:
            if r and r["path"] not in seen:
                seen.add(r["path"])
                yield r


def find_artifact(index: dict, model: str, runtime: str, method: str | None) -> dict | None:
    entries = index.get("models", {}).get(model, {}).get("artifacts", [])
    for a in entries:
        if a["runtime"] == runtime and (method is None or a["method"] == method):
            return a
    return None
