"""The evaluation wing: Avg@k sampling of checkpoints on the configured benchmarks.

- :mod:`.evaluate`: samples per (checkpoint, benchmark), resumable parts, the curve sets;
- :mod:`.benchmarks`: the benchmark registry and loaders (PROMPTS-schema tables).

May import sampling (model loading, engine settings, decode-and-grade, curve sets), grading,
engines and the root; never training.
"""
