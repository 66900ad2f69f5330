"""The model catalogue: architecture facts of real Hugging Face checkpoints.

Facts live in ``data/models.json`` (versioned, every entry with its source); this module only
loads and validates them. A broken entry fails the import with the entry id and the field.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sizing.errors import DataFileError, UnknownModelError
from sizing.hf_config import read_layout, text_config
from sizing.quantization import WeightBreakdown, read_quantization, weight_breakdown
from sizing.recurrent_state import RecurrentState
from sizing.schema import check_document

ATTENTION_KINDS = ("full", "sliding_mix", "mla")
# model_type values vLLM refuses to run in float16 (vllm/config/model.py _FLOAT16_NOT_SUPPORTED_MODELS)
FLOAT16_UNSUPPORTED_MODEL_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})


@dataclass(frozen=True)
class MoE:
    num_experts: int
    experts_per_token: int


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek-V3): the cache holds one compressed latent per layer."""

    kv_lora_rank: int
    qk_rope_head_dim: int


@dataclass(frozen=True)
class ModelArch:
    id: str
    family: str
    architecture: str
    params_total: int
    params_active: int
    params_embedding: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool
    max_context: int
    attention: str = "full"
    sliding_window: int | None = None
    num_global_layers: int | None = None
    mla: MLA | None = None
    moe: MoE | None = None
    checkpoint_dtype: str = "bfloat16"
    float16_supported: bool = True  # False where vLLM refuses --dtype float16 (Gemma 3); bfloat16 is used
    aliases: tuple[str, ...] = ()
    source: str = ""
    params_source: str = ""
    # A pre-quantized checkpoint's declared format and its resident byte layout (config.json only)
    quantization: WeightBreakdown | None = None
    # Hybrid models: the layers with a KV cache (None = every layer) and the per-sequence state of the others
    num_kv_layers: int | None = None
    recurrent_state: RecurrentState | None = None
    # Weight bytes read from the checkpoint's own safetensors (models-directory entries), over the computed ones
    exact_weights_bytes: int | None = None
    # DeepSeek-V3.2: the sparse-attention indexer's key cache per token and layer (fixed fp8 layout)
    index_key_bytes: int = 0
    # mllama: cross-attention layers cache the keys/values of the image tokens, a fixed amount per sequence
    cross_attention_layers: int = 0
    cross_attention_tokens: int = 0

    @property
    def kv_layers(self) -> int:
        """Layers that hold a KV cache: every layer, except in hybrid models."""
        return self.num_layers if self.num_kv_layers is None else self.num_kv_layers

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def embedding_params_resident(self) -> int:
        """Parameters of embed_tokens plus lm_head (one matrix when tied)."""
        return self.params_embedding * (1 if self.tied_embeddings else 2)


def _model_from_entry(entry: Mapping[str, Any], where: str) -> ModelArch:
    """Build one ModelArch from a schema-valid entry; checks what the schema cannot express
    (relations between fields). Errors name the entry and the field."""
    if entry["params_active"] > entry["params_total"]:
        raise DataFileError(f"{where}: field 'params_active' exceeds params_total")
    if entry["num_attention_heads"] % entry["num_kv_heads"]:
        raise DataFileError(f"{where}: field 'num_kv_heads' must divide num_attention_heads")
    attention = entry.get("attention", "full")
    window = globals_ = None
    if attention == "sliding_mix":
        window, globals_ = entry["sliding_window"], entry["num_global_layers"]
        if globals_ > entry["num_layers"]:
            raise DataFileError(f"{where}: field 'num_global_layers' exceeds num_layers")
    mla = MLA(**entry["mla"]) if attention == "mla" else None
    moe = MoE(**entry["moe"]) if entry.get("moe") is not None else None
    if moe is not None and moe.experts_per_token > moe.num_experts:
        raise DataFileError(f"{where}: field 'moe.experts_per_token' exceeds moe.num_experts")
    return ModelArch(
        id=entry["id"], family=entry["family"], architecture=entry["architecture"],
        params_total=entry["params_total"], params_active=entry["params_active"],
        params_embedding=entry["params_embedding"], num_layers=entry["num_layers"],
        num_attention_heads=entry["num_attention_heads"], num_kv_heads=entry["num_kv_heads"],
        head_dim=entry["head_dim"], hidden_size=entry["hidden_size"],
        intermediate_size=entry["intermediate_size"], vocab_size=entry["vocab_size"],
        tied_embeddings=entry["tied_embeddings"], max_context=entry["max_context"], attention=attention,
        sliding_window=window, num_global_layers=globals_, mla=mla, moe=moe,
        checkpoint_dtype=entry.get("checkpoint_dtype", "bfloat16"),
        float16_supported=entry.get("float16_supported", True), aliases=tuple(entry.get("aliases") or ()),
        source=entry.get("source", ""), params_source=entry.get("params_source", ""),
    )


