#!/usr/bin/env bash
# AsymGRPO through verl on a CPU, in minutes: the tiny model asym ships (its prebuilt base, a
# 2-layer Qwen3 warmed up on arithmetic) on asym's arithmetic task, with the same config and
# command-line shape as run_qwen3-4b_math_asym_grpo.sh. verl's PPO step needs GPU workers, so
# cpu_main_ppo.py runs verl's main_ppo entry (Hydra, validate_config), builds the asym_sync
# trainer with verl's constructor and runs verl's _compute_advantage on one batch of real
# rollouts, then stops (see its docstring). CI runs this file (tests/integrations/test_integrations_verl.py).
set -xeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-${TMPDIR:-/tmp}/asym-verl-tiny}
MODEL=${MODEL:-$(python3 -c "from asymcli.embedded.prebuilt import prebuilt_dir; print(prebuilt_dir() / 'model')")}

python3 "$HERE/prepare_tiny_data.py" --out "$OUT/data"

python3 "$HERE/cpu_main_ppo.py" \
    --config-path="$HERE/config" --config-name=asym_grpo \
    algorithm.adv_estimator=asym_grpo \
    algorithm.asym_beta_pos=0.9 \
    algorithm.asym_beta_neg=0.4 \
    algorithm.use_kl_in_reward=False \
    data.train_files="$OUT/data/train.parquet" \
    data.val_files="$OUT/data/test.parquet" \
    data.train_batch_size=4 \
    data.max_prompt_length=64 \
    data.max_response_length=40 \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.actor.optim.lr=5e-5 \
    actor_rollout_ref.actor.ppo_mini_batch_size=2 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
    reward.custom_reward_function.path="$HERE/reward.py" \
    trainer.v1.trainer_mode=asym_sync \
    trainer.device=cpu \
    trainer.logger='["console"]' \
    trainer.project_name=asym_verl \
    trainer.experiment_name=tiny_cpu_asym_grpo \
    trainer.n_gpus_per_node=1 \
    trainer.nnodes=1 \
    trainer.total_training_steps=1 \
    hydra.run.dir="$OUT/hydra" "$@"
