"""Period-adjusted comparisons with the control (platform_sim/posterior/period.py and
platform_sim/families/platform_period.py).

The estimator is checked against hand computations: on data that lie exactly on the model the
mode is the truth; with one period it is the two-sample log ratio with the familiar variance;
with a constant exposure ratio across periods the stratified estimate has a closed form. The
family's period tallies are checked to add up to the unadjusted tallies patient for patient.
The slow test measures bias and type I error under a linear time trend with Monte Carlo
standard errors (MCSE) and a 4-MCSE tolerance.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from test_timeline import DECISIONS_OFF, arm, design, one_problem, scenario, spec_of

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design
from platform_sim.posterior.period import (
    fit_period_model,
    log_rate_moments,
    period_bounds,
    period_windows,
    pp_confirmatory_normal,
    prob_better_normal,
)
from platform_sim.posterior.survival import log_hr_moments, pp_confirmatory_survival
from platform_sim.runner import run

FLAT = 1e8  # prior variance of every coefficient: the mode is the maximum-likelihood estimate to ~1e-8


# --------------------------------------------------------------------------- periods


def test_period_bounds_are_the_entry_and_exit_dates_up_to_the_analysis():
    nan = np.nan
    opened = np.array([[0.0, 0.0, 6.0, nan], [0.0, 0.0, 0.0, 3.0]])
    closed = np.array([[nan, 10.0, nan, nan], [nan, 2.5, nan, nan]])
    b = period_bounds(opened, closed, np.array([12.0, 2.0]))
    assert b.shape == (2, 8)
    np.testing.assert_array_equal(b[0, :3], [0.0, 6.0, 10.0])
    assert np.isinf(b[0, 3:]).all()
    np.testing.assert_array_equal(b[1, :1], [0.0])  # 2.5 and 3 are after the analysis on month 2
    assert np.isinf(b[1, 1:]).all()
    w = period_windows(b, opened, closed)
    # trial 0: control (0, open), arm 1 [0, 10], arm 2 from 6, arm 3 never
    np.testing.assert_array_equal(
        w[0, :, :3], [[True, True, True], [True, True, False], [False, True, True], [False, False, False]]
    )
    assert not w[:, :, 3:].any()


# --------------------------------------------------------------------------- the period model


def test_one_period_is_the_two_sample_log_ratio():
    # time to event: log HR = log(y1 / x1) - log(y0 / x0), variance 1 / y1 + 1 / y0
    y, x = np.array([[12.0, 20.0]]), np.array([[100.0, 120.0]])
    fit = fit_period_model(np.zeros_like(y), y, x, True, 0.0, FLAT, FLAT)
    assert fit.effect[0] == pytest.approx(math.log(20 / 120) - math.log(12 / 100), abs=1e-7)
    assert fit.effect_var[0] == pytest.approx(1 / 20 + 1 / 12, rel=1e-6)
    assert fit.level[0] == pytest.approx(math.log(12 / 100), abs=1e-7)
    # binary: log OR = logit(y1 / n1) - logit(y0 / n0), variance sum of 1 / cell counts (Woolf)
    n, y = np.array([[40.0, 50.0]]), np.array([[10.0, 22.0]])
    fit = fit_period_model(n, y, np.zeros_like(n), False, 0.0, FLAT, FLAT)
    assert fit.effect[0] == pytest.approx(math.log(22 / 28) - math.log(10 / 30), abs=1e-7)
    assert fit.effect_var[0] == pytest.approx(1 / 22 + 1 / 28 + 1 / 10 + 1 / 30, rel=1e-6)


def test_stratified_estimate_with_a_constant_exposure_ratio():
    """Arm exposure half the control's in both periods (ratio r = 1/2): the conditional score
    sum_p y_kp - (y_kp + y_cp) r e^b / (1 + r e^b) = 0 gives e^b = Y_k / (r Y_c), and the information
    is sum_p (y_kp + y_cp) pi (1 - pi) with pi = r e^b / (1 + r e^b)."""
    x = np.array([[20.0, 10.0], [40.0, 20.0]])  # (P, J): control, arm
    y = np.array([[4.0, 3.0], [12.0, 6.0]])
    fit = fit_period_model(np.zeros_like(y), y, x, True, 0.0, FLAT, FLAT)
    e_b = 9.0 / (0.5 * 16.0)
    pi = 0.5 * e_b / (1 + 0.5 * e_b)
    assert fit.effect[0] == pytest.approx(math.log(e_b), abs=1e-7)
    assert fit.effect_var[0] == pytest.approx(1.0 / ((7.0 + 18.0) * pi * (1 - pi)), rel=1e-6)


def test_period_effect_is_absorbed_where_pooling_is_biased():
    """Period 1: control only, hazard 0.2; period 2: control and a null arm, hazard 0.1 (expected
    counts). Pooling the controls gives log(0.1 / 0.15); the period model gives 0."""
    x = np.array([[100.0, 0.0], [100.0, 100.0]])
    y = np.array([[20.0, 0.0], [10.0, 10.0]])
    fit = fit_period_model(np.zeros_like(y), y, x, True, 0.0, FLAT, FLAT)
    assert fit.effect[0] == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(fit.level, np.log([0.2, 0.1]), atol=1e-7)
    pooled = fit_period_model(
        np.zeros((1, 2)), y.sum(axis=0, keepdims=True), x.sum(axis=0, keepdims=True), True, 0.0, FLAT, FLAT
    )
    assert pooled.effect[0] == pytest.approx(math.log(10 / 100) - math.log(30 / 200), abs=1e-7)


@pytest.mark.parametrize("survival", [True, False])
def test_non_concurrent_controls_inform_through_a_bridging_arm(survival):
    """Control and A in period 1, A and B in period 2 (no control): with data exactly on the model,
    B's effect is recovered through A (beta_B = (B vs A in period 2) + beta_A)."""
    alpha = np.array([-2.0, -1.2])
    beta = np.array([0.0, 0.3, -0.6])  # control, A, B
    present = np.array([[1, 1, 0], [0, 1, 1]], dtype=float)
    eta = alpha[:, None] + beta[None, :]
    if survival:
        x = 100.0 * present
        y = x * np.exp(eta)
        n = np.zeros_like(x)
    else:
        n = 100.0 * present
        y = n / (1 + np.exp(-eta))
        x = np.zeros_like(n)
    fit = fit_period_model(n, y, x, survival, 0.0, FLAT, FLAT)
    np.testing.assert_allclose(fit.effect, beta[1:], atol=1e-6)
    np.testing.assert_allclose(fit.level, alpha, atol=1e-6)


