"""Advantage estimators: hand-computed values, loop references, endpoint conventions,
registry behaviour and properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asymcli.algorithm import advantages as A
from asymcli.algorithm.advantages import (
    ESTIMATORS,
    a_neg,
    a_pos,
    channel_values,
    closed_form_channels,
    compute_advantages,
    estimator_names,
    flipped_a_neg,
    flipped_a_pos,
    get_estimator,
    lin_interp,
    resolve_betas,
    w_neg,
    w_pos,
)

torch.set_num_threads(1)

BETA_FAMILY = ["asym", "reinforce", "pos_only", "neg_only", "ent_decrease", "ent_increase"]
REAL_VALUED = ["grpo", "grpo_unbiased", "dr_grpo"]
ALL = BETA_FAMILY + REAL_VALUED


def adv(name, rewards, ids, **kw):
    return compute_advantages(name, torch.tensor(rewards, dtype=torch.float64),
                              torch.tensor(ids, dtype=torch.int64), **kw)


def group_of(k: int, G: int) -> list[float]:
    return [1.0] * k + [0.0] * (G - k)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_registry_names():
    assert set(estimator_names()) == set(ALL)
    assert list(ESTIMATORS) == estimator_names()
    assert get_estimator("asym").name == "asym"


def test_unknown_estimator_lists_known():
    with pytest.raises(ValueError, match=r"unknown estimator 'x'; known estimators: asym, reinforce, grpo"):
        compute_advantages("x", torch.zeros(2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="unknown estimator"):
        get_estimator("GRPO")


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError, match="already registered"):
        A.register_estimator("asym", channels=A._grpo_channels, summary="", equation="",
                             beta_mode="none", default_betas=(None, None), binary_only=False)(A._dr_grpo)


def test_estimator_object_is_callable():
    r, g = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    assert torch.equal(ESTIMATORS["grpo"](r, g), compute_advantages("grpo", r, g))


# ---------------------------------------------------------------------------
# Betas
# ---------------------------------------------------------------------------


def test_default_and_fixed_betas():
    assert resolve_betas("asym") == (0.9, 0.4)
    assert resolve_betas("asym", 0.7, 0.0) == (0.7, 0.0)
    assert resolve_betas("grpo") == (0.5, 0.5)
    assert resolve_betas("grpo", 0.5, 0.5) == (0.5, 0.5)
    assert resolve_betas("reinforce", float("nan"), None) == (0.0, 0.0)
    assert resolve_betas("pos_only") == (0.5, 0.0)
    assert resolve_betas("neg_only") == (0.0, 0.5)
    assert resolve_betas("ent_decrease") == (0.5, 0.5)
    # Beta-free estimators ignore what they are given (the config writes NaN for Dr.GRPO).
    assert resolve_betas("dr_grpo", float("nan"), float("nan")) == (None, None)
    assert resolve_betas("grpo_unbiased", 0.9, 0.4) == (None, None)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "x"])
@pytest.mark.parametrize("name", ["asym", "ent_decrease", "ent_increase"])
def test_bad_betas_rejected(name, bad):
    with pytest.raises(ValueError, match="beta_pos must be"):
        adv(name, [1, 0], [0, 0], beta_pos=bad)
    with pytest.raises(ValueError, match="beta_neg must be"):
        adv(name, [1, 0], [0, 0], beta_neg=bad)


def test_fixed_estimator_rejects_other_betas():
    with pytest.raises(ValueError, match="estimator 'grpo' fixes beta_pos=0.5, got 0.9"):
        adv("grpo", [1, 0], [0, 0], beta_pos=0.9)
    with pytest.raises(ValueError, match="fixes beta_neg=0"):
        adv("pos_only", [1, 0], [0, 0], beta_neg=0.4)


# ---------------------------------------------------------------------------
# Input checks and dtypes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BETA_FAMILY)
def test_beta_family_rejects_non_binary_rewards(name):
    with pytest.raises(ValueError, match=r"binary rewards .* got 0.5 at index 2"):
        adv(name, [1, 0, 0.5, 1], [0, 0, 0, 0])


@pytest.mark.parametrize("name", REAL_VALUED)
def test_real_valued_rewards_accepted(name):
    out = adv(name, [0.2, 0.9, 0.4, 3.0, 1.0], [7, 7, 7, 1, 1])
    assert torch.isfinite(out).all()


def test_non_finite_reward_rejected():
    with pytest.raises(ValueError, match="not finite"):
        adv("grpo", [1.0, float("nan")], [0, 0])


def test_shape_and_dtype_checks():
    with pytest.raises(ValueError, match="shape"):
        compute_advantages("grpo", torch.zeros(3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        compute_advantages("grpo", torch.zeros(2), torch.zeros(2, dtype=torch.int32))


def test_output_dtype():
    ids = torch.tensor([0, 0, 1, 1])
    assert compute_advantages("asym", torch.tensor([1, 0, 1, 1]), ids).dtype == torch.get_default_dtype()
    assert compute_advantages("asym", torch.tensor([True, False, True, True]), ids).dtype == torch.get_default_dtype()
    assert compute_advantages("grpo", torch.tensor([1.0, 0, 1, 1], dtype=torch.float64), ids).dtype == torch.float64
    assert compute_advantages("grpo", torch.tensor([1.0, 0, 1, 1], dtype=torch.bfloat16), ids).dtype == torch.bfloat16
    assert compute_advantages("grpo", torch.zeros(0), torch.zeros(0, dtype=torch.int64)).shape == (0,)


# ---------------------------------------------------------------------------
# Hand-computed values (G = 8)
# ---------------------------------------------------------------------------


def test_asym_g8_hand_values():
    # p = 2/8: A_pos = (6/2)^0.9 = 3^0.9, A_neg = -(2/6)^0.4 = -(1/3)^0.4.
    out = adv("asym", group_of(2, 8), [0] * 8)
    assert out[0].item() == pytest.approx(3 ** 0.9)
    assert out[-1].item() == pytest.approx(-(1 / 3) ** 0.4)
    out = adv("asym", group_of(3, 8), [0] * 8, beta_pos=0.5, beta_neg=0.5)
    assert out[0].item() == pytest.approx(math.sqrt(5 / 3))
    assert out[-1].item() == pytest.approx(-math.sqrt(3 / 5))


def test_reinforce_is_2r_minus_1():
    r = [1, 0, 0, 1, 1, 1, 0, 0, 0]
    out = adv("reinforce", r, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert out.tolist() == [2 * x - 1 for x in r]


def test_uniform_group_conventions():
    ones, zeros = [1.0] * 4, [0.0] * 4
    # beta > 0: 0^beta = 0; beta = 0: 0^0 = 1 keeps REINFORCE's +-1.
    assert adv("asym", ones, [0] * 4, beta_pos=0.9).tolist() == [0.0] * 4
    assert adv("asym", ones, [0] * 4, beta_pos=0.0).tolist() == [1.0] * 4
    assert adv("asym", zeros, [0] * 4, beta_neg=0.4).tolist() == [0.0] * 4
    assert adv("asym", zeros, [0] * 4, beta_neg=0.0).tolist() == [-1.0] * 4
    assert adv("pos_only", zeros, [0] * 4).tolist() == [-1.0] * 4
    assert adv("neg_only", ones, [0] * 4).tolist() == [1.0] * 4
    for name in REAL_VALUED:
        assert adv(name, ones, [0] * 4).tolist() == [0.0] * 4
        assert adv(name, zeros, [0] * 4).tolist() == [0.0] * 4
    # No -0.0 leaks out (it would print as "-0.0" in tables).
    assert math.copysign(1.0, adv("asym", zeros, [0] * 4)[0].item()) == 1.0


def test_grpo_uniform_real_group_is_exactly_zero():
    # 0.1 * 3 / 3 is not exactly 0.1: a computed std of ~1e-17 must not give +-1 advantages.
    assert adv("grpo", [0.1, 0.1, 0.1], [0, 0, 0]).tolist() == [0.0, 0.0, 0.0]


def test_ent_decrease_g8_hand_values():
    G = 8
    # p = 1/8: B_pos(1/8) = A_pos(7/8) = sqrt((1/8)/(7/8)) = sqrt(1/7).
    out = adv("ent_decrease", group_of(1, G), [0] * G)
    assert out[0].item() == pytest.approx(math.sqrt(1 / 7))
    assert out[-1].item() == pytest.approx(-math.sqrt(1 / 7))  # negative channel unchanged
    # p = 7/8 is still on the reflected curve: sqrt(7).
    assert adv("ent_decrease", group_of(7, G), [0] * G)[0].item() == pytest.approx(math.sqrt(7))
    # p = 1: V_pos_end = B(7/8) + [B(7/8) - B(6/8)] = 2 sqrt(7) - sqrt(3).
    out = adv("ent_decrease", group_of(8, G), [0] * G)
    assert out.tolist() == pytest.approx([2 * math.sqrt(7) - math.sqrt(3)] * G)
    # All-failed group: unchanged negative channel, -(0)^0.5 = 0.
    assert adv("ent_decrease", group_of(0, G), [0] * G).tolist() == [0.0] * G


def test_ent_increase_g8_hand_values():
    G = 8
    # p = 1/8: B_neg(1/8) = A_neg(7/8) = -sqrt(7); positive channel unchanged sqrt(7).
    out = adv("ent_increase", group_of(1, G), [0] * G)
    assert out[0].item() == pytest.approx(math.sqrt(7))
    assert out[-1].item() == pytest.approx(-math.sqrt(7))
    assert adv("ent_increase", group_of(7, G), [0] * G)[-1].item() == pytest.approx(-math.sqrt(1 / 7))
    # p = 0: V_neg_end = B(1/8) - [B(2/8) - B(1/8)] = -2 sqrt(7) + sqrt(3), on every rollout.
    out = adv("ent_increase", group_of(0, G), [0] * G)
    assert out.tolist() == pytest.approx([-2 * math.sqrt(7) + math.sqrt(3)] * G)
    assert adv("ent_increase", group_of(8, G), [0] * G).tolist() == [0.0] * G


def test_flip_g2_endpoints():
    # G = 2: (G-2)/G = 0, B_pos(0) = 0^beta = 0 -> V_pos_end = 2 B_pos(1/2) = 2.
    assert adv("ent_decrease", [1, 1], [0, 0]).tolist() == [2.0, 2.0]
    assert adv("ent_increase", [0, 0], [0, 0]).tolist() == [-2.0, -2.0]
    # beta = 0: the reflected curve is flat 1, so the extrapolation is 1 too.
    assert adv("ent_decrease", [1, 1], [0, 0], beta_pos=0.0).tolist() == [1.0, 1.0]


def test_flip_needs_two_rollouts():
    with pytest.raises(ValueError, match="at least 2 rollouts"):
        adv("ent_decrease", [1, 0, 1], [0, 0, 1])


@pytest.mark.parametrize("G", [2, 3, 5, 8, 16, 33, 64])
def test_flip_branch_at_every_grid_point(G):
    # The extrapolated value is used exactly at k = G (ent_decrease) / k = 0 (ent_increase).
    b = 0.5
    for k in range(1, G + 1):
        val = adv("ent_decrease", group_of(k, G), [0] * G)[0].item()
        p = k / G
        want = (p / (1 - p)) ** b if k < G else 2 * ((G - 1) ** b) - ((G - 2) / 2) ** b
        assert val == pytest.approx(want, rel=1e-9), (G, k)
    for k in range(0, G):
        val = adv("ent_increase", group_of(k, G), [0] * G)[-1].item()
        p = k / G
        want = -((1 - p) / p) ** b if k > 0 else -2 * (G - 1) ** b + ((G - 2) / 2) ** b
        assert val == pytest.approx(want, rel=1e-9), (G, k)


def test_lin_interp():
    assert lin_interp(0.25, 0.0, 1.0, 2.0, 6.0) == pytest.approx(3.0)
    assert lin_interp(2.0, 0.0, 1.0, 2.0, 6.0) == pytest.approx(10.0)  # extrapolates too


def test_flipped_channels_between_grid_points():
    G, b = 8, 0.5
    last = 7 / 8
    b_last = math.sqrt(7)
    v_end = 2 * math.sqrt(7) - math.sqrt(3)
    p = 0.95
    assert flipped_a_pos(p, b, G) == pytest.approx(b_last + (p - last) / (1 - last) * (v_end - b_last))
    assert flipped_a_pos(0.3, b, G) == pytest.approx(math.sqrt(0.3 / 0.7))
    p = 0.05
    v_neg = -2 * math.sqrt(7) + math.sqrt(3)
    assert flipped_a_neg(p, b, G) == pytest.approx(v_neg + p / (1 / 8) * (-math.sqrt(7) - v_neg))
    assert flipped_a_neg(0.6, b, G) == pytest.approx(-math.sqrt(0.4 / 0.6))
    # Continuous at the join.
    assert flipped_a_pos(last + 1e-12, b, G) == pytest.approx(b_last, rel=1e-6)
    assert flipped_a_neg(1 / 8 - 1e-12, b, G) == pytest.approx(-math.sqrt(7), rel=1e-6)


def test_channel_functions_types_and_values():
    assert isinstance(a_pos(0.25, 0.5), float)
    assert a_pos(0.25, 0.5) == pytest.approx(math.sqrt(3))
    assert a_neg(0.25, 0.5) == pytest.approx(-math.sqrt(1 / 3))
    assert w_pos(0.25, 0.5) == pytest.approx(0.25 * math.sqrt(3))
    assert w_neg(0.25, 0.5) == pytest.approx(0.75 * math.sqrt(1 / 3))
    assert w_pos(0.0, 0.5) == 0.0 and w_neg(1.0, 0.5) == 0.0
    arr = a_pos(np.array([0.25, 0.5]), 0.5)
    assert isinstance(arr, np.ndarray) and arr.tolist() == pytest.approx([math.sqrt(3), 1.0])
    t = a_neg(torch.tensor([0.5, 1.0], dtype=torch.float32), 0.5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    # Eq. (9)-(10) closed forms.
    for p in (0.1, 0.4, 0.8):
        for b in (0.2, 0.9):
            assert w_pos(p, b) == pytest.approx(p ** (1 - b) * (1 - p) ** b)
            assert w_neg(p, b) == pytest.approx(p ** b * (1 - p) ** (1 - b))


# ---------------------------------------------------------------------------
# Equivalences between estimators
# ---------------------------------------------------------------------------


def random_batch(seed: int, n_groups: int, max_g: int, binary: bool = True):
    """Groups of sizes 1..max_g with shuffled, non-contiguous ids."""
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, max_g + 1, (n_groups,), generator=gen)
    ids_per_group = torch.randperm(10 * n_groups, generator=gen)[:n_groups] * 3 - 7
    ids = torch.repeat_interleave(ids_per_group, sizes)
    n = int(sizes.sum())
    if binary:
        acc = torch.rand(n_groups, generator=gen)
        r = (torch.rand(n, generator=gen) < torch.repeat_interleave(acc, sizes)).double()
    else:
        r = torch.randn(n, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    return r[perm], ids[perm]


def loop_reference(name: str, r: torch.Tensor, ids: torch.Tensor, bp=None, bn=None, eps=1e-6):
    """Straight-from-the-paper per-group loop, python floats (0.0 ** 0 == 1.0)."""
    bp, bn = resolve_betas(name, bp, bn)
    out = [0.0] * len(r)
    for g in set(ids.tolist()):
        members = [i for i in range(len(r)) if int(ids[i]) == g]
        vals = [float(r[i]) for i in members]
        G = len(vals)
        mean = sum(vals) / G
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / G)
        for i, v in zip(members, vals):
            if name == "grpo":
                out[i] = 0.0 if max(vals) == min(vals) else (v - mean) / std
            elif name == "grpo_unbiased":
                sb = math.sqrt(sum((x - mean) ** 2 for x in vals) / (G - 1)) if G > 1 else 0.0
                out[i] = 0.0 if max(vals) == min(vals) else (v - mean) / (sb + eps)
            elif name == "dr_grpo":
                out[i] = 0.0 if max(vals) == min(vals) else v - mean
            else:
                p = mean
                pos = (lambda q, b: ((1 - q) / q) ** b if q > 0 else (1.0 if b == 0 else math.inf))
                neg = (lambda q, b: -((q / (1 - q)) ** b) if q < 1 else (-1.0 if b == 0 else -math.inf))
                if name == "ent_decrease" and v == 1:
                    B = lambda q: pos(1 - q, bp)  # noqa: E731
                    out[i] = B(p) if p <= (G - 1) / G else 2 * B((G - 1) / G) - B((G - 2) / G)
                elif name == "ent_increase" and v == 0:
                    B = lambda q: neg(1 - q, bn)  # noqa: E731
                    out[i] = B(p) if p >= 1 / G else 2 * B(1 / G) - B(2 / G)
                else:
                    out[i] = pos(p, bp) if v == 1 else neg(p, bn)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed,n_groups,max_g", [(0, 6, 8), (1, 12, 5), (2, 4, 16)])
def test_vectorised_matches_loop(name, seed, n_groups, max_g):
    binary = name not in REAL_VALUED or seed == 0
    r, ids = random_batch(seed, n_groups, max_g, binary=binary)
    if name.startswith("ent_"):  # groups of one have no Appendix C extrapolation
        r, ids = torch.cat([r, r]), torch.cat([ids, ids])
    kw = {"beta_pos": 0.7, "beta_neg": 0.3} if name in ("asym", "ent_decrease", "ent_increase") else {}
    got = compute_advantages(name, r, ids, **kw)
    want = loop_reference(name, r, ids, kw.get("beta_pos"), kw.get("beta_neg"))
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_grpo_equals_asym_half_half(seed):
    r, ids = random_batch(seed, 10, 9)
    g = compute_advantages("grpo", r.float(), ids)
    a = compute_advantages("asym", r.float(), ids, beta_pos=0.5, beta_neg=0.5)
    assert torch.allclose(g, a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_grpo_unbiased_is_scaled_grpo(seed):
    r, ids = random_batch(seed, 10, 9)
    _, inv, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    G = counts[inv].double()
    scale = torch.where(G > 1, torch.sqrt((G - 1) / G), torch.zeros_like(G))
    g = compute_advantages("grpo", r, ids)
    u = compute_advantages("grpo_unbiased", r, ids)
    assert torch.allclose(u, scale * g, rtol=1e-5, atol=1e-5)  # up to eps = 1e-6


def test_dr_grpo_is_centered_reward():
    out = adv("dr_grpo", [1, 0, 0, 0, 0.5, 1.5], [3, 3, 3, 3, 9, 9])
    assert out.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, -0.5, 0.5])


# ---------------------------------------------------------------------------
# channel_values / closed forms agree with compute_advantages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("G", [2, 3, 8, 12])
def test_channel_values_agree(name, G):
    rows = channel_values(name, G)
    assert [r[0] for r in rows] == list(range(G + 1))
    assert rows[0][2] is None and rows[-1][3] is None
    for k, p, ap, an in rows:
        assert p == k / G
        out = adv(name, group_of(k, G), [5] * G)
        if ap is not None:
            assert ap == pytest.approx(out[0].item(), rel=1e-12)
        if an is not None:
            assert an == pytest.approx(out[-1].item(), rel=1e-12)
        cpos, cneg = closed_form_channels(name, p, G)
        if ap is not None:
            assert cpos == pytest.approx(ap, rel=1e-9, abs=1e-12)
        if an is not None:
            assert cneg == pytest.approx(an, rel=1e-9, abs=1e-12)


def test_channel_values_asym_betas():
    rows = channel_values("asym", 4, 0.9, 0.4)
    assert rows[1][2] == pytest.approx(3 ** 0.9)
    assert rows[1][3] == pytest.approx(-(1 / 3) ** 0.4)
    assert rows[0][3] == 0.0 and rows[4][2] == 0.0


# ---------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------

betas = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)
pos_betas = st.floats(min_value=0.01, max_value=3.0, allow_nan=False)
grid_p = st.integers(min_value=2, max_value=32).flatmap(
    lambda G: st.tuples(st.just(G), st.integers(min_value=1, max_value=G - 1)))


@st.composite
def binary_batches(draw, max_groups=6, max_g=8):
    n = draw(st.integers(1, max_groups))
    sizes = draw(st.lists(st.integers(2, max_g), min_size=n, max_size=n))
    ids = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n, unique=True))
    rewards, gids = [], []
    for gid, size in zip(ids, sizes):
        rewards += draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size))
        gids += [gid] * size
    return torch.tensor(rewards, dtype=torch.float64), torch.tensor(gids, dtype=torch.int64)


@settings(max_examples=25, deadline=None)
@given(binary_batches(), betas, betas)
def test_signs_beta_family(batch, bp, bn):
    r, ids = batch
    for name in ("asym", "ent_decrease", "ent_increase"):
        out = compute_advantages(name, r, ids, beta_pos=bp, beta_neg=bn)
        assert (out[r == 1] >= 0).all() and (out[r == 0] <= 0).all()
        assert torch.isfinite(out).all()


@settings(max_examples=25, deadline=None)
@given(grid_p, pos_betas)
def test_channel_monotonicity(gk, b):
    G, k = gk
    if k + 1 >= G:
        return
    p, q = k / G, (k + 1) / G
    assert a_pos(q, b) < a_pos(p, b)  # rarer successes get more
    assert abs(a_neg(q, b)) > abs(a_neg(p, b))  # rarer failures are punished more
    assert a_pos(q, 0.0) == a_pos(p, 0.0) == 1.0


@settings(max_examples=25, deadline=None)
# Away from 0 and 1 (besides the endpoints themselves) 1 - (1 - p) loses p's digits.
@given(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(min_value=1e-6, max_value=1 - 1e-6)), betas)
def test_channel_symmetry(p, b):
    # A_neg^(beta)(p) = -A_pos^(beta)(1 - p)
    assert a_neg(p, b) == pytest.approx(-a_pos(1.0 - p, b), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(binary_batches())
def test_zero_sum_grpo_and_dr_grpo(batch):
    r, ids = batch
    for name in ("grpo", "dr_grpo", "grpo_unbiased"):
        out = compute_advantages(name, r, ids)
        sums = torch.zeros(int(ids.max() - ids.min()) + 1, dtype=torch.float64).index_add_(0, ids - ids.min(), out)
        assert torch.allclose(sums, torch.zeros_like(sums), atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(binary_batches())
def test_grpo_equals_asym_half_property(batch):
    r, ids = batch
    assert torch.allclose(compute_advantages("grpo", r, ids),
                          compute_advantages("asym", r, ids, beta_pos=0.5, beta_neg=0.5), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(binary_batches(), st.randoms(use_true_random=False))
def test_permutation_and_relabel_invariance(batch, rnd):
    r, ids = batch
    perm = list(range(len(r)))
    rnd.shuffle(perm)
    perm_t = torch.tensor(perm)
    uniq = sorted(set(ids.tolist()))
    new_labels = dict(zip(uniq, rnd.sample(range(10_000), len(uniq))))
    relabelled = torch.tensor([new_labels[int(i)] for i in ids], dtype=torch.int64)
    for name in ALL:
        base = compute_advantages(name, r, ids)
        assert torch.allclose(compute_advantages(name, r[perm_t], ids[perm_t]), base[perm_t], atol=1e-12)
        assert torch.allclose(compute_advantages(name, r, relabelled), base, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(binary_batches())
def test_groups_of_different_sizes_are_independent(batch):
    # Each group's advantages equal those computed for that group alone.
    r, ids = batch
    for name in ALL:
        out = compute_advantages(name, r, ids)
        for g in set(ids.tolist()):
            sel = ids == g
            alone = compute_advantages(name, r[sel], ids[sel])
            assert torch.allclose(out[sel], alone, atol=1e-12)


def test_algorithm_package_imports_only_torch_numpy_stdlib():
    import ast
    import sys
    from pathlib import Path

    import asymcli.algorithm as pkg

    allowed = {"torch", "numpy"} | set(sys.stdlib_module_names)
    for path in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
