"""The sections of an experiment config, each key declared as data (asymcli/config_fields.py):
its type (the annotation), default, range and description. The loader, the range checks, the
JSON schema (workflow/schemas/config.schema.json) and docs/config.md all read these declarations.
Checks that span several keys (a mini-batch dividing the batch, a known method) live in
asymcli/config.py, which re-exports every section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .config_fields import setting

# ---------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------


@dataclass
class GeneratorSpec:
    """One reasoning-gym generator of ``task.generators`` (asymcli/rg_tasks.py)."""

    name: str = setting("", "a reasoning-gym generator (reasoning_gym.factory.DATASETS), e.g. count_bits")
    weight: float = setting(1.0, "share of task.n_train (largest remainder); held-out rows: task.n_heldout each")
    config: dict[str, Any] = setting({}, "the generator's own config fields (not seed / size)")


@dataclass
class TaskConfig:
    """Training prompts (the prep stage)."""

    kind: Literal["arithmetic", "benchmark", "reasoning_gym"] = setting(
        "arithmetic", "embedded task, a benchmark source, or reasoning-gym generators")
    seed: int = setting(0, "generator seed (arithmetic)")
    n_train: int = setting(20000, "training problems (arithmetic), even over tiers; the warm-up sees each ~5 times")
    n_heldout: int = setting(150, "held-out problems per tier (arithmetic)")
    tiers: list[str] = setting(["t1", "t2", "t3", "t4"], "arithmetic tiers used")
    worked_frac: dict[str, float] = setting({"t4": 0.2}, "worked share per tier, rest answer-only")
    solution_forms: Literal["canonical", "varied"] = setting(
        "canonical", "varied: worked steps in random valid orders (base keeps entropy that costs no accuracy)")
    source: str = setting("math_train", "benchmark registry name when kind == benchmark")
    path: str | None = setting(None, "local Parquet/JSONL/JSON file for that source")
    hub_id: str | None = setting(None, "hub dataset id (used only if present locally)")
    columns: dict[str, str] = setting({}, "schema column -> file column")
    limit: int | None = setting(None, "keep the first N training problems")
    generators: list[GeneratorSpec] = setting(
        [], "reasoning_gym: the generators, each with weight and config")


@dataclass
class ModelConfig:
    """The policy: the embedded tiny model, or a Hugging Face causal LM."""

    kind: Literal["tiny", "hf"] = setting("tiny", "tiny: the embedded model; hf: a Hugging Face causal LM (model.path)")
    path: str | None = setting(None, "HF folder or hub id (kind == hf)")
    hidden_size: int = setting(64, "tiny model shape (0.13M parameters: the best held-out accuracy per CPU second "
                                   "of the shapes tried with bench/base_bench.py)")
    num_layers: int = setting(2, "tiny model: transformer layers")
    num_heads: int = setting(4, "tiny model: attention heads")
    num_kv_heads: int = setting(2, "tiny model: key/value heads (grouped-query attention)")
    intermediate_size: int = setting(256, "tiny model: MLP width")
    max_position: int = setting(256, "tiny model: longest sequence, prompt plus response, in tokens")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = setting("auto", "auto: fp32 on CPU, bf16 on GPU")
    chat_template: bool = setting(True, "wrap prompts with the tokenizer's chat template")
    enable_thinking: bool = setting(False, "Qwen3 thinking mode (the paper trains non-thinking)")


@dataclass
class BaseConfig:
    """Supervised warm-up of the tiny model (the base stage; embedded default only)."""

    steps: int = setting(1500, "optimizer steps (~3.5 min on one CPU core with the default model)")
    batch_size: int = setting(64, "sequences per optimizer step")
    lr: float = setting(3e-3, "peak learning rate: linear warm-up, then cosine to 0")
    warmup_steps: int = setting(50, "steps of the linear learning-rate warm-up")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    seed: int = setting(0, "seed of the warm-up's initial weights and batch order")
    probe_prompts: int = setting(64, "prompts used to record the group-accuracy distribution at RL start")
    max_seconds: float | None = setting(None, "stop early after this wall time (reported; then not reproducible)")
    threads: int = setting(1, "torch CPU threads for the warm-up; 1 is fastest for the tiny model; 0 = torch's default")
    prebuilt: bool = setting(True, "use the warmed-up base shipped with asym when its recipe (task, model, these "
                                   "settings, training rows) matches; false = always warm up here")


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


@dataclass
class DeepSpeedConfig:
    """DeepSpeed ZeRO for multi-GPU training (docs/scaling.md)."""

    stage: int = setting(0, "0 = plain torch; 1/2/3 = ZeRO stage", one_of=(0, 1, 2, 3))
    offload_optimizer: bool = setting(False, "keep the optimizer state in CPU memory")
    offload_params: bool = setting(False, "stage 3 only")


@dataclass
class ScheduleConfig:
    """The entropy-targeting beta schedule of method ``asym_adaptive`` (asymcli/algorithm/schedule.py,
    docs/scan.md). Read only by runs whose ``beta_schedule`` is ``entropy``: other runs ignore it,
    and it is not part of their settings (changing it retrains nothing else)."""

    target: float = setting(1.0, "entropy target: x the entropy of the first step's rollouts (relative), or "
                                 "nats/token (absolute)", finite=True, gt=0,
                            hint="nats/token, or a multiple of the base's entropy")
    target_mode: Literal["relative", "absolute"] = setting("relative", "the unit of target")
    gain: float = setting(0.5, "change of beta_pos - beta_neg per unit relative entropy error, per step",
                          finite=True, ge=0)
    beta_min: float = setting(0.0, "both betas stay in [beta_min, beta_max]", finite=True)
    beta_max: float = setting(1.0, "upper bound of both betas (0 <= beta_min <= beta_max)", finite=True)
    level: Literal["mass", "fixed"] = setting(
        "mass", "mass: (beta_pos + beta_neg)/2 keeps GRPO's mean |advantage| on the step's accuracy histogram; "
                "fixed: 0.5")
    kappa_ema: float = setting(0.95, "weight of the past in the moving average of kappa_B (its sign sets the "
                                     "direction; ~20 steps, as Appendix E's kappa-hat)", ge=0, lt=1)


@dataclass
class TrainConfig:
    """One RL run (the train stage). Defaults are the embedded CPU default."""

    method: str = setting("asym", "a key of METHODS")
    estimator: str = setting("asym", "advantage estimator (set by the method)")
    beta_pos: float = setting(0.9, "AsymGRPO's weight of the positive (correct) advantages, a finite number >= 0")
    beta_neg: float = setting(0.4, "AsymGRPO's weight of the negative (wrong) advantages, a finite number >= 0")
    seed: int = setting(0, "the run's seed: prompt order and sampling")
    rollout_shards: int = setting(0, "sample each step in this many seeded chunks (same run on any world size "
                                     "dividing it; one generate call per chunk); 0 = one per process",
                                  ge=0, hint="0 = one per process")
    steps: int = setting(60, "RL steps", ge=1)
    prompts_per_step: int = setting(32, 'global batch, in prompts (the paper\'s "global batch size")', ge=1)
    mini_batch_prompts: int = setting(16, "PPO mini-batch, in prompts; divides prompts_per_step", ge=1)
    epochs: int = setting(1, "PPO epochs over each global batch", ge=1)
    micro_batch_seqs: int = setting(0, "sequences per forward pass for grad accumulation; 0 = whole mini-batch")
    forward_tokens: int = setting(
        16384, "padded tokens per forward group in the update and the log-prob passes: rows sorted by length, "
               "each group as wide as its longest row. Smaller pads less (2048: a third less update time on the "
               "testbed's CPU step) but regroups the float sums of the weight gradients, so a run's numbers "
               "depend on it; 16384 is the value every committed run was made with", ge=1)
    logprob_gain_every: int = setting(
        1, "the post-update forward over the correct rollouts that measures the log-prob gain (Fig. 2 d, h): "
           "every N steps and the last; 0 = never (logprob_gain_correct is NaN on other steps). A diagnostic: "
           "it changes no trained number", ge=0)
    group_size: int = setting(8, "G rollouts per prompt", ge=2, hint="a group needs at least two rollouts")
    lr: float = setting(5e-5, "AdamW peak learning rate", gt=0, le=1)
    warmup_steps: int = setting(10, "steps of the linear learning-rate warm-up")
    weight_decay: float = setting(0.0, "AdamW weight decay", finite=True)
    adam_beta1: float = setting(0.9, "AdamW beta1", finite=True)
    adam_beta2: float = setting(0.999, "AdamW beta2", finite=True)
    adam_eps: float = setting(1e-8, "AdamW epsilon (torch's and verl's default)", finite=True, gt=0)
    grad_clip: float = setting(1.0, "gradient norm clip", finite=True)
    max_new_tokens: int = setting(48, "longest response, in tokens", ge=1)
    temperature: float = setting(1.0, "rollout sampling temperature", finite=True, ge=0)
    top_p: float = setting(1.0, "rollout nucleus sampling", gt=0, le=1)
    clip_eps_low: float = setting(0.2, "PPO ratio clip below 1", finite=True, ge=0)
    clip_eps_high: float = setting(0.2, "PPO ratio clip above 1; 0.28 = clip-higher (DAPO)", finite=True, ge=0)
    dual_clip_c: float | None = setting(None, "dual-clip constant (e.g. 3.0); None = off", gt=1, hint="or null")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = setting(
        "token-mean", "how token losses are averaged over a mini-batch")
    entropy_coef: float = setting(0.0, "entropy bonus lambda (Eq. 7 entropy)", finite=True)
    kl_coef: float = setting(0.0, "k3 KL to the reference (initial) policy; 0 = off", finite=True)
    beta_schedule: Literal["fixed", "entropy"] = setting(
        "fixed", "entropy: betas set every step by train.schedule (method asym_adaptive); beta_pos/beta_neg are "
                 "the start")
    schedule: ScheduleConfig = setting(factory=ScheduleConfig, doc="the entropy-targeting beta schedule")
    eval_every: int = setting(10, "greedy (T = 0) test accuracy every N steps (0 = never): held-out split, or "
                                  "eval.benchmarks for task.kind benchmark")
    eval_prompts: int = setting(200, "held-out prompts in that greedy evaluation (arithmetic task; benchmarks: "
                                     "eval.benchmarks[].curve_limit)")
    checkpoint_every: int = setting(20, "save a checkpoint every N steps; 0 = only the final checkpoint")
    keep_last: int = setting(2, "keep this many latest checkpoints (plus the ones eval needs)")
    keep_steps: list[int] = setting([], "never delete these checkpoint steps")
    engine: Literal["hf", "static", "vllm"] = setting("hf", "rollout backend")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "auto: cuda when available, else cpu")
    threads: int = setting(1, "torch CPU threads per run (1: two runs share 2 cores well); 0 = torch default")
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass (less memory)")
    vllm_gpu_memory_utilization: float = setting(0.5, "share of GPU memory vLLM may take (engine vllm)")
    deepspeed: DeepSpeedConfig = setting(factory=DeepSpeedConfig, doc="DeepSpeed ZeRO (multi-GPU training)")
    # Experiment trackers (issue 15), each an optional extra (`pip install 'asym[wandb]'`); they
    # get every step's metrics under verl's names and the run config, locally (asymcli/trackers.py).
    loggers: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = setting(
        [], "experiment trackers: tensorboard, wandb (offline), mlflow (local store), trackio (local); "
            "[] = Parquet only")


# ---------------------------------------------------------------------------
# Evaluation, grid, report
# ---------------------------------------------------------------------------


@dataclass
class BenchmarkSpec:
    """One evaluation benchmark."""

    name: str = setting("arith_heldout", "registry name (asymcli.evaluation.benchmarks.REGISTRY)")
    k: int = setting(4, "samples per problem (Avg@k); 1 with temperature 0", ge=1)
    temperature: float = setting(0.4, "sampling temperature", finite=True, ge=0)
    top_p: float = setting(1.0, "nucleus sampling")
    max_new_tokens: int | None = setting(None, "None: the train max_new_tokens")
    path: str | None = setting(None, "local Parquet/JSONL/JSON file")
    hub_id: str | None = setting(None, "hub dataset id (used only if present locally)")
    columns: dict[str, str] = setting({}, "schema column -> file column")
    limit: int | None = setting(None, "first N problems")
    template: str | None = setting(None, "prompt template override ({problem} is replaced)")
    curve_limit: int | None = setting(None, "problems (evenly spaced) in the trainer's greedy curve every "
                                            "train.eval_every steps; None = all",
                                      ge=1, hint="or null for all problems")


@dataclass
class EvalConfig:
    """Checkpoint evaluation (the eval stage)."""

    benchmarks: list[BenchmarkSpec] = setting(factory=lambda: [BenchmarkSpec()],
                                              doc="the benchmarks, each named once")
    steps: Literal["final", "all"] = setting("final", "which checkpoints of a run to evaluate")
    batch_size: int = setting(256, "sequences per generation call")
    seed: int = setting(1234, "sampling seed")


@dataclass
class GridConfig:
    """What `asym run-grid` / `snakemake all` runs."""

    betas: list[list[float]] = setting([[0.9, 0.4]], "AsymGRPO pairs")
    grid: list[float] = setting([], "cartesian beta grid (Figure 4d); [] = none")
    methods: list[str] = setting(["grpo", "reinforce"], "named baselines")
    seeds: list[int] = setting([0], "training seeds, at least one")
    adaptive_targets: list[float] = setting(
        [], "with asym_adaptive in methods: one asym_adaptive run per target (its train.schedule.target, in "
            "train.schedule.target_mode's unit), ids asym_adaptive_t{target}_s{seed}; [] = one run at "
            "train.schedule.target, id asym_adaptive_s{seed}")
    bases: list[int] = setting(
        [], "base seeds (tiny model): [] = one base, base.seed, in base/; else seed s trains from base "
            "bases[s % len(bases)], each in base/b{k}/ (seeds nested in bases, paired within a base)")


@dataclass
class ReportConfig:
    """Tables, figures and claims (the report stage and `asym claims`)."""

    checkpoint: str = setting("final", '"final" or a step number, the checkpoint Table 2 reports')
    ema: float = setting(0.7, "EMA smoothing of accuracy curves (the paper's 0.7)")
    kappa_steps: int = setting(20, "T of kappa-hat (Appendix E)")
    equivalence_margin: float = setting(
        1.0, "asym claims: accuracy checks whose 90% CI of the paired difference lies inside +-this many "
             'accuracy points read "equivalent" (TOST at 0.05)')
    primary_endpoint: str | None = setting(
        None, 'asym claims: the one check declared primary before the runs, by id "{claim}.{check}" as '
              'claims.md lists them (e.g. "5a.1" = AsymGRPO (0.9, 0.4) - GRPO, test accuracy); it is tested '
              "alone at 0.05, every other check is labelled secondary and Holm-adjusted over the secondary "
              "ones; null = none declared (Holm over all checks)")


@dataclass
class ResourcesConfig:
    """Per-rule resources for Snakemake (cluster executors read them)."""

    train_threads: int = setting(1, "CPU threads of a train job")
    train_bundle: int = setting(1, "runs trained together in one process (asymcli/training/bundle.py: runs on "
                                   "the CPU static path that share a base and shapes, split evenly); 1 = one run "
                                   "per job. A run's numbers do not depend on it",
                                ge=1, hint="1 = one run per job")
    train_gpus: int = setting(0, "GPUs of a train job (more than 1: one process per GPU under torchrun)")
    train_mem_mb: int = setting(4000, "memory of a train job, MB")
    train_runtime_min: int = setting(60, "wall time of a train job, minutes (cluster executors)")
    eval_threads: int = setting(1, "CPU threads of an eval job")
    eval_bundle: int = setting(1, "runs evaluated together in one job (asym eval --runs: one run after another "
                                  "in one process, which starts and imports once; runs that share a base, split "
                                  "evenly); 1 = one run per job. A run's samples do not depend on it",
                               ge=1, hint="1 = one run per job")
    eval_gpus: int = setting(0, "GPUs of an eval job")
    eval_mem_mb: int = setting(4000, "memory of an eval job, MB")
    eval_runtime_min: int = setting(60, "wall time of an eval job, minutes (cluster executors); an eval "
                                        "bundle's job gets this times its number of runs")
    slurm_partition: str | None = setting(None, "SLURM partition of the train and eval jobs")
    slurm_account: str | None = setting(None, "SLURM account of the train and eval jobs")


@dataclass
class GradingConfig:
    """The grader (asymcli/grading/): the training reward and every evaluation use it."""

    multi_box: Literal["set", "last"] = setting(
        "set", 'several boxes in a response: "set" = the final joined boxes are one answer set (math-verify, '
               'lighteval), "last" = the last box only (verl); default "set": MATH-500/OlympiadBench have '
               "multi-answer problems, and a set never equals a one-value gold, so boxing several guesses "
               "earns nothing")
    rel_tol: float | None = setting(None, "numeric answers within this relative tolerance count as equal "
                                          "(Qwen-style graders use 1e-4); None = exact (the default)", gt=0, lt=1)
    rg_threshold: float = setting(
        1.0, "reasoning-gym rows (task.kind reasoning_gym): reward 1 when the generator's score_answer is >= "
             "this, else 0 (its partial scores made binary; docs/grading.md); in (0, 1]")


@dataclass
class NumericsConfig:
    """CPU numerics: the same numbers on other machines of a CPU vendor (asymcli/platform.py,
    docs/reliability.md)."""

    portable: bool = setting(
        True, "pin torch's, MKL's and oneDNN's CPU kernels to AVX2 in every stage (ATEN_CPU_CAPABILITY=avx2, "
              "MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2, set before torch loads) and the evaluation's threads "
              "(resources.eval_threads), so that a config and seed give bit-identical artifacts on x86-64 "
              "CPUs with AVX2 of one vendor (MKL honours its branch only on Intel CPUs: AMD and Intel "
              "machines part; docs/reliability.md); false = each CPU's fastest kernels (results then "
              "depend on the CPU)")


@dataclass
class Config:
    """A whole experiment."""

    name: str = setting("default", "the experiment's name (report titles)")
    results_dir: str = setting("results", "where every artifact goes (relative: to the working directory)")
    task: TaskConfig = setting(factory=TaskConfig, doc="training prompts (the prep stage)")
    model: ModelConfig = setting(factory=ModelConfig, doc="the policy")
    base: BaseConfig = setting(factory=BaseConfig, doc="supervised warm-up of the tiny model (the base stage)")
    train: TrainConfig = setting(factory=TrainConfig, doc="one RL run (the train stage)")
    eval: EvalConfig = setting(factory=EvalConfig, doc="checkpoint evaluation (the eval stage)")
    grid: GridConfig = setting(factory=GridConfig, doc="the runs of `asym run-grid` / `snakemake all`")
    report: ReportConfig = setting(factory=ReportConfig, doc="tables, figures and claims")
    resources: ResourcesConfig = setting(factory=ResourcesConfig, doc="per-rule resources for Snakemake")
    grading: GradingConfig = setting(factory=GradingConfig, doc="the grader")
    numerics: NumericsConfig = setting(factory=NumericsConfig, doc="CPU numerics")
    methods: dict[str, dict[str, Any]] = setting({}, "per-method overrides of train fields")
