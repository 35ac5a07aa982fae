"""Distribution against real servers on 127.0.0.1: nginx (static mirror with Range), a fault-injecting server, and
olah (a self-hosted Hugging Face Hub mirror) for hf://."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
from conftest import run_zoo
from servers import FaultServer, Nginx, Olah, nginx_binary
from zoo.core import store
from zoo.load.bundles import download
from zoo.publish.mirror import publish
from zoo.errors import IntegrityError, NotAvailableError

SSD, RCNN = "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn"
SSD_ONNX = f"models/{SSD}/onnx/model.onnx"
needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def mirror(light_store, tmp_path_factory):
    """The light store published as a static mirror tree."""
    root = tmp_path_factory.mktemp("mirror") / "www"
    line = publish(light_store, str(root))
    assert "file(s) written" in line
    return root


@pytest.fixture
def nginx(mirror, tmp_path):
    server = Nginx(mirror, tmp_path / "nginx").start()
    yield server
    server.stop()


def model_gets(server: Nginx, rel: str) -> list[str]:
    return [line for line in server.requests() if f"GET /{rel} " in line]


def load_ssd(source, home, **kw):
    return zoo.load(SSD, runtime="onnxruntime", source=source, cache_dir=home, **kw)


def grey():
    return [np.full((3, 240, 320), 0.5, np.float32)]


@needs_nginx
def test_download_then_load_with_server_stopped(nginx, tmp_path):
    home = tmp_path / "home"
    model = load_ssd(nginx.url, home)
    assert len(model_gets(nginx, SSD_ONNX)) == 1
    revision = model.info["source"] and store.sha256_file(nginx.root / "index.json")
    before = len(nginx.requests())
    load_ssd(nginx.url, home, revision=revision)  # pinned and cached: not a single request
    assert len(nginx.requests()) == before
    nginx.stop()
    with pytest.warns(UserWarning, match="using the index cached"):
        again = load_ssd(nginx.url, home)
    assert len(again(grey())) == 1
    load_ssd(nginx.url, home, revision=revision)(grey())


@needs_nginx
def test_killed_download_resumes_with_a_range_request(mirror, tmp_path):
    server = Nginx(mirror, tmp_path / "nginx", rate="6m").start()
    try:
        home = tmp_path / "home"
        index = store.load_index(mirror)
        record = next(a for a in index["models"][RCNN]["artifacts"] if a["method"] == "onnx")["files"]["model"]
        code = (f"import zoo; zoo.load({RCNN!r}, runtime='onnxruntime', source={server.url!r}, cache_dir={str(home)!r})")
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        part = home / "blobs" / "sha256" / record["sha256"][:2] / (record["sha256"] + ".part")
        deadline = time.time() + 120
        while time.time() < deadline and not (part.exists() and part.stat().st_size > record["size"] // 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        have = part.stat().st_size
        assert 0 < have < record["size"], "the download was not interrupted halfway"
        model = zoo.load(RCNN, runtime="onnxruntime", source=server.url, cache_dir=home)
        ranged = [ln for ln in model_gets(server, record["path"]) if " 206 range=bytes=" in ln]
        assert ranged, server.requests()
        resumed_from = int(ranged[0].split("range=bytes=")[1].split("-")[0])
        assert resumed_from >= have
        blob = home / "blobs" / "sha256" / record["sha256"][:2] / record["sha256"]
        assert store.sha256_file(blob) == record["sha256"] and not part.exists()
        assert len(model(grey())) == 1
    finally:
        server.stop()


@needs_nginx
def test_eight_processes_fetch_an_artifact_once(nginx, tmp_path):
    home = tmp_path / "home"
    code = (f"import zoo; m = zoo.load({SSD!r}, runtime='onnxruntime', source={nginx.url!r}, cache_dir={str(home)!r});"
            "import numpy as np; m([np.full((3, 200, 260), 0.4, np.float32)]); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-500:] for r in results]
    assert all("ok" in out for out, _ in results)
    gets = model_gets(nginx, SSD_ONNX)
    assert len(gets) == 1, gets
    assert not list(home.rglob("*.part"))


@pytest.fixture
def faulty(mirror):
    server = FaultServer(mirror, stall_seconds=30)
    yield server
    server.stop()


def test_two_500s_then_success(faulty, tmp_path):
    faulty.faults[SSD_ONNX] = ["500", "500"]
    load_ssd(faulty.url, tmp_path / "home")
    assert [p for p, _ in faulty.log].count(SSD_ONNX) == 3


def test_always_500_is_a_clear_error_in_bounded_time(faulty, tmp_path):
    faulty.always = "500"
    t0 = time.time()
    with pytest.raises(NotAvailableError, match="HTTP 500"):
        load_ssd(faulty.url, tmp_path / "home")
    assert time.time() - t0 < 60


def test_stalled_server_is_a_clear_error_in_bounded_time(faulty, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HTTP_TIMEOUT", "1")
    faulty.always = "stall"
    t0 = time.time()
    with pytest.raises(NotAvailableError, match="cannot fetch|cannot download"):
        load_ssd(faulty.url, tmp_path / "home")
    assert time.time() - t0 < 60


def test_truncated_body_resumes(faulty, tmp_path):
    faulty.faults[SSD_ONNX] = ["truncate"]
    model = load_ssd(faulty.url, tmp_path / "home")
    ranges = [r for p, r in faulty.log if p == SSD_ONNX]
    assert ranges[0] is None and ranges[1] and ranges[1].startswith("bytes=")
    assert len(model(grey())) == 1


def test_tampered_file_on_the_mirror_is_refused(mirror, tmp_path):
    www = tmp_path / "www"
    shutil.copytree(mirror, www)
    target = www / SSD_ONNX
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    server = FaultServer(www)
    try:
        with pytest.raises(IntegrityError) as e:
            load_ssd(server.url, tmp_path / "home")
    finally:
        server.stop()
    want = store.sha256_file(mirror / SSD_ONNX)
    assert SSD_ONNX in str(e.value) and want in str(e.value) and store.sha256_file(target) in str(e.value)
    blobs = [p for p in (tmp_path / "home" / "blobs").rglob("*") if p.is_file()]
    assert not [p for p in blobs if p.name.startswith((want, store.sha256_file(target))) and not p.name.endswith(".lock")]
    assert not [p for p in blobs if p.name.endswith(".part")]


def test_tampered_file_in_the_cache_is_fetched_again_once_and_found_by_verify(faulty, tmp_path):
    home = tmp_path / "home"
    load_ssd(faulty.url, home)
    assert run_zoo("verify", home).stdout.rstrip().endswith(": all ok, 0 bad")
    want = store.sha256_file(faulty.root / SSD_ONNX)
    blob = home / "blobs" / "sha256" / want[:2] / want
    blob.write_bytes(blob.read_bytes() + b"x")
    proc = run_zoo("verify", home, check=False)
    assert proc.returncode == 1 and "hash mismatch" in proc.stdout and want in proc.stdout
    gets = [p for p, _ in faulty.log].count(SSD_ONNX)
    with pytest.warns(UserWarning, match=f"cached copy of {SSD_ONNX} .*{want}.* did not match its sha256 and was "
                                         f"removed; fetching it again from {faulty.url}"):
        model = load_ssd(faulty.url, home)
    assert len(model(grey())) == 1 and store.sha256_file(blob) == want
    assert [p for p, _ in faulty.log].count(SSD_ONNX) == gets + 1
    # the mirror's copy damaged too: fetched once more, then a clear error naming the file and the source
    blob.write_bytes(b"damaged")
    good = faulty.root / (SSD_ONNX + ".good")
    (faulty.root / SSD_ONNX).rename(good)
    damaged = bytearray(good.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: the download completes, its digest is wrong
    (faulty.root / SSD_ONNX).write_bytes(bytes(damaged))
    try:
        with pytest.warns(UserWarning, match="fetching it again"), pytest.raises(IntegrityError) as e:
            load_ssd(faulty.url, home)
    finally:
        good.replace(faulty.root / SSD_ONNX)
    assert SSD_ONNX in str(e.value) and want in str(e.value) and "deleted it" in str(e.value)
    assert not blob.exists()


def test_index_path_leaving_the_store_is_refused(mirror, tmp_path):
    www = tmp_path / "www"
    shutil.copytree(mirror, www)
    index = json.loads((www / "index.json").read_text())
    next(a for a in index["models"][SSD]["artifacts"] if a["method"] == "onnx")["files"]["model"]["path"] = "../../etc/passwd"
    (www / "index.json").write_text(json.dumps(index))
    server = FaultServer(www)
    try:
        with pytest.raises(IntegrityError, match=r"index.json: not a valid index file: models\.ssdlite.*\.files\.model\."
                                                 r"path: expected a relative path inside the store"):
            load_ssd(server.url, tmp_path / "home")
    finally:
        server.stop()


def test_pinned_index_revision_refuses_a_swapped_index(faulty, tmp_path):
    with pytest.raises(IntegrityError, match="is not the pinned revision"):
        load_ssd(faulty.url, tmp_path / "home", revision="0" * 64)


def test_offline_without_cache_says_what_is_missing(faulty, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(NotAvailableError, match="offline and no cached index"):
        load_ssd(faulty.url, tmp_path / "home")
    monkeypatch.delenv("ZOO_OFFLINE")
    home = tmp_path / "home2"
    zoo.load(SSD, runtime="pytorch", method="scripting", source=faulty.url, cache_dir=home)  # caches index + scripting
    n = len(faulty.log)
    with pytest.raises(NotAvailableError, match=r"offline and models/.*/onnx/(model.onnx|metadata.json) .* is not in the cache"):
        load_ssd(faulty.url, home, offline=True)
    assert len(faulty.log) == n


NO_NET = """
import socket, sys
def refuse(*a, **k):
    raise AssertionError("network used while air-gapped")
