"""The 114 AIM profiles: count, ids, schemas, determinism, and that every placement is right.

Schemas are checked with jsonschema directly against the packaged schema files (not through the
library's own validate helper). Placement correctness is re-derived here: the chosen partition must
hold the per-partition need at vLLM's 0.9 utilization, and no smaller mode of the same product may
hold it at the same partition count.

"reference 4.x" in comments: the public sources listed in tests/sizing/__init__.py.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest

import sizing
from sizing import CATALOGUE, GEOMETRY, GIB, SizingError, estimate, generate_profiles

UTIL = 0.9  # vLLM default gpu-memory-utilization (docs.vllm.ai), which AMD's AIM profiles ship


def _schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files("sizing").joinpath(f"data/{name}").read_text(encoding="utf-8"))


PROFILE_VALIDATOR = jsonschema.Draft202012Validator(_schema("profile.schema.json"))
AIM_VALIDATOR = jsonschema.Draft202012Validator(_schema("aim-profile.schema.json"))


@pytest.fixture(scope="module")
def profiles() -> tuple[sizing.Profile, ...]:
    return generate_profiles()


@pytest.fixture(scope="module")
def docs(profiles: tuple[sizing.Profile, ...]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in profiles]


def test_schemas_are_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema("profile.schema.json"))
    jsonschema.Draft202012Validator.check_schema(_schema("aim-profile.schema.json"))


def test_count_is_38_models_times_three_precisions(profiles: tuple[sizing.Profile, ...]) -> None:
    assert len(profiles) == 114 == 38 * 3
    pairs = {(p.model_id, p.precision.value) for p in profiles}
    assert pairs == {(m, prec) for m in CATALOGUE for prec in ("fp16", "int8", "int4")}
    assert len(sizing.profiles_by_id()) == 114


def test_ids_are_unique_and_readable(profiles: tuple[sizing.Profile, ...]) -> None:
    ids = [p.id for p in profiles]
    assert len(set(ids)) == len(ids)
    assert "meta-llama--llama-3.1-8b-instruct--fp16" in ids  # the form docs/sizing-api.md promises
    for p in profiles:
        assert re.fullmatch(r"[a-z0-9._-]+--[a-z0-9._-]+--(fp16|int8|int4)", p.id), p.id
        assert sizing.get_profile(p.id.upper()) is sizing.profiles_by_id()[p.id]


def test_unknown_profile_names_the_closest() -> None:
    with pytest.raises(SizingError, match=r"meta-llama--llama-3\.1-8b-instruct--fp16"):
        sizing.get_profile("meta-llama--llama-3.1-8b-instruct--fp61")


def test_every_profile_validates_against_its_schema(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        errors = [e.message for e in PROFILE_VALIDATOR.iter_errors(doc)]
        assert not errors, (doc["id"], errors[:3])


def test_schema_rejects_a_broken_profile(docs: list[dict[str, Any]]) -> None:
    # guards the test above: the schema is strict enough to notice damage
    broken = json.loads(json.dumps(docs[0]))
    broken["products"][0]["partition_count"] = 3
    assert list(PROFILE_VALIDATOR.iter_errors(broken))
    broken = json.loads(json.dumps(docs[0]))
    del broken["memory"]["weights_bytes"]
    assert list(PROFILE_VALIDATOR.iter_errors(broken))


def test_every_aim_export_validates(profiles: tuple[sizing.Profile, ...]) -> None:
    count = 0
    for p in profiles:
        for _, doc in p.aim_profiles():
            errors = [e.message for e in AIM_VALIDATOR.iter_errors(doc)]
            assert not errors, (p.id, errors[:3])
            count += 1
    assert count > 114  # most profiles fit several products


def test_generation_is_deterministic(profiles: tuple[sizing.Profile, ...], docs: list[dict[str, Any]]) -> None:
    again = generate_profiles()
    assert [p.id for p in again] == [p.id for p in profiles]
    assert [p.to_dict() for p in again] == docs
    assert [p.aim_profiles() for p in again] == [p.aim_profiles() for p in profiles]
    # byte-stable serialisation as well
    assert json.dumps([p.to_dict() for p in again], sort_keys=True) == json.dumps(docs, sort_keys=True)


def test_every_product_is_placed(docs: list[dict[str, Any]]) -> None:
    names = [g.name for g in GEOMETRY.products]
    for doc in docs:
        assert [pl["product"] for pl in doc["products"]] == names, doc["id"]


def test_sizing_block_matches_the_documented_defaults(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        model = CATALOGUE[doc["model_id"]]
        s = doc["sizing"]
        assert s["max_model_len"] == min(model.max_context, 8192)  # DEFAULT_CONTEXT_CAP, docs/sizing-api.md
        assert s["gpu_memory_utilization"] == UTIL
        assert s["tensor_parallel"] == 1 and s["concurrency"] == 1
        m = doc["memory"]
        parts = m["weights_bytes"] + m["kv_cache_bytes"] + m["activation_bytes"] + m["overhead_bytes"]
        assert m["total_bytes"] == parts


def test_chosen_placement_fits_and_is_the_smallest_at_its_count(docs: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in docs:
        model = CATALOGUE[doc["model_id"]]
        for pl in doc["products"]:
            if not pl["fits"]:
                continue
            checked += 1
            product = GEOMETRY.product(pl["product"])
            count = pl["partition_count"]
            part = pl["partition_bytes"]
            # the partition really is one of the product's modes and its size is HBM / partitions
            mode = product.mode(pl["compute_mode"], pl["memory_mode"])
            assert mode is not None and mode.memory_bytes == part == product.hbm_bytes // pl["partitions_per_gpu"]
            assert pl["resources"] == {"amd.com/gpu-partition": str(count)}
            # it fits: per-partition need within 90 % of the partition
            need = estimate(model, doc["precision"], tensor_parallel=count)
            assert pl["per_partition_total_bytes"] == need.total_bytes
            assert need.total_bytes <= part * UTIL, (doc["id"], pl)
            # no smaller mode of this product holds it at the same count
            for other in product.modes:
                if other.memory_bytes < part:
                    assert need.total_bytes > other.memory_bytes * UTIL, (doc["id"], pl["product"], other.label)
            # and no mode at all holds it with fewer partitions of total memory not larger
            for fewer in (1, 2, 4, 8):
                if fewer >= count:
                    break
                try:
                    alt = estimate(model, doc["precision"], tensor_parallel=fewer)
                except SizingError:
                    continue
                for other in product.modes:
                    if fewer * other.memory_bytes <= count * part:
                        assert alt.total_bytes > other.memory_bytes * UTIL, (doc["id"], fewer, other.label)
            # engine args start vLLM with what was sized
            args = pl["engine_args"]
            assert args["tensor-parallel-size"] == count
            assert args["max-model-len"] == doc["sizing"]["max_model_len"]
            assert args["gpu-memory-utilization"] == UTIL
            assert 0 < pl["max_context"] <= model.max_context
            assert pl["max_context"] >= min(doc["sizing"]["max_model_len"] // 256 * 256, model.max_context)
    assert checked > 500


def test_small_models_take_the_smallest_partition(docs: list[dict[str, Any]]) -> None:
    # facts: an 8B model at fp16 (16 GiB of weights) fits one 24 GiB MI300X CPX partition
    # (reference 4.6) and AMD validates CPX with NPS4 (so that is preferred over CPX+NPS1)
    doc = next(d for d in docs if d["id"] == "meta-llama--llama-3.1-8b-instruct--fp16")
    mi300x = next(pl for pl in doc["products"] if pl["product"] == "MI300X")
    assert (mi300x["compute_mode"], mi300x["memory_mode"], mi300x["partition_count"]) == ("CPX", "NPS4", 1)
    assert mi300x["partition_bytes"] == 24 * GIB
    # Llama-3.3-70B at fp16 (131 GiB) needs more than one 96 GiB DPX partition on MI300X
    doc = next(d for d in docs if d["id"] == "meta-llama--llama-3.3-70b-instruct--fp16")
    mi300x = next(pl for pl in doc["products"] if pl["product"] == "MI300X")
    assert mi300x["partition_count"] * mi300x["partition_bytes"] >= 131 * GIB


def test_profiles_that_fit_nowhere_say_why(docs: list[dict[str, Any]]) -> None:
    unplaced = [(doc, pl) for doc in docs for pl in doc["products"] if not pl["fits"]]
    # DeepSeek-V3 at fp16 is 1250 GiB of weights: more than 8 x 128 GiB of MI300A
    assert any(doc["model_id"] == "deepseek-ai/DeepSeek-V3" and pl["product"] == "MI300A" for doc, pl in unplaced)
    for doc, pl in unplaced:
        assert pl["reason"] and "GiB" in pl["reason"], (doc["id"], pl)
        assert set(pl) == {"product", "fits", "reason"}
        # the reason is true: no valid partition count fits any mode of that product
        model = CATALOGUE[doc["model_id"]]
        for tp in (1, 2, 4, 8):
            try:
                need = estimate(model, doc["precision"], tensor_parallel=tp)
            except SizingError:
                continue
            assert all(need.total_bytes > m.memory_bytes * UTIL for m in GEOMETRY.product(pl["product"]).modes)


AIM_NAME = re.compile(r"^vllm-(?P<gpu>mi300x|mi300a|mi308x|mi325x|mi350x|mi355x)-(?P<prec>fp16|int8|int4)"
                      r"-tp(?P<tp>[1248])-latency-(?P<cpx>spx|dpx|tpx|qpx|cpx)-(?P<nps>nps1|nps2|nps4)\.yaml$")
GFX = {"MI300X": "gfx942", "MI300A": "gfx942", "MI308X": "gfx942", "MI325X": "gfx942",
       "MI350X": "gfx950", "MI355X": "gfx950"}  # ROCm GPU_ARCHS names of the MI300 / MI350 series


def test_aim_exports_are_named_and_marked_manual(profiles: tuple[sizing.Profile, ...]) -> None:
    paths: set[str] = set()
    for p in profiles:
        placed = {pl["product"]: pl for pl in p.to_dict()["products"] if pl["fits"]}
        exports = p.aim_profiles()
        assert len(exports) == len(placed), p.id
        for rel, doc in exports:
            assert rel not in paths
            paths.add(rel)
            org, name, file_name = rel.split("/")
            assert f"{org}/{name}" == p.model_id
            match = AIM_NAME.match(file_name)
            assert match, rel
            pl = placed[match["gpu"].upper()]
            assert match["prec"] == p.precision.value
            assert int(match["tp"]) == pl["partition_count"] == doc["metadata"]["gpu_count"]
            assert (match["cpx"].upper(), match["nps"].upper()) == (pl["compute_mode"], pl["memory_mode"])
            meta = doc["metadata"]
            assert meta["manual_selection_only"] is True  # partitions share the GPU's PCI id
            assert meta["engine"] == "vllm" and meta["metric"] == "latency"
            assert meta["gpu"] == match["gpu"].upper() and meta["precision"] == p.precision.value
            assert doc["model_id"] == p.model_id
            assert doc["engine_args"] == pl["engine_args"]
            assert doc["env_vars"]["GPU_ARCHS"] == GFX[meta["gpu"]]


def test_gemma3_fp16_profiles_start_in_vllm(docs: list[dict[str, Any]]) -> None:
    # vLLM: "The model type 'gemma3_text' does not support float16. Reason: Numerical instability.
    # Please use bfloat16 or float32 instead." The bytes per weight are the same in bfloat16.
    for doc in docs:
        if doc["model_id"].startswith("google/gemma-3") and doc["precision"] == "fp16":
            for pl in doc["products"]:
                if pl["fits"]:
                    assert pl["engine_args"]["dtype"] != "float16", (doc["id"], pl["product"])
