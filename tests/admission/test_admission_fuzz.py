"""Hostile AdmissionReviews: a seeded, bounded structure-aware fuzz over the case fixtures.

Each round mutates one review (annotation values and types, resource quantities, args, affinity,
nesting up to 1,000 levels, whole subtrees replaced by other JSON types) and asserts: an answer
within 1 s, HTTP 200 with a well-formed AdmissionReview echoing the uid (or 400 for a body that is
no review), a patch that applies cleanly to the object it was computed for, and never an unreadable
partition count in the patch.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import time
from typing import Any

import jsonpatch
import orjson

from sizing.bounded import parse_count
from sizing.contract import RESOURCE_NAME
from tests.admission.support import FIXTURES, demo_inventory, models_directory_catalogue
from webhook.mutation import Options
from webhook.review import review

SEED = 20261130
ROUNDS = 1500  # ~2 s on 2 shared cores
CASES = sorted(p.name for p in FIXTURES.glob("review-*.json"))
HOSTILE_VALUES: list[Any] = [
    "", " ", "1e999999", "inf", "NaN", "-1", "0", "²", "١٢", "9" * 5000, "x" * 70000, "a/b/c/../../d",
    "Llama-3.1-8B-Instruct", "fp7", "int4", "8192k", "--max-model-len=1", "~1/~0", None, True, 0, -5, 10**400,
    1.5, [], {}, ["--a"], {"nested": {"deeper": [1, 2, 3]}}, "2_0", "1.5", "2Gi", "\x00deep:1000\x00",
]
DEEP_MARKER = b'"\\u0000deep:1000\\u0000"'  # spliced into the text as an array 1,000 levels deep


def encoded(body: dict[str, Any]) -> bytes:
    """The review as JSON text, each deep marker replaced by 1,000 nested arrays (orjson writes 255
    levels at most; the API server sends whatever the user wrote, up to its own limits)."""
    try:
        raw = orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):  # 10**400 cannot be encoded: send it as text
        raw = json.dumps(body).encode()
    return raw.replace(DEEP_MARKER, b"[" * 1000 + b"1" + b"]" * 1000)


def patched_counts(ops: list[dict[str, Any]]) -> list[object]:
    """Every amd.com/gpu-partition value the patch writes."""
    found: list[object] = []
    for op in ops:
        value = op.get("value")
        if op["path"].endswith("/" + RESOURCE_NAME.replace("/", "~1")):
            found.append(value)
        elif isinstance(value, dict) and RESOURCE_NAME in value:
            found.append(value[RESOURCE_NAME])
        elif isinstance(value, dict):
            found += [v[RESOURCE_NAME] for v in value.values() if isinstance(v, dict) and RESOURCE_NAME in v]
    return found
FLAGS = ["--max-model-len", "--tensor-parallel-size", "-tp", "--gpu-memory-utilization", "--quantization",
         "--max-num-batched-tokens", "--dtype", "--max_model_len"]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": [value]}
    return value


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += paths(value, (*prefix, index))
    return out


def mutate(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    obj = body["request"]["object"]
    choice = rng.randrange(6)
    if choice == 0:  # an AIM annotation gets a hostile value
        notes = obj.setdefault("metadata", {}).setdefault("annotations", {})
        key = rng.choice(["aim.amd.com/model", "aim.amd.com/precision", "aim.amd.com/max-model-len",
                          "aim.amd.com/profile", "aim.amd.com/memory", "aim.amd.com/admission",
                          "serving.kserve.io/gpu-resource-types"])
        notes[key] = rng.choice(HOSTILE_VALUES)
    elif choice == 1:  # a vLLM flag with a hostile value, in either form
        target = obj["spec"].get("predictor", {}).get("model") or obj["spec"].get("containers", [{}])[0]
        flag, value = rng.choice(FLAGS), rng.choice(HOSTILE_VALUES)
        extra = [f"{flag}={value}"] if rng.random() < 0.5 else [flag, value]
        target["args"] = [*target.get("args", []), *extra] if isinstance(target.get("args"), list) else extra
    elif choice == 2:  # a partition quantity
        target = obj["spec"].get("predictor", {}).get("model") or obj["spec"].get("containers", [{}])[0]
        kind = rng.choice(["limits", "requests"])
        target.setdefault("resources", {}).setdefault(kind, {})["amd.com/gpu-partition"] = rng.choice(HOSTILE_VALUES)
    elif choice == 3:  # any node of the object replaced by another JSON type
        path = rng.choice(paths(obj)[1:])
        parent = obj
        for token in path[:-1]:
            parent = parent[token]
        parent[path[-1]] = rng.choice(HOSTILE_VALUES)
    elif choice == 4:  # deep nesting somewhere the webhook reads
        notes = obj.setdefault("metadata", {}).setdefault("annotations", {})
        notes["aim.amd.com/model"] = nested(rng.randrange(1, 200))
        obj["spec"]["affinity"] = nested(rng.randrange(1, 200))
    else:  # the review envelope itself
        request = body["request"]
        key = rng.choice(["uid", "kind", "operation", "object", "apiVersion"])
        if key == "apiVersion":
            body["apiVersion"] = rng.choice(HOSTILE_VALUES)
        else:
            request[key] = rng.choice([*HOSTILE_VALUES, "CREATE", "UPDATE", "DELETE"])
    return body


def test_hostile_reviews_always_get_a_well_formed_answer_and_a_patch_that_applies() -> None:
    rng = random.Random(SEED)
    inventory = demo_inventory()
    options = Options(resolve_model=models_directory_catalogue().get_model)
    originals = {name: json.loads((FIXTURES / name).read_text()) for name in CASES}
    slowest = 0.0
    outcomes: dict[str, int] = {}
    for _ in range(ROUNDS):
        body = mutate(rng, copy.deepcopy(originals[rng.choice(CASES)]))
        raw = encoded(body)
        started = time.perf_counter()
        reply = review(raw, inventory.offers, options)
        slowest = max(slowest, time.perf_counter() - started)
        assert reply.status in (200, 400)
        answer = json.loads(reply.body)
        outcomes[reply.result.value] = outcomes.get(reply.result.value, 0) + 1
        if reply.status == 400:
            assert isinstance(answer["error"], str) and answer["error"]
            continue
        response = answer["response"]
        assert response["uid"] == body["request"]["uid"]
        assert isinstance(response["allowed"], bool)
        for warning in response.get("warnings", []):
            assert isinstance(warning, str) and len(warning) <= 256 and "\n" not in warning
        if not response["allowed"]:
            assert response["status"]["code"] == 400 and response["status"]["message"]
        if "patch" in response:
            ops = json.loads(base64.b64decode(response["patch"]))
            jsonpatch.apply_patch(body["request"]["object"], ops)  # raises when it does not apply
            for count in patched_counts(ops):
                parse_count(RESOURCE_NAME, count)  # raises when the patch carries garbage on
    assert slowest < 1.0, f"slowest review took {slowest:.3f} s"
    # The fuzz reached every kind of answer (it is not stuck on one path).
    assert {"patched", "unchanged", "denied", "bad_request"} <= set(outcomes), outcomes


def test_a_patched_object_reviewed_again_gets_an_empty_patch() -> None:
    """reinvocationPolicy: IfNeeded calls the webhook again with its own result: nothing may change."""
    rng = random.Random(SEED + 1)
    inventory = demo_inventory()
    options = Options(resolve_model=models_directory_catalogue().get_model)
    originals = {name: json.loads((FIXTURES / name).read_text()) for name in CASES}
    patched = 0
    for _ in range(ROUNDS // 3):
        body = mutate(rng, copy.deepcopy(originals[rng.choice(CASES)]))
        try:
            raw = orjson.dumps(body)
        except (TypeError, orjson.JSONEncodeError):
            continue
        response = json.loads(review(raw, inventory.offers, options).body).get("response") or {}
        if "patch" not in response:
            continue
        patched += 1
        body["request"]["object"] = jsonpatch.apply_patch(body["request"]["object"],
                                                          json.loads(base64.b64decode(response["patch"])))
        again = json.loads(review(orjson.dumps(body), inventory.offers, options).body)["response"]
        assert "patch" not in again, (body["request"]["object"], json.loads(base64.b64decode(again["patch"])))
    assert patched > ROUNDS // 10
