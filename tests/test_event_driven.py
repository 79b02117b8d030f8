"""Event-driven two-arm group-sequential designs (platform_sim.families.event_driven).

Exact checks: the log-rank statistic at data cut-offs against the general log-rank kernel; the
compiled boundaries against the boundary engine at the analyses' event fractions; the analytic
plan's calendar times against the closed-form expected events of exponential arms (Lachin & Foulkes
1986), up to the stated grid error. Simulation checks, at fixed seeds, within Z Monte Carlo
standard errors of the analytic values: power and the months of the looks here (2,000 trials),
type I error and power by look in the slow run (40,000 trials each).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.families import family_of
from platform_sim.families.event_driven import analytic_versus_simulated, assign_arms
from platform_sim.posterior import group_sequential as gs
from platform_sim.posterior import planning
from platform_sim.posterior.survival import logrank_at_cuts, logrank_vs_control
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

Z = 4.0


def load(name: str, kind: str) -> dict:
    with open(f"{kind}s/{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def spec(design: dict | None = None, scenario: dict | None = None) -> Spec:
    d = parse_design(design or load("textbook_group_sequential", "design"))
    s = parse_scenario(scenario or load("textbook_two_arm", "scenario"))
    return Spec.from_models(d, s)


def textbook(**changes) -> dict:
    data = load("textbook_group_sequential", "design")
    data["event_driven"].update(changes)
    return data


# --------------------------------------------------------------------------- the log-rank statistic at cut-offs


def test_logrank_at_cuts_equals_the_log_rank_of_the_cut_data():
    rng = np.random.default_rng(5)
    t, n, k = 30, 80, 4
    entry = np.sort(rng.uniform(0, 12, (t, n)), axis=1)
    outcome = np.round(rng.exponential(6, (t, n)), 1)  # rounded: many ties
    dropout = np.round(rng.exponential(40, (t, n)), 1)
    followed = np.minimum(outcome, dropout)
    event = outcome <= dropout
    experimental = rng.random((t, n)) < 0.5
    cuts = np.sort(rng.uniform(3, 25, (t, k)), axis=1)
    z, oe, var = logrank_at_cuts(entry, followed, event, experimental, cuts)
    for j in range(k):
        c = cuts[:, j : j + 1]
        inside = entry <= c
        ended = entry + followed <= c
        time = np.where(inside, np.where(ended, followed, c - entry), np.nan)
        ev = inside & ended & event
        arm = np.where(inside, experimental.astype(np.int64), -1)
        z_ref, oe_ref, var_ref = logrank_vs_control(time, ev, arm, None, 0, 2)
        np.testing.assert_allclose(oe[:, j], oe_ref[:, 1], atol=1e-10)
        np.testing.assert_allclose(var[:, j], var_ref[:, 1], atol=1e-10)
        np.testing.assert_allclose(z[:, j], z_ref[:, 1], atol=1e-10)


def test_block_randomization_balances_every_block():
    u = Streams(3).for_trials(np.arange(20)).uniform(4, "x", 0, 100)
    one = assign_arms(u, 1.0, "block")
    assert np.all(one[:, :96].reshape(20, -1, 4).sum(axis=2) == 2)
    two = assign_arms(u, 2.0, "block")
    assert np.all(two[:, :96].reshape(20, -1, 6).sum(axis=2) == 4)
    simple = assign_arms(u, 1.0, "simple")
    assert 0.4 < simple.mean() < 0.6


# --------------------------------------------------------------------------- compiling


def test_events_and_boundaries_of_the_textbook_design():
    c = spec().compiled
    fixed = planning.schoenfeld_events(0.7, 0.025, 0.9)
    assert fixed == pytest.approx(330.38, abs=0.01)  # docs/group_sequential.md: 330.4
    np.testing.assert_array_equal(c.look_events, [112, 223, 335])  # ceil(1.0119 x 330.4) = 335, thirds rounded
    ref = gs.group_sequential_design(c.look_events / 335, 0.025, 0.1, gs.LanDeMetsOBrienFleming())
    np.testing.assert_allclose(c.efficacy_z, ref.efficacy_z, rtol=0, atol=1e-12)
    assert np.all(np.isneginf(c.futility_z))
    assert c.plan.alpha_by_look.sum() == pytest.approx(0.025, abs=gs.GRID_ERROR_PROBABILITY)
    # at the planned hazard ratio the design has its power (335 events: a little above 0.9)
    assert 0.9 <= c.plan.power_planned.sum() < 0.902


def test_analytic_calendar_matches_the_closed_form_of_exponential_arms():
    """The plan holds each arm's survival on a 0.1-month grid; with exponential arms the events by
    calendar time have a closed form (planning.expected_events, exact), and the look months agree to
    the grid's accuracy."""
    c = spec().compiled
    dropout = -math.log(0.95) / 12
    control = planning.ArmModel(planning.PiecewiseExponential.from_median(8.0), dropout=dropout)
    experimental = planning.ArmModel(control.hazard.with_hazard_ratio((0.0,), (0.7,)), dropout=dropout)
    accrual = planning.Accrual((660 / 40,), (40.0,))
    exact_alt = planning.time_of_events(c.look_events.astype(float), accrual, (experimental, control))
    exact_null = planning.time_of_events(c.look_events.astype(float), accrual, (control, control))
    np.testing.assert_allclose(c.plan.month_scenario, exact_alt, atol=1e-6)
    np.testing.assert_allclose(c.plan.month_null, exact_null, atol=1e-6)
    # Lakatos power under proportional hazards is close to the Schoenfeld (canonical) power
    assert c.plan.power_scenario.sum() == pytest.approx(c.plan.power_planned.sum(), abs=0.005)


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"events": 5000}, "design.event_driven.events", "are expected to produce only"),
        ({"events": 2}, "design.event_driven", "events (2) must be at least the number of analyses (3)"),
        ({"information_fractions": [0.5, 0.4, 1.0]}, "event_driven.information_fractions", "strictly increasing"),
        ({"information_fractions": [0.5, 0.9]}, "event_driven.information_fractions", "must end at 1"),
        ({"efficacy": {"spending": "hwang_shih_decani"}}, "event_driven.efficacy", "needs gamma"),
        ({"efficacy": {"spending": "pocock", "z": [3, 2, 2]}}, "event_driven.efficacy", "not both or neither"),
        ({"efficacy": {"z": [3.0, 2.0]}}, "event_driven", "efficacy.z needs one boundary per look"),
        (
            {"efficacy": {"spending": "hwang_shih_decani", "gamma": 50}},
            "event_driven.efficacy.gamma",
            "less than or equal to 40",
        ),
        ({"futility": {"z": [0.0]}}, "event_driven", "futility.z needs one boundary per interim look"),
        ({"alpha": 0.95}, "event_driven", "alpha (0.95) must be below the power"),
        (
            {"efficacy": {"z": [3.0, 2.5, 0.5]}, "futility": {"z": [1.0, 2.8]}},
            "design.event_driven",
            "futility_z must not exceed efficacy_z",
        ),
    ],
)
def test_bad_designs_are_reported_with_the_field(changes, path, words):
    with pytest.raises(ConfigError) as info:
        spec(textbook(**changes))
    message = str(info.value)
    assert path in message and words in message, message


