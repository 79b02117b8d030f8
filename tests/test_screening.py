"""Who waits for a biomarker result: the screening funnel each design is charged.

A design that classifies, routes or allocates patients by a characteristic an assay measures waits
for the assay before randomizing (tissue failure with a plasma fallback, turnaround, loss while
waiting); a design that does not (an all-comer design, a single-arm two-stage design, a platform
without strata) randomizes every eligible patient on arrival. The tests:

1. every shipped design's family gives the expected answer, and so do a platform without strata
   and strata by a clinical characteristic;
2. designs that wait are bit-identical to reference results written by the engine that charged every
   design the assay (``tests/data/screening/reference.npz``);
3. an all-comer design screens 1 / (1 - ineligible) patients per randomized patient (the mean of
   n_screened / n_randomized within 4 Monte Carlo standard errors), loses nobody in screening but
   ineligible patients, randomizes the eligible patients in screening order and waits for no result;
4. the load-time checks built on the exact funnel follow it;
5. properties over random screening settings and seeds: with the assay the funnel is the documented
   one computed here from the raw random numbers, bit for bit; without it the same patients have the
   same profiles and eligibility, nobody waits, assayed characteristics are not reported, and the
   randomizable patients are the eligible ones in screening order.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import ndtri

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.config.population import expected_funnel, expected_randomizable
from platform_sim.outcomes import WEEKS_PER_MONTH, VirtualPatients
from platform_sim.population import (
    BLOCK,
    INELIGIBLE,
    LOST_WAITING,
    MISSING,
    RANDOMIZED,
    SCREEN_FAILURE,
    PopulationModel,
)
from platform_sim.runner import run, run_chunk
from platform_sim.spec import Spec
from platform_sim.storyboard import replay
from platform_sim.streams import PATIENTS, Streams

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "screening"
Z = 4.0  # tolerance in Monte Carlo standard errors


def shipped(kind: str, name: str) -> dict:
    return yaml.safe_load((ROOT / f"{kind}s" / f"{name}.yaml").read_text())


def spec_of(design: dict, scenario: str) -> Spec:
    path = str(ROOT / "scenarios" / f"{scenario}.yaml")
    return Spec.from_models(
        parse_design(copy.deepcopy(design), f"<{design['name']}>"),
        parse_scenario(shipped("scenario", scenario), path),
        None,
        path,
    )


def platform_without_strata() -> dict:
    d = shipped("design", "pioneer_platform")
    d["name"] = "platform_without_strata"
    del d["strata"]
    del d["platform"]["graduation"]["signatures"]
    return d


def eligible_positions(streams, n_screened: int, ineligible: float) -> np.ndarray:
    """(T, N) whether each screened patient is clinically eligible, from the eligibility stream itself."""
    return streams.uniform(PATIENTS, "screening:eligibility", 0, n_screened) >= ineligible


# --------------------------------------------------------------------------- 1. who waits


@pytest.mark.parametrize(
    "design, waits",
    [
        ("allcomer_fixed", False),
        ("allcomer_rar", False),
        ("pioneer_rar", False),
        ("s1400f_two_stage", False),
        ("lungmap_umbrella", True),
        ("battle_stratified_rar", True),
        ("hierarchical_borrowing", True),
        ("adaptive_enrichment", True),
        ("pioneer_platform", True),
    ],
)
def test_each_family_says_whether_its_design_waits_for_a_biomarker_result(design, waits):
    assert Spec.load(design, "pioneer_alternative").compiled.needs_biomarker_result is waits


def test_benchmark_design_on_a_population_without_screening_tests():
    assert Spec.load("benchmark_four_arm", "benchmark_four_arm").compiled.needs_biomarker_result is False


def test_a_platform_without_strata_and_strata_by_clinical_characteristics_wait_for_nothing():
    assert spec_of(platform_without_strata(), "pioneer_alternative").compiled.needs_biomarker_result is False
    clinical = shipped("design", "hierarchical_borrowing")
    clinical["strata"]["by"] = ["ecog", "histology"]  # known at screening, without an assay
    assert spec_of(clinical, "pioneer_alternative").compiled.needs_biomarker_result is False
    mixed = shipped("design", "hierarchical_borrowing")
    mixed["strata"]["by"] = ["ecog", "atm"]
    assert spec_of(mixed, "pioneer_alternative").compiled.needs_biomarker_result is True


# --------------------------------------------------------------------------- 2. designs that wait: unchanged


def _reference_module():
    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_designs_that_wait_for_a_biomarker_result_are_bit_identical_to_the_reference():
    """An umbrella, stratified adaptive randomization, hierarchical borrowing, adaptive enrichment and a
    stratified platform, and the screened patients themselves: every array equal to the one the
    engine wrote when it charged every design the assay. Counts, decisions, times and every other
    integer or boolean array are equal bit for bit; floating-point arrays are equal to within 1e-12,
    the bound to which the vectorized quadrature grid is held against the node-by-node evaluation
    that wrote the reference (tests/test_posterior_fast.py; the posterior probabilities differ from
    it by rounding, at most a few 1e-16 here). The floating-point arrays were rewritten once, for
    the grid's smooth six-node rule (make_reference.py says how much they moved)."""
    reference = np.load(REFERENCE / "reference.npz", allow_pickle=False)
    now = _reference_module().reference_arrays()
    assert sorted(now) == sorted(reference.files)
    for name in reference.files:
        if np.issubdtype(reference[name].dtype, np.floating):
            np.testing.assert_allclose(now[name], reference[name], rtol=0, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(now[name], reference[name], err_msg=name)
    designs = {name.split("/")[0] for name in reference.files}
    assert {"lungmap_umbrella", "battle_stratified_rar", "pioneer_platform", "cohort"} <= designs


# --------------------------------------------------------------------------- 3. all-comer designs: eligibility only


@pytest.fixture(scope="module")
def allcomer_null():
    """allcomer_fixed (one analysis of 400 patients) on the null scenario: 17% clinically ineligible."""
    spec = Spec.load("allcomer_fixed", "pioneer_null")
    return spec, run(spec, 400, 11, chunk_size=200)


def test_an_allcomer_design_screens_one_over_the_eligible_share_per_randomized_patient(allcomer_null):
    spec, res = allcomer_null
    p_eligible = 1.0 - spec.scenario.population.screening.ineligible
    ratio = res.n_screened / res.n_randomized
    mean, mcse = ratio.mean(), ratio.std(ddof=1) / math.sqrt(ratio.size)
    assert abs(mean - 1.0 / p_eligible) <= Z * mcse, (mean, 1.0 / p_eligible, mcse)
    # the assay funnel would have charged it 1 / 0.757 = 1.32 screened per randomized patient
    charged = 1.0 / expected_funnel(spec.scenario.population)["randomized"]
    assert charged - mean > 50 * mcse


def test_an_allcomer_design_randomizes_the_eligible_patients_in_screening_order(allcomer_null):
    """n_screened is the position of the 400th eligible patient (read from the eligibility stream), and
    every screened patient is either randomized or ineligible: nobody fails an assay or is lost waiting."""
    spec, res = allcomer_null
    ineligible = spec.scenario.population.screening.ineligible
    ts = Streams(11).for_trials(np.arange(400))
    eligible = eligible_positions(ts, 4 * BLOCK, ineligible)
    assert (eligible.sum(axis=1) >= 400).all()
    fourhundredth = np.argmax(np.cumsum(eligible, axis=1) == 400, axis=1)
    np.testing.assert_array_equal(res.n_screened, fourhundredth + 1)
    enrolled = spec.patients.enrol(
        ts, 400, "dcr12", ["docetaxel"], times=True, keep_cohort=True, biomarker_result=False
    )
    reasons = enrolled.kept.reason
    assert set(np.unique(reasons)) == {RANDOMIZED, INELIGIBLE}
    np.testing.assert_array_equal(reasons == RANDOMIZED, eligible[:, : reasons.shape[1]])
    assert (enrolled.kept.wait_days == 0).all()


def test_an_allcomer_trial_lasts_until_its_last_patient_arrives_plus_the_assessment():
    """pioneer_rar stops early in some trials: its duration is the arrival of the last patient it
    randomized (no assay wait) plus the 12 weeks of the endpoint, and the replayed trial shows every
    patient ready on arrival."""
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    ts = Streams(5).for_trials(np.arange(60))
    res = run_chunk(spec, ts)
    assert (res.trial_values["p_stopped_early"]).any() and not res.trial_values["p_stopped_early"].all()
    enrolled = spec.patients.enrol(
        ts, 240, "dcr12", ["docetaxel"], times=True, keep_cohort=True, biomarker_result=False
    )
    rows = np.arange(60)
    last = enrolled.screened_index[rows, res.n_randomized - 1]
    np.testing.assert_array_equal(res.n_screened, last + 1)
    np.testing.assert_allclose(
        res.duration_months, enrolled.kept.arrival[rows, last] + 12 / WEEKS_PER_MONTH, rtol=1e-12
    )
    story = replay(spec, 5, 7, 60, 60)
    p = story.patients
    assert set(p["screening"]) == {"randomized", "ineligible"}
    np.testing.assert_array_equal(p["ready_months"], p["arrival_months"])


def test_a_two_stage_design_treats_the_eligible_patients_in_screening_order():
    spec = Spec.load("s1400f_two_stage", "pioneer_alternative")
    ts = Streams(9).for_trials(np.arange(300))
    res = run_chunk(spec, ts)
    eligible = eligible_positions(ts, 2 * BLOCK, spec.scenario.population.screening.ineligible)
    position = np.argmax(np.cumsum(eligible, axis=1) == res.n_randomized[:, None], axis=1)
    np.testing.assert_array_equal(res.n_screened, position + 1)


def test_a_platform_without_strata_randomizes_eligible_patients_on_arrival():
    spec = spec_of(platform_without_strata(), "pioneer_alternative")
    story = replay(spec, 3, 1, 4, 4)
    p = story.patients
    assert set(p["screening"]) == {"randomized", "ineligible"}
    np.testing.assert_array_equal(p["ready_months"], p["arrival_months"])
    assert (p.loc[p["screening"] == "randomized", "randomizable"]).all()
    assert (p["reported_atm"] == "").all() and (p["reported_ecog"] != "").all()


def test_a_biomarker_design_still_pays_the_assay():
    """The replayed trial of an umbrella: screen failures, patients lost while waiting, and waits."""
    spec = Spec.load("lungmap_umbrella", "pioneer_alternative")
    p = replay(spec, 1, 0, 4, 4).patients
    assert {"randomized", "ineligible", "lost_while_waiting"} <= set(p["screening"])
    assert (p["ready_months"] > p["arrival_months"]).mean() > 0.7


# --------------------------------------------------------------------------- 4. load-time checks follow the funnel


def test_the_platform_trigger_check_counts_the_patients_the_design_actually_randomizes():
    """An analysis every N newly randomized patients, N between the patients expected by the maximum
    duration with and without the assay: possible for a platform that randomizes on arrival, an
    analysis that can never fire for one that waits for the assay."""
    population = parse_scenario(
        shipped("scenario", "pioneer_alternative"), str(ROOT / "scenarios" / "pioneer_alternative.yaml")
    ).population
    d = platform_without_strata()
    months = d["platform"]["max_duration_months"]
    with_assay = expected_randomizable(population, months)
    without = expected_randomizable(population, months, biomarker_result=False)
    assert without > with_assay + 100
    every = int(with_assay) + 50
    d["platform"]["interims"] = {"every_enrolled": every}
    assert spec_of(d, "pioneer_alternative").compiled.needs_biomarker_result is False  # compiles
    stratified = copy.deepcopy(d)
    stratified["strata"] = {"by": ["atm"]}
    with pytest.raises(ConfigError) as info:
        spec_of(stratified, "pioneer_alternative")
    (problem,) = info.value.problems
    assert problem.path == "design.platform.interims.every_enrolled" and "can never fire" in problem.message
    assert f"only {with_assay:.0f} patients are expected" in problem.message


# --------------------------------------------------------------------------- 5. properties


def _settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )


