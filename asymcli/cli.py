"""The `asym` command: thin Typer commands over `stages/` and the library.

Each command parses options, then calls one function. User errors (AsymError) become
one line on stderr and exit code 2, with no traceback and nothing written.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import AsymError

# Typer >= 0.22 vendors click as typer._click; older versions use the click package.
_click: Any = getattr(typer.core, "_click", None) or __import__("click")


class _OneLineUsageErrors(typer.core.TyperGroup):
    """Usage errors (an unknown option, an option value of the wrong type) as one
    ``error: ...`` line and exit code 2, like AsymError, instead of a usage block and a box."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        args = _hoist_verbose(sys.argv[1:] if args is None else list(args))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click.exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `asym`: the help text, as before
                exc.show()
                sys.exit(exc.exit_code)
            where = exc.ctx.command_path if exc.ctx is not None else "asym"
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {where}: {message} (see '{where} --help')", err=True)
            sys.exit(2)
        except _click.exceptions.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)  # non-standalone main returns Exit's code


def _hoist_verbose(args: list[str]) -> list[str]:
    """``--verbose`` anywhere before ``--`` is the root option: `asym train --verbose` works."""
    end = args.index("--") if "--" in args else len(args)
    if "--verbose" in args[1:end]:
        args = ["--verbose"] + [a for i, a in enumerate(args) if not (a == "--verbose" and i < end)]
    return args


#: Set by the root callback: --verbose, or ASYM_VERBOSE=1 inherited from a verbose run-grid.
VERBOSE = False


def quiet_libraries(verbose: bool) -> None:
    """Keep library progress bars and warnings (Hugging Face's "Loading weights", tqdm,
    deprecation notes) out of normal output; ``--verbose`` shows them. Environment variables,
    so that the jobs a run-grid starts inherit the choice, and set before the libraries load."""
    import os
    import warnings

    if verbose:
        os.environ["ASYM_VERBOSE"] = "1"
        return
    for key, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                       ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"), ("TQDM_DISABLE", "1"),
                       ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore")
    import logging

    for name in ("transformers", "huggingface_hub", "torch", "deepspeed", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


PIPELINE, STAGES, ANALYSIS, OTHER = "Pipeline", "Stages", "Analysis", "Other"

app = typer.Typer(
    name="asym",
    help="Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894.",
    cls=_OneLineUsageErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn AsymError into a one-line error with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AsymError as exc:
            fail(str(exc))

    return wrapper


def numerics(cfg: Any) -> Any:
    """Apply the config's ``numerics`` section (asymcli/platform.py) before any stage runs a
    torch operation: portable mode pins the CPU kernels here, and every process this one
    starts (Snakemake and its jobs) inherits them. Returns ``cfg``."""
    from .platform import apply_numerics

    apply_numerics(cfg.numerics.portable, warn=lambda line: typer.echo(line, err=True))
    return cfg


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show library progress bars and warnings, and Snakemake's output in "
        "run-grid (also accepted after the command name)."),
) -> None:
    """Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894."""
    import os

    global VERBOSE
    VERBOSE = verbose or os.environ.get("ASYM_VERBOSE") == "1"
    quiet_libraries(VERBOSE)


ConfigOpt = typer.Option(None, "--config", "-c", help="Experiment config YAML (default: built-in defaults).")


@app.command(rich_help_panel=OTHER)
def version() -> None:
    """Print the asym version."""
    from . import __version__

    typer.echo(__version__)


