"""Build one of the suite's stores (conftest.BACKGROUND) into OUT in a process of its own, at a lower priority than
the tests beside it, and write what its builder returned as OUT/../result.json.

    python3 tests/background.py MODULE:FUNCTION OUT
"""
import importlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    # the tests in the foreground come first: a store built beside them takes the CPU they leave (measured: at the
    # same priority, the two builds held the first 30 minutes of the suite's 2 cores and its tests waited)
    os.nice(10)
    module, function = sys.argv[1].split(":")
    out = Path(sys.argv[2])
    result = getattr(importlib.import_module(module), function)(out)
    (out.parent / "result.json").write_text(json.dumps(result))