def test_a_third_arm_sharpens_the_period_effects_within_the_window():
    """Two periods of arm k's window with a third arm in both (data on the model): the covariate
    model (all three arms) and the stratified one (control and k) find the same effect, and the
    third arm, informing the period effects, makes the covariate estimate more precise; without
    the third arm's data the two are the same model."""
    alpha, beta = np.array([-2.0, -1.5]), np.array([0.0, -0.4, 0.2])  # control, k, third arm
    x = np.array([[120.0, 40.0, 90.0], [40.0, 120.0, 90.0]])  # unequal control:k split by period
    y = x * np.exp(alpha[:, None] + beta[None, :])
    zero = np.zeros_like(x)
    covariate = fit_period_model(zero, y, x, True, 0.0, FLAT, FLAT)
    stratified = fit_period_model(zero[:, :2], y[:, :2], x[:, :2], True, 0.0, FLAT, FLAT)
    assert covariate.effect[0] == pytest.approx(stratified.effect[0], abs=1e-7) == pytest.approx(-0.4, abs=1e-7)
    assert covariate.effect_var[0] < stratified.effect_var[0] * (1 - 1e-3)
    empty_third = fit_period_model(
        zero, np.where([[0, 0, 1]], 0.0, y), np.where([[0, 0, 1]], 0.0, x), True, 0.0, FLAT, FLAT
    )
    assert empty_third.effect_var[0] == pytest.approx(stratified.effect_var[0], rel=1e-6)


def test_batches_and_empty_cells_follow_the_prior():
    rng = np.random.default_rng(5)
    x = rng.uniform(10, 50, size=(3, 4, 5, 2))
    y = rng.poisson(0.1 * x).astype(float)
    x[..., 2, :] = 0.0  # an empty period
    y[..., 2, :] = 0.0
    fit = fit_period_model(np.zeros_like(y), y, x, True, -1.5, 4.0, 2.0)
    assert fit.effect.shape == (3, 4, 1) and fit.level.shape == (3, 4, 5)
    np.testing.assert_allclose(fit.level[..., 2], -1.5, atol=1e-9)
    one = fit_period_model(np.zeros_like(y[1, 2]), y[1, 2], x[1, 2], True, -1.5, 4.0, 2.0)
    np.testing.assert_allclose(one.effect, fit.effect[1, 2], atol=1e-9)
    np.testing.assert_allclose(one.effect_var, fit.effect_var[1, 2], rtol=1e-9)


