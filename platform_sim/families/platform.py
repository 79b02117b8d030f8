"""Platforms over calendar time: patients arrive, arms enter and leave, analyses fire on triggers.

A batch of simulated platforms moves forward event by event, each trial on its own
clock. An *event* is the next analysis (when its trigger fires), the next date an
arm becomes available while a slot is free, or the maximum duration. Between two
events the allocation probabilities are fixed, so every patient who arrives is
randomized on arrival by inverting their own uniform over the probabilities of
their stratum (simple randomization; an arm that reaches its cap closes at once
and the others share its probability). Because the patients and their uniforms
come from the scenario's streams, two designs run with one seed see the same
patients, and a patient's arm depends only on the probabilities in force.

At an analysis on date ``t`` the data are what the assessment schedule has shown
by ``t``: on progression-free survival, a patient randomized at ``r`` whose
progression is at ``e`` months is seen to progress at the first assessment after
``e`` (every ``assessment_weeks``), if that is before ``t - r`` and before dropout;
the progression is dated at the middle of the interval between the last
progression-free assessment and that one, and other patients are censored at their
last assessment. A binary or landmark outcome is seen ``assessment`` months after
randomization. Hazards get gamma posteriors (events, exposure) and rates beta
posteriors (responders, patients), per arm x stratum, against the concurrent
control patients (randomized while the arm was open) or all control patients.

A claim is a graduation in a *signature* (a union of strata, or all patients),
judged against the arm's exact effect among the signature's patients.

With sub-studies (``strata.groups``) each experimental arm belongs to one sub-study,
randomized against the shared control; a patient is routed when their result arrives
to the first open sub-study they match (else the non-match one), each sub-study is
its own signature, and an arm's controls are its sub-study's. Arms and sub-studies
also open and close on dates, on triggers (another sub-study closed, a number of
patients randomized) and from a queue of sub-studies waiting for a free slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numba import njit
from scipy import special

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .._sorting import sort_values
from ..allocation import allocate
from ..compiled import allocation_limits, control_share_table
from ..config import Design, Problem, Scenario
from ..config.population import expected_randomizable
from ..config.timeline import Platform
from ..outcomes import Enrolled, VirtualPatients
from ..posterior import beta_interval
from ..posterior.beta import prob_greater
from ..posterior.predictive import pp_confirmatory
from ..posterior.survival import (
    log_hr_moments,
    logrank_vs_control,
    pp_confirmatory_survival,
    prob_hr_below,
)
from ..results import TrialResults, Truth
from ..strata import StrataPlan
from .observation import outcome_seen as _seen

# Arm status in a platform.
WAITING = 0  # not yet entered (queue or before its date)
OPEN = 1  # randomizing
FULL = 2  # reached its cap; analysed until decided
GRADUATED = 3
DROPPED = 4
INCONCLUSIVE = 5  # undecided at the end
NOT_ENTERED = 6  # never entered
SHARED_CONTROL = 7
PLATFORM_STATUS = ("waiting", "open", "full", "graduated", "dropped", "inconclusive", "not_entered", "control")

UNBOUNDED = np.iinfo(np.int64).max // 4
WEEKS_PER_MONTH = 30.4375 / 7.0
PERIOD_MONTHS = 3.0  # width of the calendar periods of PlatformResults.n_period


@dataclass(frozen=True)
class PlatformDesign:
    """A platform design under a scenario, as arrays (see :meth:`from_spec`)."""

    arm_names: tuple[str, ...]
    treatments: tuple[str, ...]
    arm_treatment: np.ndarray  # (K,) column of each arm's treatment
    control: int
    caps: np.ndarray  # (K,)
    max_open: int
    max_duration: float
    follow_up: float
    assess: float  # months between tumour assessments
    read_at: float  # binary / landmark endpoints: months from randomization to the outcome
    survival: bool
    prior_a: np.ndarray  # (K,) beta a, or gamma shape
    prior_b: np.ndarray  # (K,) beta b, or gamma rate
    trigger: str
    every: float
    first: float
    min_new: int
    concurrent: bool
    graduate_by: str
    graduate: float
    drop: float  # NaN: no futility drop
    confirmatory_n: int
    confirmatory_events: int
    alpha: float
    min_n: int
    signatures: np.ndarray  # (G, S) bool
    signature_names: tuple[str, ...]
    strata_names: tuple[str, ...]
    # the randomization rule (attributes read by allocation.allocate)
    control_rule: str | None
    control_share_by_k: np.ndarray
    ratios: np.ndarray
    has_limits: bool
    rescale_limits: bool
    limits_rule: str
    min_allocation: np.ndarray
    max_allocation: np.ndarray
    adaptive: bool
    power: float
    burn_in_n: int
    # sub-studies over calendar time (strata groups); the defaults are a design with strata.by or none
    enter_at: np.ndarray  # (K,) months the arm becomes available
    close_at: np.ndarray  # (K,) months the arm stops randomizing (inf: never)
    routed: bool = False  # patients are routed at their result to the first open sub-study they match
    other: int = -1  # the non-match sub-study (-1: none)
    to_other: bool = True  # a patient whose matched sub-studies are all closed goes to the non-match one
    arm_in: np.ndarray | None = None  # (K, S) bool: the arm randomizes in the stratum (None: every arm everywhere)
    arm_signature: np.ndarray | None = None  # (K, G) bool: the arm can graduate in the signature (None: all)
    home_signature: np.ndarray | None = None  # (K,) the signature of the arm's estimates (None: all patients)
    open_order: np.ndarray | None = None  # experimental arms in the order they take free slots
    slot_limited: np.ndarray | None = None  # (K,) bool: the arm waits for a free slot (max_open)
    after_closed: np.ndarray | None = None  # (K,) sub-study whose closing opens the arm (-1: none)
    after_enrolled: np.ndarray | None = None  # (K,) patients randomized before the arm opens (0: none)
    time_adjustment: str = "none"  # platform.time_adjustment (families/platform_period.py)

    @property
    def n_arms(self) -> int:
        return len(self.arm_names)

    @property
    def n_strata(self) -> int:
        return len(self.strata_names)

    @classmethod
    def from_models(cls, d, scenario, patients, plan) -> PlatformDesign:
        """The platform design ``d`` under ``scenario`` as arrays (``plan``: its strata, or None)."""
        pf = d.platform
        names = tuple(d.arm_names)
        n_arms = len(names)
        ctrl = d.control_index
        ep = scenario.endpoints[d.endpoint.name]
        survival = ep.kind == "time_to_event"
        if survival:
            prior_a = np.full(n_arms, pf.hazard_prior.shape)
            prior_b = np.full(n_arms, pf.hazard_prior.rate)
        else:
            prior_a = np.array([(a.prior or d.prior).a for a in d.arms], dtype=float)
            prior_b = np.array([(a.prior or d.prior).b for a in d.arms], dtype=float)
        read_at = patients.outcomes.assessment_months(d.endpoint.name)
        assess = pf.assessment_weeks / WEEKS_PER_MONTH
        if not survival and read_at <= 0:
            read_at = assess
        strata_names = plan.names if plan is not None else ("all",)
        n_strata = len(strata_names)
        g = pf.graduation
        groups = d.strata.groups if d.strata is not None else None
        if groups is not None:  # each arm graduates in its own sub-study
            sig_names, sig = tuple(strata_names), np.eye(n_strata, dtype=bool)
        elif g.signatures is not None:
            sig_names = tuple(g.signatures)
            sig = np.array([[s in g.signatures[name] for s in strata_names] for name in sig_names], dtype=bool)
        elif n_strata > 1:
            sig_names = tuple(strata_names) + ("all",)
            sig = np.vstack([np.eye(n_strata, dtype=bool), np.ones((1, n_strata), dtype=bool)])
        else:
            sig_names, sig = ("all",), np.ones((1, 1), dtype=bool)
        treatments = tuple(dict.fromkeys(a.treatment for a in d.arms))
        rnd = d.randomization
        ca = d.control_allocation
        control_rule = ca.rule if ca is not None else None
        share_by_k = control_share_table(ca, control_rule, n_arms)
        adaptive_arms = [a for a in names if not (control_rule is not None and a == d.control)]

        def limits(value, default):
            return allocation_limits(value, names, adaptive_arms, default)

        it = pf.interims
        every = it.every_months if it.trigger == "calendar" else float(it.every_enrolled or it.every_observed)
        calendar: dict[str, Any] = {
            "enter_at": np.array([a.enter_months or 0.0 for a in d.arms], dtype=float),
            "close_at": np.array([a.closes_months if a.closes_months is not None else np.inf for a in d.arms]),
        }
        if groups is not None:
            calendar.update(_substudy_arrays(d, plan))
        return cls(
            arm_names=names,
            treatments=treatments,
            arm_treatment=np.array([treatments.index(a.treatment) for a in d.arms], dtype=np.int64),
            control=ctrl,
            caps=np.array([a.max_n if a.max_n is not None else UNBOUNDED for a in d.arms], dtype=np.int64),
            max_open=pf.max_open_arms or n_arms,
            max_duration=pf.max_duration_months,
            follow_up=pf.follow_up_months,
            assess=assess,
            read_at=read_at,
            survival=survival,
            prior_a=prior_a,
            prior_b=prior_b,
            trigger=it.trigger,
            every=float(every),
            first=float(it.first) if it.trigger == "calendar" else math.nan,
            min_new=it.min_new_outcomes,
            concurrent=pf.controls == "concurrent",
            graduate_by=g.by,
            graduate=g.graduate,
            drop=math.nan if g.drop is None else g.drop,
            confirmatory_n=g.confirmatory_n,
            confirmatory_events=g.confirmatory_events or g.confirmatory_n,
            alpha=g.alpha,
            min_n=g.min_n,
            signatures=sig,
            signature_names=sig_names,
            strata_names=tuple(strata_names),
            control_rule=control_rule,
            control_share_by_k=share_by_k,
            ratios=np.array([rnd.ratios[a] if rnd.ratios else 1.0 for a in names], dtype=float),
            has_limits=rnd.min_allocation is not None or rnd.max_allocation is not None,
            rescale_limits=rnd.rescale_limits,
            limits_rule=rnd.limits,
            min_allocation=limits(rnd.min_allocation, 0.0),
            max_allocation=limits(rnd.max_allocation, 1.0),
            adaptive=rnd.method == "adaptive",
            power=float(rnd.softening or 0.0) if rnd.method == "adaptive" else 0.0,
            burn_in_n=rnd.burn_in_n,
            **calendar,
            time_adjustment=pf.time_adjustment,
        )


def _substudy_arrays(d, plan) -> dict:
    """PlatformDesign fields of a design with sub-studies (strata groups): where each arm randomizes,
    when it opens and closes, and the order it takes free slots in."""
    groups = d.strata.groups
    names = list(d.arm_names)
    n_arms = len(names)
    ctrl = d.control_index
    arm_in = plan.arm_in.T.copy()  # (K, S)
    experimental = np.ones(n_arms, dtype=bool)
    experimental[ctrl] = False
    home = np.zeros(n_arms, dtype=np.int64)
    enter = np.array([a.enter_months or 0.0 for a in d.arms], dtype=float)
    close = np.array([a.closes_months if a.closes_months is not None else np.inf for a in d.arms], dtype=float)
    after_closed = np.full(n_arms, -1, dtype=np.int64)
    after_enrolled = np.zeros(n_arms, dtype=np.int64)
    group_index = {g.name: s for s, g in enumerate(groups)}
    for s, g in enumerate(groups):
        for k in np.flatnonzero(arm_in[:, s] & experimental):
            home[k] = s
            if g.opens_months is not None:
                enter[k] = max(enter[k], g.opens_months)
            if g.closes_months is not None:
                close[k] = min(close[k], g.closes_months)
            if g.opens_after is not None:
                if g.opens_after.closed is not None:
                    after_closed[k] = group_index[g.opens_after.closed]
                else:
                    after_enrolled[k] = g.opens_after.enrolled
    queue = d.platform.queue
    arm_order = [k for k in range(n_arms) if k != ctrl]
    if queue is None:
        open_order, slot_limited = np.array(arm_order, dtype=np.int64), np.ones(n_arms, dtype=bool)
    else:
        queued = [k for q in queue for k in arm_order if home[k] == group_index[q]]
        free = [k for k in arm_order if k not in queued]
        open_order = np.array(free + queued, dtype=np.int64)
        slot_limited = np.zeros(n_arms, dtype=bool)
        slot_limited[queued] = True
    strategy = d.strata.closed_match or "other"
    return dict(
        enter_at=enter,
        close_at=close,
        routed=True,
        other=plan.other,
        to_other=strategy == "other",
        arm_in=arm_in,
        arm_signature=arm_in.copy(),
        home_signature=home,
        open_order=open_order,
        slot_limited=slot_limited,
        after_closed=after_closed,
        after_enrolled=after_enrolled,
    )


@dataclass
class PlatformPool:
    """The randomizable patients of T trials, in order of randomization date (months)."""

    arrive: np.ndarray  # (T, N) float64, increasing along each row
    stratum: np.ndarray  # (T, N) int16, -1: no stratum (not classified)
    u: np.ndarray  # (T, N) float64 randomization uniforms
    outcomes: np.ndarray  # (T, N, treatments): event times (float32 months) or bool outcomes
    dropout: np.ndarray  # (T, N) float64 months from randomization to dropout (inf: none)
    match: np.ndarray | None = None  # (T, N) int64 bit masks of the sub-studies the patient matches (routed
    #   designs; ``stratum`` then holds the sub-study each patient was routed to, or the first they match)


@dataclass
class PlatformResults:
    """T simulated platforms; arrays lead with the trial, then the arm (K) or stratum (S)."""

    status: np.ndarray  # (T, K) int8 PLATFORM_STATUS codes
    opened_at: np.ndarray  # (T, K) months the arm opened (NaN: never)
    closed_at: np.ndarray  # (T, K) months the arm stopped randomizing (NaN: never opened)
    decided_at: np.ndarray  # (T, K) months of the graduation / drop / final decision (NaN: none)
    graduated_in: np.ndarray  # (T, K) int8 signature the arm graduated in (-1: none)
    n: np.ndarray  # (T, K) patients randomized
    n_stratum: np.ndarray  # (T, K, S) patients randomized per stratum
    events: np.ndarray  # (T, K) events (responders, or progressions) seen at the final analysis
    events_stratum: np.ndarray  # (T, K, S) the same per stratum
    effect_at_decision: np.ndarray  # (T, K) posterior mean effect when the arm was decided (NaN: not decided)
    effect_concurrent: np.ndarray  # (T, K) final posterior mean effect vs concurrent controls
    effect_all: np.ndarray  # (T, K) final posterior mean effect vs all controls
    z_concurrent: np.ndarray  # (T, K) final log-rank (or two-proportion) z vs concurrent controls; < 0 favours the arm
    z_all: np.ndarray  # (T, K) the same vs all controls
    prob_better: np.ndarray  # (T, K) final P(arm better than control) with the design's controls
    estimate: np.ndarray  # (T, K) final median PFS (months) or response rate, posterior median / mean
    n_looks: np.ndarray  # (T,) analyses done
    enrolment_end: np.ndarray  # (T,) months
    duration: np.ndarray  # (T,) months to the last decision
    first_graduation: np.ndarray  # (T,) months (NaN: no arm graduated)
    n_not_assigned: np.ndarray  # (T,) randomizable patients who came while no arm of their stratum was open
    n_unclassified: np.ndarray  # (T,) randomizable patients without a stratum
    n_randomizable: np.ndarray  # (T,) patients who passed screening before enrolment ended
    n_period: np.ndarray | None = None  # (T, B, K) patients randomized per arm in calendar period b:
    #   months [b, b + 1) x PERIOD_MONTHS (the allocation over the platform's course)
    n_screened: np.ndarray | None = None  # (T,) patients screened before enrolment ended
    effect_adjusted: np.ndarray | None = None  # (T, K) final period-adjusted log-odds / log hazard ratio

    @property
    def n_trials(self) -> int:
        return self.status.shape[0]

    @classmethod
    def concatenate(cls, parts: list[PlatformResults]) -> PlatformResults:
        joined: dict = {
            f.name: None if getattr(parts[0], f.name) is None else np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(cls)
        }
        return cls(**joined)


# ----------------------------------------------------------------------------------- kernels


@njit(cache=True)
def _pick_arm(probs, n_arm, caps, u):
    """The arm a patient is randomized to: arms below their cap, with probabilities ``probs`` (K,)
    renormalized over them, chosen by the uniform ``u`` in arm order; -1 when none can take them."""
    total = 0.0
    for k in range(probs.shape[0]):
        if n_arm[k] < caps[k]:
            total += probs[k]
    if total <= 0.0:
        return -1
    x = u * total
    acc = 0.0
    pick = -1
    for k in range(probs.shape[0]):
        if n_arm[k] < caps[k] and probs[k] > 0.0:
            acc += probs[k]
            pick = k
            if x < acc:
                break
    return pick


@njit(cache=True)
def _assign(arrive, stratum, u, probs, n_arm, caps, t0, t1, rows, assigned, full_at):
    """Randomize the patients of trial ``rows[i]`` arriving in (t0[i], t1[i]] (in order)."""
    for ii in range(rows.size):
        r = rows[ii]
        i = np.searchsorted(arrive[r], t0[ii], side="right")
        while i < arrive.shape[1] and arrive[r, i] <= t1[ii]:
            s = stratum[r, i]
            assigned[r, i] = -1
            if s >= 0:
                pick = _pick_arm(probs[ii, s], n_arm[r], caps, u[r, i])
                if pick >= 0:
                    assigned[r, i] = pick
                    n_arm[r, pick] += 1
                    if n_arm[r, pick] == caps[pick]:
                        full_at[r, pick] = arrive[r, i]
            i += 1


@njit(cache=True)
def _takes(probs, ii, s, n_arm, r, caps, arm_in, control):
    """Whether sub-study ``s`` takes patients now: one of its experimental arms is open and not full."""
    for k in range(caps.size):
        if k != control and arm_in[k, s] and n_arm[r, k] < caps[k] and probs[ii, s, k] > 0.0:
            return True
    return False


@njit(cache=True)
def _assign_routed(
    arrive, match, stratum, u, probs, n_arm, caps, arm_in, control, other, to_other, t0, t1, rows, assigned, full_at
):
    """Route and randomize the patients of trial ``rows[i]`` whose results arrive in (t0[i], t1[i]]: each
    goes to the first sub-study they match (priority order) that is open at that moment, else to the
    non-match sub-study ``other`` (when ``to_other``, or when they match no specific sub-study), else
    nowhere; then is randomized with that sub-study's probabilities. ``stratum`` records the sub-study."""
    n_strata = arm_in.shape[1]
    for ii in range(rows.size):
        r = rows[ii]
        i = np.searchsorted(arrive[r], t0[ii], side="right")
        while i < arrive.shape[1] and arrive[r, i] <= t1[ii]:
            assigned[r, i] = -1
            m = match[r, i]
            chosen = -1
            specific = False
            for s in range(n_strata):
                if s == other or (m >> s) & 1 == 0:
                    continue
                specific = True
                if _takes(probs, ii, s, n_arm, r, caps, arm_in, control):
                    chosen = s
                    break
            if (
                chosen < 0
                and other >= 0
                and (to_other or not specific)
                and (m >> other) & 1 == 1
                and _takes(probs, ii, other, n_arm, r, caps, arm_in, control)
            ):
                chosen = other
            if chosen >= 0:
                stratum[r, i] = chosen
                pick = _pick_arm(probs[ii, chosen], n_arm[r], caps, u[r, i])
                if pick >= 0:  # (the sub-study was chosen because it takes the patient)
                    assigned[r, i] = pick
                    n_arm[r, pick] += 1
                    if n_arm[r, pick] == caps[pick]:
                        full_at[r, pick] = arrive[r, i]
            i += 1


