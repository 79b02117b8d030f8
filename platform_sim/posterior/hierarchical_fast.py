"""Fast posterior moments of the hierarchical stratum model, for use inside the simulation engine.

The model and its exact computation on a (mu, kappa) grid are in
:mod:`platform_sim.posterior.hierarchical`; this module forms the same posterior node weights
(those of :func:`~platform_sim.posterior.hierarchical.hierarchical_posterior`) and adds only
what the engine needs at every interim look, for R rows (trials x arms) of S strata:

* :func:`hierarchical_moments`: the posterior mean and variance of every stratum rate. The
  stratum posterior is the mixture over grid nodes g (posterior weights w_g) of
  Beta(a_g + y_s, b_g + n_s - y_s) with a_g = mu_g kappa_g, b_g = (1 - mu_g) kappa_g, so
  E[p_s] = sum_g w_g m_g with m_g = (a_g + y_s) / (kappa_g + n_s) and
  E[p_s^2] = sum_g w_g m_g (a_g + y_s + 1) / (kappa_g + n_s + 1), exact sums on the grid
  (no node is dropped). The node weights and the moments come from one compiled pass per row
  (see the comment "moments in one pass over the nodes" below); ``reference=True`` computes
  the weights with :func:`~platform_sim.posterior.hierarchical.hierarchical_posterior` and
  sums over the nodes (the two agree to 1e-14, tests/test_hierarchical_fast.py).
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
R = 2,500 rows (500 trials x 5 arms), S = 4, engine grid: about 8 ms for
:func:`hierarchical_beta_approx` in one pass (18 ms with ``reference=True``: the
node weights of hierarchical.py, then the sums over the nodes); the 8,000 comparisons with
the control by prob_greater then take about 20 ms.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .beta import _vexp
from .hierarchical import (
    HierarchicalPrior,
    HyperGrid,
    _counts,
    hierarchical_posterior,
    hyper_grid,
)

__all__ = [
    "ENGINE_GRID_OPTIONS",
    "beta_from_moments",
    "engine_grid",
    "hierarchical_beta_approx",
    "hierarchical_moments",
    "warm_up",
]

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


# --------------------------------------------------------------------------- moments in one pass over the nodes
#
# The engine's path: the node weights and the moments in one compiled pass per row, from tables of
# log Gamma differences over whole counts kept per grid (built once, grown when a larger count comes).
# The log weight of every node is the sum hierarchical_posterior forms, in the same order; it is then
# exponentiated by a vectorized exp (beta.py's ``_vexp``, within a few units in the last place of the
# C library's) and, since kappa is constant within a slice of the grid, the moments are sums over the
# slices of per-slice sums of w, w a and w a^2:
#
#   E[p_s]   = sum_j [A_j + y_s W_j] / (kappa_j + n_s),
#   E[p_s^2] = sum_j [B_j + (2 y_s + 1) A_j + y_s (y_s + 1) W_j] / ((kappa_j + n_s) (kappa_j + n_s + 1)),
#
# with W_j, A_j, B_j the sums over the slice's nodes of w_g, w_g a_g and w_g a_g^2: the same sums as
# over the nodes, regrouped, so that the work per stratum is one term per slice instead of one per node.
# The results differ from :func:`_moments_kernel` on :func:`hierarchical_posterior`'s weights by
# rounding only (tests/test_hierarchical_fast.py: 1e-12 relative in the mean and the variance).

_TABLE_MAX_COUNT = 4095  # counts above this are tabulated per batch (a table row per distinct count)


class _CountTables:
    """log Gamma differences of a grid for every count 0..size-1: ta[y, g] = lgamma(a_g + y) - lgamma(a_g),
    tb[m, g] the same with b_g, tk[n, g] = lgamma(kappa_g + n) - lgamma(kappa_g) (computed per kappa slice);
    each entry computed as :func:`~platform_sim.posterior.hierarchical._tables` computes it (the same numbers)."""

    def __init__(self, grid: HyperGrid):
        from scipy import special

        self.grid = grid
        self.lg_a = special.gammaln(grid.a)
        self.lg_b = special.gammaln(grid.b)
        self.lg_k = special.gammaln(grid.slice_kappa)
        starts = np.flatnonzero(np.r_[True, np.diff(grid.slice_of) != 0])
        if not np.array_equal(grid.slice_of[starts], np.arange(starts.size)) or starts.size != grid.slice_kappa.size:
            raise ValueError("the grid's nodes must be stored slice by slice, in the order of slice_kappa")
        self.slice_start = np.ascontiguousarray(np.r_[starts, grid.size], dtype=np.int64)
        self.ta = self.tb = self.tk = np.empty((0, 0))
        self.size = 0

    def _rows(self, counts: np.ndarray, shape: np.ndarray, lg_shape: np.ndarray) -> np.ndarray:
        from scipy import special

        return np.ascontiguousarray(
            special.gammaln(shape[None, :] + counts[:, None].astype(np.float64)) - lg_shape[None, :]
        )

    def distinct(self, counts: np.ndarray, shape: np.ndarray, lg_shape: np.ndarray):
        """Table rows for the distinct values of ``counts`` only, and each count's row index."""
        values, index = np.unique(counts, return_inverse=True)
        return self._rows(values, shape, lg_shape), np.ascontiguousarray(index.reshape(counts.shape), dtype=np.int64)

    def ensure(self, max_count: int) -> None:
        """Grow the tables to hold every count up to ``max_count``."""
        if max_count < self.size:
            return
        size = max(64, 1 << int(max_count).bit_length())
        new = np.arange(self.size, size)
        g = self.grid
        self.ta = np.concatenate([self.ta.reshape(-1, g.size), self._rows(new, g.a, self.lg_a)])
        self.tb = np.concatenate([self.tb.reshape(-1, g.size), self._rows(new, g.b, self.lg_b)])
        self.tk = np.concatenate(
            [self.tk.reshape(-1, g.size), self._rows(new, g.slice_kappa, self.lg_k)[:, g.slice_of]]
        )
        self.size = size


