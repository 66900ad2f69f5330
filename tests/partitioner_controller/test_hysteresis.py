"""The hysteresis between the plan and the node (``hysteresis.decide``): pure, driven pass by pass."""

from __future__ import annotations

from partitioner.controller.hysteresis import STABLE_PASSES, Candidacy, Decision, decide
from partitioner.controller.plan import Change
from partitioner.controller.settings import STABLE_SECONDS
from partitioner.modes import Mode

NOW = 1_800_000_000.0
STABLE = 10.0


def _change(node: str, profile: str = "spx_nps1_1gpu", pods: tuple[str, ...] = ("ns/p",)) -> Change:
    return Change(node, Mode("CPX", "NPS4"), Mode("SPX", "NPS1"), profile, 1, 1, pods, (), True)


def _passes(plans: list[tuple[float, list[Change]]], pending_since: dict[str, float]) -> list[Decision]:
    memory: dict[str, Candidacy] = {}
    out = []
    for at, changes in plans:
        decision = decide(changes, memory, pending_since, NOW + at, STABLE)
        memory = decision.memory
        out.append(decision)
    return out


def test_the_default_is_short_enough_for_the_30_s_goal_and_two_passes_are_needed() -> None:
    assert STABLE_SECONDS <= 10 and STABLE_PASSES == 2


def test_a_change_whose_pods_just_arrived_waits_the_stable_time_then_starts() -> None:
    pending = {"ns/p": NOW}
    decisions = _passes([(0.5, [_change("b")]), (5, [_change("b")]), (9.9, [_change("b")]), (10.5, [_change("b")])],
                        pending)
    assert [d.ready for d in decisions[:3]] == [(), (), ()]
    assert decisions[0].due == NOW + STABLE, "woken when the pod has been pending the stable time"
    assert [c.node for c in decisions[3].ready] == ["b"] and decisions[3].due is None


def test_a_plan_that_flips_every_pass_never_acts_even_for_old_pods() -> None:
    pending = {"ns/p": NOW - 3600}  # pending for an hour: the demand is real, the choice is not
    plans = [(float(at), [_change("b", profile)]) for at, profile in enumerate(["spx_nps1_1gpu", "qpx_nps1_1gpu"] * 30)]
    assert all(d.ready == () for d in _passes(plans, pending))
    # Alternating between two nodes is the same.
    plans = [(float(at), [_change(node)]) for at, node in enumerate(["b", "c"] * 30)]
    assert all(d.ready == () for d in _passes(plans, pending))


def test_one_pass_never_starts_a_change_even_when_the_pods_waited_long() -> None:
    first, second = _passes([(0, [_change("b")]), (1, [_change("b")])], {"ns/p": NOW - 600})
    assert first.ready == () and first.due == NOW, "due at once: only the second pass is missing"
    assert [c.node for c in second.ready] == ["b"], "a new leader does not wait the stable time again"


def test_transient_demand_never_starts_a_change() -> None:
    """A pod pending for less than the stable time, then gone (deleted, or placed after some other
    change): the plan stops proposing the change and nothing ever starts."""
    pending = {"ns/p": NOW}
    plans: list[tuple[float, list[Change]]] = [(at, [_change("b")]) for at in (0.2, 1, 3, 6, 9.5)]
    plans += [(at, []) for at in (10, 11, 20, 60)]  # the pod went away at 9.9 s
    plans += [(70.0, [_change("b", pods=("ns/q",))])]  # a new pod: counting starts over
    decisions = _passes(plans, {**pending, "ns/q": NOW + 69})
    assert all(d.ready == () for d in decisions)
    assert decisions[-1].memory["b"] == Candidacy("spx_nps1_1gpu", NOW + 70, 1)


def test_a_choice_held_for_the_stable_time_starts_even_as_new_pods_join_it() -> None:
    """A Deployment scaling up: each new pod joins the same change; the change itself has been the
    plan's choice for the stable time, so the newest pod does not hold it back."""
    plans = [(0.0, [_change("b", pods=("ns/a",))]), (4.0, [_change("b", pods=("ns/a", "ns/b"))]),
             (10.0, [_change("b", pods=("ns/a", "ns/b", "ns/c"))])]
    decisions = _passes(plans, {"ns/a": NOW, "ns/b": NOW + 4, "ns/c": NOW + 9})
    assert [c.node for c in decisions[-1].ready] == ["b"]


def test_only_a_leading_run_of_ready_changes_starts() -> None:
    pending = {"ns/p": NOW - 60, "ns/q": NOW + 5}
    b, c = _change("b", pods=("ns/p",)), _change("c", pods=("ns/q",))
    decisions = _passes([(5.0, [c, b]), (6.0, [c, b]), (7.0, [b, c])], pending)
    assert decisions[1].ready == (), "c comes first and its pod is new: b waits behind it"
    assert decisions[1].due == NOW + 5 + STABLE
    assert [x.node for x in decisions[2].ready] == ["b"] and decisions[2].due == NOW + 5 + STABLE
