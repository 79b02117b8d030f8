"""Designs with looks: a fixed sequence of interim analyses at numbers of patients.

A batch of simulated trials moves through the looks together; Python loops run
over looks only. At each look the trials still running randomize their next batch
of patients, outcomes become available for the patients followed up by then,
posteriors are updated, the decision rules are applied and allocation probabilities
are recomputed. Stopped trials and dropped arms are masks. After stopping, a final
analysis uses every randomized patient; it reports estimates but does not change
decisions.

Patients come from the scenario's virtual population with their potential
outcomes under every treatment (one row per trial, patients in order of
randomization). A batch (the patients randomized between two looks) is randomized
patient by patient with each patient's own randomization number, and each
patient's outcome is their potential outcome under the treatment of their arm.
Counts are kept per arm and per *segment*: the stretch of patients between two
consecutive numbers in the union of ``randomized_n`` and ``followed_n``.

A claim is a declaration of superiority: beating the control of the day (the arm
becomes the new control) or, without a control, being the best arm. It is judged
against the arm's effect in the whole population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from ..allocation import adaptive_basis, allocation_probabilities, block_counts, deal, draw_arms
from ..compiled import CompiledDesign
from ..config import Design, Problem, Scenario
from ..config.base import MAX_SCREENED
from ..config.population import expected_funnel
from ..delays import delay_schedule, tally_known
from ..outcomes import VirtualPatients, outcome_stream
from ..posterior import beta_interval, oriented, prob_best
from ..results import (
    ACTIVE,
    CONTROL,
    FUTILE,
    INFERIOR,
    STOP_MAX,
    STOP_NAMES,
    SUPERIOR,
    TrialResults,
    Truth,
)
from ..rules import CONTINUE, decide, select_with_margin
from ..streams import OUTCOMES, RANDOMIZATION, TrialStreams, quantity_id, uniform_at
from .base import (
    Description,
    Parameter,
    Section,
    Size,
    Table,
    accrual_months,
    enrol_options,
    resize_sample_sizes,
    setting,
)

# Rate differences within this of a threshold count as reaching it (0.25 - 0.22 == 0.03 in floating point).
_TOL = 1e-9


def _segments(design: CompiledDesign):
    """Segment boundaries, the batch (look) each segment belongs to, and per look how many
    segments are randomized / followed."""
    bounds = np.unique(np.concatenate([[0], design.randomized_n, design.followed_n]))
    ends = bounds[1:]
    batch_of = np.searchsorted(design.randomized_n, ends)  # first look whose randomized_n >= end
    n_followed_segments = np.searchsorted(ends, design.followed_n, side="right")
    return bounds, batch_of, n_followed_segments


@njit(cache=True, inline="always")
def _count_row(t, arms, y, start, first_seg, end_seg, bounds, seg_n, seg_y, randomized_n, n_seg, y_seg):
    """Add one row's batch to the counts of trial ``t`` (see :func:`_take_batch`): ``arms`` (B,) the
    batch's arms (-1: not randomized), ``y`` (B,) 0 or 1, each patient's outcome under its arm
    (read only where randomized); ``n_seg``, ``y_seg`` (K,) zeroed scratch, left zeroed."""
    n_arms = n_seg.size
    # a segment's counts are kept per arm apart and added once (integer sums: the same in any
    # order), and an event is added as 0 or 1, without a branch on the outcome
    for seg in range(first_seg, end_seg):
        for pos in range(bounds[seg], bounds[seg + 1]):
            k = arms[pos - start]
            if k >= 0:
                n_seg[k] += 1
                y_seg[k] += y[pos - start]
        for k in range(n_arms):
            seg_n[t, seg, k] += n_seg[k]
            seg_y[t, seg, k] += y_seg[k]
            randomized_n[t, k] += n_seg[k]
            n_seg[k] = 0
            y_seg[k] = 0


@njit(cache=True)
def _take_batch(rows, arms, outcomes, arm_treatment, bounds, first_seg, end_seg, seg_n, seg_y, randomized_n):
    """Count one look's batch for the rows ``rows`` (R,), in place: ``arms`` (R, B) int8 arms of the
    batch (-1: not randomized), which starts at patient ``bounds[first_seg]`` and fills segments
    ``first_seg`` to ``end_seg - 1``; ``outcomes`` (T, max_n, treatments) bool potential outcomes,
    ``arm_treatment`` (K,) column of each arm's treatment. Patients and events per arm and segment
    are added to ``seg_n``, ``seg_y`` (T, S, K) int32 and patients per arm to ``randomized_n``
    (T, K) int64: the counts of :func:`~platform_sim.allocation.tally` per segment, without the
    numpy copies of the rows' outcomes."""
    start = bounds[first_seg]
    width = arms.shape[1]
    n_arms = arm_treatment.size
    n_seg = np.zeros(n_arms, dtype=np.int64)
    y_seg = np.zeros(n_arms, dtype=np.int64)
    y = np.empty(width, dtype=np.int64)
    for i in range(rows.size):
        t = rows[i]
        for j in range(width):  # each patient's outcome under its arm (any arm's if not randomized)
            y[j] = np.int64(outcomes[t, start + j, arm_treatment[max(arms[i, j], 0)]])
        _count_row(t, arms[i], y, start, first_seg, end_seg, bounds, seg_n, seg_y, randomized_n, n_seg, y_seg)


@dataclass(frozen=True)
class DrawnOnDemand:
    """Binary potential outcomes drawn only for the treatment a patient is randomized to, when a
    look's batch is counted (:func:`_take_batch_on_demand`), in place of the (T, max_n, treatments)
    array of every treatment's: the value is the one
    :meth:`~platform_sim.outcomes.OutcomesModel.potential` draws (the uniform of
    ``outcome:<endpoint>:<treatment>`` at the patient's screened position, below the treatment's
    probability), so the trials are the same; what is saved is drawing the outcomes of the treatments
    a patient does not get, and of the patients a trial never reaches. For endpoints whose outcomes
    :meth:`~platform_sim.outcomes.OutcomesModel.constant_binary` says are drawn so."""

    probability: np.ndarray  # (treatments,) float64
    qid: np.ndarray  # (treatments,) uint64 the quantity id of each treatment's outcome stream
    key: np.ndarray  # (2,) uint64 the run's Philox key
    trials: np.ndarray  # (T,) uint64 the trials' indices in the run
    positions: np.ndarray  # (T, >= max_n) uint64 each randomizable patient's screened position, or
    # (T, 0) where every trial's are 0, 1, 2, ... (every screened patient randomizable)
    width: int  # the patients each trial has (the second axis of the screened positions)

    @classmethod
    def build(cls, streams: TrialStreams, ep: str, treatments, probability: np.ndarray, screened_index: np.ndarray):
        return cls(
            np.ascontiguousarray(probability, dtype=np.float64),
            np.array([quantity_id(outcome_stream(ep, t)) for t in treatments], dtype=np.uint64),
            np.array(streams.key, dtype=np.uint64),
            streams.trials.astype(np.uint64),
            np.empty((len(screened_index), 0), dtype=np.uint64)
            if _counts_up(screened_index)
            else np.ascontiguousarray(screened_index, dtype=np.uint64),
            screened_index.shape[1],
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.trials.size, self.width, self.probability.size)

    def take_batch(self, rows, arms, arm_treatment, bounds, first_seg, end_seg, seg_n, seg_y, randomized_n) -> None:
        """:func:`_take_batch_on_demand` of one look's batch on these outcomes: the arguments of
        :func:`_take_batch` but the array of every treatment's outcomes, the counts added in place."""
        _take_batch_on_demand(
            rows,
            arms,
            self.probability,
            self.qid,
            self.key,
            self.trials,
            self.positions,
            arm_treatment,
            bounds,
            first_seg,
            end_seg,
            seg_n,
            seg_y,
            randomized_n,
        )


