"""Distribution: bundles for air-gapped machines (`zoo download`) and publishing (`zoo publish`) to a static mirror
tree or a Hugging Face Hub repository."""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

from ..core import settings, store
from ..errors import IntegrityError, NotAvailableError
from .loader import channel_name, manifest_for
from .sources import open_source


def copy_verified(src: Path, dest: Path, sha256: str, name: str | None = None) -> bool:
    """Copy src to dest atomically unless dest already holds those bytes; returns whether it wrote. Bytes that do not
    match ``sha256`` never reach ``dest`` (the error names ``name``, default dest)."""
    if dest.is_file() and store.sha256_file(dest) == sha256:
        return False
    with store.atomic_file(dest) as out, open(src, "rb") as f:  # a fresh, unpredictable file: no planted link
        digest = hashlib.sha256()
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        store.compare_digest(digest.hexdigest(), sha256, name or str(dest))
    return True


def download(names: list[str], to: str | Path, runtime: str | None = None, method: str | None = None, source=None,
             revision: str | None = None) -> str:
    """Write a self-contained bundle (index, artifacts, metadata, cards, weights) to ``to``; returns its index sha256.
    With no source (and no $ZOO_SOURCE) each model comes from the channel; the bundle then also keeps the pinned
    indexes verbatim under ``indexes/SHA256.json``, so that `zoo import` lets the channel load offline."""
    from tqdm.auto import tqdm

    explicit = bool(source or settings.source_spec())
    opened: dict = {}
    to = Path(to)
    models, jobs = {}, {}
    for name in names:
        key = "" if explicit else channel_name(name)
        if key not in opened:
            src = open_source(source, model=channel_name(name))
            opened[key] = (src, src.index(revision))
        src, index = opened[key]
        manifest = manifest_for(name, index, src.description)  # a model of your own: the index's manifest
        entry = index["models"].get(manifest.name)
        if entry is None:
            raise NotAvailableError(f"{manifest.name} is not in {src.description}")
        artifacts = [a for a in entry["artifacts"] if (runtime is None or a["runtime"] == runtime)
                     and (method is None or a["method"] == method)]
        if not artifacts:
            have = ", ".join(f"{a['runtime']}/{a['method']}" for a in entry["artifacts"])
            raise NotAvailableError(f"{src.description} has no {runtime or 'any'}/{method or 'any'} artifact for "
                                    f"{manifest.name} (it has: {have})")
        # a bundle keeps the store layout (models/NAME/...), whatever the layout of the source
        models[manifest.name], pairs = rebased({**entry, "artifacts": artifacts}, manifest.name, f"models/{manifest.name}/")
        for original, bundled in pairs:  # a file listed by several artifacts is fetched once
            jobs.setdefault(bundled["path"], (src, original, bundled))
    bundle_index = {"format": store.FORMAT, "models": dict(sorted(models.items()))}
    for src, original, bundled in tqdm(list(jobs.values()), desc="zoo download", unit="file"):
        copy_verified(src.fetch(original), to / store.safe_relpath(bundled["path"]), bundled["sha256"])
    for src, _ in opened.values():
        if getattr(src, "index_data", None) is not None:
            store.atomic_write(to / "indexes" / f"{store.sha256_bytes(src.index_data)}.json", src.index_data)
    data = store.canonical_json(bundle_index)
    store.atomic_write(to / store.INDEX, data)
    return store.sha256_bytes(data)


def import_bundle(bundle: str | Path, cache_dir: str | Path | None = None) -> tuple[int, int, int, list[str]]:
    """Fill the cache from a bundle made by `zoo download`: every file by its digest (each one hashed), the indexes
    the bundle kept (each named by its own sha256), and the bundle's own index, recorded as the one each of its models
    loads from when no source is given (zoo.load.sources.imported). Returns (files added, files already there,
    indexes, models)."""
    from ..core.settings import default_home
    from .sources.cache import Cache
    from .sources.imported import record_import

    root = Path(bundle)
    index = store.load_index(root)
    home = default_home(cache_dir)
    cache = Cache(home)
    records = list(store.iter_files(index))
    present = 0
    from .sources.local import LocalSource
    local = LocalSource(root)
    for record in records:
        try:  # a symbolic link or a path leading out of the bundle is refused before it is read (no hash oracle)
            src = local.fetch(record, verify=False)
        except NotAvailableError:
            raise NotAvailableError(f"{root / record['path']} is listed in the bundle's index but missing: copy the "
                                    "whole bundle") from None
        present += cache.blob(record["sha256"]).is_file()  # a cached copy is checked all the same
        cache.get(record, lambda dest, src=src, sha=record["sha256"]: copy_verified(src, dest, sha, str(src)), str(src))
    indexes = sorted((root / "indexes").glob("*.json")) if (root / "indexes").is_dir() else []
    for path in indexes:
        if path.is_symlink():
            raise IntegrityError(f"{path} is a symbolic link: a bundle holds plain files; refused")
        data = store.read_small(path, store.index_cap(), "bundle index")
        if store.sha256_bytes(data) != path.stem:
            raise IntegrityError(f"{path}: sha256 {store.sha256_bytes(data)} differs from its name: the bundle is "
                                 "damaged, copy it again")
        store.read_index_bytes(data, str(path))
        store.atomic_write(home / "indexes" / path.name, data)
    models = record_import(home, (root / store.INDEX).read_bytes(), str(root.resolve()))  # last: every file is in
    return len(records) - present, present, len(indexes), models


def rebased(entry: dict, name: str, to_prefix: str) -> tuple[dict, list[tuple[dict, dict]]]:
    """A copy of ``entry`` whose paths move from wherever they are (``models/NAME/`` in a store, the root of a
    per-model repository) to ``to_prefix``; with (original record, new record) pairs."""
    new = copy.deepcopy(entry)
    pairs = []
    for old, rec in zip(store.entry_records(entry), store.entry_records(new)):
        rel = store.safe_relpath(old["path"])
        inner = rel[len(f"models/{name}/"):] if rel.startswith(f"models/{name}/") else rel
        rec["path"] = to_prefix + inner
        pairs.append((old, rec))
    return new, pairs
