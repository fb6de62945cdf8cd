"""Stage `base`: prompts.parquet -> base/model/ + base/sft_metrics.parquet + base/base_stats.parquet.

For the embedded default (``model.kind == "tiny"``): build the character tokenizer and a
fresh tiny Qwen3, train it on the training rows' solutions (worked or answer-only, see
:mod:`asymcli.embedded.tasks`; rows with an empty ``solution`` are RL-only), save it atomically as
an HF folder. For
``model.kind == "hf"`` there is nothing to train: the checkpoint at ``model.path`` is the
base model and only its statistics are recorded.

Then, for both: the distribution of group accuracy at RL start (``BASE_STATS``): for
``base.probe_prompts`` training prompts, ``train.group_size`` samples each at the RL
sampling settings, graded, counted per number of correct samples k = 0..G.

Beside it, per family, the constant-answer baseline (:func:`constant_answer_baseline`): the
family's most common gold answer among its training rows, and the share of its training and
held-out rows that this one answer earns the reward on. A family where it does as well as the
base rewards RL for answering it to everything (letter_counting: '1' is right on 56% of the
training rows, and RL drove the policies to it), so the stage warns.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from asymcli import artifacts
from asymcli.config import Config, config_to_dict
from asymcli.errors import ConfigError, DataError
from asymcli.pipeline.layout import Layout
from asymcli.platform import platform_info

#: The supervised warm-up curve, one row per optimizer step.
SFT_METRICS = pa.schema(
    [
        ("step", pa.int64()),
        ("loss", pa.float64()),  # mean cross-entropy over the batch's response tokens
        ("lr", pa.float64()),
        ("seconds", pa.float64()),  # wall time since the warm-up started
    ]
)


def default_paths(cfg: Config) -> dict[str, Path]:
    layout = Layout.of(cfg)
    return {"prompts": layout.prompts, "out_dir": layout.base_dir}


def _device(cfg: Config) -> str:
    import torch

    if cfg.train.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.train.device


def probe_rows(rows: list[dict[str, str]], n: int, seed: int) -> list[dict[str, str]]:
    """A fixed random subset of ``n`` training rows (all rows if fewer)."""
    if n >= len(rows):
        return list(rows)
    return random.Random(f"probe:{seed}").sample(rows, n)


def family_of(row: dict[str, str]) -> str:
    """A row's family, as the accuracy lines count it: its tier or generator, else its source."""
    return row["difficulty"] or row["source"]


def group_accuracy_counts(model: Any, tokenizer: Any, rows: list[dict[str, str]], cfg: Config,
                          seed: int, per_family: dict[str, list[int]] | None = None) -> list[int]:
    """counts[k] = number of prompts with k of ``train.group_size`` samples correct;
    ``per_family`` (filled when given): family (tier or generator) -> [correct samples, samples]."""
    from asymcli.engines.base import SamplingParams, make_engine
    from asymcli.sampling.grade import decode_and_grade, make_grader
    from asymcli.sampling.models import encode_prompts

    G = cfg.train.group_size
    ids = encode_prompts(tokenizer, [r["prompt"] for r in rows], cfg.model)
    engine = make_engine("hf", model, tokenizer)
    params = SamplingParams(temperature=cfg.train.temperature, top_p=cfg.train.top_p,
                            max_new_tokens=cfg.train.max_new_tokens, n=G, seed=seed)
    rollouts = engine.generate(ids, params)
    _, verdicts = decode_and_grade(tokenizer, make_grader(cfg.grading), rollouts, rows)
    correct = [0] * len(rows)
    for r, v in zip(rollouts, verdicts):
        correct[r.prompt_index] += bool(v.correct)
    counts = [0] * (G + 1)
    for c in correct:
        counts[c] += 1
    if per_family is not None:  # family -> [correct samples, samples]
        for row, c in zip(rows, correct):
            acc = per_family.setdefault(family_of(row), [0, 0])
            acc[0] += c
            acc[1] += G
    return counts