def test_mode_solves_the_penalized_score_equations():
    """The mode against scipy's optimizer on the same log posterior (binary, priors that matter)."""
    from scipy import optimize

    n = np.array([[30.0, 0.0, 12.0], [25.0, 20.0, 15.0], [10.0, 18.0, 0.0]])
    y = np.array([[9.0, 0.0, 7.0], [5.0, 9.0, 6.0], [1.0, 8.0, 0.0]])
    m0, v0, vb = -0.8, 2.0, 1.5

    def neg_log_post(theta):
        a, b = theta[:3], np.concatenate([[0.0], theta[3:]])
        eta = a[:, None] + b[None, :]
        ll = (y * eta - n * np.logaddexp(0.0, eta)).sum()
        return -(ll - ((a - m0) ** 2).sum() / (2 * v0) - (theta[3:] ** 2).sum() / (2 * vb))

    # BFGS to a gradient below 1e-10 (curvatures here are O(1)): its solution is good to ~1e-8
    ref = optimize.minimize(neg_log_post, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    fit = fit_period_model(n, y, np.zeros_like(n), False, m0, v0, vb)
    np.testing.assert_allclose(fit.effect, ref[3:], atol=1e-5)
    np.testing.assert_allclose(fit.level, ref[:3], atol=1e-5)


def test_fit_rejects_a_model_without_periods_or_comparison():
    with pytest.raises(ValueError, match="at least one period"):
        fit_period_model(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), True, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="J = 1"):
        fit_period_model(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), True, 0.0, 1.0, 1.0)


# --------------------------------------------------------------------------- decision quantities


def test_decision_quantities_from_the_normal_posterior():
    assert prob_better_normal(0.0, 1.0, True) == pytest.approx(0.5)
    assert prob_better_normal(-0.3, 0.04, True) == pytest.approx(0.9331927987311419)  # Phi(1.5)
    assert prob_better_normal(-0.3, 0.04, False) == pytest.approx(1 - 0.9331927987311419)
    # survival: the same formula as the unadjusted analysis, fed the gamma posteriors' moments
    a, b, ac, bc = 40.0, 300.0, 50.0, 280.0
    m, v = log_hr_moments(a, b, ac, bc)
    assert pp_confirmatory_normal(m, v, True, 0.025, events=240) == pytest.approx(
        float(pp_confirmatory_survival(a, b, ac, bc, 240, 0.025)), abs=1e-14
    )
    # binary by hand: p_c = 0.3, log OR 0.5, variance 0.09, 150 patients per arm
    pc = 0.3
    pt = 1 / (1 + math.exp(-(math.log(pc / (1 - pc)) + 0.5)))
    se2 = (1 / (pt * (1 - pt)) + 1 / (pc * (1 - pc))) / 150
    z = 1.959963984540054
    want = 0.5 * math.erfc(-((0.5 - z * math.sqrt(se2)) / math.sqrt(0.09 + se2)) / math.sqrt(2))
    got = pp_confirmatory_normal(0.5, 0.09, False, 0.025, n_per_arm=150, control_level=math.log(pc / (1 - pc)))
    assert got == pytest.approx(want, rel=1e-12)


def test_log_rate_moments_are_the_digamma_moments():
    from scipy import special

    m, v = log_rate_moments(2.0, 8.0, True)
    assert m == pytest.approx(special.digamma(2.0) - math.log(8.0)) and v == pytest.approx(special.polygamma(1, 2.0))
    m, v = log_rate_moments(3.0, 7.0, False)
    assert m == pytest.approx(special.digamma(3.0) - special.digamma(7.0))
    rng = np.random.default_rng(1)
    p = rng.beta(3.0, 7.0, 400_000)
    lo = np.log(p / (1 - p))
    assert m == pytest.approx(lo.mean(), abs=4 * lo.std() / math.sqrt(lo.size))


# --------------------------------------------------------------------------- the platform family


def _staggered(controls="concurrent", adjustment="none", graduation=None, cap=None) -> dict:
    """Control and null_a from month 0 (null_a capped at ``cap``), null_b from month 12, to month 36."""
    arms = [arm("control"), arm("null_a", **({} if cap is None else {"max_n": cap})), arm("null_b", enter_months=12)]
    return design(
        arms,
        max_duration_months=36,
        follow_up_months=12,
        max_open_arms=10,
        controls=controls,
        time_adjustment=adjustment,
        interims={"every_months": 6},
        graduation=graduation or DECISIONS_OFF,
    )


