"""Tests of asymcli/engines/: the rollout engines (hf, static, vllm)."""
