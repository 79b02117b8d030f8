"""Exponential-model survival tools (platform_sim.posterior.survival) against independent references.

Evidence, all with fixed inputs or fixed seeds:

1. Brute force: scipy.integrate.quad of the defining integral of P(HR < h), checked two ways;
   scipy.stats.gamma quantiles for the intervals.
2. Monte Carlo within 4 Monte Carlo standard errors (derived for each statistic); a correct
   value fails one comparison with chance ~6e-5.
3. scipy.stats.logrank for the log-rank kernel (many ties, censoring, masks, edge cases), and a
   plain Python sweep over the distinct event times for O - E and V.
4. Published values and limits: Schoenfeld's event count for HR 0.75 / 80% power; the
   predictive probability tends to Schoenfeld's power as the posterior concentrates; a
   simulation of 2,000 two-arm trials reproduces Schoenfeld's power.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from platform_sim.posterior.survival import (
    gamma_posterior,
    hazard_interval,
    log_hr_moments,
    logrank_vs_control,
    median_pfs,
    pp_confirmatory_survival,
    prob_hr_below,
    schoenfeld_events,
    schoenfeld_power,
    warm_up,
)

MC_SIGMAS = 4.0
Z_975 = -special.ndtri(0.025)
VISIT = 1.38  # 6 weeks in months

# (a_k, b_k, a_c, b_c): exponential-like (shape 1), small, moderate and large shapes, mixed.
POSTERIORS = [
    (1.0, 2.0, 1.0, 2.0),
    (1.0, 5.0, 2.0, 3.0),
    (5.5, 40.0, 12.0, 60.0),
    (40.0, 310.0, 55.0, 290.0),
    (300.0, 1800.0, 300.0, 1200.0),
    (300.0, 2000.0, 1.0, 4.0),
    (1.0, 0.5, 300.0, 1500.0),
    (2.0, 100.0, 3.0, 80.0),
]
H_VALUES = [0.5, 0.7, 1.0, 1.3]


# --------------------------------------------------------------------------- gamma posteriors


def test_gamma_posterior_adds_events_and_exposure():
    a, b = gamma_posterior([3, 0], [12.5, 4.0], 1.0, 2.0)
    np.testing.assert_array_equal(a, [4.0, 1.0])
    np.testing.assert_array_equal(b, [14.5, 6.0])
    assert a.dtype == np.float64 and b.dtype == np.float64


def _gamma_breakpoints(a, b, lo=0.0):
    """Breakpoints for quad around the bulk of Gamma(a, rate b), up to +-40 sd (from lo)."""
    mean, sd = a / b, math.sqrt(a) / b
    pts = sorted({max(lo, mean + z * sd) for z in (-40, -20, -10, -5, -2, 0, 2, 5, 10, 20, 40)})
    return [lo] + [p for p in pts if p > lo]


def _piecewise_quad(f, pts):
    """Integral of f over [pts[0], inf) as quad on each piece between breakpoints plus the tail."""
    total = 0.0
    for left, right in itertools.pairwise(pts):
        total += integrate.quad(f, left, right, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    total += integrate.quad(f, pts[-1], np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    return total


def _hr_below_quad(a_k, b_k, a_c, b_c, h):
    """P(lambda_k < h lambda_c) two ways: over lambda_c (density_c x CDF_k) and over lambda_k."""
    over_c = _piecewise_quad(
        lambda x: stats.gamma.pdf(x, a_c, scale=1.0 / b_c) * special.gammainc(a_k, b_k * h * x),
        _gamma_breakpoints(a_c, b_c),
    )
    over_k = _piecewise_quad(
        lambda x: stats.gamma.pdf(x, a_k, scale=1.0 / b_k) * special.gammaincc(a_c, b_c * x / h),
        _gamma_breakpoints(a_k, b_k),
    )
    return over_c, over_k


@pytest.mark.parametrize("post", POSTERIORS)
def test_prob_hr_below_matches_quadrature(post):
    a_k, b_k, a_c, b_c = post
    got = prob_hr_below(a_k, b_k, a_c, b_c, np.array(H_VALUES))
    assert got.shape == (len(H_VALUES),)
    for h, value in zip(H_VALUES, got):
        over_c, over_k = _hr_below_quad(a_k, b_k, a_c, b_c, h)
        assert abs(over_c - over_k) < 1e-10  # the reference itself
        assert abs(value - over_c) < 1e-8, (post, h, value, over_c)


def test_prob_hr_below_broadcasts_and_complements():
    a_k, b_k, a_c, b_c = (np.array(v)[:, None] for v in zip(*POSTERIORS))
    h = np.array([0.01, 0.5, 1.0, 2.0, 1e4])[None, :]
    p = prob_hr_below(a_k, b_k, a_c, b_c, h)
    assert p.shape == (len(POSTERIORS), 5)
    # P(lambda_k / lambda_c < h) + P(lambda_c / lambda_k < 1 / h) = 1 (continuous distributions)
    np.testing.assert_allclose(p + prob_hr_below(a_c, b_c, a_k, b_k, 1.0 / h), 1.0, rtol=0, atol=1e-14)
    assert np.all(np.diff(p, axis=1) >= 0)
    assert np.all((p >= 0) & (p <= 1))
    # scalars in, scalar out
    assert np.ndim(prob_hr_below(2.0, 10.0, 3.0, 10.0)) == 0


def test_prob_hr_below_small_probabilities_and_branch_switch():
    # a tiny P(HR < h) keeps full relative accuracy: I_x(a_k, a_c) at x = r / (1 + r)
    a_k, b_k, a_c, b_c = 2.0, 1.0, 3.0, 1e9
    r = b_k / b_c
    small = prob_hr_below(a_k, b_k, a_c, b_c)
    assert 0 < small < 1e-15
    # series of I_x(2, 3) = x^2 (6 - 8x + 3x^2) for small x
    x = r / (1 + r)
    assert small == pytest.approx(x * x * (6 - 8 * x + 3 * x * x), rel=1e-12)
    # continuity where the evaluation switches to the complement (r = 1)
    a_k, b_k, a_c, b_c = 7.0, 30.0, 9.0, 30.0
    below = prob_hr_below(a_k, b_k, a_c, b_c, 1.0 - 1e-13)
    above = prob_hr_below(a_k, b_k, a_c, b_c, 1.0 + 1e-13)
    assert below <= above and above - below < 1e-12


# --------------------------------------------------------------------------- intervals


def test_hazard_interval_and_median_pfs_match_scipy_gamma():
    a = np.array([1.0, 3.0, 17.5, 300.0])
    b = np.array([2.0, 25.0, 90.0, 1800.0])
    for level in (0.8, 0.95):
        lo, hi = hazard_interval(a, b, level)
        tail = (1 - level) / 2
        np.testing.assert_allclose(lo, stats.gamma.ppf(tail, a, scale=1 / b), rtol=1e-12)
        np.testing.assert_allclose(hi, stats.gamma.ppf(1 - tail, a, scale=1 / b), rtol=1e-12)
        est, m_lo, m_hi = median_pfs(a, b, level)
        np.testing.assert_allclose(est, math.log(2) / stats.gamma.ppf(0.5, a, scale=1 / b), rtol=1e-12)
        np.testing.assert_allclose(m_lo, math.log(2) / hi, rtol=1e-14)
        np.testing.assert_allclose(m_hi, math.log(2) / lo, rtol=1e-14)
        assert np.all((m_lo < est) & (est < m_hi))
    # the interval of log(2) / lambda is its own equal-tailed interval
    rng = np.random.default_rng(7)
    draws = math.log(2) / (rng.gamma(17.5, 1 / 90.0, 400_000))
    est, m_lo, m_hi = median_pfs(17.5, 90.0)
    n = draws.size
    for q, value in ((0.5, est), (0.025, m_lo), (0.975, m_hi)):
        frac = np.mean(draws <= value)
        assert abs(frac - q) < MC_SIGMAS * math.sqrt(q * (1 - q) / n)


# --------------------------------------------------------------------------- log HR moments


@pytest.mark.parametrize("post", [POSTERIORS[0], POSTERIORS[2], POSTERIORS[5], POSTERIORS[7]])
def test_log_hr_moments_match_monte_carlo(post):
    a_k, b_k, a_c, b_c = post
    n = 1_000_000
    rng = np.random.default_rng(11)
    log_hr = np.log(rng.gamma(a_k, 1 / b_k, n)) - np.log(rng.gamma(a_c, 1 / b_c, n))
    mean, var = log_hr_moments(a_k, b_k, a_c, b_c)
    # Cumulants of log Gamma(a, 1) are polygamma(j - 1, a); for the difference, even cumulants
    # add: kappa2 = psi1(a_k) + psi1(a_c), kappa4 = psi3(a_k) + psi3(a_c). The sample mean has
    # variance kappa2 / n; the sample variance has variance (mu4 - kappa2^2) / n + O(n^-2)
    # with mu4 = kappa4 + 3 kappa2^2, i.e. (kappa4 + 2 kappa2^2) / n.
    kappa2 = special.polygamma(1, a_k) + special.polygamma(1, a_c)
    kappa4 = special.polygamma(3, a_k) + special.polygamma(3, a_c)
    assert var == pytest.approx(kappa2, rel=1e-15)
    se_mean = math.sqrt(kappa2 / n)
    se_var = math.sqrt((kappa4 + 2 * kappa2**2) / n)
    assert abs(log_hr.mean() - mean) < MC_SIGMAS * se_mean
    assert abs(log_hr.var(ddof=1) - var) < MC_SIGMAS * se_var


# --------------------------------------------------------------------------- predictive probability


@pytest.mark.parametrize(
    ("post", "events"),
    [(POSTERIORS[2], 300), (POSTERIORS[3], 150), ((20.0, 160.0, 30.0, 150.0), 400), ((4.0, 20.0, 4.0, 20.0), 300)],
)
def test_pp_confirmatory_survival_matches_monte_carlo(post, events):
    mean, var = log_hr_moments(*post)
    n = 1_000_000
    rng = np.random.default_rng(5)
    theta = rng.normal(mean, math.sqrt(var), n)
    estimate = rng.normal(theta, 2 / math.sqrt(events))
    mc = np.mean(estimate < -Z_975 * 2 / math.sqrt(events))
    pp = pp_confirmatory_survival(*post, events)
    assert abs(mc - pp) < MC_SIGMAS * math.sqrt(pp * (1 - pp) / n)


def test_pp_confirmatory_survival_limits_and_monotonicity():
    # a posterior concentrated at HR = 0.6: PP -> Schoenfeld's power with 300 events
    big = 1e8
    pp = pp_confirmatory_survival(big, big / 0.6, big, big, 300)
    assert pp == pytest.approx(schoenfeld_power(0.6, 300), abs=1e-6)
    # more control events (same exposure) or fewer events on the arm: higher PP
    prior_a, prior_b = 1.0, 4.0
    d_c = np.arange(10, 40)
    a_k, b_k = gamma_posterior(20, 150.0, prior_a, prior_b)
    a_c, b_c = gamma_posterior(d_c, 150.0, prior_a, prior_b)
    assert np.all(np.diff(pp_confirmatory_survival(a_k, b_k, a_c, b_c, 300)) > 0)
    a_k, b_k = gamma_posterior(d_c, 150.0, prior_a, prior_b)
    a_c, b_c = gamma_posterior(25, 150.0, prior_a, prior_b)
    assert np.all(np.diff(pp_confirmatory_survival(a_k, b_k, a_c, b_c, 300)) < 0)
    # more exposure on the arm (same events): higher PP
    a_k, b_k = gamma_posterior(20, np.linspace(100, 300, 21), prior_a, prior_b)
    assert np.all(np.diff(pp_confirmatory_survival(a_k, b_k, 30.0, 150.0, 300)) > 0)
    # a favourable posterior gains from a larger confirmatory trial
    events = np.array([50, 100, 200, 400, 800])
    assert np.all(np.diff(pp_confirmatory_survival(30.0, 300.0, 40.0, 250.0, events)) > 0)
    with pytest.raises(ValueError):
        pp_confirmatory_survival(1.0, 1.0, 1.0, 1.0, 0)


# --------------------------------------------------------------------------- Schoenfeld


def test_schoenfeld_published_event_count():
    # HR 0.75, 80% power, two-sided 5% (one-sided 2.5%), 1:1: 379.3, i.e. 380 events
    d = schoenfeld_events(0.75, 0.8)
    assert 379 < d < 380
    assert math.ceil(d) == 380


def test_schoenfeld_events_and_power_are_inverse():
    hr = np.array([0.5, 0.6, 0.7, 0.8, 0.9])[:, None, None]
    power = np.array([0.5, 0.8, 0.9, 0.99])[None, :, None]
    allocation = np.array([0.5, 1 / 3, 2 / 3])[None, None, :]
    for alpha in (0.025, 0.05, 0.001):
        d = schoenfeld_events(hr, power, alpha, allocation)
        expected = np.broadcast_to(power, d.shape)
        np.testing.assert_allclose(schoenfeld_power(hr, d, alpha, allocation), expected, rtol=1e-12)
        events = np.array([50.0, 200.0, 1000.0])
        p = schoenfeld_power(0.75, events, alpha)
        np.testing.assert_allclose(schoenfeld_events(0.75, p, alpha), events, rtol=1e-9)
    # one-sided for benefit: at HR 1 the rejection rate is alpha, above 1 it is smaller
    assert schoenfeld_power(1.0, 300) == pytest.approx(0.025, rel=1e-12)
    assert schoenfeld_power(1.2, 300) < 0.025


def test_schoenfeld_power_by_simulation():
    # 2,000 trials: 300 patients 1:1 (150 per arm, random order), accrual uniform over 12
    # months, exponential PFS with control median 4 months and HR 0.7, analysis at month 24.
    # ~274 events per trial, so Schoenfeld's approximation is accurate; the rejection rate of
    # the one-sided log-rank test (z < -z_0.975) matches its power within 4 MCSE.
    rng = np.random.default_rng(2024)
    n_trials, n = 2000, 300
    arm = rng.permuted(np.tile(np.repeat([0, 1], n // 2), (n_trials, 1)), axis=1)
    entry = rng.uniform(0.0, 12.0, (n_trials, n))
    hazard = np.where(arm == 1, 0.7, 1.0) * math.log(2) / 4.0
    pfs = rng.exponential(1.0 / hazard)
    follow_up = 24.0 - entry
    event = pfs <= follow_up
    time = np.minimum(pfs, follow_up)
    z, _, _ = logrank_vs_control(time, event, arm, None, 0, 2)
    rejected = np.mean(z[:, 1] < -Z_975)
    power = schoenfeld_power(0.7, event.sum(axis=1).mean())
    assert abs(rejected - power) < MC_SIGMAS * math.sqrt(power * (1 - power) / n_trials)


# --------------------------------------------------------------------------- log-rank test


def _censored(times, events):
    return stats.CensoredData(uncensored=times[events], right=times[~events])


def _scipy_z(time, event, x_mask, y_mask):
    return stats.logrank(_censored(time[x_mask], event[x_mask]), _censored(time[y_mask], event[y_mask])).statistic


def _reference_sweep(time, event, on_k, on_c):
    """O - E and V of arm k against the controls, looping over the distinct event times."""
    use = on_k | on_c
    t, e, k = time[use], event[use], on_k[use]
    o_e = v = 0.0
    for s in np.unique(t[e]):
        n = np.sum(t >= s)
        n_k = np.sum(k & (t >= s))
        d = np.sum(e & (t == s))
        o_e += np.sum(e & k & (t == s)) - d * n_k / n
        if n > 1:
            v += d * (n_k / n) * (1 - n_k / n) * (n - d) / (n - 1)
    return o_e, v


def _grid_data(rng, n_trials, n, n_arms, none_share=0.05):
    """Times on the 6-week visit grid (events and censoring), some patients out of the analysis."""
    arm = rng.integers(0, n_arms, (n_trials, n))
    arm[rng.random((n_trials, n)) < none_share] = -1
    visits = np.ceil(rng.exponential(5.0 * np.where(arm == 1, 1.5, 1.0)) / VISIT)
    censor_visits = rng.integers(0, 12, (n_trials, n))
    event = visits <= censor_visits
    time = np.where(event, visits, censor_visits) * VISIT
    time[rng.random((n_trials, n)) < 0.03] = np.nan
    return time, event, arm


def _check_against_scipy(time, event, arm, include, control, n_arms):
    z, oe, var = logrank_vs_control(time, event, arm, include, control, n_arms)
    assert z.shape == oe.shape == var.shape == (time.shape[0], n_arms)
    in_analysis = (arm >= 0) & ~np.isnan(time)
    checked = 0
    for t in range(time.shape[0]):
        assert np.isnan(z[t, control]) and np.isnan(oe[t, control]) and np.isnan(var[t, control])
        for k in range(n_arms):
            if k == control:
                continue
            on_k = in_analysis[t] & (arm[t] == k)
            on_c = in_analysis[t] & (arm[t] == control)
            if include is not None:
                on_c &= include[t, :, k]
            ref_oe, ref_v = _reference_sweep(time[t], event[t], on_k, on_c)
            assert oe[t, k] == pytest.approx(ref_oe, abs=1e-10)
            assert var[t, k] == pytest.approx(ref_v, abs=1e-10)
            if ref_v > 0:
                assert abs(z[t, k] - _scipy_z(time[t], event[t], on_k, on_c)) < 1e-10
                checked += 1
            else:
                assert np.isnan(z[t, k])
    return checked


@pytest.mark.parametrize("control", [0, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_logrank_matches_scipy_with_ties(control, masked):
    rng = np.random.default_rng(100 + control + 10 * masked)
    n_trials, n, n_arms = 4, 240, 4
    time, event, arm = _grid_data(rng, n_trials, n, n_arms)
    include = rng.random((n_trials, n, n_arms)) < 0.6 if masked else None
    assert len(np.unique(time[0][~np.isnan(time[0])])) < 30  # heavy ties
    assert _check_against_scipy(time, event, arm, include, control, n_arms) == n_trials * (n_arms - 1)


def test_logrank_continuous_times_and_mixed_batches():
    rng = np.random.default_rng(3)
    n_trials, n, n_arms = 4, 1200, 3
    time, event, arm = _grid_data(rng, n_trials, n, n_arms)
    # trial 0: 480 distinct times, a crowded hash table (collisions)
    values = rng.exponential(6.0, 480)
    time[0] = np.where(np.isnan(time[0]), np.nan, values[np.arange(n) % 480])
    event[0] = rng.random(n) < 0.7
    assert len(np.unique(time[0][~np.isnan(time[0])])) == 480
    # trial 1: continuous times; later grid trials then go through the sorting path
    continuous = rng.exponential(6.0, n)
    time[1] = np.where(np.isnan(time[1]), np.nan, continuous)
    event[1] = continuous < 15.0
    assert len(np.unique(time[1])) > 1000
    include = rng.random((n_trials, n, n_arms)) < 0.7
    assert _check_against_scipy(time, event, arm, None, 0, n_arms) == n_trials * (n_arms - 1)
    assert _check_against_scipy(time, event, arm, include, 0, n_arms) == n_trials * (n_arms - 1)


def test_logrank_sign_convention():
    # arm 1 with clearly longer PFS than the control: fewer events than expected, z < 0
    rng = np.random.default_rng(8)
    arm = np.repeat([0, 1], 100)[None, :]
    time = rng.exponential(np.where(arm == 1, 12.0, 4.0))
    event = np.ones_like(time, dtype=bool)
    z, oe, _ = logrank_vs_control(time, event, arm, None, 0, 2)
    assert z[0, 1] < -3 and oe[0, 1] < 0
    x, y = arm[0] == 1, arm[0] == 0
    assert z[0, 1] == pytest.approx(stats.logrank(time[0, x], time[0, y]).statistic, abs=1e-12)


def test_logrank_edge_cases():
    n_arms = 4
    # arm 0 control, arm 1 regular, arm 2 one patient, arm 3 no patients
    time = np.array([[1.38, 2.76, 2.76, 4.14, 5.52, 1.38, 2.76, 4.14, 6.9, 2.76]])
    event = np.array([[True, True, False, True, False, False, True, True, False, True]])
    arm = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 2]], dtype=np.int16)
    z, oe, var = logrank_vs_control(time, event, arm, None, 0, n_arms)
    assert np.isnan(z[0, 3]) and oe[0, 3] == 0 and var[0, 3] == 0
    assert _check_against_scipy(time, event, arm.astype(np.int64), None, 0, n_arms) == 2
    # every patient censored: no event time, NaN everywhere
    z, oe, var = logrank_vs_control(time, np.zeros_like(event), arm, None, 0, n_arms)
    assert np.all(np.isnan(z)) and np.all(oe[0, 1:] == 0) and np.all(var[0, 1:] == 0)
    # arm 1 all censored while controls have events: informative, z > 0 is impossible
    event_1 = event & (arm != 1)
    z, _, _ = logrank_vs_control(time, event_1, arm, None, 0, n_arms)
    assert z[0, 1] < 0
    assert _check_against_scipy(time, event_1, arm, None, 0, n_arms) == 2
    # arm 1 censored before the first event: never at risk at an event time
    early = time.copy()
    early[0, arm[0] == 1] = 0.5
    z, oe, var = logrank_vs_control(early, event_1, arm, None, 0, n_arms)
    assert np.isnan(z[0, 1]) and oe[0, 1] == 0 and var[0, 1] == 0
    # no included control: arm k alone has V == 0
    include = np.ones((1, 10, n_arms), dtype=bool)
    include[0, :, 1] = False
    z, _, var = logrank_vs_control(time, event, arm, include, 0, n_arms)
    assert np.isnan(z[0, 1]) and var[0, 1] == 0
    assert z[0, 2] == pytest.approx(logrank_vs_control(time, event, arm, None, 0, n_arms)[0][0, 2], abs=1e-15)
    # a single patient in the whole comparison set
    z, oe, var = logrank_vs_control(np.array([[3.0]]), np.array([[True]]), np.array([[1]]), None, 0, 2)
    assert np.isnan(z[0, 1]) and oe[0, 1] == 0 and var[0, 1] == 0
    # 0.0 and -0.0 are the same time
    t0 = np.array([[0.0, -0.0, 0.0, 1.0, 1.0, 2.0]])
    e0 = np.array([[True, True, False, True, True, False]])
    a0 = np.array([[0, 1, 1, 0, 1, 0]])
    assert _check_against_scipy(t0, e0, a0, None, 0, 2) == 1


def test_logrank_dtypes_shapes_and_validation():
    rng = np.random.default_rng(21)
    time, event, arm = _grid_data(rng, 6, 150, 3)
    ref = logrank_vs_control(time, event, arm, None, 1, 3)
    for dtype in (np.int8, np.int16, np.int32):
        got = logrank_vs_control(time, event, arm.astype(dtype), None, 1, 3)
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)
    # leading axes: (2, 3, N) in, (2, 3, K) out, same values
    got = logrank_vs_control(time.reshape(2, 3, -1), event.reshape(2, 3, -1), arm.reshape(2, 3, -1), None, 1, 3)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g.reshape(6, 3), r)
    # non-contiguous views
    wide = np.repeat(time, 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(logrank_vs_control(wide, event, arm, None, 1, 3)[0], ref[0])
    with pytest.raises(ValueError):
        logrank_vs_control(time, event, arm, None, 3, 3)
    with pytest.raises(ValueError):
        logrank_vs_control(time, event, np.where(arm == 2, 5, arm), None, 1, 3)
    with pytest.raises(ValueError):
        logrank_vs_control(time, event, arm, np.ones((6, 150, 2), dtype=bool), 1, 3)
    with pytest.raises(TypeError):
        logrank_vs_control(time, event, arm.astype(float), None, 1, 3)


def test_warm_up_runs():
    warm_up()


def test_log_hr_moments_from_distinct_shapes_equal_those_of_every_value():
    # shapes repeat (prior plus events): psi and psi' computed once per distinct value, the same numbers
    rng = np.random.default_rng(6)
    a_k = 0.5 + rng.integers(0, 30, (200, 4)).astype(float)
    a_c = 0.5 + rng.integers(0, 30, (200, 1)).astype(float)
    b_k, b_c = rng.uniform(1, 50, (200, 4)), rng.uniform(1, 50, (200, 1))
    mean, var = log_hr_moments(a_k, b_k, a_c, b_c)
    a_kb, a_cb = np.broadcast_arrays(a_k, a_c)
    want_mean = special.digamma(a_kb) - np.log(b_k) - special.digamma(a_cb) + np.log(np.broadcast_to(b_c, b_k.shape))
    want_var = special.polygamma(1, a_kb) + special.polygamma(1, a_cb)
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(var, want_var)
    # values without repeats, and an invalid shape, take the direct path with the same answers
    a_u = rng.uniform(0.1, 40, (200, 4))
    np.testing.assert_array_equal(
        log_hr_moments(a_u, b_k, a_c, b_c)[1], special.polygamma(1, a_u) + special.polygamma(1, a_cb)
    )
    a_r = np.where(rng.uniform(size=a_k.shape) < 0.5, a_k, 0.0)
    a_r[0, :2] = -0.0, np.nan
    np.testing.assert_array_equal(
        log_hr_moments(a_r, b_k, a_c, b_c)[1], special.polygamma(1, a_r) + special.polygamma(1, a_cb)
    )
