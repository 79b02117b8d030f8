"""BATTLE's hierarchical probit model: the exact quadrature engine (platform_sim.posterior.probit)
against independent references, its closed forms and invariants, BATTLE's rules, and its PyMC
twin (platform_sim.bayes.probit).

Evidence, all with fixed inputs or fixed seeds:

1. Brute force. ``_fine_reference`` integrates one treatment on a fixed grid that does not adapt
   to the data: the trapezoid rule in phi (601 nodes over the range where a first pass on a
   801-node grid over [min(phi_mean - 13 tau, -12), max(phi_mean + 13 tau, 12)] finds the log
   posterior within 60 of its maximum), and Gauss-Legendre with 800 nodes on each piece of
   [-mu_max, mu_max] cut at Phi^-1(c) in mu, 2,400 mu nodes against the engine's ~100-200 per
   group. It agrees with itself at twice the resolution to 3e-12 on every fixed case (measured;
   checked in the slow run).
2. Adaptive quadrature: ``_quad_reference``, scipy's quad_vec nested twice (relative tolerance
   1e-11), on small data sets (it takes seconds per data set).
3. Closed forms: a treatment without patients, and the limit of many patients.
4. Invariants: the symmetry y -> n - y, phi_mean -> -phi_mean; permutations of groups;
   treatments independent of each other; batches equal to single rows; monotonicity.
5. The PyMC twin: posterior means, sds and Pr(DCR > c) agree within 4 Monte Carlo standard
   errors (ArviZ) plus the quadrature bound, with r_hat < 1.01 (skipped without PyMC).

The engine promises ``ACCURACY`` = 1e-7 absolute; the measured error against the references is
below 1e-10 (see docs/probit_model.md).
"""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
from scipy import integrate, special

from platform_sim.posterior.probit import (
    ACCURACY,
    BATTLE_EFFECTIVE_PROB,
    BATTLE_NULL_DCR,
    BATTLE_SUSPEND_PROB,
    BATTLE_TARGET_DCR,
    ProbitPrior,
    battle_effective,
    battle_randomization,
    battle_suspension,
    probit_posterior,
    probit_posterior_mixture,
)

THRESHOLDS = (0.3, 0.5)
DEFAULT = ProbitPrior()


# --------------------------------------------------------------------------- references


def _reference_pass(y, n, phi, mu, w_mu, prior, thresholds):
    log_post = -0.5 * (phi - prior.phi_mean) ** 2 / prior.tau**2
    g = special.ndtr(mu)
    cuts = special.ndtri(np.asarray(thresholds))
    cells = []
    for yk, nk in zip(y, n):
        ll = yk * special.log_ndtr(mu) + (nk - yk) * special.log_ndtr(-mu)
        e = ll[None, :] - 0.5 * (mu[None, :] - phi[:, None]) ** 2 / prior.sigma**2
        top = e.max(axis=1, keepdims=True)
        a = w_mu[None, :] * np.exp(e - top)
        s0 = a.sum(axis=1)
        log_post = log_post + np.log(s0) + top[:, 0]
        above = np.stack([(a @ (mu > c)) / s0 for c in cuts], axis=1)
        cells.append(((a @ g) / s0, (a @ (g * g)) / s0, above))
    return log_post, cells


