"""Reproducible rebuilds: a lock of a build's digests, and `zoo build --check LOCK` that rebuilds and compares."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import store
from ..core.cpu import model_name as cpu

LOCK_FORMAT = "zoo-lock/1"


def lock_of(store_dir: str | Path) -> dict:
    from .pipeline import toolchain
    root = Path(store_dir)
    index = store.load_index(root)
    models = {}
    weights = set()
    for name, entry in sorted(index["models"].items()):
        w = entry["weights"]
        spec = f"random:{w['seed']}" if w["kind"] == "random" else "official"
        weights.add(spec)
        files = store.entry_records(entry)
        models[name] = {"weights": spec, **({"checkpoint_sha256": w["checkpoint_sha256"]} if "checkpoint_sha256" in w else {}),
                        "methods": sorted(a["method"] for a in entry["artifacts"] if a["method"] != "eager"),
                        "files": {r["path"]: r["sha256"] for r in sorted(files, key=lambda r: r["path"])}}
    return {"format": LOCK_FORMAT, "toolchain": {**toolchain(), "cpu": cpu()}, "index_sha256": store.sha256_file(root / store.INDEX),
            "models": models}


def write_lock(store_dir: str | Path, lock_path: str | Path) -> dict:
    lock = lock_of(store_dir)
    store.atomic_write(lock_path, store.canonical_json(lock))
    return lock


# the files that record eager's outputs as the build machine computed them (the replay reference, and each artifact's
# metadata with the parity figures measured against it): their bytes follow the CPU's floating-point kernels (oneDNN
# picks them by the CPU's instruction set), so they are byte-identical to a lock only on the lock's CPU model
CPU_RECORDS = ("reference.npz", "metadata.json")


def cpu_record(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in CPU_RECORDS


def other_cpu(lock: dict) -> str | None:
    """The lock's CPU model where it is not this machine's (None on the same model)."""
    theirs = lock.get("toolchain", {}).get("cpu")
    return theirs if theirs != cpu() else None


@dataclass
class Comparison:
    problems: list[str]  # what makes a rebuild differ from its lock
    expected: list[str]  # CPU records that differ on a CPU model other than the lock's (their bytes cannot match)


def compare(lock: dict, rebuilt: dict, names: list[str]) -> Comparison:
    """Human-readable differences between a lock and a rebuild's lock, for the models named. On a CPU model other than
    the lock's, a differing CPU record (CPU_RECORDS) is expected rather than a problem; every other file (model files,
    weights, cards) must still be byte-identical."""
    problems, expected = [], []
    excusable = other_cpu(lock) is not None
    for name in names:
        pinned, used = lock["models"][name].get("checkpoint_sha256"), rebuilt["models"].get(name, {}).get("checkpoint_sha256")
        if pinned and used and pinned != used:  # the official file changed (detectron2 publishes no digest)
            problems.append(f"differs   {name}'s official checkpoint: lock {pinned[:16]}..., rebuild {used[:16]}...")
        want, got = lock["models"][name]["files"], rebuilt["models"].get(name, {}).get("files", {})
        for path in sorted(set(want) | set(got)):
            if path not in got:
                problems.append(f"missing   {path} (the rebuild did not produce it)")
            elif path not in want:
                problems.append(f"extra     {path} (not in the lock)")
            elif want[path] != got[path]:
                line = f"differs   {path}: lock {want[path][:16]}..., rebuild {got[path][:16]}..."
                (expected if excusable and cpu_record(path) else problems).append(line)
    if (set(names) == set(lock["models"]) and not problems and not expected
            and lock["index_sha256"] != rebuilt["index_sha256"]):
        problems.append(f"differs   index.json: lock {lock['index_sha256'][:16]}..., rebuild {rebuilt['index_sha256'][:16]}...")
    return Comparison(problems, expected)


def check(lock_path: str | Path, names: list[str] | None = None, progress: bool = True, keep: str | None = None,
          builder=None) -> int:
    """Rebuild the models of a lock (or those named) in a fresh directory and compare every file's sha256."""
    from ..core.manifest import resolve
    from .pipeline import build, toolchain

    lock = json.loads(Path(lock_path).read_text())
    if lock.get("format") != LOCK_FORMAT:
        print(f"{lock_path}: not a zoo lock (expected format {LOCK_FORMAT})")
        return 2
    names = [resolve(n).name for n in names] if names else list(lock["models"])
    unknown = [n for n in names if n not in lock["models"]]
    if unknown:
        print(f"{lock_path} has no entry for {', '.join(unknown)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="zoo-check-", dir=keep) as tmp:
        for name in names:
            spec = lock["models"][name]
            every = sorted(e.method for e in resolve(name).selected(None))
            # the same arguments as the reference build, so the command recorded in the metadata is the same too
            methods = None if spec["methods"] == every else spec["methods"]
            result = build([name], tmp, spec["weights"], methods, progress=progress, builder=builder)
            for line in result.lines:
                print(line)
        rebuilt = lock_of(tmp)
    result = compare(lock, rebuilt, names)
    problems = result.problems
    for p in problems:
        print(p)
    if problems:
        here = {**toolchain(), "cpu": cpu()}
        drift = {k: (v, here.get(k)) for k, v in lock["toolchain"].items() if here.get(k) != v}
        if drift:
            print("toolchain differs from the lock's, the likely cause: "
                  + ", ".join(f"{k} {a} (lock) vs {b} (here)" for k, (a, b) in drift.items()))
        print(f"FAILED: {len(problems)} file(s) differ from {lock_path}")
        return 1
    total = sum(len(lock["models"][n]["files"]) for n in names)
    if result.expected:
        print(f"OK: {total - len(result.expected)} files of {len(names)} model(s) are byte-identical to {lock_path} "
              f"(toolchain {toolchain()['torch']}/{toolchain()['torchvision']}); {len(result.expected)} differ, as they may "
              f"on another CPU model (the lock's: {other_cpu(lock)}; here: {cpu()}): they record eager's outputs, "
              "whose last bits follow the CPU's float kernels:")
        for line in result.expected:
            print(f"  {line}")
        return 0
    print(f"OK: {total} files of {len(names)} model(s) "
          f"are byte-identical to {lock_path} (toolchain {toolchain()['torch']}/{toolchain()['torchvision']})")
    return 0