def test_stratified_with_all_controls_is_rejected_naming_the_field():
    with pytest.raises(ConfigError) as exc:
        parse_design(_staggered("all", "stratified_by_period"))
    p = one_problem(exc, "design.platform.time_adjustment")
    assert "concurrent" in p.message and p.value == "stratified_by_period"


def test_adjustment_with_a_single_experimental_arm_is_rejected_naming_the_field():
    d = design([arm("control"), arm("arm")], time_adjustment="period_covariate")
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.platform.time_adjustment")
    assert "single period" in p.message and p.value == "period_covariate"


def test_adjustment_with_calendar_sub_studies_is_rejected_naming_the_field():
    """Sub-studies compare each arm with its own sub-study's controls; one period model over every
    arm would not, so the combination is refused rather than silently mixing sub-studies."""
    import yaml

    d = yaml.safe_load((Path(__file__).parents[1] / "designs" / "lungmap_platform.yaml").read_text())
    d["platform"]["time_adjustment"] = "period_covariate"
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.platform.time_adjustment")
    assert "sub-studies" in p.message and p.value == "period_covariate"


def test_unknown_adjustment_is_rejected_naming_the_field():
    d = _staggered(adjustment="time_machine")
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    assert any(p.path == "design.platform.time_adjustment" for p in exc.value.problems)


def test_period_tallies_add_up_to_the_unadjusted_tallies(monkeypatch):
    """At every analysis the period tallies, summed over periods, are the arm tallies the
    unadjusted analysis uses, and every patient of a period is randomized inside it."""
    from platform_sim.families import platform as timeline
    from platform_sim.families import platform_period

    checked = []
    real = platform_period.adjusted_comparison

    def checking(pd_, opened, closed, pool, assigned, rows, t):
        (n, y, x), bounds, windows = platform_period.period_tallies(pd_, opened, closed, pool, assigned, rows, t)
        R, K, S = rows.size, pd_.n_arms, pd_.n_strata
        ref = [np.zeros((R, K, S)) for _ in range(6)]
        seen = np.zeros(R)
        o = np.where(np.isnan(opened), np.inf, opened)
        c = np.where(np.isnan(closed), np.inf, closed)
        timeline._tally(
            pool.arrive,
            pool.stratum,
            assigned,
            pool.outcomes,
            pool.dropout,
            pd_.arm_treatment,
            pd_.control,
            o,
            c,
            rows,
            t,
            pd_.assess,
            pd_.survival,
            pd_.read_at,
            *ref,
            seen,
        )
        for got, want in zip((n, y, x), ref[:3]):
            np.testing.assert_allclose(got.sum(axis=2), want, rtol=1e-12, atol=1e-9)
        # experimental arms have patients only in their own periods
        outside = (n.sum(axis=3) > 0) & ~windows
        outside[:, pd_.control] = False
        assert not outside.any()
        checked.append(int(rows.size))
        return real(pd_, opened, closed, pool, assigned, rows, t)

    monkeypatch.setattr(platform_period, "adjusted_comparison", checking)
    d = _staggered("all", "period_covariate", {"by": "posterior", "graduate": 0.999999, "min_n": 60}, cap=60)
    run(spec_of(d, scenario(trend_per_year=-0.5)), 40, seed=7)
    assert sum(checked) > 40  # interim and final analyses of every trial


def test_default_and_explicit_none_are_the_same_platform():
    base = _staggered()
    explicit = copy.deepcopy(base)
    explicit["platform"]["time_adjustment"] = "none"
    one, two = (run(spec_of(d, scenario(trend_per_year=-0.5)), 50, seed=3) for d in (base, explicit))
    np.testing.assert_array_equal(one.extras["prob_better"], two.extras["prob_better"])
    assert "effect_adjusted" not in one.extras


