"""The GRPO equivalences that docs/estimators.md and docs/integrations.md state, in pure torch
(no framework needed): (0.5, 0.5) is population-std GRPO, and verl's / TRL's GRPO (Bessel std
plus their eps) is exactly sqrt((G-1)/G) times it, up to eps."""

from __future__ import annotations

import math

import pytest
import torch

from asymcli.algorithm.advantages import compute_advantages

VERL_EPS = 1e-6  # verl 0.9.1 compute_grpo_outcome_advantage: (r - mean) / (torch.std(r) + 1e-6)
TRL_EPS = 1e-4  # TRL 1.16 GRPOTrainer, scale_rewards="group": (r - mean) / (nanstd(r) + 1e-4)


def groups(group_size: int, seed: int = 0, n_groups: int = 6):
    """Binary rewards [n*G] with every count of successes present where possible, group ids."""
    g = torch.Generator().manual_seed(seed)
    ks = torch.arange(n_groups) % (group_size + 1)
    rewards = torch.cat([(torch.randperm(group_size, generator=g) < k).double() for k in ks])
    return rewards, torch.arange(n_groups).repeat_interleave(group_size)


def framework_grpo(rewards: torch.Tensor, group_size: int, eps: float) -> torch.Tensor:
    """verl's / TRL's group normalisation written out: Bessel std (torch.std's default) + eps."""
    r = rewards.view(-1, group_size)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps)).reshape(-1)


@pytest.mark.parametrize("group_size", [2, 3, 4, 8, 16])
def test_half_half_is_population_std_grpo(group_size):
    rewards, ids = groups(group_size)
    r = rewards.view(-1, group_size)
    std_pop = r.std(1, keepdim=True, correction=0)
    mixed = (std_pop > 0).expand_as(r).reshape(-1)
    pop = ((r - r.mean(1, keepdim=True)) / std_pop.clamp(min=1e-300)).reshape(-1)
    grpo = compute_advantages("grpo", rewards, ids)
    torch.testing.assert_close(compute_advantages("asym", rewards, ids, beta_pos=0.5, beta_neg=0.5), grpo)
    torch.testing.assert_close(grpo[mixed], pop[mixed])
    assert (grpo[~mixed] == 0).all()


@pytest.mark.parametrize("group_size", [2, 3, 4, 8, 16])
def test_bessel_grpo_is_sqrt_g_over_g_minus_1_times_smaller(group_size):
    rewards, ids = groups(group_size, seed=group_size)
    factor = math.sqrt(group_size / (group_size - 1))  # std_bessel / std_pop
    grpo = compute_advantages("grpo", rewards, ids)
    # Without eps the factor is exact (0/0 on the uniform groups, where grpo gives 0).
    unbiased = compute_advantages("grpo_unbiased", rewards, ids, eps=0.0).nan_to_num(0.0)
    torch.testing.assert_close(unbiased * factor, grpo)
    torch.testing.assert_close(framework_grpo(rewards, group_size, 0.0).nan_to_num(0.0) * factor, grpo)
    # With each framework's eps, grpo_unbiased(eps) is that framework's formula exactly ...
    for eps in (VERL_EPS, TRL_EPS):
        torch.testing.assert_close(compute_advantages("grpo_unbiased", rewards, ids, eps=eps),
                                   framework_grpo(rewards, group_size, eps), rtol=1e-12, atol=1e-12)
    # ... and off the exact factor by std / (std + eps) only: relative error eps / std_bessel, at
    # most eps * sqrt(G) on binary rewards (the smallest mixed-group Bessel std is 1/sqrt(G)).
    for eps in (VERL_EPS, TRL_EPS):
        torch.testing.assert_close(framework_grpo(rewards, group_size, eps) * factor, grpo,
                                   rtol=eps * math.sqrt(group_size) * 1.001, atol=0)
    assert group_size != 8 or abs(1 / factor - 0.9354) < 1e-4  # the 0.935 of docs/estimators.md
