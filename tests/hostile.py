"""Hostile stores, archives and children for the untrusted-source tests (test_untrusted.py): a copy of a real store,
altered and re-hashed so that every digest matches; payloads that leave a marker file when they run; a child process
with an audit hook that records sockets opened and files read outside the allowed directories."""
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from zoo.core import store

SSD = "ssdlite320_mobilenet_v3_large"


class Payload:
    """Unpickled, it creates ``marker``: proof that code from the archive ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def index_of(root: Path) -> dict:
    return json.loads((root / store.INDEX).read_text())


def rehash(root: Path, index: dict) -> dict:
    """Every file record (and each metadata's artifact digest) recomputed from the files: the index is then
    consistent, as a hostile publisher would make it."""
    for entry in index["models"].values():
        for artifact in entry["artifacts"]:
            files = artifact["files"]
            if "metadata" in files and "model" in files:
                meta_path = root / files["metadata"]["path"]
                meta = json.loads(meta_path.read_text())
                meta["artifact_sha256"] = store.sha256_file(root / files["model"]["path"])
                meta_path.write_bytes(store.canonical_json(meta))
    for record in store.iter_files(index):
        record.update(store.file_record(root, record["path"]))
    for entry in index["models"].values():  # iter_files yields each path once: copy the shared records' values
        for artifact in entry["artifacts"]:
            for record in artifact["files"].values():
                record.update(store.file_record(root, record["path"]))
    (root / store.INDEX).write_bytes(store.index_bytes(index["models"]))
    return index


def add_artifact(root: Path, method: str, runtime: str, fmt: str, data: bytes, name: str = SSD) -> dict:
    """A ``method`` artifact holding ``data`` added to the store's model (metadata and reference copied from its onnx
    artifact), re-hashed."""
    index = index_of(root)
    entry = index["models"][name]
    onnx = next(a for a in entry["artifacts"] if a["method"] == "onnx")
    base = f"models/{name}/{method}"
    (root / base).mkdir(parents=True, exist_ok=True)
    (root / base / "model.bin").write_bytes(data)
    meta = json.loads((root / onnx["files"]["metadata"]["path"]).read_text())
    meta.update(method=method, runtime=runtime, format=fmt, batch=None, opset=None)
    (root / base / "metadata.json").write_bytes(store.canonical_json(meta))
    entry["artifacts"].append({"method": method, "runtime": runtime, "format": fmt, "batch": None, "opset": None,
                               "devices": ["cpu"], "parity": {"ok": True, "min_matched_fraction": 1.0},
                               "files": {"model": {"path": f"{base}/model.bin"},
                                         "metadata": {"path": f"{base}/metadata.json"},
                                         "reference": dict(onnx["files"]["reference"])}})
    return rehash(root, index)


def rewrite_zip(data: bytes, edit) -> bytes:
    """The zip ``data`` with its entries (name -> bytes) edited by ``edit(items)``, stored uncompressed."""
    zin = zipfile.ZipFile(io.BytesIO(data))
    items = {i.filename: zin.read(i) for i in zin.infolist()}
    edit(items)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for n, b in items.items():
            zout.writestr(n, b)
    return out.getvalue()


def tiny_program() -> bytes:
    """A real torch.export archive of a one-parameter module (seconds to make)."""
    import torch

    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w

    buf = io.BytesIO()
    torch.export.save(torch.export.export(Scale(), (torch.ones(3),)), buf)
    return buf.getvalue()


def torch_pickle(obj) -> bytes:
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


AUDIT = r"""
import os, sys, json
ALLOWED = [os.path.realpath(p) for p in json.loads(os.environ["AUDIT_ALLOWED"])]
LOG = os.path.realpath(os.environ["AUDIT_LOG"])
events = []
def hook(event, args):
    if event == "socket.connect":
        events.append(["connect", repr(args[1])])
    elif event == "open" and isinstance(args[0], (str, bytes)) and args[0]:
        path = os.fsdecode(args[0])
        if not os.path.isabs(path):
            path = os.path.join(os.getcwd(), path)
        real = os.path.realpath(path)
        if real == LOG or real.endswith("__path_hook__"):  # the log itself; the editable install's import hook name
            return
        if not any(real == a or real.startswith(a + os.sep) for a in ALLOWED):
            events.append(["open", real])
sys.addaudithook(hook)
import atexit
atexit.register(lambda: open(LOG, "w").write(json.dumps(events)))
"""


def audited(code: str, allowed: list, tmp: Path, env: dict | None = None, memory_mb: int = 4096, seconds: int = 300):
    """Run ``code`` in a child under an audit hook (and memory / CPU rlimits); returns (process, events): events list
    every socket connect and every file opened outside ``allowed`` (the store, ZOO_HOME) and outside Python's and the
    installed packages' own directories."""
    import sysconfig
    log = tmp / f"audit-{os.getpid()}-{len(list(tmp.glob('audit-*')))}.json"
    system = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    system |= {sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parent.parent)}
    # libraries read /proc, /sys and /dev (CPU counts, urandom) and shared objects under /usr and /lib
    allowed = [str(a) for a in allowed] + sorted(system) + ["/proc", "/sys", "/dev", "/usr", "/lib", "/etc/ld.so.cache",
                                                             str(Path.home() / ".cache" / "torch" / "kernels")]
    limits = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20}, {memory_mb << 20})); "
              f"resource.setrlimit(resource.RLIMIT_CPU, ({seconds}, {seconds}))\n")
    full_env = {**{k: v for k, v in os.environ.items() if k != "ZOO_TRUSTED_SOURCES"}, **(env or {}),
                "AUDIT_ALLOWED": json.dumps(allowed), "AUDIT_LOG": str(log),
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", limits + AUDIT + code], capture_output=True, text=True, env=full_env,
                          timeout=seconds * 2, cwd=str(tmp))
    events = json.loads(log.read_text()) if log.exists() else None
    return proc, events
