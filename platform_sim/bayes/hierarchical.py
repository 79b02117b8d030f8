"""The PyMC twin of the fast hierarchical stratum model (platform_sim.posterior.hierarchical).

Same likelihood and priors, written the way a statistician would write them in PyMC, with the
stratum rates sampled explicitly rather than integrated out::

    mu         ~ Beta(mu_a, mu_b)
    log_kappa  ~ Normal(log_kappa_mean, log_kappa_sd);   kappa = exp(log_kappa)
    p[s]       ~ Beta(mu * kappa, (1 - mu) * kappa)
    y[s]       ~ Binomial(n[s], p[s])

It is the ground truth the fast grid engine is tested against (tests/test_hierarchical.py), and
the model to use for the final analysis of one arm with ArviZ diagnostics. PyMC and ArviZ are
imported inside the functions, so this module imports without them.
"""

from __future__ import annotations

import numpy as np

from platform_sim.posterior.hierarchical import HierarchicalPrior

__all__ = ["fit_pymc", "stratum_summary"]


def _counts(y, n) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y)
    n_arr = np.asarray(n)
    if y_arr.ndim != 1 or y_arr.shape != n_arr.shape or y_arr.size == 0:
        raise ValueError(
            f"y and n must be 1-D arrays of the same length (one arm's strata), got shapes {y_arr.shape} and {n_arr.shape}"
        )
    if not (np.all(y_arr == np.round(y_arr)) and np.all(n_arr == np.round(n_arr))):
        raise ValueError("y and n must hold whole numbers")
    y_int = y_arr.astype(np.int64)
    n_int = n_arr.astype(np.int64)
    if np.any(y_int < 0) or np.any(y_int > n_int):
        raise ValueError("counts must satisfy 0 <= y <= n")
    return y_int, n_int


def build_model(y, n, prior: HierarchicalPrior | None = None):
    """The PyMC model for one arm's strata (1-D counts y, n); variables mu, log_kappa, kappa, p."""
    import pymc as pm

    prior = HierarchicalPrior() if prior is None else prior
    y_int, n_int = _counts(y, n)
    coords = {"stratum": np.arange(y_int.size)}
    with pm.Model(coords=coords) as model:
        mu = pm.Beta("mu", alpha=prior.mu_a, beta=prior.mu_b)
        log_kappa = pm.Normal("log_kappa", mu=prior.log_kappa_mean, sigma=prior.log_kappa_sd)
        kappa = pm.Deterministic("kappa", pm.math.exp(log_kappa))
        p = pm.Beta("p", alpha=mu * kappa, beta=(1.0 - mu) * kappa, dims="stratum")
        pm.Binomial("y", n=n_int, p=p, observed=y_int, dims="stratum")
    return model


def fit_pymc(
    y,
    n,
    prior: HierarchicalPrior | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    target_accept: float = 0.99,
    cores: int = 1,
    progressbar: bool = False,
):
    """Sample the hierarchical stratum model for ONE arm with NUTS; returns an ArviZ InferenceData.

    y, n: 1-D counts by stratum. ``prior`` is the same :class:`HierarchicalPrior` the fast engine
    takes. A high ``target_accept`` keeps the sampler out of trouble in the funnel between
    kappa and the stratum rates; check ``idata.sample_stats.diverging`` and r_hat
    (:func:`stratum_summary`) before trusting a fit.
    """
    import pymc as pm

    model = build_model(y, n, prior)
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            target_accept=target_accept,
            progressbar=progressbar,
            compute_convergence_checks=False,
        )
    return idata


def stratum_summary(idata, probs=(0.05, 0.95)):
    """Posterior mean and quantiles of each stratum rate p[s], with their Monte Carlo standard errors.

    Returns a pandas DataFrame indexed by stratum with columns ``mean``, ``mcse_mean``, for each
    probability q ``q05`` (say) and ``mcse_q05``, then ``ess_bulk``, ``ess_tail`` and ``r_hat``
    (rank-normalized split R-hat), all from ArviZ.
    """
    import arviz as az
    import pandas as pd

    post = idata.posterior["p"]
    table = pd.DataFrame(index=pd.Index(post.coords["stratum"].values, name="stratum"))
    table["mean"] = post.mean(dim=("chain", "draw")).values
    table["mcse_mean"] = az.mcse(idata, var_names=["p"], method="mean")["p"].values
    for q in probs:
        name = f"q{round(100 * q):02d}"
        table[name] = post.quantile(q, dim=("chain", "draw")).values
        table[f"mcse_{name}"] = az.mcse(idata, var_names=["p"], method="quantile", prob=q)["p"].values
    table["ess_bulk"] = az.ess(idata, var_names=["p"], method="bulk")["p"].values
    table["ess_tail"] = az.ess(idata, var_names=["p"], method="tail")["p"].values
    table["r_hat"] = az.rhat(idata, var_names=["p"])["p"].values
    return table
