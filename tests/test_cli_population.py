"""``platform-sim population`` and ``platform-sim list``."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.config import shipped_names

N = 20_000

SCENARIO = {
    "name": "cli_population",
    "description": "A small population for the command-line tests. Second sentence.",
    "population": {
        "name": "small",
        "accrual": {"rate_per_month": 30, "ramp_up_months": 4},
        "screening": {
            "ineligible": 0.05,
            "tissue": {"failure": 0.10, "turnaround": {"median_days": 14, "sdlog": 0.5}},
            "liquid": {"detectable": 0.8, "turnaround": {"median_days": 9}},
            "loss_hazard_per_day": 0.005,
        },
        "markers": {
            "histology": {"levels": ["nonsquamous", "squamous"], "probabilities": [0.72, 0.28]},
            "kras": {
                "given": ["histology"],
                "prevalence": {"nonsquamous": 0.30, "squamous": 0.05},
                "tissue": {},
                "liquid": {"sensitivity": 0.8},
            },
        },
    },
    "endpoints": {"pfs": {"kind": "time_to_event"}, "dcr12": {"kind": "landmark", "of": "pfs", "weeks": 12}},
    "treatments": {
        "docetaxel": {"outcomes": {"pfs": {"median_months": 4.0}}},
        "combo": {"relative_to": "docetaxel", "outcomes": {"pfs": {"hazard_ratios": {"kras": 0.5}}}},
    },
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def population_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("population")
    path = d / "cli_population.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = d / "out"
    return invoke("population", "--scenario", path, "--n", N, "--seed", 3, "--out", out), out


def test_population_prints_every_table(population_run):
    result, _ = population_run
    assert result.exit_code == 0, result.stderr
    for heading in ("Prevalence", "Co-occurrence", "Screening funnel", "Outcomes of randomized patients"):
        assert heading in result.stdout
    assert f"{N:,} screened virtual patients" in result.stdout


def test_population_writes_tidy_tables_matching_the_configuration(population_run):
    _, out = population_run
    assert sorted(p.name for p in out.iterdir()) == [
        "cooccurrence.csv",
        "funnel.csv",
        "manifest.json",
        "outcomes.csv",
        "patients.parquet",
        "prevalence.csv",
    ]
    prev = pd.read_csv(out / "prevalence.csv").set_index(["characteristic", "level"])
    # exact marginals worked out by hand from the tables
    assert prev.loc[("histology", "squamous"), "configured"] == pytest.approx(0.28)
    assert prev.loc[("kras", "positive"), "configured"] == pytest.approx(0.72 * 0.30 + 0.28 * 0.05)
    z = (prev["simulated"] - prev["configured"]).abs() / prev["simulated_mcse"]
    assert (z < 4).all(), z

    cooc = pd.read_csv(out / "cooccurrence.csv")
    row = cooc[(cooc["given_level"] == "squamous") & (cooc["level"] == "positive")].iloc[0]
    assert row["configured"] == pytest.approx(0.05)

    funnel = pd.read_csv(out / "funnel.csv").set_index("reason")
    assert funnel["simulated"].sum() == pytest.approx(1.0)
    assert funnel["expected"].sum() == pytest.approx(1.0)
    assert funnel.loc["ineligible", "expected"] == pytest.approx(0.05)
    assert ((funnel["simulated"] - funnel["expected"]).abs() <= 4 * funnel["simulated_mcse"] + 1e-12).all()
    # designs that need no biomarker result: no assay, so ineligibility is the only loss
    assert funnel["expected_without_assay"].to_dict() == pytest.approx(
        {
            "randomized": 0.95,
            "screen_failure": 0.0,
            "lost_while_waiting": 0.0,
            "ineligible": 0.05,
            "not_submitted": 0.0,
            "not_assigned": 0.0,
            "declined": 0.0,
        }
    )
    assert funnel.loc["screen_failure", "simulated_without_assay"] == 0
    assert funnel.loc["lost_while_waiting", "simulated_without_assay"] == 0
    gap = (funnel["simulated_without_assay"] - funnel["expected_without_assay"]).abs()
    assert (gap <= 4 * funnel["simulated_without_assay_mcse"] + 1e-12).all()
    # the same patients: ineligibility has its own random numbers, whether or not the assay runs
    assert funnel.loc["ineligible", "simulated_without_assay"] == funnel.loc["ineligible", "simulated"]

    outcomes = pd.read_csv(out / "outcomes.csv")
    doc = outcomes[
        (outcomes.endpoint == "pfs") & (outcomes.treatment == "docetaxel") & (outcomes.characteristic == "all")
    ].iloc[0]
    assert doc["configured"] == pytest.approx(4.0)
    assert abs(doc["simulated"] - 4.0) < 4 * doc["simulated_mcse"]
    dc = outcomes[
        (outcomes.endpoint == "dcr12") & (outcomes.treatment == "docetaxel") & (outcomes.characteristic == "all")
    ].iloc[0]
    weeks_in_months = 12 * 7 / (365.25 / 12)
    assert dc["configured"] == pytest.approx(math.exp(-math.log(2) / 4.0 * weeks_in_months))
    combo_kras = outcomes[
        (outcomes.endpoint == "pfs")
        & (outcomes.treatment == "combo")
        & (outcomes.characteristic == "kras")
        & (outcomes.level == "positive")
    ].iloc[0]
    assert combo_kras["configured"] == pytest.approx(8.0)  # hazard ratio 0.5 doubles the median

    patients = pd.read_parquet(out / "patients.parquet")
    assert len(patients) == N
    assert {
        "arrival_month",
        "wait_days",
        "screening",
        "histology",
        "kras",
        "kras_reported",
        "pfs_docetaxel",
        "pfs_combo",
        "dcr12_docetaxel",
        "dcr12_combo",
    } <= set(patients.columns)
    # the landmark is read from the same PFS times
    assert (patients["dcr12_docetaxel"] == (patients["pfs_docetaxel"] > weeks_in_months)).all()
    # every patient has one screening reason
    assert set(patients["screening"].unique()) <= {"randomized", "screen_failure", "lost_while_waiting", "ineligible"}
    ineligible = patients["screening"] == "ineligible"
    assert (patients["screening_without_assay"] == ineligible.map({True: "ineligible", False: "randomized"})).all()


def test_population_rejects_a_bad_scenario_with_the_field_named(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(SCENARIO))
    bad["population"]["markers"]["kras"]["prevalence"]["squamous"] = 1.4
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = invoke("population", "--scenario", path, "--n", 100)
    assert result.exit_code == 2
    assert "population.markers.kras.prevalence.squamous" in result.stderr
    assert "1.4" in result.stderr


def test_list_gives_one_line_descriptions():
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for kind in ("design", "scenario"):
        for name in shipped_names(kind):
            line = next(line for line in lines if line.split() and line.split()[0] == name)
            assert len(line.split(maxsplit=1)) == 2, f"{name} has no description"


@pytest.mark.parametrize("scenario", ["benchmark_four_arm", "scenarios/benchmark_four_arm.yaml"])
def test_population_of_a_scenario_without_characteristics(scenario, tmp_path, root, monkeypatch):
    """A shipped scenario without a population file (no biomarkers, no screening) ended in
    KeyError: 'characteristic'."""
    monkeypatch.chdir(root)
    out = tmp_path / "out"
    result = invoke("population", "--scenario", scenario, "--n", 1000, "--out", out)
    assert result.exit_code == 0, result.output
    assert "no biomarkers or clinical characteristics" in result.stdout
    assert "event (rate)" in result.stdout and "randomized" in result.stdout
    prevalence = pd.read_csv(out / "prevalence.csv")
    assert prevalence.empty and "characteristic" in prevalence.columns
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert sorted(outcomes["treatment"]) == ["A", "B", "C", "D"]


@pytest.mark.parametrize("name", shipped_names("scenario"))
def test_population_runs_on_every_shipped_scenario(name):
    result = invoke("population", "--scenario", name, "--n", 500)
    assert result.exit_code == 0, result.output
    assert f"scenario {name}:" in result.stdout
