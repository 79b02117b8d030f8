"""Fast posterior moments of the hierarchical stratum model, for use inside the simulation engine.

The model and its exact computation on a (mu, kappa) grid are in
:mod:`platform_sim.posterior.hierarchical`; this module reuses its posterior node weights
(:func:`~platform_sim.posterior.hierarchical.hierarchical_posterior`) and adds only what the
engine needs at every interim look, for R rows (trials x arms) of S strata:

* :func:`hierarchical_moments`: the posterior mean and variance of every stratum rate. The
  stratum posterior is the mixture over grid nodes g (posterior weights w_g) of
  Beta(a_g + y_s, b_g + n_s - y_s) with a_g = mu_g kappa_g, b_g = (1 - mu_g) kappa_g, so
  E[p_s] = sum_g w_g m_g with m_g = (a_g + y_s) / (kappa_g + n_s) and
  E[p_s^2] = sum_g w_g m_g (a_g + y_s + 1) / (kappa_g + n_s + 1), exact sums on the grid
  (no node is dropped). Reciprocals 1 / (kappa_g + n) are tabulated once per distinct n in
  the batch, and the sums run in a compiled loop that the compiler may vectorize
  (reassociated floating-point sums: results differ from a sequential sum by ~1e-16).
* :func:`hierarchical_beta_approx`: the Beta(a, b) with the same mean and variance
  (method of moments: a = m nu, b = (1 - m) nu with nu = m (1 - m) / v - 1).
* :func:`engine_grid`: a grid with about a quarter of the nodes of the default one.

Engine grid (measured against the default 4,027-node grid of ``hyper_grid()``)
-----------------------------------------------------------------------------
``hyper_grid(prior, kappa_step=0.6, kappa_step_max=0.6, kappa_z=(-6, 5), mu_per_sqrt_kappa=4,
mu_min=20, mu_max=min(96, ceil(4 sqrt(kappa_2.5 + 1))))`` with kappa_2.5 the prior's kappa
at +2.5 sd: steps of 0.6 in log kappa (0.4 prior sd for the default prior) over z in
[-6, 5] prior sd, and ceil(4 sqrt(kappa + 1)) mu nodes per slice, clipped to [20, 83] for
the default prior (at most 96 for wider priors). 1,132 nodes in 29 slices for the default
prior.

Max abs error of the posterior mean / sd of a stratum rate over 3,019 data sets
(``datasets(1, 3000)`` in tests/test_hierarchical_fast.py: 2-6 strata, counts up to 200
per stratum, homogeneous, mildly and strongly heterogeneous true rates, rates near 0 and 1,
sparse strata such as 0/3, empty strata, and fixed extremes such as 0/200 next to
200/200): **7.4e-5 / 3.3e-5** (2.0e-5 / 2.2e-5 on another 819, seed 0). On the same data
the default grid agrees with a 15,834-node grid to 2.1e-6 / 1.3e-6, so these are errors of
the engine grid. Which parameters matter: the kappa step (0.7 in log kappa gives 1.8e-4 in
the sd, 0.8 gives 4e-4, 1.0 gives 3e-3: strongly heterogeneous strata make the kappa
posterior narrow) and the number of mu nodes, which must resolve the posterior of mu
(sd ~ sqrt(mu (1 - mu) / N) for N patients when strata pool): 16 nodes at small kappa give
7e-5, a cap of 48 nodes gives 1.3e-4 in the sd for 6 x 100/200. With 2-6 strata of 500-1,000
patients each the error was at most 8.2e-5 / 6.0e-5; far larger pooled totals would need more
mu nodes (pass ``grid=hyper_grid(prior)``). Other priors, against ``hyper_grid(prior)``:
9.6e-5 / 5.9e-5 for mu ~ Beta(2, 8), kappa median 50, log-sd 1 (930 nodes); 2.6e-5 / 1.4e-5
for kappa in [1, 1000] with probability 0.9 (1,968 nodes). With a single stratum the engine
grid is within 4e-9 of a brute-force integral over (mu, kappa).

Moment-matched Beta against the exact comparison with a control
----------------------------------------------------------------
For P(p_k,s > p_c,s + delta) the engine passes the moment-matched Betas of arm and control
to :func:`platform_sim.posterior.prob_greater`. Max abs error against the exact
:func:`~platform_sim.posterior.hierarchical.prob_stratum_vs_control` (default grid), 3,600
arm-stratum comparisons per regime (``_regime`` in the tests, seeds 100-149, 3 strata,
delta 0 and 0.1; 0 and 0.02 for rare responses), max (99th percentile, mean):

===============================================  ==================================
50-200 patients per stratum, rates 0.1-0.9        0.0065 (0.002, 1.4e-4)
20-49 patients per stratum                        0.013  (0.005, 7e-4)
0-19 patients per stratum                         0.054  (0.033, 5e-3)
each stratum 0-4 or 50-200 patients               0.084  (0.053, 8e-3)
rates below 3%, 20-200 patients per stratum       0.052  (0.031, 3e-3)
===============================================  ==================================

On another 11,760 comparisons (4 strata, homogeneous to strongly heterogeneous rates) the
error by the smaller of the two arms' counts in the stratum was at most 0.09 with 0-4
patients, 0.05 with 5-19, 0.02 with 20-49 and 8e-3 with 50 or more, and not smaller where
decisions are made (exact probability below 0.1 or above 0.9: up to 0.08 in the mixed
regime). **The approximation is poor** (errors of 0.03-0.09) when a stratum has a handful of
patients, above all when its own data disagree with the other strata (its exact posterior
is then a skewed or bimodal mixture of a pooled and an unpooled part), and for rare (or
near-certain) responses: the exact posterior then has a heavy tail toward 0 (1) that a Beta
matches only with a shape parameter far below 1 (a = 0.05 for 0/200 in four strata), and
errors of 0.03-0.05 remain with 200 patients per stratum. prob_greater itself is promised to
1e-6 only for shape parameters >= 1/2; at a ~ 0.1 its own error reaches ~1e-2 (included in
the figures above). Use the exact function where these regimes decide a trial.

Cost (one core, after compilation; ``python -m platform_sim.posterior.hierarchical_fast``):
R = 2,500 rows (500 trials x 5 arms), S = 4, engine grid: 28 ms for
:func:`hierarchical_beta_approx`, of which 22 ms are the node weights of hierarchical.py
and ~6 ms the moment sums (the same moments on the default grid: 0.11 s); the 8,000
comparisons with the control by prob_greater then take 60-100 ms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .hierarchical import (
    HierarchicalPrior,
    HyperGrid,
    hierarchical_posterior,
    hyper_grid,
)

__all__ = ["ENGINE_GRID_OPTIONS", "engine_grid", "hierarchical_beta_approx", "hierarchical_moments", "warm_up"]

# Options of hyper_grid for the engine grid (mu_max is set per prior in engine_grid).
ENGINE_GRID_OPTIONS = {
    "kappa_step": 0.6,
    "kappa_step_max": 0.6,
    "kappa_z": (-6.0, 5.0),
    "mu_per_sqrt_kappa": 4.0,
    "mu_min": 20,
}
_MU_CAP = 96  # the most mu nodes in any kappa slice of an engine grid

_ENGINE_GRIDS: dict[HierarchicalPrior, HyperGrid] = {}


def engine_grid(prior: HierarchicalPrior | None = None) -> HyperGrid:
    """A smaller hyperparameter grid for use in simulations (built once per prior and cached).

    1,132 nodes for the default prior (the default grid has 4,027); posterior means and sds
    of stratum rates within 1e-4 of the default grid's for 2-6 strata of up to 1,000
    patients (see the module docstring for the measurements).
    """
    prior = HierarchicalPrior() if prior is None else prior
    if not isinstance(prior, HierarchicalPrior):
        raise TypeError(f"prior must be a HierarchicalPrior, got {type(prior).__name__}")
    grid = _ENGINE_GRIDS.get(prior)
    if grid is None:
        opts = ENGINE_GRID_OPTIONS
        # as hyper_grid's default (the count at the prior's 99.4% quantile of kappa), capped
        kappa_hi = math.exp(prior.log_kappa_mean + 2.5 * prior.log_kappa_sd)
        mu_max = min(_MU_CAP, math.ceil(opts["mu_per_sqrt_kappa"] * math.sqrt(kappa_hi + 1.0)))
        grid = hyper_grid(prior, mu_max=max(mu_max, opts["mu_min"]), **opts)
        _ENGINE_GRIDS[prior] = grid
    return grid


_FASTMATH = {"reassoc", "contract", "arcp"}  # lets the compiler vectorize the sums; no nan/inf assumptions


@njit(cache=True, fastmath=_FASTMATH)
def _moments_kernel(w, a, inv1, inv2, y, n_index, mean, var):
    """mean = sum_g w_g m_g, E[p^2] = sum_g w_g m_g (a_g + y + 1) inv2_g with m_g = (a_g + y) inv1_g."""
    n_rows, n_strata = y.shape
    n_nodes = w.shape[1]
    for r in range(n_rows):
        for s in range(n_strata):
            ys = float(y[r, s])
            i1 = inv1[n_index[r, s]]
            i2 = inv2[n_index[r, s]]
            m1 = 0.0
            m2 = 0.0
            for g in range(n_nodes):
                alpha = a[g] + ys
                wm = w[r, g] * alpha * i1[g]
                m1 += wm
                m2 += wm * (alpha + 1.0) * i2[g]
            mean[r, s] = m1
            var[r, s] = max(m2 - m1 * m1, 0.0)


def _resolve_grid(prior: HierarchicalPrior | None, grid: HyperGrid | None) -> HyperGrid:
    if grid is None:
        return engine_grid(prior)
    if not isinstance(grid, HyperGrid):
        raise TypeError(f"grid must be a HyperGrid, got {type(grid).__name__}")
    if prior is not None and grid.prior != prior:
        raise ValueError(f"grid was built for {grid.prior}, not for the prior passed ({prior})")
    return grid


def hierarchical_moments(
    y, n, prior: HierarchicalPrior | None = None, grid: HyperGrid | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior mean and variance of every stratum rate p_s under the hierarchical model,
    for counts y, n of shape (..., S); returns two arrays of shape (..., S).

    y and n broadcast against each other (e.g. n of shape (S,) with y of shape (T, K, S)). Exact on ``grid`` (default: :func:`engine_grid` of ``prior``, itself defaulting to
    ``HierarchicalPrior()``); pass ``grid=hyper_grid(prior)`` for the reference grid. A stratum
    with n_s = 0 gets the moments of a new stratum's rate given the other strata.
    """
    g = _resolve_grid(prior, grid)
    y_arr, n_arr = np.broadcast_arrays(np.asarray(y), np.asarray(n))
    post = hierarchical_posterior(y_arr, n_arr, g)  # validates the counts
    s = post.n_strata
    rows = int(np.prod(post.batch_shape, dtype=np.int64))
    y2 = np.ascontiguousarray(post.y.reshape(rows, s))
    n_values, n_index = np.unique(post.n.reshape(rows, s), return_inverse=True)
    total = g.kappa[None, :] + n_values[:, None].astype(np.float64)
    mean = np.empty((rows, s))
    var = np.empty((rows, s))
    _moments_kernel(
        np.ascontiguousarray(post.weights.reshape(rows, g.size)),
        g.a,
        np.ascontiguousarray(1.0 / total),
        np.ascontiguousarray(1.0 / (total + 1.0)),
        y2,
        np.ascontiguousarray(n_index.reshape(rows, s), dtype=np.int64),
        mean,
        var,
    )
    return mean.reshape(post.y.shape), var.reshape(post.y.shape)


