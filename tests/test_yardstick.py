"""The common yardstick: claims per treatment x subgroup of the scenario's true biomarkers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_sim.config import ConfigError
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.yardstick import build, cell_times, check_null, for_specs, predictive_markers, reading, settle, values

N = 120


@pytest.fixture(scope="module")
def trop2():
    """Three designs on the TROP2 scenario (Dato-DXd works in QCS-NMR-positive patients only)."""
    return {d: Spec.load(d, "trop2_adc") for d in ("allcomer_fixed", "lungmap_umbrella", "adaptive_enrichment")}


@pytest.fixture(scope="module")
def ys(trop2):
    return for_specs(list(trop2.values()))


@pytest.fixture(scope="module")
def results(trop2):
    return {d: run(spec, N, 3) for d, spec in trop2.items()}


def test_truth_per_treatment_and_true_subgroup(ys, trop2):
    """Dato-DXd works in NMR-positive patients and is exactly null in NMR-negative ones; every other
    treatment is null everywhere; shares are the population's exact prevalence."""
    assert ys.by == ("trop2_nmr",)
    assert ys.subgroups == ("trop2_nmr=negative", "trop2_nmr=positive")
    d = ys.treatments.index("dato_dxd")
    assert ys.works[d].tolist() == [False, True] and ys.null[d].tolist() == [True, False]
    others = [i for i, t in enumerate(ys.treatments) if t != "dato_dxd"]
    assert ys.null[others].all() and not ys.works[others].any()
    pm = trop2["allcomer_fixed"].patients.population
    codes, prob = pm.distribution()  # every characteristic: the prognostic ones change the rates
    positive = prob[codes[:, pm.index["trop2_nmr"]] == 1].sum()
    assert ys.share[1] == pytest.approx(positive, abs=1e-12)
    assert ys.share.sum() == pytest.approx(1.0, abs=1e-12)
    # the effect in the positive subgroup is the exact rate difference of 12-week disease control
    out = trop2["allcomer_fixed"].patients.outcomes
    w = prob * (codes[:, pm.index["trop2_nmr"]] == 1)
    expected = out.expected("dcr12", "dato_dxd", codes, w) - out.expected("dcr12", "docetaxel", codes, w)
    assert ys.effect[d, 1] == pytest.approx(expected, abs=1e-12)
    assert ys.effect[d, 1] >= ys.relevant


def test_default_subgroups_are_the_predictive_markers(trop2):
    scenario = trop2["allcomer_fixed"].scenario
    assert predictive_markers(scenario) == ["trop2_nmr"]
    endpoint, control, relevant, higher = settle(scenario, [s.design for s in trop2.values()])
    assert (endpoint, control, relevant, higher) == ("dcr12", "docetaxel", 0.075, True)


def test_an_all_comer_claim_counts_in_every_subgroup(ys, trop2, results):
    """allcomer_fixed claims for all patients: its Dato-DXd claim is a true claim in NMR-positive and a
    false claim in NMR-negative patients, trial by trial."""
    spec, res = trop2["allcomer_fixed"], results["allcomer_fixed"]
    k = spec.design.arm_names.index("dato_dxd")
    design_claim = res.claimed[:, k, 0]
    assert design_claim.any(), "the test needs some claims; raise N"
    times = cell_times(res, reading(spec, ys))
    d = ys.treatments.index("dato_dxd")
    np.testing.assert_array_equal(np.isfinite(times[:, d, 0]), design_claim)
    np.testing.assert_array_equal(np.isfinite(times[:, d, 1]), design_claim)
    v = values(res, reading(spec, ys))
    others = [ys.treatments.index(t) for t in ys.treatments if t != "dato_dxd"]
    any_other = np.isfinite(times[:, others]).any(axis=(1, 2))
    np.testing.assert_array_equal(v["trial", "", "", "fwer"].astype(bool), design_claim | any_other)
    np.testing.assert_array_equal(v["trial", "", "", "power"].astype(bool), design_claim)


def test_a_stratum_claim_counts_only_in_the_subgroup_it_contains(ys, trop2, results):
    """The umbrella's TROP2 sub-study takes NMR-positive patients only: a claim there counts in the
    positive subgroup and never in the negative one."""
    spec, res = trop2["lungmap_umbrella"], results["lungmap_umbrella"]
    r = reading(spec, ys)
    g = spec.truth.subgroups.index("trop2_nmr")
    rows = r.covers[g]
    assert (r.row_subgroup[rows] == 1).all() and rows.any()
    k = spec.design.arm_names.index("dato_dxd")
    times = cell_times(res, r)
    d = ys.treatments.index("dato_dxd")
    np.testing.assert_array_equal(np.isfinite(times[:, d, 1]), res.claimed[:, k, g])
    assert not np.isfinite(times[:, d, 0]).any()


