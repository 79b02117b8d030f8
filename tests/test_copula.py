"""The Gaussian copula between two time-to-event endpoints (platform_sim.config.copula).

Checks at fixed seeds: each marginal is the scenario's own (the share of times below the exact median
is 1/2 within 4 Monte Carlo SE), Kendall's tau of the pair is (2 / pi) arcsin(r) within 4 SE (the
SE of Kendall's tau under independence, sqrt(2 (2n + 5) / (9 n (n - 1))), an upper bound for the
dependent pairs here), correlation 0 leaves the draws exactly as without a copula, and bad input
names its field.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml
from scipy import stats

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_scenario
from platform_sim.outcomes import VirtualPatients
from platform_sim.streams import Streams

Z = 4.0


def scenario(correlation: float | None = 0.6) -> dict:
    with open("scenarios/textbook_two_arm.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data = copy.deepcopy(data)
    data["endpoints"]["pfs"] = {"kind": "time_to_event"}
    data["treatments"]["control"]["outcomes"]["pfs"] = {"median_months": 4.0}
    data["treatments"]["experimental"]["outcomes"]["pfs"] = {"hazard_ratio": 0.6}
    if correlation is not None:
        data["copula"] = {"first": "pfs", "second": "os", "correlation": correlation}
    return data


def draws(data: dict, n_trials: int = 20, n: int = 500) -> dict[str, np.ndarray]:
    patients = VirtualPatients(parse_scenario(data))
    streams = Streams(7).for_trials(np.arange(n_trials))
    return {
        ep: patients.enrol(streams, n, ep, ["control", "experimental"]).outcomes.astype(float) for ep in ("pfs", "os")
    }


@pytest.mark.parametrize("r", [0.6, -0.4, 1.0])
def test_marginals_are_kept_and_kendall_tau_is_the_copulas(r):
    data = scenario(r)
    out = draws(data)
    medians = {"pfs": (4.0, 4.0 / 0.6), "os": (8.0, 8.0 / 0.7)}
    for ep, (m_control, m_experimental) in medians.items():
        for k, m in enumerate((m_control, m_experimental)):
            below = out[ep][:, :, k] <= m
            se = math.sqrt(0.25 / below.size)
            assert abs(below.mean() - 0.5) <= Z * se, (ep, k, below.mean())
    tau_expected = parse_scenario(data).copula.kendall_tau
    assert tau_expected == pytest.approx(2 / math.pi * math.asin(r))
    x, y = out["pfs"][:, :, 0].ravel(), out["os"][:, :, 0].ravel()
    n = x.size
    se = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    tau = stats.kendalltau(x, y).statistic
    assert abs(tau - tau_expected) <= Z * se + 1e-12, (tau, tau_expected)


def test_correlation_zero_draws_exactly_as_without_a_copula():
    a, b = draws(scenario(0.0)), draws(scenario(None))
    np.testing.assert_array_equal(a["pfs"], b["pfs"])
    np.testing.assert_array_equal(a["os"], b["os"])


def test_the_pair_is_independent_of_other_patients_and_treatments_streams():
    """The copula couples a patient's two times under one treatment; under the other treatment the times keep
    their own (common random numbers across designs)."""
    out = draws(scenario(0.9))
    tau = stats.kendalltau(out["pfs"][:, :, 0].ravel(), out["os"][:, :, 1].ravel()).statistic
    n = out["pfs"][:, :, 0].size
    assert abs(tau) <= Z * math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d["copula"].update(correlation=1.5), "copula.correlation"),
        (lambda d: d["copula"].update(correlation=-1.01), "copula.correlation"),
        (lambda d: d["copula"].update(second="pfs"), "first and second must be different"),
        (lambda d: d["copula"].update(second="orr"), "copula.second: 'orr' is not a time_to_event endpoint"),
    ],
)
def test_bad_copula_is_named(edit, words):
    data = scenario()
    edit(data)
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert words in str(info.value), str(info.value)
