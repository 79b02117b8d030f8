"""The interim loop: a batch of simulated trials moves through the looks together.

Python loops run over looks only. At each look the trials still running
randomize their next batch of patients, outcomes become available for the
patients followed up by then, posteriors are updated, the decision rules are
applied and allocation probabilities are recomputed. Stopped trials and dropped
arms are masks. After stopping, a final analysis uses every randomized patient;
it reports estimates but does not change decisions.

Patients come from the scenario's virtual population with their potential
outcomes under every treatment (``outcomes``, one row per trial, patients in
order of randomization). A batch (the patients randomized between two looks)
gets its arm counts from the randomization rule, and the counts are dealt to the
batch's patients in random order; each patient's outcome is their potential
outcome under the treatment of their arm. Counts are kept per arm and per
*segment*: the stretch of patients between two consecutive numbers in the union
of ``randomized_n`` and ``followed_n``.
"""

from __future__ import annotations

import numpy as np

from .allocation import allocation_probabilities, block_counts, deal, draw_arms, tally
from .compiled import CompiledDesign
from .posterior import beta_interval, oriented, prob_best
from .results import ACTIVE, CONTROL, FUTILE, INFERIOR, STOP_MAX, TrialResults
from .rules import CONTINUE, decide
from .streams import RANDOMIZATION, TrialStreams


def _segments(design: CompiledDesign):
    """Segment boundaries, the batch (look) each segment belongs to, and per look how many
    segments are randomized / followed."""
    bounds = np.unique(np.concatenate([[0], design.randomized_n, design.followed_n]))
    ends = bounds[1:]
    batch_of = np.searchsorted(design.randomized_n, ends)  # first look whose randomized_n >= end
    n_followed_segments = np.searchsorted(ends, design.followed_n, side="right")
    return bounds, batch_of, n_followed_segments


def simulate(design: CompiledDesign, outcomes: np.ndarray, streams: TrialStreams, trace=None) -> TrialResults:
    """Simulate one trial per row of ``outcomes`` (T, max_n, treatments): the potential outcomes
    (bool) of the patients each trial can randomize, by column of ``design.treatments``.
    ``streams`` (the trials' random numbers) drive the randomization only: the patient at
    position i of trial t is randomized with the uniform ``randomization:arm`` at (t, i), so a
    trial's course does not depend on the other trials of the batch. A
    :class:`~platform_sim.trace.Trace` records one trial's analyses."""
    n_trials = outcomes.shape[0]
    if outcomes.shape[1] < design.max_n or outcomes.shape[2] != len(design.treatments):
        raise ValueError(
            f"outcomes must be (trials, >= {design.max_n}, {len(design.treatments)}), got {outcomes.shape}"
        )
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
    control_changed = np.zeros(n_trials, dtype=bool)
    stop_look = np.full(n_trials, n_looks - 1, dtype=np.int16)
    stop_reason = np.full(n_trials, STOP_MAX, dtype=np.int8)
    alloc_history = np.full((n_trials, n_looks, n_arms), np.nan, dtype=np.float32)
    final_alloc = np.zeros((n_trials, n_arms))
    running = np.ones(n_trials, dtype=bool)

    in_trial0 = status != INFERIOR
    probs = allocation_probabilities(design, -1, None, in_trial0, in_trial0, control)
    for look in range(n_looks):
        rows = np.flatnonzero(running)
        if rows.size == 0:
            break
        # --- randomize the batch of this look and split it into its segments
        seg_ids = np.flatnonzero(batch_of == look)
        batch_size = int(seg_sizes[seg_ids].sum())
        randomized = seg_n[rows].sum(axis=1)
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
        for seg in seg_ids:
            s0, s1 = bounds[seg], bounds[seg + 1]
            seg_n[rows, seg], seg_y[rows, seg] = tally(
                arms[:, s0 - start:s1 - start], outcomes[rows, s0:s1], design.arm_treatment, n_arms
            )

        # --- analysis with the outcomes followed up by now
        followed = slice(0, int(n_followed_segments[look]))
        n_f = seg_n[rows, followed].sum(axis=1)
        y_f = seg_y[rows, followed].sum(axis=1)
        a, b = oriented(design.prior_a + y_f, design.prior_b + n_f - y_f, design.higher_is_better)
        st, sl, dc = status[rows], status_look[rows], declared[rows]
        ctrl, changed = control[rows], control_changed[rows]
        stop, pb = decide(design, look, a, b, st, sl, dc, ctrl, changed)
        status[rows], status_look[rows], declared[rows] = st, sl, dc
        control[rows], control_changed[rows] = ctrl, changed

        # --- stops: by a rule, at the last look, or when no arm can take patients
        in_trial = (st == ACTIVE) | (st == CONTROL)
        open_ = in_trial & (seg_n[rows].sum(axis=1) < design.caps[None, :])
        if look == n_looks - 1:
            stop = np.where(stop == CONTINUE, STOP_MAX, stop)
        else:
            stop = np.where((stop == CONTINUE) & ~open_.any(axis=1), STOP_MAX, stop)
        ended = stop != CONTINUE
        stop_look[rows[ended]] = look
        stop_reason[rows[ended]] = stop[ended]
        running[rows[ended]] = False

        # --- allocation for the next batch
        go = ~ended
        new = None
        if go.any():
            pb_go = None
            if design.adaptive:
                pb_go = pb[go]
                stale = np.isnan(pb_go).any(axis=1)
                if stale.any():
                    pb_go[stale] = prob_best(a[go][stale], b[go][stale], in_trial[go][stale])
            new = allocation_probabilities(design, look, pb_go, in_trial[go], open_[go], ctrl[go])
            probs[rows[go]] = new
            alloc_history[rows[go], look] = new
        if trace is not None:
            following = np.full(p.shape, np.nan)
            if new is not None:
                following[go] = new
            trace.record("look", rows, look=look, batch_start=int(start), arms=arms, randomized=seg_n[rows].sum(axis=1),
                         n=n_f, y=y_f, a=a, b=b, alloc=p, alloc_next=following, status=st, declared=dc,
                         control=ctrl, stop=stop)

    return _final_analysis(design, seg_n, seg_y, status, status_look, declared, control, stop_look,
                           stop_reason, alloc_history, final_alloc, n_followed_segments)


def _final_analysis(design, seg_n, seg_y, status, status_look, declared, control, stop_look, stop_reason,
                    alloc_history, final_alloc, n_followed_segments) -> TrialResults:
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
    return TrialResults(
        n=n,
        responders=y,
        n_followed=n_followed,
        status=status,
        status_look=status_look,
        declared_superior=declared,
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