_COUNT_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _count_tables(grid: HyperGrid) -> _CountTables:
    tables = _COUNT_TABLES.get(grid)
    if tables is None:
        tables = _COUNT_TABLES[grid] = _CountTables(grid)
    return tables


@njit(cache=True)
def _stratum_terms(ta, tb, tk, yi, mi, ni, n):
    """The distinct stratum terms of a batch: ids (R, S) and terms (U, G) with terms[ids[r, s]] =
    (ta[yi] + tb[mi]) - tk[ni] of stratum s of row r (the sum ``_weights_kernel`` adds per stratum,
    in its order), ids -1 where the stratum has no patients. Rows of a batch share most of their
    strata's counts (a few percent are distinct), so each term is formed once; the distinct
    (yi, ni) pairs (which give mi) are found by open addressing on yi + (max yi + 1) ni."""
    n_rows, n_strata = yi.shape
    n_nodes = ta.shape[1]
    width = 1
    for r in range(n_rows):
        for s in range(n_strata):
            width = max(width, yi[r, s] + 1)
    size = 16
    while size < 2 * n_rows * n_strata:
        size *= 2
    slot_key = np.full(size, -1, dtype=np.int64)
    slot_id = np.empty(size, dtype=np.int64)
    ids = np.full((n_rows, n_strata), -1, dtype=np.int64)
    first = np.empty((n_rows * n_strata, 3), dtype=np.int64)
    n_terms = 0
    for r in range(n_rows):
        for s in range(n_strata):
            if n[r, s] == 0:
                continue
            key = yi[r, s] + width * ni[r, s]
            h = ((key * 2654435761) >> 16) & (size - 1)  # Knuth's multiplicative hash
            while slot_key[h] != key and slot_key[h] >= 0:
                h = (h + 1) & (size - 1)
            if slot_key[h] < 0:
                slot_key[h] = key
                slot_id[h] = n_terms
                first[n_terms, 0], first[n_terms, 1], first[n_terms, 2] = yi[r, s], mi[r, s], ni[r, s]
                n_terms += 1
            ids[r, s] = slot_id[h]
    terms = np.empty((n_terms, n_nodes))
    for i in range(n_terms):
        row_a, row_b, row_k = ta[first[i, 0]], tb[first[i, 1]], tk[first[i, 2]]
        out = terms[i]
        for g in range(n_nodes):
            out[g] = row_a[g] + row_b[g] - row_k[g]
    return ids, terms


