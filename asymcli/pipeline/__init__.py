"""The Snakemake pipeline seen from Python: results layout, run lists, `run-grid`, `status`.

Why it exists: the Snakefile, ``asym run-grid`` and ``asym status`` must agree on which
runs a config asks for, where each artifact lives and what each rule's rerun fingerprint
is. They all read it from here, so a CLI run and a ``snakemake`` run share artifacts.

How configs reach the stages. Snakemake merges the config file(s) and ``--config``
overrides; the Snakefile validates the result and, when the workflow starts (``onstart``,
never on dry runs), writes it fully resolved to ``{results_dir}/config.resolved.yaml``
(only when its text changed). Every rule passes that file to ``asym <stage> --config``.
It is *not* a rule input, so editing one beta pair in the grid does not make every rule
stale; instead each rule carries a params fingerprint of exactly the config slice its
output depends on (:func:`fingerprint`), and Snakemake's default ``params`` rerun trigger
reruns exactly the jobs whose slice changed: new pairs train, old ones are kept.

The library never imports snakemake: ``run-grid`` runs it as a subprocess.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import artifacts
from .config import (
    METHODS,
    base_of,
    is_base_run,
    Config,
    GradingConfig,
    check_beta,
    check_method,
    config_from_dict,
    config_to_dict,
    fmt_beta,
    grid_runs,
    load_config,
    parse_run_id,
    resolve_run,
    run_id,
)
from .errors import AsymError, ConfigError

#: The repository checkout this package runs from (the Snakefile lives at its root).
REPO_ROOT = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO_ROOT / "Snakefile"
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
SCHEMA_FILE = REPO_ROOT / "workflow" / "schemas" / "config.schema.json"

#: Snakemake targets (rules in the Snakefile) and what each builds.
TARGETS: dict[str, str] = {
    "table2": "Table 2: the config's methods and beta pairs, trained, evaluated, tabulated",
    "grid": "Figure 4d: the cartesian (beta_pos, beta_neg) grid and its heatmap",
    "figures": "Figures 1-4 (a-c) from the training curves",
    "all": "everything above plus report/index.md",
}

#: Parts of `asym aggregate` -> the agg/*.parquet files each writes.
AGG_PARTS: dict[str, tuple[str, ...]] = {
    "table2": ("run_scores", "table2", "train_stats"),
    "grid": ("grid",),
    "curves": ("curves", "kappa"),
}

#: Parts of `asym report` -> the files (relative to report/) each writes.
REPORT_PARTS: dict[str, tuple[str, ...]] = {
    "table2": ("table2.md", "table2.tex", "table2.csv", "table2_passk.md", "table2_majk.md"),
    "grid": ("grid.md", "figures/fig4d_grid.png"),
    "figures": ("figures/fig1_advantages.png", "figures/fig2_channels.png",
                "figures/fig3_flip.png", "figures/fig4_dynamics.png"),
    "index": ("index.md",),
}

RESOLVED_CONFIG = "config.resolved.yaml"
BASE_RUN = "base"


# ---------------------------------------------------------------------------
# Results layout (docs/architecture.md)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Paths of every artifact under ``results_dir``."""

    root: Path

    @classmethod
    def of(cls, cfg: Config) -> Layout:
        return cls(Path(cfg.results_dir))

    @property
    def resolved_config(self) -> Path:
        return self.root / RESOLVED_CONFIG

    @property
    def prompts(self) -> Path:
        return self.root / "data" / "prompts.parquet"

    @property
    def base_dir(self) -> Path:
        return self.root / "base"

    def base_folder(self, base: int | None = None) -> Path:
        """The base stage's folder: ``base/`` (one base) or ``base/b{k}/`` (grid.bases)."""
        return self.base_dir if base is None else self.base_dir / f"b{base}"

    @property
    def base_model(self) -> Path:
        return self.root / "base" / "model"

    @property
    def base_stats(self) -> Path:
        return self.root / "base" / "base_stats.parquet"

    @property
    def sft_metrics(self) -> Path:
        return self.root / "base" / "sft_metrics.parquet"

    def run_dir(self, rid: str) -> Path:
        return self.root / "runs" / rid

    def metrics(self, rid: str) -> Path:
        return self.run_dir(rid) / "metrics.parquet"

    def checkpoints(self, rid: str) -> Path:
        return self.run_dir(rid) / "checkpoints"

    def eval_dir(self, rid: str) -> Path:
        return self.root / "evals" / rid

    def samples(self, rid: str) -> Path:
        return self.eval_dir(rid) / "samples.parquet"

    def agg(self, name: str) -> Path:
        return self.root / "agg" / f"{name}.parquet"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def model_path(cfg: Config, seed: int | None = None) -> str:
    """The model the runs start from: the base stage's folder (tiny) or model.path (hf).
    With ``grid.bases``, the folder of run seed ``seed``'s base (:func:`config.base_of`)."""
    if cfg.model.kind == "hf":
        return str(cfg.model.path)
    base = base_of(cfg, seed) if seed is not None else None
    return str(Layout.of(cfg).base_folder(base) / "model")


