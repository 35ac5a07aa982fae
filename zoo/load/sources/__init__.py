"""Where artifacts come from: a local directory (store or bundle), an HTTP(S) mirror, or the Hugging Face Hub.

A source is written as a directory path, an ``http(s)://`` URL of a mirror's root, or ``hf://ORG/REPO``.
Precedence: the ``source=`` argument, then ``$ZOO_SOURCE``, then the official channel (zoo/load/channel.py); the cache
is ``cache_dir=``, then ``$ZOO_HOME``, then ``~/.cache/zoo``; offline is ``offline=``, then ``$ZOO_OFFLINE=1``.
Every source returns local paths only after their sha256 matches the index; with ``fetch(record, verify=False)`` a
file already present comes back unhashed and the caller must load it through ``zoo.load.verified.load_verified``, which hashes
it while the runtime reads it (a download is always verified as it arrives).
"""
from __future__ import annotations

import os
from pathlib import Path

from ...core.settings import default_home, is_offline
from ...errors import NotAvailableError


def open_source(spec: str | os.PathLike | None = None, cache_dir: str | Path | None = None, offline: bool | None = None,
                model: str | None = None):
    """The source ``spec`` names; with none (and no $ZOO_SOURCE), the channel's pinned source for ``model``."""
    spec = spec if spec is not None else os.environ.get("ZOO_SOURCE")
    home, off = default_home(cache_dir), is_offline(offline)
    if not spec:
        if model is None:
            raise NotAvailableError("no source given: pass source= (a store directory, an http(s):// mirror or "
                                    "hf://ORG/REPO) or set ZOO_SOURCE")
        return channel_source(model, home, off)
    spec = str(spec)
    if spec.startswith(("http://", "https://")):
        from .http import HttpSource
        return HttpSource(spec, home, off)
    if spec.startswith("hf://"):
        from .hub import HubSource
        from ...core.hfspec import parse_spec
        repo, revision = parse_spec(spec)
        return HubSource(repo, home, off, model=model, ref=revision)
    from .local import LocalSource
    return LocalSource(spec)


def channel_source(model: str, home: Path, offline: bool):
    """The Hub repository, commit and index digest that the channel (shipped, or $ZOO_CHANNEL) pins for ``model``."""
    from ..channel import pin_for
    from .hub import HubSource
    pin, channel = pin_for(model)
    return HubSource(pin.repo, home, offline, commit=pin.commit, index_sha256=pin.index_sha256, endpoint=channel.hub,
                     model=model, pinned_by=f"the channel {channel.path}")
