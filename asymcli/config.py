"""Experiment configuration: typed, self-documenting, validated early.

A config is one YAML file (see ``configs/default.yaml``). Every section is a dataclass
below; each field's comment is its documentation. Loading rejects unknown keys (naming
the full key path and the file), wrong types and out-of-range values before any work
starts. ``config_json_schema()`` derives the JSON schema that the Snakefile validates
against (``workflow/schemas/config.schema.json`` is generated from it; a test keeps the
two equal).

Methods: a run is (method, beta_pos, beta_neg, seed). ``METHODS`` (asymcli/methods.py)
maps each named method of the paper to the training-config fields it sets; ``resolve_run``
applies one to a config. ``run_id`` names a run's folder.

Split by job: the method registry and run names live in ``asymcli.methods``, the generic
dataclass <-> YAML typing in ``asymcli.config_typing``; this module keeps the sections,
their range checks and the runs of a config, and re-exports the methods' names (the
stages, the Snakefile and the tests import them from here).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .config_typing import build_dataclass, deep_merge, json_schema_of
from .errors import ConfigError
# Re-exported: `from asymcli.config import METHODS, run_id, ...` keeps working everywhere.
from .methods import (METHOD_LABELS, METHODS, check_beta, check_method, fmt_beta,  # noqa: F401
                      is_base_run, parse_run_id, run_id)

# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


@dataclass
class GeneratorSpec:
    """One reasoning-gym generator of ``task.generators`` (asymcli/rg_tasks.py)."""

    name: str = ""  # a reasoning-gym generator (reasoning_gym.factory.DATASETS), e.g. count_bits
    weight: float = 1.0  # share of task.n_train (largest remainder); held-out rows: task.n_heldout each
    config: dict[str, Any] = field(default_factory=dict)  # the generator's own config fields (not seed / size)


@dataclass
class TaskConfig:
    """Training prompts (the prep stage)."""

    kind: Literal["arithmetic", "benchmark", "reasoning_gym"] = "arithmetic"  # embedded task, a benchmark source, or reasoning-gym generators
    seed: int = 0  # generator seed (arithmetic)
    n_train: int = 20000  # training problems (arithmetic), even over tiers; the warm-up sees each ~5 times
    n_heldout: int = 150  # held-out problems per tier (arithmetic)
    tiers: list[str] = field(default_factory=lambda: ["t1", "t2", "t3", "t4"])  # arithmetic tiers used
    worked_frac: dict[str, float] = field(default_factory=lambda: {"t4": 0.2})  # worked share per tier, rest answer-only
    solution_forms: Literal["canonical", "varied"] = "canonical"  # varied: worked steps in random valid orders (base keeps entropy that costs no accuracy)
    source: str = "math_train"  # benchmark registry name when kind == benchmark
    path: str | None = None  # local Parquet/JSONL/JSON file for that source
    hub_id: str | None = None  # hub dataset id (used only if present locally)
    columns: dict[str, str] = field(default_factory=dict)  # schema column -> file column
    limit: int | None = None  # keep the first N training problems
    generators: list[GeneratorSpec] = field(default_factory=list)  # reasoning_gym: the generators, each with weight and config


@dataclass
class ModelConfig:
    """The policy: the embedded tiny model, or a Hugging Face causal LM."""

    kind: Literal["tiny", "hf"] = "tiny"
    path: str | None = None  # HF folder or hub id (kind == hf)
    hidden_size: int = 64  # tiny model shape (0.13M parameters: the best held-out accuracy per CPU second of the shapes tried with bench/base_bench.py)
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_position: int = 256
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: fp32 on CPU, bf16 on GPU
    chat_template: bool = True  # wrap prompts with the tokenizer's chat template
    enable_thinking: bool = False  # Qwen3 thinking mode (the paper trains non-thinking)


@dataclass
class BaseConfig:
    """Supervised warm-up of the tiny model (the base stage; embedded default only)."""

    steps: int = 1500  # optimizer steps (~3.5 min on one CPU core with the default model)
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate: linear warm-up, then cosine to 0
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    probe_prompts: int = 64  # prompts used to record the group-accuracy distribution at RL start
    max_seconds: float | None = None  # stop early after this wall time (reported; then not reproducible)
    threads: int = 1  # torch CPU threads for the warm-up; 1 is fastest for the tiny model; 0 = torch's default
    prebuilt: bool = True  # use the warmed-up base shipped with asym when its recipe (task, model, these settings, training rows) matches; false = always warm up here


@dataclass
class DeepSpeedConfig:
    stage: int = 0  # 0 = plain torch; 1/2/3 = ZeRO stage
    offload_optimizer: bool = False
    offload_params: bool = False  # stage 3 only


@dataclass
class ScheduleConfig:
    """The entropy-targeting beta schedule of method ``asym_adaptive`` (asymcli/algorithm/schedule.py,
    docs/scan.md). Read only by runs whose ``beta_schedule`` is ``entropy``: other runs ignore it,
    and it is not part of their settings (changing it retrains nothing else)."""

    target: float = 1.0  # entropy target: x the entropy of the first step's rollouts (relative), or nats/token (absolute)
    target_mode: Literal["relative", "absolute"] = "relative"
    gain: float = 0.5  # change of beta_pos - beta_neg per unit relative entropy error, per step
    beta_min: float = 0.0  # both betas stay in [beta_min, beta_max]
    beta_max: float = 1.0
    level: Literal["mass", "fixed"] = "mass"  # mass: (beta_pos + beta_neg)/2 keeps GRPO's mean |advantage| on the step's accuracy histogram; fixed: 0.5
    kappa_ema: float = 0.95  # weight of the past in the moving average of kappa_B (its sign sets the direction; ~20 steps, as Appendix E's kappa-hat)


@dataclass
class TrainConfig:
    """One RL run (the train stage). Defaults are the embedded CPU default."""

    method: str = "asym"  # a key of METHODS
    estimator: str = "asym"  # advantage estimator (set by the method)
    beta_pos: float = 0.9
    beta_neg: float = 0.4
    seed: int = 0
    rollout_shards: int = 0  # sample each step in this many seeded chunks (same run on any world size dividing it; one generate call per chunk); 0 = one per process
    steps: int = 60
    prompts_per_step: int = 32  # global batch, in prompts (the paper's "global batch size")
    mini_batch_prompts: int = 16  # PPO mini-batch, in prompts
    epochs: int = 1  # PPO epochs over each global batch
    micro_batch_seqs: int = 0  # sequences per forward pass for grad accumulation; 0 = whole mini-batch
    group_size: int = 8  # G rollouts per prompt
    lr: float = 5e-5
    warmup_steps: int = 10
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8  # AdamW epsilon (torch's and verl's default)
    grad_clip: float = 1.0
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2  # 0.28 = clip-higher (DAPO)
    dual_clip_c: float | None = None  # dual-clip constant (e.g. 3.0); None = off
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = "token-mean"
    entropy_coef: float = 0.0  # entropy bonus lambda (Eq. 7 entropy)
    kl_coef: float = 0.0  # k3 KL to the reference (initial) policy; 0 = off
    beta_schedule: Literal["fixed", "entropy"] = "fixed"  # entropy: betas set every step by train.schedule (method asym_adaptive); beta_pos/beta_neg are the start
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval_every: int = 10  # greedy (T = 0) test accuracy every N steps (0 = never): held-out split, or eval.benchmarks for task.kind benchmark
    eval_prompts: int = 200  # held-out prompts in that greedy evaluation (arithmetic task; benchmarks: eval.benchmarks[].curve_limit)
    checkpoint_every: int = 20  # 0 = only the final checkpoint
    keep_last: int = 2  # keep this many latest checkpoints (plus the ones eval needs)
    keep_steps: list[int] = field(default_factory=list)  # never delete these checkpoint steps
    engine: Literal["hf", "static", "vllm"] = "hf"  # rollout backend
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 1  # torch CPU threads per run (1: two runs share 2 cores well); 0 = torch default
    gradient_checkpointing: bool = False
    vllm_gpu_memory_utilization: float = 0.5
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    # Experiment trackers (issue 15), each an optional extra (`pip install 'asym[wandb]'`); they
    # get every step's metrics under verl's names and the run config, locally (asymcli/trackers.py).
    loggers: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = field(default_factory=list)  # experiment trackers: tensorboard, wandb (offline), mlflow (local store), trackio (local); [] = Parquet only


@dataclass
class BenchmarkSpec:
    """One evaluation benchmark."""

    name: str = "arith_heldout"  # registry name (asymcli.evaluation.benchmarks.REGISTRY)
    k: int = 4  # samples per problem (Avg@k)
    temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int | None = None  # None: the train max_new_tokens
    path: str | None = None  # local Parquet/JSONL/JSON file
    hub_id: str | None = None  # hub dataset id (used only if present locally)
    columns: dict[str, str] = field(default_factory=dict)
    limit: int | None = None  # first N problems
    template: str | None = None  # prompt template override ({problem} is replaced)
    curve_limit: int | None = None  # problems (evenly spaced) in the trainer's greedy curve every train.eval_every steps; None = all


@dataclass
class EvalConfig:
    """Checkpoint evaluation (the eval stage)."""

    benchmarks: list[BenchmarkSpec] = field(default_factory=lambda: [BenchmarkSpec()])
    steps: Literal["final", "all"] = "final"  # which checkpoints of a run to evaluate
    batch_size: int = 256  # sequences per generation call
    seed: int = 1234


@dataclass
class GridConfig:
    """What `asym run-grid` / `snakemake all` runs."""

    betas: list[list[float]] = field(default_factory=lambda: [[0.9, 0.4]])  # AsymGRPO pairs
    grid: list[float] = field(default_factory=list)  # cartesian beta grid (Figure 4d); [] = none
    methods: list[str] = field(default_factory=lambda: ["grpo", "reinforce"])  # named baselines
    seeds: list[int] = field(default_factory=lambda: [0])
    adaptive_targets: list[float] = field(default_factory=list)  # with asym_adaptive in methods: one asym_adaptive run per target (its train.schedule.target, in train.schedule.target_mode's unit), ids asym_adaptive_t{target}_s{seed}; [] = one run at train.schedule.target, id asym_adaptive_s{seed}
    bases: list[int] = field(default_factory=list)  # base seeds (tiny model): [] = one base, base.seed, in base/; else seed s trains from base bases[s % len(bases)], each in base/b{k}/ (seeds nested in bases, paired within a base)


@dataclass
class ReportConfig:
    checkpoint: str = "final"  # "final" or a step number, the checkpoint Table 2 reports
    ema: float = 0.7  # EMA smoothing of accuracy curves (the paper's 0.7)
    kappa_steps: int = 20  # T of kappa-hat (Appendix E)
    equivalence_margin: float = 1.0  # asym claims: accuracy checks whose 90% CI of the paired difference lies inside +-this many accuracy points read "equivalent" (TOST at 0.05)
    primary_endpoint: str | None = None  # asym claims: the one check declared primary before the runs, by id "{claim}.{check}" as claims.md lists them (e.g. "5a.1" = AsymGRPO (0.9, 0.4) - GRPO, test accuracy); it is tested alone at 0.05, every other check is labelled secondary and Holm-adjusted over the secondary ones; null = none declared (Holm over all checks)


@dataclass
class ResourcesConfig:
    """Per-rule resources for Snakemake (cluster executors read them)."""

    train_threads: int = 1
    train_bundle: int = 1  # runs trained together in one process (asymcli/training/bundle.py: runs on the CPU static path that share a base and shapes, split evenly); 1 = one run per job. A run's numbers do not depend on it
    train_gpus: int = 0
    train_mem_mb: int = 4000
    train_runtime_min: int = 60
    eval_threads: int = 1
    eval_gpus: int = 0
    eval_mem_mb: int = 4000
    eval_runtime_min: int = 60
    slurm_partition: str | None = None
    slurm_account: str | None = None


@dataclass
class GradingConfig:
    """The grader (asymcli/grading/): the training reward and every evaluation use it."""

    multi_box: Literal["set", "last"] = "set"  # several boxes in a response: "set" = the final joined boxes are one answer set (math-verify, lighteval), "last" = the last box only (verl); default "set": MATH-500/OlympiadBench have multi-answer problems, and a set never equals a one-value gold, so boxing several guesses earns nothing
    rel_tol: float | None = None  # numeric answers within this relative tolerance count as equal (Qwen-style graders use 1e-4); None = exact (the default)
    rg_threshold: float = 1.0  # reasoning-gym rows (task.kind reasoning_gym): reward 1 when the generator's score_answer is >= this, else 0 (its partial scores made binary; docs/grading.md)


@dataclass
class NumericsConfig:
    """CPU numerics: the same numbers on any machine (asymcli/platform.py, docs/reliability.md)."""

    portable: bool = True  # pin torch's, MKL's and oneDNN's CPU kernels to AVX2 in every stage (ATEN_CPU_CAPABILITY=avx2, MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2, set before torch loads) and the evaluation's threads (resources.eval_threads), so that a config and seed give bit-identical artifacts on any x86-64 CPU with AVX2; false = each CPU's fastest kernels (results then depend on the CPU)


@dataclass
class Config:
    """A whole experiment."""

    name: str = "default"
    results_dir: str = "results"
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    grading: GradingConfig = field(default_factory=GradingConfig)
    numerics: NumericsConfig = field(default_factory=NumericsConfig)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method overrides of train fields


# ---------------------------------------------------------------------------
# The runs of a config
# ---------------------------------------------------------------------------


def resolve_run(cfg: Config, method: str, beta_pos: float | None = None,
                beta_neg: float | None = None, seed: int | None = None) -> TrainConfig:
    """The TrainConfig of one run: config's train section + method preset + config overrides."""
    check_method(method)
    # nested sections (schedule, deepspeed) merge key by key: a method override of
    # schedule.target keeps the train section's other schedule keys
    data = deep_merge(deep_merge(dataclasses.asdict(cfg.train), METHODS[method]), cfg.methods.get(method, {}))
    data["method"] = method
    if method == "asym":
        data["beta_pos"] = check_beta(cfg.train.beta_pos if beta_pos is None else beta_pos, "beta_pos")
        data["beta_neg"] = check_beta(cfg.train.beta_neg if beta_neg is None else beta_neg, "beta_neg")
    elif method == "asym_adaptive" and beta_pos is not None:  # the run's own target (run_id)
        data["schedule"] = dict(data["schedule"], target=_check_target(beta_pos))
    if seed is not None:
        data["seed"] = int(seed)
    return build_dataclass(TrainConfig, data, f"run {method}")


