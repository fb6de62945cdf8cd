"""Data-parallel training over several GPUs or nodes: DeepSpeed ZeRO behind a small backend.

Why it exists: the paper trains Qwen3-4B on 4 x H100 (verl, FSDP). Here the same run scales
with DeepSpeed ZeRO (stage 2 or 3, optional CPU offload) launched by the standard launchers
(``deepspeed``, ``torchrun``, ``srun``); nothing home-made runs the collectives. The trainer
calls a *backend* instead of raw torch in ``update()``, so one code path serves one CPU and
64 GPUs. ``make_backend`` returns :class:`TorchBackend` (exactly the single-process AdamW
step) unless the run asks for ZeRO or was launched with ``WORLD_SIZE > 1``.

Where the trainer uses it, in the code rather than a sketch here: ``Trainer.__init__``
(``init_distributed``, ``device_for``, ``make_backend``), ``Trainer.rollout`` / ``step_prompts``
(each rank samples its share, ``shard``; the seeds: ``Trainer.sampling``), ``Trainer.update``
(``set_lr``, ``compute``, ``backward``, ``step``, ``all_reduce_sum`` of the mini-batch's
denominator and statistics), ``Trainer.eval_greedy`` (each rank's share of a curve set, counts
summed) and :class:`~asymcli.training.checkpointing.CheckpointMixin` (every rank saves its
state; rank 0 writes the HF folder, the marker, run.json and metrics.parquet).

Why the loss needs no extra scaling in the trainer: with ``agg_denom`` the mini-batch-wide
denominator, the ranks' micro-batch losses add up to the single-process mini-batch loss;
DeepSpeed *averages* gradients over ranks, so :meth:`DeepSpeedBackend.backward` multiplies
by the world size. tests/training/test_distributed.py checks on the CPU (gloo, 2 processes, ZeRO 2
and 3) that the loss and the updated weights equal a single-process step.

Checkpoints under DeepSpeed: ``save_state`` writes ``deepspeed/`` (DeepSpeed's own
``save_checkpoint``, one shard per rank, tag ``state``) next to the consolidated HF folder;
``load_state`` restores it on the same world size (DeepSpeed's universal checkpoints convert
between sizes). The HF folder alone is enough to evaluate or to start a new run.

Departures: rollouts are sampled in seeded chunks (:meth:`Trainer.shards
<asymcli.training.trainer.Trainer.shards>`): a fixed ``train.rollout_shards`` gives the same run on
any number of processes that divides it; left at one chunk per process, a run on W ranks samples
differently from one on 1 rank (same distribution, other draws). CPU runs use gloo and skip
DeepSpeed's shared-memory collective op (a C++ build per machine that gloo does not need).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..errors import ConfigError

T = TypeVar("T")

OPTIMIZER_FILE = "optimizer.pt"
DS_DIR = "deepspeed"
DS_TAG = "state"


# ---------------------------------------------------------------------------
# Process group
# ---------------------------------------------------------------------------


def launched_distributed() -> bool:
    """Started by torchrun / deepspeed / srun-with-env with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world() -> int:
    """Number of data-parallel processes (1 when not distributed)."""
    return torch.distributed.get_world_size() if _initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if _initialized() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the process that writes artifacts, logs and progress."""
    return rank() == 0


def _skip_cpu_shm_op() -> None:
    # DeepSpeed's CPU backend JIT-compiles a shared-memory allreduce op on first use (minutes
    # on a small machine); gloo does the collectives without it.
    mod = importlib.import_module("deepspeed.comm.torch")
    mod.build_shm_op = lambda: None


def init_distributed(device: torch.device | str = "cpu", timeout_s: float | None = None) -> None:
    """Join the launcher's process group (no-op when single-process or already joined).

    nccl on CUDA, gloo on the CPU; binds this process to ``cuda:LOCAL_RANK``.
    """
    if not launched_distributed() or _initialized():
        return
    device = torch.device(device)
    cuda = device.type == "cuda" or (device.type != "cpu" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank())
    try:
        import deepspeed
    except ImportError:
        from datetime import timedelta

        kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        torch.distributed.init_process_group("nccl" if cuda else "gloo", **kwargs)
        return
    if not cuda:
        _skip_cpu_shm_op()
    kwargs: dict[str, Any] = {}
    if timeout_s:
        from datetime import timedelta

        kwargs["timeout"] = timedelta(seconds=timeout_s)
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", **kwargs)


def device_for(device: torch.device | str) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` for CUDA when distributed, else ``device``."""
    device = torch.device(device)
    if device.type == "cuda" and launched_distributed():
        return torch.device("cuda", local_rank())
    return device


