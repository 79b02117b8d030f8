"""``platform-sim compare``: every design on every scenario with the same patients, paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.compare import compare
from platform_sim.config import ConfigError, Spec
from platform_sim.metrics import trial_table
from platform_sim.runner import run

N_SIMS = 300


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def variants(tmp_path_factory, root):
    """allcomer_fixed, a renamed identical copy, and a copy with a lower superiority threshold."""
    d = tmp_path_factory.mktemp("designs")
    base = yaml.safe_load((root / "designs" / "allcomer_fixed.yaml").read_text())
    twin = dict(base, name="fixed_twin")
    lenient = dict(base, name="fixed_lenient", decisions=dict(base["decisions"], superiority=0.9))
    paths = {}
    for design in (twin, lenient):
        paths[design["name"]] = d / f"{design['name']}.yaml"
        paths[design["name"]].write_text(yaml.safe_dump(design))
    return str(root / "designs" / "allcomer_fixed.yaml"), str(paths["fixed_twin"]), str(paths["fixed_lenient"])


def rows(table, design, metric, scenario=None):
    t = table[(table.design == design) & (table.metric == metric) & (table.level == "trial")]
    return t if scenario is None else t[t.scenario == scenario]


def test_an_identical_design_differs_by_exactly_zero(variants):
    base, twin, _ = variants
    table = compare([base, twin], ["trop2_adc"], N_SIMS, seed=4).table
    diffs = table[table.design == "fixed_twin"]
    assert (diffs["diff_vs_reference"].fillna(0) == 0).all()
    assert (diffs["diff_se"].fillna(0) == 0).all()


def test_designs_see_the_same_patients_so_differences_are_paired(variants):
    base, _, lenient = variants
    result = compare([base, lenient], ["trop2_adc", "pioneer_null"], N_SIMS, seed=4)
    t = result.table
    for scen in ("trop2_adc", "pioneer_null"):
        # the same patients and the same (fixed) allocation: identical responders in every trial
        r = rows(t, "fixed_lenient", "responders", scen).iloc[0]
        assert r["diff_vs_reference"] == 0 and r["diff_se"] == 0
        # a lower threshold declares a superset of arms in every trial: the paired difference is
        # non-negative, and its paired SE is below the SE of two independent runs
        any_eff = rows(t, "fixed_lenient", "p_any_effective", scen).iloc[0]
        ref = rows(t, "allcomer_fixed", "p_any_effective", scen).iloc[0]
        assert any_eff["diff_vs_reference"] == pytest.approx(any_eff["value"] - ref["value"])
        assert any_eff["diff_vs_reference"] > 0
        assert any_eff["diff_se"] < np.hypot(any_eff["mcse"], ref["mcse"])


def test_per_trial_declarations_are_nested_under_common_random_numbers(variants):
    base, _, lenient = variants
    strict = run(Spec.load(base, "trop2_adc"), N_SIMS, 4)
    loose = run(Spec.load(lenient, "trop2_adc"), N_SIMS, 4)
    assert np.array_equal(strict.n, loose.n) and np.array_equal(strict.responders, loose.responders)
    assert np.array_equal(strict.n_screened, loose.n_screened)
    assert (loose.declared_superior | ~strict.declared_superior).all()


def test_values_agree_with_the_single_run_tables(variants):
    base, _, _ = variants
    result = compare([base, "allcomer_rar"], ["trop2_adc"], N_SIMS, seed=9)
    for design in (base, "allcomer_rar"):
        spec = Spec.load(design, "trop2_adc")
        tt = trial_table(run(spec, N_SIMS, 9), spec).iloc[0]
        for metric, col in (("fwer", "fwer"), ("power", "power"), ("n_randomized", "mean_n_total"),
                            ("n_screened", "mean_n_screened")):
            r = rows(result.table, spec.design.name, metric).iloc[0]
            assert r["value"] == pytest.approx(tt[col]), (design, metric)
    arm = result.table[(result.table.level == "arm") & (result.table.arm == "dato_dxd")]
    assert set(arm.role) == {"better"}


def test_cli_compare_prints_a_side_by_side_table_and_writes_csv(tmp_path, variants):
    base, _, lenient = variants
    out = tmp_path / "cmp"
    result = invoke("compare", "--designs", base, "--designs", lenient, "--scenarios", "pioneer_null,trop2_adc",
                    "--n-sims", 100, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "fixed_lenient − allcomer_fixed" in result.stdout
    assert "common random numbers" in result.stdout
    table = pd.read_csv(out / "comparison.csv")
    assert {"design", "scenario", "level", "arm", "metric", "value", "mcse", "diff_vs_reference", "diff_se"} <= set(table)
    assert set(table.scenario) == {"pioneer_null", "trop2_adc"}
    assert (out / "manifest.json").exists()

    md = invoke("compare", "--designs", f"{base},{lenient}", "--scenarios", "trop2_adc", "--n-sims", 50,
                "--format", "markdown", "--quiet")
    assert md.exit_code == 0 and md.stdout.startswith("| scenario | metric |")


def test_cli_compare_rejects_bad_names_before_running(variants):
    base, _, _ = variants
    result = invoke("compare", "--designs", f"{base},no_such_design", "--scenarios", "trop2_adc,nope",
                    "--n-sims", 100, "--quiet")
    assert result.exit_code == 2
    assert "no_such_design" in result.stderr and "nope" in result.stderr
    result = invoke("compare", "--designs", "pioneer_rar", "--scenarios", "benchmark_four_arm", "--n-sims", 10, "--quiet")
    assert result.exit_code == 2 and "defines no such" in result.stderr


def test_stratified_designs_are_compared_per_arm_and_stratum(tmp_path):
    """An all-comer and an umbrella design on the same patients: the umbrella gets rows per arm x
    sub-study, its findings are judged per sub-study, and every screened patient is accounted for
    (randomized, lost in screening, or not assigned to a sub-study)."""
    result = compare(["allcomer_fixed", "lungmap_umbrella"], ["stk11_keap1_ctla4"], 200, 5)
    t = result.table
    strata = t[(t.design == "lungmap_umbrella") & (t.level == "arm_stratum")]
    assert set(strata.stratum) == {"atm", "stk11_keap1", "trop2_nmr", "non_match"}
    role = strata[(strata.arm == "durva_tremelimumab") & (strata.metric == "p_declared_effective")]
    assert list(role.role) == ["better"]  # the CTLA-4 combination works in STK11/KEAP1-mutant patients
    assert t[(t.design == "allcomer_fixed") & (t.level == "arm_stratum")].empty

    for design in ("allcomer_fixed", "lungmap_umbrella"):
        get = {m: rows(t, design, m).value.iloc[0] for m in
               ("n_screened", "n_randomized", "n_lost_in_screening", "n_not_assigned")}
        assert get["n_randomized"] + get["n_lost_in_screening"] + get["n_not_assigned"] == pytest.approx(get["n_screened"])
    assert rows(t, "allcomer_fixed", "n_not_assigned").value.iloc[0] == 0
    assert rows(t, "lungmap_umbrella", "n_not_assigned").value.iloc[0] > 0
    # the umbrella's power is the chance of declaring a truly working arm x sub-study
    spec = Spec.load("lungmap_umbrella", "stk11_keap1_ctla4")
    res = run(spec, 200, 5)
    k = spec.design.arm_names.index("durva_tremelimumab")
    assert rows(t, "lungmap_umbrella", "power").value.iloc[0] == pytest.approx(res.strata.declared[:, 1, k].mean())


def test_duration_is_the_last_randomized_patient_plus_the_assessment_time():
    """For a design without early stopping, the duration is the randomization time of its 400th
    patient (arrival plus screening wait) plus the 12 weeks until disease control is assessed."""
    from platform_sim.outcomes import WEEKS_PER_MONTH
    from platform_sim.runner import run_chunk
    from platform_sim.streams import Streams

    spec = Spec.load("allcomer_fixed", "pioneer_alternative")
    ts = Streams(3).for_trials(np.arange(20))
    res = run_chunk(spec, ts)
    enrolled = spec.patients.enrol(ts, 400, "dcr12", ["docetaxel"], times=True, keep_cohort=True)
    c = enrolled.cohort
    rows = np.arange(20)
    last = enrolled.screened_index[:, 399]
    expected = c.arrival[rows, last] + c.wait_days[rows, last] / (365.25 / 12) + 12 / WEEKS_PER_MONTH
    np.testing.assert_allclose(res.duration_months, expected, rtol=1e-6)


def test_designs_that_share_a_name_are_refused_before_anything_is_simulated(tmp_path, root, monkeypatch):
    """Two designs with the same ``name:`` (pioneer_rar and a copy with another threshold) ran the
    whole comparison and then crashed in side_by_side; now compare refuses them before simulating."""
    strict = yaml.safe_load((root / "designs" / "pioneer_rar.yaml").read_text())
    strict["decisions"]["superiority"] = 0.995
    copy_path = tmp_path / "pioneer_rar_strict.yaml"
    copy_path.write_text(yaml.safe_dump(strict))

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated although the names clash")

    monkeypatch.setattr("platform_sim.compare.run", no_simulation)
    result = invoke("compare", "--designs", f"pioneer_rar,{copy_path}", "--scenarios", "pioneer_alternative",
                    "--n-sims", 10, "--quiet")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {copy_path}: design.name: has the same name as pioneer_rar") and "'pioneer_rar'" in line
    # the same design listed twice, and two scenarios with one name
    result = invoke("compare", "--designs", "pioneer_rar,pioneer_rar", "--scenarios", "pioneer_alternative",
                    "--n-sims", 10, "--quiet")
    assert result.exit_code == 2 and "design.name: is listed twice (pioneer_rar)" in result.stderr
    twin = yaml.safe_load((root / "scenarios" / "pioneer_null.yaml").read_text())
    twin["name"] = "pioneer_alternative"
    scenario_path = tmp_path / "renamed_null.yaml"
    scenario_path.write_text(yaml.safe_dump(twin))
    with pytest.raises(ConfigError) as info:
        compare(["pioneer_rar"], ["pioneer_alternative", str(scenario_path)], 10, seed=1)
    assert "scenario.name: has the same name as pioneer_alternative" in str(info.value)
