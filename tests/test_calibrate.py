"""``platform-sim calibrate``: the threshold that holds the type I error, searched on common random numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from platform_sim.calibrate import _monotonicity, calibrate, load_specs
from platform_sim.cli import main
from platform_sim.config import ConfigError
from platform_sim.posterior import prob_greater
from platform_sim.runner import run

N_PER_ARM = 20
RATE = 0.3
TWO_ARM = {
    "name": "two_arm_single_look",
    "endpoint": {"name": "resp", "direction": "higher_is_better"},
    "arms": [{"name": "control", "treatment": "standard"}, {"name": "experimental", "treatment": "new"}],
    "control": "control",
    "prior": {"a": 1, "b": 1},
    "randomization": {"method": "fixed", "scheme": "block"},  # exactly N_PER_ARM patients per arm
    "looks": {"randomized_n": [2 * N_PER_ARM]},
    "decisions": {"superiority": 0.975, "inferiority": None},
    "clinically_relevant_difference": 0.15,
}
EQUAL_RATES = {
    "name": "equal_rates",
    "endpoints": {"resp": {"kind": "binary"}},
    "treatments": {"standard": {"rates": {"resp": RATE}}, "new": {"rates": {"resp": RATE}}},
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def exact_error(threshold: float) -> float:
    """P(P(p_new > p_standard | data) > threshold) with N_PER_ARM patients per arm at rate RATE: the
    double sum over both arms' binomial responder counts, with the exact Beta(1 + x, 1 + n - x) posteriors."""
    x = np.arange(N_PER_ARM + 1)
    pmf = stats.binom.pmf(x, N_PER_ARM, RATE)
    x_new, x_std = np.meshgrid(x, x, indexing="ij")
    p_better = prob_greater(1.0 + x_new, 1.0 + N_PER_ARM - x_new, 1.0 + x_std, 1.0 + N_PER_ARM - x_std)
    return float((pmf[:, None] * pmf[None, :] * (p_better > threshold)).sum())


def test_calibrated_threshold_matches_the_exact_error_curve(build_spec):
    target, n_sims = 0.05, 10_000
    spec = build_spec(TWO_ARM, EQUAL_RATES)
    cal = calibrate([spec], target, n_sims=n_sims, seed=11)
    assert cal.path == "design.decisions.superiority" and cal.values == (cal.threshold,)
    assert cal.looser < cal.threshold
    se_target = math.sqrt(target * (1 - target) / n_sims)
    # the calibrated threshold holds the target, and the next looser step breaks it (within Monte Carlo error)
    assert exact_error(cal.threshold) <= target + 4 * se_target
    assert exact_error(cal.looser) > target - 4 * se_target
    # every simulated point of the curve estimates the exact error at its threshold
    for row in cal.curve.itertuples():
        exact = exact_error(row.threshold)
        assert abs(row.error - exact) <= 4 * math.sqrt(exact * (1 - exact) / n_sims) + 1e-12, row
    achieved = cal.summary.query("setting == 'calibrated' and metric == 'fwer'").iloc[0]
    assert achieved.value <= target
    assert achieved.mcse == pytest.approx(math.sqrt(achieved.value * (1 - achieved.value) / n_sims))
    assert cal.monotone


@pytest.fixture(scope="module")
def per_look(shipped_yaml):
    """pioneer_rar with one superiority threshold per look (stricter early), on the global null."""
    from platform_sim.config.load import parse_design, parse_scenario
    from platform_sim.spec import Spec

    design = shipped_yaml("design", "pioneer_rar")
    design["decisions"]["superiority"] = [0.999, 0.998, 0.997, 0.995, 0.993, 0.992, 0.99]
    return Spec.from_models(parse_design(design), parse_scenario(shipped_yaml("scenario", "pioneer_null")))


