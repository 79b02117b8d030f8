"""Exact predictive probabilities (platform_sim.posterior.predictive) against independent references.

Evidence, all with fixed inputs or fixed seeds:

1. Published values: Lee & Liu (2008, Clin Trials 5:93) and the ph2bye::PredP example.
2. Brute force: scalar double loops with the beta-binomial written out from lgamma, final posterior
   probabilities from the exact incomplete beta function (single arm) or scipy.integrate.quad
   (two arms), the z statistic computed cell by cell.
3. Monte Carlo (draw the rates from the posteriors, then the future data), within 4 Monte Carlo
   standard errors; a correct value fails one comparison with chance ~6e-5.
4. Invariants and limits: range, monotonicity, n == n_max, vectorization, boundary method == grid,
   identical or well-separated posteriors in the confirmatory trial.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, special, stats

from platform_sim.posterior.beta import prob_greater
from platform_sim.posterior.predictive import (
    _bb_pmf,
    pp_confirmatory,
    pp_single_arm,
    pp_two_arm,
    single_arm_boundary,
    two_arm_boundary,
    z_test_rejects,
)

MC_SIGMAS = 4.0
# Sums of at most a few thousand nonnegative terms below 1: only rounding separates two exact
# computations of the same sum.
ROUNDING_TOL = 1e-12
# Quadrature reference for P(p_t > p_c + delta): asked for 1e-12, checked two ways to this.
REF_TOL = 1e-9
# The indicator of final success is only meaningful when the final probability is farther from
# theta than the accuracy of prob_greater (1e-6); the references check this margin.
INDICATOR_MARGIN = 1e-5


# --------------------------------------------------------------------------- brute-force references


def bb_pmf(j: int, m: int, a: float, b: float) -> float:
    """Beta-binomial probability C(m, j) B(j + a, m - j + b) / B(a, b), written out with lgamma."""
    if j < 0 or j > m:
        return 0.0
    log_beta = lambda x, y: math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)
    return math.comb(m, j) * math.exp(log_beta(j + a, m - j + b) - log_beta(a, b))


def ref_single(y, n, n_max, a, b, p0, theta) -> float:
    m = n_max - n
    total = 0.0
    for j in range(m + 1):
        final = stats.beta.sf(p0, a + y + j, b + n_max - y - j)
        assert abs(final - theta) > INDICATOR_MARGIN
        if final > theta:
            total += bb_pmf(j, m, a + y, b + n - y)
    return total


def ref_greater(a1, b1, a2, b2, delta) -> float:
    """P(X1 > X2 + delta) by quad, integrating over X2 and over X1 (they must agree)."""
    opts = {"epsabs": 1e-13, "epsrel": 1e-12, "limit": 200}

    def pdf(x, a, b):  # closed form (scipy.stats.beta.pdf costs ~50 us per scalar call)
        if x <= 0.0 or x >= 1.0:
            return 0.0
        return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - special.betaln(a, b))

    def over_x2(x):
        return pdf(x, a2, b2) * special.betaincc(a1, b1, min(max(x + delta, 0.0), 1.0))

    def over_x1(x):
        return pdf(x, a1, b1) * special.betainc(a2, b2, min(max(x - delta, 0.0), 1.0))

    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        v2 = integrate.quad(over_x2, 0.0, 1.0, **opts)[0]
        v1 = integrate.quad(over_x1, 0.0, 1.0, **opts)[0]
    assert abs(v1 - v2) < REF_TOL, (v1, v2)
    return v1


def ref_two_arm(y_t, n_t, y_c, n_c, n_max_t, n_max_c, prior, delta, theta, prior_c=None) -> float:
    a_t, b_t = prior
    a_c, b_c = prior if prior_c is None else prior_c
    m_t, m_c = n_max_t - n_t, n_max_c - n_c
    total = 0.0
    for jt in range(m_t + 1):
        for jc in range(m_c + 1):
            final = ref_greater(
                a_t + y_t + jt, b_t + n_max_t - y_t - jt, a_c + y_c + jc, b_c + n_max_c - y_c - jc, delta
            )
            assert abs(final - theta) > INDICATOR_MARGIN, (jt, jc, final)
            if final > theta:
                total += bb_pmf(jt, m_t, a_t + y_t, b_t + n_t - y_t) * bb_pmf(jc, m_c, a_c + y_c, b_c + n_c - y_c)
    return total


def z_pooled(x_t: int, x_c: int, n: int) -> float:
    pbar = (x_t + x_c) / (2 * n)
    if pbar in (0.0, 1.0):
        return 0.0
    return (x_t / n - x_c / n) / math.sqrt(pbar * (1 - pbar) * 2 / n)


def ref_confirmatory(y_t, n_t, y_c, n_c, n, alpha, prior, prior_c=None) -> float:
    a_t, b_t = prior
    a_c, b_c = prior if prior_c is None else prior_c
    crit = stats.norm.ppf(1 - alpha)
    total = 0.0
    for xt in range(n + 1):
        for xc in range(n + 1):
            if z_pooled(xt, xc, n) > crit:
                total += bb_pmf(xt, n, a_t + y_t, b_t + n_t - y_t) * bb_pmf(xc, n, a_c + y_c, b_c + n_c - y_c)
    return total


def mc_check(estimate_hits: np.ndarray, exact: float) -> None:
    mean = estimate_hits.mean()
    # The MCSE uses the exact value so that an estimate of 0 or 1 still gets a sensible error.
    mcse = math.sqrt(max(exact * (1 - exact), 1e-12) / estimate_hits.size)
    assert abs(mean - exact) < MC_SIGMAS * mcse, (mean, exact, mcse)


# --------------------------------------------------------------------------- beta-binomial terms


def bb_pmf_exact(j: int, m: int, a: int, b: int) -> float:
    """BB(j; m, a, b) for whole a, b as an exact rational: C(m, j) a^(j) b^(m-j) / (a+b)^(m) (rising powers)."""
    rising = lambda x, k: math.prod(range(x, x + k))
    return float(Fraction(math.comb(m, j) * rising(a, j) * rising(b, m - j), rising(a + b, m)))


@pytest.mark.parametrize("m,a,b", [(0, 2, 3), (1, 1, 1), (40, 17, 8), (150, 81, 21), (150, 30_000_001, 70_000_001)])
def test_beta_binomial_terms_exact(m, a, b):
    # The last case is a posterior after 10^8 patients: differences of log-beta functions of
    # arguments ~1e8 (scipy.stats.betabinom) lose ~7 digits there; the ratio recurrence must not.
    pmf = _bb_pmf(np.array([m]), np.array([float(a)]), np.array([float(b)]), m + 3)[0]
    ref = np.array([bb_pmf_exact(j, m, a, b) for j in range(m + 1)])
    np.testing.assert_allclose(pmf[: m + 1], ref, rtol=1e-11, atol=1e-300)
    assert np.all(pmf[m + 1 :] == 0.0)


def test_beta_binomial_terms_fractional_parameters():
    m = np.array([0, 3, 25, 25, 120])
    a = np.array([0.6, 0.5, 0.3, 12.5, 60.5])
    b = np.array([0.4, 0.5, 0.7, 3.25, 0.5])
    pmf = _bb_pmf(m, a, b, 121)
    for i in range(m.size):
        ref = np.array([bb_pmf(j, m[i], a[i], b[i]) for j in range(121)])
        np.testing.assert_allclose(pmf[i], ref, rtol=1e-11, atol=1e-300)


# --------------------------------------------------------------------------- single arm


def test_lee_liu_2008_example():
    # N_max = 40, Beta(0.6, 0.4), p0 = 0.6, theta_T = 0.90, 16/23: PP = 0.5656 (0.565559 to 6 dp).
    pp = float(pp_single_arm(16, 23, 40, 0.6, 0.4, 0.6, 0.90))
    assert round(pp, 4) == 0.5656
    assert abs(pp - 0.565559) <= 5e-7


def test_ph2bye_predp_example():
    # ph2bye::PredP(16, 23, 40, 1, 1, 0.5, 0.9): PP = 0.88719.
    pp = float(pp_single_arm(16, 23, 40, 1.0, 1.0, 0.5, 0.9))
    assert abs(pp - 0.88719) <= 5e-6


def test_boundary_is_smallest_final_success():
    pp, bound = pp_single_arm(16, 23, 40, 0.6, 0.4, 0.6, 0.90, return_boundary=True)
    s = int(bound)
    assert stats.beta.sf(0.6, 0.6 + s, 0.4 + 40 - s) > 0.90
    assert stats.beta.sf(0.6, 0.6 + s - 1, 0.4 + 40 - s + 1) <= 0.90
    # PP = P(16 + J >= boundary), J ~ BB(17, 16.6, 7.4).
    assert abs(float(pp) - stats.betabinom.sf(s - 16 - 1, 17, 16.6, 7.4)) < ROUNDING_TOL
    # An unreachable success: boundary n_max + 1 and PP 0.
    pp0, b0 = pp_single_arm(0, 0, 5, 1.0, 1.0, 0.9, 0.99, return_boundary=True)
    assert float(pp0) == 0.0 and int(b0) == 6


def test_single_arm_boundary_by_direct_evaluation():
    n_max = np.array([1, 10, 40, 40, 100])
    a, b = np.array([1.0, 0.5, 0.6, 1.0, 2.0]), np.array([1.0, 0.5, 0.4, 1.0, 3.0])
    p0, theta = np.array([0.5, 0.2, 0.6, 0.5, 0.3]), np.array([0.9, 0.95, 0.9, 0.9, 0.975])
    bound = single_arm_boundary(n_max, a, b, p0, theta)
    for i in range(n_max.size):
        s = np.arange(n_max[i] + 1)
        win = stats.beta.sf(p0[i], a[i] + s, b[i] + n_max[i] - s) > theta[i]
        assert bound[i] == (s[win].min() if win.any() else n_max[i] + 1)


@pytest.mark.parametrize(
    "y,n,n_max,a,b,p0,theta",
    [
        (3, 10, 25, 1.0, 1.0, 0.2, 0.95),
        (0, 0, 12, 0.5, 0.5, 0.3, 0.8),
        (7, 12, 30, 0.3, 0.7, 0.4, 0.9),
        (20, 60, 100, 2.0, 3.0, 0.25, 0.975),
    ],
)
def test_single_arm_against_brute_force(y, n, n_max, a, b, p0, theta):
    assert (
        abs(float(pp_single_arm(y, n, n_max, a, b, p0, theta)) - ref_single(y, n, n_max, a, b, p0, theta))
        < ROUNDING_TOL
    )


def test_single_arm_against_monte_carlo():
    rng = np.random.default_rng(20080301)
    y, n, n_max, a, b, p0, theta = 9, 20, 45, 1.0, 1.0, 0.35, 0.9
    draws = 1_000_000
    p = rng.beta(a + y, b + n - y, draws)
    final = y + rng.binomial(n_max - n, p)
    success = stats.beta.sf(p0, a + np.arange(n_max + 1), b + n_max - np.arange(n_max + 1)) > theta
    mc_check(success[final], float(pp_single_arm(y, n, n_max, a, b, p0, theta)))


def test_single_arm_range_and_monotone_in_y():
    n, n_max = 20, 50
    y = np.arange(n + 1)
    for p0, theta in [(0.2, 0.9), (0.5, 0.95), (0.7, 0.8)]:
        pp = pp_single_arm(y, n, n_max, 1.0, 1.0, p0, theta)
        assert pp.shape == (n + 1,)
        assert np.all((pp >= 0.0) & (pp <= 1.0))
        assert np.all(np.diff(pp) >= -ROUNDING_TOL)
        assert pp[0] < pp[-1]


def test_single_arm_at_n_max_is_the_indicator():
    y = np.arange(41)
    pp = pp_single_arm(y, 40, 40, 0.6, 0.4, 0.6, 0.9)
    success = stats.beta.sf(0.6, 0.6 + y, 0.4 + 40 - y) > 0.9
    np.testing.assert_array_equal(pp, success.astype(float))


def test_single_arm_vectorized_equals_loop():
    rng = np.random.default_rng(7)
    t = 60
    n_max = rng.integers(1, 60, t)
    n = rng.integers(0, n_max + 1)
    y = rng.binomial(n, 0.4)
    a, b = rng.uniform(0.3, 3, t), rng.uniform(0.3, 3, t)
    p0, theta = rng.uniform(0.1, 0.7, t), rng.uniform(0.7, 0.99, t)
    pp, bound = pp_single_arm(y, n, n_max, a, b, p0, theta, return_boundary=True)
    for i in range(t):
        pi, bi = pp_single_arm(y[i], n[i], n_max[i], a[i], b[i], p0[i], theta[i], return_boundary=True)
        assert abs(pp[i] - float(pi)) < ROUNDING_TOL
        assert bound[i] == int(bi)


def test_single_arm_shared_states_equal_loop():
    # Many trials in the same state (the usual case in a simulation) share one computation.
    y = np.array([3, 5, 3, 0, 5, 3, 12])
    n = np.array([10, 10, 10, 0, 12, 10, 20])
    pp = pp_single_arm(y, n, 30, 1.0, 1.0, 0.3, 0.9)
    for i in range(y.size):
        assert abs(pp[i] - ref_single(y[i], n[i], 30, 1.0, 1.0, 0.3, 0.9)) < ROUNDING_TOL


def test_single_arm_rejects_bad_counts():
    with pytest.raises(ValueError):
        pp_single_arm(5, 4, 10, 1, 1, 0.5, 0.9)
    with pytest.raises(ValueError):
        pp_single_arm(2, 11, 10, 1, 1, 0.5, 0.9)
    with pytest.raises(ValueError):
        pp_single_arm(2.5, 4, 10, 1, 1, 0.5, 0.9)
    with pytest.raises(ValueError):
        pp_single_arm(2, 4, 10, 0, 1, 0.5, 0.9)


# --------------------------------------------------------------------------- two arms

TWO_ARM_CASES = [
    pytest.param(3, 8, 2, 8, 14, 14, (1.0, 1.0), 0.0, 0.9, None, id="uniform-delta0"),
    pytest.param(5, 10, 3, 10, 16, 15, (0.5, 0.5), 0.1, 0.8, None, id="jeffreys-delta0.1"),
    pytest.param(1, 6, 1, 5, 12, 11, (1.0, 1.0), -0.05, 0.95, (2.0, 6.0), id="informative-control"),
    pytest.param(4, 9, 2, 9, 9, 15, (1.0, 1.0), 0.0, 0.85, None, id="treatment-complete"),
    pytest.param(6, 10, 2, 10, 10, 10, (1.0, 1.0), 0.0, 0.85, None, id="both-complete"),
]


@pytest.mark.parametrize("y_t,n_t,y_c,n_c,n_max_t,n_max_c,prior,delta,theta,prior_c", TWO_ARM_CASES)
def test_two_arm_against_brute_force(y_t, n_t, y_c, n_c, n_max_t, n_max_c, prior, delta, theta, prior_c):
    ref = ref_two_arm(y_t, n_t, y_c, n_c, n_max_t, n_max_c, prior, delta, theta, prior_c)
    for method in ("boundary", "grid"):
        pp = float(
            pp_two_arm(y_t, n_t, y_c, n_c, n_max_t, n_max_c, prior, delta, theta, prior_c=prior_c, method=method)
        )
        assert abs(pp - ref) < ROUNDING_TOL, (method, pp, ref)


def test_two_arm_boundary_is_the_smallest_success():
    n_t, n_c, delta, theta = 30, 25, 0.05, 0.9
    k = two_arm_boundary(n_t, n_c, (1.0, 1.0), delta, theta, prior_c=(0.5, 1.5))
    assert k.shape == (n_c + 1,)
    assert np.all(np.diff(k) >= 0)
    s_c = np.arange(n_c + 1)
    final = lambda s_t: prob_greater(1.0 + s_t, 1.0 + n_t - s_t, 0.5 + s_c, 1.5 + n_c - s_c, delta)
    has = k <= n_t
    assert np.all(final(np.minimum(k, n_t))[has] > theta)
    assert np.all(final(np.maximum(k - 1, 0))[has & (k > 0)] <= theta)
    assert np.all(final(np.full(n_c + 1, n_t))[~has] <= theta)


def test_two_arm_both_complete_is_the_indicator():
    y_t = np.arange(11)
    pp = pp_two_arm(y_t, 10, 3, 10, 10, 10, (1.0, 1.0), 0.0, 0.9)
    final = prob_greater(1.0 + y_t, 11.0 - y_t, 4.0, 8.0) > 0.9
    np.testing.assert_array_equal(pp, final.astype(float))


def test_two_arm_against_monte_carlo():
    rng = np.random.default_rng(31)
    y_t, n_t, y_c, n_c, n_max, delta, theta = 12, 30, 9, 30, 60, 0.05, 0.8
    draws = 1_000_000
    m = n_max - n_t
    p_t = rng.beta(1 + y_t, 1 + n_t - y_t, draws)
    p_c = rng.beta(1 + y_c, 1 + n_c - y_c, draws)
    j_t = rng.binomial(m, p_t)
    j_c = rng.binomial(m, p_c)
    # The final decision for every possible (j_t, j_c), once per cell.
    jj_t, jj_c = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
    table = prob_greater(1 + y_t + jj_t, 1 + n_max - y_t - jj_t, 1 + y_c + jj_c, 1 + n_max - y_c - jj_c, delta) > theta
    pp = float(pp_two_arm(y_t, n_t, y_c, n_c, n_max, n_max, (1.0, 1.0), delta, theta))
    mc_check(table[j_t, j_c], pp)


def _random_two_arm_batch(rng, t):
    n_max_t = rng.integers(1, 30, t)
    n_max_c = rng.integers(1, 30, t)
    n_t = rng.integers(0, n_max_t + 1)
    n_c = rng.integers(0, n_max_c + 1)
    y_t = rng.binomial(n_t, 0.45)
    y_c = rng.binomial(n_c, 0.3)
    a, b = rng.uniform(0.5, 2, t), rng.uniform(0.5, 2, t)
    delta, theta = rng.uniform(-0.1, 0.15, t), rng.uniform(0.6, 0.99, t)
    return y_t, n_t, y_c, n_c, n_max_t, n_max_c, (a, b), delta, theta


def test_two_arm_boundary_method_equals_grid_and_loop():
    rng = np.random.default_rng(11)
    y_t, n_t, y_c, n_c, n_max_t, n_max_c, (a, b), delta, theta = _random_two_arm_batch(rng, 40)
    prior_c = (b, a)
    fast = pp_two_arm(y_t, n_t, y_c, n_c, n_max_t, n_max_c, (a, b), delta, theta, prior_c=prior_c)
    grid = pp_two_arm(y_t, n_t, y_c, n_c, n_max_t, n_max_c, (a, b), delta, theta, prior_c=prior_c, method="grid")
    assert fast.shape == (40,)
    np.testing.assert_allclose(fast, grid, rtol=0, atol=ROUNDING_TOL)
    assert np.all((fast >= 0.0) & (fast <= 1.0))
    for i in range(0, 40, 5):
        one = pp_two_arm(
            y_t[i],
            n_t[i],
            y_c[i],
            n_c[i],
            n_max_t[i],
            n_max_c[i],
            (a[i], b[i]),
            delta[i],
            theta[i],
            prior_c=(b[i], a[i]),
        )
        assert abs(float(one) - fast[i]) < ROUNDING_TOL


def test_two_arm_shared_states_and_designs():
    # Two designs (theta 0.8 and 0.9) and repeated states in one call.
    y_t = np.array([4, 4, 7, 4, 7, 0])
    n_t = np.array([10, 10, 12, 10, 12, 0])
    theta = np.array([0.8, 0.9, 0.8, 0.8, 0.9, 0.9])
    pp = pp_two_arm(y_t, n_t, 3, 10, 20, 20, (1.0, 1.0), 0.0, theta)
    grid = pp_two_arm(y_t, n_t, 3, 10, 20, 20, (1.0, 1.0), 0.0, theta, method="grid")
    np.testing.assert_allclose(pp, grid, rtol=0, atol=ROUNDING_TOL)
    assert pp[0] == pp[3] and pp[0] > pp[1]


def test_two_arm_monotone_in_responses():
    y = np.arange(16)
    up = pp_two_arm(y, 15, 5, 15, 40, 40, (1.0, 1.0), 0.0, 0.9)
    down = pp_two_arm(6, 15, y, 15, 40, 40, (1.0, 1.0), 0.0, 0.9)
    assert np.all(np.diff(up) >= -ROUNDING_TOL) and up[-1] > up[0]
    assert np.all(np.diff(down) <= ROUNDING_TOL) and down[-1] < down[0]


def test_two_arm_rejects_bad_input():
    with pytest.raises(ValueError):
        pp_two_arm(3, 2, 1, 2, 10, 10, (1, 1), 0.0, 0.9)
    with pytest.raises(ValueError):
        pp_two_arm(1, 2, 1, 2, 10, 10, (1, 1), 0.0, 0.9, method="sparse")


# --------------------------------------------------------------------------- confirmatory trial


def test_z_test_region_worked_cells():
    n, alpha = 150, 0.025
    reject = z_test_rejects(n, alpha)
    assert reject.shape == (151, 151)
    # 60 vs 40 of 150: pbar = 1/3, z = (20/150) / sqrt((1/3)(2/3)(2/150)) = 2.449 > 1.960.
    assert reject[60, 40]
    # 55 vs 40: z = 1.862 < 1.960; equal counts and the all-0 / all-150 corners never reject.
    assert not reject[55, 40] and not reject[40, 40] and not reject[0, 0] and not reject[150, 150]
    crit = stats.norm.ppf(1 - alpha)
    for xt, xc in [(60, 40), (55, 40), (100, 80), (10, 2), (3, 0), (150, 140)]:
        assert reject[xt, xc] == (z_pooled(xt, xc, n) > crit)
    # The region is monotone (more treatment responses, fewer control responses: still rejects),
    # which makes PP monotone in the current counts.
    assert np.all(np.diff(reject.astype(int), axis=0) >= 0) and np.all(np.diff(reject.astype(int), axis=1) <= 0)


@pytest.mark.parametrize(
    "y_t,n_t,y_c,n_c,n,alpha,prior,prior_c",
    [
        (5, 12, 3, 10, 6, 0.05, (1.0, 1.0), None),
        (0, 0, 0, 0, 8, 0.025, (0.5, 0.5), None),
        (9, 20, 4, 18, 7, 0.1, (1.0, 1.0), (2.0, 8.0)),
    ],
)
def test_confirmatory_against_brute_force(y_t, n_t, y_c, n_c, n, alpha, prior, prior_c):
    pp = float(pp_confirmatory(y_t, n_t, y_c, n_c, n, alpha, prior, prior_c=prior_c))
    assert abs(pp - ref_confirmatory(y_t, n_t, y_c, n_c, n, alpha, prior, prior_c)) < ROUNDING_TOL


@pytest.mark.parametrize(
    "y_t,n_t,y_c,n_c,prior_c",
    [
        (30, 60, 8, 20, None),  # I-SPY-like: pCR 50% vs 40% on few controls
        (20, 75, 12, 40, None),
        (45, 90, 10, 30, (3.0, 7.0)),
    ],
)
def test_confirmatory_against_monte_carlo(y_t, n_t, y_c, n_c, prior_c):
    rng = np.random.default_rng(1000 + y_t)
    n, alpha, draws = 150, 0.025, 1_000_000
    a_c, b_c = (1.0, 1.0) if prior_c is None else prior_c
    p_t = rng.beta(1 + y_t, 1 + n_t - y_t, draws)
    p_c = rng.beta(a_c + y_c, b_c + n_c - y_c, draws)
    x_t = rng.binomial(n, p_t)
    x_c = rng.binomial(n, p_c)
    pbar = (x_t + x_c) / (2 * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where((pbar > 0) & (pbar < 1), (x_t - x_c) / n / np.sqrt(pbar * (1 - pbar) * 2 / n), 0.0)
    pp = float(pp_confirmatory(y_t, n_t, y_c, n_c, n, alpha, (1.0, 1.0), prior_c=prior_c))
    mc_check(z > stats.norm.ppf(1 - alpha), pp)


def test_confirmatory_far_above_control_tends_to_one():
    # Posteriors centred at 0.8 and 0.2 with 10, 100, 1000 patients per arm: the chance that the
    # future trial fails to reject shrinks towards 0 (it is still ~2e-2 with 10 and ~7e-9 with 100
    # per arm, because beta-binomial tails are much heavier than binomial ones).
    size = np.array([10, 100, 1000])
    pp = pp_confirmatory(size * 8 // 10, size, size * 2 // 10, size, 150, 0.025, (1.0, 1.0))
    fail = 1.0 - pp
    assert np.all(np.diff(fail) < 0)
    assert fail[-1] < 1e-12


def test_confirmatory_identical_posteriors():
    n, alpha = 150, 0.025
    # X_t and X_c are then exchangeable and Z is antisymmetric, so P(Z > crit) < P(Z > 0) <= 1/2.
    y = np.array([0, 1, 5, 10, 30, 60, 100, 300])
    size = np.array([0, 3, 10, 40, 60, 100, 200, 1000])
    pp = pp_confirmatory(y, size, y, size, n, alpha, (1.0, 1.0))
    assert np.all((pp > 0.0) & (pp < 0.5))
    # A posterior concentrated at p makes PP the exact size of the test at p = p_t = p_c.
    big = 10**8
    a, b = 0.3 * big + 1.0, 0.7 * big + 1.0
    mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    pmf = stats.binom.pmf(np.arange(n + 1), n, mean)
    exact_size = pmf @ z_test_rejects(n, alpha) @ pmf
    pp_big = float(pp_confirmatory(0.3 * big, big, 0.3 * big, big, n, alpha, (1.0, 1.0)))
    # |d/dp E_p g(X)| <= sqrt(n / (p (1 - p))) / 2 for 0 <= g <= 1 (Cov(g, X) <= sd(g) sd(X)), so
    # |PP - size| <= 2 * Lipschitz * E|p - mean| <= 2 * Lipschitz * sd, with p(1 - p) bounded below
    # on mean +- 50 sd (the posterior mass outside is far below double precision).
    lo = mean - 50 * sd
    lipschitz = 0.5 * math.sqrt(n / (lo * (1 - lo)))
    assert abs(pp_big - exact_size) <= 2 * lipschitz * sd
    assert abs(exact_size - alpha) < 0.005  # the pooled z-test is close to its nominal level here


def test_confirmatory_vectorized_monotone_and_range():
    rng = np.random.default_rng(5)
    t = 50
    n_t, n_c = rng.integers(0, 100, t), rng.integers(0, 50, t)
    y_t, y_c = rng.binomial(n_t, 0.4), rng.binomial(n_c, 0.3)
    a = rng.uniform(0.5, 2.0, t)
    pp = pp_confirmatory(y_t, n_t, y_c, n_c, 150, 0.025, (a, 1.0))
    assert pp.shape == (t,) and np.all((pp >= 0) & (pp <= 1))
    for i in range(0, t, 9):
        assert (
            abs(float(pp_confirmatory(y_t[i], n_t[i], y_c[i], n_c[i], 150, 0.025, (a[i], 1.0))) - pp[i]) < ROUNDING_TOL
        )
    y = np.arange(41)
    up = pp_confirmatory(y, 40, 10, 40, 150, 0.025, (1.0, 1.0))
    down = pp_confirmatory(20, 40, y, 40, 150, 0.025, (1.0, 1.0))
    assert np.all(np.diff(up) >= -ROUNDING_TOL) and np.all(np.diff(down) <= ROUNDING_TOL)


def test_confirmatory_chunking_gives_the_same_answer(monkeypatch):
    from platform_sim.posterior import predictive

    rng = np.random.default_rng(2)
    n_t = rng.integers(0, 60, 23)
    y_t = rng.binomial(n_t, 0.5)
    whole = pp_confirmatory(y_t, n_t, 7, 20, 150, 0.025, (1.0, 1.0))
    monkeypatch.setattr(predictive, "_CHUNK_BYTES", 8 * 8 * 151 * 4)  # 4 trials per chunk
    chunked = pp_confirmatory(y_t, n_t, 7, 20, 150, 0.025, (1.0, 1.0))
    np.testing.assert_array_equal(whole, chunked)
