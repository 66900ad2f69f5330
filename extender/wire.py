"""kube-scheduler extender wire types (k8s.io/kube-scheduler/extender/v1) and request reading.

The Go types have no json tags, so kube-scheduler sends PascalCase field names (``Pod``, ``Nodes``,
``NodeNames``) and ``null`` for the unused one, and decodes replies case-insensitively. Requests
are read case-insensitively too (old extenders and docs use ``pod``/``nodenames``); replies are
PascalCase. Pods and nodes stay plain dicts: the handlers read a few fields, and validating whole
Kubernetes objects would cost more than the decision itself.

JSON goes through orjson both ways: on a 1 MiB body of Node objects it decodes about four times
faster than ``json`` and encodes several times faster. The pydantic models below describe the
wire for the OpenAPI document and produce the error message for a malformed envelope; a
well-formed one is checked with a few type tests instead (validating 5,000 names with pydantic
costs more than deciding about them).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decision.text import pydantic_problem
from decision.verdict import MAX_SCORE

_CANONICAL_FIELDS = {"pod": "Pod", "nodes": "Nodes", "nodenames": "NodeNames"}

# Longest message a 400 reply carries: one line a person can read; never megabytes of echoed input.
MAX_ERROR_TEXT: Final = 300
# Nesting orjson writes back (its encoder stops at 255 levels while its decoder reads 1,024); a
# Node nested deeper than this cannot be echoed in a filter reply and is answered 400 instead.
MAX_ECHO_DEPTH: Final = 254
# Most nodes in one request (Nodes.items or NodeNames). Kubernetes is tested up to 5,000 nodes per
# cluster (kubernetes.io "Considerations for large clusters"); the largest managed clusters (GKE) hold
# 65,000. Above this a body is hostile, and is refused before any per-node work.
MAX_NODES: Final = 65536

# Largest request body read (HTTP 413 above it; ``aim-extender serve --max-body-bytes``).
# Nodes (nodeCacheCapable: false): full Node objects of ~20 KiB (50 images, labels, managed fields)
# for up to 5,000 nodes make ~100 MiB; 128 MiB holds that with a margin.
MAX_BODY_BYTES_NODES: Final = 128 << 20
# NodeNames (nodeCacheCapable: true): 5,000 names are ~90 KiB and the Pod at most 1.5 MiB (etcd's
# object limit); 8 MiB holds both with a wide margin and keeps a hostile body's decode under 0.5 s.
MAX_BODY_BYTES_NAMES: Final = 8 << 20


def default_max_body_bytes(node_cache_capable: bool) -> int:
    """The body limit for the request kind kube-scheduler sends (NodeNames with a node cache, else Nodes)."""
    return MAX_BODY_BYTES_NAMES if node_cache_capable else MAX_BODY_BYTES_NODES


class BadRequestError(ValueError):
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
    return pydantic_problem(error, empty_where="body")[:MAX_ERROR_TEXT]


@dataclass(frozen=True, slots=True)
class ExtenderRequest:
    """A checked ExtenderArgs body; the values are the decoded JSON, exactly as sent."""

    pod: dict[str, Any]
    node_objects: list[dict[str, Any]] | None  # Nodes.items, when the request carried Nodes
    node_names: list[str] | None  # NodeNames, when the request carried them


def _all_strings(values: Any) -> bool:
    """True for a list of str. ``str.join`` does the type check for every element in C."""
    if type(values) is not list:
        return False
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _envelope_as_sent(normalized: dict[str, Any]) -> ExtenderRequest | None:
    """The request when every field has the shape ExtenderArgs validation would accept unchanged;
    None for anything else, which then goes through pydantic for the exact error (or coercion)."""
    pod, nodes, names = normalized.get("Pod"), normalized.get("Nodes"), normalized.get("NodeNames")
    if type(pod) is not dict or "node_names" in normalized:  # a field name pydantic also reads (populate_by_name)
        return None
    items: list[dict[str, Any]] | None = None
    if nodes is not None:
        if type(nodes) is not dict:
            return None
        items = nodes.get("items", [])  # NodeList.items defaults to []
        if type(items) is not list or not all(type(item) is dict for item in items):
            return None
    if names is not None and not _all_strings(names):
        return None
    return ExtenderRequest(pod, items, names)


def _check_node_count(normalized: dict[str, Any]) -> None:
    """BadRequestError naming the field when it lists more than MAX_NODES nodes (before any walk)."""
    nodes = normalized.get("Nodes")
    items = nodes.get("items") if isinstance(nodes, dict) else None
    for where, values in (("Nodes.items", items), ("NodeNames", normalized.get("NodeNames"))):
        if isinstance(values, list) and len(values) > MAX_NODES:
            raise BadRequestError(f"{where} lists {len(values)} nodes, more than the {MAX_NODES} the extender reads")


def _envelope_by_pydantic(normalized: dict[str, Any]) -> ExtenderRequest:
    try:
        args = ExtenderArgs.model_validate(normalized)
    except ValidationError as error:
        raise BadRequestError(f"invalid ExtenderArgs: {_describe(error)}") from error
    return ExtenderRequest(args.pod, args.nodes.items if args.nodes is not None else None, args.node_names)


def read_extender_args(body: bytes) -> ExtenderRequest:
    """Parse and check an ExtenderArgs body; BadRequestError with a one-line reason otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:  # also raised for bytes that are not UTF-8
        problem = str(error)[:MAX_ERROR_TEXT]
        if "depth limit" in problem:
            problem = "nested more than 1,024 levels deep (orjson's limit)"
        raise BadRequestError(f"request body is not valid JSON: {problem}") from error
    if not isinstance(data, dict):
        raise BadRequestError("request body must be a JSON object (ExtenderArgs with Pod and Nodes or NodeNames)")
    normalized: dict[str, Any] = {_CANONICAL_FIELDS.get(name.lower()) or name: value for name, value in data.items()}
    if normalized.get("Pod") is None:
        raise BadRequestError("ExtenderArgs has no Pod")
    _check_node_count(normalized)
    request = _envelope_as_sent(normalized) or _envelope_by_pydantic(normalized)
    if request.node_objects is None and request.node_names is None:
        raise BadRequestError("ExtenderArgs has neither Nodes nor NodeNames")
    return request


