"""The single-trial storyboard replays exactly the trial a run simulated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.families.platform import PLATFORM_STATUS
from platform_sim.results import STATUS_NAMES
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.storyboard import format_story, history_figure, locate, predictive_markers, replay, unreported

N_SIMS, CHUNK, SEED = 30, 20, 5


def _assert_same(one, results, k):
    """The replayed trial's record is row ``k`` of the run's: every array, value, extra and name."""
    mine, theirs = one.to_arrays(), results.take([k]).to_arrays()
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        np.testing.assert_array_equal(value, theirs[name], err_msg=name)
    assert one.trial.tolist() == [k]


@pytest.fixture(scope="module")
def look_run():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    return spec, run(spec, N_SIMS, SEED, chunk_size=CHUNK)


@pytest.mark.parametrize("k", [3, 25])  # a full chunk and the run's last, shorter chunk
def test_look_based_replay_is_the_run_trial(look_run, k):
    spec, results = look_run
    story = replay(spec, SEED, k, N_SIMS, CHUNK)
    _assert_same(story.result, results, k)
    a = story.analyses
    assert a["look"].max() == results.extras["stop_look"][k] + 1
    last = a[a["look"] == a["look"].max()].set_index("arm")
    status_look = results.extras["status_look"]
    for j, arm in enumerate(spec.design.arm_names):
        # the decisions of the storyboard are the run's: final status and the look it was set at
        assert last.loc[arm, "status"] == STATUS_NAMES[results.status[k, j]]
        decided = a[(a["arm"] == arm) & (a["decision"] != "")]
        if status_look[k, j] >= 0:
            assert decided["look"].iloc[-1] == status_look[k, j] + 1
        else:
            assert decided.empty
        assert last.loc[arm, "randomized"] == results.n_by_arm[k, j]
    # patients: one row per screened patient, the randomized ones with their arm and response
    p = story.patients
    assert len(p) == results.n_screened[k]
    on = p[p["arm"] != ""]
    assert (on["screening"] == "randomized").all()
    counts = on.groupby("arm")["response"].agg(["size", "sum"])
    for j, arm in enumerate(spec.design.arm_names):
        assert counts.loc[arm, "size"] == results.n_by_arm[k, j]
        assert counts.loc[arm, "sum"] == results.events_by_arm[k, j]
    assert story.summary["patients_randomized"] == results.n_randomized[k]


def test_stratified_replay_matches_per_stratum_record():
    spec = Spec.load("battle_stratified_rar", "pioneer_alternative")
    results = run(spec, 8, SEED, chunk_size=5)
    k = 6
    story = replay(spec, SEED, k, 8, 5)
    _assert_same(story.result, results, k)
    a = story.analyses
    names = list(spec.compiled.plan.names)
    assert list(results.strata) == names
    stratum_status = results.extras["stratum_status"]  # (T, K, S)
    for (stratum, arm), part in a.groupby(["stratum", "arm"]):
        s, j = names.index(stratum), spec.design.arm_names.index(arm)
        assert part["status"].iloc[-1] == STATUS_NAMES[stratum_status[k, j, s]]
        assert part["randomized"].iloc[-1] == results.n[k, j, s]
    on = story.patients[story.patients["arm"] != ""]
    table = on.groupby(["stratum", "arm"]).size()
    for (stratum, arm), n in table.items():
        assert n == results.n[k, spec.design.arm_names.index(arm), names.index(stratum)]
    assert len(on) == results.n_randomized[k]


def test_platform_replay_matches_record():
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    results = run(spec, 6, SEED, chunk_size=4)
    k = 5
    story = replay(spec, SEED, k, 6, 4)
    _assert_same(story.result, results, k)
    a = story.analyses
    arms = list(spec.design.arm_names)
    assert a.loc[a["counted"], "analysis"].nunique() == results.trial_values["n_looks"][k]
    platform_status, decided_at = results.extras["platform_status"], results.extras["decided_at"]
    for j, arm in enumerate(arms):
        assert a[a["arm"] == arm]["status"].iloc[-1] == PLATFORM_STATUS[platform_status[k, j]]
        decided = a[(a["arm"] == arm) & (a["decision"] != "")]
        if np.isnan(decided_at[k, j]):
            assert decided.empty
        else:
            assert decided["month"].iloc[0] == pytest.approx(decided_at[k, j])
    on = story.patients[story.patients["arm"] != ""]
    assert on.groupby("arm").size().reindex(arms, fill_value=0).tolist() == results.n_by_arm[k].tolist()
    # progression seen at a scheduled assessment, never after the final analysis date
    seen = on["progression_seen_months"].dropna()
    assert (seen <= results.duration_months[k] + 1e-9).all()
    steps = (on["last_assessment_months"] - on["randomized_months"]) / (
        spec.design.platform.assessment_weeks * 7 / 30.4375
    )
    np.testing.assert_allclose(steps.dropna(), steps.dropna().round(), atol=1e-6)
    # the final analysis data are the engine's: events per arm at the final analysis
    data = story.analysis_data()
    events = data.groupby("arm")["event"].sum().reindex(arms, fill_value=0)
    assert events.tolist() == results.events_by_arm[k].tolist()
    assert set(data["group"]) <= set(spec.compiled.plan.names)
    fig = history_figure(story)
    assert len(fig.axes) == 3 and all(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes)
    assert "analysis" in format_story(story)


def test_locate_and_bad_index():
    assert locate(25, 30, 20) == (1, 5, 10)
    with pytest.raises(ValueError, match="outside"):
        locate(30, 30, 20)


def test_predictive_markers_are_the_treatment_by_marker_interactions():
    assert predictive_markers(Spec.load("pioneer_rar", "pioneer_null")) == []
    assert predictive_markers(Spec.load("pioneer_platform", "pioneer_alternative")) == ["atm", "stk11_or_keap1"]


def test_analysis_data_groups_by_reported_markers(look_run):
    """An all-comer design runs no assay: it can group its patients by what is known at screening
    (ECOG), never by a biomarker; a stratified design reports the biomarkers its assays measure."""
    spec, _ = look_run
    story = replay(spec, SEED, 3, N_SIMS, CHUNK)
    data = story.analysis_data(["ecog"])
    assert set(data["group"]) == {"ecog=ps0", "ecog=ps1"}
    assert len(data) == story.summary["patients_randomized"]
    with pytest.raises(ValueError, match="unknown characteristic"):
        story.analysis_data(["nope"])
    with pytest.raises(ValueError, match=r"\['atm'\] are never reported in design 'pioneer_rar'"):
        story.analysis_data(["atm", "ecog"])
    assert (story.patients["reported_atm"] == "").all()
    assert (story.patients["reported_ecog"] != "").all()

    stratified = Spec.load("battle_stratified_rar", "pioneer_alternative")
    data = replay(stratified, SEED, 3, 4, 4).analysis_data(["atm"])
    groups = set(data["group"])
    assert groups <= {"atm=positive", "atm=negative", "atm=unknown"} and {"atm=positive", "atm=negative"} <= groups


def test_unreported_characteristics_are_the_assayed_ones_of_designs_that_wait_for_none():
    markers = ["atm", "stk11_or_keap1", "ecog", "histology", "region"]
    for design in ("pioneer_rar", "allcomer_fixed", "s1400f_two_stage"):
        assert unreported(Spec.load(design, "pioneer_alternative"), markers) == ["atm", "stk11_or_keap1"]
    for design in ("lungmap_umbrella", "battle_stratified_rar", "pioneer_platform"):
        assert unreported(Spec.load(design, "pioneer_alternative"), markers) == []


def test_cli_trial_writes_tables_and_matches_the_run(tmp_path):
    run_dir, trial_dir = tmp_path / "run", tmp_path / "trial"
    r = CliRunner().invoke(
        main, ["run", "--n-sims", "30", "--chunk-size", "20", "--seed", "5", "--out", str(run_dir), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        main,
        [
            "trial",
            "--n-sims",
            "30",
            "--chunk-size",
            "20",
            "--seed",
            "5",
            "--index",
            "25",
            "--no-bayes",
            "--out",
            str(trial_dir),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "look 1:" in r.output
    # the trial's record (one row per arm) is the run's rows of arms.parquet for that trial
    record = pd.read_csv(trial_dir / "record.csv", keep_default_na=False, na_values=[""])
    arms = pd.read_parquet(run_dir / "arms.parquet")
    rows = arms[arms["trial"] == 25].reset_index(drop=True)
    assert len(record) == len(rows) > 0
    assert record["arm"].tolist() == [str(a) for a in rows["arm"]]
    for col in record.columns:
        if col in ("spec_hash",):
            continue
        for mine, theirs in zip(record[col], rows[col]):
            if isinstance(theirs, (float, np.floating)) and np.isnan(theirs):
                assert np.isnan(mine), col
            elif isinstance(theirs, (float, np.floating)):
                assert mine == pytest.approx(theirs, rel=1e-12), col
            else:
                assert str(mine) == str(theirs) or (pd.isna(mine) and str(theirs) == ""), col
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert record["n"].sum() == trials.loc[trials["trial"] == 25, "n_randomized"].iloc[0]
    patients = pd.read_parquet(trial_dir / "patients.parquet")
    assert {"arrival_months", "screening", "arm", "response", "outcome_due_months", "stk11", "reported_stk11"} <= set(
        patients
    )
    manifest = json.loads((trial_dir / "manifest.json").read_text())
    assert manifest["index"] == 25 and "history.png" in manifest["files"]


def test_cli_trial_errors():
    r = CliRunner().invoke(main, ["trial", "--n-sims", "10", "--index", "10", "--no-bayes"])
    assert r.exit_code == 2 and "--index 10" in r.output
    r = CliRunner().invoke(main, ["trial", "--by", "nope", "--no-bayes"])
    assert r.exit_code == 2 and "unknown characteristic" in r.output
    # the default design randomizes without a biomarker result: a final model by ATM would have one group
    r = CliRunner().invoke(main, ["trial", "--by", "atm,ecog"])
    assert r.exit_code == 2 and "['atm'] are never reported in design 'pioneer_rar'" in r.output
