"""aim-extender plan: same verdicts as the service, deterministic output, best-fit beats spread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from decision.nodes import filter_nodes
from decision.pod_demand import read_pod_demand
from decision.reasons import not_in_cache
from decision.requirement import Sizer
from decision.verdict import Policy
from extender import planning
from extender.cli import main as cli_main
from tests.extender.hostile_files import (
    CLUSTER_FILES,
    WORKLOAD_FILES,
    fifo,
    nodes,
    release,
    run_within,
    workloads,
    write as hostile_write,
)

SMALL_THEN_BIG = """
workloads:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, precision: fp16}
  - {name: big, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp16}
"""
ONE_CPX_ONE_SPX = """
nodes:
  - name: cpx
    gpus: [{product: MI300X, compute_mode: CPX, memory_mode: NPS4}]
  - name: spx
    gpus: [{product: MI300X, compute_mode: SPX}]
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def demo(policy: Policy) -> planning.PlanResult:
    return planning.place_all(planning.load_cluster(None), planning.load_workloads(None), policy=policy)


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
    cluster = planning.load_cluster(None)
    small = planning.Cluster(
        "test",
        tuple(n for n in cluster.nodes if n.name in ("mi300x-cpx",))
        + tuple(n for n in cluster.nodes if n.name == "mi325x-spx"),
    )
    workloads = [w for w in planning.load_workloads(None) if w.name in ("chat-llama-8b-1", "llama-70b-1")]
    best = planning.place_all(small, workloads, policy=Policy.BEST_FIT)
    spread = planning.place_all(small, workloads, policy=Policy.SPREAD)
    assert len(best.placements) == 2 and len(spread.placements) == 1
    assert spread.unplaced[0].workload == "llama-70b-1"
    assert "not enough free gpu partitions" in spread.unplaced[0].reason


def test_planner_nodes_pass_through_the_same_label_parsing_as_the_service() -> None:
    state = planning.NodeState.from_plan(planning.load_cluster(None).nodes[0])
    offer = state.offer()
    assert offer.defect is None and offer.labels.defects == ()
    assert offer.allocatable == 16 and offer.partition_bytes == 24 * 2**30
    assert (offer.labels.compute_mode, offer.labels.memory_mode, offer.labels.homogeneous) == ("CPX", "NPS4", True)
    w = planning.load_workloads(None)[0]
    requirement = Sizer().requirement(read_pod_demand(w.to_pod()))
    outcome = filter_nodes(requirement, [state.name], [state.current_capacity()], unknown=not_in_cache())
    assert outcome.passed == [state.name]


def test_multi_partition_workload_takes_partitions_on_one_gpu_when_it_can(tmp_path: Path) -> None:
    cluster = planning.load_cluster(
        write(
            tmp_path,
            "c.yaml",
            """
nodes:
  - name: qpx
    gpus: [{product: MI300X, compute_mode: QPX, count: 2}]
""",
        )
    )
    workloads = planning.load_workloads(
        write(
            tmp_path,
            "w.yaml",
            """
workloads:
  - {name: one, model: Qwen/Qwen3-8B, precision: fp16}
  - {name: tp2, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp8, partitions: 2}
""",
        )
    )
    result = planning.place_all(cluster, workloads, policy=Policy.BEST_FIT)
    tp2 = next(p for p in result.placements if p.workload == "tp2")
    assert [gpu for gpu, _ in tp2.partitions] == [0, 0]  # GPU 0 already busy: keep GPU 1 whole
    assert result.free_gpus == 1


def test_multi_partition_workload_moves_to_a_gpu_that_holds_all_its_partitions(tmp_path: Path) -> None:
    cluster = planning.load_cluster(
        write(
            tmp_path,
            "c.yaml",
            """
nodes:
  - name: qpx
    gpus: [{product: MI300X, compute_mode: QPX, count: 2}]
""",
        )
    )
    workloads = planning.load_workloads(
        write(
            tmp_path,
            "w.yaml",
            """
workloads:
  - {name: small, model: Qwen/Qwen3-8B, precision: fp16, replicas: 3}
  - {name: tp2, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp8, partitions: 2}
""",
        )
    )
    result = planning.place_all(cluster, workloads, policy=Policy.BEST_FIT)
    tp2 = next(p for p in result.placements if p.workload == "tp2")
    assert [gpu for gpu, _ in tp2.partitions] == [1, 1]  # GPU 0 has one free partition left