def test_event_driven_design_takes_no_sections_of_other_designs():
    data = textbook()
    data["randomization"] = {"method": "fixed", "scheme": "simple"}
    with pytest.raises(ConfigError, match="remove \\['randomization'\\]"):
        parse_design(data)
    binary = load("textbook_two_arm", "scenario")
    binary["endpoints"]["orr"] = {"kind": "binary"}
    binary["treatments"]["control"]["outcomes"]["orr"] = {"rate": 0.2}
    data = textbook()
    data["endpoint"]["name"] = "orr"
    with pytest.raises(ConfigError, match="design.endpoint.name: is a binary endpoint"):
        spec(data, binary)


def test_truth_size_resize_and_description():
    s = spec()
    fam = family_of(s.design)
    truth = s.truth
    assert truth.effect[1, 0] == pytest.approx(math.log(0.7), abs=1e-9)
    assert bool(truth.works[1, 0]) and not bool(truth.null[1, 0])
    null = copy.deepcopy(load("textbook_group_sequential", "design"))
    null["arms"][1]["treatment"] = "null_drug"
    t0 = spec(null).truth
    assert bool(t0.null[1, 0]) and not bool(t0.works[1, 0])
    assert fam.size(s.compiled).max_n == 660
    assert fam.size(s.compiled).months == pytest.approx(16.5, abs=1e-6)
    smaller = fam.resize(s.compiled, max_n=600)
    assert smaller.event_driven.max_n == 600 and smaller.event_driven.events is None
    given = spec(textbook(events=300)).compiled
    assert fam.resize(given, max_n=330).event_driven.events == 150
    words = fam.describe(s.compiled)
    assert words.sections[0].tables[0].rows[0][1] == 112
    assert {m for m, _, _ in words.analytic} >= {"p_efficacy_look_1", "p_stop_efficacy", "month_of_look_3"}


