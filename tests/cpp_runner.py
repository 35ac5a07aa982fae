"""The C++ example (cpp/zoo_infer.cpp) for the tests: built once per session from the installed wheels, run on an
artifact, its JSON read back."""
import functools
import json
import os
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def zoo_infer_binary() -> Path:
    proc = subprocess.run(["bash", str(REPO / "cpp" / "build.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


def run_cpp(binary, artifact, keys, images, batch=None):
    cmd = [str(binary), str(artifact), "--keys", ",".join(keys)] + (["--batch", str(batch)] if batch else []) + list(map(str, images))
    proc = subprocess.run(cmd, capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"})
    assert proc.returncode == 0, proc.stderr
    assert "always returns" not in proc.stderr
    return json.loads(proc.stdout)["detections"]


def as_arrays(det: dict) -> dict:
    out = {}
    for k, v in det.items():
        if isinstance(v, dict) and "values" in v:
            out[k] = np.array(v["values"], np.float32 if v["dtype"] == "float32" else np.int64).reshape(v["shape"])
    return out
