"""The platform over calendar time (platform_sim/families/platform.py) run through the runner.

Designs and scenarios start from tests/data/timeline/ (a two-arm design on progression-free
survival with decisions switched off, and a homogeneous scenario with a control median of 4
months, an arm with hazard ratio 0.7 and two null arms) and change what each test needs.

Statistical checks use fixed seeds and a tolerance of 4 Monte Carlo standard errors (MCSE)
derived for each statistic; a correct engine fails one comparison with chance ~6e-5.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from platform_sim import oc
from platform_sim.cli import main
from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.families import platform as timeline
from platform_sim.families.platform import (
    DROPPED,
    GRADUATED,
    INCONCLUSIVE,
    NOT_ENTERED,
    SHARED_CONTROL,
)
from platform_sim.posterior.survival import schoenfeld_power
from platform_sim.results import CONTROL, TrialResults
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.text import format_run

DATA = Path(__file__).resolve().parent / "data" / "timeline"
MC_SIGMAS = 4.0
Z_975 = 1.959963984540054
MEDIAN_CONTROL = 4.0
HR = 0.7
DECISIONS_OFF = {"by": "posterior", "graduate": 0.999999, "min_n": 100000}


# --------------------------------------------------------------------------- helpers


def base_design() -> dict:
    return yaml.safe_load((DATA / "two_arm_pfs.yaml").read_text())


def base_scenario() -> dict:
    return yaml.safe_load((DATA / "pfs_hr07.yaml").read_text())


def design(arms: list[dict] | None = None, **platform) -> dict:
    """The two-arm fixture design with other arms and platform fields replaced."""
    d = base_design()
    if arms is not None:
        d["arms"] = arms
    d["platform"].update(copy.deepcopy(platform))
    return d


def scenario(accrual_per_month: float | None = None, trend_per_year: float | None = None) -> dict:
    s = base_scenario()
    if accrual_per_month is not None:
        s["population"] = {"name": "fast", "accrual": {"rate_per_month": accrual_per_month}}
    if trend_per_year is not None:
        s["time_trend"] = {"pfs": {"per_year": trend_per_year}}
    return s


def spec_of(d: dict, s: dict | None = None) -> Spec:
    return Spec.from_models(parse_design(copy.deepcopy(d)), parse_scenario(copy.deepcopy(s or scenario())))


def arm(name: str, treatment: str | None = None, **extra) -> dict:
    return {"name": name, "treatment": treatment or name, **extra}


def proportion_mcse(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 1e-300) / n)


def mean_mcse(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def status(res: TrialResults) -> np.ndarray:
    """(T, K) the platform's own status codes (PLATFORM_STATUS) of each arm."""
    return res.extras["platform_status"]


def extra(res: TrialResults, name: str) -> np.ndarray:
    """A platform's per-trial extra (``opened_at``, ``z_concurrent``, ...)."""
    return res.extras[name]


def at_all_patients(res: TrialResults, name: str) -> np.ndarray:
    """(T, K) a final estimate in the subgroup of all patients."""
    g = int(np.flatnonzero(res.membership.all(axis=1))[0])
    return res.estimates[name][:, :, g]


def n_looks(res: TrialResults) -> np.ndarray:
    """(T,) analyses done (those skipped for too few new outcomes not counted)."""
    looks = res.trial_values["n_looks"]
    assert (looks == np.round(looks)).all()
    return looks.astype(np.int64)


def reject(z: np.ndarray) -> np.ndarray:
    """One-sided 2.5% rejection for benefit (z < 0 favours the arm)."""
    return (z < -Z_975).astype(float)


def capture_pools(monkeypatch) -> list:
    """Record every PlatformPool the runner hands to simulate_platform (one per chunk)."""
    pools = []
    real = timeline.simulate_platform

    def recording(pd_, pool, trace=None):
        pools.append(pool)
        return real(pd_, pool, trace)

    monkeypatch.setattr(timeline, "simulate_platform", recording)
    return pools