#: A family is usable for RL when the base solves this share of its samples: mixed groups.
USABLE = (0.2, 0.8)


#: Rows graded per family and split for the constant-answer baseline (a fixed random subset
#: beyond it, and the line says so). Grading is one pass and cheap: a generator's score_answer is
#: (7898 letter_counting rows: 0.6 s), and the math grader caches (answer, gold) pairs, so a gold
#: repeated costs one check. The cap bounds families whose golds math-verify parses one by one.
CONSTANT_CAP = 10_000


def _share_right(answer: str, rows: Sequence[dict[str, str]], grader: Any, cap: int) -> dict[str, Any]:
    """How many of ``rows`` (at most ``cap``, a fixed random subset) give ``answer`` the reward."""
    from asymcli.grading import grade_rows  # lazy: math-verify

    graded = list(rows) if len(rows) <= cap else random.Random("constant-answer").sample(list(rows), cap)
    # The answer as the warm-up taught the model to give it (a final box), graded by the reward's
    # own path: a reasoning-gym row by its generator's score_answer and grading.rg_threshold.
    verdicts = grade_rows(grader, [f"\\boxed{{{answer}}}"] * len(graded), graded)
    right = sum(bool(v.correct) for v in verdicts)
    return {"right": right, "graded": len(graded), "rows": len(rows),
            "frac": right / len(graded) if graded else None}


