"""Every setting the zoo reads from the environment, read here and only here, at the moment it is needed (so a test
or a long-lived process that changes the environment is obeyed). README.md lists them for users."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ZooError

TRUE = ("1", "true", "yes")


def flag(name: str) -> bool:
    """A yes/no variable: ``1``, ``true`` or ``yes`` (any case) is yes; anything else, or unset, is no."""
    return os.environ.get(name, "").lower() in TRUE


def value(name: str) -> str | None:
    """A variable's value; unset and empty both mean None (the default applies)."""
    return os.environ.get(name) or None


def positive_number(name: str, default: float, unit: str = "", like: str = "", integer: bool = False) -> float:
    """A number variable > 0 (unset or empty: ``default``), read at each use; anything else is refused at that use,
    naming the variable and what it must be."""
    text = value(name)
    if text is None:
        return default
    try:
        number = int(text) if integer else float(text)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ZooError(f"{name} must be a{'n integer' if integer else ' number'}{unit} > 0{like}, got {text!r}: "
                       "fix or unset it")
    return number


def default_home(cache_dir: str | Path | None = None) -> Path:
    """The zoo home (download cache, stamps, official checkpoints): ``cache_dir``, else $ZOO_HOME, else
    ~/.cache/zoo (an empty $ZOO_HOME is unset)."""
    return Path(cache_dir or value("ZOO_HOME") or Path.home() / ".cache" / "zoo").expanduser()


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` when given, else $ZOO_OFFLINE."""
    if offline is not None:
        return offline
    return flag("ZOO_OFFLINE")


def local_store(cache_dir: str | Path | None = None) -> Path:
    """The user's own store: `zoo build NAME` with no --out builds here, `zoo.load(NAME)` with no source looks here."""
    return default_home(cache_dir) / "store"


def hf_offline() -> bool:
    """$HF_HUB_OFFLINE, as huggingface_hub reads it."""
    return flag("HF_HUB_OFFLINE")


def source_spec() -> str | None:
    """$ZOO_SOURCE: the source used when none is given."""
    return value("ZOO_SOURCE")


def channel_file() -> Path | None:
    """$ZOO_CHANNEL: a channel file that replaces the one the package ships."""
    path = value("ZOO_CHANNEL")
    return Path(path).expanduser() if path else None


def hf_endpoint() -> str | None:
    """$HF_ENDPOINT: a Hub mirror the user chose (the digests still decide)."""
    return value("HF_ENDPOINT")


def hf_token() -> str | None:
    return value("HF_TOKEN")


def verify_always() -> bool:
    """``ZOO_VERIFY=always``: hash every file on every load (no stamps)."""
    return os.environ.get("ZOO_VERIFY", "").lower() == "always"


def manifests_dir() -> Path | None:
    """$ZOO_MANIFESTS: a directory of manifests used instead of the package's."""
    path = value("ZOO_MANIFESTS")
    return Path(path) if path else None


def debug() -> bool:
    """$ZOO_DEBUG (any non-empty value): unexpected errors show their traceback."""
    return bool(value("ZOO_DEBUG"))


def ray_address() -> str | None:
    return value("RAY_ADDRESS")


def training_cache(cache_dir: str | Path | None = None) -> Path:
    """Where a re-trained demo detector is cached: ``cache_dir``, else $ZOO_TEST_CACHE, else ~/.cache/zoo-tests."""
    return Path(cache_dir or value("ZOO_TEST_CACHE") or Path.home() / ".cache" / "zoo-tests")


def trusted_builders() -> list[str]:
    """$ZOO_TRUSTED_BUILDERS: comma-separated modules whose builders a store's index may name (zoo.load.architecture)."""
    return [e.strip() for e in (value("ZOO_TRUSTED_BUILDERS") or "").split(",") if e.strip()]


def trusted_sources() -> list[str]:
    """$ZOO_TRUSTED_SOURCES: comma-separated sources the user trusts to run code (zoo/core/trust.py)."""
    return [e.strip() for e in (value("ZOO_TRUSTED_SOURCES") or "").split(",") if e.strip()]
