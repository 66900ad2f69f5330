"""Stage 4 of a decision: one filter or prioritize call over many nodes. Pure; the service and the
planner share it.

A verdict about a node depends only on its ``Capacity`` (allocatable, partition bytes, partitions
used, defect), and thousands of nodes share a few dozen capacities. So each call decides once per
distinct capacity and then maps the answers back to the node names with C-level iteration
(``map``/``compress``): a 5,000-node request costs a few verdicts and a few passes over the list.
Callers may pass small ints standing for capacities (the node cache interns them: ints hash about
three times faster than tuples) together with ``resolve`` to turn one back into its Capacity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat

from decision.reasons import ReasonCode, Rejection
from decision.requirement import Requirement
from decision.verdict import Capacity, Policy, filter_verdict, score_capacities

# Verdict for a node without a capacity when scoring: only "does not pass" matters, not the message.
_UNKNOWN_NODE = Rejection(ReasonCode.NOT_IN_CACHE, "", unresolvable=False)

# A node's capacity, or a stand-in (an interned id) that a resolver maps to one; None = unknown node.
CapacityRef = Hashable | None


@dataclass(slots=True)
class FilterOutcome:
    passed: list[str] = field(default_factory=list)  # in request order
    failed: dict[str, str] = field(default_factory=dict)  # -> FailedNodes
    unresolvable: dict[str, str] = field(default_factory=dict)  # -> FailedAndUnresolvableNodes
    reason_counts: Counter[tuple[ReasonCode, bool]] = field(default_factory=Counter)  # (code, unresolvable)


def as_capacity(ref: Hashable) -> Capacity:
    """The resolver for callers that pass capacities themselves."""
    return ref  # type: ignore[return-value]


Resolve = Callable[[Hashable], Capacity]


def _verdicts(
    requirement: Requirement, refs: Sequence[CapacityRef], unknown: Rejection, resolve: Resolve
) -> dict[CapacityRef, Rejection | None]:
    return {ref: unknown if ref is None else filter_verdict(requirement, resolve(ref)) for ref in set(refs)}


def _count_by_code(
    rejected: dict[CapacityRef, Rejection], refs: Sequence[CapacityRef], messages: list[str | None]
) -> Counter[ReasonCode]:
    """Nodes per reason code among one target's rejections. ``messages[i]`` is set exactly where
    ``refs[i]`` is in ``rejected``, so with one code (the usual case) the count is a C-level
    ``list.count``; only mixed codes need a count per capacity."""
    codes = {verdict.code for verdict in rejected.values()}
    if len(codes) == 1:
        return Counter({codes.pop(): len(messages) - messages.count(None)})
    counts: Counter[ReasonCode] = Counter()
    for ref, n in Counter(compress(refs, messages)).items():
        counts[rejected[ref].code] += n
    return counts


def filter_nodes(
    requirement: Requirement, names: Sequence[str], refs: Sequence[CapacityRef], *, unknown: Rejection,
    resolve: Resolve = as_capacity,
) -> FilterOutcome:
    """Split nodes into passing and rejected. ``refs[i]`` describes ``names[i]`` (a Capacity, or a
    stand-in that ``resolve`` maps to one); None = unknown node, rejected with ``unknown``."""
    outcome = FilterOutcome()
    pod_problem = requirement.rejection
    if pod_problem is not None:
        target = outcome.unresolvable if pod_problem.unresolvable else outcome.failed
        target.update(zip(names, repeat(pod_problem.message)))
        if names:
            outcome.reason_counts[(pod_problem.code, pod_problem.unresolvable)] = len(names)
        return outcome
    verdicts = _verdicts(requirement, refs, unknown, resolve)
    passing = {ref for ref, verdict in verdicts.items() if verdict is None}
    if len(passing) == len(verdicts):
        outcome.passed = list(names)
        return outcome
    outcome.passed = list(compress(names, map(passing.__contains__, refs))) if passing else []
    for unresolvable, target in ((True, outcome.unresolvable), (False, outcome.failed)):
        rejected = {ref: v for ref, v in verdicts.items() if v is not None and v.unresolvable is unresolvable}
        if not rejected:
            continue
        # The message of each node rejected into this target, None elsewhere. Reason messages are
        # never empty, so the list doubles as the selector for ``compress`` and ``filter(None, ...)``
        # keeps exactly the messages that go with those names.
        messages = list(map({ref: v.message for ref, v in rejected.items()}.get, refs))
        target.update(zip(compress(names, messages), filter(None, messages), strict=True))
        for code, n in _count_by_code(rejected, refs, messages).items():
            outcome.reason_counts[(code, unresolvable)] += n
    return outcome


def score_refs(
    requirement: Requirement, refs: Sequence[CapacityRef], *, policy: Policy, resolve: Resolve = as_capacity,
) -> dict[Hashable, int]:
    """The score 1..10 of each distinct capacity of a node that would pass the filter; every other
    node (absent here) scores 0. Lets callers map scores onto thousands of nodes in one pass."""
    if requirement.rejection is not None:
        return {}
    verdicts = _verdicts(requirement, refs, _UNKNOWN_NODE, resolve)
    feasible = [ref for ref, verdict in verdicts.items() if verdict is None and ref is not None]
    by_capacity = score_capacities(requirement, map(resolve, feasible), policy)
    return {ref: by_capacity[resolve(ref)] for ref in feasible}


def prioritize_nodes(
    requirement: Requirement, refs: Sequence[CapacityRef], *, policy: Policy, resolve: Resolve = as_capacity,
) -> list[int]:
    """A score 0..10 per node, in order; nodes that would not pass the filter score 0."""
    scores = score_refs(requirement, refs, policy=policy, resolve=resolve)
    return list(map(scores.get, refs, repeat(0)))
