"""`asym scan` (asymcli/training/scan.py, stages/scan.py, asymcli/analysis/scan.py): kappa_B
with its CI, the three predictions per pair, and the validation statistics."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from scipy import stats as sps

from asymcli.analysis.scan import SCAN, measured_gaps, spearman
from asymcli.training.scan import ScanPair, default_pairs, kappa_ci, scan

ROOT = Path(__file__).resolve().parents[2]


def test_scan_predictions_on_a_tiny_policy(tiny_policy_dir, arith_rows):
    from tests.training.test_trainer import ParityGrader, small_cfg

    cfg = small_cfg(lr=1e-3)
    train = [r for r in arith_rows if r["split"] == "train"]
    pairs = [ScanPair("reinforce"), ScanPair("grpo"), ScanPair("asym", 0.5, 0.5), ScanPair("asym", 0.9, 0.1),
             ScanPair("pos_only"), ScanPair("ent_increase")]
    res = scan(cfg, tiny_policy_dir, train, pairs, batches=2, grader=ParityGrader())
    rows = {r["label"]: r for r in res.rows}
    assert res.n_groups == 2 * cfg.train.prompts_per_step and res.n_mixed > 0
    assert res.kappa_ci[0] <= res.kappa <= res.kappa_ci[1]
    assert rows["reinforce"]["lookahead"] == 0.0 and rows["reinforce"]["first_order"] == 0.0
    # GRPO's advantages are AsymGRPO (0.5, 0.5)'s: every prediction agrees, the lookahead to the bit
    # (same weights, same batch, same probe seed)
    for k in ("prop1", "first_order", "lookahead"):
        assert rows["grpo"][k] == pytest.approx(rows["asym(0.5, 0.5)"][k], abs=1e-12)
    assert rows["asym(0.9, 0.1)"]["prop1"] == pytest.approx(cfg.train.lr * res.kappa * 0.8)
    assert rows["pos_only"]["prop1"] == pytest.approx(cfg.train.lr * res.kappa * 0.5)
    assert math.isnan(rows["ent_increase"]["prop1"]) and math.isfinite(rows["ent_increase"]["first_order"])
    assert (rows["asym(0.9, 0.1)"]["peak_pos"], rows["asym(0.9, 0.1)"]["peak_neg"]) == pytest.approx((0.1, 0.1))
    assert all(math.isfinite(r["lookahead"]) for r in res.rows)
    # a pair's lookahead does not depend on which other pairs are scanned (fresh weights per pair)
    again = scan(cfg, tiny_policy_dir, train, [ScanPair("asym", 0.9, 0.1)], batches=2, grader=ParityGrader())
    assert again.rows[0]["lookahead"] == pytest.approx(rows["asym(0.9, 0.1)"]["lookahead"], abs=1e-12)


def test_kappa_ci_and_default_pairs():
    k = np.array([0.01, 0.02, -0.005, 0.03, 0.015, 0.0, 0.02, 0.01])
    lo, hi = kappa_ci(k)
    assert lo < k.mean() < hi
    assert kappa_ci(np.array([0.1])) == (pytest.approx(math.nan, nan_ok=True),) * 2 or math.isnan(kappa_ci(np.array([0.1]))[0])
    from asymcli.config import load_config

    cfg = load_config(ROOT / "configs" / "mechanism.yaml")
    labels = [p.label for p in default_pairs(cfg)]
    assert labels[0] == "reinforce" and "asym(0.9, 0.4)" in labels and "grpo" in labels
    assert len(labels) == len(set(labels))


def test_spearman_matches_scipy_and_permutation_p():
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=1.0, size=12)
    got = spearman(x, y, n_perm=20000)
    ref = sps.spearmanr(x, y)
    assert got["rho"] == pytest.approx(ref.statistic)
    assert got["p"] == pytest.approx(ref.pvalue, abs=0.02)
    assert got["lo"] < got["rho"] < got["hi"]
    small = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])  # exact enumeration
    assert small["rho"] == pytest.approx(0.8) and small["p"] == pytest.approx(
        np.mean([abs(sps.spearmanr([1, 2, 3, 4, 5], p).statistic) >= 0.8 - 1e-12
                 for p in __import__("itertools").permutations([2, 1, 4, 3, 5])]))
    assert math.isnan(spearman([1, 2], [2, 1])["rho"])


def test_measured_gaps_pairs_by_seed():
    ent = {"reinforce": {0: [1.0, 1.0], 1: [2.0, 2.0]}, "pos_only": {0: [1.5, 1.5], 1: [2.1, 2.3], 5: [9.0, 9.0]}}
    g = measured_gaps(ent)
    assert g["pos_only"]["n"] == 2 and g["pos_only"]["gap"] == pytest.approx((0.5 + 0.2) / 2)
    assert g["reinforce"]["gap"] == 0.0


def test_asym_scan_on_the_smoke_config(tmp_path):
    from typer.testing import CliRunner

    from asymcli.cli import app

    cfg = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    cfg["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["scan", "--config", str(path), "--batches", "1", "--grid", "0.1,0.9",
                                 "--methods", "grpo", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert [p["label"] for p in doc["pairs"]] == ["reinforce", "grpo", "asym(0.1, 0.1)", "asym(0.1, 0.9)",
                                                  "asym(0.9, 0.1)", "asym(0.9, 0.9)"]
    assert doc["batches"] == 1 and doc["groups"] == cfg["train"]["prompts_per_step"]
    out = tmp_path / "results" / "scan"
    table = pq.read_table(out / "scan.parquet")
    assert table.schema.names == SCAN.names and table.num_rows == 6
    assert json.loads((out / "scan.json").read_text())["pairs"] == doc["pairs"]
    # bad input: a model folder that is not there is named
    r = CliRunner().invoke(app, ["scan", "--config", str(path), "--model", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "nope" in r.output


def test_seed_bootstrap_spearman_resamples_seeds_within_each_pair():
    from asymcli.analysis.scan import seed_bootstrap_spearman
    pred = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}
    # Seeds far apart relative to their spread: every resample keeps the order, so the CI is [1, 1].
    sep = {"a": [0.0, 0.1, 0.2], "b": [10.0, 10.1, 10.2], "c": [20.0, 20.1], "d": [30.0]}
    r = seed_bootstrap_spearman(pred, sep, n_boot=500, n_perm=1000)
    assert r["rho"] == pytest.approx(1.0) and r["lo"] == pytest.approx(1.0) and r["hi"] == pytest.approx(1.0)
    assert r["seeds"] == {"a": 3, "b": 3, "c": 2, "d": 1} and r["n"] == 4
    # Overlapping seeds: the point rho is the rank correlation of the seed means, and the CI widens.
    noisy = {"a": [0.0, 3.0, 1.0], "b": [2.0, -1.0, 1.5], "c": [1.0, 2.5, 0.0], "d": [3.0, 0.5, 2.0]}
    means = [sum(v) / 3 for v in noisy.values()]
    r = seed_bootstrap_spearman(pred, noisy, n_boot=2000, n_perm=1000)
    assert r["rho"] == pytest.approx(spearman(list(pred.values()), means)["rho"])
    assert r["lo"] < 0 < r["hi"]
    # A key in only one of the two inputs is left out; tied predictions take average ranks.
    r = seed_bootstrap_spearman({"a": 0.0, "b": 0.0, "c": 1.0, "x": 5.0}, {**sep, "y": [1.0]}, n_boot=200, n_perm=100)
    assert r["n"] == 3 and set(r["seeds"]) == {"a", "b", "c"}
    assert r["rho"] == pytest.approx(spearman([0.0, 0.0, 1.0], [0.1, 10.1, 20.05])["rho"])
