"""Publishing: `zoo pin`, `zoo release`, `zoo publish`."""
from __future__ import annotations


from ..errors import ZooError
from .options import EXPORTED


def add_pin(sub) -> None:
    s = sub.add_parser("pin", help="write a channel file pinning published hf:// repositories (commit + index sha256)")
    s.add_argument("specs", nargs="+", metavar="hf://ORG/REPO[@REVISION]")
    s.add_argument("--out", required=True, help="channel file to write (load it with ZOO_CHANNEL=FILE)")
    s.add_argument("--org", default=None)
    s.set_defaults(fn=cmd_pin)


def cmd_pin(a) -> int:
    from ..publish.pin import pin
    ch = pin(a.specs, a.out, org=a.org)
    for name, p in sorted(ch.models.items()):
        print(f"{name}: hf://{p.repo}@{p.commit} index sha256 {p.index_sha256}")
    print(f"wrote {a.out} (use it: ZOO_CHANNEL={a.out})")
    return 0


def add_release(sub) -> None:
    s = sub.add_parser("release", help="build with official weights, publish one Hub repository per model, pin them")
    s.add_argument("names", nargs="*", help="models (default: all)")
    s.add_argument("--to", required=True, help="hf://ORG")
    s.add_argument("--method", action="append", choices=EXPORTED, help="default: all")
    s.add_argument("--store", default="release-store", help="store directory to build into (default release-store)")
    s.add_argument("--lock", default=None, help="lock file (default STORE.lock.json)")
    s.add_argument("--channel-out", default=None, help="channel file to rewrite (default: the package's official.toml)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_release)


def cmd_release(a) -> int:
    from ..load.channel import shipped_path
    from ..publish.release import release
    if not a.to.startswith("hf://") or "/" in a.to[len("hf://"):].strip("/"):
        raise ZooError(f"zoo release --to expects hf://ORG (one repository per model is made there), got {a.to!r}")
    result = release(a.to[len("hf://"):].strip("/"), a.store, a.channel_out or shipped_path(), a.names or None,
                     a.method or None, a.lock, progress=not a.quiet)
    print("\n".join(result.lines))
    return 0


def add_publish(sub) -> None:
    s = sub.add_parser("publish", help="publish a store as a static mirror tree, to hf://ORG/REPO or hf://ORG")
    s.add_argument("store")
    s.add_argument("--to", required=True, help="directory, hf://ORG/REPO (the whole store) or hf://ORG (a repository per model)")
    s.add_argument("--revision", default="main", help="branch to commit to (hf://)")
    s.add_argument("--message", default=None)
    s.set_defaults(fn=cmd_publish)


def cmd_publish(a) -> int:
    from ..publish.mirror import publish
    print(publish(a.store, a.to, revision=a.revision, message=a.message))
    return 0
