"""Options of the event-driven family: the decision statistic (Cox score tests, stratified log-rank)
and analyses at calendar months.

Simulation checks at fixed seeds compare with the analytic plan within Z = 4 Monte Carlo standard
errors; the statistics themselves are checked against hand computations in tests/test_score_tests.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.families.event_driven import analytic_versus_simulated
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

Z = 4.0


def load(name: str, kind: str) -> dict:
    with open(f"{kind}s/{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def textbook(**changes) -> dict:
    data = copy.deepcopy(load("textbook_group_sequential", "design"))
    data["event_driven"].update(changes)
    return data


def prognostic_scenario() -> dict:
    """The textbook scenario with a strongly prognostic two-level characteristic (risk: high in 40%,
    hazard ratio 3 against low), the same for every treatment."""
    data = copy.deepcopy(load("textbook_two_arm", "scenario"))
    data["population"]["markers"] = {"risk": {"levels": ["low", "high"], "probabilities": [0.6, 0.4]}}
    data["prognostic"] = {"os": {"hazard_ratios": {"risk": 3.0}}}
    return data


def spec(design: dict, scenario: dict | None = None) -> Spec:
    return Spec.from_models(parse_design(design), parse_scenario(scenario or load("textbook_two_arm", "scenario")))


def null_arm(design: dict) -> dict:
    design["arms"][1]["treatment"] = "null_drug"
    return design


# --------------------------------------------------------------------------- decision statistic


@pytest.mark.parametrize("statistic", ["cox_score_breslow", "cox_score_efron"])
def test_cox_score_decides_as_the_log_rank_test_on_continuous_times(statistic):
    """Event times are continuous (no ties), so the score tests are the log-rank test: same z, same trials."""
    base = spec(textbook())
    other = spec(textbook(statistic=statistic))
    streams = Streams(5).for_trials(np.arange(200))
    a = base.family.simulate(base.compiled, streams)
    b = other.family.simulate(other.compiled, streams)
    np.testing.assert_allclose(b.extras["z"], a.extras["z"], atol=1e-9)
    np.testing.assert_array_equal(b.stop_reason, a.stop_reason)


def test_stratified_log_rank_recomputes_from_the_strata_and_keeps_the_type_one_error():
    scenario = prognostic_scenario()
    s = spec(null_arm(textbook(strata=["risk"])), scenario)
    assert s.compiled.strata_columns == (0,)
    r = run(s, 2000, seed=12)
    alpha = float(s.compiled.plan.alpha_by_look.sum())
    rejected = r.stop_reason == 1
    mcse = math.sqrt(alpha * (1 - alpha) / rejected.size)
    assert abs(rejected.mean() - alpha) <= Z * mcse, (rejected.mean(), alpha)
    # the stratified statistic differs from the unstratified one on the same trials
    plain = spec(null_arm(textbook()), scenario)
    streams = Streams(3).for_trials(np.arange(100))
    z_strat = s.family.simulate(s.compiled, streams).extras["z"]
    z_plain = plain.family.simulate(plain.compiled, streams).extras["z"]
    assert np.abs(z_strat - z_plain).max() > 1e-3


def test_stratified_log_rank_gains_power_when_the_strata_are_prognostic():
    """With a hazard ratio of 3 between strata the unstratified test loses efficiency (its variance mixes the
    strata); the stratified one is the efficient score test. Paired on the same trials."""
    scenario = prognostic_scenario()
    strat = run(spec(textbook(strata=["risk"]), scenario), 1500, seed=21)
    plain = run(spec(textbook(), scenario), 1500, seed=21)
    z_s = strat.extras["z"][:, 0]
    z_p = plain.extras["z"][:, 0]
    diff = z_s - z_p
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    assert diff.mean() > Z * se, (diff.mean(), se)


def test_unknown_stratum_is_named():
    with pytest.raises(ConfigError, match=r"design.event_driven.strata\[0\]: 'ecog' is not a characteristic"):
        spec(textbook(strata=["ecog"]), prognostic_scenario())
    with pytest.raises(ConfigError, match="statistic"):
        spec(textbook(statistic="wald"))


# --------------------------------------------------------------------------- calendar looks


def test_calendar_look_happens_at_its_month_and_agrees_with_the_plan():
    s = spec(textbook(at_months=[10.0, None, None]))
    c = s.compiled
    assert c.plan.month_scenario[0] == 10.0
    r = run(s, 2000, seed=4)
    np.testing.assert_array_equal(r.trial_values["month_of_look_1"], 10.0)
    table = analytic_versus_simulated(c, r).set_index("metric")
    for metric in (
        "p_efficacy_look_1",
        "p_efficacy_look_2",
        "p_stop_efficacy",
        "month_of_look_2",
        "events_at_stop",
        "duration_months",
    ):
        row = table.loc[metric]
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())
    # the analysis cuts its data at month 10: events observed by then, whatever their number
    events = r.extras["events_by_look"][:, 0]
    assert events.std() > 0
    assert "at month 10 (planned 112 events)" in " ".join(s.family.describe(c).sections[0].paragraphs)


def test_final_analysis_at_a_calendar_month_with_fixed_follow_up():
    s = spec(textbook(at_months=[None, None, 24.0], follow_up_months=12.0))
    r = run(s, 300, seed=2)
    reached = r.extras["stop_look"] == 2
    assert reached.any()
    np.testing.assert_array_equal(r.duration_months[reached], 24.0)


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"at_months": [10.0, None]}, "design.event_driven", "at_months needs one entry per look"),
        ({"at_months": [None, None, None]}, "design.event_driven", "gives no month"),
        ({"at_months": [12.0, 10.0, None]}, "design.event_driven", "must increase"),
        ({"at_months": [60.0, None, None]}, "design.event_driven.at_months[0]", "after the final analysis is expected"),
        (
            {"at_months": [10.0, None, 40.0], "follow_up_months": 12.0},
            "design.event_driven.at_months[2]",
            "after the last patient's follow-up ends",
        ),
        ({"at_months": [14.0, None, None]}, "design.event_driven.at_months[0]", "keep their order"),
    ],
)
def test_bad_calendar_looks_are_named(changes, field, words):
    with pytest.raises(ConfigError) as info:
        spec(textbook(**changes))
    message = str(info.value)
    assert field in message and words in message, message


# --------------------------------------------------------------------------- accrual closing at a month


def test_randomization_closes_at_the_accrual_month():
    """660 patients at 40 a month would take 16.5 months; closing at month 12 randomizes about 480, and the
    plan (months of the looks, computed on the accrual that stops at month 12) agrees with the simulation."""
    s = spec(textbook(accrual_months=12.0))
    c = s.compiled
    size = s.family.size(c)
    assert size.max_n == 480 and size.months == 12.0
    r = run(s, 2000, seed=7)
    final = r.extras["stop_look"] == 2
    n = r.n_randomized[final]
    assert np.all(n < 660) and abs(n.mean() - 480) <= Z * n.std() / math.sqrt(n.size)
    table = analytic_versus_simulated(c, r).set_index("metric")
    for metric in ("month_of_look_1", "month_of_look_2", "month_of_look_3", "p_stop_efficacy"):
        row = table.loc[metric]
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())
    # too short an accrual for the final events is named
    with pytest.raises(ConfigError, match=r"design.event_driven.events: the 160.0 patients expected by month 4"):
        spec(textbook(accrual_months=4.0))


@pytest.mark.slow
def test_calendar_look_type_one_error_at_scale():
    """20,000 trials on the null with the first look at month 10: the boundaries at the planned fractions keep
    the type I error within 4 MCSE of alpha."""
    s = spec(null_arm(textbook(at_months=[10.0, None, None])))
    r = run(s, 20_000, seed=2028)
    rejected = r.stop_reason == 1
    mcse = math.sqrt(0.025 * 0.975 / rejected.size)
    assert abs(rejected.mean() - 0.025) <= Z * mcse, rejected.mean()
