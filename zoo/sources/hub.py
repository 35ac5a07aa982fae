"""The Hugging Face Hub: ``hf://ORG/REPO`` at a pinned ``revision`` (branch, tag or commit), through huggingface_hub.
Our index's sha256 is still checked after huggingface_hub's own download."""
from __future__ import annotations

from pathlib import Path

from .. import store
from ..errors import NotAvailableError, ZooError
from .cache import Cache


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ZooError("hf:// sources need huggingface_hub: pip install 'zoo[hub]'") from None
    return huggingface_hub


class HubSource:
    def __init__(self, repo: str, home: Path, offline: bool):
        if repo.count("/") != 1:
            raise ZooError(f"expected hf://ORG/REPO, got hf://{repo}")
        self.repo, self.home, self.offline = repo, Path(home), offline
        self.description = f"hf://{repo}"
        self.cache = Cache(home)
        self.revision = "main"

    def _download(self, filename: str) -> Path:
        hub = _hub()
        try:
            return Path(hub.hf_hub_download(self.repo, filename, revision=self.revision, cache_dir=self.home / "hub",
                                            local_files_only=self.offline))
        except Exception as e:  # huggingface_hub raises many types; say which file and why
            raise NotAvailableError(f"hf://{self.repo}@{self.revision}: cannot get {filename}: "
                                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None

    def index(self, revision: str | None = None) -> dict:
        self.revision = revision or "main"
        data = self._download(store.INDEX).read_bytes()
        index = store.read_index_bytes(data, f"hf://{self.repo}/{store.INDEX}")
        self.cache.record_index(data)  # `zoo cache prune` keeps the blobs of every index recorded
        return index

    def fetch(self, record: dict, verify: bool = True) -> Path:
        rel = store.safe_relpath(record["path"])

        def fetch(dest: Path) -> None:
            import shutil
            src = self._download(rel)
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(src, tmp)
            store.check_digest(tmp, record["sha256"], f"hf://{self.repo}/{rel}")
            tmp.replace(dest)

        # offline, _download reads huggingface_hub's own cache only (local_files_only)
        return self.cache.get(record, fetch, f"hf://{self.repo}/{rel}", verify)
