"""The official channel: which published index each model is loaded from when no source is given.

A channel file (TOML) pins, per model, a Hugging Face Hub repository, the commit to read it at and the sha256 of that
commit's ``index.json``. The package ships one (``zoo/official.toml``, rewritten by ``zoo release``);
``$ZOO_CHANNEL=FILE`` replaces it. Trust runs: installed package -> pinned (repo, commit, index sha256) -> the index,
refused unless its sha256 is the pinned one, before it is parsed -> every file's sha256 from that index.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from ..core import settings, toml
from ..core.hfspec import COMMIT, DEFAULT_HUB, check_repo_id
from ..errors import ChannelError, NotAvailableError

FORMAT = "zoo-channel/1"
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    repo: str           # ORG/REPO
    commit: str         # 40 hex
    index_sha256: str   # 64 hex


@dataclass
class Channel:
    hub: str = DEFAULT_HUB
    org: str = ""
    models: dict[str, Pin] = field(default_factory=dict)
    path: str = "<new channel>"


def shipped_path() -> Path:
    return Path(str(files("zoo") / "official.toml"))


def current_path() -> Path:
    return settings.channel_file() or shipped_path()


def read(path: str | Path | None = None) -> Channel:
    path = Path(path) if path else current_path()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelError(f"channel file {path} does not exist (ZOO_CHANNEL names a file written by `zoo pin`)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ChannelError(f"channel file {path} is not valid TOML: {e}") from None
    if doc.get("format") != FORMAT:
        raise ChannelError(f"{path}: expected format = \"{FORMAT}\", got {doc.get('format')!r}")
    meta = doc.get("channel", {})
    hub, org = meta.get("hub", DEFAULT_HUB), meta.get("org", "")
    if not isinstance(hub, str) or not hub.startswith(("http://", "https://")):
        raise ChannelError(f"{path}: [channel] hub must be an http(s):// URL, got {hub!r}")
    if not isinstance(org, str):
        raise ChannelError(f"{path}: [channel] org must be a string, got {org!r}")
    models = {}
    for name, pin in (doc.get("models") or {}).items():
        where = f"{path}: [models.{name}] "
        if not isinstance(pin, dict):
            raise ChannelError(f"{where}must be a table with repo, commit and index_sha256")
        repo, commit, digest = pin.get("repo"), pin.get("commit"), pin.get("index_sha256")
        check_repo_id(repo, where + "repo: ")
        if not (isinstance(commit, str) and COMMIT.fullmatch(commit)):
            raise ChannelError(f"{where}commit must be a full commit id (40 lowercase hex characters), got {commit!r}")
        if not (isinstance(digest, str) and SHA256.fullmatch(digest)):
            raise ChannelError(f"{where}index_sha256 must be 64 lowercase hex characters, got {digest!r}")
        models[name] = Pin(repo, commit, digest)
    return Channel(hub.rstrip("/"), org, models, str(path))


def dumps(channel: Channel, comment: str = "") -> str:
    """The channel as TOML, a commented header first."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [f"format = {toml.value(FORMAT)}"] + toml.table("channel", {"hub": channel.hub, "org": channel.org})
    if not channel.models:
        lines += ["", "# no release pinned yet: `zoo release` or `zoo pin` fills [models.NAME] tables", "[models]"]
    for name, pin in sorted(channel.models.items()):
        lines += toml.table(f"models.{toml.key(name)}", {"repo": pin.repo, "commit": pin.commit,
                                                          "index_sha256": pin.index_sha256})
    return "\n".join(lines) + "\n"


def write(channel: Channel, path: str | Path, comment: str = "") -> None:
    from ..core.store import atomic_write
    text = dumps(channel, comment)
    if len(tomllib.loads(text).get("models", {})) != len(channel.models):  # what we write must read back as written
        raise ChannelError(f"{path}: the channel did not serialise as written (a model name TOML cannot hold?)")
    atomic_write(path, text.encode("utf-8"))


def pin_for(model: str) -> tuple[Pin, Channel]:
    """The pin of ``model`` (a manifest name) in the current channel, or a NotAvailableError saying what to do."""
    channel = read()
    if model in channel.models:
        return channel.models[model], channel
    raise NotAvailableError(
        f"no source given and {unpinned_reason(model, channel)}: pass source= (a store directory, an http(s):// "
        "mirror or hf://ORG/REPO) or set ZOO_SOURCE, or set ZOO_CHANNEL to a channel file written by "
        "`zoo pin hf://ORG/REPO --out FILE`")


def unpinned_reason(model: str, channel: Channel | None = None) -> str | None:
    """Why the current channel cannot give ``model`` (None: it pins it)."""
    channel = channel or read()
    if model in channel.models:
        return None
    from ..core.version import __version__
    explicit = settings.channel_file() is not None
    if not channel.models:
        return (f"the channel file {channel.path} (ZOO_CHANNEL) pins no model" if explicit else
                f"zoo {__version__} pins no official release yet (its channel file {channel.path} lists no repository)")
    return f"the channel file {channel.path} pins no release of {model} (it pins: {', '.join(sorted(channel.models))})"


