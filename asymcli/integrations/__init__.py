"""Adapters that put the advantage registry into the RL frameworks researchers already use.

- :mod:`asymcli.integrations.verl`: the beta-family estimators as verl advantage estimators
  (``algorithm.adv_estimator=asym_grpo``), registered through verl's ``register_adv_est``;
- :mod:`asymcli.integrations.trl`: ``AsymGRPOTrainer`` / ``AsymGRPOConfig``, TRL's
  ``GRPOTrainer`` with its group normalisation replaced by any registry estimator.

Each submodule imports its framework (the ``verl`` / ``trl`` extras) and nothing of the
pipeline: the advantages come from :mod:`asymcli.algorithm.advantages` and the diagnostics
from :mod:`asymcli.algorithm.metrics`, so a framework run and an ``asym`` run share one
definition of each. Nothing in the library imports this package.
"""