def test_one_period_platform_matches_the_unadjusted_effect():
    """Two arms open throughout (one period): the period model's log HR is the log ratio of the
    pooled hazards, which the gamma posteriors (nearly flat prior) estimate too."""
    arms = [arm("control"), arm("null_a"), arm("null_b")]
    d = design(
        arms,
        max_duration_months=24,
        follow_up_months=12,
        controls="concurrent",
        time_adjustment="stratified_by_period",
        interims={"every_months": 12},
        graduation=DECISIONS_OFF,
    )
    res = run(spec_of(d), 30, seed=9)
    adj = res.extras["effect_adjusted"][:, 1:]
    g = int(np.flatnonzero(res.membership.all(axis=1))[0])
    unadj = res.estimates["effect_concurrent"][:, 1:, g]
    # the gamma posterior mean of a log hazard is psi(a + y) - log(b + x) = log(y / x) - 1 / (2 y) + O(1 / y^2)
    # (prior a = 0.01, b = 0.04: negligible), the mode log(y / x): they differ by at most about
    # 1 / (2 y_arm) + 1 / (2 y_control); twice that bounds the higher-order terms
    events = res.events.sum(axis=2).astype(float)  # (T, K) events at the final analysis
    bound = 1.0 / events[:, 1:] + 1.0 / events[:, :1]
    assert events.min() > 50
    assert np.all(np.abs(adj - unadj) <= bound), np.max(np.abs(adj - unadj) / bound)


@pytest.mark.parametrize(
    ("controls", "adjustment"), [("concurrent", "stratified_by_period"), ("all", "period_covariate")]
)
def test_binary_platform_graduates_on_the_adjusted_predictive_probability(
    shipped_yaml, controls, adjustment, monkeypatch
):
    """pioneer_platform on 12-week disease control: the success probability of every analysis is
    the period model's predictive probability, recomputed here from the normal posterior."""
    from platform_sim.families import platform as timeline
    from platform_sim.families import platform_period

    d = shipped_yaml("design", "pioneer_platform")
    d["endpoint"]["name"] = "dcr12"
    d["prior"] = {"a": 1, "b": 1}
    del d["platform"]["hazard_prior"]
    d["platform"].update(controls=controls, time_adjustment=adjustment)
    seen = []
    real = platform_period.adjusted_comparison

    def recording(pd_, *args):
        out = real(pd_, *args)
        assert not pd_.survival and pd_.graduate_by == "predictive"
        experimental = np.arange(pd_.n_arms) != pd_.control
        s = out.success[:, experimental]
        assert np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
        seen.append(s.size)
        return out

    monkeypatch.setattr(platform_period, "adjusted_comparison", recording)
    res = run(spec_of(d, shipped_yaml("scenario", "pioneer_alternative")), 20, seed=4)
    assert seen and res.extras["effect_adjusted"].shape == (20, 6)
    entered = np.isfinite(res.extras["opened_at"][:, 1:])
    assert np.isfinite(res.extras["effect_adjusted"][:, 1:][entered]).all()
    assert timeline.GRADUATED in res.extras["platform_status"]  # pioneer_alternative has arms that work


# --------------------------------------------------------------------------- bias and type I error (slow)

N_SLOW = 1500
GRADUATION = {"by": "posterior", "graduate": 0.99, "min_n": 30}
CHOICES = (
    ("concurrent", "none"),
    ("all", "none"),
    ("concurrent", "stratified_by_period"),
    ("concurrent", "period_covariate"),
    ("all", "period_covariate"),
)


@pytest.fixture(scope="module")
def slow_runs():
    out = {}
    for trend in (None, -0.5):
        for controls, adj in CHOICES:
            d = _staggered(controls, adj, GRADUATION)
            out[trend, controls, adj] = run(spec_of(d, scenario(trend_per_year=trend)), N_SLOW, seed=211)
    return out


@pytest.mark.slow
def test_under_a_linear_trend_only_unadjusted_all_controls_inflate_the_error(slow_runs):
    """Every treatment's log-hazard falls by 0.5 a year (a common time trend); null arms; the arm
    entering at month 12 is judged by P(HR < 1) >= 0.99. Same patients in every run (seed 211),
    so differences are paired and their MCSE is the standard error of the paired difference. The
    reference for each analysis is its own error without the trend (interim looks every 6 months
    make it larger than the 0.01 of a single look)."""
    for controls, adj in CHOICES:
        g0 = (slow_runs[None, controls, adj].extras["platform_status"][:, 2] == 3).astype(float)
        g1 = (slow_runs[-0.5, controls, adj].extras["platform_status"][:, 2] == 3).astype(float)
        diff = g1 - g0
        mcse = diff.std(ddof=1) / math.sqrt(N_SLOW)
        if (controls, adj) == ("all", "none"):
            assert diff.mean() > 4 * mcse, (controls, adj, g0.mean(), g1.mean())
        else:
            assert abs(diff.mean()) <= 4 * mcse, (controls, adj, g0.mean(), g1.mean())


