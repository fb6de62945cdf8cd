"""The data behind Figure 1: an estimator's channel advantages and pressures across p = k/G.

``asym curves`` prints it. Values come from the advantage registry itself
(:func:`asymcli.algorithm.advantages.channel_values` runs the estimator on synthetic groups
of k correct out of G), so the table is what training would assign; the W columns are
Eqs. (9)-(10) evaluated on those values, and the peaks are Proposition 2's.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from ..algorithm import advantages as adv
from ..algorithm.theory import peak_neg, peak_pos
from ..config import check_beta
from ..errors import ConfigError

__all__ = ["FORMATS", "curves_data", "format_curves", "render_table"]

FORMATS = ("table", "json")


def curves_data(estimator: str, group_size: int, beta_pos: float | None = None,
                beta_neg: float | None = None) -> dict[str, Any]:
    """{"estimator", "group_size", "beta_pos", "beta_neg", "rows": [{"p", "a_pos", "a_neg",
    "w_pos", "w_neg"}], "peak_pos", "peak_neg"} for p = k/G, k = 0..G.

    A channel with no rollouts at p (a_pos at p=0, a_neg at p=1) is None, and so is its W.
    Betas default to the estimator's own; estimators without betas report None.
    Raises ConfigError (one line) for an unknown estimator, a bad beta or G < 2.
    """
    if estimator not in adv.ESTIMATORS:
        raise ConfigError(f"--estimator: unknown estimator '{estimator}'; known estimators: "
                          f"{', '.join(adv.estimator_names())}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ConfigError(f"--group-size must be an integer >= 2 (a group needs two rollouts), got {group_size}")
    if beta_pos is not None:
        beta_pos = check_beta(beta_pos, "--beta-pos")
    if beta_neg is not None:
        beta_neg = check_beta(beta_neg, "--beta-neg")
    try:
        bp, bn = adv.resolve_betas(estimator, beta_pos, beta_neg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rows = []
    for _k, p, a_pos, a_neg in adv.channel_values(estimator, group_size, bp, bn):
        rows.append({
            "p": p,
            "a_pos": a_pos,
            "a_neg": a_neg,
            "w_pos": None if a_pos is None else p * a_pos + 0.0,
            "w_neg": None if a_neg is None else (1.0 - p) * abs(a_neg) + 0.0,
        })
    pos_applies, neg_applies = adv.get_estimator(estimator).prop2_channels
    return {
        "estimator": estimator,
        "group_size": group_size,
        "beta_pos": bp,
        "beta_neg": bn,
        "rows": rows,
        "peak_pos": peak_pos(bp) if pos_applies else None,
        "peak_neg": peak_neg(bn) if neg_applies else None,
    }


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f}" if math.isfinite(x) else str(x)


def render_table(data: dict[str, Any], width: int = 100) -> str:
    """The curves data as a rich table (text)."""
    from rich.console import Console
    from rich.table import Table

    betas = ", ".join(f"{k}={_fmt(data[k]) if data[k] is not None else 'n/a'}" for k in ("beta_pos", "beta_neg"))
    title = f"{data['estimator']} (G={data['group_size']}; {betas})"
    table = Table(title=title)
    for col in ("p", "A_pos", "A_neg", "W_+ = p*A_pos", "W_- = (1-p)*|A_neg|"):
        table.add_column(col, justify="right")
    for r in data["rows"]:
        table.add_row(_fmt(r["p"]), _fmt(r["a_pos"]), _fmt(r["a_neg"]), _fmt(r["w_pos"]), _fmt(r["w_neg"]))
    caption = (f"Proposition 2 peaks: W_+ at p={_fmt(data['peak_pos'])}, W_- at p={_fmt(data['peak_neg'])}"
               " ('-': no interior peak / not an Eq. 5 channel)")
    table.caption = caption
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None).print(table)
    return buf.getvalue().rstrip("\n")


def format_curves(data: dict[str, Any], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "table":
        return render_table(data)
    raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
