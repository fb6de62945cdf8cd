"""The bench scripts that docs/benchmarks.md and docs/reliability.md quote, run end to end.

- bench/floor.py on the default config: a step that skipped the diagnostic pass
  (``train.logprob_gain_every``) gets a floor of 0 for that pass. The default computes the
  log-prob gain every 10th step, so its first timed step here has no post-update pass; the script
  used to index that part's time and fail (issue 31, seventh session).
- bench/numerics_probe.py: the same bits twice on one machine, the committed probe file's keys,
  and --compare naming the probes that differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_floor_on_the_default_step_without_the_gain_pass(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "floor.py"), "--config", str(ROOT / "configs" / "default.yaml"),
         "--warmup", "0", "--repeats", "1", "--no-profile"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert rec["what"] == "floor" and rec["threads"] == 1
    # step 1 of 60 with the gain every 10th step: no diagnostic pass, and none in the floor either
    assert rec["measured_cpu"]["post_update_logprobs"] == 0.0
    assert rec["floor"]["post_update_logprobs"] == 0.0
    parts = ("generation", "old_logprobs", "update_fwd_bwd", "optimizer")
    assert rec["floor"]["total"] == pytest.approx(sum(rec["floor"][k] for k in parts))
    assert all(rec["measured_cpu"][k] > 0 for k in ("generation", "update_fwd_bwd"))
    assert rec["ratio"]["update_fwd_bwd"] > 0
    assert "| step |" in proc.stdout


def _probe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "numerics_probe.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_numerics_probe_is_repeatable_and_compares(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        proc = _probe(["--json", str(out)], tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["probes"] == rb["probes"] and len(ra["probes"]) > 100
    assert ra["platform"]["portable"] is True
    # the committed file (an Intel Xeon's) has the same probes, so any machine can diff against it
    committed = json.loads((ROOT / "docs" / "numerics-probes" / "intel-xeon-6-207-2.json").read_text())
    assert set(committed["probes"]) == set(ra["probes"])
    same = _probe(["--compare", str(a), str(b)], tmp_path)
    assert same.returncode == 0 and f"0 of {len(ra['probes'])} probes differ" in same.stdout
    key = "vml sqrt [1M]"
    rb["probes"][key] = "0" * 16
    b.write_text(json.dumps(rb))
    diff = _probe(["--compare", str(a), str(b)], tmp_path)
    assert diff.returncode == 1
    assert f"differs: {key}" in diff.stdout and f"1 of {len(ra['probes'])} probes differ" in diff.stdout
