"""Which changes the controller plans, as a pure function of nodes, pods, states and the clock:
only changes that let pending pods run, idle nodes first, busy ones only with eviction and only
when their pods can run elsewhere, opt-in, cooldown and backoff respected, and hysteresis."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from partitioner.controller import keys
from partitioner.controller.clock import format_time
from partitioner.controller.machine import read_state
from partitioner.controller.observe import NodeView, PodView, read_node, read_pod
from partitioner.controller.plan import Plan, dcm_profiles, make_plan, matching_profile
from partitioner.controller.settings import Settings
from partitioner.modes import Mode
from sizing.contract import LABEL_COUNT
from tests.partitioner_controller import objects

NOW = 1_800_000_000.0


def _plan(nodes: Sequence[dict[str, Any]], pods: Sequence[dict[str, Any]], settings: Settings | None = None,
          now: float = NOW) -> Plan:
    views: list[NodeView] = [v for v in map(read_node, nodes) if v is not None]
    pod_views: list[PodView] = [v for v in map(read_pod, pods) if v is not None]
    states = {v.name: read_state(v.annotations) for v in views}
    return make_plan(views, pod_views, states, now, settings or Settings())


def _changes(plan: Plan) -> list[tuple[str, str]]:
    return [(c.node, str(c.target)) for c in plan.changes]


def test_nothing_pending_plans_nothing() -> None:
    assert _plan([objects.node("a")], [objects.pod("small", objects.LLAMA_8B, node_name="a")]).changes == ()


def test_a_70b_pod_turns_one_idle_cpx_node_into_spx_and_never_an_opted_out_one() -> None:
    plan = _plan([objects.node("a", opted_in=False), objects.node("b"), objects.node("c")],
                 [objects.pod("big", objects.LLAMA_70B)])
    assert _changes(plan) == [("b", "SPX/NPS1")]
    assert plan.changes[0].unblocks == ("ns/big",) and plan.changes[0].profile == "spx_nps1_1gpu"
    assert plan.helpless == ()


def test_no_opted_in_node_means_no_change_and_says_why() -> None:
    plan = _plan([objects.node("a", opted_in=False)], [objects.pod("big", objects.LLAMA_70B)])
    assert plan.changes == () and plan.helpless == (("ns/big", "no node is opted in "
                                                     f"({keys.OPT_IN_LABEL}={keys.OPT_IN_VALUE})"),)


def test_idle_nodes_come_before_busy_ones_and_busy_ones_need_eviction() -> None:
    nodes = [objects.node("a-busy"), objects.node("z-idle")]
    running = objects.pod("small", objects.LLAMA_8B, node_name="a-busy")
    big = objects.pod("big", objects.LLAMA_70B)
    assert _changes(_plan(nodes, [running, big])) == [("z-idle", "SPX/NPS1")]
    only_busy = [objects.node("a-busy"), objects.node("spare", opted_in=False)]
    assert _plan(only_busy, [running, big]).changes == ()
    evicting = _plan(only_busy, [running, big], Settings(allow_eviction=True))
    assert _changes(evicting) == [("a-busy", "SPX/NPS1")] and evicting.changes[0].evicts == ("ns/small",)


def test_a_busy_node_whose_pods_cannot_run_elsewhere_is_not_changed() -> None:
    nodes = [objects.node("a-busy")]
    pods = [objects.pod("small", objects.LLAMA_8B, node_name="a-busy"), objects.pod("big", objects.LLAMA_70B)]
    # SPX would hold the 70B, but the 8B pod would have nowhere to go (one GPU, one partition).
    assert _plan(nodes, pods, Settings(allow_eviction=True)).changes == ()


def test_pods_moved_by_one_change_take_room_the_next_change_cannot_count_on() -> None:
    nodes = [objects.node("a-busy"), objects.node("b-busy"), objects.node("spare", opted_in=False)]
    pods = [objects.pod("small-a", objects.LLAMA_8B, node_name="a-busy"),
            objects.pod("small-b", objects.LLAMA_8B, node_name="b-busy")]
    pods += [objects.pod(f"filler-{i}", objects.LLAMA_8B, node_name="spare") for i in range(7)]  # 1 of 8 free
    pods += [objects.pod("big-1", objects.LLAMA_70B), objects.pod("big-2", objects.LLAMA_70B)]
    plan = _plan(nodes, pods, Settings(allow_eviction=True))
    assert len(plan.changes) == 1, "the second busy node's pod has nowhere left to go"
    assert len(plan.helpless) == 1


def test_two_sizes_are_planned_on_two_nodes_each_judged_after_the_other() -> None:
    plan = _plan([objects.node("b"), objects.node("c")],
                 [objects.pod("big", objects.LLAMA_70B), objects.pod("mid", objects.QWEN_14B,
                                                                     created="2026-11-30T07:00:01Z")])
    assert {c.node for c in plan.changes} == {"b", "c"}
    targets = {c.unblocks: str(c.target) for c in plan.changes}
    assert targets[("ns/big",)] == "SPX/NPS1" and targets[("ns/mid",)] != "CPX/NPS4"


def test_a_node_in_a_repartition_counts_in_its_target_mode() -> None:
    in_flight = {keys.STATE: "configuring", keys.TARGET_PROFILE: "spx_nps1_1gpu", keys.TARGET_MODE: "SPX/NPS1",
                 keys.EXPECTED_PARTITIONS: "1", keys.WAS_CORDONED: "false", keys.SINCE: format_time(NOW)}
    nodes = [objects.node("b", annotations=in_flight, unschedulable=True), objects.node("c")]
    plan = _plan(nodes, [objects.pod("big", objects.LLAMA_70B)])
    assert plan.changes == () and plan.helpless == (), "the pod waits for b; c is not changed too"


def test_cooldown_and_backoff_keep_a_node_out() -> None:
    recent = {keys.LAST_CHANGE: format_time(NOW - 60)}
    failed = {keys.BACKOFF_UNTIL: format_time(NOW + 60)}
    pods = [objects.pod("big", objects.LLAMA_70B)]
    assert _plan([objects.node("b", annotations=recent)], pods).changes == ()
    assert _plan([objects.node("b", annotations=failed)], pods).changes == ()
    assert _changes(_plan([objects.node("b", annotations=recent)], pods, now=NOW + 1800)) == [("b", "SPX/NPS1")]
    plan = _plan([objects.node("b", annotations=recent)], pods)
    assert any("cooldown" in note for note in plan.notes)


def test_a_node_selector_for_another_pool_is_respected() -> None:
    nodes = [objects.node("b", labels={"pool": "one"}), objects.node("c", labels={"pool": "two"})]
    plan = _plan(nodes, [objects.pod("big", objects.LLAMA_70B, selector={"pool": "two"})])
    assert _changes(plan) == [("c", "SPX/NPS1")]


def test_cordoned_tainted_or_unreadable_nodes_are_not_changed() -> None:
    pods = [objects.pod("big", objects.LLAMA_70B)]
    assert _plan([objects.node("b", unschedulable=True)], pods).changes == ()
    assert _plan([objects.node("b", taints=[{"key": "x", "effect": "NoSchedule"}])], pods).changes == ()
    assert _plan([objects.node("b", allocatable="7")], pods).changes == (), "allocatable disagrees with labels"


def test_pods_that_fit_already_or_cannot_be_sized_plan_nothing() -> None:
    nodes = [objects.node("b"), objects.node("s", "SPX", "NPS1", opted_in=False)]
    assert _plan(nodes, [objects.pod("big", objects.LLAMA_70B)]).changes == (), "s holds it already"
    plan = _plan([objects.node("b")], [objects.pod("odd", {"aim.amd.com/model": "acme/nothing",
                                                           "aim.amd.com/precision": "fp16"})])
    assert plan.changes == () and plan.pending == (), "a pod the core cannot size is no layout's demand"


def test_layout_demand_is_computed_by_the_core_not_read_from_the_message() -> None:
    """A 70B (~151 GiB) left unschedulable for any reason: with only 24 GiB CPX partitions no node holds
    it, so it is layout demand even though the message names no partition at all; beside an SPX node
    (192 GiB) that holds it, the same pod waits for something else (here: cpu) and no change is planned."""
    cpu = "0/2 nodes are available: 2 Insufficient cpu."
    pod = objects.pod("big", objects.LLAMA_70B, blocked=cpu)
    plan = _plan([objects.node("b")], [pod])
    assert plan.pending == ("ns/big",) and len(plan.changes) == 1 and plan.changes[0].target.compute_mode == "SPX"
    held = _plan([objects.node("b"), objects.node("s", "SPX", "NPS1", opted_in=False)], [pod])
    assert held.pending == () and held.changes == ()
    # The extender's words with a node that holds it (a stale event) plan nothing either.
    stale = objects.pod("big", objects.LLAMA_70B)
    assert _plan([objects.node("b"), objects.node("s", "SPX", "NPS1", opted_in=False)], [stale]).pending == ()
    # Too few partitions on the one node whose partitions are big enough: demand (the count is a fact too).
    tp4 = objects.pod("tp4", objects.LLAMA_70B, partitions=4, blocked=cpu)
    assert _plan([objects.node("s", "SPX", "NPS1")], [tp4]).pending == ("ns/tp4",)


def test_a_node_the_pod_may_not_run_on_does_not_hold_it() -> None:
    """kube-scheduler's node filters decide where a pod may run: an SPX node (192 GiB) tainted
    against it, or cordoned, or named away by matchFields, holds no 70B, so the pod is layout demand;
    tolerating the taint, it is not."""
    cpu = "0/2 nodes are available: 2 Insufficient cpu."
    pod = objects.pod("big", objects.LLAMA_70B, blocked=cpu)
    taint = {"key": "team", "value": "a", "effect": "NoSchedule"}
    for spx in (objects.node("s", "SPX", "NPS1", opted_in=False, taints=[taint]),
                objects.node("s", "SPX", "NPS1", opted_in=False, unschedulable=True)):
        assert _plan([objects.node("b"), spx], [pod]).pending == ("ns/big",)
    tolerant = objects.pod("big", objects.LLAMA_70B, blocked=cpu)
    tolerant["spec"]["tolerations"] = [{"key": "team", "operator": "Equal", "value": "a", "effect": "NoSchedule"}]
    tainted = objects.node("s", "SPX", "NPS1", opted_in=False, taints=[taint])
    assert _plan([objects.node("b"), tainted], [tolerant]).pending == ()
    elsewhere = objects.pod("big", objects.LLAMA_70B, blocked=cpu)
    elsewhere["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}
    assert _plan([objects.node("b"), objects.node("s", "SPX", "NPS1", opted_in=False)], [elsewhere]).pending \
        == ("ns/big",)


def test_a_pod_whose_message_predates_the_big_partition_being_taken_is_still_demand() -> None:
    """The CI failure of issue 16's two-size test: a 14B pod last tried while only CPX nodes existed
    ("didn't match node affinity"); then a 70B pod took node s's one SPX partition. s holds the 14B
    pod by size but has no partition free, so it waits for a layout: c becomes QPX/DPX/SPX. While
    s's partition is free, kube-scheduler will place it there: no change."""
    for message in (objects.AFFINITY_MISMATCH, "0/2 nodes are available: 1 node(s) were unschedulable, 1 node(s)"
                    " didn't match Pod's node affinity/selector.", objects.TOO_SMALL):
        mid = objects.pod("mid", objects.QWEN_14B, blocked=message, memory_mib_above=34815)
        taken = objects.pod("big", objects.LLAMA_70B, node_name="s", blocked=None)
        nodes = [objects.node("c"), objects.node("s", "SPX", "NPS1", opted_in=False)]
        plan = _plan(nodes, [taken, mid])
        assert plan.pending == ("ns/mid",), message
        assert [c.node for c in plan.changes] == ["c"] and plan.changes[0].target.compute_mode != "CPX", plan
        free = _plan(nodes, [mid])
        assert free.pending == () and free.changes == (), message
    # kubelet's allocatable counts, not the label: a node advertising 2 with one pod holds one more.
    two = objects.node("s", "DPX", "NPS1", opted_in=False, allocatable="2")
    one_left = [objects.pod("held", objects.QWEN_14B, node_name="s", blocked=None),
                objects.pod("mid", objects.QWEN_14B, blocked=objects.AFFINITY_MISMATCH, memory_mib_above=34815)]
    assert _plan([objects.node("c"), two], one_left).pending == ()


