"""An HTTP(S) mirror: any static server holding a store tree (nginx, S3, an artifact server)."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from urllib.parse import quote

from .. import transport as http
from ...core import store
from ...errors import IntegrityError, NotAvailableError
from .cache import Cache


class HttpSource:
    def __init__(self, url: str, home: Path, offline: bool):
        self.base = url.rstrip("/") + "/"
        self.description = self.base
        self.cache = Cache(home)
        self.offline = offline
        self.indexes = Path(home) / "indexes"
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = http.session()
        return self._session

    def _index_copy(self) -> Path:
        return self.indexes / (hashlib.sha256(self.base.encode()).hexdigest()[:16] + ".json")

    def index(self, revision: str | None = None) -> dict:
        """The mirror's index. A pinned revision already cached needs no request; an unreachable mirror falls back
        to the last index fetched from it (with a warning); offline never asks the network."""
        copy = self._index_copy()
        if revision:  # it names a file below: only a digest may
            store.check_sha256(revision, f"revision for {self.base} (an http(s) mirror is pinned by its index's "
                                         "sha256, as `zoo download` prints it)")
        pinned = self.indexes / f"{revision}.json" if revision else None
        if pinned is not None and pinned.is_file():
            data = pinned.read_bytes()
        elif self.offline:
            if not copy.is_file():
                raise NotAvailableError(f"offline and no cached index for {self.base}; run zoo download while online")
            data = copy.read_bytes()
        else:
            try:
                data = http.get_bytes(self.base + store.INDEX, self.session)
            except NotAvailableError as e:
                if not copy.is_file():
                    raise
                warnings.warn(f"{e}; using the index cached from {self.base}", stacklevel=2)
                data = copy.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if revision and digest != revision:
            raise IntegrityError(f"{self.base}{store.INDEX}: sha256 {digest} is not the pinned revision {revision}")
        index = store.read_index_bytes(data, self.base + store.INDEX)
        store.atomic_write(copy, data)
        self.cache.record_index(data)
        self.revision = digest
        return index

    def fetch(self, record: dict, verify: bool = True) -> Path:
        rel = store.safe_relpath(record["path"])
        url = self.base + quote(rel, safe="/")  # the path was checked; quoting keeps any byte from meaning more
        fetch = None if self.offline else (
            lambda dest: http.download(url, dest, record["sha256"], record.get("size"), self.session, desc=rel))
        return self.cache.get(record, fetch, url, verify)