@njit(cache=True)
def _log_weights(log_weight, terms, ids, out):
    """One row's log node weights (unnormalized), the sum hierarchical.py's ``_weights_kernel`` forms
    in the same order: prior log weight, then the term of each stratum with patients
    (:func:`_stratum_terms`; ``ids`` (S,): the row's term ids, -1 for none). Returns their maximum."""
    n_nodes = log_weight.shape[0]
    for g in range(n_nodes):
        out[g] = log_weight[g]
    for s in range(ids.shape[0]):
        if ids[s] < 0:
            continue
        row = terms[ids[s]]
        for g in range(n_nodes):
            out[g] += row[g]
    # the maximum by four running maxima (the same value: max is exact in any order), so that the
    # comparisons do not wait on each other
    m0 = m1 = m2 = m3 = -np.inf
    g = 0
    while g + 4 <= n_nodes:
        m0 = max(m0, out[g])
        m1 = max(m1, out[g + 1])
        m2 = max(m2, out[g + 2])
        m3 = max(m3, out[g + 3])
        g += 4
    for i in range(g, n_nodes):
        m0 = max(m0, out[i])
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True, fastmath=_FASTMATH)
def _slice_sums(e, a, slice_start, sums):
    """sums[0, j], sums[1, j], sums[2, j] = sum over slice j's nodes of e, e a and e a^2; returns sum e.

    Each slice is summed over views of ``e`` and ``a`` indexed from 0: an index that starts at a
    value read from an array might be negative as far as the compiler knows, and the wraparound
    check numba adds for negative indices then keeps the loop from being vectorized (about 1.15
    against 0.28 µs for the 29 slices of the engine grid)."""
    total = 0.0
    for j in range(slice_start.shape[0] - 1):
        e_j = e[slice_start[j] : slice_start[j + 1]]
        a_j = a[slice_start[j] : slice_start[j + 1]]
        w = 0.0
        wa = 0.0
        waa = 0.0
        for i in range(e_j.shape[0]):
            v = e_j[i]
            va = v * a_j[i]
            w += v
            wa += va
            waa += va * a_j[i]
        sums[0, j] = w
        sums[1, j] = wa
        sums[2, j] = waa
        total += w
    return total


@njit(cache=True, fastmath=_FASTMATH)
def _stratum_sums(sums, slice_kappa, ys, ns):
    """A stratum's first and second moments before dividing by the total weight: the sums over the
    slices of E[p_s] and E[p_s^2] in the comment "moments in one pass over the nodes", from the slice
    sums of :func:`_slice_sums`, vectorized across the slices."""
    c1 = 2.0 * ys + 1.0
    c2 = ys * (ys + 1.0)
    w = sums[0]
    wa = sums[1]
    waa = sums[2]
    m1 = 0.0
    m2 = 0.0
    for j in range(slice_kappa.shape[0]):
        t1 = slice_kappa[j] + ns
        m1 += (wa[j] + ys * w[j]) / t1
        m2 += (waa[j] + c1 * wa[j] + c2 * w[j]) / (t1 * (t1 + 1.0))
    return m1, m2


@njit(cache=True)
def _fused_moments_kernel(
    log_weight, a, slice_kappa, slice_start, ta, tb, tk, yi, mi, ni, y, n, mean, var, lw, e, bits, sums
):
    """mean, var (R, S) of every row's stratum rates from its counts y, n (R, S) and table rows yi, mi, ni;
    lw, e (G,), bits (2, G) int64 and sums (3, J) are scratch."""
    n_rows, n_strata = y.shape
    n_nodes = log_weight.shape[0]
    ids, terms = _stratum_terms(ta, tb, tk, yi, mi, ni, n)
    for r in range(n_rows):
        top = _log_weights(log_weight, terms, ids[r], lw)
        for g in range(n_nodes):
            lw[g] -= top
        _vexp(lw, e, n_nodes, bits)
        total = _slice_sums(e, a, slice_start, sums)
        for s in range(n_strata):
            m1, m2 = _stratum_sums(sums, slice_kappa, float(y[r, s]), float(n[r, s]))
            m1 /= total
            m2 /= total
            mean[r, s] = m1
            var[r, s] = max(m2 - m1 * m1, 0.0)


