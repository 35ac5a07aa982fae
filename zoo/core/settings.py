"""Settings read from the environment: the zoo home (cache) and the offline flag."""
from __future__ import annotations

import os
from pathlib import Path


def default_home(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or os.environ.get("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get("ZOO_OFFLINE", "").lower() in ("1", "true", "yes")


def local_store(cache_dir: str | Path | None = None) -> Path:
    """The user's own store: `zoo build NAME` with no --out builds here, `zoo.load(NAME)` with no source looks here."""
    return default_home(cache_dir) / "store"
