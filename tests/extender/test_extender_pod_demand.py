"""What a pod asks for (annotations, partition count), bounded, and what that means in bytes."""

from __future__ import annotations

from typing import Any

import pytest

from decision.pod_demand import PodDemand, bound_pod_usage, read_pod_demand, requested_partitions
from decision.reasons import ReasonCode
from decision.requirement import Sizer
from decision.text import GIB
from sizing.bounded import BoundedValueError

SIZER = Sizer()


def pod(annotations: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": spec}


def limits_only(n: Any) -> dict[str, Any]:
    return {"name": "c", "resources": {"limits": {"amd.com/gpu-partition": n}}}


def test_partition_count_comes_from_requests_or_else_limits_summed_over_containers() -> None:
    requests = {
        "name": "a",
        "resources": {"requests": {"amd.com/gpu-partition": "2"}, "limits": {"amd.com/gpu-partition": "2"}},
    }
    assert requested_partitions({"containers": [requests, limits_only("1")]}) == 3
    assert requested_partitions({"containers": [limits_only("1")], "initContainers": [limits_only("4")]}) == 4
    assert requested_partitions({"containers": [{"name": "cpu"}]}) == 0
    assert requested_partitions(None) == 0


@pytest.mark.parametrize("count", ["١", "²", "1e400", "inf", "NaN", "-1", "9" * 4400, [[["1"]]], "1.5", "2000"])
def test_a_count_that_is_not_a_small_whole_number_is_named(count: Any) -> None:
    with pytest.raises(BoundedValueError, match=r"spec\.containers\[0\]\.resources\.limits\[amd.com/gpu-partition\]"):
        requested_partitions({"containers": [limits_only(count)]})
    demand = read_pod_demand(pod(containers=[limits_only(count)]))
    assert demand.problem is not None and demand.problem.startswith("invalid pod request spec.containers[0]")
    rejection = SIZER.requirement(demand).rejection
    assert rejection is not None and rejection.code is ReasonCode.INVALID_ANNOTATION and rejection.unresolvable


def test_annotations_are_read_trimmed_and_empty_ones_ignored() -> None:
    demand = read_pod_demand(
        pod({"aim.amd.com/model": " Qwen/Qwen3-8B ", "aim.amd.com/precision": ""}, containers=[limits_only("1")])
    )
    assert demand == PodDemand(partitions=1, model="Qwen/Qwen3-8B")
    assert not read_pod_demand(pod({"other": "x"})).is_sized
    assert read_pod_demand("garbage") == PodDemand(partitions=0)


@pytest.mark.parametrize(
    ("annotation", "value", "fragment"),
    [
        ("aim.amd.com/memory", "1e999999", "is far too large"),
        ("aim.amd.com/memory", "1e4400", "'1e4400': is"),
        ("aim.amd.com/memory", "inf", "is not a Kubernetes quantity"),
        ("aim.amd.com/memory", "Infinity", "is not a Kubernetes quantity"),
        ("aim.amd.com/memory", "NaN", "is not a Kubernetes quantity"),
        ("aim.amd.com/memory", "2Ei", "is more than"),
        ("aim.amd.com/memory", "0", "must be more than 0 bytes"),
        ("aim.amd.com/max-model-len", "²", "is not a whole number in ASCII digits"),
        ("aim.amd.com/max-model-len", "١٠٢٤", "is not a whole number in ASCII digits"),
        ("aim.amd.com/max-model-len", "9" * 4400, "is longer than 64 characters"),
        ("aim.amd.com/max-model-len", "99999999", "is more than"),
        ("aim.amd.com/max-model-len", "0", "is less than 1"),
        ("aim.amd.com/model", ["a"] * 3, "must be a string, not list"),
        ("aim.amd.com/model", "x" * 300, "is longer than 256 characters"),
        ("aim.amd.com/precision", {"deep": [[[[]]]]}, "must be a string, not dict"),
    ],
)
def test_an_unreadable_annotation_rejects_every_node_naming_it(annotation: str, value: Any, fragment: str) -> None:
    demand = read_pod_demand(
        pod({"aim.amd.com/model": "Qwen/Qwen3-8B", annotation: value}, containers=[limits_only("1")])
    )
    assert demand.problem is not None and f"pod annotation {annotation}" in demand.problem
    assert fragment in demand.problem and len(demand.problem) < 200
    rejection = SIZER.requirement(demand).rejection
    assert rejection is not None and rejection.unresolvable and annotation in rejection.message


def test_deeply_nested_values_are_refused_without_recursion() -> None:
    deep: Any = "1"
    for _ in range(5000):
        deep = [deep]
    demand = read_pod_demand(pod({"aim.amd.com/memory": deep}, containers=[limits_only(deep)]))
    assert demand.problem is not None and "must be a string, not list" in demand.problem


def test_model_without_precision_is_sized_at_16_bits() -> None:
    implicit = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B"))
    explicit = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B", precision="fp16"))
    fp8 = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B", precision="fp8"))
    assert implicit.required_bytes == explicit.required_bytes and implicit.rejection is None
    assert "fp16" in implicit.subject
    # precision matters (8-bit weights are half the 16-bit ones), so the equality above is not vacuous
    assert fp8.required_bytes is not None and implicit.required_bytes is not None
    assert fp8.required_bytes < implicit.required_bytes


def test_more_partitions_need_less_memory_each() -> None:
    one = SIZER.requirement(PodDemand(1, model="meta-llama/Llama-3.3-70B-Instruct", precision="fp16"))
    eight = SIZER.requirement(PodDemand(8, model="meta-llama/Llama-3.3-70B-Instruct", precision="fp16"))
    assert one.required_bytes is not None and eight.required_bytes is not None
    assert eight.required_bytes < one.required_bytes / 4


def test_longer_context_needs_more_memory() -> None:
    short = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B", precision="fp16", max_model_len=4096))
    long = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B", precision="fp16", max_model_len=32768))
    assert long.required_bytes > short.required_bytes  # type: ignore[operator]


def test_memory_quantity_is_taken_as_the_per_partition_need() -> None:
    demand = read_pod_demand(pod({"aim.amd.com/memory": "40Gi"}, containers=[limits_only("1")]))
    requirement = SIZER.requirement(demand)
    assert requirement.required_bytes == 40 * GIB and requirement.model_bytes == 40 * GIB
    assert "40Gi per partition" in requirement.subject


@pytest.mark.parametrize(
    ("demand", "code"),
    [
        (PodDemand(1, model="no-such/model"), ReasonCode.UNKNOWN_MODEL),
        (PodDemand(1, profile="no-such-profile"), ReasonCode.UNKNOWN_MODEL),
        (PodDemand(1, model="Qwen/Qwen3-8B", precision="fp3"), ReasonCode.INVALID_ANNOTATION),
        (PodDemand(1, model="Qwen/Qwen3-8B", max_model_len=99999999), ReasonCode.INVALID_ANNOTATION),
        (PodDemand(1, memory_bytes=2**50, memory_text="1Pi"), ReasonCode.NEVER_FITS),
        (PodDemand(1, model="deepseek-ai/DeepSeek-V3", precision="fp16"), ReasonCode.NEVER_FITS),
    ],
    ids=[
        "unknown model",
        "unknown profile",
        "unknown precision",
        "context beyond the model",
        "memory beyond any partition",
        "model beyond any partition",
    ],
)
def test_pod_level_problems_are_unresolvable_rejections(demand: PodDemand, code: ReasonCode) -> None:
    rejection = SIZER.requirement(demand).rejection
    assert rejection is not None and rejection.code is code and rejection.unresolvable


def test_never_fits_message_names_model_size_and_a_fix_that_really_fits() -> None:
    rejection = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-235B-A22B", precision="fp16")).rejection
    assert rejection is not None
    assert rejection.message.startswith("Qwen/Qwen3-235B-A22B fp16 needs ")
    assert f"({SIZER.largest_partition_bytes // GIB} GiB)" in rejection.message
    assert "fix: precision fp8" in rejection.message
    fixed = SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-235B-A22B", precision="fp8"))
    assert fixed.rejection is None  # the suggested fix does fit


def test_bound_pods_hold_their_partitions_until_they_finish() -> None:
    running = {"spec": {"nodeName": "n1", "containers": [limits_only("2")]}, "status": {"phase": "Running"}}
    assert bound_pod_usage(running) is not None and bound_pod_usage(running).partitions == 2  # type: ignore[union-attr]
    assert bound_pod_usage({**running, "status": {"phase": "Succeeded"}}) is None
    assert bound_pod_usage({"spec": {"containers": [limits_only("2")]}}) is None  # not bound
    assert bound_pod_usage({"spec": {"nodeName": "n1", "containers": [limits_only("١")]}}) is None


def test_a_new_catalogue_replaces_the_memo_so_a_model_once_unknown_is_found() -> None:
    import dataclasses

    import sizing

    base = sizing.CATALOGUE
    known = base["Qwen/Qwen3-8B"]
    renamed = dataclasses.replace(known, id="example-org/qwen3-8b-finetune", aliases=())
    sizer = Sizer(catalogue=sizing.Catalogue(tuple(base.values()), base.data_version))
    demand = PodDemand(1, model="example-org/qwen3-8b-finetune", precision="fp16")
    unknown = sizer.requirement(demand).rejection
    assert unknown is not None and unknown.code is ReasonCode.UNKNOWN_MODEL
    sizer.catalogue = sizing.Catalogue((*base.values(), renamed), base.data_version)
    found = sizer.requirement(demand)
    assert (
        found.rejection is None
        and found.required_bytes == SIZER.requirement(PodDemand(1, model="Qwen/Qwen3-8B")).required_bytes
    )
