"""Randomization rules: allocation probabilities and patient counts, vectorized over trials.

Arrays are (T, K): T simulated trials, K design arms. ``open_`` marks arms that
can receive patients (in the trial and below their cap).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .compiled import CompiledDesign


def _normalize(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``weights`` restricted to ``mask`` and scaled to sum to 1 (equal weights if all are zero)."""
    w = np.where(mask, weights, 0.0)
    total = w.sum(axis=1, keepdims=True)
    equal = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), equal)


def apply_limits(
    probs: np.ndarray, mask: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: np.ndarray
) -> np.ndarray:
    """Clip allocation probabilities to [lower, upper] while keeping their total at ``budget``:
    :func:`apply_limits_vectorized` (the definition), with the bracket and the bisection of rows of
    at most 7 arms done in a compiled kernel (:func:`_limits_kernel`) with the same operations in
    the same order for each row, bit for bit (tests/test_allocation_compiled.py)."""
    n_trials, n_arms = probs.shape
    if n_arms > _MAX_COMPILED_ARMS:
        return apply_limits_vectorized(probs, mask, lower, upper, budget)
    w = np.where(mask, probs, 0.0)
    no_weight = (w.sum(axis=1) <= 0)[:, None]
    w = np.ascontiguousarray(np.where(no_weight & mask, 1.0, w), dtype=float)
    lo = np.ascontiguousarray(np.where(mask, lower, 0.0), dtype=float)
    hi = np.ascontiguousarray(np.where(mask, upper, 0.0), dtype=float)
    # writable and contiguous, whatever the batch's size: a read-only view (a broadcast of one
    # trial) would compile, and cache, a second specialisation of the kernel
    budget = np.require(np.broadcast_to(np.asarray(budget, dtype=float), (n_trials,)), requirements="CW")
    out = np.empty((n_trials, n_arms))
    short = np.zeros(n_trials, dtype=np.bool_)
    _limits_kernel(w, lo, hi, budget, out, short)
    room = mask & (out < hi)
    short &= room.any(axis=1)
    if short.any():
        out[short] = apply_limits(room[short].astype(float), mask[short], out[short], hi[short], budget[short])
    return out


@njit(cache=True, inline="always")
def _clip(x, low, high):
    """``np.clip(x, low, high)`` of one number: numpy's max with the lower limit, then min with the
    upper (a select each, not a branch)."""
    x = x if x > low else low
    return x if x < high else high


@njit(cache=True)
def _clipped_total(w, lo, hi, t, scale, n_arms):
    """Row t of ``np.clip(scale * w, lo, hi).sum(axis=1)``: numpy's clip and its in-order sum of
    fewer than 8 terms."""
    acc = -0.0
    for k in range(n_arms):
        acc += _clip(scale * w[t, k], lo[t, k], hi[t, k])
    return acc


# Rows whose bisections a kernel call runs side by side (:func:`_limits_kernel`).
_LIMITS_TILE = 64


