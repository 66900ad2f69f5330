"""decision.planning: the planner places with the service's own verdicts, deterministically, best-fit
beats spread; one NodeState (counted partitions, a partitioning shared by alike nodes) for the planner,
the advisor and the partition controller."""

from __future__ import annotations

from typing import Any

import yaml

from decision import planning
from decision.node_offer import read_node_offer
from decision.nodes import filter_nodes
from decision.pod_demand import read_pod_demand
from decision.reasons import not_in_cache
from decision.requirement import Sizer
from decision.verdict import Policy
from extender import plan_files
from tests.partitioner.mixes import random_mix


def cluster(text: str) -> planning.Cluster:
    return planning.cluster_from_document("c.yaml", yaml.safe_load(text))


def workloads(text: str) -> list[planning.Workload]:
    return planning.workloads_from_document("w.yaml", yaml.safe_load(text))


def demo(policy: Policy) -> planning.PlanResult:
    return planning.place_all(plan_files.demo_cluster(), plan_files.demo_workloads(), policy=policy)


def test_demo_plan_is_deterministic() -> None:
    first = planning.render_tables([demo(Policy.BEST_FIT), demo(Policy.SPREAD)], unicode=True)
    second = planning.render_tables([demo(Policy.BEST_FIT), demo(Policy.SPREAD)], unicode=True)
    assert first == second
    assert planning.as_json([demo(Policy.BEST_FIT)]) == planning.as_json([demo(Policy.BEST_FIT)])


def test_best_fit_places_more_of_the_demo_than_spread_and_wastes_less() -> None:
    best, spread = demo(Policy.BEST_FIT), demo(Policy.SPREAD)
    assert len(best.placements) > len(spread.placements)
    assert best.idle_bytes < spread.idle_bytes
    assert best.placed_bytes > 2 * spread.placed_bytes
    assert {p.workload for p in spread.placements} <= {p.workload for p in best.placements}


def test_demo_key_facts() -> None:
    best = demo(Policy.BEST_FIT)
    where = {p.workload: p.node for p in best.placements}
    assert where["chat-llama-8b-1"] == "mi300x-cpx"  # 20 GiB model in the 24 GiB partition
    assert where["llama-70b-1"] == "mi300x-spx" and where["qwen3-235b-int4"] == "mi325x-spx"
    assert [m.workload for m in best.unplaced] == ["qwen3-235b-fp16"]
    assert "fix: precision fp8" in best.unplaced[0].reason


def test_on_a_mix_where_it_matters_spread_loses_the_big_model() -> None:
    nodes = plan_files.demo_cluster().nodes
    small = planning.Cluster("test", tuple(n for n in nodes if n.name == "mi300x-cpx")
                             + tuple(n for n in nodes if n.name == "mi325x-spx"))
    chosen = [w for w in plan_files.demo_workloads() if w.name in ("chat-llama-8b-1", "llama-70b-1")]
    best = planning.place_all(small, chosen, policy=Policy.BEST_FIT)
    spread = planning.place_all(small, chosen, policy=Policy.SPREAD)
    assert len(best.placements) == 2 and len(spread.placements) == 1
    assert spread.unplaced[0].workload == "llama-70b-1"
    assert "not enough free gpu partitions" in spread.unplaced[0].reason


def _as_the_service_reads_it(state: planning.NodeState) -> Any:
    return read_node_offer({"metadata": {"name": state.name, "labels": dict(state.labels())},
                            "status": {"allocatable": state.allocatable()}})


def test_planner_nodes_pass_through_the_same_label_parsing_as_the_service() -> None:
    state = planning.NodeState.from_plan(plan_files.demo_cluster().nodes[0])
    offer = _as_the_service_reads_it(state)
    assert offer.defect is None and offer.labels.defects == ()
    assert offer.allocatable == 16 and offer.partition_bytes == 24 * 2**30
    assert (offer.labels.compute_mode, offer.labels.memory_mode, offer.labels.homogeneous) == ("CPX", "NPS4", True)
    assert state.current_capacity() == (offer.allocatable, offer.partition_bytes, 0, offer.defect)
    w = plan_files.demo_workloads()[0]
    requirement = Sizer().requirement(read_pod_demand(w.to_pod()))
    outcome = filter_nodes(requirement, [state.name], [state.current_capacity()], unknown=not_in_cache())
    assert outcome.passed == [state.name]


def test_the_shared_partitioning_is_what_the_service_reads_for_every_node_of_the_demo() -> None:
    for node in [*plan_files.demo_cluster().nodes, planning.PlanNode("empty", ())]:
        state = planning.NodeState.from_plan(node)
        offer = _as_the_service_reads_it(state)
        assert offer is not None
        assert state.current_capacity() == (offer.allocatable, offer.partition_bytes, 0, offer.defect), node.name


