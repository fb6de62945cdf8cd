"""The entropy-targeting beta schedule (asymcli/algorithm/schedule.py, method asym_adaptive):
the controller's law and bounds, and the betas the trainer logs and resumes with."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from asymcli.algorithm.schedule import (ScheduleSettings, ScheduleState, kappa_sign, mean_abs_advantage,
                                        schedule_step)
from asymcli.config import ScheduleConfig, load_config, resolve_run, run_settings
from asymcli.errors import ConfigError
from asymcli.pipeline.runs import fingerprint

HIST = [2, 3, 5, 6, 4, 3, 2, 1, 1]  # groups per k correct, G = 8


def settings(**kw):
    d = dict(ScheduleConfig().__dict__)
    d.update(kw)
    return ScheduleSettings(**d)


def run_steps(st, s, entropies, kappas, hist=HIST):
    out = []
    for h, k in zip(entropies, kappas):
        st = schedule_step(st, s, entropy=h, kappa=k, p_hist=hist)
        out.append(st)
    return out


def test_first_step_fixes_the_relative_target_and_holds_the_betas():
    st = schedule_step(ScheduleState(0.5, 0.5), settings(target=0.8), entropy=0.05, kappa=0.01, p_hist=HIST)
    assert st.target == pytest.approx(0.04)
    # one kappa batch: its sign is not known yet, so the gap holds; the level keeps GRPO's mass
    assert st.beta_pos - st.beta_neg == pytest.approx(0.0)
    st = schedule_step(ScheduleState(0.5, 0.5), settings(target=0.03, target_mode="absolute"),
                       entropy=0.05, kappa=0.01, p_hist=HIST)
    assert st.target == 0.03


def test_gap_moves_with_the_entropy_error_and_kappas_sign():
    s = settings(target=1.0, gain=0.5, level="fixed")
    low = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.04] * 6, [0.02, 0.021, 0.019, 0.02, 0.022, 0.02, 0.02])
    gaps = [x.beta_pos - x.beta_neg for x in low]
    # entropy below target with kappa > 0: Prop. 1 says raise beta_pos - beta_neg, step by step
    assert gaps[-1] > gaps[2] > 0 and all(b >= a - 1e-12 for a, b in zip(gaps, gaps[1:]))
    # the same error with kappa < 0 moves the gap the other way
    neg = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.04] * 6, [-0.02, -0.021, -0.019, -0.02, -0.022, -0.02, -0.02])
    assert neg[-1].beta_pos - neg[-1].beta_neg < 0
    # entropy above target lowers the gap
    high = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.06] * 6, [0.02] * 7)
    assert high[-1].beta_pos - high[-1].beta_neg < 0
    # each step moves the gap by gain * relative error
    d = (low[4].beta_pos - low[4].beta_neg) - (low[3].beta_pos - low[3].beta_neg)
    assert d == pytest.approx(0.5 * (0.05 - 0.04) / 0.05)


def test_kappa_sign_needs_two_standard_errors():
    assert kappa_sign(0.01, 0.0001, 1, 0.95) == 0  # one batch
    assert kappa_sign(0.01, 0.01 ** 2 + 0.02 ** 2, 10, 0.95) == 0  # mean 0.01, sd 0.02: SE 0.0067
    assert kappa_sign(0.01, 0.01 ** 2 + 0.005 ** 2, 10, 0.95) == 1
    assert kappa_sign(-0.01, 0.01 ** 2 + 0.005 ** 2, 10, 0.95) == -1
    # noisy kappas of mixed sign leave the gap where it is
    s = settings(level="fixed")
    st = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.02] * 8, [0.03, -0.03, 0.02, -0.025, 0.03, -0.03, 0.02, -0.02, 0.01])
    assert st[-1].beta_pos == pytest.approx(0.5) and st[-1].beta_neg == pytest.approx(0.5)


@pytest.mark.parametrize("level", ["mass", "fixed"])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.2, 0.7), (0.4, 0.4)])
def test_betas_stay_within_bounds_and_the_gap_does_not_wind_up(level, bounds):
    lo, hi = bounds
    s = settings(gain=5.0, beta_min=lo, beta_max=hi, level=level)
    rng = np.random.default_rng(0)
    st = ScheduleState(min(max(0.5, lo), hi), min(max(0.5, lo), hi))
    states = run_steps(st, s, [0.05] + [0.001] * 30 + [0.5] * 3, [0.02 + 0.001 * rng.standard_normal() for _ in range(34)],
                       hist=[1, 4, 6, 5, 3, 2, 1, 0, 0])
    for x in states:
        assert lo - 1e-12 <= x.beta_pos <= hi + 1e-12 and lo - 1e-12 <= x.beta_neg <= hi + 1e-12
    if hi > lo:  # saturated at the top after 30 steps far below target
        assert states[30].beta_pos == pytest.approx(hi) and states[30].beta_neg == pytest.approx(lo)
        # and says so: the integrator asks for a gap past the bounds at those steps, not before
        assert states[30].saturated == 1.0 and states[0].saturated == 0.0
        first = next(i for i, x in enumerate(states) if x.saturated)
        assert all(x.beta_pos - x.beta_neg < hi - lo - 1e-9 for x in states[:first])
        # anti-windup: three steps above target leave the bound at once
        assert states[-1].beta_pos - states[-1].beta_neg < states[30].beta_pos - states[30].beta_neg


def test_mass_level_keeps_grpos_mean_abs_advantage():
    ref = mean_abs_advantage(HIST, 0.5, 0.5)
    # GRPO's (0.5, 0.5): sum over mixed groups of 2 sqrt(p(1-p)), weighted by the histogram
    p = np.arange(1, 8) / 8
    assert ref == pytest.approx(float((np.array(HIST[1:8]) * 2 * np.sqrt(p * (1 - p))).sum() / sum(HIST[1:8])))
    # For a fixed gap the mass is smallest at level 0.5 whatever the histogram (per group it is
    # (1-p) r^(d/2) (r^(m-1) + r^(-m)), r = (1-p)/p, whose two terms have a constant product)
    for hist in (HIST, [1, 1, 2, 3, 4, 6, 5, 3, 2]):
        masses = [mean_abs_advantage(hist, m + 0.2, m - 0.2) for m in np.linspace(0.2, 0.8, 25)]
        assert int(np.argmin(masses)) == 12
    s = settings(gain=0.5, level="mass")
    # low accuracies: a positive gap raises the mass above GRPO's, so 0.5 is the closest level
    low = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.04] * 5, [0.02] * 6)[-1]
    assert low.beta_pos - low.beta_neg > 0.3 and (low.beta_pos + low.beta_neg) / 2 == pytest.approx(0.5)
    # high accuracies: a positive gap lowers it, and the level moves off 0.5 until GRPO's mass is back
    high_hist = [1, 1, 2, 3, 4, 6, 5, 3, 2]
    ref = mean_abs_advantage(high_hist, 0.5, 0.5)
    high = run_steps(ScheduleState(0.5, 0.5), s, [0.05] + [0.045] * 4, [0.02] * 5, hist=high_hist)[-1]
    assert high.beta_pos - high.beta_neg > 0.1 and (high.beta_pos + high.beta_neg) / 2 != pytest.approx(0.5)
    assert abs(math.log(mean_abs_advantage(high_hist, high.beta_pos, high.beta_neg) / ref)) < 0.02
    assert math.isnan(mean_abs_advantage([4, 0, 0, 0, 2], 0.5, 0.5))  # no mixed group


def test_state_round_trips():
    st = ScheduleState(0.7, 0.3, 0.04, 0.01, 0.0002, 5.0)
    assert ScheduleState.from_dict(st.to_dict()) == st


def test_config_validates_the_schedule_and_keeps_fixed_runs_fingerprints():
    with pytest.raises(ConfigError, match="train.schedule.beta_min"):
        load_config(None, {"train": {"schedule": {"beta_min": 0.8, "beta_max": 0.2}}})
    with pytest.raises(ConfigError, match="methods.asym_adaptive.schedule.target"):
        load_config(None, {"methods": {"asym_adaptive": {"schedule": {"target": 0}}}})
    with pytest.raises(ConfigError, match="kappa_ema"):
        load_config(None, {"train": {"schedule": {"kappa_ema": 1.0}}})
    a = load_config(None, {})
    b = load_config(None, {"train": {"schedule": {"target": 0.7, "gain": 1.0}}})
    # a fixed-beta run's settings hold no schedule keys: changing the schedule retrains nothing else
    assert "schedule" not in run_settings(resolve_run(a, "grpo"))
    for rid in ("grpo_s0", "reinforce_s1", "asym_bp0.9_bn0.4_s0"):
        assert fingerprint(a, "train", rid) == fingerprint(b, "train", rid)
    assert fingerprint(a, "train", "asym_adaptive_s0") != fingerprint(b, "train", "asym_adaptive_s0")
    # a method override merges into the train section's schedule key by key
    c = load_config(None, {"train": {"schedule": {"gain": 1.0}},
                           "methods": {"asym_adaptive": {"schedule": {"target": 0.9}}}})
    sch = resolve_run(c, "asym_adaptive").schedule
    assert (sch.gain, sch.target) == (1.0, 0.9)
    assert resolve_run(c, "asym_adaptive").beta_schedule == "entropy"


def test_trainer_logs_the_betas_it_used_and_resumes_the_schedule(tiny_policy_dir, arith_rows, tmp_path):
    from tests.training.test_trainer import TIMING, ParityGrader, make, same, small_cfg

    cfg = small_cfg(steps=4, checkpoint_every=2, schedule={"gain": 2.0, "beta_min": 0.1, "beta_max": 0.8,
                                                           "kappa_ema": 0.5})
    run = resolve_run(cfg, "asym_adaptive", seed=0)
    full = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "full", ParityGrader())
    rows = pq.read_table(full.train()).to_pylist()
    steps = [r for r in rows if r["step"] >= 1]
    assert len(steps) == 4
    for r in steps:
        assert 0.1 - 1e-12 <= r["beta_pos"] <= 0.8 + 1e-12 and 0.1 - 1e-12 <= r["beta_neg"] <= 0.8 + 1e-12
        assert r["entropy_target"] == pytest.approx(steps[0]["entropy"])  # relative target 1.0 x step 1's
    # the logged betas are what the schedule computes from the logged signals
    s = ScheduleSettings(**run.schedule.__dict__)
    st = ScheduleState(0.5, 0.5)
    for r in steps:
        st = schedule_step(st, s, entropy=r["entropy"], kappa=r["kappa"] if r["kappa"] is not None else math.nan,
                           p_hist=r["p_hist"])
        assert (r["beta_pos"], r["beta_neg"]) == pytest.approx((st.beta_pos, st.beta_neg))
        assert r["schedule_saturated"] in (0.0, 1.0)
    # a fixed method logs its constant betas; one without betas logs NaN
    fixed = pq.read_table(make(cfg, resolve_run(cfg, "asym", 0.9, 0.4, 0), arith_rows, tiny_policy_dir,
                               tmp_path / "fixed", ParityGrader()).train()).to_pylist()
    assert {(r["beta_pos"], r["beta_neg"]) for r in fixed if r["step"] >= 1} == {(0.9, 0.4)}
    assert all(math.isnan(r["schedule_saturated"]) for r in fixed if r["step"] >= 1)
    # resuming from step 2 continues the schedule exactly
    part = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "part", ParityGrader())
    part.train_cfg.steps = 2
    part.train()
    resumed = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "part", ParityGrader())
    again = pq.read_table(resumed.train()).to_pylist()
    for a, b in zip(rows, again):
        for k in a:
            if k not in TIMING and k != "eval_bench":
                assert same(a[k], b[k]) or a[k] == pytest.approx(b[k]), (a["step"], k)


def test_saturated_steps_are_flagged_and_logged(tiny_policy_dir, arith_rows, tmp_path, capsys, monkeypatch):
    """The trainer records the controller's saturation per step (metrics schedule_saturated)
    and logs the step where it begins and ends, once each. The controller's own flag is tested
    above; here it is forced at steps 3-4 so the wiring is tested whatever the tiny run's kappa does."""
    import dataclasses

    import asymcli.training.trainer as trainer_mod
    from tests.training.test_trainer import ParityGrader, make, small_cfg

    calls = []

    def forced(state, settings, **signals):
        calls.append(1)
        out = schedule_step(state, settings, **signals)
        return dataclasses.replace(out, saturated=1.0 if len(calls) in (3, 4) else 0.0)

    monkeypatch.setattr(trainer_mod, "schedule_step", forced)
    cfg = small_cfg(steps=5)
    t = make(cfg, resolve_run(cfg, "asym_adaptive", seed=0), arith_rows, tiny_policy_dir, tmp_path / "sat",
             ParityGrader())
    rows = [r for r in pq.read_table(t.train()).to_pylist() if r["step"] >= 1]
    assert [r["schedule_saturated"] for r in rows] == [0.0, 0.0, 1.0, 1.0, 0.0]
    err = capsys.readouterr().err
    assert err.count("schedule saturated") == 1 and "sat step 3: schedule saturated" in err
    assert err.count("back inside the bounds") == 1 and "sat step 5: schedule back inside" in err