# --------------------------------------------------------------------------- simulating


def test_results_depend_only_on_seed_and_trial():
    s = spec(copy.deepcopy(load("benchmark_event_driven", "design")))
    fam = s.family
    whole = fam.simulate(s.compiled, Streams(9).for_trials(np.arange(40)))
    parts = [fam.simulate(s.compiled, Streams(9).for_trials(np.arange(a, a + 20))) for a in (0, 20)]
    for name in ("n", "events", "claimed", "stop_reason", "duration_months"):
        np.testing.assert_array_equal(getattr(whole, name), np.concatenate([getattr(p, name) for p in parts]))
    np.testing.assert_array_equal(whole.extras["z"], np.concatenate([p.extras["z"] for p in parts]))


def test_every_analysis_has_its_events_and_decisions_follow_the_boundaries():
    s = spec(copy.deepcopy(load("benchmark_event_driven", "design")))
    c = s.compiled
    r = s.family.simulate(c, Streams(2).for_trials(np.arange(300)))
    assert not r.trial_values["p_shortfall"].any()
    np.testing.assert_array_equal(r.extras["events_by_look"], np.broadcast_to(c.look_events, (300, 3)))
    z, stop = r.extras["z"], r.extras["stop_look"]
    rows = np.arange(300)
    claimed = r.claimed[:, 1, 0]
    assert np.all(z[rows, stop][claimed] >= c.efficacy_z[stop][claimed])
    futile = r.stop_reason == 2
    assert futile.any() and np.all(z[rows, stop][futile] <= c.futility_z[stop][futile])
    for k in range(3):  # no earlier look crossed a boundary
        earlier = stop > k
        assert np.all((z[earlier, k] < c.efficacy_z[k]) & (z[earlier, k] > c.futility_z[k]))
    assert np.all(r.events.sum(axis=(1, 2)) == c.look_events[stop])


def test_simulated_power_and_look_months_agree_with_the_plan():
    s = spec()
    r = run(s, 2000, seed=4)
    table = analytic_versus_simulated(s.compiled, r).set_index("metric")
    for metric in ("p_stop_efficacy", "month_of_look_1", "month_of_look_2", "month_of_look_3"):
        row = table.loc[metric]
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())


