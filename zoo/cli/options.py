"""What several commands share: the method and runtime choices, argument types, the table printer."""
from __future__ import annotations

import argparse

from ..core.manifest import METHODS, RUNTIMES

EXPORTED = tuple(METHODS)           # the methods a build makes
LOADABLE = EXPORTED + ("eager",)  # and the reference a store also holds


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip()  # noqa: E731
    return "\n".join([line({c: c for c in columns}), line({c: "-" * widths[c] for c in columns})] + [line(r) for r in rows])


def image_size_arg(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    if not (h.isdigit() and w.isdigit() and int(h) > 0 and int(w) > 0):
        raise argparse.ArgumentTypeError(f"expected HxW in pixels, like 480x640, got {text!r}")
    return int(h), int(w)


def count_arg(minimum: int):
    def parse(text: str) -> int:
        if not (text.isdigit() and int(text) >= minimum):
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return int(text)
    return parse


def add_source_args(p, model=True):
    if model:
        p.add_argument("--model", required=True, help="model name or alias")
    p.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES)
    p.add_argument("--method", default=None, choices=LOADABLE)
    p.add_argument("--device", default="cpu")
    p.add_argument("--source", default=None, help="store dir, http(s) mirror URL or hf://ORG/REPO (default $ZOO_SOURCE)")
    p.add_argument("--revision", default=None, help="pin: index sha256 (mirror/bundle) or commit (hf://)")
    p.add_argument("--offline", action="store_true", help="never open a socket (also ZOO_OFFLINE=1)")