def seen_dates(pool, arm_of: np.ndarray, assess: float) -> np.ndarray:
    """Date each patient's progression is seen: randomization + the first assessment at or after
    the event (the first assessment at the earliest); inf for a patient not randomized or who never
    progresses. Progression-free survival without dropout."""
    t_idx = np.arange(pool.arrive.shape[0])[:, None]
    n_idx = np.arange(pool.arrive.shape[1])[None, :]
    e = pool.outcomes[t_idx, n_idx, np.maximum(arm_of, 0)].astype(np.float64)
    with np.errstate(invalid="ignore"):
        found = np.where(np.isfinite(e), np.maximum(np.ceil(e / assess), 1.0) * assess, np.inf)
    return np.where(arm_of >= 0, pool.arrive + found, np.inf)


def limit_looks(monkeypatch, most: int) -> None:
    """Fail (instead of looping) as soon as a trial has done more than ``most`` analyses."""
    real = timeline._analyse

    def bounded(pd_, st, pool, rows, t, final):
        out = real(pd_, st, pool, rows, t, final)
        over = st.n_looks[rows] > most
        if over.any():
            r = rows[over][0]
            raise AssertionError(
                f"trial {r}: {st.n_looks[r]} analyses, the last at month {t[over][0]!r} with "
                f"trigger count {st.count[r]:g}; the next trigger is not moving forward"
            )
        return out

    monkeypatch.setattr(timeline, "_analyse", bounded)


