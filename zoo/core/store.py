"""The store format: index.json, file records (path, size, sha256), safe relative paths, streaming hashes.

A store is a directory::

    index.json                          every model and artifact, with size + sha256 of each file
    models/NAME/weights.safetensors         the exact weights the artifacts were exported from
    models/NAME/README.md                   model card
    models/NAME/reference.npz               one parity input and the eager outputs on it, replayed by `zoo verify`
    models/NAME/METHOD/model.{pt,onnx,pt2}  the artifact (pt: TorchScript; pt2: torch.export or AOTInductor)
    models/NAME/METHOD/metadata.json        provenance and parity results

Everything is written canonically (sorted keys, no timestamps, no absolute paths) so a rebuild is byte-identical.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

from . import schema
from .settings import positive_number
from ..errors import IntegrityError, NotAvailableError

FORMAT = "zoo-store/1"
INDEX = "index.json"
DIGEST = re.compile(r"[0-9a-f]{64}")
PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")   # one path component (the index schema's rule)


def sha256_file(path: str | Path) -> str:
    """The file's sha256, read with read() (never mmap: a file truncated meanwhile would kill the process with
    SIGBUS; with read() it only reads short, and the digest then differs)."""
    with open(path, "rb", buffering=0) as f:
        return sha256_open(f)


def sha256_open(f) -> str:
    """The sha256 of the open binary file ``f`` from its position on, read with readinto (as sha256_file)."""
    return hashlib.file_digest(f, hashlib.sha256).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def shared_mode(path: str | Path, directory: bool = False) -> None:
    """The mode a store's files and folders have (0644 / 0755 under the usual umask): a store is served and shared."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_file(path: str | Path):
    """A binary file to write ``path``'s new bytes to: created beside it under an unpredictable name, exclusively (never
    through a link someone planted there), with the shared mode; renamed over ``path`` when the block ends, removed if
    it raises. A reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see atomic_file)."""
    with atomic_file(path) as f:
        f.write(data)


HOME_MARKER = ".zoo-home"
# At the zoo home's top, the checkpoint digests zoo.build.weights trusted on first use, {url: sha256}: outside the
# layout `zoo cache clear` removes (like ssh's known_hosts, a record of trust outlives the files it vouched for).
TRUSTED_CHECKPOINTS = "trusted-checkpoints.json"


def mark_home(home: Path) -> None:
    """Mark ``home`` as a zoo home before zoo writes into it: `zoo cache clear/prune` delete only in a marked home
    (a ZOO_HOME pointed at another tool's cache, or at a directory of your own, is never emptied)."""
    marker = Path(home) / HOME_MARKER
    if not marker.is_file():
        atomic_write(marker, b"zoo's download cache: `zoo cache clear` deletes only zoo's own layout here\n")


def safe_relpath(rel: str) -> str:
    """An index path must stay inside the store: relative, '/'-separated components of letters, digits and
    ``_.+-``, none starting with '.' (so no '..', no absolute path, no drive, no '%'-encoding, no backslash, no NUL)."""
    if not isinstance(rel, str) or not rel:
        raise IntegrityError(f"index path {rel!r} is not a non-empty string")
    if len(rel) > 1024 or not all(PART.fullmatch(part) for part in rel.split("/")):
        raise IntegrityError(f"index path {rel!r} leaves the store or is not a plain relative path (expected "
                             "'/'-separated names of letters, digits, '_', '.', '+', '-', none starting with '.'): "
                             "refused")
    return rel


