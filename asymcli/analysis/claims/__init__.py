"""The paper's claims, checked on the user's own runs (`asym claims`).

Why it exists: a reader adopts AsymGRPO when the mechanism shows on their own model, not
because Table 2 says so. For each claim of arXiv 2604.04894 this package reads finished
runs, reduces every comparison to one paired difference per seed, tests it, and reports
n, the mean difference, a 95% CI, a one-sided p-value and a verdict.

- :mod:`.stats`: the paired test and the verdict words (pure);
- :mod:`.data`: locating and loading runs from their artifacts;
- :mod:`.base`: what a claim is (Check, Claim, Inputs, the verdict rule);
- :mod:`.mechanism`, :mod:`.peaks`: the claims, as functions of the loaded runs (pure);
- :mod:`.checks`: all claims evaluated together, the payload;
- :mod:`.replications`: independent replications, each reported and pooled (fixed effect, stratified);
- :mod:`.render`: the terminal table, claims.md / claims.json, the report section.
"""

from .base import BEFORE_UPDATE, RULE, Check, Claim, Inputs, combine, make_check, run_grid_command
from .checks import CLAIMS, check_results, evaluate, payload
from .data import ASYM_PAIR, SYM_PAIR, RunData, Sources, load_runs, locate
from .replications import check_replications, pool
from .render import FORMATS, print_rich, report_section, to_json, to_markdown, write_files
from .stats import VERDICTS, PairedTest, holm, paired_test

__all__ = [
    "ASYM_PAIR", "BEFORE_UPDATE", "CLAIMS", "FORMATS", "RULE", "SYM_PAIR", "VERDICTS", "Check", "Claim",
    "Inputs", "PairedTest", "RunData", "Sources", "check_replications", "check_results", "combine", "evaluate", "holm", "load_runs",
    "locate", "make_check", "paired_test", "payload", "pool", "print_rich", "report_section", "run_grid_command",
    "to_json", "to_markdown", "write_files",
]
