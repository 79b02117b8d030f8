"""The single-arm two-stage family: Simon's designs, simulated and held to their exact operating characteristics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from platform_sim import oc
from platform_sim.calibrate import calibrate
from platform_sim.cli import main
from platform_sim.compare import compare
from platform_sim.config import ConfigError, parse_design, parse_scenario
from platform_sim.families import family_of
from platform_sim.posterior.simon import simon_oc
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.storyboard import format_story, replay

ROOT = Path(__file__).resolve().parents[1]

Z = 4.0  # tolerance in Monte Carlo standard errors
N_SIMS = 4000


def design(**two_stage) -> dict:
    return {
        "name": "simon",
        "endpoint": {"name": "y", "direction": "higher_is_better"},
        "arms": [{"name": "x", "treatment": "x"}],
        "clinically_relevant_difference": 0.15,
        "two_stage": {"p0": 0.05, "p1": 0.20, "alpha": 0.05, "power": 0.80, **two_stage},
    }


def scenario(rate: float) -> dict:
    return {"name": "s", "endpoints": {"y": {"kind": "binary"}}, "treatments": {"x": {"rates": {"y": rate}}}}


def spec_of(d: dict, rate: float) -> Spec:
    return Spec.from_models(parse_design(d), parse_scenario(scenario(rate)))


def test_simon_optimal_and_minimax_designs_are_found():
    """Simon (1989), Table 1: p0 = .05, p1 = .20, alpha = .05, beta = .20: optimal 0/10, 3/29;
    minimax 0/13, 3/27."""
    optimal = spec_of(design(), 0.05).compiled
    assert (optimal.r1, optimal.n1, optimal.r, optimal.n) == (0, 10, 3, 29)
    minimax = spec_of(design(kind="minimax"), 0.05).compiled
    assert (minimax.r1, minimax.n1, minimax.r, minimax.n) == (0, 13, 3, 27)
    given = spec_of(design(stages={"n1": 12, "r1": 1, "n": 35, "r": 4}), 0.05).compiled
    assert (given.r1, given.n1, given.r, given.n) == (1, 12, 4, 35)
    assert family_of(parse_design(design())).name == "two_stage"


@pytest.mark.parametrize("rate", [0.05, 0.20, 0.12])
def test_simulated_operating_characteristics_match_the_exact_ones(rate):
    spec = spec_of(design(), rate)
    c = spec.compiled
    exact = simon_oc(c.r1, c.n1, c.r, c.n, rate)
    results = run(spec, N_SIMS, seed=21)
    claimed = results.claimed[:, 0, 0]
    stopped = results.stop_reason == 0
    n = results.n_randomized
    for simulated, expected, what in (
        (claimed.mean(), float(exact.p_reject), "P(claim)"),
        (stopped.mean(), float(exact.pet), "P(early stop)"),
    ):
        se = math.sqrt(expected * (1 - expected) / N_SIMS)
        assert abs(simulated - expected) <= Z * se + 1e-12, (what, simulated, expected)
    sd = math.sqrt(float(exact.pet) * (1 - float(exact.pet))) * (c.n - c.n1)
    assert abs(n.mean() - float(exact.en)) <= Z * sd / math.sqrt(N_SIMS)
    assert set(np.unique(n)) <= {c.n1, c.n}
    # every claim needs more than r responders of n; every early stop at most r1 of n1
    assert (results.events[claimed, 0, 0] > c.r).all() and (results.events[stopped, 0, 0] <= c.r1).all()


def test_the_truth_and_the_error_rates_of_the_design():
    """Under p0 the claim rate is the type I error (FWER); under p1 it is the power."""
    null, alt = spec_of(design(), 0.05), spec_of(design(), 0.20)
    assert null.truth.null.all() and not null.truth.works.any()
    assert alt.truth.works.all() and not alt.truth.null.any()
    assert spec_of(design(), 0.12).truth.roles[0, 0] == "grey zone"
    t_null = oc.trial_table(oc.frame(oc.summarize(run(null, 3000, seed=2), null.truth)))
    t_alt = oc.trial_table(oc.frame(oc.summarize(run(alt, 3000, seed=2), alt.truth)))
    c = null.compiled
    alpha = float(simon_oc(c.r1, c.n1, c.r, c.n, 0.05).p_reject)
    power = float(simon_oc(c.r1, c.n1, c.r, c.n, 0.20).p_reject)
    assert alpha <= 0.05 and power >= 0.80
    assert abs(t_null.at["fwer", "value"] - alpha) <= Z * math.sqrt(alpha * (1 - alpha) / 3000)
    assert abs(t_alt.at["power", "value"] - power) <= Z * math.sqrt(power * (1 - power) / 3000)
    assert math.isnan(t_null.at["power", "value"]) and math.isnan(t_alt.at["fwer", "value"])


@pytest.mark.parametrize(
    "change, field",
    [
        ({"arms": [{"name": "x", "treatment": "x"}, {"name": "z", "treatment": "x"}]}, "exactly one arm"),
        ({"control": "x"}, "remove ['control']"),
        ({"two_stage": {"p0": 0.3, "p1": 0.2}}, "p1 (0.2) must exceed p0 (0.3)"),
        ({"two_stage": {"p0": 0.05, "p1": 0.2, "stages": {"n1": 12, "r1": 12, "n": 10, "r": 11}}}, "n1 (12) must not"),
    ],
)
def test_bad_two_stage_designs_are_refused_with_the_field_named(change, field):
    with pytest.raises(ConfigError) as info:
        parse_design({**design(), **change})
    assert field in str(info.value)


def test_a_design_that_cannot_exist_is_refused_at_compile_time():
    with pytest.raises(ConfigError, match="design.two_stage: no two-stage design of at most 20 patients"):
        spec_of(design(max_n=20), 0.05)
    with pytest.raises(ConfigError, match="higher_is_better"):
        spec_of({**design(), "endpoint": {"name": "y", "direction": "lower_is_better"}}, 0.05)


def test_calibrate_says_there_is_nothing_to_calibrate():
    spec = spec_of(design(), 0.05)
    with pytest.raises(ConfigError, match="nothing to calibrate"):
        calibrate([spec], 0.05, n_sims=10)


def test_the_shipped_design_runs_compares_and_replays(tmp_path):
    """The shipped S1400F-like design through the command line, in a comparison beside a design with
    looks, and as a storyboard of one trial."""
    result = CliRunner().invoke(
        main,
        ["run", "--design", "s1400f_two_stage", "--scenario", "stk11_keap1_ctla4", "--n-sims", "200", "--quiet"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "single-arm two-stage design" in result.output and "P(stopped early)" in result.output
    # the two designs analyse different endpoints: the scenario must say which one claims are judged on
    with pytest.raises(ConfigError, match="different endpoints"):
        compare(["s1400f_two_stage", "allcomer_fixed"], ["stk11_keap1_ctla4"], 30, 1)
    data = yaml.safe_load((ROOT / "scenarios" / "stk11_keap1_ctla4.yaml").read_text())
    data["yardstick"] = dict(data.get("yardstick") or {}, endpoint="orr", relevant_difference=0.15)
    folder = tmp_path / "scenarios"
    folder.mkdir()  # its population is found by its shipped name (a link out of the folder would be refused)
    (folder / "judged_on_orr.yaml").write_text(yaml.safe_dump(data))
    table = compare(["s1400f_two_stage", "allcomer_fixed"], [str(folder / "judged_on_orr.yaml")], 30, 1).table
    assert {"s1400f_two_stage", "allcomer_fixed"} == set(table.design)
    spec = Spec.load("s1400f_two_stage", "stk11_keap1_ctla4")
    story = replay(spec, seed=1, index=3, n_sims=10)
    record = run(spec, 10, seed=1).take([3])
    assert story.summary["patients_randomized"] == int(record.n_randomized[0])
    assert list(story.analyses["look"]) == list(range(1, len(story.analyses) + 1))
    assert (story.patients["response"] >= 0).sum() == int(record.n_randomized[0])
    assert "stage" in format_story(story) or "look" in format_story(story)
