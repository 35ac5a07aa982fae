"""Loading a file only if its bytes match the index's sha256, from exactly the bytes that were hashed.

The file is opened once and read into memory with read() (never mmap: a file truncated meanwhile reads short and
fails the digest, where mmap would kill the process with SIGBUS); the runtime is handed those same bytes, so a file
swapped on disk after it was opened cannot be loaded unverified. The hash runs in a thread alongside the runtime's
parse of the same (immutable) bytes: hashlib releases the GIL, so verifying costs about nothing extra. A file stamped
as verified (zoo/load/stamps.py) is checked against its stamp with fstat of that same open descriptor, and its bytes are
not hashed again."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

from . import stamps
from ..errors import IntegrityError
from ..core.store import compare_digest

T = TypeVar("T")


def read_whole(path: Path) -> tuple[bytes, os.stat_result]:
    """The file's bytes and the stat of the descriptor they were read from; IntegrityError if it shrank meanwhile."""
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        data = f.read(st.st_size + 1)  # one byte more than stat said: a file grown meanwhile differs too
    if len(data) != st.st_size:
        raise IntegrityError(f"{path} changed while it was read ({st.st_size} bytes when opened, {len(data)} read); "
                             "refusing to load it: load again once nothing is writing it")
    return data, st


def hash_loaded(data: bytes) -> str:
    """The sha256 of the bytes a load read (one place, so that tests can count the hashes)."""
    return hashlib.sha256(data).hexdigest()


def load_verified(path: Path, expected: str, name: str, load: Callable[[bytes], T],
                  stamp_home: Path | None = None) -> T:
    """``load(data)`` on the file's bytes, returned only if their sha256 is ``expected`` (otherwise IntegrityError,
    also when the load itself failed on the bad bytes). With ``stamp_home`` (a zoo home), a file verified before and
    unchanged since is not hashed again, and a file that passes is stamped."""
    data, st = read_whole(Path(path))
    if stamp_home is not None and stamps.is_verified(stamp_home, path, expected, st):
        return load(data)
    found: dict = {}
    thread = threading.Thread(target=lambda: found.update(sha256=hash_loaded(data)),
                              name="zoo-sha256", daemon=True)
    thread.start()
    try:
        loaded = load(data)
    except BaseException:
        thread.join()
        compare_digest(found["sha256"], expected, name)  # bad bytes explain the failure better than the runtime
        raise
    thread.join()
    compare_digest(found["sha256"], expected, name)
    if stamp_home is not None:
        stamps.remember(stamp_home, path, expected, st)
    return loaded
