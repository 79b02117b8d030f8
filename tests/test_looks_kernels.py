"""The compiled per-look bookkeeping of designs with looks against the numpy passes it replaces."""

import copy
import dataclasses

import numpy as np
import pytest
from test_outcomes import SCENARIO as OUTCOMES_SCENARIO

from platform_sim.allocation import tally
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.families.looks import (
    DrawnOnDemand,
    _after_decisions,
    _follow_up,
    _take_batch,
    look_months,
    look_months_reference,
    run_looks,
)
from platform_sim.outcomes import OutcomesModel, VirtualPatients
from platform_sim.results import ACTIVE, CONTROL, INFERIOR, STOP_MAX, SUPERIOR
from platform_sim.rules import CONTINUE
from platform_sim.runner import run_chunk
from platform_sim.spec import Spec
from platform_sim.streams import Streams


def test_batch_counts_and_follow_up_equal_tally_and_segment_sums():
    rng = np.random.default_rng(3)
    n_trials, n_arms, n_treat = 9, 4, 3
    bounds = np.array([0, 5, 12, 20, 31, 40])
    outcomes = rng.random((n_trials, 40, n_treat)) < 0.4
    arm_treatment = np.array([0, 1, 2, 1], dtype=np.int64)
    seg_n = np.zeros((n_trials, 5, n_arms), dtype=np.int32)
    seg_y = np.zeros_like(seg_n)
    randomized_n = np.zeros((n_trials, n_arms), dtype=np.int64)
    followed_n, followed_y = np.zeros_like(randomized_n), np.zeros_like(randomized_n)
    ref_n, ref_y = seg_n.copy(), seg_y.copy()
    rows = np.array([0, 2, 3, 7, 8])
    for first, end in ((0, 2), (2, 3), (3, 5)):  # three batches of segments
        width = bounds[end] - bounds[first]
        arms = rng.integers(-1, n_arms, size=(rows.size, width)).astype(np.int8)
        _take_batch(rows, arms, outcomes, arm_treatment, bounds, first, end, seg_n, seg_y, randomized_n)
        for seg in range(first, end):
            s0, s1 = bounds[seg] - bounds[first], bounds[seg + 1] - bounds[first]
            n, y = tally(arms[:, s0:s1], outcomes[rows, bounds[seg] : bounds[seg + 1]], arm_treatment, n_arms)
            ref_n[rows, seg], ref_y[rows, seg] = n, y
    np.testing.assert_array_equal(seg_n, ref_n)
    np.testing.assert_array_equal(seg_y, ref_y)
    np.testing.assert_array_equal(randomized_n, ref_n.sum(axis=1))
    assert randomized_n[rows].sum() > 0 and randomized_n[[1, 4, 5, 6]].sum() == 0
    _follow_up(rows, seg_n, seg_y, 1, 4, followed_n, followed_y)
    np.testing.assert_array_equal(followed_n[rows], ref_n[rows, 1:4].sum(axis=1))
    np.testing.assert_array_equal(followed_y[rows], ref_y[rows, 1:4].sum(axis=1))
    assert followed_n[[1, 4, 5, 6]].sum() == 0