def test_same_call_same_output_and_per_look_thresholds_move_together(per_look):
    first = calibrate([per_look], 0.08, n_sims=300, seed=5, criterion="fwer")
    again = calibrate([per_look], 0.08, n_sims=300, seed=5, criterion="fwer")
    pd.testing.assert_frame_equal(first.curve, again.curve)
    pd.testing.assert_frame_equal(first.summary, again.summary)
    assert first.values == again.values
    curve = first.curve.sort_values("threshold")
    assert len(curve) >= 8
    # the flag says whether the evaluated curve rises anywhere, and a rise is spelled out in a note
    rises = bool((np.diff(curve["error"].to_numpy()) > 0).any())
    assert first.monotone is not rises
    assert any("NOT MONOTONE" in n for n in first.notes) is rises
    # the per-look values move together: their distances on the logit scale are the design's
    design = np.log(per_look.design.decisions.superiority) - np.log1p(-np.array(per_look.design.decisions.superiority))
    cal = np.log(first.values) - np.log1p(-np.array(first.values))
    assert np.allclose(cal - cal.min(), design - design.min(), atol=2e-3)
    assert first.threshold == min(first.values) and first.setting.startswith("superiority: [")
    # the calibrated design reproduces the reported error exactly (the same simulated trials)
    from platform_sim.calibrate import _Judge, _with_design

    results = run(_with_design(per_look, first.design), 300, 5)
    judged = _Judge(per_look)(results, per_look)
    assert judged.fwer.mean() == first.curve.query("threshold == @first.threshold").error.iloc[0]
    assert np.array_equal(judged.null_declared.any(axis=1), judged.fwer.astype(bool))


def test_with_one_trial_per_chunk_the_fwer_curve_never_rises(build_spec):
    """A trial's path up to its first declaration does not depend on the threshold. With one trial
    per chunk every trial also has its own randomization stream, so under the global null a trial
    that declares at threshold c declares at every looser one: the curve cannot rise."""
    design = dict(TWO_ARM, looks={"randomized_n": [20, 40, 60]})
    spec = build_spec(design, EQUAL_RATES)
    cal = calibrate([spec], 0.05, n_sims=100, seed=3, chunk_size=1, tolerance=0.05)
    curve = cal.curve.sort_values("threshold")
    assert len(curve) >= 8 and curve["error"].nunique() >= 5
    assert (np.diff(curve["error"].to_numpy()) <= 0).all()
    assert cal.monotone


def test_a_rise_in_the_evaluated_curve_is_reported():
    curve = pd.DataFrame({"scenario": ["s"] * 3, "threshold": [0.9, 0.95, 0.99], "error": [0.2, 0.1, 0.12]})
    monotone, notes = _monotonicity(curve, "per_arm")
    assert not monotone and "NOT MONOTONE" in notes[0] and "0.95" in notes[0] and "0.99" in notes[0]
    assert _monotonicity(curve.assign(error=[0.2, 0.1, 0.1]), "fwer") == (True, [])


@pytest.fixture(scope="module")
def platform_null():
    return load_specs("pioneer_platform", ["pioneer_null"])[0]


def test_platform_graduation_threshold(platform_null):
    target, n_sims = 0.3, 30
    cal = calibrate(platform_null, target, n_sims=n_sims, seed=2)
    assert cal.param == "graduate" and cal.path == "design.platform.graduation.graduate"
    assert cal.design.platform.graduation.graduate == cal.threshold
    curve = cal.curve.sort_values("threshold")
    assert (np.diff(curve["error"].to_numpy()) <= 0).all()
    assert curve.query("threshold == @cal.threshold").error.iloc[0] <= target
    assert curve.query("threshold == @cal.looser").error.iloc[0] > target
    # the error counted here is the platform report's FWER (graduated where the arm is null)
    from platform_sim.calibrate import _with_design
    from platform_sim.oc import trial_values

    spec = _with_design(platform_null[0], cal.design)
    results = run(spec, n_sims, 2)
    fwer = trial_values(results, spec.truth)["fwer"]
    assert np.mean(fwer) == curve.query("threshold == @cal.threshold").error.iloc[0]
    with pytest.raises(
        ConfigError,
        match=r"not a threshold of a platform over calendar time; allowed: "
        r"graduate \(design\.platform\.graduation\.graduate",
    ):
        calibrate(platform_null, target, param="superiority", n_sims=n_sims)


