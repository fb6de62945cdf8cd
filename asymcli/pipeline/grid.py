"""``asym run-grid``: plan the targets, set damaged artifacts aside, run Snakemake as a subprocess
(never imported), one run-grid per results folder, stale Snakemake locks released."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import artifacts
from ..config import Config, config_from_dict, load_config, resolve_run, run_id
from ..errors import AsymError, ConfigError
from .damage import run_damage, set_aside, shared_damage
from .layout import AGG_PARTS, BASE_RUN, DEFAULT_CONFIG, Layout, REPORT_PARTS, SNAKEFILE
from .runs import all_runs, grid_overrides, grid_pair_runs, ids, table_runs


#: Snakemake targets (rules in the Snakefile) and what each builds.
TARGETS: dict[str, str] = {
    "table2": "Table 2: the config's methods and beta pairs, trained, evaluated, tabulated",
    "grid": "Figure 4d: the cartesian (beta_pos, beta_neg) grid and its heatmap",
    "figures": "Figures 1-4 (a-c) from the training curves",
    "all": "everything above plus report/index.md",
}


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


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"--target {target!r}: must be one of {', '.join(TARGETS)}")
    return target


def check_cores(cores: str) -> str:
    if cores != "all" and not (cores.isdigit() and int(cores) >= 1):
        raise ConfigError(f"--cores {cores!r}: must be a positive integer or 'all'")
    return cores


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
        return _dry_run(plan, cores, extra, echo)
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
        rebuild += [f for f in missing_targets(plan) if f not in rebuild]
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
            # Through asymcli.pipeline.supervise: if run-grid dies, even by SIGKILL, Snakemake and its
            # jobs stop as on Ctrl-C and release the lock.
            proc = subprocess.Popen([sys.executable, "-m", "asymcli.pipeline.supervise", *cmd], stdout=log,
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
        _raise_failed(rc, state, workdir, log_path, echo)
    done = state.done if state.total else 0
    if state.nothing_to_do or not state.total:
        echo("run-grid: nothing to do, every output is up to date")
    else:
        echo(f"run-grid: {done}/{state.total} jobs done in {live.fmt_duration(time.time() - t0)}")
    return rc


def _dry_run(plan: GridPlan, cores: str, extra: Sequence[str], echo: Any) -> int:
    """``run_grid(dry_run=True)``: name the damaged artifacts and show Snakemake's plan."""
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


def _raise_failed(rc: int, state: Any, workdir: Path, log_path: Path, echo: Any) -> None:
    """Snakemake exited with ``rc`` != 0: show the failed jobs' logs and raise AsymError naming them."""
    from . import live

    if state.locked:
        others = ", ".join(f"pid {pid}" for pid, _ in snakemake_processes(workdir)) or "none found now"
        raise AsymError(f"another Snakemake process is writing the same files in {workdir} "
                        f"({others}); wait for it to finish, or stop it, then rerun")
    for line in live.failure_report(state, log_path):
        echo(line)
    failed = ", ".join(j.label.replace("  ", " ") for j in state.failed)
    raise AsymError(f"snakemake failed (exit {rc})" + (f": {failed}" if failed else "")
                    + f"; the failed job's log is shown above; Snakemake's log: {_shown(log_path)}")


def find_damage(plan: GridPlan) -> list[Any]:
    """The damaged artifacts (asymcli.pipeline.damage.Damage) of the plan's runs, the base model's
    evaluation, the shared inputs and the aggregates; checkpoints are hashed as at resume."""
    lay = Layout.of(plan.cfg)
    steps_of = {run_id(*r): resolve_run(plan.cfg, *r).steps for r in all_runs(plan.cfg)}
    out = shared_damage(lay.root, [n for part in TARGET_AGG[plan.target] for n in AGG_PARTS[part]])
    for rid in [BASE_RUN, *plan.runs]:
        out += run_damage(lay.run_dir(rid), lay.eval_dir(rid), rid, steps_of.get(rid), hashes=True)
    return out


def set_aside_damage(plan: GridPlan, echo: Any = print) -> list[Any]:
    """Before Snakemake starts: move each damaged artifact into a ``damaged/`` folder beside
    it (asymcli.pipeline.damage.set_aside); run-grid then names it to Snakemake as a target
    (:func:`rebuild_targets`), which reruns the job that makes it and, by modification
    time, what is built from it. A damaged input of every run
    (prompts, the base stage) stops run-grid with one line instead: rebuilding it would
    retrain every run. Returns the damage found."""
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


def missing_targets(plan: GridPlan) -> list[Path]:
    """The target's per-run artifacts that are missing (a run folder deleted to retrain it):
    each run's metrics.parquet and, for the targets that read evaluations, its samples.parquet.
    Named to Snakemake as targets, because it does not rebuild a missing file when what is
    built from it (the aggregate, the report) is present and up to date."""
    layout = Layout.of(plan.cfg)
    out: list[Path] = []
    for rid in plan.runs:
        files = [layout.metrics(rid)] + ([layout.samples(rid)] if plan.target != "figures" else [])
        out += [f for f in files if not f.exists()]
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

    Asks psutil; a process whose command line or working directory it may not read is skipped."""
    import psutil

    want = Path(workdir).resolve()
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        pid, args, cwd = p.info["pid"], p.info["cmdline"], p.info["cwd"]
        if pid == os.getpid() or not args or not _is_snakemake(args) or not cwd:
            continue
        where = None
        for i, a in enumerate(args):
            if a in ("--directory", "-d") and i + 1 < len(args):
                where = args[i + 1]
            elif a.startswith("--directory="):
                where = a.split("=", 1)[1]
        target = (Path(cwd) / where).resolve() if where else Path(cwd).resolve()
        if target == want:
            out.append((pid, " ".join(a for a in args if a)))
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
    stopping its jobs (asymcli.pipeline.supervise) and will release its lock. We hold the run-grid
    lock, so the run-grid that started it is gone."""
    mine = f"--configfile {(root / 'run-grid.yaml').resolve()}"
    deadline = time.time() + timeout_s
    while time.time() < deadline and any(mine in cmd for _, cmd in snakemake_processes(workdir)):
        time.sleep(0.5)


def release_stale_lock(workdir: Path) -> bool:
    """Release Snakemake's lock in ``workdir`` with ``snakemake --unlock`` when no Snakemake process
    runs there; True if a lock was released. AsymError if the unlock fails."""
    locks = Path(workdir) / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return False
    if snakemake_processes(workdir):
        return False  # a live Snakemake holds it: Snakemake itself decides
    cmd = [sys.executable, "-m", "snakemake", "--unlock", "--snakefile", str(SNAKEFILE),
           "--directory", str(Path(workdir).resolve())]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
        raise AsymError(f"snakemake --unlock failed in {workdir} (exit {r.returncode}): {last}")
    return True
