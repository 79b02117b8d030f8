"""The PyMC twin of BATTLE's hierarchical probit model (platform_sim.posterior.probit).

Same likelihood and priors as the exact quadrature engine, with every parameter sampled::

    phi[j]      ~ Normal(phi_mean, tau)                       treatment level
    eta[j, k]   ~ Normal(0, 1);   mu[j, k] = phi[j] + sigma * eta[j, k]
    dcr[j, k]   = Phi(mu[j, k])                               disease control rate
    y[j, k]     ~ Binomial(n[j, k], dcr[j, k])

The non-centred form mu = phi + sigma * eta is the same model as mu ~ Normal(phi, sigma); it
keeps NUTS out of the funnel between phi and mu when a group has few patients (pass
``centered=True`` for the centred form, better when every group has many). Counts of the
latent-variable form (z ~ N(mu, 1), y = 1{z > 0}) enter only through the binomial.

It is the ground truth the fast engine is tested against (tests/test_probit.py) and the
model to use for the analysis of one trial with ArviZ diagnostics. PyMC and ArviZ are
imported inside the functions, so this module imports without them.
"""

from __future__ import annotations

import numpy as np

from platform_sim.posterior.probit import ProbitPrior

__all__ = ["build_probit_model", "dcr_summary", "fit_probit"]


def _counts(y, n) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y)
    n_arr = np.asarray(n)
    if y_arr.ndim != 2 or y_arr.shape != n_arr.shape or y_arr.size == 0:
        raise ValueError(
            f"y and n must be 2-D arrays of the same shape (J treatments, K marker groups) for one trial, "
            f"got shapes {y_arr.shape} and {n_arr.shape}"
        )
    for name, arr in (("y", y_arr), ("n", n_arr)):
        if arr.dtype == bool or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers of patients")
    y_int = y_arr.astype(np.int64)
    n_int = n_arr.astype(np.int64)
    if np.any(y_int < 0) or np.any(y_int > n_int):
        bad = np.argwhere((y_int < 0) | (y_int > n_int))[0]
        idx = tuple(int(i) for i in bad)
        raise ValueError(
            f"counts must satisfy 0 <= y <= n; at (treatment, group) {idx}: y = {y_int[idx]}, n = {n_int[idx]}"
        )
    return y_int, n_int


def build_probit_model(y, n, prior: ProbitPrior | None = None, centered: bool = False):
    """The PyMC model for one trial: counts y, n of shape (J, K); variables phi, mu, dcr (and eta)."""
    import pymc as pm

    prior = ProbitPrior() if prior is None else prior
    if not isinstance(prior, ProbitPrior):
        raise TypeError(f"prior must be a ProbitPrior, got {type(prior).__name__}")
    y_int, n_int = _counts(y, n)
    coords = {"treatment": np.arange(y_int.shape[0]), "group": np.arange(y_int.shape[1])}
    with pm.Model(coords=coords) as model:
        phi = pm.Normal("phi", mu=prior.phi_mean, sigma=prior.tau, dims="treatment")
        if centered:
            mu = pm.Normal("mu", mu=phi[:, None], sigma=prior.sigma, dims=("treatment", "group"))
        else:
            eta = pm.Normal("eta", mu=0.0, sigma=1.0, dims=("treatment", "group"))
            mu = pm.Deterministic("mu", phi[:, None] + prior.sigma * eta, dims=("treatment", "group"))
        dcr = pm.Deterministic("dcr", pm.math.invprobit(mu), dims=("treatment", "group"))
        pm.Binomial("y", n=n_int, p=dcr, observed=y_int, dims=("treatment", "group"))
    return model


def fit_probit(
    y,
    n,
    prior: ProbitPrior | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    target_accept: float = 0.95,
    centered: bool = False,
    cores: int = 1,
    progressbar: bool = False,
):
    """Sample the hierarchical probit model for ONE trial with NUTS; returns an ArviZ InferenceData.

    y, n: counts of shape (J treatments, K marker groups). ``prior`` is the same
    :class:`~platform_sim.posterior.probit.ProbitPrior` the exact engine takes. Check
    ``idata.sample_stats.diverging`` and the r_hat column of :func:`dcr_summary` before
    trusting a fit.
    """
    import pymc as pm

    model = build_probit_model(y, n, prior, centered=centered)
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


def dcr_summary(idata, thresholds=(0.3,)):
    """Posterior summaries of every DCR with their Monte Carlo standard errors (ArviZ).

    Returns a pandas DataFrame indexed by (treatment, group) with columns ``mean``,
    ``mcse_mean``, ``sd``, ``mcse_sd`` (delta method on the squared deviations), for each threshold c ``p_above_<c>`` (the posterior
    probability Pr(DCR > c), the mean of the indicator draws) and ``mcse_p_above_<c>``, then
    ``ess_bulk`` and ``r_hat`` (rank-normalised split R-hat) of the DCR.
    """
    import arviz as az
    import pandas as pd
    import xarray as xr

    post = idata.posterior["dcr"]
    index = pd.MultiIndex.from_product(
        [post.coords["treatment"].values, post.coords["group"].values], names=["treatment", "group"]
    )
    table = pd.DataFrame(index=index)
    dcr = idata.posterior[["dcr"]]
    table["mean"] = post.mean(dim=("chain", "draw")).values.ravel()
    table["mcse_mean"] = az.mcse(dcr, method="mean")["dcr"].values.ravel()
    table["sd"] = post.std(dim=("chain", "draw")).values.ravel()
    # MCSE of the sd by the delta method: sd^2 is the mean of the squared deviations d2, whose
    # MCSE is sd(d2) / sqrt(ESS(d2)); then MCSE(sd) = MCSE(sd^2) / (2 sd)
    squared = xr.Dataset({"d2": (post - post.mean(dim=("chain", "draw"))) ** 2})
    mcse_var = squared["d2"].std(dim=("chain", "draw")).values.ravel() / np.sqrt(
        az.ess(squared, method="mean")["d2"].values.ravel()
    )
    table["mcse_sd"] = mcse_var / (2.0 * table["sd"].values)
    for c in np.atleast_1d(thresholds):
        name = f"p_above_{float(c):g}"
        indicator = xr.Dataset({"above": (post > float(c)).astype(float)})
        table[name] = indicator["above"].mean(dim=("chain", "draw")).values.ravel()
        table[f"mcse_{name}"] = az.mcse(indicator, method="mean")["above"].values.ravel()
    table["ess_bulk"] = az.ess(dcr, method="bulk")["dcr"].values.ravel()
    table["r_hat"] = az.rhat(dcr)["dcr"].values.ravel()
    return table
