"""The training wing: one RL run from a base model to checkpoints and metrics.parquet.

- :mod:`.trainer`: the RL loop (rollout, advantages, update, log) and its checkpoints;
- :mod:`.policy`: packing rollouts and the policy's per-token log-probs;
- :mod:`.distributed`: the update backends (plain AdamW, DeepSpeed ZeRO);
- :mod:`.reruns`: when a config edit or damage means a run starts over.

May import sampling (model loading, engine settings, decode-and-grade, curve sets), algorithm,
grading, engines and the root; never evaluation, analysis or pipeline.
"""