def test_a_claim_counts_in_every_subgroup_it_reaches(ys, trop2, results):
    """adaptive_enrichment stratifies by TROP2: a subgroup is claimed when a stratum that takes some
    of its patients is claimed, at the first such claim."""
    spec, res = trop2["adaptive_enrichment"], results["adaptive_enrichment"]
    r = reading(spec, ys)
    truth = spec.truth
    times = cell_times(res, r)
    d = ys.treatments.index("dato_dxd")
    k = spec.design.arm_names.index("dato_dxd")
    for y in range(2):
        reaching = [g for g in range(len(truth.subgroups)) if r.covers[g][r.row_subgroup == y].any()]
        assert reaching
        np.testing.assert_array_equal(np.isfinite(times[:, d, y]), res.claimed[:, k, reaching].any(axis=1))


def test_a_false_claim_in_a_stratum_is_not_lost_on_a_coarser_yardstick():
    """The umbrella's TROP2 sub-study read on STK11/KEAP1 subgroups: a Dato-DXd claim there reaches
    both STK11/KEAP1 subgroups, where Dato-DXd is null, so it is a false claim in both; under the
    global null the FWER on the yardstick is the rate of any claim, whatever markers it is read on."""
    spec = Spec.load("lungmap_umbrella", "stk11_keap1_only")
    ys_ = for_specs([spec])
    assert ys_.by == ("stk11_or_keap1",)
    res = run(spec, N, 3)
    r = reading(spec, ys_)
    k = spec.design.arm_names.index("dato_dxd")
    g = spec.truth.subgroups.index("trop2_nmr")
    v = values(res, r)
    np.testing.assert_array_equal(v["drug", "dato_dxd", "", "p_false_claim"].astype(bool), res.claimed[:, k, g])
    null = Spec.load("lungmap_umbrella", "pioneer_null")
    res = run(null, N, 3)
    any_claim = np.asarray(res.claimed).any(axis=(1, 2))
    assert any_claim.any(), "the test needs some claims; raise N"
    for by in (["stk11_or_keap1"], ["atm", "stk11_or_keap1", "trop2_nmr"], []):
        scenario = null.scenario.model_copy(update={"yardstick": null.scenario.yardstick.model_copy(update={"by": by})})
        ys_ = build(scenario, null.patients, [a.treatment for a in null.design.arms], "dcr12", "docetaxel", 0.075)
        v = values(res, reading(null, ys_))
        np.testing.assert_array_equal(v["trial", "", "", "fwer"].astype(bool), any_claim)


def test_patients_per_subgroup_add_up_and_have_the_exact_expectation(ys, trop2, results):
    """Patients per treatment x subgroup sum to the patients per arm; under fixed equal allocation
    each all-comer arm's expected NMR-positive patients are its patients times the prevalence."""
    for d, spec in trop2.items():
        res = results[d]
        v = values(res, reading(spec, ys))
        for t in ys.treatments:
            k = spec.design.arm_names.index(t)
            total = sum(v["subgroup", t, s, "n"] for s in ys.subgroups)
            np.testing.assert_allclose(total, res.n[:, k].sum(axis=1), rtol=1e-12)
    res = results["allcomer_fixed"]
    v = values(res, reading(trop2["allcomer_fixed"], ys))
    np.testing.assert_allclose(v["subgroup", "dato_dxd", "trop2_nmr=positive", "n"], 80 * ys.share[1], rtol=1e-12)
    on_effective = v["trial", "", "", "n_on_effective"]
    np.testing.assert_allclose(on_effective, 80 * ys.share[1], rtol=1e-12)


def test_cost_is_assays_plus_randomized_patients(ys, trop2, results):
    spec = trop2["lungmap_umbrella"]
    res = results["lungmap_umbrella"]
    r = reading(spec, ys)
    v = values(res, r)
    costs = spec.scenario.costs
    expected = (
        v["trial", "", "", "n_assayed"] * costs.assay_per_patient
        + res.n.sum(axis=(1, 2)) * costs.per_randomized_patient
    )
    np.testing.assert_allclose(v["trial", "", "", "cost"], expected, rtol=1e-12)
    assert (v["trial", "", "", "n_assayed"] == res.n_screened).all()  # the umbrella tests every screened patient


def test_a_global_null_passes_and_an_alternative_is_refused():
    specs = [Spec.load("allcomer_fixed", "pioneer_null")]
    check_null(for_specs(specs))
    with pytest.raises(ConfigError, match="not a global null.*dato_dxd"):
        check_null(for_specs([Spec.load("allcomer_fixed", "trop2_adc")]))


