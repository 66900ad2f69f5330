"""Tests of the sizing library.

"reference 4.x" in the comments of these tests names a group of public sources, numbered as in the
project's sizing notes:

- 4.1 how vLLM decides memory: vllm-project/vllm vllm/v1/worker/gpu_worker.py, docs.vllm.ai engine
  arguments (gpu-memory-utilization), ROCm/amdgpu-docs docs/gpu-partitioning/mi300x/run-vllm.rst;
- 4.2 the formulas: llm-d/llm-d-benchmark config_explorer/src/config_explorer/capacity_planner.py;
- 4.3 overheads measured by llm-d: llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md;
- 4.4 architecture facts: config.json mirrors (mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py,
  citsjtu2020/LLM-Prof sglang/Model_Config.md, each checkpoint's config.json on the Hugging Face Hub),
  cross-checked with keras-team/keras-hub ``*_presets.py`` parameter counts;
- 4.5 and 4.6 memory per model and worked fits, computed by hand from 4.1-4.4 before the code was
  written (so they are independent of it).
"""
