"""Sub-studies over calendar time and the Lung-MAP S1400 screening funnel (docs/platform.md,
docs/scenarios.md).

* the funnel of the ``lungmap_s1400`` population reproduces the counts of the NCT02154490
  results, exactly and in simulation (within 4 Monte Carlo standard errors, nothing tuned);
* patients are routed to a sub-study when their result arrives, to what is open then;
* sub-studies open and close on their dates, triggers and queue, and nobody is randomized to a
  closed arm;
* bad calendars are rejected at load time, naming the field.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml

from platform_sim.config import ConfigError, resolve
from platform_sim.config.load import load_file, parse_design
from platform_sim.config.population import expected_funnel
from platform_sim.families import platform as timeline
from platform_sim.families.platform import PlatformPool, simulate_platform
from platform_sim.population import (
    DECLINED,
    NOT_ASSIGNED,
    NOT_SUBMITTED,
    RANDOMIZED,
    SCREEN_FAILURE,
    PopulationModel,
)
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

MC_SIGMAS = 4.0
# Lung-MAP S1400 screening, ClinicalTrials.gov results of NCT02154490
ENROLLED, SUBMITTED, RESULTS, ASSIGNED, REGISTERED = 1864, 1841, 1674, 1404, 655
DAYS_PER_MONTH = 30.4375


def lungmap_population():
    return load_file(resolve("lungmap_s1400", "population"), "population")


def proportion_mcse(p: float, n: int) -> float:
    return math.sqrt(p * (1.0 - p) / n)


# --------------------------------------------------------------------------- the funnel


def test_exact_funnel_gives_the_reported_share_registered():
    """The rates of lungmap_s1400 are the reported ratios rounded to 6 decimals, so the exact share
    registered is 655/1864 to within the rounding (4 rates x 5e-7)."""
    funnel = expected_funnel(lungmap_population())
    assert abs(funnel["randomized"] - REGISTERED / ENROLLED) < 4 * 5e-7
    assert abs(sum(funnel.values()) - 1.0) < 1e-12
    assert abs(funnel["not_submitted"] - (ENROLLED - SUBMITTED) / ENROLLED) < 5e-7


def test_simulated_funnel_matches_lungmap_s1400():
    """Simulated screening (8 x 4096 patients, seed 11): the share registered of those screened,
    and each step's share of those who reached it, against the reported counts within 4 MCSE of
    the reported proportion."""
    model = PopulationModel(lungmap_population())
    cohort = model.cohort(Streams(11).for_trials(np.arange(8)), 4096)
    reason = cohort.reason.ravel()
    n = reason.size
    share = float(np.mean(reason == RANDOMIZED))
    reported = REGISTERED / ENROLLED
    assert abs(share - reported) <= MC_SIGMAS * proportion_mcse(reported, n), (share, reported)

    submitted = reason != NOT_SUBMITTED
    with_result = submitted & (reason != SCREEN_FAILURE)
    assigned = with_result & (reason != NOT_ASSIGNED)
    registered = assigned & (reason != DECLINED)
    assert (registered == (reason == RANDOMIZED)).all()  # no other way out in this population
    for step, reached, passed, (num, den) in [
        ("tissue submitted", np.ones(n, dtype=bool), submitted, (SUBMITTED, ENROLLED)),
        ("biomarker result", submitted, with_result, (RESULTS, SUBMITTED)),
        ("sub-study assignment", with_result, assigned, (ASSIGNED, RESULTS)),
        ("registered", assigned, registered, (REGISTERED, ASSIGNED)),
    ]:
        p, p_reported = passed[reached].mean(), num / den
        tolerance = MC_SIGMAS * proportion_mcse(p_reported, int(reached.sum()))
        assert abs(p - p_reported) <= tolerance, (step, p, p_reported, tolerance)


def test_time_to_registration_has_the_reported_median():
    """Screening to registration: the reported median 0.9 months. Half the registered patients wait
    at most 0.9 x 30.4375 days, within 4 MCSE."""
    model = PopulationModel(lungmap_population())
    cohort = model.cohort(Streams(12).for_trials(np.arange(8)), 2048)
    wait = cohort.wait_days[cohort.reason == RANDOMIZED]
    below = float(np.mean(wait <= 0.9 * DAYS_PER_MONTH))
    assert abs(below - 0.5) <= MC_SIGMAS * proportion_mcse(0.5, wait.size), below


def test_only_declining_applies_without_an_assay():
    """A design that waits for no biomarker result is charged no sample, assay or assignment loss;
    patients still decline to register."""
    pop = lungmap_population()
    funnel = expected_funnel(pop, biomarker_result=False)
    assert funnel["randomized"] == pytest.approx(1 - pop.screening.declined, abs=1e-15)
    assert funnel["not_submitted"] == funnel["screen_failure"] == funnel["not_assigned"] == 0.0


# --------------------------------------------------------------------------- routing at the result


def tiny_design(**group_a) -> dict:
    """Sub-study A (ATM-positive: durvalumab + ceralasertib) and a non-match sub-study
    (ramucirumab + pembrolizumab), each 1:1 against docetaxel, without decisions."""
    return {
        "name": "tiny_substudies",
        "endpoint": {"name": "pfs", "direction": "higher_is_better"},
        "arms": [
            {"name": "docetaxel", "treatment": "docetaxel"},
            {"name": "a", "treatment": "durva_ceralasertib"},
            {"name": "b", "treatment": "ramucirumab_pembrolizumab"},
        ],
        "control": "docetaxel",
        "randomization": {"method": "fixed", "scheme": "simple"},
        "control_allocation": {"rule": "fixed", "share": 0.5},
        "clinically_relevant_difference": 0.1,
        "strata": {
            "overlap": "priority",
            "groups": [
                {"name": "A", "when": {"atm": "positive"}, "arms": ["docetaxel", "a"], **group_a},
                {"name": "non_match", "when": "other", "arms": ["docetaxel", "b"]},
            ],
        },
        "platform": {
            "max_duration_months": 24,
            "follow_up_months": 6,
            "interims": {"every_months": 6},
            "hazard_prior": {"shape": 1, "rate": 4},
            "graduation": {"by": "posterior", "graduate": 0.999999, "min_n": 100000},
        },
    }


def lungmap_scenario():
    return Spec.load(scenario="lungmap_null").scenario


def hand_pool(arrive, match, u) -> PlatformPool:
    """One platform whose patients' results arrive at ``arrive`` (months), matching the sub-studies
    of the bit masks ``match`` (the non-match sub-study is bit 1), with randomization uniforms ``u``;
    PFS 5 months on every treatment."""
    n = len(arrive)
    match = np.array([match], dtype=np.int64)
    return PlatformPool(
        arrive=np.array([arrive], dtype=float),
        stratum=timeline._first_match(match, 1),
        u=np.array([u], dtype=float),
        outcomes=np.full((1, n, 3), 5.0, dtype=np.float32),
        dropout=np.full((1, n), np.inf),
        match=match,
    )


def test_patients_are_routed_to_what_is_open_when_their_result_arrives():
    """Sub-study A closes at month 10. ATM-positive patients whose results arrive at months 2, 11 and
    12 go to A, then (A closed) to the non-match sub-study; a patient matching nothing specific goes
    to the non-match sub-study. With ``closed_match: not_registered`` the late ATM-positive patients
    are not randomized. u = 0.75 picks the experimental arm of a 1:1 sub-study."""
    spec = Spec.from_models(parse_design(tiny_design(closes_months=10)), lungmap_scenario())
    pd_ = spec.compiled.arrays
    a_or_other, other_only = 0b11, 0b10  # bit 0: sub-study A, bit 1: non-match (everyone matches it)
    arrive, match = [2.0, 9.0, 11.0, 12.0], [a_or_other, other_only, a_or_other, a_or_other]

    captured = {}
    real = timeline._results

    def keep_state(pd, st, pool):
        captured["assigned"] = st.assigned.copy()
        return real(pd, st, pool)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timeline, "_results", keep_state)
        pool = hand_pool(arrive, match, [0.75] * 4)
        res = simulate_platform(pd_, pool)
        assert captured["assigned"][0].tolist() == [1, 2, 2, 2]
        assert pool.stratum[0].tolist() == [0, 1, 1, 1]
        assert res.closed_at[0, 1] == 10.0 and res.opened_at[0, 1] == 0.0

        strict = dataclasses.replace(pd_, to_other=False)
        pool = hand_pool(arrive, match, [0.75] * 4)
        res = simulate_platform(strict, pool)
        assert captured["assigned"][0].tolist() == [1, 2, -1, -1]
        assert res.n_not_assigned[0] == 2


def test_a_result_after_the_closing_date_goes_to_the_non_match_substudy():
    """Screened before the closing date, result after it: routed at the result (the pool's times
    are arrival plus turnaround), so the non-match sub-study takes the patient."""
    d = tiny_design(closes_months=10)
    d["strata"]["closed_match"] = "other"
    spec = Spec.from_models(parse_design(d), lungmap_scenario())
    pool = hand_pool([9.5 + 27.39 / DAYS_PER_MONTH], [0b11], [0.75])  # screened at 9.5, result ~10.4
    simulate_platform(spec.compiled.arrays, pool)
    assert pool.stratum[0, 0] == 1


def run_keeping_states(spec, n_sims: int, seed: int):
    """Run ``spec`` and keep every chunk's final engine state (design arrays, state, pool)."""
    states = []
    real = timeline._results

    def keep_state(pd, st, pool):
        states.append((pd, st, pool))
        return real(pd, st, pool)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timeline, "_results", keep_state)
        res = run(spec, n_sims, seed, 1)
    return res, states


