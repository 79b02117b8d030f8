"""The interim loop of a stratified design: allocation, decisions and results per arm x stratum.

Like :mod:`platform_sim.engine`, a batch of simulated trials moves through the
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
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .allocation import allocation_probabilities, block_counts
from .compiled import CompiledDesign
from .engine import _segments
from .posterior import beta_interval, oriented, prob_best, prob_greater
from .results import (
    ACTIVE, CONTROL, EQUIVALENT, FUTILE, INELIGIBLE, INFERIOR, STOP_ARMS_DROPPED, STOP_MAX, STOP_SUPERIORITY, SUPERIOR,
    StrataResults, TrialResults,
)
from .rules import CONTINUE, decide
from .config.base import MAX_STRATA
from .strata import StrataPlan, deal_strata, draw_arms_strata, route, tally_strata
from .streams import RANDOMIZATION, TrialStreams


@dataclass
class Pool:
    outcomes: np.ndarray  # (T, P, treatments) potential outcomes (bool)
    match: np.ndarray  # (T, P) uint32 strata masks
    route_u: np.ndarray  # (T, P) uniforms for random overlap
    arm_u: np.ndarray  # (T, P) randomization uniforms, one per patient


_NO_CAP = np.iinfo(np.int64).max  # arms have no caps within strata (the strata are capped)


def _beta_params(design, y, n, hierarchical):
    """Posterior (a, b) per (T, S, K) on the higher-is-better scale."""
    if hierarchical is None:
        a, b = design.prior_a + y, design.prior_b + n - y
    else:
        from .posterior.hierarchical_fast import hierarchical_beta_approx

        prior, grid = hierarchical
        a_t, b_t = hierarchical_beta_approx(np.swapaxes(y, 1, 2), np.swapaxes(n, 1, 2), prior, grid)
        a, b = np.swapaxes(a_t, 1, 2), np.swapaxes(b_t, 1, 2)
    return oriented(a, b, design.higher_is_better)


def _reference_scale(plan: StrataPlan, design: CompiledDesign) -> np.ndarray:
    return plan.reference if design.higher_is_better else 1.0 - plan.reference


def _decide_reference(design, plan, look, final, rows, strata, a, b, y, stage, status, status_look, declared):
    """Single-arm strata: each active arm against the stratum's reference rate."""
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
    p_rows = ~counted[:, None] & active
    if p_rows.any():
        p_above = stats.beta.sf(p0[:, None], a, b)
        sup, inf = design.superiority[look], design.inferiority[look]
        win = p_rows & (p_above > sup) if not np.isnan(sup) else np.zeros_like(p_rows)
        lose = p_rows & ~win & (p_above < inf) if not np.isnan(inf) else np.zeros_like(p_rows)
        new = np.where(win, SUPERIOR, np.where(lose, INFERIOR, new))
        decl |= win
        if not np.isnan(design.futility_threshold):
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
        p_sup = np.where(live, prob_greater(ak, bk, ac, bc, 0.0), np.nan)
        win = live & (p_sup > sup) if not np.isnan(sup) else np.zeros_like(live)
        lose = live & ~win & (p_sup < inf) if not np.isnan(inf) else np.zeros_like(live)
        fut = np.zeros_like(live)
        if not np.isnan(design.futility_threshold):
            p_fut = np.where(live, prob_greater(ak, bk, ac, bc, design.futility_delta), np.nan)
            fut = live & ~win & ~lose & (p_fut < design.futility_threshold)
        restrict = np.zeros_like(live)
        drop_both = np.zeros_like(live)
        check = both & ~win & ~lose & ~fut
        if check.any():
            p_neg = prob_greater(a[rows, neg, k], b[rows, neg, k], a[rows, neg, c], b[rows, neg, c], en.delta)
            p_pos = prob_greater(a[rows, pos, k], b[rows, pos, k], a[rows, pos, c], b[rows, pos, c], 0.0)
            futile_neg = check & (p_neg < en.futility)
            restrict = futile_neg & (p_pos > en.promising)
            drop_both = futile_neg & ~restrict
        for s, mask, code in (
            (pos, win, SUPERIOR), (neg, win & both, SUPERIOR), (pos, lose, INFERIOR), (neg, lose & both, INFERIOR),
            (pos, fut, FUTILE), (neg, fut & both, FUTILE), (neg, restrict, FUTILE), (pos, drop_both, FUTILE),
            (neg, drop_both, FUTILE),
        ):
            r = rows[mask]
            status[r, s, k] = code
            status_look[r, s, k] = look
            if code == SUPERIOR:
                declared[r, s, k] = True
    st = status[rows]
    return ~((st == ACTIVE).any(axis=2).any(axis=1))


