"""The download cache under ZOO_HOME: files by digest, written under a temporary name and renamed once verified,
with a file lock so that concurrent processes fetch a file once.

    blobs/sha256/AB/ABCD...     a verified file, named by its sha256 (64 lowercase hex characters, checked first)
    indexes/SHA256.json         every index fetched through the cache (what `zoo cache prune` keeps blobs for)
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

from filelock import FileLock

from ...core import store
from ...errors import IntegrityError, NotAvailableError


class Cache:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.indexes = self.home / "indexes"

    def blob(self, sha256: str) -> Path:
        store.check_sha256(sha256, "cache blob name")  # a digest becomes a path: never one that leaves the cache
        return self.home / "blobs" / "sha256" / sha256[:2] / sha256

    def lock(self, sha256: str) -> FileLock:
        return FileLock(str(self.blob(sha256)) + ".lock")

    def record_index(self, data: bytes) -> Path:
        """Keep a copy of an index fetched through this cache (the blobs it lists are kept by `zoo cache prune`)."""
        path = self.indexes / f"{store.sha256_bytes(data)}.json"
        if not path.is_file():
            store.atomic_write(path, data)
        return path

    def evict(self, record: dict, where: str) -> None:
        """Remove a cached copy found damaged, saying so (the next fetch downloads it again)."""
        path = self.blob(record["sha256"])
        with self.lock(record["sha256"]):
            path.unlink(missing_ok=True)
        warnings.warn(f"the cached copy of {record['path']} ({path}) did not match its sha256 and was removed; "
                      f"fetching it again from {where}", stacklevel=3)

    def get(self, record: dict, fetch: Callable[[Path], None] | None, what: str, verify: bool = True) -> Path:
        """The verified cached file for ``record``; ``fetch(dest)`` fills it when absent (None: offline). A file
        already cached is returned unverified with ``verify=False``: the caller verifies it (zoo.load.verified). A cached
        copy that fails its digest is removed and fetched once more."""
        path = self.blob(record["sha256"])
        name = f"{record['path']} (cached at {path})"
        if path.is_file():
            if not verify:
                return path
            try:
                store.check_digest(path, record["sha256"], name)
                return path
            except IntegrityError:
                if fetch is None:
                    path.unlink(missing_ok=True)
                    raise IntegrityError(f"the cached copy of {record['path']} ({path}) did not match its sha256 "
                                         f"{record['sha256']} and was removed; offline, it cannot be fetched again: "
                                         "go online (unset ZOO_OFFLINE) and load again") from None
                self.evict(record, what)
        if fetch is None:
            raise NotAvailableError(f"offline and {record['path']} ({what}) is not in the cache {self.home}; "
                                    "fetch it first (zoo download, then zoo import on this machine) or load from a bundle directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(record["sha256"]):
            if not path.is_file():  # another process may have fetched it while we waited
                fetch(path)
        try:
            store.check_digest(path, record["sha256"], name)
        except IntegrityError as e:
            path.unlink(missing_ok=True)
            raise IntegrityError(f"{e}; it came from {what}, which serves a damaged file: removed it, tell the "
                                 "source's publisher (`zoo verify` on their store finds it)") from None
        return path

    def holds(self, path: Path) -> bool:
        return Path(path).parent.parent == self.home / "blobs" / "sha256"
