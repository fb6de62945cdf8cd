"""Rendering of a claims payload (:func:`.checks.payload`): the terminal table, claims.md,
claims.json and the report's "Claims" section. Pure formatting plus the atomic writes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ... import artifacts
from .base import fmt_value as _fmt, seed_text as _seed_text
from .checks import check_results
from .data import group_label, group_of

FORMATS = ("table", "json", "md")


def _runs_text(p: Mapping[str, Any]) -> str:
    if p.get("replications"):
        return "; ".join(f"r{i + 1} = {rep['label']}: " + _runs_text({"runs": [r for r in p["runs"]
                                                                        if r.get("replication") == rep["label"]]})
                         for i, rep in enumerate(p["replications"]))
    groups: dict[str, list[int]] = {}
    for r in p["runs"]:
        g = group_of(r["method"], r["beta_pos"], r["beta_neg"])
        groups.setdefault(group_label(g), []).append(r["seed"])
    return "; ".join(f"{lab} (seeds {', '.join(str(s) for s in seeds)})" for lab, seeds in groups.items())


def _p(p: Any) -> str:
    if p is None:
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _ci(c: Mapping[str, Any]) -> str:
    if c.get("ci_low") is None:
        return "–"
    return f"[{_fmt(c['ci_low'], True)}, {_fmt(c['ci_high'], True)}]"


def _ci90(c: Mapping[str, Any]) -> str:
    """The 90% CI (the interval the one-sided test at 0.05 matches) with its claimed-side end
    named as the one-sided 95% bound. Older claims.json files lack it: "–"."""
    if c.get("ci90_low") is None:
        return "–"
    return f"[{_fmt(c['ci90_low'], True)}, {_fmt(c['ci90_high'], True)}]"


def _bound(c: Mapping[str, Any]) -> str:
    """"one-sided 95% bound > +0.14": the claimed-side end of the 90% CI."""
    if c.get("ci90_low") is None or not c.get("claimed", "").startswith(("> 0", "< 0")):
        return ""
    if c["claimed"].startswith("> 0"):
        return f" (one-sided 95% bound > {_fmt(c['ci90_low'], True)})"
    return f" (one-sided 95% bound < {_fmt(c['ci90_high'], True)})"


def _endpoint(c: Mapping[str, Any]) -> str:
    """" [primary]" / " [secondary, Holm p=0.16]" once a primary endpoint is declared."""
    if c.get("endpoint") == "primary":
        return " [primary endpoint]"
    if c.get("endpoint") == "secondary" and c.get("verdict") != "measured":
        return f" [secondary, Holm p={_p(c.get('p_holm'))}]"
    return ""


def _rep_line(r: Mapping[str, Any]) -> str:
    """One replication of a pooled check."""
    if not r.get("n") or r.get("mean") is None:
        return f"  {r['replication']}: – ({r.get('reason', 'no paired value')})"
    if r["n"] < 2:
        return f"  {r['replication']}: n={r['n']}, {_fmt(r['mean'], True)} → {r['verdict']}"
    return (f"  {r['replication']}: n={r['n']}, mean {_fmt(r['mean'], True)}, 95% CI {_ci(r)}, 90% CI {_ci90(r)}, "
            f"p={_p(r.get('p'))} → {r['verdict']}")


def _mde(c: Mapping[str, Any]) -> str:
    """"MDE 2.3 points": the minimum detectable effect (80% power) at the check's n."""
    if c.get("mde") is None:
        return "–"
    return f"{_fmt(c['mde'])}" + (f" {c['unit']}" if c.get("unit") else "")


def _extras(c: Mapping[str, Any]) -> str:
    """The parts of a check line beyond the test: TOST p and margin; fraction of steps."""
    parts = []
    if c.get("margin") is not None and c.get("p_tost") is not None:
        parts.append(f"TOST ±{c['margin']:g}: p={_p(c['p_tost'])}")
    frac = c.get("extra", {}).get("frac_steps_mean")
    if frac is not None:
        parts.append(f"steps on the claimed side {_fmt(frac)} (measured)")
    return "".join(f", {x}" for x in parts)


