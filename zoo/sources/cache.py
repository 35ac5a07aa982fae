"""The download cache under ZOO_HOME: files by digest, written under a temporary name and renamed once verified,
with a file lock so that concurrent processes fetch a file once."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from filelock import FileLock

from .. import store
from ..errors import NotAvailableError


class Cache:
    def __init__(self, home: Path):
        self.home = Path(home)

    def blob(self, sha256: str) -> Path:
        return self.home / "blobs" / "sha256" / sha256[:2] / sha256

    def get(self, record: dict, fetch: Callable[[Path], None] | None, what: str, verify: bool = True) -> Path:
        """The verified cached file for ``record``; ``fetch(dest)`` fills it when absent (None: offline). A file
        already cached is returned unverified with ``verify=False``: the caller verifies it (store.load_verified)."""
        path = self.blob(record["sha256"])
        if path.is_file():
            if verify:
                store.check_digest(path, record["sha256"], f"{record['path']} (cached at {path})")
            return path
        if fetch is None:
            raise NotAvailableError(f"offline and {record['path']} ({what}) is not in the cache {self.home}; "
                                    "fetch it first (zoo download, then zoo import on this machine) or load from a bundle directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file():  # another process may have fetched it while we waited
                fetch(path)
        store.check_digest(path, record["sha256"], f"{record['path']} (cached at {path})")
        return path
