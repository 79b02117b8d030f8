"""Sizing a design for power: ``platform_sim.sizing.size_for_power`` and ``platform-sim size``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from platform_sim.cli import main
from platform_sim.config import ConfigError
from platform_sim.config.load import load_file
from platform_sim.posterior import prob_greater
from platform_sim.runner import run
from platform_sim.sizing import format_sizing, size_for_power, sizing_unit
from platform_sim.spec import Spec

TARGETS = {"fwer": 0.10, "null_scenario": "pioneer_null", "power": 0.80, "alternative_scenario": "allcomer_effect"}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# --------------------------------------------------------------------------- size_for_power, exactly

RATES = (0.30, 0.50)
TWO_ARM = {
    "name": "two_arm_single_look",
    "endpoint": {"name": "resp", "direction": "higher_is_better"},
    "arms": [{"name": "control", "treatment": "standard"}, {"name": "experimental", "treatment": "new"}],
    "control": "control",
    "prior": {"a": 1, "b": 1},
    "randomization": {"method": "fixed", "scheme": "block"},
    "looks": {"randomized_n": [60]},
    "decisions": {"superiority": 0.975, "inferiority": None},
    "clinically_relevant_difference": 0.15,
}
BETTER = {
    "name": "better",
    "endpoints": {"resp": {"kind": "binary"}},
    "treatments": {"standard": {"rates": {"resp": RATES[0]}}, "new": {"rates": {"resp": RATES[1]}}},
    "yardstick": {"control": "standard"},
}


def exact_power(n_new: int, n_std: int, threshold: float = 0.975) -> float:
    """P(P(p_new > p_standard | data) > threshold) with n_new and n_std patients at the rates RATES: the double
    sum over both arms' binomial responder counts with the exact Beta(1 + x, 1 + n - x) posteriors."""
    x_new, x_std = np.arange(n_new + 1), np.arange(n_std + 1)
    pmf_new, pmf_std = stats.binom.pmf(x_new, n_new, RATES[1]), stats.binom.pmf(x_std, n_std, RATES[0])
    a, b = np.meshgrid(x_new, x_std, indexing="ij")
    better = prob_greater(1.0 + a, 1.0 + n_new - a, 1.0 + b, 1.0 + n_std - b)
    return float((pmf_new[:, None] * pmf_std[None, :] * (better > threshold)).sum())


def test_size_for_power_brackets_the_exact_power_curve(build_spec):
    """Two arms, one analysis: the exact power at every size is a finite sum, so the size found must reach the
    target and the next smaller size evaluated must miss it, each within 4 Monte Carlo standard errors."""
    target, n_sims = 0.80, 1000
    spec = build_spec(TWO_ARM, BETTER)
    result = size_for_power(spec, None, target, n_sims, seed=5)
    assert result.reached and result.by == "max_n" and result.design_size.max_n == 60
    steps = result.steps.sort_values("asked")
    assert steps.iloc[0].asked < result.found.max_n  # the bracket's lower end was evaluated
    exact = {}
    for row in steps.itertuples():
        sized = (
            spec
            if row.max_n == 60
            else Spec.from_models(spec.family.resize(spec.compiled, max_n=int(row.asked)), spec.scenario)
        )
        n = run(sized, n_sims, 5).n[:, :, 0]  # (T, arms): block randomization splits an odd size either way
        splits, counts = np.unique(n, axis=0, return_counts=True)
        exact[row.max_n] = sum(c * exact_power(int(s[1]), int(s[0])) for s, c in zip(splits, counts)) / counts.sum()
        assert abs(row.power - exact[row.max_n]) <= 4 * math.sqrt(exact[row.max_n] * (1 - exact[row.max_n]) / n_sims)
    se = math.sqrt(target * (1 - target) / n_sims)
    found = result.found.max_n
    below = steps[steps.max_n < found].max_n.max()
    assert exact[found] >= target - 4 * se
    assert exact[below] < target + 4 * se
    assert found - below <= max(1, 0.02 * found) + 1
    # the normal approximation of the one-sided z test, 2 x (z_0.975 + z_0.8)^2 (p0 q0 + p1 q1) / d^2
    z = stats.norm.ppf(0.975) + stats.norm.ppf(target)
    approx = 2 * z**2 * (RATES[0] * (1 - RATES[0]) + RATES[1] * (1 - RATES[1])) / (RATES[1] - RATES[0]) ** 2
    assert abs(found - approx) / approx < 0.15
    text = format_sizing(result)
    assert "<- found" in text and "<- design" in text and f"max_n {found}" in text


def test_size_for_power_searches_down_when_the_design_is_larger_than_needed(build_spec):
    design = {**TWO_ARM, "looks": {"randomized_n": [600]}}
    result = size_for_power(build_spec(design, BETTER), None, 0.8, 400, seed=5)
    assert result.reached and result.found.max_n < 600
    steps = result.steps.set_index("max_n")
    assert steps.loc[600].meets and steps.loc[result.found.max_n].meets
    assert not steps[steps.index < result.found.max_n].meets.any()


