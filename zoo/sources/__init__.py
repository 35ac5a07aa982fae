"""Where artifacts come from: a local directory (store or bundle), an HTTP(S) mirror, or the Hugging Face Hub.

A source is written as a directory path, an ``http(s)://`` URL of a mirror's root, or ``hf://ORG/REPO``.
Precedence: the ``source=`` argument, then ``$ZOO_SOURCE``; the cache is ``cache_dir=``, then ``$ZOO_HOME``, then
``~/.cache/zoo``; offline is ``offline=``, then ``$ZOO_OFFLINE=1``.
Every source returns local paths only after their sha256 matches the index; with ``fetch(record, verify=False)`` a
file already present comes back unhashed and the caller must load it through ``zoo.verified.load_verified``, which hashes
it while the runtime reads it (a download is always verified as it arrives).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import NotAvailableError


def default_home(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get("ZOO_OFFLINE", "").lower() in ("1", "true", "yes")


def open_source(spec: str | os.PathLike | None = None, cache_dir: str | Path | None = None, offline: bool | None = None):
    spec = spec if spec is not None else os.environ.get("ZOO_SOURCE")
    if not spec:
        raise NotAvailableError("no source given: pass source= (a store directory, an http(s):// mirror or hf://ORG/REPO) "
                                "or set ZOO_SOURCE")
    spec = str(spec)
    home, off = default_home(cache_dir), is_offline(offline)
    if spec.startswith(("http://", "https://")):
        from .http import HttpSource
        return HttpSource(spec, home, off)
    if spec.startswith("hf://"):
        from .hub import HubSource
        return HubSource(spec[len("hf://"):], home, off)
    from .local import LocalSource
    return LocalSource(spec)
