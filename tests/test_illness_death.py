"""The joint response / PFS / OS model (illness-death, semi-Markov).

Exact checks: calibration reproduces its targets; the OS survival function agrees with the closed
form of constant hazards and with adaptive quadrature under piecewise hazards. Sampling checks:
simulated frequencies lie within Z Monte Carlo standard errors (binomial, from the exact
probabilities) of the exact values, at fixed seeds. Scenario checks: the three endpoints drawn
for the same patients agree (PFS <= OS, responders progress later), and bad sections are
reported with the field that is wrong.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.integrate import quad

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_scenario
from platform_sim.outcomes import VirtualPatients
from platform_sim.posterior.illness_death import IllnessDeath, calibrate, inverse_cumulative_hazard
from platform_sim.posterior.planning import PiecewiseExponential
from platform_sim.streams import Streams

Z = 4.0
WEEK = 7 / (365.25 / 12)


def piecewise_model() -> IllnessDeath:
    """Piecewise hazards in every transition (numbers chosen for the test)."""
    return IllnessDeath(
        0.2,
        PiecewiseExponential((0.0, 2.0, 6.0), (0.25, 0.12, 0.3)),
        0.4,
        PiecewiseExponential((0.0, 3.0), (0.01, 0.04)),
        PiecewiseExponential((0.0, 1.5, 5.0), (0.05, 0.2, 0.1)),
    )


def test_calibration_reproduces_its_targets():
    m = calibrate(0.14, 4.0, 11.0, 0.3, 0.15)
    assert m.response_probability == 0.14
    assert m.median("pfs") == pytest.approx(4.0, abs=1e-8)
    assert m.median("os") == pytest.approx(11.0, abs=1e-8)
    assert m.death_share_of_pfs_events() == pytest.approx(0.15, abs=1e-9)


def test_os_survival_matches_the_closed_form_of_constant_hazards():
    a, d, q = 0.2, 0.03, 0.09  # progression, death before progression, death after progression
    m = IllnessDeath(
        0.0,
        PiecewiseExponential.exponential(a),
        1.0,
        PiecewiseExponential.exponential(d),
        PiecewiseExponential.exponential(q),
    )
    t = np.array([0.0, 0.5, 3.0, 11.0, 40.0])
    closed = np.exp(-(a + d) * t) + a * np.exp(-q * t) * (1 - np.exp(-(a + d - q) * t)) / (a + d - q)
    np.testing.assert_allclose(m.os_survival(t), closed, rtol=0, atol=1e-13)


def test_os_survival_matches_adaptive_quadrature_with_piecewise_hazards():
    m = piecewise_model()
    for t in (0.7, 2.0, 4.4, 9.0, 25.0):
        breaks = [u for u in (1.5, 2.0, 3.0, 6.0, t - 1.5, t - 5.0) if 0 < u < t]
        alive = quad(
            lambda u, t=t: float(m.progression_density(u) * m.post_progression.survival(t - u)),
            0,
            t,
            points=breaks,
            epsabs=1e-14,
            epsrel=1e-13,
            limit=200,
        )[0]
        assert float(m.os_survival(t)) == pytest.approx(float(m.pfs_survival(t)) + alive, abs=1e-12)


def test_inverse_cumulative_hazard_inverts_and_handles_zero_hazard():
    h = PiecewiseExponential((0.0, 1.0, 2.0), (0.5, 0.0, 0.2))
    t = np.array([0.0, 0.3, 0.99, 2.5, 10.0])
    np.testing.assert_allclose(
        inverse_cumulative_hazard(h, h.cumulative_hazard(t)), [0.0, 0.3, 0.99, 2.5, 10.0], atol=1e-12
    )
    never = PiecewiseExponential((0.0, 1.0), (0.5, 0.0))
    assert np.isinf(inverse_cumulative_hazard(never, np.array([0.6]))[0])


def test_sampled_outcomes_agree_with_the_exact_model():
    m = piecewise_model()
    rng = np.random.default_rng(20261204)
    n = 200_000
    out = m.sample(*(rng.random(n) for _ in range(4)))
    assert np.all(out.pfs <= out.os)
    assert np.all(out.os[~out.progressed] == out.pfs[~out.progressed])
    p = m.response_probability
    assert abs(out.response.mean() - p) <= Z * math.sqrt(p * (1 - p) / n)
    for t in (1.0, 3.0, 7.0, 15.0):
        for name, sample in (("pfs", out.pfs), ("os", out.os)):
            s = float(m.survival(name, t))
            assert abs((sample > t).mean() - s) <= Z * math.sqrt(s * (1 - s) / n), (name, t)
    # response and progression are correlated: responders progress later
    assert np.median(out.pfs[out.response]) > np.median(out.pfs[~out.response]) + 1.0


def test_effects_act_on_their_transition_only():
    base = calibrate(0.14, 4.0, 11.0, 0.3, 0.15)
    delayed = base.with_effects(progression_hazard_ratio=((0.0, 3.0), (1.0, 0.6)))
    early = np.array([0.5, 1.0, 2.9])
    np.testing.assert_allclose(delayed.pfs_survival(early), base.pfs_survival(early), rtol=1e-14)
    assert delayed.median("pfs") > base.median("pfs")
    after = base.with_effects(post_progression_hazard_ratio=((0.0,), (0.7,)))
    np.testing.assert_allclose(after.pfs_survival(early * 5), base.pfs_survival(early * 5), rtol=1e-14)
    assert after.median("os") > base.median("os")
    assert base.with_effects(response_odds_ratio=2.0).response_probability == pytest.approx(0.14 * 2 / (0.86 + 0.28))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"response_rate": 1.0}, "response_rate must be in"),
        ({"median_os": 3.0}, r"median_os \(3.0\) must exceed median_pfs"),
        ({"death_share": 0.0}, "death_share must be in"),
        ({"responder_hazard_ratio": -1.0}, "responder_hazard_ratio must be finite and > 0"),
        ({"median_os": 400.0, "death_share": 0.9}, "median_os .* is too long"),
        ({"death_share": 5e-324}, r"death_share \(5e-324\) is too small"),  # no tolerance fits a subnormal root
    ],
)
def test_calibration_rejects_impossible_targets_naming_them(kwargs, match):
    args = {
        "response_rate": 0.14,
        "median_pfs": 4.0,
        "median_os": 11.0,
        "responder_hazard_ratio": 0.3,
        "death_share": 0.15,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        calibrate(**args)


# --------------------------------------------------------------------------- in a scenario

SCENARIO = {
    "name": "joint",
    "endpoints": {
        "orr": {"kind": "binary"},
        "pfs": {"kind": "time_to_event"},
        "os": {"kind": "time_to_event"},
        "dcr12": {"kind": "landmark", "of": "pfs", "weeks": 12},
    },
    "illness_death": {"response": "orr", "progression_free": "pfs", "overall": "os"},
    "treatments": {
        "docetaxel": {
            "illness_death": {
                "baseline": {
                    "response_rate": 0.14,
                    "median_pfs_months": 4.0,
                    "median_os_months": 11.0,
                    "responder_progression_hazard_ratio": 0.3,
                    "death_share_of_pfs_events": 0.15,
                }
            }
        },
        "delayed": {
            "relative_to": "docetaxel",
            "illness_death": {
                "response_odds_ratio": 1.5,
                "progression_hazard_ratio": [
                    {"from_months": 0, "hazard_ratio": 1.0},
                    {"from_months": 3, "hazard_ratio": 0.6},
                ],
            },
        },
        "same": {"relative_to": "delayed"},
    },
    "dropout": {"probability": 0.1, "before_weeks": 12},
}


def test_scenario_endpoints_are_drawn_jointly_for_the_same_patients():
    vp = VirtualPatients(parse_scenario(copy.deepcopy(SCENARIO)))
    ts = Streams(7).for_trials(np.arange(50))
    treatments = ["docetaxel", "delayed"]
    pfs = vp.enrol(ts, 400, "pfs", treatments).outcomes
    os_ = vp.enrol(ts, 400, "os", treatments).outcomes
    orr = vp.enrol(ts, 400, "orr", treatments).outcomes
    assert np.all(pfs <= os_)
    assert np.median(pfs[orr]) > np.median(pfs[~orr])
    # a treatment relative_to another with no effect of its own is that treatment
    a = vp.enrol(ts, 50, "os", ["delayed", "same"]).outcomes
    assert not np.array_equal(a[..., 0], a[..., 1])  # its own uniforms ...
    truth = vp.truth("os", ["delayed", "same"])
    assert truth[0] == pytest.approx(truth[1], abs=1e-9)  # ... and the same distribution


def test_scenario_truths_are_the_model_values():
    vp = VirtualPatients(parse_scenario(copy.deepcopy(SCENARIO)))
    np.testing.assert_allclose(vp.truth("pfs", ["docetaxel"]), [4.0], atol=1e-7)
    np.testing.assert_allclose(vp.truth("os", ["docetaxel"]), [11.0], atol=1e-7)
    orr = vp.truth("orr", ["docetaxel", "delayed"])
    np.testing.assert_allclose(orr, np.array([0.14, 0.14 * 1.5 / (0.86 + 0.21)]) * 0.9, atol=1e-12)  # 10% dropout
    model = vp.outcomes.joint["docetaxel"]
    assert vp.truth("dcr12", ["docetaxel"])[0] == pytest.approx(float(model.pfs_survival(12 * WEEK)) * 0.9, abs=1e-12)


def problems_of(edit) -> str:
    data = copy.deepcopy(SCENARIO)
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    return str(info.value)


def test_bad_illness_death_sections_name_the_field():
    def no_pieces(d):
        d["treatments"]["delayed"]["illness_death"]["progression_hazard_ratio"] = []

    assert "progression_hazard_ratio" in problems_of(no_pieces) and "at least one piece" in problems_of(no_pieces)

    def outcome_too(d):
        d["treatments"]["docetaxel"]["outcomes"] = {"os": {"median_months": 11}}

    assert "treatments.docetaxel.outcomes.os: drawn by the illness_death model" in problems_of(outcome_too)

    def no_baseline(d):
        del d["treatments"]["docetaxel"]["illness_death"]

    assert "treatments.docetaxel.illness_death.baseline: missing" in problems_of(no_baseline)

    def os_before_pfs(d):
        d["treatments"]["docetaxel"]["illness_death"]["baseline"]["median_os_months"] = 3.0

    assert "median_os_months (3) must exceed median_pfs_months (4)" in problems_of(os_before_pfs)

    def wrong_kind(d):
        d["illness_death"]["overall"] = "orr"
        d["illness_death"]["response"] = None

    assert "illness_death.overall: 'orr' is a binary endpoint; it must be time_to_event" in problems_of(wrong_kind)

    def unknown(d):
        d["illness_death"]["overall"] = "survival"

    assert "illness_death.overall: 'survival' is not an endpoint" in problems_of(unknown)

    def prognostic(d):
        d["prognostic"] = {"os": {"hazard_ratios": {}}}

    assert "prognostic.os: the illness_death model draws 'os'" in problems_of(prognostic)

    def baseline_on_relative(d):
        d["treatments"]["delayed"]["illness_death"]["baseline"] = d["treatments"]["docetaxel"]["illness_death"][
            "baseline"
        ]

    assert "treatments.delayed.illness_death.baseline: sets an absolute baseline" in problems_of(baseline_on_relative)

    def bad_piece_order(d):
        d["treatments"]["delayed"]["illness_death"]["post_progression_hazard_ratio"] = [
            {"from_months": 0, "hazard_ratio": 1.0},
            {"from_months": 0, "hazard_ratio": 0.5},
        ]

    assert "pieces must start at increasing times" in problems_of(bad_piece_order)


@pytest.mark.parametrize("share", [1e-12, 1e-6, 0.5, 1 - 1e-9])
@pytest.mark.parametrize("rho", [0.01, 0.3, 1.0, 50.0])
def test_calibration_finds_any_death_share_in_its_range(share, rho):
    """The death share's root is bracketed for every share in (0, 1), however close to either end
    (a fixed bracket missed shares below about 1e-12 * (1 + p / rho))."""
    try:
        m = calibrate(0.14, 4.0, 30.0, rho, share)
    except ValueError as exc:  # a long median OS that a large death share cannot reach: named, not a crash
        assert "too long" in str(exc) and share >= 0.5
        return
    assert m.death_share_of_pfs_events() == pytest.approx(share, rel=1e-9)
    assert m.median("pfs") == pytest.approx(4.0, abs=1e-8)


def test_facts_no_model_reproduces_are_a_config_error_naming_the_baseline():
    scenario = copy.deepcopy(SCENARIO)
    baseline = scenario["treatments"]["docetaxel"]["illness_death"]["baseline"]
    baseline.update(median_os_months=400.0, death_share_of_pfs_events=0.9)
    with pytest.raises(ConfigError) as exc:
        VirtualPatients(parse_scenario(scenario)).truth("os", ["docetaxel"])
    (problem,) = exc.value.problems
    assert problem.path == "scenario.treatments.docetaxel.illness_death.baseline"
    assert "too long" in problem.message


def test_validate_names_a_scenario_no_model_reproduces(tmp_path):
    """`platform-sim validate DESIGN --scenario SCENARIO` refuses a scenario whose illness-death facts
    no model reproduces with its problem (exit 2), not a traceback: the outcome models are built
    while the design is checked against the scenario."""
    import yaml
    from click.testing import CliRunner

    from platform_sim.cli import main
    from platform_sim.config import resolve

    for edit in ({"death_share_of_pfs_events": 0.85}, {"death_share_of_pfs_events": 5e-324}):
        with open(resolve("pfs_os_effect", "scenario")) as f:
            scenario = yaml.safe_load(f)
        scenario["treatments"]["docetaxel"]["illness_death"]["baseline"].update(edit)
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario))
        result = CliRunner().invoke(main, ["validate", "pioneer_rar", "--scenario", str(path)])
        assert result.exit_code == 2, result.output
        assert "scenario.treatments.docetaxel.illness_death.baseline" in result.output, result.output
        assert "Traceback" not in result.output