def test_adaptive_targets_are_runs_of_their_own():
    from asymcli.config import grid_runs, parse_run_id, run_id
    from asymcli.pipeline.runs import run_id_regex, train_args
    import re

    cfg = load_config(None, {"grid": {"methods": ["asym_adaptive", "grpo"], "betas": [], "seeds": [0, 1],
                                      "adaptive_targets": [0.9, 0.75]}})
    ids = [run_id(*r) for r in grid_runs(cfg)]
    assert ids == ["asym_adaptive_t0.9_s0", "asym_adaptive_t0.75_s0", "grpo_s0",
                   "asym_adaptive_t0.9_s1", "asym_adaptive_t0.75_s1", "grpo_s1"]
    assert parse_run_id("asym_adaptive_t0.75_s1") == ("asym_adaptive", 0.75, None, 1)
    assert parse_run_id("asym_adaptive_s1") == ("asym_adaptive", None, None, 1)
    assert resolve_run(cfg, *parse_run_id("asym_adaptive_t0.75_s1")).schedule.target == 0.75
    assert resolve_run(cfg, "asym_adaptive").schedule.target == cfg.train.schedule.target
    assert re.fullmatch(run_id_regex(), "asym_adaptive_t0.75_s1")
    assert train_args("asym_adaptive_t0.75_s1") == "--method asym_adaptive --target 0.75 --seed 1"
    # each target its own fingerprint
    assert fingerprint(cfg, "train", "asym_adaptive_t0.9_s0") != fingerprint(cfg, "train", "asym_adaptive_t0.75_s0")
    for bad, msg in (({"adaptive_targets": [0.9, 0.9]}, "distinct"), ({"adaptive_targets": [0]}, "> 0"),
                     ({"methods": ["grpo"], "adaptive_targets": [0.9]}, "add asym_adaptive")):
        grid = {"methods": ["asym_adaptive"], **bad}
        with pytest.raises(ConfigError, match=r"grid\.adaptive_targets.*" + msg):
            load_config(None, {"grid": grid})
    for bad in ("asym_adaptive_t0_s0", "asym_adaptive_tx_s0", "asym_adaptive_t-1_s0"):
        with pytest.raises(ConfigError, match="is not a run id"):
            parse_run_id(bad)
