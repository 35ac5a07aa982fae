"""Distribution: bundles for air-gapped machines (`zoo download`) and publishing (`zoo publish`) to a static mirror
tree or a Hugging Face Hub repository."""
from __future__ import annotations

import copy
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import store
from .errors import IntegrityError, NotAvailableError, ZooError
from .loader import channel_name, manifest_for
from .sources import open_source


def _copy_verified(src: Path, dest: Path, sha256: str, name: str | None = None) -> bool:
    """Copy src to dest atomically unless dest already holds those bytes; returns whether it wrote. Bytes that do not
    match ``sha256`` never reach ``dest`` (the error names ``name``, default dest)."""
    if dest.is_file() and store.sha256_file(dest) == sha256:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        shutil.copyfile(src, tmp)
        store.check_digest(tmp, sha256, name or str(dest))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return True


def download(names: list[str], to: str | Path, runtime: str | None = None, method: str | None = None, source=None,
             revision: str | None = None) -> str:
    """Write a self-contained bundle (index, artifacts, metadata, cards, weights) to ``to``; returns its index sha256.
    With no source (and no $ZOO_SOURCE) each model comes from the channel; the bundle then also keeps the pinned
    indexes verbatim under ``indexes/SHA256.json``, so that `zoo import` lets the channel load offline."""
    from tqdm.auto import tqdm

    explicit = bool(source or os.environ.get("ZOO_SOURCE"))
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
        models[manifest.name], pairs = relocate({**entry, "artifacts": artifacts}, manifest.name, f"models/{manifest.name}/")
        for original, bundled in pairs:  # a file listed by several artifacts is fetched once
            jobs.setdefault(bundled["path"], (src, original, bundled))
    bundle_index = {"format": store.FORMAT, "models": dict(sorted(models.items()))}
    for src, original, bundled in tqdm(list(jobs.values()), desc="zoo download", unit="file"):
        _copy_verified(src.fetch(original), to / store.safe_relpath(bundled["path"]), bundled["sha256"])
    for src, _ in opened.values():
        if getattr(src, "index_data", None) is not None:
            store.atomic_write(to / "indexes" / f"{store.sha256_bytes(src.index_data)}.json", src.index_data)
    data = store.canonical_json(bundle_index)
    store.atomic_write(to / store.INDEX, data)
    return store.sha256_bytes(data)


def import_bundle(bundle: str | Path, cache_dir: str | Path | None = None) -> tuple[int, int, int]:
    """Fill the cache from a bundle made by `zoo download`: every file by its digest (each one hashed), and the
    indexes the bundle kept (each named by its own sha256). Returns (files added, files already there, indexes)."""
    from .sources import default_home
    from .sources.cache import Cache

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
        cache.get(record, lambda dest, src=src, sha=record["sha256"]: _copy_verified(src, dest, sha, str(src)), str(src))
    indexes = sorted((root / "indexes").glob("*.json")) if (root / "indexes").is_dir() else []
    for path in indexes:
        if path.is_symlink():
            raise IntegrityError(f"{path} is a symbolic link: a bundle holds plain files; refused")
        from .download import index_cap
        data = store.read_small(path, index_cap(), "bundle index")
        if store.sha256_bytes(data) != path.stem:
            raise IntegrityError(f"{path}: sha256 {store.sha256_bytes(data)} differs from its name: the bundle is "
                                 "damaged, copy it again")
        store.read_index_bytes(data, str(path))
        store.atomic_write(home / "indexes" / path.name, data)
    return len(records) - present, present, len(indexes)


def file_records(entry: dict) -> list[dict]:
    """Every file record object of a model entry, in a fixed order (a path listed by several artifacts, such as the
    reference or the weights, comes once per listing: each listing is its own object to rewrite)."""
    records = [entry["weights"]["file"], entry.get("card")]
    records += [r for a in entry["artifacts"] for r in a["files"].values()]
    return [r for r in records if r]


def relocate(entry: dict, name: str, to_prefix: str) -> tuple[dict, list[tuple[dict, dict]]]:
    """A copy of ``entry`` whose paths move from wherever they are (``models/NAME/`` in a store, the root of a
    per-model repository) to ``to_prefix``; with (original record, new record) pairs."""
    new = copy.deepcopy(entry)
    pairs = []
    for old, rec in zip(file_records(entry), file_records(new)):
        rel = store.safe_relpath(old["path"])
        inner = rel[len(f"models/{name}/"):] if rel.startswith(f"models/{name}/") else rel
        rec["path"] = to_prefix + inner
        pairs.append((old, rec))
    return new, pairs


