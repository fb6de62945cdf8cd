"""Independent replications pooled as such (`asym claims --replication`), the 90% CI beside
every one-sided verdict, and the declared primary endpoint (issue 30, item 3)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st
from typer.testing import CliRunner

from asymcli.analysis import claims
from asymcli.analysis.claims import replications, stats
from asymcli.cli import app
from asymcli.config import load_config
from asymcli.errors import ConfigError

from .test_claims import check, holds, holds_world  # noqa: F401  (fixture)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results" / "headline"
FIRST, RERUN = DOCS / "claims-n24.json", DOCS / "rerun-2026-12-03" / "claims.json"
runner = CliRunner()


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------


def test_one_stratum_is_the_paired_test():
    xs = [0.3, -0.1, 0.8, 0.5, 0.2]
    a, b = stats.paired_test(xs, 1, margin=1.0), stats.stratified_test([xs], 1, margin=1.0)
    assert a == b and a.df == 4


@pytest.mark.parametrize("seed", range(20))
def test_ci90_matches_the_one_sided_verdict(seed):
    """holds (p < 0.05 one-sided) exactly when the 90% CI excludes 0 on the claimed side;
    the 90% CI is the t interval, nested in the 95% one."""
    rng = random.Random(seed)
    xs = [rng.gauss(0.4, 1.0) for _ in range(rng.randint(3, 12))]
    for sign in (1, -1):
        t = stats.paired_test(xs, sign)
        excluded = t.ci90_low > 0 if sign > 0 else t.ci90_high < 0
        assert (t.p < 0.05) == excluded
        assert t.ci_low < t.ci90_low < t.mean < t.ci90_high < t.ci_high
        lo, hi = st.t.interval(0.90, len(xs) - 1, loc=np.mean(xs), scale=st.sem(xs))
        assert math.isclose(t.ci90_low, lo, rel_tol=1e-9) and math.isclose(t.ci90_high, hi, rel_tol=1e-9)


def test_stratified_test_is_the_fixed_effect_model():
    """Pooled = OLS of the differences on replication dummies with one common effect: the
    n-weighted mean, SE from the pooled within-replication variance, N - R df."""
    r1, r2 = [1.0, 2.0, 0.5, 1.5], [3.0, 2.5, 3.5, 2.0, 4.0]
    t = stats.stratified_test([r1, r2], 1)
    n = len(r1) + len(r2)
    assert t.n == n and t.df == n - 2
    assert math.isclose(t.mean, (sum(r1) + sum(r2)) / n)
    ss = sum((x - np.mean(r1)) ** 2 for x in r1) + sum((x - np.mean(r2)) ** 2 for x in r2)
    se = math.sqrt(ss / (n - 2)) / math.sqrt(n)
    assert math.isclose(t.se, se, rel_tol=1e-12)
    assert math.isclose(t.p, st.t.sf(t.mean / se, n - 2), rel_tol=1e-9)
    assert math.isclose(t.ci90_low, t.mean - st.t.ppf(0.95, n - 2) * se, rel_tol=1e-9)
    # the level shift between replications is removed, not counted as noise
    assert t.se < stats.paired_test(r1 + r2, 1).se
    # and the heterogeneity F test sees it
    p_het = stats.heterogeneity_p([r1, r2])
    assert p_het == pytest.approx(st.f_oneway(r1, r2).pvalue, rel=1e-9) and p_het < 0.01


def test_pool_the_committed_headline_replications():
    """The two n = 24 headline runs: each reported as itself, pooled +0.31 (p = 0.08) for
    AsymGRPO - REINFORCE, as issue 30's review computed; primary 5a.1 alone, the rest secondary."""
    a, b = json.loads(FIRST.read_text()), json.loads(RERUN.read_text())
    p = replications.pool([("first", a), ("rerun", b)], primary_endpoint="5a.1")
    checks = {k["id"]: k for c in p["claims"] for k in c["checks"]}
    asym_rf = checks["5a.2"]
    assert asym_rf["n"] == 48 and asym_rf["df"] == 46
    assert asym_rf["mean"] == pytest.approx(0.3134, abs=1e-4) and asym_rf["p"] == pytest.approx(0.082, abs=1e-3)
    assert [r["n"] for r in asym_rf["replications"]] == [24, 24]
    assert [round(r["mean"], 4) for r in asym_rf["replications"]] == [0.2083, 0.4184]
    assert [r["replication"] for r in asym_rf["replications"]] == ["first", "rerun"]
    assert asym_rf["ci90_low"] < 0 < asym_rf["ci90_high"]  # not "holds": the 90% CI includes 0
    primary = checks["5a.1"]
    assert primary["endpoint"] == "primary" and primary["p_holm"] == primary["p"] and primary["verdict"] == "holds"
    secondary = [k for k in checks.values() if k["endpoint"] == "secondary" and k["p"] is not None]
    assert {k["id"] for k in secondary} == {"1.1", "5a.2", "5c.1", "5c.2"}
    adj = stats.holm([k["p"] for k in secondary])
    assert [k["p_holm"] for k in secondary] == pytest.approx(adj)
    assert checks["6.1"]["verdict"] == "measured" and checks["6.1"]["endpoint"] is None
    md = claims.to_markdown(p)
    assert "[primary endpoint]" in md and "[secondary, Holm p=" in md and "fixed-effect pooling stratified" in md
    assert "90% CI [-0.05874, +0.6855] (one-sided 95% bound > -0.05874)" in md
    assert "first: n=24, mean +0.2083" in md and "rerun: n=24, mean +0.4184" in md
    json.dumps(p, allow_nan=False)


