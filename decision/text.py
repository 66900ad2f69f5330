"""The words every decision uses: sizes in GiB and pydantic's first problem, one way each.

Pure: integer arithmetic for sizes (exact for any bounded size, so "24 GiB < 24 GiB" cannot be
written), no I/O.
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

MIB: Final = 1 << 20
GIB: Final = 1 << 30


def gib(n_bytes: int, *, round_up: bool = False) -> str:
    """"24 GiB", "63.9 GiB": a size in tenths of a GiB, rounded down (a partition: never more than
    it has) or up (a requirement: never less than it needs)."""
    tenths = -(-n_bytes * 10 // GIB) if round_up else n_bytes * 10 // GIB
    whole, tenth = divmod(tenths, 10)
    return f"{whole} GiB" if tenth == 0 else f"{whole}.{tenth} GiB"


def gib_floor(n_bytes: int) -> str:
    """A partition size for a message, never rounded up."""
    return gib(n_bytes)


def gib_ceil(n_bytes: int) -> str:
    """A requirement for a message, never rounded down."""
    return gib(n_bytes, round_up=True)


def pydantic_problem(error: ValidationError, *, source: str = "", empty_where: str = "document") -> str:
    """One line for a pydantic error: ``[source: ]where: first problem[ (and N more problem(s))]``;
    ``where`` is the field's path (``nodes[0].gpus``, each key cut at 40 characters)."""
    problems = error.errors()
    if not problems:
        return f"{source}: {empty_where}: invalid" if source else f"{empty_where}: invalid"
    first = problems[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{str(part)[:40]}" for part in first["loc"]).lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    line = f"{where or empty_where}: {message}{more}"
    return f"{source}: {line}" if source else line
