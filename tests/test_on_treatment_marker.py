"""The on-treatment biomarker measured at a re-biopsy (platform_sim.config.on_treatment).

Checks at fixed seeds, within Z = 4 Monte Carlo standard errors (binomial SE of a proportion): the
drawn event times follow the exact mixture survival of the module docstring at several times; among the
marker-positive patients event-free at the week, the residual time has the multiplied hazard (its
survival at one month is exp(-h lambda)); the share re-biopsied among the patients event-free at the week
is the stated one; the landmark subgroup analyses of the event-driven family are standard normal under
the null and detect the effect in the positive subgroup under the alternative; bad input is named.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.outcomes import WEEKS_PER_MONTH, VirtualPatients
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

Z = 4.0
WEEK = 6.0
HR = 0.5


def scenario(**marker) -> dict:
    with open("scenarios/textbook_two_arm.yaml", encoding="utf-8") as f:
        data = copy.deepcopy(yaml.safe_load(f))
    data["on_treatment_marker"] = {
        "name": "cd8_rise",
        "week": WEEK,
        "rebiopsied": 0.33,
        "positive": {"control": 0.2, "experimental": 0.5, "null_drug": 0.2},
        "hazard_ratio": HR,
        "endpoints": ["os"],
        **marker,
    }
    return data


def binomial_ok(observed: np.ndarray, p: float) -> bool:
    return abs(observed.mean() - p) <= Z * math.sqrt(p * (1 - p) / observed.size) + 1e-12


def test_event_times_follow_the_exact_mixture_and_the_positive_hazard():
    data = scenario()
    patients = VirtualPatients(parse_scenario(data))
    streams = Streams(3).for_trials(np.arange(40))
    enrolled = patients.enrol(streams, 500, "os", ["control", "experimental"], on_treatment=True)
    times = enrolled.outcomes.astype(float)
    codes, prob = patients.population.distribution([])
    w = WEEK / WEEKS_PER_MONTH
    for k, treatment in enumerate(("control", "experimental")):
        curve = patients.outcomes.survival_curve("os", treatment, codes, prob, [1.0, w, 6.0, 12.0, 24.0])
        for t, s in zip([1.0, w, 6.0, 12.0, 24.0], curve):
            assert binomial_ok(times[:, :, k] > t, float(s)), (treatment, t)
        # exact form: S(t) = S0(w) [p e^{-h L} + (1 - p) e^{-L}], L the own cumulative hazard from w to t
        lam = math.log(2) / (8.0 if treatment == "control" else 8.0 / 0.7)
        p = 0.2 if treatment == "control" else 0.5
        t = 12.0
        exact = math.exp(-lam * w) * (p * math.exp(-HR * lam * (t - w)) + (1 - p) * math.exp(-lam * (t - w)))
        assert curve[3] == pytest.approx(exact, rel=1e-12)
        # the residual time of marker-positive patients event-free at the week has hazard h lambda
        positive = enrolled.marker_positive[:, :, k]
        late = times[:, :, k] > w
        residual = times[:, :, k][late & positive] - w
        assert binomial_ok(residual > 1.0, math.exp(-HR * lam))
        assert binomial_ok(times[:, :, k][late & ~positive] - w > 1.0, math.exp(-lam))
        assert binomial_ok(positive, p)
    assert binomial_ok(enrolled.rebiopsied, 0.33)


def test_marker_changes_nothing_else():
    """Without the marker's endpoints, the outcomes are those of the scenario without the marker."""
    with_marker = scenario(hazard_ratio=1.0)
    plain = copy.deepcopy(with_marker)
    del plain["on_treatment_marker"]
    streams = Streams(2).for_trials(np.arange(5))
    a = VirtualPatients(parse_scenario(with_marker)).enrol(streams, 200, "os", ["control"], times=True)
    b = VirtualPatients(parse_scenario(plain)).enrol(streams, 200, "os", ["control"], times=True)
    np.testing.assert_allclose(a.outcomes, b.outcomes, rtol=1e-6)
    np.testing.assert_array_equal(a.randomized_at, b.randomized_at)


def design(arm: str = "experimental") -> dict:
    with open("designs/textbook_group_sequential.yaml", encoding="utf-8") as f:
        data = copy.deepcopy(yaml.safe_load(f))
    data["arms"][1]["treatment"] = arm
    return data


def test_landmark_subgroups_of_the_event_driven_design():
    null = Spec.from_models(parse_design(design("null_drug")), parse_scenario(scenario()))
    r = run(null, 1000, seed=4)
    n = r.trial_values["rebiopsied_at_stop"]
    assert np.all(n > 0) and np.all(r.trial_values["on_treatment_positive_at_stop"] <= n)
    for name in ("positive", "negative"):
        z = r.extras[f"z_on_treatment_{name}"]
        assert abs(z.mean()) <= Z / math.sqrt(z.size)  # mean 0, SE 1 / sqrt(N)
        assert abs(z.std() - 1.0) <= Z / math.sqrt(2 * z.size)  # SD 1, SE about 1 / sqrt(2N)
    alt = Spec.from_models(parse_design(design()), parse_scenario(scenario()))
    r = run(alt, 300, seed=4)
    assert np.median(r.extras["z_on_treatment_positive"]) > 0
    assert "re-biopsy at week 6" in " ".join(alt.family.describe(alt.compiled).sections[0].paragraphs)


@pytest.mark.parametrize(
    "marker, words",
    [
        ({"rebiopsied": 1.33}, "on_treatment_marker.rebiopsied"),
        ({"rebiopsied": -0.1}, "on_treatment_marker.rebiopsied"),
        ({"positive": 1.5}, "on_treatment_marker.positive"),
        (
            {"positive": {"control": 0.2}},
            "on_treatment_marker.positive: no probability for ['experimental', 'null_drug']",
        ),
        ({"endpoints": ["pfs"]}, "on_treatment_marker.endpoints[0]: 'pfs' is not a time_to_event endpoint"),
    ],
)
def test_bad_marker_is_named(marker, words):
    with pytest.raises(ConfigError) as info:
        parse_scenario(scenario(**marker))
    assert words in str(info.value), str(info.value)
