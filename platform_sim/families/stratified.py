"""Biomarker-stratified designs: allocation, decisions and claims per arm x stratum.

Like :mod:`platform_sim.families.looks`, a batch of simulated trials moves through the
looks together and Python loops run over looks only. What changes:

* Each trial draws from a *pool* of randomizable patients (in order of arrival),
  each with the bit mask of the strata their reported profile matches. At every
  look the next batch of patients is routed (a compiled kernel): to the first open
  stratum they match, or one at random among them, else to the 'other' stratum;
  a patient no open stratum takes is screened but not randomized. A stratum takes
  patients while it is deciding, below its cap and, with stages, below the size of
  its current stage (enrolment pauses until the stage is analysed).
* Within each stratum the batch's patients get arms from that stratum's allocation
  probabilities (fixed or response-adaptive among the arms still in it) and the
  counts are kept per segment x stratum x arm.
* At each look every stratum due for an analysis is decided on its own (rows of
  trial x stratum go through :func:`platform_sim.rules.decide` when it has a
  control; single-arm strata compare each arm with a reference rate, by posterior
  probability or by responder counts), or, for enrichment, arm by arm over both
  strata. With hierarchical analysis each arm's posterior in a stratum borrows
  from its other strata (moment-matched beta of the exact hierarchical posterior).
* A stratum stops when its arms are decided or after its last stage; the trial
  stops when no stratum is left, none can take patients, or at the last look.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..allocation import allocation_probabilities, block_counts
from ..compiled import CompiledDesign
from ..config import Design, Scenario
from ..config.base import MAX_STRATA
from ..config.strata import Strata
from ..outcomes import Enrolled, Enrolment, VirtualPatients
from ..posterior import beta_interval, oriented, prob_best, prob_greater
from ..results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INELIGIBLE,
    INFERIOR,
    STOP_ARMS_DROPPED,
    STOP_MAX,
    STOP_NAMES,
    STOP_SUPERIORITY,
    SUPERIOR,
    TrialResults,
    Truth,
)
from ..rules import CONTINUE, decide, futility_at
from ..strata import StrataPlan, checked_strata, deal_strata, draw_arms_strata, route, tally_strata, treated
from ..streams import RANDOMIZATION, TrialStreams
from .base import (
    Description,
    Parameter,
    Section,
    Size,
    Table,
    enrol_options,
    scale_design,
    setting,
)
from .looks import (
    SELECTION_STRATEGIES,
    SUPERIORITY,
    LookResults,
    _segments,
    capacity_problems,
    decision_words,
    endpoint_problems,
    look_months,
    look_story,
    looks_table,
    randomization_words,
)
from .probit_looks import ProbitLook, ProbitLooks, ProbitSetup


class Pool:
    """The randomizable patients of each trial of a batch, in order, in flat arrays: trial t's
    patients at ``start[t] .. start[t] + avail[t] - 1``. With ``more`` (the batch's
    :class:`~platform_sim.outcomes.Enrolment`), :meth:`grow` gives a trial that has reached the end
    of its patients twice as many (the same patients: each is a function of its position), up to
    ``limit``; without, the pool is what it was built with. Patients enrolled with their outcomes
    drawn later (``Enrolment(..., outcomes_later=True)``) keep their combinations of the levels the
    outcomes read instead of every treatment's outcome, and :meth:`outcomes_given` draws the
    outcome under the treatment given."""

    def __init__(self, plan: StrataPlan, streams: TrialStreams, enrolled: Enrolled, more: Enrolment | None, limit: int):
        self.plan, self.streams, self.more, self.limit = plan, streams, more, limit
        n_trials, size = enrolled.screened_index.shape
        self.n_trials = n_trials
        self.start = np.arange(n_trials, dtype=np.int64) * size
        self.avail = np.full(n_trials, size, dtype=np.int64)
        self.used = n_trials * size
        # every treatment's outcomes (N, K), or the combinations of levels (N,) they are drawn from
        self.combination = None if enrolled.combination is None else enrolled.combination.reshape(-1)
        self.outcomes = None if self.combination is not None else enrolled.outcomes.reshape(self.used, -1)
        self.match = plan.classifier(_observed(enrolled)).reshape(-1)
        self.route_u = self._uniforms("randomization:route", np.arange(n_trials), 0, size if plan.random_overlap else 0)
        self.arm_u = self._uniforms("randomization:arm", np.arange(n_trials), 0, size)
        self.ready = enrolled.ready.reshape(-1)
        self.screened = enrolled.screened_index.reshape(-1)

    def _uniforms(self, name: str, rows: np.ndarray, first: int, n: int) -> np.ndarray:
        # read only to split patients who match several strata at random (route), or to deal arms
        return self.streams.uniform(RANDOMIZATION, name, first, n, rows).reshape(-1)

    def grow(self, rows: np.ndarray) -> np.ndarray:
        """Double the patients of the batch rows ``rows`` below the limit; returns which grew (bool)."""
        if self.more is None:
            return np.zeros(rows.size, dtype=bool)
        sizes = self.avail[rows]  # before any of them grows: each row grows once
        grows = sizes < self.limit
        for size in np.unique(sizes[grows]):
            group = rows[grows & (sizes == size)]
            self._append(group, int(size), self.more.take(group, int(size)))
        return grows

    def _append(self, rows: np.ndarray, size: int, new: Enrolled) -> None:
        """Move the rows (each holding ``size`` patients) to the end of the arrays with ``new``'s after them."""
        width = 2 * size
        end = self.used + rows.size * width
        kept = (
            {"outcomes": new.outcomes.reshape(rows.size * size, -1)}
            if new.combination is None  # the pool's patients and the new ones come from one Enrolment
            else {"combination": new.combination.reshape(-1)}
        )
        added = {
            **kept,
            "match": self.plan.classifier(_observed(new)).reshape(-1),
            "arm_u": self._uniforms("randomization:arm", rows, size, size),
            "ready": new.ready.reshape(-1),
            "screened": new.screened_index.reshape(-1),
        }
        if self.plan.random_overlap:  # with priority overlap the routing uniforms are not read
            added["route_u"] = self._uniforms("randomization:route", rows, size, size)
        if end > self.match.size:  # room for at least twice as many slots
            room = max(2 * self.match.size, end)
            for name in added:
                old = getattr(self, name)
                grown = np.empty((room,) + old.shape[1:], dtype=old.dtype)
                grown[: self.used] = old[: self.used]
                setattr(self, name, grown)
        starts = self.used + np.arange(rows.size, dtype=np.int64) * width
        old_at = (self.start[rows][:, None] + np.arange(size)).reshape(-1)
        new_at = (starts[:, None] + np.arange(size)).reshape(-1)
        for name, values in added.items():
            x = getattr(self, name)
            x[new_at] = x[old_at]
            x[new_at + size] = values
        self.start[rows] = starts
        self.avail[rows] = width
        self.used = end

    def outcomes_given(
        self, rows: np.ndarray, at: np.ndarray, arms: np.ndarray, arm_treatment: np.ndarray
    ) -> np.ndarray:
        """(R, m, 1) bool: the outcome of each patient at pool positions ``at`` (R, m) of the batch
        rows ``rows`` under the treatment of its arm (``arms`` (R, m), -1: not randomized, False), for
        a pool without every treatment's outcomes: the values those would hold (see
        :meth:`~platform_sim.outcomes.OutcomesModel.outcomes_at`)."""
        assert self.more is not None and self.combination is not None
        options = self.more.options
        model = self.more.patients.outcomes
        flat, which, row, position, combination = treated(
            rows, at, arms, arm_treatment, self.screened, self.combination
        )
        out = np.zeros(arms.size, dtype=bool)
        out[flat] = model.outcomes_at(
            self.streams,
            options.ep,
            options.treatments,
            which,
            row,
            position,
            combination,
            self.ready[at.reshape(-1)[flat]] if model.scenario.time_trend else None,
        )
        return out.reshape(arms.shape + (1,))


