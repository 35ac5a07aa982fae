"""Verified-file stamps: a file whose sha256 matched is not hashed again on later loads while its stat is unchanged.

As git's index does, a stamp keeps the digest with the file's device, inode, size, mtime and ctime (ns). Every write
through the filesystem sets ctime to the current time, and no user call can set it back, so an unchanged stat means
unchanged bytes, short of the disk itself corrupting them (``zoo verify`` re-hashes every file for that). A file
changed less than ``RACY_S`` before it was hashed is not stamped: a second write within the same clock tick could
leave its stat as it was (git's "racily clean" case). Stamps live in ``HOME/verified/``, one small file per path;
where that cannot be written, every load simply hashes again. Whoever can write there could vouch for a file, so
``ZOO_VERIFY=always`` turns stamps off and hashes every file on every load."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..core import settings
from ..core.store import atomic_write

RACY_S = 1.0


def home_for_stamps(home: Path) -> Path | None:
    """Where stamps are kept, or None when ``ZOO_VERIFY=always`` asks for a hash on every load."""
    return None if settings.verify_always() else Path(home)


def _stamp_path(home: Path, path: Path) -> Path:
    return Path(home) / "verified" / hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()


def _line(st: os.stat_result, digest: str) -> str:
    return f"{digest} {st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}\n"


def is_verified(home: Path, path: Path, expected: str, st: os.stat_result | None = None) -> bool:
    """True when ``path`` was stamped with ``expected`` and has not changed since; ``st`` is the stat of the open
    descriptor the caller reads the file from (so the stamp vouches for those bytes, not for whatever the name
    points to later)."""
    try:
        return _stamp_path(home, path).read_text() == _line(st or os.stat(path), expected)
    except (OSError, ValueError):
        return False


def remember(home: Path, path: Path, digest: str, before: os.stat_result) -> None:
    """Stamp ``path`` as having ``digest``; ``before`` is its stat taken before it was hashed, so a change made while
    it was hashed leaves a stamp that no longer matches."""
    if time.time() - before.st_ctime < RACY_S:
        return
    try:
        atomic_write(_stamp_path(home, path), _line(before, digest).encode())
    except OSError:
        pass  # a read-only home: the file is hashed again next time
