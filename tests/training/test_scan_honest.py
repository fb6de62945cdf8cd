"""`asym scan` says only what it knows (issue 28, part 3): while kappa_B's CI includes 0 every
sign-dependent prediction is "unknown" (table, scan.json, scan.parquet) with a next step, and
`asym scan --run DIR` scans a run's checkpoints in step order and names the first where the
sign is established."""

from __future__ import annotations

import json
import math
import re

import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.analysis import scan as view
from asymcli.cli import app
from asymcli.config import config_to_dict, resolve_run
from asymcli.errors import ArtifactError, ConfigError
from asymcli.training.scan import ScanPair, ScanResult
from stages import scan as stage

LR = 2e-4


def _row(label, method, bp, bn, prop1, first_order, lookahead):
    return {"label": label, "method": method, "beta_pos": bp, "beta_neg": bn, "prop1": prop1,
            "first_order": first_order, "lookahead": lookahead, "probe_entropy": 0.05 + lookahead,
            "peak_pos": 1 - bp if 0 < bp < 1 else math.nan, "peak_neg": bn if 0 < bn < 1 else math.nan}


def _result(kappa, ci):
    """A scan as the mechanism testbed's base gives it: a negative point estimate whose sign
    is not established (the numbers of docs/scan.md), so every signed prediction is inverted."""
    nan = math.nan
    rows = [_row("reinforce", "reinforce", 1.0, 1.0, 0.0, 0.0, 0.0),
            _row("grpo", "grpo", 0.5, 0.5, 0.0, -3.1e-7, -2.0e-5),
            _row("asym(0.9, 0.4)", "asym", 0.9, 0.4, LR * kappa * 0.5, -8.3e-7, -4.0e-5),
            _row("pos_only", "pos_only", 1.0, 0.0, LR * kappa * 1.0, -1.7e-6, -6.0e-5),
            _row("ent_increase", "ent_increase", nan, nan, nan, 2.2e-6, 3.0e-5)]
    return ScanResult(kappa=kappa, kappa_ci=ci, n_groups=128, n_mixed=96, reward_mean=0.52, entropy=0.046,
                      probe_entropy=0.047, lr=LR, batches=4, rows=rows, seconds=1.0)


def _table(doc):
    console = Console(record=True, width=220, color_system=None)
    view.print_rich(doc, console)
    return console.export_text()


def _line(text, label):
    return next(line for line in text.splitlines() if line.strip(" │|").startswith(label))


def test_ci_including_zero_prints_unknown_and_a_next_step():
    res = _result(-0.0089, (-0.0187, 0.0007))
    doc = json.loads(view.to_json(view.summary(res, model="base", config=None)))
    assert doc["sign_established"] is False and doc["kappa_sign"] == "unknown"
    pairs = {p["label"]: p for p in doc["pairs"]}
    # the signed predictions are withheld, their point estimates kept apart for analysis
    for label in ("asym(0.9, 0.4)", "pos_only"):
        for k in view.SIGN_DEPENDENT:
            assert pairs[label][k] is None and pairs[label][f"{k}_point"] is not None, (label, k)
    assert pairs["asym(0.9, 0.4)"]["prop1_point"] == pytest.approx(LR * -0.0089 * 0.5)
    # what holds at either sign stays: the reference's 0s, Prop. 1's 0 for a zero gap, Prop. 2's peaks
    assert [pairs["reinforce"][k] for k in view.SIGN_DEPENDENT] == [0.0, 0.0, 0.0]
    assert pairs["grpo"]["prop1"] == 0.0 and pairs["grpo"]["first_order"] is None
    assert pairs["asym(0.9, 0.4)"]["peak_pos"] == pytest.approx(0.1)
    # undefined (Prop. 1 of a flipped method) is not "unknown"
    assert pairs["ent_increase"]["prop1"] is None and pairs["ent_increase"]["prop1_point"] is None
    assert all(p["sign_established"] is False for p in doc["pairs"])
    # next step: an early checkpoint via --run, and how many batches would settle the sign here
    assert "--run" in doc["next_step"] and "--batches 6" in doc["next_step"]

    text = _table(doc)
    assert "the sign is not known" in text
    assert _line(text, "asym(0.9, 0.4)").count("unknown") == 3
    assert _line(text, "pos_only").count("unknown") == 3
    assert _line(text, "grpo").count("unknown") == 2  # its Prop. 1 is 0 at any kappa_B
    assert _line(text, "ent_increase").count("unknown") == 2  # its Prop. 1 is undefined: "-"
    assert "next: scan an early checkpoint" in text
    # no signed prediction anywhere in the table: the only numbers in pair rows are 0s and peaks
    for label in ("asym(0.9, 0.4)", "pos_only", "grpo", "ent_increase"):
        assert not re.search(r"-\d|e-0", _line(text, label)), _line(text, label)


