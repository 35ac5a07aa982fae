import json
import os

import pytest

from zoo.core import store
from zoo.load import verified
from zoo.errors import IntegrityError


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "C:/x", "a\\b", "", "./a", "a//b",
                                 "%2e%2e/x", "a/%2E%2E/b", "a\x00b", ".hidden", "a/", "\\\\server/x"])
def test_paths_leaving_the_store_are_refused(bad):
    with pytest.raises(IntegrityError, match="leaves the store.*refused|non-empty"):
        store.safe_relpath(bad)


def one_model_index(record: dict) -> dict:
    """An index of one model "m" whose weights and eager artifact are ``record``."""
    return {"format": store.FORMAT, "models": {"m": {
        "name": "m", "categories": ["bg"], "outputs": ["boxes"], "weights": {"kind": "random", "file": record},
        "artifacts": [{"method": "eager", "runtime": "pytorch", "format": "safetensors", "batch": None,
                       "devices": ["cpu"], "files": {"weights": record}}]}}}


def test_index_with_escaping_path_is_refused(tmp_path):
    record = {"path": "../evil", "size": 1, "sha256": "0" * 64}
    index = one_model_index(record)
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(IntegrityError) as e:
        store.load_index(tmp_path)
    assert "index.json" in str(e.value) and "models.m.artifacts[0].files.weights.path" in str(e.value)
    assert "a relative path inside the store" in str(e.value) and '"../evil"' in str(e.value)


def test_an_index_is_checked_once_per_process_for_the_same_bytes_and_other_bytes_are_checked_again(monkeypatch):
    """zoo.load reads the index on every load; checking the same bytes again cannot change the verdict."""
    from zoo.core import schema
    record = {"path": "models/m/weights.safetensors", "size": 1, "sha256": "0" * 64}
    index = {**one_model_index(record), "nonce": os.urandom(8).hex()}
    checked = []
    real = schema.check
    monkeypatch.setattr(schema, "check", lambda kind, doc, where, *a: checked.append(kind) or real(kind, doc, where, *a))
    good = json.dumps(index).encode()
    assert store.read_index_bytes(good, "index.json") == index
    assert store.read_index_bytes(good, "index.json") == index
    assert checked == ["index"]
    bad = json.dumps({**index, "models": {"m": {**index["models"]["m"], "outputs": "boxes"}}}).encode()
    for _ in range(2):  # a refusal is not remembered: the same bad bytes are checked, and refused, every time
        with pytest.raises(IntegrityError, match="models.m.outputs"):
            store.read_index_bytes(bad, "index.json")
    assert checked == ["index"] * 3


def test_digest_mismatch_names_file_and_both_digests(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    good = store.sha256_file(f)
    store.check_digest(f, good, "a.bin")
    with pytest.raises(IntegrityError) as e:
        store.check_digest(f, "1" * 64, "a.bin")
    assert "a.bin" in str(e.value) and good in str(e.value) and "1" * 64 in str(e.value)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x" / "f.json"
    store.atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}" and not list(target.parent.glob("*.part"))


def test_canonical_json_is_stable():
    assert store.canonical_json({"b": 1, "a": [2]}) == store.canonical_json({"a": [2], "b": 1})


def test_sha256_file_matches_hashlib_for_empty_small_and_large_files(tmp_path):
    import hashlib
    for size in (0, 1, 5 << 20):
        path = tmp_path / f"f{size}"
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        path.write_bytes(data)
        assert store.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_load_verified_returns_the_load_only_when_the_digest_matches(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 1000)
    good = store.sha256_file(path)
    assert verified.load_verified(path, good, "model.bin", lambda data: data[:7]) == b"weights"
    loaded = []
    with pytest.raises(IntegrityError, match="model.bin.*" + "0" * 64):
        verified.load_verified(path, "0" * 64, "model.bin", lambda data: loaded.append(data) or "session")
    assert loaded == [b"weights" * 1000]  # the runtime read it alongside the hash; its result was dropped


def test_load_verified_blames_bad_bytes_before_the_runtime_error(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"truncated")

    def fails(p):
        raise ValueError("runtime could not parse the file")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        verified.load_verified(path, "0" * 64, "model.bin", fails)
    with pytest.raises(ValueError, match="could not parse"):  # good bytes: the runtime's own error stands
        verified.load_verified(path, store.sha256_file(path), "model.bin", fails)
    with pytest.raises(FileNotFoundError):
        verified.load_verified(tmp_path / "missing", "0" * 64, "missing", lambda p: None)


def test_one_function_lists_a_model_entrys_file_records_and_one_picks_an_artifacts_payload():
    from zoo.core.store import entry_records, iter_files, payload

    def rec(path):
        return {"path": path, "size": 1, "sha256": "0" * 64}
    weights, card, ref = rec("models/m/weights.safetensors"), rec("models/m/README.md"), rec("models/m/reference.npz")
    onnx = {"method": "onnx", "files": {"model": rec("models/m/onnx/model.onnx"), "reference": ref}}
    eager = {"method": "eager", "files": {"weights": weights, "reference": ref}}
    entry = {"weights": {"file": weights}, "card": card, "artifacts": [onnx, eager]}
    assert [r["path"] for r in entry_records(entry)] == [weights["path"], card["path"], "models/m/onnx/model.onnx",
                                                         ref["path"], weights["path"], ref["path"]]
    assert [r["path"] for r in iter_files({"models": {"m": entry}})] == [weights["path"], card["path"],
                                                                         "models/m/onnx/model.onnx", ref["path"]]
    assert payload(onnx) is onnx["files"]["model"] and payload(eager) is weights