def _fine_reference(y, n, prior=DEFAULT, thresholds=THRESHOLDS, n_phi=601, n_mu=800, with_evidence=False):
    """Mean, sd and Pr(DCR > c) of each group of ONE treatment on a fixed fine grid (see the module
    docstring), and with ``with_evidence`` the log marginal likelihood of its outcomes."""
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    phi_lo = min(prior.phi_mean - 13 * prior.tau, -12.0)
    phi_hi = max(prior.phi_mean + 13 * prior.tau, 12.0)
    mu_max = 14.0 * max(prior.sigma, 1.0) + max(abs(phi_lo), abs(phi_hi))
    edges = np.concatenate([[-mu_max], np.sort(special.ndtri(np.asarray(thresholds))), [mu_max]])
    t, w = np.polynomial.legendre.leggauss(n_mu)
    mu = np.concatenate([(lo + hi) / 2 + (hi - lo) / 2 * t for lo, hi in pairwise(edges)])
    w_mu = np.concatenate([(hi - lo) / 2 * w for lo, hi in pairwise(edges)])
    coarse = np.linspace(phi_lo, phi_hi, 801)
    log_post, _ = _reference_pass(y, n, coarse, mu, w_mu, prior, thresholds)
    keep = np.flatnonzero(log_post > log_post.max() - 60.0)
    phi = np.linspace(coarse[max(keep[0] - 1, 0)], coarse[min(keep[-1] + 1, coarse.size - 1)], n_phi)
    log_post, cells = _reference_pass(y, n, phi, mu, w_mu, prior, thresholds)
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    mean = np.array([weight @ r1 for r1, _, _ in cells])
    second = np.array([weight @ r2 for _, r2, _ in cells])
    above = np.array([weight @ rt for _, _, rt in cells])
    if not with_evidence:
        return mean, np.sqrt(second - mean**2), above
    log_evidence = (
        log_post.max()
        + np.log(np.exp(log_post - log_post.max()).sum() * (phi[1] - phi[0]))
        - 0.5 * np.log(2 * np.pi * prior.tau**2)
        - 0.5 * y.size * np.log(2 * np.pi * prior.sigma**2)
    )
    return mean, np.sqrt(second - mean**2), above, log_evidence


def _quad_reference(y, n, prior=DEFAULT, thresholds=THRESHOLDS, eps=1e-11):
    """The same by nested adaptive quadrature (scipy quad_vec) over phi and each mu_k."""
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    cuts = special.ndtri(np.asarray(thresholds))
    s2 = prior.sigma**2
    mu_max = 12.0 * prior.sigma + 12.0 * prior.tau + abs(prior.phi_mean) + 3.0

    def inner(phi):
        rows = []
        for yk, nk in zip(y, n):

            def f(mu, yk=yk, nk=nk):
                e = yk * special.log_ndtr(mu) + (nk - yk) * special.log_ndtr(-mu) - 0.5 * (mu - phi) ** 2 / s2
                g = special.ndtr(mu)
                return np.exp(e) * np.concatenate([[1.0, g, g * g], (mu > cuts).astype(float)])

            val, _ = integrate.quad_vec(f, -mu_max, mu_max, epsabs=0, epsrel=eps, points=[*cuts, phi], limit=2000)
            rows.append(val)
        return np.array(rows)

    def outer(phi):
        vals = inner(phi)
        density = np.exp(-0.5 * (phi - prior.phi_mean) ** 2 / prior.tau**2) * np.prod(vals[:, 0])
        return density * np.concatenate([[1.0], (vals[:, 1:] / vals[:, :1]).ravel()])

    lo, hi = prior.phi_mean - 12 * prior.tau, prior.phi_mean + 12 * prior.tau
    total, _ = integrate.quad_vec(outer, lo, hi, epsabs=0, epsrel=eps, points=[prior.phi_mean], limit=2000)
    res = (total[1:] / total[0]).reshape(y.size, -1)
    mean = res[:, 0]
    return mean, np.sqrt(res[:, 1] - mean**2), res[:, 2:]


def _engine(y, n, prior=DEFAULT, thresholds=THRESHOLDS):
    post = probit_posterior(np.asarray([y]), np.asarray([n]), thresholds=thresholds, prior=prior)
    return post.mean[0], post.sd[0], post.prob_above[0]


def _max_error(got, want):
    return max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))


# --------------------------------------------------------------------------- accuracy