def _check_line(c: Mapping[str, Any]) -> str:
    """One line per check: n, mean difference, 95% CI, one-sided p (t-test; sign-flip), MDE
    (80% power), TOST p where the check has a margin, verdict. Measurements: n, mean, CI."""
    if c["mean"] is None:
        return f"{c['label']}: – ({c['reason']})"
    signed = c["claimed"].startswith(("> 0", "< 0"))
    if c["n"] < 2:
        return f"{c['label']}: n={c['n']}, {_fmt(c['mean'], signed)}, claimed {c['claimed']} → {c['verdict']}"
    pooled = " (pooled)" if c.get("replications") else ""
    if c["verdict"] == "measured":
        return f"{c['label']}{pooled}: n={c['n']}, mean {_fmt(c['mean'], signed)}, 95% CI {_ci(c)} (measured)"
    het = f", p_het={_p(c['p_heterogeneity'])}" if c.get("replications") else ""
    return (f"{c['label']}{pooled}: n={c['n']}, mean {_fmt(c['mean'], signed)}, 95% CI {_ci(c)}, "
            f"90% CI {_ci90(c)}{_bound(c)}, p={_p(c['p'])} (sign-flip {_p(c['p_signflip'])}), MDE {_mde(c)}"
            f"{_extras(c)}{het}, claimed {c['claimed']} → {c['verdict']}{_endpoint(c)}")


def _check_lines(c: Mapping[str, Any]) -> list[str]:
    """A check's line, then (pooled checks) one line per replication."""
    if not c.get("n"):
        return [_check_line(c)]
    return [_check_line(c)] + [_rep_line(r) for r in c.get("replications", [])]


def to_markdown(p: Mapping[str, Any], level: int = 1, details: bool = True) -> str:
    """Markdown of a :func:`payload`: summary table, then (``details``) one section per claim.
    ``level``: the heading level of the title (1 for claims.md, 2 inside the report's index)."""
    h = "#" * level
    out = [f"{h} Claims\n",
           "The paper's claims (arXiv 2604.04894), checked on these runs.\n"]
    if not p["runs"]:
        out.append(f"No finished runs under `{p['results_dir']}`.\n")
    else:
        out.append(f"Runs: {_runs_text(p)}.\n")
    out.append(f"Rule: {p['rule']}\n")
    if p.get("pooling"):
        out.append(f"Replications pooled: {p['pooling']}.\n")
    if p.get("equivalence_margin") is not None:
        out.append(f"Equivalence margin of the accuracy checks: ±{p['equivalence_margin']:g} points "
                   "(`report.equivalence_margin`).\n")
    out.append("| # | Claim | Paper | Verdict | Evidence |")
    out.append("|---|---|---|---|---|")
    for c in p["claims"]:
        ev = "<br>".join(x.replace("|", "\\|") for k in c["checks"] for x in _check_lines(k)) or "–"
        out.append(f"| {c['id']} | {c['title']} | {c['paper']} | **{c['verdict']}** | {ev} |")
    out.append("")
    for note in p["notes"]:
        out.append(f"- {note}")
    if p["command"]:
        out.append(f"\nTo add every missing run:\n\n```\n{p['command']}\n```\n")
    for c in p["claims"] if details else ():
        out.append(f"{h}# {c['id']}. {c['title']} ({c['paper']}): {c['verdict']}\n")
        out.append(f"Claim: {c['statement']}.\n")
        if c.get("verdict_reason") and c.get("kind", "claim") == "claim":
            out.append(f"Verdict: {c['verdict']} ({c['verdict_reason']}).\n")
        if c["checks"]:
            out.append("| Id | Check | Endpoint | Claimed | n | Mean | 95% CI | 90% CI | p (t) | p (sign-flip) | p (Holm) | "
                       "MDE (80%) | TOST p (margin) | Std | Per seed | Verdict |")
            out.append("|---|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|")
            for k in c["checks"]:
                signed = k["claimed"].startswith(("> 0", "< 0"))
                tost = "–" if k.get("margin") is None else f"{_p(k.get('p_tost'))} (±{k['margin']:g})"
                out.append(f"| {k.get('id', '')} | {k['label']} | {k.get('endpoint') or '–'} | {k['claimed']} | "
                           f"{k['n']} | {_fmt(k['mean'], signed)} | {_ci(k)} | {_ci90(k)} | {_p(k['p'])} | {_p(k['p_signflip'])} | {_p(k['p_holm'])} | {_mde(k)} | {tost} | "
                           f"{_fmt(k['std'])} | {_seed_text(k['per_seed'], signed)} | {k['verdict']}: {k['reason']} |")
            out.append("")
            for k in c["checks"]:
                if k.get("replications") and k.get("n"):
                    out.append(f"- {k['label']}, each replication (p_het = {_p(k.get('p_heterogeneity'))}):")
                    out.extend(f"  - {_rep_line(r).strip()}" for r in k["replications"])
            for k in c["checks"]:
                levels = "; ".join(f"{name} = {_fmt(v)}" for name, v in k["levels"].items())
                if levels:
                    out.append(f"- {k['label']}: {levels}" + (f" ({k['unit']})" if k["unit"] else ""))
                if k["extra"].get("frac_steps"):
                    out.append(f"  - fraction of steps on the claimed side (a measurement, not tested): mean "
                               f"{_fmt(k['extra']['frac_steps_mean'])} ({_seed_text(k['extra']['frac_steps'])})")
                if k["extra"].get("seeds_for_margin") is not None:
                    out.append(f"  - paired seeds to detect a difference of the margin (±{k['margin']:g} "
                               f"{k['unit']}) with 80% power at this sd: {k['extra']['seeds_for_margin']}")
        for t in c["tables"]:
            out.append(f"\n{t['title']}:\n")
            out.append("| " + " | ".join(t["columns"]) + " |")
            out.append("|" + "---|" * len(t["columns"]))
            for row in t["rows"]:
                out.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |")
        out.append("")
        for note in c["notes"]:
            out.append(f"- {note}")
        if c["command"]:
            out.append(f"\nTo add the missing runs:\n\n```\n{c['command']}\n```")
        out.append("")
    if p["skipped"]:
        out.append(f"Passed over: {'; '.join(p['skipped'])}.\n")
    return "\n".join(out).rstrip() + "\n"


