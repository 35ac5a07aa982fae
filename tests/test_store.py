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
