"""The advisor as a library: objective order, fixed nodes, reasons, errors and the DCM profiles."""

from __future__ import annotations

import json
import re

import pytest

from decision import planning
from extender import plan_files
from partitioner import AdvisorInputError, AdvisorNode, AdvisorOptions, Mode, advise
from partitioner.advisor import NODE_SETUP_WORK, choices_for
from partitioner.dcm import PROFILE_LABEL, configmap
from partitioner.inputs import demo_nodes

CPX = Mode("CPX", "NPS4")
SPX = Mode("SPX", "NPS1")
# Kubernetes label values: at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _workloads(*entries: dict[str, object]) -> list[planning.Workload]:
    specs = [planning.WorkloadSpec.model_validate({"name": f"w{i}", **e}) for i, e in enumerate(entries)]
    return planning.workloads_from_specs(specs)


LLAMA_70B = {"model": "meta-llama/Llama-3.3-70B-Instruct", "precision": "fp16"}
LLAMA_8B = {"model": "meta-llama/Llama-3.1-8B-Instruct", "precision": "fp16"}


def test_a_70b_model_on_an_all_cpx_cluster_turns_one_node_spx() -> None:
    nodes = [AdvisorNode(f"n{i}", "MI300X", 8, current=CPX) for i in range(3)]
    advice = advise(nodes, _workloads({**LLAMA_70B}, {**LLAMA_8B, "replicas": 4}))
    assert advice.current_totals is not None and advice.current_totals.placed == 4
    assert advice.totals.placed == 5
    assert advice.totals.nodes_changed == 1
    changed = advice.changes
    assert len(changed) == 1 and changed[0].target.compute_mode in ("SPX", "DPX")
    assert advice.totals.gpus_used == 2  # the 70B alone on one GPU, the four 8B models on one CPX GPU


def test_nothing_changes_when_the_current_layout_is_already_best() -> None:
    nodes = [AdvisorNode("a", "MI300X", 2, current=CPX), AdvisorNode("b", "MI300X", 2, current=SPX)]
    advice = advise(nodes, _workloads({**LLAMA_8B, "replicas": 3}, {**LLAMA_70B}))
    assert [n.changed for n in advice.nodes] == [False, False]
    assert advice.totals == advice.current_totals


def test_a_node_that_may_not_repartition_keeps_its_mode() -> None:
    nodes = [AdvisorNode("fixed", "MI300X", 8, current=CPX, repartition_allowed=False),
             AdvisorNode("free", "MI300X", 8, current=CPX)]
    advice = advise(nodes, _workloads({**LLAMA_70B, "replicas": 2}))
    assert advice.nodes[0].target == CPX and not advice.nodes[0].changed
    assert advice.nodes[1].changed and advice.totals.placed == 2


def test_fewer_gpus_beat_fewer_changes() -> None:
    # Small models on an SPX node take a whole GPU each; CPX packs eight on one GPU.
    nodes = [AdvisorNode("a", "MI300X", 4, current=SPX)]
    advice = advise(nodes, _workloads({**LLAMA_8B, "replicas": 4}))
    assert advice.current_totals is not None and advice.current_totals.gpus_used == 4
    assert advice.totals.gpus_used == 1 and advice.nodes[0].changed


def test_a_workload_no_product_can_hold_gets_a_reason_and_the_rest_are_placed() -> None:
    nodes = [AdvisorNode("a", "MI300X", 1)]
    advice = advise(nodes, _workloads({"model": "Qwen/Qwen3-235B-A22B", "precision": "fp16"}, {**LLAMA_8B}))
    assert advice.totals.placed == 1
    [miss] = advice.unplaceable
    assert miss.workload == "w0" and "more than the largest gpu partition" in miss.reason


def test_too_many_partitions_for_any_node_is_a_reason() -> None:
    advice = advise([AdvisorNode("a", "MI300X", 1)], _workloads({"memory": "100Gi", "partitions": 3}))
    [miss] = advice.unplaceable
    assert "fewer gpu partitions than requested" in miss.reason


def test_an_unknown_model_gets_the_planners_reason() -> None:
    advice = advise([AdvisorNode("a", "MI300X", 1)], _workloads({"model": "nobody/no-such-model"}))
    [miss] = advice.unplaceable
    assert "nobody/no-such-model" in miss.reason
    assert advice.totals.placed == 0