# One treatment's groups (y, n) with the prior: extremes the brief names (0/n, n/n, n = 0,
# n = 500), a conflict between groups, a single group, and priors from strong to no borrowing.
FIXED_CASES = [
    ([3, 0, 5], [10, 0, 12], ProbitPrior()),
    ([0, 500, 250, 0, 3], [500, 500, 500, 0, 3], ProbitPrior()),
    ([0, 0, 0, 0, 0], [500, 40, 3, 1, 0], ProbitPrior()),
    ([500, 40, 3, 1, 0], [500, 40, 3, 1, 0], ProbitPrior()),
    ([2, 7, 1, 0, 30], [2, 9, 40, 1, 60], ProbitPrior(phi_mean=-0.5, tau=2.0, sigma=0.5)),
    ([0, 0, 1, 0, 40], [0, 3, 1, 0, 40], ProbitPrior(tau=10.0, sigma=5.0)),
    ([1, 0, 2, 0, 1], [2, 1, 3, 0, 4], ProbitPrior(tau=1.0, sigma=0.05)),
    ([0], [500], ProbitPrior(phi_mean=2.0, tau=0.1, sigma=0.1)),
    ([120, 30], [200, 200], ProbitPrior(tau=0.5, sigma=2.0)),
    # corners of the range a design may give (design.strata.probit: sigma in [0.05, 5], tau up to
    # 10, tau / sigma up to 70, phi_mean in [-10, 10]) with data against the prior
    ([0, 0, 0, 0, 0], [500, 40, 3, 1, 0], ProbitPrior(phi_mean=10.0, tau=10.0, sigma=5.0)),
    ([500, 40, 3, 1, 0], [500, 40, 3, 1, 0], ProbitPrior(phi_mean=-10.0, tau=10.0, sigma=5.0)),
    ([1, 0, 2, 0, 1], [2, 1, 3, 0, 4], ProbitPrior(phi_mean=-10.0, tau=3.5, sigma=0.05)),
]


@pytest.mark.parametrize("y, n, prior", FIXED_CASES)
def test_matches_brute_force(y, n, prior):
    assert _max_error(_engine(y, n, prior), _fine_reference(y, n, prior)) < ACCURACY


@pytest.mark.slow
@pytest.mark.parametrize("y, n, prior", FIXED_CASES)
def test_brute_force_reference_is_converged(y, n, prior):
    coarse = _fine_reference(y, n, prior)
    fine = _fine_reference(y, n, prior, n_phi=1201, n_mu=1500)
    assert _max_error(coarse, fine) < 1e-11


@pytest.mark.parametrize("y, n", [([1], [1]), pytest.param([0, 2], [5, 4], marks=pytest.mark.slow)])
def test_matches_adaptive_quadrature(y, n):
    want = _quad_reference(y, n)
    assert _max_error(_engine(y, n), want) < ACCURACY
    assert _max_error(_fine_reference(y, n), want) < 1e-11  # the two references agree


@pytest.mark.slow
def test_matches_brute_force_on_random_data():
    rng = np.random.default_rng(20080301)
    priors = [
        ProbitPrior(),
        ProbitPrior(tau=10.0, sigma=5.0),
        ProbitPrior(phi_mean=-0.5, tau=2.0, sigma=0.5),
        ProbitPrior(tau=0.5, sigma=2.0),
        ProbitPrior(tau=3.0, sigma=0.2),
    ]
    worst = 0.0
    for case in range(60):
        prior = priors[case % len(priors)]
        k = int(rng.integers(1, 6))
        n = [
            rng.integers(0, 8, k),
            rng.integers(0, 80, k),
            rng.choice([0, 1, 2, 300, 500], k),
            rng.integers(100, 501, k),
        ][case % 4]
        y = rng.binomial(n, rng.uniform(0.02, 0.98, k))
        extreme = rng.uniform(size=k)
        y = np.where(extreme < 0.15, 0, np.where(extreme > 0.85, n, y))
        worst = max(worst, _max_error(_engine(y, n, prior), _fine_reference(y, n, prior)))
    assert worst < ACCURACY