class Catalogue(Mapping[str, ModelArch]):
    """Read-only mapping of Hugging Face id -> ModelArch, with forgiving lookup."""

    def __init__(self, models: tuple[ModelArch, ...], data_version: str) -> None:
        self._models = {m.id: m for m in models}
        if len(self._models) != len(models):
            counts = Counter(m.id for m in models)
            dupes = sorted(model_id for model_id, n in counts.items() if n > 1)
            raise DataFileError(f"models.json: duplicate model id(s) {', '.join(dupes)}")
        self.data_version = data_version
        self._lookup: dict[str, str] = {}
        for m in models:
            for key in (m.id, m.id.split("/", 1)[-1], *m.aliases, *(a.split("/", 1)[-1] for a in m.aliases)):
                self._lookup.setdefault(key.lower(), m.id)

    def __getitem__(self, key: str) -> ModelArch:
        return self._models[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def get_model(self, model_id: str) -> ModelArch:
        """The entry for ``model_id`` (exact, case-insensitive, or the name after the org)."""
        found = self._lookup.get(model_id.strip().lower())
        if found is None:
            raise UnknownModelError(model_id, self.closest(model_id))
        return self._models[found]

    def closest(self, model_id: str, n: int = 3) -> tuple[str, ...]:
        lowered = {m.lower(): m for m in self._models}
        names = difflib.get_close_matches(model_id.lower(), list(lowered), n=n, cutoff=0.4)
        if not names:  # compare the part after the org, where typos usually are
            short = {m.split("/", 1)[-1].lower(): m for m in self._models}
            tail = model_id.split("/")[-1].lower()
            names = list(difflib.get_close_matches(tail, list(short), n=n, cutoff=0.4))
            return tuple(short[k] for k in names)
        return tuple(lowered[k] for k in names)


def _entry_name(document: Any, index: int) -> str:
    entry = document["models"][index]
    model_id = entry.get("id") if isinstance(entry, Mapping) else None
    return f"entry {index} ({model_id if isinstance(model_id, str) else '?'})"


def load_catalogue(document: object) -> Catalogue:
    """Validate a parsed models.json document (schema ``data/models.schema.json``, then the relations
    between fields) and build the catalogue; DataFileError names the entry and the field."""
    check_document(document, "models.schema.json", "models.json", "models", _entry_name)
    assert isinstance(document, Mapping)  # the schema says it is an object
    sources = document["sources"]
    models = []
    for index, entry in enumerate(document["models"]):
        where = f"models.json {_entry_name(document, index)}"
        model = _model_from_entry(entry, where)
        for key in (k.strip() for k in model.source.replace(";", ",").split(",")):
            if key and key not in sources and not key.startswith(("http", "computed")) and ":" not in key:
                raise DataFileError(f"{where}: field 'source' names unknown source key {key!r}")
        models.append(model)
    return Catalogue(tuple(models), document["data_version"])


def _packaged_catalogue() -> Catalogue:
    """The catalogue in the installed package's data/models.json (reads that file)."""
    text = resources.files("sizing").joinpath("data/models.json").read_text(encoding="utf-8")
    return load_catalogue(json.loads(text))


def _architecture(config: Mapping[str, Any]) -> str:
    names = config.get("architectures")
    return names[0] if isinstance(names, list) and names and isinstance(names[0], str) else "unknown"


def _dtype(config: Mapping[str, Any]) -> str:
    for source in (text_config(config), config):
        for key in ("torch_dtype", "dtype"):
            value = source.get(key)
            if isinstance(value, str) and len(value) <= 32:
                return value
    return "bfloat16"


def model_from_hf_config(config: Mapping[str, Any], model_id: str = "custom") -> ModelArch:
    """Build a ModelArch from a Hugging Face config.json (shapes read by ``sizing.hf_config``).

    Parameter counts come from every linear layer, embedding and norm of the family's layout;
    sliding windows follow the family's own semantics; a ``quantization_config`` makes the weights
    the declared format's real byte layout (``sizing.quantization``). Multimodal configs are read
    from their ``text_config``. SizingError names the field and the model type otherwise.
    """
    layout = read_layout(config)
    scheme = read_quantization(config)
    windows = [w for w in layout.layer_windows if w]
    attention, window, n_global = "full", None, None
    if layout.mla is not None:
        attention = "mla"
    elif windows:  # one window size per family; the largest if a config mixes several (over-estimate)
        attention, window, n_global = "sliding_mix", max(windows), len(layout.layer_windows) - len(windows)
    embedding = layout.embedding_params
    return ModelArch(
        id=model_id, family=layout.model_type, architecture=_architecture(config),
        params_total=layout.params_total, params_active=layout.params_active, params_embedding=embedding,
        num_layers=layout.num_layers, num_attention_heads=layout.num_attention_heads,
        num_kv_heads=layout.num_kv_heads, head_dim=layout.head_dim, hidden_size=layout.hidden_size,
        intermediate_size=layout.intermediate_size, vocab_size=layout.vocab_size,
        tied_embeddings=layout.tied_embeddings, max_context=layout.max_context, attention=attention,
        sliding_window=window, num_global_layers=n_global,
        mla=MLA(*layout.mla) if layout.mla is not None else None,
        moe=MoE(layout.num_experts, layout.experts_per_token) if layout.num_experts else None,
        checkpoint_dtype=_dtype(config),
        float16_supported=layout.model_type not in FLOAT16_UNSUPPORTED_MODEL_TYPES,
        quantization=weight_breakdown(layout, scheme) if scheme is not None else None,
        num_kv_layers=layout.kv_layers, recurrent_state=layout.state, index_key_bytes=layout.index_key_bytes,
        cross_attention_layers=layout.cross_attention_layers, cross_attention_tokens=layout.cross_attention_tokens,
        source="config.json", params_source="computed from config.json shapes",
    )
