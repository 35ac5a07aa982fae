"""Faults a user can meet, each a clear error (what, which file, what to do) or a recovery: a complete or misplaced
`.part` of a download, a digest or revision that would name a path, a missing runtime extra, a bad ZOO_HTTP_TIMEOUT,
an unexpected exception in the CLI, a runtime failing inside a call; and `zoo cache list | prune | clear`."""
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from conftest import run_zoo
from servers import FaultServer
from zoo.core import store
from zoo.load.transport import download
from zoo.errors import IntegrityError, RuntimeFailure
from zoo.load.sources.cache import Cache

SSD = "ssdlite320_mobilenet_v3_large"
SSD_ONNX = f"models/{SSD}/onnx/model.onnx"
DATA = os.urandom(3 << 20)


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "weights.pth").write_bytes(DATA)
    server = FaultServer(root)
    yield server
    server.stop()


def test_a_complete_part_file_is_checked_and_used_not_retried_forever(files, tmp_path):
    dest = tmp_path / "official" / "weights.pth"
    dest.parent.mkdir()
    dest.with_name("weights.pth.part").write_bytes(DATA)  # a download killed between its last byte and its rename
    download(f"{files.url}/weights.pth", dest, store.sha256_bytes(DATA)[:8], progress=False)
    assert dest.read_bytes() == DATA and not dest.with_name("weights.pth.part").exists()
    assert files.log == [("weights.pth", f"bytes={len(DATA)}-")]  # one request, answered 416


def test_a_complete_part_file_with_wrong_bytes_is_replaced(files, tmp_path):
    dest = tmp_path / "weights.pth"
    dest.with_name("weights.pth.part").write_bytes(b"x" * len(DATA))
    download(f"{files.url}/weights.pth", dest, store.sha256_bytes(DATA), progress=False)
    assert dest.read_bytes() == DATA
    assert [r for _, r in files.log] == [f"bytes={len(DATA)}-", None]  # 416, then the whole file again


def test_a_206_for_another_offset_is_not_appended(files, tmp_path):
    dest = tmp_path / "weights.pth"
    dest.with_name("weights.pth.part").write_bytes(DATA[:1000])
    files.faults["weights.pth"] = ["badrange"]  # answers a Range request from byte 0
    download(f"{files.url}/weights.pth", dest, store.sha256_bytes(DATA), progress=False)
    assert dest.read_bytes() == DATA
    assert [r for _, r in files.log] == ["bytes=1000-", None]


@pytest.mark.parametrize("digest", ["../../../../outside", "/tmp/" + "0" * 59, "A" * 64, "0" * 63 + "\x00"])
def test_a_digest_is_checked_before_it_names_a_cache_path(tmp_path, digest):
    home = tmp_path / "a" / "home"
    with pytest.raises(IntegrityError, match="is not a sha256 digest \\(expected 64 lowercase hexadecimal characters\\)"):
        Cache(home).get({"path": "x", "size": 1, "sha256": digest}, lambda dest: dest.write_bytes(b"x"), "test")
    assert not list(tmp_path.iterdir())  # not even the home directory


def test_a_damaged_cached_blob_is_fetched_again_once_then_a_clear_error(tmp_path):
    good = b"the artifact"
    record = {"path": "models/m/onnx/model.onnx", "size": len(good), "sha256": store.sha256_bytes(good)}
    cache, fetched = Cache(tmp_path / "home"), []

    def fetch(data):
        return lambda dest: fetched.append(1) or dest.write_bytes(data)
    blob = cache.get(record, fetch(good), "the mirror")
    blob.write_bytes(b"the artefact")  # same size, one byte changed on disk
    with pytest.warns(UserWarning, match=f"the cached copy of models/m/onnx/model.onnx \\({blob}\\) did not match its "
                                         "sha256 and was removed; fetching it again from the mirror"):
        assert cache.get(record, fetch(good), "the mirror").read_bytes() == good
    assert len(fetched) == 2
    blob.write_bytes(b"the artefact")
    with pytest.warns(UserWarning, match="fetching it again"), pytest.raises(IntegrityError) as e:
        cache.get(record, fetch(b"still wrong!"), "the mirror")
    assert str(e.value).startswith(f"sha256 mismatch for models/m/onnx/model.onnx (cached at {blob}): index says "
                                   f"{record['sha256']}")
    assert str(e.value).endswith("it came from the mirror, which serves a damaged file: removed it, tell the source's "
                                 "publisher (`zoo verify` on their store finds it)")
    assert not blob.exists() and len(fetched) == 3
    blob.write_bytes(b"the artefact")
    with pytest.raises(IntegrityError, match="offline, it cannot be fetched again: go online"):
        cache.get(record, None, "the mirror")
    assert not blob.exists()


def test_a_revision_is_checked_before_it_names_a_file(files, tmp_path):
    with pytest.raises(IntegrityError) as e:
        zoo.load(SSD, source=files.url, cache_dir=tmp_path / "home", revision="../../evil")
    assert "'../../evil' is not a sha256 digest" in str(e.value) and "pinned by its index's sha256" in str(e.value)
    assert not (tmp_path / "home").exists() and files.log == []


