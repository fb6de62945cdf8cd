"""The runs a config asks for (Table 2's methods and beta pairs, the grid, the bases), their ids, their
``asym train`` arguments, the rerun fingerprints Snakemake compares, and the run-grid option parsers."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..config import (METHODS, Config, GradingConfig, base_of, check_beta, check_method, config_to_dict, fmt_beta,
                      grid_runs, parse_run_id, resolve_run, run_id, run_settings)
from ..errors import ConfigError
from .layout import BASE_RUN


def base_run_id(base: int | None) -> str:
    """Run id under which a base model is evaluated: ``base``, or ``base_b{k}`` with grid.bases."""
    return BASE_RUN if base is None else f"{BASE_RUN}_b{base}"


def base_run_ids(cfg: Config) -> list[str]:
    """Every base model's eval run id (one per grid.bases entry, or ``base``)."""
    return [base_run_id(b) for b in cfg.grid.bases] if cfg.grid.bases else [BASE_RUN]


Run = tuple[str, "float | None", "float | None", int]


def _with_grid(cfg: Config, **changes: Any) -> Config:
    return dataclasses.replace(cfg, grid=dataclasses.replace(cfg.grid, **changes))


def table_runs(cfg: Config) -> list[Run]:
    """Table 2's runs: grid.methods and grid.betas, for every seed (not the cartesian grid)."""
    return grid_runs(_with_grid(cfg, grid=[]))


def grid_pair_runs(cfg: Config) -> list[Run]:
    """Figure 4d's runs: AsymGRPO on grid.grid x grid.grid plus the grid.betas pairs."""
    return [r for r in grid_runs(_with_grid(cfg, methods=[])) if r[0] == "asym"]


def all_runs(cfg: Config) -> list[Run]:
    return grid_runs(cfg)


def ids(runs: Iterable[Run]) -> list[str]:
    return [run_id(*r) for r in runs]


def train_bundles(cfg: Config) -> dict[str, list[str]]:
    """The config's runs that train together, ``{bundle name: [run ids]}`` (bundles of 2 or more).

    With ``resources.train_bundle`` > 1, the runs on the stacked path (asymcli/training/bundle.py)
    that share a base, every tensor shape and a target (Table 2's runs apart from the grid's,
    so that ``table2`` never trains a grid-only run) are split into as few bundles of at most
    that many runs as possible, of near-equal size. A name is ``{k}of{n}_{first run id}``.
    A run's numbers do not depend on its bundle, so regrouping retrains nothing.
    """
    size = cfg.resources.train_bundle
    if size <= 1:
        return {}
    from ..training.bundle import shape_key, stacked_reason  # defers torch to configs that bundle

    table = set(ids(table_runs(cfg)))
    groups: dict[Any, list[str]] = {}
    for r in all_runs(cfg):
        tc = resolve_run(cfg, *r)
        if stacked_reason(tc, cfg.model.dtype) is not None:
            continue
        rid = run_id(*r)
        key = (rid in table, base_of(cfg, r[3]), shape_key(tc))
        groups.setdefault(key, []).append(rid)
    return _split(groups.values(), size)


def eval_bundles(cfg: Config) -> dict[str, list[str]]:
    """The config's runs evaluated together, ``{bundle name: [run ids]}`` (bundles of 2 or more).

    With ``resources.eval_bundle`` > 1, the runs that share a base and a target (Table 2's runs
    apart from the grid's, so that ``table2`` never evaluates, and so never trains, a grid-only
    run) are split into as few bundles of at most that many runs as possible, of near-equal
    size, named as :func:`train_bundles` names them. An eval bundle is one process that
    evaluates its runs' checkpoints one run after another (stages/evaluate.py), so any engine
    and shape may share one; a run's samples do not depend on its bundle, and its finished
    parts are kept, so regrouping samples nothing again. The base models are evaluated alone.
    """
    size = cfg.resources.eval_bundle
    if size <= 1:
        return {}
    table = set(ids(table_runs(cfg)))
    groups: dict[Any, list[str]] = {}
    for r in all_runs(cfg):
        rid = run_id(*r)
        groups.setdefault((rid in table, base_of(cfg, r[3])), []).append(rid)
    return _split(groups.values(), size)


