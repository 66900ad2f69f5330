"""The fixed per-sequence state of hybrid models (pure).

Hybrid models (Qwen3-Next / Qwen3.5 gated delta nets, Jamba and Falcon-H1 / Granite-4.0-H Mamba
mixers, LFM2 short convolutions) keep, besides the KV cache of their attention layers, a state per
sequence whose size does not grow with the sequence: a convolution window and, for Mamba and
gated delta nets, a recurrent (SSM) state. vLLM keeps one such state per running sequence in its
cache (``MambaSpec``: one page per request per layer, vllm/v1/kv_cache_interface.py), with the
shapes of ``MambaStateShapeCalculator`` (vllm/model_executor/layers/mamba/mamba_utils.py):

- conv state: ``conv_channels / tp x (conv_kernel - 1)`` per layer;
- Mamba-1: ``d_inner / tp x d_state``; Mamba-2: ``n_heads / tp x head_dim x d_state``, its conv
  channels ``d_inner + 2 x n_groups x d_state`` where the B/C groups are replicated when they do
  not divide by the tensor-parallel size;
- gated delta net: ``num_v_heads / tp x head_v_dim x head_k_dim``; short conv: the conv state only.

States are stored in the model dtype (vLLM ``mamba_cache_dtype`` / ``mamba_ssm_cache_dtype``
"auto"); a config that pins ``mamba_ssm_dtype: float32`` (Qwen3.5) keeps the recurrent state in
4 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STATE_ELEMENT_BYTES = 2  # "auto" = the serving dtype, 16 bit for every checkpoint sized here
FP32_BYTES = 4


@dataclass(frozen=True)
class RecurrentState:
    """Element counts of one sequence's state over all state-holding layers, at tensor parallel 1."""

    layers: int  # layers that hold a state (Mamba mixers, gated delta nets, short convs)
    conv_elements: int  # conv-window elements: channels x (kernel - 1), summed over the layers
    ssm_elements: int  # recurrent-state elements, summed over the layers (0 for short convs)
    conv_replicated: int = 0  # of conv_elements, the Mamba-2 B/C group channels every rank keeps whole
    ssm_fp32: bool = False  # the config pins the recurrent state to float32

    def bytes_per_sequence(self, tensor_parallel: int = 1) -> int:
        """Bytes of one sequence's state on one tensor-parallel rank."""
        tp = max(1, tensor_parallel)
        conv = self.conv_elements
        if tp > 1:  # channels split across ranks; the B/C groups stay whole on each (an upper bound)
            conv = math.ceil((self.conv_elements - self.conv_replicated) / tp) + self.conv_replicated
        ssm = math.ceil(self.ssm_elements / tp)
        return conv * STATE_ELEMENT_BYTES + ssm * (FP32_BYTES if self.ssm_fp32 else STATE_ELEMENT_BYTES)