@app.command(rich_help_panel=STAGES)
@user_errors
def train(
    config: Optional[Path] = ConfigOpt,
    method: str = typer.Option("asym", help="Method: asym, grpo, reinforce, grpo_ent, clip_higher, dr_grpo, "
                               "pos_only, neg_only, ent_decrease, ent_increase, reinforce_ent, asym_adaptive."),
    beta_pos: Optional[float] = typer.Option(None, help="AsymGRPO beta_pos (method asym)."),
    beta_neg: Optional[float] = typer.Option(None, help="AsymGRPO beta_neg (method asym)."),
    seed: Optional[int] = typer.Option(None, help="Run seed (default: train.seed)."),
    target: Optional[float] = typer.Option(None, help="asym_adaptive's entropy target (train.schedule.target's "
                                           "unit); the run's id becomes asym_adaptive_t{target}_s{seed}."),
    prompts: Optional[Path] = typer.Option(None, help="prompts.parquet (default: {results_dir}/data/prompts.parquet)."),
    model: Optional[Path] = typer.Option(None, help="Starting model folder (default: the base stage's model)."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: {results_dir}/runs/{run_id})."),
    steps: Optional[int] = typer.Option(None, help="Override train.steps."),
    progress: bool = typer.Option(True, help="Show a live progress bar."),
    fresh_on_change: bool = typer.Option(
        False, "--fresh-on-change", help="If the run folder holds checkpoints of a different config, move them "
        "to {run}/previous/ and train from scratch (what run-grid does); without it, refuse."),
    runs: Optional[str] = typer.Option(
        None, "--runs", help="Comma-separated run ids to train together as one bundle (one process, stacked "
        "forward/backward/generation; each run keeps its own folder and numbers). Replaces --method/--beta-*/--seed."),
) -> None:
    """Train one run (one method config + seed), or a bundle of runs; resumes from the latest checkpoints."""
    from stages import train as stage

    from .config import check_beta, check_method, is_target, load_config
    from .methods import parse_run_ids

    if runs is not None:
        if method != "asym" or beta_pos is not None or beta_neg is not None or seed is not None \
                or target is not None or model is not None or out is not None or steps is not None:
            fail("--runs names the runs: drop --method/--beta-pos/--beta-neg/--seed/--target/--model/--out/--steps")
        ids = parse_run_ids(runs)
        cfg = numerics(load_config(config))
        for path in stage.run_bundle(cfg, ids, prompts=prompts, progress=progress, fresh_on_change=fresh_on_change):
            typer.echo(str(path))
        return
    check_method(method)
    if method != "asym" and (beta_pos is not None or beta_neg is not None):
        fail(f"--beta-pos/--beta-neg apply to method 'asym' only, not '{method}'")
    if beta_pos is not None:
        check_beta(beta_pos, "--beta-pos")
    if beta_neg is not None:
        check_beta(beta_neg, "--beta-neg")
    if target is not None:
        if method != "asym_adaptive":
            fail(f"--target applies to method 'asym_adaptive' only, not '{method}'")
        if not is_target(target):
            fail(f"--target must be a finite number > 0, got {target}")
        beta_pos = target  # asym_adaptive's run ids carry the target in the beta_pos slot (methods.run_id)
    if steps is not None and steps < 1:
        fail(f"--steps must be >= 1, got {steps}")
    cfg = numerics(load_config(config))
    path = stage.run(cfg, method, beta_pos, beta_neg, seed, prompts=prompts, model=model, out=out,
                     steps=steps, progress=progress, fresh_on_change=fresh_on_change)
    typer.echo(str(path))