def _randomize(pd: PlatformDesign, pool: PlatformPool, st, probs, t0, t1, rows) -> None:
    """Randomize the patients arriving in (t0, t1] of each trial of ``rows`` (routed to sub-studies first
    when the design has them)."""
    if pd.routed:
        _assign_routed(
            pool.arrive,
            pool.match,
            pool.stratum,
            pool.u,
            probs,
            st.n_arm,
            pd.caps,
            pd.arm_in,
            pd.control,
            pd.other,
            pd.to_other,
            t0,
            t1,
            rows,
            st.assigned,
            st.full_at,
        )
    else:
        _assign(pool.arrive, pool.stratum, pool.u, probs, st.n_arm, pd.caps, t0, t1, rows, st.assigned, st.full_at)


@njit(cache=True)
def _undo_after(arrive, assigned, n_arm, full_at, rows, t):
    """Forget tentative assignments after t[i] (they are redrawn with the next probabilities)."""
    for ii in range(rows.size):
        r = rows[ii]
        i = np.searchsorted(arrive[r], t[ii], side="right")
        while i < arrive.shape[1]:
            k = assigned[r, i]
            if k >= 0:
                n_arm[r, k] -= 1
                assigned[r, i] = -1
            i += 1
        for k in range(n_arm.shape[1]):
            if full_at[r, k] > t[ii]:
                full_at[r, k] = np.nan


@njit(cache=True)
def _tally(
    arrive,
    stratum,
    assigned,
    outcomes,
    dropout,
    arm_treatment,
    control,
    opened,
    closed,
    rows,
    t,
    assess,
    survival,
    read_at,
    out_n,
    out_y,
    out_x,
    ctrl_n,
    ctrl_y,
    ctrl_x,
    seen,
):
    """Outcomes seen by t[i] per arm x stratum (patients with an outcome, events, time at risk), the
    control's per arm it was concurrent with, and the number of outcomes seen."""
    n_arms = arm_treatment.size
    for ii in range(rows.size):
        r = rows[ii]
        count = 0
        for i in range(arrive.shape[1]):
            a = arrive[r, i]
            if a > t[ii]:
                break
            k = assigned[r, i]
            if k < 0:
                continue
            s = stratum[r, i]
            has, event, x, _ = _seen(
                outcomes[r, i, arm_treatment[k]], dropout[r, i], a, t[ii], assess, survival, read_at
            )
            if has:
                count += 1
            if not (survival or has):
                continue  # binary outcome not read yet
            y_add = 1.0 if event else 0.0
            out_n[ii, k, s] += 1.0
            out_y[ii, k, s] += y_add
            out_x[ii, k, s] += x
            if k == control:
                for j in range(n_arms):
                    if j != control and opened[r, j] <= a and a <= closed[r, j]:
                        ctrl_n[ii, j, s] += 1.0
                        ctrl_y[ii, j, s] += y_add
                        ctrl_x[ii, j, s] += x
        seen[ii] = count


@njit(cache=True)
def _outcome_dates(e, c, a, assess, survival, read_at):
    """The dates that decide what :func:`~platform_sim.families.observation.outcome_seen` shows of
    a patient randomized at ``a`` at any date t: (the date the outcome is seen, inf: never; the
    time at risk once a progression is seen, or (binary) 1.0 for an event; the dropout the
    follow-up is censored at, inf: none). By t, a progression is seen when due <= t, with that
    time at risk; otherwise the time at risk is floor(min(t - a, censor) / assess) * assess: the
    same operations on the same numbers as ``outcome_seen``, so the same values bit for bit."""
    if survival:
        found = np.inf
        j = 0.0
        if np.isfinite(e):
            j = max(math.ceil(e / assess), 1)
            found = j * assess
        if found <= c:
            return a + found, (j - 0.5) * assess, np.inf
        return np.inf, 0.0, c
    return a + read_at, 1.0 if e > 0.5 else 0.0, np.inf


@njit(cache=True)
def _copy_cells(dst, src):
    """dst[...] = src for (K, S) tallies, as a plain loop."""
    for k in range(src.shape[0]):
        for s in range(src.shape[1]):
            dst[k, s] = src[k, s]


@njit(cache=True)
def _keep_front(
    r, i, tt, count, on, oy, ox, cn, cy, cx, front, front_t, pre_n, pre_y, pre_x, pre_cn, pre_cy, pre_cx, pre_seen
):
    """Record trial r's front: its first i patients are settled at tt, with these tallies."""
    front[r] = i
    front_t[r] = tt
    _copy_cells(pre_n[r], on)
    _copy_cells(pre_y[r], oy)
    _copy_cells(pre_x[r], ox)
    _copy_cells(pre_cn[r], cn)
    _copy_cells(pre_cy[r], cy)
    _copy_cells(pre_cx[r], cx)
    pre_seen[r] = count


