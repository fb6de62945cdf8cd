"""`asym curves`: the JSON/table output and its errors, through the real CLI."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from asymcli.algorithm.advantages import a_neg, a_pos, channel_values
from asymcli.cli import app
from asymcli.analysis.curves import curves_data
from asymcli.errors import ConfigError

runner = CliRunner()


def curves_json(*args: str) -> dict:
    result = runner.invoke(app, ["curves", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_shape_and_defaults():
    data = curves_json("--estimator", "asym", "--group-size", "8")
    assert list(data) == ["estimator", "group_size", "beta_pos", "beta_neg", "rows", "peak_pos", "peak_neg"]
    assert (data["estimator"], data["group_size"], data["beta_pos"], data["beta_neg"]) == ("asym", 8, 0.9, 0.4)
    assert len(data["rows"]) == 9
    assert all(list(r) == ["p", "a_pos", "a_neg", "w_pos", "w_neg"] for r in data["rows"])
    assert data["peak_pos"] == pytest.approx(0.1) and data["peak_neg"] == 0.4


def test_json_values():
    data = curves_json("--estimator", "asym", "--beta-pos", "0.7", "--beta-neg", "0.2", "--group-size", "4")
    rows = data["rows"]
    assert [r["p"] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rows[0]["a_pos"] is None and rows[0]["w_pos"] is None
    assert rows[-1]["a_neg"] is None and rows[-1]["w_neg"] is None
    for r in rows[1:-1]:
        p = r["p"]
        assert r["a_pos"] == pytest.approx(a_pos(p, 0.7))
        assert r["a_neg"] == pytest.approx(a_neg(p, 0.2))
        assert r["w_pos"] == pytest.approx(p ** 0.3 * (1 - p) ** 0.7)  # Eq. (9)
        assert r["w_neg"] == pytest.approx(p ** 0.2 * (1 - p) ** 0.8)  # Eq. (10)
    assert rows[0]["a_neg"] == 0.0 and rows[-1]["a_pos"] == 0.0  # 0^beta at the uniform groups
    assert (data["peak_pos"], data["peak_neg"]) == (pytest.approx(0.3), 0.2)


def test_same_numbers_as_the_registry():
    for name in ("grpo", "dr_grpo", "grpo_unbiased", "ent_decrease", "ent_increase", "reinforce"):
        data = curves_json("--estimator", name, "--group-size", "6")
        for row, (_k, p, ap, an) in zip(data["rows"], channel_values(name, 6)):
            assert (row["p"], row["a_pos"], row["a_neg"]) == (p, ap, an)


def test_estimator_specific_betas_and_peaks():
    grpo = curves_json("--estimator", "grpo")
    assert (grpo["beta_pos"], grpo["beta_neg"], grpo["peak_pos"], grpo["peak_neg"]) == (0.5, 0.5, 0.5, 0.5)
    dr = curves_json("--estimator", "dr_grpo")
    assert (dr["beta_pos"], dr["beta_neg"], dr["peak_pos"], dr["peak_neg"]) == (None, None, None, None)
    rein = curves_json("--estimator", "reinforce")
    assert (rein["peak_pos"], rein["peak_neg"]) == (None, None)  # beta = 0: no interior peak
    assert all(r["a_pos"] in (None, 1.0) and r["a_neg"] in (None, -1.0) for r in rein["rows"])
    pos_only = curves_json("--estimator", "pos_only")
    assert (pos_only["peak_pos"], pos_only["peak_neg"]) == (0.5, None)
    # The flipped channel has no Proposition 2 peak; the other one keeps its own.
    dec = curves_json("--estimator", "ent_decrease", "--beta-neg", "0.3")
    assert (dec["peak_pos"], dec["peak_neg"]) == (None, 0.3)
    inc = curves_json("--estimator", "ent_increase", "--group-size", "2")
    assert (inc["peak_pos"], inc["peak_neg"]) == (0.5, None)
    assert inc["rows"][0]["a_neg"] == -2.0 and inc["rows"][0]["w_neg"] == 2.0  # Appendix C, G = 2


def test_table_format():
    result = runner.invoke(app, ["curves", "--estimator", "asym", "--group-size", "4"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "asym (G=4" in out and "A_pos" in out and "Proposition 2" in out
    assert "0.2500" in out and "2.6879" in out  # p = 1/4, A_pos = 3^0.9


@pytest.mark.parametrize("args,message", [
    (["--estimator", "nope"], "unknown estimator 'nope'; known estimators: asym"),
    (["--estimator", "asym", "--beta-pos", "-0.5"], "--beta-pos must be a finite number >= 0"),
    (["--estimator", "asym", "--beta-neg", "nan"], "--beta-neg must be a finite number >= 0"),
    (["--estimator", "asym", "--group-size", "1"], "--group-size must be an integer >= 2"),
    (["--estimator", "asym", "--format", "xml"], "--format must be one of table, json"),
    (["--estimator", "grpo", "--beta-pos", "0.9"], "estimator 'grpo' fixes beta_pos=0.5"),
])
def test_errors_exit_2_with_one_line(args, message):
    result = runner.invoke(app, ["curves", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert result.stdout == ""


def test_missing_estimator_is_a_usage_error():
    assert runner.invoke(app, ["curves"]).exit_code == 2


def test_library_raises_config_error():
    with pytest.raises(ConfigError):
        curves_data("asym", 8, beta_pos=math.inf)
    assert curves_data("asym", 3)["rows"][1]["p"] == pytest.approx(1 / 3)
