"""Staged builds: each model is built in STORE/.staging/NAME-PID-XXXX and swapped into the store only once it passed.

The swap writes the new index in full inside the staging directory, moves the model's old directory aside, moves the
new one in and renames the index over the old one. A build killed before the swap leaves the store untouched (its
staging is discarded next time); killed inside it, the next build finishes the swap from the staged index."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import store

STAGING = ".staging"   # OUT/.staging/NAME-PID-XXXX: one model being built; never listed in the index


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
    for d in sorted((out / STAGING).glob("*")):
        name, pid = staged_name_pid(d)
        if pid and alive(pid) and pid != os.getpid():
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
    name, _, pid = d.name.rpartition("-")[0].rpartition("-")
    return name, int(pid) if pid.isdigit() else None


def swap_begun(d: Path) -> bool:
    """Whether the staging directory ``d`` was killed in the middle of its swap (see commit)."""
    name = staged_name_pid(d)[0]
    return bool(name) and (d / store.INDEX).is_file() and ((d / "previous").exists()
                                                             or not (d / "models" / name).exists())


def new_dir(out: Path, name: str) -> Path:
    (out / STAGING).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-{os.getpid()}-", dir=out / STAGING))


def link_or_copy(src: str, dest: str) -> None:
    try:
        os.link(src, dest)   # the staged tree replaces the old one by rename: the old inode stays untouched
    except OSError:
        shutil.copy2(src, dest)


def commit(out: Path, stage: Path, name: str, models: dict, entry: dict) -> None:
    """Swap the staged model in: the new index is written in full (in staging) first, then the model's directory is
    replaced by rename and the index renamed over the old one."""
    models = {**models, name: entry}
    staged_index = stage / store.INDEX
    store.atomic_write(staged_index, store.index_bytes(models))
    live, aside = out / "models" / name, stage / "previous"
    live.parent.mkdir(parents=True, exist_ok=True)
    if live.exists():
        os.rename(live, aside)
    os.rename(stage / "models" / name, live)
    os.replace(staged_index, out / store.INDEX)
