"""``asym status``: which runs, evaluations and report files exist, how far each run got, disk use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import artifacts
from ..config import is_base_run, Config, resolve_run, run_id
from ..training.reruns import run_staleness
from .damage import run_damage, shared_damage
from .layout import AGG_PARTS, Layout
from .runs import all_runs, base_run_ids, ids


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
    damage: list[Any] = field(default_factory=list)  # damage.Damage: its damaged artifacts

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
    damage: list[Any] = field(default_factory=list)  # damage.Damage of prompts, base, aggregates
    platforms: dict[str, Any] = field(default_factory=dict)  # run id -> platform it was trained (or evaluated) on

    @property
    def platform_note(self) -> str | None:
        """One line when the runs come from more than one platform (asymcli.platform; a run made
        before asym recorded platforms counts as "unrecorded")."""
        from ..platform import mixed_note

        return mixed_note(self.platforms)

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
    for rid in wanted + sorted(found - set(wanted)):
        parts = lay.eval_parts(rid)
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
            (lay.base_model_of(b) / "config.json").exists() for b in (cfg.grid.bases or [None])),
        runs=rows,
        report=report,
        damage=shared_damage(lay.root, agg_names()),
        platforms={r.run_id: artifacts.recorded_platform(lay.run_json(r.run_id), lay.metrics(r.run_id),
                                                         lay.samples(r.run_id))
                   for r in rows if r.trained or r.evaluated},
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
    if st.platform_note:
        console.print(f"[yellow]note: {escape(st.platform_note)}[/]", markup=True, highlight=False, soft_wrap=True)
