"""The paper's claims as paired statistical checks on finished runs (pure: RunData in,
Claims out). Reading the artifacts is :mod:`.data`; the test is :mod:`.stats`; rendering is
:mod:`.render`.

Claims (arXiv 2604.04894):

1. Table 1: kappa-hat over the first T = ``report.kappa_steps`` training steps is positive
   (REINFORCE runs, where the paper estimates it; every run group and all runs pooled are
   shown too; without REINFORCE runs the verdict falls back to all runs pooled).
2. Proposition 1 / Figure 2: Pos-Only entropy lies above REINFORCE on average over training,
   Neg-Only below (tested on the area between the curves; the fraction of steps on the
   claimed side is reported beside it as a measurement).
3. Section 3.1: Pos-Only lowers the none-solved fraction, Neg-Only raises the log-prob
   gain on correct rollouts (both against REINFORCE).
4. Figure 3: EntDecrease and EntIncrease end below GRPO in test accuracy; and the flip
   inverts the targeted channel's entropy effect (EntDecrease below GRPO, EntIncrease above).
5a. Table 2: AsymGRPO (0.9, 0.4) beats GRPO and REINFORCE on Avg.
5b. Table 2: the symmetric ablation (0.7, 0.7) falls between the baselines and AsymGRPO.
6. Proposition 2: per group, positive gradient pressure peaks at p = 1 - beta_pos and
   negative pressure at p = beta_neg. A *measurement* (verdict "measured", never fails):
   where the token-weighted pressure of the token-mean loss peaks (see :func:`claim_peaks`);
   the untokenised mass equals Eqs. (9)-(10) by construction, so it is shown beside.

7. asym's extension, only with ``asym_adaptive`` runs: the entropy-targeting schedule tracks
   its target better than REINFORCE, GRPO and AsymGRPO (0.9, 0.4), and beats GRPO in
   accuracy (:mod:`.schedule`).

Conventions (also in every output, ``RULE``):

- Comparisons are paired by seed (same seed = same start and sampling seed); a check's
  value per seed is a difference A - B (or, for kappa, the value itself), tested with the
  one-sided paired t-test of :mod:`.stats` (verdict words there); every check shows its
  minimum detectable effect (80% power); accuracy checks also get the TOST equivalence
  verdict within ``equivalence_margin`` points. A claim computes its own verdict from its
  checks (:meth:`Claim.decide`, :func:`stats.claim_decision`: Holm for "fails").
- Steps: training rows are step >= 1 (step 0 is the trainer's evaluation-only row).
  Entropy and none-solved fraction are measured on the step's rollouts, before its update,
  so the first training step (the shared starting policy) is left out of curve
  comparisons; the log-prob gain is measured after the update and uses every step.
  "Area between curves" = mean over common steps of A - B.
- Test accuracy: Avg@k from samples.parquet at the reported checkpoint (``report.checkpoint``,
  "final" = each run's last evaluated step), averaged over the benchmarks every compared
  run has, x 100. Without samples for a comparison, the last greedy held-out accuracy of
  metrics.parquet (``eval_greedy_acc``) is used instead, and the output says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ... import artifacts
from ...config import Config
from ...errors import ConfigError
from ...platform import label as platform_label, mixed_note
from . import stats
from .data import RunData, by_group, group_run_id, group_sort_key, load_runs, locate
from .base import Claim, Inputs, RULE, run_grid_command
from .mechanism import (claim_asym_entropy, claim_channel_accuracy, claim_channels, claim_entropy,
                        claim_entropy_bonus, claim_flip, claim_flip_entropy, claim_kappa, claim_symmetric,
                        claim_table2)
from .peaks import claim_peaks
from .schedule import claim_schedule


# ---------------------------------------------------------------------------
# All claims
# ---------------------------------------------------------------------------

#: Each function returns its Claim, or None where it does not apply (claim 7 without
#: asym_adaptive runs).
CLAIMS = (claim_kappa, claim_entropy, claim_channels, claim_channel_accuracy, claim_entropy_bonus,
          claim_flip_entropy, claim_flip, claim_table2, claim_symmetric, claim_asym_entropy, claim_peaks,
          claim_schedule)


def seeds_for_claims(config_seeds: Iterable[int], found: Iterable[int]) -> list[int]:
    """The seeds a complete set of runs has: the config's and those found, topped up with the
    smallest unused seeds to ``stats.MIN_SEEDS`` (fewer cannot give a verdict)."""
    seeds = set(config_seeds) | set(found)
    s = 0
    while len(seeds) < stats.MIN_SEEDS:
        if s not in seeds:
            seeds.add(s)
        s += 1
    return sorted(seeds)


def evaluate(runs: Mapping[str, RunData], *, seeds: Sequence[int] = (), kappa_steps: int = 20,
             config_path: str | None = None, cartesian: bool = False,
             equivalence_margin: float = 1.0, primary_endpoint: str | None = None) -> list[Claim]:
    """Every claim checked on ``runs``. ``seeds``: the seeds a complete set has (missing-run
    suggestions use them, with the seeds found). ``equivalence_margin``: the TOST margin of
    the accuracy checks, in accuracy points (``report.equivalence_margin``).
    ``primary_endpoint``: the id of the check declared primary (``report.primary_endpoint``,
    e.g. "5a.1"; :func:`mark_endpoints`)."""
    if kappa_steps < 1:
        raise ConfigError(f"report.kappa_steps must be >= 1, got {kappa_steps}")
    if not (isinstance(equivalence_margin, (int, float)) and math.isfinite(equivalence_margin)
            and equivalence_margin > 0):
        raise ConfigError(f"report.equivalence_margin must be a number > 0 (accuracy points), got {equivalence_margin!r}")
    all_seeds = seeds_for_claims(seeds, (r.seed for r in runs.values()))
    inp = Inputs(dict(runs), all_seeds, kappa_steps, config_path, cartesian, float(equivalence_margin))
    claims = [c for c in (fn(inp) for fn in CLAIMS) if c is not None]
    for claim in claims:
        for i, c in enumerate(claim.checks, 1):
            c.id = f"{claim.id}.{i}"
    mark_endpoints(claims, primary_endpoint)
    return claims


def mark_endpoints(claims: Sequence[Any], primary: str | None) -> None:
    """Label each tested check primary / secondary and set its ``p_holm`` (objects with
    ``.kind``, ``.checks``; checks with ``.id``, ``.p``, ``.endpoint``, ``.p_holm``).

    No primary: every tested check of the report is one family, Holm over all of them (and
    ``endpoint`` stays None). A primary: that check is the confirmatory test, judged at 0.05
    alone (its p_holm = its p); every other tested check is *secondary*, Holm-adjusted over the
    secondary checks only. A primary id that no check has (its claim did not apply, e.g.
    claim 7 without adaptive runs) leaves every check secondary; the payload's notes say so."""
    checks = [c for claim in claims if claim.kind == "claim" for c in claim.checks]
    if primary:
        for c in checks:
            c.endpoint = "primary" if c.id == primary else "secondary"
        for c in checks:
            if c.endpoint == "primary":
                c.p_holm = c.p
        checks = [c for c in checks if c.endpoint == "secondary"]
    for c, ph in zip(checks, stats.holm([c.p for c in checks])):
        c.p_holm = ph