def _check_target(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"an asym_adaptive target must be a finite number > 0, got {value!r}")
    return float(value)


def run_settings(run: TrainConfig) -> dict[str, Any]:
    """A run's train settings as its description and rerun fingerprint hold them: the beta
    schedule's keys only when the run uses one (``beta_schedule != fixed``), so that neither
    runs made before the schedule existed nor a change of ``train.schedule`` retrain a
    fixed-beta run."""
    d = config_to_dict(run)
    if run.beta_schedule == "fixed":
        del d["beta_schedule"], d["schedule"]
    return d


def run_description(cfg: Config, run: TrainConfig) -> dict[str, Any]:
    """What a run's weights depend on besides its model folder, as the trainer records it in
    run.json and every checkpoint (and reruns compares): sections run, model, task, and
    grading when it is not the default (the grader sets the reward; runs made before the
    section existed carry none, which reads as the default)."""
    out: dict[str, Any] = {"run": run_settings(run), "model": config_to_dict(cfg.model),
                           "task": config_to_dict(cfg.task)}
    if cfg.grading != GradingConfig():
        out["grading"] = config_to_dict(cfg.grading)
    return out


def base_of(cfg: Config, seed: int) -> int | None:
    """The base seed run seed ``seed`` trains from: None = the single base (grid.bases empty),
    else ``grid.bases[seed % len(grid.bases)]``. Seeds are nested in bases rather than crossed
    with them, so no two bases share a training seed's prompt order and sampling streams."""
    return cfg.grid.bases[seed % len(cfg.grid.bases)] if cfg.grid.bases else None


