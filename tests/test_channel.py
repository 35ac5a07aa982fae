"""The official channel end to end, against real servers on 127.0.0.1: official-style checkpoints over HTTP ->
`zoo release` (build, lock, one Hub repository per model, pin) -> git repositories served by olah -> a fresh process
loads by name with no source; the pinned index refused when the server changes it; the air-gapped path
(`zoo download`, `zoo import`, `unshare -n`); official weights found in torchvision's download cache."""
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

import zoo
from conftest import run_zoo
from hubgit import GitHubApi, git
from servers import Olah
from test_official_weights import manifest_pointing_at
from zoo.load import channel
from zoo.core import parity, store
from zoo.errors import IntegrityError, NotAvailableError, UnsupportedError

SSD = "ssdlite320_mobilenet_v3_large"
ORG = "zoo-org"
needs_olah = pytest.mark.skipif(shutil.which("olah-cli") is None, reason="olah is not installed (the test extra has it)")


class LoggingServer:
    """A static HTTP server that keeps the path of every request it gets."""

    def __init__(self, root: Path):
        self.log: list[str] = []
        log = self.log

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt, *args):
                log.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def official_style_checkpoint(root: Path) -> Path:
    """Decisive weights (a plain random init ties every score) saved under a torchvision-style name, NAME-<sha8>.pth."""
    import torch

    from zoo.build import weights as models
    from zoo.core.manifest import resolve
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "checkpoint.tmp"
    torch.save(models.random_model(resolve(SSD), 7)[0].state_dict(), tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(root / f"ssdlite320_mobilenet_v3_large_coco-{sha[:8]}.pth")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """`zoo release` of one small model (onnx only) to hf://zoo-org, committed to git repositories olah serves."""
    if shutil.which("olah-cli") is None:
        pytest.skip("olah is not installed (the test extra has it)")
    tmp = tmp_path_factory.mktemp("release")
    ckpt = official_style_checkpoint(tmp / "srv")
    server = LoggingServer(tmp / "srv")
    olah = Olah(tmp / "mirrors", tmp / "olah")
    api = GitHubApi(tmp / "mirrors")
    olah.start()
    try:
        with pytest.MonkeyPatch.context() as mp:  # the release's environment only: the tests set their own
            mp.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(tmp, f"{server.url}/{ckpt.name}", sha256(ckpt)[:8])))
            mp.setenv("ZOO_HOME", str(tmp / "home"))
            mp.setenv("TORCH_HOME", str(tmp / "torch-home"))  # an empty torchvision cache: the server is asked
            mp.setenv("HF_ENDPOINT", olah.url)
            mp.delenv("ZOO_SOURCE", raising=False)
            mp.delenv("ZOO_CHANNEL", raising=False)
            from zoo.publish.release import release
            out = release(ORG, tmp / "store", tmp / "official.toml", [SSD], ["onnx"], api=api, progress=False)
            env = dict(os.environ)
        yield {"tmp": tmp, "store": tmp / "store", "channel": tmp / "official.toml", "olah": olah, "api": api,
               "server": server, "checkpoint": ckpt, "lines": out.lines, "env": env,
               "repo": tmp / "mirrors" / "models" / ORG / SSD}
    finally:
        olah.stop()
        server.stop()


def grey_and_content():
    from zoo.core.manifest import resolve
    from zoo.build.pipeline import as_float, parity_images
    return as_float(parity_images(resolve(SSD))["sizes"][:1])


LOAD = """
import sys, numpy as np, zoo
model = zoo.load("ssdlite", runtime="onnxruntime")
out = model([np.load(sys.argv[1])])[0]
np.savez(sys.argv[2], **out)
print("loaded from", model.info["source"])
"""


def load_in_fresh_process(tmp: Path, env: dict, prefix: list[str] = ()):
    image = tmp / "image.npy"
    np.save(image, grey_and_content()[0])
    out = tmp / f"out-{len(list(tmp.glob('out-*')))}.npz"
    proc = subprocess.run([*prefix, sys.executable, "-c", LOAD, str(image), str(out)], capture_output=True, text=True,
                          env=env, timeout=600)
    return proc, out


