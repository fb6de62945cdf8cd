"""``python -m verl.trainer.main_ppo`` as far as verl goes on a CPU, on the same command line.

verl's own Hydra entry (``verl.trainer.main_ppo.main``: config composition, the command-line
overrides, ``auto_set_device``, ``validate_config``) runs unchanged; only ``run_ppo``, which
starts Ray and verl's GPU workers, is replaced by :func:`run_on_cpu`, which does what verl's
``TaskRunnerV1.run`` and one step of ``PPOTrainer._step_once`` do where no GPU is needed:

1. ``get_trainer_cls(trainer.v1.trainer_mode)``: the class asym's entry point registered
   (``asym_sync``), constructed with verl's constructor on the composed config;
2. rollouts: ``data.train_batch_size`` prompts from ``data.train_files`` through the
   tokenizer's chat template, ``actor_rollout_ref.rollout.n`` samples each from
   ``actor_rollout_ref.model.path`` (Hugging Face ``generate`` here, vLLM/SGLang in verl);
3. the reward: ``reward.custom_reward_function`` (examples/verl/reward.py, asym's grader);
4. verl's ``upsample_batch_to_divisible_size`` (padding rows, as before an update) and verl's
   ``trainer._compute_advantage`` with the configured estimator; the advantages and asym's
   diagnostics of the batch are printed.

What stands in: TransferQueue's ``kv_batch_get`` / ``kv_batch_put`` (an in-memory store; the
real one starts Ray actors) and the rollout engine. It stops before ``trainer.init()``, which
starts verl's FSDP/vLLM workers on GPUs. ``ASYM_CPU_DROP_ROLLOUTS=k`` drops the last k rollouts
(as a filter would) so that verl pads the batch.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from omegaconf import OmegaConf


class InMemoryTransferQueue:
    """TransferQueue's KV calls on a dict: fields per key, response-level tensors per row."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.tags: dict[str, dict] = {}

    def kv_batch_put(self, keys, partition_id, fields=None, tags=None):
        from transfer_queue import KVBatchMeta

        for i, key in enumerate(keys):
            row = self.rows.setdefault(key, {})
            for name in (fields.keys() if fields is not None else []):
                value = fields[name]
                if isinstance(value, torch.Tensor):
                    row[name] = value.unbind(0)[i] if value.is_nested else value[i]
                else:  # non-tensor stacks
                    row[name] = value[i] if isinstance(value, list) else value.tolist()[i]
            if tags is not None:
                self.tags[key] = tags[i]
        return KVBatchMeta(keys=list(keys), tags=[self.tags.get(k, {}) for k in keys], partition_id=partition_id)

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        from tensordict import TensorDict
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        names = select_fields if select_fields is not None else list(self.rows[keys[0]])
        names = [n for n in names if all(n in self.rows[k] for k in keys)]
        if not names:
            return TensorDict({}, batch_size=len(keys))
        return list_of_dict_to_tensordict([{n: self.rows[k][n] for n in names} for k in keys])


def _reward_fn(config):
    spec = config.reward.custom_reward_function
    module_spec = importlib.util.spec_from_file_location("asym_example_reward", spec.path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, spec.name)