def base_run_id(base: int | None) -> str:
    """Run id under which a base model is evaluated: ``base``, or ``base_b{k}`` with grid.bases."""
    return BASE_RUN if base is None else f"{BASE_RUN}_b{base}"


def base_run_ids(cfg: Config) -> list[str]:
    """Every base model's eval run id (one per grid.bases entry, or ``base``)."""
    return [base_run_id(b) for b in cfg.grid.bases] if cfg.grid.bases else [BASE_RUN]




def rule_resources(cfg: Config, kind: str) -> dict[str, Any]:
    """Snakemake resources of the train (and base) or eval rules, from config.resources.

    ``gpu`` is the name the SLURM executor plugin reads; ``runtime`` is in minutes.
    Locally they only limit concurrency when given as ``--resources gpu=N``.
    """
    r = cfg.resources
    out: dict[str, Any] = {
        "gpu": getattr(r, f"{kind}_gpus"),
        "mem_mb": getattr(r, f"{kind}_mem_mb"),
        "runtime": getattr(r, f"{kind}_runtime_min"),
    }
    if r.slurm_partition:
        out["slurm_partition"] = r.slurm_partition
    if r.slurm_account:
        out["slurm_account"] = r.slurm_account
    return out


# ---------------------------------------------------------------------------
# Which runs a config asks for
# ---------------------------------------------------------------------------

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


def run_id_regex() -> str:
    """Regex of a run id (a Snakemake wildcard constraint); never matches ``base``."""
    named = "|".join(sorted((m for m in METHODS if m != "asym"), key=len, reverse=True))
    num = r"[0-9][0-9.e+-]*"
    return rf"(?:asym_bp{num}_bn{num}|{named})_s[0-9]+"


def run_seed(rid: str) -> int:
    """The training seed of a run id."""
    return parse_run_id(rid)[3]


def train_args(rid: str) -> str:
    """`asym train` options naming one run, from its id."""
    method, bp, bn, seed = parse_run_id(rid)
    out = f"--method {method}"
    if method == "asym":
        out += f" --beta-pos {fmt_beta(bp)} --beta-neg {fmt_beta(bn)}"  # type: ignore[arg-type]
    return f"{out} --seed {seed}"


# ---------------------------------------------------------------------------
# Rerun fingerprints: the config slice each rule's output depends on
# ---------------------------------------------------------------------------


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
        run = config_to_dict(resolve_run(cfg, method, bp, bn, seed))
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


# ---------------------------------------------------------------------------
# The resolved config the stages read
# ---------------------------------------------------------------------------


def resolved_config_text(cfg: Config) -> str:
    head = ("# Written by the Snakefile: the merged, validated config every rule passes to\n"
            "# `asym <stage> --config`. Edit the config you ran with, not this file.\n")
    return head + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def write_resolved_config(cfg: Config) -> Path:
    """Write ``{results_dir}/config.resolved.yaml``, only when its text changes."""
    path = Layout.of(cfg).resolved_config
    text = resolved_config_text(cfg)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        artifacts.write_text(path, text)
    return path


