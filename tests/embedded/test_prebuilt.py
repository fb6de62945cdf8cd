"""The prebuilt bases (asymcli/embedded/prebuilt.py): used only when the recipe matches, identical to a
fresh warm-up, rebuilt by one command, and the shipped ones match configs/default.yaml and
configs/headline.yaml's three bases."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from asymcli import artifacts
from asymcli.embedded import prebuilt
from asymcli.config import config_to_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def smoke_config(tmp_path: Path) -> Path:
    text = (REPO / "configs" / "smoke.yaml").read_text().replace("results_dir: results/smoke",
                                                                 f"results_dir: {tmp_path}/results")
    path = tmp_path / "smoke.yaml"
    path.write_text(text)
    return path


def asym(*args: str, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "asymcli.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_write_prebuilt_then_reuse_gives_the_same_base(tmp_path, monkeypatch):
    import os

    cfg = smoke_config(tmp_path)
    env = dict(os.environ, ASYM_PREBUILT_DIR=str(tmp_path / "shipped"), PYTHONPATH=str(REPO))
    asym("prep", "--config", str(cfg), env=env)
    out1 = asym("base", "--config", str(cfg), "--out", str(tmp_path / "b1"), "--write-prebuilt", env=env)
    assert "prebuilt base written to" in out1.stderr
    shipped = json.loads((tmp_path / "shipped" / prebuilt.MANIFEST).read_text())
    assert shipped["rebuild"] == f"asym base --config {cfg} --write-prebuilt" and len(shipped["recipe"]) == 64

    out2 = asym("base", "--config", str(cfg), "--out", str(tmp_path / "b2"), env=env)
    assert "using the prebuilt warm-up" in out2.stderr
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (tmp_path / "b1" / "model" / name).read_bytes() == (tmp_path / "b2" / "model" / name).read_bytes()
    # the statistics at RL start are measured again, and agree
    a = artifacts.read_parquet(tmp_path / "b1" / "base_stats.parquet").to_pylist()
    b = artifacts.read_parquet(tmp_path / "b2" / "base_stats.parquet").to_pylist()
    assert a == b
    assert artifacts.read_metadata(tmp_path / "b2" / "sft_metrics.parquet")["base_source"].startswith("prebuilt ")
    assert artifacts.read_metadata(tmp_path / "b1" / "sft_metrics.parquet")["base_source"] == "warmed up here"

    # another recipe (a base setting changed) warms up again; so does base.prebuilt: false
    changed = cfg.read_text().replace("  steps: 10\n  batch_size: 8", "  steps: 11\n  batch_size: 8")
    assert changed != cfg.read_text()
    (tmp_path / "changed.yaml").write_text(changed)
    out3 = asym("base", "--config", str(tmp_path / "changed.yaml"), "--out", str(tmp_path / "b3"), env=env)
    assert "using the prebuilt" not in out3.stderr
    (tmp_path / "off.yaml").write_text(cfg.read_text().replace("base:\n", "base:\n  prebuilt: false\n", 1))
    out4 = asym("base", "--config", str(tmp_path / "off.yaml"), "--out", str(tmp_path / "b4"), env=env)
    assert "using the prebuilt" not in out4.stderr


def test_recipe_ignores_what_does_not_change_the_weights():
    cfg = config_to_dict(load_config(REPO / "configs" / "default.yaml"))
    rows = [{"prompt": "1+1", "solution": "2"}]
    h = prebuilt.recipe_hash(cfg, rows)
    for key, value in (("probe_prompts", 7), ("prebuilt", False)):
        assert prebuilt.recipe_hash(dict(cfg, base=dict(cfg["base"], **{key: value})), rows) == h
    for key, value in (("steps", 1), ("seed", 1), ("threads", 2), ("lr", 1e-3)):
        assert prebuilt.recipe_hash(dict(cfg, base=dict(cfg["base"], **{key: value})), rows) != h
    assert prebuilt.recipe_hash(dict(cfg, model=dict(cfg["model"], hidden_size=32)), rows) != h
    assert prebuilt.recipe_hash(cfg, [{"prompt": "1+1", "solution": "3"}]) != h


def test_shipped_base_matches_the_default_recipe(tmp_path):
    """The shipped folder is complete and is the default config's warm-up (prep is cheap: the
    task rows are generated here and hashed with the config)."""
    from stages import prep

    cfg = load_config(REPO / "configs" / "default.yaml")
    cfg = dataclasses.replace(cfg, results_dir=str(tmp_path / "r"))
    prompts = prep.run(cfg, tmp_path / "prompts.parquet")
    rows = [r for r in artifacts.read_parquet(prompts, artifacts.PROMPTS).to_pylist()
            if r["split"] == "train" and r["solution"]]
    recipe = prebuilt.recipe_hash(config_to_dict(cfg), rows)
    assert prebuilt.find(recipe, prebuilt.PREBUILT_DIR) == prebuilt.PREBUILT_DIR, (
        f"the shipped base no longer matches configs/default.yaml: rebuild it with `{prebuilt.REBUILD_COMMAND}`")
    artifacts.read_parquet(prebuilt.PREBUILT_DIR / "sft_metrics.parquet")


def _train_rows(cfg, tmp_path):
    from stages import prep

    prompts = prep.run(dataclasses.replace(cfg, results_dir=str(tmp_path / "r")), tmp_path / "prompts.parquet")
    return [r for r in artifacts.read_parquet(prompts, artifacts.PROMPTS).to_pylist()
            if r["split"] == "train" and r["solution"]]


def test_shipped_bases_match_the_headline_recipes(tmp_path, monkeypatch):
    """Each of grid.bases is shipped (assets/headline-base{s}/), found among every shipped folder
    by its recipe alone, and its manifest names the command that rebuilds it."""
    monkeypatch.delenv(prebuilt.ENV_DIR, raising=False)
    cfg = load_config(REPO / "configs" / "headline.yaml")
    rows = _train_rows(cfg, tmp_path)
    assert cfg.grid.bases == [1, 2, 3]
    for s in cfg.grid.bases:
        c = dataclasses.replace(cfg, base=dataclasses.replace(cfg.base, seed=s))
        folder = prebuilt.find(prebuilt.recipe_hash(config_to_dict(c), rows))
        assert folder == prebuilt.ASSETS_DIR / f"headline-base{s}", (
            f"base {s} of configs/headline.yaml is not shipped: "
            f"`asym base --config configs/headline.yaml --base-seed {s} --write-prebuilt`")
        m = prebuilt.manifest(folder)
        assert m["seed"] == s and m["numerics"] == {"portable": True}
        assert prebuilt.rebuild_command(folder) == \
            f"asym base --config configs/headline.yaml --base-seed {s} --write-prebuilt"
        artifacts.read_parquet(folder / "sft_metrics.parquet")
    # the default's base is a different recipe (seed 0) and still the one found for it
    assert prebuilt.find(prebuilt.recipe_hash(config_to_dict(cfg), rows)) == prebuilt.PREBUILT_DIR


def test_find_looks_in_every_shipped_folder_and_nowhere_else(tmp_path, monkeypatch):
    monkeypatch.delenv(prebuilt.ENV_DIR, raising=False)
    monkeypatch.setattr(prebuilt, "ASSETS_DIR", tmp_path)
    for name, recipe in (("a-base", "r1"), ("b-base2", "r2"), ("half-base", "r3")):
        (tmp_path / name / "model").mkdir(parents=True)
        (tmp_path / name / prebuilt.MANIFEST).write_text(json.dumps({"recipe": recipe}))
        if name != "half-base":  # a folder without its model is never used
            (tmp_path / name / "model" / "config.json").write_text("{}")
    assert prebuilt.find("r1") == tmp_path / "a-base" and prebuilt.find("r2") == tmp_path / "b-base2"
    assert prebuilt.find("r3") is None and prebuilt.find("r4") is None
    assert prebuilt.rebuild_command(tmp_path / "a-base") == prebuilt.REBUILD_COMMAND  # older manifests
    monkeypatch.setenv(prebuilt.ENV_DIR, str(tmp_path / "b-base2"))  # the override is the only folder
    assert prebuilt.find("r1") is None and prebuilt.find("r2") == tmp_path / "b-base2"