@njit(cache=True)
def _counts_up(index):
    """Whether every row of ``index`` (T, n) is 0, 1, ..., n - 1."""
    for t in range(index.shape[0]):
        for j in range(index.shape[1]):
            if index[t, j] != j:
                return False
    return True


@njit(cache=True)
def _take_batch_on_demand(
    rows,
    arms,
    probability,
    qid,
    key,
    trials,
    positions,
    arm_treatment,
    bounds,
    first_seg,
    end_seg,
    seg_n,
    seg_y,
    randomized_n,
):
    """:func:`_take_batch` with each randomized patient's outcome drawn here (:class:`DrawnOnDemand`):
    the uniform of its treatment's outcome stream at its screened position, below the treatment's
    probability. The same counts as :func:`_take_batch` on the array of every treatment's outcomes.
    ``positions`` (T, 0) says that every trial's patient j was screened j-th."""
    start = bounds[first_seg]
    width = arms.shape[1]
    n_arms = arm_treatment.size
    fam = np.uint64(OUTCOMES)
    k0, k1 = key[0], key[1]
    n_seg = np.zeros(n_arms, dtype=np.int64)
    y_seg = np.zeros(n_arms, dtype=np.int64)
    # a row's uniforms in one branch-free pass over its batch, which the compiler vectorizes (the
    # stream of each patient's treatment at its position; any stream for a patient not randomized)
    q = np.empty(width, dtype=np.uint64)
    at = np.empty(width, dtype=np.uint64)
    p = np.empty(width)
    y = np.empty(width, dtype=np.int64)
    counting = positions.shape[1] == 0  # every trial's screened positions are 0, 1, 2, ...
    if counting:
        for j in range(width):
            at[j] = start + j
    for i in range(rows.size):
        t = rows[i]
        trial = trials[t]
        for j in range(width):
            c = arm_treatment[max(arms[i, j], 0)]
            q[j] = qid[c]
            p[j] = probability[c]
        if not counting:
            for j in range(width):
                at[j] = positions[t, start + j]
        for j in range(width):
            y[j] = np.int64(uniform_at(k0, k1, fam, q[j], trial, at[j]) < p[j])
        _count_row(t, arms[i], y, start, first_seg, end_seg, bounds, seg_n, seg_y, randomized_n, n_seg, y_seg)


@njit(cache=True)
def _follow_up(rows, seg_n, seg_y, first, end, followed_n, followed_y):
    """Add segments ``first`` to ``end - 1`` of ``seg_n``, ``seg_y`` (T, S, K) to the running totals
    ``followed_n``, ``followed_y`` (T, K) of the rows ``rows`` (R,), in place (integer sums: the same
    whatever the order)."""
    n_arms = seg_n.shape[2]
    for i in range(rows.size):
        t = rows[i]
        for seg in range(first, end):
            for k in range(n_arms):
                followed_n[t, k] += seg_n[t, seg, k]
                followed_y[t, k] += seg_y[t, seg, k]


@njit(cache=True)
def _after_decisions(
    rows,
    look,
    last,
    st,
    sl,
    dc,
    ctrl,
    changed,
    stop,
    caps,
    randomized_n,
    status,
    status_look,
    declared,
    declared_look,
    control,
    control_changed,
    stop_look,
    stop_reason,
    running,
):
    """Write one look's decisions for the rows ``rows`` (R,) back into the trials' state, in place,
    and settle the stops. ``st``, ``sl``, ``dc`` (R, K) status, look of the status and declared
    after the decisions; ``ctrl``, ``changed`` (R,) control of the day and whether it changed;
    ``stop`` (R,) stop codes of the rules (``CONTINUE``: go on). A trial that goes on stops at the
    last look (``last``) or when no arm in the trial is below its cap ``caps`` (K,) in
    ``randomized_n`` (T, K), with ``STOP_MAX``. An arm declared at this look (``dc`` and not
    ``declared``) gets ``look`` in ``declared_look``. Returns ``stop`` as settled (R,), ``in_trial``
    and ``open_`` (R, K) bool (in the trial; in it and below its cap) and ``ended`` (R,) bool."""
    n_rows, n_arms = st.shape
    out = np.empty_like(stop)
    in_trial = np.empty((n_rows, n_arms), dtype=np.bool_)
    open_ = np.empty((n_rows, n_arms), dtype=np.bool_)
    ended = np.empty(n_rows, dtype=np.bool_)
    for i in range(n_rows):
        t = rows[i]
        any_open = False
        for k in range(n_arms):
            if dc[i, k] and not declared[t, k]:
                declared_look[t, k] = look
            status[t, k] = st[i, k]
            status_look[t, k] = sl[i, k]
            declared[t, k] = dc[i, k]
            inside = st[i, k] == ACTIVE or st[i, k] == CONTROL
            in_trial[i, k] = inside
            open_[i, k] = inside and randomized_n[t, k] < caps[k]
            any_open = any_open or open_[i, k]
        control[t] = ctrl[i]
        control_changed[t] = changed[i]
        code = stop[i]
        if code == CONTINUE and (last or not any_open):
            code = STOP_MAX
        out[i] = code
        ended[i] = code != CONTINUE
        if ended[i]:
            stop_look[t] = look
            stop_reason[t] = code
            running[t] = False
    return out, in_trial, open_, ended