def test_size_for_power_says_when_the_limit_is_not_enough(build_spec):
    result = size_for_power(build_spec(TWO_ARM, BETTER), None, 0.8, 300, seed=5, limit=100)
    assert not result.reached and result.found is None and result.design is None
    assert result.steps.max_n.max() == 100 and not result.steps.meets.any()
    assert any("not reached" in n for n in result.notes)
    assert "not reached" in format_sizing(result)


def test_size_for_power_refuses_what_cannot_be_sized(build_spec):
    with pytest.raises(ConfigError) as exc:
        size_for_power("s1400f_two_stage", "pioneer_alternative", 0.8, 10)
    p = exc.value.problems[0]
    assert p.path == "design" and "cannot be sized for power" in p.message and "two-stage" in p.message
    assert sizing_unit(build_spec(TWO_ARM, BETTER)) == "max_n"
    with pytest.raises(ConfigError) as exc:
        size_for_power(build_spec(TWO_ARM, BETTER), None, 1.5, 1, tolerance=0)
    assert {p.path for p in exc.value.problems} == {"power", "n_sims", "tolerance"}
    equal = {**BETTER, "treatments": {"standard": {"rates": {"resp": 0.3}}, "new": {"rates": {"resp": 0.3}}}}
    with pytest.raises(ConfigError, match="no treatment works"):
        size_for_power(build_spec(TWO_ARM, equal), None, 0.8, 10)


# --------------------------------------------------------------------------- platform-sim size


def test_size_command_refuses_two_stage_and_bad_values():
    result = invoke("size", "--design", "s1400f_two_stage", "--scenario", "pioneer_alternative", "--power", 0.8)
    assert result.exit_code == 2 and "cannot be sized for power" in result.output and "two-stage" in result.output
    result = invoke(
        "size",
        "--design",
        "allcomer_fixed",
        "--scenario",
        "allcomer_effect",
        "--power",
        1.2,
        "--null-scenario",
        "pioneer_null",
    )
    assert result.exit_code == 2
    assert "--power: the target power must be strictly between 0 and 1 (got 1.2)" in result.output
    assert "--target-fwer: calibrating needs both" in result.output
    result = invoke("size", "--design", "allcomer_fixed", "--scenario", "no_such_scenario", "--power", 0.8)
    assert result.exit_code == 2 and "no_such_scenario" in result.output


def test_size_command_calibrates_then_sizes_and_writes_the_sized_design(shipped_yaml, write_yaml, tmp_path):
    data = shipped_yaml("design", "allcomer_fixed")
    data["targets"] = {**TARGETS, "power": 0.3}
    path = write_yaml(data, "allcomer_fixed.yaml")
    out = tmp_path / "sized"
    result = invoke(
        "size",
        "--design",
        path,
        "--use-targets",
        "--n-sims",
        200,
        "--seed",
        3,
        "--tolerance",
        0.1,
        "--out",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "P(any claim) <= 0.1" in result.output and "<- found" in result.output
    assert "P(any claim) on pioneer_null with the thresholds held" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reached"] and manifest["target_power"] == 0.3 and manifest["target_fwer"] == 0.1
    sized = load_file(out / "allcomer_fixed.sized.yaml", "design")
    assert sized.looks.max_n == manifest["found"]["max_n"]
    assert sized.decisions.superiority == manifest["calibrated_values"][0] != data["decisions"]["superiority"]
    assert {"sizing.csv", "sizing_fwer.csv", "calibration.csv"} <= {p.name for p in out.iterdir()}


def test_a_platform_is_sized_by_its_duration_and_says_when_its_caps_bind():
    """A platform's calendar sets its sample size, so it is sized in months; when an arm's cap, not the
    calendar, ends every trial, a longer duration changes nothing and the result says so."""
    from pathlib import Path

    import yaml

    from platform_sim.config.load import parse_design, parse_scenario

    data = Path(__file__).resolve().parent / "data" / "timeline"
    design = yaml.safe_load((data / "two_arm_pfs.yaml").read_text())
    design["platform"]["graduation"] = {"by": "posterior", "graduate": 0.975, "min_n": 10}
    design["platform"]["max_duration_months"] = 12
    scenario = parse_scenario(yaml.safe_load((data / "pfs_hr07.yaml").read_text()))
    spec = Spec.from_models(parse_design(design), scenario)
    result = size_for_power(spec, None, 0.9, 200, seed=2, tolerance=0.05)
    assert result.by == "months" and result.reached and result.found.max_n is None
    assert result.design.platform.max_duration_months == result.found.months > 12
    steps = result.steps.set_index("months")
    assert steps.loc[result.found.months].meets and not steps.loc[12.0].meets
    assert not steps[steps.index < result.found.months].meets.any()
    assert steps.n_randomized.nunique() > 1

    capped = {**design, "arms": [design["arms"][0], {**design["arms"][1], "max_n": 15}]}
    result = size_for_power(Spec.from_models(parse_design(capped), scenario), None, 0.99, 200, seed=2, limit=96)
    assert not result.reached and len(result.steps) > 1
    assert result.steps.power.nunique() == 1 and result.steps.n_randomized.nunique() == 1
    assert any("not what limits this design" in n for n in result.notes)
    assert sizing_unit(spec) == "months"
    with pytest.raises(ConfigError, match="no planned maximum sample size"):
        size_for_power(spec, None, 0.9, 10, by="max_n")
