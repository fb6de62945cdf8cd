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

app = typer.Typer(
    name="asym",
    help="Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894.",
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


@app.callback()
def _root() -> None:
    """Run, compare and report RLVR experiments: AsymGRPO and the baselines of arXiv 2604.04894."""


ConfigOpt = typer.Option(None, "--config", "-c", help="Experiment config YAML (default: built-in defaults).")


@app.command()
def version() -> None:
    """Print the asym version."""
    from . import __version__

    typer.echo(__version__)


@app.command()
@user_errors
def train(
    config: Optional[Path] = ConfigOpt,
    method: str = typer.Option("asym", help="Method: asym, grpo, reinforce, grpo_ent, clip_higher, dr_grpo, "
                               "pos_only, neg_only, ent_decrease, ent_increase, reinforce_ent."),
    beta_pos: Optional[float] = typer.Option(None, help="AsymGRPO beta_pos (method asym)."),
    beta_neg: Optional[float] = typer.Option(None, help="AsymGRPO beta_neg (method asym)."),
    seed: Optional[int] = typer.Option(None, help="Run seed (default: train.seed)."),
    prompts: Optional[Path] = typer.Option(None, help="prompts.parquet (default: {results_dir}/data/prompts.parquet)."),
    model: Optional[Path] = typer.Option(None, help="Starting model folder (default: the base stage's model)."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: {results_dir}/runs/{run_id})."),
    steps: Optional[int] = typer.Option(None, help="Override train.steps."),
    progress: bool = typer.Option(True, help="Show a live progress bar."),
) -> None:
    """Train one run (one method config + seed); resumes from its latest checkpoint."""
    from stages import train as stage

    from .config import check_beta, check_method, load_config

    check_method(method)
    if method != "asym" and (beta_pos is not None or beta_neg is not None):
        fail(f"--beta-pos/--beta-neg apply to method 'asym' only, not '{method}'")
    if beta_pos is not None:
        check_beta(beta_pos, "--beta-pos")
    if beta_neg is not None:
        check_beta(beta_neg, "--beta-neg")
    if steps is not None and steps < 1:
        fail(f"--steps must be >= 1, got {steps}")
    cfg = load_config(config)
    path = stage.run(cfg, method, beta_pos, beta_neg, seed, prompts=prompts, model=model, out=out,
                     steps=steps, progress=progress)
    typer.echo(str(path))


@app.command("eval")
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
) -> None:
    """Evaluate a run's checkpoints (or a model) with Avg@k sampling into samples.parquet."""
    from stages import evaluate as stage

    from .config import load_config

    step_sel: Any = None
    if steps is not None:
        if steps in ("final", "all"):
            step_sel = steps
        else:
            try:
                step_sel = [int(x) for x in steps.split(",") if x.strip()]
            except ValueError:
                fail(f"--steps must be 'final', 'all' or comma-separated integers, got '{steps}'")
    cfg = load_config(config)
    bench = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else None
    path = stage.run(cfg, run_dir=run, model=model, run_id=run_id, prompts=prompts, out=out,
                     benchmarks=bench, steps=step_sel, progress=progress)
    typer.echo(str(path))


@app.command()
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
    from .curves import curves_data, format_curves

    typer.echo(format_curves(curves_data(estimator, group_size, beta_pos, beta_neg), format))


@app.command()
@user_errors
def grade(
    pred: str = typer.Argument(..., help="The model's response; its last \\boxed{...} is graded."),
    gold: str = typer.Argument(..., help="The gold answer (LaTeX, delimiters optional)."),
    format: str = typer.Option("text", "--format", help="text or json."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds math-verify may spend on the answer."),
) -> None:
    """Grade one response against a gold answer (exit code 0 whatever the verdict)."""
    import json

    from .grading import grade as grade_one

    if format not in ("text", "json"):
        fail(f"--format must be 'text' or 'json', got '{format}'")
    if not timeout > 0:
        fail(f"--timeout must be > 0, got {timeout}")
    v = grade_one(pred, gold, timeout_s=timeout)
    if format == "json":
        typer.echo(json.dumps({"correct": v.correct, "reason": v.reason, "extracted": v.extracted, "gold": gold}))
    else:
        typer.echo(f"verdict: {'correct' if v.correct else 'incorrect'}\nextracted: {v.extracted}\nreason: {v.reason}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