def run_looks(
    design: CompiledDesign, outcomes: np.ndarray | DrawnOnDemand, streams: TrialStreams, trace=None, known=None
) -> LookResults:
    """Simulate one trial per row of ``outcomes`` (T, max_n, treatments): the potential outcomes
    (bool) of the patients each trial can randomize, by column of ``design.treatments``, or
    :class:`DrawnOnDemand` (without ``known``): the same outcomes, drawn as patients are randomized.
    ``streams`` (the trials' random numbers) drive the randomization only: the patient at
    position i of trial t is randomized with the uniform ``randomization:arm`` at (t, i), so a
    trial's course does not depend on the other trials of the batch. A
    :class:`~platform_sim.trace.Trace` records one trial's analyses. ``known`` (T, max_n): with
    random outcome delays, the look at which each patient's outcome is known
    (:func:`~platform_sim.delays.known_look`), in place of ``followed_n``."""
    n_trials = outcomes.shape[0]
    if outcomes.shape[1] < design.max_n or outcomes.shape[2] != len(design.treatments):
        raise ValueError(
            f"outcomes must be (trials, >= {design.max_n}, {len(design.treatments)}), got {outcomes.shape}"
        )
    # every treatment's outcomes as an array, or those drawn as patients are randomized
    every, drawn = (None, outcomes) if isinstance(outcomes, DrawnOnDemand) else (outcomes, None)
    if drawn is not None and known is not None:
        raise ValueError("outcomes drawn on demand are counted at randomization: not with random outcome delays")
    n_arms, n_looks = design.n_arms, design.n_looks
    bounds, batch_of, n_followed_segments = _segments(design)
    n_segments = len(bounds) - 1
    seg_sizes = np.diff(bounds)

    seg_n = np.zeros((n_trials, n_segments, n_arms), dtype=np.int32)
    seg_y = np.zeros((n_trials, n_segments, n_arms), dtype=np.int32)
    status = np.full((n_trials, n_arms), ACTIVE, dtype=np.int8)
    control = np.full(n_trials, design.control, dtype=np.int64)
    if design.control >= 0:
        status[:, design.control] = CONTROL
    status_look = np.full((n_trials, n_arms), -1, dtype=np.int16)
    declared = np.zeros((n_trials, n_arms), dtype=bool)
    declared_look = np.full((n_trials, n_arms), -1, dtype=np.int16)
    control_changed = np.zeros(n_trials, dtype=bool)
    stop_look = np.full(n_trials, n_looks - 1, dtype=np.int16)
    stop_reason = np.full(n_trials, STOP_MAX, dtype=np.int8)
    alloc_history = np.full((n_trials, n_looks, n_arms), np.nan, dtype=np.float32)
    final_alloc = np.zeros((n_trials, n_arms))
    running = np.ones(n_trials, dtype=bool)

    in_trial0 = status != INFERIOR
    probs = allocation_probabilities(design, -1, None, in_trial0, in_trial0, control)
    # running totals over segments (integers, so the same as summing the segments at every look,
    # without that sum's cost growing with the number of looks)
    randomized_n = np.zeros((n_trials, n_arms), dtype=np.int64)
    followed_n = np.zeros((n_trials, n_arms), dtype=np.int64)
    followed_y = np.zeros((n_trials, n_arms), dtype=np.int64)
    n_summed = 0  # segments already in followed_n, followed_y
    arm_treatment = np.asarray(design.arm_treatment, dtype=np.int64)
    arms_all = None if known is None else np.full((n_trials, design.max_n), -1, dtype=np.int8)
    for look in range(n_looks):
        rows = np.flatnonzero(running)
        if rows.size == 0:
            break
        # --- randomize the batch of this look and split it into its segments
        seg_ids = np.flatnonzero(batch_of == look)
        batch_size = int(seg_sizes[seg_ids].sum())
        randomized = randomized_n[rows]
        headroom = np.maximum(design.caps[None, :] - randomized, 0)
        p = probs[rows]
        final_alloc[rows] = np.where(p > 0, p, final_alloc[rows])
        start = bounds[seg_ids[0]]
        u = streams.uniform(RANDOMIZATION, "randomization:arm", int(start), batch_size, rows)
        if design.block:
            u0 = streams.uniform(RANDOMIZATION, "randomization:block", look, 1, rows)[:, 0]
            arms = deal(block_counts(u0, batch_size, p, headroom), u)
        else:
            arms = draw_arms(u, np.full(rows.size, batch_size, dtype=np.int64), p, headroom)
        if drawn is not None:
            drawn.take_batch(rows, arms, arm_treatment, bounds, seg_ids[0], seg_ids[-1] + 1, seg_n, seg_y, randomized_n)
        else:
            _take_batch(
                rows, arms, every, arm_treatment, bounds, seg_ids[0], seg_ids[-1] + 1, seg_n, seg_y, randomized_n
            )
        if arms_all is not None:
            arms_all[rows, start : start + batch_size] = arms

        # --- analysis with the outcomes followed up by now (the totals of stopped trials are not
        # read again: only the running ones are brought up to date)
        if arms_all is None:
            if n_followed_segments[look] > n_summed:
                _follow_up(rows, seg_n, seg_y, n_summed, n_followed_segments[look], followed_n, followed_y)
            n_summed = int(n_followed_segments[look])
        else:
            assert every is not None  # random delays come with every treatment's outcomes (checked above)
            at = np.full(rows.size, look)
            # only the patients randomized by this look can be known at it
            n_new, y_new = tally_known(
                arms_all, every, design.arm_treatment, known, at, at, n_arms, rows, upto=start + batch_size
            )
            followed_n[rows] += n_new
            followed_y[rows] += y_new
        n_f = followed_n[rows]
        y_f = followed_y[rows]
        a, b = oriented(design.prior_a + y_f, design.prior_b + n_f - y_f, design.higher_is_better)
        st, sl, dc = status[rows], status_look[rows], declared[rows]
        ctrl, changed = control[rows], control_changed[rows]
        # P(best) of the decisions is read only by the allocation on P(best) after the decisions, which
        # asks for refresh; after the last look nothing is allocated
        refresh = design.adaptive and design.basis == "prob_best" and look < n_looks - 1
        stop, pb = decide(design, look, a, b, st, sl, dc, ctrl, changed, refresh, need_pb=refresh)

        # --- the decisions written back; stops: by a rule, at the last look, or when no arm can take patients
        stop, in_trial, open_, ended = _after_decisions(
            rows,
            look,
            look == n_looks - 1,
            st,
            sl,
            dc,
            ctrl,
            changed,
            stop,
            design.caps,
            randomized_n,
            status,
            status_look,
            declared,
            declared_look,
            control,
            control_changed,
            stop_look,
            stop_reason,
            running,
        )

        # --- allocation for the next batch
        go = ~ended
        new = None
        if go.any():
            pb_go = adaptive_basis(design, pb[go], a[go], b[go], in_trial[go]) if design.adaptive else None
            new = allocation_probabilities(
                design,
                look,
                pb_go,
                in_trial[go],
                open_[go],
                ctrl[go],
                randomized=randomized_n[rows[go]],
                followed=None if known is None else n_f[go].sum(axis=1),
            )
            probs[rows[go]] = new
            alloc_history[rows[go], look] = new
        if trace is not None:
            following = np.full(p.shape, np.nan)
            if new is not None:
                following[go] = new
            trace.record(
                "look",
                rows,
                look=look,
                batch_start=int(start),
                arms=arms,
                randomized=randomized_n[rows],
                n=n_f,
                y=y_f,
                a=a,
                b=b,
                alloc=p,
                alloc_next=following,
                status=st,
                declared=dc,
                control=ctrl,
                stop=stop,
            )

    res = _final_analysis(
        design,
        seg_n,
        seg_y,
        status,
        status_look,
        declared,
        declared_look,
        control,
        stop_look,
        stop_reason,
        alloc_history,
        final_alloc,
        n_followed_segments,
    )
    if arms_all is not None:
        assert every is not None
        res.n_followed = tally_known(
            arms_all, every, design.arm_treatment, known, np.zeros(n_trials, np.int64), stop_look, n_arms
        )[0]
    return res


