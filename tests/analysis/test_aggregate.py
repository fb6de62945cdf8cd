"""Aggregation (DuckDB over Parquet): scores, Table 2, grid, curves, kappa-hat."""

from __future__ import annotations

import math
from collections import defaultdict

import pyarrow as pa
import pytest

from asymcli.analysis import aggregate as agg
from asymcli import artifacts
from asymcli.algorithm import metrics as lib
from asymcli.errors import ArtifactError, ConfigError
from tests.pipeline.test_pipeline_fakes import (
    FAKE_RUNS,
    samples_rows,
    write_fake_results,
    write_metrics,
    write_samples,
)


def rows_of(path):
    return artifacts.read_parquet(path, artifacts.SAMPLES).to_pylist()


def by_problem(rows):
    """(run, step, bench) -> problem -> list of (sample_idx, correct, extracted)."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[(r["run_id"], r["step"], r["benchmark"])][r["problem_id"]].append(
            (r["sample_idx"], r["correct"], r["extracted"]))
    return out


@pytest.fixture()
def results(tmp_path):
    return write_fake_results(tmp_path)


def test_scores_agree_with_the_library_metrics(results):
    files = sorted(results.glob("evals/*/samples.parquet"))
    scores = {(r["run_id"], r["step"], r["benchmark"]): r for r in agg.run_scores(files).to_pylist()}
    rows = [r for f in files for r in rows_of(f)]
    groups = by_problem(rows)
    assert set(scores) == set(groups)
    for key, problems in groups.items():
        ordered = [sorted(s) for s in problems.values()]
        correct = [[c for _, c, _ in s] for s in ordered]
        answers = [[a for _, _, a in s] for s in ordered]
        k = len(correct[0])
        got = scores[key]
        assert got["k"] == k and got["n_problems"] == len(problems)
        assert got["avg_at_k"] == pytest.approx(lib.avg_at_k(correct))
        assert got["pass_at_k"] == pytest.approx(sum(lib.pass_at_k(k, sum(c), k) for c in correct) / len(correct))
        assert got["maj_at_k"] == pytest.approx(lib.maj_at_k(answers, correct, k))


def test_majority_vote_ties_and_blank_answers(tmp_path):
    base = samples_rows("grpo_s0", 1, 0.0, benches={"b": 4}, n_problems=1)
    # answers: "7" (wrong), "42" (correct), "7", "42" -> tie 2:2, "7" was sampled first -> wrong
    for r, (ans, ok) in zip(base, [("7", False), ("42", True), ("7", False), ("42", True)]):
        r.update(extracted=ans, correct=ok)
    p1 = tmp_path / "a.parquet"
    artifacts.write_parquet(p1, base, artifacts.SAMPLES)
    assert agg.run_scores([p1]).to_pylist()[0]["maj_at_k"] == 0.0
    # blank answers never win: " ", " ", "42", "7" -> "42" (first non-blank)
    for r, (ans, ok) in zip(base, [(" ", False), ("", False), ("42", True), ("7", False)]):
        r.update(extracted=ans, correct=ok)
    artifacts.write_parquet(p1, base, artifacts.SAMPLES)
    got = agg.run_scores([p1]).to_pylist()[0]
    assert got["maj_at_k"] == 1.0
    assert got["maj_at_k"] == lib.maj_at_k([[r["extracted"] for r in base]], [[r["correct"] for r in base]], 4)
    assert got["avg_at_k"] == 0.25 and got["pass_at_k"] == 1.0


def test_duplicate_samples_are_an_error(tmp_path):
    rows = samples_rows("grpo_s0", 1, 0.5, benches={"b": 2}, n_problems=2)
    p1, p2 = tmp_path / "1.parquet", tmp_path / "2.parquet"
    artifacts.write_parquet(p1, rows, artifacts.SAMPLES)
    artifacts.write_parquet(p2, rows[:1], artifacts.SAMPLES)
    with pytest.raises(ArtifactError, match="run grpo_s0: sample 0 of problem b-0 .* appears 2 times"):
        agg.run_scores([p1, p2])


def test_bad_inputs_name_the_file(tmp_path):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(ArtifactError, match="nope.parquet: artifact does not exist"):
        agg.run_scores([missing])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(ArtifactError, match="bad.parquet: truncated or corrupted"):
        agg.run_scores([bad])
    wrong = tmp_path / "wrong.parquet"
    artifacts.write_parquet(wrong, [{"k_correct": 1, "groups": 1, "group_size": 4}], artifacts.BASE_STATS)
    with pytest.raises(ArtifactError, match="wrong.parquet: missing column 'run_id'"):
        agg.run_scores([wrong])


def test_no_inputs_give_empty_tables():
    assert agg.run_scores([]).num_rows == 0
    assert agg.table2(agg.RUN_SCORES.empty_table()).schema == agg.TABLE2
    assert agg.grid(agg.TABLE2.empty_table()).num_rows == 0
    assert agg.curves({}).schema == agg.CURVES


def _table(results, **kw):
    scores = agg.run_scores(sorted(results.glob("evals/*/samples.parquet")))
    return scores, agg.table2(scores, benchmark_order=["math500", "aime24"],
                              pair_order=[[0.7, 0.7], [0.9, 0.4]], **kw)


def test_table2_rows_labels_order_and_seed_statistics(results):
    scores, t = _table(results)
    avg = [r for r in t.to_pylist() if r["metric"] == "avg@k" and r["benchmark"] == "Avg."]
    labels = [r["label"] for r in sorted(avg, key=lambda r: r["row"])]
    assert labels[0] == "Base model" and labels[1] == "REINFORCE"
    assert labels.index("GRPO") < labels.index("Pos-Only Modulation") < labels.index("AsymGRPO (βpos=βneg=0.7)")
    # AsymGRPO rows: the config's pairs in order, then the other pairs
    assert labels[-3:] == ["AsymGRPO (βpos=βneg=0.7)", "AsymGRPO (βpos=0.9, βneg=0.4)", "AsymGRPO (βpos=βneg=0.5)"]
    # two seeds of GRPO: mean and sample std of the per-seed Avg. (x 100)
    per_seed = defaultdict(list)
    for r in scores.to_pylist():
        per_seed[r["run_id"]].append(r["avg_at_k"])
    a0, a1 = (100 * sum(per_seed[s]) / 2 for s in ("grpo_s0", "grpo_s1"))
    grpo = next(r for r in avg if r["method"] == "grpo")
    assert grpo["n_seeds"] == 2 and grpo["seeds"] == [0, 1]
    assert grpo["mean"] == pytest.approx((a0 + a1) / 2)
    assert grpo["std"] == pytest.approx(abs(a0 - a1) / math.sqrt(2))
    assert next(r for r in avg if r["method"] == "reinforce")["std"] is None
    # columns: config order, then Avg.
    cols = sorted({(r["col"], r["benchmark"]) for r in t.to_pylist()})
    assert [b for _, b in cols] == ["math500", "aime24", "Avg."]
    assert {r["metric"] for r in t.to_pylist()} == {"avg@k", "pass@k", "maj@k"}


def test_table2_checkpoint_selection(tmp_path):
    write_samples(tmp_path, "grpo_s0", 0.3, steps=(1, 2, 3))
    write_samples(tmp_path, "base", 0.1)
    scores = agg.run_scores(sorted(tmp_path.glob("evals/*/samples.parquet")))

    def steps(t):
        return {r["method"]: (r["step_min"], r["step_max"]) for r in t.to_pylist()}

    assert steps(agg.table2(scores, checkpoint="final")) == {"grpo": (3, 3), "base": (0, 0)}
    assert steps(agg.table2(scores, checkpoint="2")) == {"grpo": (2, 2), "base": (0, 0)}
    with pytest.raises(ConfigError, match="report.checkpoint"):
        agg.table2(scores, checkpoint="last")


def test_avg_is_missing_when_a_run_lacks_a_benchmark(tmp_path):
    write_samples(tmp_path, "grpo_s0", 0.3)
    write_samples(tmp_path, "reinforce_s0", 0.3, benches={"math500": 5})
    scores = agg.run_scores(sorted(tmp_path.glob("evals/*/samples.parquet")))
    t = agg.table2(scores)
    avg = {r["method"]: r["mean"] for r in t.to_pylist() if r["benchmark"] == "Avg." and r["metric"] == "avg@k"}
    assert avg["reinforce"] is None and avg["grpo"] is not None
    # a benchmark the config lists but no run has: no Avg. anywhere (it would not be the paper's Avg.)
    t = agg.table2(scores, benchmark_order=["math500", "aime24", "aime25"])
    assert all(r["mean"] is None for r in t.to_pylist() if r["benchmark"] == "Avg.")


def test_grid_is_the_asym_avg(results):
    _, t = _table(results)
    g = {(r["beta_pos"], r["beta_neg"]): r for r in agg.grid(t).to_pylist()}
    assert set(g) == {(0.9, 0.4), (0.7, 0.7), (0.5, 0.5)}
    row = next(r for r in t.to_pylist() if r["method"] == "asym" and r["beta_pos"] == 0.9
               and r["benchmark"] == "Avg." and r["metric"] == "avg@k")
    assert g[(0.9, 0.4)]["mean"] == row["mean"] and g[(0.9, 0.4)]["n_seeds"] == 2


def test_ema_smoothing():
    assert agg.ema([1.0, 0.0, 0.0], 0.7) == pytest.approx([1.0, 0.7, 0.49])
    got = agg.ema([math.nan, 1.0, math.nan, 0.0], 0.5)
    assert math.isnan(got[0]) and math.isnan(got[2]) and got[1] == 1.0 and got[3] == 0.5
    assert agg.ema([0.2, 0.4], 0.0) == [0.2, 0.4]
    with pytest.raises(ConfigError):
        agg.ema([1.0], 1.0)


def test_curves_and_kappa(tmp_path):
    files = {rid: write_metrics(tmp_path, rid, lvl, n_steps=6, seed=i)
             for i, (rid, lvl) in enumerate([("grpo_s0", 0.4), ("grpo_s1", 0.5), ("asym_bp0.9_bn0.4_s0", 0.6)])}
    c = agg.curves(files, ema_weight=0.7)
    assert c.schema == agg.CURVES and c.num_rows == 18
    rows = [r for r in c.to_pylist() if r["run_id"] == "grpo_s0"]
    acc = [r["eval_greedy_acc"] for r in rows]
    assert [r["eval_greedy_acc_ema"] for r in rows][1::2] == pytest.approx(agg.ema(acc, 0.7)[1::2])
    assert math.isnan(rows[0]["eval_greedy_acc_ema"])
    asym = next(r for r in c.to_pylist() if r["method"] == "asym")
    assert (asym["beta_pos"], asym["beta_neg"], asym["seed"]) == (0.9, 0.4, 0)
    k = {(r["method"], r["beta_pos"]): r for r in agg.kappa(c, steps=4).to_pylist()}
    # fake kappa = 0.002 * level on steps not divisible by 3 (NaN otherwise): steps 1, 2, 4
    assert k[("grpo", None)]["kappa_hat_e3"] == pytest.approx(1000 * 0.002 * 0.45)
    assert k[("grpo", None)]["n_seeds"] == 2 and k[("grpo", None)]["n_steps"] == 3
    assert k[("asym", 0.9)]["kappa_hat_e3"] == pytest.approx(1.2)


def test_curves_carry_the_betas_each_step_used(tmp_path):
    """A scheduled run's per-step betas and target reach the curves; metrics written before
    they were logged (no such columns in any file) give NaN instead of a DuckDB error."""
    from tests.pipeline.test_pipeline_fakes import metrics_rows

    old = {"grpo_s0": write_metrics(tmp_path, "grpo_s0", 0.4, n_steps=4)}
    assert all(math.isnan(r["step_beta_pos"]) for r in agg.curves(old).to_pylist())
    rows = metrics_rows(4, 0.5)
    for r in rows:
        r.update(beta_pos=0.5 + 0.1 * r["step"], beta_neg=0.5 - 0.1 * r["step"], entropy_target=0.09)
    path = tmp_path / "runs" / "asym_adaptive_s0" / "metrics.parquet"
    artifacts.write_parquet(path, rows, artifacts.METRICS, {"run_id": "asym_adaptive_s0"})
    c = agg.curves({**old, "asym_adaptive_s0": path}).to_pylist()
    sched = {r["step"]: r for r in c if r["run_id"] == "asym_adaptive_s0"}
    assert sched[3]["step_beta_pos"] == pytest.approx(0.8) and sched[3]["step_beta_neg"] == pytest.approx(0.2)
    assert sched[2]["entropy_target"] == pytest.approx(0.09)
    assert all(math.isnan(r["step_beta_neg"]) for r in c if r["run_id"] == "grpo_s0")


def test_sql_reads_files_only_through_parameters():
    for path in agg.SQL_DIR.glob("*.sql"):
        text = path.read_text()
        assert "read_parquet('" not in text and 'read_parquet("' not in text, path
        if "read_parquet" in text:
            assert "read_parquet($files" in text, path


def test_table2_long_table_round_trips_through_artifacts(results, tmp_path):
    _, t = _table(results)
    p = artifacts.write_parquet(tmp_path / "t.parquet", t, agg.TABLE2)
    back = artifacts.read_parquet(p, agg.TABLE2)
    assert back.equals(t.cast(agg.TABLE2))
    assert isinstance(back.column("seeds").type, pa.ListType)


def test_fake_runs_cover_the_figures():
    methods = {rid.rsplit("_s", 1)[0] for rid in FAKE_RUNS}
    assert {"reinforce", "pos_only", "neg_only", "reinforce_ent", "grpo", "ent_decrease"} <= methods


def test_train_stats_entropy_and_reward_per_row(tmp_path):
    """Per run: mean entropy over steps >= 1, last step's entropy, reward over the first and
    last `window` steps; then mean and sample std over seeds, in Table 2's row order."""
    import statistics

    ids = [("grpo_s0", 0.4), ("grpo_s1", 0.5), ("reinforce_s0", 0.3), ("asym_bp0.9_bn0.4_s0", 0.6)]
    files = {rid: write_metrics(tmp_path, rid, lvl, n_steps=7, seed=i) for i, (rid, lvl) in enumerate(ids)}
    c = agg.curves(files, ema_weight=0.7)
    st = agg.train_stats(c, window=3)
    assert st.schema == agg.TRAIN_STATS
    assert [r["label"] for r in st.to_pylist()] == ["REINFORCE", "GRPO", "AsymGRPO (βpos=0.9, βneg=0.4)"]

    def per_run(rid):
        rows = sorted((r for r in artifacts.read_parquet(files[rid], artifacts.METRICS).to_pylist() if r["step"] >= 1),
                      key=lambda r: r["step"])
        ent = [r["entropy"] for r in rows if not math.isnan(r["entropy"])]
        rew = [r["reward_mean"] for r in rows]
        return statistics.mean(ent), ent[-1], statistics.mean(rew[:3]), statistics.mean(rew[-3:])

    grpo = next(r for r in st.to_pylist() if r["method"] == "grpo")
    a, b = per_run("grpo_s0"), per_run("grpo_s1")
    assert grpo["n_seeds"] == 2 and grpo["seeds"] == [0, 1] and grpo["window"] == 3
    assert grpo["entropy_mean"] == pytest.approx((a[0] + b[0]) / 2)
    assert grpo["entropy_mean_std"] == pytest.approx(statistics.stdev([a[0], b[0]]))
    assert grpo["entropy_final"] == pytest.approx((a[1] + b[1]) / 2)
    assert grpo["reward_first"] == pytest.approx((a[2] + b[2]) / 2)
    assert grpo["reward_last"] == pytest.approx((a[3] + b[3]) / 2)
    one = next(r for r in st.to_pylist() if r["method"] == "reinforce")
    assert one["entropy_mean_std"] is None  # one seed: no spread
    assert agg.train_stats(agg.CURVES.empty_table()).num_rows == 0
    with pytest.raises(ConfigError, match="window"):
        agg.train_stats(c, window=0)