socket.socket.connect = refuse
socket.create_connection = refuse
import numpy as np, zoo
m = zoo.load(sys.argv[1], runtime="onnxruntime", source=sys.argv[2], revision=sys.argv[3])
print("air-gapped ok", len(m([np.full((3, 240, 320), 0.5, np.float32)])))
"""


def test_bundle_loads_with_no_network(faulty, tmp_path):
    bundle = tmp_path / "bundle"
    out = run_zoo("download", "ssdlite", "--runtime", "onnxruntime", "--source", faulty.url, "--to", bundle,
                  env={"ZOO_HOME": str(tmp_path / "home")}).stdout
    digest = out.split("index sha256 ")[1].split()[0]
    assert store.sha256_file(bundle / "index.json") == digest
    index = store.load_index(bundle)
    assert [a["method"] for a in index["models"][SSD]["artifacts"]] == ["onnx"]
    assert (bundle / f"models/{SSD}/README.md").is_file() and (bundle / f"models/{SSD}/onnx/metadata.json").is_file()
    faulty.stop()
    moved = tmp_path / "elsewhere"
    shutil.move(bundle, moved)  # "copied to another machine"
    cmd = [sys.executable, "-c", NO_NET, SSD, str(moved), digest]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0:
        cmd = ["unshare", "-n"] + cmd  # a process with no network at all, loopback included
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "ZOO_HOME": str(tmp_path / "empty")})
    assert proc.returncode == 0 and "air-gapped ok 1" in proc.stdout, proc.stderr
    target = moved / SSD_ONNX
    target.write_bytes(target.read_bytes()[:-2] + b"zz")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0 and "sha256 mismatch" in proc.stderr and "model.onnx" in proc.stderr


def _git(repo: Path, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "zoo", "GIT_AUTHOR_EMAIL": "zoo@localhost",
                        "GIT_COMMITTER_NAME": "zoo", "GIT_COMMITTER_EMAIL": "zoo@localhost"})


HUB = """
import sys, numpy as np, zoo
m = zoo.load(sys.argv[1], runtime="onnxruntime", source="hf://zoo-org/detectors", revision=sys.argv[2], cache_dir=sys.argv[3])
print("hub ok", m.info["source"], len(m([np.full((3, 240, 320), 0.5, np.float32)])))
"""


def test_hub_round_trip_through_olah(light_store, tmp_path):
    """publish -> git repository -> olah (a real Hub API server, offline) -> hf:// download -> verified load."""
    if shutil.which("olah-cli") is None:
        pytest.skip("olah is not installed (the test extra installs it)")
    repo = tmp_path / "mirrors" / "models" / "zoo-org" / "detectors"
    bundle = tmp_path / "bundle"
    download([SSD], bundle, runtime="onnxruntime", source=str(light_store))
    publish(bundle, str(repo))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "zoo publish")
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    server = Olah(tmp_path / "mirrors", tmp_path / "olah").start()
    try:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
        for revision in ("main", sha):
            proc = subprocess.run([sys.executable, "-c", HUB, SSD, revision, str(tmp_path / f"home-{revision[:4]}")],
                                  capture_output=True, text=True, env=env, timeout=600)
            assert proc.returncode == 0 and "hub ok hf://zoo-org/detectors 1" in proc.stdout, proc.stderr[-2000:]
        # the Hub served tampered bytes: our own index digest still refuses them
        target = repo / SSD_ONNX
        target.write_bytes(target.read_bytes()[:-1] + b"\x01")
        _git(repo, "commit", "-q", "-am", "tamper")
        proc = subprocess.run([sys.executable, "-c", HUB, SSD, "main", str(tmp_path / "home-t")], capture_output=True,
                              text=True, env=env, timeout=600)
        assert proc.returncode != 0 and "sha256 mismatch" in proc.stderr
    finally:
        server.stop()


