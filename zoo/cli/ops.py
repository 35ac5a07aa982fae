"""Operating on stores and caches: `zoo verify`, `zoo bench`, `zoo cache`."""
from __future__ import annotations


import argparse

from .options import EXPORTED, RUNTIMES, count_arg, image_size_arg, table


def add_verify(sub) -> None:
    s = sub.add_parser("verify", help="re-hash a store, bundle or cache and replay reference inputs")
    s.add_argument("path")
    s.add_argument("name", nargs="?")
    s.add_argument("--runtime", choices=RUNTIMES)
    s.add_argument("--no-replay", action="store_true", help="hashes and provenance only")
    s.add_argument("--trust-code", action="store_true", help="replay code artifacts (tracing, scripting, export, aoti) "
                   "of this store too: only for a store you trust (docs/security.md)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_verify)


def cmd_verify(a) -> int:
    from ..ops.verify import verify_path
    lines = verify_path(a.path, a.name, a.runtime, do_replay=not a.no_replay, trust_code=a.trust_code)
    for line in lines:
        if not line.ok or a.verbose or " " in line.what:  # file lines only when bad (or -v); every replay line
            print(line)
    bad = [x for x in lines if not x.ok]
    replays = [x for x in lines if " " in x.what]  # "MODEL runtime/method"; a file line is a path
    files = [x for x in lines if " " not in x.what]
    shown = "" if a.verbose else " (only the bad ones listed; -v lists every file)"
    print(f"{sum(x.ok for x in files)} of {len(files)} files match their sha256{shown if files else ''}"
          + (f"; {sum(x.ok for x in replays)} of {len(replays)} artifacts reproduce their reference outputs"
             if replays else "; no artifact replayed" + (" (--no-replay)" if a.no_replay else
                                                         " (a file was bad)" if bad else ""))
          + f": {'all ok, 0 bad' if not bad else f'{len(bad)} bad'}")
    return 1 if bad else 0


def add_bench(sub) -> None:
    from ..ops.bench import columns_help
    s = sub.add_parser("bench", help="latency, load time, memory and size of each artifact vs eager",
                       description="Latency, load time, memory and size of each artifact against the eager reference. "
                                   "The table's columns:\n" + columns_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("names", nargs="*", help="models (default: every model the source holds)")
    s.add_argument("--source", default=None, help="default $ZOO_SOURCE, else the official channel")
    s.add_argument("--runtime", choices=RUNTIMES)
    s.add_argument("--method", choices=EXPORTED)
    s.add_argument("--warmup", type=count_arg(0), default=1, help="untimed calls after the first (default 1)")
    s.add_argument("--repeat", type=count_arg(1), default=5, help="timed calls (default 5)")
    s.add_argument("--threads", type=count_arg(1), default=2)
    s.add_argument("--size", type=image_size_arg, default=(480, 640), help="input HxW (default 480x640)")
    s.add_argument("--json", help="also write the figures as JSON here")
    s.add_argument("--plot", metavar="FILE.png", help="also draw latency against agreement AP50, one point per "
                                                      "artifact (the `plot` extra: matplotlib)")
    s.add_argument("--trust-code", action="store_true", help="also bench the code artifacts (tracing, scripting, export, "
                   "aoti) of a source you trust (docs/security.md); without it they are skipped, and said")
    s.set_defaults(fn=cmd_bench)


def cmd_bench(a) -> int:
    from ..ops.bench import bench
    from ..core.manifest import all_manifests
    bench(a.names or list(all_manifests()), a.source, a.runtime, a.method, a.warmup, a.repeat, a.threads, a.size,
          a.json, explicit=bool(a.names), plot_out=a.plot, trust_code=a.trust_code)
    return 0


def add_cache(sub) -> None:
    s = sub.add_parser("cache", help="what the download cache holds (list), remove unreferenced blobs (prune), or all")
    s.add_argument("action", choices=["list", "prune", "clear"])
    s.add_argument("--dry-run", action="store_true", help="prune, clear: only say what would be removed")
    s.add_argument("--cache-dir", default=None, help="the zoo home (default $ZOO_HOME, else ~/.cache/zoo)")
    s.set_defaults(fn=cmd_cache)


def cmd_cache(a) -> int:
    from ..ops import cache_admin
    from ..core.settings import default_home
    home = default_home(a.cache_dir)
    if a.action == "list":
        rows = cache_admin.list_rows(home)
        if rows:
            print(table(rows, ["model", "file", "size", "sha256"]))
        blobs = cache_admin.blobs(home)
        unused = [b for b in blobs if not b.uses]
        for name, size in cache_admin.extra_dirs(home):
            print(f"{name + '/':10s} {cache_admin.human(size)}")
        print(f"{home}: {len(blobs)} blob(s), {cache_admin.human(sum(b.size for b in blobs))}"
              + (f"; {len(unused)} listed by no recorded index ({cache_admin.human(sum(b.size for b in unused))}): "
                 "zoo cache prune" if unused else ""))
    elif a.action == "prune":
        gone = cache_admin.prune(home, dry_run=a.dry_run)
        for b in gone:
            print(f"{'would remove' if a.dry_run else 'removed'} {b.path} ({cache_admin.human(b.size)})")
        print(f"{'would free' if a.dry_run else 'freed'} {cache_admin.human(sum(b.size for b in gone))} "
              f"in {len(gone)} blob(s) that no recorded index lists")
    else:
        freed = cache_admin.human(cache_admin.clear(home, dry_run=a.dry_run))
        kept = home / cache_admin.TRUSTED
        print(f"{'would free' if a.dry_run else 'freed'} {freed} from {home}"
              + (f" (kept {kept}: the checkpoint digests trusted on first use)" if kept.is_file() else ""))
    return 0