# --------------------------------------------------------------------------- closed forms and limits


@pytest.mark.parametrize("prior", [ProbitPrior(), ProbitPrior(phi_mean=0.4, tau=0.7, sigma=1.5)])
def test_treatment_without_patients_has_the_prior_predictive(prior):
    # mu_k ~ N(phi_mean, sigma^2 + tau^2) a priori: E[Phi(mu)] = Phi(phi_mean / sqrt(1 + v)),
    # Pr(Phi(mu) > c) = Phi((phi_mean - Phi^-1(c)) / sqrt(v)), and E[Phi(mu)^2] is the bivariate
    # normal probability Pr(X1 < m, X2 < m) with correlation v / (1 + v).
    v = prior.sigma**2 + prior.tau**2
    post = probit_posterior(np.zeros((1, 2, 3), int), np.zeros((1, 2, 3), int), thresholds=THRESHOLDS, prior=prior)
    h = prior.phi_mean / np.sqrt(1 + v)
    rho = v / (1 + v)
    second = special.ndtr(h) - 2 * special.owens_t(h, np.sqrt((1 - rho) / (1 + rho)))
    mean = special.ndtr(h)
    np.testing.assert_allclose(post.mean, mean, atol=ACCURACY, rtol=0)
    np.testing.assert_allclose(post.sd, np.sqrt(second - mean**2), atol=ACCURACY, rtol=0)
    for i, c in enumerate(THRESHOLDS):
        want = special.ndtr((prior.phi_mean - special.ndtri(c)) / np.sqrt(v))
        np.testing.assert_allclose(post.prob_above[..., i], want, atol=ACCURACY, rtol=0)


def test_many_patients_pin_the_rate():
    # 10,000 patients in one group: the posterior is close to the observed rate with the
    # binomial standard error
    post = probit_posterior(np.array([[[3000, 1]]]), np.array([[[10000, 2]]]), thresholds=(0.29, 0.31))
    assert abs(post.mean[0, 0, 0] - 0.3) < 1e-3
    assert abs(post.sd[0, 0, 0] / np.sqrt(0.3 * 0.7 / 10000) - 1) < 0.02
    assert post.prob_above[0, 0, 0, 0] > 0.98 and post.prob_above[0, 0, 0, 1] < 0.02


def test_symmetry_of_success_and_failure():
    # y -> n - y with phi_mean -> -phi_mean maps mu -> -mu: the mean DCR goes to 1 - mean and
    # Pr(DCR > c) to 1 - Pr(DCR > 1 - c)
    y = np.array([[[3, 0, 7, 0], [40, 1, 0, 2]]])
    n = np.array([[[10, 0, 7, 4], [90, 1, 500, 2]]])
    prior = ProbitPrior(phi_mean=0.3, tau=1.2, sigma=0.8)
    flipped = ProbitPrior(phi_mean=-0.3, tau=1.2, sigma=0.8)
    a = probit_posterior(y, n, thresholds=(0.3, 0.5), prior=prior)
    b = probit_posterior(n - y, n, thresholds=(0.7, 0.5), prior=flipped)
    np.testing.assert_allclose(a.mean, 1 - b.mean, atol=ACCURACY, rtol=0)
    np.testing.assert_allclose(a.sd, b.sd, atol=ACCURACY, rtol=0)
    np.testing.assert_allclose(a.prob_above, 1 - b.prob_above, atol=ACCURACY, rtol=0)


