"""Native mode's half in the webhook: besides the required ``memory-mib Gt``, preferred node-affinity
terms that rank the smallest partition size that holds the model highest (choice.size_bounds), for
Pods and InferenceServices, owned through the record like every other field; and a model that no
partition holds is denied with the fix. In process (``review`` on the request bytes) and over HTTPS."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

import sizing
from extender.scheduler_config import FULLNESS_WEIGHT, MAX_NODE_SCORE, OTHER_SCORE_WEIGHTS, SIZE_WEIGHT
from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.admission.support import (
    FIXTURES,
    ISVC_KIND,
    POD_KIND,
    Answer,
    RunningWebhook,
    decode,
    demo_inventory,
    inventory_of,
    partition_labels,
    review_request,
    validate_inference_service,
    validate_pod,
)
from webhook.choice import MAX_PREFERRED_TERMS, size_bounds
from webhook.inventory import PartitionInventory
from webhook.mutation import Options
from webhook.review import review

MIB = 1 << 20
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
KNOWN_SIZES_MIB = sorted({m.memory_bytes // MIB for m in sizing.GEOMETRY.partition_modes()})


def fixture_object(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FIXTURES / name).read_text())["request"]["object"])


def answer(kind: dict[str, str], obj: dict[str, Any], inventory: PartitionInventory | None = None,
           operation: str = "CREATE") -> Answer:
    reply = review(orjson.dumps(review_request(kind, obj, operation)), (inventory or demo_inventory()).offers,
                   Options())
    assert reply.status == 200
    return decode(json.loads(reply.body))


def node_affinity(obj: Mapping[str, Any], spec_path: Sequence[str] = ("spec",)) -> dict[str, Any]:
    node: Any = obj
    for key in (*spec_path, "affinity", "nodeAffinity"):
        node = node[key]
    return dict(node)


def required_mib(affinity: Mapping[str, Any]) -> int:
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (expression,) = [e for e in term["matchExpressions"] if e["key"] == LABEL_MEMORY_MIB]
    return int(expression["values"][0]) + 1


def ours(affinity: Mapping[str, Any]) -> list[int]:
    """The Lt bounds of the webhook's terms (weight 100, one memory-mib Lt expression each)."""
    out = []
    for term in affinity.get(PREFERRED, []):
        (expression,) = term["preference"]["matchExpressions"]
        if expression["key"] == LABEL_MEMORY_MIB and expression["operator"] == "Lt":
            assert term["weight"] == 100
            out.append(int(expression["values"][0]))
    return out


def matches(expression: Mapping[str, Any], size_mib: int) -> bool:
    """kube-scheduler's Gt/Lt on a node label (the label is an integer)."""
    bound = int(expression["values"][0])
    return size_mib > bound if expression["operator"] == "Gt" else size_mib < bound


