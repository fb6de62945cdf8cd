"""Damaged artifacts: named by `asym status`, set aside and rebuilt by `asym run-grid`.

A ``metrics.parquet``, ``samples.parquet`` or aggregate whose Parquet footer or schema does not
read, or a checkpoint whose files no longer match its COMPLETE marker. ``asym status`` names each
one and what the next run-grid does; ``asym run-grid`` moves it into a ``damaged/`` folder beside
it (with a REASON.txt, :func:`set_aside`) before Snakemake starts and names it to Snakemake as a
target, so that Snakemake reruns the job that makes it (and, by modification time, what is built
from it). A metrics.parquet is rebuilt from the last checkpoint's trainer state (the train job
resumes there), a samples.parquet is re-evaluated from its kept parts, an aggregate is
re-aggregated.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import artifacts
from .layout import Layout

DAMAGED = "damaged"


@dataclass
class Damage:
    """One damaged artifact, what the next run-grid does about it and where it keeps it."""

    path: Path  # the damaged file or checkpoint folder
    why: str  # one line naming the file and what is wrong
    then: str  # what rebuilds it once it is moved aside, e.g. "the run is re-evaluated ..."
    aside: Path  # the folder run-grid moves it into (``damaged/`` beside it)
    run_id: str | None = None
    kind: str = ""  # metrics | samples | checkpoint | aggregate | input
    also: list[Path] = field(default_factory=list)  # set aside with it (see run_damage)

    @property
    def blocking(self) -> bool:
        """An input of every run (prompts, base stage): run-grid stops instead."""
        return self.kind == "input"

    def describe(self) -> str:
        """One line for `asym status`: what is wrong and what the next run-grid does."""
        if self.blocking:
            return f"{self.why}; the next run-grid stops: {self.then}"
        return f"{self.why}; the next run-grid moves it to {self.aside}/, then {self.then}"


def run_damage(run_dir: Path, eval_dir: Path, rid: str, steps: int | None = None,
               hashes: bool = True) -> list[Damage]:
    """The damaged artifacts of one run (checkpoints, metrics.parquet, samples.parquet).

    ``hashes`` False checks checkpoint file sizes only (what `asym status` does: no
    hashing); True also their sha256 (what the trainer checks before resuming)."""
    run_dir, eval_dir = Path(run_dir), Path(eval_dir)
    aside = run_dir / DAMAGED
    out: list[Damage] = []
    ckpts = artifacts.list_checkpoints(run_dir / artifacts.CHECKPOINTS_DIR)
    bad = {s: why for s, p in ckpts if (why := artifacts.checkpoint_damage(p, hashes=hashes))}
    intact = [s for s, _ in ckpts if s not in bad]
    latest_bad = bool(ckpts) and ckpts[-1][0] in bad
    resume = f"resumes from its checkpoint step {intact[-1]}" if intact else "trains from scratch"
    metrics = run_dir / artifacts.METRICS_FILE
    metrics_why = artifacts.parquet_damage(metrics, artifacts.METRICS)
    for s, p in ckpts:
        if s not in bad:
            continue
        if s == ckpts[-1][0]:
            also = [metrics] if metrics.exists() and not metrics_why else []
            what = (f"the run {resume} to write it again"
                    + (" (its metrics.parquet is moved with it, so that the train job reruns)" if also else ""))
            out.append(Damage(p, bad[s], what, aside, rid, "checkpoint", also))
        else:
            out.append(Damage(p, bad[s], f"the run goes on from its checkpoint step {ckpts[-1][0]} "
                              "(this step is not written again)", aside, rid, "checkpoint"))
    if metrics_why:
        if intact and not latest_bad:
            last = intact[-1]
            what = (f"the train job rebuilds it from checkpoint step {last}, which holds every "
                    "metrics row up to it" + (f", and trains on to step {steps}" if steps and last < steps else ""))
        else:
            what = f"the run retrains: it {resume}"
        out.append(Damage(metrics, metrics_why, what, aside, rid, "metrics"))
    samples = eval_dir / artifacts.SAMPLES_FILE
    why = artifacts.parquet_damage(samples, artifacts.SAMPLES)
    if why:
        out.append(Damage(samples, why, "the run is evaluated again (finished parts under "
                          f"{eval_dir / artifacts.EVAL_PARTS_DIR} are reused)", eval_dir / DAMAGED, rid, "samples"))
    return out


def shared_damage(root: Path, agg_names: list[str]) -> list[Damage]:
    """Damaged inputs of every run (prompts, the base stage's Parquet files) and aggregates."""
    root = Path(root)
    out = []
    stop = ("it is an input of every run, and rebuilding it retrains them all; "
            "move it away and rerun run-grid to do that")
    layout = Layout(root)
    for path, schema in ((layout.prompts, artifacts.PROMPTS), (layout.base_stats, artifacts.BASE_STATS),
                         (layout.sft_metrics, None)):
        why = artifacts.parquet_damage(path, schema)
        if why:
            out.append(Damage(path, why, stop, path.parent / DAMAGED, None, "input"))
    for name in agg_names:
        path = layout.agg(name)
        why = artifacts.parquet_damage(path)
        if why:
            out.append(Damage(path, why, "it is aggregated again (by a run-grid whose target uses it)",
                              path.parent / DAMAGED,
                              None, "aggregate"))
    return out


def set_aside(d: Damage) -> Path:
    """Move a damaged artifact (and ``d.also``) into ``d.aside`` and append why to its
    REASON.txt; returns where the artifact now is. One copy per name is kept: a later
    damage of the same file replaces it."""
    d.aside.mkdir(parents=True, exist_ok=True)
    dest = d.aside / d.path.name
    for src in (d.path, *d.also):
        if not src.exists():
            continue
        target = d.aside / src.name
        if target.exists():
            # Renamed first, as checkpoint retention does: a kill leaves no half folder under the name.
            doomed = d.aside / f".tmp_{src.name}.deleted"
            _remove(doomed)  # left by a killed set-aside
            os.replace(target, doomed)
            _remove(doomed)
        os.replace(src, target)
    reason = d.aside / "REASON.txt"
    old = reason.read_text(encoding="utf-8") if reason.exists() else ""
    moved = ", ".join(p.name for p in (d.path, *d.also))
    artifacts.write_text(reason, old + f"{time.strftime('%Y-%m-%d %H:%M:%S')} `asym run-grid` set aside "
                         f"{moved}: damaged\n  {d.why}\n  then {d.then}\n")
    return dest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