def test_after_decisions_writes_back_and_settles_stops_as_the_numpy_passes():
    rng = np.random.default_rng(8)
    n_trials, n_arms, look = 12, 3, 4
    codes = np.array([ACTIVE, CONTROL, INFERIOR, SUPERIOR], dtype=np.int8)
    status = rng.choice(codes, size=(n_trials, n_arms))
    status_look = rng.integers(-1, look, size=(n_trials, n_arms)).astype(np.int16)
    declared = rng.random((n_trials, n_arms)) < 0.3
    declared_look = np.where(declared, 1, -1).astype(np.int16)
    control = rng.integers(-1, n_arms, size=n_trials)
    control_changed = np.zeros(n_trials, dtype=bool)
    stop_look = np.full(n_trials, 9, dtype=np.int16)
    stop_reason = np.zeros(n_trials, dtype=np.int8)
    running = np.ones(n_trials, dtype=bool)
    randomized_n = rng.integers(0, 6, size=(n_trials, n_arms))
    caps = np.array([5, 4, 5], dtype=np.int64)
    rows = np.array([0, 1, 3, 4, 6, 7, 9, 10, 11])
    st = rng.choice(codes, size=(rows.size, n_arms))
    sl = np.where(st != status[rows], look, status_look[rows]).astype(np.int16)
    dc = declared[rows] | (rng.random((rows.size, n_arms)) < 0.3)
    ctrl = rng.integers(-1, n_arms, size=rows.size)
    changed = rng.random(rows.size) < 0.5
    stop = np.where(rng.random(rows.size) < 0.3, 2, CONTINUE).astype(np.int64)
    state = [status, status_look, declared, declared_look, control, control_changed, stop_look, stop_reason, running]
    ref = [x.copy() for x in state]
    for last in (False, True):
        got = [x.copy() for x in state]
        out, in_trial, open_, ended = _after_decisions(
            rows, look, last, st, sl, dc, ctrl, changed, stop, caps, randomized_n, *got
        )
        # the numpy passes
        r_status, r_sl, r_dec, r_dl, r_ctrl, r_chg, r_sto, r_reason, r_run = [x.copy() for x in ref]
        r_dl[rows] = np.where(dc & ~r_dec[rows], look, r_dl[rows])
        r_status[rows], r_sl[rows], r_dec[rows], r_ctrl[rows], r_chg[rows] = st, sl, dc, ctrl, changed
        r_in = (st == ACTIVE) | (st == CONTROL)
        r_open = r_in & (randomized_n[rows] < caps[None, :])
        r_stop = np.where((stop == CONTINUE) & (last | ~r_open.any(axis=1)), STOP_MAX, stop)
        r_end = r_stop != CONTINUE
        r_sto[rows[r_end]], r_reason[rows[r_end]], r_run[rows[r_end]] = look, r_stop[r_end], False
        np.testing.assert_array_equal(out, r_stop)
        np.testing.assert_array_equal(in_trial, r_in)
        np.testing.assert_array_equal(open_, r_open)
        np.testing.assert_array_equal(ended, r_end)
        for a, b in zip(got, [r_status, r_sl, r_dec, r_dl, r_ctrl, r_chg, r_sto, r_reason, r_run]):
            np.testing.assert_array_equal(a, b)
        assert 0 < r_end.sum() < (rows.size if not last else rows.size + 1)


def test_look_months_equal_the_running_maximum_over_every_slot():
    from types import SimpleNamespace

    rng = np.random.default_rng(21)
    slot_month = np.cumsum(rng.exponential(0.3, size=(15, 60)), axis=1)
    slot_month[rng.random(slot_month.shape) < 0.2] = np.nan  # empty slots
    slot_month[3, :25] = np.nan  # nothing randomized before the second look
    slot_month[4] = np.nan  # nothing at all
    slot_month[5, 40] = np.inf
    rules = SimpleNamespace(randomized_n=np.array([10, 25, 40, 60]), followed_n=np.array([0, 10, 30, 60]))
    got = look_months(rules, slot_month[:, :60], 2.5)
    want = look_months_reference(rules, slot_month[:, :60], 2.5)
    np.testing.assert_array_equal(got, want)
    assert got[4].tolist() == [0.0, 2.5, 2.5, 2.5] and np.isfinite(got).all()


def _screening_scenario(**changes):
    """A population that loses patients in screening (so the randomizable patients' screened
    positions have gaps), with binary outcomes of one probability per treatment."""
    sc = copy.deepcopy(OUTCOMES_SCENARIO)
    sc.pop("prognostic")
    sc["endpoints"] = {"orr": {"kind": "binary"}}
    sc["treatments"] = {
        "docetaxel": {"outcomes": {"orr": {"rate": 0.14}}},
        "x": {"outcomes": {"orr": {"rate": 0.3}}},
        "y": {"relative_to": "x", "outcomes": {"orr": {"odds_ratio": 1.7}}},
    }
    sc.update(changes)
    return parse_scenario(sc)