def _final_analysis(
    design,
    seg_n,
    seg_y,
    status,
    status_look,
    declared,
    declared_look,
    control,
    stop_look,
    stop_reason,
    alloc_history,
    final_alloc,
    n_followed_segments,
) -> LookResults:
    n = seg_n.sum(axis=1).astype(np.int64)
    y = seg_y.sum(axis=1).astype(np.int64)
    # patients with outcome at each trial's last look
    last_followed = n_followed_segments[stop_look]
    seg_index = np.arange(seg_n.shape[1])
    followed_mask = seg_index[None, :] < last_followed[:, None]
    n_followed = (seg_n * followed_mask[:, :, None]).sum(axis=1).astype(np.int64)

    post_a = design.prior_a + y
    post_b = design.prior_b + n - y
    mean = post_a / (post_a + post_b)
    lower, upper = beta_interval(post_a, post_b, 0.95)
    still_in = ~np.isin(status, (INFERIOR, FUTILE))
    a, b = oriented(post_a, post_b, design.higher_is_better)
    pb = prob_best(a, b, still_in)
    pb = np.where(still_in, pb, np.nan)
    return LookResults(
        n=n,
        responders=y,
        n_followed=n_followed,
        status=status,
        status_look=status_look,
        declared_superior=declared,
        declared_look=declared_look,
        post_mean=mean,
        post_lower=lower,
        post_upper=upper,
        prob_best=pb,
        final_alloc=final_alloc,
        alloc_history=alloc_history,
        stop_look=stop_look,
        stop_reason=stop_reason,
        final_control=control.astype(np.int8),
    )


@dataclass
class LookResults:
    """What the interim loop returns for T trials (K arms, J looks), before it becomes a
    :class:`~platform_sim.results.TrialResults`; counts at the final analysis include every
    randomized patient, ``n_followed`` those with an outcome at the last look."""

    n: np.ndarray  # (T, K) patients randomized per arm
    responders: np.ndarray  # (T, K) events among them
    n_followed: np.ndarray  # (T, K) patients with outcome at the last look
    status: np.ndarray  # (T, K) int8 status codes
    status_look: np.ndarray  # (T, K) int16 look at which the status was set (-1: never)
    declared_superior: np.ndarray  # (T, K) bool: crossed the superiority threshold at some look
    declared_look: np.ndarray  # (T, K) int16 look of the first declaration (-1: none)
    post_mean: np.ndarray  # (T, K) posterior mean of the endpoint rate, final analysis
    post_lower: np.ndarray  # (T, K) 2.5% posterior quantile, final analysis
    post_upper: np.ndarray  # (T, K) 97.5% posterior quantile, final analysis
    prob_best: np.ndarray  # (T, K) P(best) among arms still in the trial at the final analysis (NaN: dropped)
    final_alloc: np.ndarray  # (T, K) last allocation probability used for each arm
    alloc_history: np.ndarray  # (T, J, K) allocation probabilities in force after each look (NaN after stop)
    stop_look: np.ndarray  # (T,) int16 index of the last look conducted
    stop_reason: np.ndarray  # (T,) int8 STOP codes
    final_control: np.ndarray  # (T,) int8 arm index of the control at the end (-1: no control)


# --------------------------------------------------------------------------- selection strategies


