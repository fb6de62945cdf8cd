"""Stage `scan`: prompts.parquet + a model folder -> {results}/scan/ (scan.parquet, scan.json,
scan.png): kappa_B with its CI and each beta pair's predicted entropy effect
(asymcli.training.scan, docs/scan.md). Not a node of the run-grid DAG: it runs before
training, to choose the pairs to train.

Without ``model``, the scan starts from the config's base; a missing prompts artifact or base
is built first by the prep and base stages, as run-grid would.

:func:`run_checkpoints` (``asym scan --run DIR``) scans each complete checkpoint of a run
folder in step order, writing each one's scan to ``{out}/step_N/`` and the per-checkpoint
kappa_B table to ``{out}/checkpoints.parquet`` and ``{out}/run-scan.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asymcli import artifacts
from asymcli.analysis import scan as view
from asymcli.config import Config, config_to_dict
from asymcli.errors import ArtifactError, ConfigError
from asymcli.pipeline import Layout, model_path
from asymcli.training.scan import ScanPair, ScanResult, default_pairs, scan
from stages import base as base_stage
from stages import prep as prep_stage
from stages.train import load_splits


def pairs_from(cfg: Config, methods: Sequence[str] | None, betas: Sequence[tuple[float, float]],
               grid: Sequence[float]) -> list[ScanPair]:
    """REINFORCE (the reference) + the given methods and AsymGRPO pairs; the config's
    (:func:`default_pairs`) when none is given."""
    if not methods and not betas and not grid:
        return default_pairs(cfg)
    pairs = [ScanPair("reinforce")] + [ScanPair(m) for m in methods or [] if m != "reinforce"]
    pairs += [ScanPair("asym", bp, bn) for bp, bn in [*betas, *[(a, b) for a in grid for b in grid]]]
    seen: set[str] = set()
    return [p for p in pairs if not (p.label in seen or seen.add(p.label))]  # type: ignore[func-returns-value]


def _inputs(cfg: Config) -> list[dict[str, Any]]:
    """The training prompts, built by the prep stage first when missing."""
    layout = Layout.of(cfg)
    if not layout.prompts.exists():
        print(f"no prompts at {layout.prompts}: running the prep stage first", file=sys.stderr)
        prep_stage.run(cfg)
    train_rows, _ = load_splits(layout.prompts)
    return train_rows


def run(cfg: Config, pairs: Sequence[ScanPair], *, model: Path | None = None, seed: int = 0, batches: int = 4,
        lookahead: bool = True, out: Path | None = None, config_label: str | None = None,
        on_pair: Callable[[int, int, str], None] | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Scan ``pairs``; returns the summary (:func:`asymcli.analysis.scan.summary`) and the paths written."""
    if model is not None and not Path(model).is_dir():
        raise ArtifactError(f"{model}: not a model folder (give a base, checkpoint or Hugging Face model folder)")
    train_rows = _inputs(cfg)
    if model is None:
        model = Path(model_path(cfg, seed if cfg.grid.bases else None))
        if cfg.model.kind == "tiny" and not (model / "config.json").exists():
            print(f"no base model at {model}: running the base stage first", file=sys.stderr)
            base_stage.run(cfg, log=lambda m: print(m, file=sys.stderr))
    result = scan(cfg, model, train_rows, pairs, seed=seed, batches=batches, lookahead=lookahead, on_pair=on_pair)
    return write(cfg, result, model=model, out=Path(out) if out else Layout.of(cfg).scan_dir, seed=seed,
                 config_label=config_label)


