"""A verified file is not hashed again while unchanged, and any change, or a stamp for another digest, makes the next
load hash it again (and refuse bad bytes)."""
import os
import time

import pytest

from zoo.load import stamps, verified
from zoo.core import store
from zoo.errors import IntegrityError


def settled_file(path, data: bytes):
    """A file last changed more than RACY_S ago (a fresher one is never stamped)."""
    path.write_bytes(data)
    time.sleep(stamps.RACY_S + 0.1)
    return store.sha256_file(path)


def read(data):
    return data


def test_unchanged_file_is_hashed_once_and_a_rewrite_is_caught(tmp_path, hashes):
    home, path = tmp_path / "home", tmp_path / "model.bin"
    digest = settled_file(path, b"weights" * 1000)
    hashes.clear()
    for _ in range(3):
        assert verified.load_verified(path, digest, "model.bin", read, stamp_home=home) == b"weights" * 1000
    assert hashes == [path]
    assert stamps.is_verified(home, path, digest) and not stamps.is_verified(home, path, "0" * 64)

    with open(path, "r+b") as f:  # same size, same inode, bytes changed in place
        f.write(b"W")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        verified.load_verified(path, digest, "model.bin", read, stamp_home=home)
    assert len(hashes) == 2 and not stamps.is_verified(home, path, digest)


def test_a_replaced_file_is_hashed_again(tmp_path, hashes):
    home, path = tmp_path / "home", tmp_path / "model.bin"
    digest = settled_file(path, b"a" * 4096)
    verified.load_verified(path, digest, "model.bin", read, stamp_home=home)
    other = tmp_path / "other.bin"
    other.write_bytes(b"b" * 4096)
    os.replace(other, path)
    hashes.clear()
    with pytest.raises(IntegrityError):
        verified.load_verified(path, digest, "model.bin", read, stamp_home=home)
    assert hashes == [path]


def test_a_freshly_written_file_is_not_stamped(tmp_path, hashes):
    home, path = tmp_path / "home", tmp_path / "model.bin"
    path.write_bytes(b"new" * 100)
    digest = stamps.hashlib.sha256(b"new" * 100).hexdigest()
    for _ in range(2):
        verified.load_verified(path, digest, "model.bin", read, stamp_home=home)
    assert len(hashes) == 2 and not (home / "verified").exists()


def test_an_unwritable_home_costs_a_hash_per_load_only(tmp_path, hashes):
    home, path = tmp_path / "home", tmp_path / "model.bin"
    home.write_text("a file where the home directory should be")
    digest = settled_file(path, b"x" * 100)
    hashes.clear()
    for _ in range(2):
        assert verified.load_verified(path, digest, "model.bin", read, stamp_home=home) == b"x" * 100
    assert len(hashes) == 2