def scheduler_totals(affinity: Mapping[str, Any], nodes: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """What kube-scheduler 1.25 adds up under the native profile for feasible ``nodes`` (name ->
    (memory-mib, MostAllocated score 0..100)): NodeAffinity's raw score is the sum of the weights of
    the preferred terms a node matches, normalized to 0..100 by the highest among the nodes (integer
    division; helper.DefaultNormalizeScore), times the plugin weight; fullness times its weight;
    every other default plugin at its maximum for the node that should lose."""
    feasible = {n: v for n, v in nodes.items() if v[0] >= required_mib(affinity)}
    raw = {n: sum(t["weight"] for t in affinity.get(PREFERRED, [])
                  if all(matches(e, size) for e in t["preference"]["matchExpressions"]))
           for n, (size, _) in feasible.items()}
    top = max(raw.values())
    return {n: (MAX_NODE_SCORE * raw[n] // top if top else 0) * SIZE_WEIGHT + fullness * FULLNESS_WEIGHT
            for n, (_, fullness) in feasible.items()}


def every_known_size() -> PartitionInventory:
    """A node of every partition size of gpus.json (MI300X labels; only the size matters here)."""
    inventory = PartitionInventory()
    for size in KNOWN_SIZES_MIB:
        inventory.set_node(str(size), {LABEL_MEMORY_MIB: str(size), "amd.com/gpu-partition.count": "8"})
    return inventory


def test_a_pod_gets_one_term_per_size_that_holds_it_ranking_the_smallest_highest() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")  # Llama-3.1-8B fp16: ~20 GiB on 1 partition
    result = answer(POD_KIND, pod, inventory=every_known_size())
    mutated = result.applied_to(pod)
    validate_pod(mutated)
    affinity = node_affinity(mutated)
    need = required_mib(affinity)
    fitting = [s for s in KNOWN_SIZES_MIB if s >= need]
    assert 19 * 1024 < need < 21 * 1024 and len(fitting) > 5
    # Terms "memory-mib Lt <next size>": every size that holds it but the smallest bounds a term.
    assert ours(affinity) == fitting[1:]
    # The sizes are the nodes' (24 and 48 GiB in the demo cluster): one term.
    assert ours(node_affinity(answer(POD_KIND, fixture_object("review-pod-catalogue-model.json")).applied_to(
        fixture_object("review-pod-catalogue-model.json")))) == [48 * 1024]
    # The record owns them: a second call changes nothing.
    assert answer(POD_KIND, mutated, inventory=every_known_size()).ops == []
    assert json.loads(mutated["metadata"]["annotations"]["aim.amd.com/admission"])["set"]["preferred"] == ",".join(
        f"100<{bound}" for bound in fitting[1:])


def test_size_beats_fullness_under_the_native_profile() -> None:
    """Every node of a smaller size that holds the model outranks every node of a larger one, even
    the emptiest against the fullest with every other plugin maxed for the larger; nodes of one size
    are ordered by fullness; a size below the need is not feasible."""
    pod = fixture_object("review-pod-catalogue-model.json")
    affinity = node_affinity(answer(POD_KIND, pod, inventory=every_known_size()).applied_to(pod))
    others = MAX_NODE_SCORE * sum(OTHER_SCORE_WEIGHTS.values())
    sizes = [s for s in KNOWN_SIZES_MIB if s >= required_mib(affinity)]
    nodes = {f"{size}-{fullness}": (size, fullness) for size in sizes for fullness in (0, 100)}
    nodes["too-small"] = (16 * 1024, 100)
    totals = scheduler_totals(affinity, nodes)
    assert "too-small" not in totals
    ranked = sorted(totals, key=totals.__getitem__, reverse=True)
    order = sorted(totals, key=lambda n: (nodes[n][0], -nodes[n][1]))
    assert [nodes[n] for n in order] == [nodes[n] for n in ranked]
    for smaller, larger in itertools.pairwise(order):
        if nodes[smaller][0] < nodes[larger][0]:
            assert totals[smaller] - totals[larger] > others
    # Only the largest sizes among the feasible nodes (where the smallest one is missing): still
    # ranked by size after normalization against the best of them.
    two = {k: v for k, v in nodes.items() if v[0] in sizes[-3:-1]}
    totals = scheduler_totals(affinity, two)
    best = max(totals, key=totals.__getitem__)
    assert nodes[best] == (sizes[-3], 100)


def test_size_bounds_are_the_nodes_sizes_else_the_known_ones_and_are_capped() -> None:
    odd = inventory_of(odd=partition_labels("MI300X", "QPX", 50, 4), big=partition_labels("MI300X", "DPX", 96, 2))
    assert size_bounds(40 * 1024, odd.offers()) == (96 * 1024,)
    assert size_bounds(40 * 1024, ()) == tuple(s for s in KNOWN_SIZES_MIB if s >= 40 * 1024)[1:]
    many = inventory_of(**{f"n{i}": partition_labels("MI300X", "CPX", 25 + i, 8) for i in range(60)})
    bounds = size_bounds(1024, many.offers())
    assert len(bounds) == MAX_PREFERRED_TERMS and bounds == tuple(sorted(bounds))
    # The largest known size holds it alone: no term (it would add the same to every node).
    assert size_bounds(KNOWN_SIZES_MIB[-1], ()) == ()


def test_an_inference_service_gets_the_terms_in_its_predictor_and_they_follow_the_sizes() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    mutated = answer(ISVC_KIND, isvc).applied_to(isvc)
    validate_inference_service(mutated)
    affinity = node_affinity(mutated, ("spec", "predictor"))
    before = ours(affinity)
    assert before == [48 * 1024]  # the demo cluster's sizes: 24 and 48 GiB
    # A node with a new partition size appears: an UPDATE recomputes the webhook's terms (and only them).
    user_term = {"weight": 7, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}
    mutated["spec"]["predictor"]["affinity"]["nodeAffinity"][PREFERRED].insert(0, user_term)
    sizes = demo_inventory()
    sizes.set_node("odd", partition_labels("MI300X", "QPX", 50, 4))
    updated = answer(ISVC_KIND, mutated, inventory=sizes, operation="UPDATE").applied_to(mutated)
    validate_inference_service(updated)
    terms = node_affinity(updated, ("spec", "predictor"))[PREFERRED]
    assert terms[0] == user_term
    assert ours(node_affinity(updated, ("spec", "predictor"))) == sorted({*before, 50 * 1024})


def test_the_users_own_size_preferences_are_kept_and_nothing_is_added() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    own = {"weight": 50, "preference": {"matchExpressions": [{"key": LABEL_MEMORY_MIB, "operator": "Lt",
                                                               "values": ["60000"]}]}}
    pod["spec"]["affinity"] = {"nodeAffinity": {PREFERRED: [own]}}
    mutated = answer(POD_KIND, pod).applied_to(pod)
    assert node_affinity(mutated)[PREFERRED] == [own]
    assert "preferred" not in json.loads(mutated["metadata"]["annotations"]["aim.amd.com/admission"])["set"]


def test_too_many_preferred_terms_are_refused_naming_the_field() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    term = {"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}
    pod["spec"]["affinity"] = {"nodeAffinity": {PREFERRED: [term] * 100_000}}
    result = answer(POD_KIND, pod)
    assert not result.allowed
    assert "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution has 100000 terms" in (
        result.review["response"]["status"]["message"])


def test_over_https_an_object_nothing_holds_is_denied_and_one_that_fits_gets_the_terms(
        webhook: RunningWebhook) -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["metadata"]["annotations"]["aim.amd.com/model"] = "Qwen/Qwen3-235B-A22B"
    pod["spec"]["containers"][0]["resources"] = {"limits": {RESOURCE_NAME: "1"}}
    denied = webhook.review(POD_KIND, pod)
    assert not denied.allowed and denied.ops == []
    assert denied.response["status"]["code"] == 400
    message = denied.response["status"]["message"]
    assert "the largest partition of any known GPU is 288 GiB; fix: precision fp8 on 1 x 256 GiB" in message
    isvc = fixture_object("review-isvc-profile.json")
    mutated = webhook.review(ISVC_KIND, isvc).applied_to(isvc)
    validate_inference_service(mutated)
    assert ours(node_affinity(mutated, ("spec", "predictor")))
