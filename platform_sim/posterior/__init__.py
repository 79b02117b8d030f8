"""Fast, exact Bayesian computations vectorized over simulated trials."""

from .beta import (
    beta_interval,
    oriented,
    prob_all_within,
    prob_best,
    prob_best_and_vs_control,
    prob_greater,
    prob_within,
    warm_up,
)

__all__ = [
    "beta_interval",
    "oriented",
    "prob_all_within",
    "prob_best",
    "prob_best_and_vs_control",
    "prob_greater",
    "prob_within",
    "warm_up",
]
