"""Schema checks of what a store hands us: index.json and metadata.json (JSON Schema files in zoo/schemas/).

Nothing from an index or a metadata file is used before it passed here: a bad one is an IntegrityError naming the
file, the key (``models.ssdlite.artifacts[1].files.model.sha256``) and what was expected there."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from ..errors import IntegrityError


@lru_cache(maxsize=None)
def _validator(kind: str):
    import jsonschema  # pure Python, a base dependency; imported on first use to keep `import zoo` light

    schema = json.loads((files("zoo") / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def key_path(parts) -> str:
    """``models.ssdlite.artifacts[1].files.model.sha256`` from a jsonschema error's path."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(error) -> str:
    """What was expected where ``error`` failed: the failing (sub)schema's description, else jsonschema's words."""
    if error.validator == "required":
        return f"{error.message} (in {error.schema.get('description', 'this object')})"
    if error.validator in ("additionalProperties", "propertyNames", "minProperties", "minItems", "uniqueItems"):
        return error.message
    desc = error.schema.get("description")
    return f"expected {desc}, got {_short(error.instance)}" if desc else error.message


STORE_ADVICE = "rebuild the store (zoo build) or ask its publisher for a valid one"


def check(kind: str, doc: Any, where: str, error: type = IntegrityError, advice: str = STORE_ADVICE) -> Any:
    """``doc`` if it is a valid ``kind`` ('index', 'metadata' or 'coco'), else ``error`` with every place it is wrong
    (the first three) and what each expected."""
    errors = sorted(_validator(kind).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if not errors:
        return doc
    lines = []
    for e in errors[:3]:
        if e.validator in ("anyOf", "oneOf", "if") and e.context:  # say which branch's key failed, not "not valid"
            e = max(e.context, key=lambda c: len(c.absolute_path))
        lines.append(f"{key_path(e.absolute_path)}: {_describe(e)}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    raise error(f"{where}: not a valid {kind} file: " + "; ".join(lines) + more + f". Refusing to use it: {advice}.")


_PASSED: set = set()  # (kind, sha256) of the files that passed in this process: the same bytes pass again
_PASSED_MAX = 256


def parse(kind: str, data: bytes, where: str) -> Any:
    """JSON-decode ``data`` and check it (once per process for the same bytes: validating a store's index took 0.10 s
    of every zoo.load)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{where}: not valid JSON ({e}); refusing to use it") from None
    except RecursionError:
        raise IntegrityError(f"{where}: JSON nested too deeply to be a {kind} file; refusing to use it") from None
    key = (kind, hashlib.sha256(data).digest())
    if key in _PASSED:
        return doc
    try:
        check(kind, doc, where)
    except RecursionError:
        raise IntegrityError(f"{where}: JSON nested too deeply to be a {kind} file; refusing to use it") from None
    if len(_PASSED) >= _PASSED_MAX:
        _PASSED.clear()
    _PASSED.add(key)
    return doc
