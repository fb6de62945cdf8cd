"""Claim 6, Proposition 2: the gradient pressure of each channel peaks where the theory puts it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ArtifactError
from .data import ASYM, GroupKey, RunData, group_label
from .base import Check, Claim, Inputs, fmt_value, make_check


# ---------------------------------------------------------------------------
# Claim 6: Proposition 2, peaks of the gradient pressure
# ---------------------------------------------------------------------------


Profile = tuple[int, list[int], list[float], list[float]]  # (G, groups[k], pos_mass[k], neg_mass[k])


def mass_profile(rows: Sequence[Mapping[str, Any]], pos_col: str = "w_pos_hist",
                 neg_col: str = "w_neg_hist") -> Profile | None:
    """(G, groups[k], pos_mass[k], neg_mass[k]) summed over steps, k = 0..G, from the logged
    p_hist and the mass columns (``w_*_hist``: advantage mass; ``w_*_tok_hist``: token-weighted
    mass); None if no step logged them."""
    G = None
    groups: list[int] = []
    pos: list[float] = []
    neg: list[float] = []
    for r in rows:
        h, wp, wn = r.get("p_hist"), r.get(pos_col), r.get(neg_col)
        if not (isinstance(h, list) and isinstance(wp, list) and isinstance(wn, list)) or not h or not wp:
            continue  # no rollouts at this step, or a file older than the column (read back as null)
        if G is None:
            G = len(h) - 1
            groups, pos, neg = [0] * (G + 1), [0.0] * (G + 1), [0.0] * (G + 1)
        if not (len(h) == len(wp) == len(wn) == G + 1):
            raise ArtifactError(f"step {r['step']}: p_hist/{pos_col}/{neg_col} have lengths "
                                f"{len(h)}/{len(wp)}/{len(wn)}, expected G + 1 = {G + 1}")
        for k in range(G + 1):
            groups[k] += int(h[k])
            pos[k] += float(wp[k])
            neg[k] += float(wn[k])
    return None if G is None else (G, groups, pos, neg)


def per_group_pressure(G: int, groups: Sequence[int], mass: Sequence[float]) -> list[float | None]:
    """Empirical W(k/G) = mass[k] / (G x groups[k]); None where no group had k correct."""
    return [mass[k] / (G * groups[k]) if groups[k] else None for k in range(G + 1)]


def pooled_pressure(G: int, profiles: Mapping[int, Profile], idx: int) -> list[float | None]:
    """Empirical W(k/G) of the seeds' profiles pooled (groups and mass summed over seeds);
    ``idx`` 2 = positive channel, 3 = negative."""
    groups = [sum(p[1][k] for p in profiles.values()) for k in range(G + 1)]
    return per_group_pressure(G, groups, [sum(p[idx][k] for p in profiles.values()) for k in range(G + 1)])


def _argmax(values: Sequence[float | None]) -> int | None:
    best = None
    for k, v in enumerate(values):
        if v is not None and math.isfinite(v) and v > 0 and (best is None or v > values[best]):  # type: ignore[operator]
            best = k  # first maximum wins ties
    return best


def theory_pressure(G: int, beta: float, channel: str) -> list[float]:
    """W_+(k/G; beta) or W_-(k/G; beta) of Eqs. (9)-(10), k = 0..G."""
    from ...algorithm import advantages as adv

    fn = adv.w_pos if channel == "pos" else adv.w_neg
    return [float(fn(k / G, beta)) for k in range(G + 1)]


def _in_unit(beta: float | None) -> bool:
    return beta is not None and 0.0 < beta < 1.0


def peak_margin(W: Sequence[float | None], k_star: int, theory: Sequence[float]) -> float | None:
    """log W(k*) − log max_{k ≠ k*} W(k) over the k that occurred and where the theory is > 0:
    > 0 iff the empirical peak is at k*. None if k* or every rival never occurred."""
    at = W[k_star]
    rivals = [w for k, w in enumerate(W) if k != k_star and w is not None and theory[k] > 0]
    if at is None or at <= 0 or not rivals or max(rivals) <= 0:
        return None
    return math.log(at) - math.log(max(rivals))


def peak_check(g: GroupKey, runs: Mapping[int, RunData], tok: Mapping[int, Profile],
               plain: Mapping[int, Profile], channel: str) -> tuple[Check, list[Any]]:
    """Proposition 2 for one channel of one AsymGRPO pair: (measurement, summary-table row).

    The measured pressure is token-weighted: under the token-mean loss a rollout's gradient
    weight is |A| x its response length / the batch's mean length, so the per-group pressure
    at k is the logged ``w_*_tok_hist`` mass / (G x groups at k). Proposition 2 omits these
    token factors; the measurement shows whether its peaks survive them on the runs. Per seed
    the value is the log-margin of W_tok(k*) over its strongest rival k (:func:`peak_margin`,
    > 0 iff the peak is at k*); its mean and 95% CI are computed as for every check, but the
    verdict is "measured" (no claim of the paper is decided by it). The
    untokenised W is Eqs. (9)-(10) by construction (the logged advantages are the formula's),
    so it is tabulated, not tested."""
    from ...algorithm.theory import peak_neg, peak_pos

    beta = g[1] if channel == "pos" else g[2]
    idx = 2 if channel == "pos" else 3
    G = next(iter(tok.values()))[0]
    th = theory_pressure(G, beta, channel)  # type: ignore[arg-type]
    k_star = _argmax(th)
    assert k_star is not None  # W > 0 on 0 < p < 1 for beta in (0, 1)
    per: dict[str, float] = {}
    peaks: dict[str, float | None] = {}
    untestable: list[str] = []
    for s, prof in tok.items():
        W = per_group_pressure(G, prof[1], prof[idx])
        m = peak_margin(W, k_star, th)
        k_emp = _argmax(W)
        peaks[f"s{s}"] = None if k_emp is None else k_emp / G
        if m is None:
            untestable.append(runs[s].run_id)
        else:
            per[f"s{s}"] = m
    emp_tok, emp_plain = pooled_pressure(G, tok, idx), pooled_pressure(G, plain, idx)
    dev = max((abs(e - t) for e, t in zip(emp_plain, th) if e is not None), default=None)
    k_tok, k_plain = _argmax(emp_tok), _argmax(emp_plain)
    cont = peak_pos(beta) if channel == "pos" else peak_neg(beta)  # type: ignore[arg-type]
    name = "positive" if channel == "pos" else "negative"
    theory_name = "1 − βpos" if channel == "pos" else "βneg"
    reason_missing = f"no seed logged groups at k* = {k_star} and at a rival k (token-weighted mass)"
    check = make_check(f"{group_label(g)}: {name}-channel peak at k*/G = {k_star / G:.4g} (token-weighted)", +1,
                       per, unit="log W(k*) − log max rival", missing_reason=reason_missing,
                       levels={"theory": cont, "theory on the grid": k_star / G,
                               "token-weighted peak, pooled": None if k_tok is None else k_tok / G},
                       extra={"G": G, "k_star": k_star, "peak_per_seed": peaks, "untestable": untestable,
                              "max_abs_w_deviation_untokenised": dev},
                       runs=[runs[s].run_id for s in tok])
    check.claimed = f"> 0 (peak at {theory_name} = {cont:g}, on the grid {k_star / G:.4g})"
    if check.n:  # else stays "insufficient", with the reason nothing was measured
        check.verdict, check.reason = "measured", f"a measurement, not a verdict ({check.n} seeds)"
    check.mde = None  # no test, so no detectable effect to state
    at_k = sum(1 for v in peaks.values() if v is not None and abs(v - k_star / G) < 1e-12)
    ci = (None if check.ci_low is None else
          f"[{fmt_value(check.ci_low, True)}, {fmt_value(check.ci_high, True)}]")
    row = [group_label(g), name, beta, cont, k_star / G, None if k_tok is None else k_tok / G,
           None if k_plain is None else k_plain / G, dev, f"{at_k}/{len(peaks)}", check.n, check.mean, ci]
    return check, row


def pressure_table(g: GroupKey, tok: Mapping[int, Profile], plain: Mapping[int, Profile]) -> dict[str, Any]:
    """Token-weighted and untokenised empirical W per k of one pair, and the theory, pooled over seeds."""
    G = next(iter(tok.values()))[0]
    groups = [sum(p[1][k] for p in tok.values()) for k in range(G + 1)]
    cols: list[list[Any]] = []
    for beta, idx, ch in ((g[1], 2, "pos"), (g[2], 3, "neg")):
        th = theory_pressure(G, beta, ch) if _in_unit(beta) else [None] * (G + 1)  # type: ignore[arg-type]
        cols += [pooled_pressure(G, tok, idx), pooled_pressure(G, plain, idx), th]
    return {"title": f"{group_label(g)}: W per group accuracy p = k/G (pooled over seeds "
                     f"{', '.join(str(s) for s in tok)})",
            "columns": ["k", "p", "groups", "W+ token-weighted", "W+ untokenised", "W+ theory",
                        "W− token-weighted", "W− untokenised", "W− theory"],
            "rows": [[k, k / G, groups[k], *(c[k] for c in cols)] for k in range(G + 1)]}


def claim_peaks(inp: Inputs) -> Claim:
    pairs = [g for g in inp.groups if g[0] == "asym" and (_in_unit(g[1]) or _in_unit(g[2]))]
    checks: list[Check] = []
    summary: list[list[Any]] = []
    tables: list[dict[str, Any]] = []
    notes = ["a measurement, not a verdict: Proposition 2 is a property of Eqs. (9)-(10), which the logged "
             "untokenised W equals by construction (shown beside), so there is nothing on the runs for it to "
             "fail on. What is measured is where the token-weighted pressure W_tok(k/G) peaks: Σ over "
             "rollouts in groups with k correct of |A| x response length / the step's mean length, summed over "
             "steps, / (G x groups at k), each rollout's weight in the token-mean loss. Value per seed: "
             "log W_tok(k*) − log of its largest rival (> 0 iff the peak is at k*), mean and 95% CI over seeds.",
             "where the token-weighted peak moves off k*, the cause is response length, not the advantage "
             "formula: failed rollouts are longer than correct ones, so the negative channel's token weight "
             "shifts toward groups with more failures. That is why the (0.7, 0.7) negative-channel peak read "
             "\"fails\" when this was a tested claim (docs/results/mechanism: token-weighted W− at 0.75 below "
             "Eq. (10)'s), while the untokenised mass sat on Eq. (10)."]
    for g in pairs:
        runs = inp.groups[g]
        tok = {s: p for s, r in sorted(runs.items())
               if (p := mass_profile(r.rows, "w_pos_tok_hist", "w_neg_tok_hist")) is not None}
        plain = {s: p for s, r in sorted(runs.items()) if (p := mass_profile(r.rows)) is not None}
        if not tok:
            notes.append(f"{group_label(g)}: no step logged w_pos_tok_hist / w_neg_tok_hist")
            continue
        G = next(iter(tok.values()))[0]
        other = [runs[s].run_id for s, p in tok.items() if p[0] != G]
        if other:
            notes.append(f"{group_label(g)}: group size differs from G={G}, left out: {', '.join(other)}")
        tok = {s: p for s, p in tok.items() if p[0] == G}
        plain = {s: p for s, p in plain.items() if p[0] == G}
        for channel, beta in (("pos", g[1]), ("neg", g[2])):
            if _in_unit(beta):
                check, row = peak_check(g, runs, tok, plain, channel)
                checks.append(check)
                summary.append(row)
        tables.append(pressure_table(g, tok, plain))
    if summary:
        tables.insert(0, {"title": "Peaks of the gradient pressure (pooled over seeds)",
                          "columns": ["Runs", "channel", "β", "theory peak", "theory on grid",
                                      "token-weighted peak", "untokenised peak", "max abs(W untok. − W theory)",
                                      "seeds peaking at k*", "n", "log-margin mean", "log-margin 95% CI"],
                          "rows": summary})
    if not pairs:
        notes.append("no AsymGRPO run with a beta in (0, 1)")
    claim = Claim("6", "measured: where the token-weighted gradient pressure peaks (Prop. 2: the positive at "
                  "p = 1 − βpos, the negative at p = βneg)", "Prop. 2, Eqs. (9)-(11)",
                  "the betas place each channel's gradient pressure along the group-accuracy axis; measured: "
                  "whether the peaks survive the token weights of the token-mean loss", checks,
                  tables, notes, kind="measurement")
    return inp.finish(claim, pairs or [ASYM])
