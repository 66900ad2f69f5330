"""kube-scheduler extender wire types (k8s.io/kube-scheduler/extender/v1) and request reading.

The Go types have no json tags, so kube-scheduler sends PascalCase keys (``Pod``, ``Nodes``,
``NodeNames``) and ``null`` for the unused one, and decodes replies case-insensitively. Requests
are read case-insensitively too (old extenders and docs use ``pod``/``nodenames``); replies are
PascalCase. Pods and nodes stay plain dicts: the handlers read a few fields, and validating whole
Kubernetes objects would cost more than the decision itself.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from extender.scoring import MAX_SCORE

_CANONICAL_KEYS = {"pod": "Pod", "nodes": "Nodes", "nodenames": "NodeNames"}


class BadRequest(ValueError):
    """The body is not an ExtenderArgs; the message says why (answered with HTTP 400)."""


class NodeList(BaseModel):
    """A v1.NodeList; items are full v1.Node objects, kept as sent."""

    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]] = Field(default_factory=list)


class ExtenderArgs(BaseModel):
    """Body of filter and prioritize calls."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    pod: dict[str, Any] = Field(alias="Pod", description="The v1.Pod being scheduled.")
    nodes: NodeList | None = Field(None, alias="Nodes", description="Candidate nodes when nodeCacheCapable is false.")
    node_names: list[str] | None = Field(
        None, alias="NodeNames", description="Candidate node names when nodeCacheCapable is true."
    )


class ExtenderFilterResult(BaseModel):
    """Reply to filter. Exactly one of Nodes / NodeNames is set: the one the request used."""

    model_config = ConfigDict(populate_by_name=True)
    nodes: NodeList | None = Field(None, alias="Nodes")
    node_names: list[str] | None = Field(None, alias="NodeNames")
    failed_nodes: dict[str, str] = Field(default_factory=dict, alias="FailedNodes")
    failed_and_unresolvable_nodes: dict[str, str] = Field(default_factory=dict, alias="FailedAndUnresolvableNodes")
    error: str = Field("", alias="Error")


class HostPriority(BaseModel):
    """One element of the prioritize reply (a HostPriorityList is a JSON array of these)."""

    model_config = ConfigDict(populate_by_name=True)
    host: str = Field(alias="Host")
    score: int = Field(alias="Score", ge=0, le=MAX_SCORE)


class ErrorReply(BaseModel):
    """Body of an HTTP 400."""

    error: str = Field(alias="Error")


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def read_extender_args(body: bytes) -> ExtenderArgs:
    """Parse and check an ExtenderArgs body; BadRequest with a one-line reason otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object (ExtenderArgs with Pod and Nodes or NodeNames)")
    normalized = {_CANONICAL_KEYS.get(key.lower(), key) if isinstance(key, str) else key: value for key, value in data.items()}
    if normalized.get("Pod") is None:
        raise BadRequest("ExtenderArgs has no Pod")
    try:
        args = ExtenderArgs.model_validate(normalized)
    except ValidationError as error:
        raise BadRequest(f"invalid ExtenderArgs: {_describe(error)}") from error
    if args.nodes is None and args.node_names is None:
        raise BadRequest("ExtenderArgs has neither Nodes nor NodeNames")
    return args


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# Node names are DNS-1123 subdomains (lowercase letters, digits, '-', '.'): they need no JSON
# escaping, which lets replies be built by joining the names themselves. Anything else falls back
# to escaping every name.
_PLAIN_NAMES = re.compile(r"[a-z0-9.\-]*\Z")


def _plain(names: Iterable[str]) -> bool:
    return _PLAIN_NAMES.match("".join(names)) is not None


def _encode_string_map(mapping: dict[str, str]) -> str:
    """A JSON object of node name -> reason. Reasons repeat (they are categorical), so each distinct
    one is escaped once; plain names are joined as they are."""
    if not mapping:
        return "{}"
    separators = {value: '":' + encode_basestring_ascii(value) + ',"' for value in set(mapping.values())}
    if _plain(mapping):
        body = "".join(chain.from_iterable(zip(mapping.keys(), map(separators.__getitem__, mapping.values()))))
        return '{"' + body[:-2] + "}"
    values = {value: separator[2:-2] for value, separator in separators.items()}
    pairs = map(operator.add, map(encode_basestring_ascii, mapping.keys()),
                map(operator.add, repeat(":"), map(values.__getitem__, mapping.values())))
    return "{" + ",".join(pairs) + "}"


def encode_filter_result(
    *, node_names: list[str] | None, nodes: dict[str, Any] | None, failed: dict[str, str],
    unresolvable: dict[str, str], error: str = "",
) -> bytes:
    """An ExtenderFilterResult as JSON (PascalCase keys, null for the unused node field)."""
    tail = (
        ',"FailedNodes":' + _encode_string_map(failed)
        + ',"FailedAndUnresolvableNodes":' + _encode_string_map(unresolvable)
        + ',"Error":' + encode_basestring_ascii(error) + "}"
    ).encode()
    # pydantic-core's Rust encoder: about twice as fast as json.dumps on full Node objects.
    return b'{"Nodes":' + to_json(nodes) + b',"NodeNames":' + to_json(node_names) + tail


_SCORE_TAILS = [f',"Score":{score}}}' for score in range(MAX_SCORE + 1)]
_SCORE_JOINS = [f'","Score":{score}}},{{"Host":"' for score in range(MAX_SCORE + 1)]


def encode_host_priorities(hosts: Sequence[str], scores: Sequence[int]) -> bytes:
    """A HostPriorityList as JSON, built with C-level string operations: json.dumps of 5,000
    small dicts costs several milliseconds, this a fraction of one. Scores must be 0..MAX_SCORE."""
    if not hosts:
        return b"[]"
    if _plain(hosts):
        body = "".join(chain.from_iterable(zip(hosts, map(_SCORE_JOINS.__getitem__, scores))))
        return ('[{"Host":"' + body[: -len(',{"Host":"')] + "]").encode()
    items = map(operator.add, map(operator.add, repeat('{"Host":'), map(encode_basestring_ascii, hosts)),
                map(_SCORE_TAILS.__getitem__, scores))
    return ("[" + ",".join(items) + "]").encode()
