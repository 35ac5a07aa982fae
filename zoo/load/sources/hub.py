"""The Hugging Face Hub: ``hf://ORG/REPO`` at a branch, tag or commit.

A branch or tag is resolved to a commit once, when the index is read (huggingface_hub's ``model_info``); the index
and every file are then fetched at that commit, so a push in between cannot mix two commits. Files are downloaded
over the Hub's plain ``resolve`` URLs straight into the zoo's blob cache (verified by sha256, resumable, one copy):
huggingface_hub's own cache is not used. A pinned source (the official channel) knows its commit and index sha256
up front: it asks the Hub nothing but files, and refuses an index whose sha256 is not the pinned one before reading it.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from .. import transport as download
from ...core import settings, store
from ...core.hfspec import COMMIT, check_repo_id, endpoint
from ...errors import IntegrityError, NotAvailableError, UnsupportedError, ZooError
from .cache import Cache


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ZooError("resolving an hf:// branch or tag needs huggingface_hub: pip install 'zoo[hub]' "
                       "(a pinned commit does not)") from None
    return huggingface_hub


class HubSource:
    def __init__(self, repo: str, home: Path, offline: bool, commit: str | None = None,
                 index_sha256: str | None = None, endpoint: str | None = None, model: str | None = None,
                 pinned_by: str | None = None, ref: str | None = None):
        self.repo = check_repo_id(repo, "hf:// source: ")
        self.home, self.offline = Path(home), offline or settings.hf_offline()
        self.cache = Cache(home)
        self.pinned = (commit, index_sha256) if commit else None
        self.channel_hub, self.model, self.pinned_by, self.ref = endpoint, model, pinned_by, ref
        self.revision, self.index_sha256, self.index_data = commit, None, None
        self.description = f"hf://{repo}" + (f"@{commit[:12]} (pinned by {pinned_by})" if pinned_by else "")
        self._session = None

    @property
    def endpoint(self) -> str:
        return endpoint(self.channel_hub)

    @property
    def session(self):
        if self._session is None:
            self._session = download.session()
            try:  # a token for private repositories, as huggingface_hub would send it
                from huggingface_hub.utils import build_hf_headers
                self._session.headers.update({k: v for k, v in build_hf_headers().items() if k == "authorization"})
            except Exception:  # not installed, or no token: public repositories need none
                if settings.hf_token():
                    self._session.headers["authorization"] = f"Bearer {settings.hf_token()}"
        return self._session

    def _state(self, kind: str, name: str) -> Path:
        """Small files mapping a ref to its commit, and a commit to its index sha256 (names quoted: no path tricks)."""
        return self.home / "hub" / self.repo / kind / quote(name, safe="")

    def url(self, rel: str, commit: str) -> str:
        return f"{self.endpoint}/{self.repo}/resolve/{commit}/{quote(rel)}"

    def _resolve(self, revision: str | None) -> tuple[str, str | None]:
        """(commit, index sha256 if known) for ``revision``: a branch or tag is asked of the Hub once."""
        if self.pinned:
            if revision and revision not in self.pinned:
                raise UnsupportedError(f"{self.description} is pinned at commit {self.pinned[0]}; revision={revision!r} "
                                       "applies to an explicit source (source='hf://ORG/REPO')")
            return self.pinned
        rev = revision or self.ref or "main"
        if COMMIT.fullmatch(rev):
            known = self._state("commits", rev)
            return rev, known.read_text().strip() if known.is_file() else None
        ref = self._state("refs", rev)
        if self.offline:
            if not ref.is_file():
                raise NotAvailableError(f"offline and hf://{self.repo}@{rev} was never resolved to a commit here; "
                                        "load it once with network, or pin a commit")
            return self._resolve(ref.read_text().strip())
        try:
            commit = _hub().HfApi(endpoint=self.endpoint).model_info(self.repo, revision=rev).sha
        except ZooError:
            raise
        except Exception as e:  # huggingface_hub raises many types: say which repository and why
            raise NotAvailableError(f"hf://{self.repo}@{rev}: cannot resolve it to a commit at {self.endpoint}: "
                                    f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        if not (isinstance(commit, str) and COMMIT.fullmatch(commit)):
            raise IntegrityError(f"hf://{self.repo}@{rev}: the Hub answered {commit!r}, not a commit id")
        store.atomic_write(ref, (commit + "\n").encode())
        return self._resolve(commit)

    def index(self, revision: str | None = None) -> dict:
        commit, want = self._resolve(revision)
        where = f"hf://{self.repo}@{commit}/{store.INDEX}"
        cached = self.home / "indexes" / f"{want}.json" if want else None
        data = cached.read_bytes() if cached is not None and cached.is_file() else None
        if data is None or store.sha256_bytes(data) != want:  # absent, or a damaged copy: fetch it
            if self.offline:
                raise NotAvailableError(f"offline and the index of hf://{self.repo}@{commit} is not cached here; "
                                        + self._hint())
            try:
                data = download.get_bytes(self.url(store.INDEX, commit), self.session)
            except NotAvailableError as e:
                raise NotAvailableError(f"{e}; {self._hint()}") from None
        digest = store.sha256_bytes(data)
        if self.pinned and digest != want:  # checked before a byte of it is parsed
            raise IntegrityError(f"{where} has sha256 {digest}, but {self.pinned_by} pins {want}: refused (a changed "
                                 "mirror, a moved or re-pushed repository cannot swap what this channel pins)")
        index = store.read_index_bytes(data, where)
        if want and digest != want:
            raise IntegrityError(f"{where} has sha256 {digest}, but it had {want} when first read here: a commit's "
                                 "content cannot change, so the server is not serving that commit faithfully: refused")
        self.cache.record_index(data)  # `zoo cache prune` keeps the blobs of every index recorded
        store.atomic_write(self._state("commits", commit), (digest + "\n").encode())
        self.revision, self.index_sha256, self.index_data = commit, digest, data
        return index

    def _hint(self) -> str:
        name = self.model or "NAME"
        source = "" if self.pinned_by else f" --source hf://{self.repo}"
        return (f"to get it without network here: on a connected machine run `zoo download {name}{source} --to DIR`, "
                f"copy DIR here and run `zoo import DIR`")

    def fetch(self, record: dict, verify: bool = True) -> Path:
        if self.revision is None:
            raise ZooError("HubSource.fetch before index(): the commit is not known yet")
        rel = store.safe_relpath(record["path"])
        url = self.url(rel, self.revision)
        fetch = None if self.offline else (
            lambda dest: download.download(url, dest, record["sha256"], record.get("size"), self.session, desc=rel))
        try:
            return self.cache.get(record, fetch, f"hf://{self.repo}@{self.revision[:12]}/{rel}", verify)
        except NotAvailableError as e:
            raise NotAvailableError(f"{e}; {self._hint()}") from None

