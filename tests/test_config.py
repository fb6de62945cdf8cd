import math

import pytest

from asymcli.config import (
    METHODS, Config, config_json_schema, config_from_dict, grid_runs, load_config, parse_run_id,
    resolve_run, run_id,
)
from asymcli.errors import ConfigError


def test_defaults_validate():
    cfg = load_config(None)
    assert isinstance(cfg, Config)
    assert cfg.train.group_size == 8


def test_unknown_key_names_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lrr: 1e-3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.lrr'"):
        load_config(p)


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line"):
        load_config(p)


def test_non_utf8(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


@pytest.mark.parametrize("bad,match", [
    ({"train": {"group_size": 1}}, "group_size"),
    ({"train": {"temperature": -1.0}}, "temperature"),
    ({"train": {"beta_pos": -0.1}}, "beta_pos"),
    ({"train": {"beta_pos": "x"}}, "beta_pos"),
    ({"train": {"beta_neg": float("nan")}}, "beta_neg"),
    ({"grid": {"betas": [[0.9]]}}, "grid.betas"),
    ({"grid": {"methods": ["nope"]}}, "unknown method 'nope'"),
    ({"eval": {"benchmarks": [{"name": "a", "k": 0}]}}, "k"),
    ({"model": {"kind": "hf"}}, "model.path"),
    ({"train": {"loss_agg": "weird"}}, "loss_agg"),
])
def test_bad_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(bad)


def test_resolve_methods():
    cfg = load_config(None)
    assert resolve_run(cfg, "grpo").estimator == "grpo"
    assert resolve_run(cfg, "clip_higher").clip_eps_high == 0.28
    assert resolve_run(cfg, "dr_grpo").loss_agg == "seq-mean-token-sum-norm"
    r = resolve_run(cfg, "asym", 0.7, 0.7, 3)
    assert (r.beta_pos, r.beta_neg, r.seed) == (0.7, 0.7, 3)
    assert resolve_run(cfg, "pos_only").beta_pos == 0.5 and resolve_run(cfg, "pos_only").beta_neg == 0.0
    over = config_from_dict({"methods": {"grpo_ent": {"entropy_coef": 0.005}}})
    assert resolve_run(over, "grpo_ent").entropy_coef == 0.005
    with pytest.raises(ConfigError, match="known methods"):
        resolve_run(cfg, "ppo")


def test_run_id_roundtrip():
    assert run_id("asym", 0.9, 0.4, 0) == "asym_bp0.9_bn0.4_s0"
    assert parse_run_id("asym_bp0.9_bn0.4_s0") == ("asym", 0.9, 0.4, 0)
    for m in METHODS:
        if m != "asym":
            assert parse_run_id(run_id(m, None, None, 2)) == (m, None, None, 2)
    with pytest.raises(ConfigError):
        parse_run_id("garbage")


def test_grid_runs_dedup():
    cfg = config_from_dict({"grid": {"betas": [[0.5, 0.5]], "grid": [0.5, 0.9], "methods": ["grpo"], "seeds": [0, 1]}})
    runs = grid_runs(cfg)
    ids = [run_id(*r) for r in runs]
    assert len(ids) == len(set(ids))
    assert "asym_bp0.5_bn0.5_s1" in ids and "asym_bp0.9_bn0.5_s0" in ids and "grpo_s1" in ids
    assert len(ids) == 2 * (1 + 4)


def test_json_schema_accepts_defaults():
    import dataclasses

    import jsonschema

    schema = config_json_schema()
    data = dataclasses.asdict(load_config(None))
    data["methods"] = {}
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"trainn": {}}, schema)
    assert math.isnan(METHODS["dr_grpo"]["beta_pos"])


def test_exponent_floats_without_a_dot_are_numbers():
    """PyYAML (YAML 1.1) reads `lr: 2e-4` as the string '2e-4'; the config takes it as 2e-4."""
    import yaml

    assert yaml.safe_load("lr: 2e-4") == {"lr": "2e-4"}  # the pitfall itself
    assert load_config(None, {"train": {"lr": "2e-4", "clip_eps_high": "2.8E-1"}}).train.lr == 2e-4
    with pytest.raises(ConfigError, match="'train.lr' must be a number, got '2e-4x'"):
        load_config(None, {"train": {"lr": "2e-4x"}})
    with pytest.raises(ConfigError, match="'train.steps' must be an integer"):
        load_config(None, {"train": {"steps": "1e2"}})  # integers stay strict