def simulate_strata(
    design: CompiledDesign, plan: StrataPlan, pool: Pool, streams: TrialStreams, hierarchical=None, trace=None,
) -> tuple[TrialResults, StrataResults, np.ndarray]:
    """Simulate one stratified trial per row of the pool. Returns the pooled per-arm results,
    the per arm x stratum results and each trial's next pool position (patients scanned)."""
    n_trials, n_pool = pool.match.shape
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

    def allocation(look, rows, a=None, b=None):
        """(R, S, K) allocation probabilities of the rows' strata after look ``look``."""
        st = status[rows]
        in_trial = (st == ACTIVE) | (st == CONTROL)
        open_ = in_trial.copy()
        if plan.suspension is not None and a is not None and look >= 0:
            p_ref = plan.suspension.reference if design.higher_is_better else 1 - plan.suspension.reference
            suspended = (stats.beta.sf(p_ref, a, b) < plan.suspension.below) & (st == ACTIVE)
            keep_some = ((st == ACTIVE) & ~suspended).any(axis=2, keepdims=True)
            open_ &= ~(suspended & keep_some)
        out = np.zeros(st.shape)
        pb = None
        if design.adaptive and a is not None:
            flat = prob_best(a.reshape(-1, n_arms), b.reshape(-1, n_arms), in_trial.reshape(-1, n_arms))
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
        limit = np.where(staged[None, :], plan.stages[np.arange(n_strata)[None, :], np.minimum(stage[rows], plan.stages.shape[1] - 1)],
                         plan.caps[None, :])
        headroom = np.maximum(limit - enrolled[rows], 0)
        can_take = deciding[rows] & (probs[rows].sum(axis=2) > 0)
        index = np.empty((n_rows, batch_size), dtype=np.int64)
        strat = np.empty((n_rows, batch_size), dtype=np.int64)
        p_rows = ptr[rows].copy()
        route(pool.match[rows], pool.route_u[rows], p_rows, can_take, headroom, batch_size, plan.other,
              plan.random_overlap, index, strat)
        ptr[rows] = p_rows
        per_stratum = np.stack([(strat == s).sum(axis=1) for s in range(n_strata)], axis=1)  # (R, S)
        p = probs[rows].reshape(-1, n_arms)
        final_alloc[rows] = np.where(probs[rows] > 0, probs[rows], final_alloc[rows])
        m = per_stratum.reshape(-1)
        u = np.take_along_axis(pool.arm_u[rows], np.maximum(index, 0), axis=1)
        if design.block:
            u0 = streams.uniform(RANDOMIZATION, "randomization:block", look * MAX_STRATA, n_strata, rows).reshape(-1)
            counts = block_counts(u0, m, p, _NO_CAP).reshape(n_rows, n_strata, n_arms)
            arms = deal_strata(counts, strat, u)
        else:
            arms = draw_arms_strata(u, strat, probs[rows])
        enrolled[rows] += per_stratum
        outcomes = np.take_along_axis(pool.outcomes[rows], np.maximum(index, 0)[:, :, None], axis=1)
        start = bounds[seg_ids[0]]
        for seg in seg_ids:
            s0, s1 = bounds[seg] - start, bounds[seg + 1] - start
            seg_n[rows, seg], seg_y[rows, seg] = tally_strata(
                arms[:, s0:s1], strat[:, s0:s1], outcomes[:, s0:s1], design.arm_treatment, n_strata, n_arms
            )

        # --- analyses of the strata due for one
        followed = int(n_followed_segments[look])
        n_f = seg_n[rows, :followed].sum(axis=1)
        y_f = seg_y[rows, :followed].sum(axis=1)
        a, b = _beta_params(design, y_f, n_f, hierarchical)
        final = look == n_looks - 1
        stage_size = plan.stages[np.arange(n_strata)[None, :], np.minimum(stage[rows], plan.stages.shape[1] - 1)]
        reached = n_f.sum(axis=2) >= stage_size
        due = deciding[rows] & (~staged[None, :] | reached)
        done = np.zeros((n_rows, n_strata), dtype=bool)
        if enrich_pos >= 0:
            local = np.arange(n_rows)
            st_sub, sl_sub, dc_sub = status[rows], status_look[rows], declared[rows]
            trial_done = _decide_enrichment(design, plan, look, enrich_pos, local, a, b, st_sub, sl_sub, dc_sub, y_f, n_f)
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
                    stop, _ = decide(design, look, a[r_loc, s_loc], b[r_loc, s_loc], st, sl, dc, cc, ch)
                    status[r, s_loc], status_look[r, s_loc], declared[r, s_loc] = st, sl, dc
                    control[r, s_loc], control_changed[r, s_loc] = cc, ch
                    finished = (stop != CONTINUE) | (staged[s_loc] & (stage[r, s_loc] >= (plan.stages[s_loc] > 0).sum(axis=1) - 1))
                else:
                    finished = _decide_reference(design, plan, look, final, r, s_loc, a[r_loc, s_loc], b[r_loc, s_loc],
                                                 y_f[r_loc, s_loc], stage, status, status_look, declared)
                done[r_loc, s_loc] = finished
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
            new = allocation(look, rows[go], a[go], b[go])
            new = np.where(deciding[rows[go]][:, :, None], new, 0.0)
            probs[rows[go]] = new
            alloc_history[rows[go], look] = new
            following[go] = new
        if trace is not None:
            trace.record("look", rows, look=look, index=index, strata=strat, arms=arms, randomized=seg_n[rows].sum(axis=1),
                         n=n_f, y=y_f, a=a, b=b, alloc=p.reshape(n_rows, n_strata, n_arms), alloc_next=following,
                         status=status[rows], declared=declared[rows], due=due, deciding=deciding[rows],
                         stop=np.where(ended, reason, -1))

    return _final(design, plan, seg_n, seg_y, status, status_look, declared, stop_look, stop_reason, s_stop_look,
                  alloc_history, final_alloc, hierarchical, ptr)


