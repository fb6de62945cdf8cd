"""The rollout-engine interface: token ids in, token ids (+ log-probs) out.

Every backend (Hugging Face ``generate``, the torch static-cache engine, vLLM) implements
:class:`RolloutEngine`. The trainer and the evaluation stage only ever talk to this
interface, so a backend can be swapped from config (``train.engine``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, Callable

from ..errors import ConfigError


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    n: int = 1  # samples per prompt (the group size G in training)
    seed: int = 0  # makes a call reproducible given the same weights

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")


@dataclass
class Rollout:
    """One sampled response.

    ``token_ids`` are the generated tokens only (no prompt, no padding), ending with the
    EOS token when ``finish_reason == "stop"``. ``logprobs[t]`` is the log-probability of
    ``token_ids[t]`` under the sampling distribution (after temperature / top-p), for
    diagnostics; the trainer recomputes the policy's log-probs itself.
    """

    prompt_index: int
    sample_index: int
    token_ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" (EOS) | "length" (max_new_tokens)


class RolloutEngine(abc.ABC):
    """A generation backend bound to a policy model."""

    name: str = "abstract"

    @abc.abstractmethod
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[Rollout]:
        """Sample ``params.n`` responses per prompt.

        Returns ``len(prompt_ids) * n`` rollouts ordered by prompt, then sample.
        """

    def update_weights(self, model: Any, weights: WeightsFn | None = None) -> None:  # noqa: B027
        """Make the engine sample from ``model``'s current weights.

        Backends that share the trainer's module need nothing; others copy weights in
        place (never a new model per step). ``weights``: the training backend's stream of
        the module's *full* weights (``(name, tensor)`` pairs, e.g.
        ``distributed.TorchBackend.full_weights``). Engines that copy weights out of the
        module (vLLM) read them from it, so they never need to know how the trainer
        shards parameters (ZeRO-3); engines that read the module itself ignore it.
        """

    def close(self) -> None:  # noqa: B027
        """Release engine resources (GPU memory, worker processes)."""


#: A zero-argument callable giving ``(name, full tensor)`` pairs, one parameter at a time.
WeightsFn = Callable[[], Iterable[tuple[str, Any]]]

_ENGINES: dict[str, Callable[..., RolloutEngine]] = {}


def register_engine(name: str) -> Callable[[Callable[..., RolloutEngine]], Callable[..., RolloutEngine]]:
    def deco(factory: Callable[..., RolloutEngine]) -> Callable[..., RolloutEngine]:
        _ENGINES[name] = factory
        return factory

    return deco


def engine_names() -> list[str]:
    _load_builtin()
    return sorted(_ENGINES)


def make_engine(name: str, model: Any, tokenizer: Any, **kwargs: Any) -> RolloutEngine:
    """Build the rollout engine ``name`` ("hf", "static", "vllm") for ``model``."""
    _load_builtin()
    if name not in _ENGINES:
        raise ConfigError(f"unknown rollout engine '{name}'; known engines: {', '.join(sorted(_ENGINES))}")
    return _ENGINES[name](model, tokenizer, **kwargs)


def _load_builtin() -> None:
    # Import for the registration side effect; optional backends may be absent.
    import importlib

    for mod in ("hf", "static", "vllm_engine"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(__package__ or "asymcli.engines"):
                continue
            raise