def git_blob_sha1(path: Path | bytes) -> str:
    """The id git (and the Hub, as ``blob_id``) gives a file's content."""
    if isinstance(path, bytes):
        return hashlib.sha1(f"blob {len(path)}\0".encode() + path).hexdigest()
    h = hashlib.sha1()
    h.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Published:
    """One repository written by a publish: its commit is None when every file was already there."""
    repo: str
    revision: str
    commit: str | None
    index_sha256: str
    uploaded: list[str]
    unchanged: int
    models: list[str]

    def line(self) -> str:
        if self.commit is None:
            return f"hf://{self.repo}@{self.revision}: nothing to upload, all {self.unchanged} files unchanged"
        shown = ", ".join(self.uploaded[:8]) + (" ..." if len(self.uploaded) > 8 else "")
        return (f"hf://{self.repo}@{self.revision}: uploaded {len(self.uploaded)} file(s) ({shown}) in one commit; "
                f"revision {self.commit}")


def publish(store_dir: str | Path, to: str, revision: str = "main", message: str | None = None, api=None) -> str:
    """Publish a verified store: to a directory (a static mirror tree), to ``hf://ORG/REPO`` (the whole store in one
    repository) or to ``hf://ORG`` (one repository per model, ``ORG/NAME``). Returns a report of what was uploaded."""
    root = Path(store_dir)
    index = store.load_index(root)
    records = checked_records(root, index)
    if to.startswith("hf://") and "/" not in to[len("hf://"):].strip("/"):
        return "\n".join(p.line() for p in publish_models(root, index, to[len("hf://"):].strip("/"), revision,
                                                           message, api))
    if to.startswith("hf://"):
        from .sources.hub import parse_spec
        files = {r["path"]: root / r["path"] for r in records}
        files[store.INDEX] = root / store.INDEX
        return _publish_hub(files, parse_spec(to)[0], revision, message, api, list(index["models"])).line()
    dest = Path(to)
    written = sum(_copy_verified(root / r["path"], dest / r["path"], r["sha256"]) for r in records)
    data = (root / store.INDEX).read_bytes()
    store.atomic_write(dest / store.INDEX, data)
    return (f"published {dest}: {written} file(s) written, {len(records) - written} unchanged; "
            f"index sha256 {store.sha256_bytes(data)} (serve it with any static web server)")


def checked_records(root: Path, index: dict) -> list[dict]:
    """The store's file records, each file hashed: a file that does not match its own index is never published."""
    records = list(store.iter_files(index))
    for r in records:
        store.check_digest(root / r["path"], r["sha256"], str(root / r["path"]))
    return records


def model_repository(root: Path, index: dict, name: str) -> dict[str, Path | bytes]:
    """One model of a store as a store of its own, laid out for a Hub model page: the card as README.md at the root,
    the other files beside it, and an index.json that lists only this model with paths from the root."""
    entry, pairs = relocate(index["models"][name], name, "")
    files: dict[str, Path | bytes] = {new["path"]: root / old["path"] for old, new in pairs}
    single = {**{k: v for k, v in index.items() if k != "models"}, "models": {name: entry}}
    files[store.INDEX] = store.canonical_json(single)
    return files


def publish_models(root: Path, index: dict, org: str, revision: str = "main", message: str | None = None,
                   api=None, names: list[str] | None = None) -> list[Published]:
    """One repository per model, ``ORG/NAME``, one commit each (unchanged files are not uploaded)."""
    from .channel import check_repo_id
    checked_records(root, index)
    done = []
    for name in names or sorted(index["models"]):
        files = model_repository(root, index, name)
        done.append(_publish_hub(files, check_repo_id(f"{org}/{name}"), revision, message, api, [name]))
    return done


def _publish_hub(files: dict[str, Path | bytes], repo: str, revision: str, message: str | None, api,
                 models: list[str]) -> Published:
    try:
        import huggingface_hub as hub
        from huggingface_hub.errors import RevisionNotFoundError
    except ImportError:
        raise ZooError("publishing to hf:// needs huggingface_hub: pip install 'zoo[hub]'") from None
    api = api or hub.HfApi()
    api.create_repo(repo, repo_type="model", exist_ok=True)
    remote = {}
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True)
        for s in info.siblings or []:
            remote[s.rfilename] = (s.lfs.sha256 if s.lfs else None, s.blob_id)
    except RevisionNotFoundError:  # a new branch: everything is uploaded
        pass
    ops = []
    for rel, content in sorted(files.items()):
        lfs_sha, blob = remote.get(rel, (None, None))
        sha = store.sha256_bytes(content) if isinstance(content, bytes) else store.sha256_file(content)
        if rel in remote and (lfs_sha == sha or blob == git_blob_sha1(content)):
            continue
        ops.append(hub.CommitOperationAdd(path_in_repo=rel, path_or_fileobj=content if isinstance(content, bytes)
                                          else str(content)))
    index_sha = store.sha256_bytes(files[store.INDEX]) if isinstance(files[store.INDEX], bytes) else \
        store.sha256_file(files[store.INDEX])
    if not ops:
        return Published(repo, revision, None, index_sha, [], len(files), models)
    commit = api.create_commit(repo, operations=ops, commit_message=message or f"zoo publish: {len(ops)} file(s)",
                               revision=revision)
    return Published(repo, revision, commit.oid, index_sha, [op.path_in_repo for op in ops], len(files) - len(ops),
                     models)
