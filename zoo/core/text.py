"""Plain-text output shared by the commands: one table printer."""
from __future__ import annotations


def table(rows: list[dict], columns: list[str], rule: bool = True) -> str:
    """``rows`` as left-aligned columns two spaces apart, the column names first (then a line of dashes unless
    ``rule`` is False); trailing spaces stripped."""
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}

    def line(r: dict) -> str:
        return "  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip()
    head = [line({c: c for c in columns})] + ([line({c: "-" * widths[c] for c in columns})] if rule else [])
    return "\n".join(head + [line(r) for r in rows])