def schema_text() -> str:
    """workflow/schemas/config.schema.json as it must be (a test keeps the file equal):
    ``config_json_schema()`` plus, for every key, its default and a description taken
    from the field's comment in asymcli/config.py.

    Regenerate: python -c "from asymcli import pipeline; pipeline.write_schema()"
    """
    from . import config as config_mod

    schema = config_mod.config_json_schema()
    # Snakemake validates with the 2020-12 validator whatever $schema says (and warns when
    # it says another draft); the keywords used here mean the same in both drafts.
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = ("asym experiment config, generated from the dataclasses in "
                             "asymcli/config.py; see configs/default.yaml for an example")
    _annotate(schema, config_mod.Config)
    return json.dumps(schema, indent=2) + "\n"


def _field_comments(cls: type) -> dict[str, str]:
    import inspect

    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+):[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _annotate(schema: dict[str, Any], cls: type) -> None:
    """Add description/default to every property of dataclass ``cls``'s schema, recursively."""
    import typing

    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    schema.setdefault("description", doc)
    comments = _field_comments(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        prop = schema["properties"][f.name]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            _annotate(prop, tp)
            if f.name in comments:
                prop["description"] = comments[f.name]
            continue
        args = typing.get_args(tp)
        if typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            _annotate(prop["items"], args[0])
        prop["description"] = comments.get(f.name, f"{cls.__name__}.{f.name}")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        prop["default"] = _plain(default)


def _plain(x: Any) -> Any:
    """A default as JSON data (dataclasses -> dicts)."""
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)  # type: ignore[arg-type]
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def write_schema() -> Path:
    artifacts.write_text(SCHEMA_FILE, schema_text())
    return SCHEMA_FILE


def workflow_config(data: dict[str, Any], sources: Sequence[str | os.PathLike[str]]) -> Config:
    """Validate Snakemake's merged config dict with asym's own checks (range checks too)."""
    where = ", ".join(str(s) for s in sources) or "snakemake config"
    return config_from_dict(json.loads(json.dumps(data)), where)


# ---------------------------------------------------------------------------
# Option parsing for run-grid (one-line ConfigError on anything wrong)
# ---------------------------------------------------------------------------


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


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"--target {target!r}: must be one of {', '.join(TARGETS)}")
    return target


def check_cores(cores: str) -> str:
    if cores != "all" and not (cores.isdigit() and int(cores) >= 1):
        raise ConfigError(f"--cores {cores!r}: must be a positive integer or 'all'")
    return cores


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


# ---------------------------------------------------------------------------
# Config loading shared by run-grid / status / report / aggregate
# ---------------------------------------------------------------------------


def config_source(path: str | os.PathLike[str] | None) -> Path | None:
    """The config file a pipeline command uses: the given one, else configs/default.yaml
    (the Snakefile's default), else None (the built-in dataclass defaults)."""
    if path is not None:
        return Path(path)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def load_workflow_config(path: str | os.PathLike[str] | None = None,
                         grid: dict[str, Any] | None = None) -> tuple[Config, dict[str, Any]]:
    """(validated Config, raw dict to hand to snakemake) for ``path`` + grid overrides."""
    src = config_source(path)
    cfg = load_config(src)  # validates the file alone first: errors name the file
    raw: dict[str, Any] = {}
    if src is not None:
        raw = yaml.safe_load(src.read_text(encoding="utf-8")) or {}
    if grid:
        raw = dict(raw)
        raw["grid"] = {**(raw.get("grid") or {}), **grid}
        what = ", ".join(f"--{k}" for k in ("betas", "grid", "methods", "seeds") if k in grid)
        cfg = config_from_dict(json.loads(json.dumps(raw)), f"{src or 'defaults'} with {what}")
    return cfg, raw


# ---------------------------------------------------------------------------
# run-grid: drive the Snakemake DAG
# ---------------------------------------------------------------------------


