"""Bundles for air-gapped machines: `zoo download`, `zoo import`."""
from __future__ import annotations


from .options import LOADABLE, RUNTIMES


def add_download(sub) -> None:
    s = sub.add_parser("download", help="write a self-contained bundle for air-gapped machines")
    s.add_argument("names", nargs="+")
    s.add_argument("--runtime", choices=RUNTIMES)
    s.add_argument("--method", choices=LOADABLE)
    s.add_argument("--source", default=None, help="default $ZOO_SOURCE, else the official channel")
    s.add_argument("--revision", default=None)
    s.add_argument("--to", required=True)
    s.set_defaults(fn=cmd_download)


def cmd_download(a) -> int:
    from ..load.bundles import download
    digest = download(a.names, a.to, runtime=a.runtime, method=a.method, source=a.source, revision=a.revision)
    print(f"bundle {a.to}: index sha256 {digest} (pin it: revision='{digest}')")
    return 0


def add_import(sub) -> None:
    s = sub.add_parser("import", help="fill the cache from a bundle made by `zoo download` (air-gapped machines)")
    s.add_argument("bundle")
    s.set_defaults(fn=cmd_import)


def cmd_import(a) -> int:
    from ..load.bundles import import_bundle
    added, present, indexes, models = import_bundle(a.bundle)
    print(f"imported {a.bundle}: {added} file(s) added to the cache, {present} already there (all hashed)"
          + (f", {indexes} pinned index(es)" if indexes else "")
          + f"; zoo.load(NAME, runtime=...) with no source now loads these offline: {', '.join(models)}")
    return 0
