"""JSON Pointer (RFC 6901) and a JSONPatch (RFC 6902) builder that keeps its own view up to date.

The builder edits the decoded object in place while it records each operation, so a later
operation sees the parents an earlier one created and the ops apply cleanly in order. Only
``add`` and ``replace`` are emitted, and ``remove`` for a list item the webhook itself wrote
earlier: it never removes what a user wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Path = Sequence[str | int]


class UnpatchableError(ValueError):
    """A value on the way to a patched field has the wrong type (e.g. ``args`` is not a list)."""

    def __init__(self, path: Path, expected: str) -> None:
        self.path = tuple(path)
        super().__init__(f"{dotted(path)} is not {expected}")


def escape(token: str | int) -> str:
    """One reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1`` (order matters)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(path: Path) -> str:
    """``("metadata", "annotations", "aim.amd.com/x")`` -> ``/metadata/annotations/aim.amd.com~1x``."""
    return "".join("/" + escape(token) for token in path)


def dotted(path: Path) -> str:
    """A path for people: ``spec.containers[0].resources.limits[amd.com/gpu-partition]``."""
    out = ""
    for token in path:
        if isinstance(token, int) or "/" in token or "." in token:
            out += f"[{token}]"
        else:
            out += ("." if out else "") + token
    return out


def lookup(root: Any, path: Path) -> Any:
    """The value at ``path``, or None when any step is missing or of the wrong type."""
    node = root
    for token in path:
        if isinstance(token, int):
            if not isinstance(node, list) or not 0 <= token < len(node):
                return None
        elif not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


class PatchBuilder:
    """Records ``add``/``replace`` operations against ``root`` and applies them to it.

    A value whose parents are missing becomes one ``add`` of the nested object at the first
    missing parent, so the patch stays short and each op applies to what the earlier ones made.
    """

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.ops: list[dict[str, Any]] = []

    def put(self, path: Path, value: Any) -> None:
        """Set the member at ``path`` (add or replace), creating missing parent objects."""
        node: Any = self.root
        for depth, token in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(token, int):
                if not isinstance(node, list) or not 0 <= token < len(node):
                    raise UnpatchableError(path[: depth + 1], "an existing list item")
                if last:
                    self._record("replace", path, value)
                    node[token] = value
                    return
                node = node[token]
                continue
            if not isinstance(node, dict):
                raise UnpatchableError(path[:depth], "an object")
            child = node.get(token)
            if last or child is None:
                nested = value
                for inner in reversed(path[depth + 1:]):
                    if isinstance(inner, int):
                        raise UnpatchableError(path[: depth + 1], "an existing list")
                    nested = {inner: nested}
                self._record("replace" if token in node else "add", path[: depth + 1], nested)
                node[token] = nested
                return
            node = child

    def append(self, path: Path, value: Any) -> None:
        """Append to the list at ``path`` (creating ``[value]`` when the list is absent or null)."""
        current = lookup(self.root, path)
        if current is None:
            self.put(path, [value])
            return
        if not isinstance(current, list):
            raise UnpatchableError(path, "a list")
        self.ops.append({"op": "add", "path": pointer(path) + "/-", "value": _snapshot(value)})
        current.append(value)

    def replace_item(self, path: Path, index: int, value: Any) -> None:
        """Replace item ``index`` of the list at ``path``."""
        current = lookup(self.root, path)
        if not isinstance(current, list) or not 0 <= index < len(current):
            raise UnpatchableError((*path, index), "an existing list item")
        self._record("replace", (*path, index), value)
        current[index] = value

    def remove_item(self, path: Path, index: int) -> None:
        """Remove item ``index`` of the list at ``path`` (only ever a value the webhook wrote)."""
        current = lookup(self.root, path)
        if not isinstance(current, list) or not 0 <= index < len(current):
            raise UnpatchableError((*path, index), "an existing list item")
        self.ops.append({"op": "remove", "path": pointer((*path, index))})
        del current[index]

    def _record(self, op: str, path: Path, value: Any) -> None:
        # A container recorded now and edited by a later op would make this op carry the later
        # state: record a copy.
        self.ops.append({"op": op, "path": pointer(path), "value": _snapshot(value)})


def _snapshot(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    return value