@njit(cache=True)
def _tally_resumed(
    arrive,
    stratum,
    assigned,
    outcomes,
    dropout,
    arm_treatment,
    control,
    opened,
    closed,
    rows,
    t,
    assess,
    survival,
    read_at,
    out_n,
    out_y,
    out_x,
    ctrl_n,
    ctrl_y,
    ctrl_x,
    seen,
    front,
    front_t,
    pre_n,
    pre_y,
    pre_x,
    pre_cn,
    pre_cy,
    pre_cx,
    pre_seen,
    filled,
    due,
    at_due,
    censor,
):
    """:func:`_tally`, resumed where the patients stop being settled: the same sums, bit for bit.

    Trial r's first ``front[r]`` patients were all *settled* at date ``front_t[r]``: randomized
    before it and unassigned, or with an outcome that no longer changes (a progression or binary
    outcome seen, or censored at dropout), and their tallies, in patient order, are
    ``pre_*[r]`` (K, S) and ``pre_seen[r]``. A later date gives those patients the same
    contributions: an outcome once seen stays seen, and an arm's concurrency window cannot change
    for them (arms open and close on the dates of analyses or events at or after ``front_t``, and
    the patients were randomized before it). Each sum is the same sequence of additions as the
    full scan: the prefix's partial sum, then the later patients in order. A date before
    ``front_t[r]`` is tallied from the first patient. After each row the front moves past the
    run of patients settled at t[i].

    ``due``, ``at_due``, ``censor`` (T, N) hold the :func:`_outcome_dates` of trial r's first
    ``filled[r]`` patients (those randomized, by the date of a tally, keep their arm), worked out
    at the first tally that reaches them."""
    n_patients = arrive.shape[1]
    for ii in range(rows.size):
        r = rows[ii]
        tt = t[ii]
        i = filled[r]
        while i < n_patients and arrive[r, i] <= tt:
            k = assigned[r, i]
            if k >= 0:
                due[r, i], at_due[r, i], censor[r, i] = _outcome_dates(
                    outcomes[r, i, arm_treatment[k]], dropout[r, i], arrive[r, i], assess, survival, read_at
                )
            i += 1
        filled[r] = max(filled[r], i)
        on, oy, ox = out_n[ii], out_y[ii], out_x[ii]
        cn, cy, cx = ctrl_n[ii], ctrl_y[ii], ctrl_x[ii]
        i = 0
        count = 0
        extending = tt >= front_t[r]  # resume after the settled patients, then move the front
        if extending:
            i = front[r]
            count = pre_seen[r]
            _copy_cells(on, pre_n[r])
            _copy_cells(oy, pre_y[r])
            _copy_cells(ox, pre_x[r])
            _copy_cells(cn, pre_cn[r])
            _copy_cells(cy, pre_cy[r])
            _copy_cells(cx, pre_cx[r])
        while i < n_patients:
            a = arrive[r, i]
            if a > tt:
                break
            k = np.int64(assigned[r, i])
            has = due[r, i] <= tt
            if extending:
                # settled: randomized before tt and unassigned, seen, or (survival) followed to dropout
                settled = a < tt and (k < 0 or has or (survival and tt - a >= censor[r, i]))
                if not settled:
                    extending = False
                    _keep_front(
                        r,
                        i,
                        tt,
                        count,
                        on,
                        oy,
                        ox,
                        cn,
                        cy,
                        cx,
                        front,
                        front_t,
                        pre_n,
                        pre_y,
                        pre_x,
                        pre_cn,
                        pre_cy,
                        pre_cx,
                        pre_seen,
                    )
            if k >= 0 and (survival or has):
                s = np.int64(stratum[r, i])
                if survival:
                    at_risk = math.floor(min(tt - a, censor[r, i]) / assess) * assess  # (either way: no branch)
                    x = at_due[r, i] if has else at_risk
                    y_add = 1.0 if has else 0.0
                else:
                    x = 0.0
                    y_add = 1.0 if at_due[r, i] > 0.5 else 0.0
                count += 1 if has else 0
                on[k, s] += 1.0
                oy[k, s] += y_add
                ox[k, s] += x
                if k == control:
                    for j in range(opened.shape[1]):
                        if j != control and opened[r, j] <= a and a <= closed[r, j]:
                            cn[j, s] += 1.0
                            cy[j, s] += y_add
                            cx[j, s] += x
            i += 1
        if extending:  # every patient up to tt settled
            _keep_front(
                r,
                i,
                tt,
                count,
                on,
                oy,
                ox,
                cn,
                cy,
                cx,
                front,
                front_t,
                pre_n,
                pre_y,
                pre_x,
                pre_cn,
                pre_cy,
                pre_cx,
                pre_seen,
            )
        seen[ii] = count


@njit(cache=True)
def _count_time(
    arrive, assigned, outcomes, dropout, arm_treatment, rows, target, by_outcome, assess, survival, read_at, scratch
):
    """Date at which the ``target[i]``-th patient is randomized (by_outcome False) or the
    ``target[i]``-th outcome is seen (True), given the current assignments; inf if never."""
    out = np.full(rows.size, np.inf)
    for ii in range(rows.size):
        r = rows[ii]
        m = 0
        for i in range(arrive.shape[1]):
            k = assigned[r, i]
            if k < 0:
                continue
            if by_outcome:
                _, _, _, when = _seen(
                    outcomes[r, i, arm_treatment[k]], dropout[r, i], arrive[r, i], np.inf, assess, survival, read_at
                )
                scratch[m] = when
            else:
                scratch[m] = arrive[r, i]
            m += 1
        need = int(target[ii])
        if need <= m:
            part = sort_values(scratch[:m])
            out[ii] = part[need - 1]
    return out


@njit(cache=True)
def _observe(arrive, assigned, outcomes, dropout, arm_treatment, t, assess, survival, read_at, time, event):
    """Each patient's (time, event) at the trial's final analysis date t[r] (NaN time: not randomized)."""
    for r in range(arrive.shape[0]):
        for i in range(arrive.shape[1]):
            k = assigned[r, i]
            if k < 0 or arrive[r, i] > t[r]:
                continue
            has, ev, x, _ = _seen(
                outcomes[r, i, arm_treatment[k]], dropout[r, i], arrive[r, i], t[r], assess, survival, read_at
            )
            if survival:
                time[r, i] = x
                event[r, i] = ev
            elif has:
                time[r, i] = 1.0
                event[r, i] = ev


# ----------------------------------------------------------------------------------- posteriors


def _posterior(pd: PlatformDesign, n, y, x):
    """Posterior parameters from (patients, events, time at risk) arrays whose axis 1 is the arm."""
    shape = (1, -1) + (1,) * (n.ndim - 2)
    a0, b0 = pd.prior_a.reshape(shape), pd.prior_b.reshape(shape)
    if pd.survival:
        return a0 + y, b0 + x
    return a0 + y, b0 + n - y


def _control_posterior(pd: PlatformDesign, n, y, x):
    c = pd.control
    if pd.survival:
        return pd.prior_a[c] + y, pd.prior_b[c] + x
    return pd.prior_a[c] + y, pd.prior_b[c] + n - y


def _prob_better(pd: PlatformDesign, a, b, ac, bc):
    """P(arm better than control): P(hazard ratio < 1) or P(p_arm > p_control)."""
    if pd.survival:
        return prob_hr_below(a, b, ac, bc, 1.0)
    a, b, ac, bc = np.broadcast_arrays(a, b, ac, bc)
    return prob_greater(a, b, ac, bc)


def _success(pd: PlatformDesign, n, y, x, cn, cy, cx):
    """The graduation rule's success probability for arrays (..., K, G) of pooled data."""
    a, b = _posterior(pd, n, y, x)
    ac, bc = _control_posterior(pd, cn, cy, cx)
    if pd.graduate_by == "posterior":
        return _prob_better(pd, a, b, ac, bc)
    if pd.survival:
        return pp_confirmatory_survival(a, b, ac, bc, pd.confirmatory_events, pd.alpha)
    # binary: exact predictive probability of the confirmatory z-test, prior per arm
    y_t, n_t, y_c, n_c = (np.rint(v).astype(np.int64) for v in np.broadcast_arrays(y, n, cy, cn))
    out = np.empty(y_t.shape)
    for k in range(pd.n_arms):
        if k == pd.control:
            out[:, k] = np.nan
            continue
        out[:, k] = pp_confirmatory(
            y_t[:, k],
            n_t[:, k],
            y_c[:, k],
            n_c[:, k],
            pd.confirmatory_n // 2,
            pd.alpha,
            (pd.prior_a[k], pd.prior_b[k]),
            prior_c=(pd.prior_a[pd.control], pd.prior_b[pd.control]),
        )
    return out


def _success_of(pd: PlatformDesign, live, n, y, x, cn, cy, cx):
    """:func:`_success` (R, K, G) for the arms ``live`` (R, K) only, NaN elsewhere.

    The rule's functions are elementwise, so each computed value is the one :func:`_success`
    gives for that arm (bit for bit: the same posteriors, the same functions of them); the binary
    predictive rule, which runs per arm, is computed whole."""
    if pd.survival or pd.graduate_by == "posterior":
        a, b = _posterior(pd, n, y, x)
        ac, bc = _control_posterior(pd, cn, cy, cx)
        a, b, ac, bc = np.broadcast_arrays(a, b, ac, bc)
        r_idx, k_idx = np.nonzero(live)
        out = np.full(a.shape, np.nan)
        if r_idx.size:
            pick = (r_idx, k_idx)
            if pd.graduate_by == "posterior":
                out[pick] = _prob_better(pd, a[pick], b[pick], ac[pick], bc[pick])
            else:
                out[pick] = pp_confirmatory_survival(
                    a[pick], b[pick], ac[pick], bc[pick], pd.confirmatory_events, pd.alpha
                )
        return out
    return _success(pd, n, y, x, cn, cy, cx)


def _effect_of(pd: PlatformDesign, r_idx, k_idx, n, y, x, cn, cy, cx):
    """:func:`_effect` of the arms (r_idx, k_idx) of (R, K) tallies: (m,), elementwise the same values."""
    a, b = _posterior(pd, n, y, x)
    ac, bc = _control_posterior(pd, cn, cy, cx)
    a, b, ac, bc = (np.broadcast_to(v, n.shape)[r_idx, k_idx] for v in (a, b, ac, bc))
    if pd.survival:
        return log_hr_moments(a, b, ac, bc)[0]
    return a / (a + b) - ac / (ac + bc)


def _effect(pd: PlatformDesign, n, y, x, cn, cy, cx):
    """Posterior mean effect: log hazard ratio (survival) or rate difference (binary)."""
    a, b = _posterior(pd, n, y, x)
    ac, bc = _control_posterior(pd, cn, cy, cx)
    if pd.survival:
        return log_hr_moments(a, b, ac, bc)[0]
    return a / (a + b) - ac / (ac + bc)


# ----------------------------------------------------------------------------------- engine


class _State:
    """Per-trial state of a chunk of platforms."""

    def __init__(self, pd: PlatformDesign, pool: PlatformPool, trace=None):
        self.trace = trace  # a platform_sim.trace.Trace recording one platform, or None
        T, N = pool.arrive.shape
        K, S = pd.n_arms, pd.n_strata
        self.status = np.full((T, K), WAITING, dtype=np.int8)
        self.status[:, pd.control] = SHARED_CONTROL
        self.opened = np.full((T, K), np.nan)
        self.closed = np.full((T, K), np.nan)
        self.full_at = np.full((T, K), np.nan)
        self.decided = np.full((T, K), np.nan)
        self.graduated_in = np.full((T, K), -1, dtype=np.int8)
        self.effect_at_decision = np.full((T, K), np.nan)
        self.n_arm = np.zeros((T, K), dtype=np.int64)
        self.assigned = np.full((T, N), -1, dtype=np.int8)
        self.t = np.zeros(T)
        self.running = np.ones(T, dtype=bool)
        self.probs = np.zeros((T, S, K))
        self.count = np.zeros(T)  # trigger count (patients or outcomes) at the last analysis
        self.seen_last = np.zeros(T)  # outcomes seen at the last analysis
        self.next_cal = np.full(T, pd.first)
        self.n_looks = np.zeros(T, dtype=np.int32)
        self.end = np.full(T, np.nan)
        self.duration = np.full(T, np.nan)
        # the tallies of the last interim analysis, (rows, dates, arm, ctrl, seen), which the
        # allocation that follows it on the same dates reads instead of tallying again
        self.tallies: tuple | None = None
        # the final analyses' tallies (date (T,), arm, ctrl, seen), which the results read
        self.final_tallies: tuple | None = None
        # where each trial's tally resumes (_tally_resumed): the patients settled at front_t
        self.front = np.zeros(T, dtype=np.int64)
        self.front_t = np.full(T, -np.inf)
        self.prefix = [np.zeros((T, K, S)) for _ in range(6)]
        self.prefix_seen = np.zeros(T, dtype=np.int64)
        # each randomized patient's outcome dates (_outcome_dates), for the first ``filled`` patients
        self.filled = np.zeros(T, dtype=np.int64)
        self.due = np.empty((T, N))
        self.at_due = np.empty((T, N))
        self.censor = np.empty((T, N))


