"""The write half of the Hugging Face Hub API over local git repositories, which olah then serves read-only.

No server here accepts uploads offline (olah is a read-only mirror). ``GitHubApi`` answers the three calls
``zoo.publish.mirror`` makes (create_repo, model_info with file metadata, create_commit) as the Hub does -- an initial
commit holding .gitattributes, ``sha`` and per-file ``blob_id`` (git's blob id), one commit per create_commit -- by
committing to ``MIRRORS/models/ORG/REPO``; everything a user reads back goes through olah, over HTTP."""
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace as NS

ENV = {"GIT_AUTHOR_NAME": "zoo", "GIT_AUTHOR_EMAIL": "zoo@localhost", "GIT_COMMITTER_NAME": "zoo",
       "GIT_COMMITTER_EMAIL": "zoo@localhost"}


def git(repo: Path, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


class GitHubApi:
    def __init__(self, mirrors: Path):
        self.mirrors = Path(mirrors)
        self.commits: list[tuple[str, list[str]]] = []

    def path(self, repo_id: str) -> Path:
        return self.mirrors / "models" / repo_id

    def create_repo(self, repo_id, repo_type="model", exist_ok=False):
        repo = self.path(repo_id)
        if repo.exists():
            if not exist_ok:
                raise FileExistsError(repo_id)
            return
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        (repo / ".gitattributes").write_text("*.onnx filter=lfs diff=lfs merge=lfs -text\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial commit")

    def model_info(self, repo_id, revision="main", files_metadata=False):
        repo = self.path(repo_id)
        sha = git(repo, "rev-parse", revision)
        siblings = []
        for line in git(repo, "ls-tree", "-r", "-l", sha).splitlines():
            meta, name = line.split("\t", 1)
            _, _, blob, size = meta.split()
            siblings.append(NS(rfilename=name, blob_id=blob, size=int(size), lfs=None))
        return NS(sha=sha, siblings=siblings)

    def create_commit(self, repo_id, operations, commit_message, revision="main"):
        repo = self.path(repo_id)
        git(repo, "checkout", "-q", revision)
        for op in operations:
            dest = repo / op.path_in_repo
            dest.parent.mkdir(parents=True, exist_ok=True)
            content = op.path_or_fileobj
            dest.write_bytes(content if isinstance(content, bytes) else Path(content).read_bytes())
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", commit_message)
        self.commits.append((repo_id, [op.path_in_repo for op in operations]))
        return NS(oid=git(repo, "rev-parse", "HEAD"))
