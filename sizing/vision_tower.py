"""The vision tower and projector of a multimodal config (pure; takes the parsed JSON).

vLLM loads a multimodal checkpoint whole: the vision encoder and the projector that maps its output
into the language model sit in GPU memory beside the decoder. ``read_vision`` turns a config's
``vision_config`` into the linear layers and other parameters of that tower, with each family's
layout as the transformers modeling code of its ``model_type`` builds it:

- ``llama4``: unfold patch embedding, class + position embeddings, pre/post LayerNorm, ViT layers
  with biased q/k/v/o and fc1/fc2, the pixel-shuffle adapter MLP and the projector (Llama4VisionModel);
- ``mllama``: conv patch embedding, gated tile/position embeddings, a local and a gated global
  encoder, and a biased projector (MllamaVisionModel); its cross-attention layers cache
  ``max_num_tiles x (patches + 1)`` image tokens per image;
- ``qwen2_5_vl``: Conv3d patch embedding, RMSNorm blocks with a fused qkv and a gated MLP, and the
  patch merger (Qwen2_5_VisionTransformerPretrainedModel);
- ``qwen3_vl`` / ``qwen3_vl_moe`` (and Qwen3.5's ``qwen3_5``): Conv3d patch embedding with bias,
  learned positions, LayerNorm blocks with a plain MLP, the patch merger and one deepstack merger per
  deepstack index;
- ``gemma3``: a SigLIP tower and one projection matrix with an RMSNorm (Gemma3MultiModalProjector);
- ``glm4v_moe`` (GLM-4.5V): Conv3d patch embedding, learned positions, RMSNorm blocks with a fused
  qkv and a gated MLP, a conv downsample and a gated merger (Glm4vMoeVisionModel).

Any other family is sized as a plain ViT (biased q/k/v/o, fc1/fc2, two LayerNorms per layer, conv
patch embedding, learned positions when image_size is given) with a two-layer projector into the
text width: the common layout of SigLIP/CLIP towers and LLaVA-style projectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sizing.hf_config import MAX_LAYERS, MAX_WIDTH, Linear, _Fields

MAX_CHANNELS = 64  # image channels (3 for RGB); bounds a hostile num_channels
MAX_PATCH = 1024  # patch edge in pixels (14-16 in every published tower)
MAX_TILES = 64  # mllama max_num_tiles (4 in Llama 3.2 Vision)


@dataclass(frozen=True)
class VisionTower:
    """The vision encoder + projector of one config."""

    linears: tuple[Linear, ...]
    other_params: int  # embeddings, norms, gates (everything that is not a linear layer)
    cross_attention_tokens: int = 0  # image tokens a cross-attention layer caches per sequence (mllama)

    @property
    def params(self) -> int:
        return self.other_params + sum(lin.params for lin in self.linears)


def _vit_layers(prefix: str, layers: int, hidden: int, inter: int, *, qkv_fused: bool, bias: bool,
                names: tuple[str, str, str, str, str, str]) -> list[Linear]:
    """q/k/v (or fused qkv), output projection and a two-matrix MLP for ``layers`` encoder layers."""
    attn, q, k, v, o, mlp = names
    out: list[Linear] = []
    for i in range(layers):
        p = f"{prefix}.{i}"
        if qkv_fused:
            out.append(Linear(f"{p}.{attn}.{q}", hidden, 3 * hidden, bias))
        else:
            out += [Linear(f"{p}.{attn}.{n}", hidden, hidden, bias) for n in (q, k, v)]
        fc1, fc2 = mlp.split(",")
        out += [Linear(f"{p}.{attn}.{o}", hidden, hidden, bias),
                Linear(f"{p}.{fc1}", hidden, inter, bias), Linear(f"{p}.{fc2}", inter, hidden, bias)]
    return out


def _patch(v: _Fields, *channel_keys: str) -> tuple[int, int]:
    """(patch edge, image channels) of a tower."""
    patch = v.int_("patch_size", "spatial_patch_size", maximum=MAX_PATCH, default=14)
    channels = v.int_(*(channel_keys or ("num_channels",)), maximum=MAX_CHANNELS, default=3)
    return patch, channels


def _llama4(v: _Fields, text_hidden: int) -> VisionTower:
    h = v.int_("hidden_size")
    inter = v.int_("intermediate_size")
    layers = v.int_("num_hidden_layers", maximum=MAX_LAYERS)
    patch, channels = _patch(v)
    positions = (v.int_("image_size", maximum=MAX_WIDTH) // patch) ** 2 + 1
    proj_in, proj_out = v.int_("projector_input_dim"), v.int_("projector_output_dim")
    lins = [Linear("vision_model.patch_embedding.linear", channels * patch * patch, h),
            *_vit_layers("vision_model.model.layers", layers, h, inter, qkv_fused=False, bias=True,
                         names=("self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "mlp.fc1,mlp.fc2")),
            Linear("vision_model.vision_adapter.mlp.fc1", inter, proj_in),
            Linear("vision_model.vision_adapter.mlp.fc2", proj_out, proj_out),
            Linear("multi_modal_projector.linear_1", v.int_("vision_output_dim"), text_hidden)]
    other = h + positions * h + 2 * 2 * h + layers * 2 * 2 * h  # class emb, positions, pre/post + layer LayerNorms
    return VisionTower(tuple(lins), other)


def _mllama(v: _Fields, text_hidden: int) -> VisionTower:
    h = v.int_("hidden_size")
    inter = v.int_("intermediate_size")
    local, global_ = v.int_("num_hidden_layers", maximum=MAX_LAYERS), v.int_("num_global_layers", maximum=MAX_LAYERS)
    patch, channels = _patch(v)
    patches = (v.int_("image_size", maximum=MAX_WIDTH) // patch) ** 2 + 1  # + the class token
    tiles = v.int_("max_num_tiles", maximum=MAX_TILES)
    ratios = v.text.get("supported_aspect_ratios")
    if not isinstance(ratios, list) or not 0 < len(ratios) <= MAX_TILES * MAX_TILES:
        raise v.error("supported_aspect_ratios", "must be a non-empty list of [width, height] tile counts")
    ratio_ids = len(ratios) + 1  # embedding rows: one per aspect ratio + padding id 0
    names = ("self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "mlp.fc1,mlp.fc2")
    lins = [Linear("vision_model.patch_embedding", channels * patch * patch, h),
            *_vit_layers("vision_model.transformer.layers", local, h, inter, qkv_fused=False, bias=False,
                         names=names),
            *_vit_layers("vision_model.global_transformer.layers", global_, h, inter, qkv_fused=False, bias=False,
                         names=names),
            Linear("multi_modal_projector", v.int_("vision_output_dim"), text_hidden, bias=True)]
    mlp_biases = (local + global_) * (inter + h)  # fc1/fc2 biases (the attention has none)
    other = (h  # class embedding
             + 2 * (ratio_ids * tiles * h + 1)  # pre/post tile positional embeddings + gates
             + patches * h + ratio_ids * tiles * patches * h + 1  # gated position + tile-position embedding
             + 2 * 2 * h  # layernorm_pre / layernorm_post
             + (local + global_) * 2 * 2 * h + global_ * 2 + mlp_biases)  # layer LayerNorms, global gates
    return VisionTower(tuple(lins), other, cross_attention_tokens=tiles * patches)


@dataclass(frozen=True)
class _Conv3dTower:
    """The widths every Conv3d-patch tower reads (Qwen2.5-VL, Qwen3-VL/Qwen3.5, GLM-4.5V)."""

    hidden: int
    inter: int
    depth: int
    patch: int
    channels: int
    temporal: int
    merge: int
    out: int  # the merger's output width (the text width unless out_hidden_size says otherwise)

    @property
    def patch_in(self) -> int:
        """Inputs of the Conv3d patch embedding: channels x temporal x patch x patch."""
        return self.channels * self.temporal * self.patch * self.patch

    @property
    def merged(self) -> int:
        """Width of spatial_merge_size^2 neighbouring patches concatenated (the merger's input)."""
        return self.hidden * self.merge * self.merge


def _conv3d_tower(v: _Fields, text_hidden: int, *channel_keys: str) -> _Conv3dTower:
    h = v.int_("hidden_size")
    inter = v.int_("intermediate_size")
    depth = v.int_("depth", maximum=MAX_LAYERS)
    patch, channels = _patch(v, *channel_keys)
    temporal = v.int_("temporal_patch_size", maximum=MAX_PATCH, default=2)
    merge = v.int_("spatial_merge_size", maximum=MAX_PATCH, default=2)
    out = v.int_("out_hidden_size", default=text_hidden)
    return _Conv3dTower(h, inter, depth, patch, channels, temporal, merge, out)


def _qwen_merger(prefix: str, t: _Conv3dTower, names: tuple[str, str] = ("linear_fc1", "linear_fc2")) -> list[Linear]:
    fc1, fc2 = names
    return [Linear(f"{prefix}.{fc1}", t.merged, t.merged, True), Linear(f"{prefix}.{fc2}", t.merged, t.out, True)]


def _qwen2_5_vl(v: _Fields, text_hidden: int) -> VisionTower:
    t = _conv3d_tower(v, text_hidden, "in_chans", "in_channels")
    h, inter = t.hidden, t.inter
    lins = [Linear("visual.patch_embed.proj", t.patch_in, h)]
    for i in range(t.depth):
        p = f"visual.blocks.{i}"
        lins += [Linear(f"{p}.attn.qkv", h, 3 * h, True), Linear(f"{p}.attn.proj", h, h, True),
                 Linear(f"{p}.mlp.gate_proj", h, inter, True), Linear(f"{p}.mlp.up_proj", h, inter, True),
                 Linear(f"{p}.mlp.down_proj", inter, h, True)]
    lins += _qwen_merger("visual.merger", t, ("mlp.0", "mlp.2"))
    return VisionTower(tuple(lins), t.depth * 2 * h + h)  # RMSNorm norm1/norm2 per block, merger ln_q


def _qwen3_vl(v: _Fields, text_hidden: int) -> VisionTower:
    t = _conv3d_tower(v, text_hidden, "in_channels", "in_chans")
    h, depth = t.hidden, t.depth
    positions = v.int_("num_position_embeddings", maximum=MAX_WIDTH)
    deepstack = v.text.get("deepstack_visual_indexes") or []
    if not isinstance(deepstack, list) or len(deepstack) > depth:
        raise v.error("deepstack_visual_indexes", f"must be a list of at most {depth} block indices")
    lins = [Linear("model.visual.patch_embed.proj", t.patch_in, h, True),
            *_vit_layers("model.visual.blocks", depth, h, t.inter, qkv_fused=True, bias=True,
                         names=("attn", "qkv", "", "", "proj", "mlp.linear_fc1,mlp.linear_fc2")),
            *_qwen_merger("model.visual.merger", t)]
    for j in range(len(deepstack)):
        lins += _qwen_merger(f"model.visual.deepstack_merger_list.{j}", t)
    other = positions * h + depth * 2 * 2 * h + 2 * h + len(deepstack) * 2 * t.merged  # positions, LayerNorms
    return VisionTower(tuple(lins), other)


def _glm4v(v: _Fields, text_hidden: int) -> VisionTower:
    """GLM-4.5V (Glm4vMoeVisionModel): Conv3d patch embedding, learned positions, RMSNorm blocks with a
    fused qkv and a gated MLP of out_hidden_size, a conv downsample and a gated merger MLP."""
    t = _conv3d_tower(v, text_hidden, "in_channels", "in_chans")
    h, inter, out = t.hidden, t.inter, t.out
    positions = (v.int_("image_size", maximum=MAX_WIDTH) // t.patch) ** 2
    bias = v.bool_("attention_bias", False)
    lins = [Linear("model.visual.patch_embed.proj", t.patch_in, h, True)]
    for i in range(t.depth):
        p = f"model.visual.blocks.{i}"
        lins += [Linear(f"{p}.attn.qkv", h, 3 * h, bias), Linear(f"{p}.attn.proj", h, h, bias),
                 *(Linear(f"{p}.mlp.{n}", h, out) for n in ("gate_proj", "up_proj")),
                 Linear(f"{p}.mlp.down_proj", out, h)]
    lins += [Linear("model.visual.downsample", t.merged, out, True),
             Linear("model.visual.merger.proj", out, out),
             Linear("model.visual.merger.gate_proj", out, inter), Linear("model.visual.merger.up_proj", out, inter),
             Linear("model.visual.merger.down_proj", inter, out)]
    other = positions * h + t.depth * 2 * h + 2 * h + 2 * out  # positions, block RMSNorms, post-conv/post norms, LN
    return VisionTower(tuple(lins), other)


def _gemma3(v: _Fields, text_hidden: int) -> VisionTower:
    """Gemma 3: a SigLIP tower (conv patch embedding with bias, learned positions, biased q/k/v/out
    and fc1/fc2, LayerNorms, post-LayerNorm, no pooling head) and Gemma3MultiModalProjector (one
    vision x text projection matrix and an RMSNorm over the vision width)."""
    h = v.int_("hidden_size")
    inter = v.int_("intermediate_size")
    layers = v.int_("num_hidden_layers", maximum=MAX_LAYERS)
    patch, channels = _patch(v)
    positions = (v.int_("image_size", maximum=MAX_WIDTH) // patch) ** 2
    if v.bool_("vision_use_head", False):
        raise v.error("vision_use_head", "is true; Gemma 3's tower has no pooling head")
    lins = [Linear("vision_tower.vision_model.embeddings.patch_embedding", channels * patch * patch, h, True),
            *_vit_layers("vision_tower.vision_model.encoder.layers", layers, h, inter, qkv_fused=False, bias=True,
                         names=("self_attn", "q_proj", "k_proj", "v_proj", "out_proj", "mlp.fc1,mlp.fc2")),
            Linear("multi_modal_projector.mm_input_projection", h, text_hidden)]
    other = positions * h + layers * 2 * 2 * h + 2 * h + h  # positions, LayerNorms, post-LN, mm_soft_emb_norm
    return VisionTower(tuple(lins), other)


def _plain_vit(v: _Fields, text_hidden: int) -> VisionTower:
    """A vision family without its own reader: a plain ViT and a two-layer projector (module doc)."""
    h = v.int_("hidden_size", "embed_dim", "width")
    layers = v.int_("num_hidden_layers", "depth", "layers", maximum=MAX_LAYERS)
    inter = v.opt_int("intermediate_size") or 4 * h
    patch, channels = _patch(v, "num_channels", "in_channels", "in_chans")
    image = v.opt_int("image_size", maximum=MAX_WIDTH) or 0
    lins = [Linear("vision_tower.patch_embedding", channels * patch * patch, h, True),
            *_vit_layers("vision_tower.encoder.layers", layers, h, inter, qkv_fused=False, bias=True,
                         names=("self_attn", "q_proj", "k_proj", "v_proj", "out_proj", "mlp.fc1,mlp.fc2")),
            Linear("multi_modal_projector.linear_1", h, text_hidden, True),
            Linear("multi_modal_projector.linear_2", text_hidden, text_hidden, True)]
    other = (image // patch) ** 2 * h + layers * 2 * 2 * h + 2 * h  # positions, layer LayerNorms, post norm
    return VisionTower(tuple(lins), other)


_TOWERS: dict[str, Callable[[_Fields, int], VisionTower]] = {
    "llama4": _llama4, "mllama": _mllama, "qwen2_5_vl": _qwen2_5_vl, "qwen3_vl": _qwen3_vl, "qwen3_vl_moe": _qwen3_vl,
    "qwen3_5": _qwen3_vl, "qwen3_5_moe": _qwen3_vl,  # Qwen3.5: the Qwen3-VL tower (no deepstack mergers)
    "glm4v_moe": _glm4v, "gemma3": _gemma3,
}


def read_vision(config: Mapping[str, Any], model_type: str, text_hidden: int) -> VisionTower | None:
    """The vision tower of ``config`` (None when it has no ``vision_config``); ``model_type`` is the
    outer config's, ``text_hidden`` the language model's width the projector maps into."""
    vision = config.get("vision_config")
    if vision is None:
        return None
    label = f"{model_type} vision_config"
    if not isinstance(vision, Mapping):
        raise _Fields({}, {}, label).error("vision_config", "must be a JSON object")
    return _TOWERS.get(model_type, _plain_vit)(_Fields(vision, vision, label), text_hidden)
