"""aim-extender plan's files and command line: the cluster and workload files read with bounds (extender.plan_files,
extender.yaml_file), invalid and hostile files refused in one line naming the field, the size bound. The
placement itself is decision.planning's (tests/decision/test_decision_planning.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from decision import planning
from decision.verdict import Policy
from extender import plan_files
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


def test_files_with_explicit_paths_are_loaded(tmp_path: Path) -> None:
    cluster = plan_files.load_cluster(write(tmp_path, "c.yaml", ONE_CPX_ONE_SPX))
    workloads = plan_files.load_workloads(write(tmp_path, "w.yaml", SMALL_THEN_BIG))
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
        plan_files.load_cluster(write(tmp_path, "cluster.yaml", text))
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
        plan_files.load_workloads(write(tmp_path, "w.yaml", text))
    assert fragment in str(caught.value)


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


HOSTILE = [("--workloads", "workloads.yaml", *case) for case in WORKLOAD_FILES] + [
    ("--cluster", "cluster.yaml", *case) for case in CLUSTER_FILES]


@pytest.mark.parametrize(("flag", "file", "name", "data", "fragment", "seconds"), HOSTILE,
                         ids=[f"{case[1]}: {case[2]}" for case in HOSTILE])
def test_hostile_files_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                               file: str, name: str, data: bytes, fragment: str,
                                               seconds: float) -> None:
    path = hostile_write(tmp_path, file, data)
    code, out, err, elapsed = _plan(capsys, flag, path)
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
    cluster = plan_files.load_cluster(hostile_write(tmp_path, "c.yaml", nodes(5000).encode()))
    loaded = plan_files.load_workloads(hostile_write(tmp_path, "w.yaml", workloads(10, replicas=1000).encode()))
    assert (len(cluster.nodes), len(loaded)) == (5000, 10_000)
    assert time.perf_counter() - started < 10
    anchored = b"nodes: [{name: a, gpus: &g [{product: MI300X, compute_mode: SPX}]}, {name: b, gpus: *g}]"
    assert len(plan_files.load_cluster(hostile_write(tmp_path, "a.yaml", anchored)).nodes) == 2  # aliases are fine


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
    from extender.plan_files import MAX_DECISIONS, check_plan_size

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