def matches_eager(store_dir: Path, out: Path) -> bool:
    from zoo.core.manifest import resolve
    eager = zoo.load(SSD, runtime="pytorch", method="eager", source=str(store_dir),
                     cache_dir=store_dir.parent / "eager-home")(grey_and_content())[0]
    with np.load(out) as z:
        got = {k: z[k] for k in z.files}
    spec = next(e for e in resolve(SSD).exports if e.method == "onnx")
    report = parity.compare([eager], [got], parity.Tolerance.from_dict(spec.tolerance))
    return report.ok and len(got["scores"]) > 0


@pytest.mark.slow
def test_release_publishes_a_repository_per_model_and_pins_it(released, monkeypatch, tmp_path):
    repo, pin = released["repo"], channel.read(released["channel"]).models[SSD]
    assert pin.repo == f"{ORG}/{SSD}" and pin.commit == git(repo, "rev-parse", "HEAD")
    assert pin.index_sha256 == sha256(repo / "index.json")
    index = json.loads((repo / "index.json").read_text())
    assert list(index["models"]) == [SSD] and index["models"][SSD]["card"]["path"] == "README.md"
    assert (repo / "README.md").read_text().startswith("---\nlicense: bsd-3-clause\n")
    assert {r["path"] for r in store.iter_files(index)} == {"README.md", "weights.safetensors", "reference.npz",
                                                             "onnx/model.onnx", "onnx/metadata.json"}
    assert [f"/{released['checkpoint'].name}"] == released["server"].log  # downloaded once, from the manifest's URL
    w = index["models"][SSD]["weights"]
    assert w["kind"] == "official" and w["checkpoint_sha256"] == sha256(released["checkpoint"])
    lock = json.loads((released["tmp"] / "store.lock.json").read_text())
    assert lock["models"][SSD]["checkpoint_sha256"] == w["checkpoint_sha256"]
    assert len(released["api"].commits) == 1  # one commit for the model's repository
    # a second release of the same store uploads nothing and pins the same commit
    from zoo.publish.release import release
    monkeypatch.setenv("HF_ENDPOINT", released["olah"].url)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    again = release(ORG, released["store"], released["tmp"] / "again.toml", [SSD], api=released["api"], build=False,
                    progress=False)
    assert len(released["api"].commits) == 1 and any("nothing to upload" in line for line in again.lines)
    assert channel.read(released["tmp"] / "again.toml").models[SSD] == pin


