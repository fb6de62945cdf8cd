"""`asym claims`: verdicts, numbers and suggested commands on synthetic artifacts.

Each scenario writes METRICS / SAMPLES files (through asymcli.artifacts, with the declared
schemas) for several runs and seeds, built so that a claim holds, fails, is mixed or lacks
runs, then checks what `asym claims` concludes.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asymcli import artifacts
from asymcli.analysis import claims
from asymcli.algorithm.advantages import w_neg, w_pos
from asymcli.cli import app
from asymcli.config import load_config, parse_run_id
from asymcli.errors import ArtifactError, ConfigError

G = 8
STEPS = 12
HIST = [3, 2, 2, 2, 2, 2, 2, 2, 3]  # groups per k correct at every step (32 prompts)
BENCHES = ("arith_heldout", "other")
runner = CliRunner()


# ---------------------------------------------------------------------------
# Synthetic artifacts
# ---------------------------------------------------------------------------


def mass(hist, bp, bn):
    """Logged advantage mass per k of the beta family: groups x G x W(k/G)."""
    pos = [n * G * float(w_pos(k / G, bp)) for k, n in enumerate(hist)]
    neg = [n * G * float(w_neg(k / G, bn)) for k, n in enumerate(hist)]
    return pos, neg


def write_run(root: Path, rid: str, *, entropy=0.0, none=0.0, gain=0.0, kappa=None, acc=None,
              greedy=None, samples=True, hist=HIST, w_betas=None, tok_betas=None):
    """One run: metrics.parquet (+ samples.parquet when acc is given and samples is True).

    entropy/none/gain: offsets added to a shared decreasing curve from step 2 on (step 1 is
    the shared starting policy). kappa: kappa_B per step (callable of step) or None.
    acc: held-out Avg@k in [0, 1] (multiple of 1/40); greedy: eval_greedy_acc at the end.
    w_betas / tok_betas: the betas whose W the logged plain / token-weighted mass follows
    (default: the run's own; tok_betas default: w_betas, i.e. equal response lengths).
    """
    method, bp, bn, seed = parse_run_id(rid)
    w_bp, w_bn = w_betas or ((bp, bn) if method == "asym" else (0.5, 0.5))
    pos, neg = mass(hist, w_bp, w_bn)
    pos_tok, neg_tok = mass(hist, *(tok_betas or (w_bp, w_bn)))
    rows = [{**{n: math.nan for n in artifacts.METRICS.names}, "step": 0, "eval_greedy_acc": 0.1,
             "p_hist": [], "w_pos_hist": [], "w_neg_hist": [], "w_pos_tok_hist": [], "w_neg_tok_hist": [], "eval_bench": []}]
    for step in range(1, STEPS + 1):
        on = 1.0 if step >= 2 else 0.0
        row = {n: 0.0 for n in artifacts.METRICS.names}
        row.update(step=step, entropy=1.0 - 0.02 * step + on * entropy,
                   none_solved_frac=0.5 - 0.01 * step + on * none,
                   logprob_gain_correct=0.3 + gain,
                   kappa=kappa(step) if kappa else 0.004,
                   eval_greedy_acc=math.nan, p_hist=list(hist), w_pos_hist=pos, w_neg_hist=neg,
                   w_pos_tok_hist=pos_tok, w_neg_tok_hist=neg_tok, eval_bench=[])
        if step == STEPS and greedy is not None:
            row["eval_greedy_acc"] = greedy
        rows.append(row)
    artifacts.write_parquet(root / "runs" / rid / "metrics.parquet", rows, artifacts.METRICS)
    if acc is not None and samples:
        srows = []
        for b in BENCHES:
            n_correct = round(acc * 40)
            for i in range(40):
                srows.append({"run_id": rid, "method": method, "beta_pos": bp, "beta_neg": bn, "seed": seed,
                              "step": STEPS, "benchmark": b, "problem_id": f"{b}-{i // 4}", "difficulty": "",
                              "sample_idx": i % 4, "temperature": 0.4, "response": "", "extracted": "1",
                              "verdict": "correct" if i < n_correct else "wrong", "correct": i < n_correct,
                              "n_tokens": 3, "finish_reason": "stop"})
        # an earlier checkpoint with other scores: only the final one may count
        for i in range(4):
            srows.append({**srows[i], "step": STEPS // 2, "correct": False})
        artifacts.write_parquet(root / "evals" / rid / "samples.parquet", srows, artifacts.SAMPLES)


#: Held-out accuracy per group (x 40 problems-samples), and the seed jitter added.
ACC = {"reinforce": 16, "reinforce_ent": 17, "grpo": 20, "ent_decrease": 16, "ent_increase": 18, "pos_only": 18, "neg_only": 17,
       "asym_bp0.9_bn0.4": 26, "asym_bp0.7_bn0.7": 23}


def holds_world(root: Path, seeds=(0, 1, 2)):
    for s in seeds:
        j = s  # +0, +1, +2 samples of 40 per seed
        spec = {
            "reinforce": dict(kappa=lambda t, s=s: (5 + s + 0.1 * t) * 1e-3),
            "reinforce_ent": dict(entropy=0.04 + 0.01 * s),
            "pos_only": dict(entropy=0.05 + 0.01 * s, none=-0.1),
            "neg_only": dict(entropy=-0.03 - 0.01 * s, gain=0.2 + 0.05 * s),
            "grpo": {}, "ent_decrease": dict(entropy=-0.02 - 0.01 * s), "ent_increase": dict(entropy=0.03 + 0.01 * s),
            "asym_bp0.9_bn0.4": dict(entropy=0.02 + 0.005 * s), "asym_bp0.7_bn0.7": {},
        }
        for head, kw in spec.items():
            write_run(root, f"{head}_s{s}", acc=(ACC[head] + j) / 40, greedy=(ACC[head] + j) / 40, **kw)


def check(root: Path, **kw):
    cfg = load_config(None, {"results_dir": str(root), "grid": {"seeds": [0]}})
    return claims.check_results(cfg, config_path="cfg.yaml", **kw)


def by_id(p):
    return {c["id"]: c for c in p["claims"]}


@pytest.fixture(scope="module")
def holds(tmp_path_factory):
    root = tmp_path_factory.mktemp("holds")
    holds_world(root)
    return root, check(root)


def variant(holds, tmp_path: Path, drop=()) -> Path:
    """A copy of the all-holds results without the runs whose id matches one of ``drop``."""
    root = tmp_path / "results"
    shutil.copytree(holds[0], root, ignore=shutil.ignore_patterns("report"))
    for sub in ("runs", "evals"):
        for d in (root / sub).iterdir():
            if any(re.fullmatch(pat, d.name) for pat in drop):
                shutil.rmtree(d)
    return root


# ---------------------------------------------------------------------------
# The significance rule
# ---------------------------------------------------------------------------


def test_paired_test_matches_scipy_and_exact_signflip():
    from scipy import stats as st

    xs = [0.3, 0.1, 0.25, -0.05, 0.2]
    r = claims.paired_test(xs, +1)
    ref = st.ttest_1samp(xs, 0.0, alternative="greater")
    assert r.p == pytest.approx(ref.pvalue, rel=1e-12) and r.t == pytest.approx(ref.statistic)
    lo, hi = st.t.interval(0.95, df=4, loc=sum(xs) / 5, scale=st.sem(xs))
    assert (r.ci_low, r.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    # sign-flip: of the 32 patterns of |x|, those with sum >= 0.8: all 5 positive (sum 0.9) and
    # flipping only the 0.05 (0.8, the observed one), i.e. 2 of 32
    assert r.p_signflip == pytest.approx(2 / 32)
    assert claims.paired_test(xs, -1).p == pytest.approx(1 - ref.pvalue)
    assert claims.paired_test([1.0, 2.0, 3.0], +1).p_signflip == pytest.approx(1 / 8)


def test_verdict_words():
    v = lambda xs, sign=+1: claims.paired_test(xs, sign).verdict  # noqa: E731
    assert v([1.0, 2.0, 3.0]) == "holds"  # t = 3.46, p = 0.037
    assert v([1.0, 2.0, 3.0], -1) == "fails"  # the opposite direction is significant
    assert v([1.0, -0.2, 1.4]) == "trend"  # p = 0.12
    assert v([1.0, -1.2, 0.1]) == "inconclusive"
    assert v([1.0, 2.0]) == "insufficient" and v([0.5]) == "insufficient" and v([]) == "insufficient"
    assert v([math.nan, 2.0, 2.0, 2.0]) == "holds"  # NaN seeds dropped; equal seeds: deterministic
    assert "2 paired seeds" in claims.paired_test([1.0, 2.0], +1).reason
    # equivalence (a margin given): replaces trend / inconclusive only, never holds / fails
    e = lambda xs, sign=+1: claims.paired_test(xs, sign, margin=1.0).verdict  # noqa: E731
    assert e([0.1, -0.1, 0.05, 0.0]) == "equivalent" and v([0.1, -0.1, 0.05, 0.0]) == "inconclusive"
    assert e([0.1, 0.2, 0.15, 0.12]) == "holds"  # significant and inside the margin: holds
    assert e([1.0, -1.2, 0.1]) == "inconclusive"  # 90% CI wider than the margin
    assert e([0.0, 0.0, 0.0]) == "equivalent" and v([0.0, 0.0, 0.0]) == "inconclusive"
    # a claim's verdict: holds iff every check holds; fails by Holm over the opposite-direction p
    c = claims.combine
    assert c(["holds", "holds"], [0.99, 0.98]) == "holds"
    assert c(["holds", "fails"], [0.99, 0.01]) == "fails"  # Holm: 2 x 0.01 = 0.02 < 0.05
    assert c(["holds", "fails"], [0.99, 0.03]) == "inconclusive"  # fails alone, not after Holm (0.06)
    assert c(["fails"], [0.03]) == "fails"  # one check: Holm is the identity
    assert c(["fails", "insufficient"], [0.01, 0.001]) == "fails"  # insufficient checks are not tested
    assert c(["holds", "insufficient"], [0.99, None]) == "insufficient"
    assert c(["holds", "trend"], [0.99, 0.9]) == "trend"
    assert c(["trend", "inconclusive"], [0.9, 0.6]) == "inconclusive"
    assert c(["holds", "equivalent"], [0.99, 0.4]) == "equivalent"
    assert c(["equivalent", "inconclusive"], [0.5, 0.4]) == "equivalent"
    assert c([], []) == "insufficient"
    d = claims.stats.claim_decision(["holds", "fails", "trend"], [0.99, 0.02, 0.9])
    assert d.verdict == "inconclusive" and d.p_fails_holm == pytest.approx(0.06)  # Holm over 3: 3 x 0.02
    assert claims.holm([0.01, None, 0.04, 0.03]) == [pytest.approx(0.03), None, pytest.approx(0.06),
                                                     pytest.approx(0.06)]


def test_holds_rate_without_an_effect_is_alpha():
    """Calibration: with no effect, 3 seeds say "holds" about 5% of the time. (The first
    wave's one-SE rule said it about 20% of the time; the issue measured this.)"""
    import random

    rng = random.Random(0)
    n_sim = 4000
    holds = sum(claims.paired_test([rng.gauss(0, 1) for _ in range(3)], +1).verdict == "holds"
                for _ in range(n_sim))
    assert 0.04 <= holds / n_sim <= 0.06  # binomial sd at 5%: 0.0034


# ---------------------------------------------------------------------------
# Every claim holds
# ---------------------------------------------------------------------------


def test_all_claims_hold(holds):
    _, p = holds
    assert p["verdicts"] == {"1": "holds", "2": "holds", "3a": "holds", "3b": "holds", "3c": "holds", "4a": "holds", "4b": "holds",
                             "5a": "holds", "5b": "holds", "5c": "holds", "6": "measured"}
    assert all(k["p_holm"] is not None for c in p["claims"] for k in c["checks"] if k["p"] is not None)
    assert p["missing"] == [] and p["command"] is None
    assert len(p["runs"]) == 27 and all(r["samples"] and r["steps"] == STEPS for r in p["runs"])


def test_kappa_numbers(holds):
    c = by_id(holds[1])["1"]
    (k,) = c["checks"]
    # kappa_B = (5 + seed + 0.1 t) 1e-3 over steps 1..12 (fewer than T = 20): mean t = 6.5
    assert k["per_seed"] == pytest.approx({"s0": 5.65, "s1": 6.65, "s2": 7.65})
    assert (k["mean"], k["std"], k["n"]) == (pytest.approx(6.65), pytest.approx(1.0), 3)
    assert k["se"] == pytest.approx(1 / math.sqrt(3))
    rows = {r[0]: r for r in c["tables"][0]["rows"]}
    assert rows["GRPO"][2] == pytest.approx(4.0) and rows["REINFORCE"][1] == 3
    assert rows["all runs pooled"][1] == 27


def test_entropy_and_channel_numbers(holds):
    c2, c3 = by_id(holds[1])["2"], by_id(holds[1])["3a"]
    pos, neg = c2["checks"]
    assert pos["per_seed"] == pytest.approx({"s0": 0.05, "s1": 0.06, "s2": 0.07})
    assert pos["extra"]["frac_steps_mean"] == 1.0  # above at every step after the first
    assert neg["per_seed"] == pytest.approx({"s0": -0.03, "s1": -0.04, "s2": -0.05})
    assert neg["claimed"] == "< 0" and neg["verdict"] == "holds"
    assert pos["runs"][:2] == ["pos_only_s0", "reinforce_s0"]
    none, gain = c3["checks"]
    assert none["mean"] == pytest.approx(-0.1) and none["verdict"] == "holds"
    assert gain["per_seed"] == pytest.approx({"s0": 0.2, "s1": 0.25, "s2": 0.3})
    assert gain["levels"]["REINFORCE"] == pytest.approx(0.3)


def test_accuracy_numbers(holds):
    p = holds[1]
    dec, inc = by_id(p)["4b"]["checks"]
    assert dec["per_seed"] == pytest.approx({"s0": -10.0, "s1": -10.0, "s2": -10.0})  # (16 - 20) / 40 x 100
    assert inc["mean"] == pytest.approx(-5.0) and inc["extra"]["source"] == "samples"
    assert any("samples.parquet" in n and "arith_heldout, other" in n for n in by_id(p)["4b"]["notes"])
    a_grpo, a_rein = by_id(p)["5a"]["checks"]
    assert a_grpo["levels"] == pytest.approx({"AsymGRPO (0.9, 0.4)": 67.5, "GRPO": 52.5})
    assert a_rein["mean"] == pytest.approx(25.0)
    notes = " ".join(by_id(p)["5b"]["notes"])
    assert "AsymGRPO (0.9, 0.4) 67.50 > AsymGRPO (0.7, 0.7) 60.00 > GRPO 52.50 > REINFORCE 42.50" in notes


def test_prop2_peaks(holds):
    c = by_id(holds[1])["6"]
    k = {x["label"]: x for x in c["checks"]}
    assert set(k) == {"AsymGRPO (0.7, 0.7): positive-channel peak at k*/G = 0.25 (token-weighted)",
                      "AsymGRPO (0.7, 0.7): negative-channel peak at k*/G = 0.75 (token-weighted)",
                      "AsymGRPO (0.9, 0.4): positive-channel peak at k*/G = 0.125 (token-weighted)",
                      "AsymGRPO (0.9, 0.4): negative-channel peak at k*/G = 0.375 (token-weighted)"}
    assert {x["verdict"] for x in c["checks"]} == {"measured"} and c["kind"] == "measurement"
    assert all(x["p_holm"] is None for x in c["checks"])  # not in the report's Holm family
    pos = k["AsymGRPO (0.9, 0.4): positive-channel peak at k*/G = 0.125 (token-weighted)"]
    # continuous peak 0.1; on the grid k/8 the argmax is 1/8; margin over the best rival (k = 2)
    assert pos["levels"]["theory"] == pytest.approx(0.1)
    assert pos["levels"]["theory on the grid"] == 0.125
    margin = math.log(float(w_pos(1 / 8, 0.9)) / float(w_pos(2 / 8, 0.9)))
    assert pos["per_seed"] == pytest.approx({"s0": margin, "s1": margin, "s2": margin})
    assert pos["extra"]["peak_per_seed"] == {"s0": 0.125, "s1": 0.125, "s2": 0.125}
    assert pos["extra"]["max_abs_w_deviation_untokenised"] == pytest.approx(0.0, abs=1e-12)
    summary = c["tables"][0]
    assert summary["columns"][0] == "Runs" and len(summary["rows"]) == 4
    row = dict(zip(summary["columns"], summary["rows"][0]))
    assert row["seeds peaking at k*"] == "3/3" and row["n"] == 3


# ---------------------------------------------------------------------------
# Failing, mixed and missing runs
# ---------------------------------------------------------------------------


def test_fails_and_inconclusive(holds, tmp_path):
    # the flips beat GRPO; Neg-Only entropy above REINFORCE on every seed
    root = variant(holds, tmp_path)
    for s in (0, 1, 2):
        write_run(root, f"ent_decrease_s{s}", acc=(24 + s) / 40)
        write_run(root, f"ent_increase_s{s}", acc=(25 + s) / 40)
        write_run(root, f"neg_only_s{s}", entropy=0.02 + 0.001 * s, gain=0.1 * (s - 1), acc=0.4)
    p = check(root)
    v = p["verdicts"]
    assert v["4b"] == "fails"
    assert by_id(p)["4b"]["checks"][0]["mean"] == pytest.approx(10.0)
    assert v["2"] == "fails"  # Pos-Only holds, Neg-Only fails: the claim as stated fails
    assert [k["verdict"] for k in by_id(p)["2"]["checks"]] == ["holds", "fails"]
    gain = by_id(p)["3a"]["checks"][1]
    assert gain["per_seed"] == pytest.approx({"s0": -0.1, "s1": 0.0, "s2": 0.1})
    assert gain["verdict"] == "inconclusive" and gain["p"] == pytest.approx(0.5)
    assert v["3a"] == "inconclusive"


def test_equivalence_margin_and_mde(holds, tmp_path):
    # Pos-Only and Neg-Only within ±2.5 points of REINFORCE (one sample of 40 per benchmark)
    root = variant(holds, tmp_path)
    for s, (dp, dn) in enumerate(((0, 1), (1, -1), (-1, 0))):
        write_run(root, f"pos_only_s{s}", entropy=0.05 + 0.01 * s, none=-0.1, acc=(16 + s + dp) / 40)
        write_run(root, f"neg_only_s{s}", entropy=-0.03 - 0.01 * s, gain=0.2 + 0.05 * s, acc=(16 + s + dn) / 40)
    cfg = load_config(None, {"results_dir": str(root), "report": {"equivalence_margin": 5.0}})
    p = claims.check_results(cfg)
    c = by_id(p)["3b"]
    pos, neg = c["checks"]
    assert pos["per_seed"] == pytest.approx({"s0": 0.0, "s1": 2.5, "s2": -2.5})
    # 90% CI: 0 ± t_{0.95,2} x 2.5 / sqrt(3) = ±4.21, inside ±5: equivalent (the 95% CI is not needed)
    assert pos["verdict"] == neg["verdict"] == "equivalent" and c["verdict"] == "equivalent"
    assert pos["margin"] == 5.0 and pos["p_tost"] < 0.05
    assert pos["mde"] == pytest.approx(2.5 * claims.stats.mde(1.0, 3))  # 5.74 points at n = 3
    assert pos["extra"]["seeds_for_margin"] == claims.stats.seeds_for(2.5, 5.0)
    assert p["equivalence_margin"] == 5.0
    # entropy checks have no margin (and no equivalence verdict), but an MDE
    ent = by_id(p)["2"]["checks"][0]
    assert ent["margin"] is None and ent["p_tost"] is None and ent["mde"] is not None
    md = claims.to_markdown(p)
    assert "MDE 5.743 points, TOST ±5: p=" in md and "| MDE (80%) |" in md and "→ equivalent" in md
    assert "steps on the claimed side 1 (measured)" in md
    # the default margin, 1 point: the same runs are inconclusive
    p1 = check(root)
    assert by_id(p1)["3b"]["verdict"] == "inconclusive" and p1["equivalence_margin"] == 1.0
    with pytest.raises(ConfigError, match="equivalence_margin"):
        claims.evaluate({}, equivalence_margin=0.0)


def test_missing_runs_suggest_run_grid(holds, tmp_path):
    root = variant(holds, tmp_path, drop=("reinforce_.*", "pos_only_.*", "neg_only_.*", "ent_increase_.*",
                                          "asym_bp0.7_bn0.7_.*"))
    p = check(root)
    c = by_id(p)
    assert c["2"]["verdict"] == "insufficient" and c["3a"]["verdict"] == "insufficient"
    assert c["2"]["command"] == "asym run-grid --methods reinforce,pos_only,neg_only --seeds 0,1,2 --config cfg.yaml"
    assert c["2"]["checks"][0]["reason"] == "no Pos-Only Modulation or REINFORCE run"
    assert c["4b"]["verdict"] == "insufficient"  # EntDecrease below GRPO holds; EntIncrease missing
    assert [k["verdict"] for k in c["4b"]["checks"]] == ["holds", "insufficient"]
    assert c["4b"]["command"] == "asym run-grid --methods ent_increase --seeds 0,1,2 --config cfg.yaml"
    assert c["5b"]["command"] == "asym run-grid --methods reinforce --betas 0.7,0.7 --seeds 0,1,2 --config cfg.yaml"
    # kappa without REINFORCE: all runs pooled decide, and REINFORCE is suggested
    assert c["1"]["verdict"] == "holds" and "all runs pooled" in c["1"]["checks"][0]["label"]
    assert c["1"]["missing"] == ["reinforce_s0", "reinforce_s1", "reinforce_s2"]
    assert c["3c"]["command"] == ("asym run-grid --methods reinforce,reinforce_ent,pos_only --seeds 0,1,2 "
                                  "--config cfg.yaml")
    assert p["command"] == ("asym run-grid --methods reinforce,pos_only,neg_only,reinforce_ent,ent_increase "
                            "--betas 0.7,0.7 --seeds 0,1,2 --config cfg.yaml")


def test_two_seeds_are_insufficient_and_name_the_command(holds, tmp_path):
    root = variant(holds, tmp_path, drop=("(?!grpo).*_s2",))
    cfg = load_config(None, {"results_dir": str(root), "grid": {"seeds": [0], "grid": [0.1, 0.9]}})
    p = claims.check_results(cfg)
    c = by_id(p)["4b"]
    assert c["verdict"] == "insufficient" and c["checks"][0]["n"] == 2
    assert c["checks"][0]["mean"] == pytest.approx(-10.0)  # the direction is still shown
    assert c["missing"] == ["ent_decrease_s2", "ent_increase_s2"]
    assert c["command"] == "asym run-grid --methods ent_decrease,ent_increase --seeds 2 --target table2"
    line = claims.to_markdown(p)
    assert "ent_decrease,ent_increase --seeds 2" in line


def test_greedy_fallback_and_single_seed(holds, tmp_path):
    root = variant(holds, tmp_path, drop=(".*_s1", ".*_s2"))
    shutil.rmtree(root / "evals")
    p = check(root)
    c4 = by_id(p)["4b"]
    assert c4["verdict"] == "insufficient" and c4["checks"][0]["extra"]["source"] == "greedy"
    assert c4["checks"][0]["reason"].startswith("1 paired seed: a direction, not a result")
    assert c4["checks"][0]["mean"] == pytest.approx(-10.0)
    assert c4["command"] == "asym run-grid --methods grpo,ent_decrease,ent_increase --seeds 1,2 --config cfg.yaml"
    assert any("greedy held-out accuracy" in n for n in c4["notes"])
    assert set(p["verdicts"].values()) == {"insufficient", "measured"} and p["verdicts"]["6"] == "measured"
    assert any("no run group has 3 seeds" in n and "--seeds 1,2" in n for n in p["notes"])


def test_prop2_token_weighted_fails_and_untestable(tmp_path):
    # (0.9, 0.4) whose token weights move both peaks to p = 1/2 (the plain mass still follows Eq. 9)
    for s in (0, 1, 2):
        write_run(tmp_path, f"asym_bp0.9_bn0.4_s{s}", tok_betas=(0.5 + 0.01 * s, 0.5))
    # never a group with exactly 2 correct: the (0.7, 0.7) positive peak k* = 2 cannot be seen
    for s in (0, 1, 2):
        write_run(tmp_path, f"asym_bp0.7_bn0.7_s{s}", hist=[3, 2, 0, 2, 2, 2, 2, 2, 3])
    c = by_id(check(tmp_path))["6"]
    k = {x["label"].split(" at ")[0]: x for x in c["checks"]}
    pos = k["AsymGRPO (0.9, 0.4): positive-channel peak"]
    assert pos["verdict"] == "measured" and all(v < 0 for v in pos["per_seed"].values())
    assert pos["extra"]["peak_per_seed"] == {"s0": 0.5, "s1": 0.5, "s2": 0.5}
    assert pos["extra"]["max_abs_w_deviation_untokenised"] == pytest.approx(0.0, abs=1e-12)
    assert k["AsymGRPO (0.7, 0.7): positive-channel peak"]["verdict"] == "insufficient"
    assert k["AsymGRPO (0.7, 0.7): negative-channel peak"]["verdict"] == "measured"
    # a measurement: peaks off k* never make the report say "fails"
    assert c["verdict"] == "measured" and any("failed rollouts are longer" in n for n in c["notes"])
    rows = {(r[0], r[1]): dict(zip(c["tables"][0]["columns"], r)) for r in c["tables"][0]["rows"]}
    assert rows[("AsymGRPO (0.9, 0.4)", "positive")]["seeds peaking at k*"] == "0/3"


def test_nothing_found(tmp_path):
    p = check(tmp_path)
    assert set(p["verdicts"].values()) == {"insufficient"}
    assert p["runs"] == []
    assert by_id(p)["6"]["command"] == "asym run-grid --betas 0.9,0.4 --seeds 0,1,2 --config cfg.yaml"
    assert "No finished runs" in claims.to_markdown(p)


# ---------------------------------------------------------------------------
# Locating runs
# ---------------------------------------------------------------------------


def test_locate_variants(tmp_path):
    write_run(tmp_path, "grpo_s0", acc=0.5)
    write_run(tmp_path, "reinforce_s0")
    (tmp_path / "runs" / "pos_only_s0").mkdir()  # unfinished
    src = claims.locate(tmp_path)
    assert sorted(src.metrics) == ["grpo_s0", "reinforce_s0"] and list(src.samples) == ["grpo_s0"]
    assert src.skipped == ["pos_only_s0: unfinished (no metrics.parquet)"]
    assert list(claims.locate(tmp_path, [str(tmp_path / "runs" / "grpo_s0")]).samples) == ["grpo_s0"]
    assert sorted(claims.locate("elsewhere", [str(tmp_path)]).metrics) == ["grpo_s0", "reinforce_s0"]
    assert list(claims.locate(tmp_path, ["reinforce_s0"]).metrics) == ["reinforce_s0"]
    with pytest.raises(ArtifactError, match="pos_only_s0"):
        claims.locate(tmp_path, ["pos_only_s0"])
    with pytest.raises(ArtifactError, match="not finished"):
        claims.locate(tmp_path, [str(tmp_path / "runs" / "pos_only_s0")])
    with pytest.raises(ConfigError, match="not a run id"):
        claims.locate(tmp_path, ["nonsense"])
    with pytest.raises(ConfigError, match="neither a run folder"):
        claims.locate(tmp_path, [str(tmp_path / "evals")])


def test_bad_samples_file_names_it(tmp_path):
    write_run(tmp_path, "grpo_s0")
    bad = tmp_path / "evals" / "grpo_s0" / "samples.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet")
    with pytest.raises(ArtifactError, match="samples.parquet"):
        check(tmp_path)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def test_cli_formats_and_files(holds, tmp_path):
    root, _ = holds
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"results_dir: {root}\ngrid:\n  seeds: [0, 1, 2]\n")
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["verdicts"]["5a"] == "holds"
    assert json.loads((root / "report" / "claims.json").read_text())["verdicts"] == data["verdicts"]
    md = (root / "report" / "claims.md").read_text()
    assert md.startswith("# Claims") and "| 6 |" in md and "\n## 6." in md
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--runs", "grpo_s0,ent_decrease_s0"])
    assert res.exit_code == 0, res.output
    assert "holds" in res.stdout and "insufficient" in res.stdout and "claims.md" in res.stdout
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--format", "md", "--runs", "grpo_s0,reinforce_s0"])
    assert res.exit_code == 0 and "Runs: REINFORCE (seeds 0); GRPO (seeds 0)." in res.stdout
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--format", "xml"])
    assert res.exit_code == 2 and "--format must be one of table, json, md" in res.stderr
    res = runner.invoke(app, ["claims", "--config", str(cfg), "--runs", "nope_s0"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --runs:")


def test_report_section(holds):
    root, _ = holds

    class Ctx:
        cfg = load_config(None, {"results_dir": str(root)})

    text = claims.report_section(Ctx())
    assert text.startswith("## Claims") and "| 5b |" in text and "### 1." not in text
    assert "[claims.md](claims.md)" in text and "\n## 1." in (root / "report" / "claims.md").read_text()
