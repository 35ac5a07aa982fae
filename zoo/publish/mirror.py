"""Publishing (`zoo publish`): a verified store to a static mirror tree, to one Hugging Face Hub repository, or to one
repository per model."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..core import store
from ..errors import ZooError
from ..load.bundles import copy_verified, rebased


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
        from ..core.hfspec import parse_spec
        files = {r["path"]: root / r["path"] for r in records}
        files[store.INDEX] = root / store.INDEX
        return _publish_hub(files, parse_spec(to)[0], revision, message, api, list(index["models"])).line()
    dest = Path(to)
    written = sum(copy_verified(root / r["path"], dest / r["path"], r["sha256"]) for r in records)
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
    entry, pairs = rebased(index["models"][name], name, "")
    files: dict[str, Path | bytes] = {new["path"]: root / old["path"] for old, new in pairs}
    single = {**{k: v for k, v in index.items() if k != "models"}, "models": {name: entry}}
    files[store.INDEX] = store.canonical_json(single)
    return files


def publish_models(root: Path, index: dict, org: str, revision: str = "main", message: str | None = None,
                   api=None, names: list[str] | None = None) -> list[Published]:
    """One repository per model, ``ORG/NAME``, one commit each (unchanged files are not uploaded)."""
    from ..core.hfspec import check_repo_id
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