@njit(cache=True)
def _limits_kernel(w, lo, hi, budget, out, short):
    """The bracket and bisection of :func:`apply_limits_vectorized` for each trial (row):
    ``out`` (T, K) the clipped shares at the upper end of the bracket, ``short`` (T,) whether even
    that end leaves the row's total below its budget.

    Every row takes the 60 halvings of :func:`apply_limits_vectorized`, so the rows of a tile of
    ``_LIMITS_TILE`` take them side by side, step by step: each step's clipped totals are formed
    arm by arm over the tile's rows (their shares held arm by arm), a loop without a branch that
    the compiler vectorizes across the rows. Each row's total is still its arms' shares added in
    arm order from -0.0, as in :func:`_clipped_total`, so every row's numbers are those of a
    bisection of that row alone. The bracket (a few doublings at most, a number that differs from
    row to row) is found row by row."""
    n_trials, n_arms = w.shape
    tile = _LIMITS_TILE
    low = np.empty(tile)
    high = np.empty(tile)
    mid = np.empty(tile)
    total = np.empty(tile)
    target = np.empty(tile)
    w_t = np.empty((n_arms, tile))
    lo_t = np.empty((n_arms, tile))
    hi_t = np.empty((n_arms, tile))
    for t0 in range(0, n_trials, tile):
        m = min(tile, n_trials - t0)
        for j in range(m):
            t = t0 + j
            h = 1.0
            for _ in range(60):  # grow until the upper end of the bracket reaches the budget
                if not (_clipped_total(w, lo, hi, t, h, n_arms) < budget[t] - 1e-15):
                    break
                h = h * 2.0
            low[j] = 0.0
            high[j] = h
            target[j] = budget[t]
            for k in range(n_arms):
                w_t[k, j] = w[t, k]
                lo_t[k, j] = lo[t, k]
                hi_t[k, j] = hi[t, k]
        for _ in range(60):
            for j in range(m):
                mid[j] = 0.5 * (low[j] + high[j])
                total[j] = -0.0
            for k in range(n_arms):
                wk, lk, hk = w_t[k], lo_t[k], hi_t[k]
                for j in range(m):
                    total[j] += _clip(mid[j] * wk[j], lk[j], hk[j])
            for j in range(m):
                below = total[j] < target[j]
                low[j] = mid[j] if below else low[j]
                high[j] = high[j] if below else mid[j]
        for j in range(m):
            t = t0 + j
            h = high[j]
            for k in range(n_arms):
                out[t, k] = _clip(h * w[t, k], lo[t, k], hi[t, k])
            short[t] = _clipped_total(w, lo, hi, t, h, n_arms) < budget[t] - 1e-15


def apply_limits_vectorized(
    probs: np.ndarray, mask: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: np.ndarray
) -> np.ndarray:
    """Clip allocation probabilities to [lower, upper] while keeping their total at ``budget``.

    The result is p_k = clip(lambda * probs_k, lower_k, upper_k) over the arms in
    ``mask``, with the scale lambda chosen (by bisection, per trial) so that the
    row sums to ``budget``: arms pushed to a limit stay there and the others
    share the rest in proportion to their unclipped probabilities. Requires
    sum(lower) <= budget <= sum(upper) over the mask. When no scale reaches the
    budget (weights of 0, or too small to scale up), the arms below their upper
    limit share what the others leave equally.
    """
    w = np.where(mask, probs, 0.0)
    no_weight = (w.sum(axis=1) <= 0)[:, None]
    w = np.where(no_weight & mask, 1.0, w)
    lo = np.where(mask, lower, 0.0)
    hi = np.where(mask, upper, 0.0)
    budget = np.asarray(budget, dtype=float)[:, None]

    def total(scale):
        return np.clip(scale * w, lo, hi).sum(axis=1, keepdims=True)

    low = np.zeros_like(budget)
    high = np.ones_like(budget)
    for _ in range(60):  # grow until the upper end of the bracket reaches the budget
        short = total(high) < budget - 1e-15
        if not short.any():
            break
        high = np.where(short, high * 2.0, high)
    for _ in range(60):
        mid = 0.5 * (low + high)
        below = total(mid) < budget
        low = np.where(below, mid, low)
        high = np.where(below, high, mid)
    out = np.clip(high * w, lo, hi)
    room = mask & (out < hi)
    short = (total(high) < budget - 1e-15)[:, 0] & room.any(axis=1)
    if short.any():
        # No scale reaches the budget: the arms with weight hold their maximum and the others have
        # weights of 0 (a P(best) that underflowed) or too small to scale up. Those below their
        # maximum share the rest equally, as if their weights were equal and vanishingly small.
        out[short] = apply_limits_vectorized(
            room[short].astype(float), mask[short], out[short], hi[short], budget[short, 0]
        )
    return out


