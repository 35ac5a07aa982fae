"""Build the suite's full store (conftest.full_store) into OUT in a process of its own, and write what the build
gave (its BuildResult's model outcomes) as OUT/../result.json.

    python3 tests/full_store.py OUT
"""
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import build_full_store  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    result = build_full_store(out)
    (out.parent / "result.json").write_text(json.dumps([dataclasses.asdict(m) for m in result.models]))