class RecordingHubApi:
    """Stands in for huggingface_hub.HfApi where no server accepts uploads offline: it records the commit our code
    makes and answers model_info with what was committed, as the Hub does (LFS sha256 per file)."""

    def __init__(self):
        self.commits, self.files = [], {}

    def create_repo(self, repo, repo_type="model", exist_ok=False):
        self.repo = repo

    def model_info(self, repo, revision=None, files_metadata=False):
        from types import SimpleNamespace as NS
        if not self.files:
            raise _NotFound("the branch has no commit yet")
        return NS(siblings=[NS(rfilename=k, lfs=NS(sha256=v), blob_id=None) for k, v in self.files.items()])

    def create_commit(self, repo, operations, commit_message, revision):
        from types import SimpleNamespace as NS
        self.commits.append([op.path_in_repo for op in operations])
        for op in operations:
            self.files[op.path_in_repo] = store.sha256_file(op.path_or_fileobj)
        return NS(oid=f"{len(self.commits):040x}")


class _NotFound(Exception):
    """huggingface_hub's RevisionNotFoundError needs a real HTTP response to be constructed."""


def test_publish_to_hub_makes_one_commit_and_skips_unchanged_files(light_store, tmp_path, monkeypatch):
    import huggingface_hub.errors
    monkeypatch.setattr(huggingface_hub.errors, "RevisionNotFoundError", _NotFound)
    api = RecordingHubApi()
    first = publish(light_store, "hf://zoo-org/detectors", api=api)
    n_files = len(list(store.iter_files(store.load_index(light_store)))) + 1
    assert len(api.commits) == 1 and len(api.commits[0]) == n_files and "index.json" in api.commits[0]
    assert f"uploaded {n_files} file(s)" in first and "revision 0000" in first
    second = publish(light_store, "hf://zoo-org/detectors", api=api)
    assert len(api.commits) == 1 and "nothing to upload" in second
    card = (light_store / f"models/{SSD}/README.md").read_text()
    assert card.startswith("---\nlicense: bsd-3-clause\nlibrary_name: zoo\npipeline_tag: object-detection")
