"""One filter or prioritize decision over many nodes. Pure; the service and the planner share it.

A decision about a node depends only on its ``NodeKey`` (allocatable, partition bytes,
partitions used), and thousands of nodes share a few dozen keys. So each call decides once per
distinct key and then maps the answers back to the node names with C-level iteration
(``map``/``compress``): a 5,000-node request costs a few verdicts and a few passes over the list.
Callers may pass small ints standing for keys (the node cache interns them: ints hash about
three times faster than tuples) together with ``resolve`` to turn one back into its NodeKey.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat

from extender.filtering import node_verdict
from extender.nodefacts import NodeFacts
from extender.reasons import ReasonCode, Rejection
from extender.requirements import Requirement
from extender.scoring import NodeKey, Policy, score_keys


# Verdict for a node without a key when scoring: only "does not pass" matters, not the message.
_UNKNOWN_NODE = Rejection(ReasonCode.NOT_IN_CACHE, "", unresolvable=False)


def node_key(facts: NodeFacts, used: int) -> NodeKey:
    return (facts.allocatable, facts.partition_bytes, used)


@dataclass(slots=True)
class FilterOutcome:
    passed: list[str] = field(default_factory=list)  # in request order
    failed: dict[str, str] = field(default_factory=dict)  # -> FailedNodes
    unresolvable: dict[str, str] = field(default_factory=dict)  # -> FailedAndUnresolvableNodes
    reason_counts: Counter[tuple[ReasonCode, bool]] = field(default_factory=Counter)  # (code, unresolvable)


def same_key(key: Hashable) -> NodeKey:
    """The resolver for callers that pass NodeKeys themselves."""
    return key  # type: ignore[return-value]


def _verdicts(
    requirement: Requirement, keys: Sequence[Hashable | None], unknown: Rejection, resolve: Callable[[Hashable], NodeKey]
) -> dict[Hashable | None, Rejection | None]:
    return {key: unknown if key is None else node_verdict(requirement, *resolve(key)) for key in set(keys)}


def _count_by_code(
    rejected: dict[Hashable | None, Rejection], keys: Sequence[Hashable | None], messages: list[str | None]
) -> Counter[ReasonCode]:
    """Nodes per reason code among one target's rejections. ``messages[i]`` is set exactly where
    ``keys[i]`` is in ``rejected``, so with one code (the usual case) the count is a C-level
    ``list.count``; only mixed codes need a count per key."""
    codes = {verdict.code for verdict in rejected.values()}
    if len(codes) == 1:
        return Counter({codes.pop(): len(messages) - messages.count(None)})
    counts: Counter[ReasonCode] = Counter()
    for key, n in Counter(compress(keys, messages)).items():
        counts[rejected[key].code] += n
    return counts


def filter_nodes(
    requirement: Requirement, names: Sequence[str], keys: Sequence[Hashable | None], *, unknown: Rejection,
    resolve: Callable[[Hashable], NodeKey] = same_key,
) -> FilterOutcome:
    """Split nodes into passing and rejected. ``keys[i]`` describes ``names[i]`` (a NodeKey, or a
    stand-in that ``resolve`` maps to one); None = unknown node, rejected with ``unknown``."""
    outcome = FilterOutcome()
    pod_problem = requirement.rejection
    if pod_problem is not None:
        target = outcome.unresolvable if pod_problem.unresolvable else outcome.failed
        target.update(zip(names, repeat(pod_problem.message)))
        if names:
            outcome.reason_counts[(pod_problem.code, pod_problem.unresolvable)] = len(names)
        return outcome
    verdicts = _verdicts(requirement, keys, unknown, resolve)
    passing = {key for key, verdict in verdicts.items() if verdict is None}
    if len(passing) == len(verdicts):
        outcome.passed = list(names)
        return outcome
    outcome.passed = list(compress(names, map(passing.__contains__, keys))) if passing else []
    for unresolvable, target in ((True, outcome.unresolvable), (False, outcome.failed)):
        rejected = {k: v for k, v in verdicts.items() if v is not None and v.unresolvable is unresolvable}
        if not rejected:
            continue
        # The message of each node rejected into this target, None elsewhere. Reason messages are
        # never empty, so the list doubles as the selector for ``compress`` and ``filter(None, ...)``
        # keeps exactly the messages that go with those names.
        messages = list(map({k: v.message for k, v in rejected.items()}.get, keys))
        target.update(zip(compress(names, messages), filter(None, messages)))
        for code, n in _count_by_code(rejected, keys, messages).items():
            outcome.reason_counts[(code, unresolvable)] += n
    return outcome


def score_by_key(
    requirement: Requirement, keys: Sequence[Hashable | None], *, policy: Policy,
    resolve: Callable[[Hashable], NodeKey] = same_key,
) -> dict[Hashable, int]:
    """The score 0..10 of each distinct key of a node that would pass the filter; every other
    node (absent here) scores 0. Lets callers map scores onto thousands of nodes in one pass."""
    if requirement.rejection is not None:
        return {}
    verdicts = _verdicts(requirement, keys, _UNKNOWN_NODE, resolve)
    feasible = [key for key, verdict in verdicts.items() if verdict is None and key is not None]
    by_key = score_keys(requirement, map(resolve, feasible), policy)
    return {key: by_key[resolve(key)] for key in feasible}


def prioritize_nodes(
    requirement: Requirement, keys: Sequence[Hashable | None], *, policy: Policy,
    resolve: Callable[[Hashable], NodeKey] = same_key,
) -> list[int]:
    """A score 0..10 per node, in order; nodes that would not pass the filter score 0."""
    scores = score_by_key(requirement, keys, policy=policy, resolve=resolve)
    return list(map(scores.get, keys, repeat(0)))