def test_substudy_opens_after_n_patients_and_an_arm_closes_on_its_date():
    """Sub-study A opens once 30 patients have been randomized (at the first event after that);
    arm b stops randomizing at month 15: nobody is randomized to A before the 30th patient, nor to
    b after month 15."""
    d = tiny_design(opens_after={"enrolled": 30})
    d["arms"][2]["closes_months"] = 15
    res, states = run_keeping_states(Spec.from_models(parse_design(d), lungmap_scenario()), 20, 5)
    opened, closed = res.extras["opened_at"], res.extras["closed_at"]
    assert (closed[:, 2] == 15).all()
    for _, st, pool in states:
        for r in range(pool.arrive.shape[0]):
            dates = pool.arrive[r][st.assigned[r] >= 0]
            on_a = pool.arrive[r][st.assigned[r] == 1]
            assert (pool.arrive[r][st.assigned[r] == 2] <= 15).all()
            if on_a.size:
                assert st.opened[r, 1] >= dates[29] and on_a.min() >= st.opened[r, 1]
    assert np.isfinite(opened[:, 1]).all()


def test_an_arm_closing_date_in_a_platform_with_strata_by_markers(shipped_yaml):
    """The calendar of arms without sub-studies: durvalumab + oleclumab closes at month 12 in
    pioneer_platform; nobody is randomized to it later."""
    d = shipped_yaml("design", "pioneer_platform")
    d["arms"][1]["closes_months"] = 12
    spec = Spec.from_models(parse_design(d), Spec.load(scenario="pioneer_null").scenario)
    res, states = run_keeping_states(spec, 20, 6)
    assert (res.extras["closed_at"][:, 1] <= 12).all()
    for _, st, pool in states:
        assert (pool.arrive[st.assigned == 1] <= 12).all()