MARKERS = {
    "histology": {"levels": ["nonsquamous", "squamous"], "probabilities": [0.7, 0.3]},
    "kras": {
        "given": ["histology"],
        "prevalence": {"nonsquamous": 0.3, "squamous": 0.05},
        "tissue": {"sensitivity": 0.9, "specificity": 0.95},
        "liquid": {"sensitivity": 0.77, "specificity": 0.99},
    },
    "stk11": {"prevalence": 0.15, "tissue": {"sensitivity": 0.95, "specificity": 0.98, "failure": 0.04}},
    "pdl1": {"levels": ["lt1", "1to49", "ge50"], "probabilities": [0.5, 0.3, 0.2], "tissue": {"failure": 0.06}},
    "ecog": {"levels": ["ps0", "ps1"], "probabilities": [0.35, 0.65]},
}
ASSAYED = ("kras", "stk11", "pdl1")


def turnarounds():
    return st.fixed_dictionaries({"median_days": st.floats(0.0, 60.0), "sdlog": st.sampled_from([0.0, 0.3, 1.2])})


@st.composite
def populations(draw) -> dict:
    """A population with random screening (assays or none, a plasma fallback or none, any loss hazard)."""
    screening: dict = {"ineligible": draw(st.floats(0.0, 0.9))}
    markers = copy.deepcopy(MARKERS)
    if draw(st.booleans()):
        screening["tissue"] = {"failure": draw(st.floats(0.0, 0.95)), "turnaround": draw(turnarounds())}
        if draw(st.booleans()):
            screening["liquid"] = {"detectable": draw(st.floats(0.05, 1.0)), "turnaround": draw(turnarounds())}
        else:
            del markers["kras"]["liquid"]
        screening["loss_hazard_per_day"] = draw(st.sampled_from([0.0, 0.004, 0.05]))
    else:
        for m in ASSAYED:
            markers[m].pop("tissue", None)
            markers[m].pop("liquid", None)
    return {
        "name": "random",
        "accrual": {"rate_per_month": 30, "ramp_up_months": 3},
        "screening": screening,
        "markers": markers,
        "derived": {"kl": {"all_of": ["kras", "stk11"]}},
    }


