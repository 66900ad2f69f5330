"""Reading a YAML input file (cluster, workloads) with every dimension bounded before it is built.

A file given on the command line is refused, with one line naming it, when it is not a regular file
(a FIFO blocks the reader forever, ``/dev/zero`` never ends), larger than ``MAX_FILE_BYTES``, not
UTF-8 text, nested deeper than ``MAX_DEPTH`` or, counting every alias where it is used, more than
``MAX_VALUES`` values: an alias bomb of a few hundred bytes otherwise expands to gigabytes in the
first ``str()`` or validator that walks it. The bounds are checked on libyaml's event stream (no
recursion, no objects built); only a document inside them is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import yaml

from decision.planning.inputs import PlanInputError
from kube.regular_file import MAX_FILE_BYTES, NotRegularFileError, read_regular_file

# The formats nest four levels (nodes -> node -> gpus -> group); 32 leaves room for any layout and
# stays far below Python's recursion limit, which a deeper document would hit while being built.
MAX_DEPTH: Final = 32
# Scalars, mappings and sequences after alias expansion: a 1 MiB file of short flow entries holds
# about 200,000 (measured on a file of 100k workloads); aliases may not make a document larger.
MAX_VALUES: Final = 250_000
# Longest scalar: a name or model id is at most 253 characters (a DNS subdomain); 4,096 leaves room
# and refuses a 5,000-digit "number" before Python's int() refuses it with a traceback.
MAX_SCALAR_CHARS: Final = 4096

_Loader: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 5x faster


def read_text(path: str, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` (1 MiB: 5,000 node entries of ~100 bytes
    fit; a hand-written file is a few KiB); PlanInputError naming ``path``."""
    try:
        data = read_regular_file(path, max_bytes)
    except NotRegularFileError as error:
        raise PlanInputError(f"{path}: {error}") from None
    except OSError as error:
        raise PlanInputError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise PlanInputError(f"{path}: larger than {max_bytes >> 10} KiB; not an input file")
    if b"\x00" in data:
        raise PlanInputError(f"{path}: a binary file (NUL bytes), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PlanInputError(f"{path}: not UTF-8 text (byte {error.start}); a binary file?") from None


@dataclass(slots=True)
class _Open:
    """A mapping or sequence being read: where it started, its anchor, its children so far."""

    anchor: str | None
    start: int  # values counted before it
    is_mapping: bool
    children: int = 0  # keys and values of a mapping, items of a sequence
    key: str = ""  # the current key of a mapping


def _path(stack: list[_Open]) -> str:
    """Where the reader is, as the validation messages write it: ``workloads[3].memory``."""
    out = ""
    for parent in stack:
        if parent.is_mapping:
            out += f".{parent.key}" if parent.children % 2 else ""
        else:
            out += f"[{parent.children}]"
    out = out.lstrip(".") or "document"
    return out if len(out) <= 120 else out[:120] + "…"


def _check(source: str, events: Iterable[yaml.Event], max_depth: int, max_values: int) -> None:
    """Refuse a document deeper than ``max_depth`` or of more than ``max_values`` values counting
    each alias as the values it stands for, before anything is built."""
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    stack: list[_Open] = []
    total = 0
    for event in events:
        if isinstance(event, (yaml.CollectionEndEvent)):
            done = stack.pop()
            if done.anchor is not None:
                sizes[done.anchor] = total - done.start
        elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            if isinstance(event, yaml.AliasEvent):
                total += sizes.get(event.anchor or "", 1)  # an undefined alias is the loader's error
            else:
                total += 1
            if total > max_values:
                raise PlanInputError(f"{source}: {_path(stack)}: more than {max_values} values (counting every"
                                     " alias where it is used); not an input file")
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= max_depth:
                    raise PlanInputError(f"{source}: {_path(stack)}: nested more than {max_depth} levels deep")
                stack.append(_Open(event.anchor, total - 1, isinstance(event, yaml.MappingStartEvent)))
                continue
            if isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR_CHARS:
                    raise PlanInputError(f"{source}: {_path(stack)}: a value longer than {MAX_SCALAR_CHARS} characters")
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            if stack and stack[-1].is_mapping and stack[-1].children % 2 == 0:
                stack[-1].key = event.value[:40] if isinstance(event, yaml.ScalarEvent) else "?"
        else:
            continue  # stream and document start/end
        if stack and not isinstance(event, yaml.CollectionStartEvent):
            stack[-1].children += 1


def parse_yaml(source: str, text: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> Any:
    """The document in ``text``, within the bounds; PlanInputError naming ``source`` and where."""
    try:
        _check(source, yaml.parse(text, Loader=_Loader), max_depth, max_values)
        return yaml.load(text, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise PlanInputError(f"{source}: not valid YAML{where}: {problem}") from None


def load_yaml(path: str, **bounds: int) -> Any:
    """``parse_yaml`` of ``read_text(path)``."""
    return parse_yaml(path, read_text(path), **bounds)
