"""--weights official: download from the manifest URL with a hash check, against a real HTTP server on 127.0.0.1."""
import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from zoo.errors import IntegrityError
from zoo.core.manifest import resolve

REPO = Path(__file__).resolve().parent.parent
NAME = "ssdlite320_mobilenet_v3_large"


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def manifest_pointing_at(tmp_path, url, sha):
    d = tmp_path / "manifests"
    d.mkdir()
    text = (REPO / "manifests" / f"{NAME}.toml").read_text()
    original = resolve(NAME).weights
    text = text.replace(original["url"], url).replace(f'sha256 = "{original["sha256"]}"', f'sha256 = "{sha}"')
    (d / f"{NAME}.toml").write_text(text)
    return d


def checkpoint(root: Path) -> tuple[Path, str, dict]:
    from zoo.build import weights as models
    # decisive weights: a plain random init ties every score, and the build would rightly refuse its parity check
    state = models.random_model(resolve(NAME), 7)[0].state_dict()
    path = root / "ssdlite-official.pth"
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), state


def test_official_weights_are_downloaded_hash_checked_and_stored(server, tmp_path, monkeypatch):
    root, base = server
    path, sha, state = checkpoint(root)
    monkeypatch.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(tmp_path, f"{base}/{path.name}", sha)))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    from zoo.build.pipeline import build
    result = build([NAME], tmp_path / "store", "official", ["onnx"], progress=False)
    assert not result.failed, result.lines
    index = json.loads((tmp_path / "store" / "index.json").read_text())
    w = index["models"][NAME]["weights"]
    assert w["kind"] == "official" and w["url"] == f"{base}/{path.name}" and w["sha256_expected"] == sha
    from safetensors.torch import load_file
    stored = load_file(str(tmp_path / "store" / w["file"]["path"]))
    assert all(torch.equal(stored[k], v) for k, v in state.items())
    card = (tmp_path / "store" / index["models"][NAME]["card"]["path"]).read_text()
    assert "Official torchvision weights" in card and "model-index:" in card


def test_wrong_hash_is_refused_and_leaves_nothing(server, tmp_path, monkeypatch):
    root, base = server
    path, sha, _ = checkpoint(root)
    monkeypatch.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(tmp_path, f"{base}/{path.name}", "deadbeef")))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    from zoo.build import weights as models
    with pytest.raises(IntegrityError) as e:
        models.official_model(resolve(NAME), progress=False)
    assert "deadbeef" in str(e.value) and sha in str(e.value)
    assert not [p for p in (tmp_path / "home").rglob("*") if p.is_file() and p.name != ".zoo-home"]  # the home marker


def test_a_model_that_fails_to_build_leaves_no_stale_entry(server, tmp_path, monkeypatch):
    """Official weights that are not decisive enough... here: a checkpoint of the wrong model. The build reports it,
    removes what it had written and keeps the store consistent."""
    root, base = server
    path = root / "wrong.pth"
    torch.save({"not": torch.zeros(1)}, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setenv("ZOO_MANIFESTS", str(manifest_pointing_at(tmp_path, f"{base}/{path.name}", sha)))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    from zoo.build.pipeline import build
    result = build([NAME], tmp_path / "store", "official", ["onnx"], progress=False)
    assert result.failed == [f"{NAME}/onnx"] and "does not fit" in result.lines[0]
    assert not (tmp_path / "store").exists()  # a build that stores nothing into a new directory leaves none