def virtual_patients(population: dict) -> VirtualPatients:
    return VirtualPatients(
        parse_scenario(
            {
                "name": "s",
                "population": population,
                "endpoints": {"y": {"kind": "binary"}},
                "treatments": {"a": {"rates": {"y": 0.5}}},
            }
        )
    )


def funnel_from_the_random_numbers(pm: PopulationModel, ts, b: int, profile: np.ndarray):
    """The documented assay funnel of block ``b``, from the raw uniforms: reasons, waits (days, float32)
    and the reported value of each marker of ASSAYED (MISSING without a result; the true value when the
    scenario measures it without an assay)."""
    sc = pm.config.screening

    def u(name):
        return ts.uniform(PATIENTS, name, b * BLOCK, BLOCK)

    def turnaround(name, t):
        if t.sdlog == 0:
            return np.full(profile.shape[:2], t.median_days, dtype=np.float32)
        return (t.median_days * np.exp(t.sdlog * ndtri(u(name)))).astype(np.float32)

    shape = profile.shape[:2]
    tissue_ok = liquid_ok = np.zeros(shape, dtype=bool)
    wait = np.zeros(shape, dtype=np.float32)
    failure = lost = np.zeros(shape, dtype=bool)
    if sc.tissue is not None:
        tissue_ok = u("screening:tissue") >= sc.tissue.failure
        wait = turnaround("screening:tissue_days", sc.tissue.turnaround)
        if sc.liquid is not None:
            liquid_ok = ~tissue_ok & (u("screening:liquid") < sc.liquid.detectable)
            wait = (
                wait + np.where(tissue_ok, np.float32(0), turnaround("screening:liquid_days", sc.liquid.turnaround))
            ).astype(np.float32)
        failure = ~tissue_ok & ~liquid_ok
        if sc.loss_hazard_per_day > 0:
            lost = u("screening:loss") < -np.expm1(-sc.loss_hazard_per_day * wait)
    ineligible = u("screening:eligibility") < sc.ineligible
    reason = np.select([ineligible, lost, failure], [INELIGIBLE, LOST_WAITING, SCREEN_FAILURE], RANDOMIZED)
    calls = {}
    for name in ASSAYED:
        m = pm.config.markers[name]
        i = pm.index[name]
        if m.tissue is None and m.liquid is None:  # no assay in the scenario: known at screening
            calls[name] = profile[..., i]
            continue
        call = np.full(shape, MISSING, dtype=np.int8)
        for assay, ok in (("tissue", tissue_ok), ("liquid", liquid_ok)):
            acc = getattr(m, assay)
            if acc is None:
                continue
            truth = profile[..., i]
            if len(pm.levels[i]) == 2:
                u_call = u(f"assay:{assay}:{name}")
                value = np.where(truth == 1, u_call < acc.sensitivity, u_call >= acc.specificity).astype(np.int8)
            else:
                value = truth
            call = np.where(ok & (u(f"assay_failure:{assay}:{name}") >= acc.failure), value, call)
        calls[name] = call
    return reason.astype(np.int8), wait, calls