def test_files_with_explicit_paths_are_loaded(tmp_path: Path) -> None:
    cluster = planning.load_cluster(write(tmp_path, "c.yaml", ONE_CPX_ONE_SPX))
    workloads = planning.load_workloads(write(tmp_path, "w.yaml", SMALL_THEN_BIG))
    assert [len(n.gpus) for n in cluster.nodes] == [1, 1]
    assert [w.name for w in workloads] == ["chat", "big"]
    spread = planning.place_all(cluster, workloads, policy=Policy.SPREAD)
    best = planning.place_all(cluster, workloads, policy=Policy.BEST_FIT)
    assert (len(best.placements), len(spread.placements)) == (2, 1)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nodes: [", "not valid YAML at line "),
        ("- a\n- b\n", "expected a YAML mapping"),
        ("nodes: []", "nodes: List should have at least 1 item"),
        (
            "nodes: [{name: a, gpus: [{product: MI999X, compute_mode: CPX}]}]",
            "nodes[0].gpus[0]: unknown GPU product 'MI999X'",
        ),
        (
            "nodes: [{name: a, gpus: [{product: MI300X, compute_mode: CPX, memory_mode: NPS2}]}]",
            "MI300X has no partition mode CPX/NPS2",
        ),
        ("nodes: [{name: a, gpus: [{product: MI300X, compute_mode: CPX, count: 0}]}]", "nodes[0].gpus[0].count"),
        ("nodes: [{name: Bad_Name}]", "nodes[0].name"),
        ("nodes: [{name: a}, {name: a}]", "appears twice"),
        ("nodes: [{name: a, colour: red}]", "nodes[0].colour: Extra inputs are not permitted"),
    ],
    ids=[
        "broken YAML",
        "not a mapping",
        "no nodes",
        "unknown product",
        "invalid mode",
        "zero GPUs",
        "bad node name",
        "duplicate node",
        "unknown field",
    ],
)
def test_invalid_cluster_files_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(planning.PlanInputError) as caught:
        planning.load_cluster(write(tmp_path, "cluster.yaml", text))
    assert fragment in str(caught.value)
    assert str(tmp_path / "cluster.yaml") in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("workloads: [{name: a, precision: fp7}]", "workloads[0].precision: unknown precision 'fp7'"),
        ("workloads: [{name: a, memory: lots}]", "workloads[0].memory: 'lots' is not a positive Kubernetes quantity"),
        ("workloads: [{name: a, partitions: -1}]", "workloads[0].partitions"),
        ("workloads: [{name: a, replicas: many}]", "workloads[0].replicas"),
    ],
    ids=["bad precision", "bad memory", "negative partitions", "replicas not a number"],
)
def test_invalid_workload_files_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(planning.PlanInputError) as caught:
        planning.load_workloads(write(tmp_path, "w.yaml", text))
    assert fragment in str(caught.value)


def test_unknown_model_in_a_workload_is_reported_as_not_placed(tmp_path: Path) -> None:
    workloads = planning.load_workloads(write(tmp_path, "w.yaml", "workloads: [{name: a, model: nope/nope}]"))
    result = planning.place_all(planning.load_cluster(None), workloads, policy=Policy.BEST_FIT)
    assert result.placements == [] and "unknown model 'nope/nope'" in result.unplaced[0].reason


# --- hostile files (issue 18): one line naming the file and the field, exit 2, fast -------------------


def _plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    code = run_within(10, lambda: cli_main(["plan", "--policy", "best-fit", *args], environ={}))
    elapsed = time.perf_counter() - started
    captured = capsys.readouterr()
    return code, captured.out, captured.err, elapsed


def _one_line_naming(err: str, path: str, fragment: str) -> None:
    assert err.startswith(f"aim-extender plan: error: {path}: ") and err.count("\n") == 1, err[:500]
    assert fragment in err and "Traceback" not in err, err[:500]


@pytest.mark.parametrize(("name", "data", "fragment", "seconds"), WORKLOAD_FILES,
                         ids=[case[0] for case in WORKLOAD_FILES])
def test_hostile_workload_files_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        name: str, data: bytes, fragment: str,
                                                        seconds: float) -> None:
    path = hostile_write(tmp_path, "workloads.yaml", data)
    code, out, err, elapsed = _plan(capsys, "--workloads", path)
    assert (code, out) == (2, "")
    _one_line_naming(err, path, fragment)
    assert elapsed < seconds, f"{name}: refused after {elapsed:.2f} s"


