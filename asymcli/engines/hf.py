"""Hugging Face ``generate`` rollout backend: the reference engine (CPU default, any model).

It shares the trainer's module, so weight updates need no copy. Prompts are left-padded
and the n samples of a prompt are expanded in the batch (no prefix sharing: that is the
static engine's job on GPUs).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Rollout, RolloutEngine, SamplingParams, register_engine


class HFEngine(RolloutEngine):
    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 512, **_: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(self.eos_ids))

    def update_weights(self, model: Any, weights: Any = None) -> None:
        self.model = model  # shares the module: ``weights`` is not needed

    @torch.no_grad()
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[Rollout]:
        flat = [(i, s) for i in range(len(prompt_ids)) for s in range(params.n)]
        out: list[Rollout] = []
        was_training = self.model.training
        self.model.eval()
        # One generator call per chunk; the global RNG is seeded once per call so a call
        # is reproducible given the weights, whatever the chunking.
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(params.seed)
        try:
            for start in range(0, len(flat), self.batch_size):
                chunk = flat[start : start + self.batch_size]
                out.extend(self._generate_chunk([prompt_ids[i] for i, _ in chunk], chunk, params))
        finally:
            torch.random.set_rng_state(gen_state)
            if was_training:
                self.model.train()
        return out

    def _generate_chunk(self, prompts: list[list[int]], index: list[tuple[int, int]],
                        params: SamplingParams) -> list[Rollout]:
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, p in enumerate(prompts):  # left padding: generation continues from the right edge
            input_ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            attn[r, width - len(p):] = 1
        greedy = params.temperature == 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=params.max_new_tokens,
            do_sample=not greedy,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            output_scores=True,
            return_dict_in_generate=True,
            top_k=None,
        )
        if not greedy:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(temperature=None, top_p=None)
        res = self.model.generate(input_ids=input_ids.to(device), attention_mask=attn.to(device), **kwargs)
        new = res.sequences[:, width:].cpu()
        # scores are the processed logits (after temperature/top-p): their log-softmax is
        # the distribution each token was sampled from.
        scores = torch.stack(res.scores, dim=1).float().cpu()  # [B, T_new, V]
        logprobs = torch.log_softmax(scores, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        rollouts = []
        for r, (pi, si) in enumerate(index):
            ids = new[r].tolist()
            finish = "length"
            for t, tok in enumerate(ids):
                if tok in self.eos_ids:
                    ids = ids[: t + 1]
                    finish = "stop"
                    break
            rollouts.append(Rollout(pi, si, ids, logprobs[r, : len(ids)].tolist(), finish))
        return rollouts


@register_engine("hf")
def _make(model: Any, tokenizer: Any, **kwargs: Any) -> HFEngine:
    return HFEngine(model, tokenizer, **kwargs)