def test_written_parquet_and_json_carry_unknown(tmp_path):
    from tests.training.test_trainer import small_cfg

    res = _result(-0.0089, (-0.0187, 0.0007))
    doc, paths = stage.write(small_cfg(), res, model=tmp_path / "base", out=tmp_path / "scan", seed=0,
                             config_label=None)
    rows = {r["label"]: r for r in pq.read_table(paths["parquet"]).to_pylist()}
    assert pq.read_schema(paths["parquet"]).names == view.SCAN.names
    assert all(r["sign_established"] is False for r in rows.values())
    assert rows["asym(0.9, 0.4)"]["prop1"] is None and rows["asym(0.9, 0.4)"]["lookahead"] is None
    assert rows["asym(0.9, 0.4)"]["prop1_point"] == pytest.approx(LR * -0.0089 * 0.5)
    assert math.isnan(rows["ent_increase"]["prop1"])  # undefined stays NaN, unlike the withheld nulls
    assert rows["reinforce"]["prop1"] == 0.0 and rows["grpo"]["prop1"] == 0.0
    assert artifacts.read_metadata(paths["parquet"])["sign_established"] is False
    assert json.loads(paths["json"].read_text()) == json.loads(view.to_json(doc))
    assert paths["png"].stat().st_size > 0


def test_established_sign_output_is_unchanged():
    res = _result(0.018, (0.0127, 0.0240))
    doc = json.loads(view.to_json(view.summary(res, model="ckpt", config=None)))
    assert doc["sign_established"] is True and doc["kappa_sign"] == "positive" and doc["next_step"] is None
    for p, r in zip(doc["pairs"], res.rows):
        for k in view.SIGN_DEPENDENT:
            want = None if math.isnan(r[k]) else r[k]
            assert p[k] == want and p[f"{k}_point"] == want
    text = _table(doc)
    assert "CI excludes 0" in text and "unknown" not in text and "next:" not in text
    assert "0.0018" in _line(text, "asym(0.9, 0.4)") or "1.8e-06" in _line(text, "asym(0.9, 0.4)")
    # a negative established sign is just as known
    assert view.summary(_result(-0.02, (-0.03, -0.01)), model="m", config=None)["kappa_sign"] == "negative"


def test_no_ci_and_too_close_to_zero_say_what_to_do():
    assert not view.sign_established((math.nan, math.nan)) and not view.sign_established((None, None))
    assert view.sign_established((0.001, 0.002)) and not view.sign_established((-0.001, 0.0))
    assert "fewer than 2 mixed groups" in view.next_step(math.nan, (math.nan, math.nan), 4)
    # half-width 0.0097 at 4 batches around -0.0089: 4 x (0.0097/0.0089)^2 x 1.1 -> 6 batches
    assert view.batches_to_exclude_zero(-0.0089, (-0.0187, 0.0007), 4) == 6
    # a point at 1/10 of the half-width would need ~440 batches: more batches is not the advice
    assert view.batches_to_exclude_zero(0.001, (-0.009, 0.011), 4) is None
    assert "too close to 0" in view.next_step(0.001, (-0.009, 0.011), 4)
    assert view.next_step(0.01, (0.005, 0.015), 4) is None


def _ckpt_doc(step, kappa, ci):
    d = json.loads(view.to_json(view.summary(_result(kappa, ci), model=f"ckpt/step_{step:06d}", config=None)))
    return step, d


def test_run_summary_names_the_first_established_checkpoint():
    docs = [_ckpt_doc(10, -0.002, (-0.01, 0.006)), _ckpt_doc(20, 0.01, (0.004, 0.016)),
            _ckpt_doc(30, 0.02, (0.01, 0.03))]
    rep = view.run_summary("runs/x", docs)
    assert rep["first_established_step"] == 20 and rep["first_established_model"] == "ckpt/step_000020"
    assert [d["step"] for d in rep["checkpoints"]] == [10, 20, 30]
    assert [r["sign_established"] for r in view.checkpoint_rows(rep)] == [False, True, True]
    console = Console(record=True, width=220, color_system=None)
    view.print_run(rep, console)
    text = console.export_text()
    assert "established: step 20" in text and "unknown" in _line(text, "10")

    none = view.run_summary("runs/x", docs[:1])
    assert none["first_established_step"] is None and "none of the 1 checkpoint(s)" in none["next_step"]
    assert "later checkpoints" in none["next_step"]
    flip = view.run_summary("runs/x", [_ckpt_doc(10, -0.02, (-0.03, -0.01)), _ckpt_doc(20, 0.02, (0.01, 0.03))])
    assert flip["first_established_step"] == 10 and "changes between checkpoints" in flip["next_step"]


