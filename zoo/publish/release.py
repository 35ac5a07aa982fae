"""`zoo release`: build with official weights, refuse anything short of parity, lock, publish one Hub repository per
model, read each one back and pin it, so that the next package version loads exactly what was published and tested.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core import hfspec, store
from ..core.manifest import APPROXIMATE_METHODS
from ..errors import IntegrityError, ReleaseRefused
from ..load import channel
from .pin import pin


@dataclass
class ReleaseResult:
    lines: list[str] = field(default_factory=list)
    channel: channel.Channel | None = None


def check_releasable(index: dict, names: list[str] | None = None) -> None:
    """Every model (or those named) built from official weights, every export with a passing parity record (an
    approximate one: a passing accuracy record)."""
    problems = []
    for name, entry in sorted(index["models"].items()):
        if names and name not in names:
            continue
        if entry["weights"].get("kind") != "official":
            problems.append(f"{name}: weights are {entry['weights'].get('kind')!r}, not official")
        for a in entry["artifacts"]:
            gate = "accuracy" if a["method"] in APPROXIMATE_METHODS else "parity"  # zoo/build/accuracy.py
            if a["method"] != "eager" and not a.get(gate, {}).get("ok"):
                problems.append(f"{name}/{a['method']}: no passing {gate} check")
    if problems:
        raise ReleaseRefused("refusing to release: " + "; ".join(problems))


def release(org: str, store_dir: str | Path, channel_out: str | Path, names: list[str] | None = None,
            methods: list[str] | None = None, lock: str | Path | None = None, revision: str = "main", api=None,
            progress: bool = True, build: bool = True) -> ReleaseResult:
    """Build ``names`` (default: every manifest) with ``--weights official``, refuse on any failure, write the lock,
    publish to ``hf://ORG/NAME`` and rewrite ``channel_out`` with each repository's commit and index sha256."""
    from ..core.manifest import all_manifests, resolve
    from ..build.reproduce import write_lock

    hfspec.check_repo_id(f"{org}/x", "zoo release --to hf://ORG: ")
    out = Path(store_dir)
    names = [resolve(n).name for n in names] if names else list(all_manifests())
    result = ReleaseResult()
    if build:
        from ..build.pipeline import build as build_models
        built = build_models(names, out, "official", methods, progress=progress)
        result.lines += built.lines
        if built.failed:
            raise ReleaseRefused(f"refusing to release: {len(built.failed)} artifact(s) failed to build or failed "
                                 f"parity: {', '.join(built.failed)}; nothing was published")
    index = store.load_index(out)
    missing = [n for n in names if n not in index["models"]]
    if missing:
        raise ReleaseRefused(f"refusing to release: {out} has no entry for {', '.join(missing)}")
    check_releasable(index, names)
    lock_path = Path(lock) if lock else out.with_name(out.name + ".lock.json")
    write_lock(out, lock_path)
    result.lines.append(f"wrote lock {lock_path}")

    from .mirror import publish_models
    published = publish_models(out, index, org, revision, f"zoo release: {len(names)} model(s)", api, names)
    pinned = channel.read(channel_out) if Path(channel_out).is_file() else channel.Channel()
    pinned.org = org
    pinned.hub = hfspec.endpoint(pinned.hub)
    for p in published:
        result.lines.append(p.line())
        # read back what the Hub now serves at that commit: the pin is what a user will get, not what we meant to send
        got = pin([f"hf://{p.repo}@{p.commit or revision}"], hub=pinned.hub)
        for name in p.models:
            if got.models.get(name) is None or got.models[name].index_sha256 != p.index_sha256:
                raise IntegrityError(f"hf://{p.repo}: the Hub serves index sha256 "
                                     f"{got.models.get(name) and got.models[name].index_sha256}, "
                                     f"but {p.index_sha256} was published: not pinned")
            pinned.models[name] = got.models[name]
    channel.write(pinned, channel_out, f"zoo channel: the official artifacts, pinned by `zoo release --to hf://{org}`."
                  "\nEach model: the Hub repository, the commit published, and the sha256 of its index.json.")
    result.channel = pinned
    result.lines.append(f"pinned {len(published)} repository(ies) in {channel_out}")
    return result