_NO_CAP = np.array(np.iinfo(np.int64).max)  # arms have no caps within strata (the strata are capped)


class _Borrowing:
    """Hierarchical borrowing's posterior moments in a batch of trials: the moment-matched Betas
    each look's rules read, and the posterior means reported at the end, which are those of the
    last look that computed them wherever the final counts are that look's (a trial that reaches
    the last look, where every patient is followed): each row's moments are a function of its
    counts alone (the same kernel, row by row), so they are the same numbers."""

    def __init__(self, hierarchical: tuple, shape: tuple[int, int, int]):
        self.prior, self.grid = hierarchical
        self.y = np.full(shape, -1, dtype=np.int64)  # (T, S, K) counts of the last moments computed
        self.n = np.full(shape, -1, dtype=np.int64)
        self.mean = np.full(shape, np.nan)

    def _moments(self, y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from ..posterior.hierarchical_fast import hierarchical_moments

        mean, var = hierarchical_moments(np.swapaxes(y, 1, 2), np.swapaxes(n, 1, 2), self.prior, self.grid)
        return np.swapaxes(mean, 1, 2), np.swapaxes(var, 1, 2)

    def beta(self, rows: np.ndarray, y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) (R, S, K) of the batch rows ``rows`` with counts y, n (R, S, K)."""
        from ..posterior.hierarchical_fast import beta_from_moments

        mean, var = self._moments(y, n)
        self.y[rows], self.n[rows], self.mean[rows] = y, n, mean
        return beta_from_moments(mean, var)

    def final_means(self, y: np.ndarray, n: np.ndarray) -> np.ndarray:
        """(T, S, K) posterior means of every trial's final counts y, n (T, S, K)."""
        mean = self.mean.copy()
        todo = ~((self.y == y).all(axis=(1, 2)) & (self.n == n).all(axis=(1, 2)))
        if todo.any():
            mean[todo] = self._moments(y[todo], n[todo])[0]
        return mean


def _beta_params(design, y, n, borrowing: _Borrowing | None, rows: np.ndarray):
    """Posterior (a, b) per (R, S, K) of the batch rows ``rows`` on the higher-is-better scale."""
    if borrowing is None:
        a, b = design.prior_a + y, design.prior_b + n - y
    else:
        a, b = borrowing.beta(rows, y, n)
    return oriented(a, b, design.higher_is_better)


def _reference_scale(plan: StrataPlan, design: CompiledDesign) -> np.ndarray:
    return plan.reference if design.higher_is_better else 1.0 - plan.reference


def _decide_reference(
    design,
    plan,
    look,
    final,
    rows,
    strata,
    a,
    b,
    y,
    stage,
    status,
    status_look,
    declared,
    p_above=None,
    declare_now=True,
):
    """Single-arm strata: each active arm against the stratum's reference rate.

    ``p_above``: (R, K) P(rate > reference) of the rows' strata from a model other than the beta
    posterior (the hierarchical probit model), None to compute it from Beta(a, b);
    ``declare_now``: False where the design decides only at its last look (BATTLE)."""
    from scipy import stats

    p0 = _reference_scale(plan, design)[strata]
    st = status[rows, strata]
    active = st == ACTIVE
    counted = plan.boundaries[strata, 0] >= 0
    g = stage[rows, strata]
    n_stages = (plan.stages[strata] > 0).sum(axis=1)
    last_stage = g >= n_stages - 1
    new = st.copy()
    decl = np.zeros_like(active)
    # responder-count rules
    r = plan.boundaries[strata, np.minimum(g, plan.boundaries.shape[1] - 1)]
    yy = y
    c_rows = counted[:, None] & active
    pass_ = yy > r[:, None]
    decl |= c_rows & pass_ & last_stage[:, None]
    new = np.where(c_rows & ~pass_, FUTILE, new)
    new = np.where(decl, SUPERIOR, new)
    # posterior rules
    p_rows = ~counted[:, None] & active & declare_now
    if p_rows.any():
        if p_above is None:
            p_above = stats.beta.sf(p0[:, None], a, b)
        sup, inf = design.superiority[look], design.inferiority[look]
        win = p_rows & (p_above > sup) if not np.isnan(sup) else np.zeros_like(p_rows)
        lose = p_rows & ~win & (p_above < inf) if not np.isnan(inf) else np.zeros_like(p_rows)
        new = np.where(win, SUPERIOR, np.where(lose, INFERIOR, new))
        decl |= win
        if futility_at(design, look):
            p_fut = stats.beta.sf(np.clip(p0 + design.futility_delta, 0, 1)[:, None], a, b)
            fut = p_rows & ~win & ~lose & (p_fut < design.futility_threshold)
            new = np.where(fut, FUTILE, new)
    changed = new != st
    status[rows, strata] = new
    sl = status_look[rows, strata]
    status_look[rows, strata] = np.where(changed, look, sl)
    declared[rows, strata] |= decl
    done = ~(new == ACTIVE).any(axis=1) | (last_stage & (plan.stages[strata, 0] > 0)) | final
    return done


def _where_greater(mask, a1, b1, a2, b2, delta) -> np.ndarray:
    """P(X1 > X2 + delta) (:func:`~platform_sim.posterior.prob_greater`) where ``mask``, NaN elsewhere."""
    out = np.full(mask.shape, np.nan)
    if mask.any():
        out[mask] = prob_greater(a1[mask], b1[mask], a2[mask], b2[mask], delta)
    return out


def _decide_enrichment(design, plan, look, pos, rows, a, b, status, status_look, declared, y, n):
    """Adaptive enrichment over the two strata of one marker (``pos``: the positive stratum)."""
    en = plan.enrichment
    neg = 1 - pos
    c = design.control
    sup, inf = design.superiority[look], design.inferiority[look]
    prior_a, prior_b = design.prior_a, design.prior_b
    for k in range(design.n_arms):
        if k == c:
            continue
        st = status[rows]
        both = (st[:, neg, k] == ACTIVE) & (st[:, pos, k] == ACTIVE)
        only_pos = (st[:, neg, k] != ACTIVE) & (st[:, pos, k] == ACTIVE)
        # pooled analysis over the strata the arm still enrols in
        yk = y[rows, pos, k] + np.where(both, y[rows, neg, k], 0)
        nk = n[rows, pos, k] + np.where(both, n[rows, neg, k], 0)
        yc = y[rows, pos, c] + np.where(both, y[rows, neg, c], 0)
        nc = n[rows, pos, c] + np.where(both, n[rows, neg, c], 0)
        ak, bk = oriented(prior_a[k] + yk, prior_b[k] + nk - yk, design.higher_is_better)
        ac, bc = oriented(prior_a[c] + yc, prior_b[c] + nc - yc, design.higher_is_better)
        live = both | only_pos
        # each comparison only where its outcome is used (a row's value does not depend on the others)
        p_sup = _where_greater(live, ak, bk, ac, bc, 0.0)
        win = live & (p_sup > sup) if not np.isnan(sup) else np.zeros_like(live)
        lose = live & ~win & (p_sup < inf) if not np.isnan(inf) else np.zeros_like(live)
        fut = np.zeros_like(live)
        if futility_at(design, look):
            p_fut = _where_greater(live & ~win & ~lose, ak, bk, ac, bc, design.futility_delta)
            fut = live & ~win & ~lose & (p_fut < design.futility_threshold)
        restrict = np.zeros_like(live)
        drop_both = np.zeros_like(live)
        check = both & ~win & ~lose & ~fut
        if check.any():
            p_neg = _where_greater(check, a[rows, neg, k], b[rows, neg, k], a[rows, neg, c], b[rows, neg, c], en.delta)
            p_pos = _where_greater(check, a[rows, pos, k], b[rows, pos, k], a[rows, pos, c], b[rows, pos, c], 0.0)
            futile_neg = check & (p_neg < en.futility)
            restrict = futile_neg & (p_pos > en.promising)
            drop_both = futile_neg & ~restrict
        for s, mask, code in (
            (pos, win, SUPERIOR),
            (neg, win & both, SUPERIOR),
            (pos, lose, INFERIOR),
            (neg, lose & both, INFERIOR),
            (pos, fut, FUTILE),
            (neg, fut & both, FUTILE),
            (neg, restrict, FUTILE),
            (pos, drop_both, FUTILE),
            (neg, drop_both, FUTILE),
        ):
            r = rows[mask]
            status[r, s, k] = code
            status_look[r, s, k] = look
            if code == SUPERIOR:
                declared[r, s, k] = True
    st = status[rows]
    return ~((st == ACTIVE).any(axis=2).any(axis=1))


# Rounding allowed for in a suspension settled by Cantelli's bound instead of the incomplete beta
# function: the bound is a few floating-point operations, each within 1e-16 relative.
_SUSPENSION_GUARD = 1e-9


def suspended_arms(a, b, active, reference, below):
    """Which active arms a suspension rule suspends: P(rate > reference) < below under each arm's
    Beta(a, b) posterior (a, b, active: (T, S, K); returns (T, S, K) bool).

    Only the answer is needed, so Cantelli's inequality settles most arms without the incomplete
    beta function: with mean m, variance v and t = m - reference, P(X <= reference) <= v / (v + t^2)
    when t > 0 and P(X > reference) <= v / (v + t^2) when t < 0. An arm is evaluated exactly
    (``scipy.special.betaincc``, what ``scipy.stats.beta.sf`` computes) only when its bound leaves
    the answer within ``_SUSPENSION_GUARD`` of open; the answers are those of the exact tail for
    every arm (tests/test_stratified_fast.py)."""
    from scipy import special

    n = a + b
    t = a / n - reference
    var = a * b / (n * n * (n + 1.0))
    tail = var / (var + t * t)
    surely_not = (t > 0) & (1.0 - tail > below + _SUSPENSION_GUARD)
    surely = (t < 0) & (tail < below - _SUSPENSION_GUARD)
    open_ = active & ~surely_not & ~surely
    out = active & surely
    out[open_] = special.betaincc(a[open_], b[open_], reference) < below
    return out


def _route(pool: Pool, plan: StrataPlan, rows, ptr, can_take, headroom, batch_size: int):
    """:func:`~platform_sim.strata.route` of the batch rows ``rows`` (from pool positions ``ptr``):
    (pool positions, strata, next positions). A trial that reaches the end of its patients with
    places left gets more (:meth:`Pool.grow`) and is routed again from where it was, so that it is
    routed as on a pool without end (up to the pool's limit)."""
    n_rows = rows.size
    index = np.empty((n_rows, batch_size), dtype=np.int64)
    strat = np.empty((n_rows, batch_size), dtype=np.int64)
    p_rows = np.empty(n_rows, dtype=np.int64)
    args = (batch_size, plan.other, plan.random_overlap)
    todo = np.arange(n_rows)
    while todo.size:
        r = rows[todo]
        i_sub, s_sub = (
            np.empty((todo.size, batch_size), dtype=np.int64),
            np.empty((todo.size, batch_size), dtype=np.int64),
        )
        p_sub, h_sub = ptr[todo].copy(), headroom[todo].copy()
        route(pool.match, pool.route_u, pool.start[r], pool.avail[r], p_sub, can_take[todo], h_sub, *args, i_sub, s_sub)
        index[todo], strat[todo], p_rows[todo] = i_sub, s_sub, p_sub
        if not batch_size:
            break
        short = todo[(p_sub == pool.avail[r]) & (i_sub[:, -1] < 0)]
        todo = short[pool.grow(rows[short])] if short.size else short
    return index, strat, p_rows


def simulate_strata(
    design: CompiledDesign,
    plan: StrataPlan,
    pool: Pool,
    streams: TrialStreams,
    hierarchical=None,
    trace=None,
    probit: ProbitSetup | None = None,
    reuse_decided_pb: bool = True,
) -> tuple[LookResults, StrataResults, np.ndarray]:
    """Simulate one stratified trial per row of the pool. Returns the pooled per-arm results,
    the per arm x stratum results and each trial's next pool position (patients scanned).
    ``probit``: analyse with the hierarchical probit model (:mod:`.probit_looks`) instead of beta
    posteriors. ``reuse_decided_pb=False`` recomputes every P(best) the allocation reads (the
    reference the reuse is tested against)."""

    n_trials = pool.n_trials
    n_strata, n_arms, n_looks = plan.n_strata, design.n_arms, design.n_looks
    bounds, batch_of, n_followed_segments = _segments(design)
    n_segments = len(bounds) - 1
    seg_sizes = np.diff(bounds)
    ctrl = design.control
    free = dataclasses.replace(design, control=-1, control_rule=None)  # allocation in reference strata
    enrich_pos = -1
    if plan.enrichment is not None:
        enrich_pos = plan.enrichment_positive

    seg_n = np.zeros((n_trials, n_segments, n_strata, n_arms), dtype=np.int32)
    seg_y = np.zeros((n_trials, n_segments, n_strata, n_arms), dtype=np.int32)
    status = np.full((n_trials, n_strata, n_arms), ACTIVE, dtype=np.int8)
    status[:, ~plan.arm_in] = INELIGIBLE
    if ctrl >= 0:
        status[:, plan.controlled & plan.arm_in[:, ctrl], ctrl] = CONTROL
    status_look = np.full(status.shape, -1, dtype=np.int16)
    declared = np.zeros(status.shape, dtype=bool)
    declared_look = np.full(status.shape, -1, dtype=np.int16)
    slot_index = np.full((n_trials, design.max_n), -1, dtype=np.int64)  # pool position of each randomized slot
    control = np.where(plan.controlled, ctrl, -1)[None, :].repeat(n_trials, axis=0).astype(np.int64)
    control_changed = np.zeros((n_trials, n_strata), dtype=bool)
    deciding = np.ones((n_trials, n_strata), dtype=bool)
    s_stop_look = np.full((n_trials, n_strata), -1, dtype=np.int16)
    stage = np.zeros((n_trials, n_strata), dtype=np.int64)
    enrolled = np.zeros((n_trials, n_strata), dtype=np.int64)
    ptr = np.zeros(n_trials, dtype=np.int64)
    stop_look = np.full(n_trials, n_looks - 1, dtype=np.int16)
    stop_reason = np.full(n_trials, STOP_MAX, dtype=np.int8)
    alloc_history = np.full((n_trials, n_looks, n_strata, n_arms), np.nan, dtype=np.float32)
    final_alloc = np.zeros((n_trials, n_strata, n_arms))
    running = np.ones(n_trials, dtype=bool)
    staged = plan.has_stages
    probit_looks = None if probit is None else ProbitLooks(probit, n_trials, n_strata, n_arms)
    borrowing = None if hierarchical is None else _Borrowing(hierarchical, status.shape)
    # the compiled rules with a control give P(best) among the arms left (the grid prob_best builds,
    # tests/test_stratified_fast.py); the allocation of the controlled strata reads it from there
    reuse_pb = design.adaptive and probit is None and ctrl >= 0 and enrich_pos < 0 and reuse_decided_pb

    def allocation(look, rows, a=None, b=None, post=None, known=None):
        """(R, S, K) allocation probabilities of the rows' strata after look ``look``; with ``post``
        (the probit model's :class:`ProbitLook`), adaptive weights are the posterior mean rates and
        suspension reads the exact P(rate > reference). ``known``: (R, S, K) P(best) among the arms
        left that the look's decisions already computed (rows of NaN where they did not); only the
        other (trial, stratum) rows get a grid of their own."""
        st = status[rows]
        in_trial = (st == ACTIVE) | (st == CONTROL)
        open_ = in_trial.copy()
        if plan.suspension is not None and a is not None and look >= 0:
            p_ref = plan.suspension.reference if design.higher_is_better else 1 - plan.suspension.reference
            active = st == ACTIVE
            if post is None:
                suspended = suspended_arms(a, b, active, p_ref, plan.suspension.below)
            else:
                suspended = (post.prob_above(p_ref) < plan.suspension.below) & active
            keep_some = ((st == ACTIVE) & ~suspended).any(axis=2, keepdims=True)
            open_ &= ~(suspended & keep_some)
        out = np.zeros(st.shape)
        pb = None
        if design.adaptive and post is not None:
            pb = post.mean
        elif design.adaptive and a is not None:
            flat_a, flat_b, flat_in = a.reshape(-1, n_arms), b.reshape(-1, n_arms), in_trial.reshape(-1, n_arms)
            if known is None:
                flat = prob_best(flat_a, flat_b, flat_in)
            else:
                flat = known.reshape(-1, n_arms).copy()
                todo = np.isnan(flat[:, 0])
                if todo.any():
                    flat[todo] = prob_best(flat_a[todo], flat_b[todo], flat_in[todo])
            pb = flat.reshape(st.shape)
        for kind, mask in ((design, plan.controlled), (free, ~plan.controlled)):
            if not mask.any():
                continue
            sel = np.flatnonzero(mask)
            it, op = in_trial[:, sel].reshape(-1, n_arms), open_[:, sel].reshape(-1, n_arms)
            c = control[rows][:, sel].reshape(-1)
            p = None if pb is None else pb[:, sel].reshape(-1, n_arms)
            out[:, sel] = allocation_probabilities(kind, look, p, it, op, c).reshape(len(rows), sel.size, n_arms)
        return out

    probs = allocation(-1, np.arange(n_trials))
    for look in range(n_looks):
        rows = np.flatnonzero(running)
        if rows.size == 0:
            break
        n_rows = rows.size
        # --- route the batch to strata, then deal arms within each stratum
        seg_ids = np.flatnonzero(batch_of == look)
        batch_size = int(seg_sizes[seg_ids].sum())
        limit = np.where(
            staged[None, :],
            plan.stages[np.arange(n_strata)[None, :], np.minimum(stage[rows], plan.stages.shape[1] - 1)],
            plan.caps[None, :],
        )
        headroom = np.maximum(limit - enrolled[rows], 0)
        can_take = deciding[rows] & (probs[rows].sum(axis=2) > 0)
        index, strat, p_rows = _route(pool, plan, rows, ptr[rows], can_take, headroom, batch_size)
        ptr[rows] = p_rows
        start = bounds[seg_ids[0]]
        slot_index[rows, start : start + batch_size] = np.where(strat >= 0, index, -1)
        per_stratum = np.stack([(strat == s).sum(axis=1) for s in range(n_strata)], axis=1)  # (R, S)
        p = probs[rows].reshape(-1, n_arms)
        final_alloc[rows] = np.where(probs[rows] > 0, probs[rows], final_alloc[rows])
        m = per_stratum.reshape(-1)
        at = pool.start[rows][:, None] + np.maximum(index, 0)  # where the batch's patients lie in the pool
        u = pool.arm_u[at]
        if design.block:
            u0 = streams.uniform(RANDOMIZATION, "randomization:block", look * MAX_STRATA, n_strata, rows).reshape(-1)
            counts = block_counts(u0, m, p, _NO_CAP).reshape(n_rows, n_strata, n_arms)
            arms = deal_strata(counts, strat, u)
        else:
            arms = draw_arms_strata(u, strat, probs[rows])
        enrolled[rows] += per_stratum
        if pool.outcomes is None:  # each patient's outcome under the treatment given, drawn here
            outcomes = pool.outcomes_given(rows, at, arms, design.arm_treatment)
            treatment_of = np.zeros_like(design.arm_treatment)  # one column: the treatment given
        else:
            outcomes, treatment_of = pool.outcomes[at], design.arm_treatment
        start = bounds[seg_ids[0]]
        for seg in seg_ids:
            s0, s1 = bounds[seg] - start, bounds[seg + 1] - start
            seg_n[rows, seg], seg_y[rows, seg] = tally_strata(
                arms[:, s0:s1], strat[:, s0:s1], outcomes[:, s0:s1], treatment_of, n_strata, n_arms
            )

        # --- analyses of the strata due for one
        followed = int(n_followed_segments[look])
        n_f = seg_n[rows, :followed].sum(axis=1)
        y_f = seg_y[rows, :followed].sum(axis=1)
        final = look == n_looks - 1
        post = None
        if probit_looks is not None:
            post = probit_looks(look, rows, y_f, n_f)
            a, b = post.beta_moments()
            p_reference = post.prob_above(plan.reference)
        else:
            a, b = _beta_params(design, y_f, n_f, borrowing, rows)
        stage_size = plan.stages[np.arange(n_strata)[None, :], np.minimum(stage[rows], plan.stages.shape[1] - 1)]
        reached = n_f.sum(axis=2) >= stage_size
        due = deciding[rows] & (~staged[None, :] | reached)
        done = np.zeros((n_rows, n_strata), dtype=bool)
        pb_known = np.full((n_rows, n_strata, n_arms), np.nan) if reuse_pb else None
        if enrich_pos >= 0:
            local = np.arange(n_rows)
            st_sub, sl_sub, dc_sub = status[rows], status_look[rows], declared[rows]
            trial_done = _decide_enrichment(
                design, plan, look, enrich_pos, local, a, b, st_sub, sl_sub, dc_sub, y_f, n_f
            )
            status[rows], status_look[rows], declared[rows] = st_sub, sl_sub, dc_sub
            done = ~((status[rows] == ACTIVE).any(axis=2)) | trial_done[:, None]
        else:
            for controlled in (True, False):
                r_loc, s_loc = np.nonzero(due & (plan.controlled[None, :] == controlled))
                if r_loc.size == 0:
                    continue
                r = rows[r_loc]
                if controlled:
                    st, sl, dc = status[r, s_loc], status_look[r, s_loc], declared[r, s_loc]
                    cc, ch = control[r, s_loc], control_changed[r, s_loc]
                    stop, pb_due = decide(
                        design,
                        look,
                        a[r_loc, s_loc],
                        b[r_loc, s_loc],
                        st,
                        sl,
                        dc,
                        cc,
                        ch,
                        refresh=reuse_pb,
                        need_pb=reuse_pb,  # P(best) of the decisions is read only to reuse it
                    )
                    if pb_known is not None:
                        going = stop == CONTINUE
                        pb_known[r_loc[going], s_loc[going]] = pb_due[going]
                    status[r, s_loc], status_look[r, s_loc], declared[r, s_loc] = st, sl, dc
                    control[r, s_loc], control_changed[r, s_loc] = cc, ch
                    finished = (stop != CONTINUE) | (
                        staged[s_loc] & (stage[r, s_loc] >= (plan.stages[s_loc] > 0).sum(axis=1) - 1)
                    )
                else:
                    finished = _decide_reference(
                        design,
                        plan,
                        look,
                        final,
                        r,
                        s_loc,
                        a[r_loc, s_loc],
                        b[r_loc, s_loc],
                        y_f[r_loc, s_loc],
                        stage,
                        status,
                        status_look,
                        declared,
                        None if post is None else p_reference[r_loc, s_loc],
                        declare_now=post is None or final or not (probit is not None and probit.declare_final),
                    )
                done[r_loc, s_loc] = finished
        declared_look[rows] = np.where(declared[rows] & (declared_look[rows] < 0), look, declared_look[rows])
        advance = due & staged[None, :] & ~done
        stage[rows] += advance
        newly = deciding[rows] & done
        s_stop_look[rows] = np.where(newly, look, s_stop_look[rows])
        deciding[rows] &= ~done

        # --- stops: no stratum left deciding, none able to take patients, or the last look
        d = deciding[rows]
        room = (enrolled[rows] < plan.caps[None, :]) | staged[None, :]
        alive = d & room
        ended = ~d.any(axis=1) | ~alive.any(axis=1) | final
        reason = np.where(
            ~d.any(axis=1), np.where(declared[rows].any(axis=(1, 2)), STOP_SUPERIORITY, STOP_ARMS_DROPPED), STOP_MAX
        )
        stop_look[rows[ended]] = look
        stop_reason[rows[ended]] = reason[ended]
        running[rows[ended]] = False

        # --- allocation for the next batch
        go = ~ended
        following = np.full((n_rows, n_strata, n_arms), np.nan)
        if go.any():
            new = allocation(
                look,
                rows[go],
                a[go],
                b[go],
                None if post is None else ProbitLook(post.mean[go], post.sd[go], post.above[go], post.thresholds),
                None if pb_known is None else pb_known[go],
            )
            new = np.where(deciding[rows[go]][:, :, None], new, 0.0)
            probs[rows[go]] = new
            alloc_history[rows[go], look] = new
            following[go] = new
        if trace is not None:
            trace.record(
                "look",
                rows,
                look=look,
                index=index,
                strata=strat,
                arms=arms,
                randomized=seg_n[rows].sum(axis=1),
                n=n_f,
                y=y_f,
                a=a,
                b=b,
                alloc=p.reshape(n_rows, n_strata, n_arms),
                alloc_next=following,
                status=status[rows],
                declared=declared[rows],
                due=due,
                deciding=deciding[rows],
                stop=np.where(ended, reason, -1),
            )

    return _final(
        design,
        plan,
        seg_n,
        seg_y,
        status,
        status_look,
        declared,
        declared_look,
        stop_look,
        stop_reason,
        s_stop_look,
        alloc_history,
        final_alloc,
        borrowing,
        ptr,
        slot_index,
        probit_looks,
    )


def _final(
    design,
    plan,
    seg_n,
    seg_y,
    status,
    status_look,
    declared,
    declared_look,
    stop_look,
    stop_reason,
    s_stop_look,
    alloc_history,
    final_alloc,
    borrowing: _Borrowing | None,
    ptr,
    slot_index,
    probit_looks=None,
):
    n3 = seg_n.sum(axis=1).astype(np.int64)
    y3 = seg_y.sum(axis=1).astype(np.int64)
    if probit_looks is not None:
        post_mean3 = probit_looks(None, np.arange(n3.shape[0]), y3, n3).mean
    elif borrowing is None:
        post_mean3 = (design.prior_a + y3) / (design.prior_a + design.prior_b + n3)
    else:
        # the reported estimates by the looks' one pass over the nodes (within 1e-14 of the reference
        # sums over hierarchical_posterior's weights, tests/test_hierarchical_fast.py)
        post_mean3 = borrowing.final_means(y3, n3)
    post_mean3 = np.where(status == INELIGIBLE, np.nan, post_mean3)
    # pooled per-arm view (all-comer estimates and statuses) for the standard tables
    n = n3.sum(axis=1)
    y = y3.sum(axis=1)
    post_a, post_b = design.prior_a + y, design.prior_b + n - y
    lower, upper = beta_interval(post_a, post_b, 0.95)
    any_declared = declared.any(axis=1)
    elig = status != INELIGIBLE
    pooled = np.full(n.shape, INFERIOR, dtype=np.int8)
    # the last that applies wins: active > control > superior > futile > equivalent > inferior. An undeclared
    # SUPERIOR is the control left alone in a stratum once its comparators were dropped (rules.decide): still in
    # the trial
    for code in (EQUIVALENT, FUTILE, SUPERIOR, CONTROL, ACTIVE):
        pooled = np.where(((status == code) & elig).any(axis=1), code, pooled)
    pooled = np.where(any_declared, SUPERIOR, pooled).astype(np.int8)
    pooled_look = np.where(elig, status_look, -1).max(axis=1).astype(np.int16)
    still_in = (pooled == ACTIVE) | (pooled == CONTROL) | (pooled == SUPERIOR)
    a, b = oriented(post_a, post_b, design.higher_is_better)
    pb = np.where(still_in, prob_best(a, b, still_in), np.nan)
    weight = plan.prevalence / max(plan.prevalence.sum(), 1e-300)
    hist = np.nansum(alloc_history * weight[None, None, :, None], axis=2)
    hist = np.where(np.isnan(alloc_history).all(axis=2), np.nan, hist).astype(np.float32)
    last = (final_alloc * weight[None, :, None]).sum(axis=1)
    rows = np.arange(n.shape[0])
    n_followed = n  # every randomized patient's outcome is known at the final analysis
    first_declared = np.where(declared, declared_look, np.iinfo(np.int16).max).min(axis=1)
    pooled_results = LookResults(
        n=n,
        responders=y,
        n_followed=n_followed,
        status=pooled,
        status_look=pooled_look,
        declared_superior=any_declared,
        declared_look=np.where(any_declared, first_declared, -1).astype(np.int16),
        post_mean=post_a / (post_a + post_b),
        post_lower=lower,
        post_upper=upper,
        prob_best=pb,
        final_alloc=last,
        alloc_history=hist,
        stop_look=stop_look,
        stop_reason=stop_reason,
        final_control=np.full(rows.size, design.control, dtype=np.int8),
    )
    strata = StrataResults(
        names=plan.names,
        n=n3,
        responders=y3,
        status=status,
        status_look=status_look,
        declared=declared,
        declared_look=declared_look,
        post_mean=post_mean3,
        stop_look=s_stop_look,
        slot_index=slot_index,
        refined=None if probit_looks is None or probit_looks.coarse is None else probit_looks.refined.copy(),
    )
    return pooled_results, strata, ptr


@dataclass
class StrataResults:
    """Per arm x stratum results of T trials (S strata, K arms), as the interim loop leaves them."""

    names: tuple[str, ...]
    n: np.ndarray  # (T, S, K) patients randomized
    responders: np.ndarray  # (T, S, K)
    status: np.ndarray  # (T, S, K) int8 status codes (not entered: the arm does not run in the stratum)
    status_look: np.ndarray  # (T, S, K) int16
    declared: np.ndarray  # (T, S, K) bool: declared effective in the stratum
    declared_look: np.ndarray  # (T, S, K) int16 look of the declaration (-1: none)
    post_mean: np.ndarray  # (T, S, K) posterior mean at the final analysis
    stop_look: np.ndarray  # (T, S) int16 look at which the stratum stopped deciding (-1: ran to the end)
    slot_index: np.ndarray  # (T, max_n) int64 pool position of the patient in each randomization slot (-1: empty)
    refined: np.ndarray | None = None  # (T,) bool: the probit model's refit kept the fine strata (two-stage only)


def _observed(enrolled) -> np.ndarray:
    """(T, n, C) screening results of the enrolled patients (enrolled with ``observed``)."""
    if enrolled.observed is None:
        raise ValueError("the patients were enrolled without their screening results (enrol(..., observed=True))")
    return enrolled.observed


# --------------------------------------------------------------------------- the family

_MAX_POOL_FACTOR = 64


# The pool's margin over the expected patients scanned. A trial that reaches the end of its pool
# gets twice as many of the same patients, so results do not depend on it, only the cost: 0.9, 1.0
# and 1.1 cost the same within the run-to-run spread of the shipped stratified designs (a few
# percent); with trials rerun instead of grown, 1.1 drew the fewest patients of 1.0 ... 1.3.
_POOL_MARGIN = 1.1


def pool_size(plan: StrataPlan, max_n: int) -> int:
    """Randomizable patients a trial is expected to scan, with a margin: until the strata, each
    filling at its prevalence up to its cap, hold the trial's maximum sample size, or until the
    slowest capped stratum fills when their caps add up to less."""
    share = max(1.0 - plan.unclassified, 1e-3)
    prevalence = np.asarray(plan.prevalence, dtype=float)
    caps = np.minimum(np.asarray(plan.caps, dtype=float), float(max_n))
    fill = np.where(prevalence > 0, caps / np.maximum(prevalence, 1e-12), np.inf)
    expected = max_n / share
    if np.isfinite(fill).all():
        # randomized after scanning x patients: sum over strata of min(cap, prevalence * x), a
        # piecewise-linear increasing function; find where it reaches max_n (or the last fill)
        expected = float(fill.max())
        for x in np.sort(fill):
            if np.minimum(caps, prevalence * x).sum() >= max_n:
                growing = fill >= x  # the strata still filling just before x
                expected = (max_n - caps[~growing].sum()) / prevalence[growing].sum()
                break
    return int(math.ceil(_POOL_MARGIN * expected)) + 128


@dataclass(frozen=True, eq=False)
class StratifiedDesign:
    """A stratified design compiled for a scenario: its rules, its strata and its patients."""

    design: Design
    scenario: Scenario
    patients: VirtualPatients
    rules: CompiledDesign
    plan: StrataPlan
    hierarchical: tuple | None  # (prior, grid) of hierarchical borrowing, None for independent strata
    assessment_months: float
    probit: ProbitSetup | None = None  # the hierarchical probit model (BATTLE), None for beta posteriors

    @property
    def needs_biomarker_result(self) -> bool:
        """Patients wait for a biomarker result before randomization: the strata classify them by a
        characteristic an assay measures (always, in practice; strata by clinical characteristics alone
        need none)."""
        return self.plan.biomarker_result

    @property
    def arm_names(self) -> tuple[str, ...]:
        return self.rules.arm_names


def stratum_truth(rules: CompiledDesign, plan: StrataPlan, delta: float) -> Truth:
    """Each arm against its stratum's reference (the control's rate there, or the sub-study's
    reference rate), with the exact rates of the patients each stratum takes (assay error included)."""
    sign = 1.0 if rules.higher_is_better else -1.0
    c = rules.control
    n_strata, n_arms = plan.arm_in.shape
    value = np.where(plan.arm_in.T, plan.truth.T, np.nan)  # (K, S)
    reference = np.empty(n_strata)
    for s in range(n_strata):
        reference[s] = plan.reference[s] if not plan.controlled[s] else (plan.truth[s, c] if c >= 0 else math.nan)
    judged = plan.arm_in.T.copy()
    if c >= 0:
        judged[c] &= ~plan.controlled
    improvement = (value - reference[None, :]) * sign
    with np.errstate(invalid="ignore"):
        better = judged & (improvement >= delta - 1e-9 if delta > 0 else improvement > 1e-9)
        null = judged & (improvement <= 1e-9)
    names = plan.names
    return Truth(
        arms=rules.arm_names,
        subgroups=names,
        strata=names,
        membership=np.eye(n_strata, dtype=bool),
        share=plan.prevalence.copy(),
        value=value,
        reference=np.broadcast_to(reference, value.shape).copy(),
        effect=value - reference[None, :],
        works=better,
        null=null,
        judged=judged,
        works_in_stratum=better.copy(),
        null_in_stratum=null.copy(),
        control=c,
        value_name="rate",
        effect_scale="rate difference",
        effect_better=sign,
        overall_value=rules.true_rates.copy(),
        overall_effect=rules.true_rates - rules.true_rates[c] if c >= 0 else np.full(n_arms, np.nan),
    )


def _probit_setup(design: Design, plan: StrataPlan, rules: CompiledDesign) -> ProbitSetup:
    """The probit model's setup: every threshold the design reads, and the refit look (two stages;
    that a look reaches it is checked with the design's other problems)."""
    st = strata_of(design)
    thresholds = [float(c) for c in plan.reference]
    if st.suspension is not None:
        thresholds.append(float(st.suspension.reference))
    return ProbitSetup.from_config(st.probit, list(plan.names), thresholds, rules.followed_n)


def strata_of(design: Design) -> Strata:
    """The design's ``strata`` section (a design of this family, or a platform with strata, has one)."""
    st = design.strata
    assert st is not None
    return st


def strata_section(design: Design, plan: StrataPlan) -> Section:
    """The strata of a stratified design (or of a platform with strata) in words and tables."""
    st = strata_of(design)
    arms = design.arm_names
    paragraphs, tables = [], []
    if st.by is not None:
        paragraphs.append(
            f"One stratum per combination of the reported levels of {', '.join(st.by)}; every arm "
            "randomizes in every stratum. Shares are of the randomizable patients."
        )
        tables.append(
            Table(
                "Strata",
                ("stratum", "share", "arms"),
                tuple(
                    (name, f"{plan.prevalence[s]:.3f}", ", ".join(a for k, a in enumerate(arms) if plan.arm_in[s, k]))
                    for s, name in enumerate(plan.names)
                ),
            )
        )
    else:
        paragraphs.append(
            "Sub-studies in priority order; a patient goes to the first open sub-study whose condition "
            "matches the reported profile"
            + (" (or to one of the matching ones at random)." if st.overlap == "random" else ".")
        )
        rows = []
        for s, g in enumerate(st.groups or []):
            when = (
                "any patient no other sub-study takes"
                if g.when == "other"
                else "; ".join(f"{m} = {'/'.join(v) if isinstance(v, list) else v}" for m, v in g.when.items())
            )
            rows.append(
                (
                    g.name,
                    when,
                    ", ".join(g.arms),
                    f"{plan.prevalence[s]:.3f}",
                    setting(g.cap) if g.cap is not None else "none",
                    ", ".join(str(x) for x in g.looks) if g.looks else "every look",
                    setting(g.reference_rate) if g.reference_rate is not None else "the control",
                    ", ".join(str(x) for x in g.responder_boundaries) if g.responder_boundaries else "",
                )
            )
        tables.append(
            Table(
                "Sub-studies",
                (
                    "sub-study",
                    "takes",
                    "arms",
                    "share",
                    "cap (patients)",
                    "stages (patients)",
                    "compared with",
                    "responder boundaries",
                ),
                tuple(rows),
            )
        )
    if plan.unclassified > 0:
        paragraphs.append(
            f"{plan.unclassified:.3f} of the randomizable patients fall in no stratum and are not randomized."
        )
    if design.platform is None:
        if st.analysis == "hierarchical_probit":
            from ..config.strata import ProbitModel

            pr = st.probit if st.probit is not None else ProbitModel()
            paragraphs.append(
                f"Analysis: hierarchical probit model (BATTLE; Zhou et al. 2008): rate Phi(mu) per arm and stratum, "
                f"mu ~ Normal(phi, {setting(pr.sigma)}^2) across an arm's strata, phi ~ Normal({setting(pr.phi_mean)}, "
                f"{setting(pr.tau)}^2); exact posterior by quadrature. An arm is declared effective in a stratum when "
                f"P(rate > the stratum's reference rate) exceeds the superiority threshold"
                + (" at the last look." if pr.declare == "final" else " at any look.")
            )
            if pr.refit is not None:
                rf = pr.refit
                groups = "; ".join(f"{k}: {', '.join(v)}" for k, v in rf.coarse.items())
                paragraphs.append(
                    f"Two stages: until {rf.after_followed} patients are followed the model pools the strata into "
                    f"{groups}; then each trial keeps every stratum as its own group when the Bayes factor of that "
                    f"model over the pooled one exceeds {setting(rf.min_bayes_factor)}."
                )
        elif st.analysis == "hierarchical":
            b = st.borrowing
            prior = (
                f" (mu ~ Beta({setting(b.mu_a)}, {setting(b.mu_b)}), log kappa ~ Normal("
                f"{setting(b.log_kappa_mean)}, {setting(b.log_kappa_sd)}))"
                if b is not None
                else " (default hyperprior)"
            )
            paragraphs.append(f"Analysis: hierarchical beta-binomial borrowing across strata{prior}.")
        else:
            paragraphs.append("Analysis: each stratum on its own (independent beta posteriors).")
    if st.suspension is not None:
        paragraphs.append(
            f"Suspension: an arm takes no patients of a stratum while P(rate > "
            f"{setting(st.suspension.reference)}) < {setting(st.suspension.below)} there."
        )
    if st.enrichment is not None:
        e = st.enrichment
        paragraphs.append(
            f"Enrichment: an arm futile in the negative stratum (P(better than control by "
            f"{setting(e.delta)}) < {setting(e.futility)}) but promising in {e.positive} (P(better than "
            f"control) > {setting(e.promising)}) is restricted to the positive stratum; futile in both, "
            "it is dropped."
        )
    return Section("Strata", tuple(paragraphs), tuple(tables))


def _planned(compiled: StratifiedDesign, factor: float) -> tuple[int, float]:
    """(patients, months) the design randomizes at most, and when it is expected to have randomized
    them, with every sample size scaled by ``factor``: each stratum fills at its share of the
    patients passing screening until its cap, and the trial until its maximum sample size."""
    from ..config.population import expected_randomizable

    population = compiled.patients.population.config
    max_n = factor * compiled.rules.max_n
    caps = np.minimum(compiled.plan.caps.astype(float) * factor, max_n)
    prevalence = compiled.plan.prevalence
    reachable = prevalence > 0
    total = min(max_n, float(caps[reachable].sum()))

    def count(t: float) -> float:
        passing = expected_randomizable(population, t, compiled.needs_biomarker_result)
        return min(max_n, float(np.minimum(caps[reachable], passing * prevalence[reachable]).sum()))

    hi = 1.0
    while count(hi) < total * (1 - 1e-9):
        hi *= 2.0
        if hi > 1e5:
            return int(round(total)), float("inf")
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if count(mid) < total * (1 - 1e-9):
            lo = mid
        else:
            hi = mid
    return int(round(total)), hi


class StratifiedFamily:
    """Designs with looks whose patients are classified into strata or sub-studies by biomarker
    (see the module docstring)."""

    name = "stratified"
    title = "stratified design with looks"

    def matches(self, design: Design) -> bool:
        return design.platform is None and design.strata is not None

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> StratifiedDesign:
        from ..config import ConfigError

        problems = endpoint_problems(design, scenario)
        if problems:
            raise ConfigError(problems)
        plan, problems = checked_strata(design, scenario, patients)
        if plan is not None and not problems:
            problems = capacity_problems(
                design,
                scenario,
                plan.biomarker_result,
                taken=max(1.0 - plan.unclassified, 0.0),
                pool_factor=1.3,
                margin=128,
            )
        if problems or plan is None:
            raise ConfigError(problems)
        rules = CompiledDesign.from_models(
            design, patients.truth(design.endpoint.name, [a.treatment for a in design.arms])
        )
        hierarchical = None
        st = strata_of(design)
        if st.analysis == "hierarchical":
            from ..posterior.hierarchical import HierarchicalPrior
            from ..posterior.hierarchical_fast import engine_grid

            bo = st.borrowing
            prior = (
                HierarchicalPrior()
                if bo is None
                else HierarchicalPrior(
                    mu_a=bo.mu_a, mu_b=bo.mu_b, log_kappa_mean=bo.log_kappa_mean, log_kappa_sd=bo.log_kappa_sd
                )
            )
            hierarchical = (prior, engine_grid(prior))
        probit = None
        if st.analysis == "hierarchical_probit":
            probit = _probit_setup(design, plan, rules)
        return StratifiedDesign(
            design,
            scenario,
            patients,
            rules,
            plan,
            hierarchical,
            patients.outcomes.assessment_months(design.endpoint.name),
            probit,
        )

    def recompile(self, compiled: StratifiedDesign, design: Design) -> StratifiedDesign:
        """``compiled`` with ``design``, which differs from its design only in decision thresholds."""
        return dataclasses.replace(
            compiled, design=design, rules=CompiledDesign.from_models(design, compiled.rules.true_rates)
        )

    def simulate(self, compiled: StratifiedDesign, streams: TrialStreams, trace=None) -> TrialResults:
        """Each trial draws from a pool of randomizable patients sized for its strata, and a trial
        that reaches the end of its pool gets twice as many (the same patients and random numbers,
        extended), so results do not depend on the pool size. A traced batch keeps every screened
        patient, so its pool cannot grow: when a trial exhausts it, the batch is rerun whole on a
        pool twice as large."""
        size = pool_size(compiled.plan, compiled.rules.max_n)
        limit = _MAX_POOL_FACTOR * compiled.rules.max_n
        while True:
            part = self._simulate_pool(compiled, streams, size, limit, trace)
            if trace is None or size >= limit or not (part[2] >= size).any():
                break
            size *= 2
        pooled, strata, scanned, month, n_screened, duration = part
        return self._results(compiled, streams, pooled, strata, month, n_screened, duration, scanned)

    @staticmethod
    def _simulate_pool(compiled: StratifiedDesign, streams: TrialStreams, size: int, limit: int, trace) -> tuple:
        """The trials of ``streams`` on pools of ``size`` randomizable patients at the start, grown
        on demand up to ``limit`` (without a trace): pooled and per-stratum results, patients
        scanned, look months, patients screened and durations (months)."""
        rules, plan = compiled.rules, compiled.plan
        n_trials = streams.n_trials
        endpoint, treatments = compiled.design.endpoint.name, list(rules.treatments)
        if trace is None:  # only the enrolled patients' screening results are read
            more = Enrolment(
                compiled.patients,
                streams,
                endpoint,
                treatments,
                times=True,
                biomarker_result=compiled.needs_biomarker_result,
                characteristics=list(plan.markers),
                outcomes_later=compiled.patients.outcomes.drawn_alone(endpoint, treatments),
            )
            enrolled = more.take(np.arange(n_trials), size)
        else:
            more = None
            options = enrol_options(trace, list(plan.markers), compiled.patients.population.names)
            enrolled = compiled.patients.enrol(
                streams,
                size,
                endpoint,
                treatments,
                times=True,
                biomarker_result=compiled.needs_biomarker_result,
                observed=True,
                **options,
            )
        pool = Pool(plan, streams, enrolled, more, limit)
        if trace is not None:
            trace.events.clear()
        pooled, strata, scanned = simulate_strata(
            rules, plan, pool, streams, compiled.hierarchical, trace, compiled.probit
        )
        if trace is not None:
            trace.enrolled = enrolled
        last = pool.start + np.maximum(scanned - 1, 0)
        n_screened = np.where(scanned > 0, pool.screened[last] + 1, 0)
        duration = pool.ready[last] + compiled.assessment_months
        at = pool.start[:, None] + np.maximum(strata.slot_index, 0)
        slot_month = np.where(strata.slot_index >= 0, pool.ready[at], np.nan)
        month = look_months(rules, slot_month, compiled.assessment_months)
        return pooled, strata, scanned, month, n_screened, duration

    @staticmethod
    def _results(
        compiled, streams, pooled: LookResults, strata: StrataResults, month, n_screened, duration, scanned
    ) -> TrialResults:
        rules, plan = compiled.rules, compiled.plan
        rows = np.arange(streams.n_trials)[:, None, None]
        declared = np.swapaxes(strata.declared, 1, 2)  # (T, K, S)
        look = np.maximum(np.swapaxes(strata.declared_look, 1, 2), 0)
        claim_month = np.where(declared, month[rows, look], np.nan)
        inconclusive = (pooled.stop_reason == STOP_MAX) & ~declared.any(axis=(1, 2))
        names = plan.names
        n_unrouted = scanned - pooled.n.sum(axis=1)
        extras = {
            "prob_best": pooled.prob_best,
            "post_lower": pooled.post_lower,
            "post_upper": pooled.post_upper,
            "pooled_rate": pooled.post_mean,
            "final_alloc": pooled.final_alloc,
            "alloc_history": pooled.alloc_history,
            "stop_look": pooled.stop_look,
            "stratum_status": np.swapaxes(strata.status, 1, 2),
            "stratum_stop_look": strata.stop_look,
            "look_month": month,
        }
        extra_dims = {
            "prob_best": ("trial", "arm"),
            "post_lower": ("trial", "arm"),
            "post_upper": ("trial", "arm"),
            "pooled_rate": ("trial", "arm"),
            "final_alloc": ("trial", "arm"),
            "alloc_history": ("trial", "look", "arm"),
            "stop_look": ("trial",),
            "stratum_status": ("trial", "arm", "stratum"),
            "stratum_stop_look": ("trial", "stratum"),
            "look_month": ("trial", "look"),
        }
        if strata.refined is not None:
            extras["probit_refined"] = strata.refined
            extra_dims["probit_refined"] = ("trial",)
        return TrialResults(
            trial=np.asarray(streams.trials, dtype=np.int64),
            arms=rules.arm_names,
            strata=names,
            subgroups=names,
            membership=np.eye(len(names), dtype=bool),
            stop_names=STOP_NAMES,
            n=np.swapaxes(strata.n, 1, 2),
            events=np.swapaxes(strata.responders, 1, 2),
            claimed=declared,
            claim_month=claim_month,
            status=pooled.status.astype(np.int8),
            stop_reason=pooled.stop_reason.astype(np.int8),
            n_screened=np.asarray(n_screened, dtype=np.int64),
            duration_months=np.asarray(duration, dtype=float),
            estimates={"rate": np.swapaxes(strata.post_mean, 1, 2)},
            estimate_targets={"rate": "value"},
            selections={name: f(pooled) for name, f in SELECTION_STRATEGIES.items()},
            selection_estimate=pooled.post_mean,
            trial_values={
                "p_stopped_early": pooled.stop_look < rules.n_looks - 1,
                "p_inconclusive_at_max": inconclusive,
                "n_looks": pooled.stop_look.astype(float) + 1.0,
                "n_not_assigned": n_unrouted.astype(float),
            },
            extras=extras,
            extra_dims=extra_dims,
        )

    def truth(self, compiled: StratifiedDesign) -> Truth:
        return stratum_truth(compiled.rules, compiled.plan, compiled.design.clinically_relevant_difference)

    def size(self, compiled: StratifiedDesign) -> Size:
        n, months = _planned(compiled, 1.0)
        return Size(n, months)

    def resize(self, compiled: StratifiedDesign, max_n: int | None = None, months: float | None = None) -> Design:
        if max_n is not None:
            factor = max_n / _planned(compiled, 1.0)[0]
        else:
            lo, hi = 1e-3, 1.0
            while _planned(compiled, hi)[1] < float(months or 0.0) and hi < 1e3:
                hi *= 2.0
            for _ in range(60):
                mid = (lo + hi) / 2.0
                if _planned(compiled, mid)[1] < float(months or 0.0):
                    lo = mid
                else:
                    hi = mid
            factor = hi
        return scale_design(compiled.design, factor)

    def profiles(self, compiled: StratifiedDesign, characteristics: list[str]):
        from ..strata import profile_strata

        return profile_strata(compiled.patients.population, compiled.plan, characteristics)

    def describe(self, compiled: StratifiedDesign) -> Description:
        d = compiled.design
        return Description(
            kind=self.title,
            summary=(
                f"{len(d.arms)} arms in {compiled.plan.n_strata} strata, {compiled.rules.n_looks} looks up to "
                f"{compiled.rules.max_n} patients"
            ),
            sections=(
                Section(
                    "Randomization",
                    tuple(
                        randomization_words(
                            d,
                            "the posterior mean rate of each open arm in the stratum (hierarchical probit model)"
                            if compiled.probit is not None
                            else "P(arm best) among the active arms of the stratum",
                        )
                    ),
                ),
                Section("Looks and decision rules", tuple(decision_words(d)), (looks_table(d),)),
                strata_section(d, compiled.plan),
            ),
        )

    def story(self, compiled: StratifiedDesign, trace, result: TrialResults):
        return look_story(compiled, trace, result)

    @property
    def parameters(self) -> dict[str, Parameter]:
        return {"superiority": SUPERIORITY}


STRATIFIED = StratifiedFamily()