@pytest.mark.parametrize(("name", "data", "fragment", "seconds"), CLUSTER_FILES,
                         ids=[case[0] for case in CLUSTER_FILES])
def test_hostile_cluster_files_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       name: str, data: bytes, fragment: str,
                                                       seconds: float) -> None:
    path = hostile_write(tmp_path, "cluster.yaml", data)
    code, out, err, elapsed = _plan(capsys, "--cluster", path)
    assert (code, out) == (2, "")
    _one_line_naming(err, path, fragment)
    assert elapsed < seconds, f"{name}: refused after {elapsed:.2f} s"


@pytest.mark.parametrize("flag", ["--cluster", "--workloads"])
def test_a_fifo_a_device_and_a_directory_are_refused_without_reading(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     flag: str) -> None:
    pipe = fifo(tmp_path)
    try:
        for path, fragment in ((pipe, "not a regular file (a FIFO)"), ("/dev/zero", "not a regular file"),
                               (str(tmp_path), "not a regular file (a directory)")):
            code, out, err, elapsed = _plan(capsys, flag, path)
            assert (code, out) == (2, "")
            _one_line_naming(err, path, fragment)
            assert elapsed < 1.0
    finally:
        release(pipe)


def test_the_largest_files_within_the_bounds_still_load(tmp_path: Path) -> None:
    """The bounds refuse only what no real file needs: 5,000 nodes and 10,000 pods load."""
    started = time.perf_counter()
    cluster = planning.load_cluster(hostile_write(tmp_path, "c.yaml", nodes(5000).encode()))
    loaded = planning.load_workloads(hostile_write(tmp_path, "w.yaml", workloads(10, replicas=1000).encode()))
    assert (len(cluster.nodes), len(loaded)) == (5000, 10_000)
    assert time.perf_counter() - started < 10
    anchored = b"nodes: [{name: a, gpus: &g [{product: MI300X, compute_mode: SPX}]}, {name: b, gpus: *g}]"
    assert len(planning.load_cluster(hostile_write(tmp_path, "a.yaml", anchored)).nodes) == 2  # aliases are fine


def test_nodes_times_pods_is_bounded_naming_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each file within its own bounds, 5,000 nodes x 10,000 pods (50 M decisions) ran for minutes; now it is
    refused once both are read (the time is the reading of two files of the largest size allowed)."""
    cluster = hostile_write(tmp_path, "cluster.yaml", nodes(5000).encode())
    pods = hostile_write(tmp_path, "workloads.yaml", workloads(10, replicas=1000).encode())
    code, out, err, elapsed = _plan(capsys, "--cluster", cluster, "--workloads", pods)
    assert (code, out) == (2, "")
    assert err.startswith(f"aim-extender plan: error: {cluster} and {pods}: 5,000 nodes x 10,000 pods") \
        and err.count("\n") == 1, err
    assert "more than 1,000,000" in err and "Traceback" not in err
    assert elapsed < 5, f"refused after {elapsed:.2f} s"


def test_the_plan_size_bound_is_the_product() -> None:
    from extender.planning.inputs import MAX_DECISIONS, check_plan_size

    many = planning.workloads_from_specs([planning.WorkloadSpec(name="w", memory="1Gi", replicas=1000)] * 10)
    assert len(many) * 100 == MAX_DECISIONS
    at_bound = planning.Cluster("c.yaml", tuple(planning.PlanNode(f"n{i}", ()) for i in range(100)))
    check_plan_size(at_bound, many, "w.yaml")  # 100 x 10,000: the bound itself plans
    over = planning.Cluster("c.yaml", (*at_bound.nodes, planning.PlanNode("n100", ())))
    with pytest.raises(planning.PlanInputError, match=r"^c\.yaml and w\.yaml: 101 nodes x 10,000 pods is 1,010,000"):
        check_plan_size(over, many, "w.yaml")
    with pytest.raises(planning.PlanInputError, match=r"and built-in demo-workloads\.yaml: 101 nodes x 10,000"):
        check_plan_size(over, many, None)
    check_plan_size(planning.Cluster("big.yaml", over.nodes * 49), many[:200], None)  # 4,949 x 200: fine