def clip_renormalise(
    probs: np.ndarray, mask: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: np.ndarray
) -> np.ndarray:
    """Clip allocation probabilities to [lower, upper] once, then rescale them to total ``budget``.

    p_k = budget * clip(probs_k, lower_k, upper_k) / sum_j clip(probs_j, lower_j, upper_j) over the
    arms in ``mask`` (T, K): the one-step restriction (clip, then renormalise). Unlike
    :func:`apply_limits`, the result can end slightly outside the limits (above ``upper`` when
    other arms were raised to their minimum, below ``lower`` when others were cut to their
    maximum). ``budget``: (T,) the rows' totals."""
    clipped = np.where(mask, np.clip(probs, lower, upper), 0.0)
    total = clipped.sum(axis=1, keepdims=True)
    equal = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    shares = np.where(total > 0, clipped / np.where(total > 0, total, 1.0), equal)
    return shares * np.asarray(budget, dtype=float)[:, None]


def hu_zhang(target: np.ndarray, proportions: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """The doubly-adaptive biased coin of Hu and Zhang (2004, Ann Stat 32:268), vectorized over trials.

    g_k = rho_k (rho_k / x_k)^gamma / sum_j rho_j (rho_j / x_j)^gamma over the arms in ``mask``
    (T, K), with rho = ``target`` (the allocation probabilities the rule aims at) and x =
    ``proportions`` (the share of the patients so far that each arm received, among the arms in
    ``mask``). An arm with a target above 0 that has had no patient yet (x_k = 0, where the formula
    is infinite) takes everything, shared among such arms in proportion to their targets, as
    g(0, rho) = 1 in Hu and Zhang's two-arm form. gamma = 0 returns the target. Rows whose mask
    holds no patient yet return the target.
    """
    rho = np.where(mask, target, 0.0)
    x = np.where(mask, proportions, 0.0)
    starved = mask & (rho > 0) & (x <= 0)
    ratio = np.divide(rho, x, out=np.zeros_like(rho), where=(rho > 0) & (x > 0))
    # in logs, so that large gamma does not overflow: log g_k = log rho_k + gamma log(rho_k / x_k) + const
    with np.errstate(divide="ignore"):
        log_w = np.where(
            (rho > 0) & (x > 0),
            np.log(np.where(rho > 0, rho, 1.0)) + gamma * np.log(np.where(ratio > 0, ratio, 1.0)),
            -np.inf,
        )
    top = log_w.max(axis=1, keepdims=True)
    w = np.exp(log_w - np.where(np.isfinite(top), top, 0.0))
    out = _normalize(w, mask & (rho > 0))
    any_starved = starved.any(axis=1, keepdims=True)
    out = np.where(any_starved, _normalize(rho, starved), out)
    return np.where((rho.sum(axis=1, keepdims=True) > 0), out, rho)


def adaptive_basis(
    design: CompiledDesign, pb: np.ndarray, a: np.ndarray, b: np.ndarray, in_trial: np.ndarray
) -> np.ndarray:
    """(T, K) the quantity adaptive allocation raises to the power c, for arms ``in_trial``.

    ``prob_best``: P(arm best) among the arms in the trial (``pb`` from the decisions, recomputed
    where a row is NaN because the arms changed after it was computed); ``posterior_mean``: the
    posterior mean a / (a + b) on the better-outcome scale (``a``, ``b``: (T, K) oriented posterior
    parameters), as in BATTLE (Kim et al. 2011, Cancer Discov 1:44)."""
    if design.basis == "posterior_mean":
        return np.where(in_trial, a / (a + b), 0.0)
    pb = pb.copy()
    stale = np.isnan(pb).any(axis=1)
    if stale.any():
        from .posterior import prob_best

        pb[stale] = prob_best(a[stale], b[stale], in_trial[stale])
    return pb


def softening_power(design: CompiledDesign, look: int) -> float:
    """The exponent c of P(best)^c used after look ``look``."""
    if design.softening_thall_wathen:
        return design.randomized_n[look] / (2.0 * design.max_n)
    return float(design.softening[look])


def allocation_probabilities(
    design: CompiledDesign,
    look: int,
    prob_best: np.ndarray | None,
    in_trial: np.ndarray,
    open_: np.ndarray,
    control: np.ndarray,
    randomized: np.ndarray | None = None,
    followed: np.ndarray | None = None,
) -> np.ndarray:
    """Allocation probabilities for the patients randomized after look ``look`` (-1: before the first look).

    prob_best: (T, K) the adaptive basis (P(best) among arms in the trial, or the posterior mean;
    see :func:`adaptive_basis`), needed for adaptive designs after burn-in.
    in_trial: arms not dropped; open_: arms that can still take patients; control: (T,) control index or -1.
    randomized: (T, K) patients randomized to each arm so far, for the biased coin.
    followed: (T,) patients with an outcome so far in each trial, where it varies between trials
    (random outcome delays); otherwise the design's ``followed_n`` decides the burn-in.
    """
    adaptive = design.adaptive and look >= 0 and prob_best is not None
    if adaptive and followed is None:
        adaptive = bool(design.followed_n[look] >= design.burn_in_n)
    power = softening_power(design, look) if adaptive else 0.0
    probs = allocate(design, adaptive, power, prob_best, in_trial, open_, control)
    if adaptive and followed is not None:
        burn_in = np.asarray(followed) < design.burn_in_n
        if burn_in.any():
            equal = allocate(design, False, 0.0, None, in_trial, open_, control)
            probs = np.where(burn_in[:, None], equal, probs)
    if not np.isnan(getattr(design, "coin_gamma", np.nan)) and look >= 0:  # before any patient: the target
        if randomized is None:
            raise ValueError("the biased coin needs the patients randomized to each arm so far (randomized)")
        counts = np.where(open_, randomized, 0).astype(float)
        total = counts.sum(axis=1, keepdims=True)
        x = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
        probs = np.where((total > 0), hu_zhang(probs, x, open_, design.coin_gamma), probs)
    return probs


def allocate(
    design,
    adaptive: bool,
    power: float,
    weights_in: np.ndarray | None,
    in_trial: np.ndarray,
    open_: np.ndarray,
    control: np.ndarray,
) -> np.ndarray:
    """Allocation probabilities from the non-control arms' weights: ``weights_in ** power`` when
    ``adaptive`` (P(best) in a trial with looks, P(better than control) in a platform), the design's
    ratios otherwise; then the control's share by the design's rule and the allocation limits.
    ``design`` needs control_rule, control_share_by_k, ratios, has_limits, rescale_limits,
    limits_rule, min_allocation and max_allocation.

    Without allocation limits (and with at most 7 arms), the shares are computed trial by trial in
    a compiled kernel (:func:`_shares_kernel`) with the same operations in the same order as the
    vectorized definition, :func:`allocate_vectorized`, which it is tested against bit for bit."""
    n_trials, n_arms = open_.shape
    if not (adaptive and design.has_limits) and n_arms <= _MAX_COMPILED_ARMS:
        has_control = design.control_rule is not None
        others = open_.copy()
        if has_control:
            others[np.arange(n_trials), control] = False
        if adaptive:
            weights = np.power(np.where(others, weights_in, 0.0), power)
        else:
            weights = np.broadcast_to(np.asarray(design.ratios, dtype=float), open_.shape)
        out = np.empty(open_.shape)
        _shares_kernel(
            # writable and contiguous: the fixed ratios broadcast to one trial are a read-only
            # contiguous view, which would compile (and cache) a second specialisation
            np.require(weights, dtype=float, requirements="CW"),
            others,
            np.ascontiguousarray(open_, dtype=bool),
            np.ascontiguousarray(control, dtype=np.int64) if has_control else np.zeros(n_trials, dtype=np.int64),
            _CONTROL_RULES[design.control_rule],
            np.asarray(design.control_share_by_k, dtype=float) if design.control_rule == "fixed" else np.zeros(1),
            out,
        )
        return out
    return allocate_vectorized(design, adaptive, power, weights_in, in_trial, open_, control)


# the kernel's codes for the control rules
_CONTROL_RULES = {None: 0, "fixed": 1, "sqrt_k": 2, "match_best": 3}
# numpy sums a row of fewer than 8 numbers in order (its pairwise sum takes a plain loop below 8
# terms), which the kernel repeats; wider rows go the vectorized way
_MAX_COMPILED_ARMS = 7


@njit(cache=True)
def _row_sum(v, n):
    """numpy's sum of v[:n] along a row for n < 8: ((-0.0 + v[0]) + v[1]) + ... in order."""
    acc = -0.0
    for i in range(n):
        acc += v[i]
    return acc


@njit(cache=True)
def _shares_kernel(weights, others, open_, control, rule, share_by_k, out):
    """:func:`allocate_vectorized` without limits, one trial (row) at a time into ``out`` (T, K):
    the non-control arms' ``weights`` normalized over ``others`` (equal shares if they sum to 0),
    the control's share by ``rule`` (0: no control rule, 1: fixed ``share_by_k``, 2: sqrt_k,
    3: match_best), zero for arms not ``open_``, normalized to 1."""
    n_trials, n_arms = open_.shape
    w = np.empty(n_arms)
    base = np.empty(n_arms)
    probs = np.empty(n_arms)
    for t in range(n_trials):
        n_other = 0
        for k in range(n_arms):
            w[k] = weights[t, k] if others[t, k] else 0.0
            n_other += others[t, k]
        total = _row_sum(w, n_arms)
        for k in range(n_arms):
            equal = (1.0 if others[t, k] else 0.0) / max(n_other, 1)
            base[k] = w[k] / total if total > 0 else equal
        if rule == 0:
            for k in range(n_arms):
                probs[k] = base[k]
        else:
            c = control[t]
            if c < 0:  # as numpy indexes
                c += n_arms
            has_ctrl = open_[t, c]
            if rule == 1:
                share = share_by_k[n_other]
            elif rule == 2:
                root = math.sqrt(n_other)
                share = root / max(root + n_other, 1e-300) if n_other > 0 else 1.0
            else:
                top = base[0]
                for k in range(1, n_arms):
                    top = max(top, base[k])
                share = top / (1.0 + top) if n_other > 0 else 1.0
            share = share if has_ctrl else 0.0
            if n_other == 0:
                share = 1.0 if has_ctrl else 0.0
            budget = 1.0 - share
            for k in range(n_arms):
                probs[k] = base[k] * budget + (1.0 if (k == c and has_ctrl) else 0.0) * share
        for k in range(n_arms):
            probs[k] = probs[k] if open_[t, k] else 0.0
        total = _row_sum(probs, n_arms)
        for k in range(n_arms):
            out[t, k] = probs[k] / total if total > 0 else 0.0


def allocate_vectorized(
    design,
    adaptive: bool,
    power: float,
    weights_in: np.ndarray | None,
    in_trial: np.ndarray,
    open_: np.ndarray,
    control: np.ndarray,
) -> np.ndarray:
    """:func:`allocate` over all trials at once (the definition; the only way with allocation
    limits)."""
    n_trials, n_arms = open_.shape
    rows = np.arange(n_trials)
    has_control = design.control_rule is not None
    ctrl_mask = np.zeros_like(open_)
    if has_control:
        ctrl_mask[rows, control] = True
        ctrl_mask &= open_
    others = open_ & ~ctrl_mask

    if adaptive:
        weights = np.power(np.where(others, weights_in, 0.0), power)
    else:
        weights = np.broadcast_to(design.ratios, open_.shape)
    base = _normalize(weights, others)  # shares of the non-control arms, summing to 1

    if not has_control:
        budget = np.ones(n_trials)
        probs = base
    else:
        n_other = others.sum(axis=1)
        if design.control_rule == "fixed":
            share = design.control_share_by_k[n_other]
        elif design.control_rule == "sqrt_k":
            root = np.sqrt(n_other)
            share = np.where(n_other > 0, root / np.maximum(root + n_other, 1e-300), 1.0)
        else:  # match_best: control gets the share of the best-allocated other arm
            top = base.max(axis=1)
            share = np.where(n_other > 0, top / (1.0 + top), 1.0)
        share = np.where(ctrl_mask.any(axis=1), share, 0.0)
        share = np.where(n_other == 0, ctrl_mask.any(axis=1).astype(float), share)
        budget = 1.0 - share
        probs = base * budget[:, None] + ctrl_mask * share[:, None]

    if adaptive and design.has_limits:
        factor = 1.0
        if design.rescale_limits:
            factor = n_arms / np.maximum(in_trial.sum(axis=1), 1)
            factor = np.asarray(factor, dtype=float)[:, None]
        lower = np.minimum(design.min_allocation * factor, 1.0)
        upper = np.minimum(design.max_allocation * factor, 1.0)
        # limits that cannot hold with fewer open arms are relaxed rather than violated
        lower_total = np.where(others, lower, 0.0).sum(axis=1)
        lower = np.where((lower_total > budget + 1e-12)[:, None], 0.0, lower)
        upper_total = np.where(others, upper, 0.0).sum(axis=1)
        upper = np.where((upper_total < budget - 1e-12)[:, None], 1.0, upper)
        if design.limits_rule == "clip_renormalise":
            limited = clip_renormalise(probs, others, lower, upper, budget)
        else:
            limited = apply_limits(probs, others, lower, upper, budget)
        probs = np.where(others, limited, probs)
    probs = np.where(open_, probs, 0.0)
    total = probs.sum(axis=1, keepdims=True)
    return np.divide(probs, total, out=np.zeros_like(probs), where=total > 0)


def block_counts(u0: np.ndarray, n_patients, probs: np.ndarray, headroom: np.ndarray) -> np.ndarray:
    """Patients per arm of a batch under block randomization: ``(R, K)`` counts.

    Every arm gets the floor or the ceiling of ``n * p`` by systematic sampling
    with the row's offset ``u0`` (exact expected counts, the closest a permuted
    block comes for arbitrary probabilities). Counts above an arm's ``headroom``
    (cap minus patients so far) are shared among the arms with room left in
    proportion to their probabilities, by systematic sampling with the same
    offset. ``n_patients``: one number, or one per row; a row of zero probabilities
    gets no patients.
    """
    n_rows, n_arms = probs.shape
    n = np.broadcast_to(np.asarray(n_patients, dtype=np.int64), (n_rows,))
    n = np.where(probs.sum(axis=1) > 0, n, 0)
    counts = _systematic(u0, n, probs)
    for _ in range(n_arms):
        excess = np.maximum(counts - headroom, 0)
        if not excess.any():
            break
        counts -= excess
        p = np.where(counts >= headroom, 0.0, probs)
        extra = np.where(p.sum(axis=1) > 0, excess.sum(axis=1), 0)
        counts += _systematic(u0, extra, p)
    return counts


def _systematic(u0: np.ndarray, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    total = probs.sum(axis=1, keepdims=True)
    p = np.divide(probs, total, out=np.zeros_like(probs, dtype=float), where=total > 0)
    cum = np.cumsum(p, axis=1) * n[:, None]
    cum[:, -1] = n
    edges = np.floor(np.concatenate([np.zeros((p.shape[0], 1)), cum], axis=1) + u0[:, None])
    return np.diff(edges, axis=1).astype(np.int64)


def deal(counts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The arm of each patient of a batch, in order of arrival: ``(R, B)`` int8 from the arms'
    ``counts`` (R, K) and one uniform per patient ``u`` (R, B).

    The counts are dealt to the first ``counts.sum()`` patients in random order
    (every arrangement equally likely); patients beyond them, when caps leave a
    batch short, are not randomized (-1).
    """
    return _deal(counts.astype(np.int64), np.ascontiguousarray(u))


@njit(cache=True)
def draw_arms(u, n, probs, headroom):
    """Simple randomization of a batch: patient ``j < n[r]`` of row ``r`` gets the arm found by
    inverting its uniform ``u[r, j]`` over the probabilities of the arms with room left
    (``headroom``: places below the cap); an arm that fills closes at once and the others
    share its probability. Patients no arm can take, and those beyond ``n[r]``, get -1.
    Returns ``(R, B)`` int8 arms.

    The running sums of the open arms' probabilities change only when an arm fills, so they are
    added up once per stretch of patients between two such events (the same sums, in the same
    order, as :func:`draw_arms_reference` adds them for every patient), and each patient's arm is
    the first whose running sum exceeds the patient's point (the last open arm if none does)."""
    n_rows, width = u.shape
    n_arms = probs.shape[1]
    out = np.full((n_rows, width), -1, dtype=np.int8)
    room = np.empty(n_arms, dtype=np.int64)
    cum = np.empty(n_arms)  # running sums over the open arms with a positive probability
    arm = np.empty(n_arms, dtype=np.int64)  # those arms, in order
    for r in range(n_rows):
        for k in range(n_arms):
            room[k] = headroom[r, k]
        j = 0
        last = min(n[r], width)
        while j < last:
            total = 0.0
            for k in range(n_arms):
                if room[k] > 0:
                    total += probs[r, k]
            if total <= 0.0:
                break
            m = 0
            acc = 0.0
            for k in range(n_arms):
                if room[k] > 0 and probs[r, k] > 0.0:
                    acc += probs[r, k]
                    cum[m] = acc
                    arm[m] = k
                    m += 1
            while j < last:
                x = u[r, j] * total
                i = 0
                for q in range(m - 1):  # the sums increase: those at or below x come first
                    i += x >= cum[q]
                pick = arm[i]
                out[r, j] = pick
                room[pick] -= 1
                j += 1
                if room[pick] == 0:
                    break  # an arm filled: the others share its probability from the next patient
    return out


@njit(cache=True)
def draw_arms_reference(u, n, probs, headroom):
    """:func:`draw_arms` patient by patient: the open arms' probabilities added up anew for each
    patient and the arm found by walking the running sum (the definition, for tests)."""
    n_rows, width = u.shape
    n_arms = probs.shape[1]
    out = np.full((n_rows, width), -1, dtype=np.int8)
    room = np.empty(n_arms, dtype=np.int64)
    for r in range(n_rows):
        for k in range(n_arms):
            room[k] = headroom[r, k]
        for j in range(min(n[r], width)):
            total = 0.0
            for k in range(n_arms):
                if room[k] > 0:
                    total += probs[r, k]
            if total <= 0.0:
                break
            x = u[r, j] * total
            acc = 0.0
            pick = -1
            for k in range(n_arms):
                if room[k] > 0 and probs[r, k] > 0.0:
                    acc += probs[r, k]
                    pick = k
                    if x < acc:
                        break
            out[r, j] = pick
            room[pick] -= 1
    return out


@njit(cache=True)
def _deal(counts, u):
    n_rows, n_arms = counts.shape
    out = np.full(u.shape, -1, dtype=np.int8)
    remaining = np.empty(n_arms, dtype=np.int64)
    for r in range(n_rows):
        total = 0
        for k in range(n_arms):
            remaining[k] = counts[r, k]
            total += counts[r, k]
        for j in range(min(total, u.shape[1])):
            x = u[r, j] * total
            k = 0
            acc = remaining[0]
            while (x >= acc or remaining[k] == 0) and k < n_arms - 1:
                k += 1
                acc += remaining[k]
            out[r, j] = k
            remaining[k] -= 1
            total -= 1
    return out


@njit(cache=True)
def tally(arms, outcomes, arm_treatment, n_arms):
    """Patients and events per arm: ``arms`` (R, m) int8 (-1: not randomized), ``outcomes`` (R, m, T)
    bool potential outcomes by treatment, ``arm_treatment`` (K,) column of each arm's treatment."""
    n_rows, m = arms.shape
    n = np.zeros((n_rows, n_arms), dtype=np.int32)
    y = np.zeros((n_rows, n_arms), dtype=np.int32)
    for r in range(n_rows):
        for j in range(m):
            k = arms[r, j]
            if k >= 0:
                n[r, k] += 1
                if outcomes[r, j, arm_treatment[k]]:
                    y[r, k] += 1
    return n, y
