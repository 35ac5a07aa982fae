"""Untrusted sources (issue 22, docs/security.md): a hostile store, archive, mirror or index built here from a copy of
a real store, altered and re-hashed so that every digest matches. A marker file proves that no payload ran; an audit
hook in a child process proves that no socket opened and no file outside the store and ZOO_HOME was read."""
import http.server
import io
import json
import os
import threading
import time
from pathlib import Path

import pytest

from zoo.load.loader import load as zoo_load  # not zoo.load: once zoo.load.* is imported, that name is the package
from conftest import run_zoo
from hostile import (SSD, Payload, add_artifact, audited, copy_store, index_of, rehash, rewrite_zip, tiny_program,
                     torch_pickle)
from zoo.core import store, trust
from zoo.core.staging import bookkeeping
from zoo.errors import ConsentError, IntegrityError, NotAvailableError, ZooError

WEIGHTS_CONFIG = "archive/data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "archive/data/constants/model_constants_config.json"


@pytest.fixture(autouse=True)
def no_trust(monkeypatch):
    """These tests are about the default: nothing is trusted (conftest trusts the suite's own stores)."""
    monkeypatch.delenv("ZOO_TRUSTED_SOURCES", raising=False)


def _pickled_weight(marker):
    def edit(items):
        cfg = json.loads(items[WEIGHTS_CONFIG])
        cfg["config"]["w"]["use_pickle"] = True
        items[WEIGHTS_CONFIG] = json.dumps(cfg).encode()
        items["archive/data/weights/weight_0"] = torch_pickle(Payload(marker))
    return edit


