"""Published parameter counts of the catalogue models: facts the sizing tests compare against.

Kept apart from sizing/data/models.json on purpose, so a test compares the data and the estimator
with what the model publishers say, never with themselves.
"""

from __future__ import annotations

B = 1_000_000_000

# Published parameter counts: id -> (count, where it is published).
# Exact integers come from keras-team/keras-hub keras_hub/src/models/*/*_presets.py ("params");
# rounded ones from the Hugging Face model card / safetensors "Model size" or the vendor's README.
PUBLISHED_PARAMS: dict[str, tuple[float, str]] = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": (1.1 * B, "HF card: 1.1B"),
    "meta-llama/Llama-3.2-1B-Instruct": (1.24 * B, "HF card: 1.24B"),
    "meta-llama/Llama-3.2-3B-Instruct": (3.21 * B, "HF card: 3.21B"),
    "meta-llama/Llama-3.1-8B-Instruct": (8_030_261_248, "keras-hub llama3_instruct_8b_en"),
    "meta-llama/Llama-3.1-70B-Instruct": (70.6 * B, "HF card: 70.6B"),
    "meta-llama/Llama-3.3-70B-Instruct": (70.6 * B, "HF card: 70.6B"),
    "Qwen/Qwen2.5-0.5B-Instruct": (494_032_768, "keras-hub qwen2.5_instruct_0.5b_en"),
    "Qwen/Qwen2.5-1.5B-Instruct": (1.54 * B, "HF card: 1.54B"),
    "Qwen/Qwen2.5-3B-Instruct": (3_085_938_688, "keras-hub qwen2.5_3b_en"),
    "Qwen/Qwen2.5-7B-Instruct": (7.62 * B, "HF card: 7.62B"),
    "Qwen/Qwen2.5-14B-Instruct": (14.8 * B, "HF card: 14.8B"),
    "Qwen/Qwen3-0.6B": (596_049_920, "keras-hub qwen3_0.6b_en"),
    "Qwen/Qwen3-1.7B": (1_720_574_976, "keras-hub qwen3_1.7b_en"),
    "Qwen/Qwen3-4B": (4_022_468_096, "keras-hub qwen3_4b_en"),
    "Qwen/Qwen3-8B": (8_190_735_360, "keras-hub qwen3_8b_en"),
    "Qwen/Qwen3-14B": (14_768_307_200, "keras-hub qwen3_14b_en"),
    "Qwen/Qwen3-32B": (32_762_123_264, "keras-hub qwen3_32b_en"),
    "Qwen/Qwen3-30B-A3B": (30_532_122_624, "keras-hub qwen3_moe_30b_a3b_en"),
    "Qwen/Qwen3-235B-A22B": (235_093_634_560, "keras-hub qwen3_moe_235b_a22b_en"),
    "google/gemma-3-1b-it": (999_885_952, "keras-hub gemma3_instruct_1b"),
    "google/gemma-3-4b-it": (4_299_915_632, "keras-hub gemma3_instruct_4b (vision+text)"),
    "google/gemma-3-12b-it": (12_187_079_280, "keras-hub gemma3_instruct_12b (vision+text)"),
    "google/gemma-3-27b-it": (27_432_062_576, "keras-hub gemma3_instruct_27b (vision+text)"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": (1.78 * B, "HF card: 1.78B"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": (7_615_616_512, "keras-hub qwen2.5_math_7b_en (its base)"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": (14.8 * B, "HF card: 14.8B"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": (32_763_876_352, "keras-hub qwen2.5_instruct_32b_en (its base)"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": (8.03 * B, "HF card: 8.03B"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": (70.6 * B, "HF card: 70.6B"),
    "deepseek-ai/DeepSeek-V3": (671 * B, "deepseek-ai/DeepSeek-V3 README_WEIGHTS.md: main model 671B"),
    "mistralai/Mistral-7B-Instruct-v0.3": (7.25 * B, "HF card: 7.25B"),
    "mistralai/Mistral-Small-24B-Instruct-2501": (23.6 * B, "HF card: 23.6B"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (46_702_792_704, "keras-hub mixtral_8_instruct_7b_en"),
    "microsoft/phi-4": (14.7 * B, "HF card: 14.7B"),
    "microsoft/Phi-4-mini-instruct": (3.84 * B, "HF card: 3.84B"),
    "microsoft/Phi-3-mini-4k-instruct": (3_821_079_552, "keras-hub phi3_mini_4k_instruct_en"),
    "CohereLabs/aya-expanse-8b": (8.028 * B, "open-llm-leaderboard request for CohereForAI/aya-expanse-8b: 8.028"),
    "CohereLabs/aya-expanse-32b": (32.3 * B, "HF card: 32.3B"),
}
