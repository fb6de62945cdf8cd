"""Where every artifact lives: the repository's own files and the results folder's layout (``Layout``,
the one place that builds artifact paths), and the files each aggregate / report part writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import CHECKPOINTS_DIR, EVAL_PARTS_DIR, METRICS_FILE, RUN_JSON, SAMPLES_FILE
from ..config import base_of, Config


#: The repository checkout this package runs from (the Snakefile lives at its root).
REPO_ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO_ROOT / "Snakefile"
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"


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

    def base_folder(self, base: int | str | None = None) -> Path:
        """The base stage's folder: ``base/`` (one base) or ``base/b{k}/`` (grid.bases)."""
        return self.base_dir if base is None else self.base_dir / f"b{base}"

    def base_model_of(self, base: int | str | None = None) -> Path:
        """The base model's HF folder (of base seed ``base`` with grid.bases; a wildcard passes through)."""
        return self.base_folder(base) / "model"

    def base_stats_of(self, base: int | str | None = None) -> Path:
        return self.base_folder(base) / "base_stats.parquet"

    def sft_metrics_of(self, base: int | str | None = None) -> Path:
        return self.base_folder(base) / "sft_metrics.parquet"

    @property
    def base_model(self) -> Path:
        return self.base_model_of()

    @property
    def base_stats(self) -> Path:
        return self.base_stats_of()

    @property
    def sft_metrics(self) -> Path:
        return self.sft_metrics_of()

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, rid: str) -> Path:
        return self.runs_dir / rid

    def run_json(self, rid: str) -> Path:
        return self.run_dir(rid) / RUN_JSON

    def metrics(self, rid: str) -> Path:
        return self.run_dir(rid) / METRICS_FILE

    def checkpoints(self, rid: str) -> Path:
        return self.run_dir(rid) / CHECKPOINTS_DIR

    @property
    def evals_dir(self) -> Path:
        return self.root / "evals"

    def eval_dir(self, rid: str) -> Path:
        return self.evals_dir / rid

    def samples(self, rid: str) -> Path:
        return self.eval_dir(rid) / SAMPLES_FILE

    def eval_parts(self, rid: str) -> Path:
        """The evaluation's finished (step, benchmark) parts, kept for resume."""
        return self.eval_dir(rid) / EVAL_PARTS_DIR

    def agg(self, name: str) -> Path:
        return self.root / "agg" / f"{name}.parquet"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def claims_md(self) -> Path:
        return self.report_dir / "claims.md"

    @property
    def claims_json(self) -> Path:
        return self.report_dir / "claims.json"

    @property
    def trackers(self) -> Path:
        return self.root / "trackers"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        """A Snakemake job's log: ``logs/{name}.log`` (``name`` may hold a folder: ``eval/{run}``)."""
        return self.logs / f"{name}.log"

    def benchmark(self, name: str) -> Path:
        """A Snakemake job's benchmark table: ``benchmarks/{name}.tsv``."""
        return self.root / "benchmarks" / f"{name}.tsv"

    def report_file(self, name: str) -> Path:
        """A file of ``asym report`` (``name`` relative to report/, as in REPORT_PARTS)."""
        return self.report_dir / name

    @property
    def scan_dir(self) -> Path:
        """`asym scan`'s default output folder (scan.parquet, scan.json, scan.png)."""
        return self.root / "scan"


def model_path(cfg: Config, seed: int | None = None) -> str:
    """The model the runs start from: the base stage's folder (tiny) or model.path (hf).
    With ``grid.bases``, the folder of run seed ``seed``'s base (:func:`config.base_of`)."""
    if cfg.model.kind == "hf":
        return str(cfg.model.path)
    base = base_of(cfg, seed) if seed is not None else None
    return str(Layout.of(cfg).base_model_of(base))
