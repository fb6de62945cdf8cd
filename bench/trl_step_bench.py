"""asym's train step against TRL's GRPOTrainer on the default config's step, side by side.

Issue 31 ("Must show": TRL time / asym time). Both sides, in the same process and
interleaved (one asym step after each TRL step, so load from other jobs hits both alike):

- the same base: the prebuilt default base (asymcli/embedded/assets/default-base/model);
- the same prompts: the default config's training split (the prep stage's rows), one user
  turn through the base's chat template (TRL renders the same template; the script checks
  that both sides see the same prompt token ids);
- the same reward: the project's grader (asymcli.grading.Grader) is TRL's reward function;
- the same work per step: the default config's 32 prompts x G = 8 = 256 completions, sampled
  at temperature 1.0, top_p 1.0, at most 48 new tokens (asym: the config's engine, the default's
  ``static``, i.e. its stacked decoder as a bundle of one, and its forwards in 2048-token length
  groups, ``train.forward_tokens``; TRL: HF ``generate``, without vLLM); the old log-probs of the
  batch; then 2 optimizer steps of
  128 completions (asym: 2 mini-batches of 16 prompts; TRL: per_device_train_batch_size 128,
  steps_per_generation 2, num_iterations 1, gradient_accumulation_steps 1, which makes TRL
  compute old log-probs too); token-mean loss (asym ``token-mean``; TRL ``loss_type="dapo"``),
  clip 0.2, no KL (beta 0), no gradient checkpointing, AdamW lr 5e-5, grad clip 1.0, fp32.

One asym step = ``Trainer.train_step`` (the project's public API, built as stages/train.py
builds it, ``train.eval_every`` 0 so no evaluation runs inside the step); one TRL step = the
wall time between the ends of two successive generation cycles of ``GRPOTrainer.train()``
(generation, rewards, old log-probs, 2 optimizer steps, TRL's logging). Start-up (imports,
model loads, trainer construction, the first step of each side) is excluded. Each thread
count runs in its own child process; s/step are medians over ``--steps`` steps.

    python bench/trl_step_bench.py                      # 1 and 2 threads, 5 steps each (about 3 min)
    python bench/trl_step_bench.py --threads 1 --steps 3

Prints one line per thread count and ``TRL / asym`` ratios; JSON lines go to
``$OUT/trl_step_bench.jsonl`` when OUT is set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(a: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import torch

    torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore")
    import datasets
    import transformers
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from asymcli.config import load_config, resolve_run
    from asymcli.embedded.prebuilt import PREBUILT_DIR
    from asymcli.sampling.grade import make_grader
    from asymcli.sampling.models import encode_prompts
    from asymcli.training.trainer import Trainer
    from stages.prep import build_prompts

    transformers.logging.set_verbosity_error()
    base = PREBUILT_DIR / "model"
    cfg = load_config(Path(a.config))
    tc = resolve_run(cfg, a.method)
    tc.eval_every = 0
    tc.threads = a.threads
    if a.engine:
        tc.engine = a.engine
    rows = build_prompts(cfg)
    rows = rows.to_pylist() if hasattr(rows, "to_pylist") else list(rows)
    train = [r for r in rows if r["split"] == "train"]
    heldout = [r for r in rows if r["split"] in ("heldout", "test")]
    tmp = Path(tempfile.mkdtemp(prefix="asym-trl-bench-"))

    # ---- asym
    from asymcli.training.bundle import Bundle, stacked_reason

    stacked = stacked_reason(tc, cfg.model.dtype) is None  # the static engine on the CPU: a bundle of one
    asym = Trainer(cfg, tc, train, heldout, base, tmp / "asym", progress=False, stacked=stacked)
    bundle = Bundle([asym]) if stacked else None
    torch.set_num_threads(a.threads)
    asym_times: list[float] = []
    asym_cpu: list[float] = []
    asym_len: list[float] = []
    asym_next = [1]

    def asym_step() -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        row = (bundle.train_step(asym_next[0], [asym])[id(asym)] if bundle is not None
               else asym.train_step(asym_next[0]))
        dt = time.perf_counter() - t0
        asym_cpu.append(time.process_time() - c0)
        asym_next[0] += 1
        asym_len.append(float(row["response_len_mean"]))
        return dt

    # ---- TRL
    G, P = tc.group_size, tc.prompts_per_step
    if P % tc.mini_batch_prompts or tc.epochs != 1 or tc.micro_batch_seqs not in (0, tc.mini_batch_prompts * G):
        raise SystemExit("this bench mirrors one epoch of whole mini-batches (the default config's train section)")
    n_mb = P // tc.mini_batch_prompts
    grader = make_grader(cfg.grading)

    trl_lens: list[float] = []  # mean completion length of each TRL generation

    def reward(completions: list[Any], answer: list[str], completion_ids: list[list[int]] | None = None,
               **_: Any) -> list[float]:
        if completion_ids:
            trl_lens.append(sum(len(c) for c in completion_ids) / len(completion_ids))
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [1.0 if v.correct else 0.0 for v in grader.grade_many(texts, answer)]

    reward.__name__ = "asym_grader"
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    dataset = datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]} for r in train])
    targs = GRPOConfig(
        output_dir=str(tmp / "trl"), report_to="none", save_strategy="no", logging_steps=1_000_000,
        use_cpu=True, bf16=False, fp16=False, seed=tc.seed, dataloader_num_workers=0,
        per_device_train_batch_size=tc.mini_batch_prompts * G, gradient_accumulation_steps=1,
        steps_per_generation=n_mb, num_iterations=1, num_generations=G,
        max_steps=n_mb * (1 + a.steps), max_completion_length=tc.max_new_tokens,
        temperature=tc.temperature, top_p=tc.top_p, top_k=0,
        loss_type="dapo" if tc.loss_agg == "token-mean" else "grpo", beta=0.0,
        epsilon=tc.clip_eps_low, epsilon_high=tc.clip_eps_high,
        learning_rate=tc.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=tc.warmup_steps * n_mb,
        weight_decay=tc.weight_decay, adam_beta1=tc.adam_beta1, adam_beta2=tc.adam_beta2,
        adam_epsilon=tc.adam_eps, max_grad_norm=tc.grad_clip, gradient_checkpointing=False,
        chat_template_kwargs={"enable_thinking": cfg.model.enable_thinking},
    )
    trl_times: list[float] = []
    trl_cpu: list[float] = []
    seen_prompt_ids: list[list[int]] = []
    gen_calls: list[int] = []  # prompts per TRL generation call

    class Interleave(TrainerCallback):
        """At the end of each TRL generation cycle: time it, then run one timed asym step."""

        def __init__(self) -> None:
            self.resume: tuple[float, float] | None = None  # when TRL's loop got control back (wall, CPU)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % n_mb:
                return
            now, cpu = time.perf_counter(), time.process_time()
            if self.resume is not None:
                trl_times.append(now - self.resume[0])
                trl_cpu.append(cpu - self.resume[1])
                asym_times.append(asym_step())
            self.resume = (time.perf_counter(), time.process_time())

    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=reward, args=targs,
                          train_dataset=dataset, callbacks=[Interleave()])
    # Same prompt token ids on both sides: TRL's rendering of a batch's first prompt vs asym's.
    orig_generate = trainer._generate

    def spy(prompts: list, *args: Any, **kwargs: Any) -> Any:
        gen_calls.append(len(prompts))
        if not seen_prompt_ids:
            rendered = tok.apply_chat_template(prompts[0], tokenize=False, add_generation_prompt=True,
                                               **targs.chat_template_kwargs)
            seen_prompt_ids.append(tok(rendered, add_special_tokens=False)["input_ids"])
            seen_prompt_ids.append(encode_prompts(asym.tokenizer, [prompts[0][-1]["content"]], cfg.model)[0])
        return orig_generate(prompts, *args, **kwargs)

    trainer._generate = spy
    torch.set_num_threads(a.threads)
    asym_step()  # asym's warm-up step (TRL's is its first cycle, before the callback starts timing)
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    if any(c != P * G for c in gen_calls):
        raise SystemExit(f"TRL generated {gen_calls} completions per call, not {P * G}: the steps would differ")
    if len(seen_prompt_ids) == 2 and seen_prompt_ids[0] != seen_prompt_ids[1]:
        raise SystemExit(f"prompt ids differ: TRL {seen_prompt_ids[0]} vs asym {seen_prompt_ids[1]}")
    asym_s, trl_s = statistics.median(asym_times), statistics.median(trl_times)
    return {"what": "trl_step_bench", "threads": torch.get_num_threads(), "asym_s_per_step": asym_s,
            "trl_s_per_step": trl_s, "trl_over_asym": trl_s / asym_s, "asym_steps": asym_times,
            "trl_steps": trl_times,
            "asym_cpu_s_per_step": statistics.median(asym_cpu), "trl_cpu_s_per_step": statistics.median(trl_cpu), "completions_per_step": P * G, "optimizer_steps_per_step": n_mb,
            "method": a.method, "config": a.config, "engine": tc.engine, "same_prompt_ids": seen_prompt_ids[0] == seen_prompt_ids[1],
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                         "datasets": datasets.__version__, "python": platform.python_version()},
            "load_end": os.getloadavg(), "interleaved_loop_s": total,
            "asym_response_len_mean": asym_len, "trl_completion_len_mean": trl_lens, "trl_generate_calls": gen_calls}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    p.add_argument("--method", default="grpo", help="asym's method (GRPO, as TRL's; the estimator does not change the cost)")
    p.add_argument("--threads", default="1,2", help="comma list; each in its own child process")
    p.add_argument("--steps", type=int, default=5, help="timed steps per side (after one warm-up step each)")
    p.add_argument("--engine", choices=["hf", "static"], help="asym's rollout engine (default: the config's, static "
                   "for the default: the stacked decoder of a bundle of one; hf was the default's before issue 31)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        a.threads = int(a.threads)
        print("RESULT " + json.dumps(child(a)), flush=True)
        return
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    print(f"# {cpu_model()}, {os.cpu_count()} logical CPUs; load average {load0[0]:.2f} at start", flush=True)
    results = []
    for th in [int(x) for x in a.threads.split(",") if x]:
        cmd = [sys.executable, __file__, "--child", "--threads", str(th), "--steps", str(a.steps),
               "--config", a.config, "--method", a.method, *(["--engine", a.engine] if a.engine else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
            raise SystemExit(f"threads={th}: child failed (rc {proc.returncode})")
        r = json.loads(lines[-1][len("RESULT "):])
        results.append(r)
        v = r["versions"]
        print(f"threads {r['threads']}: asym {r['asym_s_per_step']:.3f} s/step, TRL {r['trl_s_per_step']:.3f} s/step, "
              f"TRL / asym {r['trl_over_asym']:.2f}  (median of {len(r['asym_steps'])} steps each; "
              f"asym {', '.join(f'{x:.3f}' for x in r['asym_steps'])}; TRL {', '.join(f'{x:.3f}' for x in r['trl_steps'])}; "
              f"load {r['load_end'][0]:.2f})", flush=True)
        print(f"  CPU seconds per step (process, all threads): asym {r['asym_cpu_s_per_step']:.3f}, "
              f"TRL {r['trl_cpu_s_per_step']:.3f}, TRL / asym {r['trl_cpu_s_per_step'] / r['asym_cpu_s_per_step']:.2f}",
              flush=True)
        print(f"  mean response length per step: asym {', '.join(f'{x:.1f}' for x in r['asym_response_len_mean'])}; "
              f"TRL {', '.join(f'{x:.1f}' for x in r['trl_completion_len_mean'])}; TRL generate calls "
              f"(prompts each): {r['trl_generate_calls']}", flush=True)
        if os.environ.get("OUT"):
            with open(Path(os.environ["OUT"]) / "trl_step_bench.jsonl", "a") as f:
                f.write(json.dumps(r) + "\n")
    v = results[0]["versions"]
    print(f"# torch {v['torch']}, transformers {v['transformers']}, trl {v['trl']}, datasets {v['datasets']}, "
          f"Python {v['python']}; {results[0]['completions_per_step']} completions and "
          f"{results[0]['optimizer_steps_per_step']} optimizer steps per step, engine {results[0]['engine']}; "
          f"same prompt ids: {all(r['same_prompt_ids'] for r in results)}; wall {time.perf_counter() - t0:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