NO_ORT = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
"""


def test_a_missing_runtime_extra_is_named_before_anything_is_downloaded(files, tmp_path):
    code = (NO_ORT +
            f"import zoo\nzoo.load({SSD!r}, runtime='onnxruntime', source={files.url!r}, cache_dir={str(tmp_path / 'home')!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "MissingExtraError: runtime='onnxruntime' needs onnxruntime, which is not installed: " \
           "pip install 'zoo[onnxruntime]'" in proc.stderr
    assert files.log == [] and not (tmp_path / "home").exists()


def test_a_bad_http_timeout_is_an_error_at_use_not_at_import(files, tmp_path):
    env = {**os.environ, "ZOO_HTTP_TIMEOUT": "abc"}
    assert subprocess.run([sys.executable, "-c", "import zoo, zoo.load.transport"], env=env).returncode == 0
    proc = run_zoo("path", SSD, "--source", files.url, env={"ZOO_HTTP_TIMEOUT": "abc", "ZOO_HOME": str(tmp_path)},
                   check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("zoo: error: ZOO_HTTP_TIMEOUT must be a number of seconds > 0 (like 30), got "
                                   "'abc': fix or unset it")


def test_an_unexpected_exception_in_the_cli_is_one_line_and_the_traceback_is_on_request(onnx_store, tmp_path):
    home = tmp_path / "not-a-directory"
    home.write_text("ZOO_HOME points at this file")
    server = FaultServer(onnx_store)
    try:
        proc = run_zoo("path", SSD, "--source", server.url, env={"ZOO_HOME": str(home)}, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[0].startswith("zoo: unexpected ") and "Error: " in lines[0] and str(home) in lines[0]
        assert lines[1:] == ["run with ZOO_DEBUG=1 for the traceback"]
        debug = run_zoo("path", SSD, "--source", server.url, env={"ZOO_HOME": str(home), "ZOO_DEBUG": "1"}, check=False)
        assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    finally:
        server.stop()


def test_an_unreadable_image_is_a_clear_error(onnx_store, tmp_path):
    proc = run_zoo("predict", tmp_path / "missing.jpg", "--model", SSD, "--source", onnx_store,
                   env={"ZOO_HOME": str(tmp_path / "home")}, check=False)
    assert proc.returncode == 2 and "zoo: error: cannot read the image" in proc.stderr
    assert "missing.jpg" in proc.stderr and "give a JPEG or PNG file" in proc.stderr


def test_a_runtime_failure_inside_a_call_says_what_to_do(onnx_store, tmp_path):
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail
    model = zoo.load(SSD, source=onnx_store, cache_dir=tmp_path / "home")

    def fails(inputs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : out of memory")
    model.backend.run = fails
    with pytest.raises(RuntimeFailure) as e:
        model([np.full((3, 200, 300), 0.5, np.float32)])
    assert str(e.value) == (f"{SSD} (onnxruntime/onnx) failed on images of shape [[3, 200, 300]]: Fail: "
                            "[ONNXRuntimeError] : 1 : FAIL : out of memory; check the device and memory, or try "
                            "another runtime/method (zoo.load(..., runtime=, method=))")


def test_zoo_cache_lists_prunes_and_clears(onnx_store, tmp_path):
    home = tmp_path / "home"
    env = {"ZOO_HOME": str(home)}
    server = FaultServer(onnx_store)
    try:
        zoo.load(SSD, source=server.url, cache_dir=home)
    finally:
        server.stop()
    orphan = b"a blob no index lists"
    Cache(home).get({"path": "old/model.onnx", "size": len(orphan), "sha256": store.sha256_bytes(orphan)},
                    lambda dest: dest.write_bytes(orphan), "test")
    listing = run_zoo("cache", "list", env=env).stdout
    assert f"{SSD}  {SSD_ONNX}" in listing and "(no recorded index)" in listing
    assert "1 listed by no recorded index" in listing and "zoo cache prune" in listing
    dry = run_zoo("cache", "prune", "--dry-run", env=env).stdout
    blob = Cache(home).blob(store.sha256_bytes(orphan))
    assert f"would remove {blob}" in dry and blob.exists()
    pruned = run_zoo("cache", "prune", env=env).stdout
    assert f"removed {blob}" in pruned and "freed 21B in 1 blob(s)" in pruned and not blob.exists()
    zoo.load(SSD, source=onnx_store, cache_dir=home)  # the indexed blobs stayed (and a local store needs none)
    assert "0 bad" in run_zoo("verify", home).stdout
    assert all(Cache(home).blob(r["sha256"]).is_file() for r in store.iter_files(store.load_index(onnx_store))
               if r["path"].endswith(("model.onnx", "metadata.json")))
    cleared = run_zoo("cache", "clear", env=env).stdout
    assert cleared.startswith("freed ") and not (home / "indexes").exists()
    assert "0 blob(s)" in run_zoo("cache", "list", env=env).stdout


def test_error_messages_carry_no_terminal_escape_codes():
    """A ZooError quoting another library's coloured text (torch's pickling refusal is bold and coloured), or an
    unexpected exception's first line, reaches the user without escape codes or other control characters."""
    from zoo.errors import ParityError, UnknownModelError, ZooError, first_line
    coloured = "\x1b[1mWeights only load failed.\x1b[0m \x1b]8;;https://x\x07link\x1b]8;;\x07 bell\x07 \x1b[31;1mred\x1b[m"
    for e in (ZooError(coloured), ParityError(coloured), UnknownModelError(coloured)):
        assert str(e) == "Weights only load failed. link bell red", str(e)
    assert first_line(RuntimeError(coloured + "\nsecond line")) == "Weights only load failed. link bell red"