def _split(groups: Iterable[list[str]], size: int) -> dict[str, list[str]]:
    """Each group of run ids cut into as few chunks of at most ``size`` as possible, of
    near-equal size, named ``{k}of{n}_{first run id}``; chunks of one run are left out."""
    out: dict[str, list[str]] = {}
    for rids in groups:
        n = -(-len(rids) // size)
        for k in range(n):
            chunk = rids[k * len(rids) // n:(k + 1) * len(rids) // n]
            if len(chunk) > 1:
                out[f"{k + 1}of{n}_{chunk[0]}"] = chunk
    return out


def run_id_regex(exclude: Iterable[str] = ()) -> str:
    """Regex of a run id (a Snakemake wildcard constraint); never matches ``base``, nor the ids
    in ``exclude`` (the runs a bundle rule trains)."""
    named = "|".join(sorted((m for m in METHODS if m != "asym"), key=len, reverse=True))
    num = r"[0-9][0-9.e+-]*"
    rx = rf"(?:asym_bp{num}_bn{num}|asym_adaptive_t{num}|{named})_s[0-9]+"
    skip = "|".join(re.escape(r) for r in sorted(exclude))
    return rf"(?!(?:{skip})$){rx}" if skip else rx


def run_seed(rid: str) -> int:
    """The training seed of a run id."""
    return parse_run_id(rid)[3]


def train_args(rid: str) -> str:
    """`asym train` options naming one run, from its id."""
    method, bp, bn, seed = parse_run_id(rid)
    out = f"--method {method}"
    if method == "asym":
        out += f" --beta-pos {fmt_beta(bp)} --beta-neg {fmt_beta(bn)}"  # type: ignore[arg-type]
    elif method == "asym_adaptive" and bp is not None:  # its own target (methods.run_id)
        out += f" --target {fmt_beta(bp)}"
    return f"{out} --seed {seed}"


def _json(obj: Any) -> str:
    # NaN (Dr.GRPO's betas) is written as NaN: stable, and only compared, never parsed.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(cfg: Config, stage: str, rid: str | None = None, *, base: int | None = None) -> str:
    """JSON of the config values that ``stage``'s output depends on (a rule param).

    Never includes the grid section: adding or changing one pair changes no other job.
    """
    d = config_to_dict(cfg)
    if stage == "prep":
        part: Any = {"task": d["task"]}
    elif stage == "base":
        part = {"task": d["task"], "model": d["model"], "base": d["base"]}
        if base is not None:  # one of grid.bases: its own seed
            part["base"] = dict(d["base"], seed=base)
    elif stage == "train":
        assert rid is not None
        method, bp, bn, seed = parse_run_id(rid)
        run = run_settings(resolve_run(cfg, method, bp, bn, seed))
        run.pop("loggers")  # where metrics are mirrored, not what is trained: no retrain
        part = {"model": d["model"], "run": run}
        if cfg.grid.bases:  # which base it starts from (only then, so one-base fingerprints stay as they were)
            part["base"] = base_of(cfg, seed)
    elif stage == "eval":
        part = {"model": d["model"], "eval": d["eval"], "max_new_tokens": cfg.train.max_new_tokens}
    elif stage in ("aggregate", "report"):
        # what the tables and figures show besides the data: row/column order, labels, titles
        part = {"report": d["report"], "name": d["name"], "model": d["model"]["path"],
                "betas": d["grid"]["betas"], "benchmarks": [b["name"] for b in d["eval"]["benchmarks"]],
                "group_size": d["train"]["group_size"]}
    else:
        raise ValueError(f"unknown stage {stage!r}")
    if stage in ("base", "train", "eval") and cfg.grading != GradingConfig():
        # the grader decides rewards and scores; only a non-default section joins the slice, so
        # fingerprints of runs made before these keys existed stay as they were
        part["grading"] = d["grading"]
    return _json(part)


def _floats(text: str, option: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ConfigError(f"{option} {text!r}: expected comma-separated numbers, e.g. 0.9,0.4")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ConfigError(f"{option} {text!r}: '{p}' is not a number") from None
        try:
            out.append(check_beta(v, f"{option} value"))
        except ConfigError as exc:
            raise ConfigError(f"{option} {text!r}: {exc}") from None
    return out


def parse_pair(text: str) -> list[float]:
    """``"0.9,0.4"`` -> [0.9, 0.4] (beta_pos, beta_neg)."""
    vals = _floats(text, "--betas")
    if len(vals) != 2:
        raise ConfigError(f"--betas {text!r}: expected one pair BETA_POS,BETA_NEG, e.g. 0.9,0.4")
    return vals


def parse_grid(text: str) -> list[float]:
    vals = _floats(text, "--grid")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"--grid {text!r}: lists a value twice")
    return vals


def parse_methods(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise ConfigError(f"--methods {text!r}: expected comma-separated method names, e.g. grpo,reinforce")
    for n in names:
        if n == "asym":
            raise ConfigError("--methods: 'asym' runs come from --betas/--grid, not --methods")
        try:
            check_method(n)
        except ConfigError as exc:
            raise ConfigError(f"--methods: {exc}") from None
    return names


def parse_seeds(text: str) -> list[int]:
    out = []
    for p in (p.strip() for p in text.split(",")):
        if not p.isdigit():
            raise ConfigError(f"--seeds {text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
        out.append(int(p))
    return out


def grid_overrides(betas: Sequence[str] | None = None, grid: str | None = None,
                   methods: str | None = None, seeds: str | None = None) -> dict[str, Any]:
    """The ``grid`` section changes that run-grid options ask for.

    --betas/--grid together define the AsymGRPO pairs: giving either replaces both of the
    config's grid.betas and grid.grid (so ``--betas 0.9,0.4`` alone runs that one pair).
    --methods and --seeds replace theirs; what is not given comes from the config.
    """
    over: dict[str, Any] = {}
    if betas or grid is not None:
        over["betas"] = [parse_pair(b) for b in betas or []]
        over["grid"] = parse_grid(grid) if grid is not None else []
    if methods is not None:
        over["methods"] = parse_methods(methods)
    if seeds is not None:
        over["seeds"] = parse_seeds(seeds)
    return over
