"""The platform over calendar time: patients arrive, arms enter and leave, analyses fire on triggers.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit
from scipy import special

from .allocation import allocate
from .compiled import allocation_limits, control_share_table
from .posterior.beta import prob_greater
from .posterior.predictive import pp_confirmatory
from .posterior.survival import (
    log_hr_moments,
    logrank_vs_control,
    pp_confirmatory_survival,
    prob_hr_below,
)

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
    enter_at: np.ndarray  # (K,) months the arm becomes available
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
    min_allocation: np.ndarray
    max_allocation: np.ndarray
    adaptive: bool
    power: float
    burn_in_n: int

    @property
    def n_arms(self) -> int:
        return len(self.arm_names)

    @property
    def n_strata(self) -> int:
        return len(self.strata_names)

    @classmethod
    def from_spec(cls, spec) -> "PlatformDesign":
        d, pf = spec.design, spec.design.platform
        names = tuple(d.arm_names)
        n_arms = len(names)
        ctrl = d.control_index
        ep = spec.scenario.endpoints[d.endpoint.name]
        survival = ep.kind == "time_to_event"
        if survival:
            prior_a = np.full(n_arms, pf.hazard_prior.shape)
            prior_b = np.full(n_arms, pf.hazard_prior.rate)
        else:
            prior_a = np.array([(a.prior or d.prior).a for a in d.arms], dtype=float)
            prior_b = np.array([(a.prior or d.prior).b for a in d.arms], dtype=float)
        read_at = spec.patients.outcomes.assessment_months(d.endpoint.name)
        assess = pf.assessment_weeks / WEEKS_PER_MONTH
        if not survival and read_at <= 0:
            read_at = assess
        plan = spec.strata
        strata_names = plan.names if plan is not None else ("all",)
        n_strata = len(strata_names)
        g = pf.graduation
        if g.signatures is not None:
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
        return cls(
            arm_names=names,
            treatments=treatments,
            arm_treatment=np.array([treatments.index(a.treatment) for a in d.arms], dtype=np.int64),
            control=ctrl,
            enter_at=np.array([a.enter_months or 0.0 for a in d.arms], dtype=float),
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
            min_allocation=limits(rnd.min_allocation, 0.0),
            max_allocation=limits(rnd.max_allocation, 1.0),
            adaptive=rnd.method == "adaptive",
            power=float(rnd.softening or 0.0) if rnd.method == "adaptive" else 0.0,
            burn_in_n=rnd.burn_in_n,
        )


@dataclass
class PlatformPool:
    """The randomizable patients of T trials, in order of randomization date (months)."""

    arrive: np.ndarray  # (T, N) float64, increasing along each row
    stratum: np.ndarray  # (T, N) int16, -1: no stratum (not classified)
    u: np.ndarray  # (T, N) float64 randomization uniforms
    outcomes: np.ndarray  # (T, N, treatments): event times (float32 months) or bool outcomes
    dropout: np.ndarray  # (T, N) float64 months from randomization to dropout (inf: none)


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

    @property
    def n_trials(self) -> int:
        return self.status.shape[0]

    @classmethod
    def concatenate(cls, parts: list["PlatformResults"]) -> "PlatformResults":
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


# ----------------------------------------------------------------------------------- kernels


@njit(cache=True)
def _assign(arrive, stratum, u, probs, n_arm, caps, t0, t1, rows, assigned, full_at):
    """Randomize the patients of trial ``rows[i]`` arriving in (t0[i], t1[i]] (in order)."""
    n_arms = caps.size
    for ii in range(rows.size):
        r = rows[ii]
        i = np.searchsorted(arrive[r], t0[ii], side="right")
        while i < arrive.shape[1] and arrive[r, i] <= t1[ii]:
            s = stratum[r, i]
            assigned[r, i] = -1
            if s >= 0:
                total = 0.0
                for k in range(n_arms):
                    if n_arm[r, k] < caps[k]:
                        total += probs[ii, s, k]
                if total > 0.0:
                    x = u[r, i] * total
                    acc = 0.0
                    pick = -1
                    for k in range(n_arms):
                        if n_arm[r, k] < caps[k] and probs[ii, s, k] > 0.0:
                            acc += probs[ii, s, k]
                            pick = k
                            if x < acc:
                                break
                    assigned[r, i] = pick
                    n_arm[r, pick] += 1
                    if n_arm[r, pick] == caps[pick]:
                        full_at[r, pick] = arrive[r, i]
            i += 1


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
def _seen(e, c, a, t, assess, survival, read_at):
    """A patient randomized at date ``a`` seen at date ``t``: (has outcome, event, time at risk, date the
    outcome is seen). Dates are compared as ``a + delay <= t`` everywhere, so the date a trigger
    expects an outcome and the analysis on that date agree to the last bit."""
    if survival:
        found = np.inf
        j = 0.0
        if np.isfinite(e):
            j = max(math.ceil(e / assess), 1)
            found = j * assess
        if not np.isfinite(t):
            return False, False, 0.0, a + found if found <= c else np.inf
        if found <= c:
            if a + found <= t:
                return True, True, (j - 0.5) * assess, a + found
            follow = t - a
            seen_at = a + found
        else:
            follow = min(t - a, c)
            seen_at = np.inf
        return False, False, math.floor(follow / assess) * assess, seen_at
    if a + read_at <= t:
        return True, e > 0.5, 0.0, a + read_at
    return False, False, 0.0, a + read_at


@njit(cache=True)
def _tally(arrive, stratum, assigned, outcomes, dropout, arm_treatment, control, opened, closed, rows, t,
           assess, survival, read_at, out_n, out_y, out_x, ctrl_n, ctrl_y, ctrl_x, seen):
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
            has, event, x, _ = _seen(outcomes[r, i, arm_treatment[k]], dropout[r, i], a, t[ii], assess, survival,
                                     read_at)
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
def _count_time(arrive, assigned, outcomes, dropout, arm_treatment, rows, target, by_outcome, assess, survival,
                read_at, scratch):
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
                _, _, _, when = _seen(outcomes[r, i, arm_treatment[k]], dropout[r, i], arrive[r, i], np.inf, assess,
                                      survival, read_at)
                scratch[m] = when
            else:
                scratch[m] = arrive[r, i]
            m += 1
        need = int(target[ii])
        if need <= m:
            part = np.sort(scratch[:m])
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
            has, ev, x, _ = _seen(outcomes[r, i, arm_treatment[k]], dropout[r, i], arrive[r, i], t[r], assess,
                                  survival, read_at)
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
        out[:, k] = pp_confirmatory(y_t[:, k], n_t[:, k], y_c[:, k], n_c[:, k], pd.confirmatory_n // 2, pd.alpha,
                                    (pd.prior_a[k], pd.prior_b[k]),
                                    prior_c=(pd.prior_a[pd.control], pd.prior_b[pd.control]))
    return out


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
        before = st.status[rows].copy()
        # --- when does the next thing happen?
        n_open = ((st.status[rows] == OPEN).sum(axis=1))
        waiting = st.status[rows] == WAITING
        entry = np.where(waiting & (pd.enter_at[None, :] > t0[:, None]), pd.enter_at[None, :], np.inf).min(axis=1)
        entry = np.where(n_open < pd.max_open, entry, np.inf)
        horizon = np.full(rows.size, pd.max_duration)
        probs = st.probs[rows]
        if pd.trigger == "calendar":
            look_at = st.next_cal[rows]
            t1 = np.minimum(np.minimum(look_at, entry), horizon)
            _assign(pool.arrive, pool.stratum, pool.u, probs, st.n_arm, pd.caps, t0, t1, rows, st.assigned, st.full_at)
        else:
            _assign(pool.arrive, pool.stratum, pool.u, probs, st.n_arm, pd.caps, t0, horizon, rows, st.assigned,
                    st.full_at)
            by_outcome = pd.trigger == "observed"
            target = (np.floor(st.count[rows] / pd.every) + 1) * pd.every
            look_at = _count_time(pool.arrive, st.assigned, pool.outcomes, pool.dropout, pd.arm_treatment, rows,
                                  target, by_outcome, pd.assess, pd.survival, pd.read_at, scratch)
            t1 = np.minimum(np.minimum(look_at, entry), horizon)
            _undo_after(pool.arrive, st.assigned, st.n_arm, st.full_at, rows, t1)
        st.t[rows] = t1
        # arms that filled up stop randomizing (their slot frees at the next analysis)
        filled = (st.status[rows] == OPEN) & ~np.isnan(st.full_at[rows])
        st.closed[rows] = np.where(filled, st.full_at[rows], st.closed[rows])
        st.status[rows] = np.where(filled, FULL, st.status[rows])

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
        trace.keep(assigned=st.assigned)
    return _results(pd, st, pool)


def _open_arms(pd: PlatformDesign, st: _State, rows: np.ndarray, t: np.ndarray) -> None:
    """Open available arms in queue order while slots are free."""
    for k in range(pd.n_arms):
        if k == pd.control:
            continue
        n_open = (st.status[rows] == OPEN).sum(axis=1)
        go = (st.status[rows, k] == WAITING) & (pd.enter_at[k] <= t) & (n_open < pd.max_open)
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
    _tally(pool.arrive, pool.stratum, st.assigned, pool.outcomes, pool.dropout, pd.arm_treatment, pd.control,
           opened, closed, rows, t, pd.assess, pd.survival, pd.read_at, *arm, *ctrl, seen)
    if not (pd.concurrent if concurrent is None else concurrent):  # every control patient, for every arm
        c = pd.control
        ctrl = [np.broadcast_to(v[:, c:c + 1, :], (R, K, S)).copy() for v in arm]
    return arm, ctrl, seen


def _analyse(pd: PlatformDesign, st: _State, pool: PlatformPool, rows, t, final: bool) -> np.ndarray:
    """An analysis at dates t: graduation and drops (at the final analysis, undecided arms are settled)."""
    (n, y, x), (cn, cy, cx), seen = _data(pd, st, pool, rows, t)
    if pd.trigger != "calendar":
        st.count[rows] = seen if pd.trigger == "observed" else st.n_arm[rows].sum(axis=1)
    enough = (seen - st.seen_last[rows] >= pd.min_new) | final
    st.n_looks[rows] += enough
    st.seen_last[rows] = np.where(enough, seen, st.seen_last[rows])
    sig = pd.signatures.T.astype(float)  # (S, G)
    pooled = [v @ sig for v in (n, y, x)]  # (R, K, G)
    cpooled = [v @ sig for v in (cn, cy, cx)]
    success = _success(pd, *pooled, *cpooled)
    status = st.status[rows]
    live = ((status == OPEN) | (status == FULL)) & (st.n_arm[rows] >= pd.min_n) & enough[:, None]
    live[:, pd.control] = False
    best = np.nanmax(np.where(live[:, :, None], success, -np.inf), axis=2)
    grad = live & (best >= pd.graduate)
    drop = live & ~grad & (np.all(success < pd.drop, axis=2) if not math.isnan(pd.drop) else False)
    if final:
        undecided = ((status == OPEN) | (status == FULL)) & ~grad & ~drop
        undecided[:, pd.control] = False
    else:
        undecided = np.zeros_like(grad)
    decided = grad | drop | undecided
    if decided.any():
        total = [v.sum(axis=2) for v in (n, y, x)]
        ctotal = [v.sum(axis=2) for v in (cn, cy, cx)]
        effect = _effect(pd, *total, *ctotal)
        r_idx, k_idx = np.nonzero(decided)
        tr = rows[r_idx]
        was_open = st.status[tr, k_idx] == OPEN
        st.closed[tr[was_open], k_idx[was_open]] = t[r_idx][was_open]
        st.decided[tr, k_idx] = t[r_idx]
        st.effect_at_decision[tr, k_idx] = effect[r_idx, k_idx]
        new = np.where(grad, GRADUATED, np.where(drop, DROPPED, INCONCLUSIVE))[r_idx, k_idx]
        st.status[tr, k_idx] = new
        g = np.argmax(np.where(live[:, :, None], success, -np.inf), axis=2)
        gi = grad[r_idx, k_idx]
        st.graduated_in[tr[gi], k_idx[gi]] = g[r_idx, k_idx][gi]
    if st.trace is not None:
        st.trace.record("analysis", rows, t=t, final=final, counted=enough, n=n, y=y, x=x, cn=cn, cy=cy, cx=cx,
                        success=success, live=live, graduate=grad, drop=drop, settle=undecided,
                        status=st.status[rows])
    return enough


def _allocation(pd: PlatformDesign, st: _State, rows, pool, t) -> np.ndarray:
    """(R, S, K) allocation probabilities in force after date t."""
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    status = st.status[rows]
    open_ = status == OPEN
    open_[:, pd.control] = open_.any(axis=1)
    weights = None
    adaptive = False
    if pd.adaptive and pool is not None:
        (n, y, x), (cn, cy, cx), seen = _data(pd, st, pool, rows, t)
        adaptive_rows = seen >= pd.burn_in_n
        if adaptive_rows.any():
            adaptive = True
            a, b = _posterior(pd, n, y, x)
            ac, bc = _control_posterior(pd, cn, cy, cx)
            p = _prob_better(pd, a, b, ac, bc)  # (R, K, S)
            # before the burn-in is over, equal weights (P = 1/2 gives every arm the same weight)
            weights = np.where(adaptive_rows[:, None, None], p, 0.5)
            weights = np.nan_to_num(weights, nan=0.5)
    open_s = np.repeat(open_[:, None, :], S, axis=1).reshape(R * S, K)
    control = np.full(R * S, pd.control)
    w = None if weights is None else np.transpose(weights, (0, 2, 1)).reshape(R * S, K)
    probs = allocate(pd, adaptive, pd.power, w, open_s, open_s, control)
    return probs.reshape(R, S, K)


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


def _results(pd: PlatformDesign, st: _State, pool: PlatformPool) -> PlatformResults:
    T = pool.arrive.shape[0]
    K, S = pd.n_arms, pd.n_strata
    rows = np.arange(T)
    t = st.duration
    (n, y, x), (cn, cy, cx), _ = _data(pd, st, pool, rows, t)
    # both control choices, whatever the design uses
    c = pd.control
    all_c = [np.broadcast_to(v[:, c:c + 1, :], (T, K, S)) for v in (n, y, x)]
    conc = (cn, cy, cx) if pd.concurrent else _data(pd, st, pool, rows, t, concurrent=True)[1]
    tot = [v.sum(axis=2) for v in (n, y, x)]
    effect_conc = _effect(pd, *tot, *[v.sum(axis=2) for v in conc])
    effect_all = _effect(pd, *tot, *[v.sum(axis=2) for v in all_c])
    design_c = conc if pd.concurrent else all_c
    a, b = _posterior(pd, *tot)
    ac, bc = _control_posterior(pd, *[v.sum(axis=2) for v in design_c])
    prob_better = _prob_better(pd, a, b, ac, bc)
    if pd.survival:
        estimate = math.log(2.0) / special.gammaincinv(a, 0.5) * b
    else:
        estimate = a / (a + b)
    z_conc, z_all = _final_tests(pd, st, pool, t)
    entered = ~np.isnan(st.opened)
    for arr in (effect_conc, effect_all, prob_better, z_conc, z_all):
        arr[:, c] = np.nan
        arr[~entered] = np.nan
    estimate = np.where(entered, estimate, np.nan)
    valid = st.assigned >= 0
    idx = (rows[:, None] * K + st.assigned.astype(np.int64)) * S + pool.stratum
    n_stratum = np.bincount(idx[valid], minlength=T * K * S).reshape(T, K, S)
    n_periods = int(math.ceil(pd.max_duration / PERIOD_MONTHS))
    period = np.minimum((pool.arrive // PERIOD_MONTHS).astype(np.int64), n_periods - 1)
    idx = (rows[:, None] * n_periods + period) * K + st.assigned.astype(np.int64)
    n_period = np.bincount(idx[valid], minlength=T * n_periods * K).reshape(T, n_periods, K)
    before = pool.arrive <= st.end[:, None]
    grad_t = np.where(st.status == GRADUATED, st.decided, np.inf).min(axis=1)
    return PlatformResults(
        status=st.status, opened_at=st.opened, closed_at=st.closed, decided_at=st.decided,
        graduated_in=st.graduated_in, n=st.n_arm.copy(), n_stratum=n_stratum, events=tot[1].round().astype(np.int64),
        effect_at_decision=st.effect_at_decision, effect_concurrent=effect_conc, effect_all=effect_all,
        z_concurrent=z_conc, z_all=z_all, prob_better=prob_better, estimate=estimate, n_looks=st.n_looks,
        enrolment_end=st.end, duration=st.duration, first_graduation=np.where(np.isfinite(grad_t), grad_t, np.nan),
        n_not_assigned=(before & ~valid & (pool.stratum >= 0)).sum(axis=1),
        n_unclassified=(before & (pool.stratum < 0)).sum(axis=1),
        n_randomizable=before.sum(axis=1), n_period=n_period,
    )


def _final_tests(pd: PlatformDesign, st: _State, pool: PlatformPool, t):
    """Frequentist final comparison of every arm with the control: the log-rank z (survival) or the
    pooled two-proportion z (binary), against concurrent and against all controls; < 0 favours the arm."""
    T, N = pool.arrive.shape
    time = np.full((T, N), np.nan)
    event = np.zeros((T, N), dtype=bool)
    _observe(pool.arrive, st.assigned, pool.outcomes, pool.dropout, pd.arm_treatment, t, pd.assess, pd.survival,
             pd.read_at, time, event)
    arm = np.where(np.isnan(time), -1, st.assigned).astype(np.int64)
    opened = np.where(np.isnan(st.opened), np.inf, st.opened)
    closed = np.where(np.isnan(st.closed), np.inf, st.closed)
    a = pool.arrive[:, :, None]
    include = (a >= opened[:, None, :]) & (a <= closed[:, None, :])
    if pd.survival:
        z_conc = logrank_vs_control(time, event, arm, include, pd.control, pd.n_arms)[0]
        z_all = logrank_vs_control(time, event, arm, None, pd.control, pd.n_arms)[0]
        return z_conc, z_all
    return _two_proportion_z(pd, arm, event, include), _two_proportion_z(pd, arm, event, None)


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
