"""A local directory: a store built by `zoo build`, a published mirror tree, or a bundle from `zoo download`."""
from __future__ import annotations

from pathlib import Path

from ...core import store
from ...errors import IntegrityError, NotAvailableError


class LocalSource:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.description = str(self.root)
        if not self.root.is_dir():
            raise NotAvailableError(f"source {self.root} is not a directory (expected a store, mirror tree or bundle)")

    def index(self, revision: str | None = None) -> dict:
        data = (self.root / store.INDEX).read_bytes() if (self.root / store.INDEX).is_file() else None
        if data is None:
            raise NotAvailableError(f"{self.root} is not a zoo store: it has no {store.INDEX}")
        if revision:
            store.check_sha256(revision, f"revision for {self.root} (a store or bundle is pinned by its index's sha256)")
        if revision and store.sha256_bytes(data) != revision:
            raise IntegrityError(f"{self.root / store.INDEX}: sha256 {store.sha256_bytes(data)} is not the pinned "
                                 f"revision {revision}")
        return store.read_index_bytes(data, str(self.root / store.INDEX))

    def fetch(self, record: dict, verify: bool = True) -> Path:
        rel = store.safe_relpath(record["path"])
        path = self.root / rel
        if path.is_symlink() or not path.resolve().is_relative_to(self.root.resolve()):
            raise IntegrityError(f"{rel} in {self.root} is a symbolic link or leads outside the store: refused "
                                 "(a store holds plain files; copy the file in instead)")
        if not path.is_file():
            raise NotAvailableError(f"{rel} is listed in the index but missing from {self.root}")
        if verify:
            store.check_digest(path, record["sha256"], str(path))
        return path
