"""The bytes loaded are the bytes hashed: a file swapped on disk after it was opened, a stamped file swapped after its
stamp was checked, and a file truncated while it is read or hashed are never loaded unverified, and never crash the
process (no mmap, so no SIGBUS)."""
import os
import subprocess
import sys
import time

import pytest

from zoo.load import stamps, verified
from zoo.core import store
from zoo.errors import IntegrityError

GOOD, BAD = b"good weights" * 50_000, b"evil weights" * 50_000


def settled(path, data):
    path.write_bytes(data)
    time.sleep(stamps.RACY_S + 0.1)  # older than the racy window: it may be stamped
    return store.sha256_bytes(data)


def swap(path, data):
    tmp = path.with_name("swap.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_a_file_swapped_while_the_runtime_loads_it_is_loaded_from_the_verified_bytes(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(GOOD)
    digest = store.sha256_bytes(GOOD)

    def runtime(data):
        swap(path, BAD)  # the attacker wins the race for the name
        return data
    assert verified.load_verified(path, digest, "model.bin", runtime) == GOOD
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for model.bin: index says {digest}"):
        verified.load_verified(path, digest, "model.bin", lambda data: data)


def test_a_stamped_file_swapped_after_its_stamp_was_checked_is_not_loaded(tmp_path, monkeypatch):
    """The stamp is checked against fstat of the descriptor the bytes come from, not against the name."""
    home, path = tmp_path / "home", tmp_path / "model.bin"
    digest = settled(path, GOOD)
    verified.load_verified(path, digest, "model.bin", lambda d: d, stamp_home=home)  # stamps it
    real = stamps.is_verified

    def check_then_swap(*args, **kwargs):
        ok = real(*args, **kwargs)
        swap(path, BAD)
        return ok
    monkeypatch.setattr(stamps, "is_verified", check_then_swap)
    assert verified.load_verified(path, digest, "model.bin", lambda d: d, stamp_home=home) == GOOD
    monkeypatch.setattr(stamps, "is_verified", real)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):  # the swapped file has a new inode: hashed, refused
        verified.load_verified(path, digest, "model.bin", lambda d: d, stamp_home=home)


def test_a_file_truncated_after_it_was_opened_is_an_integrity_error(tmp_path, monkeypatch):
    path = tmp_path / "model.bin"
    path.write_bytes(GOOD)
    real = os.fstat

    def fstat_then_truncate(fd):
        st = real(fd)
        os.truncate(path, 100)
        return st
    monkeypatch.setattr(verified.os, "fstat", fstat_then_truncate)
    loaded = []
    with pytest.raises(IntegrityError) as e:
        verified.load_verified(path, store.sha256_bytes(GOOD), "model.bin", loaded.append)
    assert str(e.value) == (f"{path} changed while it was read ({len(GOOD)} bytes when opened, 100 read); refusing to "
                            "load it: load again once nothing is writing it")
    assert not loaded


TRUNCATE_WHILE_HASHING = """
import hashlib, os, sys
from zoo.core import store
path = sys.argv[1]
real = hashlib.sha256

class Truncating:
    def __init__(self):
        self.h, self.done = real(), False
    def update(self, data):
        if not self.done:
            os.truncate(path, 10)  # as another process would, between two reads
            self.done = True
        self.h.update(data)
    def hexdigest(self):
        return self.h.hexdigest()

store.hashlib.sha256 = Truncating
print(store.sha256_file(path))
"""


def test_a_file_truncated_while_it_is_hashed_reads_short_instead_of_crashing(tmp_path):
    """With mmap this process died of SIGBUS; with read() the digest simply differs, and a load refuses it."""
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(8 << 20))
    want = store.sha256_file(path)
    proc = subprocess.run([sys.executable, "-c", TRUNCATE_WHILE_HASHING, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() != want and path.stat().st_size == 10
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        store.check_digest(path, want, "model.bin")



def by_name(path, digest, runtime, **kwargs):
    return verified.load_verified(path, digest, "model.bin", runtime, by_name=True, **kwargs)


def read_name(name):
    """A runtime that reads a file by its name, as torch.jit.load does, and that says how it was handed the file."""
    if isinstance(name, bytes):
        return "bytes", name
    assert name.startswith("/proc/self/fd/"), name  # the open descriptor's name, not the store's
    with open(name, "rb") as f:
        return "name", f.read()


def test_a_runtime_that_reads_by_name_is_handed_the_open_file_verified_and_stamped(tmp_path, hashes):
    home, path = tmp_path / "home", tmp_path / "model.bin"
    digest = settled(path, GOOD)
    assert by_name(path, digest, read_name, stamp_home=home) == ("name", GOOD)
    assert hashes == [path] and stamps.is_verified(home, path, digest)
    assert by_name(path, digest, read_name, stamp_home=home) == ("name", GOOD)
    assert hashes == [path]  # stamped: not hashed again
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for model.bin: index says {'0' * 64}"):
        by_name(path, "0" * 64, read_name)


def test_a_name_swapped_while_a_runtime_reads_it_by_name_leaves_the_verified_file(tmp_path):
    """The swap unlinks the verified file's name: its ctime moves, so the load is dropped and done again from the
    bytes of the same descriptor: the verified file's, not the attacker's."""
    path = tmp_path / "model.bin"
    digest = settled(path, GOOD)
    calls = []

    def runtime(data):
        if not calls:
            swap(path, BAD)  # the attacker wins the race for the store's name
        calls.append(read_name(data))
        return calls[-1]
    assert by_name(path, digest, runtime) == ("bytes", GOOD)
    assert [how for how, _ in calls] == ["name", "bytes"]
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for model.bin: index says {digest}"):
        by_name(path, digest, read_name)  # the name now holds BAD


@pytest.mark.parametrize("stamped", [False, True])
def test_a_file_written_while_a_runtime_reads_it_by_name_is_refused(tmp_path, stamped):
    """A write in place reaches the descriptor: its ctime moves, the load by name is dropped, and the bytes read
    again are the written ones: refused, also where the file was stamped before (no hash on the load by name)."""
    home, path = tmp_path / "home", tmp_path / "model.bin"
    digest = settled(path, GOOD)
    if stamped:
        by_name(path, digest, read_name, stamp_home=home)
        assert stamps.is_verified(home, path, digest)
    calls = []

    def runtime(data):
        calls.append(read_name(data))
        if len(calls) == 1:
            with open(path, "r+b") as f:  # the same inode, written in place after the runtime read it
                f.write(b"evil")
        return calls[-1]
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for model.bin: index says {digest}"):
        by_name(path, digest, runtime, stamp_home=home)
    assert calls[0] == ("name", GOOD)


def test_a_file_truncated_while_a_runtime_reads_it_by_name_is_refused_not_blamed_on_the_runtime(tmp_path):
    path = tmp_path / "model.bin"
    digest = settled(path, GOOD)

    def runtime(data):
        if isinstance(data, str):
            os.truncate(path, 100)
            raise RuntimeError("PytorchStreamReader failed reading zip archive")
        return data
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for model.bin: index says {digest}"):
        by_name(path, digest, runtime)


def test_a_file_written_just_now_is_loaded_from_its_bytes_even_by_a_runtime_that_reads_by_name(tmp_path):
    """Within stamps.RACY_S of a write, a second write could leave ctime as it was: the bytes route, whose bytes are
    the ones hashed, is the safe one."""
    path = tmp_path / "model.bin"
    path.write_bytes(GOOD)
    assert by_name(path, store.sha256_bytes(GOOD), read_name) == ("bytes", GOOD)
