"""What a pod asks for (annotations, partition count) and what that means in bytes."""

from __future__ import annotations

from typing import Any

import pytest

from extender.demand import SizingRequest, read_sizing_request, requested_partitions
from extender.reasons import GIB, ReasonCode
from extender.requirements import largest_partition_bytes, requirement_for


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": spec}


def limits_only(n: str) -> dict[str, Any]:
    return {"name": "c", "resources": {"limits": {"amd.com/gpu-partition": n}}}


def test_partition_count_comes_from_requests_or_else_limits_summed_over_containers() -> None:
    requests = {"name": "a", "resources": {"requests": {"amd.com/gpu-partition": "2"}, "limits": {"amd.com/gpu-partition": "2"}}}
    assert requested_partitions({"containers": [requests, limits_only("1")]}) == 3
    assert requested_partitions({"containers": [limits_only("1")], "initContainers": [limits_only("4")]}) == 4
    assert requested_partitions({"containers": [{"name": "cpu"}]}) == 0
    assert requested_partitions(None) == 0


def test_annotations_are_read_trimmed_and_empty_ones_ignored() -> None:
    request = read_sizing_request(pod({"aim.amd.com/model": " Qwen/Qwen3-8B ", "aim.amd.com/precision": ""},
                                      containers=[limits_only("1")]))
    assert request == SizingRequest(partitions=1, model="Qwen/Qwen3-8B")
    assert not read_sizing_request(pod({"other": "x"})).is_sized
    assert read_sizing_request("garbage") == SizingRequest(partitions=0)


def test_model_without_precision_is_sized_at_16_bits() -> None:
    implicit = requirement_for(SizingRequest(1, model="Qwen/Qwen3-8B"))
    explicit = requirement_for(SizingRequest(1, model="Qwen/Qwen3-8B", precision="fp16"))
    fp8 = requirement_for(SizingRequest(1, model="Qwen/Qwen3-8B", precision="fp8"))
    assert implicit.required_bytes == explicit.required_bytes and implicit.rejection is None
    assert "fp16" in implicit.subject
    # precision matters (8-bit weights are half the 16-bit ones), so the equality above is not vacuous
    assert fp8.required_bytes is not None and implicit.required_bytes is not None
    assert fp8.required_bytes < implicit.required_bytes


def test_more_partitions_need_less_memory_each() -> None:
    one = requirement_for(SizingRequest(1, model="meta-llama/Llama-3.3-70B-Instruct", precision="fp16"))
    eight = requirement_for(SizingRequest(8, model="meta-llama/Llama-3.3-70B-Instruct", precision="fp16"))
    assert one.required_bytes is not None and eight.required_bytes is not None
    assert eight.required_bytes < one.required_bytes / 4


def test_longer_context_needs_more_memory() -> None:
    short = requirement_for(SizingRequest(1, model="Qwen/Qwen3-8B", precision="fp16", max_model_len="4096"))
    long = requirement_for(SizingRequest(1, model="Qwen/Qwen3-8B", precision="fp16", max_model_len="32768"))
    assert long.required_bytes > short.required_bytes  # type: ignore[operator]


def test_memory_quantity_is_taken_as_the_per_partition_need() -> None:
    requirement = requirement_for(SizingRequest(1, memory="40Gi"))
    assert requirement.required_bytes == 40 * GIB and requirement.model_bytes == 40 * GIB


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (SizingRequest(1, model="no-such/model"), ReasonCode.UNKNOWN_MODEL),
        (SizingRequest(1, profile="no-such-profile"), ReasonCode.UNKNOWN_MODEL),
        (SizingRequest(1, model="Qwen/Qwen3-8B", precision="fp3"), ReasonCode.INVALID_ANNOTATION),
        (SizingRequest(1, model="Qwen/Qwen3-8B", max_model_len="many"), ReasonCode.INVALID_ANNOTATION),
        (SizingRequest(1, model="Qwen/Qwen3-8B", max_model_len="99999999"), ReasonCode.INVALID_ANNOTATION),
        (SizingRequest(1, memory="1Pi"), ReasonCode.NEVER_FITS),
        (SizingRequest(1, model="deepseek-ai/DeepSeek-V3", precision="fp16"), ReasonCode.NEVER_FITS),
    ],
    ids=["unknown model", "unknown profile", "unknown precision", "context not a number",
         "context beyond the model", "memory beyond any partition", "model beyond any partition"],
)
def test_pod_level_problems_are_unresolvable_rejections(request_: SizingRequest, code: ReasonCode) -> None:
    rejection = requirement_for(request_).rejection
    assert rejection is not None and rejection.code is code and rejection.unresolvable


def test_never_fits_message_names_model_size_and_a_fix_that_really_fits() -> None:
    rejection = requirement_for(SizingRequest(1, model="Qwen/Qwen3-235B-A22B", precision="fp16")).rejection
    assert rejection is not None
    assert rejection.message.startswith("Qwen/Qwen3-235B-A22B fp16 needs ")
    assert f"({largest_partition_bytes() // GIB} GiB)" in rejection.message
    assert "fix: precision fp8" in rejection.message
    fixed = requirement_for(SizingRequest(1, model="Qwen/Qwen3-235B-A22B", precision="fp8"))
    assert fixed.rejection is None  # the suggested fix does fit
