"""The ``hf://ORG/REPO[@REVISION]`` grammar and the Hub endpoint: shared by the Hub source, the channel file and
publishing. No network."""
from __future__ import annotations

import re

from . import settings
from ..errors import ChannelError

DEFAULT_HUB = "https://huggingface.co"
REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
COMMIT = re.compile(r"[0-9a-f]{40}")


def check_repo_id(repo: str, where: str = "") -> str:
    """``ORG/REPO`` as the Hub spells them; also safe as two path components."""
    parts = repo.split("/") if isinstance(repo, str) else []
    if len(parts) != 2 or not all(REPO_PART.fullmatch(p) and ".." not in p for p in parts):
        raise ChannelError(f"{where}expected a repository id ORG/REPO (letters, digits, '.', '_', '-'), got {repo!r}")
    return repo


def endpoint(channel_hub: str | None = None) -> str:
    """The Hub to talk to: $HF_ENDPOINT (a mirror the user chose: the digests still decide), else the channel's."""
    return (settings.hf_endpoint() or channel_hub or DEFAULT_HUB).rstrip("/")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``hf://ORG/REPO[@REVISION]`` -> (ORG/REPO, REVISION or None)."""
    body = spec[len("hf://"):] if spec.startswith("hf://") else spec
    repo, _, revision = body.partition("@")
    return check_repo_id(repo, "hf:// source: "), revision or None