def endpoint_notes(claims: Sequence[Mapping[str, Any]], primary: str | None) -> list[str]:
    """The payload's note on the declared primary endpoint (claims as dicts)."""
    if not primary:
        return ["no primary endpoint declared (report.primary_endpoint): every check is one of many, "
                "and p_holm is Holm over all tested checks of the report"]
    found = next((k for c in claims for k in c["checks"] if k.get("id") == primary), None)
    if found is None:
        ids = ", ".join(k.get("id", "") for c in claims for k in c["checks"] if c.get("kind", "claim") == "claim")
        return [f"primary endpoint {primary} (report.primary_endpoint) was not evaluated on these runs "
                f"(checks here: {ids}); every check is secondary"]
    return [f"primary endpoint (report.primary_endpoint = {primary}): {found['label']}, tested alone at 0.05; "
            "every other check is secondary, its p_holm Holm-adjusted over the secondary checks"]


def payload(claims: Sequence[Claim], runs: Mapping[str, RunData], *, results_dir: str = "",
            skipped: Sequence[str] = (), config_path: str | None = None, cartesian: bool = False,
            primary_endpoint: str | None = None) -> dict[str, Any]:
    """The JSON-able result (what claims.json holds and what the renderers read)."""
    margin = next((k.margin for c in claims for k in c.checks if k.margin is not None), None)
    missing = list(dict.fromkeys(m for c in claims for m in c.missing))  # claim order
    n_seeds = max((len(s) for s in by_group(runs).values()), default=0)
    notes = []
    if runs and n_seeds < stats.MIN_SEEDS:
        notes.append(f"no run group has {stats.MIN_SEEDS} seeds: one or two seeds show a direction, not a "
                     "result, so every check is insufficient. To add seeds: "
                     + (run_grid_command([group_run_id(g, s) for g in by_group(runs)
                                          for s in seeds_for_claims((), (r.seed for r in runs.values()))
                                          if group_run_id(g, s) not in runs],
                                         config_path=config_path, cartesian=cartesian) or ""))
    claim_dicts = [asdict(c) for c in claims]
    notes = endpoint_notes(claim_dicts, primary_endpoint) + notes
    return _clean({
        "rule": RULE,
        "primary_endpoint": primary_endpoint,
        "equivalence_margin": margin,
        "results_dir": results_dir,
        "runs": [{"run_id": r.run_id, "method": r.method, "beta_pos": r.beta_pos, "beta_neg": r.beta_neg,
                  "seed": r.seed, "steps": len(r.rows), "samples": bool(r.scores)}
                 for r in sorted(runs.values(), key=lambda r: (group_sort_key(r.group), r.seed))],
        "skipped": list(skipped),
        "claims": claim_dicts,
        "verdicts": {c.id: c.verdict for c in claims},
        "missing": missing,
        "command": run_grid_command(missing, config_path=config_path, cartesian=cartesian),
        "notes": notes,
    })