def test_run_prints_the_plan_beside_the_simulation():
    from platform_sim.oc import frame, summarize
    from platform_sim.text import format_run

    s = spec()
    r = run(s, 200, seed=1)
    text = format_run(s, frame(summarize(r, s.truth)))
    assert "Analytic plan beside simulation" in text and "P(efficacy at look 2), Lakatos" in text


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["experimental", "null_drug"])
def test_type_one_error_and_power_agree_with_the_exact_design(arm):
    """40,000 trials under H0 (null_drug) and under H1 (hazard ratio 0.7). Under H0 the probability of
    crossing each efficacy boundary agrees with the alpha spent there; under H1 the power agrees with the
    recursion at the Lakatos drift, within Z Monte Carlo standard errors. (How the power splits between
    looks 2 and 3 under H1 differs from the normal approximation by about 0.01, because the log-rank
    statistic's variance under the alternative is below 1; docs/survival.md.)"""
    design = copy.deepcopy(load("textbook_group_sequential", "design"))
    design["arms"][1]["treatment"] = arm
    s = spec(design)
    n = 40_000
    r = run(s, n, seed=2026)
    c = s.compiled
    if arm == "null_drug":
        for k in range(3):
            p = float(c.plan.alpha_by_look[k])
            got = float(r.trial_values[f"p_efficacy_look_{k + 1}"].mean())
            assert abs(got - p) <= Z * math.sqrt(p * (1 - p) / n), (k, got, p)
    expected = c.plan.alpha_by_look if arm == "null_drug" else c.plan.power_scenario
    total = float(expected.sum())
    got = float(r.claimed[:, 1, 0].mean())
    assert abs(got - total) <= Z * math.sqrt(total * (1 - total) / n), (got, total)


# --------------------------------------------------------------------------- S1800A


def s1800a(arm: str = "ramucirumab_pembrolizumab") -> Spec:
    design = load("s1800a", "design")
    design["arms"][1]["treatment"] = arm
    return spec(design, load("s1800a_os", "scenario"))


def test_s1800a_scenario_reproduces_the_reported_medians():
    s = s1800a()
    vp = s.patients
    treatments = ["docetaxel", "ramucirumab_pembrolizumab"]
    np.testing.assert_allclose(vp.truth("os", treatments), [11.6, 14.5], atol=0.005)  # Reckamp 2022
    np.testing.assert_allclose(vp.truth("pfs", treatments), [4.0, 4.0], atol=1e-7)  # "comparable"
    # responses count only among patients not lost before the assessment (the scenario's dropout: 5% by a year)
    np.testing.assert_allclose(vp.truth("orr", treatments), [0.14 * 0.95, 0.14 * 0.95], atol=1e-12)
    soc, rp = (vp.outcomes.joint[t] for t in treatments)
    ratios = [math.log(float(rp.os_survival(t))) / math.log(float(soc.os_survival(t))) for t in (3.0, 11.6, 24.0)]
    np.testing.assert_allclose(ratios, [0.84, 0.76, 0.73], atol=0.005)  # the scenario file's comment
    assert s.truth.effect[1, 0] == pytest.approx(math.log(ratios[1]), abs=1e-3)


def test_s1800a_design_is_a_one_sided_ten_percent_log_rank_test():
    c = s1800a().compiled
    np.testing.assert_array_equal(c.look_events, [113])  # Schoenfeld: 112.4 deaths, rounded up
    assert c.efficacy_z[0] == pytest.approx(1.2815516, abs=1e-6)  # z_0.90
    assert c.plan.alpha_by_look[0] == pytest.approx(0.10, abs=1e-7)


def test_s1800a_simulated_power_agrees_with_lakatos():
    s = s1800a()
    r = run(s, 2000, seed=3)
    row = analytic_versus_simulated(s.compiled, r).set_index("metric").loc["p_stop_efficacy"]
    assert abs(row.simulated - row.analytic) <= Z * row.mcse, row.to_dict()


@pytest.mark.slow
def test_s1800a_type_one_error():
    n = 20_000
    r = run(s1800a("soc_again"), n, seed=77)
    got = float(r.claimed[:, 1, 0].mean())
    assert abs(got - 0.10) <= Z * math.sqrt(0.1 * 0.9 / n), got


