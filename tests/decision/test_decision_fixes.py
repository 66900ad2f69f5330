"""decision.fixes, the one fix-suggestion engine: every fix it offers really fits (sized again with
sizing, on the smallest offered partition), and the extender and the webhook word the same
situation with the same clause."""

from __future__ import annotations

import pytest

import sizing
from decision.fits import Offer, Target, product_offers
from decision.fixes import NO_FIX, Fix, fix_clause, fixes
from decision.pod_demand import PodDemand
from decision.requirement import Sizer
from sizing import Precision
from webhook.choice import decide

GIB = 1 << 30
KNOWN = product_offers(sizing.GEOMETRY)
CPX_ONLY = (Offer(24 * GIB, 64),)  # an MI300X fleet in CPX: 8 GPUs x 8 partitions of 24 GiB


def target(model: str, precision: Precision, max_model_len: int | None = None, partitions: int | None = 1,
           memory_bytes: int | None = None) -> Target:
    return Target(sizing.CATALOGUE.get_model(model), precision, max_model_len, partitions, memory_bytes)


def assert_true(workload: Target, found: tuple[Fix, ...], offers: tuple[Offer, ...]) -> None:
    """Each fix, followed, fits its partition, and no smaller offered partition (on a node with
    enough of them) would hold it."""
    for fix in found:
        precision = Precision(fix.change.split()[1]) if fix.change.startswith("precision") else workload.precision
        context = int(fix.change.split()[1]) if fix.change.startswith("max-model-len") else workload.max_model_len
        need = sizing.partition_requirement(workload.model, precision, partitions=fix.fit.partitions,
                                            max_model_len=context)
        assert need.fits(fix.fit.partition_bytes), fix.text
        enough = [o.memory_bytes for o in offers if o.count is None or o.count >= fix.fit.partitions]
        assert fix.fit.partition_bytes == min(size for size in enough if need.fits(size)), fix.text


def test_a_model_no_partition_holds_gets_a_lower_precision_and_more_partitions() -> None:
    workload = target("deepseek-ai/DeepSeek-V3", Precision.FP16)  # 671B x 2 bytes = 1250 GiB
    found = fixes(workload, KNOWN)
    assert [fix.text for fix in found] == ["precision fp8 on 4 x 192 GiB", "8 partitions of 192 GiB"]
    assert_true(workload, found, KNOWN)


def test_the_cluster_s_own_sizes_and_counts_are_what_the_fixes_name() -> None:
    workload = target("Qwen/Qwen3-32B", Precision.FP16, max_model_len=40960, partitions=None)
    found = fixes(workload, CPX_ONLY)
    assert [fix.text for fix in found] == ["precision fp8 on 4 x 24 GiB", "max-model-len 8192 on 4 x 24 GiB"]
    assert_true(workload, found, CPX_ONLY)
    # With the count fixed by the user, more partitions is a fix too.
    fixed = fixes(target("Qwen/Qwen3-32B", Precision.FP16), CPX_ONLY)
    assert [fix.text for fix in fixed] == ["precision fp8 on 2 x 24 GiB", "4 partitions of 24 GiB"]


def test_no_fix_proposes_a_higher_precision() -> None:
    found = fixes(target("deepseek-ai/DeepSeek-V3", Precision.INT4), KNOWN)
    assert found and not any(fix.change.startswith("precision") for fix in found)


def test_nothing_that_fits_says_so() -> None:
    assert fix_clause(target("Qwen/Qwen3-32B", Precision.FP16), (Offer(GIB, 8),)) == NO_FIX


@pytest.mark.parametrize("model, precision, memory", [
    ("Qwen/Qwen3-235B-A22B", Precision.FP16, None),  # 491 GiB at 1 partition
    ("deepseek-ai/DeepSeek-V3", Precision.FP8, None),
    ("meta-llama/Llama-3.1-8B-Instruct", Precision.FP16, 300 * GIB),  # aim.amd.com/memory beyond any partition
])
def test_the_extender_and_the_webhook_word_it_alike(model: str, precision: Precision, memory: int | None) -> None:
    """One partition asked for, no node of the cluster labelled: the extender rejects the pod and the
    webhook denies the object with the same fix clause, the engine's."""
    clause = fix_clause(target(model, precision, memory_bytes=memory), KNOWN)
    assert clause.startswith("; fix: ")
    demand = PodDemand(1, model=model, precision=precision.value,
                       memory_text=None if memory is None else f"{memory // GIB}Gi", memory_bytes=memory)
    rejection = Sizer().requirement(demand).rejection
    assert rejection is not None and rejection.message.endswith(clause), rejection.message
    outcome = decide(target(model, precision, memory_bytes=memory), ())
    assert outcome.choice is None and outcome.denial.endswith(clause), outcome.denial
