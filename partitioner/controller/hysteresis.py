"""When a planned change may start: the hysteresis between the plan and the node. Pure.

A change starts once the demand behind it is stable:

- it has been the plan's choice for its node (the same DCM profile) in ``STABLE_PASSES``
  evaluations in a row, so one snapshot never starts a change and a plan that alternates every
  pass never acts; and
- either it has been that choice for ``stable_seconds`` in a row, or every pod it lets run has
  been pending for ``stable_seconds`` (from the pod's creation, which a new leader or a restarted
  controller reads from the API: it does not wait all over again).

A pod that goes away sooner (deleted, or placed by kube-scheduler after some other change) never
starts a repartition. Changes are ordered, each judged on the ones before it, so only a leading
run of ready changes starts. The other guarantees live elsewhere: a node that has just changed
is not changed again within ``cooldown_seconds`` (``plan.changeable``), and a node with GPU pods
is a candidate only with ``--allow-eviction`` (``plan.make_plan``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from partitioner.controller.plan import Change

# Two evaluations in a row: a single pass (e.g. a watch that delivered a pod before the node
# change that lets it run) never starts a change, and a plan that flips every pass never acts.
STABLE_PASSES: Final = 2


@dataclass(frozen=True, slots=True)
class Candidacy:
    """Since when, and in how many passes in a row, a change has been the plan's choice for a node."""

    profile: str
    since: float
    passes: int


@dataclass(frozen=True, slots=True)
class Decision:
    ready: tuple[Change, ...]  # the leading changes whose demand is stable
    memory: dict[str, Candidacy]  # for the next evaluation
    due: float | None  # when the first change not ready would be, by the clock alone (None: none waits)


def decide(changes: Sequence[Change], memory: Mapping[str, Candidacy], pending_since: Mapping[str, float],
           now: float, stable_seconds: float) -> Decision:
    """The leading changes that may start now (see the module docstring).

    ``pending_since``: each pending pod (namespace/name) and since when it has been pending; a pod
    not in it counts as pending from ``now``.
    """
    remembered: dict[str, Candidacy] = {}
    for change in changes:
        before = memory.get(change.node)
        remembered[change.node] = Candidacy(change.profile, before.since, before.passes + 1) \
            if before is not None and before.profile == change.profile else Candidacy(change.profile, now, 1)
    ready: list[Change] = []
    due = None
    for change in changes:
        held = remembered[change.node]
        demand_since = max((pending_since.get(pod, now) for pod in change.unblocks), default=now)
        stable_from = min(held.since, demand_since) + stable_seconds
        if held.passes >= STABLE_PASSES and now >= stable_from:
            ready.append(change)
            continue
        due = max(stable_from, now)  # a missing pass comes with the next evaluation
        break
    return Decision(tuple(ready), remembered, due)