def _clean(x: Any) -> Any:
    """NaN/inf -> None, tuples -> lists (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def check_results(cfg: Config, runs: Sequence[str] | None = None, *, config_path: str | None = None) -> dict[str, Any]:
    """Locate, load and check the runs of ``cfg.results_dir`` (or ``runs``; see :func:`locate`)."""
    src = locate(cfg.results_dir, runs)
    checkpoint = None if cfg.report.checkpoint == "final" else int(cfg.report.checkpoint)
    data = load_runs(src, checkpoint)
    cartesian = bool(cfg.grid.grid)
    claims = evaluate(data, seeds=cfg.grid.seeds, kappa_steps=cfg.report.kappa_steps,
                      config_path=config_path, cartesian=cartesian,
                      equivalence_margin=cfg.report.equivalence_margin,
                      primary_endpoint=cfg.report.primary_endpoint)
    p = payload(claims, data, results_dir=str(cfg.results_dir), skipped=src.skipped,
                config_path=config_path, cartesian=cartesian, primary_endpoint=cfg.report.primary_endpoint)
    p["platforms"], note = run_platforms(src.metrics)
    p["notes"] += [note] if note else []
    return p


def run_platforms(metrics: Mapping[str, Path]) -> tuple[dict[str, list[str]], str | None]:
    """{platform label: run ids} of the runs (their run.json, else the metrics footer; see
    asymcli.platform), and the one-line note when there is more than one platform."""
    found = {rid: artifacts.recorded_platform(Path(m).parent / artifacts.RUN_JSON, m) for rid, m in metrics.items()}
    groups: dict[str, list[str]] = {}
    for rid, info in sorted(found.items()):
        groups.setdefault(platform_label(info), []).append(rid)
    return groups, mixed_note(found)