def grid_runs(cfg: Config) -> list[tuple[str, float | None, float | None, int]]:
    """All (method, beta_pos, beta_neg, seed) the grid section asks for, without duplicates."""
    pairs: list[tuple[float, float]] = [(float(a), float(b)) for a, b in cfg.grid.betas]
    pairs += [(a, b) for a in cfg.grid.grid for b in cfg.grid.grid]
    runs: list[tuple[str, float | None, float | None, int]] = []
    seen: set[str] = set()
    for seed in cfg.grid.seeds:
        for m in cfg.grid.methods:
            targets: list[float | None] = [None]
            if m == "asym_adaptive" and cfg.grid.adaptive_targets:
                targets = [float(t) for t in cfg.grid.adaptive_targets]
            for t in targets:
                rid = run_id(m, t, None, seed)
                if rid not in seen:
                    seen.add(rid)
                    runs.append((m, t, None, seed))
        for bp, bn in pairs:
            rid = run_id("asym", bp, bn, seed)
            if rid not in seen:
                seen.add(rid)
                runs.append(("asym", bp, bn, seed))
    return runs


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate a YAML config. ``None`` gives the built-in defaults."""
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.exists():
            raise ConfigError(f"{p}: config file does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"{p}: malformed YAML{at}: {problem}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    if overrides:
        data = deep_merge(data, overrides)
    return validate(build_dataclass(Config, data, where), where)


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    return validate(build_dataclass(Config, data, where), where)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _unknown_estimator(name: Any) -> str:
    """"" if ``name`` is a registered advantage estimator, else what is wrong with it."""
    if name in {preset["estimator"] for preset in METHODS.values()}:
        return ""
    from .algorithm.advantages import estimator_names  # imports torch: only for unusual names

    if name in estimator_names():
        return ""
    return f"names unknown estimator {name!r}; known estimators: {', '.join(estimator_names())}"


def _check_schedule(s: ScheduleConfig, key: str, bad: Any) -> None:
    """The beta schedule's ranges (asymcli/algorithm/schedule.py assumes them)."""
    for name in ("target", "gain", "beta_min", "beta_max", "kappa_ema"):
        if not math.isfinite(getattr(s, name)):
            bad(f"{key}.{name}", f"must be a finite number, got {getattr(s, name)}")
    if s.target <= 0:
        bad(f"{key}.target", f"must be > 0 (nats/token, or a multiple of the base's entropy), got {s.target}")
    if s.gain < 0:
        bad(f"{key}.gain", f"must be >= 0, got {s.gain}")
    if not 0 <= s.beta_min <= s.beta_max:
        bad(f"{key}.beta_min", f"and beta_max must satisfy 0 <= beta_min <= beta_max, got {s.beta_min}, {s.beta_max}")
    if not 0 <= s.kappa_ema < 1:
        bad(f"{key}.kappa_ema", f"must be in [0, 1), got {s.kappa_ema}")


