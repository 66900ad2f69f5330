"""Where a pod may run: its nodeSelector, required node affinity and tolerations against a node's
labels, taints and cordon, as kube-scheduler's NodeAffinity, TaintToleration and NodeUnschedulable
filters judge them (k8s.io/component-helpers scheduling/corev1: a node selector term with no
requirement matches nothing; terms are ORed, the requirements of a term ANDed; an empty toleration
key with operator Exists tolerates every taint). Pure.

Every value is read with bounds (terms, requirements, values, tolerations, taints): a hostile pod or
node cannot make a match slow. A requirement that cannot be read (wrong types) matches no node, as
the API server would have refused it; a toleration or taint that cannot be read is dropped.
Preferred terms, pod (anti-)affinity and topology spread are not read: they rank nodes or depend on
other pods, never on the node alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sizing.bounded import BoundedValueError, parse_int

# nodeSelectorTerms, requirements per term, values per requirement and tolerations read: far above
# what anyone writes (a term or two, a handful of requirements), low enough to bound a match.
MAX_AFFINITY_TERMS: Final = 32
MAX_TOLERATIONS: Final = 64
# Labels, nodeSelector entries and taints read per object: far above what real nodes carry (a few dozen).
MAX_ENTRIES: Final = 512
# Longest key or value kept: a qualified label key is at most 253 + 1 + 63 characters, a value 63.
MAX_NAME: Final = 317
# The one field matchFields may name (kube-scheduler: "metadata.name" only).
NODE_NAME_FIELD: Final = "metadata.name"
# Taint effects that keep a new pod off a node; PreferNoSchedule only ranks.
BLOCKING_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})
# The taint kube-scheduler's NodeUnschedulable filter stands a cordoned node for.
UNSCHEDULABLE_TAINT_KEY: Final = "node.kubernetes.io/unschedulable"
# Bounds of a Gt/Lt value: kube-scheduler parses both sides as int64.
_INT64: Final = 1 << 63


def _mapping(raw: object) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def _list(raw: object, most: int) -> list[Any]:
    return raw[:most] if isinstance(raw, list) else []


def read_strings(raw: object, *, max_value: int = MAX_NAME) -> dict[str, str]:
    """A string-to-string map (labels, nodeSelector, annotations with a longer ``max_value``), bounded:
    at most MAX_ENTRIES entries read; entries that are not strings, or too long, dropped."""
    out: dict[str, str] = {}
    for index, (key, value) in enumerate(_mapping(raw).items()):
        if index >= MAX_ENTRIES:
            break
        if isinstance(key, str) and isinstance(value, str) and len(key) <= MAX_NAME and len(value) <= max_value:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    """One matchExpressions (or, with ``on_field``, matchFields) entry of a required term."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt; anything else matches nothing
    values: tuple[str, ...]
    on_field: bool = False  # matchFields: the key is NODE_NAME_FIELD

    def matches(self, labels: Mapping[str, str], name: str | None = None) -> bool:
        """Whether a node with ``labels`` (and ``name``, for matchFields) satisfies it. A matchFields
        requirement with no name given is not judged (True): callers without names keep it out."""
        if self.on_field:
            if name is None:
                return True
            value: str | None = name if self.key == NODE_NAME_FIELD else None
        else:
            value = labels.get(self.key)
        if self.operator == "In":
            return value in self.values
        if self.operator == "NotIn":
            return value not in self.values
        if self.operator == "Exists":
            return value is not None
        if self.operator == "DoesNotExist":
            return value is None
        if self.operator in ("Gt", "Lt") and value is not None and len(self.values) == 1:
            try:
                have = parse_int(f"label {self.key}", value, minimum=-_INT64, maximum=_INT64 - 1)
                want = parse_int(f"nodeAffinity {self.key}", self.values[0], minimum=-_INT64, maximum=_INT64 - 1)
            except BoundedValueError:
                return False
            return have > want if self.operator == "Gt" else have < want
        return False


# A pod's required node affinity: terms ORed, each a tuple of requirements ANDed.
Affinity = tuple[tuple[SelectorRequirement, ...], ...]


def affinity_matches(affinity: Affinity, labels: Mapping[str, str], name: str | None = None) -> bool:
    """No required affinity, or one of its terms matches (a term without requirements matches nothing)."""
    return not affinity or any(term and all(r.matches(labels, name) for r in term) for term in affinity)


