"""Stratified designs draw a patient's outcome under the treatment given when the patient is counted
(``Enrolment(..., outcomes_later=True)``): the same values as every treatment's potential outcomes
drawn up front, bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_outcomes import SCENARIO
from test_strata import _every_array

from platform_sim import runner
from platform_sim.config.load import parse_scenario
from platform_sim.families import stratified as stratified_family
from platform_sim.outcomes import Enrolment, OutcomesModel, VirtualPatients, _event_times_from_tables
from platform_sim.spec import Spec
from platform_sim.streams import OUTCOMES, Streams

TREATMENTS = list(SCENARIO["treatments"])


def _scenario(**changes):
    sc = copy.deepcopy(SCENARIO)
    sc.update(copy.deepcopy(changes))
    return parse_scenario(sc)


def _coupled():
    """The scenario with a second time to event (os) coupled to pfs, and a landmark of it."""
    sc = copy.deepcopy(SCENARIO)
    sc["endpoints"]["os"] = {"kind": "time_to_event"}
    sc["endpoints"]["alive12"] = {"kind": "landmark", "of": "os", "weeks": 12}
    for t in sc["treatments"].values():
        if "relative_to" not in t:
            t["outcomes"]["os"] = {"median_months": 9.0}
    sc["copula"] = {"first": "pfs", "second": "os", "correlation": 0.5}
    return parse_scenario(sc)


TRENDS = {"pfs": {"per_year": -0.4, "treatments": ["x", "pw"]}, "orr": {"per_year": 0.5}}


def test_outcomes_are_drawn_alone_only_for_binary_and_landmark_endpoints_of_their_own_uniform():
    plain = VirtualPatients(_scenario()).outcomes
    assert plain.drawn_alone("orr", TREATMENTS) and plain.drawn_alone("dcr12", TREATMENTS)
    assert not plain.drawn_alone("pfs", TREATMENTS)  # a time to event: censored where follow-up is modelled
    assert plain.outcome_tables("pfs", tuple(TREATMENTS)) is None
    assert VirtualPatients(_scenario(time_trend=TRENDS)).outcomes.drawn_alone("dcr12", TREATMENTS)
    dropout = VirtualPatients(_scenario(dropout={"probability": 0.1, "before_weeks": 8})).outcomes
    assert not dropout.drawn_alone("orr", TREATMENTS) and not dropout.drawn_alone("dcr12", TREATMENTS)
    coupled = VirtualPatients(_coupled()).outcomes
    assert coupled.drawn_alone("dcr12", TREATMENTS)
    assert not coupled.drawn_alone("alive12", TREATMENTS)  # drawn from pfs's uniform too
    joint = Spec.load("designs/seamless_pfs_os.yaml", "scenarios/pfs_os_effect.yaml").scenario
    joint_model = VirtualPatients(joint.model_copy(update={"dropout": None})).outcomes
    assert joint_model.joint_roles
    assert not any(joint_model.drawn_alone(ep, list(joint.treatments)) for ep in joint_model.joint_roles)
    with pytest.raises(ValueError, match="cannot be drawn one treatment at a time"):
        Enrolment(
            VirtualPatients(_scenario()), Streams(1).for_trials(np.arange(2)), "pfs", TREATMENTS, outcomes_later=True
        )


@pytest.mark.parametrize("trend,reference", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("ep", ["orr", "dcr12"])
def test_an_outcome_drawn_for_one_patient_and_treatment_is_its_potential_outcome(ep, trend, reference):
    """OutcomesModel.outcomes_at, for scattered patients each under one treatment, gives the entries
    of VirtualPatients.enrol's potential outcomes, bit for bit: profile-dependent odds and hazards,
    piecewise hazards (one of them zero) with a delayed effect, a calendar-time trend of some
    treatments; from the compiled tables, and treatment by treatment (``reference``, and with a
    trend)."""
    vp = VirtualPatients(_scenario(**({"time_trend": TRENDS} if trend else {})))
    tables = vp.outcomes.outcome_tables(ep, tuple(TREATMENTS))
    assert (tables is None) == trend
    if ep == "dcr12" and not trend:
        assert tables.n_pieces.max() >= 3 and (tables.value == 0).any()
    ts = Streams(23).for_trials(np.array([4, 0, 2**32 - 3, 11, 7]))
    enrolled = vp.enrol(ts, 400, ep, TREATMENTS, times=True, keep_cohort=True)
    codes = np.take_along_axis(enrolled.cohort.profile, enrolled.screened_index[..., None], axis=1)
    # the enrolment that leaves the outcomes for later keeps the combinations of levels instead
    later = Enrolment(vp, ts, ep, TREATMENTS, times=True, outcomes_later=True).take(np.arange(ts.n_trials), 400)
    assert later.outcomes.shape == (ts.n_trials, 400, 0)
    np.testing.assert_array_equal(later.combination, vp.outcomes.combinations(ep, TREATMENTS, codes))
    assert np.unique(later.combination).size > 4
    np.testing.assert_array_equal(later.screened_index, enrolled.screened_index)
    rng = np.random.default_rng(9)
    rows = rng.integers(0, ts.n_trials, size=2000)
    slots = rng.integers(0, 400, size=2000)
    which = rng.integers(0, len(TREATMENTS), size=2000)
    got = vp.outcomes.outcomes_at(
        ts,
        ep,
        TREATMENTS,
        which,
        rows,
        enrolled.screened_index[rows, slots],
        later.combination[rows, slots],
        enrolled.randomized_at[rows, slots],
        reference=reference,
    )
    want = enrolled.outcomes[rows, slots, which]
    np.testing.assert_array_equal(got, want)
    if ep == "dcr12" and not trend:  # the tables' event times are time_to_event's, bit for bit
        width = int(enrolled.screened_index.max()) + 1  # each treatment's uniforms at the patients
        u = np.stack([vp.outcomes.uniform(ts, 0, width, "pfs", t) for t in TREATMENTS], axis=-1)
        u = u[rows, enrolled.screened_index[rows, slots], which]
        times = _event_times_from_tables(
            which, later.combination[rows, slots], -np.log(u), tables.value, tables.starts, tables.n_pieces
        )
        for k, t in enumerate(TREATMENTS):
            sel = which == k
            expected = vp.outcomes.time_to_event("pfs", t, codes[rows[sel], slots[sel]], None, u[sel])
            np.testing.assert_array_equal(times[sel], expected, err_msg=t)
    for k in range(len(TREATMENTS)):
        assert 0 < want[which == k].mean() < 1


def test_uniforms_at_scattered_positions_are_those_of_the_stream():
    ts = Streams(3).for_trials(np.array([9, 2**32 - 1, 0, 5]))
    rng = np.random.default_rng(1)
    rows, positions = rng.integers(0, 4, size=500), rng.integers(0, 3000, size=500)
    whole = ts.uniform(OUTCOMES, "outcome:orr:x", 0, 3000)
    np.testing.assert_array_equal(ts.uniform_at(OUTCOMES, "outcome:orr:x", rows, positions), whole[rows, positions])
    other = ts.uniform(OUTCOMES, "outcome:orr:y", 0, 3000)
    which = rng.integers(0, 2, size=500)
    mixed = ts.uniform_at(OUTCOMES, ["outcome:orr:x", "outcome:orr:y"], rows, positions, which)
    np.testing.assert_array_equal(mixed, np.where(which == 0, whole[rows, positions], other[rows, positions]))
    assert ts.uniform_at(OUTCOMES, "outcome:orr:x", rows[:0], positions[:0]).shape == (0,)
    with pytest.raises(ValueError, match="one position per row"):
        ts.uniform_at(OUTCOMES, "outcome:orr:x", rows, positions[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        ts.uniform_at(OUTCOMES, "outcome:orr:x", rows[:1], np.array([-1]))
    with pytest.raises(ValueError, match="give which="):
        ts.uniform_at(OUTCOMES, ["outcome:orr:x", "outcome:orr:y"], rows, positions)
    with pytest.raises(ValueError, match="one index below 2"):
        ts.uniform_at(OUTCOMES, ["outcome:orr:x", "outcome:orr:y"], rows, positions, which + 1)
    with pytest.raises(ValueError, match="one quantity was given"):
        ts.uniform_at(OUTCOMES, "outcome:orr:x", rows, positions, which)
    with pytest.raises(ValueError, match=r"batch rows, in \[0, 4\)"):
        ts.uniform_at(OUTCOMES, "outcome:orr:x", np.array([-1]), np.array([3]))
    with pytest.raises(ValueError, match="rows must be integers"):
        ts.uniform_at(OUTCOMES, "outcome:orr:x", np.array([1.5]), np.array([3]))


def test_outcomes_at_refuses_what_it_cannot_draw():
    ts = Streams(3).for_trials(np.arange(4))
    one = (np.array([0]), np.array([1]), np.array([7]))
    plain = VirtualPatients(_scenario()).outcomes
    with pytest.raises(ValueError, match=r"one combination of levels in \[0, "):
        plain.outcomes_at(ts, "dcr12", TREATMENTS, *one, np.array([10**6]), None)
    with pytest.raises(ValueError, match="cannot be drawn one treatment at a time"):
        plain.outcomes_at(ts, "pfs", TREATMENTS, *one, np.array([0]), None)
    drift = VirtualPatients(_scenario(time_trend=TRENDS)).outcomes
    with pytest.raises(ValueError, match="randomization month"):
        drift.outcomes_at(ts, "dcr12", TREATMENTS, *one, np.array([0]), None)


def test_a_binary_outcome_of_one_probability_per_treatment_drawn_when_counted():
    """Without prognostic factors each treatment has one response probability (the tables' constant
    branch): the outcomes are still the entries of the full array."""
    vp = VirtualPatients(_scenario(prognostic={}))
    treatments = ["docetaxel", "pw", "pw_rel"]
    assert all(vp.outcomes._constant_probability("orr", t) is not None for t in treatments)
    ts = Streams(31).for_trials(np.arange(6))
    enrolled = vp.enrol(ts, 300, "orr", treatments, times=True)
    later = Enrolment(vp, ts, "orr", treatments, times=True, outcomes_later=True).take(np.arange(6), 300)
    rng = np.random.default_rng(4)
    rows, slots, which = rng.integers(0, 6, 1500), rng.integers(0, 300, 1500), rng.integers(0, 3, 1500)
    got = vp.outcomes.outcomes_at(
        ts, "orr", treatments, which, rows, enrolled.screened_index[rows, slots], later.combination[rows, slots], None
    )
    np.testing.assert_array_equal(got, enrolled.outcomes[rows, slots, which])
    assert 0 < got.mean() < 1


def _without_dropout(design: str, scenario: str) -> Spec:
    spec = Spec.load(design, scenario)
    return Spec.from_models(spec.design, spec.scenario.model_copy(update={"dropout": None}))


@pytest.mark.parametrize(
    "design,scenario",
    [
        ("hierarchical_borrowing", "atm_ceralasertib"),  # pools that grow, some of them twice
        ("battle_stratified_rar", "pioneer_alternative"),
        ("adaptive_enrichment", "trop2_adc"),
        ("battle", "battle_kim2011"),  # the hierarchical probit model
        ("lungmap_umbrella", "control_drift"),  # a calendar-time trend of the control's hazard
    ],
)
def test_a_stratified_run_with_outcomes_drawn_when_counted_is_the_run_with_every_outcome_drawn(
    design, scenario, monkeypatch
):
    """Every per-trial array of a run whose pools keep the patients' profiles and draw each outcome
    under the treatment given equals that of a run whose pools hold every treatment's outcome."""
    spec = Spec.load(design, scenario) if scenario != "control_drift" else _without_dropout(design, scenario)
    treatments = list(spec.compiled.rules.treatments)
    assert spec.patients.outcomes.drawn_alone(spec.design.endpoint.name, treatments)
    if scenario == "control_drift":
        assert spec.scenario.time_trend
    ss = Streams(12).for_trials(np.arange(40, 200))
    appended = []
    real_append = stratified_family.Pool._append

    def counting_append(self, rows, size, new):
        appended.append(self.combination is not None)
        return real_append(self, rows, size, new)

    monkeypatch.setattr(stratified_family.Pool, "_append", counting_append)
    later = _every_array(runner.run_chunk(spec, ss))
    if design == "hierarchical_borrowing":
        assert appended and all(appended), "the test needs pools that grow"
    appended.clear()
    monkeypatch.setattr(OutcomesModel, "drawn_alone", lambda self, ep, treatments: False)
    up_front = _every_array(runner.run_chunk(spec, ss))
    if design == "hierarchical_borrowing":
        assert appended and not any(appended)
    assert later.keys() == up_front.keys()
    for name in later:
        np.testing.assert_array_equal(later[name], up_front[name], err_msg=name)


