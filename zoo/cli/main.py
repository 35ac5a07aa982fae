"""The `zoo` command line: a thin main; each command group lives in its own module (docs/architecture.md)."""
from __future__ import annotations

import argparse
import sys

from ..errors import ZooError
from . import build, bundles, models, ops, predict, publish, serve
from .options import fill_help

# every command, in the order `zoo --help` lists them
COMMANDS = (models.add_list, models.add_info, build.add_build, build.add_eval, models.add_new_manifest,
            build.add_convert_d2, ops.add_verify,
            predict.add_predict, predict.add_path, bundles.add_download, bundles.add_import, publish.add_pin,
            publish.add_release, publish.add_publish, ops.add_bench, ops.add_cache, serve.add_serve,
            serve.add_bench_serve, build.add_demo)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo", description="Detection model zoo: build, verify, distribute and run exported "
                                                        "torchvision detectors.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in COMMANDS:
        add(sub)
    fill_help(p)
    return p


def cli_words(message: str) -> str:
    """An error written for Python callers, in the command line's words: ``source=`` is ``--source`` here."""
    import re
    return re.sub(r"(?<![\w-])(source|revision)=(?=[\s(,;)]|$)", r"--\1", message)


def main(argv: list[str] | None = None) -> int:
    """Run one `zoo` command in this process; its exit status is returned. Leaves the process's signal handlers as
    they are, so a program (or a test) may call it."""
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ZooError as e:
        print(f"zoo: error: {cli_words(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an environment problem: one line, the traceback on request
        from ..core import settings
        if settings.debug():
            raise
        from ..errors import first_line
        print(f"zoo: unexpected {type(e).__name__}: {first_line(e)}\nrun with ZOO_DEBUG=1 for the traceback",
              file=sys.stderr)
        return 1


def console() -> None:
    """The `zoo` executable: `zoo list | head` ends quietly (the default SIGPIPE action), then `main`. Only here:
    set inside a long-lived caller, the default action would kill it on any write to a closed pipe."""
    import signal
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    console()
