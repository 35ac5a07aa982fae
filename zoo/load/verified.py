"""Loading a file only if its bytes match the index's sha256, from exactly the bytes that were hashed.

The file is opened once and read into memory with read() (never mmap: a file truncated meanwhile reads short and
fails the digest, where mmap would kill the process with SIGBUS); the runtime is handed those same bytes, so a file
swapped on disk after it was opened cannot be loaded unverified. The hash runs in a thread alongside the runtime's
parse of the same (immutable) bytes: hashlib releases the GIL, so verifying costs about nothing extra. A file stamped
as verified (zoo/load/stamps.py) is checked against its stamp with fstat of that same open descriptor, and its bytes are
not hashed again.

A runtime that reads a file by its name much faster than from bytes (TorchScript: ``torch.jit.load`` of a 170 MB
scripted Mask R-CNN took 0.29 s from bytes, 0.13 s from its name) is handed instead the name of the open descriptor,
``/proc/self/fd/N``: the same inode, whatever is renamed over the store's name meanwhile. The bytes are hashed from that
descriptor while the runtime reads it, and the descriptor's stat is compared after the load with the one taken when it
was opened: any write in between (or an unlink of its name) sets the file's ctime to the time of that change, and then
the load is dropped and the file loaded again by the bytes route, from the same descriptor. A file written less than
``stamps.RACY_S`` before it was opened (where a second write could leave its ctime as it was) and a system without
``/proc/self/fd`` take the bytes route."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from . import stamps
from ..errors import IntegrityError
from ..core.store import compare_digest, sha256_open

T = TypeVar("T")


def read_whole(path: Path, f=None) -> tuple[bytes, os.stat_result]:
    """The file's bytes (read from the open file ``f`` where given) and the stat of the descriptor they were read from;
    IntegrityError if it shrank meanwhile."""
    if f is None:
        with open(path, "rb", buffering=0) as f:
            return read_whole(path, f)
    st = os.fstat(f.fileno())
    data = os.pread(f.fileno(), st.st_size + 1, 0)  # one byte more than stat said: a file grown meanwhile differs too
    if len(data) != st.st_size:
        raise IntegrityError(f"{path} changed while it was read ({st.st_size} bytes when opened, {len(data)} read); "
                             "refusing to load it: load again once nothing is writing it")
    return data, st


def hash_loaded(data: bytes) -> str:
    """The sha256 of the bytes a load read (one place, so that tests can count the hashes)."""
    return hashlib.sha256(data).hexdigest()


def hash_descriptor(f) -> str:
    """The sha256 of the open file ``f``, just opened (the runtime reads the same file through an open of its own, with
    its own offset); ``f.name`` is the file's path (tests count hashes by it)."""
    return sha256_open(f)


FD_NAMES = Path("/proc/self/fd")


def load_verified(path: Path, expected: str, name: str, load: Callable[[bytes | str], T],
                  stamp_home: Path | None = None, by_name: bool = False) -> T:
    """``load(data)`` on the file's bytes, returned only if their sha256 is ``expected`` (otherwise IntegrityError,
    also when the load itself failed on the bad bytes). With ``stamp_home`` (a zoo home), a file verified before and
    unchanged since is not hashed again, and a file that passes is stamped. With ``by_name``, ``load`` may be handed
    the name of the open file instead of its bytes (the module's docstring says when, and what keeps that safe)."""
    path = Path(path)
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno()) if by_name and FD_NAMES.is_dir() else None
        if st is not None and time.time() - st.st_ctime >= stamps.RACY_S:
            try:
                return _checked_load(path, st, expected, name, stamp_home, lambda: load(str(FD_NAMES / str(f.fileno()))),
                                     lambda: hash_descriptor(f), lambda: _moved(f, st))
            except _Moved:
                pass  # written, truncated or unlinked meanwhile: what the runtime read is unknown; load the bytes instead
        data, st = read_whole(path, f)
    return _checked_load(path, st, expected, name, stamp_home, lambda: load(data), lambda: hash_loaded(data),
                         lambda: False)


class _Moved(Exception):
    pass


def _checked_load(path: Path, st: os.stat_result, expected: str, name: str, stamp_home, load, digest, moved):
    """``load()`` while ``digest()`` hashes the same bytes in a thread (hashlib releases the GIL), unless the file is
    stamped as verified; returned if the digest matches and ``moved()`` (the file's stat changed meanwhile) is not
    true, else IntegrityError or _Moved."""
    if stamp_home is not None and stamps.is_verified(stamp_home, path, expected, st):
        loaded = load()
        if moved():
            raise _Moved
        return loaded
    found: dict = {}
    thread = threading.Thread(target=lambda: found.update(sha256=digest()), name="zoo-sha256", daemon=True)
    thread.start()
    try:
        loaded = load()
    except BaseException:
        thread.join()
        if moved():
            raise _Moved from None
        compare_digest(found["sha256"], expected, name)  # bad bytes explain the failure better than the runtime
        raise
    thread.join()
    if moved():
        raise _Moved
    compare_digest(found["sha256"], expected, name)
    if stamp_home is not None:
        stamps.remember(stamp_home, path, expected, st)
    return loaded


def _moved(f, before: os.stat_result) -> bool:
    """The open file's stat moved since ``before``: it was written (or its name unlinked) while it was loaded. Every
    such change sets ctime to the current time, which no call can set back."""
    now = os.fstat(f.fileno())
    return (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