def _final(design, plan, seg_n, seg_y, status, status_look, declared, stop_look, stop_reason, s_stop_look,
           alloc_history, final_alloc, hierarchical, ptr):
    n3 = seg_n.sum(axis=1).astype(np.int64)
    y3 = seg_y.sum(axis=1).astype(np.int64)
    if hierarchical is None:
        post_mean3 = (design.prior_a + y3) / (design.prior_a + design.prior_b + n3)
    else:
        from .posterior.hierarchical_fast import hierarchical_moments

        mean_t, _ = hierarchical_moments(np.swapaxes(y3, 1, 2), np.swapaxes(n3, 1, 2), *hierarchical)
        post_mean3 = np.swapaxes(mean_t, 1, 2)
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
    pooled_results = TrialResults(
        n=n, responders=y, n_followed=n_followed, status=pooled, status_look=pooled_look,
        declared_superior=any_declared, post_mean=post_a / (post_a + post_b), post_lower=lower, post_upper=upper,
        prob_best=pb, final_alloc=last, alloc_history=hist, stop_look=stop_look, stop_reason=stop_reason,
        final_control=np.full(rows.size, design.control, dtype=np.int8),
    )
    strata = StrataResults(
        names=plan.names, n=n3, responders=y3, status=status, status_look=status_look, declared=declared,
        post_mean=post_mean3, stop_look=s_stop_look,
    )
    return pooled_results, strata, ptr


__all__ = ["Pool", "StrataResults", "simulate_strata"]
