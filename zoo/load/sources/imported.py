"""Bundles imported into the cache (`zoo import`): which index brought each model, so that a load with no source
finds it offline.

    imports.json                model -> {"index_sha256": ..., "bundle": where it was imported from}
    indexes/SHA256.json         the bundle's own index, recorded like any fetched index (so prune keeps its blobs)

The index is the one the user imported (as trusted as a store they point at); every file is still checked against
its sha256 in that index when it is read from the cache.
"""
from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from ...core import store
from ...errors import IntegrityError, NotAvailableError
from .cache import Cache

IMPORTS = "imports.json"


def read_imports(home: Path) -> dict[str, dict]:
    path = Path(home) / IMPORTS
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{path} is not valid JSON ({e}): remove it and run `zoo import BUNDLE` again") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "index_sha256" in v for v in data.values()):
        raise IntegrityError(f"{path}: expected {{model: {{index_sha256, bundle}}}}: remove it and import again")
    return data


def record_import(home: Path, index_data: bytes, bundle: str) -> list[str]:
    """Record a bundle's index (under indexes/) and point each of its models (and their aliases) at it; returns the
    model names. Under the cache's lock, so two imports at once both land."""
    home = Path(home)
    index = store.read_index_bytes(index_data, f"{bundle}/{store.INDEX}")
    digest = Cache(home).record_index(index_data).stem
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / "cache.lock")):
        imports = read_imports(home)
        for name, entry in index["models"].items():
            for key in [name, *entry.get("aliases", [])]:
                imports[key] = {"index_sha256": digest, "bundle": bundle, "model": name}
        store.atomic_write(home / IMPORTS, store.canonical_json(dict(sorted(imports.items()))))
    return sorted(index["models"])


class ImportedSource:
    """A model's imported index, its files served from the cache only (never the network)."""
    offline = True
    index_data = None  # nothing to keep verbatim: the bundle is the origin

    def __init__(self, home: Path, model: str):
        self.home = Path(home)
        self.cache = Cache(self.home)
        found = read_imports(self.home).get(model)
        if found is None:
            raise NotAvailableError(f"no imported bundle holds {model}")
        self.index_sha256 = store.check_sha256(found["index_sha256"], f"{self.home / IMPORTS}: {model}")
        self.description = (f"the bundle imported from {found.get('bundle', '?')} "
                            f"(index sha256 {self.index_sha256[:12]}, cache {self.home})")

    def index(self, revision: str | None = None) -> dict:
        path = self.cache.indexes / f"{self.index_sha256}.json"
        if not path.is_file():
            raise NotAvailableError(f"{path} (the index `zoo import` recorded) is gone: run `zoo import BUNDLE` again")
        data = path.read_bytes()
        store.compare_digest(store.sha256_bytes(data), self.index_sha256, str(path))
        if revision and revision != self.index_sha256:
            raise IntegrityError(f"the imported bundle's index has sha256 {self.index_sha256}, not the pinned "
                                 f"revision {revision}")
        return store.read_index_bytes(data, str(path))

    def fetch(self, record: dict, verify: bool = True) -> Path:
        return self.cache.get(record, None, self.description, verify=verify)