def constant_answer_baseline(train: Sequence[dict[str, str]], heldout: Sequence[dict[str, str]], grader: Any,
                             cap: int = CONSTANT_CAP) -> dict[str, dict[str, Any]]:
    """Per family (:func:`family_of`): ``answer``, its most common gold answer among its training
    rows (ties: the smallest string), and ``train`` / ``heldout``: ``{right, graded, rows, frac}``,
    how many of those rows that one answer, boxed, earns the reward on under ``grader`` (the RL
    reward's: ``make_grader(cfg.grading)``); ``frac`` is None for a split without the family's rows.

    A policy that ignores the prompt and gives this answer scores ``frac``: the floor that RL's
    reward must beat before a higher reward means more than a collapse to one answer."""
    by_split: dict[str, dict[str, list[dict[str, str]]]] = {"train": {}, "heldout": {}}
    for split, rows in (("train", train), ("heldout", heldout)):
        for row in rows:
            by_split[split].setdefault(family_of(row), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for fam, rows in sorted(by_split["train"].items()):
        counts = Counter(r["answer"] for r in rows)
        answer = min(counts, key=lambda a: (-counts[a], a))
        out[fam] = {"answer": answer, "train": _share_right(answer, rows, grader, cap),
                    "heldout": _share_right(answer, by_split["heldout"].get(fam, []), grader, cap)}
    return out


def _shown(answer: str, width: int = 40) -> str:
    return repr(answer if len(answer) <= width else answer[:width - 3] + "...")


def _share(part: dict[str, Any], split: str) -> str:
    if part["frac"] is None:
        return f"no {split} prompts"
    of = f"{part['graded']} graded of {part['rows']}" if part["graded"] < part["rows"] else str(part["rows"])
    return f"{part['frac']:.0%} of {split} prompts ({part['right']}/{of})"


def constant_answer_lines(fam: str, acc: float, baseline: dict[str, Any]) -> list[str]:
    """The family's constant-answer line, and a warning when that answer does as well as the base
    (``acc``: its sample accuracy): a warning, not a refusal, since the family may still be wanted."""
    answer, train = _shown(baseline["answer"]), baseline["train"]
    lines = [f"the most common answer on {fam}, {answer}, alone is right on {_share(train, 'training')}; "
             f"{_share(baseline['heldout'], 'held-out')}"]
    if train["frac"] and train["frac"] >= acc:  # a constant right on no prompt is no shortcut
        lines.append(f"warning: on {fam}, always answering {answer} is rewarded on {train['frac']:.3f} of "
                     f"training prompts, at least the base's accuracy {acc:.3f}: RL can raise the reward by "
                     f"always giving that answer, so this family's accuracy comparisons may measure a "
                     f"collapse to it; the family is usable only if you accept that")
    return lines


def accuracy_lines(per_family: dict[str, list[int]], source: str,
                   constant: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """One line per family of the probe: the base's sample accuracy and whether RL can use it;
    with ``constant`` (:func:`constant_answer_baseline`), each followed by its constant-answer lines."""
    lines = []
    for fam, (ok, n) in sorted(per_family.items()):
        acc = ok / n if n else 0.0
        if ok == 0:
            verdict = (f"the base cannot solve it at all: every RL group would fail and carry no signal; "
                       f"drop it, make it easier ({source}) or warm up longer (base.steps)")
        elif acc < USABLE[0]:
            verdict = "below 20%: RL groups would be mostly all-failed"
        elif acc > USABLE[1]:
            verdict = "above 80%: RL groups would be mostly all-solved"
        else:
            verdict = "usable for RL (20-80%: mixed groups)"
        lines.append(f"base accuracy on {fam}: {acc:.3f} ({ok}/{n} samples); {verdict}")
        if constant and fam in constant:
            lines.extend(constant_answer_lines(fam, acc, constant[fam]))
    return lines


def run(cfg: Config, prompts: Path | None = None, out_dir: Path | None = None,
        log: Callable[[str], None] | None = None, *, fresh: bool = False) -> dict[str, Path]:
    """Run the base stage; returns the paths written (``model`` is the base model folder).

    The tiny model's warm-up is skipped when the config's recipe matches the prebuilt base
    shipped with asym (:mod:`asymcli.embedded.prebuilt`) and ``base.prebuilt`` is on; ``fresh`` always
    warms up."""
    import torch

    from asymcli.embedded import prebuilt, sft, tiny
    from asymcli.sampling.grade import make_grader
    from asymcli.sampling.models import encode_prompts, load_policy
    from stages.train import load_splits  # the trainer's own split of the prompts (0.1 s of imports here)

    paths = default_paths(cfg)
    prompts = Path(prompts) if prompts else paths["prompts"]
    out_dir = Path(out_dir) if out_dir else paths["out_dir"]
    rows, heldout = load_splits(prompts)
    meta = artifacts.provenance(config_to_dict(cfg), stage="base", prompts=str(prompts))
    device = _device(cfg)
    t0 = time.perf_counter()
    metrics: list[dict[str, float]] = []
    if cfg.model.kind == "tiny":
        if cfg.base.threads:
            torch.set_num_threads(cfg.base.threads)
        meta["platform"] = platform_info()  # with the warm-up's threads
        supervised = [r for r in rows if r["solution"]]
        if not supervised:
            raise DataError(f"{prompts}: no training row has a solution to warm the tiny model up on")
        recipe = prebuilt.recipe_hash(config_to_dict(cfg), supervised)
        meta["base_recipe"] = recipe
        shipped = prebuilt.find(recipe) if cfg.base.prebuilt and not fresh else None
        if shipped is not None:
            # the same weights this warm-up would produce (same recipe), built once and shipped
            model_path = prebuilt.copy_model(shipped, out_dir / "model")
            model, tokenizer = load_policy(model_path, cfg.model, device=device)
            metrics = artifacts.read_parquet(shipped / "sft_metrics.parquet", SFT_METRICS).to_pylist()
            meta["base_source"] = f"prebuilt {recipe[:12]} ({shipped})"
            meta["warmup_platform"] = (prebuilt.manifest(shipped) or {}).get("platform")  # who warmed it up
            if log:
                log(f"base: using the prebuilt warm-up shipped with asym (recipe {recipe[:12]}, {shipped.name}; "
                    f"`{prebuilt.rebuild_command(shipped)}` rebuilds it)")
        else:
            tokenizer = tiny.build_tokenizer(cfg.model.max_position)
            model = tiny.build_model(cfg.model, tokenizer, seed=cfg.base.seed).to(device)
            examples = sft.build_examples(
                tokenizer, encode_prompts(tokenizer, [r["prompt"] for r in supervised], cfg.model),
                [r["solution"] for r in supervised], max_length=cfg.model.max_position,
            )
            metrics = sft.supervised_warmup(model, examples, cfg.base, tokenizer.pad_token_id, log=log)
            model_path = tiny.save_policy(model, tokenizer, out_dir / "model")
            meta["base_source"] = "warmed up here"
        meta["model_params"] = tiny.n_params(model)
    else:
        model_path = Path(str(cfg.model.path))
        model, tokenizer = load_policy(model_path, cfg.model, device=device)
    sft_seconds = time.perf_counter() - t0
    sft_path = artifacts.write_parquet(out_dir / "sft_metrics.parquet", metrics, SFT_METRICS,
                                       dict(meta, seconds=sft_seconds))
    probe = probe_rows(rows, cfg.base.probe_prompts, cfg.base.seed)
    per_family: dict[str, list[int]] = {}
    counts = group_accuracy_counts(model, tokenizer, probe, cfg, seed=cfg.base.seed, per_family=per_family)
    G = cfg.train.group_size
    meta["base_accuracy"] = {fam: ok / n for fam, (ok, n) in per_family.items() if n}
    constant = constant_answer_baseline(rows, heldout, make_grader(cfg.grading))
    meta["constant_answer"] = constant
    stats_rows = [{"k_correct": k, "groups": n, "group_size": G} for k, n in enumerate(counts)]
    stats_path = artifacts.write_parquet(out_dir / "base_stats.parquet", stats_rows, artifacts.BASE_STATS,
                                         dict(meta, seconds=time.perf_counter() - t0))
    if log:
        none, all_ = counts[0] / len(probe), counts[G] / len(probe)
        log(f"base: {time.perf_counter() - t0:.0f}s; groups none-solved {none:.2f}, "
            f"mixed {1 - none - all_:.2f}, all-solved {all_:.2f}")
        source = "task.generators[].config" if cfg.task.kind == "reasoning_gym" else "task.tiers"
        for line in accuracy_lines(per_family, source, constant):
            log(f"base: {line}")
    return {"model": model_path, "sft_metrics": sft_path, "base_stats": stats_path}


def shipped_name(cfg: Config, config_path: str, base_seed: int | None) -> tuple[str, str]:
    """The shipped folder's name and the command that rebuilds it: one base per config
    (``default-base``), or one per base seed of ``grid.bases`` (``headline-base2``)."""
    several = base_seed is not None and len(cfg.grid.bases) > 1
    name = f"{cfg.name}-base{base_seed}" if several else f"{cfg.name}-base"
    rebuild = (f"asym base --config {config_path}" + (f" --base-seed {base_seed}" if several else "")
               + " --write-prebuilt")
    return name, rebuild


def ship_prebuilt(cfg: Config, paths: dict[str, Path], config_path: str, base_seed: int | None = None) -> Path:
    """Ship a freshly warmed-up base (this stage's ``paths``, made from ``config_path``) as a
    prebuilt base (a folder of asymcli/embedded/assets/ named by :func:`shipped_name`), recording
    the command that rebuilds it."""
    import torch

    from asymcli.embedded import prebuilt

    name, rebuild = shipped_name(cfg, config_path, base_seed)
    if cfg.model.kind != "tiny":
        raise ConfigError("--write-prebuilt ships a warmed-up tiny model; model.kind is 'hf'")
    meta = artifacts.read_metadata(paths["sft_metrics"])
    recipe = meta["base_recipe"]
    info = {"torch": torch.__version__, "threads": cfg.base.threads, "seed": cfg.base.seed,
            "warmup_seconds": meta.get("seconds"), "git_commit": artifacts.git_commit(),
            "platform": meta.get("platform"), "numerics": config_to_dict(cfg.numerics)}
    return prebuilt.write(Path(paths["model"]).parent, recipe, info, prebuilt.folder_for(name), rebuild)