# --------------------------------------------------------------------------- the shipped calendar design


@pytest.fixture(scope="module")
def lungmap_run():
    """lungmap_platform on its null scenario, 60 platforms, with every platform's final state."""
    spec = Spec.load("lungmap_platform", "lungmap_null")
    res, states = run_keeping_states(spec, 60, 21)
    return spec, res, states


def test_substudies_open_and_close_on_their_calendar(lungmap_run):
    """ATM+ opens at 0 and closes by month 30; STK11/KEAP1 opens at 6; TROP2 opens only after ATM+
    closed and while fewer than 3 experimental arms are open (it waits in the queue)."""
    spec, res, _ = lungmap_run
    names = list(spec.compiled.arrays.arm_names)
    atm, stk, trop2 = (names.index(a) for a in ("durva_ceralasertib", "durva_tremelimumab", "dato_dxd"))
    opened, closed = res.extras["opened_at"], res.extras["closed_at"]
    assert (opened[:, atm] == 0).all() and (closed[:, atm] <= 30).all()
    assert (opened[:, stk] >= 6).all()
    entered = ~np.isnan(opened[:, trop2])
    assert entered.any()
    assert (opened[entered, trop2] >= closed[entered, atm]).all()
    for t in np.flatnonzero(entered):
        at = opened[t, trop2]
        ends = np.where(np.isnan(closed[t]), np.inf, closed[t])
        others = [k for k in range(len(names)) if k not in (spec.compiled.arrays.control, trop2)]
        n_open = sum(1 for k in others if opened[t, k] <= at < ends[k])
        assert n_open < 3, (t, at, n_open)


def test_nobody_is_randomized_to_a_closed_arm_or_past_an_open_match(lungmap_run):
    """Every randomized patient's result came while their arm (and their sub-study's experimental
    arm, for control patients) was open; they are in a sub-study they match, and a patient in the
    non-match sub-study had no matching sub-study open then."""
    _, _, states = lungmap_run
    for pd_, st, pool in states:
        other = pd_.other
        experimental_of = np.full(pd_.n_strata, -1)
        for k in range(pd_.n_arms):
            if k != pd_.control:
                experimental_of[np.flatnonzero(pd_.arm_in[k])] = k
        closed = np.where(np.isnan(st.closed), np.inf, st.closed)
        for r, i in zip(*np.nonzero(st.assigned >= 0)):
            a, k, s = pool.arrive[r, i], st.assigned[r, i], pool.stratum[r, i]
            arm = experimental_of[s]
            assert pd_.arm_in[k, s] and (pool.match[r, i] >> s) & 1
            for j in (k, arm):
                assert st.opened[r, j] <= a <= closed[r, j], (r, i, a, j, st.opened[r, j], closed[r, j])
            if s == other:
                for g in range(pd_.n_strata):
                    if g != other and (pool.match[r, i] >> g) & 1:
                        e = experimental_of[g]
                        assert not (st.opened[r, e] <= a < closed[r, e]), (r, i, a, g)


