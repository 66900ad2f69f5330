"""The data files are validated at load: a broken entry raises DataFileError naming entry and field.

Each test breaks one thing in a copy of the packaged models.json / gpus.json and loads the copy
with the same loaders the package uses at import (sizing.load_catalogue / sizing.load_geometry).
A control test loads the unbroken copies, so a loader that rejects everything fails too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sizing
from sizing import DataFileError, SizingError, load_catalogue, load_geometry

DATA = Path(__file__).resolve().parents[2] / "sizing" / "data"
MODELS = json.loads((DATA / "models.json").read_text(encoding="utf-8"))
GPUS = json.loads((DATA / "gpus.json").read_text(encoding="utf-8"))

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GEMMA = "google/gemma-3-1b-it"
V3 = "deepseek-ai/DeepSeek-V3"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _models_with(model_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(MODELS)
    entry = next(m for m in document["models"] if m["id"] == model_id)
    change(entry)
    return document


def _gpus_with(product: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(GPUS)
    change(next(p for p in document["products"] if p["name"] == product))
    return document


def test_unbroken_copies_load() -> None:
    catalogue = load_catalogue(copy.deepcopy(MODELS))
    geometry = load_geometry(copy.deepcopy(GPUS))
    assert len(catalogue) == 38
    assert [p.name for p in geometry.products] == ["MI300X", "MI300A", "MI308X", "MI325X", "MI350X", "MI355X"]
    # what the package loaded at import is exactly these files
    assert list(catalogue) == list(sizing.CATALOGUE)
    assert all(catalogue[m] == sizing.CATALOGUE[m] for m in catalogue)
    assert geometry.partition_modes() == sizing.GEOMETRY.partition_modes()
    assert issubclass(DataFileError, SizingError) and issubclass(DataFileError, ValueError)


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        entry[field] = value
    return change


def _drop(field: str) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        del entry[field]
    return change


@pytest.mark.parametrize(("model_id", "change", "field"), [
    (LLAMA, _drop("num_layers"), "num_layers"),
    (LLAMA, _drop("tied_embeddings"), "tied_embeddings"),
    (LLAMA, _drop("id"), "id"),
    (LLAMA, _set("head_dim", -128), "head_dim"),
    (LLAMA, _set("params_total", 0), "params_total"),
    (LLAMA, _set("max_context", "128k"), "max_context"),
    (LLAMA, _set("num_kv_heads", True), "num_kv_heads"),
    (LLAMA, _set("vocab_size", 128256.0), "vocab_size"),
    (LLAMA, _set("tied_embeddings", "no"), "tied_embeddings"),
    (LLAMA, _set("attention", "linear"), "attention"),
    (LLAMA, _set("num_kv_heads", 5), "num_kv_heads"),  # 32 heads do not split into 5 groups
    (LLAMA, _set("params_active", 9_000_000_000), "params_active"),  # more than params_total
    (LLAMA, _set("source", "hf-config, made-up-source"), "source"),
    (LLAMA, _set("aliases", "Llama-3.1-8B"), "aliases"),
    (LLAMA, _set("family", ""), "family"),
    (GEMMA, _set("sliding_window", None), "sliding_window"),
    (GEMMA, _set("num_global_layers", 27), "num_global_layers"),  # gemma-3-1b has 26 layers
    (V3, _set("mla", None), "mla"),
    (V3, _set("mla", {"kv_lora_rank": 512, "qk_rope_head_dim": -64}), "qk_rope_head_dim"),
    (MIXTRAL, _set("moe", {"num_experts": 8, "experts_per_token": 9}), "experts_per_token"),
    (MIXTRAL, _set("moe", {"num_experts": 8}), "experts_per_token"),
    (MIXTRAL, _set("moe", [8, 2]), "moe"),
    (MIXTRAL, _set("moe", {"num_experts": 8, "experts_per_token": 2, "shared": 1}), "shared"),
    (LLAMA, _set("num_layer", 32), "num_layer"),  # a misspelt field is not silently ignored
])
def test_broken_model_entry_names_entry_and_field(model_id: str, change: Callable[[dict[str, Any]], None],
                                                  field: str) -> None:
    document = _models_with(model_id, change)
    with pytest.raises(DataFileError) as err:
        load_catalogue(document)
    message = str(err.value)
    assert "models.json" in message
    if field != "id":
        assert model_id in message, message
    else:  # the entry has no id any more: the message gives its position
        index = [m.get("id") for m in MODELS["models"]].index(model_id)
        assert f"entry {index}" in message, message
    assert field in message, message
    assert "\n" not in message


def test_unknown_source_key_is_named() -> None:
    document = _models_with(LLAMA, _set("source", "hf-config, made-up-source"))
    with pytest.raises(DataFileError, match="made-up-source"):
        load_catalogue(document)


def test_models_file_level_errors() -> None:
    for version in (2, None, "1"):
        document = copy.deepcopy(MODELS)
        document["schema_version"] = version
        with pytest.raises(DataFileError, match=r"models\.json.*schema_version"):
            load_catalogue(document)
    document = copy.deepcopy(MODELS)
    document["models"] = []
    with pytest.raises(DataFileError, match="models"):
        load_catalogue(document)
    document = copy.deepcopy(MODELS)
    document["models"].append(copy.deepcopy(document["models"][0]))
    with pytest.raises(DataFileError, match="duplicate"):
        load_catalogue(document)


@pytest.mark.parametrize(("product", "change", "expected"), [
    ("MI300X", lambda p: p["combinations"].append({"compute": "SPX", "memory": "NPS4", "status": "driver"}),
     "SPX+NPS4"),  # memory partitions > compute partitions (AMD: "SPX+NPS4 configuration is invalid")
    ("MI300X", lambda p: p["combinations"].append({"compute": "DPX", "memory": "NPS4", "status": "driver"}),
     "DPX+NPS4"),
    ("MI300X", lambda p: p["combinations"].append({"compute": "TPX", "memory": "NPS1", "status": "driver"}),
     "TPX"),  # 8 XCDs do not split in 3
    ("MI300X", lambda p: p["combinations"].append({"compute": "XPX", "memory": "NPS1", "status": "driver"}),
     "XPX"),
    ("MI300X", lambda p: p["combinations"].append({"compute": "CPX", "memory": "NPS1", "status": "maybe"}),
     "maybe"),
    ("MI300X", lambda p: p.pop("hbm_bytes"), "hbm_bytes"),
    ("MI325X", lambda p: p.update(xcds=-8), "xcds"),
    ("MI325X", lambda p: p.update(cus_per_xcd=0), "cus_per_xcd"),
    ("MI350X", lambda p: p.update(gfx_target_version="gfx950"), "gfx_target_version"),
    ("MI350X", lambda p: p.update(pci_device_ids=["0xZZ"]), "pci_device_ids"),
    ("MI308X", lambda p: p.update(sources=["made-up-source"]), "made-up-source"),
    ("MI300A", lambda p: p.update(combinations=[]), "'combinations' must have at least 1"),
    ("MI300A", lambda p: p["combinations"][1].pop("status"), "'combinations[1].status' is missing"),
    ("MI355X", lambda p: p.update(hbm_bytes=2.0**40), "'hbm_bytes' must be of type integer"),
    ("MI355X", lambda p: p.update(hbm_gb=288), "hbm_gb"),  # a misspelt field is not silently ignored
])
def test_broken_product_names_product_and_field(product: str, change: Callable[[dict[str, Any]], None],
                                                expected: str) -> None:
    document = _gpus_with(product, change)
    with pytest.raises(DataFileError) as err:
        load_geometry(document)
    message = str(err.value)
    assert "gpus.json" in message and product in message, message
    assert expected in message, message


def test_gpus_file_level_errors() -> None:
    document = copy.deepcopy(GPUS)
    document["schema_version"] = 2
    with pytest.raises(DataFileError, match=r"gpus\.json.*schema_version.* must be 1, got 2"):
        load_geometry(document)
    document = copy.deepcopy(GPUS)
    document["products"] = []
    with pytest.raises(DataFileError, match=r"gpus\.json"):
        load_geometry(document)


@pytest.mark.parametrize("schema_file", ["models.schema.json", "gpus.schema.json"])
def test_schemas_are_valid_draft_2020_12_and_describe_every_field(schema_file: str) -> None:
    import jsonschema

    schema = json.loads((DATA / schema_file).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def undescribed(node: Any, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        missing = [f"{path}.{name}" for name, sub in node.get("properties", {}).items()
                   if isinstance(sub, dict) and "description" not in sub]
        children = [*node.get("properties", {}).items(), *node.get("$defs", {}).items()]
        if isinstance(node.get("items"), dict):
            children.append(("[]", node["items"]))
        return missing + [m for name, sub in children for m in undescribed(sub, f"{path}.{name}")]

    assert undescribed(schema, "") == []


def test_document_that_is_not_an_object_is_refused() -> None:
    for document in ([], "models", None, 1):
        with pytest.raises(DataFileError, match=r"models\.json: field '<document>' must be of type object"):
            load_catalogue(document)
        with pytest.raises(DataFileError, match=r"gpus\.json: field '<document>' must be of type object"):
            load_geometry(document)


def test_packaged_geometry_has_no_invalid_combination() -> None:
    # AMD: memory partitions must not outnumber compute partitions (mi300x overview / quick-start)
    for product in GPUS["products"]:
        for combo in product["combinations"]:
            compute = {"SPX": 1, "DPX": 2, "TPX": 3, "QPX": 4, "CPX": product["xcds"]}[combo["compute"]]
            assert int(combo["memory"][3:]) <= compute, (product["name"], combo)