def snakemake_command(configfile: str | os.PathLike[str] | None, target: str, *, cores: str = "all",
                      dry_run: bool = False, workdir: str | os.PathLike[str] | None = None,
                      extra: Sequence[str] = (), files: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """The snakemake command line run-grid executes (also what the docs recommend).

    ``files``: artifacts to build besides the target (damaged ones run-grid set aside)."""
    # The targets go first: some snakemake options (--quiet) take a variable number of values.
    cmd = [sys.executable, "-m", "snakemake", check_target(target), *(str(f) for f in files),
           "--snakefile", str(SNAKEFILE),
           "--directory", str(Path(workdir or os.getcwd()).resolve()),
           "--cores", str(cores)]
    if configfile is not None:
        cmd += ["--configfile", str(Path(configfile).resolve())]
    if dry_run:
        cmd += ["--dry-run", "--quiet", "rules"]
    else:
        # Interrupted jobs resume (the trainer and eval restart from checkpoints/parts);
        # one failed run does not stop the others; its log is printed.
        cmd += ["--rerun-incomplete", "--keep-going", "--show-failed-logs", "--printshellcmds"]
    cmd += list(extra)
    return cmd


def default_target(cfg: Config) -> str:
    return "all" if cfg.grid.grid else "table2"


@dataclass
class GridPlan:
    cfg: Config
    raw: dict[str, Any]
    target: str
    runs: list[str]


def plan_grid(config: str | os.PathLike[str] | None, *, betas: Sequence[str] | None = None,
              grid: str | None = None, methods: str | None = None, seeds: str | None = None,
              target: str | None = None, cores: str = "all") -> GridPlan:
    """Validate every option and the config; nothing is written."""
    check_cores(cores)
    if target is not None:
        check_target(target)
    cfg, raw = load_workflow_config(config, grid_overrides(betas, grid, methods, seeds))
    tgt = target or default_target(cfg)
    runs = ids(table_runs(cfg)) if tgt in ("table2", "figures") else ids(all_runs(cfg))
    if tgt == "grid":
        runs = ids(grid_pair_runs(cfg))
    return GridPlan(cfg, raw, tgt, runs)


def run_grid(plan: GridPlan, *, cores: str = "all", dry_run: bool = False,
             extra: Sequence[str] = (), echo: Any = print, console: Any = None,
             verbose: bool = False, plain_interval: float = 30.0) -> int:
    """Run snakemake on ``plan`` behind the live view; raise AsymError if it fails.

    Snakemake's output goes to ``{results_dir}/logs/run-grid.log`` (shown with
    ``verbose``, and its failed jobs' logs on failure). One run-grid at a time per results
    folder (:func:`results_lock`); a Snakemake lock left by a killed run is released
    first (:func:`release_stale_lock`). Returns snakemake's exit code (0)."""
    if not SNAKEFILE.exists():
        raise AsymError(f"run-grid needs the asym source checkout; {SNAKEFILE} does not exist")
    layout = Layout.of(plan.cfg)
    workdir = Path.cwd()
    if dry_run:
        for d in find_damage(plan):
            echo(f"run-grid: damaged {d.describe().replace('the next run-grid', 'a real run')}")
        with tempfile.TemporaryDirectory(prefix="asym-run-grid-") as tmp:
            # Dry runs write nothing under results/.
            cfgfile = Path(tmp) / "run-grid.yaml"
            _write_grid_config(cfgfile, plan)
            cmd = snakemake_command(cfgfile, plan.target, cores=cores, dry_run=True, extra=extra)
            echo(f"run-grid: target {plan.target}, {len(plan.runs)} run(s): {', '.join(plan.runs)}")
            echo(f"$ {' '.join(cmd)}")
            rc = subprocess.run(cmd, check=False).returncode
        if rc != 0:
            raise AsymError(f"snakemake --dry-run failed (exit {rc}); its output is above")
        return rc
    from . import live

    if console is None:
        from rich.console import Console

        console = Console()
    with results_lock(layout.root):
        _wait_for_orphans(workdir, layout.root)
        if release_stale_lock(workdir):
            echo(f"run-grid: released a stale Snakemake lock in {workdir / '.snakemake' / 'locks'} "
                 "(no Snakemake process runs there; a killed run left it)")
        # Named as targets too: Snakemake does not rebuild a missing file when what is built
        # from it is up to date (a run's metrics.parquet under an up-to-date report).
        rebuild = rebuild_targets(set_aside_damage(plan, echo))
        # Real runs keep the configfile beside the results (cluster jobs re-read it, and it
        # records what was asked for).
        cfgfile = layout.root / "run-grid.yaml"
        _write_grid_config(cfgfile, plan)
        cmd = snakemake_command(cfgfile, plan.target, cores=cores, extra=extra, files=rebuild)
        log_path = layout.logs / "run-grid.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        echo(f"run-grid: target {plan.target}, {len(plan.runs)} run(s): {', '.join(plan.runs)}")
        if verbose:
            echo(f"$ {' '.join(cmd)}")
        state = live.SnakemakeLog()
        view = live.LiveView(state, layout.root, console, title=plan.target, log_hint=_shown(log_path),
                             verbose=verbose, plain_interval=plain_interval)
        t0 = time.time()
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            # Through asymcli.supervise: if run-grid dies, even by SIGKILL, Snakemake and its
            # jobs stop as on Ctrl-C and release the lock.
            proc = subprocess.Popen([sys.executable, "-m", "asymcli.supervise", *cmd], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                rc = live.follow(proc, log_path, view)
            except KeyboardInterrupt:
                # Ctrl-C reaches only our process group: pass it to Snakemake's (the supervisor's)
                # and let Snakemake stop its jobs.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                proc.wait()
                raise
    if rc != 0:
        if state.locked:
            others = ", ".join(f"pid {pid}" for pid, _ in snakemake_processes(workdir)) or "none found now"
            raise AsymError(f"another Snakemake process is writing the same files in {workdir} "
                            f"({others}); wait for it to finish, or stop it, then rerun")
        for line in live.failure_report(state, log_path):
            echo(line)
        failed = ", ".join(j.label.replace("  ", " ") for j in state.failed)
        raise AsymError(f"snakemake failed (exit {rc})" + (f": {failed}" if failed else "")
                        + f"; the failed job's log is shown above; Snakemake's log: {_shown(log_path)}")
    done = state.done if state.total else 0
    if state.nothing_to_do or not state.total:
        echo("run-grid: nothing to do, every output is up to date")
    else:
        echo(f"run-grid: {done}/{state.total} jobs done in {live.fmt_duration(time.time() - t0)}")
    return rc


def find_damage(plan: GridPlan) -> list[Any]:
    """The damaged artifacts (asymcli.training.reruns.Damage) of the plan's runs, the base model's
    evaluation, the shared inputs and the aggregates; checkpoints are hashed as at resume."""
    from .training.reruns import run_damage, shared_damage

    lay = Layout.of(plan.cfg)
    steps_of = {run_id(*r): resolve_run(plan.cfg, *r).steps for r in all_runs(plan.cfg)}
    out = shared_damage(lay.root, [n for part in TARGET_AGG[plan.target] for n in AGG_PARTS[part]])
    for rid in [BASE_RUN, *plan.runs]:
        out += run_damage(lay.run_dir(rid), lay.eval_dir(rid), rid, steps_of.get(rid), hashes=True)
    return out


def set_aside_damage(plan: GridPlan, echo: Any = print) -> list[Any]:
    """Before Snakemake starts: move each damaged artifact into a ``damaged/`` folder beside
    it (asymcli.training.reruns.set_aside); run-grid then names it to Snakemake as a target
    (:func:`rebuild_targets`), which reruns the job that makes it and, by modification
    time, what is built from it. A damaged input of every run
    (prompts, the base stage) stops run-grid with one line instead: rebuilding it would
    retrain every run. Returns the damage found."""
    from .training.reruns import set_aside

    damage = find_damage(plan)
    blocking = [d for d in damage if d.blocking]
    if blocking:
        d = blocking[0]
        raise AsymError(f"{d.why}; {d.then}")
    for d in damage:
        where = set_aside(d)
        echo(f"run-grid: damaged {d.why}; moved it to {_shown(where)}; {d.then}")
    return damage


def rebuild_targets(damage: Sequence[Any]) -> list[Path]:
    """The files Snakemake must build again after ``damage`` was set aside: each damaged
    Parquet artifact, and the metrics.parquet moved with a run's damaged latest checkpoint
    (its train job writes that checkpoint again). An earlier checkpoint needs nothing."""
    out: list[Path] = []
    for d in damage:
        for p in ([d.path] if d.kind != "checkpoint" else []) + list(d.also):
            if p not in out:
                out.append(p)
    return out


#: Aggregate parts each run-grid target builds (the agg files whose damage it repairs).
TARGET_AGG: dict[str, tuple[str, ...]] = {
    "table2": ("table2",), "grid": ("grid",), "figures": ("curves",), "all": ("table2", "grid", "curves"),
}


#: Report parts each run-grid target writes (the Snakefile's target rules).
TARGET_PARTS: dict[str, tuple[str, ...]] = {
    "table2": ("table2",), "grid": ("grid",), "figures": ("figures",),
    "all": ("table2", "grid", "figures", "index"),
}


def summary_lines(plan: GridPlan) -> list[str]:
    """The end of a run-grid: the report files its target wrote, only those that exist."""
    report_dir = Layout.of(plan.cfg).report_dir
    files = [report_dir / name for part in TARGET_PARTS[plan.target] for name in REPORT_PARTS[part]]
    present = [f for f in files if f.exists()]
    if not present:
        return []
    return [f"target {plan.target}: {len(present)} report file(s) in {_shown(report_dir)}/: "
            + ", ".join(str(f.relative_to(report_dir)) for f in present)]


def _write_grid_config(path: Path, plan: GridPlan) -> None:
    artifacts.write_text(path, "# Written by `asym run-grid`: the config it passed to snakemake.\n"
                         + yaml.safe_dump(plan.raw, sort_keys=False, default_flow_style=None))


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------
# run-grid: one at a time per results folder; stale Snakemake locks
# ---------------------------------------------------------------------------

RUN_GRID_LOCK = ".run-grid.lock"


@contextlib.contextmanager
def results_lock(root: Path) -> Iterator[None]:
    """Hold ``{root}/.run-grid.lock`` (flock) while a run-grid runs; the OS releases it when
    the process ends, however it ends. Held by another: one-line AsymError naming its pid."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    path = root / RUN_GRID_LOCK
    f = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise AsymError(f"another `asym run-grid` (pid {holder}) is already running on {root}; "
                            f"wait for it to finish (`asym status` shows progress), or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()  # releases the flock


def snakemake_processes(workdir: Path) -> list[tuple[int, str]]:
    """Live Snakemake processes whose working directory is ``workdir``: [(pid, command)].

    Reads /proc (Linux); elsewhere finds none, and a stale lock is left to Snakemake."""
    want = Path(workdir).resolve()
    out = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for p in proc.iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            args = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not _is_snakemake(args):
            continue
        where = None
        for i, a in enumerate(args):
            if a in ("--directory", "-d") and i + 1 < len(args):
                where = args[i + 1]
            elif a.startswith("--directory="):
                where = a.split("=", 1)[1]
        try:
            cwd = Path(os.readlink(p / "cwd"))
        except OSError:
            continue
        target = (cwd / where).resolve() if where else cwd.resolve()
        if target == want:
            out.append((int(p.name), " ".join(a for a in args if a)))
    return out


def _is_snakemake(args: list[str]) -> bool:
    for i, a in enumerate(args[:4]):
        name = os.path.basename(a)
        if name == "snakemake" or a.endswith("snakemake/__main__.py"):
            return True
        if a == "-m" and i + 1 < len(args) and args[i + 1] == "snakemake":
            return True
    return False


def _wait_for_orphans(workdir: Path, root: Path, timeout_s: float = 120.0) -> None:
    """Wait for a Snakemake that a killed run-grid on this results folder started: it is
    stopping its jobs (asymcli.supervise) and will release its lock. We hold the run-grid
    lock, so the run-grid that started it is gone."""
    mine = f"--configfile {(root / 'run-grid.yaml').resolve()}"
    deadline = time.time() + timeout_s
    while time.time() < deadline and any(mine in cmd for _, cmd in snakemake_processes(workdir)):
        time.sleep(0.5)


def release_stale_lock(workdir: Path) -> bool:
    """Remove ``{workdir}/.snakemake/locks`` when no Snakemake process runs in ``workdir``
    (what ``snakemake --unlock`` does); True if a lock was removed."""
    locks = Path(workdir) / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return False
    if snakemake_processes(workdir):
        return False  # a live Snakemake holds it: Snakemake itself decides
    shutil.rmtree(locks, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------


def complete_checkpoints(ckpt_dir: Path) -> list[int]:
    """Steps of the complete checkpoints of a run."""
    return [step for step, _ in artifacts.list_checkpoints(ckpt_dir)]


def disk_usage(path: Path) -> int:
    """Bytes under ``path`` (0 if absent); symlinks are not followed."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def human_bytes(n: int) -> str:
    if n == 0:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} TB"


@dataclass
class RunStatus:
    run_id: str
    in_grid: bool  # False: present under results_dir but not asked for by this config
    trained: bool  # metrics.parquet exists
    checkpoints: list[int]
    steps: int | None  # configured training steps (None for the base model / extra runs)
    evaluated: bool  # samples.parquet exists
    eval_parts: int  # finished (step, benchmark) parts of an unfinished evaluation
    disk_bytes: int
    stale: str | None = None  # what the next run-grid does to it and why (asymcli.training.reruns)
    damage: list[Any] = field(default_factory=list)  # reruns.Damage: its damaged artifacts

    def damaged(self, kind: str) -> bool:
        return any(d.kind == kind for d in self.damage)

    @property
    def train_state(self) -> str:
        if is_base_run(self.run_id):
            return "-"
        if self.damaged("metrics"):
            return "damaged"
        if self.trained:
            return "done"
        if self.checkpoints:
            of = f"/{self.steps}" if self.steps else ""
            return f"step {self.checkpoints[-1]}{of}"
        return "pending"

    @property
    def eval_state(self) -> str:
        if self.damaged("samples"):
            return "damaged"
        if self.evaluated:
            return "done"
        if self.eval_parts:
            return f"{self.eval_parts} part(s)"
        return "pending"


@dataclass
class Status:
    results_dir: Path
    prompts: bool
    base_model: bool | None  # None: model.kind == hf (no base stage)
    runs: list[RunStatus] = field(default_factory=list)
    report: list[str] = field(default_factory=list)  # report files present
    damage: list[Any] = field(default_factory=list)  # reruns.Damage of prompts, base, aggregates

    @property
    def all_damage(self) -> list[Any]:
        return self.damage + [d for r in self.runs for d in r.damage]

    @property
    def pending(self) -> list[str]:
        return [r.run_id for r in self.runs if r.in_grid and not r.evaluated]


def collect_status(cfg: Config) -> Status:
    """What exists under results_dir for the runs the config asks for (plus extra runs found)."""
    lay = Layout.of(cfg)
    wanted = base_run_ids(cfg) + ids(all_runs(cfg))
    found: set[str] = set()
    for sub in ("runs", "evals"):
        d = lay.root / sub
        if d.is_dir():
            found |= {p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")}
    steps_of: dict[str, int] = {}
    for m, bp, bn, seed in all_runs(cfg):
        steps_of[run_id(m, bp, bn, seed)] = resolve_run(cfg, m, bp, bn, seed).steps
    rows = []
    from .training.reruns import run_damage, run_staleness, shared_damage

    for rid in wanted + sorted(found - set(wanted)):
        parts = lay.eval_dir(rid) / "parts"
        stale = run_staleness(cfg, rid, lay.run_dir(rid)) if rid in steps_of else None
        # Checkpoint sizes only (no hashing), footers of the Parquet files: fast on big runs.
        damage = run_damage(lay.run_dir(rid), lay.eval_dir(rid), rid, steps_of.get(rid), hashes=False)
        kinds = {d.kind for d in damage}
        rows.append(RunStatus(
            run_id=rid,
            in_grid=rid in wanted,
            trained=lay.metrics(rid).exists() and "metrics" not in kinds,
            checkpoints=complete_checkpoints(lay.checkpoints(rid)),
            steps=steps_of.get(rid),
            evaluated=lay.samples(rid).exists() and "samples" not in kinds,
            eval_parts=len(list(parts.glob("*.parquet"))) if parts.is_dir() else 0,
            disk_bytes=disk_usage(lay.run_dir(rid)) + disk_usage(lay.eval_dir(rid)),
            stale=stale.describe() if stale is not None else None,
            damage=damage,
        ))
    report = sorted(str(p.relative_to(lay.report_dir)) for p in lay.report_dir.rglob("*")
                    if p.is_file() and not p.name.startswith(".")) if lay.report_dir.is_dir() else []
    return Status(
        results_dir=lay.root,
        prompts=lay.prompts.exists(),
        base_model=None if cfg.model.kind == "hf" else all(
            (lay.base_folder(b) / "model" / "config.json").exists() for b in (cfg.grid.bases or [None])),
        runs=rows,
        report=report,
        damage=shared_damage(lay.root, agg_names()),
    )


def agg_names() -> list[str]:
    """Every agg/*.parquet name the aggregate parts write."""
    return [name for names in AGG_PARTS.values() for name in names]


def render_status(st: Status, console: Any) -> None:
    """Print a Status with rich."""
    from rich.markup import escape
    from rich.table import Table

    def mark(ok: bool | None) -> str:
        return "[green]done[/]" if ok else ("-" if ok is None else "[yellow]pending[/]")

    console.print(f"results: [bold]{st.results_dir}[/]   prompts: {mark(st.prompts)}   "
                  f"base model: {mark(st.base_model)}")
    t = Table(show_edge=False, header_style="bold")
    for col in ("run", "train", "checkpoints", "eval", "disk"):
        t.add_column(col, justify="right" if col == "disk" else "left")

    def color(s: str) -> str:
        if s == "damaged":
            return f"[bold red]{s}[/]"
        return f"[green]{s}[/]" if s == "done" else (f"[yellow]{s}[/]" if s == "pending" else s)

    for r in st.runs:
        bad = {d.path.name for d in r.damage if d.kind == "checkpoint"}
        ck = ", ".join(f"{s} [bold red]damaged[/]" if f"{artifacts.CKPT_PREFIX}{s:06d}" in bad else str(s)
                       for s in r.checkpoints[-3:]) or "-"
        if len(r.checkpoints) > 3:
            ck = f"... {ck}"
        name = r.run_id if r.in_grid else f"[dim]{r.run_id} (not in config)[/]"
        train = color(r.train_state) + (" [magenta](stale)[/]" if r.stale else "")
        t.add_row(name, train, ck, color(r.eval_state), human_bytes(r.disk_bytes))
    console.print(t)
    for r in st.runs:
        if r.stale:
            console.print(f"[magenta]stale[/] {r.run_id}: the next run-grid {r.stale}", markup=True,
                          highlight=False)
    for d in st.all_damage:
        console.print("[bold red]damaged[/] " + escape(d.describe()), markup=True, highlight=False,
                      soft_wrap=True)
    grid = [r for r in st.runs if r.in_grid]
    done = sum(r.evaluated for r in grid)
    n_bad = len(st.all_damage)
    console.print(f"{done}/{len(grid)} evaluations done"
                  + (f"; {n_bad} damaged artifact(s), listed above" if n_bad else "")
                  + (f"; pending: {', '.join(st.pending[:8])}{' ...' if len(st.pending) > 8 else ''}"
                     if st.pending else "")
                  + (f"; report: {len(st.report)} file(s) in {st.results_dir / 'report'}" if st.report else ""))


__all__ = [
    "AGG_PARTS", "BASE_RUN", "DEFAULT_CONFIG", "GridPlan", "Layout", "REPORT_PARTS", "SNAKEFILE",
    "Status", "TARGETS", "all_runs", "collect_status", "find_damage", "fingerprint", "grid_overrides",
    "grid_pair_runs", "load_workflow_config", "model_path", "plan_grid", "render_status",
    "run_grid", "run_id_regex", "set_aside_damage", "snakemake_command", "table_runs", "train_args",
    "write_resolved_config",
]
