"""The evaluation wing: Avg@k sampling of checkpoints on the configured benchmarks.

- :mod:`.evaluate`: samples per (checkpoint, benchmark), resumable parts, the curve sets;
- :mod:`.benchmarks`: the benchmark registry and loaders (PROMPTS-schema tables).

May import grading, engines, artifacts and the model loader (:mod:`asymcli.training.modeling`).
"""