@dataclass(frozen=True, slots=True)
class PreemptionRequest:
    """A checked ExtenderPreemptionArgs body: the pod, and per candidate node its victims as
    MetaVictims (``{"Pods": [{"UID": ...}], "NumPDBViolations": n}``), whichever form was sent."""

    pod: dict[str, Any]
    victims: dict[str, dict[str, Any]]


_PREEMPTION_FIELDS = {"pod": "Pod", "nodenametovictims": "NodeNameToVictims", "nodetovictims": "NodeNameToVictims",
                      "nodenametometavictims": "NodeNameToMetaVictims"}
# Victims on one node: a node runs at most a few hundred pods (kubelet's default max-pods is 110).
MAX_VICTIMS_PER_NODE: Final = 1024


def _meta_victims(node: str, victims: Any, full_pods: bool) -> dict[str, Any]:
    """One node's Victims or MetaVictims as MetaVictims; BadRequestError naming the node otherwise."""
    where = f"{'NodeNameToVictims' if full_pods else 'NodeNameToMetaVictims'}[{node[:64]}]"
    if not isinstance(victims, dict):
        raise BadRequestError(f"{where} is not an object")
    fields = {name.lower(): value for name, value in victims.items()}
    pods, violations = fields.get("pods") or [], fields.get("numpdbviolations") or 0
    if not isinstance(pods, list) or len(pods) > MAX_VICTIMS_PER_NODE:
        raise BadRequestError(f"{where}.Pods is not a list of at most {MAX_VICTIMS_PER_NODE} pods")
    if type(violations) is not int or not 0 <= violations <= MAX_VICTIMS_PER_NODE:
        raise BadRequestError(f"{where}.NumPDBViolations is not a count")
    uids = []
    for index, victim in enumerate(pods):
        item = victim.get("metadata") if full_pods and isinstance(victim, dict) else victim
        uid = next((v for k, v in item.items() if k.lower() == "uid"), None) if isinstance(item, dict) else None
        if not isinstance(uid, str) or not 0 < len(uid) <= 128:
            raise BadRequestError(f"{where}.Pods[{index}] has no uid")
        uids.append({"UID": uid})
    return {"Pods": uids, "NumPDBViolations": violations}


