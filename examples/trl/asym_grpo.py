"""AsymGRPO with TRL: ``GRPOTrainer`` whose advantages are AsymGRPO's (Eq. 8), rewards from asym's grader.

CPU (the default; CI runs it): the tiny model asym ships (its prebuilt base, a 2-layer Qwen3
warmed up on arithmetic) on asym's arithmetic task, 2 steps, in about a minute:

    python examples/trl/asym_grpo.py --output-dir /tmp/asym-trl

GPU, the paper's setting (Appendix G: Qwen3-4B non-thinking, MATH train, lr 2e-6, G = 8, 128
prompts per step, mini-batch 64, 4,096-token responses, token-level loss, beta = (0.9, 0.4)),
on 4 GPUs with vLLM colocated:

    accelerate launch --num_processes 4 examples/trl/asym_grpo.py --paper --model Qwen/Qwen3-4B \\
        --train-file ~/data/math/train.parquet --output-dir runs/qwen3-4b-asym

``--train-file`` takes verl's RL parquet (examples/verl/prepare_tiny_data.py, verl's
math_dataset.py: ``prompt`` messages, ``reward_model.ground_truth``) or any parquet/JSONL with
``prompt`` and ``answer`` columns. ``--estimator`` takes any name of asym's registry
(asym, pos_only, neg_only, ent_decrease, ent_increase, grpo, grpo_unbiased, dr_grpo, reinforce).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datasets import Dataset, load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from asymcli.embedded.prebuilt import prebuilt_dir
from asymcli.embedded.tasks import generate_arithmetic
from asymcli.grading import grade
from asymcli.integrations.trl import AsymGRPOConfig, AsymGRPOTrainer


def correct(completions, answer, **kwargs) -> list[float]:
    """The 0/1 outcome reward: asym's grader on the final \\boxed{} answer (math-verify inside)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(grade(text, str(gold)).correct) for text, gold in zip(texts, answer, strict=True)]


def load_prompts(train_file: str | None, n: int) -> Dataset:
    if train_file is None:  # asym's embedded arithmetic task
        rows = [r for r in generate_arithmetic(n, 0) if r["split"] == "train"]
        return Dataset.from_dict({"prompt": [[{"role": "user", "content": r["prompt"]}] for r in rows],
                                  "answer": [r["answer"] for r in rows]})
    path = str(Path(train_file).expanduser())
    data = load_dataset("parquet" if path.endswith(".parquet") else "json", data_files=path, split="train")
    if "reward_model" in data.column_names:  # verl's RL parquet
        data = data.map(lambda r: {"answer": r["reward_model"]["ground_truth"]})
    return data.select_columns(["prompt", "answer"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--model", default=str(prebuilt_dir() / "model"), help="HF folder or hub id")
    parser.add_argument("--train-file", default=None, help="parquet/JSONL; default: asym's arithmetic task")
    parser.add_argument("--estimator", default="asym")
    parser.add_argument("--beta-pos", type=float, default=0.9)
    parser.add_argument("--beta-neg", type=float, default=0.4)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--paper", action="store_true", help="the paper's Qwen3-4B sizes (GPUs)")
    args = parser.parse_args(argv)

    if args.paper:  # Appendix G on 4 processes: 8 x 4 x 32 = 1024 completions (128 prompts x 8) per
        # generation, optimizer steps of 8 x 4 x 16 = 512 (the 64-prompt mini-batch), so 2 per generation
        sizes = dict(num_generations=8, per_device_train_batch_size=8, gradient_accumulation_steps=16,
                     steps_per_generation=32, learning_rate=2e-6, max_completion_length=4096,
                     loss_type="dapo", bf16=True, use_vllm=True, vllm_mode="colocate",
                     chat_template_kwargs={"enable_thinking": False}, max_steps=300, logging_steps=1,
                     save_steps=50, report_to="wandb")
    else:  # a CPU, the tiny model: 2 steps of 8 prompts x 4 rollouts
        sizes = dict(num_generations=4, per_device_train_batch_size=32, max_completion_length=40,
                     learning_rate=5e-5, max_steps=args.max_steps, logging_steps=1, report_to="none",
                     bf16=False, use_cpu=True)
    config = AsymGRPOConfig(
        output_dir=args.output_dir,
        advantage_estimator=args.estimator,
        beta_pos=None if args.estimator not in ("asym", "ent_decrease", "ent_increase") else args.beta_pos,
        beta_neg=None if args.estimator not in ("asym", "ent_decrease", "ent_increase") else args.beta_neg,
        asym_diagnostics=True,  # asym/none_solved_frac, asym/kappa_batch, ... in TRL's logs
        temperature=1.0, log_completions=True, **sizes)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto")
    n_prompts = config.max_steps * config.per_device_train_batch_size
    trainer = AsymGRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=correct, args=config,
                              train_dataset=load_prompts(args.train_file, max(n_prompts, 64)))
    trainer.train()
    for entry in trainer.state.log_history:  # TRL's log, asym's diagnostics in it
        if "asym/mixed_frac" in entry:
            print(f"asym step {entry['step']}:", {k: round(v, 4) for k, v in entry.items()
                                                   if k.startswith(("asym/", "reward", "loss"))
                                                   and isinstance(v, float | int)})
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