def test_the_webhooks_node_affinity_is_met_by_the_labels_after_the_change() -> None:
    mid = objects.pod("mid", objects.QWEN_14B, blocked=objects.AFFINITY_MISMATCH, memory_mib_above=34815)
    plan = _plan([objects.node("b")], [mid])
    assert len(plan.changes) == 1 and plan.changes[0].target.compute_mode in ("QPX", "DPX", "SPX")
    # An affinity no mode of this node meets (more than a whole MI300X) plans nothing.
    huge = objects.pod("huge", objects.QWEN_14B, blocked=objects.AFFINITY_MISMATCH, memory_mib_above=200_000)
    assert _plan([objects.node("b")], [huge]).changes == ()


INSUFFICIENT = "0/2 nodes are available: 2 Insufficient amd.com/gpu-partition."


def test_kube_schedulers_insufficient_on_big_enough_partitions_plans_more_smaller_ones() -> None:
    # One SPX partition of 192 GiB each; an 8B pod at tensor-parallel 2 fits its partitions, not their number.
    nodes = [objects.node("b", "SPX", "NPS1"), objects.node("c", "SPX", "NPS1", opted_in=False)]
    tp2 = objects.pod("tp2", objects.LLAMA_8B, partitions=2, blocked=INSUFFICIENT)
    plan = _plan(nodes, [tp2])
    assert plan.pending == ("ns/tp2",) and len(plan.changes) == 1 and plan.changes[0].node == "b"
    assert plan.changes[0].target.compute_mode != "SPX" and plan.changes[0].partitions >= 2


