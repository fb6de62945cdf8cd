"""The rollout engine's settings: one function for the trainer's engine and the evaluation's."""

from __future__ import annotations

from typing import Any

import torch

from ..config import TrainConfig


def engine_kwargs(name: str, train: TrainConfig, *, model_path: str, dtype: torch.dtype,
                  batch_size: int | None = None, static_dtype: bool = True) -> dict[str, Any]:
    """Keyword arguments of :func:`asymcli.engines.base.make_engine` for engine ``name``.

    The engines sample at the compute precision ``dtype``, not the fp32 master weights': vLLM
    would otherwise read the dtype from the checkpoint's config (fp32 -> fp16 under "auto").
    ``batch_size``: the HF engine's batch (the evaluation's ``eval.batch_size``; None = its
    default). ``static_dtype``: pass ``dtype`` to the static engine (the trainer does; the
    evaluation leaves it at the engine's "auto", as it always has).
    """
    compute = str(dtype).removeprefix("torch.")
    if name == "vllm":
        return {"gpu_memory_utilization": train.vllm_gpu_memory_utilization, "model_path": str(model_path),
                "dtype": compute}
    if name == "static":
        return {"dtype": compute} if static_dtype else {}
    if name == "hf" and batch_size is not None:
        return {"batch_size": batch_size}
    return {}