def test_outcomes_drawn_on_demand_are_the_potential_outcomes_of_the_treatment_given():
    """_take_batch_on_demand counts what _take_batch counts on the array of every treatment's
    potential outcomes (VirtualPatients.enrol), patient by patient, where screening left gaps
    between the randomizable patients' positions."""
    vp = VirtualPatients(_screening_scenario())
    treatments = ["docetaxel", "x", "y"]
    probability = vp.outcomes.constant_binary("orr", treatments)
    assert probability is not None
    np.testing.assert_allclose(probability, [0.14, 0.3, 1.7 * 0.3 / 0.7 / (1 + 1.7 * 0.3 / 0.7)], rtol=1e-14)
    ts = Streams(41).for_trials(np.array([3, 0, 9, 2**32 - 2, 17, 5]))
    enrolled = vp.enrol(ts, 300, "orr", treatments)
    assert (np.diff(enrolled.screened_index, axis=1) > 1).any(), "the test needs screening losses"
    lazy = DrawnOnDemand.build(ts, "orr", treatments, probability, enrolled.screened_index)
    # the same patients without drawing their outcomes
    bare = vp.enrol(ts, 300, "orr", [])
    np.testing.assert_array_equal(bare.screened_index, enrolled.screened_index)
    assert lazy.shape == enrolled.outcomes.shape

    rng = np.random.default_rng(5)
    n_trials, n_arms = ts.n_trials, 4
    arm_treatment = np.array([0, 1, 2, 1], dtype=np.int64)
    bounds = np.array([0, 40, 100, 101, 230, 300])
    counts = {}
    for way in ("array", "on demand"):
        seg_n = np.zeros((n_trials, 5, n_arms), dtype=np.int32)
        seg_y = np.zeros_like(seg_n)
        randomized_n = np.zeros((n_trials, n_arms), dtype=np.int64)
        counts[way] = (seg_n, seg_y, randomized_n)
    rows = np.array([0, 1, 2, 3, 5])
    for first, end in ((0, 1), (1, 3), (3, 5)):
        arms = rng.integers(-1, n_arms, size=(rows.size, bounds[end] - bounds[first])).astype(np.int8)
        _take_batch(rows, arms, enrolled.outcomes, arm_treatment, bounds, first, end, *counts["array"])
        lazy.take_batch(rows, arms, arm_treatment, bounds, first, end, *counts["on demand"])
    for got, want in zip(counts["on demand"], counts["array"]):
        np.testing.assert_array_equal(got, want)
    seg_y = counts["array"][1]
    assert 0 < seg_y.sum() < counts["array"][0].sum() and counts["array"][2][4].sum() == 0


def test_outcomes_drawn_on_demand_where_every_screened_patient_is_randomizable():
    """Where every trial's screened positions are 0, 1, 2, ... DrawnOnDemand keeps no (T, n) array
    of them, and _take_batch_on_demand counts what it counts with that array spelled out; one
    position out of step anywhere (here the last of the last row) keeps the array."""
    ts = Streams(12).for_trials(np.array([7, 0, 2**32 - 1, 40]))
    n_trials, n_pos, n_arms = ts.n_trials, 250, 3
    counting = np.tile(np.arange(n_pos), (n_trials, 1))
    probability = np.array([0.2, 0.45, 0.7])
    lazy = DrawnOnDemand.build(ts, "orr", ["a", "b", "c"], probability, counting)
    assert lazy.positions.shape == (n_trials, 0) and lazy.shape == (n_trials, n_pos, n_arms)
    spelled = dataclasses.replace(lazy, positions=counting.astype(np.uint64))
    off = counting.copy()
    off[-1, -1] += 1
    assert DrawnOnDemand.build(ts, "orr", ["a", "b", "c"], probability, off).positions.shape == off.shape

    rng = np.random.default_rng(9)
    bounds = np.array([0, 60, 61, 180, 250])
    arm_treatment = np.array([2, 0, 1], dtype=np.int64)
    rows = np.array([3, 0, 2])
    counts = {}
    for name in ("counting", "spelled out"):
        counts[name] = (
            np.zeros((n_trials, 4, n_arms), dtype=np.int32),
            np.zeros((n_trials, 4, n_arms), dtype=np.int32),
            np.zeros((n_trials, n_arms), dtype=np.int64),
        )
    for first, end in ((0, 1), (1, 3), (3, 4)):
        arms = rng.integers(-1, n_arms, size=(rows.size, bounds[end] - bounds[first])).astype(np.int8)
        for name, drawn in (("counting", lazy), ("spelled out", spelled)):
            drawn.take_batch(rows, arms, arm_treatment, bounds, first, end, *counts[name])
    for got, want in zip(counts["counting"], counts["spelled out"]):
        np.testing.assert_array_equal(got, want)
    seg_n, seg_y, _ = counts["counting"]
    assert 0 < seg_y.sum() < seg_n.sum() and seg_n[1].sum() == 0