def test_every_one_sided_line_shows_the_90_ci(holds):
    _, p = holds
    for c in p["claims"]:
        for k in c["checks"]:
            if k["verdict"] not in ("measured",) and k["n"] >= 2:
                line = claims.render._check_line(k)
                assert "95% CI [" in line and "90% CI [" in line and "one-sided 95% bound" in line, line


def test_primary_endpoint_marks_checks(tmp_path, holds):
    root, plain = holds
    assert all(k["endpoint"] is None for c in plain["claims"] for k in c["checks"])
    assert "no primary endpoint declared" in plain["notes"][0]
    cfg = load_config(None, {"results_dir": str(root), "report": {"primary_endpoint": "2.1"}})
    p = claims.check_results(cfg)
    ends = {k["id"]: k["endpoint"] for c in p["claims"] if c.get("kind", "claim") == "claim" for k in c["checks"]}
    assert ends["2.1"] == "primary" and set(ends.values()) == {"primary", "secondary"}
    assert p["primary_endpoint"] == "2.1" and "Pos-Only Modulation − REINFORCE" in p["notes"][0]
    cfg = load_config(None, {"results_dir": str(root), "report": {"primary_endpoint": "7.1"}})
    assert "was not evaluated" in claims.check_results(cfg)["notes"][0]


@pytest.mark.parametrize("bad", ["5a", "x.1", "5a.0", "5A.1", 3])
def test_primary_endpoint_is_validated(bad):
    with pytest.raises(ConfigError, match=r"'report.primary_endpoint' must be a") as e:
        load_config(None, {"report": {"primary_endpoint": bad}})
    assert "\n" not in str(e.value)


def test_shipped_configs_declare_a_primary_endpoint():
    root = Path(__file__).resolve().parents[2] / "configs"
    assert load_config(root / "headline.yaml").report.primary_endpoint == "5a.1"
    assert load_config(root / "mechanism.yaml").report.primary_endpoint == "2.1"


def test_cli_pools_results_folders(tmp_path):
    """Two results folders (the second a replication with other outcomes) pooled by the command."""
    a, b = tmp_path / "a", tmp_path / "b"
    holds_world(a)
    holds_world(b, seeds=(0, 1, 2, 3))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"results_dir: {tmp_path / 'out'}\nreport:\n  primary_endpoint: '5a.1'\n")
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(a), "--replication", str(b),
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    p = json.loads(res.stdout)
    k = next(k for c in p["claims"] for k in c["checks"] if k["id"] == "5a.1")
    assert k["n"] == 7 and [r["n"] for r in k["replications"]] == [3, 4] and k["df"] == 5
    assert [r["label"] for r in p["replications"]] == [str(a), str(b)]
    assert (tmp_path / "out" / "report" / "claims-pooled.md").exists()
    assert json.loads((tmp_path / "out" / "report" / "claims-pooled.json").read_text())["verdicts"] == p["verdicts"]
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(a)])
    assert res.exit_code == 2 and "at least 2" in res.stderr
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(a), "--replication", str(b),
                              "--runs", str(a)])
    assert res.exit_code == 2 and "--replication and --runs" in res.stderr
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(a), "--replication",
                              str(tmp_path / "nope")])
    assert res.exit_code == 2 and "neither a claims.json nor a results folder" in res.stderr
    # a claims.json is a replication too
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(FIRST), "--replication",
                              str(RERUN), "--format", "md"])
    assert res.exit_code == 0 and "(pooled): n=48" in res.stdout
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--replication", str(FIRST), "--replication",
                              str(RERUN)], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "[primary endpoint]" in res.stdout and "[secondary, Holm" in res.stdout


def test_pooling_says_when_replications_come_from_different_platforms():
    a, b = json.loads(FIRST.read_text()), json.loads(RERUN.read_text())
    p = replications.pool([("a", a), ("b", b)])
    assert "platforms not recorded" in p["notes"][-1] and "r1: not recorded" in p["notes"][-1]
    a2 = {**a, "platforms": {"Xeon 8480 / avx512": ["grpo_s0"]}}
    b2 = {**b, "platforms": {"EPYC 7763 / avx2": ["grpo_s0"]}}
    p = replications.pool([("a", a2), ("b", b2)])
    assert p["notes"][-1] == ("the replications come from different platforms: r1: Xeon 8480 / avx512; "
                              "r2: EPYC 7763 / avx2")
    assert [r["platforms"] for r in p["replications"]] == [a2["platforms"], b2["platforms"]]
    p = replications.pool([("a", a2), ("b", {**b, "platforms": a2["platforms"]})])
    assert p["notes"][-1].startswith("platforms: r1: Xeon")
