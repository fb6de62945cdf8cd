# Helpers shared by the rules and the targets: every path of a rule comes from Layout
# (asymcli/pipeline/layout.py) through path(); file lists of the aggregate and report parts
# (names from asymcli.pipeline.AGG_PARTS / REPORT_PARTS, the one place they live).

import shlex
import sys

# Every rule's command starts with `asym` (a multi-GPU train with `torchrun`). Both are shell
# functions here that run the Python interpreter running this Snakefile, so each job calls the
# asym the user started: `.venv/bin/asym run-grid` works without an activated venv, and another
# asym earlier on PATH is never picked. They are defined once in the shell prefix rather than
# written into each rule's command: Snakemake reruns a finished job whose command text changed
# (its `code` trigger), and the interpreter's path differs from one machine to the next.
PYTHON = shlex.quote(sys.executable)
STAGE_COMMANDS = (f'asym() {{ {PYTHON} -m asymcli "$@"; }}; '
                  f'torchrun() {{ {PYTHON} -m torch.distributed.run "$@"; }}; ')
# Snakemake's own prefix under bash (strict mode) is kept; shell.prefix formats its argument,
# hence the doubled braces.
shell.prefix(("set -euo pipefail; " if (shell.get_executable() or "").endswith("bash") else "")
             + STAGE_COMMANDS.replace("{", "{{").replace("}", "}}"))


def path(p):
    """A Layout path as Snakemake's string; wildcards pass through: path(LAYOUT.metrics("{run}"))."""
    return str(p)


def agg_files(part):
    return {name: path(LAYOUT.agg(name)) for name in pipeline.AGG_PARTS[part]}


def report_file(part):
    return [path(LAYOUT.report_file(name)) for name in pipeline.REPORT_PARTS[part]]
