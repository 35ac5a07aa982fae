"""The one TOML writer (manifests from `zoo new-manifest`, channel files): the small subset those need. Reading is
the standard library's tomllib."""
from __future__ import annotations

import json
import re

from ..errors import ManifestError


def key(k: str) -> str:
    """A bare key where TOML allows one, else a quoted key."""
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)  # JSON's strings and numbers are TOML's
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise ManifestError(f"cannot write {type(v).__name__} to TOML")


def table(name: str, items: dict) -> list[str]:
    """A ``[name]`` table (``name`` as written: a dotted name's parts already keys), nested tables inline."""
    return ["", f"[{name}]"] + [f"{key(a)} = {value(b)}" for a, b in items.items()]


def dumps(doc: dict) -> str:
    """Scalars and lists first, then each table as [name] (nested tables inline), arrays of tables as [[name]]."""
    def is_tables(v) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
    lines = [f"{key(k)} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict) and not is_tables(v)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += table(key(k), v)
    for k, v in doc.items():
        if is_tables(v):
            for t in v:
                lines += ["", f"[[{key(k)}]]"] + table(key(k), t)[2:]
    return "\n".join(lines) + "\n"