def shard(items: Sequence[T]) -> list[T]:
    """This rank's contiguous share of ``items`` (all ranks get the same count).

    The trainer shards the step's prompts (whole groups stay on one rank, so group-wise
    advantages need no communication) and each mini-batch's prompts.
    """
    w, r = world(), rank()
    if len(items) % w:
        raise ConfigError(f"{len(items)} items cannot be split evenly over {w} processes: make "
                          f"train.prompts_per_step and train.mini_batch_prompts multiples of {w}")
    k = len(items) // w
    return list(items[r * k : (r + 1) * k])


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    """Sum of each value over the ranks (e.g. the mini-batch's token count, partial losses)."""
    if not _initialized() or world() == 1:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-item list when single-process)."""
    if not _initialized() or world() == 1:
        return [obj]
    out: list[Any] = [None] * world()
    torch.distributed.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if _initialized() and world() > 1:
        torch.distributed.barrier()


# ---------------------------------------------------------------------------
# ZeRO-3 helpers
# ---------------------------------------------------------------------------


def is_zero3(module: Any) -> bool:
    """True when the module's parameters are ZeRO-3 partitioned."""
    return any(hasattr(p, "ds_id") for p in module.parameters())


def iter_full_params(module: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, full tensor)`` for every parameter, gathering ZeRO-3 shards one at a time.

    Collective under ZeRO-3: every rank must iterate (each rank pushes to its own vLLM).
    The tensors are copies, valid after the gather is released.
    """
    if not is_zero3(module):
        for name, p in module.named_parameters():
            yield name, p.detach()
        return
    import deepspeed

    for name, p in module.named_parameters():
        with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
            full = p.detach().clone()
        yield name, full


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------


def fp32_masters(model: Any) -> Any:
    """Cast ``model``'s floating-point parameters to fp32 in place (the master weights) and
    return it; fp32 parameters are left alone.

    Every backend steps fp32 tensors: AdamW on bf16 weights rounds an update smaller than
    half a bf16 step (2^-8 relative) to nothing, i.e. most updates at lr 2e-6
    (tests/training/test_master_weights.py: ~4% of entries move instead of ~100%). Compute runs at
    ``model.dtype`` through autocast (the trainer's ``autocast()``), as verl's FSDP mixed
    precision does (fp32 parameters, bf16 compute). DeepSpeed's own bf16 mode is not used:
    it keeps fp32 masters as well (its FP16_Optimizer wrapper at stage 0, fp32 partitions at
    ZeRO 1-3), but accumulates the micro-batch gradients in bf16 by default; with fp32
    parameters every backend and stage takes the same path, with fp32 gradients.
    """
    low = {p.dtype for p in model.parameters() if p.is_floating_point() and p.dtype != torch.float32}
    if low:
        for p in model.parameters():
            if p.is_floating_point() and p.dtype != torch.float32:
                p.data = p.data.float()
    return model


def _adamw(params: Any, run: Any, fused: bool = False) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = dict(lr=run.lr, betas=(run.adam_beta1, run.adam_beta2), eps=run.adam_eps,
                                  weight_decay=run.weight_decay)
    if fused:
        kwargs["fused"] = True
    return torch.optim.AdamW(params, **kwargs)


class TorchBackend:
    """One process, plain torch: AdamW, ``clip_grad_norm_``. The trainer's original step."""

    def __init__(self, model: Any, run: Any):
        self.model = fp32_masters(model)
        self.run = run
        self.optimizer = _adamw(model.parameters(), run)

    def compute(self) -> contextlib.AbstractContextManager[Any]:
        """Context for forward/backward passes of ``model`` (nothing to do here)."""
        return contextlib.nullcontext()

    def full_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` of the module's state dict (tied weights under each name): what a
        rollout engine copies after a step."""
        return iter(self.model.state_dict().items())

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor, *, last: bool = True) -> None:
        loss.backward()

    def step(self) -> float:
        """Clip at ``grad_clip`` and take the AdamW step; returns the pre-clip grad norm.

        A non-finite norm skips the step (the trainer then stops the run; weights stay good).
        """
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.run.grad_clip))
        if math.isfinite(norm):
            self.optimizer.step()
        return norm

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def optimizer_state(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def save_state(self, folder: str | Path) -> None:
        torch.save(self.optimizer_state(), Path(folder) / OPTIMIZER_FILE)

    def load_state(self, folder: str | Path) -> None:
        path = Path(folder) / OPTIMIZER_FILE
        if path.exists():
            self.load_optimizer_state(torch.load(path, map_location="cpu", weights_only=False))
            return
        legacy = Path(folder) / "trainer_state.pt"  # checkpoints from before the backend
        if legacy.exists():
            state = torch.load(legacy, map_location="cpu", weights_only=False)
            if "optimizer" in state:
                self.load_optimizer_state(state["optimizer"])

    def save_hf(self, folder: str | Path, tokenizer: Any = None) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)


def deepspeed_config(run: Any, *, bf16: bool = False, client_optimizer: bool = True) -> dict[str, Any]:
    """The DeepSpeed config dict of a run (``run.deepspeed`` + the optimizer fields of ``run``).

    One micro-batch per "DeepSpeed step": the trainer does its own gradient accumulation and
    marks the last micro-batch (:meth:`DeepSpeedBackend.backward`), so DeepSpeed's batch
    bookkeeping stays out of the way. Clipping uses ``grad_clip`` on the global norm.
    """
    ds = run.deepspeed
    if ds.offload_params and ds.stage != 3:
        raise ConfigError(f"train.deepspeed.offload_params needs stage 3, got stage {ds.stage}")
    if ds.offload_optimizer and ds.stage == 0:
        raise ConfigError("train.deepspeed.offload_optimizer needs a ZeRO stage (1, 2 or 3), got 0")
    zero: dict[str, Any] = {"stage": ds.stage, "contiguous_gradients": ds.stage >= 2, "overlap_comm": False}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if ds.stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    cfg: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": run.grad_clip,
        "zero_optimization": zero,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if bf16:
        cfg["bf16"] = {"enabled": True}
    if client_optimizer:
        cfg["zero_allow_untested_optimizer"] = True
        cfg["zero_force_ds_cpu_optimizer"] = False
    else:
        # Offloaded optimizer states: DeepSpeed's CPU Adam (C++ op, built once per machine).
        cfg["optimizer"] = {"type": "AdamW", "params": {
            "lr": run.lr, "betas": [run.adam_beta1, run.adam_beta2], "eps": run.adam_eps,
            "weight_decay": run.weight_decay}}
    return cfg


class DeepSpeedBackend:
    """DeepSpeed ZeRO (stage 0-3) over the launcher's processes.

    ``model`` is the HF module (forward passes, saving, pushing weights to vLLM); the
    DeepSpeed engine that owns the optimizer is ``engine``.
    """

    def __init__(self, model: Any, run: Any):
        import deepspeed

        self.run = run
        model = fp32_masters(model)  # fp32 parameters at every stage: no DeepSpeed bf16/fp16 mode
        offload = run.deepspeed.offload_optimizer
        optimizer = None if offload else _adamw(model.parameters(), run, fused=next(model.parameters()).is_cuda)
        self.config = deepspeed_config(run, client_optimizer=not offload)
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=self.config,
            model_parameters=None if optimizer is not None else model.parameters())
        self.model = self.engine.module
        self.stage = run.deepspeed.stage

    def full_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, full tensor)`` of every parameter, ZeRO-3 shards gathered one at a time
        (collective: every rank iterates, each pushing to its own colocated engine); below
        stage 3 the module's state dict, as :class:`TorchBackend`."""
        if is_zero3(self.model):
            return iter_full_params(self.model)
        return iter(self.model.state_dict().items())

    def compute(self) -> contextlib.AbstractContextManager[Any]:
        """Context for every forward (and its backward) through ``model``.

        Under ZeRO-3 it gathers the full parameters for its duration: asymcli's log-prob
        path reads weights directly (a functional Qwen forward and a chunked LM head), not
        through module calls, so DeepSpeed's per-module fetch hooks never fire. ZeRO-3 then
        saves memory between updates (optimizer states, gradients, and the parameters while
        vLLM samples) but holds one full fp32 copy of the weights during the update, as
        ZeRO-2 does. Stages 0-2: nothing to do.
        """
        if self.stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None)

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    def backward(self, loss: torch.Tensor, *, last: bool = True) -> None:
        """Accumulate ``loss``'s gradient; ``last=True`` on the mini-batch's last micro-batch.

        DeepSpeed averages gradients over ranks while the ranks' losses (mini-batch-wide
        denominator) add up to the mini-batch loss: scale by the world size to sum.
        """
        # What DeepSpeedEngine.forward does first; our forwards bypass it (plain module calls
        # and a functional forward), and without it ZeRO-3 overwrites instead of accumulating
        # the gradients of a mini-batch's earlier micro-batches.
        clear = getattr(self.engine.optimizer, "clear_backward_seen_flag", None)
        if callable(clear):
            clear()
        self.engine.set_gradient_accumulation_boundary(last)
        self.engine.backward(loss * world(), scale_wrt_gas=False)

    def step(self) -> float:
        """Clip (global norm, ``grad_clip``) and step; returns the pre-clip global grad norm.

        Stage 0 with fp32 parameters has no optimizer wrapper, and DeepSpeed then records no
        norm: it is taken here from the gradients, all-reduced by the last ``backward``; a
        non-finite norm skips the step, as :class:`TorchBackend` does.
        """
        self.engine.set_gradient_accumulation_boundary(True)
        if self.stage == 0:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            if not math.isfinite(norm):
                self.engine.zero_grad()
                return norm
            self.engine.step()
            return norm
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def set_lr(self, lr: float) -> None:
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr

    def save_state(self, folder: str | Path) -> None:
        """DeepSpeed's own sharded checkpoint into ``folder/deepspeed`` (all ranks call)."""
        self.engine.save_checkpoint(str(Path(folder) / DS_DIR), tag=DS_TAG, save_latest=False)

    def load_state(self, folder: str | Path) -> None:
        path = Path(folder) / DS_DIR
        if not path.exists():
            raise ConfigError(f"{folder}: no {DS_DIR}/ optimizer state to resume a DeepSpeed run from "
                              "(was the checkpoint written without DeepSpeed?)")
        load_path, _ = self.engine.load_checkpoint(str(path), tag=DS_TAG, load_optimizer_states=True,
                                                   load_lr_scheduler_states=False, load_module_strict=True)
        if load_path is None:
            raise ConfigError(f"{path}: DeepSpeed could not load checkpoint tag '{DS_TAG}'")

    def save_hf(self, folder: str | Path, tokenizer: Any = None) -> None:
        """A loadable HF folder on rank 0, consolidated from ZeRO-3 shards (all ranks call)."""
        state = None
        if self.stage == 3:
            consolidate = getattr(self.engine, "_zero3_consolidated_16bit_state_dict", None)
            if callable(consolidate):
                state = consolidate()  # collective; the full state dict on rank 0
            else:  # builds without it: gather parameter by parameter (collective too)
                state = dict(iter_full_params(self.model))
        if is_main():
            Path(folder).mkdir(parents=True, exist_ok=True)
            kwargs = {"state_dict": state} if state is not None else {}
            self.model.save_pretrained(folder, safe_serialization=True, **kwargs)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
        barrier()


def make_backend(run: Any, model: Any) -> TorchBackend | DeepSpeedBackend:
    """TorchBackend for one process without ZeRO; DeepSpeedBackend otherwise.

    A launch with ``WORLD_SIZE > 1`` and ``deepspeed.stage == 0`` is plain data parallel
    through DeepSpeed's stage 0.
    """
    if run.deepspeed.stage == 0 and not launched_distributed():
        return TorchBackend(model, run)
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise ConfigError("train.deepspeed.stage > 0 or a multi-process launch needs DeepSpeed: "
                          "pip install 'asym[deepspeed]'") from None
    if not _initialized():
        if launched_distributed():
            init_distributed(next(model.parameters()).device)
        else:
            # ZeRO on one process (e.g. CPU offload of a model too big for one GPU).
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
            os.environ.setdefault("RANK", "0")
            os.environ.setdefault("LOCAL_RANK", "0")
            os.environ.setdefault("WORLD_SIZE", "1")
            init_distributed_single(next(model.parameters()).device)
    return DeepSpeedBackend(model, run)


def init_distributed_single(device: torch.device | str) -> None:
    """A one-process group (ZeRO with offload on a single GPU or CPU)."""
    import deepspeed

    cuda = torch.device(device).type == "cuda"
    if not cuda:
        _skip_cpu_shm_op()
    with contextlib.suppress(RuntimeError):
        deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
