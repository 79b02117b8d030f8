"""Fast, exact Bayesian computations vectorized over simulated trials."""

from .beta import Grid, beta_interval, beta_mean_sd, oriented, prob_all_within, prob_best, prob_greater, prob_within

__all__ = ["Grid", "beta_interval", "beta_mean_sd", "oriented", "prob_all_within", "prob_best", "prob_greater", "prob_within"]