def test_batches_permutations_and_treatments_are_consistent():
    rng = np.random.default_rng(7)
    n = rng.integers(0, 40, (6, 3, 5))
    y = rng.binomial(n, 0.4)
    batch = probit_posterior(y, n, thresholds=THRESHOLDS)
    # one trial at a time, and with leading axes (trial, look)
    for t in range(6):
        one = probit_posterior(y[t : t + 1], n[t : t + 1], thresholds=THRESHOLDS)
        np.testing.assert_allclose(one.mean[0], batch.mean[t], atol=1e-13, rtol=0)
        np.testing.assert_allclose(one.prob_above[0], batch.prob_above[t], atol=1e-13, rtol=0)
    looks = probit_posterior(y.reshape(2, 3, 3, 5), n.reshape(2, 3, 3, 5), thresholds=THRESHOLDS)
    np.testing.assert_allclose(looks.sd.reshape(6, 3, 5), batch.sd, atol=1e-13, rtol=0)
    # groups are exchangeable within a treatment
    perm = np.array([3, 0, 4, 1, 2])
    permuted = probit_posterior(y[..., perm], n[..., perm], thresholds=THRESHOLDS)
    np.testing.assert_allclose(permuted.mean, batch.mean[..., perm], atol=ACCURACY, rtol=0)
    np.testing.assert_allclose(permuted.prob_above, batch.prob_above[..., perm, :], atol=ACCURACY, rtol=0)
    # treatments share no parameter: changing treatment 2's data leaves treatments 0 and 1 alone
    y2 = y.copy()
    y2[:, 2] = n[:, 2]
    other = probit_posterior(y2, n, thresholds=THRESHOLDS)
    np.testing.assert_array_equal(other.mean[:, :2], batch.mean[:, :2])
    assert np.all(other.mean[:, 2] >= batch.mean[:, 2])
    # thresholds are returned in the order asked for
    reverse = probit_posterior(y, n, thresholds=(0.5, 0.3))
    np.testing.assert_array_equal(reverse.prob_above[..., ::-1], batch.prob_above)
    repeated = probit_posterior(y, n, thresholds=(0.3, 0.5, 0.3))
    np.testing.assert_array_equal(repeated.prob_above[..., [0, 1]], batch.prob_above)
    np.testing.assert_array_equal(repeated.prob_above[..., 2], batch.prob_above[..., 0])
    none = probit_posterior(y, n, thresholds=())
    assert none.prob_above.shape == (6, 3, 5, 0)
    np.testing.assert_allclose(none.mean, batch.mean, atol=ACCURACY, rtol=0)  # other panels without cuts
    np.testing.assert_array_equal(reverse.prob_above_threshold(0.3), batch.prob_above_threshold(0.3))


def test_more_successes_raise_the_rate_and_borrowing_follows():
    n = np.full((1, 1, 3), 12)
    y = np.array([[[k, 6, 6] for k in range(13)]]).reshape(13, 1, 3)
    post = probit_posterior(y, np.broadcast_to(n, y.shape), thresholds=(0.3,))
    assert np.all(np.diff(post.mean[:, 0, 0]) > 0)
    assert np.all(np.diff(post.prob_above[:, 0, 0, 0]) > 0)
    # the other groups borrow: their rate rises with group 0's successes, but less
    assert np.all(np.diff(post.mean[:, 0, 1]) > 0)
    assert np.all(np.diff(post.mean[:, 0, 1]) < np.diff(post.mean[:, 0, 0]))


def test_log_evidence_has_closed_forms_for_one_and_two_patients():
    # one group: Pr(y = 1) = E[Phi(mu)] and Pr(y1 = y2 = 1) = E[Phi(mu)^2] with mu ~ N(phi_mean, v)
    prior = ProbitPrior(phi_mean=0.3, tau=0.8, sigma=1.4)
    v = prior.sigma**2 + prior.tau**2
    h = prior.phi_mean / np.sqrt(1 + v)
    rho = v / (1 + v)
    both = special.ndtr(h) - 2 * special.owens_t(h, np.sqrt((1 - rho) / (1 + rho)))
    y = np.array([[[1, 0]], [[0, 0]], [[2, 0]]])
    n = np.array([[[1, 0]], [[1, 0]], [[2, 0]]])
    post = probit_posterior(y, n, prior=prior)
    want = np.log([special.ndtr(h), 1 - special.ndtr(h), both])
    np.testing.assert_allclose(post.log_evidence[:, 0], want, atol=ACCURACY, rtol=0)
    assert post.log_evidence.shape == (3, 1)


