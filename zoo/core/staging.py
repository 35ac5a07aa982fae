"""Staged builds: each model is built in STORE/.staging/NAME-HOST-BOOT-PID-XXXX and swapped into the store only once
it passed. Builds into one store serialize on STORE/.zoo-build.lock where they touch the index (cleaning stale
staging, committing a model): each commit re-reads the index under the lock and adds its model to what is there, so
two concurrent builds both land. A staging directory is judged stale only by the process that made it: same host and
boot (then by its PID), or the same host after a reboot; another host's or container's staging is left alone.

The swap writes the new index in full inside the staging directory, moves the model's old directory aside, moves the
new one in and renames the index over the old one. A build killed before the swap leaves the store untouched (its
staging is discarded next time); killed inside it, the next build finishes the swap from the staged index."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from . import store

STAGING = ".staging"   # OUT/.staging/NAME-HOST-BOOT-PID-XXXX: one model being built; never listed in the index
LOCK = ".zoo-build.lock"


def bookkeeping(relative: Path) -> bool:
    """Whether a path inside a store (relative to its root) is a build's own bookkeeping, not the store's content:
    staging, the build lock and the note of who holds it (a killed build leaves both for the next one to take over)."""
    parts = Path(relative).parts
    return bool(parts) and (parts[0] == STAGING or parts[0].startswith(LOCK))


def identity() -> tuple[str, str]:
    """(host, boot): this machine's name and this boot's id, each safe in a file name (no '-')."""
    host = re.sub(r"[^A-Za-z0-9_.]", "_", os.uname().nodename)[:64] or "host"
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:16]
    except OSError:
        boot = "noboot"
    return host, boot


@contextlib.contextmanager
def store_lock(out: Path, wait_message: bool = True):
    """Hold the store's build lock; a build that has to wait says which build holds it."""
    from filelock import FileLock, Timeout
    lock, owner = FileLock(str(out / LOCK)), out / (LOCK + ".owner")
    try:
        lock.acquire(timeout=2)
    except Timeout:
        holder = owner.read_text(errors="replace").strip() if owner.is_file() else "a build that did not say who it is"
        if wait_message:
            print(f"zoo build: waiting for {out / LOCK}, held by {holder}", file=sys.stderr)
        lock.acquire()
    try:
        host, boot = identity()
        owner.write_text(f"pid {os.getpid()} on {host} (boot {boot})\n")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[str]:
    """Finish or discard what killed builds left in OUT/.staging (a directory whose builder process is gone).

    A model whose swap had begun (its staged index is complete and its old directory was moved aside, or its new one
    already moved in) is swapped in the rest of the way; anything earlier is discarded. Returns what was done."""
    done = []
    host, boot = identity()
    for d in sorted((out / STAGING).glob("*")):
        name, pid = staged_name_pid(d)
        their_host, their_boot = staged_identity(d)
        if their_host != host:
            continue  # another host's or container's build: only it knows whether it is still running
        if their_boot == boot and pid and alive(pid) and pid != os.getpid():
            continue  # another build is staging there right now
        staged, live = d / "models" / name, out / "models" / name
        if swap_begun(d):
            if staged.exists() and not live.exists():
                os.rename(staged, live)
            os.replace(d / store.INDEX, out / store.INDEX)
            done.append(f"finished swapping in {name}")
        else:
            done.append(f"discarded {d.name}")
        shutil.rmtree(d, ignore_errors=True)
    return done


def staged_name_pid(d: Path) -> tuple[str, int | None]:
    parts = d.name.split("-")
    pid = parts[-2] if len(parts) >= 3 else ""
    return parts[0], int(pid) if pid.isdigit() else None


def staged_identity(d: Path) -> tuple[str, str]:
    """(host, boot) of the build that made ``d``; a name without them (an older zoo's) counts as this host and boot."""
    parts = d.name.split("-")
    return (parts[1], parts[2]) if len(parts) == 5 else identity()


def swap_begun(d: Path) -> bool:
    """Whether the staging directory ``d`` was killed in the middle of its swap (see commit)."""
    name = staged_name_pid(d)[0]
    return bool(name) and (d / store.INDEX).is_file() and ((d / "previous").exists()
                                                             or not (d / "models" / name).exists())


def new_dir(out: Path, name: str) -> Path:
    (out / STAGING).mkdir(parents=True, exist_ok=True)
    host, boot = identity()
    return Path(tempfile.mkdtemp(prefix=f"{name}-{host}-{boot}-{os.getpid()}-", dir=out / STAGING))


def link_or_copy(src: str, dest: str) -> None:
    try:
        os.link(src, dest)   # the staged tree replaces the old one by rename: the old inode stays untouched
    except OSError:
        shutil.copy2(src, dest)


def commit(out: Path, stage: Path, name: str, models: dict, entry: dict) -> dict:
    """Swap the staged model in, under the store's lock: the index as it is now (another build may have added a
    model since this one began) plus this entry is written in full (in staging) first, then the model's directory is
    replaced by rename and the index renamed over the old one. Returns the models of the new index."""
    with store_lock(out):
        current = store.load_index(out)["models"] if (out / store.INDEX).exists() else models
        merged = {**current, name: entry}
        _swap(out, stage, name, merged)
    return merged


def _swap(out: Path, stage: Path, name: str, models: dict) -> None:
    staged = stage / "models" / name
    for path in [staged, *staged.rglob("*")]:  # writers (mkstemp, safetensors) may leave 0600: a store is shared
        store.shared_mode(path, directory=path.is_dir())
    staged_index = stage / store.INDEX
    store.atomic_write(staged_index, store.index_bytes(models))
    live, aside = out / "models" / name, stage / "previous"
    live.parent.mkdir(parents=True, exist_ok=True)
    if live.exists():
        os.rename(live, aside)
    os.rename(stage / "models" / name, live)
    os.replace(staged_index, out / store.INDEX)