def hierarchical_beta_approx(
    y, n, prior: HierarchicalPrior | None = None, grid: HyperGrid | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) parameters with the same mean and variance as each stratum's exact posterior
    (method of moments), shape (..., S).

    a = m nu, b = (1 - m) nu with nu = m (1 - m) / v - 1 for the mean m and variance v of
    :func:`hierarchical_moments`. The exact posterior is a mixture of betas; how well this
    single Beta reproduces comparisons with a control is measured in the module docstring
    (poor for strata with a handful of patients and for rates near 0 or 1).
    """
    mean, var = hierarchical_moments(y, n, prior, grid)
    spread = mean * (1.0 - mean)
    # v < m (1 - m) for any distribution on (0, 1) that is not a point mass; the floor only
    # guards against a variance rounded to 0 (nu is then capped at 1e15)
    nu = spread / np.maximum(var, 1e-15 * spread) - 1.0
    return mean * nu, (1.0 - mean) * nu


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the kernels on a tiny problem."""
    hierarchical_beta_approx(np.array([[0, 1], [1, 2]]), np.array([[2, 3], [2, 3]]))


def _benchmark(trials: int = 500, arms: int = 5, strata: int = 4, repeats: int = 5) -> None:
    import time

    from . import prob_greater

    rng = np.random.default_rng(0)
    n = rng.integers(0, 60, (trials, arms, strata))
    y = rng.binomial(n, rng.uniform(0.1, 0.7, (trials, arms, strata)))
    warm_up()
    prob_greater(1.0, 1.0, 1.0, 1.0, 0.0)
    grid = engine_grid()
    print(
        f"engine grid: {grid.size} nodes in {grid.slice_kappa.size} kappa slices; counts ({trials}, {arms}, {strata})"
    )
    for _ in range(repeats):
        t0 = time.perf_counter()
        a, b = hierarchical_beta_approx(y, n)
        t1 = time.perf_counter()
        hierarchical_posterior(y, n, grid)
        t2 = time.perf_counter()
        prob_greater(a[:, 1:], b[:, 1:], a[:, :1], b[:, :1], 0.0)
        t3 = time.perf_counter()
        print(
            f"hierarchical_beta_approx {t1 - t0:.4f} s (node weights alone {t2 - t1:.4f} s); prob_greater vs control {t3 - t2:.4f} s"
        )


if __name__ == "__main__":
    _benchmark()