@app.command("eval", rich_help_panel=STAGES)
@user_errors
def eval_(
    config: Optional[Path] = ConfigOpt,
    run: Optional[Path] = typer.Option(None, "--run", help="Run folder whose checkpoints to evaluate."),
    model: Optional[Path] = typer.Option(None, help="A model folder to evaluate instead (e.g. the base model)."),
    run_id: Optional[str] = typer.Option(None, help="Run id for the rows (default: the run folder's name, or 'base')."),
    prompts: Optional[Path] = typer.Option(None, help="prompts.parquet for the embedded held-out benchmark."),
    out: Optional[Path] = typer.Option(None, help="samples.parquet path (default: {results_dir}/evals/{run_id}/)."),
    benchmarks: Optional[str] = typer.Option(None, help="Comma-separated subset of the config's benchmarks."),
    steps: Optional[str] = typer.Option(None, help="'final', 'all' or comma-separated checkpoint steps."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    runs: Optional[str] = typer.Option(
        None, "--runs", help="Comma-separated run ids to evaluate in this one process, one after another (an "
        "eval bundle; each run into its own evals/{run}/, as alone). Replaces --run/--model/--run-id/--out."),
) -> None:
    """Evaluate a run's checkpoints (or a model), or a bundle of runs, with Avg@k sampling into samples.parquet."""
    from stages import evaluate as stage

    from .config import load_config
    from .methods import parse_run_ids

    step_sel: Any = None
    if steps is not None:
        if steps in ("final", "all"):
            step_sel = steps
        else:
            try:
                step_sel = [int(x) for x in steps.split(",") if x.strip()]
            except ValueError:
                fail(f"--steps must be 'final', 'all' or comma-separated integers, got '{steps}'")
    bench = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else None
    if runs is not None:
        if run is not None or model is not None or run_id is not None or out is not None:
            fail("--runs names the runs: drop --run/--model/--run-id/--out")
        ids = parse_run_ids(runs)
        cfg = numerics(load_config(config))
        for path in stage.run_bundle(cfg, ids, prompts=prompts, benchmarks=bench, steps=step_sel, progress=progress):
            typer.echo(str(path))
        return
    cfg = numerics(load_config(config))
    path = stage.run(cfg, run_dir=run, model=model, run_id=run_id, prompts=prompts, out=out,
                     benchmarks=bench, steps=step_sel, progress=progress)
    typer.echo(str(path))


@app.command(rich_help_panel=ANALYSIS)
@user_errors
def curves(
    estimator: str = typer.Option(..., "--estimator", help="Advantage estimator (asym, grpo, reinforce, "
                                  "grpo_unbiased, dr_grpo, pos_only, neg_only, ent_decrease, ent_increase)."),
    beta_pos: Optional[float] = typer.Option(None, help="beta_pos (default: the estimator's own; asym 0.9)."),
    beta_neg: Optional[float] = typer.Option(None, help="beta_neg (default: the estimator's own; asym 0.4)."),
    group_size: int = typer.Option(8, "--group-size", help="Rollouts per prompt G; rows are p = k/G."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Print an estimator's advantages A and pressures W per group accuracy p (Figure 1, Prop. 2)."""
    from .analysis.curves import curves_data, format_curves

    typer.echo(format_curves(curves_data(estimator, group_size, beta_pos, beta_neg), format))


@app.command(rich_help_panel=ANALYSIS,
             # a gold answer such as -1 is a value, not an unknown option
             context_settings={"ignore_unknown_options": True})
@user_errors
def grade(
    pred: str = typer.Argument(..., help="The model's response; its last \\boxed{...} is graded."),
    gold: str = typer.Argument(..., help="The gold answer (LaTeX, delimiters optional)."),
    format: str = typer.Option("text", "--format", help="text or json."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds math-verify may spend on the answer."),
    multi_box: str = typer.Option("set", "--multi-box",
                                  help="Several boxes: 'set' (one answer set) or 'last' (the last box); see grading.multi_box."),
    rel_tol: float | None = typer.Option(None, "--rel-tol",
                                         help="Numbers within this relative tolerance are equal (e.g. 1e-4); off by default."),
) -> None:
    """Grade one response against a gold answer (exit code 0 whatever the verdict)."""
    import json

    from .grading import MULTI_BOX_MODES
    from .grading import grade as grade_one

    if format not in ("text", "json"):
        fail(f"--format must be 'text' or 'json', got '{format}'")
    if not timeout > 0:
        fail(f"--timeout must be > 0, got {timeout}")
    if multi_box not in MULTI_BOX_MODES:
        fail(f"--multi-box must be one of {', '.join(MULTI_BOX_MODES)}, got '{multi_box}'")
    if rel_tol is not None and not 0 < rel_tol < 1:
        fail(f"--rel-tol must be in (0, 1), got {rel_tol}")
    v = grade_one(pred, gold, timeout_s=timeout, multi_box=multi_box, rel_tol=rel_tol)
    if format == "json":
        typer.echo(json.dumps({"correct": v.correct, "reason": v.reason, "extracted": v.extracted, "gold": gold}))
    else:
        typer.echo(f"verdict: {'correct' if v.correct else 'incorrect'}\nextracted: {v.extracted}\nreason: {v.reason}")


# --- pipeline: run-grid, status, aggregate, report (asymcli/pipeline/, stages/aggregate.py, stages/report.py)

WorkflowConfigOpt = typer.Option(None, "--config", "-c",
                                 help="Experiment config YAML (default: configs/default.yaml, as the Snakefile).")


@app.command("run-grid", context_settings={"allow_extra_args": True}, rich_help_panel=PIPELINE)
@user_errors
def run_grid(
    ctx: typer.Context,
    config: Optional[Path] = WorkflowConfigOpt,
    betas: Optional[list[str]] = typer.Option(
        None, "--betas", help="An AsymGRPO pair BETA_POS,BETA_NEG, e.g. 0.9,0.4 (repeatable)."),
    grid: Optional[str] = typer.Option(
        None, "--grid", help="Cartesian beta grid of Figure 4d, e.g. 0.1,0.3,0.5,0.7,0.9."),
    methods: Optional[str] = typer.Option(
        None, "--methods", help="Named baselines, e.g. grpo,reinforce (default: the config's grid.methods)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds, e.g. 0,1,2 (default: the config's)."),
    target: Optional[str] = typer.Option(
        None, "--target", help="table2, grid, figures or all (default: all if the config has a grid, else table2)."),
    cores: str = typer.Option("all", "--cores", help="Snakemake --cores: a number or 'all'."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Show the plan only; nothing is run or written."),
) -> None:
    """Run the experiment grid through the Snakemake DAG, then print Table 2.

    --betas / --grid replace the config's AsymGRPO pairs; the config's baseline methods run
    beside them unless --methods is given. A run shares its artifacts with `snakemake` runs
    of the same config. Arguments after `--` go to snakemake (e.g. `-- --executor slurm`).

    A live view shows the jobs and each running run's step, reward and entropy; Snakemake's
    output goes to {results}/logs/run-grid.log (shown with --verbose, and on failure). A
    run whose config changed trains again from scratch (old checkpoints move to
    runs/RUN/previous/); a lock left by a killed run is released.
    """
    from rich.console import Console

    from . import pipeline

    plan = pipeline.plan_grid(config, betas=betas, grid=grid, methods=methods, seeds=seeds,
                              target=target, cores=cores)
    numerics(plan.cfg)
    console = Console()
    pipeline.run_grid(plan, cores=cores, dry_run=dry_run, extra=list(ctx.args), echo=typer.echo,
                      console=console, verbose=VERBOSE)
    if not dry_run:
        from .analysis.report import print_tables

        print_tables(plan.cfg, console)
        for line in pipeline.summary_lines(plan):
            typer.echo(line)


@app.command(rich_help_panel=PIPELINE)
@user_errors
def status(config: Optional[Path] = WorkflowConfigOpt) -> None:
    """Show which runs, checkpoints and evaluations exist, which are pending, and disk used."""
    from rich.console import Console

    from . import pipeline

    cfg, _ = pipeline.load_workflow_config(config)
    pipeline.render_status(pipeline.collect_status(cfg), Console())


@app.command(rich_help_panel=PIPELINE)
@user_errors
def aggregate(
    config: Optional[Path] = WorkflowConfigOpt,
    part: Optional[list[str]] = typer.Option(None, "--part", help="table2, grid or curves (repeatable; default all)."),
    runs: Optional[str] = typer.Option(
        None, "--runs", help="Comma-separated run ids to include (default: every run found under results_dir)."),
) -> None:
    """Aggregate samples and metrics into {results}/agg/*.parquet with DuckDB."""
    from stages import aggregate as stage

    from .pipeline import load_workflow_config

    run_ids = stage.parse_runs(runs) if runs is not None else None
    cfg, _ = load_workflow_config(config)
    for path in stage.run(cfg, part, run_ids):
        typer.echo(str(path))


@app.command(rich_help_panel=PIPELINE)
@user_errors
def report(
    config: Optional[Path] = WorkflowConfigOpt,
    part: Optional[list[str]] = typer.Option(
        None, "--part", help="table2, grid, figures or index (repeatable; default all)."),
    aggregate: bool = typer.Option(
        True, "--aggregate/--no-aggregate", help="Re-aggregate every run found first (default), or use agg/ as is."),
) -> None:
    """Print Table 2 and write {results}/report/: tables (md, tex, csv), figures, index.md."""
    from rich.console import Console

    from stages import report as stage

    from .pipeline import load_workflow_config

    cfg, _ = load_workflow_config(config)
    stage.run(numerics(cfg), part, aggregate=aggregate, console=Console())


# --- data and base model: prep, base (stages/prep.py, stages/base.py)


@app.command(rich_help_panel=STAGES)
@user_errors
def prep(
    config: Optional[Path] = ConfigOpt,
    out: Optional[Path] = typer.Option(None, help="prompts.parquet path (default: {results_dir}/data/prompts.parquet)."),
) -> None:
    """Write the training and held-out prompts (the config's task) to prompts.parquet."""
    from stages import prep as stage

    from .config import load_config

    typer.echo(str(stage.run(numerics(load_config(config)), out)))


@app.command(rich_help_panel=STAGES)
@user_errors
def base(
    config: Optional[Path] = ConfigOpt,
    prompts: Optional[Path] = typer.Option(None, help="prompts.parquet (default: {results_dir}/data/prompts.parquet)."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: {results_dir}/base)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr."),
    write_prebuilt: bool = typer.Option(
        False, "--write-prebuilt", help="Warm up from scratch, then ship the result as a prebuilt base "
        "(asymcli/embedded/assets/{name}-base[seed]/) that configs with the same recipe start from."),
    base_seed: Optional[int] = typer.Option(None, "--base-seed", help="Warm-up seed (overrides base.seed; "
                                            "one of grid.bases when a config has several bases)."),
) -> None:
    """Build the base model (tiny default: supervised warm-up, or the prebuilt one shipped with
    asym when the config's recipe matches) and its group-accuracy statistics."""
    import dataclasses

    from stages import base as stage

    from .config import load_config

    cfg = numerics(load_config(config))
    if base_seed is not None:
        if base_seed < 0:
            raise typer.BadParameter(f"--base-seed must be >= 0, got {base_seed}")
        cfg = dataclasses.replace(cfg, base=dataclasses.replace(cfg.base, seed=base_seed))
    log = None if quiet else (lambda line: typer.echo(line, err=True))
    paths = stage.run(cfg, prompts, out, log=log, fresh=write_prebuilt)
    if write_prebuilt:
        folder = stage.ship_prebuilt(cfg, paths, str(config or "configs/default.yaml"), base_seed)
        typer.echo(f"prebuilt base written to {folder}", err=True)
    typer.echo(str(paths["model"]))


# --- claims: the paper's claims as paired tests over seeds (asymcli/analysis/claims/, stages/claims.py)


@app.command(rich_help_panel=ANALYSIS)
@user_errors
def claims(
    config: Optional[Path] = WorkflowConfigOpt,
    runs: Optional[list[str]] = typer.Option(
        None, "--runs", help="Run folder, results folder, or comma-separated run ids (repeatable; "
        "default: every finished run under results_dir)."),
    replication: Optional[list[str]] = typer.Option(
        None, "--replication", help="An independent replication: a results folder, comma-separated run folders, "
        "or a claims.json from an earlier `asym claims` (give 2 or more; the first is the original). Each is "
        "reported at its own n, and pooled with replication as a stratum (fixed effect); writes "
        "claims-pooled.md/json. Not with --runs."),
    format: str = typer.Option("table", "--format", help="table, json or md."),
) -> None:
    """Check the paper's claims (Tables 1-2, Props. 1-2, Figs. 2-3) on finished runs; writes
    {results}/report/claims.md and claims.json (with --replication: claims-pooled.md and .json)."""
    import os

    from stages import claims as stage

    from .analysis.claims import FORMATS, print_rich, to_json, to_markdown
    from .pipeline import config_source, load_workflow_config

    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got '{format}'")
    cfg, _ = load_workflow_config(config)
    src = config_source(config)
    shown = None if src is None else (str(config) if config is not None else os.path.relpath(src))
    if replication and runs:
        fail("--replication and --runs: give the runs of each replication as a --replication entry")
    if replication:
        result, paths = stage.run_replications(cfg, replication, config_path=shown)
    else:
        result, paths = stage.run(cfg, runs, config_path=shown)
    if format == "json":
        typer.echo(to_json(result), nl=False)
    elif format == "md":
        typer.echo(to_markdown(result), nl=False)
    else:
        from rich.console import Console

        print_rich(result, Console())
        typer.echo(f"details: {paths['md']} (json: {paths['json']})")


@app.command(rich_help_panel=ANALYSIS)
@user_errors
def scan(
    config: Optional[Path] = WorkflowConfigOpt,
    model: Optional[Path] = typer.Option(None, help="Start from this model or checkpoint folder (default: the "
                                         "config's base, built first if missing)."),
    betas: Optional[list[str]] = typer.Option(
        None, "--betas", help="An AsymGRPO pair BETA_POS,BETA_NEG to scan (repeatable)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Cartesian beta grid, e.g. 0.1,0.5,0.9."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Named methods to scan, e.g. grpo,pos_only."),
    seed: int = typer.Option(0, help="Seed of the scanned batches (a run's prompt order and sampling streams)."),
    batches: int = typer.Option(4, help="Rollout batches: kappa_B pools them, predictions average them."),
    lookahead: Optional[bool] = typer.Option(
        None, "--lookahead/--no-lookahead", help="Measure the one-step lookahead (one update per pair and batch; "
        "default: on for one model, off with --run, where it would cost that per checkpoint)."),
    run: Optional[Path] = typer.Option(None, "--run", help="Scan each checkpoint of this run folder in step order "
                                       "and name the first where kappa_B's sign is established."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: {results}/scan/, or "
                                       "{results}/scan/run-RUN_ID/ with --run)."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Predict each beta pair's entropy effect before training: kappa_B with its CI, Prop. 1's
    first-order prediction, a one-step lookahead and Prop. 2's peaks (docs/scan.md). Default
    pairs: the config's grid and methods, GRPO and AsymGRPO (0.9, 0.4), against REINFORCE.
    While kappa_B's CI includes 0 the predictions print as unknown, with a next step."""
    from stages import scan as stage

    from .analysis.scan import print_rich, print_run, to_json
    from .pipeline import config_source, load_workflow_config, parse_grid, parse_methods, parse_pair

    if format not in ("table", "json"):
        fail(f"--format must be table or json, got '{format}'")
    if batches < 1:
        fail(f"--batches must be >= 1, got {batches}")
    if run is not None and model is not None:
        fail("--run and --model are exclusive: --run scans the run's own checkpoints")
    if run is not None:
        stage.run_folder(run)  # a missing folder or one without checkpoints fails before any work
    cfg, _ = load_workflow_config(config)
    numerics(cfg)
    pairs = stage.pairs_from(cfg, parse_methods(methods) if methods else None,
                             [tuple(parse_pair(b)) for b in betas or []], parse_grid(grid) if grid else [])
    src = config_source(config)
    progress = None
    if format == "table":
        def progress(i: int, n: int, label: str) -> None:
            typer.echo(f"[{i + 1}/{n}] {label}", err=True)
    label = str(config or src) if (config or src) else None
    if run is not None:
        def each(i: int, n: int, step: int) -> None:
            if format == "table":
                typer.echo(f"[{i + 1}/{n}] checkpoint step {step}", err=True)

        doc, paths = stage.run_checkpoints(cfg, run, pairs, seed=seed, batches=batches, lookahead=bool(lookahead),
                                           out=out, config_label=label, on_checkpoint=each)
    else:
        doc, paths = stage.run(cfg, pairs, model=model, seed=seed, batches=batches,
                               lookahead=True if lookahead is None else lookahead, out=out, config_label=label,
                               on_pair=progress)
    if format == "json":
        typer.echo(to_json(doc), nl=False)
    else:
        from rich.console import Console

        (print_run if run is not None else print_rich)(doc, Console())
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


#: `asym --help` lists the panels (and the commands in them) in this order: the pipeline first.
HELP_ORDER = ["run-grid", "status", "aggregate", "report", "prep", "base", "train", "eval",
              "curves", "grade", "claims", "scan", "version"]
app.registered_commands.sort(
    key=lambda c: HELP_ORDER.index(c.name or c.callback.__name__.strip("_").replace("_", "-"))  # type: ignore[union-attr]
)


def main(prog_name: str | None = None) -> None:
    try:
        app(prog_name=prog_name)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