def test_designs_that_disagree_need_the_scenario_to_decide(trop2, build_spec, shipped_yaml):
    scenario = trop2["allcomer_fixed"].scenario
    other = shipped_yaml("design", "allcomer_fixed")
    other["name"] = "orr_design"
    other["endpoint"]["name"] = "orr"
    spec = build_spec(other, shipped_yaml("scenario", "trop2_adc"))
    with pytest.raises(ConfigError, match="yardstick.endpoint.*different endpoints"):
        settle(scenario, [trop2["allcomer_fixed"].design, spec.design])
    looser = shipped_yaml("design", "allcomer_fixed")
    looser["clinically_relevant_difference"] = 0.1
    spec = build_spec(looser, shipped_yaml("scenario", "trop2_adc"))
    with pytest.raises(ConfigError, match="relevant_difference.*differ"):
        settle(scenario, [trop2["allcomer_fixed"].design, spec.design])
    data = shipped_yaml("scenario", "trop2_adc")
    data["yardstick"] = {"relevant_difference": 0.05, "by": ["trop2_nmr", "histology"]}
    decided = build_spec(shipped_yaml("design", "allcomer_fixed"), data)
    assert settle(decided.scenario, [trop2["allcomer_fixed"].design, spec.design])[2] == 0.05
    ys = for_specs([decided])
    assert len(ys.subgroups) == 4 and ys.by == ("trop2_nmr", "histology")


def test_yardstick_names_are_checked_when_the_scenario_loads(build_spec, shipped_yaml):
    data = shipped_yaml("scenario", "trop2_adc")
    data["yardstick"] = {"by": ["trop2"], "endpoint": "os", "control": "placebo"}
    with pytest.raises(ConfigError) as err:
        build_spec(shipped_yaml("design", "allcomer_fixed"), data)
    text = str(err.value)
    assert "yardstick.by: 'trop2'" in text and "yardstick.endpoint: 'os'" in text and "yardstick.control" in text


def test_survival_yardstick_uses_the_marginal_log_hazard_ratio():
    """On progression-free survival the effect is the log ratio of the cumulative hazards of the
    subgroup's mixture at the control's median, and a treatment works when it reaches the relevant
    hazard ratio (the platform's working_hazard_ratio unless the scenario says)."""
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    ys = for_specs([spec])
    assert ys.survival and ys.relevant == 0.8
    d = ys.treatments.index("durva_oleclumab")
    assert ys.works[d].all()  # HR 0.70 in every patient
    # within one subgroup every profile has HR 0.70, but prognostic markers mix baselines
    assert ys.effect[d].max() < math.log(0.8)
    pm, out = spec.patients.population, spec.patients.outcomes
    codes, prob = pm.distribution(sorted(set(ys.by) | set(spec.patients._relevant_markers("pfs", list(ys.treatments)))))
    y = 0
    mask = np.ones(len(prob), dtype=bool)
    for i, lv in zip(ys.characteristics, ys.levels[y]):
        mask &= codes[:, i] == lv
    assert ys.effect[d, y] == pytest.approx(
        out.effect("pfs", "durva_oleclumab", "docetaxel", codes, prob * mask), abs=1e-12
    )


def test_treatments_missing_from_a_design_are_never_claimed_by_it():
    specs = [Spec.load("pioneer_rar", "trop2_adc"), Spec.load("allcomer_fixed", "trop2_adc")]
    ys = for_specs(specs)
    assert "dato_dxd" in ys.treatments and "dato_dxd" not in specs[0].design.arm_names
    res = run(specs[0], 40, 1)
    v = values(res, reading(specs[0], ys))
    assert (v["drug", "dato_dxd", "", "p_claimed"] == 0).all()
    assert (v["subgroup", "dato_dxd", "trop2_nmr=positive", "n"] == 0).all()


def test_a_scenario_without_predictive_markers_has_one_subgroup(build_spec, shipped_yaml):
    """Without yardstick.by and without a treatment whose effect depends on a marker, the yardstick
    has the single subgroup 'all'; with by, every combination of the levels (pioneer_null's eight)."""
    data = shipped_yaml("scenario", "pioneer_null")
    data.pop("yardstick")
    spec = build_spec(shipped_yaml("design", "allcomer_fixed"), data)
    ys = build(spec.scenario, spec.patients, spec.design.arm_names, "dcr12", "docetaxel", 0.075)
    assert ys.subgroups == ("all",) and ys.global_null and ys.share.tolist() == [1.0]
    shipped = for_specs([Spec.load("allcomer_fixed", "pioneer_null")])
    assert len(shipped.subgroups) == 8 and shipped.global_null
    assert shipped.share.sum() == pytest.approx(1.0, abs=1e-12)