def _rollouts(config, store: InMemoryTransferQueue, n_drop: int):
    """Sample the step's rollouts and put them in the store as verl's agent loop does (keys
    ``{uid}_{session}_0``, the reward on the last response token in ``rm_scores``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.path.expanduser(config.actor_rollout_ref.model.path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    rows = pq.read_table(os.path.expanduser(config.data.train_files)).to_pylist()[: config.data.train_batch_size]
    n = config.actor_rollout_ref.rollout.n
    reward = _reward_fn(config)
    torch.manual_seed(config.actor_rollout_ref.rollout.get("seed", 0) or 0)
    keys, tags = [], []
    for p, row in enumerate(rows):
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False)
        ids = ids["input_ids"] if not isinstance(ids, list) else ids
        prompt = torch.tensor([ids] * n)
        with torch.no_grad():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                 temperature=config.actor_rollout_ref.rollout.temperature,
                                 max_new_tokens=config.data.max_response_length,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        uid = f"p{p}"
        for j in range(n):
            response = out[j, prompt.size(1):]
            length = int((response != tokenizer.pad_token_id).sum().clamp(min=1))
            response = response[:length]
            text = tokenizer.decode(response, skip_special_tokens=True)
            score = reward(row["data_source"], text, row["reward_model"]["ground_truth"], row.get("extra_info"))
            rm = torch.zeros(length)
            rm[-1] = score
            input_ids = torch.cat([prompt[j], response])
            key = f"{uid}_{j}_0"
            store.rows[key] = {"uid": uid, "prompts": prompt[j], "responses": response, "input_ids": input_ids,
                               "attention_mask": torch.ones_like(input_ids),
                               "position_ids": torch.arange(input_ids.numel()),
                               "response_mask": torch.ones(length, dtype=torch.int64), "rm_scores": rm}
            keys.append(key)
            tags.append({"is_padding": False, "prompt_len": prompt.size(1), "response_len": length,
                         "seq_len": input_ids.numel()})
            print(f"rollout {key}: reward {score:.0f}  {text!r}")
    for key in keys[len(keys) - n_drop:]:
        del store.rows[key]
    keep = len(keys) - n_drop
    store.tags.update(zip(keys[:keep], tags[:keep]))
    return keys[:keep], tags[:keep], tokenizer


def run_on_cpu(config, task_runner_class=None) -> None:
    """Replaces verl's ``run_ppo``: TaskRunnerV1.run up to the trainer, then one advantage step."""
    import transfer_queue
    from transfer_queue import KVBatchMeta
    from verl import DataProto
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1 import get_trainer_cls

    from asymcli.integrations.verl import batch_metrics

    trainer_cls = get_trainer_cls(config.trainer.v1.trainer_mode)  # as verl's TaskRunnerV1.run
    config.transfer_queue.enable = True
    OmegaConf.resolve(config)
    store = InMemoryTransferQueue()
    transfer_queue.kv_batch_get, transfer_queue.kv_batch_put = store.kv_batch_get, store.kv_batch_put
    trainer = trainer_cls(config=config)
    print(f"trainer: {type(trainer).__module__}.{type(trainer).__name__} "
          f"(trainer.v1.trainer_mode={config.trainer.v1.trainer_mode}, verl's branches: {trainer.trainer_mode})")

    keys, tags, tokenizer = _rollouts(config, store, int(os.environ.get("ASYM_CPU_DROP_ROLLOUTS", "0")))
    batch = KVBatchMeta(keys=keys, tags=tags, partition_id="train")
    trainer.global_steps = 1  # fit() starts at step 1
    batch = upsample_batch_to_divisible_size(batch, trainer._get_required_batch_multiple(dp_size=1),
                                             tokenizer.eos_token_id)  # verl's padding rows
    metrics: dict = {}
    batch = trainer._compute_advantage(batch, metrics=metrics)  # verl's step 7, the asym estimator

    algo = config.algorithm
    print(f"advantages (algorithm.adv_estimator={algo.adv_estimator}, asym_beta_pos={algo.get('asym_beta_pos')}, "
          f"asym_beta_neg={algo.get('asym_beta_neg')}):")
    for key, tag in zip(batch.keys, batch.tags, strict=True):
        row = store.rows[key]
        adv = row["advantages"]
        value = float(adv[0]) if adv.numel() else 0.0
        print(f"  {key[:12]:<12} reward {float(row['rm_scores'].sum()):.0f}  advantage {value:+.4f}"
              f"{'  (padding)' if tag.get('is_padding') else ''}")
    real = [k for k, t in zip(batch.keys, batch.tags, strict=True) if not t.get("is_padding")]
    data = store.kv_batch_get(real, "train", ["response_mask", "rm_scores"])
    proto = DataProto(batch=data.to_padded_tensor(),
                      non_tensor_batch={"uid": np.array([store.rows[k]["uid"] for k in real], dtype=object)})
    proto.batch["token_level_scores"] = proto.batch.pop("rm_scores")
    print("asym diagnostics:", {k: round(v, 4) for k, v in batch_metrics(proto).items()})
    print(f"OK: {len(real)} rollouts and {len(batch.keys) - len(real)} padding rows through verl's "
          f"_compute_advantage; stopping before trainer.init() (verl's workers need GPUs)")


def main() -> None:
    from verl.trainer import main_ppo

    main_ppo.run_ppo = run_on_cpu  # the one replaced piece: no Ray cluster, no GPU workers
    sys.argv[0] = "verl.trainer.main_ppo"
    main_ppo.main()  # verl's Hydra entry point, same command line as python -m verl.trainer.main_ppo


if __name__ == "__main__":
    main()
