"""Experiment trackers (asymcli/trackers.py): each one against the real package, on the CPU,
read back with that package's own reader. A tracker whose extra is not installed is
skipped (CI installs all four: the `test` extra lists them).
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asymcli import trackers

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"run": {"method": "grpo", "lr": 1e-4, "steps": 3, "keep_steps": [2]}, "model": {"kind": "tiny"},
          "task": {"kind": "arithmetic"}, "model_path": "results/base/model"}


def rows() -> list[dict]:
    """Three METRICS-like rows (the columns the trackers see)."""
    out = []
    for s in (1, 2, 3):
        out.append({"step": s, "reward_mean": 0.125 * s, "entropy": 2.0 / s, "loss": -0.5 * s, "approx_kl": 0.001 * s,
                    "clipfrac_low": 0.01, "clipfrac_high": 0.02 * s, "grad_norm": 1.5, "lr": 1e-4,
                    "response_len_mean": 10.0 + s, "rollout_s": 0.5, "update_s": 0.25, "kappa": 0.3,
                    "eval_greedy_acc": 0.5 if s == 3 else float("nan"), "p_hist": [1, 2, 3]})
    return out


def expected(name: str) -> list[tuple[int, float]]:
    return [(r["step"], trackers.tracker_metrics(r)[name]) for r in rows() if name in trackers.tracker_metrics(r)]


def same_series(got: list[tuple[int, float]], want: list[tuple[int, float]], rel: float) -> bool:
    return [s for s, _ in got] == [s for s, _ in want] and \
        [v for _, v in got] == pytest.approx([v for _, v in want], rel=rel)


def log_all(names: list[str], root: Path) -> None:
    sink = trackers.open_trackers(names, root, "grpo_s0", "asym-test", CONFIG)
    for r in rows():
        sink.log_row(r["step"], r)
    sink.close()


def test_metric_names_follow_verl():
    m = trackers.tracker_metrics(rows()[2])
    assert m["actor/entropy"] == pytest.approx(2 / 3)
    assert m["critic/score/mean"] == m["critic/rewards/mean"] == pytest.approx(0.375)
    assert m["actor/pg_clipfrac"] == pytest.approx(0.07)  # low + high side
    assert m["actor/ppo_kl"] == pytest.approx(0.003) and m["actor/pg_loss"] == -1.5
    assert m["actor/grad_norm"] == 1.5 and m["actor/lr"] == 1e-4
    assert m["response_length/mean"] == 13.0 and m["timing_s/gen"] == 0.5 and m["timing_s/update_actor"] == 0.25
    assert m["asym/kappa"] == 0.3 and m["asym/eval_greedy_acc"] == 0.5 and m["training/global_step"] == 3.0
    assert "asym/p_hist" not in m and "asym/step" not in m
    assert "asym/eval_greedy_acc" not in trackers.tracker_metrics(rows()[0])  # NaN: not measured that step


def test_missing_tracker_package_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_wandb(name, *a, **k):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    from asymcli.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^train.loggers lists 'wandb' but wandb is not installed; "
                                          r"install it with: pip install 'asym\[wandb\]'$"):
        trackers.open_trackers(["wandb"], tmp_path, "grpo_s0", "p", CONFIG)


def test_tensorboard_round_trip(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_all(["tensorboard"], tmp_path)
    acc = EventAccumulator(str(tmp_path / "tensorboard" / "grpo_s0"))
    acc.Reload()
    for name in ("actor/entropy", "critic/score/mean", "actor/pg_clipfrac", "asym/kappa", "asym/eval_greedy_acc"):
        got = [(e.step, e.value) for e in acc.Scalars(name)]
        assert same_series(got, expected(name), 1e-6), (name, got)
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n").removeprefix("json\n")) == CONFIG


def _wandb_records(path: Path) -> list:
    """The records of a W&B offline run file (``run-*.wandb``), parsed with wandb's protobuf.

    The file is W&B's 7-byte header followed by LevelDB-log framing (32 KiB blocks; each
    chunk: crc32c, length, type FULL/FIRST/MIDDLE/LAST); each record a wandb Record."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, out, cur = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and n == 0:  # zero padding at a block's end
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            cur = chunk
        elif kind == 3:
            cur += chunk
        elif kind == 4:
            out.append(cur + chunk)
    recs = []
    for raw in out:
        rec = pb.Record()
        rec.ParseFromString(raw)
        recs.append(rec)
    return recs


def test_wandb_offline_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # asym's default: offline, no network
    monkeypatch.setenv("WANDB_API_KEY", "")
    log_all(["wandb"], tmp_path)
    (run_file,) = (tmp_path / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    recs = _wandb_records(run_file)
    # close() tears W&B's service down, which waits for the file's last record; a CI run once
    # read the file before it had any. Allow the service a little time before judging.
    deadline = time.monotonic() + 30
    while not any(r.WhichOneof("record_type") == "exit" for r in recs) and time.monotonic() < deadline:
        time.sleep(0.5)
        recs = _wandb_records(run_file)
    kinds = [r.WhichOneof("record_type") for r in recs]
    assert "run" in kinds and "exit" in kinds, (run_file, run_file.stat().st_size, kinds)
    (run,) = [r.run for r in recs if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "grpo_s0" and run.project == "asym-test"
    config = {i.key: json.loads(i.value_json) for i in run.config.update if i.key != "_wandb"}
    assert config == CONFIG
    history = {}
    for r in recs:
        if r.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            history[int(items["_step"])] = items
    for name in ("actor/entropy", "critic/score/mean", "actor/ppo_kl", "timing_s/gen"):
        got = [(s, history[s][name]) for s in sorted(history) if name in history[s]]
        assert same_series(got, expected(name), 1e-9), (name, got)


def test_mlflow_local_store_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    log_all(["mlflow"], tmp_path)
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("asym-test")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "grpo_s0" and run.info.status == "FINISHED"
    assert run.data.params["run.lr"] == "0.0001" and run.data.params["model_path"] == "results/base/model"
    assert run.data.params["run.keep_steps"] == "[2]"
    for name in ("actor/entropy", "critic/score/mean", "actor/grad_norm", "response_length/mean"):
        got = [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)]
        assert same_series(got, expected(name), 1e-9), (name, got)


def test_trackio_local_round_trip(tmp_path):
    pytest.importorskip("trackio")
    # A fresh process, as a train job is: trackio fixes its database folder when imported.
    script = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_trackers import log_all
from pathlib import Path
log_all(["trackio"], Path({str(tmp_path)!r}))
from trackio.sqlite_storage import SQLiteStorage
print("RESULT" + json.dumps({{"logs": SQLiteStorage.get_logs("asym-test", "grpo_s0"),
                               "config": SQLiteStorage.get_run_config("asym-test", "grpo_s0")}}, default=str))
"""
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_DIR"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path / "trackio").glob("asym-test*.db")), "trackio must write under results/trackers/trackio"
    got = json.loads(r.stdout.split("RESULT", 1)[1].splitlines()[0])
    logs = sorted(got["logs"], key=lambda e: e["step"])
    for name in ("actor/entropy", "critic/score/mean", "asym/kappa"):
        vals = [(e["step"], e[name]) for e in logs if name in e and not (isinstance(e[name], float) and math.isnan(e[name]))]
        assert same_series(vals, expected(name), 1e-9), (name, vals)
    assert {k: got["config"][k] for k in CONFIG} == CONFIG
