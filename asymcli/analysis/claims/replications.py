"""Independent replications of one experiment, each reported as itself and pooled as such
(`asym claims --replication A --replication B`).

Why it exists: a rerun of a config from an empty folder on another machine is a new
experiment, not more seeds of the first one (its bases and per-seed outcomes differ, issue
30). Adding its seeds to the first run's, or extending a run until it "holds", would hide
that. So each replication keeps its own fixed n and its own verdicts, and the pooled estimate
treats replication as a stratum:

- **Per replication**: the claims payload of its runs (:func:`.checks.check_results`), or a
  claims.json an earlier `asym claims` wrote; nothing is recomputed across replications.
- **Pooled, fixed effect, stratified by replication** (:func:`.stats.stratified_test`): per
  check, the paired differences of every replication; estimate sum(n_r m_r) / N, standard
  error from the pooled within-replication variance, t with N − R df, the same one-sided
  verdict rule, 95% and 90% CIs. Replications are assumed to share one true difference; the
  F test of equal replication means (:func:`.stats.heterogeneity_p`) is printed beside it, so
  a disagreement between replications is seen rather than averaged away.
- Primary / secondary endpoints and Holm over the secondary checks are applied to the
  pooled checks as to a single run's (:func:`.checks.mark_endpoints`).

Pure apart from :func:`load_replication`, which reads a results folder or a claims.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ...config import Config
from ...errors import ConfigError
from . import stats
from .base import RULE
from .checks import _clean, check_results, endpoint_notes, mark_endpoints

POOLING = ("fixed-effect pooling stratified by replication: each replication keeps its own n and verdicts; "
           "the pooled estimate is the n-weighted mean of the replications' mean paired differences "
           "(sum n_r m_r / N), its SE from the pooled within-replication sd, a one-sided t-test with "
           "N − R df (R replications), the same verdict rule; p_het: F test that the replications share "
           "one mean difference (small: they disagree, and the pooled estimate hides it)")


def load_replication(spec: str, cfg: Config, config_path: str | None = None) -> dict[str, Any]:
    """One replication's claims payload: ``spec`` is a claims.json file written by
    `asym claims`, a results folder (its runs are checked with ``cfg``'s report settings), or
    comma-separated run / results folders (as ``--runs`` takes them)."""
    p = Path(spec)
    if p.is_file():
        if p.suffix != ".json":
            raise ConfigError(f"--replication {spec}: a file must be a claims.json from `asym claims`")
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--replication {spec}: not a claims.json ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
            raise ConfigError(f"--replication {spec}: not a claims.json (no 'claims' list)")
        return doc
    entries = [e for e in spec.split(",") if e.strip()]
    if not entries or not all(Path(e).is_dir() for e in entries):
        raise ConfigError(f"--replication {spec}: neither a claims.json nor a results folder / run folders")
    return check_results(cfg, entries, config_path=config_path)


def _sign(claimed: str) -> int | None:
    return 1 if claimed.startswith("> 0") else -1 if claimed.startswith("< 0") else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def pool_check(checks: Sequence[Mapping[str, Any] | None], labels: Sequence[str],
               margin: float | None) -> dict[str, Any]:
    """The pooled check of one check id over the replications (``checks[i]`` None: replication
    i lacks it), with a row per replication under ``replications``."""
    first = next(c for c in checks if c is not None)
    sign = _sign(first["claimed"]) or 1
    measured = first["verdict"] == "measured" or _sign(first["claimed"]) is None
    strata = [list((c or {}).get("per_seed", {}).values()) for c in checks]
    chk_margin = first.get("margin") if first.get("margin") is not None else None
    r = stats.stratified_test(strata, sign, margin=chk_margin)
    per_seed = {f"r{i + 1}:{k}": v for i, c in enumerate(checks) if c for k, v in c["per_seed"].items()}
    levels: dict[str, float | None] = {}
    for name in first.get("levels", {}):
        pairs = [(_num(c["levels"].get(name)), c["n"]) for c in checks if c]
        pairs = [(v, n) for v, n in pairs if v is not None and n]
        levels[name] = sum(v * n for v, n in pairs) / sum(n for _, n in pairs) if pairs else None
    reps = []
    for lab, c in zip(labels, checks):
        if c is None:
            reps.append({"replication": lab, "n": 0, "verdict": "insufficient", "reason": "not in this replication"})
            continue
        t = stats.paired_test(c["per_seed"].values(), sign, margin=chk_margin)  # recomputed: older files lack the 90% CI
        reps.append({"replication": lab, "n": t.n, "mean": t.mean, "ci_low": t.ci_low, "ci_high": t.ci_high,
                     "ci90_low": t.ci90_low, "ci90_high": t.ci90_high, "p": t.p,
                     "verdict": "measured" if measured and t.n else t.verdict})
    verdict, reason = r.verdict, r.reason
    if measured:
        verdict, reason = ("measured" if r.n else "insufficient"), f"a measurement, pooled over replications; {r.reason}"
    return {**{k: first.get(k) for k in ("label", "claimed", "unit", "test", "id")},
            "per_seed": per_seed, "n": r.n, "mean": r.mean, "std": r.sd, "se": r.se, "ci_low": r.ci_low,
            "ci_high": r.ci_high, "ci90_low": r.ci90_low, "ci90_high": r.ci90_high, "df": r.df, "t": r.t,
            "p": r.p, "p_signflip": r.p_signflip, "verdict": verdict, "reason": reason,
            "p_opposite": r.p_opposite, "mde": r.mde, "margin": r.margin, "p_tost": r.p_tost,
            "p_holm": None, "endpoint": None, "levels": levels,
            "runs": [x for c in checks if c for x in c.get("runs", [])],
            "replications": reps, "p_heterogeneity": stats.heterogeneity_p(strata),
            "extra": {}}


def pool(reps: Sequence[tuple[str, Mapping[str, Any]]], *, primary_endpoint: str | None = None) -> dict[str, Any]:
    """The pooled claims payload of replications ``reps`` = [(label, payload)], in order (the
    first is the original experiment). Checks are matched by claim id and position."""
    if len(reps) < 2:
        raise ConfigError(f"pooling needs at least 2 replications, got {len(reps)}")
    labels = [lab for lab, _ in reps]
    claim_ids: list[str] = list(dict.fromkeys(c["id"] for _, p in reps for c in p["claims"]))
    margin = next((p.get("equivalence_margin") for _, p in reps if p.get("equivalence_margin") is not None), None)
    claims = []
    for cid in claim_ids:
        per_rep = [next((c for c in p["claims"] if c["id"] == cid), None) for _, p in reps]
        first = next(c for c in per_rep if c is not None)
        n_checks = max(len(c["checks"]) for c in per_rep if c)
        checks = []
        for i in range(n_checks):
            ks = [c["checks"][i] if c and i < len(c["checks"]) else None for c in per_rep]
            ks = [None if k is None else {**k, "id": f"{cid}.{i + 1}"} for k in ks]
            checks.append(pool_check(ks, labels, margin))
        claims.append({"id": cid, "title": first["title"], "paper": first["paper"], "statement": first["statement"],
                       "kind": first.get("kind", "claim"), "checks": checks, "tables": [], "notes": [],
                       "missing": [], "command": None})
    objs = [SimpleNamespace(kind=c["kind"], checks=[SimpleNamespace(**k) for k in c["checks"]]) for c in claims]
    mark_endpoints(objs, primary_endpoint)
    for c, o in zip(claims, objs):
        for k, ko in zip(c["checks"], o.checks):
            k["endpoint"], k["p_holm"] = ko.endpoint, ko.p_holm
        if c["kind"] == "measurement":
            measured = any(k["verdict"] == "measured" for k in c["checks"])
            c["verdict"], c["verdict_reason"] = ("measured", "a measurement, not tested") if measured else \
                ("insufficient", "nothing measured")
        else:
            d = stats.claim_decision([k["verdict"] for k in c["checks"]], [k["p_opposite"] for k in c["checks"]])
            c["verdict"], c["verdict_reason"], c["p_fails_holm"] = d.verdict, d.reason, d.p_fails_holm
    runs = [{**r, "replication": lab} for lab, p in reps for r in p.get("runs", [])]
    notes = endpoint_notes(claims, primary_endpoint)
    notes.append("replications: " + "; ".join(f"r{i + 1} = {lab} ({len(p.get('runs', []))} runs)"
                                              for i, (lab, p) in enumerate(reps))
                 + ". Each is an independent experiment, reported at its own n beside the pooled estimate.")
    notes.append(platform_note(reps))
    return _clean({
        "rule": RULE,
        "pooling": POOLING,
        "primary_endpoint": primary_endpoint,
        "equivalence_margin": margin,
        "results_dir": " + ".join(labels),
        "replications": [{"label": lab, "results_dir": p.get("results_dir", ""), "runs": len(p.get("runs", [])),
                          "verdicts": p.get("verdicts", {}), "platforms": p.get("platforms")} for lab, p in reps],
        "runs": runs,
        "skipped": [f"{lab}: {s}" for lab, p in reps for s in p.get("skipped", [])],
        "claims": claims,
        "verdicts": {c["id"]: c["verdict"] for c in claims},
        "missing": [],
        "command": None,
        "notes": notes,
    })


def platform_note(reps: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Which platforms (CPU, torch kernel choice; asymcli.platform) each replication's runs came
    from: a replication from another platform is expected to differ seed by seed (issue 30)."""
    parts = []
    labels: set[str] = set()
    for i, (_, p) in enumerate(reps):
        plats = p.get("platforms")
        if not plats:
            parts.append(f"r{i + 1}: not recorded")
            continue
        labels |= set(plats)
        parts.append(f"r{i + 1}: " + " + ".join(sorted(plats)))
    head = ("the replications come from different platforms" if len(labels) > 1 else
            "platforms" if labels else "platforms not recorded (runs from before provenance)")
    return f"{head}: {'; '.join(parts)}"


def check_replications(cfg: Config, specs: Sequence[str], *, config_path: str | None = None) -> dict[str, Any]:
    """Load every replication (:func:`load_replication`) and pool them (:func:`pool`), with
    ``cfg.report.primary_endpoint``."""
    if len(specs) < 2:
        raise ConfigError(f"--replication: give at least 2 (each a results folder or claims.json), got {len(specs)}")
    reps = [(spec, load_replication(spec, cfg, config_path)) for spec in specs]
    return pool(reps, primary_endpoint=cfg.report.primary_endpoint)


__all__ = ["POOLING", "check_replications", "load_replication", "pool", "pool_check"]
