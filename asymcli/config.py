"""Experiment configuration: declared as data, validated early.

A config is one YAML file (see ``configs/default.yaml``). Every section is a dataclass in
``asymcli.config_sections`` whose keys declare their type, default, range and description
(``asymcli.config_fields.setting``); loading rejects unknown keys (naming the full key path and
the file), wrong types and out-of-range values before any work starts, and this module adds the
checks that span several keys. The JSON schema (``workflow/schemas/config.schema.json``) and
docs/config.md are generated from the same declarations (asymcli/pipeline/schema.py; a test
keeps both current).

Methods: a run is (method, beta_pos, beta_neg, seed). ``METHODS`` (asymcli/methods.py)
maps each named method of the paper to the training-config fields it sets; ``resolve_run``
applies one to a config. ``run_id`` names a run's folder.

Re-exported here, so that `from asymcli.config import ...` is the one import the stages, the
Snakefile and the tests need: the sections, and the methods' names.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .config_fields import build_dataclass, check_fields, deep_merge, default_of, json_schema_of
# Re-exported: `from asymcli.config import TrainConfig, ...` keeps working everywhere.
from .config_sections import (BaseConfig, BenchmarkSpec, Config, DeepSpeedConfig, EvalConfig,  # noqa: F401
                              GeneratorSpec, GradingConfig, GridConfig, ModelConfig, NumericsConfig, ReportConfig,
                              ResourcesConfig, ScheduleConfig, TaskConfig, TrainConfig)
from .errors import ConfigError
# Re-exported: `from asymcli.config import METHODS, run_id, ...` keeps working everywhere.
from .methods import (METHOD_LABELS, METHODS, check_beta, check_method, fmt_beta,  # noqa: F401
                      is_base_run, is_target, parse_run_id, run_id)

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
    if not is_target(value):
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
    for key in OMITTED_AT_DEFAULT:  # so runs made before the key existed keep their fingerprint
        if d.get(key) == _TRAIN_DEFAULTS[key]:
            del d[key]
    return d


#: Train keys added after runs were committed: absent from a run's settings (its description
#: and rerun fingerprint) while they hold their default, which is what those runs did.
OMITTED_AT_DEFAULT = ("forward_tokens", "logprob_gain_every")
_TRAIN_DEFAULTS = {f.name: default_of(f) for f in dataclasses.fields(TrainConfig) if f.name in OMITTED_AT_DEFAULT}


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


def validate(cfg: Config, where: str = "config") -> Config:
    """The declared range of every key (asymcli/config_sections.py), then the checks that span
    several keys. Raises ConfigError naming the key."""

    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"{where}: '{key}' {msg}")

    check_fields(cfg, "", where)
    # then section by section, in this order: the first bad key is the one reported
    _check_train(cfg.train, where, bad)
    _check_eval(cfg.eval, bad)
    _check_grid(cfg.grid, where, bad)
    _check_method_overrides(cfg, where, bad)
    if not cfg.grid.seeds:
        bad("grid.seeds", "must list at least one seed")
    if cfg.grid.bases:
        if len(set(cfg.grid.bases)) != len(cfg.grid.bases) or any(b < 0 for b in cfg.grid.bases):
            bad("grid.bases", f"must list distinct base seeds >= 0, got {cfg.grid.bases}")
        if cfg.model.kind != "tiny":
            bad("grid.bases", "builds several warmed-up bases of the tiny model; with model.kind 'hf' the "
                "checkpoint is the one base")
    if cfg.grid.adaptive_targets:
        ts = cfg.grid.adaptive_targets
        if not all(is_target(t) for t in ts) or len({fmt_beta(float(t)) for t in ts}) != len(ts):
            bad("grid.adaptive_targets", f"must list distinct finite targets > 0, got {ts}")
        if "asym_adaptive" not in cfg.grid.methods:
            bad("grid.adaptive_targets", "sets the targets of asym_adaptive runs: add asym_adaptive to grid.methods")
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


def _check_schedule(s: ScheduleConfig, key: str, bad: Any) -> None:
    """The beta schedule's bounds, one against the other (asymcli/algorithm/schedule.py assumes them)."""
    if not 0 <= s.beta_min <= s.beta_max:
        bad(f"{key}.beta_min", f"and beta_max must satisfy 0 <= beta_min <= beta_max, got {s.beta_min}, {s.beta_max}")


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
    if t.prompts_per_step % t.mini_batch_prompts:
        bad("train.mini_batch_prompts", f"must divide train.prompts_per_step ({t.prompts_per_step}), "
            f"got {t.mini_batch_prompts}")
    if t.rollout_shards and (t.prompts_per_step % t.rollout_shards or t.mini_batch_prompts % t.rollout_shards):
        bad("train.rollout_shards", f"must divide train.prompts_per_step ({t.prompts_per_step}) and "
                                    f"train.mini_batch_prompts ({t.mini_batch_prompts}), got {t.rollout_shards}")
    _check_schedule(t.schedule, "train.schedule", bad)


def _check_eval(e: EvalConfig, bad: Any) -> None:
    for i, b in enumerate(e.benchmarks):
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


def _check_method_overrides(cfg: Config, where: str, bad: Any) -> None:
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
            # the run's whole schedule: the override's keys merged over the train section's
            run = resolve_run(cfg, m)
            check_fields(run, f"methods.{m}", where, only={"schedule"})
            _check_schedule(run.schedule, f"methods.{m}.schedule", bad)


# ---------------------------------------------------------------------------
# JSON schema (generated into workflow/schemas/config.schema.json)
# ---------------------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """JSON schema of :class:`Config`, derived from the sections' declarations (no drift possible)."""
    schema = json_schema_of(Config)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "asym experiment config"
    return schema
