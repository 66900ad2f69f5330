"""JSON text from outside (a config.json, a models-directory entry): parsed, or one SizingError naming
the file and, where there is one, the field.

``json.loads`` converts every integer literal with ``int()``, which raises a bare ValueError past
Python's 4,300-digit limit (``sys.get_int_max_str_digits``): one 5,000-digit ``hidden_size`` made
aim-sizing print a traceback. Here such a literal is kept as a marker while parsing and reported with
its path (``text_config.hidden_size``) afterwards; shorter integers are left to the field's own bounds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sizing.errors import SizingError

# Python's default int_max_str_digits (the limit int() enforces on text): longer literals are refused.
MAX_INT_DIGITS = 4300


@dataclass(frozen=True)
class _LongInt:
    digits: int


def _path_to_long_int(doc: Any) -> tuple[str, int] | None:
    """The path (``a.b[2].c``) and digit count of the first over-long integer in ``doc``, if any."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _LongInt):
            return path or "(the document)", value.digits
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}" if path else str(key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def loads(text: str | bytes, file_name: str) -> Any:
    """The parsed JSON; SizingError naming ``file_name`` (and the field of an over-long integer)."""
    long_ints: list[int] = []

    def parse_int(literal: str) -> int | _LongInt:
        digits = len(literal.lstrip("-"))
        if digits <= MAX_INT_DIGITS:
            return int(literal)
        long_ints.append(digits)
        return _LongInt(digits)

    try:
        doc = json.loads(text, parse_int=parse_int)
    except UnicodeDecodeError as exc:
        raise SizingError(f"{file_name}: not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise SizingError(f"{file_name}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise SizingError(f"{file_name}: not valid JSON: nested too deeply") from None
    except ValueError as exc:  # anything else json refuses
        raise SizingError(f"{file_name}: not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    found = _path_to_long_int(doc) if long_ints else None
    if found is not None:
        path, digits = found
        raise SizingError(f"{file_name}: field '{path[:120]}' is an integer of {digits:,} digits "
                          f"(more than {MAX_INT_DIGITS:,})")
    return doc
