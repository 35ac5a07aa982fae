"""Where artifacts come from: a local directory (store or bundle), an HTTP(S) mirror, or the Hugging Face Hub.

A source is written as a directory path, an ``http(s)://`` URL of a mirror's root, or ``hf://ORG/REPO``.
Precedence: the ``source=`` argument, then ``$ZOO_SOURCE``, then by model name: the official channel
(zoo/load/channel.py) where it pins the model, else a bundle imported with `zoo import`, else the user's local store
``$ZOO_HOME/store`` (what `zoo build NAME` with no ``--out`` builds into). The cache
is ``cache_dir=``, then ``$ZOO_HOME``, then ``~/.cache/zoo``; offline is ``offline=``, then ``$ZOO_OFFLINE=1``.
Every source returns local paths only after their sha256 matches the index; with ``fetch(record, verify=False)`` a
file already present comes back unhashed and the caller must load it through ``zoo.load.verified.load_verified``, which hashes
it while the runtime reads it (a download is always verified as it arrives).
"""
from __future__ import annotations

import os
from pathlib import Path

from ...core import settings
from ...core.trust import LOCAL_STORE
from ...core.settings import default_home, is_offline, local_store  # noqa: F401 (local_store: for the CLI)
from ...errors import NotAvailableError, UnknownModelError, ZooError


def open_source(spec: str | os.PathLike | None = None, cache_dir: str | Path | None = None, offline: bool | None = None,
                model: str | None = None):
    """The source ``spec`` names; with none (and no $ZOO_SOURCE), the channel's pinned source for ``model``."""
    spec = spec if spec is not None else settings.source_spec()
    home, off = default_home(cache_dir), is_offline(offline)
    if not spec:
        if model is None:
            raise NotAvailableError("no source given: pass source= (a store directory, an http(s):// mirror or "
                                    "hf://ORG/REPO) or set ZOO_SOURCE")
        return default_source(model, home, off)
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


def _store_has(root: Path, model: str) -> bool:
    from ...core import store
    try:
        models = store.load_index(root)["models"]
    except (OSError, ZooError):
        return False
    return model in models or any(model in e.get("aliases", []) for e in models.values())


def default_source(model: str, home: Path, offline: bool):
    """Where a model comes from when no source is given, in order: the channel's pin, a bundle imported with `zoo
    import`, the local store ``home/store``. Each source says which it is (``origin``); when none has the model, the
    error names the `zoo build` command (an unknown name gets the typo check first)."""
    from ..channel import unpinned_reason
    from .imported import ImportedSource, read_imports
    not_pinned = unpinned_reason(model)
    if not_pinned is None:
        src = channel_source(model, home, offline)
        src.origin = "channel"
        return src
    if model in read_imports(home):
        src = ImportedSource(home, model)
        src.origin = "imported bundle"
        return src
    store_dir = home / "store"
    if _store_has(store_dir, model):
        from .local import LocalSource
        src = LocalSource(store_dir)
        src.description, src.origin = f"your local store {store_dir}", LOCAL_STORE
        return src
    from ...core.manifest import resolve
    try:
        manifest = resolve(model)
    except UnknownModelError as e:  # a typo is the likelier story than a model of your own nobody built
        raise UnknownModelError(f"{e}; nor did `zoo import` or `zoo build` put a model of that name in {home}") from None
    name, host = manifest.name, manifest.weights.get("url", "").split("/")[2:3] or ["its checkpoint's host"]
    offline = (f"; with no network: `zoo build {name} --weights random:0`, seeded random weights whose detections are "
               "meaningless" if manifest.random_weights else "")
    raise NotAvailableError(
        f"{name}: no source given, {not_pinned}, and neither an imported "
        f"bundle nor your local store {store_dir} has it. Build it there with one command: `zoo build {name}` "
        f"(official weights, from {host[0]}{offline}), or try `zoo demo`; or load from elsewhere: "
        "source= (a store directory, an http(s):// mirror or hf://ORG/REPO), ZOO_SOURCE, or ZOO_CHANNEL")


def channel_source(model: str, home: Path, offline: bool):
    """The Hub repository, commit and index digest that the channel (shipped, or $ZOO_CHANNEL) pins for ``model``."""
    from ..channel import pin_for
    from .hub import HubSource
    pin, channel = pin_for(model)
    return HubSource(pin.repo, home, offline, commit=pin.commit, index_sha256=pin.index_sha256, endpoint=channel.hub,
                     model=model, pinned_by=f"the channel {channel.path}")