@pytest.mark.parametrize("y, n, prior", FIXED_CASES[:6])
def test_log_evidence_matches_brute_force(y, n, prior):
    got = probit_posterior(np.asarray([[y]]), np.asarray([[n]]), prior=prior).log_evidence[0, 0]
    want = _fine_reference(y, n, prior, with_evidence=True)[3]
    assert abs(got - want) < ACCURACY


def test_mixture_over_sigma_is_the_evidence_weighted_posterior():
    y, n = [0, 9, 4], [6, 10, 8]
    priors = [ProbitPrior(sigma=0.3), ProbitPrior(sigma=1.0), ProbitPrior(sigma=2.5)]
    weights = np.array([0.2, 0.5, 0.3])
    post = probit_posterior_mixture(np.asarray([[y]]), np.asarray([[n]]), priors, weights, thresholds=THRESHOLDS)
    refs = [_fine_reference(y, n, prior, with_evidence=True) for prior in priors]
    log_joint = np.log(weights) + np.array([r[3] for r in refs])
    mix = np.exp(log_joint - log_joint.max())
    mix /= mix.sum()
    mean = sum(m * r[0] for m, r in zip(mix, refs))
    second = sum(m * (r[1] ** 2 + r[0] ** 2) for m, r in zip(mix, refs))
    above = sum(m * r[2] for m, r in zip(mix, refs))
    assert (
        _max_error((post.mean[0, 0], post.sd[0, 0], post.prob_above[0, 0]), (mean, np.sqrt(second - mean**2), above))
        < ACCURACY
    )
    assert (
        abs(post.log_evidence[0, 0] - (log_joint.max() + np.log(np.exp(log_joint - log_joint.max()).sum()))) < ACCURACY
    )
    # the data favour heterogeneous groups (0/6 next to 9/10): most weight moves to large sigma
    assert mix[2] > weights[2] and mix[0] < weights[0]
    # one prior: the mixture is that prior's posterior
    single = probit_posterior_mixture(np.asarray([[y]]), np.asarray([[n]]), priors[1:2], thresholds=THRESHOLDS)
    plain = probit_posterior(np.asarray([[y]]), np.asarray([[n]]), prior=priors[1], thresholds=THRESHOLDS)
    np.testing.assert_allclose(single.mean, plain.mean, atol=1e-15, rtol=0)
    np.testing.assert_allclose(single.prob_above, plain.prob_above, atol=1e-15, rtol=0)
    with pytest.raises(ValueError, match=r"weights must be 3 non-negative numbers"):
        probit_posterior_mixture(np.asarray([[y]]), np.asarray([[n]]), priors, [1.0, -1.0, 1.0])
    with pytest.raises(TypeError, match=r"priors\[1\] must be a ProbitPrior"):
        probit_posterior_mixture(np.asarray([[y]]), np.asarray([[n]]), [priors[0], 1.0])


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "y, n, thresholds, match",
    [
        ([[[3, 1]]], [[[2, 1]]], (0.3,), r"0 <= y <= n; at index \(0, 0, 0\): y = 3, n = 2"),
        ([[[-1, 1]]], [[[2, 1]]], (0.3,), r"0 <= y <= n"),
        ([[[1.5, 1]]], [[[2, 1]]], (0.3,), r"y must hold whole numbers of patients, got 1.5"),
        ([[[1, 1]]], [[[2, np.nan]]], (0.3,), r"n must hold whole numbers"),
        ([[[1, 1]]], [[[2, 1, 3]]], (0.3,), r"same shape"),
        ([1, 1], [2, 1], (0.3,), r"axes \(\.\.\., J treatments, K marker groups\)"),
        ([[[1, 1]]], [[[2, 1]]], (0.0,), r"thresholds must be DCR values strictly between 0 and 1, got 0.0"),
        ([[[1, 1]]], [[[2, 1]]], (1.3,), r"got 1.3"),
    ],
)
def test_bad_counts_are_refused(y, n, thresholds, match):
    with pytest.raises(ValueError, match=match):
        probit_posterior(np.asarray(y), np.asarray(n), thresholds=thresholds)