def simulate_platform(pd: PlatformDesign, pool: PlatformPool, trace=None) -> PlatformResults:
    """Simulate one platform per row of the pool (see the module docstring). A
    :class:`~platform_sim.trace.Trace` records one platform's analyses and allocation changes."""
    st = _State(pd, pool, trace)
    T, N = pool.arrive.shape
    scratch = np.empty(N)
    all_rows = np.arange(T)
    _open_arms(pd, st, all_rows, np.zeros(T))
    st.probs[:] = _allocation(pd, st, all_rows, None, np.zeros(T))
    if trace is not None:
        trace.record("allocation", all_rows, t=np.zeros(T), probs=st.probs, status=st.status)
    while st.running.any():
        rows = np.flatnonzero(st.running)
        t0 = st.t[rows]
        st.tallies = None
        before = st.status[rows].copy()
        # --- when does the next thing happen?
        n_open = (st.status[rows] == OPEN).sum(axis=1)
        waiting = st.status[rows] == WAITING
        entry = _next_entry(pd, waiting, n_open, t0)
        horizon = _next_closing(pd, st.status[rows], t0, np.full(rows.size, pd.max_duration))
        probs = st.probs[rows]
        if pd.trigger == "calendar":
            look_at = st.next_cal[rows]
            t1 = np.minimum(np.minimum(look_at, entry), horizon)
            _randomize(pd, pool, st, probs, t0, t1, rows)
        else:
            _randomize(pd, pool, st, probs, t0, horizon, rows)
            by_outcome = pd.trigger == "observed"
            target = (np.floor(st.count[rows] / pd.every) + 1) * pd.every
            look_at = _count_time(
                pool.arrive,
                st.assigned,
                pool.outcomes,
                pool.dropout,
                pd.arm_treatment,
                rows,
                target,
                by_outcome,
                pd.assess,
                pd.survival,
                pd.read_at,
                scratch,
            )
            t1 = np.minimum(np.minimum(look_at, entry), horizon)
            _undo_after(pool.arrive, st.assigned, st.n_arm, st.full_at, rows, t1)
        st.t[rows] = t1
        # arms that filled up stop randomizing (their slot frees at the next analysis)
        filled = (st.status[rows] == OPEN) & ~np.isnan(st.full_at[rows])
        st.closed[rows] = np.where(filled, st.full_at[rows], st.closed[rows])
        st.status[rows] = np.where(filled, FULL, st.status[rows])
        if np.isfinite(pd.close_at).any():
            _close_on_dates(pd, st, rows, t1)

        # --- analyses
        is_look = look_at <= t1
        if pd.trigger == "calendar":
            st.next_cal[rows[is_look]] += pd.every
        analysed = np.zeros(rows.size, dtype=bool)
        if is_look.any():
            analysed[is_look] = _analyse(pd, st, pool, rows[is_look], t1[is_look], final=False)
        # --- end of enrolment, arms entering, next allocation
        n_open = (st.status[rows] == OPEN).sum(axis=1)
        waiting = (st.status[rows] == WAITING).any(axis=1)
        ended = (t1 >= pd.max_duration) | ((n_open == 0) & ~waiting)
        if ended.any():
            _finish(pd, st, pool, rows[ended], t1[ended])
        go = ~ended
        if go.any():
            _open_arms(pd, st, rows[go], t1[go])
            # allocation changes after an analysis (one skipped for too few new outcomes does not
            # count) or when arms opened or closed
            update = go & (analysed | (st.status[rows] != before).any(axis=1))
            if update.any():
                st.probs[rows[update]] = _allocation(pd, st, rows[update], pool, t1[update])
                if trace is not None:
                    r = rows[update]
                    trace.record("allocation", r, t=t1[update], probs=st.probs[r], status=st.status[r])
    if trace is not None:
        trace.keep(assigned=st.assigned, stratum=pool.stratum)  # routed designs fill the strata as they go
    return _results(pd, st, pool)


def _next_entry(pd: PlatformDesign, waiting: np.ndarray, n_open: np.ndarray, t0: np.ndarray) -> np.ndarray:
    """(R,) the next date an arm waiting at t0 becomes available and could open (inf: none): arms that
    wait for a slot count only while one is free."""
    later = waiting & (pd.enter_at[None, :] > t0[:, None])
    if pd.slot_limited is None:
        entry = np.where(later, pd.enter_at[None, :], np.inf).min(axis=1)
        return np.where(n_open < pd.max_open, entry, np.inf)
    limited = np.where(later & pd.slot_limited, pd.enter_at[None, :], np.inf).min(axis=1)
    free = np.where(later & ~pd.slot_limited, pd.enter_at[None, :], np.inf).min(axis=1)
    return np.minimum(np.where(n_open < pd.max_open, limited, np.inf), free)