def test_a_pools_outcome_under_the_treatment_given_is_the_one_of_every_treatments_outcomes():
    """Pool.outcomes_given reads each patient's outcome under its arm's treatment (arms that share
    a treatment, in any order), before and after the pool grows: the entry of the pool that holds
    every treatment's outcomes."""
    spec = Spec.load("hierarchical_borrowing", "atm_ceralasertib")
    compiled = spec.compiled
    ep, treatments = compiled.design.endpoint.name, list(compiled.rules.treatments)
    ts = Streams(4).for_trials(np.arange(50, 80))
    pools = {}
    for later in (False, True):
        more = Enrolment(
            compiled.patients,
            ts,
            ep,
            treatments,
            times=True,
            biomarker_result=compiled.needs_biomarker_result,
            characteristics=list(compiled.plan.markers),
            outcomes_later=later,
        )
        pools[later] = stratified_family.Pool(compiled.plan, ts, more.take(np.arange(ts.n_trials), 120), more, 1000)
    assert pools[False].combination is None and pools[True].outcomes is None
    rng = np.random.default_rng(2)
    arm_treatment = np.array([2, 0, 2, 4, 1, 3, 0], dtype=np.int64)  # more arms than treatments
    assert arm_treatment.max() < len(treatments)
    for grown in (False, True):
        if grown:
            for pool in pools.values():
                pool.grow(np.array([29, 4, 11]))
        rows = np.array([4, 0, 29, 11, 17])
        # positions anywhere in each row's patients (the grown rows' new ones too)
        at = pools[True].start[rows][:, None] + (rng.random((rows.size, 90)) * pools[True].avail[rows][:, None]).astype(
            int
        )
        np.testing.assert_array_equal(pools[True].start, pools[False].start)
        arms = rng.integers(-1, arm_treatment.size, size=at.shape)
        got = pools[True].outcomes_given(rows, at, arms, arm_treatment)
        want = np.where(arms >= 0, pools[False].outcomes[at, arm_treatment[np.maximum(arms, 0)]], False)
        assert got.shape == at.shape + (1,)
        np.testing.assert_array_equal(got[..., 0], want)
        assert 0 < want[arms >= 0].mean() < 1