def test_alike_nodes_share_one_partitioning_and_keep_their_own_partitions() -> None:
    gpu = planning.partition_geometry("MI300X", "CPX", "NPS4")
    a, b = planning.NodeState("a", (gpu,) * 2), planning.NodeState("b", [gpu, gpu])
    assert a.labels() is b.labels()  # computed once for both
    requirement = Sizer().requirement(read_pod_demand(workloads("workloads: [{name: w, memory: 1Gi, partitions: 3}]")
                                                      [0].to_pod()))
    assert a.take("w", requirement) == [(0, 0), (0, 1), (0, 2)]
    assert (a.used, b.used) == (3, 0)
    assert a.current_capacity()[2] == 3 and b.current_capacity()[2] == 0


def test_held_partitions_and_labels_of_a_node() -> None:
    gpu = planning.partition_geometry("MI300X", "QPX", None)  # 4 partitions per GPU
    state = planning.NodeState("n", (gpu,) * 2, labels={"pool": "a", "amd.com/gpu-partition.count": "stale"}, held=5)
    assert state.used == 5 and [g.used for g in state.gpus] == [4, 1]
    assert repr(state) == "NodeState('n', 2 GPUs, 5/8 partitions used)"
    assert state.labels()["pool"] == "a" and state.labels()["amd.com/gpu-partition.count"] == "8"  # the plugin's wins


def test_the_counted_partitions_agree_with_the_slots_after_every_plan() -> None:
    """Each node keeps its used count as partitions are taken (no sum over slots per decision): on random
    mixes, the count equals the slots taken, for both policies."""
    for seed in range(12):
        mix = random_mix(seed, nodes=4)
        nodes = tuple(planning.PlanNode(n.name, (planning.partition_geometry(n.product, *(
            (n.current.compute_mode, n.current.memory_mode) if n.current else ("CPX", None))),) * n.gpus)
            for n in mix.nodes)
        for policy in Policy:
            result = planning.place_all(planning.Cluster("mix", nodes), list(mix.workloads), policy=policy)
            for state in result.nodes:
                assert state.used == sum(gpu.used for gpu in state.gpus), (seed, policy, state.name)
            assert sum(len(p.partitions) for p in result.placements) == sum(state.used for state in result.nodes)


def test_multi_partition_workload_takes_partitions_on_one_gpu_when_it_can() -> None:
    qpx = cluster("nodes: [{name: qpx, gpus: [{product: MI300X, compute_mode: QPX, count: 2}]}]")
    result = planning.place_all(qpx, workloads("""
workloads:
  - {name: one, model: Qwen/Qwen3-8B, precision: fp16}
  - {name: tp2, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp8, partitions: 2}
"""), policy=Policy.BEST_FIT)
    tp2 = next(p for p in result.placements if p.workload == "tp2")
    assert [gpu for gpu, _ in tp2.partitions] == [0, 0]  # GPU 0 already busy: keep GPU 1 whole
    assert result.free_gpus == 1


def test_multi_partition_workload_moves_to_a_gpu_that_holds_all_its_partitions() -> None:
    qpx = cluster("nodes: [{name: qpx, gpus: [{product: MI300X, compute_mode: QPX, count: 2}]}]")
    result = planning.place_all(qpx, workloads("""
workloads:
  - {name: small, model: Qwen/Qwen3-8B, precision: fp16, replicas: 3}
  - {name: tp2, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp8, partitions: 2}
"""), policy=Policy.BEST_FIT)
    tp2 = next(p for p in result.placements if p.workload == "tp2")
    assert [gpu for gpu, _ in tp2.partitions] == [1, 1]  # GPU 0 has one free partition left


def test_unknown_model_in_a_workload_is_reported_as_not_placed() -> None:
    result = planning.place_all(plan_files.demo_cluster(), workloads("workloads: [{name: a, model: nope/nope}]"),
                                policy=Policy.BEST_FIT)
    assert result.placements == [] and "unknown model 'nope/nope'" in result.unplaced[0].reason


def test_a_workload_is_a_pod_the_demand_reader_reads_back() -> None:
    spec = planning.WorkloadSpec(name="w", model="Qwen/Qwen3-8B", precision="fp8", max_model_len=4096,
                                 profile="p", memory="40Gi", partitions=2)
    demand = read_pod_demand(planning.Workload("w", spec).to_pod())
    assert (demand.partitions, demand.model, demand.precision, demand.max_model_len, demand.profile,
            demand.memory_bytes, demand.problem) == (2, "Qwen/Qwen3-8B", "fp8", 4096, "p", 40 * 2**30, None)
    assert read_pod_demand(planning.Workload("u", planning.WorkloadSpec(name="u", partitions=0)).to_pod()) \
        == read_pod_demand({})
