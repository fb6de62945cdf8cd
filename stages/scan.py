"""Stage `scan`: prompts.parquet + a model folder -> {results}/scan/ (scan.parquet, scan.json,
scan.png): kappa_B with its CI and each beta pair's predicted entropy effect
(asymcli.training.scan, docs/scan.md). Not a node of the run-grid DAG: it runs before
training, to choose the pairs to train.

Without ``model``, the scan starts from the config's base; a missing prompts artifact or base
is built first by the prep and base stages, as run-grid would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asymcli import artifacts
from asymcli.analysis import scan as view
from asymcli.config import Config, config_to_dict
from asymcli.errors import ArtifactError
from asymcli.pipeline import Layout, model_path
from asymcli.training.scan import ScanPair, default_pairs, scan
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


def run(cfg: Config, pairs: Sequence[ScanPair], *, model: Path | None = None, seed: int = 0, batches: int = 4,
        lookahead: bool = True, out: Path | None = None, config_label: str | None = None,
        on_pair: Callable[[int, int, str], None] | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Scan ``pairs``; returns the summary (:func:`asymcli.analysis.scan.summary`) and the paths written."""
    layout = Layout.of(cfg)
    if not layout.prompts.exists():
        print(f"no prompts at {layout.prompts}: running the prep stage first", file=sys.stderr)
        prep_stage.run(cfg)
    if model is None:
        model = Path(model_path(cfg, seed if cfg.grid.bases else None))
        if cfg.model.kind == "tiny" and not (model / "config.json").exists():
            print(f"no base model at {model}: running the base stage first", file=sys.stderr)
            base_stage.run(cfg, log=lambda m: print(m, file=sys.stderr))
    elif not Path(model).is_dir():
        raise ArtifactError(f"{model}: not a model folder (give a base, checkpoint or Hugging Face model folder)")
    train_rows, _ = load_splits(layout.prompts)
    result = scan(cfg, model, train_rows, pairs, seed=seed, batches=batches, lookahead=lookahead, on_pair=on_pair)
    doc = view.summary(result, model=str(model), config=config_label)
    out = Path(out) if out else layout.scan_dir
    paths = {"parquet": out / "scan.parquet", "json": out / "scan.json", "png": out / "scan.png"}
    meta = artifacts.provenance(config_to_dict(cfg), stage="scan", model=str(model), kappa=result.kappa,
                                kappa_ci95=list(result.kappa_ci), seed=seed, batches=batches)
    artifacts.write_parquet(paths["parquet"], result.rows, view.SCAN, meta)
    artifacts.write_text(paths["json"], view.to_json(doc))
    png = view.heatmap(result.rows, paths["png"], f"asym scan: {cfg.name}, kappa_B = {result.kappa:.3g} "
                       f"[{result.kappa_ci[0]:.3g}, {result.kappa_ci[1]:.3g}], {batches} batch(es)")
    if png is None:
        paths.pop("png")
    return doc, paths