@pytest.mark.parametrize(("node", "message"), [
    (AdvisorNode("a", "MI325X", 8, current=Mode("DPX", "NPS2")), "MI325X has no partition mode DPX/NPS2"),
    (AdvisorNode("a", "MI301X", 8), "unknown GPU product 'MI301X'"),
    (AdvisorNode("a", "MI300X", 0), "gpus=0 is out of range 1..16"),
    (AdvisorNode("a", "MI300X", 8, repartition_allowed=False), "current mode is unknown"),
])
def test_invalid_nodes_are_refused_with_the_field(node: AdvisorNode, message: str) -> None:
    with pytest.raises(AdvisorInputError, match=re.escape(message)):
        advise([node], _workloads({**LLAMA_8B}))


def test_duplicate_node_names_are_refused() -> None:
    with pytest.raises(AdvisorInputError, match="appears twice"):
        advise([AdvisorNode("a", "MI300X", 1), AdvisorNode("a", "MI300X", 1)], _workloads({**LLAMA_8B}))


def test_dcm_profiles_cover_every_target_and_follow_dcms_checks() -> None:
    nodes = [AdvisorNode("a", "MI300X", 8, current=CPX), AdvisorNode("b", "MI325X", 4),
             AdvisorNode("c", "MI300X", 2, current=SPX)]
    advice = advise(nodes, _workloads({**LLAMA_70B, "replicas": 3}, {**LLAMA_8B, "replicas": 9}))
    profiles = advice.dcm_config["gpu-config-profiles"]
    for node in advice.nodes:
        assert _LABEL_VALUE.match(node.dcm_profile)
        entry = profiles[node.dcm_profile]
        assert entry["skippedGPUs"] == {"ids": []}
        [part] = entry["profiles"]
        assert sum(p["numGPUsAssigned"] for p in entry["profiles"]) + len(entry["skippedGPUs"]["ids"]) == node.gpus
        assert (part["computePartition"], part["memoryPartition"]) == (node.target.compute_mode,
                                                                        node.target.memory_mode)
    assert set(profiles) == {n.dcm_profile for n in advice.nodes}
    document = configmap(advice.dcm_config)
    assert json.loads(document["data"]["config.json"]) == advice.dcm_config
    assert PROFILE_LABEL == "dcm.amd.com/gpu-config-profile"


def test_greedy_only_skips_the_search() -> None:
    nodes = [AdvisorNode(f"n{i}", "MI300X", 1) for i in range(3)]
    advice = advise(nodes, _workloads({**LLAMA_8B, "replicas": 3}), AdvisorOptions(greedy_only=True))
    assert advice.evaluations == 1


def test_the_demo_advice_reaches_the_exhaustive_optimum() -> None:
    # 14 placed on 6 GPUs is partitioner.exhaustive.optimum over all 1,024 demo layouts (about 3 s, so
    # computed once, not here); the 235B fp16 model fits no partition of any product.
    advice = advise(demo_nodes(), plan_files.demo_workloads())
    assert (advice.totals.placed, advice.totals.gpus_used) == (14, 6)
    assert [u.workload for u in advice.unplaceable] == ["qwen3-235b-fp16"]


def _one_pod_on(nodes: int) -> tuple[list[AdvisorNode], list[planning.Workload]]:
    return ([AdvisorNode(f"n{i}", ("MI300X", "MI325X")[i % 2], 8, Mode("SPX", "NPS1")) for i in range(nodes)],
            _workloads({"memory": "12Gi"}))


def test_the_search_budget_counts_setting_up_every_node_of_a_layout() -> None:
    """Issue 19: a layout placed sets up every node, however few the pods; 1 pod on 5,000 nodes took
    11-15 s of CPU when the budget counted nodes x pods only (2,000 // 100 = 20 layouts here)."""
    nodes, pods = _one_pod_on(100)
    advice = advise(nodes, pods, AdvisorOptions(work_budget=2000))
    assert 2 <= advice.evaluations <= 2000 // (100 * (1 + NODE_SETUP_WORK))


def test_what_a_node_offers_is_looked_up_once_per_node_and_mode_not_per_layout() -> None:
    """The planner's node for each node in each mode is built once per advice (mode_nodes), so its
    offer (the device plugin's labels and allocatable, parsed) is not rebuilt for every layout placed."""
    nodes, pods = _one_pod_on(40)
    choices = choices_for(nodes, AdvisorOptions())
    planning.partitioning_of.cache_clear()
    advice = advise(nodes, pods)
    lookups = planning.partitioning_of.cache_info()
    assert advice.evaluations > 10  # without the memo: 40 lookups for every one of them
    probes = len({o.partition_bytes for c in choices for o in c.options})  # the demand probes' nodes
    assert lookups.hits + lookups.misses <= sum(len(c.options) for c in choices) + probes
    assert lookups.misses <= len({(c.product, o.mode) for c in choices for o in c.options}) + probes
