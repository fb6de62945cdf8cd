"""The embedded default: what `asym` trains when the config names no model or data set.

- :mod:`.tasks`: the arithmetic task (prompts, tiers, worked solutions);
- :mod:`.tiny`: the tiny Qwen3-shaped model and its character tokenizer;
- :mod:`.sft`: the supervised warm-up that makes the base;
- :mod:`.prebuilt`: the bases shipped in ``assets/*/`` (the default's and the headline's three), each used when its recipe matches.

May import config, artifacts and engines; the training and evaluation wings import it.
"""