def read_preemption_args(body: bytes) -> PreemptionRequest:
    """Parse and check an ExtenderPreemptionArgs body (k8s.io/kube-scheduler/extender/v1: Pod and
    NodeNameToMetaVictims with nodeCacheCapable, else NodeNameToVictims with whole pods);
    BadRequestError with a one-line reason otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"request body is not valid JSON: {str(error)[:MAX_ERROR_TEXT]}") from error
    if not isinstance(data, dict):
        raise BadRequestError("request body must be a JSON object (ExtenderPreemptionArgs)")
    fields = {_PREEMPTION_FIELDS.get(name.lower()) or name: value for name, value in data.items()}
    pod = fields.get("Pod")
    if not isinstance(pod, dict):
        raise BadRequestError("ExtenderPreemptionArgs has no Pod")
    meta, full = fields.get("NodeNameToMetaVictims"), fields.get("NodeNameToVictims")
    chosen, full_pods = (meta, False) if meta is not None else (full, True)
    if chosen is None:
        chosen = {}
    if not isinstance(chosen, dict) or len(chosen) > MAX_NODES:
        raise BadRequestError(f"ExtenderPreemptionArgs victims must be an object of at most {MAX_NODES} nodes")
    return PreemptionRequest(pod, {str(node): _meta_victims(str(node), victims, full_pods)
                                   for node, victims in chosen.items()})


def encode(value: Any) -> bytes:
    """Compact JSON: UTF-8, no spaces."""
    return orjson.dumps(value)


def too_deep(value: Any, where: str, limit: int = MAX_ECHO_DEPTH) -> str | None:
    """Where ``value`` first nests deeper than ``limit`` levels (the path, its first few steps
    only), else None. Iterative: a value may nest 1,000 levels and recursion would overflow."""
    stack: list[tuple[Any, str, int]] = [(value, where, 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > limit:
            return path
        if depth == _SHOWN_STEPS:
            path += "…"
        step = depth < _SHOWN_STEPS
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{str(k)[:40]}" if step else path, depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]" if step else path, depth + 1) for i, v in enumerate(item))
    return None


_SHOWN_STEPS: Final = 6  # path steps a "too deep" message names before "…"


def encode_filter_result(
    *, node_names: list[str] | None, nodes: dict[str, Any] | None, failed: dict[str, str],
    unresolvable: dict[str, str], error: str = "",
) -> bytes:
    """An ExtenderFilterResult as JSON (PascalCase field names, null for the unused node field). Node
    objects are written back as they were decoded, without a model in between; BadRequestError naming
    the place when one nests deeper than the encoder writes (checked only when encoding fails, so
    the usual reply pays nothing for it)."""
    try:
        return orjson.dumps({
            "Nodes": nodes, "NodeNames": node_names, "FailedNodes": failed,
            "FailedAndUnresolvableNodes": unresolvable, "Error": error,
        })
    except orjson.JSONEncodeError as problem:
        items = nodes.get("items") if nodes else None
        path = too_deep(items, "Nodes.items", MAX_ECHO_DEPTH - 3)  # the reply nests the items 3 levels down
        if path is None:
            raise BadRequestError(f"cannot write the reply: {str(problem)[:MAX_ERROR_TEXT]}") from problem
        raise BadRequestError(f"{path[:MAX_ERROR_TEXT]}: nested too deep to be written back in the reply (the"
                              f" reply may nest at most {MAX_ECHO_DEPTH} levels)") from problem


# Printable ASCII except '"' and '\\': the characters a JSON string holds without escaping.
_UNESCAPED = bytes(range(0x20, 0x7F)).translate(None, b'"\\')


def _need_no_escaping(names: Sequence[str]) -> bool:
    """True when no name needs escaping inside a JSON string (node names are DNS-1123
    subdomains, so this holds in practice). Deleting the harmless bytes and finding nothing left
    is one C-level pass; ``str.isprintable`` or a regular expression is several times slower."""
    joined = "".join(names)
    return joined.isascii() and not joined.encode("ascii").translate(None, _UNESCAPED)


# The text between one host name and the next, for each score: joining the names with these
# writes the whole list without a dict per host.
_SCORE_JOINS = [f'","Score":{score}}},{{"Host":"' for score in range(MAX_SCORE + 1)]


def encode_scored_hosts(hosts: Sequence[str], refs: Sequence[Hashable | None], scores: Mapping[Any, int]) -> bytes:
    """A HostPriorityList as JSON where ``hosts[i]`` scores ``scores.get(refs[i], 0)``: the score
    of each of a few dozen distinct capacities is mapped onto thousands of hosts in the same
    C-level pass that writes them. Scores must be 0..MAX_SCORE."""
    if not hosts:
        return b"[]"
    if _need_no_escaping(hosts):
        joins = {ref: _SCORE_JOINS[score] for ref, score in scores.items()}
        # Hosts and the text after each interleaved by slice assignment (pointer copies in C):
        # half the time of zipping and chaining them into the join.
        parts = [""] * (2 * len(hosts))
        parts[0::2] = hosts
        parts[1::2] = map(joins.get, refs, repeat(_SCORE_JOINS[0]))
        body = "".join(parts)
        return ('[{"Host":"' + body[: -len(',{"Host":"')] + "]").encode()
    return orjson.dumps([{"Host": host, "Score": scores.get(ref, 0)} for host, ref in zip(hosts, refs, strict=True)])
