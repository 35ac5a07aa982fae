"""Make a TorchScript archive independent of where it was built.

``torch.jit.save`` stores, next to each code file, a ``*.debug_pkl`` record: the Python source location of every op
(for scripted code the original file name, for traced code the whole Python stack at trace time). Those are absolute
paths of the build machine (its checkout, its site-packages), so the same build in another directory gave other bytes.
``relocate`` rewrites every such path relative to the ``sys.path`` root it was imported from
(``/home/me/zoo/zoo/export/patches.py`` -> ``zoo/export/patches.py``), cuts traced stacks at ``torch.jit.trace`` (the
frames below are the exporter driving the trace, not the model, and would tie the bytes to its line numbers), shifts
the recorded byte ranges to match, and rewrites the archive with torch's own writer (which derives the archive's
serialization id from the new content). Error messages from the artifact keep their "original code" traceback, with
portable paths.

The record format (torch's ``FORMAT_WITH_STRING_TABLE``):
``("FORMAT_WITH_STRING_TABLE", strings, ((byte_offset, ((text_pieces, filename, first_line), start, end), tag), ...))``
where ``text_pieces`` and ``filename`` index ``strings`` and ``start``/``end`` are byte offsets into the joined text.
"""
import io
import os
import pickle
import struct
import sys
import tempfile
from typing import List, Sequence

FORMAT = "FORMAT_WITH_STRING_TABLE"
_INTLIST = ("torch.jit._pickle", "build_intlist")
TRACER = "torch/jit/_trace.py("


def import_roots(paths: Sequence[str] = ()) -> List[str]:
    """Where this process imports from, each with a trailing separator, longest first: the absolute ``sys.path``
    directories and the folder holding each loaded top-level package (an editable install maps a package with a
    finder, not through ``sys.path``)."""
    folders = {p for p in (paths or sys.path) if p and os.path.isabs(p)}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." in name or not file or not os.path.isabs(file):
            continue
        folder, stem = os.path.split(os.path.splitext(file)[0])
        if stem == "__init__" and os.path.basename(folder) == name:  # a package: NAME/__init__.py
            folders.add(os.path.dirname(folder))
        elif stem == name:  # a module: NAME.py (aliases such as _frozen_importlib -> importlib/_bootstrap.py skip)
            folders.add(folder)
    roots = {os.path.join(os.path.abspath(p), "") for p in folders}
    return sorted(roots - {os.sep}, key=len, reverse=True)


def portable(text: str, roots: Sequence[str]) -> str:
    for root in roots:
        text = text.replace(root, "")
    return text


class _Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == _INTLIST:
            return list
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a TorchScript debug record")


def _dump(obj) -> bytes:
    """Pickle ``obj`` (str, int, tuple, list of int) with the opcodes torch's own pickler uses for these records."""
    out = bytearray(b"\x80\x02")

    def put(o):
        if isinstance(o, str):
            data = o.encode("utf-8")
            out.extend(b"X" + struct.pack("<I", len(data)) + data)
        elif isinstance(o, int) and not isinstance(o, bool):
            if 0 <= o < 1 << 8:
                out.extend(b"K" + bytes([o]))
            elif 0 <= o < 1 << 16:
                out.extend(b"M" + struct.pack("<H", o))
            else:
                out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, tuple):
            if not o:
                out.extend(b")")
                return
            if len(o) > 3:
                out.extend(b"(")
            for item in o:
                put(item)
            out.extend(b"t" if len(o) > 3 else b"\x85\x86\x87"[len(o) - 1:len(o)])
        elif isinstance(o, list):
            out.extend(b"c%s\n%s\n(](" % tuple(s.encode() for s in _INTLIST))
            for item in o:
                put(item)
            out.extend(b"etR")
        else:
            raise TypeError(f"unexpected {type(o).__name__} in a TorchScript debug record")

    put(obj)
    out.extend(b".")
    return bytes(out)


def _offset_map(old: List[int], new: List[int]):
    """Map a byte offset in the old joined text to the new one, piece by piece (pieces shrink, never move order)."""
    def shift(offset: int) -> int:
        old_start = new_start = 0
        for old_len, new_len in zip(old, new):
            if offset < old_start + old_len:
                return new_start + min(offset - old_start, new_len)
            old_start, new_start = old_start + old_len, new_start + new_len
        return new_start + (offset - old_start)
    return shift


def _model_frames(pieces: List[int], strings: Sequence[str]) -> List[int]:
    """A traced op's stack without the frames from ``torch.jit.trace`` down (the exporter that drove the trace)."""
    for n, i in enumerate(pieces):
        if strings[i].startswith(TRACER):
            return pieces[:n]
    return pieces


def relocate_record(data: bytes, roots: Sequence[str]) -> bytes:
    """One ``*.debug_pkl`` record with its paths made relative to ``roots`` and traced stacks cut at the tracer."""
    kind, strings, entries = _Reader(io.BytesIO(data)).load()
    if kind != FORMAT:
        raise ValueError(f"TorchScript debug record in an unknown format {kind!r}; expected {FORMAT!r}")
    old_size = [len(s.encode("utf-8")) for s in strings]
    strings = tuple(portable(s, roots) for s in strings)
    size = [len(s.encode("utf-8")) for s in strings]
    table: dict = {}  # old string index -> new one, in order of first use: unused strings are dropped
    number = lambda i: table.setdefault(i, len(table))  # noqa: E731
    moved = []
    for byte_offset, ((pieces, filename, line), start, end), tag in entries:
        kept = _model_frames(pieces, strings)
        shift = _offset_map([old_size[i] for i in pieces], [size[i] for i in kept] + [0] * (len(pieces) - len(kept)))
        source = ([number(i) for i in kept], number(filename), line)
        moved.append((byte_offset, (source, shift(start), shift(end)), tag))
    new_strings = tuple(strings[i] for i in table)
    return _dump((kind, new_strings, tuple(moved)))


def relocate(path: str, roots: Sequence[str] = ()) -> None:
    """Rewrite the TorchScript archive at ``path`` in place (atomically) with portable source paths."""
    import torch  # only the exporters, which have torch, call this

    roots = list(roots) or import_roots()
    reader = torch._C.PyTorchFileReader(path)
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".relocate-") as tmp:
        # The archive's top folder is the file's stem: keep the name so only the paths change.
        target = os.path.join(tmp, os.path.basename(path))
        writer = torch._C.PyTorchFileWriter(target)
        for name in reader.get_all_records():
            if name == ".data/serialization_id":
                continue  # the writer derives a new one from the content it wrote
            data = reader.get_record(name)
            if name.endswith(".debug_pkl"):
                data = relocate_record(data, roots)
            writer.write_record(name, data, len(data))
        writer.write_end_of_file()
        del writer, reader
        os.replace(target, path)