def test_prior_accepts_numpy_numbers():
    assert ProbitPrior(phi_mean=np.float32(0.5), tau=np.int64(2), sigma=np.float64(0.5)).tau == 2


@pytest.mark.parametrize(
    "field, value",
    [("sigma", 0.0), ("tau", -1.0), ("sigma", float("inf")), ("phi_mean", float("nan")), ("tau", True), ("sigma", "1")],
)
def test_bad_prior_is_refused(field, value):
    with pytest.raises(ValueError, match=rf"ProbitPrior\.{field} must be"):
        ProbitPrior(**{field: value})
    with pytest.raises(TypeError, match="prior must be a ProbitPrior"):
        probit_posterior(np.ones((1, 1, 1), int), np.ones((1, 1, 1), int), prior={"sigma": 1.0})


def test_nearly_complete_pooling_is_refused_with_the_reason():
    # sigma = tau / 1000 would need a phi grid finer than sigma over the whole range of phi
    with pytest.raises(RuntimeError, match=r"tau / sigma = 1e\+03 is too large"):
        probit_posterior(np.array([[[7, 3, 0]]]), np.array([[[10, 10, 0]]]), prior=ProbitPrior(tau=1.0, sigma=0.001))


def test_unknown_threshold_is_a_clear_error():
    post = probit_posterior(np.ones((1, 1, 1), int), np.ones((1, 1, 1), int), thresholds=(0.3,))
    with pytest.raises(KeyError, match=r"threshold 0.5 was not computed; thresholds are \(0.3,\)"):
        post.prob_above_threshold(0.5)


# --------------------------------------------------------------------------- BATTLE's rules


def test_battle_constants_are_the_published_rule():
    assert (BATTLE_NULL_DCR, BATTLE_EFFECTIVE_PROB) == (0.3, 0.8)
    assert (BATTLE_TARGET_DCR, BATTLE_SUSPEND_PROB) == (0.5, 0.1)


