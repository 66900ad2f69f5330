"""Fact-check sizing/data/models.json against independently published numbers.

The expected values below are transcribed by hand from the sources named next to each table
(keras-hub preset counts, Hugging Face model cards, config.json mirrors: "reference 4.4" below).
They are deliberately NOT read from the data file, so a wrong number in the catalogue makes these
tests fail. The loader (sizing/catalogue.py) is not imported: this checks the data file on its own.

"reference 4.x" in comments: the public sources listed in tests/sizing/__init__.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.sizing.published_facts import PUBLISHED_PARAMS, B

MODELS_JSON = Path(__file__).resolve().parents[2] / "sizing" / "data" / "models.json"

# One HF repo id: "owner/name", letters, digits, '.', '_', '-'.
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

ENTRY_KEYS = [
    "id", "aliases", "family", "architecture", "params_total", "params_active", "params_embedding",
    "num_layers", "num_attention_heads", "num_kv_heads", "head_dim", "hidden_size",
    "intermediate_size", "vocab_size", "tied_embeddings", "max_context", "attention",
    "sliding_window", "num_global_layers", "mla", "moe", "checkpoint_dtype", "float16_supported", "source",
    "params_source",
]


# Published active parameters for MoE models (vendor model cards / READMEs).
PUBLISHED_ACTIVE: dict[str, tuple[float, str]] = {
    "Qwen/Qwen3-30B-A3B": (3.3 * B, "Qwen3-30B-A3B card: 3.3B activated"),
    "Qwen/Qwen3-235B-A22B": (22 * B, "Qwen3-235B-A22B card: 22B activated"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (12.9 * B, "Mistral: 12.9B active per token"),
    "deepseek-ai/DeepSeek-V3": (37 * B, "DeepSeek-V3 card: 37B activated"),
}

# KV-cache relevant facts: id -> (num_layers, num_kv_heads, head_dim).
# Transcribed from the config.json mirrors (reference 4.4: mlc-ai/mlc-llm model_preset.py,
# citsjtu2020/LLM-Prof sglang/Model_Config.md, Gemma/Phi config mirrors on the Hub).
KV_FACTS_REFERENCE: dict[str, tuple[int, int, int]] = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": (22, 4, 64),
    "meta-llama/Llama-3.2-1B-Instruct": (16, 8, 64),
    "meta-llama/Llama-3.2-3B-Instruct": (28, 8, 128),
    "meta-llama/Llama-3.1-8B-Instruct": (32, 8, 128),
    "meta-llama/Llama-3.3-70B-Instruct": (80, 8, 128),
    "Qwen/Qwen2.5-0.5B-Instruct": (24, 2, 64),
    "Qwen/Qwen2.5-1.5B-Instruct": (28, 2, 128),
    "Qwen/Qwen2.5-3B-Instruct": (36, 2, 128),
    "Qwen/Qwen2.5-7B-Instruct": (28, 4, 128),
    "Qwen/Qwen3-4B": (36, 8, 128),
    "Qwen/Qwen3-8B": (36, 8, 128),
    "Qwen/Qwen3-14B": (40, 8, 128),
    "Qwen/Qwen3-32B": (64, 8, 128),
    "Qwen/Qwen3-30B-A3B": (48, 4, 128),
    "google/gemma-3-1b-it": (26, 1, 256),
    "google/gemma-3-4b-it": (34, 4, 256),
    "google/gemma-3-12b-it": (48, 8, 256),
    "google/gemma-3-27b-it": (62, 16, 128),
    "mistralai/Mistral-7B-Instruct-v0.3": (32, 8, 128),
    "mistralai/Mistral-Small-24B-Instruct-2501": (40, 8, 128),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (32, 8, 128),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": (28, 4, 128),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": (48, 8, 128),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": (64, 8, 128),
    "microsoft/Phi-3-mini-4k-instruct": (32, 32, 96),
    "microsoft/phi-4": (40, 10, 128),
    "microsoft/Phi-4-mini-instruct": (32, 8, 128),
}

# Same facts for models not in the reference table, from config.json copies on the Hub:
# Qwen3-235B-A22B: zyzshishui/slime scripts/models/qwen3-235B-A22B.sh (94 layers, 4 query groups, kv-channels 128);
# R1-Distill-Qwen-1.5B: oumi-ai/MiniMath-R1-1.5B config.json (_name_or_path the distill);
# aya-expanse-8b / 32b: kevinbazira/aya-expanse-8b-awq-4bit and jebish7/aya-expanse-32b config.json.
KV_FACTS_MIRRORS: dict[str, tuple[int, int, int]] = {
    "Qwen/Qwen3-235B-A22B": (94, 4, 128),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": (28, 2, 128),
    "CohereLabs/aya-expanse-8b": (32, 8, 128),
    "CohereLabs/aya-expanse-32b": (40, 8, 128),
}

# max_position_embeddings of the exact checkpoint (reference 4.4 and the config mirrors above).
MAX_CONTEXT: dict[str, int] = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 2048,
    "meta-llama/Llama-3.1-8B-Instruct": 131072,
    "Qwen/Qwen2.5-7B-Instruct": 32768,  # the Instruct config, not the 131072 of the base config
    "Qwen/Qwen3-8B": 40960,
    "google/gemma-3-1b-it": 32768,
    "google/gemma-3-27b-it": 131072,
    "microsoft/Phi-3-mini-4k-instruct": 4096,
    "microsoft/phi-4": 16384,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": 131072,
    "deepseek-ai/DeepSeek-V3": 163840,
    "CohereLabs/aya-expanse-32b": 8192,
}

# (vocab_size, hidden_size): reference 4.4 and the config mirrors. Gemma-3 4B/12B/27B-it use the
# text_config vocab 262208 (unsloth/gemma-3-12b-it-GGUF config.json; the Gemma3TextConfig default),
# the text-only 1B uses 262144.
EMBEDDING_SHAPES: dict[str, tuple[int, int]] = {
    "meta-llama/Llama-3.1-8B-Instruct": (128256, 4096),
    "Qwen/Qwen2.5-7B-Instruct": (152064, 3584),
    "Qwen/Qwen3-32B": (151936, 5120),
    "google/gemma-3-1b-it": (262144, 1152),
    "google/gemma-3-12b-it": (262208, 3840),
    "mistralai/Mistral-7B-Instruct-v0.3": (32768, 4096),
    "mistralai/Mistral-Small-24B-Instruct-2501": (131072, 5120),
    "microsoft/Phi-4-mini-instruct": (200064, 3072),
    "microsoft/phi-4": (100352, 5120),
    "CohereLabs/aya-expanse-8b": (256000, 4096),
    "deepseek-ai/DeepSeek-V3": (129280, 7168),
}

# Embedding sharing (reference 4.4 "tied" column and config mirrors).
TIED: dict[str, bool] = {
    "meta-llama/Llama-3.2-1B-Instruct": True,
    "meta-llama/Llama-3.1-8B-Instruct": False,
    "Qwen/Qwen2.5-0.5B-Instruct": True,
    "Qwen/Qwen3-4B": True,
    "Qwen/Qwen3-8B": False,
    "google/gemma-3-4b-it": True,
    "microsoft/Phi-4-mini-instruct": True,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": False,  # unlike Qwen2.5-1.5B
}

# Gemma 3: 5 local sliding-window layers per global layer; window 512 (1B), 1024 (4B-27B).
GEMMA3_ATTENTION: dict[str, tuple[int, int]] = {
    "google/gemma-3-1b-it": (512, 4),
    "google/gemma-3-4b-it": (1024, 5),
    "google/gemma-3-12b-it": (1024, 8),
    "google/gemma-3-27b-it": (1024, 10),
}

# MoE routing from the configs (num_local_experts / num_experts / n_routed_experts, num_experts_per_tok).
MOE_FACTS: dict[str, tuple[int, int]] = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (8, 2),
    "Qwen/Qwen3-30B-A3B": (128, 8),
    "Qwen/Qwen3-235B-A22B": (128, 8),
    "deepseek-ai/DeepSeek-V3": (256, 8),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    with MODELS_JSON.open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in document["models"]}


def _within(actual: float, expected: float, tolerance: float) -> bool:
    return abs(actual - expected) <= tolerance * expected


# --- (1) ids -----------------------------------------------------------------------------------

def test_exactly_38_unique_well_formed_ids(document: dict[str, Any]) -> None:
    ids = [entry["id"] for entry in document["models"]]
    assert len(ids) == 38
    assert len(set(ids)) == 38, sorted({i for i in ids if ids.count(i) > 1})
    bad = [i for i in ids if not HF_ID.match(i)]
    assert not bad, f"ids that are not owner/name: {bad}"


def test_catalogue_is_exactly_the_published_model_list(by_id: dict[str, dict[str, Any]]) -> None:
    assert set(by_id) == set(PUBLISHED_PARAMS)


def test_aliases_are_ids_and_do_not_collide(document: dict[str, Any]) -> None:
    ids = {entry["id"].lower() for entry in document["models"]}
    seen: set[str] = set()
    for entry in document["models"]:
        for alias in entry["aliases"]:
            assert HF_ID.match(alias), (entry["id"], alias)
            assert alias.lower() not in ids, f"alias {alias} shadows a catalogue id"
            assert alias.lower() not in seen, f"alias {alias} used twice"
            seen.add(alias.lower())
    # Aya Expanse moved from CohereForAI/ to CohereLabs/; the old ids keep working.
    assert "cohereforai/aya-expanse-8b" in seen and "cohereforai/aya-expanse-32b" in seen


# --- (2) parameter counts against published numbers ---------------------------------------------

@pytest.mark.parametrize("model_id", sorted(PUBLISHED_PARAMS))
def test_params_total_matches_published_count(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    expected, where = PUBLISHED_PARAMS[model_id]
    actual = by_id[model_id]["params_total"]
    assert _within(actual, expected, 0.02), f"{model_id}: params_total {actual:,} vs {expected:,.0f} ({where})"


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_ACTIVE))
def test_moe_active_params_match_published(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    expected, where = PUBLISHED_ACTIVE[model_id]
    actual = by_id[model_id]["params_active"]
    assert _within(actual, expected, 0.03), f"{model_id}: params_active {actual:,} vs {expected:,.0f} ({where})"


# --- (3) KV-cache relevant architecture facts ---------------------------------------------------

@pytest.mark.parametrize("model_id", sorted({**KV_FACTS_REFERENCE, **KV_FACTS_MIRRORS}))
def test_kv_relevant_fields_match_config(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    expected = {**KV_FACTS_REFERENCE, **KV_FACTS_MIRRORS}[model_id]
    entry = by_id[model_id]
    assert (entry["num_layers"], entry["num_kv_heads"], entry["head_dim"]) == expected


def test_kv_table_covers_at_least_20_models() -> None:
    assert len(KV_FACTS_REFERENCE) + len(KV_FACTS_MIRRORS) >= 20


@pytest.mark.parametrize("model_id", sorted(MAX_CONTEXT))
def test_max_context_is_the_checkpoint_value(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    assert by_id[model_id]["max_context"] == MAX_CONTEXT[model_id]


@pytest.mark.parametrize("model_id", sorted(EMBEDDING_SHAPES))
def test_embedding_shapes(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    entry = by_id[model_id]
    assert (entry["vocab_size"], entry["hidden_size"]) == EMBEDDING_SHAPES[model_id]


@pytest.mark.parametrize("model_id", sorted(TIED))
def test_tied_embeddings(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    assert by_id[model_id]["tied_embeddings"] is TIED[model_id]


@pytest.mark.parametrize("model_id", sorted(GEMMA3_ATTENTION))
def test_gemma3_sliding_window_layout(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    entry = by_id[model_id]
    window, global_layers = GEMMA3_ATTENTION[model_id]
    assert entry["attention"] == "sliding_mix"
    assert (entry["sliding_window"], entry["num_global_layers"]) == (window, global_layers)


def test_deepseek_v3_is_mla_with_published_latent_sizes(by_id: dict[str, dict[str, Any]]) -> None:
    entry = by_id["deepseek-ai/DeepSeek-V3"]
    assert entry["attention"] == "mla"
    assert entry["num_layers"] == 61
    assert entry["mla"] == {"kv_lora_rank": 512, "qk_rope_head_dim": 64}
    assert entry["checkpoint_dtype"] == "float8_e4m3fn"


@pytest.mark.parametrize("model_id", sorted(MOE_FACTS))
def test_moe_routing(by_id: dict[str, dict[str, Any]], model_id: str) -> None:
    experts, per_token = MOE_FACTS[model_id]
    assert by_id[model_id]["moe"] == {"num_experts": experts, "experts_per_token": per_token}


def test_only_the_known_moe_models_are_moe(by_id: dict[str, dict[str, Any]]) -> None:
    assert {i for i, e in by_id.items() if e["moe"] is not None} == set(MOE_FACTS)


# --- (4) internal consistency and format --------------------------------------------------------

def test_document_header(document: dict[str, Any]) -> None:
    assert list(document) == ["schema_version", "data_version", "description", "sources", "models"]
    assert document["schema_version"] == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", document["data_version"])
    assert all(isinstance(v, str) and v for v in document["sources"].values())


def test_entries_have_keys_in_schema_order(document: dict[str, Any]) -> None:
    for entry in document["models"]:
        assert list(entry) == ENTRY_KEYS, entry["id"]


def test_models_sorted_by_family_then_size(document: dict[str, Any]) -> None:
    keys = [(e["family"], e["params_total"]) for e in document["models"]]
    assert keys == sorted(keys)


@pytest.mark.parametrize("field", [
    "params_total", "params_active", "params_embedding", "num_layers", "num_attention_heads",
    "num_kv_heads", "head_dim", "hidden_size", "intermediate_size", "vocab_size", "max_context",
])
def test_numeric_fields_are_positive_ints(document: dict[str, Any], field: str) -> None:
    for entry in document["models"]:
        value = entry[field]
        assert isinstance(value, int) and not isinstance(value, bool) and value > 0, (entry["id"], field, value)


def test_internal_consistency(document: dict[str, Any]) -> None:
    for entry in document["models"]:
        who = entry["id"]
        assert entry["params_active"] <= entry["params_total"], who
        if entry["moe"] is None:
            assert entry["params_active"] == entry["params_total"], who
        else:
            assert entry["params_active"] < entry["params_total"], who
            assert 0 < entry["moe"]["experts_per_token"] <= entry["moe"]["num_experts"], who
        assert entry["num_attention_heads"] % entry["num_kv_heads"] == 0, who
        assert entry["params_embedding"] == entry["vocab_size"] * entry["hidden_size"], who
        assert isinstance(entry["tied_embeddings"], bool), who
        assert entry["attention"] in ("full", "sliding_mix", "mla"), who
        if entry["attention"] == "sliding_mix":
            assert isinstance(entry["sliding_window"], int) and entry["sliding_window"] > 0, who
            assert isinstance(entry["num_global_layers"], int), who
            assert 0 < entry["num_global_layers"] < entry["num_layers"], who
        else:
            assert entry["sliding_window"] is None and entry["num_global_layers"] is None, who
        if entry["attention"] == "mla":
            assert entry["mla"]["kv_lora_rank"] > 0 and entry["mla"]["qk_rope_head_dim"] > 0, who
        else:
            assert entry["mla"] is None, who
        assert entry["checkpoint_dtype"] in ("bfloat16", "float16", "float8_e4m3fn"), who


def test_params_total_agrees_with_the_entry_shapes(document: dict[str, Any]) -> None:
    """Re-derive the size from the entry's own shapes (attention + gated MLP + embeddings).

    Catches a typo in hidden/intermediate/heads/vocab that the published-count test would let
    through. Skipped: MLA (different projections) and multimodal checkpoints (vision tower).
    """
    for entry in document["models"]:
        if entry["attention"] == "mla" or entry["architecture"].endswith("ConditionalGeneration"):
            continue
        h, hd = entry["hidden_size"], entry["head_dim"]
        attn = h * hd * (2 * entry["num_attention_heads"] + 2 * entry["num_kv_heads"])
        experts = entry["moe"]["num_experts"] if entry["moe"] else 1
        mlp = experts * 3 * h * entry["intermediate_size"]
        embeddings = entry["params_embedding"] * (1 if entry["tied_embeddings"] else 2)
        estimate = entry["num_layers"] * (attn + mlp) + embeddings
        assert _within(entry["params_total"], estimate, 0.01), (entry["id"], entry["params_total"], estimate)


def _keys_named(text: str, sources: dict[str, str]) -> set[str]:
    return {key for key in sources if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text)}


def test_every_source_key_exists(document: dict[str, Any]) -> None:
    sources = document["sources"]
    used: set[str] = set()
    for entry in document["models"]:
        keys = [k.strip() for k in re.split(r"[,;]", entry["source"]) if k.strip()]
        assert keys, f"{entry['id']}: empty source"
        missing = [k for k in keys if k not in sources]
        assert not missing, f"{entry['id']}: unknown source keys {missing}"
        used.update(keys)
        params_source = entry["params_source"]
        if params_source.startswith("computed from config"):
            named = _keys_named(params_source, sources)
            assert named, f"{entry['id']}: computed params_source names no source to check it against"
            used.update(named)
        else:
            assert params_source in sources, f"{entry['id']}: unknown params_source {params_source!r}"
            used.add(params_source)
    unused = set(sources) - used - {k for v in sources.values() for k in _keys_named(v, sources)}
    assert not unused, f"sources never cited: {sorted(unused)}"