def open_overlap(opened: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """(T,) the largest number of the given arms randomizing at one date: intervals [opened, closed)."""
    T, K = opened.shape
    worst = np.zeros(T, dtype=int)
    for t in range(T):
        starts = [(opened[t, k], closed[t, k]) for k in range(K) if not np.isnan(opened[t, k])]
        for s, _ in starts:
            worst[t] = max(worst[t], sum(1 for a, b in starts if a <= s < b))
    return worst


# --------------------------------------------------------------------------- 1. median PFS


def test_final_median_pfs_recovers_the_true_medians():
    """The final posterior median of each arm's median PFS averages to the true median
    (4 months on control, 4 / 0.7 on the arm) within 4 MCSE.

    400 patients a month for 12 months, 6 months of follow-up (15-25% censored), weekly
    assessments: ~2,000 events per arm. The estimate is log(2) (b0 + E) / Q(a0 + d, 1/2) with
    d events and E months at risk; its bias is O(median / d) (Q(d, 1/2) ~ d - 1/3, and E / d is
    biased by O(1/d) under censoring). Measured on runs with 60 and 240 events per arm it is at
    most ~median / d, here 0.002 (control) and 0.003 (arm) months, while the MCSE over 300 platforms is ~median / sqrt(d T) = 0.005 and 0.008: the bias
    is below half an MCSE. Dating progressions at the middle of the weekly interval shifts the
    mean time at risk by ~lambda a^2 / 12 (a = 0.23 months), a relative 1e-4: negligible."""
    d = design(max_duration_months=12, follow_up_months=6, interims={"every_months": 6})
    spec = spec_of(d, scenario(accrual_per_month=400))
    res = run(spec, 300, seed=101)
    assert (status(res)[:, 1] == INCONCLUSIVE).all()  # no arm stopped early on a selected result
    assert res.events_by_arm.min() > 1500
    censored = 1.0 - res.events.sum() / res.n.sum()
    assert 0.1 < censored < 0.3
    # the truth the estimates are judged against is the scenario's medians, exactly
    np.testing.assert_allclose(spec.truth.value[:, 0], [MEDIAN_CONTROL, MEDIAN_CONTROL / HR], rtol=1e-9)
    for k, truth in ((0, MEDIAN_CONTROL), (1, MEDIAN_CONTROL / HR)):
        est = at_all_patients(res, "final_estimate")[:, k]
        assert abs(est.mean() - truth) < MC_SIGMAS * mean_mcse(est), (k, est.mean(), truth, mean_mcse(est))


# --------------------------------------------------------------------------- 2. log-rank power


def test_final_logrank_power_matches_schoenfeld():
    """2,000 two-arm platforms, 20 patients a month for 9 months, 6 months of follow-up, weekly
    assessments (ties are grouped by the log-rank kernel): P(final log-rank z < -1.96) equals
    Schoenfeld's power at the mean total number of events (~140, power ~0.55) within 4 MCSE."""
    n = 2000
    d = design(max_duration_months=9, follow_up_months=6, interims={"every_months": 3})
    res = run(spec_of(d), n, seed=102)
    assert (res.duration_months == 15.0).all()
    events = res.events.sum(axis=(1, 2)).mean()
    power = float(schoenfeld_power(HR, events))
    assert 0.3 < power < 0.8  # the design sits where a rejection rate is most informative
    rate = reject(extra(res, "z_concurrent")[:, 1]).mean()
    assert abs(rate - power) < MC_SIGMAS * proportion_mcse(power, n), (rate, power, events)
    # the same rejection, as the per-arm value the OCs average
    np.testing.assert_array_equal(res.arm_values["p_reject_concurrent"][:, 1], reject(extra(res, "z_concurrent")[:, 1]))
    # one experimental arm open from the start to the end: every control is concurrent
    np.testing.assert_array_equal(extra(res, "z_all"), extra(res, "z_concurrent"))


# --------------------------------------------------------------------------- 3. concurrent vs all controls


def _staggered(controls: str = "concurrent", graduation: dict | None = None) -> dict:
    """Control and null_a from month 0, null_b from month 12, every arm open to month 36."""
    arms = [arm("control"), arm("null_a"), arm("null_b", enter_months=12)]
    return design(
        arms,
        max_duration_months=36,
        follow_up_months=12,
        max_open_arms=10,
        controls=controls,
        interims={"every_months": 6},
        graduation=graduation or DECISIONS_OFF,
    )


N_STAGGER = 1000


@pytest.fixture(scope="module")
def staggered_runs():
    """Null arms, no time trend and a trend of -0.5 per year on the log-hazard, same patients."""
    return {
        trend: run(spec_of(_staggered(), scenario(trend_per_year=trend)), N_STAGGER, seed=103) for trend in (None, -0.5)
    }


def test_late_arm_without_trend_concurrent_and_all_controls_agree(staggered_runs):
    res = staggered_runs[None]
    b = 2
    assert (extra(res, "opened_at")[:, b] == 12.0).all() and (status(res)[:, b] == INCONCLUSIVE).all()
    conc, all_ = reject(extra(res, "z_concurrent")[:, b]), reject(extra(res, "z_all")[:, b])
    diff = all_ - conc
    assert abs(diff.mean()) <= MC_SIGMAS * mean_mcse(diff), (all_.mean(), conc.mean())
    for rate in (conc.mean(), all_.mean()):  # both tests keep their level
        assert abs(rate - 0.025) < MC_SIGMAS * proportion_mcse(0.025, N_STAGGER), rate
    for effect in (at_all_patients(res, "effect_concurrent")[:, b], at_all_patients(res, "effect_all")[:, b]):
        assert abs(effect.mean()) < MC_SIGMAS * mean_mcse(effect), effect.mean()


def test_late_arm_under_time_trend_all_controls_are_biased(staggered_runs):
    """Later patients progress more slowly (log-hazard -0.5 per year): against all controls, the
    arm entering at month 12 looks better than it is; against concurrent controls it does not."""
    res = staggered_runs[-0.5]
    b = 2
    e_all, e_conc = at_all_patients(res, "effect_all")[:, b], at_all_patients(res, "effect_concurrent")[:, b]
    assert e_all.mean() < -MC_SIGMAS * mean_mcse(e_all), e_all.mean()
    assert abs(e_conc.mean()) < MC_SIGMAS * mean_mcse(e_conc), e_conc.mean()
    z_all, z_conc = extra(res, "z_all"), extra(res, "z_concurrent")
    diff = reject(z_all[:, b]) - reject(z_conc[:, b])
    assert diff.mean() > MC_SIGMAS * mean_mcse(diff), diff.mean()
    assert abs(reject(z_conc[:, b]).mean() - 0.025) < MC_SIGMAS * proportion_mcse(0.025, N_STAGGER)
    # the arm open from month 0 has the same controls either way
    np.testing.assert_array_equal(z_all[:, 1], z_conc[:, 1])


def test_all_controls_graduate_the_late_null_arm_more_often_under_a_trend():
    """Decisions on (P(HR < 1) >= 0.99 after 30 patients, analyses every 6 months), same patients:
    the late null arm graduates more often when analysed against all controls."""
    grad = {"by": "posterior", "graduate": 0.99, "min_n": 30}
    s = scenario(trend_per_year=-0.5)
    n = 600
    out = {c: run(spec_of(_staggered(c, grad), s), n, seed=104) for c in ("concurrent", "all")}
    g = {c: (status(r)[:, 2] == GRADUATED).astype(float) for c, r in out.items()}
    for r, grad in zip(out.values(), g.values()):  # a graduation is the arm's claim
        np.testing.assert_array_equal(r.claimed_any[:, 2], grad.astype(bool))
    diff = g["all"] - g["concurrent"]
    assert diff.mean() > MC_SIGMAS * mean_mcse(diff), (g["all"].mean(), g["concurrent"].mean())


# --------------------------------------------------------------------------- 4. queue and slots

QUEUE_ARMS = [arm("control"), arm("arm", max_n=40), arm("null_a", max_n=40), arm("null_b", max_n=40)]
QUEUE_GRADUATION = {"by": "posterior", "graduate": 0.95, "drop": 0.3, "min_n": 20}


def _queue(arms=QUEUE_ARMS, max_open=1, **platform) -> dict:
    pf = {
        "max_duration_months": 36,
        "follow_up_months": 6,
        "max_open_arms": max_open,
        "interims": {"every_months": 3},
        "graduation": QUEUE_GRADUATION,
    }
    pf.update(platform)
    return design(copy.deepcopy(arms), **pf)


def _check_bounds(res: TrialResults, d: dict) -> None:
    pf = d["platform"]
    for k, a in enumerate(d["arms"]):
        if a.get("max_n") is not None:
            assert (res.n_by_arm[:, k] <= a["max_n"]).all()
    assert (extra(res, "enrolment_end") <= pf["max_duration_months"]).all()
    assert (res.duration_months <= pf["max_duration_months"] + pf["follow_up_months"]).all()


def test_one_slot_queue_opens_arms_in_order_without_overlap():
    d = _queue()
    res = run(spec_of(d), 300, seed=105)
    _check_bounds(res, d)
    opened, closed = extra(res, "opened_at")[:, 1:], extra(res, "closed_at")[:, 1:]
    assert (open_overlap(opened, closed) <= 1).all()
    entered = ~np.isnan(opened)
    assert (entered[:, :-1] >= entered[:, 1:]).all()  # entered arms are a prefix of the list
    assert (extra(res, "opened_at")[:, 1] == 0.0).all()
    every = 3.0
    for k in range(1, opened.shape[1]):
        prev_close, start = closed[:, k - 1], opened[:, k]
        # the slot frees at the first analysis at or after the previous arm stopped randomizing
        # (the same date when it was graduated or dropped at an analysis)
        next_look = np.ceil(prev_close / every) * every
        went = entered[:, k]
        assert (start[went] >= prev_close[went]).all()
        np.testing.assert_array_equal(start[went], next_look[went])
        assert (next_look[~went] >= d["platform"]["max_duration_months"]).all()
    # every way of leaving is exercised: filling up, graduating, being dropped
    arm_status = status(res)[:, 1:]
    assert (arm_status == GRADUATED).any() and (arm_status == DROPPED).any()
    full = np.isin(arm_status, (GRADUATED, DROPPED, INCONCLUSIVE)) & (res.n_by_arm[:, 1:] == 40)
    assert full.any()
    decided_open = (extra(res, "decided_at")[:, 1:] == closed) & (res.n_by_arm[:, 1:] < 40)
    assert decided_open.any()


@pytest.mark.parametrize("max_open", [1, 2, 10])
def test_arms_never_open_before_their_entry_date(max_open):
    arms = [
        arm("control"),
        arm("arm", max_n=40),
        arm("null_a", max_n=40, enter_months=5.0),
        arm("null_b", max_n=40, enter_months=10.5),
    ]
    d = _queue(arms, max_open=max_open)
    res = run(spec_of(d), 200, seed=106)
    _check_bounds(res, d)
    enter = np.array([0.0, 0.0, 5.0, 10.5])
    opened_at, closed_at = extra(res, "opened_at"), extra(res, "closed_at")
    entered = ~np.isnan(opened_at)
    assert (opened_at[entered] >= np.broadcast_to(enter, opened_at.shape)[entered]).all()
    assert (open_overlap(opened_at[:, 1:], closed_at[:, 1:]) <= max_open).all()
    if max_open >= 3:  # a free slot: each arm opens on its date
        np.testing.assert_array_equal(opened_at, np.broadcast_to(enter, opened_at.shape))
    assert (status(res)[:, 1:] != NOT_ENTERED).any(axis=0).all()  # every arm enters in some platform


# --------------------------------------------------------------------------- 5. triggers


def _assignments(pool, max_duration: float) -> np.ndarray:
    """Arms of the fixture's two-arm design with fixed equal randomization and no decisions:
    both arms open throughout, so a patient goes to arm 1 when their uniform is >= 1/2."""
    return np.where(pool.arrive <= max_duration, (pool.u >= 0.5).astype(np.int64), -1)


def test_every_enrolled_looks_once_per_block_of_patients():
    """n_looks = floor(randomized / 50) interim analyses + the final analysis (no arm is decided
    before the end, so the arm is pending when enrolment stops)."""
    d = design(interims={"every_enrolled": 50})
    res = run(spec_of(d), 200, seed=107)
    total = res.n_randomized
    # not trivial: the platforms enrol enough patients to vary in their number of analyses
    assert total.min() > 300 and np.unique(total // 50).size >= 3
    np.testing.assert_array_equal(n_looks(res), total // 50 + 1)


def test_every_observed_looks_once_per_block_of_progressions(monkeypatch):
    """n_looks = floor(progressions seen by the maximum duration / 40) + 1, with the progressions
    counted from the patients' own event times, randomization dates and the weekly schedule."""
    d = design(interims={"every_observed": 40})
    spec = spec_of(d)
    pools = capture_pools(monkeypatch)
    limit_looks(monkeypatch, 100)  # ~500 patients a trial, at most ~13 analyses
    res = run(spec, 200, seed=108)
    pool = pools[0]
    max_dur, end = 24.0, 36.0
    assign = _assignments(pool, max_dur)
    np.testing.assert_array_equal(res.n_by_arm, np.stack([(assign == k).sum(axis=1) for k in (0, 1)], axis=1))
    seen = seen_dates(pool, assign, spec.compiled.arrays.assess)
    by_end = (seen <= max_dur).sum(axis=1)
    np.testing.assert_array_equal(n_looks(res), by_end // 40 + 1)
    final = np.stack([((seen <= end) & (assign == k)).sum(axis=1) for k in (0, 1)], axis=1)
    np.testing.assert_array_equal(res.events_by_arm, final)


def test_min_new_outcomes_skips_calendar_looks(monkeypatch):
    """Monthly analyses skipped while fewer than 15 progressions are new since the last one done;
    the final analysis always counts."""
    pools = capture_pools(monkeypatch)
    plain = run(spec_of(design(interims={"every_months": 1})), 200, seed=109)
    spec = spec_of(design(interims={"every_months": 1, "min_new_outcomes": 15}))
    res = run(spec, 200, seed=109)
    assert (n_looks(plain) == 24 + 1).all()  # months 1..24 and the final analysis
    pool = pools[1]
    seen = seen_dates(pool, _assignments(pool, 24.0), spec.compiled.arrays.assess)
    expected = np.ones(res.n_trials, dtype=int)
    last = np.zeros(res.n_trials)
    for month in range(1, 25):
        count = (seen <= month).sum(axis=1)
        done = count - last >= 15
        expected += done
        last = np.where(done, count, last)
    np.testing.assert_array_equal(n_looks(res), expected)
    assert (n_looks(res) < n_looks(plain)).all()


def test_skipped_analyses_leave_the_allocation_alone():
    """Every monthly analysis is skipped (fewer than 470 progressions are ever new), so an adaptive
    design keeps its initial equal allocation and randomizes every patient as the fixed design
    does (same seed, same patients and uniforms)."""
    arms = [arm("control"), arm("arm"), arm("null_a")]
    interims = {"every_months": 1, "min_new_outcomes": 470}
    fixed = design(arms, interims=interims)
    fixed["control_allocation"] = {"rule": "fixed", "share": 1 / 3}
    adaptive = design(arms, interims=interims)
    adaptive["control_allocation"] = {"rule": "fixed", "share": 1 / 3}
    adaptive["randomization"] = {"method": "adaptive", "scheme": "simple", "softening": 1.0}
    res_fixed = run(spec_of(fixed), 200, seed=113)
    res = run(spec_of(adaptive), 200, seed=113)
    assert (n_looks(res) == 1).all() and (n_looks(res_fixed) == 1).all()  # only the final analysis
    np.testing.assert_array_equal(res.n, res_fixed.n)


# --------------------------------------------------------------------------- 6. reproducibility


def _assert_same(a: TrialResults, b: TrialResults) -> None:
    x, y = a.to_arrays(), b.to_arrays()  # every array, value, extra and name
    assert x.keys() == y.keys()
    for name in x:
        np.testing.assert_array_equal(x[name], y[name], err_msg=name)  # NaNs in the same places compare equal


def test_same_seed_same_results_and_workers_do_not_matter():
    spec = spec_of(_queue())
    one = run(spec, 200, seed=110, chunk_size=50)
    _assert_same(one, run(spec, 200, seed=110, chunk_size=50))
    _assert_same(one, run(spec, 200, seed=110, workers=2, chunk_size=50))
    _assert_same(one, run(spec, 200, seed=110, chunk_size=70))  # a trial's numbers do not depend on its chunk
    other = run(spec, 200, seed=111, chunk_size=50)
    assert not np.array_equal(one.n, other.n)


# --------------------------------------------------------------------------- 7. load errors


def problems_of(exc: pytest.ExceptionInfo) -> list:
    return exc.value.problems


def one_problem(exc: pytest.ExceptionInfo, path: str):
    found = [p for p in problems_of(exc) if p.path == path]
    assert found, [p.format() for p in problems_of(exc)]
    return found[0]


def test_entry_at_or_after_the_maximum_duration_is_rejected():
    d = design([arm("control"), arm("arm", enter_months=24)])
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.arms[1].enter_months")
    assert "max_duration_months = 24" in p.message and p.value == 24


def test_assessment_interval_longer_than_follow_up_is_rejected():
    with pytest.raises(ConfigError) as exc:
        parse_design(design(assessment_weeks=8, follow_up_months=1))
    p = one_problem(exc, "design.platform.assessment_weeks")
    assert "follow_up_months = 1" in p.message and p.value == 8


def test_first_calendar_analysis_after_the_end_is_rejected():
    with pytest.raises(ConfigError) as exc:
        parse_design(design(interims={"every_months": 6, "first_months": 40}))
    p = one_problem(exc, "design.platform.interims")
    assert "40 months can never fire" in p.message and "36 months" in p.message


def test_every_enrolled_beyond_the_expected_patients_is_rejected():
    d = parse_design(design(interims={"every_enrolled": 1000}))  # fine on its own
    with pytest.raises(ConfigError) as exc:
        Spec.from_models(d, parse_scenario(scenario()))
    p = one_problem(exc, "design.platform.interims.every_enrolled")
    assert "only 480 patients" in p.message and p.value == 1000


def test_platform_design_with_looks_is_rejected():
    d = design()
    d["looks"] = {"randomized_n": [100, 200]}
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    assert any(p.path == "design" and "remove ['looks']" in p.message for p in problems_of(exc)), [
        p.format() for p in problems_of(exc)
    ]


def test_enter_months_outside_a_platform_design_is_rejected(shipped_yaml):
    d = shipped_yaml("design", "pioneer_rar")
    d["arms"][2]["enter_months"] = 6
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    p = one_problem(exc, "design.arms[2].enter_months")
    assert "platform" in p.message and p.value == 6


def test_signature_naming_an_unknown_stratum_is_rejected(shipped_yaml):
    d = shipped_yaml("design", "pioneer_platform")
    d["platform"]["graduation"]["signatures"]["atm"] = ["atm=positive,stk11_or_keap1=negative", "atm=maybe"]
    design_model = parse_design(d)  # a stratum name is only known under a scenario
    with pytest.raises(ConfigError) as exc:
        Spec.from_models(design_model, Spec.load(scenario="pioneer_alternative").scenario)
    p = one_problem(exc, "design.platform.graduation.signatures.atm")
    assert p.value == ["atm=maybe"] and "not strata" in p.message


def test_signatures_without_strata_are_rejected():
    d = design()
    d["platform"]["graduation"]["signatures"] = {"all": ["all"]}
    with pytest.raises(ConfigError) as exc:
        parse_design(d)
    one_problem(exc, "design.platform.graduation.signatures")


def test_time_to_event_platform_needs_a_hazard_prior():
    d = design()
    del d["platform"]["hazard_prior"]
    with pytest.raises(ConfigError) as exc:
        spec_of(d)
    p = one_problem(exc, "design.platform.hazard_prior")
    assert "gamma prior" in p.message


def test_problems_from_files_name_the_file(tmp_path):
    d = design(assessment_weeks=8, follow_up_months=1)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ConfigError) as exc:
        Spec.load(path, DATA / "pfs_hr07.yaml")
    p = one_problem(exc, "design.platform.assessment_weeks")
    assert p.file == str(path)
    assert Spec.load(DATA / "two_arm_pfs.yaml", DATA / "pfs_hr07.yaml").design.platform is not None


# --------------------------------------------------------------------------- 8. metrics


@pytest.fixture(scope="module")
def pioneer():
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    return spec, run(spec, 100, seed=112)


@pytest.fixture(scope="module")
def pioneer_table(pioneer):
    spec, res = pioneer
    return oc.frame(oc.summarize(res, spec.truth))


@pytest.fixture(scope="module")
def pioneer_truth(pioneer):
    return pioneer[0].truth.frame()


def test_arm_and_trial_tables_are_consistent(pioneer, pioneer_table):
    spec, res = pioneer
    arms = oc.arm_table(pioneer_table, spec.truth)
    control = spec.design.control
    assert list(arms.index) == list(spec.design.arm_names)
    experimental = [a for a in spec.design.arm_names if a != control]
    # every arm that entered ends graduated (claimed effective), dropped or undecided
    settled = arms.p_effective + arms.p_dropped + arms.p_active_at_end
    np.testing.assert_allclose(settled[experimental], arms.p_entered[experimental], rtol=0, atol=1e-12)
    np.testing.assert_allclose(arms.p_claimed[experimental], arms.p_effective[experimental], rtol=0, atol=1e-12)
    opened_at = extra(res, "opened_at")
    for k, name in enumerate(spec.design.arm_names):
        if name == control:
            continue
        entered = ~np.isnan(opened_at[:, k])
        assert arms.loc[name, "p_entered"] == pytest.approx(entered.mean(), abs=1e-12)
        assert arms.loc[name, "mean_n"] == pytest.approx(res.n_by_arm[:, k].mean(), abs=1e-9)
        assert arms.loc[name, "p_effective"] == pytest.approx((status(res)[:, k] == GRADUATED).mean(), abs=1e-12)
        assert arms.loc[name, "p_dropped"] == pytest.approx((status(res)[:, k] == DROPPED).mean(), abs=1e-12)
        assert arms.loc[name, "p_active_at_end"] == pytest.approx((status(res)[:, k] == INCONCLUSIVE).mean(), abs=1e-12)
    trial = oc.trial_table(pioneer_table)
    assert trial.loc["mean_n_randomized", "value"] == pytest.approx(res.n_randomized.mean(), abs=1e-9)
    assert trial.loc["n_looks", "value"] == pytest.approx(n_looks(res).mean(), abs=1e-9)
    c = spec.design.control_index
    assert (status(res)[:, c] == SHARED_CONTROL).all() and (res.status[:, c] == CONTROL).all()


def test_signature_table_splits_graduations(pioneer, pioneer_table):
    spec, res = pioneer
    arms = oc.arm_table(pioneer_table, spec.truth)
    sig = oc.subgroup_table(pioneer_table, spec.truth)
    experimental = [a for a in spec.design.arm_names if a != spec.design.control]
    # an arm graduates in one signature at most: its claims by signature add up to its claims
    assert (res.claimed.sum(axis=2) <= 1).all()
    by_arm = sig.p_claimed.groupby(level="arm").sum()
    np.testing.assert_allclose(by_arm[experimental], arms.p_claimed[experimental], rtol=0, atol=1e-12)
    for g, name in enumerate(res.subgroups):  # each signature's share is the graduations there
        graduated_here = extra(res, "graduated_in") == g
        for k in range(len(res.arms)):
            if k == spec.design.control_index:
                continue
            assert sig.loc[(res.arms[k], name), "p_claimed"] == pytest.approx(graduated_here[:, k].mean(), abs=1e-12)
    text = format_run(spec, pioneer_table)
    assert "P(claimed effective)" in text and all(a in text for a in experimental)
    assert all(name in text for name in res.subgroups)


def test_signature_truth_null_arms_have_no_effect(pioneer_truth):
    null = pioneer_truth[pioneer_truth.arm.isin(["durva_monalizumab", "dato_dxd"])]
    assert len(null) == 2 * 3
    assert np.abs(null.effect).max() < 1e-9 and null.null.all() and not null.works.any()


def test_signature_truth_plain_hazard_ratio_in_a_homogeneous_population():
    arms = [arm("control"), arm("arm"), arm("null_a")]
    truth = spec_of(design(arms)).truth.frame()
    eff = truth.set_index("arm").effect
    assert eff["arm"] == pytest.approx(math.log(HR), abs=1e-9)
    assert eff["null_a"] == pytest.approx(0.0, abs=1e-9)


def test_signature_truth_is_attenuated_by_prognostic_heterogeneity(pioneer_truth):
    """With prognostic markers the population's survival curves are mixtures, so the marginal
    cumulative-hazard ratio of a per-patient hazard ratio of 0.70 lies strictly between log(0.70) and 0
    (the hazard ratio is not collapsible)."""
    eff = pioneer_truth[pioneer_truth.arm == "durva_oleclumab"].effect.to_numpy()
    assert (eff > math.log(0.70) + 1e-4).all() and (eff < 0).all()


# --------------------------------------------------------------------------- 9. CLI


def test_cli_runs_a_platform_design(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["run", "--design", "pioneer_platform", "--n-sims", "50", "--quiet", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "P(claimed effective)" in result.output and "Arms by subgroup" in result.output
    names = {"oc.csv", "trials.parquet", "arms.parquet", "manifest.json", "design.yaml", "scenario.yaml"}
    assert names <= {p.name for p in out.iterdir()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and set(manifest["files"]) == names - {"manifest.json"} | {
        "populations/post_ici_nsclc.yaml"
    }
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 50 and trials["trial"].tolist() == list(range(50))
    arms = pd.read_parquet(out / "arms.parquet")
    assert len(arms) == 50 * 6
    summary = pd.read_csv(out / "oc.csv", keep_default_na=False)
    assert set(summary.level) == {"arm", "subgroup", "trial"}
    assert set(summary.loc[summary.level == "subgroup", "subgroup"]) == {"all", "stk11_or_keap1", "atm"}


def test_adaptive_platform_needs_a_control_share():
    d = design([arm("control"), arm("arm")])
    d["randomization"] = {"method": "adaptive", "scheme": "simple", "softening": 1.0}
    with pytest.raises(ConfigError, match="design.control_allocation"):
        parse_design(d)