def test_kube_schedulers_insufficient_is_not_layout_demand_where_no_partition_is_big_enough() -> None:
    # A 70B at tensor-parallel 2 needs ~76 GiB per partition: more, smaller CPX partitions (24 GiB) never hold it,
    # and the nodeSelector keeps the SPX node of another pool out of the question.
    big = objects.pod("big", objects.LLAMA_70B, partitions=2, blocked=INSUFFICIENT, selector={"pool": "cpx"})
    nodes = [objects.node("b", labels={"pool": "cpx"}), objects.node("s", "SPX", "NPS1", labels={"pool": "other"})]
    plan = _plan(nodes, [big])
    assert plan.pending == () and plan.changes == () and plan.helpless == ()
    unsized = objects.pod("odd", {"aim.amd.com/model": "acme/nothing", "aim.amd.com/precision": "fp16"},
                          blocked=INSUFFICIENT)
    assert _plan(nodes, [unsized]).pending == (), "a pod that cannot be sized fits no partition"


def _real_cpx(used: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An 8-GPU CPX node advertising 63 partitions (the real capture's quirk), ``used`` of them held."""
    node = objects.node("real", gpus=8, allocatable="63")
    node["metadata"]["labels"][LABEL_COUNT] = "63"
    held = [objects.pod(f"held-{i}", objects.LLAMA_8B, node_name="real", partitions=8) for i in range(used // 8)]
    return node, held


def test_a_63_partition_cpx_node_is_planned_as_8_gpus() -> None:
    node, _ = _real_cpx()
    plan = _plan([node], [objects.pod("big", objects.LLAMA_70B)])
    assert [(c.node, str(c.target), c.profile, c.gpus) for c in plan.changes] == [
        ("real", "SPX/NPS1", "spx_nps1_8gpu", 8)]


def test_the_partition_a_gpu_lacks_is_never_free_in_the_simulation() -> None:
    node, held = _real_cpx(used=56)  # 7 of 63 free, though 8 GPUs x 8 would leave 8
    plan = _plan([node], [*held, objects.pod("tp8", objects.LLAMA_8B, partitions=8, blocked=INSUFFICIENT)])
    assert plan.pending == ("ns/tp8",) and [pod for pod, _ in plan.helpless] == ["ns/tp8"], plan


def test_dcm_profiles_cover_every_mode_an_opted_in_node_may_take() -> None:
    views = [v for v in (read_node(objects.node("b", gpus=8)), read_node(objects.node("o", opted_in=False)))
             if v is not None]
    profiles = dcm_profiles(views, {}, Settings())["gpu-config-profiles"]
    assert set(profiles) == {"spx_nps1_8gpu", "dpx_nps2_8gpu", "qpx_nps1_8gpu", "cpx_nps4_8gpu"}
    assert profiles["spx_nps1_8gpu"]["profiles"] == [
        {"computePartition": "SPX", "memoryPartition": "NPS1", "numGPUsAssigned": 8}]


def test_planning_a_larger_cluster_is_quick() -> None:
    nodes = [objects.node(f"n{i:03}", gpus=8) for i in range(50)]
    pods = [objects.pod(f"small-{i}", objects.LLAMA_8B, node_name=f"n{i % 25:03}") for i in range(200)]
    pods += [objects.pod(f"big-{i}", objects.LLAMA_70B) for i in range(20)]
    began = time.perf_counter()
    plan = _plan(nodes, pods)
    took = time.perf_counter() - began
    assert len(plan.changes) == 3 and sum(len(c.unblocks) for c in plan.changes) == 20, plan.changes
    assert took < 5.0, f"planning took {took:.1f} s"  # about 0.8 s on one shared core


def test_someone_elses_profiles_are_matched_by_content() -> None:
    profiles = objects.OPERATOR_PROFILES["gpu-config-profiles"]
    assert matching_profile(profiles, Mode("SPX", "NPS1"), 8) == "default"
    assert matching_profile(profiles, Mode("CPX", "NPS4"), 1) == "cpx_nps4_all"
    assert matching_profile(profiles, Mode("DPX", "NPS1"), 8) is None
    ours = {**profiles, "spx_nps1_8gpu": {"skippedGPUs": {"ids": []}, "profiles": [
        {"computePartition": "SPX", "memoryPartition": "NPS1", "numGPUsAssigned": 8}]}}
    assert matching_profile(ours, Mode("SPX", "NPS1"), 8) == "spx_nps1_8gpu", "our own name first"
    wrong_count = {"x": {"profiles": [{"computePartition": "SPX", "memoryPartition": "NPS1", "numGPUsAssigned": 4}]}}
    skipping = {"y": {"skippedGPUs": {"ids": [3]},
                      "profiles": [{"computePartition": "SPX", "memoryPartition": "NPS1"}]}}
    garbage: dict[str, Any] = {"z": "text", "w": {"profiles": "no"}, "v": {"profiles": [7]},
                               "u": {"profiles": [{"computePartition": "SPX", "memoryPartition": "NPS1",
                                                   "numGPUsAssigned": "8"}]}}
    for profiles_ in (wrong_count, skipping, garbage):
        assert matching_profile(profiles_, Mode("SPX", "NPS1"), 8) is None