def test_randomization_is_proportional_to_the_posterior_mean_dcr():
    mean = np.array([[[0.2, 0.5], [0.4, 0.1], [0.2, 0.4]]])  # (1 trial, 3 treatments, 2 groups)
    probs = battle_randomization(mean)
    np.testing.assert_allclose(probs[0, :, 0], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(probs[0, :, 1], [0.5, 0.1, 0.4])
    np.testing.assert_allclose(probs.sum(axis=-2), 1.0)
    open_arms = np.array([[True, False], [False, True], [True, False]])
    probs = battle_randomization(mean, open_arms)
    np.testing.assert_allclose(probs[0, :, 0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(probs[0, :, 1], [0.0, 1.0, 0.0])
    closed = battle_randomization(mean, np.zeros((3, 2), bool))
    np.testing.assert_array_equal(closed, 0.0)


def test_randomization_from_the_posterior_favours_the_better_treatment():
    # group 0: treatment 1 controls disease in 9 of 10, treatment 0 in 1 of 10
    y = np.array([[[1, 3], [9, 3]]])
    n = np.array([[[10, 6], [10, 6]]])
    post = probit_posterior(y, n, thresholds=(BATTLE_NULL_DCR, BATTLE_TARGET_DCR))
    probs = battle_randomization(post.mean)
    assert probs[0, 1, 0] > 0.75
    assert probs[0, 0, 0] < 0.25
    assert probs[0, 1, 1] > probs[0, 0, 1]  # borrowing within treatment 1 lifts group 1 too
    suspended = battle_suspension(post.prob_above_threshold(BATTLE_TARGET_DCR))
    effective = battle_effective(post.prob_above_threshold(BATTLE_NULL_DCR))
    assert suspended[0, 0, 0] and not suspended[0, 1, 0]
    assert effective[0, 1, 0] and not effective[0, 0, 0]


def test_suspension_and_decision_cutoffs():
    prob = np.array([0.05, 0.1, 0.5, 0.8, 0.81])
    np.testing.assert_array_equal(battle_suspension(prob), [True, False, False, False, False])
    np.testing.assert_array_equal(battle_effective(prob), [False, False, False, False, True])
    np.testing.assert_array_equal(battle_suspension(prob, cutoff=0.6), [True, True, True, False, False])
    with pytest.raises(ValueError, match=r"cutoff must be a probability in \[0, 1\], got 1.5"):
        battle_effective(prob, cutoff=1.5)


@pytest.mark.parametrize(
    "mean, open_arms, match",
    [
        ([0.2, 0.3], None, r"axes \(\.\.\., J treatments, K marker groups\)"),
        ([[0.2, 1.3]], None, r"disease control rates in \[0, 1\], got 1.3"),
        ([[0.2, 0.3]], [[1, 0]], r"open_arms must be a boolean array"),
        ([[0.2, 0.3]], [[True, False, True]], r"does not broadcast"),
    ],
)
def test_bad_randomization_inputs_are_refused(mean, open_arms, match):
    with pytest.raises(ValueError, match=match):
        battle_randomization(np.asarray(mean), None if open_arms is None else np.asarray(open_arms))


# --------------------------------------------------------------------------- the PyMC twin


def test_bayes_probit_imports_without_pymc():
    code = "import sys, platform_sim.bayes.probit, platform_sim.posterior.probit; assert 'pymc' not in sys.modules and 'arviz' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


PYMC_DATA = [
    # (y, n) for 2 treatments x 3 marker groups: sparse with an empty group; all-or-nothing groups
    (np.array([[3, 0, 5], [1, 2, 0]]), np.array([[10, 0, 12], [4, 3, 2]])),
    (np.array([[0, 6, 1], [8, 8, 2]]), np.array([[7, 6, 9], [8, 20, 2]])),
]


@pytest.fixture(scope="module")
def pymc_fits():
    pytest.importorskip("pymc")
    pytest.importorskip("arviz")
    from platform_sim.bayes.probit import dcr_summary, fit_probit

    fits = []
    for seed, (y, n) in enumerate(PYMC_DATA):
        idata = fit_probit(y, n, draws=1500, tune=1000, chains=2, seed=seed + 1)
        fits.append((y, n, dcr_summary(idata, thresholds=THRESHOLDS), int(idata.sample_stats["diverging"].sum())))
    return fits


def test_exact_posterior_agrees_with_nuts(pymc_fits):
    for y, n, table, divergences in pymc_fits:
        assert divergences == 0
        assert table["r_hat"].max() < 1.01
        exact = probit_posterior(y[None], n[None], thresholds=THRESHOLDS)
        checks = [("mean", exact.mean[0]), ("sd", exact.sd[0])]
        checks += [(f"p_above_{c:g}", exact.prob_above[0, ..., i]) for i, c in enumerate(THRESHOLDS)]
        for column, value in checks:
            mcse = table[f"mcse_{column}"].to_numpy()
            if column.startswith("p_above"):
                # when (almost) every draw falls on one side, ArviZ's MCSE of the indicator's mean
                # is 0 or NaN; the Monte Carlo error is then sqrt(p (1 - p) / ESS) at the exact p
                p = value.ravel()
                mcse = np.fmax(np.nan_to_num(mcse), np.sqrt(p * (1 - p) / table["ess_bulk"].to_numpy()))
            tolerance = 4 * mcse + ACCURACY
            gap = np.abs(table[column].to_numpy() - value.ravel())
            assert np.all(gap < tolerance), (column, y.tolist(), n.tolist(), gap / tolerance)