def _pick_max(score: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Per trial, the eligible arm with the highest score (first in design order on ties), else -1."""
    masked = np.where(eligible, score, -np.inf)
    idx = np.argmax(masked, axis=1)
    return np.where(eligible.any(axis=1), idx, -1).astype(np.intp)


def superior_or_none(res: LookResults) -> np.ndarray:
    """The arm a trial recommends only when it has proven something.

    Per trial: the arm whose final status is superior (several: the one with the highest final
    P(best), then the first in design order); otherwise the final control if that arm was itself
    declared superior at some look (it beat an earlier control and took its place); otherwise no
    selection (-1)."""
    status = np.asarray(res.status)
    pb = np.where(np.isfinite(res.prob_best), res.prob_best, -1.0)
    pick = _pick_max(pb, status == SUPERIOR)
    fc = np.asarray(res.final_control).astype(np.intp)
    has_fc = fc >= 0
    fc = np.clip(fc, 0, None)
    rows = np.arange(status.shape[0])
    fc_declared = has_fc & np.asarray(res.declared_superior, dtype=bool)[rows, fc]
    return np.where(pick >= 0, pick, np.where(fc_declared, fc, -1)).astype(np.intp)


def best_remaining(res: LookResults) -> np.ndarray:
    """The arm a sponsor would take forward whatever happened: the :func:`superior_or_none` pick
    when there is one; otherwise, among arms still in the trial at the end (active or control), the
    one with the highest final P(best); no selection (-1) only when every arm was dropped."""
    sor = superior_or_none(res)
    status = np.asarray(res.status)
    pb = np.asarray(res.prob_best, dtype=float)
    remaining = ((status == ACTIVE) | (status == CONTROL)) & np.isfinite(pb)
    return np.where(sor >= 0, sor, _pick_max(pb, remaining)).astype(np.intp)


def control_if_active(res: LookResults) -> np.ndarray:
    """The arm a conservative trialist would keep: the :func:`superior_or_none` pick when there is
    one; otherwise the final control if it is still standing; otherwise none (-1)."""
    sor = superior_or_none(res)
    status = np.asarray(res.status)
    fc = np.asarray(res.final_control).astype(np.intp)
    has_fc = fc >= 0
    fc = np.clip(fc, 0, None)
    rows = np.arange(status.shape[0])
    keep = has_fc & (status[rows, fc] == CONTROL)
    return np.where(sor >= 0, sor, np.where(keep, fc, -1)).astype(np.intp)


#: Selection strategies by name: each maps a trial's final state to the selected arm (-1: none).
SELECTION_STRATEGIES = {
    "superior_or_none": superior_or_none,
    "best_remaining": best_remaining,
    "control_if_active": control_if_active,
}


def selections(res: LookResults, rules: CompiledDesign) -> dict[str, np.ndarray]:
    """Every selection strategy's (T,) pick; with ``decisions.final_selection``, also
    ``best_with_margin`` (:func:`platform_sim.rules.select_with_margin`)."""
    out = {name: f(res) for name, f in SELECTION_STRATEGIES.items()}
    fs = rules.final_selection
    if fs is not None:
        still_in = np.isin(res.status, (ACTIVE, CONTROL, SUPERIOR))
        score = (
            res.prob_best
            if fs.by == "prob_best"
            else (res.post_mean if rules.higher_is_better else 1.0 - res.post_mean)
        )
        out["best_with_margin"] = select_with_margin(score, still_in, fs.margin)
    return out


# --------------------------------------------------------------------------- the family


def look_months(rules: CompiledDesign, slot_month: np.ndarray, assessment_months: float) -> np.ndarray:
    """(T, J) calendar month of each look: when its last patient is randomized and the outcome of
    its last followed patient is known. ``slot_month`` (T, N): when the patient in each
    randomization slot was randomized (NaN: a slot left empty). The latest month so far is kept
    only at the slots the looks read (:func:`_months_so_far`); :func:`look_months_reference` is the
    same with a running maximum over every slot (bit for bit: maxima are exact)."""
    n = slot_month.shape[1]
    at = np.concatenate([np.clip(rules.randomized_n, 1, n) - 1, np.clip(rules.followed_n, 1, n) - 1])
    at = at.astype(np.int64)
    so_far = _months_so_far(slot_month, at, np.argsort(at, kind="stable"))
    n_looks = len(rules.randomized_n)
    randomized = so_far[:, :n_looks]
    followed = np.where(rules.followed_n > 0, so_far[:, n_looks:] + assessment_months, 0.0)
    return np.maximum(randomized, followed)


def look_months_reference(rules: CompiledDesign, slot_month: np.ndarray, assessment_months: float) -> np.ndarray:
    """:func:`look_months` with numpy passes over every slot (the definition, for tests)."""
    n = slot_month.shape[1]
    so_far = np.fmax.accumulate(np.where(np.isnan(slot_month), -np.inf, slot_month), axis=1)
    so_far = np.where(np.isfinite(so_far), so_far, 0.0)
    randomized = so_far[:, np.clip(rules.randomized_n, 1, n) - 1]
    followed = np.where(rules.followed_n > 0, so_far[:, np.clip(rules.followed_n, 1, n) - 1] + assessment_months, 0.0)
    return np.maximum(randomized, followed)


@njit(cache=True)
def _months_so_far(slot_month, at, order):
    """(T, len(at)) the latest month among the filled slots up to and including slot ``at[i]``
    of each row of ``slot_month`` (T, N) (NaN: empty slot), 0.0 where there is none (or it is
    infinite); ``order`` visits ``at`` in increasing order (its argsort, the same for every row).
    Each row is read only up to the largest slot asked for."""
    n_rows = slot_month.shape[0]
    out = np.empty((n_rows, at.size))
    for r in range(n_rows):
        latest = -np.inf
        j = 0
        for i in range(at.size):
            stop = at[order[i]]
            while j <= stop:
                v = slot_month[r, j]
                latest = v if v > latest else latest  # a NaN (empty slot) compares False: skipped
                j += 1
            out[r, order[i]] = latest if np.isfinite(latest) else 0.0
    return out


def to_trial_results(
    res: LookResults,
    rules: CompiledDesign,
    trials: np.ndarray,
    month: np.ndarray,
    n_screened: np.ndarray,
    duration: np.ndarray,
) -> TrialResults:
    """A design with looks' trials in the common results type (one stratum, one subgroup: all
    patients). ``month`` (T, J): calendar month of each look."""
    n_trials = res.n.shape[0]
    rows = np.arange(n_trials)[:, None]
    declared = np.asarray(res.declared_superior, dtype=bool)
    claim_month = np.where(declared, month[rows, np.maximum(res.declared_look, 0)], np.nan)
    inconclusive = (res.stop_reason == STOP_MAX) & ~(res.status == SUPERIOR).any(axis=1) & ~declared.any(axis=1)
    return TrialResults(
        trial=np.asarray(trials, dtype=np.int64),
        arms=rules.arm_names,
        strata=("all",),
        subgroups=("all",),
        membership=np.ones((1, 1), dtype=bool),
        stop_names=STOP_NAMES,
        n=res.n[:, :, None],
        events=res.responders[:, :, None],
        claimed=declared[:, :, None],
        claim_month=claim_month[:, :, None],
        status=res.status.astype(np.int8),
        stop_reason=res.stop_reason.astype(np.int8),
        n_screened=np.asarray(n_screened, dtype=np.int64),
        duration_months=np.asarray(duration, dtype=float),
        estimates={"rate": res.post_mean[:, :, None]},
        estimate_targets={"rate": "value"},
        selections=selections(res, rules),
        selection_estimate=res.post_mean,
        trial_values={
            "p_stopped_early": res.stop_look < rules.n_looks - 1,
            "p_inconclusive_at_max": inconclusive,
            "n_looks": res.stop_look.astype(float) + 1.0,
        },
        extras={
            "prob_best": res.prob_best,
            "post_lower": res.post_lower,
            "post_upper": res.post_upper,
            "final_alloc": res.final_alloc,
            "alloc_history": res.alloc_history,
            "status_look": res.status_look,
            "declared_look": res.declared_look,
            "stop_look": res.stop_look,
            "final_control": res.final_control,
            "n_followed": res.n_followed,
            "look_month": month,
        },
        extra_dims={
            "prob_best": ("trial", "arm"),
            "post_lower": ("trial", "arm"),
            "post_upper": ("trial", "arm"),
            "final_alloc": ("trial", "arm"),
            "alloc_history": ("trial", "look", "arm"),
            "status_look": ("trial", "arm"),
            "declared_look": ("trial", "arm"),
            "stop_look": ("trial",),
            "final_control": ("trial",),
            "n_followed": ("trial", "arm"),
            "look_month": ("trial", "look"),
        },
    )


@dataclass(frozen=True, eq=False)
class LooksDesign:
    """A design with looks compiled for a scenario: its rules as arrays and its patients."""

    design: Design
    scenario: Scenario
    patients: VirtualPatients
    rules: CompiledDesign
    assessment_months: float  # months from randomization to the endpoint's assessment
    # all patients, no strata: eligible patients are randomized without waiting for a biomarker result
    needs_biomarker_result: bool = False

    @property
    def arm_names(self) -> tuple[str, ...]:
        return self.rules.arm_names


def endpoint_problems(design: Design, scenario: Scenario) -> list[Problem]:
    """Designs with looks decide on binary or landmark endpoints."""
    endpoint = scenario.endpoints[design.endpoint.name]
    if endpoint.kind != "time_to_event":
        return []
    binary = sorted(n for n, e in scenario.endpoints.items() if e.kind != "time_to_event")
    return [
        Problem(
            "design.endpoint.name",
            "is a time-to-event endpoint; designs with looks decide on binary or "
            f"landmark endpoints (this scenario has {binary})",
            design.endpoint.name,
        )
    ]


def capacity_problems(
    design: Design,
    scenario: Scenario,
    biomarker_result: bool,
    taken: float = 1.0,
    pool_factor: float = 1.0,
    margin: float = 0.0,
) -> list[Problem]:
    """A trial the simulator cannot run under this scenario: more patients screened than
    MAX_SCREENED, because of the design's size or because the scenario's screening funnel (with or
    without the biomarker assay, ``biomarker_result``, and, for strata, the share of patients the
    strata take, ``taken``) lets few patients through."""
    looks = design.looks
    assert looks is not None  # a design with looks (checked when the file was read)
    funnel = expected_funnel(scenario.population, biomarker_result)["randomized"]
    if not (funnel > 0 and taken > 0):  # reported with the scenario (funnel) or the strata (no patients)
        return []
    randomizable = looks.max_n / taken * pool_factor + margin
    screened = randomizable / funnel
    if screened <= MAX_SCREENED:
        return []
    share = funnel * taken
    into = "" if taken == 1.0 and pool_factor == 1.0 else " into its strata"
    return [
        Problem(
            "design.looks.randomized_n",
            f"a simulated trial would screen about {screened:.3g} patients under "
            f"scenario {scenario.name!r}, which randomizes {share:.3g} of the patients screened{into}; the "
            f"simulator screens at most {MAX_SCREENED} per trial",
            looks.max_n,
        )
    ]


def look_truth(rules: CompiledDesign, true_rates: np.ndarray, delta: float) -> Truth:
    """The truth of an all-comer design: each arm against the control (or, without one, against
    the best other arm) in the whole population."""
    rates = np.asarray(true_rates, dtype=float)
    k = rates.size
    sign = 1.0 if rules.higher_is_better else -1.0
    c = rules.control
    if c >= 0:
        reference = np.full(k, rates[c])
        improvement = (rates - reference) * sign
        improvement[c] = 0.0
        judged = np.arange(k) != c
        scale = "rate difference"
    else:
        diff = (rates[:, None] - rates[None, :]) * sign  # diff[i, j]: how much i beats j
        np.fill_diagonal(diff, np.inf)
        strongest = diff.argmin(axis=1)
        reference = rates[strongest] if k > 1 else np.full(k, np.nan)
        improvement = diff.min(axis=1) if k > 1 else np.full(k, np.nan)
        judged = np.ones(k, dtype=bool)
        scale = "margin over the best other arm"
    better = improvement >= delta - _TOL if delta > 0 else improvement > _TOL
    null = improvement <= _TOL
    works = (better & judged)[:, None]
    null = (null & judged)[:, None]
    return Truth(
        arms=rules.arm_names,
        subgroups=("all",),
        strata=("all",),
        membership=np.ones((1, 1), dtype=bool),
        share=np.ones(1),
        value=rates[:, None],
        reference=reference[:, None],
        effect=(rates - reference)[:, None],
        works=works,
        null=null,
        judged=judged[:, None],
        works_in_stratum=works.copy(),
        null_in_stratum=null.copy(),
        control=c,
        value_name="rate",
        effect_scale=scale,
        effect_better=sign,
    )


def _threshold(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, list):
        return "per look: " + ", ".join(f"{v:g}" for v in value)
    return f"{value:g}"


def randomization_words(design: Design, target: str) -> list[str]:
    """The randomization rule in words (``target``: what adaptive randomization is proportional to)."""
    r = design.randomization
    assert r is not None  # every design with looks or calendar randomizes
    out = []
    if r.method == "fixed":
        ratios = ", ".join(f"{k} {setting(v)}" for k, v in (r.ratios or {}).items()) or "equal"
        out.append(
            f"Fixed randomization in proportion to the ratios ({ratios}); the shares of dropped arms go to "
            "the remaining arms."
        )
    else:
        soft = "c = n / (2N) (Thall and Wathen)" if r.softening == "thall_wathen" else f"c = {_threshold(r.softening)}"
        out.append(
            f"Response-adaptive randomization in proportion to p^c, where p = {target} and {soft}, after "
            f"equal randomization until {r.burn_in_n} patients have outcomes (burn-in)."
        )

        def limit(value) -> str:
            if isinstance(value, dict):
                return "(" + ", ".join(f"{arm} {setting(v)}" for arm, v in value.items()) + ")"
            return setting(value)

        limits = []
        if r.min_allocation is not None:
            limits.append(f"at least {limit(r.min_allocation)}")
        if r.max_allocation is not None:
            limits.append(f"at most {limit(r.max_allocation)}")
        if limits:
            out.append(
                "Allocation limits per arm: "
                + " and ".join(limits)
                + (" (rescaled as arms drop)" if r.rescale_limits else "")
                + (
                    "; clipped once and renormalised, so an arm can end slightly outside them."
                    if r.limits == "clip_renormalise"
                    else "; they hold exactly (scaled, then clipped)."
                )
            )
    if r.coin is not None:
        out.append(
            f"Doubly-adaptive biased coin (Hu and Zhang 2004), gamma = {setting(r.coin.gamma)}: each batch is "
            "randomized with g_k proportional to rho_k (rho_k / x_k)^gamma, pulling the shares so far (x) "
            "toward these probabilities (rho)."
        )
    out.append(
        "Scheme: "
        + (
            "simple (each patient randomized with their own random number)."
            if r.scheme == "simple"
            else "block (each arm gets the floor or the ceiling of n p of the n patients between "
            "looks, in random order)."
        )
    )
    ca = design.control_allocation
    if ca is not None and design.control is not None:
        if ca.rule == "fixed":
            share = (
                ", ".join(f"{k} active arms: {setting(v)}" for k, v in ca.share.items())
                if isinstance(ca.share, dict)
                else setting(ca.share)
            )
            out.append(f"Control allocation: a fixed share of {share}.")
        elif ca.rule == "sqrt_k":
            out.append("Control allocation: control : each other arm = sqrt(k) : 1 with k active experimental arms.")
        else:
            out.append("Control allocation: the control gets the share of the best-allocated other arm.")
    return out


def decision_words(design: Design) -> list[str]:
    """The decision rules of a design with looks in words."""
    dec = design.decisions
    assert dec is not None  # a design with looks
    vs = "P(arm better than control)" if design.control is not None else "P(best) among the active arms"
    out = [
        f"Superiority: an arm is declared effective when {vs} > {_threshold(dec.superiority)}"
        + (" and becomes the new control." if design.control is not None else "; the trial stops.")
    ]
    out.append(f"Inferiority: an arm is dropped when {vs} < {_threshold(dec.inferiority)}.")
    if dec.futility is not None:
        f = dec.futility
        out.append(
            f"Futility: an arm is dropped when P(arm better than control by at least {setting(f.delta)}) < "
            f"{setting(f.threshold)}"
            + (" (against the first control only)" if f.only_first_control else "")
            + (
                ""
                if f.looks is None
                else ", assessed at looks " + ", ".join(str(j + 1) for j, on in enumerate(f.looks) if on)
            )
            + "."
        )
    if dec.equivalence is not None:
        e = dec.equivalence
        out.append(
            f"Equivalence: when P(|difference| < {setting(e.margin)}) > {setting(e.probability)}, "
            + (
                "the arm is dropped as equivalent to the control."
                if design.control is not None
                else "the trial stops (all active arms within the margin)."
            )
        )
    if dec.final_selection is not None:
        fs = dec.final_selection
        by = "P(best)" if fs.by == "prob_best" else "posterior mean rate"
        out.append(
            f"Final selection (best_with_margin): the arm with the highest {by} among those still in the trial, "
            f"only if it exceeds the next by at least {setting(fs.margin)}; otherwise none."
        )
    delay = design.looks.outcome_delay if design.looks is not None else None
    if delay is not None:
        what = (
            "the endpoint's assessment time"
            if delay.distribution == "endpoint"
            else f"{delay.distribution} with median {setting(delay.median_weeks)} weeks"
        )
        scans = (
            ""
            if delay.assessment_every_weeks is None
            else f", read at the first scan (every {setting(delay.assessment_every_weeks)} weeks) at or after it"
        )
        out.append(
            f"Outcomes are known a delay after randomization ({what}{scans}); a look counts the patients "
            "whose outcome is known by its date, and the final look waits for every outcome."
        )
    out.append(
        f"Clinically relevant difference delta = {setting(design.clinically_relevant_difference)}: a claim for "
        "an arm at least delta better than its reference is a true positive; a claim for an arm no better is a "
        "false positive."
    )
    return out


def looks_table(design: Design) -> Table:
    looks, dec = design.looks, design.decisions
    assert looks is not None and dec is not None  # a design with looks

    def per_look(value, j):
        if value is None:
            return "off"
        return f"{value[j]:g}" if isinstance(value, list) else f"{value:g}"

    def followed(j):  # with random outcome delays the number followed varies by trial; the final look has all
        if looks.outcome_delay is None or j == looks.n_looks - 1:
            return looks.followed[j]
        return "by accrual"

    rows = tuple(
        (j + 1, looks.randomized_n[j], followed(j), per_look(dec.superiority, j), per_look(dec.inferiority, j))
        for j in range(looks.n_looks)
    )
    return Table(
        "Interim analyses (looks)",
        ("look", "patients randomized", "patients with outcomes", "superiority threshold", "inferiority threshold"),
        rows,
    )


def _set_superiority(data: dict, value) -> dict:
    return {**data, "decisions": {**data["decisions"], "superiority": value}}


SUPERIORITY = Parameter(
    name="superiority",
    path="design.decisions.superiority",
    meaning="declares an arm effective (superior to the control, or best without one) when its posterior "
    "probability crosses it",
    get=lambda design: design.decisions.superiority,
    set=_set_superiority,
)


class LooksFamily:
    """Designs with looks on all patients (see the module docstring)."""

    name = "looks"
    title = "design with looks"

    def matches(self, design: Design) -> bool:
        return design.platform is None and design.strata is None and design.two_stage is None

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> LooksDesign:
        from ..config import ConfigError

        # no strata: every eligible patient is randomized at once, without a biomarker result
        problems = endpoint_problems(design, scenario) or capacity_problems(design, scenario, biomarker_result=False)
        if problems:
            raise ConfigError(problems)
        rules = CompiledDesign.from_models(
            design, patients.truth(design.endpoint.name, [a.treatment for a in design.arms])
        )
        return LooksDesign(
            design,
            scenario,
            patients,
            rules,
            patients.outcomes.assessment_months(design.endpoint.name),
            needs_biomarker_result=False,
        )

    def recompile(self, compiled: LooksDesign, design: Design) -> LooksDesign:
        """``compiled`` with ``design``, which differs from its design only in decision thresholds."""
        return LooksDesign(
            design,
            compiled.scenario,
            compiled.patients,
            CompiledDesign.from_models(design, compiled.rules.true_rates),
            compiled.assessment_months,
            compiled.needs_biomarker_result,
        )

    def simulate(self, compiled: LooksDesign, streams: TrialStreams, trace=None) -> TrialResults:
        rules = compiled.rules
        ep = compiled.design.endpoint.name
        treatments = list(rules.treatments)
        # outcomes drawn as patients are randomized, where they can be (the same trials; a storyboard
        # shows every treatment's, and random delays count outcomes when they are known)
        constant = None
        if trace is None and rules.outcome_delay is None:
            constant = compiled.patients.outcomes.constant_binary(ep, treatments)
        enrolled = compiled.patients.enrol(
            streams,
            rules.max_n,
            ep,
            treatments if constant is None else [],
            times=True,
            biomarker_result=compiled.needs_biomarker_result,
            **enrol_options(trace, None, compiled.patients.population.names),
        )
        if trace is not None:
            trace.enrolled = enrolled
        ready = enrolled.ready
        sched = (
            None
            if rules.outcome_delay is None
            else delay_schedule(
                rules.outcome_delay, streams, ready[:, : rules.max_n], rules.randomized_n, compiled.assessment_months
            )
        )
        outcomes = (
            enrolled.outcomes
            if constant is None
            else DrawnOnDemand.build(streams, ep, treatments, constant, enrolled.screened_index)
        )
        res = run_looks(rules, outcomes, streams, trace, known=None if sched is None else sched.known)
        used = rules.randomized_n[res.stop_look] - 1  # last patient position the trial reached
        rows = np.arange(streams.n_trials)
        if sched is None:
            month = look_months(rules, ready[:, : rules.max_n], compiled.assessment_months)
            duration = ready[rows, used] + compiled.assessment_months
        else:
            month, duration = sched.look_month, sched.last_outcome[rows, used]
        return to_trial_results(res, rules, streams.trials, month, enrolled.screened_index[rows, used] + 1, duration)

    def truth(self, compiled: LooksDesign) -> Truth:
        return look_truth(compiled.rules, compiled.rules.true_rates, compiled.design.clinically_relevant_difference)

    def size(self, compiled: LooksDesign) -> Size:
        n = compiled.rules.max_n
        return Size(n, accrual_months(compiled.patients.population.config, n, 1.0, compiled.needs_biomarker_result))

    def resize(self, compiled: LooksDesign, max_n: int | None = None, months: float | None = None) -> Design:
        return resize_sample_sizes(
            compiled.design,
            compiled.patients.population.config,
            compiled.rules.max_n,
            1.0,
            max_n,
            months,
            compiled.needs_biomarker_result,
        )

    def profiles(self, compiled: LooksDesign, characteristics: list[str]):
        from ..strata import profile_strata

        return profile_strata(compiled.patients.population, None, characteristics)

    def describe(self, compiled: LooksDesign) -> Description:
        d = compiled.design
        target = (
            "P(arm best) among the active arms"
            if d.randomization is None or d.randomization.basis == "prob_best"
            else "the posterior mean rate of the better outcome"
        )
        rules = compiled.rules
        return Description(
            kind=self.title,
            summary=f"{len(d.arms)} arms, {rules.n_looks} looks up to {rules.max_n} patients, all patients eligible",
            sections=(
                Section("Randomization", tuple(randomization_words(d, target))),
                Section("Looks and decision rules", tuple(decision_words(d)), (looks_table(d),)),
            ),
        )

    def story(self, compiled: LooksDesign, trace, result: TrialResults):
        return look_story(compiled, trace, result)

    @property
    def parameters(self) -> dict[str, Parameter]:
        return {"superiority": SUPERIORITY}


LOOKS = LooksFamily()


# --------------------------------------------------------------------------- the storyboard of one trial


def _initial_status(rules: CompiledDesign, plan, n_strata: int) -> np.ndarray:
    from ..results import INELIGIBLE

    st = np.full((n_strata, rules.n_arms), ACTIVE, dtype=np.int8)
    if plan is not None:
        st[~plan.arm_in] = INELIGIBLE
        if rules.control >= 0:
            st[plan.controlled & plan.arm_in[:, rules.control], rules.control] = CONTROL
    elif rules.control >= 0:
        st[:, rules.control] = CONTROL
    return st


def _look_patients(compiled, trace, n_screened: int):
    """Patients of a trial with looks, with outcomes for the randomized ones."""
    from .story import screened_frame

    rules, plan = compiled.rules, getattr(compiled, "plan", None)
    enrolled, row = trace.enrolled, trace.row
    order = enrolled.screened_index[row]
    arm_of: dict[int, int] = {}
    stratum_of: dict[int, str] = {}
    pool_of: dict[int, int] = {}  # cohort position -> position among the randomizable patients
    look_of: dict[int, int] = {}
    for ev in trace.events:
        if plan is not None:
            for ix, s, k in zip(ev["index"], ev["strata"], ev["arms"]):
                if ix < 0 or k < 0:
                    continue
                p = int(order[ix])
                arm_of[p], stratum_of[p], pool_of[p], look_of[p] = int(k), plan.names[s], int(ix), ev["look"]
        else:
            for j, k in enumerate(ev["arms"]):
                if k < 0:
                    continue
                ix = ev["batch_start"] + j
                p = int(order[ix])
                arm_of[p], stratum_of[p], pool_of[p], look_of[p] = int(k), "all", ix, ev["look"]
    frame = screened_frame(compiled.patients.population, rules.arm_names, enrolled, row, n_screened, arm_of, stratum_of)
    treat = np.array(list(rules.treatments) + [""], dtype=object)
    col = np.array([rules.arm_treatment[arm_of[p]] if p in arm_of else -1 for p in frame["patient"]])
    frame["treatment"] = treat[np.where(col >= 0, col, len(treat) - 1)]
    frame["randomized_before_look"] = [look_of.get(int(p), -2) + 1 for p in frame["patient"]]  # -1: not randomized
    resp = np.full(len(frame), -1)
    for i, p in enumerate(frame["patient"]):
        if p in arm_of:
            resp[i] = int(enrolled.outcomes[row, pool_of[p], rules.arm_treatment[arm_of[p]]])
    frame["response"] = resp
    frame["outcome_due_months"] = np.where(resp >= 0, frame["ready_months"] + compiled.assessment_months, np.nan)
    frame.loc[resp < 0, "stratum"] = ""
    return frame


def look_story(compiled, trace, result: TrialResults):
    """The storyboard of one trial with looks (all patients, or strata): per look, arm and stratum,
    the data, the posterior, P(best), P(better than the control of the day), the allocation and the
    decision; every screened patient."""
    import pandas as pd

    from ..posterior import prob_greater
    from ..results import STATUS_NAMES
    from .story import Story

    rules, plan = compiled.rules, getattr(compiled, "plan", None)
    stratified = plan is not None
    strata = list(plan.names) if plan is not None else ["all"]
    arm_in = plan.arm_in if plan is not None else np.ones((1, rules.n_arms), dtype=bool)
    arms = list(rules.arm_names)
    hib = rules.higher_is_better
    rows = []
    prev_status = None
    for ev in trace.events:
        look = int(ev["look"])
        a, b, st = ev["a"], ev["b"], ev["status"]
        if not stratified:
            a, b, st = a[None], b[None], st[None]
            n, y, rand = ev["n"][None], ev["y"][None], ev["randomized"][None]
            alloc, nxt = ev["alloc"][None], ev["alloc_next"][None]
        else:
            n, y, rand, alloc, nxt = ev["n"], ev["y"], ev["randomized"], ev["alloc"], ev["alloc_next"]
        before = prev_status if prev_status is not None else _initial_status(rules, plan, len(strata))
        in_trial = np.isin(before, (ACTIVE, CONTROL))
        pb = np.where(in_trial, prob_best(a, b, in_trial), np.nan)
        rate_a, rate_b = (a, b) if hib else (b, a)
        mean = rate_a / (rate_a + rate_b)
        lo, hi = beta_interval(rate_a, rate_b, 0.95)
        for s in range(len(strata)):
            # the control of the day before this look's decisions (-1: none in this stratum)
            c_day = int(np.flatnonzero(before[s] == CONTROL)[0]) if (before[s] == CONTROL).any() else -1
            for k, arm in enumerate(arms):
                if not arm_in[s, k]:
                    continue
                vs = np.nan
                if c_day >= 0 and k != c_day and in_trial[s, k]:
                    vs = float(prob_greater(a[s, k], b[s, k], a[s, c_day], b[s, c_day]))
                set_here = st[s, k] != before[s, k]
                rows.append(
                    {
                        "look": look + 1,
                        "patients_randomized": int(rules.randomized_n[look]),
                        "patients_followed": int(rules.followed_n[look])
                        if rules.outcome_delay is None
                        else int(n.sum()),
                        "stratum": strata[s],
                        "arm": arm,
                        "randomized": int(rand[s, k]),
                        "followed": int(n[s, k]),
                        "events": int(y[s, k]),
                        "post_mean": float(mean[s, k]),
                        "post_lower": float(lo[s, k]),
                        "post_upper": float(hi[s, k]),
                        "p_best": float(pb[s, k]),
                        "p_better_than_control": vs,
                        "allocation": float(alloc[s, k]),
                        "allocation_next": float(nxt[s, k]),
                        "status": STATUS_NAMES[int(st[s, k])],
                        "decision": STATUS_NAMES[int(st[s, k])] if set_here else "",
                    }
                )
        prev_status = st.copy()
    n_screened = int(result.n_screened[0])
    summary = {
        "looks": int(result.extras["stop_look"][0]) + 1,
        "stop_reason": result.stop_names[int(result.stop_reason[0])],
        "patients_randomized": int(result.n_randomized[0]),
        "patients_screened": n_screened,
        "duration_months": float(result.duration_months[0]),
        "claimed_effective": [
            f"{arms[k]}" + (f" [{result.subgroups[g]}]" if stratified else "")
            for k, g in np.argwhere(result.claimed[0])
        ],
    }
    return Story(pd.DataFrame(rows), _look_patients(compiled, trace, n_screened), summary, timeline="looks")
