"""A ``.pt2`` archive (torch.export or AOTInductor) read as a zip before torch opens it: refused if any part of it
would be unpickled with ``weights_only=False``.

torch 2.14's loader unpickles, without restriction: a weight or constant whose ``*_config.json`` entry says
``"use_pickle": true``, a ``custom_obj_*`` / ``opaque_obj_*`` constant, a legacy ``data/weights/<model>.pt`` or
``data/constants/<model>.pt``, and any ``data/sample_inputs/*.pt`` that the restricted unpickler refuses (it falls
back to ``weights_only=False``). zoo's own exports have none of these (plain tensors; sample inputs of tensors only),
so refusing them costs nothing and makes a trusted-by-mistake archive unable to unpickle code."""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from typing import BinaryIO

from ...errors import IntegrityError

PAYLOAD_CONFIG = re.compile(r"data/(weights|constants)/[^/]+_(weights|constants)_config\.json")
LEGACY = re.compile(r"data/(weights|constants)/[^/]+\.pt")
PICKLED_OBJECT = re.compile(r"data/constants/(custom_obj_|opaque_obj_)[^/]*")
SAMPLE_INPUTS = re.compile(r"data/sample_inputs/[^/]+\.pt")
MAX_CONFIG = 64 << 20  # a payload config lists tensors' metadata: megabytes at most


def _inner(name: str) -> str:
    """The name below the archive's top directory (``archive/data/...`` -> ``data/...``)."""
    return name.split("/", 1)[1] if "/" in name else name


def _refuse(what: str, name: str, why: str):
    raise IntegrityError(f"{what}: the archive's {name} {why}; zoo opens only .pt2 archives of plain tensors (as "
                         "`zoo build` writes them): refused before torch read it")


def _sample_inputs_plain(data: bytes) -> bool:
    """True if torch's restricted unpickler (weights_only=True) reads these sample inputs: no code can run there."""
    import torch
    try:
        torch.load(io.BytesIO(data), weights_only=True)
        return True
    except Exception:
        return False


def check_archive(source: str | os.PathLike | bytes | BinaryIO, what: str | None = None) -> None:
    """IntegrityError unless ``source`` (a path, bytes or a seekable binary file) is a zip asking for no pickle."""
    what = what or (str(source) if isinstance(source, (str, os.PathLike)) else "the .pt2 archive")
    f = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        z = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as e:
        raise IntegrityError(f"{what}: not a .pt2 archive (a zip file): {e}") from None
    with z:
        names = [i.filename for i in z.infolist()]
        if len(set(names)) != len(names):  # zipfile reads the last of two entries of one name, torch the first
            dup = next(n for n in names if names.count(n) > 1)
            _refuse(what, dup, "appears twice (two readers would see two different files)")
        for info in z.infolist():
            name = _inner(info.filename)
            if LEGACY.fullmatch(name):
                _refuse(what, name, "is a legacy pickled payload (torch unpickles it with weights_only=False)")
            if PICKLED_OBJECT.fullmatch(name):
                _refuse(what, name, "is a pickled object (torch unpickles it with pickle.loads)")
            if PAYLOAD_CONFIG.fullmatch(name):
                if info.file_size > MAX_CONFIG:
                    _refuse(what, name, f"is {info.file_size} bytes, more than a payload config needs")
                try:
                    config = json.loads(z.read(info)).get("config", {})
                    entries = list(config.items())
                except (ValueError, AttributeError, UnicodeDecodeError):
                    _refuse(what, name, "is not a JSON payload config")
                for fqn, meta in entries:
                    if not isinstance(meta, dict) or meta.get("use_pickle") is not False \
                            or str(meta.get("path_name", "")).startswith(("custom_obj_", "opaque_obj_")):
                        _refuse(what, name, f"asks for {fqn!r} to be unpickled (use_pickle, or a pickled object)")
            if SAMPLE_INPUTS.fullmatch(name) and not _sample_inputs_plain(z.read(info)):
                _refuse(what, name, "holds objects the restricted unpickler refuses (torch would then unpickle it "
                        "with weights_only=False)")
    if hasattr(source, "seek"):
        source.seek(0)
