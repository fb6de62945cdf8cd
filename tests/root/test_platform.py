"""Provenance and portable numerics (issue 30): every artifact records the platform it was made
on; numerics.portable pins the CPU kernels before torch loads, in the CLI and the Snakefile;
`asym status` and `asym claims` say when runs come from different platforms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asymcli import artifacts, platform
from asymcli.config import load_config, resolve_run
from asymcli.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"cpu", "cpu_flags", "machine", "torch", "torch_capability", "torch_blas", "numpy", "threads",
        "numerics_env", "portable"}
needs_avx2 = pytest.mark.skipif(not platform.has_avx2(), reason="portable mode pins AVX2 kernels")


def other(info: dict, **changes) -> dict:
    return dict(info, **changes)


# --- the config switch


def test_numerics_section_defaults_on_and_validates(tmp_path):
    assert load_config().numerics.portable is True
    assert load_config(None, {"numerics": {"portable": False}}).numerics.portable is False
    try:
        import reasoning_gym  # noqa: F401
        has_rg = True
    except ImportError:
        has_rg = False
    for shipped in sorted((ROOT / "configs").rglob("*.yaml")):
        if not has_rg and "kind: reasoning_gym" in shipped.read_text():
            # validating a reasoning-gym task needs the package (the first CI pass runs without
            # it; tests/root/test_reasoning_gym.py loads these configs after .ci/install-rg)
            with pytest.raises(ConfigError, match="needs the reasoning-gym package"):
                load_config(shipped)
            continue
        assert load_config(shipped).numerics.portable is True, shipped
    bad = tmp_path / "bad.yaml"
    bad.write_text("numerics:\n  portable: sometimes\n")
    with pytest.raises(ConfigError, match=r"numerics\.portable") as exc:
        load_config(bad)
    assert "\n" not in str(exc.value)
    bad.write_text("numerics:\n  isa: avx512\n")
    with pytest.raises(ConfigError, match=r"numerics\.isa"):
        load_config(bad)
    # torch's default thread count is the machine's cores: not portable
    bad.write_text("train:\n  threads: 0\n")
    with pytest.raises(ConfigError, match=r"'train\.threads' must be >= 1 with numerics\.portable"):
        load_config(bad)
    assert load_config(None, {"base": {"threads": 0}, "numerics": {"portable": False}}).base.threads == 0


def test_schema_documents_the_switch():
    schema = json.loads((ROOT / "workflow" / "schemas" / "config.schema.json").read_text())
    prop = schema["properties"]["numerics"]["properties"]["portable"]
    assert prop["default"] is True and "ATEN_CPU_CAPABILITY" in prop["description"]


# --- applying it


@pytest.fixture
def clean_env(monkeypatch):
    for k in (*platform.PORTABLE_ENV, platform.MARKER, platform.OVERRIDDEN):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_apply_sets_pins_records_overrides_and_undoes(clean_env):
    clean_env.setenv("ATEN_CPU_CAPABILITY", "default")
    lines: list[str] = []
    platform.apply_numerics(True, warn=lines.append)
    for k, v in platform.PORTABLE_ENV.items():
        assert os.environ[k] == v
    assert os.environ[platform.MARKER] == "1"
    assert json.loads(os.environ[platform.OVERRIDDEN]) == {"ATEN_CPU_CAPABILITY": "default"}
    info = platform.platform_info()
    assert info["portable"] is True and info["numerics_env"]["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "default" in info["numerics_env_overridden"]
    platform.apply_numerics(False)  # portable: false undoes the pins, restores the user's value
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default"
    assert "MKL_CBWR" not in os.environ and platform.MARKER not in os.environ
    assert platform.platform_info()["portable"] is False


def test_apply_warns_when_torch_already_chose_other_kernels(clean_env):
    import torch

    lines: list[str] = []
    platform.apply_numerics(True, warn=lines.append)
    chosen = torch.backends.cpu.get_cpu_capability()
    assert bool(lines) == (chosen != platform.PORTABLE_CAPABILITY and bool(platform.has_avx2()))


def _base_footer(tmp_path: Path, portable: bool) -> dict:
    """`asym prep` + `asym base` of a tiny config in fresh processes under an emulated CPU
    without vectorisation (ATEN_CPU_CAPABILITY=default); the base's footer metadata."""
    cfg = {"results_dir": str(tmp_path / "res"), "numerics": {"portable": portable},
           "task": {"n_train": 16, "n_heldout": 2, "tiers": ["t1"]},
           "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 32},
           "base": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "probe_prompts": 2, "prebuilt": False},
           "train": {"group_size": 2, "max_new_tokens": 4}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k not in (platform.MARKER, platform.OVERRIDDEN)}
    env.update(ATEN_CPU_CAPABILITY="default", PYTHONPATH=str(ROOT))
    for cmd in ("prep", "base"):
        subprocess.run([sys.executable, "-m", "asymcli.cli", cmd, "--config", str(path)] + (["-q"] if cmd == "base" else []),
                       env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    return artifacts.read_metadata(tmp_path / "res" / "base" / "sft_metrics.parquet")


@pytest.mark.slow
@needs_avx2
def test_cli_pins_kernels_before_torch_loads(tmp_path):
    on = _base_footer(tmp_path / "on", portable=True)["platform"]
    assert KEYS <= set(on)
    assert on["torch_capability"] == "AVX2" and on["portable"] is True
    assert on["numerics_env"]["ATEN_CPU_CAPABILITY"] == "avx2" and "default" in on["numerics_env_overridden"]
    off = _base_footer(tmp_path / "off", portable=False)["platform"]
    assert off["torch_capability"] == "DEFAULT" and off["portable"] is False  # the emulated host's own kernels


def test_snakefile_applies_numerics_before_any_job():
    text = (ROOT / "Snakefile").read_text()
    assert "apply_numerics(CFG.numerics.portable)" in text
    assert text.index("apply_numerics(CFG") < text.index("include:")


# --- provenance


def test_provenance_footer_carries_the_platform():
    meta = artifacts.provenance({"a": 1})
    assert KEYS <= set(meta["platform"])
    assert meta["platform"]["torch_capability"] and meta["platform"]["threads"] >= 1


def test_run_json_and_metrics_footer_record_the_platform(tiny_policy_dir, arith_rows, tmp_path):
    from tests.training.test_trainer import make, small_cfg

    cfg = small_cfg(steps=1, eval_every=0, checkpoint_every=0)
    run = resolve_run(cfg, "grpo", seed=0)
    path = make(cfg, run, arith_rows, tiny_policy_dir, tmp_path / "run").train()
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert KEYS <= set(saved["platform"]) and set(saved) >= {"run", "model", "task", "platform"}
    assert artifacts.recorded_platform(tmp_path / "run" / "run.json") == saved["platform"]
    assert KEYS <= set(artifacts.read_metadata(path)["platform"])
    # the platform is no part of the run's description: a rerun on another machine resumes
    from asymcli.training.reruns import config_changes, expected_run_config

    assert config_changes(saved, expected_run_config(cfg, "grpo_s0")) == []


# --- mixed platforms


def test_mixed_note_only_when_platforms_differ():
    a = platform.platform_info()
    assert platform.mixed_note({"x": a, "y": dict(a)}) is None
    note = platform.mixed_note({"x": a, "y": other(a, torch_capability="AVX512"), "z": None})
    assert note.startswith("these runs come from 3 platforms") and "AVX512" in note and "\n" not in note


def _fake_run(results: Path, rid: str, info: dict | None) -> None:
    run_dir = results / "runs" / rid
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run": {}, "platform": info}))
    artifacts.write_parquet(run_dir / "metrics.parquet", [], artifacts.METRICS, {})


def test_status_and_claims_say_when_runs_come_from_different_platforms(tmp_path):
    from io import StringIO

    from rich.console import Console

    from asymcli.analysis.claims.checks import run_platforms
    from asymcli.pipeline.status import collect_status, render_status

    a = platform.platform_info()
    cfg = load_config(None, {"results_dir": str(tmp_path / "res")})
    _fake_run(tmp_path / "res", "grpo_s0", a)
    _fake_run(tmp_path / "res", "reinforce_s0", a)
    assert collect_status(cfg).platform_note is None
    _fake_run(tmp_path / "res", "asym_bp0.9_bn0.4_s0", other(a, cpu="Some Xeon", torch_capability="AVX512"))
    st = collect_status(cfg)
    assert st.platform_note and "2 platforms" in st.platform_note and "AVX512" in st.platform_note
    out = StringIO()
    render_status(st, Console(file=out, width=400))
    assert "come from 2 platforms" in out.getvalue()
    groups, note = run_platforms({r: tmp_path / "res" / "runs" / r / "metrics.parquet"
                                  for r in ("grpo_s0", "reinforce_s0", "asym_bp0.9_bn0.4_s0")})
    assert note and "2 platforms" in note
    assert sorted(len(v) for v in groups.values()) == [1, 2]


def test_the_cpu_generation_and_caches_are_recorded_and_named():
    """The model name alone ("AMD EPYC") named two AVX2 machines whose hf-engine runs differed."""
    from pathlib import Path

    from asymcli.platform import label, platform_info

    info = platform_info()
    if "cpu family" in Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else False:
        assert info["cpu_id"].startswith("family ") and " model " in info["cpu_id"]
        assert f"({info['cpu_id']})" in label(info)
    old = {"torch": "2.13.0+cpu", "torch_capability": "AVX2", "threads": 1, "portable": True, "cpu": "AMD EPYC"}
    assert label(old) == "torch 2.13.0+cpu AVX2, 1 thread(s), portable on AMD EPYC"
    assert label({**old, "cpu_id": "family 25 model 1 stepping 1"}) == (
        "torch 2.13.0+cpu AVX2, 1 thread(s), portable on AMD EPYC (family 25 model 1 stepping 1)")
