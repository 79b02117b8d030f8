"""Analytic planning of time-to-event trials: closed forms, limits and simulation checks.

References for the values checked:

- Schoenfeld (1981, Biometrika 68:316) and Freedman (1982, Stat Med 1:121) event counts; the project's
  own ``posterior.survival.schoenfeld_events`` is an independent implementation of the first.
- Expected events with uniform accrual over R, exponential survival (hazard lambda), exponential dropout
  (eta) and analysis at T >= R: N lambda / (lambda + eta) [1 - (e^{-(lambda+eta)(T-R)} - e^{-(lambda+eta)T})
  / ((lambda + eta) R)] (Lachin & Foulkes 1986, Biometrics 42:507, eq. 2.3 with dropout).
- Lakatos (1988, Biometrics 44:229): with equal numbers at risk in both arms at every time (phi_i = 1) and
  a constant hazard ratio theta, the mean of the log-rank statistic is sqrt(D) (1 - theta) / (1 + theta).

Simulation checks draw entry, event and dropout times with numpy (fixed seeds) and compare with 4 Monte
Carlo standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from platform_sim.posterior import survival
from platform_sim.posterior.group_sequential import (
    LanDeMetsOBrienFleming,
    crossing_probabilities,
    group_sequential_design,
)
from platform_sim.posterior.planning import (
    Accrual,
    ArmModel,
    PiecewiseExponential,
    expected_enrolled,
    expected_events,
    freedman_events,
    group_sequential_tte,
    lakatos,
    lakatos_sample_size,
    required_events,
    schoenfeld_events,
    time_of_events,
)

Z = -ndtri(0.025) + ndtri(0.9)


def test_schoenfeld_and_freedman_events():
    assert schoenfeld_events(0.7) == pytest.approx(Z**2 * 4 / math.log(0.7) ** 2, rel=1e-14)
    assert schoenfeld_events(0.7) == pytest.approx(330.378, abs=5e-4)
    assert freedman_events(0.7) == pytest.approx(Z**2 * 1.7**2 / 0.09, rel=1e-14)
    assert schoenfeld_events(0.75, 0.025, 0.8, allocation_ratio=2.0) == pytest.approx(
        (-ndtri(0.025) + ndtri(0.8)) ** 2 * 9 / (2 * math.log(0.75) ** 2), rel=1e-14
    )
    # the project's survival module (allocation = experimental share) agrees
    for hr, r in ((0.7, 1.0), (0.6, 2.0)):
        assert schoenfeld_events(hr, 0.025, 0.9, r) == pytest.approx(
            survival.schoenfeld_events(hr, 0.9, 0.025, r / (1 + r)), rel=1e-12
        )
    assert required_events(0.7, method="freedman") == freedman_events(0.7)
    # Freedman asks for more events than Schoenfeld, and they meet as HR -> 1
    assert freedman_events(0.5) > schoenfeld_events(0.5)
    assert freedman_events(0.99) / schoenfeld_events(0.99) == pytest.approx(1.0, abs=1e-3)


def test_required_events_rejects_bad_input():
    with pytest.raises(ValueError, match=r"hazard_ratio must differ from 1"):
        schoenfeld_events(1.0)
    with pytest.raises(ValueError, match=r"hazard_ratio must be finite and > 0, got -0.5"):
        schoenfeld_events(-0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 1.2"):
        freedman_events(0.7, alpha=1.2)
    with pytest.raises(ValueError, match=r"power must be in \(0, 1\), got 0"):
        schoenfeld_events(0.7, power=0)
    with pytest.raises(ValueError, match=r"allocation_ratio must be finite and > 0, got 0"):
        schoenfeld_events(0.7, allocation_ratio=0)
    with pytest.raises(ValueError, match=r"method must be 'schoenfeld' or 'freedman', got 'lakatos'"):
        required_events(0.7, method="lakatos")


# ------------------------------------------------------------------------------------------
# expected events by calendar time
# ------------------------------------------------------------------------------------------


def lachin_foulkes(n, lam, eta, accrual_months, t):
    kappa = lam + eta
    if t >= accrual_months:
        return (
            n
            * lam
            / kappa
            * (1 - (math.exp(-kappa * (t - accrual_months)) - math.exp(-kappa * t)) / (kappa * accrual_months))
        )
    return n / accrual_months * lam / kappa * (t - (1 - math.exp(-kappa * t)) / kappa)


def test_expected_events_match_the_lachin_foulkes_closed_form():
    lam, eta = math.log(2) / 9, 0.004
    acc = Accrual.uniform(400, 20)
    arm = ArmModel(PiecewiseExponential.exponential(lam), dropout=eta)
    times = np.array([0.0, 5.0, 20.0, 31.5, 200.0])
    got = expected_events(times, acc, [arm])[:, 0]
    want = [lachin_foulkes(400, lam, eta, 20, t) for t in times]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(expected_enrolled(times, acc), np.minimum(times, 20) * 20)


def test_pieces_that_repeat_a_hazard_change_nothing():
    acc = Accrual((3.0, 9.0, 6.0), (10.0, 30.0, 30.0))
    one = ArmModel(PiecewiseExponential.exponential(0.08), dropout=0.01)
    split = ArmModel(PiecewiseExponential((0.0, 2.5, 7.0), (0.08, 0.08, 0.08)), dropout=0.01)
    merged_accrual = Accrual((3.0, 15.0), (10.0, 30.0))
    times = np.linspace(0, 60, 13)
    np.testing.assert_allclose(
        expected_events(times, acc, [one]), expected_events(times, merged_accrual, [split]), rtol=1e-12, atol=1e-12
    )


def test_hazard_ratio_pieces_merge_with_the_hazard_pieces():
    control = PiecewiseExponential((0.0, 6.0), (0.1, 0.05))
    delayed = control.with_hazard_ratio((0.0, 4.0), (1.0, 0.6))
    assert delayed.starts == (0.0, 4.0, 6.0)
    np.testing.assert_allclose(delayed.hazards, [0.1, 0.06, 0.03])
    t = np.array([0.0, 3.0, 5.0, 10.0])
    np.testing.assert_allclose(delayed.cumulative_hazard(t), [0.0, 0.3, 0.4 + 0.06, 0.4 + 0.12 + 0.12])


def test_time_of_events_inverts_expected_events():
    acc = Accrual((3.0, 15.0), (10.0, 30.0))
    arms = [
        ArmModel(PiecewiseExponential((0.0, 3.0), (0.09, 0.05))),
        ArmModel(PiecewiseExponential.exponential(0.09), dropout=0.005),
    ]
    times = np.array([4.0, 12.0, 18.0, 30.0])
    targets = expected_events(times, acc, arms, [2, 1]).sum(axis=-1)
    np.testing.assert_allclose(time_of_events(targets, acc, arms, [2, 1]), times, atol=1e-8)
    with pytest.raises(ValueError, match=r"cannot be reached: the 480 patients are expected to give"):
        time_of_events([10_000.0], acc, arms)


def simulate_patients(rng, n_trials, accrual: Accrual, hazards, dropouts, weights):
    """(entry, arm, event calendar time or inf) for n_trials x N patients, N = accrual.total."""
    n = round(accrual.total)
    mass = np.asarray(accrual.durations) * np.asarray(accrual.rates)
    piece = rng.choice(mass.size, size=(n_trials, n), p=mass / mass.sum())
    entry = accrual.starts[piece] + rng.uniform(size=(n_trials, n)) * np.asarray(accrual.durations)[piece]
    share = np.asarray(weights, dtype=float) / np.sum(weights)
    arm = rng.choice(len(share), size=(n_trials, n), p=share)
    event = np.empty((n_trials, n))
    drop = np.empty((n_trials, n))
    for g, (h, eta) in enumerate(zip(hazards, dropouts)):
        mask = arm == g
        starts = np.asarray(h.starts)
        cum = np.concatenate(([0.0], np.cumsum(np.asarray(h.hazards)[:-1] * np.diff(starts))))
        e = rng.exponential(size=mask.sum())
        beyond = e > cum[-1]
        t = np.interp(e, cum, starts) if starts.size > 1 else np.zeros_like(e)
        t = np.where(beyond, starts[-1] + (e - cum[-1]) / h.hazards[-1], t)
        event[mask] = t
        drop[mask] = rng.exponential(1 / eta, size=mask.sum()) if eta > 0 else np.inf
    return entry, arm, event, drop


DELAYED = {
    "accrual": Accrual((3.0, 15.0), (10.0, 30.0)),  # 480 patients over 18 months (assumption)
    "control": ArmModel(PiecewiseExponential.from_median(8.0), dropout=-math.log(0.95) / 12),
    "experimental": ArmModel(
        PiecewiseExponential.from_median(8.0).with_hazard_ratio((0.0, 3.0), (1.0, 0.6)), dropout=-math.log(0.95) / 12
    ),
}


def test_expected_events_monte_carlo():
    acc, ctrl, expe = DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"]
    rng = np.random.default_rng(20260612)
    entry, arm, event, drop = simulate_patients(
        rng, 4000, acc, [expe.hazard, ctrl.hazard], [expe.dropout, ctrl.dropout], [1, 1]
    )
    observed_event = event < drop
    times = np.array([6.0, 15.0, 24.0, 40.0])
    exact = expected_events(times, acc, [expe, ctrl])
    for i, t in enumerate(times):
        for g in range(2):
            counts = ((arm == g) & observed_event & (entry + event <= t)).sum(axis=1)
            mcse = counts.std(ddof=1) / math.sqrt(counts.size)
            assert abs(counts.mean() - exact[i, g]) <= 4 * mcse, (t, g, counts.mean(), exact[i, g])
    # at the predicted calendar time of 250 events, the simulated count averages 250
    t250 = time_of_events([250.0], acc, [expe, ctrl])[0]
    counts = (observed_event & (entry + event <= t250)).sum(axis=1)
    assert abs(counts.mean() - 250.0) <= 4 * counts.std(ddof=1) / math.sqrt(counts.size)


# ------------------------------------------------------------------------------------------
# Lakatos
# ------------------------------------------------------------------------------------------


def test_lakatos_under_the_null_has_mean_zero_and_unit_variance():
    acc, ctrl = DELAYED["accrual"], DELAYED["control"]
    res = lakatos(30.0, acc, ctrl, ctrl)
    assert res.mean_z == pytest.approx(0.0, abs=1e-12)
    assert res.variance_ratio == pytest.approx(1.0, abs=1e-12)
    assert res.power(0.025) == pytest.approx(0.025, abs=1e-12)


def test_lakatos_equal_numbers_at_risk_gives_the_closed_form():
    """Dropout offsets the hazard difference, so phi_i = 1 and theta_i = theta exactly."""
    lam, theta = 0.08, 0.7
    acc = Accrual.uniform(500, 12)
    ctrl = ArmModel(PiecewiseExponential.exponential(lam), dropout=0.01)
    expe = ArmModel(PiecewiseExponential.exponential(theta * lam), dropout=0.01 + (1 - theta) * lam)
    res = lakatos(24.0, acc, ctrl, expe, steps_per_unit=4)
    np.testing.assert_allclose(res.interval_at_risk_ratio, 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.interval_hazard_ratio, theta, rtol=1e-12)
    assert res.mean_z == pytest.approx(math.sqrt(res.total_events) * (1 - theta) / (1 + theta), rel=1e-12)
    # its events for 90% power, against Schoenfeld's: the ratio is known in closed form
    _, events = lakatos_sample_size(24.0, acc, ctrl, expe, 0.025, 0.9, steps_per_unit=4)
    assert events == pytest.approx(Z**2 * ((1 + theta) / (1 - theta)) ** 2, rel=1e-12)
    ratio = math.log(theta) ** 2 * (1 + theta) ** 2 / (4 * (1 - theta) ** 2)
    assert events / schoenfeld_events(theta) == pytest.approx(ratio, rel=1e-12)


def test_lakatos_tends_to_schoenfeld_under_proportional_hazards():
    acc = Accrual.uniform(600, 18)
    ctrl = ArmModel(PiecewiseExponential.from_median(10.0), dropout=0.005)
    gaps = []
    for hr in (0.8, 0.9, 0.97):
        expe = ArmModel(ctrl.hazard.with_hazard_ratio((0.0,), (hr,)), dropout=0.005)
        res = lakatos(30.0, acc, ctrl, expe)
        schoenfeld_mean = -math.log(hr) * math.sqrt(res.total_events / 4)
        gaps.append(abs(res.mean_z / schoenfeld_mean - 1))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-3


def test_lakatos_discretization_converges():
    acc, ctrl, expe = DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"]
    coarse = lakatos(30.0, acc, ctrl, expe, steps_per_unit=20)
    fine = lakatos(30.0, acc, ctrl, expe, steps_per_unit=200)
    assert abs(coarse.mean_z - fine.mean_z) < 1e-4
    assert abs(coarse.variance_ratio - fine.variance_ratio) < 1e-5
    exact = expected_events(np.array([30.0]), acc, [expe, ctrl])[0]
    np.testing.assert_allclose(fine.events, exact, rtol=1e-5)
    np.testing.assert_allclose(coarse.events, exact, rtol=1e-3)


def test_lakatos_noncompliance_dilutes_the_effect():
    acc, ctrl, expe = DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"]
    full = lakatos(30.0, acc, ctrl, expe)
    switching = lakatos(
        30.0,
        acc,
        ArmModel(ctrl.hazard, ctrl.dropout, switch_hazard=0.02),
        ArmModel(expe.hazard, expe.dropout, switch_hazard=0.02),
    )
    assert 0 < switching.mean_z < full.mean_z


def logrank_z(time, event, arm):
    """Benefit-positive log-rank z for one trial (arm 0 experimental, 1 control)."""
    x = stats.CensoredData.right_censored(time[arm == 0], ~event[arm == 0])
    y = stats.CensoredData.right_censored(time[arm == 1], ~event[arm == 1])
    return -stats.logrank(x, y).statistic


def test_lakatos_moments_monte_carlo():
    """The simulated log-rank statistic of a delayed-effect trial has the Lakatos mean, variance and power."""
    acc, ctrl, expe = DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"]
    analysis = 26.0
    res = lakatos(analysis, acc, ctrl, expe)
    rng = np.random.default_rng(20260613)
    n = 2000
    entry, arm, event, drop = simulate_patients(
        rng, n, acc, [expe.hazard, ctrl.hazard], [expe.dropout, ctrl.dropout], [1, 1]
    )
    follow = analysis - entry
    time = np.minimum(np.minimum(event, drop), follow)
    status = (event <= drop) & (event <= follow)
    z = np.array([logrank_z(time[i], status[i], arm[i]) for i in range(n)])
    sd = z.std(ddof=1)
    assert abs(z.mean() - res.mean_z) <= 4 * sd / math.sqrt(n)
    assert abs(sd - math.sqrt(res.variance_ratio)) <= 4 * sd / math.sqrt(2 * (n - 1))
    power = res.power(0.025, variance="alternative")
    assert abs((z > -ndtri(0.025)).mean() - power) <= 4 * math.sqrt(power * (1 - power) / n)


def test_lakatos_rejects_bad_input():
    acc, ctrl = DELAYED["accrual"], DELAYED["control"]
    with pytest.raises(ValueError, match=r"analysis_time must be finite and > 0, got 0"):
        lakatos(0, acc, ctrl, ctrl)
    with pytest.raises(ValueError, match=r"steps_per_unit must be finite and > 0, got -2"):
        lakatos(10, acc, ctrl, ctrl, steps_per_unit=-2)
    with pytest.raises(ValueError, match=r"variance must be 'null' or 'alternative', got 'exact'"):
        lakatos(10, acc, ctrl, ctrl).power(0.025, "exact")
    with pytest.raises(ValueError, match=r"not better than control"):
        lakatos_sample_size(20.0, acc, ctrl, ArmModel(PiecewiseExponential.exponential(0.2)))


def test_model_inputs_are_validated():
    with pytest.raises(ValueError, match=r"starts must begin at 0 and strictly increase, got \[1.0, 2.0\]"):
        PiecewiseExponential((1.0, 2.0), (0.1, 0.2))
    with pytest.raises(ValueError, match=r"hazards must be finite and >= 0, got \[0.1, -0.2\]"):
        PiecewiseExponential((0.0, 2.0), (0.1, -0.2))
    with pytest.raises(ValueError, match=r"Accrual durations must be finite and > 0, got \[3.0, 0.0\]"):
        Accrual((3.0, 0.0), (10.0, 20.0))
    with pytest.raises(ValueError, match=r"Accrual rates must be finite, >= 0 and not all 0, got \[0.0\]"):
        Accrual((3.0,), (0.0,))
    with pytest.raises(ValueError, match=r"ArmModel dropout must be finite and >= 0, got -0.1"):
        ArmModel(PiecewiseExponential.exponential(0.1), dropout=-0.1)
    with pytest.raises(ValueError, match=r"allocation must give one weight >= 0 per arm \(2\)"):
        expected_events([1.0], Accrual.uniform(10, 1), [DELAYED["control"]] * 2, [1.0])
    with pytest.raises(ValueError, match=r"times must be finite and >= 0, got \[-1.0\]"):
        expected_events([-1.0], Accrual.uniform(10, 1), [DELAYED["control"]])
    with pytest.raises(ValueError, match=r"events must be finite and > 0, got \[0.0\]"):
        time_of_events([0.0], Accrual.uniform(10, 1), [DELAYED["control"]])


# ------------------------------------------------------------------------------------------
# group-sequential TTE plans
# ------------------------------------------------------------------------------------------


def test_group_sequential_plan_is_consistent_with_its_parts():
    design = group_sequential_design([1 / 3, 2 / 3, 1.0], 0.025, 0.1, LanDeMetsOBrienFleming())
    acc = Accrual((3.0, 15.0), (20.0, 40.0))
    ctrl = ArmModel(PiecewiseExponential.from_median(8.0), dropout=0.004)
    expe = ArmModel(ctrl.hazard.with_hazard_ratio((0.0,), (0.7,)), dropout=0.004)
    plan = group_sequential_tte(design, acc, ctrl, expe)
    np.testing.assert_allclose(plan.events, design.events(schoenfeld_events(0.7)), rtol=1e-12)
    np.testing.assert_allclose(
        expected_events(plan.time_alternative, acc, [expe, ctrl]).sum(axis=-1), plan.events, rtol=1e-9
    )
    null_arms = [ArmModel(ctrl.hazard, expe.dropout), ctrl]
    np.testing.assert_allclose(expected_events(plan.time_null, acc, null_arms).sum(axis=-1), plan.events, rtol=1e-9)
    assert np.all(plan.time_null < plan.time_alternative)  # events come faster without a benefit
    for t, mu in zip(plan.time_alternative, plan.mean_z):
        assert mu == pytest.approx(lakatos(t, acc, ctrl, expe).mean_z, rel=1e-12)
    # under proportional hazards the Lakatos drift is close to Schoenfeld's, so the power is near 90%
    schoenfeld_means = -math.log(0.7) * np.sqrt(plan.events / 4)
    np.testing.assert_allclose(plan.mean_z, schoenfeld_means, rtol=5e-3)
    assert plan.power == pytest.approx(0.9, abs=5e-3)
    np.testing.assert_allclose(plan.null.efficacy, design.null.efficacy, atol=1e-12)
    assert plan.expected_events_alternative == pytest.approx(np.dot(plan.alternative.stop, plan.events), rel=1e-12)
    assert plan.expected_time_alternative < plan.time_alternative[-1]
    np.testing.assert_allclose(plan.enrolled_alternative, expected_enrolled(plan.time_alternative, acc))


def test_group_sequential_plan_needs_max_events_under_non_proportional_hazards():
    design = group_sequential_design([0.5, 1.0], 0.025, 0.1, LanDeMetsOBrienFleming())
    with pytest.raises(ValueError, match=r"max_events is required when the hazards are not proportional"):
        group_sequential_tte(design, DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"])
    plan = group_sequential_tte(design, DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"], max_events=300)
    np.testing.assert_allclose(plan.events, [150, 300])
    # the delayed effect costs power against a proportional effect with the same late hazard ratio
    ph = ArmModel(DELAYED["control"].hazard.with_hazard_ratio((0.0,), (0.6,)), dropout=DELAYED["control"].dropout)
    assert plan.power < group_sequential_tte(design, DELAYED["accrual"], DELAYED["control"], ph, max_events=300).power


@pytest.mark.slow
def test_group_sequential_plan_monte_carlo():
    """Event-driven looks in simulated delayed-effect trials: crossing probabilities by look, 4 MCSE."""
    design = group_sequential_design([0.5, 0.75, 1.0], 0.025, 0.1, LanDeMetsOBrienFleming())
    acc, ctrl, expe = DELAYED["accrual"], DELAYED["control"], DELAYED["experimental"]
    plan = group_sequential_tte(design, acc, ctrl, expe, max_events=330)
    targets = plan.events.round().astype(int)
    rng = np.random.default_rng(20260614)
    n = 3000
    entry, arm, event, drop = simulate_patients(
        rng, n, acc, [expe.hazard, ctrl.hazard], [expe.dropout, ctrl.dropout], [1, 1]
    )
    calendar = np.where(event < drop, entry + event, np.inf)
    first_cross = np.full(n, -1)
    for i in range(n):
        look_times = np.sort(calendar[i])[targets - 1]
        for k, t in enumerate(look_times):
            follow = t - entry[i]
            time = np.minimum(np.minimum(event[i], drop[i]), follow)
            status = (event[i] <= drop[i]) & (event[i] <= follow)
            keep = follow > 0
            z = logrank_z(time[keep], status[keep], arm[i][keep])
            if z >= design.efficacy_z[k]:
                first_cross[i] = k
                break
    # the exact recursion with the Lakatos means at the simulated looks' information
    exact = crossing_probabilities(design.efficacy_z, None, targets.astype(float), means=plan.mean_z)
    for k in range(3):
        p = exact.efficacy[k]
        assert abs((first_cross == k).mean() - p) <= 4 * math.sqrt(p * (1 - p) / n), k


def test_worked_example_in_the_docs():
    """The numbers printed in docs/group_sequential.md, to the precision printed there."""
    design = group_sequential_design([1 / 3, 2 / 3, 1.0], alpha=0.025, beta=0.1, efficacy=LanDeMetsOBrienFleming())
    np.testing.assert_allclose(design.efficacy_z, [3.7103, 2.5114, 1.9930], atol=5e-5)
    np.testing.assert_allclose(stats.norm.sf(design.efficacy_z), [0.0001, 0.0060, 0.0231], atol=5e-5)
    np.testing.assert_allclose(design.cumulative_alpha, [0.0001, 0.0060, 0.0250], atol=5e-5)
    np.testing.assert_allclose(design.alternative.efficacy, [0.0338, 0.5265, 0.3397], atol=5e-5)
    assert design.inflation_factor == pytest.approx(1.0119, abs=5e-5)
    assert design.expected_information_alternative == pytest.approx(0.8115, abs=5e-5)
    assert design.expected_information_null == pytest.approx(1.0098, abs=5e-5)
    fixed = schoenfeld_events(0.7, alpha=0.025, power=0.9)
    assert fixed == pytest.approx(330.4, abs=0.05)
    np.testing.assert_allclose(design.events(fixed), [111.4, 222.9, 334.3], atol=0.05)
    control = ArmModel(PiecewiseExponential.from_median(8.0), dropout=-math.log(0.95) / 12)
    experimental = ArmModel(control.hazard.with_hazard_ratio((0.0,), (0.7,)), dropout=control.dropout)
    plan = group_sequential_tte(design, Accrual(durations=(3.0, 15.0), rates=(20.0, 40.0)), control, experimental)
    np.testing.assert_allclose(plan.time_alternative, [11.3, 16.1, 20.6], atol=0.05)
    np.testing.assert_allclose(plan.time_null, [10.5, 15.1, 19.1], atol=0.05)
    np.testing.assert_allclose(plan.enrolled_alternative, [390, 586, 660], atol=0.5)
    np.testing.assert_allclose(plan.mean_z, [1.873, 2.653, 3.253], atol=5e-4)
    assert plan.power == pytest.approx(0.8986, abs=5e-5)
    assert plan.expected_events_alternative == pytest.approx(268.6, abs=0.05)
    assert plan.expected_events_null == pytest.approx(333.6, abs=0.05)
    assert plan.expected_time_alternative == pytest.approx(17.9, abs=0.05)
    assert plan.expected_time_null == pytest.approx(19.0, abs=0.05)