def _requirement(raw: object, on_field: bool) -> SelectorRequirement:
    entry = _mapping(raw)
    key, operator, values = entry.get("key"), entry.get("operator"), entry.get("values") or []
    if not isinstance(key, str) or not isinstance(operator, str) or not isinstance(values, list):
        return SelectorRequirement("", "", (), on_field)  # unreadable: matches nothing
    return SelectorRequirement(key[:MAX_NAME], operator[:16], tuple(
        str(v)[:MAX_NAME] for v in values[:MAX_AFFINITY_TERMS] if isinstance(v, (str, int))), on_field)


def read_affinity(spec: object, *, ignore_keys: Collection[str] = ()) -> Affinity:
    """spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution, bounded.
    Requirements on ``ignore_keys`` are left out (a term left empty by that then matches every node)."""
    required = _mapping(_mapping(_mapping(_mapping(spec).get("affinity")).get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution"))
    out = []
    for term in _list(required.get("nodeSelectorTerms"), MAX_AFFINITY_TERMS):
        term = _mapping(term)
        read = [_requirement(e, False) for e in _list(term.get("matchExpressions"), MAX_AFFINITY_TERMS)]
        read += [_requirement(e, True) for e in _list(term.get("matchFields"), MAX_AFFINITY_TERMS)]
        kept = tuple(r for r in read if r.on_field or r.key not in ignore_keys)
        if read and not kept:
            return ()  # the term needed only what is ignored: every node matches it
        out.append(kept)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def as_json(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect} if self.value else {
            "key": self.key, "effect": self.effect}


def read_taints(raw: object) -> tuple[tuple[Taint, ...], tuple[Mapping[str, Any], ...]]:
    """spec.taints, bounded: the readable taints and, beside each, the entry as the API has it."""
    taints, kept = [], []
    for item in _list(raw, MAX_ENTRIES):
        if not isinstance(item, Mapping):
            continue
        key, value, effect = item.get("key"), item.get("value", ""), item.get("effect")
        if isinstance(key, str) and isinstance(effect, str) and isinstance(value, (str, type(None))):
            taints.append(Taint(key[:MAX_NAME], (value or "")[:MAX_NAME], effect[:32]))
            kept.append(item)
    return tuple(taints), tuple(kept)


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str  # "" with operator Exists: every key
    operator: str  # Exists or Equal ("" is Equal)
    value: str
    effect: str  # "": every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("", "Equal") and bool(self.key) and self.value == taint.value


def read_tolerations(spec: object) -> tuple[Toleration, ...]:
    out = []
    for item in _list(_mapping(spec).get("tolerations"), MAX_TOLERATIONS):
        entry = _mapping(item)
        fields = [entry.get(k) or "" for k in ("key", "operator", "value", "effect")]
        if all(isinstance(f, str) for f in fields):
            key, operator, value, effect = (str(f)[:MAX_NAME] for f in fields)
            out.append(Toleration(key, operator, value, effect))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What of a node decides whether a pod may run there."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False  # spec.unschedulable (cordoned)


def read_node_facts(node: object) -> NodeFacts | None:
    """A v1.Node JSON object's facts; None without a usable name."""
    metadata, spec = _mapping(_mapping(node).get("metadata")), _mapping(_mapping(node).get("spec"))
    name = metadata.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 253:
        return None
    return NodeFacts(name, read_strings(metadata.get("labels")), read_taints(spec.get("taints"))[0],
                     spec.get("unschedulable") is True)


@dataclass(frozen=True, slots=True)
class PlacementRules:
    """Where a pod may run, read from its spec; hashable, so pods alike share one answer."""

    node_selector: tuple[tuple[str, str], ...] = ()
    affinity: Affinity = ()
    tolerations: tuple[Toleration, ...] = ()

    def admits(self, node: NodeFacts) -> bool:
        """Whether kube-scheduler's node-only filters let the pod onto ``node``."""
        labels = node.labels
        if any(labels.get(k) != v for k, v in self.node_selector):
            return False
        if not affinity_matches(self.affinity, labels, node.name):
            return False
        taints = node.taints
        if node.unschedulable:
            taints = (*taints, Taint(UNSCHEDULABLE_TAINT_KEY, "", "NoSchedule"))
        return all(t.effect not in BLOCKING_EFFECTS or any(tol.tolerates(t) for tol in self.tolerations)
                   for t in taints)


def read_placement(pod: object, *, ignore_keys: Collection[str] = ()) -> PlacementRules:
    """A v1.Pod JSON object's placement rules; labels in ``ignore_keys`` are left out of the
    nodeSelector and the required affinity."""
    spec = _mapping(_mapping(pod).get("spec"))
    selector = tuple(sorted((k, v) for k, v in read_strings(spec.get("nodeSelector")).items()
                            if k not in ignore_keys))
    return PlacementRules(selector, read_affinity(spec, ignore_keys=ignore_keys), read_tolerations(spec))