def _fused_moments(y_int: np.ndarray, n_int: np.ndarray, grid: HyperGrid) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hierarchical_moments` of validated counts (..., S) by :func:`_fused_moments_kernel`."""
    s = y_int.shape[-1]
    y2 = np.ascontiguousarray(y_int.reshape(-1, s))
    n2 = np.ascontiguousarray(n_int.reshape(-1, s))
    m2 = n2 - y2
    rows = y2.shape[0]
    top = int(n2.max()) if rows else 0
    tables = _count_tables(grid)
    if top <= _TABLE_MAX_COUNT:
        tables.ensure(top)
        ta, tb, tk = tables.ta, tables.tb, tables.tk
        yi, mi, ni = y2, m2, n2
    else:  # very large counts: table rows for the batch's distinct counts only
        ta, yi = tables.distinct(y2, grid.a, tables.lg_a)
        tb, mi = tables.distinct(m2, grid.b, tables.lg_b)
        tk, ni = tables.distinct(n2, grid.slice_kappa, tables.lg_k)
        tk = np.ascontiguousarray(tk[:, grid.slice_of])
    mean = np.empty((rows, s))
    var = np.empty((rows, s))
    g = grid.size
    _fused_moments_kernel(
        grid.log_weight,
        grid.a,
        grid.slice_kappa,
        tables.slice_start,
        ta,
        tb,
        tk,
        yi,
        mi,
        ni,
        y2,
        n2,
        mean,
        var,
        np.empty(g),
        np.empty(g),
        np.empty((2, g), dtype=np.int64),
        np.empty((3, grid.slice_kappa.size)),
    )
    return mean.reshape(y_int.shape), var.reshape(y_int.shape)


def _resolve_grid(prior: HierarchicalPrior | None, grid: HyperGrid | None) -> HyperGrid:
    if grid is None:
        return engine_grid(prior)
    if not isinstance(grid, HyperGrid):
        raise TypeError(f"grid must be a HyperGrid, got {type(grid).__name__}")
    if prior is not None and grid.prior != prior:
        raise ValueError(f"grid was built for {grid.prior}, not for the prior passed ({prior})")
    return grid


def hierarchical_moments(
    y, n, prior: HierarchicalPrior | None = None, grid: HyperGrid | None = None, *, reference: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior mean and variance of every stratum rate p_s under the hierarchical model,
    for counts y, n of shape (..., S); returns two arrays of shape (..., S).

    y and n broadcast against each other (e.g. n of shape (S,) with y of shape (T, K, S)). Exact on ``grid`` (default: :func:`engine_grid` of ``prior``, itself defaulting to
    ``HierarchicalPrior()``); pass ``grid=hyper_grid(prior)`` for the reference grid. A stratum
    with n_s = 0 gets the moments of a new stratum's rate given the other strata.
    """
    g = _resolve_grid(prior, grid)
    y_arr, n_arr = np.broadcast_arrays(np.asarray(y), np.asarray(n))
    if not reference:
        return _fused_moments(*_counts(y_arr, n_arr), g)
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
    y, n, prior: HierarchicalPrior | None = None, grid: HyperGrid | None = None, *, reference: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) parameters with the same mean and variance as each stratum's exact posterior
    (method of moments), shape (..., S).

    a = m nu, b = (1 - m) nu with nu = m (1 - m) / v - 1 for the mean m and variance v of
    :func:`hierarchical_moments`. The exact posterior is a mixture of betas; how well this
    single Beta reproduces comparisons with a control is measured in the module docstring
    (poor for strata with a handful of patients and for rates near 0 or 1).
    """
    return beta_from_moments(*hierarchical_moments(y, n, prior, grid, reference=reference))


def beta_from_moments(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) parameters with mean ``mean`` and variance ``var`` (method of moments), element-wise."""
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
        hierarchical_beta_approx(y, n, reference=True)
        t2 = time.perf_counter()
        prob_greater(a[:, 1:], b[:, 1:], a[:, :1], b[:, :1], 0.0)
        t3 = time.perf_counter()
        print(
            f"hierarchical_beta_approx {t1 - t0:.4f} s (reference {t2 - t1:.4f} s); prob_greater vs control {t3 - t2:.4f} s"
        )


if __name__ == "__main__":
    _benchmark()