def test_registered_share_of_the_shipped_design_follows_the_funnel(lungmap_run):
    """Patients who passed the funnel before enrolment ended, over those screened: the funnel's
    35.1% (NCT02154490) within 4 MCSE of the pooled ratio, less at most the patients whose result
    was still pending when enrolment ended (counted as screened, not yet as registered)."""
    _, res, _ = lungmap_run
    passed, screened = res.extras["n_randomizable"].sum(), res.n_screened.sum()
    share = passed / screened
    reported = REGISTERED / ENROLLED
    mcse = proportion_mcse(reported, int(screened))
    # pending at the end: at most rate x E[wait] screened patients per platform (Little's law), with
    # E[wait] = median x exp(sdlog^2 / 2) for the lognormal turnaround of lungmap_s1400; a share
    # `reported` of them would have registered
    mean_wait = 0.9 * math.exp(0.335**2 / 2)
    pending = reported * 34.1 * mean_wait * res.n_trials / screened
    assert reported - pending - MC_SIGMAS * mcse <= share <= reported + MC_SIGMAS * mcse, (share, pending, mcse)


# --------------------------------------------------------------------------- bad calendars


def lungmap_design() -> dict:
    return yaml.safe_load(resolve("lungmap_platform", "design").read_text())


def one_problem(exc, path: str):
    found = [p for p in exc.value.problems if p.path == path]
    assert found, [p.format() for p in exc.value.problems]
    return found[0]


def test_substudy_opening_after_the_end_is_rejected():
    d = lungmap_design()
    d["strata"]["groups"][1]["opens_months"] = 60
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.strata.groups[1].opens_months")
    assert p.value == 60 and "max_duration_months = 55" in p.message


def test_substudy_closing_before_it_opens_is_rejected():
    d = lungmap_design()
    d["strata"]["groups"][0].update(opens_months=12, closes_months=6)
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.strata.groups[0].closes_months")
    assert p.value == 6 and "not after it opens (12)" in p.message


def test_queue_naming_an_unknown_substudy_is_rejected():
    d = lungmap_design()
    d["platform"]["queue"] = ["trop2_nmr", "kras"]
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.platform.queue[1]")
    assert p.value == "kras" and "trop2_nmr" in p.message


def test_waiting_for_an_unknown_or_circular_closing_is_rejected():
    d = lungmap_design()
    d["strata"]["groups"][2]["opens_after"] = {"closed": "egfr"}
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    assert one_problem(exc, "design.strata.groups[2].opens_after.closed").value == "egfr"
    d = lungmap_design()
    d["strata"]["groups"][0]["opens_after"] = {"closed": "trop2_nmr"}
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    assert "circle" in one_problem(exc, "design.strata.groups[0].opens_after.closed").message


def test_calendar_fields_outside_a_platform_are_rejected(shipped_yaml):
    d = shipped_yaml("design", "lungmap_umbrella")
    d["strata"]["groups"][0]["closes_months"] = 12
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    assert one_problem(exc, "design.strata.groups[0].closes_months").value == 12


def test_single_arm_substudy_in_a_platform_is_rejected():
    d = lungmap_design()
    d["strata"]["groups"][3]["arms"] = ["ramucirumab_pembrolizumab"]
    d["strata"]["groups"][3]["reference_rate"] = 0.6
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    one_problem(exc, "design.strata.groups[3].reference_rate")
    assert "docetaxel" in one_problem(exc, "design.strata.groups[3].arms").message


def test_two_substudies_with_one_name_are_rejected():
    d = lungmap_design()
    d["strata"]["groups"][3]["name"] = d["strata"]["groups"][0]["name"]
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.strata.groups[3].name")
    assert p.value == d["strata"]["groups"][0]["name"] and "strata.groups[0]" in p.message


def test_substudy_listing_an_unknown_arm_is_rejected():
    d = lungmap_design()
    d["strata"]["groups"][1]["arms"].append("sotorasib")
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.strata.groups[1].arms")
    assert p.value == ["sotorasib"] and "docetaxel" in p.message
