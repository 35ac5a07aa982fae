import json

import pytest

from zoo import store
from zoo.errors import IntegrityError


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "C:/x", "a\\b", "", "./a", "a//b"])
def test_paths_leaving_the_store_are_refused(bad):
    with pytest.raises(IntegrityError, match="refused|non-empty"):
        store.safe_relpath(bad)


def test_index_with_escaping_path_is_refused(tmp_path):
    index = {"format": store.FORMAT, "models": {"m": {"weights": {"file": {"path": "../evil", "sha256": "0" * 64}},
                                                      "artifacts": []}}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(IntegrityError, match="leaves the store"):
        store.load_index(tmp_path)


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
    assert store.load_verified(path, good, "model.bin", lambda p: p.read_bytes()[:7]) == b"weights"
    loaded = []
    with pytest.raises(IntegrityError, match="model.bin.*" + "0" * 64):
        store.load_verified(path, "0" * 64, "model.bin", lambda p: loaded.append(p) or "session")
    assert loaded == [path]  # the runtime read it alongside the hash; its result was dropped


def test_load_verified_blames_bad_bytes_before_the_runtime_error(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"truncated")

    def fails(p):
        raise ValueError("runtime could not parse the file")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        store.load_verified(path, "0" * 64, "model.bin", fails)
    with pytest.raises(ValueError, match="could not parse"):  # good bytes: the runtime's own error stands
        store.load_verified(path, store.sha256_file(path), "model.bin", fails)
    with pytest.raises(FileNotFoundError):
        store.load_verified(tmp_path / "missing", "0" * 64, "missing", lambda p: None)
