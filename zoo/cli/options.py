"""What several commands share: the method and runtime choices, argument types, the table printer."""
from __future__ import annotations

import argparse

from ..core.manifest import METHODS, RUNTIMES
from ..core.text import table  # noqa: F401 (the commands' table printer)

EXPORTED = tuple(METHODS)           # the methods a build makes
LOADABLE = EXPORTED + ("eager",)  # and the reference a store also holds


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


def score_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a score between 0 and 1, like 0.5, got {text!r}")
    return value


COMMON_HELP = {  # the options several commands share, said once (parser() gives each option without help its line)
    "name": "model name or alias", "model": "model name or alias", "names": "model names or aliases",
    "source": "store dir, http(s) mirror URL or hf://ORG/REPO (default $ZOO_SOURCE, else the channel, an imported "
              "bundle or your local store)",
    "runtime": "onnxruntime (no torch needed) or pytorch", "method": "the export method (default: the runtime's best)",
    "device": "cpu, cuda or cuda:N (default cpu)", "revision": "pin: index sha256 (store, mirror, bundle) or commit (hf://)",
    "quiet": "no progress bar", "verbose": "list every file checked, not only the bad ones",
    "image": "a JPEG or PNG file", "path": "a store, bundle or zoo cache directory", "bundle": "a directory written by "
    "`zoo download`", "store": "a store directory (from zoo build)", "to": "the bundle directory to write",
    "specs": "published repositories, each at a branch, tag or commit", "org": "the channel's organisation (default: "
    "that of the first repository)", "message": "the commit message (default: what was uploaded)",
    "threads": "runtime threads (default 2)", "replicas": "replica counts, one row each (default 1 2 4)",
    "port": "HTTP port", "action": "list: what is cached; prune: remove blobs no recorded index lists; clear: all",
}


def fill_help(p: argparse.ArgumentParser) -> None:
    for sub in p._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            if action.help is None and action.dest in COMMON_HELP:
                action.help = COMMON_HELP[action.dest]
