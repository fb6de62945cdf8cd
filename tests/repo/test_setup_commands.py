"""The README's set-up commands are what CI runs, pinned by constraints.txt.

Why: a green CI once hid a failing README test command, because CI reused the developer
machine's packages while a newcomer's pip resolved a newer pytest. These checks keep the two
commands, `.ci/run` and the constraints file in step.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text[text.index("## Set-up"):]
    setup = setup[: setup.index("\n## ", 3)]
    return [line for line in re.findall(r"```bash\n(.*?)```", setup, re.S) for line in line.splitlines()
            if line.startswith("pip install")]


def test_readme_has_both_commands_pinned_by_constraints():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    for cmd in cmds:
        assert "torch==2.13.0" in cmd and "-c constraints.txt" in cmd, cmd
    assert cmds[1].endswith("python -m pytest -q"), cmds[1]


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = readme_commands()[1]
    assert test_cmd in ci.splitlines(), "keep .ci/run's command identical to the README's"
    assert "-m venv" in ci and "mktemp" in ci, "CI must build its own environment on every run"
    assert ci.index("-m venv") < ci.index(test_cmd)


def test_constraints_pin_every_line_exactly():
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    names = {}
    for ln in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", ln)
        assert m, f"constraints.txt: '{ln}' is not NAME==VERSION"
        names[m.group(1).lower().replace("_", "-")] = m.group(2)
    # the CPU wheel, without the local label a CUDA build would not match
    assert names["torch"] == "2.13.0"
    for needed in ("pytest", "transformers", "snakemake", "duckdb", "pyarrow", "math-verify", "trl", "deepspeed"):
        assert needed in names, f"constraints.txt does not pin {needed}"
