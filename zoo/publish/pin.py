"""`zoo pin`: resolve published hf:// repositories to commits and write a channel file pinning them."""
from __future__ import annotations

from pathlib import Path

from ..core import settings
from ..core.hfspec import DEFAULT_HUB
from ..load.channel import Channel, Pin, read, write


def pin(specs: list[str], out: str | Path | None = None, org: str | None = None, hub: str | None = None) -> Channel:
    """Resolve each ``hf://ORG/REPO[@REVISION]`` to a commit, fetch and hash its index, and pin every model it holds.
    Written to ``out`` when given (models already in ``out`` stay pinned unless re-pinned here)."""
    from ..load.sources.hub import HubSource
    from ..core.hfspec import parse_spec
    from ..core.settings import default_home, is_offline

    channel = read(out) if out and Path(out).is_file() else Channel()
    channel.hub = (hub or settings.hf_endpoint() or channel.hub or DEFAULT_HUB).rstrip("/")
    for spec in specs:
        repo, revision = parse_spec(spec)
        src = HubSource(repo, default_home(), is_offline(), endpoint=channel.hub)
        index = src.index(revision)
        for name in index.get("models", {}):
            channel.models[name] = Pin(repo, src.revision, src.index_sha256)
        channel.org = org or channel.org or repo.split("/")[0]
    if out:
        write(channel, out, "zoo channel: written by `zoo pin`; ZOO_CHANNEL=THIS_FILE loads these pins by model name")
    return channel