def test_outcomes_are_drawn_on_demand_only_where_one_probability_per_treatment_draws_them():
    treatments = ["docetaxel", "x", "y"]
    assert VirtualPatients(_screening_scenario()).outcomes.constant_binary("orr", treatments) is not None
    # a probability that depends on the patient, or on calendar time
    by_marker = _screening_scenario(prognostic={"orr": {"odds_ratios": {"stk11": 0.5}}})
    assert VirtualPatients(by_marker).outcomes.constant_binary("orr", treatments) is None
    assert VirtualPatients(by_marker).outcomes.constant_binary("orr", ["x"]) is None
    # dropout before the assessment
    dropout = _screening_scenario(dropout={"probability": 0.1, "before_weeks": 8})
    assert VirtualPatients(dropout).outcomes.constant_binary("orr", treatments) is None
    # a binary endpoint drawn from an illness-death model (response, PFS and OS drawn jointly), here
    # without the scenario's dropout, which would refuse it on its own
    with_dropout = Spec.load("designs/seamless_pfs_os.yaml", "scenarios/pfs_os_effect.yaml").scenario
    joint = VirtualPatients(with_dropout.model_copy(update={"dropout": None})).outcomes
    assert joint.joint_roles.get("orr") == "response" and joint.dropout_rate == 0
    assert joint.constant_binary("orr", list(joint.scenario.treatments)) is None
    # other kinds of endpoint
    tte = VirtualPatients(parse_scenario(copy.deepcopy(OUTCOMES_SCENARIO)))
    assert tte.outcomes.constant_binary("pfs", ["docetaxel"]) is None
    assert tte.outcomes.constant_binary("dcr12", ["docetaxel"]) is None
    # a trend over calendar time, of every treatment or of one
    for trend in ({"per_year": 0.2}, {"per_year": -0.1, "treatments": ["y"]}):
        drift = VirtualPatients(_screening_scenario(time_trend={"orr": trend})).outcomes
        assert drift.constant_binary("orr", treatments) is None
    assert drift.constant_binary("orr", ["docetaxel", "x"]) is not None


def _screening_design_spec() -> Spec:
    """A design with looks on the population that loses patients in screening: three arms, block
    randomization, outcomes followed up one look late."""
    design = {
        "name": "screened",
        "endpoint": {"name": "orr", "direction": "higher_is_better"},
        "arms": [{"name": t, "treatment": t} for t in ("docetaxel", "x", "y")],
        "control": "docetaxel",
        "prior": {"a": 1, "b": 1},
        "randomization": {"method": "fixed", "scheme": "block"},
        "looks": {"randomized_n": [60, 120, 180, 240], "followed_n": [30, 90, 150, 240]},
        "decisions": {"superiority": 0.99, "inferiority": 0.01},
        "clinically_relevant_difference": 0.1,
    }
    return Spec.from_models(parse_design(design), _screening_scenario())


@pytest.mark.parametrize("which", ["core design", "screening losses"])
def test_a_run_with_outcomes_drawn_on_demand_is_the_run_with_every_outcome_drawn(which, monkeypatch):
    """The core design (constant event rates), and a design on a population that loses patients in
    screening (gaps between the randomized patients' screened positions), give the same trials,
    every array bit for bit, with their outcomes drawn as patients are randomized and with every
    treatment's drawn up front."""
    if which == "core design":
        spec = Spec.load("designs/benchmark_four_arm.yaml", "scenarios/benchmark_four_arm.yaml")
    else:
        spec = _screening_design_spec()
    treatments = [a.treatment for a in spec.design.arms]
    assert spec.patients.outcomes.constant_binary(spec.design.endpoint.name, treatments) is not None
    ts = Streams(8).for_trials(np.arange(100, 260))
    if which == "screening losses":
        screened = spec.patients.enrol(ts, 240, "orr", [], biomarker_result=False).screened_index
        assert (np.diff(screened, axis=1) > 1).any(), "the test needs screening losses"
    drawn_on_demand = run_chunk(spec, ts).to_arrays()
    monkeypatch.setattr(OutcomesModel, "constant_binary", lambda self, ep, treatments: None)
    every_outcome = run_chunk(spec, ts).to_arrays()
    assert drawn_on_demand.keys() == every_outcome.keys()
    for name, value in every_outcome.items():
        np.testing.assert_array_equal(drawn_on_demand[name], value, err_msg=name)


def test_outcomes_drawn_on_demand_refuse_random_outcome_delays():
    spec = Spec.load("designs/benchmark_four_arm.yaml", "scenarios/benchmark_four_arm.yaml")
    rules = spec.compiled.rules
    ts = Streams(1).for_trials(np.arange(4))
    lazy = DrawnOnDemand.build(
        ts, "event", list(rules.treatments), np.full(4, 0.2), np.tile(np.arange(rules.max_n), (4, 1))
    )
    with pytest.raises(ValueError, match="random outcome delays"):
        run_looks(rules, lazy, ts, known=np.zeros((4, rules.max_n), dtype=np.int64))