def _next_closing(pd: PlatformDesign, status: np.ndarray, t0: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """(R,) the earlier of ``horizon`` and the next date an open arm closes on its calendar."""
    if not np.isfinite(pd.close_at).any():
        return horizon
    closing = np.where((status == OPEN) & (pd.close_at[None, :] > t0[:, None]), pd.close_at[None, :], np.inf)
    return np.minimum(horizon, closing.min(axis=1))


def _close_on_dates(pd: PlatformDesign, st: _State, rows: np.ndarray, t: np.ndarray) -> None:
    """Arms whose closing date has come by t stop randomizing (they are analysed until decided); arms
    still waiting then never enter."""
    status = st.status[rows]
    due = pd.close_at[None, :] <= t[:, None]
    shut = (status == OPEN) & due
    st.closed[rows] = np.where(shut, pd.close_at[None, :], st.closed[rows])
    status = np.where(shut, FULL, status)
    st.status[rows] = np.where((status == WAITING) & due, NOT_ENTERED, status)


def _open_arms(pd: PlatformDesign, st: _State, rows: np.ndarray, t: np.ndarray) -> None:
    """Open available arms in queue order while slots are free (arms that do not wait for a slot open
    whenever they are available). An arm is available from its date, before its closing date, once
    its trigger (another sub-study closed, or a number of patients randomized) has fired."""
    order = range(pd.n_arms) if pd.open_order is None else pd.open_order
    for k in order:
        if k == pd.control:
            continue
        n_open = (st.status[rows] == OPEN).sum(axis=1)
        go = (st.status[rows, k] == WAITING) & (pd.enter_at[k] <= t) & (pd.close_at[k] > t)
        if pd.slot_limited is None or pd.slot_limited[k]:
            go &= n_open < pd.max_open
        if pd.after_closed is not None and pd.after_closed[k] >= 0 and pd.arm_in is not None:
            members = pd.arm_in[:, pd.after_closed[k]].copy()
            members[pd.control] = False
            before = st.status[rows][:, members]
            go &= ~((before == WAITING) | (before == OPEN)).any(axis=1)
        if pd.after_enrolled is not None and pd.after_enrolled[k] > 0:
            go &= st.n_arm[rows].sum(axis=1) >= pd.after_enrolled[k]
        r = rows[go]
        st.status[r, k] = OPEN
        st.opened[r, k] = t[go]
    any_open = (st.status[rows] == OPEN).any(axis=1)
    first = any_open & np.isnan(st.opened[rows, pd.control])
    st.opened[rows[first], pd.control] = t[first]


def _data(pd: PlatformDesign, st: _State, pool: PlatformPool, rows, t, concurrent: bool | None = None):
    """Tallies at dates t: arm (R, K, S) patients / events / time at risk, the control's per arm
    (concurrent or all control patients: the design's choice unless ``concurrent`` is given) and the
    number of outcomes seen (R,)."""
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    arm = [np.zeros((R, K, S)) for _ in range(3)]
    ctrl = [np.zeros((R, K, S)) for _ in range(3)]
    seen = np.zeros(R)
    closed = np.where(np.isnan(st.closed), np.inf, st.closed)
    opened = np.where(np.isnan(st.opened), np.inf, st.opened)
    _tally_resumed(
        pool.arrive,
        pool.stratum,
        st.assigned,
        pool.outcomes,
        pool.dropout,
        pd.arm_treatment,
        pd.control,
        opened,
        closed,
        rows,
        t,
        pd.assess,
        pd.survival,
        pd.read_at,
        *arm,
        *ctrl,
        seen,
        st.front,
        st.front_t,
        *st.prefix,
        st.prefix_seen,
        st.filled,
        st.due,
        st.at_due,
        st.censor,
    )
    if not (pd.concurrent if concurrent is None else concurrent):  # every control patient, for every arm
        c = pd.control
        ctrl = [np.broadcast_to(v[:, c : c + 1, :], (R, K, S)).copy() for v in arm]
    if pd.arm_in is not None:  # sub-studies: an arm's controls are those of its own sub-study
        ctrl = [v * pd.arm_in[None] for v in ctrl]
    return arm, ctrl, seen


def _analyse(pd: PlatformDesign, st: _State, pool: PlatformPool, rows, t, final: bool) -> np.ndarray:
    """An analysis at dates t: graduation and drops (at the final analysis, undecided arms are settled)."""
    (n, y, x), (cn, cy, cx), seen = _data(pd, st, pool, rows, t)
    if not final:
        st.tallies = (rows, t, (n, y, x), (cn, cy, cx), seen)
    else:  # kept for the results, tallied on the same date with the same assignments and windows
        if st.final_tallies is None:
            T = st.t.size
            st.final_tallies = (
                np.full(T, np.nan),
                [np.zeros((T,) + v.shape[1:]) for v in (n, y, x)],
                [np.zeros((T,) + v.shape[1:]) for v in (cn, cy, cx)],
                np.zeros(T),
            )
        at, arm_all, ctrl_all, seen_all = st.final_tallies
        at[rows] = t
        for dst, src in zip(arm_all + ctrl_all, [n, y, x, cn, cy, cx]):
            dst[rows] = src
        seen_all[rows] = seen
    if pd.trigger != "calendar":
        st.count[rows] = seen if pd.trigger == "observed" else st.n_arm[rows].sum(axis=1)
    enough = (seen - st.seen_last[rows] >= pd.min_new) | final
    st.n_looks[rows] += enough
    st.seen_last[rows] = np.where(enough, seen, st.seen_last[rows])
    status = st.status[rows]
    live = ((status == OPEN) | (status == FULL)) & (st.n_arm[rows] >= pd.min_n) & enough[:, None]
    live[:, pd.control] = False
    sig = pd.signatures.T.astype(float)  # (S, G)
    pooled = [v @ sig for v in (n, y, x)]  # (R, K, G)
    cpooled = [v @ sig for v in (cn, cy, cx)]
    adjusted = None
    if pd.time_adjustment != "none":  # period-adjusted comparison with the control
        from .platform_period import adjusted_comparison

        adjusted = adjusted_comparison(pd, st.opened, st.closed, pool, st.assigned, rows, t)
    if adjusted is not None:
        success = adjusted.success
    elif st.trace is not None:  # the storyboard shows every arm's success probability
        success = _success(pd, *pooled, *cpooled)
    else:  # only the arms that can be decided now
        success = _success_of(pd, live, *pooled, *cpooled)
    if pd.arm_signature is not None:  # sub-studies: an arm is judged in its own signature only
        rated = np.where(pd.arm_signature[None], success, -np.inf)
        below = np.all(np.where(pd.arm_signature[None], success < pd.drop, True), axis=2)
    else:
        rated, below = success, np.all(success < pd.drop, axis=2)
    best = np.nanmax(np.where(live[:, :, None], rated, -np.inf), axis=2)
    grad = live & (best >= pd.graduate)
    drop = live & ~grad & (below if not math.isnan(pd.drop) else False)
    if final:
        undecided = ((status == OPEN) | (status == FULL)) & ~grad & ~drop
        undecided[:, pd.control] = False
    else:
        undecided = np.zeros_like(grad)
    decided = grad | drop | undecided
    if decided.any():
        r_idx, k_idx = np.nonzero(decided)
        if adjusted is None:
            total = [v.sum(axis=2) for v in (n, y, x)]
            ctotal = [v.sum(axis=2) for v in (cn, cy, cx)]
            effect = _effect_of(pd, r_idx, k_idx, *total, *ctotal)
        else:
            effect = adjusted.effect[r_idx, k_idx]
        tr = rows[r_idx]
        was_open = st.status[tr, k_idx] == OPEN
        st.closed[tr[was_open], k_idx[was_open]] = t[r_idx][was_open]
        st.decided[tr, k_idx] = t[r_idx]
        st.effect_at_decision[tr, k_idx] = effect
        new = np.where(grad, GRADUATED, np.where(drop, DROPPED, INCONCLUSIVE))[r_idx, k_idx]
        st.status[tr, k_idx] = new
        g = np.argmax(np.where(live[:, :, None], rated, -np.inf), axis=2)
        gi = grad[r_idx, k_idx]
        st.graduated_in[tr[gi], k_idx[gi]] = g[r_idx, k_idx][gi]
    if st.trace is not None:
        st.trace.record(
            "analysis",
            rows,
            t=t,
            final=final,
            counted=enough,
            n=n,
            y=y,
            x=x,
            cn=cn,
            cy=cy,
            cx=cx,
            success=success,
            live=live,
            graduate=grad,
            drop=drop,
            settle=undecided,
            status=st.status[rows],
        )
    return enough


def _allocation(pd: PlatformDesign, st: _State, rows, pool, t) -> np.ndarray:
    """(R, S, K) allocation probabilities in force after date t."""
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    status = st.status[rows]
    open_ = status == OPEN
    open_[:, pd.control] = open_.any(axis=1)
    if pd.arm_in is not None:  # sub-studies: an arm is open in its own; the control wherever an experimental arm is
        open_s = open_[:, None, :] & pd.arm_in.T[None, :, :]
        experimental = np.ones(K, dtype=bool)
        experimental[pd.control] = False
        open_s[:, :, pd.control] = open_s[:, :, experimental].any(axis=2)
    else:
        open_s = np.repeat(open_[:, None, :], S, axis=1)  # (R, S, K)
    weights = None
    adaptive = False
    if pd.adaptive and pool is not None:
        (n, y, x), (cn, cy, cx), seen = _tallies_at(pd, st, pool, rows, t)
        adaptive_rows = seen >= pd.burn_in_n
        if adaptive_rows.any():
            adaptive = True
            a, b = _posterior(pd, n, y, x)
            ac, bc = _control_posterior(pd, cn, cy, cx)
            a, b, ac, bc = np.broadcast_arrays(a, b, ac, bc)
            # P(better) (R, K, S) only where allocate reads it, in the rows past the burn-in and
            # the arms open in the stratum; elsewhere 1/2, the weight every arm has before the
            # burn-in is over (P = 1/2 gives every arm the same weight)
            need = adaptive_rows[:, None, None] & np.transpose(open_s, (0, 2, 1))
            pick = np.nonzero(need)
            weights = np.full((R, K, S), 0.5)
            weights[pick] = _prob_better(pd, a[pick], b[pick], ac[pick], bc[pick])
            weights = np.nan_to_num(weights, nan=0.5)
    open_s = open_s.reshape(R * S, K)
    control = np.full(R * S, pd.control)
    w = None if weights is None else np.transpose(weights, (0, 2, 1)).reshape(R * S, K)
    probs = allocate(pd, adaptive, pd.power, w, open_s, open_s, control)
    return probs.reshape(R, S, K)


def _tallies_at(pd: PlatformDesign, st: _State, pool: PlatformPool, rows, t):
    """:func:`_data` at dates t, reading the rows that the last interim analysis tallied on the same
    date from its tallies. Between that analysis and now the assignments are the same, and arms
    decided there closed on that date, which leaves every patient randomized by it concurrent as
    before; an arm opened on that date would count the control patients randomized exactly then,
    so rows with such an arm are tallied again."""
    if st.tallies is None:
        return _data(pd, st, pool, rows, t)
    a_rows, a_t, arm, ctrl, seen = st.tallies
    pos = np.minimum(np.searchsorted(a_rows, rows), a_rows.size - 1)
    opened_now = st.opened[rows] == t[:, None]
    opened_now[:, pd.control] = False
    hit = (a_rows[pos] == rows) & (a_t[pos] == t) & ~opened_now.any(axis=1)
    if hit.all():
        p = pos
        return [v[p] for v in arm], [v[p] for v in ctrl], seen[p]
    out_arm = [np.empty((rows.size,) + v.shape[1:]) for v in arm]
    out_ctrl = [np.empty((rows.size,) + v.shape[1:]) for v in ctrl]
    out_seen = np.empty(rows.size)
    p = pos[hit]
    for dst, src in zip(out_arm + out_ctrl, arm + ctrl):
        dst[hit] = src[p]
    out_seen[hit] = seen[p]
    miss = ~hit
    if miss.any():
        m_arm, m_ctrl, m_seen = _data(pd, st, pool, rows[miss], t[miss])
        for dst, src in zip(out_arm + out_ctrl, m_arm + m_ctrl):
            dst[miss] = src
        out_seen[miss] = m_seen
    return out_arm, out_ctrl, out_seen


def _finish(pd: PlatformDesign, st: _State, pool: PlatformPool, rows, t_end) -> None:
    """Enrolment ends at t_end: arms still randomizing close; undecided arms are settled after the
    follow-up; arms never opened are marked."""
    st.running[rows] = False
    st.end[rows] = t_end
    status = st.status[rows]
    open_ = status == OPEN
    st.closed[rows] = np.where(open_, t_end[:, None], st.closed[rows])
    st.status[rows] = np.where(open_, FULL, status)
    st.status[rows] = np.where(st.status[rows] == WAITING, NOT_ENTERED, st.status[rows])
    ctrl_open = ~np.isnan(st.opened[rows, pd.control])
    st.closed[rows[ctrl_open], pd.control] = t_end[ctrl_open]
    pending = (st.status[rows] == FULL).any(axis=1)
    final_t = np.where(pending, t_end + pd.follow_up, t_end)
    st.t[rows] = final_t
    if pending.any():
        _analyse(pd, st, pool, rows[pending], final_t[pending], final=True)
    decided = np.where(np.isnan(st.decided[rows]), -np.inf, st.decided[rows])
    st.duration[rows] = np.maximum(decided.max(axis=1), t_end)


def _final_data(pd: PlatformDesign, st: _State, pool: PlatformPool, t):
    """:func:`_data` of every trial at dates t (T,): arm and control tallies. A trial whose final
    analysis was on that date gives that analysis's tallies: nothing it reads has changed since
    (the trial stopped: its assignments and the arms' windows are final)."""
    T = t.size
    rows = np.arange(T)
    if st.final_tallies is None:
        return _data(pd, st, pool, rows, t)[:2]
    at, arm, ctrl, _ = st.final_tallies
    hit = at == t
    arm, ctrl = [v.copy() for v in arm], [v.copy() for v in ctrl]
    if not hit.all():
        m_arm, m_ctrl, _ = _data(pd, st, pool, rows[~hit], t[~hit])
        for dst, src in zip(arm + ctrl, m_arm + m_ctrl):
            dst[~hit] = src
    return arm, ctrl


def _results(pd: PlatformDesign, st: _State, pool: PlatformPool) -> PlatformResults:
    T = pool.arrive.shape[0]
    K, S = pd.n_arms, pd.n_strata
    rows = np.arange(T)
    t = st.duration
    (n, y, x), (cn, cy, cx) = _final_data(pd, st, pool, t)
    # both control choices, whatever the design uses
    c = pd.control
    all_c = [np.broadcast_to(v[:, c : c + 1, :], (T, K, S)) for v in (n, y, x)]
    if pd.arm_in is not None:  # sub-studies: an arm's controls are those of its own sub-study
        all_c = [v * pd.arm_in[None] for v in all_c]
    conc = (cn, cy, cx) if pd.concurrent else _data(pd, st, pool, rows, t, concurrent=True)[1]
    tot = [v.sum(axis=2) for v in (n, y, x)]
    effect_conc = _effect(pd, *tot, *[v.sum(axis=2) for v in conc])
    effect_all = _effect(pd, *tot, *[v.sum(axis=2) for v in all_c])
    design_c = conc if pd.concurrent else all_c
    a, b = _posterior(pd, *tot)
    ac, bc = _control_posterior(pd, *[v.sum(axis=2) for v in design_c])
    prob_better = _prob_better(pd, a, b, ac, bc)
    effect_adjusted = None
    if pd.time_adjustment != "none":  # the design's period-adjusted comparison
        from .platform_period import adjusted_comparison

        adjusted = adjusted_comparison(pd, st.opened, st.closed, pool, st.assigned, rows, t)
        prob_better, effect_adjusted = adjusted.prob_better, adjusted.effect
    if pd.survival:
        estimate = math.log(2.0) / special.gammaincinv(a, 0.5) * b
    else:
        estimate = a / (a + b)
    z_conc, z_all = _final_tests(pd, st, pool, t)
    entered = ~np.isnan(st.opened)
    for arr in (effect_conc, effect_all, prob_better, z_conc, z_all) + (
        () if effect_adjusted is None else (effect_adjusted,)
    ):
        arr[:, c] = np.nan
        arr[~entered] = np.nan
    estimate = np.where(entered, estimate, np.nan)
    valid = st.assigned >= 0
    r_valid, i_valid = np.nonzero(valid)  # the randomized patients only
    arm_valid = st.assigned[r_valid, i_valid].astype(np.int64)
    idx = (r_valid * K + arm_valid) * S + pool.stratum[r_valid, i_valid]
    n_stratum = np.bincount(idx, minlength=T * K * S).reshape(T, K, S)
    n_periods = int(math.ceil(pd.max_duration / PERIOD_MONTHS))
    period = np.minimum((pool.arrive[r_valid, i_valid] // PERIOD_MONTHS).astype(np.int64), n_periods - 1)
    idx = (r_valid * n_periods + period) * K + arm_valid
    n_period = np.bincount(idx, minlength=T * n_periods * K).reshape(T, n_periods, K)
    before = pool.arrive <= st.end[:, None]
    grad_t = np.where(st.status == GRADUATED, st.decided, np.inf).min(axis=1)
    return PlatformResults(
        status=st.status,
        opened_at=st.opened,
        closed_at=st.closed,
        decided_at=st.decided,
        graduated_in=st.graduated_in,
        n=st.n_arm.copy(),
        n_stratum=n_stratum,
        events=tot[1].round().astype(np.int64),
        events_stratum=y.round().astype(np.int64),
        effect_at_decision=st.effect_at_decision,
        effect_concurrent=effect_conc,
        effect_all=effect_all,
        z_concurrent=z_conc,
        z_all=z_all,
        prob_better=prob_better,
        estimate=estimate,
        n_looks=st.n_looks,
        enrolment_end=st.end,
        duration=st.duration,
        first_graduation=np.where(np.isfinite(grad_t), grad_t, np.nan),
        n_not_assigned=(before & ~valid & (pool.stratum >= 0)).sum(axis=1),
        n_unclassified=(before & (pool.stratum < 0)).sum(axis=1),
        n_randomizable=before.sum(axis=1),
        n_period=n_period,
        effect_adjusted=effect_adjusted,
    )


@njit(cache=True)
def _control_windows(arrive, opened, closed, stratum, with_substudies, arm_in, include, same):
    """Which patients may be controls for each arm (T, N, K), in one pass: ``include`` randomized
    while the arm was open (opened <= a <= closed) and, ``with_substudies``, in a stratum of the
    arm's sub-study (``arm_in`` (K, S)), which ``same`` (T, N, K) records (unused without)."""
    for r in range(arrive.shape[0]):
        for i in range(arrive.shape[1]):
            a = arrive[r, i]
            s = stratum[r, i]
            for k in range(opened.shape[1]):
                inside = opened[r, k] <= a and a <= closed[r, k]
                if with_substudies:
                    member = s >= 0 and arm_in[k, max(s, 0)]
                    same[r, i, k] = member
                    inside = inside and member
                include[r, i, k] = inside


def _final_tests(pd: PlatformDesign, st: _State, pool: PlatformPool, t):
    """Frequentist final comparison of every arm with the control: the log-rank z (survival) or the
    pooled two-proportion z (binary), against concurrent and against all controls; < 0 favours the arm."""
    T, N = pool.arrive.shape
    time = np.full((T, N), np.nan)
    event = np.zeros((T, N), dtype=bool)
    _observe(
        pool.arrive,
        st.assigned,
        pool.outcomes,
        pool.dropout,
        pd.arm_treatment,
        t,
        pd.assess,
        pd.survival,
        pd.read_at,
        time,
        event,
    )
    arm = np.where(np.isnan(time), -1, st.assigned).astype(np.int64)
    opened = np.where(np.isnan(st.opened), np.inf, st.opened)
    closed = np.where(np.isnan(st.closed), np.inf, st.closed)
    K = pd.n_arms
    include = np.empty((T, N, K), dtype=bool)
    same = None if pd.arm_in is None else np.empty((T, N, K), dtype=bool)
    _control_windows(
        pool.arrive,
        opened,
        closed,
        pool.stratum,
        same is not None,
        np.ones((K, 1), dtype=bool) if pd.arm_in is None else pd.arm_in,
        include,
        np.empty((1, 1, K), dtype=bool) if same is None else same,
    )
    if pd.survival:
        z_conc = logrank_vs_control(time, event, arm, include, pd.control, pd.n_arms)[0]
        z_all = logrank_vs_control(time, event, arm, same, pd.control, pd.n_arms)[0]
        return z_conc, z_all
    return _two_proportion_z(pd, arm, event, include), _two_proportion_z(pd, arm, event, same)


def _two_proportion_z(pd, arm, event, include):
    K, c = pd.n_arms, pd.control
    onehot = arm[:, :, None] == np.arange(K)[None, None, :]
    n = onehot.sum(axis=1).astype(float)
    y = (onehot & event[:, :, None]).sum(axis=1).astype(float)
    is_c = (arm == c)[:, :, None]
    mask = is_c if include is None else is_c & include
    nc = mask.sum(axis=1).astype(float)
    yc = (mask & event[:, :, None]).sum(axis=1).astype(float)
    pbar = (y + yc) / np.maximum(n + nc, 1)
    se = np.sqrt(pbar * (1 - pbar) * (1 / np.maximum(n, 1) + 1 / np.maximum(nc, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where((se > 0) & (n > 0) & (nc > 0), -(y / np.maximum(n, 1) - yc / np.maximum(nc, 1)) / se, np.nan)
    return z


# ----------------------------------------------------------------------------------- the storyboard


def platform_story(compiled: PlatformCompiled, trace, result):
    """The storyboard of one platform: per analysis, arm and stratum the data, estimates and the
    graduation statistic; the allocation each time it changed; every screened patient with their
    assessments, read the way the engine reads them."""
    import pandas as pd

    from .story import Story, screened_frame

    pd_ = compiled.arrays
    arms, strata, sigs = list(pd_.arm_names), list(pd_.strata_names), list(pd_.signature_names)
    rows, sig_rows, alloc_rows = [], [], []
    number = 0
    for ev in trace.events:
        t = float(ev["t"])
        status = ev["status"]
        if ev["kind"] == "allocation":
            for s, stratum in enumerate(strata):
                for k, arm in enumerate(arms):
                    alloc_rows.append(
                        {
                            "month": t,
                            "stratum": stratum,
                            "arm": arm,
                            "probability": float(ev["probs"][s, k]),
                            "status": PLATFORM_STATUS[status[k]],
                        }
                    )
            continue
        number += 1
        n, y, x = ev["n"], ev["y"], ev["x"]  # (K, S)
        cn, cy, cx = ev["cn"], ev["cy"], ev["cx"]
        a, b = _posterior(pd_, n[None], y[None], x[None])
        ac, bc = _control_posterior(pd_, cn[None], cy[None], cx[None])
        p_better = _prob_better(pd_, a, b, ac, bc)[0]
        a, b = a[0], b[0]
        est, lo, hi = _story_estimate(pd_, a, b)
        decided = ev["graduate"] | ev["drop"] | ev["settle"]
        for k, arm in enumerate(arms):
            for s, stratum in enumerate(strata):
                rows.append(
                    {
                        "analysis": number,
                        "month": t,
                        "final": bool(ev["final"]),
                        "counted": bool(ev["counted"]),
                        "stratum": stratum,
                        "arm": arm,
                        "patients": int(n[k, s]),
                        "events": int(round(y[k, s])),
                        "months_at_risk" if pd_.survival else "followed": float(x[k, s])
                        if pd_.survival
                        else int(n[k, s]),
                        "estimate": float(est[k, s]),
                        "lower": float(lo[k, s]),
                        "upper": float(hi[k, s]),
                        "control_patients": int(cn[k, s]),
                        "control_events": int(round(cy[k, s])),
                        "p_better_than_control": float(p_better[k, s]) if k != pd_.control else np.nan,
                        "status": PLATFORM_STATUS[status[k]],
                        "decision": PLATFORM_STATUS[status[k]] if decided[k] else "",
                    }
                )
            if k == pd_.control:
                continue
            for g, sig in enumerate(sigs):
                sig_rows.append(
                    {
                        "analysis": number,
                        "month": t,
                        "arm": arm,
                        "signature": sig,
                        "success": float(ev["success"][k, g]),
                        "graduate_at": pd_.graduate,
                        "drop_below": pd_.drop,
                        "eligible": bool(ev["live"][k]),
                        "decision": PLATFORM_STATUS[status[k]] if decided[k] else "",
                    }
                )
    analyses = pd.DataFrame(rows)
    # patients: every screened patient until enrolment ended, with arm, PFS and assessments
    enrolled, row = trace.enrolled, trace.row
    order = trace.order  # randomizable position (sorted by arrival) -> enrolled position
    assigned, arrive, stratum = trace.data["assigned"], trace.data["arrive"], trace.data["stratum"]
    end = float(result.extras["enrolment_end"][0])
    final_t = float(result.duration_months[0])
    time = np.full((1, arrive.size), np.nan)
    event = np.zeros((1, arrive.size), dtype=bool)
    outcomes = enrolled.outcomes[row][order].astype(np.float32)
    dropout = trace.data["dropout"]
    _observe(
        arrive[None],
        assigned[None],
        outcomes[None],
        dropout[None],
        pd_.arm_treatment,
        np.array([final_t]),
        pd_.assess,
        pd_.survival,
        pd_.read_at,
        time,
        event,
    )
    cohort_pos = enrolled.screened_index[row][order]
    arm_of, stratum_of, idx_of = {}, {}, {}
    for i in np.flatnonzero(arrive <= end):
        p = int(cohort_pos[i])
        idx_of[p] = i
        if assigned[i] >= 0:
            arm_of[p] = int(assigned[i])
        if stratum[i] >= 0:
            stratum_of[p] = strata[stratum[i]]
    n_screened = int(result.n_screened[0])
    frame = screened_frame(compiled.patients.population, pd_.arm_names, enrolled, row, n_screened, arm_of, stratum_of)
    treat = np.array(list(pd_.treatments) + [""], dtype=object)
    pos = frame["patient"].to_numpy()
    ix = np.array([idx_of.get(int(p), -1) for p in pos])
    has = ix >= 0
    arm_index = np.where(has, assigned[np.maximum(ix, 0)], -1)
    frame["randomizable"] = has
    frame["treatment"] = treat[np.where(arm_index >= 0, pd_.arm_treatment[np.maximum(arm_index, 0)], len(treat) - 1)]
    on = arm_index >= 0
    frame["randomized_months"] = np.where(on, arrive[np.maximum(ix, 0)], np.nan)
    if pd_.survival:
        true = outcomes[np.maximum(ix, 0), pd_.arm_treatment[np.maximum(arm_index, 0)]]
        frame["pfs_months"] = np.where(on, true, np.nan)
        frame["dropout_months"] = np.where(on, dropout[np.maximum(ix, 0)], np.nan)
        visits, seen, last = _assessments(
            pd_,
            frame["randomized_months"].to_numpy(),
            frame["pfs_months"].to_numpy(),
            frame["dropout_months"].to_numpy(),
            final_t,
        )
        frame["assessments"] = visits
        frame["progression_seen_months"] = seen
        frame["last_assessment_months"] = last
        frame["time"] = np.where(on, time[0, np.maximum(ix, 0)], np.nan)
        frame["event"] = np.where(on, event[0, np.maximum(ix, 0)], False).astype(int)
    else:
        true = outcomes[np.maximum(ix, 0), pd_.arm_treatment[np.maximum(arm_index, 0)]]
        frame["response"] = np.where(on, true, -1).astype(int)
        frame["outcome_due_months"] = np.where(on, frame["randomized_months"] + pd_.read_at, np.nan)
        frame["outcome_seen"] = np.where(
            on, ~np.isnan(time[0, np.maximum(ix, 0)]) & (frame["outcome_due_months"] <= final_t), False
        )
    status = result.extras["platform_status"][0]
    summary = {
        "analyses": int(result.trial_values["n_looks"][0]),
        "enrolment_end_months": end,
        "duration_months": final_t,
        "patients_randomized": int(result.n_randomized[0]),
        "patients_screened": n_screened,
        "graduated": [arms[k] for k in np.flatnonzero(status == GRADUATED)],
        "dropped": [arms[k] for k in np.flatnonzero(status == DROPPED)],
    }
    return Story(
        analyses,
        frame,
        summary,
        signatures=pd.DataFrame(sig_rows),
        allocations=pd.DataFrame(alloc_rows),
        timeline="calendar",
    )


def _story_estimate(pd_, a, b):
    """Posterior median PFS (months) with its 95% interval, or the response rate's mean and interval."""
    if pd_.survival:
        med = math.log(2.0) * b / special.gammaincinv(a, 0.5)
        lo = math.log(2.0) * b / special.gammaincinv(a, 0.975)
        hi = math.log(2.0) * b / special.gammaincinv(a, 0.025)
        return med, lo, hi
    lo, hi = beta_interval(a, b, 0.95)
    return a / (a + b), lo, hi


def _assessments(pd_, start, pfs, dropout, t):
    """Tumour assessments of each patient (every ``pd_.assess`` months from randomization) up to the
    final analysis date t, read the way the engine reads them: (number of assessments, date
    progression was seen (NaN: not seen), date of the last assessment (NaN: none yet))."""
    n = np.zeros(start.size, dtype=int)
    seen = np.full(start.size, np.nan)
    last = np.full(start.size, np.nan)
    for i in np.flatnonzero(~np.isnan(start)):
        has, ev, x, when = _seen(float(pfs[i]), float(dropout[i]), float(start[i]), float(t), pd_.assess, True, 0.0)
        if has and ev:
            seen[i] = last[i] = when
        elif x > 0:
            last[i] = start[i] + x
        if not np.isnan(last[i]):
            n[i] = int(round((last[i] - start[i]) / pd_.assess))
    return n, seen, last


# ----------------------------------------------------------------------------------- the family

PLATFORM_STOP_NAMES = ("max_duration", "no_arms_left")
_COMMON_STATUS = {
    GRADUATED: 2,
    DROPPED: 4,
    INCONCLUSIVE: 0,
    OPEN: 0,
    FULL: 0,
    WAITING: 0,
    NOT_ENTERED: 6,
    SHARED_CONTROL: 1,
}
_NULL_TOL = 1e-9


def platform_pair_problems(design, scenario, plan=None) -> list[Problem]:
    """Checks that need the scenario: endpoint, signatures' strata, triggers that can never fire
    (patients expected by the maximum duration through the funnel the platform's patients go through:
    with the biomarker assay when its strata need one)."""
    problems: list[Problem] = []
    pf = design.platform
    ep = scenario.endpoints[design.endpoint.name]
    if ep.kind == "time_to_event":
        if pf.hazard_prior is None:
            problems.append(
                Problem(
                    "design.platform.hazard_prior",
                    "a time-to-event endpoint needs a gamma prior on the hazard, e.g. {shape: 1, rate: 4}",
                    None,
                )
            )
        if not design.endpoint.higher_is_better:
            problems.append(
                Problem(
                    "design.endpoint.direction",
                    "longer progression-free survival is better; use higher_is_better",
                    design.endpoint.direction,
                )
            )
    else:
        if design.prior is None:
            problems.append(
                Problem(
                    "design.prior",
                    f"endpoint {design.endpoint.name!r} is {ep.kind}; it needs a beta prior {{a, b}}",
                    None,
                )
            )
        if pf.hazard_prior is not None:
            problems.append(
                Problem(
                    "design.platform.hazard_prior",
                    f"endpoint {design.endpoint.name!r} is {ep.kind}, not time-to-event; use prior {{a, b}}",
                    None,
                )
            )
        if ep.kind == "landmark" and pf.follow_up_months < ep.weeks / WEEKS_PER_MONTH:
            problems.append(
                Problem(
                    "design.platform.follow_up_months",
                    f"the {design.endpoint.name!r} outcome is read at week "
                    f"{ep.weeks:g} ({ep.weeks / WEEKS_PER_MONTH:.2f} months), after the follow-up; the last patients would "
                    "never have an outcome",
                    pf.follow_up_months,
                )
            )
    if plan is not None and pf.graduation.signatures is not None:
        for name, strata in pf.graduation.signatures.items():
            bad = [s for s in strata if s not in plan.names]
            if bad:
                problems.append(
                    Problem(
                        f"design.platform.graduation.signatures.{name}",
                        f"{bad} are not strata of this design; its strata are {list(plan.names)}",
                        bad,
                    )
                )
    it = pf.interims
    count = it.every_enrolled or it.every_observed or 0
    need = max(count, it.min_new_outcomes)
    if need:
        share = 1.0 if plan is None else max(1.0 - plan.unclassified, 0.0)
        biomarker_result = plan is not None and plan.biomarker_result
        expected = expected_randomizable(scenario.population, pf.max_duration_months, biomarker_result) * share
        field = (
            ("every_enrolled" if it.every_enrolled else "every_observed")
            if count >= it.min_new_outcomes
            else "min_new_outcomes"
        )
        if need > expected:
            problems.append(
                Problem(
                    f"design.platform.interims.{field}",
                    f"can never fire in practice: {need} patients or outcomes are "
                    f"needed but only {expected:.0f} patients are expected to be randomized by the maximum duration "
                    f"({pf.max_duration_months:g} months) under scenario {scenario.name!r}",
                    need,
                )
            )
    return problems


def platform_capacity_problems(design, scenario, biomarker_result: bool) -> list:
    """A platform the simulator cannot run under this scenario: more patients randomized by the
    maximum duration than MAX_PATIENTS, or screened than MAX_SCREENED (through the funnel with the
    biomarker assay when ``biomarker_result``, without it otherwise)."""
    from ..config.base import MAX_PATIENTS, MAX_SCREENED
    from ..config.population import expected_funnel

    funnel = expected_funnel(scenario.population, biomarker_result)["randomized"]
    if not funnel > 0:  # reported with the scenario
        return []
    pf = design.platform
    path, value = "design.platform.max_duration_months", pf.max_duration_months
    expected = expected_randomizable(scenario.population, pf.max_duration_months, biomarker_result)
    if not expected <= MAX_PATIENTS:
        return [
            Problem(
                path,
                f"about {expected:.3g} patients would be randomized by month {pf.max_duration_months:g} "
                f"under scenario {scenario.name!r}; the simulator runs at most {MAX_PATIENTS} patients per "
                "trial",
                value,
            )
        ]
    # every patient arriving by the maximum duration is drawn, and at least 64 randomizable ones
    screened = (1.2 * expected + 5.0 * math.sqrt(expected) + 64) / funnel
    if not screened <= MAX_SCREENED:
        return [
            Problem(
                path,
                f"a simulated trial would screen about {screened:.3g} patients under scenario "
                f"{scenario.name!r}, which randomizes {funnel:.3g} of the patients screened; the simulator "
                f"screens at most {MAX_SCREENED} per trial",
                value,
            )
        ]
    return []


@dataclass(frozen=True, eq=False)
class PlatformCompiled:
    """A platform design compiled for a scenario: its arrays, its strata and its patients."""

    design: Design
    scenario: Scenario
    patients: VirtualPatients
    arrays: PlatformDesign
    plan: StrataPlan | None  # None without strata

    @property
    def needs_biomarker_result(self) -> bool:
        """Patients wait for a biomarker result before randomization: the platform allocates within
        strata of a characteristic an assay measures. Without strata every eligible patient is
        randomized on arrival."""
        return self.plan is not None and self.plan.biomarker_result

    @property
    def platform(self) -> Platform:
        """The design's platform section."""
        pf = self.design.platform
        assert pf is not None
        return pf

    @property
    def arm_names(self) -> tuple[str, ...]:
        return self.arrays.arm_names

    @property
    def overall(self) -> int:
        """The signature that covers every stratum (all patients)."""
        full = np.flatnonzero(self.arrays.signatures.all(axis=1))
        return int(full[0]) if full.size else 0


def _true_effect(compiled: PlatformCompiled, treatment: str, control: str, codes, w) -> float:
    """Exact effect of ``treatment`` against ``control`` among patients with profile weights ``w``
    (:meth:`~platform_sim.outcomes.OutcomesModel.effect`)."""
    return compiled.patients.outcomes.effect(compiled.design.endpoint.name, treatment, control, codes, w)


def platform_truth(compiled: PlatformCompiled) -> Truth:
    """Exact truth of every arm in every signature (K, G) and every stratum (K, S). Patients are
    placed in strata by their reported profile, so the truth averages over the true profiles of
    the patients each signature takes; it is computed at calendar time 0 (a scenario's time trend
    moves it afterwards). An arm works where its effect reaches ``working_hazard_ratio`` (survival)
    or the clinically relevant difference (binary), and is null where it is no better than the
    control."""
    from ..strata import reported_distribution

    pd_, d, vp, plan = compiled.arrays, compiled.design, compiled.patients, compiled.plan
    ep = d.endpoint.name
    treatments = [a.treatment for a in d.arms]
    relevant = vp._relevant_markers(ep, treatments)
    if plan is None:
        codes, prob = vp.population.distribution(relevant)
        member = np.ones((prob.size, 1), dtype=bool)
    else:
        codes, observed, prob = reported_distribution(vp.population, list(plan.markers), relevant)
        mask = plan.classifier(observed)
        if pd_.routed:  # where patients go with every sub-study open
            from ..strata import route_shares

            member = route_shares(mask, pd_.n_strata, plan.other, False) > 0
        else:
            member = ((mask[:, None] >> np.arange(pd_.n_strata, dtype=np.uint32)) & 1).astype(bool)
    c = pd_.control
    K, G, S = pd_.n_arms, len(pd_.signature_names), pd_.n_strata
    if pd_.survival:
        bound, better = math.log(compiled.platform.working_hazard_ratio), -1.0
    else:
        bound, better = d.clinically_relevant_difference, 1.0

    def judge(weights):
        value, effect = np.full(K, np.nan), np.full(K, np.nan)
        if weights.sum() <= 0:
            return value, effect
        w = weights / weights.sum()
        for k in range(K):
            value[k] = vp.outcomes.expected(ep, treatments[k], codes, w)
            if k != c:
                effect[k] = _true_effect(compiled, treatments[k], treatments[c], codes, weights)
        return value, effect

    share = np.zeros(G)
    value, effect = np.full((K, G), np.nan), np.full((K, G), np.nan)
    for g in range(G):
        w = prob * member[:, pd_.signatures[g]].any(axis=1)
        share[g] = w.sum()
        value[:, g], effect[:, g] = judge(w)
    s_effect = np.full((K, S), np.nan)
    for s in range(S):
        _, s_effect[:, s] = judge(prob * member[:, s])

    def works_null(e):
        with np.errstate(invalid="ignore"):
            if pd_.survival:
                return e <= bound + _NULL_TOL, e >= -_NULL_TOL
            return e >= bound - _NULL_TOL, e <= _NULL_TOL

    judged = np.isfinite(effect)
    if pd_.arm_signature is not None:  # sub-studies: an arm is judged where it randomizes
        judged &= pd_.arm_signature
    works, null = works_null(effect)
    s_works, s_null = works_null(s_effect)
    if pd_.arm_in is not None:  # sub-studies: an arm has no effect to judge outside its own
        s_effect = np.where(pd_.arm_in, s_effect, np.nan)
    reference = np.broadcast_to(value[c], (K, G)).copy()
    return Truth(
        arms=pd_.arm_names,
        subgroups=pd_.signature_names,
        strata=pd_.strata_names,
        membership=pd_.signatures.copy(),
        share=share,
        value=value,
        reference=reference,
        effect=effect,
        works=works & judged,
        null=null & judged,
        judged=judged,
        works_in_stratum=s_works & np.isfinite(s_effect),
        null_in_stratum=s_null & np.isfinite(s_effect),
        control=c,
        value_name="median PFS (months)" if pd_.survival else "rate",
        effect_scale="log hazard ratio" if pd_.survival else "rate difference",
        effect_better=better,
    )


def _present(x: np.ndarray | None) -> np.ndarray:
    assert x is not None
    return x


def to_trial_results(compiled: PlatformCompiled, res: PlatformResults, trials: np.ndarray) -> TrialResults:
    """Simulated platforms in the common results type: claims are graduations in signatures."""
    pd_ = compiled.arrays
    T, K = res.status.shape
    G = len(pd_.signature_names)
    g0 = compiled.overall
    claimed = res.graduated_in[:, :, None] == np.arange(G)[None, None, :]
    claim_month = np.where(claimed, res.decided_at[:, :, None], np.nan)
    status = np.vectorize(_COMMON_STATUS.get, otypes=[np.int8])(res.status) if res.status.size else res.status
    status = np.asarray(status, dtype=np.int8)
    status[:, pd_.control] = 1

    def at_overall(x):
        out = np.full((T, K, G), np.nan)
        if pd_.home_signature is None:
            out[:, :, g0] = x
        else:  # sub-studies: each arm's estimates belong to its own sub-study
            out[:, np.arange(K), pd_.home_signature] = x
        return out

    entered = ~np.isnan(res.opened_at)
    experimental = np.ones(K, dtype=bool)
    experimental[pd_.control] = False

    def arm_value(x):
        return np.where(entered & experimental[None, :], x, np.nan)

    z = -float(special.ndtri(pd_.alpha))
    reject_conc = np.where(np.isnan(res.z_concurrent), 0.0, (res.z_concurrent < -z).astype(float))
    reject_all = np.where(np.isnan(res.z_all), 0.0, (res.z_all < -z).astype(float))
    stop = np.where(res.enrolment_end >= pd_.max_duration, 0, 1).astype(np.int8)
    return TrialResults(
        trial=np.asarray(trials, dtype=np.int64),
        arms=pd_.arm_names,
        strata=pd_.strata_names,
        subgroups=pd_.signature_names,
        membership=pd_.signatures.copy(),
        stop_names=PLATFORM_STOP_NAMES,
        n=res.n_stratum.astype(np.int64),
        events=res.events_stratum,
        claimed=claimed,
        claim_month=claim_month,
        status=status,
        stop_reason=stop,
        n_screened=np.asarray(res.n_screened, dtype=np.int64),
        duration_months=res.duration.astype(float),
        estimates={
            "effect_concurrent": at_overall(res.effect_concurrent),
            "effect_all": at_overall(res.effect_all),
            "effect_at_decision": at_overall(res.effect_at_decision),
            "final_estimate": at_overall(res.estimate),
        },
        estimate_targets={
            "effect_concurrent": "effect",
            "effect_all": "effect",
            "effect_at_decision": "effect",
            "final_estimate": "value",
        },
        arm_values={
            "p_entered": np.where(experimental[None, :], entered.astype(float), np.nan),
            "entered_month": arm_value(res.opened_at),
            "months_to_decision": arm_value(res.decided_at - res.opened_at),
            "p_reject_concurrent": arm_value(reject_conc),
            "p_reject_all": arm_value(reject_all),
        },
        trial_values={
            "enrolment_months": res.enrolment_end.astype(float),
            "n_looks": res.n_looks.astype(float),
            "arms_evaluated": (entered & experimental[None, :]).sum(axis=1).astype(float),
            "n_not_assigned": (res.n_not_assigned + res.n_unclassified).astype(float),
        },
        extras={
            "opened_at": res.opened_at,
            "closed_at": res.closed_at,
            "decided_at": res.decided_at,
            "graduated_in": res.graduated_in,
            "platform_status": res.status,
            "z_concurrent": res.z_concurrent,
            "z_all": res.z_all,
            "prob_better": res.prob_better,
            "n_period": _present(res.n_period),
            "n_unclassified": res.n_unclassified,
            "n_randomizable": res.n_randomizable,
            "enrolment_end": res.enrolment_end,
            "period_months": np.full(T, PERIOD_MONTHS),
            **({} if res.effect_adjusted is None else {"effect_adjusted": res.effect_adjusted}),
        },
        extra_dims={
            "opened_at": ("trial", "arm"),
            "closed_at": ("trial", "arm"),
            "decided_at": ("trial", "arm"),
            "graduated_in": ("trial", "arm"),
            "platform_status": ("trial", "arm"),
            "z_concurrent": ("trial", "arm"),
            "z_all": ("trial", "arm"),
            "prob_better": ("trial", "arm"),
            "n_period": ("trial", "period", "arm"),
            "n_unclassified": ("trial",),
            "n_randomizable": ("trial",),
            "enrolment_end": ("trial",),
            "period_months": ("trial",),
            **({} if res.effect_adjusted is None else {"effect_adjusted": ("trial", "arm")}),
        },
    )


@njit(cache=True)
def _gather_kernel(src, order, out):
    for r in range(order.shape[0]):
        for i in range(order.shape[1]):
            j = order[r, i]
            for c in range(src.shape[2]):
                out[r, i, c] = src[r, j, c]


def _in_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values[rows, order]`` for (T, N) or (T, N, C) ``values`` and (T, N) ``order`` (rows: each trial's
    own), C-contiguous: the same elements, gathered by one compiled loop instead of numpy's
    advanced indexing (several times slower on the (T, N, treatments) potential outcomes)."""
    flat = values.ndim == 2
    src = values[:, :, None] if flat else values
    out = np.empty(order.shape + src.shape[2:], dtype=values.dtype)
    _gather_kernel(src, order, out)
    return out[:, :, 0] if flat else out


_GUESS_SDS = 3.0  # the first guess of _enrolled_past: this many Poisson standard deviations above the expected count


def _enrolled_past(compiled: PlatformCompiled, streams, expected: float, markers, trace=None) -> Enrolled:
    """The first ``size`` randomizable patients of each trial, ``size`` the first, on steps of a
    quarter from a guess a little above the ``expected`` number (3 standard deviations of a Poisson
    count above it), at which every trial's last arrives after the maximum duration. The patients
    after it arrive later still and are randomizable later than they arrive, so every patient a
    trial could randomize is among its first ``size``, whatever the guess. Without a trace the
    patients come from one :class:`~platform_sim.outcomes.Enrolment`, each step drawing only the
    next ones, and only the enrolled patients' screening results are kept; a traced batch draws
    them again, with every screened patient, at each step. Each quantity is a function of the
    patient's position, so the patients are the same either way."""
    from ..outcomes import Enrolment
    from .base import enrol_options

    pd_ = compiled.arrays
    ep, treatments = compiled.design.endpoint.name, list(pd_.treatments)
    size = max(int(math.ceil(expected + _GUESS_SDS * math.sqrt(expected))), 0) + 16
    rows = np.arange(streams.n_trials)
    if trace is None:
        enrolment = Enrolment(
            compiled.patients,
            streams,
            ep,
            treatments,
            times=True,
            biomarker_result=compiled.needs_biomarker_result,
            characteristics=markers,
        )

        def first(n: int) -> Enrolled:
            return enrolment.take(rows, n)

        def extended(enrolled: Enrolled, step: int) -> Enrolled:
            return enrolled.then(enrolment.take(rows, step))

    else:
        options = enrol_options(trace, markers, compiled.patients.population.names)

        def first(n: int) -> Enrolled:
            return compiled.patients.enrol(
                streams,
                n,
                ep,
                treatments,
                times=True,
                biomarker_result=compiled.needs_biomarker_result,
                observed=markers is not None,
                **options,
            )

        def extended(enrolled: Enrolled, step: int) -> Enrolled:
            return first(enrolled.outcomes.shape[1] + step)

    enrolled = first(size)
    while not _all_arrived_after(enrolled, pd_.max_duration):
        step = int(math.ceil(0.25 * size))
        enrolled = extended(enrolled, step)
        size += step
    return enrolled


def _all_arrived_after(enrolled: Enrolled, month: float) -> bool:
    """Whether every trial's last patient taken arrived after ``month`` (patients enrolled with times)."""
    assert enrolled.last_arrival is not None
    return bool((enrolled.last_arrival > month).all())


def _first_match(match: np.ndarray, other: int) -> np.ndarray:
    """(T, N) int16: the first specific sub-study each patient matches (bit masks ``match``), else the
    non-match sub-study ``other`` when they match it, else -1."""
    specific = match if other < 0 else match & ~np.int64(1 << other)
    lowest = specific & -specific
    first = np.log2(np.maximum(lowest, 1)).round().astype(np.int16)
    fallback = np.int16(-1) if other < 0 else np.where((match >> other) & 1 == 1, np.int16(other), np.int16(-1))
    return np.ascontiguousarray(np.where(specific > 0, first, fallback).astype(np.int16))


def _set_graduate(data: dict, value) -> dict:
    pf = data["platform"]
    return {**data, "platform": {**pf, "graduation": {**pf["graduation"], "graduate": value}}}


def calendar_words(design) -> list[str]:
    """When arms and sub-studies open and close, and where a patient goes when their result
    arrives, in words."""
    from .base import setting

    out = []
    closing = [f"{a.name} at month {setting(a.closes_months)}" for a in design.arms if a.closes_months is not None]
    if closing:
        out.append("Arms stop randomizing on their dates: " + ", ".join(closing) + ".")
    groups = design.strata.groups if design.strata is not None else None
    if groups is None:
        return out
    for g in groups:
        queued = bool(design.platform.queue) and g.name in design.platform.queue
        when = [f"opens {'from' if g.opens_after is not None or queued else 'at'} month {setting(g.opens_months or 0)}"]
        if g.opens_after is not None and g.opens_after.closed is not None:
            when.append(f"once sub-study {g.opens_after.closed} has closed")
        elif g.opens_after is not None:
            when.append(f"once {g.opens_after.enrolled} patients have been randomized")
        if queued:
            when.append(f"when a slot is free (queue position {design.platform.queue.index(g.name) + 1})")
        if g.closes_months is not None:
            when.append(f"closes at month {setting(g.closes_months)}")
        out.append(f"Sub-study {g.name} " + ", ".join(when) + ".")
    closed = design.strata.closed_match or "other"
    out.append(
        "A patient is routed when their biomarker result arrives, to the first open sub-study they match; "
        + (
            "one whose matched sub-studies are all closed goes to the non-match sub-study."
            if closed == "other"
            else "one whose matched sub-studies are all closed is not registered."
        )
    )
    return out


def platform_words(compiled: PlatformCompiled) -> list[str]:
    """The calendar, the analyses and the graduation rule in words."""
    from .base import setting

    pf = compiled.platform
    it, g = pf.interims, pf.graduation
    survival = compiled.arrays.survival
    open_arms = setting(pf.max_open_arms) if pf.max_open_arms else "all"
    controls = (
        "the control patients randomized while it was open (concurrent controls)"
        if pf.controls == "concurrent"
        else "all control patients"
    )
    controls += {
        "none": "",
        "stratified_by_period": ", within the periods between the dates arms enter or leave",
        "period_covariate": ", in a model of every arm with a fixed effect per period between the dates "
        "arms enter or leave",
    }[pf.time_adjustment]
    out = [
        (
            f"Enrolment for at most {setting(pf.max_duration_months)} months, then {setting(pf.follow_up_months)} "
            f"months of follow-up before the final analysis of undecided arms; at most {open_arms} experimental arms "
            f"open at once; tumour assessments every {setting(pf.assessment_weeks)} weeks; each arm is compared "
            f"with {controls}."
        )
    ]
    out.extend(calendar_words(compiled.design))
    if it.trigger == "calendar":
        out.append(
            f"Interim analyses every {setting(it.every_months)} months (the first at month {setting(it.first)})."
        )
    elif it.trigger == "enrolled":
        out.append(f"An interim analysis every {setting(it.every_enrolled)} newly randomized patients.")
    else:
        out.append(f"An interim analysis every {setting(it.every_observed)} newly observed outcomes.")
    if it.min_new_outcomes:
        out.append(f"An analysis is skipped when fewer than {it.min_new_outcomes} outcomes are new since the last one.")
    if g.by == "predictive":
        events = g.confirmatory_events or g.confirmatory_n
        success = (
            f"the predictive probability that a 1:1 confirmatory trial of {g.confirmatory_n} patients"
            + (f" ({events} events)" if survival else "")
            + f" is positive at one-sided alpha = {setting(g.alpha)}"
        )
    else:
        success = "P(arm better than control)"
    out.append(
        f"Graduation: an arm graduates when {success} reaches {setting(g.graduate)} in any signature"
        + (f", and is dropped when it is below {setting(g.drop)} in every signature" if g.drop is not None else "")
        + f", once it has {g.min_n} patients."
    )
    if survival:
        out.append(f"An arm works when its true hazard ratio is at most {setting(pf.working_hazard_ratio)}.")
    return out


class PlatformFamily:
    """Platforms over calendar time (see the module docstring)."""

    name = "platform"
    title = "platform over calendar time"

    def matches(self, design) -> bool:
        return design.platform is not None

    def compile(self, design, scenario, patients) -> PlatformCompiled:
        from ..config import ConfigError
        from ..strata import checked_strata

        plan = None
        problems: list[Problem] = []
        if design.strata is not None:
            plan, problems = checked_strata(design, scenario, patients)
        if not problems:
            problems = platform_capacity_problems(design, scenario, plan is not None and plan.biomarker_result)
        if not problems:
            problems = platform_pair_problems(design, scenario, plan)
        if problems:
            raise ConfigError(problems)
        return PlatformCompiled(
            design, scenario, patients, PlatformDesign.from_models(design, scenario, patients, plan), plan
        )

    def recompile(self, compiled: PlatformCompiled, design) -> PlatformCompiled:
        """``compiled`` with ``design``, which differs from its design only in decision thresholds."""
        arrays = PlatformDesign.from_models(design, compiled.scenario, compiled.patients, compiled.plan)
        return PlatformCompiled(design, compiled.scenario, compiled.patients, arrays, compiled.plan)

    def simulate(self, compiled: PlatformCompiled, streams, trace=None):
        """Each trial gets its first ``size`` randomizable patients, for a ``size`` at which every
        trial's last arrives after the maximum duration (:func:`_enrolled_past`): every patient the
        trial could randomize, whatever the first guess of ``size``."""
        from ..streams import RANDOMIZATION

        pd_, plan = compiled.arrays, compiled.plan
        n_trials = streams.n_trials
        expected = expected_randomizable(
            compiled.scenario.population, pd_.max_duration, compiled.needs_biomarker_result
        )
        markers = None if plan is None else list(plan.markers)
        enrolled = _enrolled_past(compiled, streams, expected, markers, trace)
        size = enrolled.outcomes.shape[1]
        order = np.argsort(enrolled.ready, axis=1, kind="stable")
        match = None
        if plan is None:
            stratum = np.zeros((n_trials, size), dtype=np.int16)
        else:
            assert enrolled.observed is not None  # enrolled with observed=True
            mask = plan.classifier(enrolled.observed).astype(np.int64)
            if pd_.routed:  # routed at the result; until then, the first sub-study the patient matches
                match = _in_order(mask, order)
                stratum = _first_match(match, pd_.other)
            else:
                stratum = _in_order(
                    np.where(mask > 0, np.log2(np.maximum(mask, 1)).round(), -1).astype(np.int16), order
                )
        u = streams.uniform(RANDOMIZATION, "randomization:arm", 0, size)
        dropout = (
            np.full((n_trials, size), np.inf)
            if enrolled.dropout is None
            else _in_order(enrolled.dropout.astype(np.float64), order)
        )
        pool = PlatformPool(
            arrive=_in_order(enrolled.ready.astype(np.float64, copy=False), order),
            stratum=np.ascontiguousarray(stratum),
            u=_in_order(u, order),
            outcomes=_in_order(enrolled.outcomes.astype(np.float32, copy=False), order),
            dropout=np.ascontiguousarray(dropout),
            match=match,
        )
        screened_index = _in_order(enrolled.screened_index, order)
        if trace is not None:
            trace.enrolled, trace.order = enrolled, order[trace.row]
            trace.keep(arrive=pool.arrive, stratum=pool.stratum, dropout=pool.dropout)
        del enrolled, order, u  # the draws in their first order: only the pool's copies are read from here on
        res = simulate_platform(pd_, pool, trace)
        screened = np.where(pool.arrive <= res.enrolment_end[:, None], screened_index, -1)
        res.n_screened = screened.max(axis=1) + 1
        return to_trial_results(compiled, res, streams.trials)

    def truth(self, compiled: PlatformCompiled):
        return platform_truth(compiled)

    def size(self, compiled: PlatformCompiled):
        from .base import Size

        return Size(None, float(compiled.platform.max_duration_months))

    def resize(self, compiled: PlatformCompiled, max_n: int | None = None, months: float | None = None) -> Design:
        from ..config import ConfigError, parse_design

        if max_n is not None or months is None:
            raise ConfigError(
                [
                    Problem(
                        "design.platform",
                        f"{compiled.design.name!r} is a platform whose sample size "
                        "follows from its calendar (max_duration_months) and its arms' caps; size it by "
                        "duration instead",
                        None,
                    )
                ]
            )
        data = compiled.design.model_dump()
        data["platform"]["max_duration_months"] = float(months)
        return parse_design(data)

    def profiles(self, compiled: PlatformCompiled, characteristics: list[str]):
        from ..strata import profile_strata

        return profile_strata(compiled.patients.population, compiled.plan, characteristics)

    def describe(self, compiled: PlatformCompiled):
        from .base import Description, Section, Table
        from .looks import randomization_words
        from .stratified import strata_section

        pd_ = compiled.arrays
        signatures = Table(
            "Graduation signatures (unions of strata)",
            ("signature", "strata"),
            tuple(
                (name, ", ".join(s for s, member in zip(pd_.strata_names, pd_.signatures[g]) if member))
                for g, name in enumerate(pd_.signature_names)
            ),
        )
        sections = [
            Section(
                "Randomization",
                tuple(randomization_words(compiled.design, "P(arm better than control) in the patient's stratum")),
            ),
            Section("Calendar, analyses and graduation", tuple(platform_words(compiled)), (signatures,)),
        ]
        if compiled.plan is not None:
            sections.append(strata_section(compiled.design, compiled.plan))
        return Description(
            kind=self.title,
            summary=(f"{pd_.n_arms - 1} experimental arms against a shared control over {pd_.max_duration:g} months"),
            sections=tuple(sections),
        )

    def story(self, compiled: PlatformCompiled, trace, result):
        return platform_story(compiled, trace, result)

    @property
    def parameters(self):
        from .base import Parameter

        return {
            "graduate": Parameter(
                name="graduate",
                path="design.platform.graduation.graduate",
                meaning="graduates an arm in a signature when its success probability reaches it",
                get=lambda design: design.platform.graduation.graduate,
                set=_set_graduate,
            )
        }


PLATFORM = PlatformFamily()
