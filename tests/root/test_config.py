import dataclasses
import json
import math
import typing
from pathlib import Path

import pytest

from asymcli.config import (
    METHODS, Config, config_json_schema, config_from_dict, config_to_dict, grid_runs, load_config, parse_run_id,
    resolve_run, run_id,
)
from asymcli.config_fields import setting
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


# ---------------------------------------------------------------------------
# Config as data (issue 26): every key declares its type, default, range and description
# ---------------------------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"  # tests/data/, shared by the wings


def schema_paths(node: dict, prefix: str = "") -> set[str]:
    """Every key path of a JSON schema: ``train.schedule.target``, ``eval.benchmarks[].k``."""
    found = set()
    for key, prop in node.get("properties", {}).items():
        found |= {prefix + key} | schema_paths(prop, f"{prefix}{key}.")
        if "items" in prop:
            found |= schema_paths(prop["items"], f"{prefix}{key}[].")
        for alt in prop.get("anyOf", []):
            found |= schema_paths(alt, f"{prefix}{key}.")
    return found


def test_generated_schema_has_exactly_the_keys_it_had():
    recorded = {line for line in (DATA / "config_schema_keys.txt").read_text().splitlines()
                if line and not line.startswith("#")}
    assert schema_paths(config_json_schema()) == recorded


def test_defaults_and_fingerprints_are_unchanged():
    """Declaring the keys as data changed no default and so no rerun fingerprint."""
    from asymcli import pipeline

    snap = json.loads((DATA / "config_defaults.json").read_text())
    cfg = load_config(None)
    assert json.loads(json.dumps(config_to_dict(cfg))) == snap["defaults"]
    for key, expected in snap["fingerprints"].items():
        stage, _, rid = key.partition(":")
        if stage.startswith("base") and stage != "base":
            got = pipeline.fingerprint(cfg, "base", base=int(stage[4:]))
        else:
            got = pipeline.fingerprint(cfg, stage, rid or None)
        assert got == expected, key


def test_every_key_declares_a_description():
    def walk(cls: type, path: str) -> None:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{path}{f.name} has no description"
            tp = typing.get_type_hints(cls)[f.name]
            inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
            for section in (tp, inner):
                if dataclasses.is_dataclass(section):
                    walk(section, f"{path}{f.name}.")

    walk(Config, "")
    with pytest.raises(TypeError, match="needs its description"):
        setting(1)


@pytest.mark.parametrize("bad,message", [
    # one line, naming the key: the range is the one declared, and the hint says why
    ({"train": {"group_size": 1}}, "'train.group_size' must be >= 2 (a group needs at least two rollouts), got 1"),
    ({"train": {"rollout_shards": -1}}, "'train.rollout_shards' must be >= 0 (0 = one per process), got -1"),
    ({"train": {"top_p": 0.0}}, "'train.top_p' must be in (0, 1], got 0.0"),
    ({"train": {"lr": 2.0}}, "'train.lr' must be in (0, 1], got 2.0"),
    ({"train": {"temperature": float("inf")}}, "'train.temperature' must be a finite number >= 0, got inf"),
    ({"train": {"adam_eps": 0.0}}, "'train.adam_eps' must be a finite number > 0, got 0.0"),
    ({"train": {"kl_coef": float("nan")}}, "'train.kl_coef' must be a finite number, got nan"),
    ({"train": {"dual_clip_c": 1.0}}, "'train.dual_clip_c' must be > 1 (or null), got 1.0"),
    ({"train": {"deepspeed": {"stage": 4}}}, "'train.deepspeed.stage' must be 0, 1, 2 or 3, got 4"),
    ({"train": {"schedule": {"kappa_ema": 1.0}}}, "'train.schedule.kappa_ema' must be in [0, 1), got 1.0"),
    ({"eval": {"benchmarks": [{"name": "a"}, {"name": "b", "curve_limit": 0}]}},
     "'eval.benchmarks[1].curve_limit' must be >= 1 (or null for all problems), got 0"),
    ({"grading": {"rel_tol": 1.0}}, "'grading.rel_tol' must be in (0, 1) or null, got 1.0"),
    ({"resources": {"train_bundle": 0}}, "'resources.train_bundle' must be >= 1 (1 = one run per job), got 0"),
    ({"resources": {"eval_bundle": 0}}, "'resources.eval_bundle' must be >= 1 (1 = one run per job), got 0"),
    ({"methods": {"asym_adaptive": {"schedule": {"gain": -1.0}}}},
     "'methods.asym_adaptive.schedule.gain' must be a finite number >= 0, got -1.0"),
])
def test_declared_ranges_are_checked_with_one_line(bad, message):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(bad, "where")
    assert str(exc.value) == "where: " + message


def test_schema_and_reference_carry_the_declared_range():
    from asymcli import pipeline

    train = config_json_schema()["properties"]["train"]["properties"]
    assert train["group_size"]["minimum"] == 2 and train["lr"]["exclusiveMinimum"] == 0
    assert train["lr"]["maximum"] == 1 and train["deepspeed"]["properties"]["stage"]["enum"] == [0, 1, 2, 3]
    assert ("| `group_size` | int | `8` | >= 2 (a group needs at least two rollouts) | G rollouts per prompt |"
            in pipeline.config_docs_text())
