#!/usr/bin/env bash
# AsymGRPO, (beta_pos, beta_neg) = (0.9, 0.4), on Qwen3-4B (non-thinking) with the MATH training
# set: the paper's Appendix G setting (arXiv 2604.04894) in verl. One node of 4 GPUs (the
# paper's 4 x H100). Shaped like verl's examples/grpo_trainer/run_*.sh; extra Hydra overrides
# go at the end ("$@"), e.g. algorithm.adv_estimator=pos_only, algorithm.asym_beta_pos=0.7.
#
# Paper values: AdamW lr 2e-6, G = 8 rollouts per prompt, global batch 128 prompts, mini-batch
# 64 prompts, max response 4,096 tokens, token-level loss aggregation, 0/1 outcome reward (no KL
# in the reward). Not in the paper (chosen): micro-batch sizes, vLLM memory share, 300 steps,
# the KL/entropy terms off, evaluation every 10 steps.
#
# Set up (docs/integrations.md, "Install"): pip install -e '.[verl]' plus verl's GPU stack
# (vllm, flash-attn) for your CUDA. Data: verl's MATH preprocessing, from a verl checkout:
#   python examples/data_preprocess/math_dataset.py --local_save_dir ~/data/math
# The reward is asym's grader (examples/verl/reward.py), the one an asym run uses.
set -xeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=${DATA:-$HOME/data/math}
MODEL=${MODEL:-Qwen/Qwen3-4B}
NGPUS=${NGPUS:-4}

python3 -m verl.trainer.main_ppo \
    --config-path="$HERE/config" --config-name=asym_grpo \
    algorithm.adv_estimator=asym_grpo \
    algorithm.asym_beta_pos=0.9 \
    algorithm.asym_beta_neg=0.4 \
    algorithm.use_kl_in_reward=False \
    data.train_files="$DATA/train.parquet" \
    data.val_files="$DATA/test.parquet" \
    data.train_batch_size=128 \
    data.max_prompt_length=1024 \
    data.max_response_length=4096 \
    data.filter_overlong_prompts=True \
    data.truncation='error' \
    +data.apply_chat_template_kwargs.enable_thinking=False \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.actor.optim.lr=2e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=64 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.actor.fsdp_config.param_offload=False \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=False \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16 \
    reward.custom_reward_function.path="$HERE/reward.py" \
    trainer.v1.trainer_mode=asym_sync \
    trainer.logger='["console","wandb"]' \
    trainer.project_name=asym_verl \
    trainer.experiment_name=qwen3_4b_math_asym_grpo_bp0.9_bn0.4 \
    trainer.n_gpus_per_node="$NGPUS" \
    trainer.nnodes=1 \
    trainer.save_freq=50 \
    trainer.test_freq=10 \
    trainer.total_training_steps=300 "$@"
