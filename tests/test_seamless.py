"""The seamless phase II/III event-driven design (designs/seamless_pfs_os.yaml): a go/no-go log-rank
analysis of PFS, then group-sequential OS analyses of every patient.

Simulation checks at fixed seeds, within Z = 4 Monte Carlo standard errors: P(go), the month of the
phase II analysis, the power had every trial gone on to phase III and the months of the OS analyses
against the analytic plan (Lakatos 1988 and the expected events); the type I error on the null at most
the OS alpha. Structural checks: no-go trials stop at the phase II analysis with its patients, go trials
keep their phase II patients in the OS analyses. Bad input names its field.
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

Z = 4.0


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def spec(design: dict | None = None, scenario: str | dict = "pfs_os_effect") -> Spec:
    design = design or load("designs/seamless_pfs_os.yaml")
    scenario = scenario if isinstance(scenario, dict) else load(f"scenarios/{scenario}.yaml")
    return Spec.from_models(parse_design(design), parse_scenario(scenario))


def seamless(**phase2) -> dict:
    data = copy.deepcopy(load("designs/seamless_pfs_os.yaml"))
    data["event_driven"]["phase2"].update(phase2)
    return data


def test_simulation_agrees_with_the_analytic_plan():
    s = spec()
    r = run(s, 2000, seed=5)
    table = analytic_versus_simulated(s.compiled, r).set_index("metric")
    assert set(table.index) == {
        "p_go",
        "month_of_phase2",
        "p_efficacy_without_gate",
        "month_of_look_1",
        "month_of_look_2",
    }
    for metric, row in table.iterrows():
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())
    # the gate only removes claims
    claimed = r.claimed[:, 1, 0]
    assert np.all(r.trial_values["p_efficacy_without_gate"][claimed])
    assert claimed.mean() < r.trial_values["p_efficacy_without_gate"].mean()


def test_type_one_error_on_the_null_is_at_most_alpha():
    s = spec(scenario="pfs_os_null")
    q = s.compiled.plan.phase2
    assert q.p_go_scenario == pytest.approx(0.2, abs=1e-12)
    r = run(s, 2000, seed=6)
    go = r.trial_values["p_go"]
    assert abs(go.mean() - 0.2) <= Z * math.sqrt(0.2 * 0.8 / go.size)
    alpha = s.design.event_driven.alpha
    claimed = r.claimed[:, 1, 0].mean()
    assert claimed <= alpha + Z * math.sqrt(alpha * (1 - alpha) / go.size)


def test_no_go_stops_at_phase_two_and_go_keeps_the_phase_two_patients():
    s = spec()
    r = run(s, 400, seed=8)
    go = r.trial_values["p_go"].astype(bool)
    month2 = r.trial_values["month_of_phase2"]
    assert (~go).any() and go.any()
    no_go = ~go
    np.testing.assert_array_equal(r.duration_months[no_go], month2[no_go])
    assert np.all(r.stop_reason[no_go] == 2) and not r.claimed[no_go].any()
    np.testing.assert_array_equal(r.extras["stop_look"][no_go], -1)
    assert np.all(r.extras["phase2_z"][no_go] < s.compiled.plan.phase2.go_z)
    assert np.all(r.extras["phase2_z"][go] >= s.compiled.plan.phase2.go_z)
    # every go trial reaches its OS analyses after the phase II analysis, with all patients randomized by then
    assert np.all(r.duration_months[go] > month2[go])
    final = go & (r.extras["stop_look"] == 1)
    assert np.all(r.n_randomized[final] == s.design.event_driven.max_n)
    assert np.all(r.n_randomized[no_go] < s.design.event_driven.max_n)
    # the OS events at each analysis are the planned ones (no shortfall here)
    np.testing.assert_array_equal(
        r.extras["events_by_look"][go], np.broadcast_to(s.compiled.look_events, (go.sum(), 2))
    )


def test_seamless_design_on_a_copula_scenario():
    """The phase II analysis needs only the PFS marginal: with PFS and OS from a Gaussian copula, P(go) and its
    month agree with the plan too."""
    data = copy.deepcopy(load("scenarios/textbook_two_arm.yaml"))
    data["endpoints"]["pfs"] = {"kind": "time_to_event"}
    data["treatments"]["control"]["outcomes"]["pfs"] = {"median_months": 3.0}
    data["treatments"]["experimental"]["outcomes"]["pfs"] = {"hazard_ratio": 0.7}
    data["copula"] = {"first": "pfs", "second": "os", "correlation": 0.7}
    design = copy.deepcopy(load("designs/textbook_group_sequential.yaml"))
    design["event_driven"]["phase2"] = {"endpoint": "pfs", "events": 100, "alpha": 0.2}
    s = spec(design, data)
    r = run(s, 1500, seed=3)
    table = analytic_versus_simulated(s.compiled, r).set_index("metric")
    for metric in ("p_go", "month_of_phase2", "p_efficacy_without_gate"):
        row = table.loc[metric]
        assert abs(row.simulated - row.analytic) <= Z * row.mcse, (metric, row.to_dict())


@pytest.mark.parametrize(
    "phase2, field, words",
    [
        ({"events": 700}, "design.event_driven.phase2.events", "are expected to produce only"),
        ({"events": 450}, "design.event_driven.phase2.events", "not before the first analysis"),
        ({"endpoint": "orr"}, "design.event_driven.phase2.endpoint", "must be a time_to_event endpoint"),
        ({"endpoint": "os"}, "design.event_driven.phase2.endpoint", "other than the design's 'os'"),
        ({"alpha": 1.2}, "design.event_driven.phase2.alpha", "1.2"),
    ],
)
def test_bad_phase_two_is_named(phase2, field, words):
    with pytest.raises(ConfigError) as info:
        spec(seamless(**phase2))
    message = str(info.value)
    assert field in message and words in message, message


def test_replay_shows_the_phase_two_analysis():
    from platform_sim.storyboard import format_story, replay

    s = spec()
    r = run(s, 12, seed=1)
    go = r.trial_values["p_go"].astype(bool)
    assert go.any() and (~go).any()
    for index in (int(np.flatnonzero(go)[0]), int(np.flatnonzero(~go)[0])):
        story = replay(s, 1, index, 12)
        gate = story.summary["phase2"]
        assert gate["go"] == go[index]
        assert gate["z"] == pytest.approx(r.extras["phase2_z"][index])
        assert gate["month"] == pytest.approx(r.trial_values["month_of_phase2"][index])
        assert gate["events"] == s.design.event_driven.phase2.events
        assert len(story.analyses) == int(r.extras["stop_look"][index]) + 1
        text = format_story(story)
        assert f"phase II analysis of pfs at month {gate['month']:.1f}" in text
        assert ("no-go, futile" in text) == (not go[index])


@pytest.mark.slow
def test_type_one_error_and_go_rate_on_the_null_at_scale():
    """20,000 trials on the null: P(go) within 4 MCSE of the phase II alpha, and P(claim) at most the OS alpha
    (4 MCSE at alpha)."""
    s = spec(scenario="pfs_os_null")
    r = run(s, 20_000, seed=2027)
    go = r.trial_values["p_go"]
    assert abs(go.mean() - 0.2) <= Z * math.sqrt(0.2 * 0.8 / go.size)
    alpha = s.design.event_driven.alpha
    assert r.claimed[:, 1, 0].mean() <= alpha + Z * math.sqrt(alpha * (1 - alpha) / go.size)