@_settings(25)
@given(population=populations(), seed=st.integers(0, 2**32 - 1), first_trial=st.integers(0, 10**6), b=st.integers(0, 3))
def test_with_the_assay_the_funnel_is_the_documented_one_bit_for_bit(population, seed, first_trial, b):
    pm = virtual_patients(population).population
    ts = Streams(seed).for_trials(np.arange(first_trial, first_trial + 3))
    block, _ = pm.block(ts, b, np.zeros(3))
    reason, wait, calls = funnel_from_the_random_numbers(pm, ts, b, block.profile)
    np.testing.assert_array_equal(block.reason, reason)
    np.testing.assert_array_equal(block.wait_days, wait)
    for name, call in calls.items():
        np.testing.assert_array_equal(block.observed[..., pm.index[name]], call, err_msg=name)


@_settings(25)
@given(population=populations(), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 700))
def test_without_the_assay_the_randomizable_patients_are_the_eligible_ones_in_screening_order(population, seed, n):
    vp = virtual_patients(population)
    pm = vp.population
    ts = Streams(seed).for_trials(np.arange(4))
    carry_a, carry_b = np.zeros(4), np.zeros(4)
    for b in range(2):
        assay, carry_a = pm.block(ts, b, carry_a)
        none, carry_b = pm.block(ts, b, carry_b, biomarker_result=False)
        np.testing.assert_array_equal(none.arrival, assay.arrival)
        np.testing.assert_array_equal(none.profile, assay.profile)
        np.testing.assert_array_equal(none.reason == INELIGIBLE, assay.reason == INELIGIBLE)
        assert np.isin(none.reason, (RANDOMIZED, INELIGIBLE)).all() and (none.wait_days == 0).all()
        for name in ASSAYED + ("kl",):
            needs_assay = pm.config.screening.tissue is not None
            seen = none.observed[..., pm.index[name]]
            if needs_assay:
                assert (seen == MISSING).all(), name
            else:  # no assay in the scenario: every characteristic is clinical, and known
                np.testing.assert_array_equal(seen, none.profile[..., pm.index[name]])
        np.testing.assert_array_equal(none.observed[..., pm.index["ecog"]], none.profile[..., pm.index["ecog"]])
    enrolled = vp.enrol(ts, n, "y", ["a"], biomarker_result=False)
    p_ineligible = pm.config.screening.ineligible
    # enough screened patients for n eligible ones in every trial (10,000 blocks is the engine's limit)
    width = BLOCK * max(2, math.ceil((n + 8 * math.sqrt(n) + 64) / max(1 - p_ineligible, 1e-3) / BLOCK))
    eligible = eligible_positions(ts, width, p_ineligible)
    if (eligible.sum(axis=1) >= n).all():
        expected = np.stack([np.flatnonzero(row)[:n] for row in eligible])
        np.testing.assert_array_equal(enrolled.screened_index, expected)
