"""``aim-partitioner advise``: the demo, the JSON fields issue 10 lists, bad files and too much search work
(exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from decision import planning
from partitioner import AdvisorNode, AdvisorOptions
from partitioner.cli import main
from partitioner.errors import AdvisorInputError
from partitioner.inputs import (
    KIND_WORK,
    MAX_ADVICE_WORK,
    PROBE_WORK,
    AdviceWork,
    advice_work,
    check_advice_size,
)
from tests.extender.hostile_files import (
    CLUSTER_FILES,
    WORKLOAD_FILES,
    fifo,
    nodes,
    release,
    run_within,
    workloads as hostile_workloads,
    write,
)

CLUSTER = """\
nodes:
  - name: cpx-a
    gpus:
      - {product: MI300X, compute_mode: CPX, memory_mode: NPS4, count: 2}
  - name: cpx-b
    gpus:
      - {product: MI300X, compute_mode: CPX, memory_mode: NPS4, count: 2}
  - name: pinned
    repartition: false
    gpus:
      - {product: MI325X, compute_mode: CPX, count: 1}
"""
WORKLOADS = """\
workloads:
  - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, precision: fp16, replicas: 3}
  - {name: big, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp16}
"""


def _files(tmp_path: Path, cluster: str = CLUSTER, workloads: str = WORKLOADS) -> list[str]:
    (tmp_path / "cluster.yaml").write_text(cluster, encoding="utf-8")
    (tmp_path / "workloads.yaml").write_text(workloads, encoding="utf-8")
    return ["--cluster", str(tmp_path / "cluster.yaml"), "--workloads", str(tmp_path / "workloads.yaml")]


def test_the_demo_runs_as_a_command() -> None:
    done = subprocess.run([sys.executable, "-m", "partitioner", "advise"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Partition advice: 15 workloads on 5 nodes / 8 GPUs (built-in demo cluster, modes free)" in done.stdout
    assert "Proof: the planner's best-fit placement on the target layout" in done.stdout
    assert "kubectl label node mi300x-cpx dcm.amd.com/gpu-config-profile=" in done.stdout


def test_json_has_the_fields_issue_10_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", *_files(tmp_path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    nodes = {n["name"]: n for n in document["nodes"]}
    for node in nodes.values():
        assert {"name", "product", "gpus", "current", "target", "changed", "dcm_profile"} <= set(node)
        assert set(node["target"]) == {"compute_mode", "memory_mode"}
    assert nodes["cpx-a"]["current"] == {"compute_mode": "CPX", "memory_mode": "NPS4"}
    assert nodes["pinned"]["changed"] is False and nodes["pinned"]["target"]["compute_mode"] == "CPX"
    assert sum(n["changed"] for n in nodes.values()) == 1  # the 70B model needs one bigger partition
    totals = document["totals"]
    assert set(totals) == {"workloads", "placed", "gpus", "gpus_used", "gpus_free", "nodes_changed"}
    assert totals["workloads"] == 4 and totals["placed"] == 4 and totals["nodes_changed"] == 1
    assert totals["gpus_used"] + totals["gpus_free"] == totals["gpus"] == 5
    assert document["current_totals"]["placed"] == 3
    placement = document["placement"]
    assert placement["policy"] == "best-fit" and len(placement["placements"]) == 4
    configmap = document["dcm"]["configmap"]
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["namespace"] == "kube-amd-gpu"
    profiles = json.loads(configmap["data"]["config.json"])["gpu-config-profiles"]
    for name, node in nodes.items():
        assert document["dcm"]["node_labels"][name] == {"dcm.amd.com/gpu-config-profile": node["dcm_profile"]}
        assert profiles[node["dcm_profile"]]["profiles"][0]["numGPUsAssigned"] == node["gpus"]


def test_table_shows_current_and_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", *_files(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CPX/NPS4" in out and "workloads placed" in out and "(repartition not allowed)" in out
    assert "3 / 4" in out and "4 / 4" in out  # current vs target


@pytest.mark.parametrize(("cluster", "message"), [
    ("nodes: [", "not valid YAML at line "),
    ("- a list", "expected a YAML mapping at the top level, got list"),
    ("nodes:\n  - name: a\n    gpus: [{product: MI325X, compute_mode: DPX, memory_mode: NPS2}]\n",
     "nodes[0].gpus[0]: MI325X has no partition mode DPX/NPS2"),
    ("nodes:\n  - name: a\n    gpus: [{product: MI999X}]\n", "unknown GPU product 'MI999X'"),
    ("nodes:\n  - name: a\n    gpus: [{product: MI300X}, {product: MI325X}]\n", "different products"),
    ("nodes:\n  - name: a\n    repartition: false\n    gpus: [{product: MI300X}]\n", "compute_mode is not given"),
    ("nodes:\n  - name: Bad_Name\n    gpus: [{product: MI300X}]\n", "not a Kubernetes name"),
    ("nodes:\n  - name: a\n    gpus: [{product: MI300X, count: 17}]\n", "less than or equal to 16"),
    ("[" * 1000, "nested more than 32 levels deep"),
])
def test_bad_cluster_files_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: str,
                                                message: str) -> None:
    assert main(["advise", *_files(tmp_path, cluster=cluster)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("aim-partitioner advise: error: ") and captured.err.count("\n") == 1
    assert message in captured.err


def test_bad_workload_file_and_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", *_files(tmp_path, workloads="workloads:\n  - {name: x, precision: fp7}\n")]) == 2
    assert "workloads[0].precision" in capsys.readouterr().err
    assert main(["advise", "--cluster", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml: cannot read" in capsys.readouterr().err


def _advise_fails(capsys: pytest.CaptureFixture[str], flag: str, path: str, fragment: str, seconds: float) -> None:
    started = time.perf_counter()
    assert run_within(10, lambda: main(["advise", flag, path])) == 2
    elapsed = time.perf_counter() - started
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err[:500]
    assert captured.err.startswith(f"aim-partitioner advise: error: {path}: "), captured.err[:500]
    assert fragment in captured.err and "Traceback" not in captured.err, captured.err[:500]
    assert elapsed < seconds, f"refused after {elapsed:.2f} s"


@pytest.mark.parametrize(("name", "data", "fragment", "seconds"), CLUSTER_FILES, ids=[c[0] for c in CLUSTER_FILES])
def test_hostile_cluster_files_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                                     data: bytes, fragment: str, seconds: float) -> None:
    _advise_fails(capsys, "--cluster", write(tmp_path, "cluster.yaml", data), fragment, seconds)


def test_hostile_workload_file_a_fifo_and_dev_zero_exit_2_promptly(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, data, fragment, seconds = WORKLOAD_FILES[0]  # the alias bomb
    _advise_fails(capsys, "--workloads", write(tmp_path, "workloads.yaml", data), fragment, seconds)
    pipe = fifo(tmp_path)
    try:
        for flag in ("--cluster", "--workloads"):
            _advise_fails(capsys, flag, pipe, "not a regular file (a FIFO)", 1.0)
            _advise_fails(capsys, flag, "/dev/zero", "not a regular file", 1.0)
    finally:
        release(pipe)


def _distinct_unplaceable(count: int) -> str:
    """``count`` distinct workloads no partition holds: each is probed against every partition size."""
    return "workloads:\n" + "".join(f"  - {{name: p{i}, memory: {300 * 1024 + i}Mi, partitions: 64}}\n"
                                    for i in range(count))


EVERY_PRODUCT = "nodes:\n" + "".join(f"  - {{name: {p.lower()}, gpus: [{{product: {p}, count: 16}}]}}\n"
                                     for p in ("MI300X", "MI300A", "MI308X", "MI325X", "MI350X", "MI355X"))


@pytest.mark.parametrize(("cluster", "workloads", "fragment"), [
    # Each file within its own bounds; advise ran past 60 s on these before their product was bounded.
    (nodes(5000), hostile_workloads(10, replicas=1000), "5,000 nodes (1 kind) x 10,000 pods and 1 distinct"),
    # Few decisions, but 10,000 distinct workloads x every partition size of six products in probes (~40 s).
    (EVERY_PRODUCT, _distinct_unplaceable(10_000), "6 nodes (6 kinds) x 10,000 pods and 10,000 distinct workloads x "),
], ids=["nodes x pods", "distinct workloads x partition sizes"])
def test_more_search_work_than_the_bound_is_refused_naming_both_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: str, workloads: str, fragment: str) -> None:
    files = _files(tmp_path, cluster=cluster, workloads=workloads)
    started = time.perf_counter()
    assert run_within(15, lambda: main(["advise", *files])) == 2
    elapsed = time.perf_counter() - started
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err[:500]
    assert captured.err.startswith(f"aim-partitioner advise: error: {files[1]} and {files[3]}: {fragment}"), \
        captured.err[:500]
    assert f"units of search work ((nodes + {KIND_WORK} x kinds) x pods + {PROBE_WORK} x workloads x sizes)," \
           f" more than {MAX_ADVICE_WORK:,} (about " in captured.err
    assert "Traceback" not in captured.err
    assert elapsed < 5, f"refused after {elapsed:.2f} s"


def _spec(name: str, memory: str, replicas: int = 1) -> planning.WorkloadSpec:
    return planning.WorkloadSpec.model_validate({"name": name, "memory": memory, "replicas": replicas})


def test_the_advice_work_bound_counts_nodes_kinds_and_probes() -> None:
    options = AdvisorOptions()
    pods = planning.workloads_from_specs([_spec(f"w{i}", "1Gi", replicas=1000) for i in range(10)])
    # MI300X with its modes free: one kind, four partition sizes (SPX, DPX, QPX, CPX); one distinct workload.
    fixed = (KIND_WORK * 1) * 10_000 + PROBE_WORK * 4
    most = (MAX_ADVICE_WORK - fixed) // 10_000
    cluster = [AdvisorNode(f"n{i}", "MI300X", 8) for i in range(most + 1)]
    assert advice_work(cluster, pods, options) == AdviceWork(most + 1, 1, 10_000, 1, 4)
    check_advice_size(cluster[:most], pods, options, "c.yaml", "w.yaml")  # just inside the bound: accepted
    with pytest.raises(AdvisorInputError, match=(
            rf"^c\.yaml and w\.yaml: {most + 1:,} nodes \(1 kind\) x 10,000 pods and 1 distinct workload x 4"
            rf" partition sizes are {(most + 1) * 10_000 + fixed:,} units of search work .*, more than"
            rf" {MAX_ADVICE_WORK:,} \(about \d+ s\); advise on a part")):
        check_advice_size(cluster, pods, options, "c.yaml", "w.yaml")
    with pytest.raises(AdvisorInputError, match=r"and built-in demo-workloads\.yaml: "):
        check_advice_size(cluster, pods, options, "c.yaml", None)
    # Kinds: MI300X nodes of 1 to 16 GPUs are 16 kinds, however many nodes there are of each.
    kinds = [AdvisorNode(f"k{i}", "MI300X", 1 + i % 16) for i in range(64)]
    assert advice_work(kinds, pods, options).kinds == 16
    assert advice_work(kinds, pods, options).total == (64 + KIND_WORK * 16) * 10_000 + PROBE_WORK * 4
    # Probes: distinct workloads (names and replicas aside) x partition sizes, PROBE_WORK each.
    per_spec = 1 + KIND_WORK + PROBE_WORK * 4
    specs = MAX_ADVICE_WORK // per_spec
    distinct = planning.workloads_from_specs([_spec(f"d{i}", f"{1024 + i}Mi") for i in range(specs)])
    assert advice_work(cluster[:1], distinct, options).total == specs * per_spec
    check_advice_size(cluster[:1], distinct, options, "c.yaml", "w.yaml")
    one_more = [*distinct, *planning.workloads_from_specs([_spec("x", "999Mi")])]
    with pytest.raises(AdvisorInputError, match=rf" and {specs + 1:,} distinct workloads x 4 partition sizes"):
        check_advice_size(cluster[:1], one_more, options, "c.yaml", "w.yaml")