@pytest.fixture(scope="module")
def tiny_run(tiny_policy_dir, arith_rows, tmp_path_factory):
    """A 4-step REINFORCE run with checkpoints at steps 2 and 4 (tests/training/test_trainer.py's helpers)."""
    from tests.training.test_trainer import make, small_cfg

    cfg = small_cfg(steps=4, checkpoint_every=2, eval_every=0)
    run_dir = tmp_path_factory.mktemp("scanrun") / "runs" / "reinforce_s0"
    make(cfg, resolve_run(cfg, "reinforce", seed=0), arith_rows, tiny_policy_dir, run_dir).train()
    return cfg, run_dir


def test_run_scans_each_checkpoint_in_step_order(tiny_run, arith_rows, tmp_path):
    from tests.training.test_trainer import ParityGrader

    cfg, run_dir = tiny_run
    train = [r for r in arith_rows if r["split"] == "train"]
    pairs = [ScanPair("reinforce"), ScanPair("asym", 0.9, 0.1), ScanPair("asym", 0.5, 0.5)]
    seen = []
    rep, paths = stage.run_checkpoints(cfg, run_dir, pairs, batches=2, train_rows=train, grader=ParityGrader(),
                                       out=tmp_path / "out", on_checkpoint=lambda i, n, s: seen.append((i, n, s)))
    assert seen == [(0, 2, 2), (1, 2, 4)]
    steps = [d["step"] for d in rep["checkpoints"]]
    assert steps == [2, 4]
    for d in rep["checkpoints"]:
        assert d["model"] == str(run_dir / "checkpoints" / f"step_{d['step']:06d}")
        lo, hi = d["kappa_ci95"]
        assert d["mixed_groups"] > 1 and lo <= d["kappa"] <= hi
        assert d["sign_established"] == view.sign_established((lo, hi))
        # each checkpoint's own scan, honest as a single scan is
        one = json.loads((tmp_path / "out" / f"step_{d['step']:06d}" / "scan.json").read_text())
        assert one == {k: v for k, v in d.items() if k != "step"}
        gap = next(p for p in one["pairs"] if p["label"] == "asym(0.9, 0.1)")
        assert (gap["prop1"] is None) == (not d["sign_established"])
        assert gap["lookahead"] is None and gap["lookahead_point"] is None  # off by default with --run
    first = next((d["step"] for d in rep["checkpoints"] if d["sign_established"]), None)
    assert rep["first_established_step"] == first
    table = pq.read_table(paths["parquet"]).to_pylist()
    assert [r["step"] for r in table] == steps and table[0]["kappa"] == pytest.approx(rep["checkpoints"][0]["kappa"])
    assert json.loads(paths["json"].read_text())["first_established_step"] == first


def test_run_refuses_a_run_of_another_task(tiny_run, tmp_path):
    cfg, run_dir = tiny_run
    stage.check_same_task(cfg, run_dir)  # its own config passes
    saved = json.loads((run_dir / "run.json").read_text())
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "run.json").write_text(json.dumps(dict(saved, task=dict(saved["task"], seed=saved["task"]["seed"] + 1))))
    with pytest.raises(ConfigError, match=r"--run .*copy.*another model/task/grader.*task\.seed"):
        stage.check_same_task(cfg, copy)
    (copy / "run.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="run.json: unreadable"):
        stage.check_same_task(cfg, copy)


def test_run_bad_folders_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "nope"
    r = runner.invoke(app, ["scan", "--run", str(missing)])
    assert r.exit_code == 2 and f"--run {missing}: no such folder" in r.output and len(r.output.splitlines()) == 1
    empty = tmp_path / "runs" / "grpo_s0"
    (empty / "checkpoints" / ".tmp_step_000002").mkdir(parents=True)  # a half-written one does not count
    r = runner.invoke(app, ["scan", "--run", str(empty)])
    assert r.exit_code == 2 and f"no complete checkpoint in {empty / 'checkpoints'}" in r.output
    assert len(r.output.splitlines()) == 1
    r = runner.invoke(app, ["scan", "--run", str(empty), "--model", str(tmp_path)])
    assert r.exit_code == 2 and "--run and --model are exclusive" in r.output


def test_asym_scan_run_cli(tiny_run, tmp_path):
    """The command end to end on the tiny run, with the run's own config as a file."""
    cfg, run_dir = tiny_run
    data = config_to_dict(cfg)
    data["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    r = CliRunner().invoke(app, ["scan", "--config", str(path), "--run", str(run_dir), "--batches", "1",
                                 "--grid", "0.1,0.9"])
    assert r.exit_code == 0, r.output
    assert "kappa_B per checkpoint" in r.stdout and "first checkpoint with kappa_B's sign established: none" in r.stdout
    out = tmp_path / "results" / "scan" / "run-reinforce_s0"
    rep = json.loads((out / "run-scan.json").read_text())
    assert [d["step"] for d in rep["checkpoints"]] == [2, 4]
    assert (out / "step_000002" / "scan.parquet").exists() and (out / "step_000004" / "scan.json").exists()