def to_json(p: Mapping[str, Any]) -> str:
    import json

    return json.dumps(p, indent=2, allow_nan=False) + "\n"


VERDICT_STYLE = {"holds": "bold green", "fails": "bold red", "trend": "bold yellow", "inconclusive": "yellow",
                 "equivalent": "bold cyan", "insufficient": "dim", "measured": "cyan"}


def print_rich(p: Mapping[str, Any], console: Any) -> None:
    """The summary table in the terminal (details are in claims.md)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="The paper's claims, checked on these runs", show_lines=True)
    table.add_column("#", no_wrap=True)
    table.add_column("Claim (paper)", ratio=2)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Evidence (paired over seeds: n, mean difference, 95% and 90% CI, one-sided p, MDE at 80% power)",
                     ratio=3)
    for c in p["claims"]:
        lines = [x for k in c["checks"] for x in _check_lines(k)]
        if c["command"]:
            lines.append(f"to add: {c['command']}")
        table.add_row(c["id"], f"{c['title']} ({c['paper']})", Text(c["verdict"], style=VERDICT_STYLE[c["verdict"]]),
                      Text("\n".join(lines) or "–"))  # Text: "[primary endpoint]" is not rich markup
    console.print(table)
    console.print(f"runs: {_runs_text(p) or 'none under ' + p['results_dir']}", highlight=False)
    for note in p["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(f"rule: {p['rule']}", highlight=False)
    if p.get("pooling"):
        console.print(f"pooling: {p['pooling']}", highlight=False)


def write_files(p: Mapping[str, Any], report_dir: str | os.PathLike[str], stem: str = "claims") -> dict[str, Path]:
    """Write ``{stem}.md`` (with details) and ``{stem}.json`` atomically under ``report_dir``."""
    d = Path(report_dir)
    paths = {"md": d / f"{stem}.md", "json": d / f"{stem}.json"}
    artifacts.write_text(paths["md"], to_markdown(p, level=1))
    artifacts.write_json(paths["json"], p)
    return paths


def report_section(ctx: Any) -> str:
    """The "Claims" section of the report's index.md (``ctx``: asymcli.analysis.report.ReportContext,
    or anything with ``.cfg``): checks every finished run of ``ctx.cfg`` afresh, rewrites
    report/claims.md and claims.json beside the index, and returns the summary with a link
    to them."""
    resolved = Path(ctx.cfg.results_dir) / "config.resolved.yaml"  # the pipeline's config (pipeline.Layout)
    p = check_results(ctx.cfg, config_path=str(resolved) if resolved.exists() else None)
    write_files(p, Path(ctx.cfg.results_dir) / "report")
    text = to_markdown(p, level=2, details=False).rstrip()
    return text + "\n\nPer-seed values, tables and notes: [claims.md](claims.md) ([JSON](claims.json)).\n"