def _opaque_constant(marker):
    import pickle

    def edit(items):
        cfg = json.loads(items[CONSTANTS_CONFIG])
        cfg["config"]["c"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
        items[CONSTANTS_CONFIG] = json.dumps(cfg).encode()
        items["archive/data/constants/opaque_obj_0"] = pickle.dumps(Payload(marker))
    return edit


def _legacy_weights(marker):
    def edit(items):
        items["archive/data/weights/model.pt"] = torch_pickle({"w": Payload(marker)})
    return edit


def _sample_inputs(marker):
    def edit(items):
        items["archive/data/sample_inputs/model.pt"] = torch_pickle(Payload(marker))
    return edit


PT2_MUTANTS = {"use_pickle weight": _pickled_weight, "opaque_obj constant": _opaque_constant,
               "legacy weights .pt": _legacy_weights, "sample inputs pickle": _sample_inputs}


@pytest.fixture(scope="module")
def program():
    return tiny_program()


@pytest.mark.parametrize("mutant", sorted(PT2_MUTANTS))
def test_a_pt2_archive_that_asks_for_a_pickle_runs_code_in_torch_but_is_refused_by_zoo(program, tmp_path, mutant):
    import torch

    from zoo.load.runtimes.aoti import load_package
    from zoo.load.runtimes.pt2 import load_program
    marker = tmp_path / "payload-ran"
    hostile = rewrite_zip(program, PT2_MUTANTS[mutant](str(marker)))
    try:  # the mutant is live: torch itself runs the payload
        torch.export.load(io.BytesIO(hostile))
    except Exception:
        pass
    assert marker.exists(), f"{mutant}: torch.export.load did not run the payload; the mutant proves nothing"
    marker.unlink()
    for opener in (load_program, load_package):
        with pytest.raises(IntegrityError, match="refused before torch read it"):
            opener(hostile)
        assert not marker.exists()
    load_program(program)  # the unaltered archive loads


def test_torchscript_can_read_any_file_so_tracing_and_scripting_are_code(tmp_path):
    """The measurement behind zoo/core/trust.py: torch.jit.load's restricted unpickler runs no Python, but the program
    calls any registered operator, and aten::from_file reads any file the process can."""
    import torch
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET-16-BYTES!")

    class Reader(torch.nn.Module):
        def __init__(self, path: str):
            super().__init__()
            self.path = path

        def forward(self, x):
            return torch.from_file(self.path, False, 16, dtype=torch.uint8)

    path = tmp_path / "reader.pt"
    torch.jit.script(Reader(str(secret))).save(str(path))
    out = torch.jit.load(str(path))(torch.ones(1))
    assert bytes(out.tolist()) == b"SECRET-16-BYTES!"
    assert {m for m in ("tracing", "scripting", "export", "aoti", "onnx", "openvino", "eager") if trust.is_code(m)} == \
        {"tracing", "scripting", "export", "aoti"}


@pytest.fixture
def code_store(onnx_store, tmp_path, program):
    """A copy of the onnx store with an export artifact that unpickles a payload, and a tracing artifact."""
    marker = tmp_path / "payload-ran"
    root = copy_store(onnx_store, tmp_path / "store")
    add_artifact(root, "export", "pytorch", "pt2", rewrite_zip(program, _pickled_weight(str(marker))))
    add_artifact(root, "tracing", "pytorch", "torchscript", b"not read before consent")
    return root, marker


def test_code_artifacts_load_only_with_consent(code_store, tmp_path, monkeypatch):
    root, marker = code_store
    home = tmp_path / "home"
    for method in ("export", "tracing"):
        with pytest.raises(ConsentError, match=f"{method} is code, not data .* trust_code=True .*ZOO_TRUSTED_SOURCES"):
            zoo_load(SSD, runtime="pytorch", method=method, source=str(root), cache_dir=home)
    # no method: the data method, not the code artifacts the store prefers
    model = zoo_load(SSD, runtime="pytorch", source=str(root), cache_dir=home)
    assert model.info["artifact"]["method"] == "eager"
    monkeypatch.setenv("ZOO_TRUSTED_SOURCES", str(tmp_path / "elsewhere"))
    with pytest.raises(ConsentError):
        zoo_load(SSD, runtime="pytorch", method="export", source=str(root), cache_dir=home)
    # consent given (either way): the archive is still scanned, and its pickle refused
    for how in ({"trust_code": True}, {}):
        if not how:
            monkeypatch.setenv("ZOO_TRUSTED_SOURCES", f"/nonexistent,{root}")
        with pytest.raises(IntegrityError, match="asks for 'w' to be unpickled"):
            zoo_load(SSD, runtime="pytorch", method="export", source=str(root), cache_dir=home, **how)
    assert not marker.exists()


def test_verify_does_not_run_a_stores_code_without_consent(code_store):
    root, marker = code_store
    proc = run_zoo("verify", root, env={"ZOO_TRUSTED_SOURCES": ""}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"not replayed         {SSD} pytorch/export" in proc.stdout and "--trust-code" in proc.stdout
    assert f"ok                   {SSD} onnxruntime/onnx" in proc.stdout
    proc = run_zoo("verify", root, "--trust-code", env={"ZOO_TRUSTED_SOURCES": ""}, check=False)
    assert proc.returncode == 1 and "asks for 'w' to be unpickled" in proc.stdout
    assert not marker.exists()


def test_bench_runs_a_stores_code_only_with_consent(code_store):
    root, marker = code_store
    args = ("bench", SSD, "--source", root, "--method", "export", "--repeat", "1", "--warmup", "0", "--size", "128x160")
    proc = run_zoo(*args, env={"ZOO_TRUSTED_SOURCES": ""})
    assert f"{SSD} export: skipped, code from a source you did not say you trust" in proc.stdout
    rows = [line.split()[:3] for line in proc.stdout.splitlines()]
    assert "--trust-code" in proc.stdout and [SSD, "pytorch", "eager"] in rows  # the eager reference still measured
    assert not any(r[2:] == ["export"] for r in rows)
    proc = run_zoo(*args, "--trust-code", env={"ZOO_TRUSTED_SOURCES": ""}, check=False)
    assert proc.returncode == 2 and "asks for 'w' to be unpickled" in proc.stderr, proc.stderr  # consent, still scanned
    assert not marker.exists()


def _external_model(kind: str, location: str) -> bytes:
    """A tiny ONNX graph whose output is a tensor stored externally at ``location`` (an initializer, a Constant's
    attribute, or a Constant inside an If's branch)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    t = numpy_helper.from_array(np.zeros(16, np.uint8), "W")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = k, v
    out = helper.make_tensor_value_info("Y", TensorProto.UINT8, [16])
    if kind == "initializer":
        graph = helper.make_graph([helper.make_node("Identity", ["W"], ["Y"])], "g", [], [out], [t])
    elif kind == "constant":
        graph = helper.make_graph([helper.make_node("Constant", [], ["Y"], value=t)], "g", [], [out])
    else:
        branch = helper.make_graph([helper.make_node("Constant", [], ["Y"], value=t)], "b", [], [out])
        cond = numpy_helper.from_array(np.array(True), "C")
        graph = helper.make_graph([helper.make_node("If", ["C"], ["Y"], then_branch=branch, else_branch=branch)],
                                  "g", [], [out], [cond])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("kind", ["initializer", "constant", "subgraph"])
def test_an_onnx_graph_naming_external_data_is_refused(tmp_path, monkeypatch, kind):
    import onnxruntime as ort

    from zoo.load.runtimes.onnxruntime import OnnxRuntimeBackend
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"API_KEY=hunter2!")
    data = _external_model(kind, ".env")
    if kind == "initializer":  # the mutant is live: from bytes, onnxruntime reads the working directory's file
        got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {})[0]
        assert bytes(got.tolist()) == b"API_KEY=hunter2!"
    with pytest.raises(IntegrityError, match=r"names external data \('\.env'\).*refused"):
        OnnxRuntimeBackend(data, 1)


def test_a_store_whose_onnx_reads_the_working_directory_is_refused(onnx_store, tmp_path, monkeypatch):
    import onnx
    root = copy_store(onnx_store, tmp_path / "store")
    rel = f"models/{SSD}/onnx/model.onnx"
    model = onnx.load(str(root / rel))
    t = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    size = len(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", ".env"), ("offset", "0"), ("length", str(size))):
        e = t.external_data.add()
        e.key, e.value = k, v
    (root / rel).write_bytes(model.SerializeToString())
    rehash(root, index_of(root))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"x" * size)
    with pytest.raises(IntegrityError, match="names external data"):
        zoo_load(SSD, source=str(root), cache_dir=tmp_path / "home")


def _with_manifest(root: Path, name: str | None = None, **changes) -> dict:
    index = index_of(root)
    entry = index["models"].pop(SSD)
    new = name or SSD
    entry["name"], entry["aliases"] = new, [] if name else entry["aliases"]
    entry["manifest"] = {**entry["manifest"], "name": new, "aliases": [] if name else entry["manifest"]["aliases"]}
    for key, value in changes.items():
        entry["manifest"][key] = value
    index["models"][new] = entry
    return rehash(root, index)


def test_an_index_cannot_change_a_shipped_models_builder_args(onnx_store, tmp_path):
    root = copy_store(onnx_store, tmp_path / "store")
    args = index_of(root)["models"][SSD]["manifest"].get("builder_args", {})
    _with_manifest(root, builder_args={**args, "weights_backbone": "DEFAULT"})
    with pytest.raises(IntegrityError, match="is a shipped model, but the index names builder"):
        zoo_load(SSD, runtime="pytorch", method="eager", source=str(root), cache_dir=tmp_path / "home")


def test_a_user_model_from_an_index_never_downloads_or_unpickles_weights(onnx_store, tmp_path):
    """weights_backbone='DEFAULT' from an index, offline, with a pickle already where torch.hub would look: the
    eager load opens no socket, unpickles nothing and reads nothing outside the store and ZOO_HOME."""
    root = copy_store(onnx_store, tmp_path / "store")
    args = index_of(root)["models"][SSD]["manifest"].get("builder_args", {})
    _with_manifest(root, "mine", builder_args={**args, "weights_backbone": "DEFAULT", "weights": "DEFAULT"})
    marker = tmp_path / "payload-ran"
    checkpoints = tmp_path / "torchhome" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("mobilenet_v3_large-8738ca79.pth", "mobilenet_v3_large-5c1a4163.pth",
                 "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"):
        (checkpoints / name).write_bytes(torch_pickle(Payload(str(marker))))
    home = tmp_path / "home"
    code = (f"from zoo.load.loader import load\nm = load('mine', runtime='pytorch', method='eager', source={str(root)!r})\n"
            "print('method', m.info['artifact']['method'])")
    proc, events = audited(code, [root, home], tmp_path,
                           env={"ZOO_OFFLINE": "1", "ZOO_HOME": str(home), "TORCH_HOME": str(tmp_path / "torchhome")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "method eager" in proc.stdout
    assert events == [], events
    assert not marker.exists()


def test_an_index_may_name_only_registered_torchvision_builders(onnx_store):
    import dataclasses

    from zoo.load import architecture as models
    from zoo.core.manifest import resolve
    m = dataclasses.replace(resolve(SSD), name="mine", source="index")
    for builder in ("torchvision.models.detection.ssdlite:partial", "os:system", "torchvision.models.detection.ssd.SSD"):
        with pytest.raises(ConsentError, match="not one of torchvision's registered detection builders"):
            models.architecture(dataclasses.replace(m, builder=builder))


class _Hostile(http.server.BaseHTTPRequestHandler):
    """/big: 64 MiB for any record; /drip: a byte every 0.2 s; /padded: an index padded with spaces."""
    sent = {"bytes": 0}

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            if self.path == "/big":
                for _ in range(64):
                    self.wfile.write(b"\0" * (1 << 20))
                    _Hostile.sent["bytes"] += 1 << 20
            elif self.path == "/drip":
                for _ in range(200):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif self.path == "/index.json":
                self.wfile.write(b'{"format": "zoo-store/1", "models": {}' + b" " * (8 << 20) + b"}")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def hostile_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_stops_one_byte_past_its_records_size(hostile_server, tmp_path):
    from zoo.load.transport import download
    dest = tmp_path / "blob"
    t0 = time.monotonic()
    with pytest.raises(IntegrityError, match="sent more than the 1172 bytes its record states: aborted after 1173"):
        download(hostile_server + "/big", dest, "0" * 64, size=1172, progress=False)
    assert time.monotonic() - t0 < 10
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_a_dripping_server_meets_a_deadline_derived_from_the_size(hostile_server, tmp_path, monkeypatch):
    from zoo.load.transport import download
    monkeypatch.setenv("ZOO_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("ZOO_HTTP_MIN_RATE", "100")
    t0 = time.monotonic()
    with pytest.raises(NotAvailableError, match="slower than the slowest rate accepted"):
        download(hostile_server + "/drip", tmp_path / "blob", "0" * 64, size=100, progress=False)
    assert time.monotonic() - t0 < 6  # 1 s + 100 B at 100 B/s, one read late at most


def test_a_padded_index_is_cut_off_at_the_cap_and_stored_nowhere(hostile_server, tmp_path, monkeypatch):
    from zoo.load.sources.http import HttpSource
    monkeypatch.setenv("ZOO_MAX_INDEX_BYTES", str(1 << 20))
    with pytest.raises(IntegrityError, match=r"sent more than the 1048576 bytes"):
        HttpSource(hostile_server, tmp_path / "home", offline=False).index()
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "huge"])
def test_a_cached_index_that_is_not_a_small_regular_file_is_refused_at_once(tmp_path, monkeypatch, kind):
    from zoo.load.sources.http import HttpSource
    monkeypatch.setenv("ZOO_MAX_INDEX_BYTES", "4096")
    digest = "a" * 64
    path = tmp_path / "home" / "indexes" / f"{digest}.json"
    path.parent.mkdir(parents=True)
    if kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b" " * 5000)
    with pytest.raises(IntegrityError, match="not a regular file|larger than 4096 bytes"):
        HttpSource("http://127.0.0.1:9", tmp_path / "home", offline=True).index(revision=digest)


def test_a_deeply_nested_index_is_an_integrity_error():
    with pytest.raises(IntegrityError, match="nested too deeply"):
        store.read_index_bytes(b"[" * 100_000 + b"]" * 100_000, "index.json")


def test_consent_entries_match_as_documented(tmp_path, monkeypatch):
    from zoo.load.sources.hub import HubSource
    from zoo.load.sources.http import HttpSource
    from zoo.load.sources.local import LocalSource
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.setenv("ZOO_TRUSTED_SOURCES", f"{tmp_path / 'a'}, https://mirror.example/zoo/,hf://org/*,hf://x/y")
    assert trust.trusted(LocalSource(tmp_path / "a" / "b")) and not trust.trusted(LocalSource(tmp_path))
    assert trust.trusted(HttpSource("https://mirror.example/zoo", tmp_path, True))
    assert not trust.trusted(HttpSource("https://mirror.example/zoo2", tmp_path, True))
    assert trust.trusted(HubSource("org/r", tmp_path, True)) and trust.trusted(HubSource("x/y", tmp_path, True))
    assert not trust.trusted(HubSource("x/z", tmp_path, True))
    assert trust.trusted(HubSource("p/q", tmp_path, True, commit="0" * 40, index_sha256="0" * 64, pinned_by="c"))
    assert not isinstance(ConsentError("x"), IntegrityError) and isinstance(ConsentError("x"), ZooError)


def test_cache_clear_and_prune_delete_nothing_outside_a_marked_zoo_home(tmp_path):
    """ZOO_HOME pointed at another tool's cache (a Hugging Face cache here) or a home-like directory: refused, and
    every file stays; in a zoo home, --dry-run shows the figure and removes nothing."""
    hf = tmp_path / "huggingface"
    for rel in ("hub/models--org--repo/blobs/abc", "hub/version.txt", "token", "indexes/mine.json", "official/x.pth"):
        (hf / rel).parent.mkdir(parents=True, exist_ok=True)
        (hf / rel).write_text("the user's")
    before = sorted(p for p in hf.rglob("*"))
    for action in ("clear", "prune"):
        proc = run_zoo("cache", action, env={"ZOO_HOME": str(hf)}, check=False)
        assert proc.returncode == 2 and "is not a zoo home" in proc.stderr and "refusing to delete" in proc.stderr
    assert sorted(p for p in hf.rglob("*")) == before
    from zoo.load.sources.cache import Cache
    home = tmp_path / "zoo-home"
    data = b"a cached file"
    Cache(home).get({"path": "m/x", "size": len(data), "sha256": store.sha256_bytes(data)},
                    lambda dest: dest.write_bytes(data), "test")
    assert (home / ".zoo-home").is_file()
    dry = run_zoo("cache", "clear", "--dry-run", env={"ZOO_HOME": str(home)}).stdout
    assert dry.startswith("would free 13B") and Cache(home).blob(store.sha256_bytes(data)).is_file()
    assert run_zoo("cache", "clear", env={"ZOO_HOME": str(home)}).stdout.startswith("freed 13B")


def test_one_path_listed_twice_with_two_digests_is_refused(onnx_store):
    index = index_of(onnx_store)
    onnx = next(a for a in index["models"][SSD]["artifacts"] if a["method"] == "onnx")
    store.read_index_bytes(json.dumps(index).encode(), "index.json")
    onnx["files"]["reference"] = {**index["models"][SSD]["weights"]["file"], "sha256": "0" * 64}
    with pytest.raises(IntegrityError, match="is listed twice with different digests"):
        store.read_index_bytes(json.dumps(index).encode(), "index.json")


def test_zoo_import_refuses_a_symlink_out_of_the_bundle_without_hashing_its_target(onnx_store, tmp_path):
    bundle = copy_store(onnx_store, tmp_path / "bundle")
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's")
    card = bundle / index_of(bundle)["models"][SSD]["card"]["path"]
    card.unlink()
    card.symlink_to(secret)
    proc = run_zoo("import", bundle, env={"ZOO_HOME": str(tmp_path / "home")}, check=False)
    assert proc.returncode == 2 and "is a symbolic link or leads outside the store" in proc.stderr
    assert store.sha256_file(secret) not in proc.stderr + proc.stdout


def test_a_commit_merges_into_the_index_as_it_is_now_not_as_the_build_first_read_it(onnx_store, tmp_path):
    """Two builds into one store: B committed SSD after A read the (empty) index; A's commit keeps SSD."""
    import shutil

    from zoo.core import staging
    root = copy_store(onnx_store, tmp_path / "store")
    entry = json.loads(json.dumps(index_of(root)["models"][SSD]).replace(f"models/{SSD}/", "models/other/"))
    entry["name"], entry["aliases"] = "other", []
    stage = staging.new_dir(root, "other")
    assert stage.name.split("-")[1:3] == list(staging.identity())
    shutil.copytree(root / "models" / SSD, stage / "models" / "other")
    merged = staging.commit(root, stage, "other", {}, entry)  # A's snapshot: {}
    assert sorted(merged) == sorted(index_of(root)["models"]) == ["other", SSD]


def test_a_build_waiting_for_the_store_lock_says_who_holds_it(tmp_path, capsys):
    from zoo.core import staging
    held, release = threading.Event(), threading.Event()

    def holder():
        with staging.store_lock(tmp_path):
            held.set()
            release.wait(30)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    threading.Timer(3, release.set).start()
    with staging.store_lock(tmp_path):
        pass
    t.join()
    host, boot = staging.identity()
    assert f"waiting for {tmp_path / staging.LOCK}, held by pid {os.getpid()} on {host} (boot {boot})" \
        in capsys.readouterr().err


def test_staging_of_another_host_is_left_alone_and_a_previous_boots_is_stale(tmp_path):
    from zoo.core import staging
    host, boot = staging.identity()
    other_host = tmp_path / staging.STAGING / f"{SSD}-otherhost-{boot}-1-abc"
    old_boot = tmp_path / staging.STAGING / f"{SSD}-{host}-0ldb00t-{os.getpid()}-abc"
    for d in (other_host, old_boot):
        d.mkdir(parents=True)
    assert staging.clean_stale(tmp_path) == [f"discarded {old_boot.name}"]
    assert other_host.is_dir() and not old_boot.exists()


def test_masked_meta_and_sparse_images_are_input_errors():
    """A masked array hid its NaN from the range check; meta and sparse tensors gave a RuntimeError from torch."""
    import numpy as np
    import torch

    from zoo.errors import InputError
    from zoo.load.runtimes.inputs import check_images
    data = np.full((3, 4, 4), 0.5, np.float32)
    data[0, 0, 0] = np.nan
    masked = np.ma.masked_array(data, mask=np.isnan(data))
    with pytest.raises(InputError, match=r"expected values in \[0, 1\], got \[nan"):
        check_images([masked])
    with pytest.raises(InputError, match="a meta tensor"):
        check_images([torch.empty(3, 4, 4, device="meta")])
    with pytest.raises(InputError, match="torch.sparse_coo tensor"):
        check_images([torch.full((3, 4, 4), 0.5).to_sparse()])


def test_every_file_of_a_built_store_has_the_shared_mode(onnx_store):
    """weights.safetensors and model.onnx were written 0600 while the rest of a store was 0644: a web server or another
    user then got PermissionError. Every file and folder of a store has the mode the umask gives a shared file."""
    umask = os.umask(0)
    os.umask(umask)
    modes = {str(p.relative_to(onnx_store)): p.stat().st_mode & 0o777 for p in [onnx_store, *onnx_store.rglob("*")]
             if p.name != onnx_store.name and not bookkeeping(p.relative_to(onnx_store))}
    want = {k: (0o777 if (onnx_store / k).is_dir() else 0o666) & ~umask for k in modes}
    assert modes == want and any(k.endswith("model.onnx") for k in modes) and any(k.endswith(".safetensors") for k in modes)


def test_a_copy_never_writes_through_a_link_planted_beside_its_destination(tmp_path):
    """`zoo publish --to DIR` (and zoo download) wrote through a predictable `.NAME.part` and followed a symlink
    planted there: now the temporary file is created exclusively under an unpredictable name."""
    from zoo.load.bundles import copy_verified
    src, victim = tmp_path / "src.bin", tmp_path / "victim.txt"
    src.write_bytes(b"artifact bytes")
    victim.write_text("the user's file")
    dest = tmp_path / "mirror" / "model.onnx"
    dest.parent.mkdir()
    (dest.parent / f".{dest.name}.part").symlink_to(victim)
    assert copy_verified(src, dest, store.sha256_bytes(b"artifact bytes"))
    assert victim.read_text() == "the user's file" and dest.read_bytes() == b"artifact bytes"
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        copy_verified(src, tmp_path / "mirror" / "other.onnx", "0" * 64)
    assert not (tmp_path / "mirror" / "other.onnx").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == [f".{dest.name}.part", "model.onnx"]  # no temporary left


@pytest.mark.parametrize("damage, message", [
    (lambda d: d["images"].append(dict(d["images"][0])), r"images\[3\]\.id: 1 is used twice"),
    (lambda d: d["images"][0].update(file_name="../../etc/passwd"), r"images\[0\]\.file_name: expected a file name "
                                                                    r"inside"),
    (lambda d: d["images"][0].update(file_name="/etc/passwd"), r"images\[0\]\.file_name: expected a file name inside"),
    (lambda d: d["annotations"][0].pop("area"), r"annotations\[0\]: 'area' is a required property"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"annotations\[0\]\.bbox: \[1, 2, 3\] is too short"),
    (lambda d: d["annotations"][0].update(image_id=999), r"annotations\[0\]\.image_id: 999 is not the id of any"),
    (lambda d: d["annotations"][0].update(category_id="x"), r"annotations\[0\]\.category_id: expected the integer id"),
    (lambda d: d["categories"][0].update(id=None), r"categories\[0\]\.id: expected an integer category id"),
])
def test_malformed_coco_annotations_are_data_errors_naming_the_key(tmp_path, damage, message):
    """Malformed COCO annotations gave KeyError/TypeError from pycocotools, a `../..` or absolute file_name was
    followed, duplicate image ids were dropped silently: each is now a DataError naming the key."""
    import json

    from zoo.build.coco_eval import open_dataset
    from zoo.build.demo import shapes
    from zoo.errors import DataError
    data = shapes.write_coco(tmp_path / "data", 3, seed=5)
    doc = json.loads((data / "annotations.json").read_text())
    damage(doc)
    (data / "annotations.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message):
        open_dataset(data)