@pytest.mark.slow
def test_under_a_linear_trend_adjusted_effects_are_unbiased(slow_runs):
    """The late null arm's final log hazard ratio, trend minus no trend on the same patients: moved
    toward benefit against all controls unadjusted, not moved (within 4 MCSE of the paired
    difference) with concurrent controls or a period adjustment. (Without a trend every analysis
    has the same small selection bias toward benefit: an arm that graduates stops accruing at a
    favourable estimate; the paired difference removes it.)"""

    def late_effect(res, controls, adj):
        if adj != "none":
            return res.extras["effect_adjusted"][:, 2]
        g = int(np.flatnonzero(res.membership.all(axis=1))[0])
        return res.estimates["effect_all" if controls == "all" else "effect_concurrent"][:, 2, g]

    for controls, adj in CHOICES:
        e0 = late_effect(slow_runs[None, controls, adj], controls, adj)
        e1 = late_effect(slow_runs[-0.5, controls, adj], controls, adj)
        diff = (e1 - e0)[np.isfinite(e1) & np.isfinite(e0)]
        assert diff.size == N_SLOW
        mcse = diff.std(ddof=1) / math.sqrt(diff.size)
        if (controls, adj) == ("all", "none"):
            assert diff.mean() < -4 * mcse, diff.mean()
        else:
            assert abs(diff.mean()) < 4 * mcse, (controls, adj, diff.mean(), mcse)


# --------------------------------------------------------------------------- the PyMC twin (Bayes extra)

# Accuracy required of the Laplace approximation at early-interim counts (20-30 patients or
# 5-15 events per cell): the decision quantity P(arm better than control) within 0.02, the
# posterior mean within a tenth of a posterior standard deviation and the standard deviation
# within 10%, each on top of 4 MCSE of the MCMC estimate.
LAPLACE_P_ERROR, LAPLACE_MEAN_ERROR_SD, LAPLACE_SD_ERROR = 0.02, 0.1, 0.1
TWIN_N = np.array([[30.0, 28.0, 0.0], [25.0, 22.0, 24.0], [0.0, 20.0, 26.0]])  # (period, arm): control, A, B
TWIN_Y = np.array([[9.0, 12.0, 0.0], [5.0, 9.0, 11.0], [0.0, 6.0, 9.0]])
TWIN_X = np.array([[60.0, 75.0, 0.0], [55.0, 50.0, 70.0], [0.0, 48.0, 66.0]])  # months at risk


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
@pytest.mark.parametrize("survival", [False, True])
def test_laplace_posterior_agrees_with_pymc(survival):
    pm = pytest.importorskip("pymc")
    az = pytest.importorskip("arviz")
    m0, v0, vb = (-1.5, 1.0, 2.0) if survival else (-0.8, 2.0, 3.0)
    fit = fit_period_model(TWIN_N, TWIN_Y, TWIN_X, survival, m0, v0, vb)
    with pm.Model():
        a = pm.Normal("a", m0, math.sqrt(v0), shape=3)
        b = pm.Normal("b", 0.0, math.sqrt(vb), shape=2)
        eta = a[:, None] + pm.math.concatenate([np.zeros(1), b])[None, :]
        if survival:
            present = TWIN_X > 0
            pm.Poisson("y", mu=(TWIN_X * pm.math.exp(eta))[present], observed=TWIN_Y[present])
        else:
            pm.Binomial("y", n=TWIN_N, p=pm.math.sigmoid(eta), observed=TWIN_Y)
        idata = pm.sample(2000, tune=1000, chains=2, random_seed=1, progressbar=False, compute_convergence_checks=False)
    table = az.summary(idata, var_names=["b"], kind="all")
    assert (table["r_hat"] < 1.01).all()
    draws = idata.posterior["b"].values.reshape(-1, 2)
    better = (draws < 0) if survival else (draws > 0)
    ess = table["ess_bulk"].to_numpy()
    p_mc = better.mean(axis=0)
    p_mcse = np.sqrt(p_mc * (1 - p_mc) / ess)
    p_laplace = prob_better_normal(fit.effect, fit.effect_var, survival)
    assert np.all(np.abs(p_laplace - p_mc) < 4 * p_mcse + LAPLACE_P_ERROR), (p_laplace, p_mc)
    sd = table["sd"].to_numpy()
    assert np.all(
        np.abs(fit.effect - table["mean"].to_numpy()) < 4 * table["mcse_mean"].to_numpy() + LAPLACE_MEAN_ERROR_SD * sd
    ), (fit.effect, table)
    assert np.all(np.abs(np.sqrt(fit.effect_var) / sd - 1) < LAPLACE_SD_ERROR + 4 * table["mcse_sd"].to_numpy() / sd)