def check_sha256(digest: str, what: str) -> str:
    """``digest`` if it is 64 lowercase hex characters (it is then safe as a file name), else IntegrityError."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise IntegrityError(f"{what}: {digest!r} is not a sha256 digest (expected 64 lowercase hexadecimal "
                             "characters); refused")
    return digest


def file_record(root: Path, rel: str) -> dict:
    rel = safe_relpath(rel)
    full = Path(root) / rel
    return {"path": rel, "size": full.stat().st_size, "sha256": sha256_file(full)}


def check_digest(path: Path, expected: str, name: str) -> None:
    compare_digest(sha256_file(path), expected, name)


def compare_digest(actual: str, expected: str, name: str) -> None:
    if actual != expected:
        raise IntegrityError(f"sha256 mismatch for {name}: index says {expected}, file has {actual}; refusing to "
                             "use it (the file is damaged or was changed: fetch or rebuild it; `zoo verify` lists "
                             "every such file)")


MAX_INDEX_BYTES = 64 << 20  # an index of every model is ~100 KB; anything near this is not an index


def index_cap() -> int:
    """The most bytes an index may have (``ZOO_MAX_INDEX_BYTES``, default 64 MiB)."""
    return positive_number("ZOO_MAX_INDEX_BYTES", MAX_INDEX_BYTES, " of bytes", integer=True)


def read_small(path: str | Path, cap: int, what: str) -> bytes:
    """A small regular file's bytes (an index): opened without blocking and refused unless it is a regular file of
    at most ``cap`` bytes, so that a name pointing at /dev/zero, a FIFO or a huge file neither hangs nor fills
    memory."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise NotAvailableError(f"{what}: cannot open {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IntegrityError(f"{what}: {path} is not a regular file (a device, FIFO or socket): refused")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise IntegrityError(f"{what}: {path} is larger than {cap} bytes, more than an index can be "
                             "(ZOO_MAX_INDEX_BYTES sets the cap): refused")
    return data


def index_bytes(models: dict) -> bytes:
    """A whole index of ``models``, canonically written."""
    return canonical_json({"format": FORMAT, "models": dict(sorted(models.items()))})


def read_index_bytes(data: bytes, where: str) -> dict:
    """The index in ``data``, after it passed the schema (zoo/schemas/index.schema.json); IntegrityError otherwise."""
    index = schema.parse("index", data, where)
    for record in iter_files(index):  # the schema checked these already; the code's own rule checks them again
        safe_relpath(record["path"])
        check_sha256(record["sha256"], f"{where}: {record['path']}")
    seen: dict = {}
    for record in all_records(index):  # one path listed twice must be one file: only one digest could be checked
        first = seen.setdefault(record["path"], (record["sha256"], record["size"]))
        if first != (record["sha256"], record["size"]):
            raise IntegrityError(f"{where}: {record['path']} is listed twice with different digests or sizes "
                                 f"({first[0][:12]}.., {record['sha256'][:12]}..): refused")
    return index


def all_records(index: dict) -> Iterator[dict]:
    """Every file record of an index, a path as often as it is listed."""
    for model in index.get("models", {}).values():
        yield from (r for r in (model.get("weights", {}).get("file"), model.get("card")) if r)
        for artifact in model.get("artifacts", []):
            yield from artifact.get("files", {}).values()


def load_index(root: str | Path) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise NotAvailableError(f"{root} is not a zoo store: it has no {INDEX}")
    return read_index_bytes(read_small(path, index_cap(), "index"), str(path))


def entry_records(entry: dict) -> list[dict]:
    """Every file record object of a model entry, in a fixed order: the weights, the card, each artifact's files (a
    path listed by several artifacts, such as the reference or the weights, comes once per listing: each listing is
    its own object to rewrite)."""
    records = [entry.get("weights", {}).get("file"), entry.get("card")]
    records += [r for a in entry.get("artifacts", []) for r in a.get("files", {}).values()]
    return [r for r in records if r]


def iter_files(index: dict) -> Iterator[dict]:
    """Every file record of an index, each path once."""
    seen = set()
    for entry in index.get("models", {}).values():
        for r in entry_records(entry):
            if r["path"] not in seen:
                seen.add(r["path"])
                yield r


def payload(artifact: dict) -> dict:
    """The record of the file a runtime opens for an artifact: the exported model, or the weights (eager)."""
    return artifact["files"]["weights" if artifact["method"] == "eager" else "model"]