def test_fixed_follow_up_limits_the_events_in_plan_and_simulation():
    """Patients followed for at most 6 months: fewer events can ever be observed (the plan's maximum is
    the closed form with hazard 0 after 6 months), the looks come later, and the simulated months of the
    looks agree with the plan."""
    c = spec(textbook(follow_up_months=6.0, events=180)).compiled
    dropout = -math.log(0.95) / 12
    cut = planning.PiecewiseExponential((0.0, 6.0), (math.log(2) / 8, 0.0))
    arms = (
        planning.ArmModel(cut.with_hazard_ratio((0.0,), (0.7,)), dropout=dropout),
        planning.ArmModel(cut, dropout=dropout),
    )
    most = planning.expected_events([1e4], planning.Accrual((660 / 40,), (40.0,)), arms)[0].sum()
    assert c.plan.max_expected_events == pytest.approx(most, rel=1e-6)
    with pytest.raises(ConfigError, match="are expected to produce only"):
        spec(textbook(follow_up_months=6.0, events=int(most) + 1))
    s = spec(textbook(follow_up_months=6.0, events=180))
    r = run(s, 2000, seed=8)
    assert not r.trial_values["p_shortfall"].any()
    table = analytic_versus_simulated(s.compiled, r).set_index("metric")
    for metric in ("month_of_look_1", "month_of_look_3", "p_stop_efficacy"):
        row = table.loc[metric]
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())


def test_storyboard_replays_the_trial_of_the_run():
    from platform_sim.storyboard import format_story, history_figure, replay

    s = spec(copy.deepcopy(load("benchmark_event_driven", "design")))
    r = run(s, 30, seed=6)
    for index in (0, 7):
        story = replay(s, 6, index, 30)
        stop = int(r.extras["stop_look"][index])
        assert len(story.analyses) == stop + 1
        np.testing.assert_allclose(story.analyses["z"], r.extras["z"][index, : stop + 1])
        patients = story.patients[story.patients["arm"] != ""]
        assert len(patients) == r.n_randomized[index]
        assert patients["event"].sum() == r.events[index].sum() == s.compiled.look_events[stop]
        assert patients.groupby("arm")["event"].sum().to_dict() == dict(zip(r.arms, r.events[index, :, 0]))
        data = story.analysis_data()
        assert {"time", "event"} <= set(data.columns) and data["time"].notna().all()
    assert "analysis 1 at month" in format_story(story)
    history_figure(story)


@pytest.mark.parametrize(
    ("boundary", "function"),
    [
        ({"spending": "pocock"}, gs.LanDeMetsPocock()),
        ({"spending": "hwang_shih_decani", "gamma": -4}, gs.HwangShihDeCani(-4)),
        ({"spending": "kim_demets", "rho": 3}, gs.KimDeMetsPower(3)),
        ({"z": [3.5, 2.6, 2.0]}, np.array([3.5, 2.6, 2.0])),
    ],
)
def test_every_kind_of_boundary_compiles_to_the_engine_boundaries(boundary, function):
    c = spec(
        textbook(
            events=300, efficacy=boundary, futility={"spending": "hwang_shih_decani", "gamma": -2, "binding": True}
        )
    ).compiled
    fractions = np.array([100, 200, 300]) / 300
    ref = gs.group_sequential_design(fractions, 0.025, 0.1, function, gs.HwangShihDeCani(-2), binding_futility=True)
    np.testing.assert_array_equal(c.look_events, [100, 200, 300])
    np.testing.assert_allclose(c.efficacy_z, ref.efficacy_z, atol=1e-12)
    np.testing.assert_allclose(c.futility_z, ref.futility_z, atol=1e-12)
    if "z" in boundary:  # user-given boundaries are used as given
        np.testing.assert_array_equal(c.efficacy_z, boundary["z"])