@pytest.mark.slow
def test_fresh_process_loads_by_name_from_the_pinned_channel(released, tmp_path):
    env = {**released["env"], "ZOO_CHANNEL": str(released["channel"]), "ZOO_HOME": str(tmp_path / "home")}
    env.pop("ZOO_MANIFESTS")  # the user's machine has the package's manifests only
    proc, out = load_in_fresh_process(tmp_path, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commit = channel.read(released["channel"]).models[SSD].commit
    assert f"loaded from hf://{ORG}/{SSD}@{commit[:12]}" in proc.stdout
    assert matches_eager(released["store"], out)
    assert not list((tmp_path / "home").rglob("models--*"))  # one copy: the blob cache, no huggingface_hub cache


@pytest.mark.slow
def test_source_and_zoo_source_take_precedence_over_the_channel(released, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CHANNEL", str(tmp_path / "no-such-channel.toml"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    assert zoo.load(SSD, source=str(released["store"])).info["source"] == str(released["store"])
    monkeypatch.setenv("ZOO_SOURCE", str(released["store"]))
    assert zoo.load("ssdlite").info["source"] == str(released["store"])
    monkeypatch.delenv("ZOO_SOURCE")
    with pytest.raises(zoo.ChannelError, match="does not exist"):
        zoo.load("ssdlite")


def _tamper_blob(repo: Path, commit: str, rel: str):
    """Rewrite the git object of ``rel`` at ``commit`` in place (one byte): the server then serves changed bytes
    under the same commit, as a compromised mirror would. Returns a function that restores it."""
    blob = git(repo, "rev-parse", f"{commit}:{rel}")
    path = repo / ".git" / "objects" / blob[:2] / blob[2:]
    original = path.read_bytes()
    data = zlib.decompress(original)
    header, _, body = data.partition(b"\0")
    body = body.replace(b'"format"', b'"formaT"', 1)
    os.chmod(path, 0o644)
    path.write_bytes(zlib.compress(header + b"\0" + body))
    return lambda: path.write_bytes(original)


@pytest.mark.slow
def test_changed_index_on_the_server_is_refused_naming_both_digests(released, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", released["olah"].url)
    monkeypatch.setenv("ZOO_CHANNEL", str(released["channel"]))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    pin = channel.read(released["channel"]).models[SSD]
    repo = released["repo"]
    restore = _tamper_blob(repo, pin.commit, "index.json")
    try:  # one byte changed under the pinned commit
        served = sha256_of_served(released, pin.commit)
        assert served != pin.index_sha256
        with pytest.raises(IntegrityError) as e:
            zoo.load("ssdlite", runtime="onnxruntime")
        assert pin.index_sha256 in str(e.value) and served in str(e.value) and "refused" in str(e.value)
    finally:
        restore()
    # a new commit on the branch: the pinned commit is still what loads
    index = json.loads((repo / "index.json").read_text())
    index["models"][SSD]["aliases"].append("moved")
    (repo / "index.json").write_text(json.dumps(index))
    git(repo, "commit", "-qam", "a new commit on main")
    try:
        model = zoo.load("ssdlite", runtime="onnxruntime", cache_dir=tmp_path / "home2")
        assert pin.commit[:12] in model.info["source"]
        # a channel naming the new commit with the old digest: refused, both digests named
        moved = tmp_path / "moved.toml"
        ch = channel.read(released["channel"])
        new_commit = git(repo, "rev-parse", "HEAD")
        ch.models[SSD] = channel.Pin(pin.repo, new_commit, pin.index_sha256)
        channel.write(ch, moved)
        monkeypatch.setenv("ZOO_CHANNEL", str(moved))
        with pytest.raises(IntegrityError) as e:
            zoo.load("ssdlite", runtime="onnxruntime", cache_dir=tmp_path / "home3")
        assert pin.index_sha256 in str(e.value) and sha256(repo / "index.json") in str(e.value)
        # `zoo pin` resolves the branch to its new commit and digest
        out = run_zoo("pin", f"hf://{ORG}/{SSD}@main", "--out", tmp_path / "pinned.toml",
                      env={"ZOO_HOME": str(tmp_path / "pin-home")}).stdout
        assert f"{SSD}: hf://{ORG}/{SSD}@{new_commit} index sha256 {sha256(repo / 'index.json')}" in out
        repinned = channel.read(tmp_path / "pinned.toml")
        assert repinned.models[SSD] == channel.Pin(pin.repo, new_commit, sha256(repo / "index.json"))
        assert repinned.hub == released["olah"].url and repinned.org == ORG
    finally:
        git(repo, "reset", "-q", "--hard", pin.commit)


def sha256_of_served(released, commit: str) -> str:
    import requests
    data = requests.get(f"{released['olah'].url}/{ORG}/{SSD}/resolve/{commit}/index.json", timeout=30).content
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_hub_branch_is_resolved_once_and_files_come_from_that_commit(released, tmp_path, monkeypatch):
    """A push between reading the index and downloading an artifact changes nothing: the commit was fixed once."""
    import huggingface_hub
    from zoo.load.sources.hub import HubSource
    monkeypatch.setenv("HF_ENDPOINT", released["olah"].url)
    calls = []
    real = huggingface_hub.HfApi.model_info
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, *a, **k: calls.append(k) or real(self, *a, **k))
    repo = released["repo"]
    src = HubSource(f"{ORG}/{SSD}", tmp_path / "home", offline=False)
    index = src.index("main")
    first = src.revision
    onnx = next(a for a in index["models"][SSD]["artifacts"] if a["method"] == "onnx")["files"]["model"]
    (repo / "onnx" / "model.onnx").write_bytes(b"not the model")
    git(repo, "commit", "-qam", "pushed meanwhile")
    try:
        path = src.fetch(onnx)
        assert sha256(path) == onnx["sha256"] and len(calls) == 1 and calls[0]["revision"] == "main"
        assert src.revision == first
    finally:
        git(repo, "reset", "-q", "--hard", first)


NO_NETWORK_CHECK = """
import socket
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)
except OSError as e:
    print("no network:", e)
"""


def _without_network() -> list[str]:
    """``unshare -n``: a process with no network at all (no loopback either), when the kernel lets us."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0:
        return ["unshare", "-n"]
    pytest.skip("unshare -n is not permitted here (it needs root or user namespaces; CI runs as root)")


@pytest.mark.slow
def test_air_gapped_download_import_then_the_verbatim_call(released, tmp_path):
    env = {**released["env"], "ZOO_CHANNEL": str(released["channel"]), "ZOO_HOME": str(tmp_path / "online-home")}
    bundle = tmp_path / "bundle"
    run_zoo("download", "ssdlite", "--runtime", "onnxruntime", "--to", bundle, env=env)  # no --source: the channel
    assert store.load_index(bundle)["models"][SSD]["card"]["path"] == f"models/{SSD}/README.md"
    moved = tmp_path / "usb-stick"
    shutil.move(bundle, moved)
    offline = {k: v for k, v in env.items() if k not in ("HF_ENDPOINT", "ZOO_MANIFESTS")}
    offline["ZOO_HOME"] = str(tmp_path / "air-gapped-home")
    prefix = _without_network()
    proc = subprocess.run([*prefix, sys.executable, "-m", "zoo.cli", "import", str(moved)], capture_output=True,
                          text=True, env=offline)
    assert proc.returncode == 0 and "1 pinned index" in proc.stdout, proc.stderr
    proc = subprocess.run([*prefix, sys.executable, "-c", NO_NETWORK_CHECK], capture_output=True, text=True)
    assert "no network" in proc.stdout
    proc, out = load_in_fresh_process(tmp_path, offline, prefix)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert matches_eager(released["store"], out)
    # a file missing from the cache is named, with the commands that would fetch it
    onnx = next(a for a in store.load_index(moved)["models"][SSD]["artifacts"] if a["method"] == "onnx")
    sha = onnx["files"]["model"]["sha256"]
    (tmp_path / "air-gapped-home" / "blobs" / "sha256" / sha[:2] / sha).unlink()
    proc = subprocess.run([*prefix, sys.executable, "-c", LOAD, "x", "y"], capture_output=True, text=True, env=offline)
    assert proc.returncode != 0 and "onnx/model.onnx" in proc.stderr
    assert f"zoo download {SSD} --to DIR" in proc.stderr and "zoo import DIR" in proc.stderr
    # a damaged bundle file is refused by import, nothing half-written is left in the cache
    target = next((moved / "models" / SSD / "onnx").glob("model.onnx"))
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    offline["ZOO_HOME"] = str(tmp_path / "other-home")
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "import", str(moved)], capture_output=True, text=True,
                          env=offline)
    assert proc.returncode == 2 and "sha256 mismatch" in proc.stderr and "model.onnx" in proc.stderr
    assert not list((tmp_path / "other-home").rglob("*.part"))


def test_official_weights_from_torchvision_cache_make_no_request(tmp_path, monkeypatch):
    from zoo.build import weights as models
    from zoo.core.manifest import resolve
    ckpt = official_style_checkpoint(tmp_path / "srv")
    server = LoggingServer(tmp_path / "srv")
    try:
        monkeypatch.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(tmp_path, f"{server.url}/{ckpt.name}",
                                                                    sha256(ckpt)[:8])))
        monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        cached = tmp_path / "torch" / "hub" / "checkpoints" / ckpt.name
        cached.parent.mkdir(parents=True)
        shutil.copyfile(ckpt, cached)
        _, info = models.official_model(resolve(SSD), progress=False)
        assert server.log == [] and info["checkpoint_sha256"] == sha256(ckpt)
        # a file there that fails torchvision's check (its name's hash prefix) is not used: downloaded instead
        cached.write_bytes(cached.read_bytes() + b"x")
        with pytest.warns(UserWarning, match="not used, downloading instead"):
            _, info = models.official_model(resolve(SSD), progress=False)
        assert server.log == [f"/{ckpt.name}"] and info["checkpoint_sha256"] == sha256(ckpt)
    finally:
        server.stop()


def test_release_refuses_weights_that_are_not_official_or_a_failed_build(tmp_path, monkeypatch):
    from zoo.errors import ReleaseRefused
    from zoo.publish.release import check_releasable, release
    entry = {"weights": {"kind": "random"}, "artifacts": [{"method": "onnx", "parity": {"ok": True}}]}
    with pytest.raises(ReleaseRefused, match=f"{SSD}: weights are 'random', not official"):
        check_releasable({"models": {SSD: entry}})
    import torch
    (tmp_path / "srv").mkdir()
    torch.save({"not": torch.zeros(1)}, tmp_path / "srv" / "wrong.pth")
    server = LoggingServer(tmp_path / "srv")
    try:
        monkeypatch.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(
            tmp_path, f"{server.url}/wrong.pth", sha256(tmp_path / "srv" / "wrong.pth")[:8])))
        monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        api = GitHubApi(tmp_path / "mirrors")
        with pytest.raises(ReleaseRefused, match=f"failed to build or failed parity: {SSD}/onnx; nothing was published"):
            release(ORG, tmp_path / "store", tmp_path / "official.toml", [SSD], ["onnx"], api=api, progress=False)
    finally:
        server.stop()
    assert not (tmp_path / "mirrors").exists() and not (tmp_path / "official.toml").exists()


def test_shipped_channel_pins_nothing_yet_and_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_CHANNEL", raising=False)
    monkeypatch.delenv("ZOO_SOURCE", raising=False)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))  # an empty local store: not the developer's own
    shipped = channel.read()
    assert shipped.models == {} and shipped.hub == "https://huggingface.co"
    with pytest.raises(NotAvailableError) as e:
        zoo.load("mask_rcnn", runtime="onnxruntime")
    assert f"zoo {zoo.__version__} pins no official release yet" in str(e.value)
    assert "ZOO_CHANNEL" in str(e.value) and "source=" in str(e.value)
    proc = run_zoo("predict", REPO_IMAGE, "--model", "ssdlite", check=False)
    assert proc.returncode == 2 and "pins no official release yet" in proc.stderr
    assert "`zoo build ssdlite320_mobilenet_v3_large`" in proc.stderr
    assert "--source (a store directory" in proc.stderr and "source=" not in proc.stderr  # the CLI's own words
    proc = run_zoo("release", "--to", "hf://zoo-org/one-repo", check=False)
    assert proc.returncode == 2 and "expects hf://ORG (one repository per model" in proc.stderr


REPO_IMAGE = str(Path(zoo.__file__).parent / "data" / "astronaut.jpg")


@pytest.mark.parametrize("text, message", [
    ('format = "zoo-channel/1"\n[models.ssd]\nrepo = "a/b"\ncommit = "main"\nindex_sha256 = "' + "0" * 64 + '"\n',
     "commit must be a full commit id"),
    ('format = "zoo-channel/1"\n[models.ssd]\nrepo = "../b"\ncommit = "' + "a" * 40 + '"\nindex_sha256 = "x"\n',
     "expected a repository id ORG/REPO"),
    ('format = "zoo-channel/1"\n[models.ssd]\nrepo = "a/b"\ncommit = "' + "a" * 40 + '"\nindex_sha256 = "x"\n',
     "index_sha256 must be 64 lowercase hex"),
    ('format = "other"\n', 'expected format = "zoo-channel/1"'),
    ("not toml [", "not valid TOML"),
])
def test_malformed_channel_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(channel.ChannelError, match=message):
        channel.read(path)


def test_channel_round_trips_and_revision_cannot_override_a_pin(tmp_path, monkeypatch):
    ch = channel.Channel("http://127.0.0.1:1", ORG, {SSD: channel.Pin(f"{ORG}/{SSD}", "a" * 40, "b" * 64)})
    channel.write(ch, tmp_path / "c.toml", "a comment")
    back = channel.read(tmp_path / "c.toml")
    assert (back.hub, back.org, back.models) == (ch.hub, ch.org, ch.models)
    monkeypatch.setenv("ZOO_CHANNEL", str(tmp_path / "c.toml"))
    monkeypatch.delenv("ZOO_SOURCE", raising=False)
    with pytest.raises(UnsupportedError, match="is pinned at commit a{40}"):
        zoo.load("ssdlite", revision="main", cache_dir=tmp_path / "home")
    with pytest.raises(NotAvailableError, match=f"pins no release of maskrcnn_resnet50_fpn \\(it pins: {SSD}\\)"):
        zoo.load("mask_rcnn", cache_dir=tmp_path / "home")
