"""Distribution: bundles for air-gapped machines (`zoo download`) and publishing (`zoo publish`) to a static mirror
tree or a Hugging Face Hub repository."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from . import store
from .errors import NotAvailableError, ZooError
from .loader import manifest_for
from .sources import open_source


def _copy_verified(src: Path, dest: Path, sha256: str) -> bool:
    """Copy src to dest atomically unless dest already holds those bytes; returns whether it wrote."""
    if dest.is_file() and store.sha256_file(dest) == sha256:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, tmp)
    store.check_digest(tmp, sha256, str(dest))
    tmp.replace(dest)
    return True


def download(names: list[str], to: str | Path, runtime: str | None = None, method: str | None = None, source=None,
             revision: str | None = None) -> str:
    """Write a self-contained bundle (index, artifacts, metadata, cards, weights) to ``to``; returns its index sha256."""
    from tqdm.auto import tqdm

    src = open_source(source)
    index = src.index(revision)
    to = Path(to)
    models = {}
    for name in names:
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
        models[manifest.name] = {**entry, "artifacts": artifacts}
    bundle_index = {"format": store.FORMAT, "models": dict(sorted(models.items()))}
    records = list(store.iter_files(bundle_index))
    for record in tqdm(records, desc="zoo download", unit="file"):
        _copy_verified(src.fetch(record), to / store.safe_relpath(record["path"]), record["sha256"])
    data = store.canonical_json(bundle_index)
    store.atomic_write(to / store.INDEX, data)
    return store.sha256_bytes(data)


def git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1()
    h.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish(store_dir: str | Path, to: str, revision: str = "main", message: str | None = None, api=None) -> str:
    """Publish a verified store. Returns a report line with what was uploaded and the resulting revision."""
    root = Path(store_dir)
    index = store.load_index(root)
    records = list(store.iter_files(index))
    for r in records:  # never publish a file that does not match its own index
        store.check_digest(root / r["path"], r["sha256"], str(root / r["path"]))
    if to.startswith("hf://"):
        return _publish_hub(root, records, to[len("hf://"):], revision, message, api)
    dest = Path(to)
    written = sum(_copy_verified(root / r["path"], dest / r["path"], r["sha256"]) for r in records)
    data = (root / store.INDEX).read_bytes()
    store.atomic_write(dest / store.INDEX, data)
    return (f"published {dest}: {written} file(s) written, {len(records) - written} unchanged; "
            f"index sha256 {store.sha256_bytes(data)} (serve it with any static web server)")


def _publish_hub(root: Path, records: list[dict], repo: str, revision: str, message: str | None, api) -> str:
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
    for rel in [r["path"] for r in records] + [store.INDEX]:
        path = root / rel
        lfs_sha, blob = remote.get(rel, (None, None))
        if rel in remote and (lfs_sha == store.sha256_file(path) or blob == git_blob_sha1(path)):
            continue
        ops.append(hub.CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)))
    if not ops:
        return f"hf://{repo}@{revision}: nothing to upload, all {len(records) + 1} files unchanged"
    commit = api.create_commit(repo, operations=ops, commit_message=message or f"zoo publish: {len(ops)} file(s)",
                               revision=revision)
    uploaded = ", ".join(op.path_in_repo for op in ops[:8]) + (" ..." if len(ops) > 8 else "")
    return f"hf://{repo}@{revision}: uploaded {len(ops)} file(s) ({uploaded}) in one commit; revision {commit.oid}"
