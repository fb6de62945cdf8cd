"""Stage `train`: prompts.parquet + base model -> runs/{run_id}/metrics.parquet (+ checkpoints).

One run = one method config + seed. Resumes from the latest complete checkpoint in
``out_dir`` when there is one. The greedy test-accuracy curve (``train.eval_every``) runs on
the prompts' held-out split for the embedded task, on ``eval.benchmarks`` for a benchmark task.
"""

from __future__ import annotations

from pathlib import Path

from asymcli import artifacts, evaluation
from asymcli.config import Config, TrainConfig, resolve_run, run_id
from asymcli.errors import DataError
from asymcli.evaluation import CurveSet
from asymcli.trainer import Trainer


def default_paths(cfg: Config) -> dict[str, Path]:
    root = Path(cfg.results_dir)
    model = Path(cfg.model.path) if cfg.model.kind == "hf" and cfg.model.path else root / "base" / "model"
    return {"prompts": root / "data" / "prompts.parquet", "model": model, "runs": root / "runs"}


def load_splits(prompts: Path) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows) of a prompts artifact."""
    table = artifacts.read_parquet(prompts, artifacts.PROMPTS)
    rows = table.to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    heldout = [r for r in rows if r["split"] in ("heldout", "test")]
    if not train:
        raise DataError(f"{prompts}: no rows with split == 'train' (found {len(rows)} rows)")
    return train, heldout


def run(cfg: Config, method: str, beta_pos: float | None = None, beta_neg: float | None = None,
        seed: int | None = None, *, prompts: Path | None = None, model: Path | None = None,
        out: Path | None = None, steps: int | None = None, progress: bool = True) -> Path:
    """Train one run; returns the path of its metrics.parquet."""
    tc: TrainConfig = resolve_run(cfg, method, beta_pos, beta_neg, seed)
    if steps is not None:
        tc.steps = steps
    if cfg.eval.steps == "all":
        # Retention must not delete checkpoints the evaluation stage will still read.
        tc.keep_last = max(tc.keep_last, tc.steps)
    if cfg.report.checkpoint.isdigit():  # nor the one Table 2 reports
        tc.keep_steps = sorted(set(tc.keep_steps) | {int(cfg.report.checkpoint)})
    paths = default_paths(cfg)
    prompts = Path(prompts or paths["prompts"])
    model = Path(model) if model else paths["model"]
    out = Path(out) if out else paths["runs"] / run_id(tc.method, tc.beta_pos, tc.beta_neg, tc.seed)
    train_rows, heldout_rows = load_splits(prompts)
    trainer = Trainer(cfg, tc, train_rows, heldout_rows, model, out, progress=progress,
                      curve_sets=curve_sets(cfg, tc, prompts))
    return trainer.train()


def curve_sets(cfg: Config, tc: TrainConfig, prompts: Path) -> list[CurveSet] | None:
    """What ``train.eval_every`` evaluates: for a benchmark task (whose prompts are all
    ``train``) the config's eval benchmarks at T = 0, each cut to its ``curve_limit``
    (Appendix G's test-accuracy curves); for the embedded task None, i.e. the prompts'
    held-out split."""
    if cfg.task.kind != "benchmark" or not tc.eval_every:
        return None
    return evaluation.curve_sets(cfg, prompts_path=prompts)