def validate(cfg: Config, where: str = "config") -> Config:
    """Range checks that types alone cannot express. Raises ConfigError naming the key."""

    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"{where}: '{key}' {msg}")

    # section by section, in this order: the first bad key is the one reported
    _check_train(cfg.train, where, bad)
    _check_eval(cfg.eval, bad)
    _check_grid(cfg.grid, where, bad)
    _check_method_overrides(cfg, bad)
    if not cfg.grid.seeds:
        bad("grid.seeds", "must list at least one seed")
    if cfg.grading.rel_tol is not None and not 0 < cfg.grading.rel_tol < 1:
        bad("grading.rel_tol", f"must be in (0, 1) or null, got {cfg.grading.rel_tol}")
    if cfg.grid.bases:
        if len(set(cfg.grid.bases)) != len(cfg.grid.bases) or any(b < 0 for b in cfg.grid.bases):
            bad("grid.bases", f"must list distinct base seeds >= 0, got {cfg.grid.bases}")
        if cfg.model.kind != "tiny":
            bad("grid.bases", "builds several warmed-up bases of the tiny model; with model.kind 'hf' the "
                "checkpoint is the one base")
    if cfg.grid.adaptive_targets:
        ts = cfg.grid.adaptive_targets
        if any(isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0 for t in ts) \
                or len({fmt_beta(float(t)) for t in ts}) != len(ts):
            bad("grid.adaptive_targets", f"must list distinct finite targets > 0, got {ts}")
        if "asym_adaptive" not in cfg.grid.methods:
            bad("grid.adaptive_targets", "sets the targets of asym_adaptive runs: add asym_adaptive to grid.methods")
    if cfg.resources.train_bundle < 1:
        bad("resources.train_bundle", f"must be >= 1 (1 = one run per job), got {cfg.resources.train_bundle}")
    pe = cfg.report.primary_endpoint
    if pe is not None and not re.fullmatch(r"[1-9][0-9]*[a-z]?\.[1-9][0-9]*", str(pe)):
        bad("report.primary_endpoint", f"must be a check id '{{claim}}.{{check}}' as claims.md lists them "
            f"(e.g. '5a.1'), or null; got {pe!r}")
    if cfg.report.checkpoint != "final" and not cfg.report.checkpoint.isdigit():
        bad("report.checkpoint", f"must be 'final' or a step number, got {cfg.report.checkpoint!r}")
    if cfg.numerics.portable:
        for key in ("train.threads", "base.threads"):
            if getattr(getattr(cfg, key.split(".")[0]), "threads") == 0:
                bad(key, "must be >= 1 with numerics.portable (0 = torch's default, every core: a reduction's "
                    "order, so its bits, would depend on the machine)")
    if cfg.model.kind == "hf" and not cfg.model.path:
        bad("model.path", "is required when model.kind is 'hf'")
    if cfg.task.kind == "reasoning_gym":
        from .rg_tasks import check_generators  # imports reasoning-gym: only for its task kind

        check_generators(cfg.task.generators, cfg.grading.rg_threshold, where)
    elif cfg.task.generators:
        bad("task.generators", f"is read only with task.kind 'reasoning_gym' (task.kind is '{cfg.task.kind}')")
    return cfg


