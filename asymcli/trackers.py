"""Experiment trackers: a run's per-step metrics and config in TensorBoard, W&B, MLflow, trackio.

Why it exists: verl users watch runs through ``trainer.logger`` and TRL users through
``report_to``; asym's record stays metrics.parquet, and ``train.loggers`` mirrors each
step's row to the dashboards researchers already have open. Each tracker is an optional
extra (``pip install 'asym[tensorboard]'`` ...), none by default, and all of them write
locally, with no network:

- ``tensorboard``: event files in ``{results_dir}/trackers/tensorboard/{run_id}/``;
- ``wandb``: offline mode (``mode="offline"``, unless WANDB_MODE says otherwise) in
  ``{results_dir}/trackers/wandb/``; upload later with ``wandb sync``;
- ``mlflow``: a local file store ``{results_dir}/trackers/mlruns`` (unless
  MLFLOW_TRACKING_URI is set); experiment = config name, run name = run id;
- ``trackio``: its local SQLite database under ``{results_dir}/trackers/trackio``
  (unless TRACKIO_DIR is set); ``trackio show`` opens it.

Metric names follow verl's where verl logs the same quantity (``actor/entropy``,
``critic/score/mean``, ``actor/pg_clipfrac`` ...; see :data:`VERL_NAMES`), so dashboards
and scripts written for verl runs read asym runs too; every other metric is
``asym/<column>`` with the METRICS column name. Differences from verl, kept on purpose:
``actor/ppo_kl`` is asym's k3 estimate of KL(old || new) (verl's default is k1), and
``actor/pg_clipfrac`` is the low-side plus high-side clip fraction, which is verl's
``pg_clipfrac`` for the PPO-clip loss. A tracker whose package is missing is a one-line
ConfigError naming the extra, raised before training starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")

#: METRICS column -> verl's metric name for the same quantity.
VERL_NAMES: dict[str, str] = {
    "reward_mean": "critic/score/mean",
    "entropy": "actor/entropy",
    "loss": "actor/pg_loss",
    "approx_kl": "actor/ppo_kl",
    "grad_norm": "actor/grad_norm",
    "lr": "actor/lr",
    "response_len_mean": "response_length/mean",
    "rollout_s": "timing_s/gen",
    "update_s": "timing_s/update_actor",
}

#: Columns that are not scalars (histograms) or are the step itself.
_SKIP = {"step", "p_hist", "w_pos_hist", "w_neg_hist"}


def tracker_metrics(row: dict[str, Any]) -> dict[str, float]:
    """One METRICS row -> {tracker metric name: value}; NaN (not measured this step) left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if key in _SKIP or isinstance(value, (list, tuple)) or value is None:
            continue
        v = float(value)
        if math.isnan(v):
            continue
        out[VERL_NAMES.get(key, f"asym/{key}")] = v
    low, high = row.get("clipfrac_low"), row.get("clipfrac_high")
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        out["actor/pg_clipfrac"] = float(low) + float(high)
    if "reward_mean" in row and "critic/score/mean" in out:
        out["critic/rewards/mean"] = out["critic/score/mean"]  # no KL penalty in the reward
    out["training/global_step"] = float(row["step"])
    return out


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"run.lr": 5e-05, ...} with scalar values (MLflow params are flat)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, f"{key}."))
        elif isinstance(v, (list, tuple)):
            out[key] = str(list(v))
        else:
            out[key] = v
    return out


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"train.loggers lists '{extra}' but {module} is not installed; "
                          f"install it with: pip install 'asym[{extra}]'") from None


class Tracker:
    """One tracker backend: ``log(step, metrics)`` then ``close()``."""

    name = ""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, root: Path, run_id: str, project: str, config: dict[str, Any]):
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = root / "tensorboard" / run_id
        self.writer = SummaryWriter(log_dir=str(self.logdir))
        import json

        # The config as text (TensorBoard's Text tab), as verl and TRL do.
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandbTracker(Tracker):
    name = "wandb"

    def __init__(self, root: Path, run_id: str, project: str, config: dict[str, Any]):
        wandb = self.wandb = _require("wandb", "wandb")
        d = root / "wandb"
        d.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=run_id, group=project, config=config, dir=str(d),
                              mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new",
                              settings=wandb.Settings(console="off", silent=True))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
        # finish() can return before W&B's service process has flushed the offline run
        # file (seen in CI: a run file with no records yet); teardown waits for it to finish
        # writing. A train job ends here, so stopping the service costs nothing.
        self.wandb.teardown()


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, root: Path, run_id: str, project: str, config: dict[str, Any]):
        _require("mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # The local file store: no server, no database package. MLflow 3 keeps it in
            # maintenance mode and asks for this opt-in to use it.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (root / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(project)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(project)
        self.run_id = self.client.create_run(exp_id, run_name=run_id, tags={"asym.run_id": run_id}).info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flat_config(config).items()]
        for i in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class TrackioTracker(Tracker):
    name = "trackio"

    def __init__(self, root: Path, run_id: str, project: str, config: dict[str, Any]):
        # trackio reads TRACKIO_DIR when imported: set it first (the user's own setting wins).
        os.environ.setdefault("TRACKIO_DIR", str((root / "trackio").resolve()))
        trackio = _require("trackio", "trackio")
        self.trackio = trackio
        self.run = trackio.init(project=project, name=run_id, config=config, resume="allow",
                                auto_log_gpu=False, auto_log_cpu=False)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


BACKENDS: dict[str, Callable[..., Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
    "mlflow": MlflowTracker,
    "trackio": TrackioTracker,
}


class TrackerSink:
    """Every configured tracker of one run; called once per training step."""

    def __init__(self, trackers: Sequence[Tracker]):
        self.trackers = list(trackers)

    def log_row(self, step: int, row: dict[str, Any]) -> None:
        if self.trackers:
            metrics = tracker_metrics(row)
            for t in self.trackers:
                t.log(step, metrics)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


def open_trackers(names: Sequence[str], root: str | os.PathLike[str], run_id: str, project: str,
                  config: dict[str, Any]) -> TrackerSink:
    """Start the trackers ``names`` (train.loggers) for one run, files under ``root``
    (``{results_dir}/trackers``). ``config`` is the run description (Trainer.config_dict)."""
    opened: list[Tracker] = []
    try:
        for name in dict.fromkeys(names):  # listed twice = once
            if name not in BACKENDS:
                raise ConfigError(f"train.loggers: unknown tracker '{name}'; known: {', '.join(TRACKERS)}")
            opened.append(BACKENDS[name](Path(root), run_id, project, config))
    except BaseException:
        TrackerSink(opened).close()
        raise
    return TrackerSink(opened)