# --------------------------------------------------------------------------- CLI

CALIBRATE = [
    "calibrate",
    "--design",
    "allcomer_fixed",
    "--null-scenarios",
    "pioneer_null",
    "--n-sims",
    200,
    "--seed",
    3,
    "--quiet",
]


def test_cli_writes_the_curve_summary_and_manifest(tmp_path):
    out = tmp_path / "out"
    result = invoke(
        *CALIBRATE, "--alternative-scenarios", "trop2_adc", "--target-fwer", 0.1, "--error", "per_arm", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "calibrated threshold:" in result.output and "superiority:" in result.output
    curve = pd.read_csv(out / "calibration.csv")
    assert {"threshold", "scenario", "error", "mcse", "worst_arm"} <= set(curve.columns)
    assert (curve.criterion == "per_arm").all() and curve.worst_arm.notna().all()
    summary = pd.read_csv(out / "calibration_summary.csv")
    power = summary.query("scenario == 'trop2_adc' and metric == 'power'").set_index("setting")
    assert set(power.index) == {"calibrated", "design"} and power["mcse"].gt(0).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["criterion"] == "per_arm" and manifest["target"] == 0.1
    assert manifest["calibrated_threshold"] == curve.threshold[curve.error <= 0.1].min()
    assert set(manifest["calibrated_spec_hashes"]) == {"pioneer_null", "trop2_adc"}
    assert manifest["files"] == ["calibration.csv", "calibration_summary.csv"] and "numpy" in manifest["versions"]


def test_cli_holds_p_any_claim_as_compare_does(tmp_path):
    """--error any_claim holds P(any claim), the criterion of compare --target-fwer and of a design's targets;
    on the global null every arm of an all-comer design is null, so it is the FWER there too."""
    result = invoke(*CALIBRATE, "--target-fwer", 0.1, "--error", "any_claim", "--out", tmp_path / "any")
    assert result.exit_code == 0, result.output
    assert "P(any claim) <= 0.1" in result.output
    any_claim = json.loads((tmp_path / "any" / "manifest.json").read_text())
    fwer = invoke(*CALIBRATE, "--target-fwer", 0.1, "--out", tmp_path / "fwer")
    assert fwer.exit_code == 0, fwer.output
    manifest = json.loads((tmp_path / "fwer" / "manifest.json").read_text())
    assert any_claim["criterion"] == "any_claim" and manifest["criterion"] == "fwer"
    assert any_claim["calibrated_threshold"] == manifest["calibrated_threshold"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target-fwer", 0.1, "--param", "futility"], "allowed: superiority"),
        (["--target-fwer", 0.1, "--param", "inferiority"], "never declares an arm effective"),
        (["--target-fwer", 1.5], "strictly between 0 and 1"),
        (["--target-fwer", 0.0], "strictly between 0 and 1"),
        (["--target-fwer", 0.01, "--bounds", 0.6, 0.7], "unreachable: even the tightest threshold 0.7"),
        (["--target-fwer", 0.99], "not binding"),
        (["--target-fwer", 0.1, "control_drift"], "--null-scenarios a,b"),
    ],
)
def test_cli_errors_name_the_problem_and_write_nothing(args, message, tmp_path):
    out = tmp_path / "out"
    result = invoke(*CALIBRATE, *args, "--out", out)
    assert result.exit_code == 2
    assert "error:" in result.output and message in result.output
    assert not (out / "manifest.json").exists()


def test_cli_rejects_a_design_whose_rule_is_disabled(shipped_yaml, write_yaml):
    design = shipped_yaml("design", "pioneer_rar")
    design["decisions"]["superiority"] = None
    path = write_yaml(design, "no_superiority.yaml")
    result = invoke(
        "calibrate",
        "--design",
        path,
        "--null-scenarios",
        "pioneer_null",
        "--target-fwer",
        0.1,
        "--n-sims",
        20,
        "--quiet",
    )
    assert result.exit_code == 2
    assert "design.decisions.superiority: is null" in result.output