def write(cfg: Config, result: ScanResult, *, model: Path, out: Path, seed: int, config_label: str | None,
          ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write one scan's scan.parquet, scan.json and scan.png to ``out``, as reported: with
    the sign-dependent predictions unknown (null) unless kappa_B's CI excludes 0."""
    doc = view.summary(result, model=str(model), config=config_label)
    rows = view.reported_rows(result.rows, doc["sign_established"])
    paths = {"parquet": out / "scan.parquet", "json": out / "scan.json", "png": out / "scan.png"}
    meta = artifacts.provenance(config_to_dict(cfg), stage="scan", model=str(model), kappa=result.kappa,
                                kappa_ci95=list(result.kappa_ci), sign_established=doc["sign_established"],
                                seed=seed, batches=result.batches)
    # null marks a prediction withheld for kappa_B's sign; NaN stays "undefined for this estimator"
    table = [{k: None if k in view.SIGN_DEPENDENT and view.is_unknown(r, k) else v for k, v in r.items()} for r in rows]
    artifacts.write_parquet(paths["parquet"], table, view.SCAN, meta)
    artifacts.write_text(paths["json"], view.to_json(doc))
    lo, hi = result.kappa_ci
    png = view.heatmap(rows, paths["png"], f"asym scan: {cfg.name}, kappa_B = {result.kappa:.3g} [{lo:.3g}, {hi:.3g}], "
                       f"{result.batches} batch(es)" + ("" if doc["sign_established"] else "; sign unknown (?)"))
    if png is None:
        paths.pop("png")
    return doc, paths


def run_folder(path: Path) -> tuple[Path, list[tuple[int, Path]]]:
    """A run folder (runs/{run_id}/, or its checkpoints/ folder) and its complete
    checkpoints in step order; ArtifactError naming the path when either is missing."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"--run {path}: no such folder (give a training run's folder, the one holding "
                            "checkpoints/)")
    ckpt_dir = path if path.name == artifacts.CHECKPOINTS_DIR else path / artifacts.CHECKPOINTS_DIR
    ckpts = artifacts.list_checkpoints(ckpt_dir)
    if not ckpts:
        raise ArtifactError(f"--run {path}: no complete checkpoint in {ckpt_dir} (a run writes one every "
                            "train.checkpoint_every steps; a running run's first appears at that step)")
    return (ckpt_dir.parent, ckpts)


def check_same_task(cfg: Config, run_dir: Path) -> None:
    """ConfigError when the run was trained on another model, task or grader than ``cfg``'s:
    its checkpoints would be scanned on prompts and rewards it never saw. A run folder
    without run.json (copied checkpoints) is taken as it is."""
    from asymcli.config import resolve_run, run_description
    from asymcli.training.reruns import config_changes

    saved_path = run_dir / artifacts.RUN_JSON
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{saved_path}: unreadable run description ({exc})") from None
    now = run_description(cfg, resolve_run(cfg, "reinforce"))
    # the run section (method, betas, lr, steps) may differ: any run of the config can be scanned
    changes = config_changes({k: v for k, v in saved.items() if k != "run"},
                             {k: v for k, v in now.items() if k != "run"})
    if changes:
        raise ConfigError(f"--run {run_dir}: trained with another model/task/grader than this config "
                          f"({'; '.join(changes[:3])}); give the run's own config with --config")


def run_checkpoints(cfg: Config, run_dir: Path, pairs: Sequence[ScanPair], *, seed: int = 0, batches: int = 4,
                    lookahead: bool = False, out: Path | None = None, config_label: str | None = None,
                    train_rows: Sequence[dict[str, Any]] | None = None, grader: Any = None,
                    on_checkpoint: Callable[[int, int, int], None] | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Scan every complete checkpoint of ``run_dir`` in step order (the list is read once, at
    the start: a running run's later checkpoints wait for the next call). Each gets a full
    scan in ``{out}/step_N/``; the report (:func:`asymcli.analysis.scan.run_summary`) names
    the first checkpoint whose kappa_B CI excludes 0. ``train_rows``/``grader`` default to
    the config's prompts and grader (tests pass their own)."""
    run_dir, ckpts = run_folder(run_dir)
    check_same_task(cfg, run_dir)
    rows = list(train_rows) if train_rows is not None else _inputs(cfg)
    out = Path(out) if out else Layout.of(cfg).scan_dir / f"run-{run_dir.name}"
    docs, skipped = [], []
    for i, (step, ckpt) in enumerate(ckpts):
        if not ckpt.is_dir():  # removed by the run's keep_last retention since the list was read
            skipped.append(f"step {step} ({ckpt}: removed by the run's checkpoint retention while scanning)")
            continue
        artifacts.verify_checkpoint(ckpt)  # a damaged checkpoint: one line naming its bad file
        if on_checkpoint is not None:
            on_checkpoint(i, len(ckpts), step)
        result = scan(cfg, ckpt, rows, pairs, seed=seed, batches=batches, lookahead=lookahead, grader=grader)
        doc, _ = write(cfg, result, model=ckpt, out=out / ckpt.name, seed=seed, config_label=config_label)
        docs.append((step, doc))
    if not docs:
        raise ArtifactError(f"--run {run_dir}: every checkpoint was removed while scanning ({'; '.join(skipped)})")
    report = view.run_summary(str(run_dir), docs, skipped)
    paths = {"parquet": out / "checkpoints.parquet", "json": out / "run-scan.json"}
    meta = artifacts.provenance(config_to_dict(cfg), stage="scan", run=str(run_dir), seed=seed, batches=batches,
                                first_established_step=report["first_established_step"])
    artifacts.write_parquet(paths["parquet"], view.checkpoint_rows(report), view.CHECKPOINTS, meta)
    artifacts.write_text(paths["json"], view.to_json(report))
    return report, paths