def _check_train(t: TrainConfig, where: str, bad: Any) -> None:
    check_method(t.method)
    unknown = _unknown_estimator(t.estimator)
    if unknown:
        bad("train.estimator", unknown)
    for key in ("beta_pos", "beta_neg"):
        v = getattr(t, key)
        if not (t.method == "dr_grpo" and math.isnan(v)):
            try:
                check_beta(v, f"train.{key}")
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    if t.group_size < 2:
        bad("train.group_size", f"must be >= 2 (a group needs at least two rollouts), got {t.group_size}")
    for key in ("steps", "prompts_per_step", "mini_batch_prompts", "epochs", "max_new_tokens"):
        if getattr(t, key) < 1:
            bad(f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    if t.prompts_per_step % t.mini_batch_prompts:
        bad("train.mini_batch_prompts", f"must divide train.prompts_per_step ({t.prompts_per_step}), got {t.mini_batch_prompts}")
    if not t.temperature >= 0 or math.isinf(t.temperature):  # NaN fails >= 0
        bad("train.temperature", f"must be a finite number >= 0, got {t.temperature}")
    if not 0 < t.top_p <= 1:
        bad("train.top_p", f"must be in (0, 1], got {t.top_p}")
    for key in ("lr", "temperature", "top_p", "weight_decay", "grad_clip", "clip_eps_low", "clip_eps_high",
                "entropy_coef", "kl_coef", "adam_beta1", "adam_beta2"):
        if not math.isfinite(getattr(t, key)):
            bad(f"train.{key}", f"must be a finite number, got {getattr(t, key)}")
    if not 0 < t.lr <= 1:
        # Adam moves each weight by about lr per step: above 1 the policy is destroyed at once.
        bad("train.lr", f"must be in (0, 1], got {t.lr}")
    if t.clip_eps_low < 0 or t.clip_eps_high < 0:
        bad("train.clip_eps_low", "and clip_eps_high must be >= 0")
    if not t.adam_eps > 0 or math.isinf(t.adam_eps):
        bad("train.adam_eps", f"must be a finite number > 0, got {t.adam_eps}")
    if t.rollout_shards < 0:
        bad("train.rollout_shards", f"must be >= 0 (0 = one per process), got {t.rollout_shards}")
    if t.rollout_shards and (t.prompts_per_step % t.rollout_shards or t.mini_batch_prompts % t.rollout_shards):
        bad("train.rollout_shards", f"must divide train.prompts_per_step ({t.prompts_per_step}) and "
                                    f"train.mini_batch_prompts ({t.mini_batch_prompts}), got {t.rollout_shards}")
    if t.dual_clip_c is not None and t.dual_clip_c <= 1:
        bad("train.dual_clip_c", f"must be > 1 (or null), got {t.dual_clip_c}")
    if t.deepspeed.stage not in (0, 1, 2, 3):
        bad("train.deepspeed.stage", f"must be 0, 1, 2 or 3, got {t.deepspeed.stage}")
    _check_schedule(t.schedule, "train.schedule", bad)


def _check_eval(e: EvalConfig, bad: Any) -> None:
    for i, b in enumerate(e.benchmarks):
        if b.k < 1:
            bad(f"eval.benchmarks[{i}].k", f"must be >= 1, got {b.k}")
        if not b.temperature >= 0 or math.isinf(b.temperature):  # NaN fails >= 0
            bad(f"eval.benchmarks[{i}].temperature", f"must be a finite number >= 0, got {b.temperature}")
        if b.curve_limit is not None and b.curve_limit < 1:
            bad(f"eval.benchmarks[{i}].curve_limit", f"must be >= 1 (or null for all problems), got {b.curve_limit}")
        if b.temperature == 0 and b.k > 1:
            # Greedy decoding gives k identical samples: allowed but pointless; keep k honest.
            bad(f"eval.benchmarks[{i}].k", f"must be 1 with temperature 0 (greedy), got {b.k}")
    names = [b.name for b in e.benchmarks]
    if len(set(names)) != len(names):
        bad("eval.benchmarks", f"lists a benchmark twice: {names}")


def _check_grid(g: GridConfig, where: str, bad: Any) -> None:
    for i, pair in enumerate(g.betas):
        if len(pair) != 2:
            bad(f"grid.betas[{i}]", f"must be a [beta_pos, beta_neg] pair, got {pair}")
        for j, v in enumerate(pair):
            try:
                check_beta(v, f"grid.betas[{i}][{j}]")
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    for i, v in enumerate(g.grid):
        try:
            check_beta(v, f"grid.grid[{i}]")
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    for m in g.methods:
        if m not in METHODS:
            bad("grid.methods", f"names unknown method '{m}'; known methods: {', '.join(METHODS)}")


def _check_method_overrides(cfg: Config, bad: Any) -> None:
    for m, over in cfg.methods.items():
        if m not in METHODS:
            bad(f"methods.{m}", f"is not a method; known methods: {', '.join(METHODS)}")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        for k in over:
            if k not in known:
                bad(f"methods.{m}.{k}", "is not a train setting")
        unknown = _unknown_estimator(over["estimator"]) if "estimator" in over else ""
        if unknown:
            bad(f"methods.{m}.estimator", unknown)
        if "schedule" in over:
            _check_schedule(resolve_run(cfg, m).schedule, f"methods.{m}.schedule", bad)


# ---------------------------------------------------------------------------
# JSON schema (for the Snakefile's validate())
# ---------------------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """JSON schema of :class:`Config`, derived from the dataclasses (no drift possible)."""
    schema = json_schema_of(Config)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "asym experiment config"
    return schema
