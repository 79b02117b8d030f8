"""Decision rules at an interim analysis, vectorized over trials.

The rules follow the vocabulary of adaptive-trial software such as adaptr:

Without a common control, arms are compared by P(best) among the arms still in
the trial. Arms with P(best) below the inferiority threshold are dropped (and
P(best) recomputed until none is); an arm with P(best) above the superiority
threshold wins and stops the trial; if equivalence is assessed, the trial stops
when P(max - min < margin) over the remaining arms exceeds its threshold.

With a common control, each other arm is compared with the control of the day
by P(arm better than control). Below the inferiority threshold: dropped. Above
the superiority threshold: the arm becomes the new control and the old control
is dropped (when several cross, the one most likely better than the control
wins), and the comparisons are repeated against the new control at the same
look. If no arm crossed, arms equivalent to the control (P(|difference| <
margin) above its threshold) and futile arms (P(better by at least delta)
below its threshold) are dropped; either check can be limited to the first
control. The trial stops when one arm is left; that arm is declared superior
unless the others left for equivalence or futility.

All comparisons are on the scale where higher is better (see
:func:`platform_sim.posterior.oriented`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .compiled import CompiledDesign
from .posterior import prob_all_within, prob_best, prob_best_and_vs_control, prob_greater
from .posterior.beta import best_row, greater_one, grid_scratch, lgamma, vs_control_row
from .posterior.hierarchical import _beta_cdf_sf
from .results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    STOP_ARMS_DROPPED,
    STOP_EQUIVALENCE,
    STOP_SUPERIORITY,
    SUPERIOR,
)

CONTINUE = -1


def _enabled(value: float) -> bool:
    return not math.isnan(value)


def futility_at(design: CompiledDesign, look: int) -> bool:
    """Whether the futility rule is assessed at look ``look``: it is enabled (a threshold) and not
    switched off there (``decisions.futility.looks``)."""
    return _enabled(design.futility_threshold) and (design.futility_on is None or bool(design.futility_on[look]))


def decide(
    design: CompiledDesign,
    look: int,
    a: np.ndarray,
    b: np.ndarray,
    status: np.ndarray,
    status_look: np.ndarray,
    declared: np.ndarray,
    control: np.ndarray,
    control_changed: np.ndarray,
    refresh: bool = False,
    need_pb: bool = True,
) -> np.ndarray:
    """Apply the decision rules of look ``look`` to T trials, updating the state arrays in place.

    a, b: (T, K) posterior parameters on the higher-is-better scale.
    status, status_look, declared: (T, K) arm state; control, control_changed: (T,).
    Returns (T,) stop codes (``CONTINUE``, -1, for trials that go on) and (T, K)
    P(best) among the arms still in the trial after the decisions (rows of NaN
    where it was not computed for the final set of arms). ``refresh``: a caller that needs
    P(best) of the trials that go on asks for it; with a common control, the rows whose arms
    changed are then recomputed (by :func:`prob_best`'s grid)
    instead of left NaN. ``need_pb=False`` (with a common control, and without ``refresh``): the
    caller does not read P(best), which is then not computed (all NaN); the comparisons with the
    control, and so the decisions, are the same bit for bit.
    """
    if design.control < 0:
        return _decide_no_control(design, look, a, b, status, status_look, declared)
    return _decide_with_control_compiled(
        design, look, a, b, status, status_look, declared, control, control_changed, refresh, need_pb
    )


def _decide_no_control(design, look, a, b, status, status_look, declared):
    n_trials, n_arms = status.shape
    rows_all = np.arange(n_trials)
    stop = np.full(n_trials, CONTINUE, dtype=np.int8)
    in_trial = status == ACTIVE
    pb = prob_best(a, b, in_trial)
    inf = design.inferiority[look]
    if _enabled(inf):
        for _ in range(n_arms - 1):
            inferior = in_trial & (pb < inf)
            rows = inferior.any(axis=1)
            if not rows.any():
                break
            status[inferior] = INFERIOR
            status_look[inferior] = look
            in_trial &= ~inferior
            pb[rows] = prob_best(a[rows], b[rows], in_trial[rows])
    sup = design.superiority[look]
    if _enabled(sup):
        best = pb.argmax(axis=1)
        win = pb[rows_all, best] > sup
        status[win, best[win]] = SUPERIOR
        status_look[win, best[win]] = look
        declared[win, best[win]] = True
        stop[win] = STOP_SUPERIORITY
    lone = (stop == CONTINUE) & (in_trial.sum(axis=1) <= 1)
    stop[lone] = STOP_ARMS_DROPPED
    if _enabled(design.equivalence_probability):
        rows = np.flatnonzero(stop == CONTINUE)
        if rows.size:
            p_eq = prob_all_within(a[rows], b[rows], in_trial[rows], design.equivalence_margin)
            eq_rows = rows[p_eq > design.equivalence_probability]
            mask = np.zeros_like(in_trial)
            mask[eq_rows] = in_trial[eq_rows]
            status[mask] = EQUIVALENT
            status_look[mask] = look
            stop[eq_rows] = STOP_EQUIVALENCE
    return stop, pb


def _decide_with_control(design, look, a, b, status, status_look, declared, control, control_changed):
    n_trials, n_arms = status.shape
    arm_index = np.arange(n_arms)
    stop = np.full(n_trials, CONTINUE, dtype=np.int8)
    in_trial = (status == ACTIVE) | (status == CONTROL)
    equivalence_stop = np.zeros(n_trials, dtype=bool)
    futility_stop = np.zeros(n_trials, dtype=bool)
    sup, inf = design.superiority[look], design.inferiority[look]
    check_eq = _enabled(design.equivalence_probability)
    check_fut = futility_at(design, look)

    pb = np.full(status.shape, np.nan)
    pending = in_trial.sum(axis=1) > 1
    for _ in range(n_arms):
        rows = np.flatnonzero(pending)
        if rows.size == 0:
            break
        pending[:] = False
        c = control[rows]
        a_r, b_r = a[rows], b[rows]
        a_c, b_c = a_r[np.arange(rows.size), c][:, None], b_r[np.arange(rows.size), c][:, None]
        comparators = in_trial[rows] & (arm_index[None, :] != c[:, None])
        eq_rows = ~control_changed[rows] if design.equivalence_only_first else np.ones(rows.size, dtype=bool)
        if check_eq and eq_rows.any():
            pb_r, p_better, p_within = prob_best_and_vs_control(
                a_r, b_r, in_trial[rows], c, margin=design.equivalence_margin, within_rows=eq_rows
            )
        else:
            pb_r, p_better = prob_best_and_vs_control(a_r, b_r, in_trial[rows], c)
        before = in_trial[rows].copy()
        if _enabled(inf):
            inferior = comparators & (p_better < inf)
            _set(status, status_look, rows, inferior, INFERIOR, look)
            comparators &= ~inferior
        winners = comparators & (p_better > sup) if _enabled(sup) else np.zeros_like(comparators)
        new_control = rows[winners.any(axis=1)]
        if new_control.size:
            pick = np.where(winners, p_better, -1.0).argmax(axis=1)[winners.any(axis=1)]
            old = control[new_control]
            status[new_control, old] = INFERIOR
            status_look[new_control, old] = look
            status[new_control, pick] = CONTROL
            status_look[new_control, pick] = look
            declared[new_control, pick] = True
            control[new_control] = pick
            control_changed[new_control] = True
            in_trial[new_control, old] = False
            pending[new_control] = in_trial[new_control].sum(axis=1) > 1
        quiet = ~winners.any(axis=1)
        if check_eq and quiet.any() and eq_rows.any():
            eligible = quiet & eq_rows
            sel = np.flatnonzero(eligible)
            if sel.size:
                equivalent = np.zeros_like(comparators)
                equivalent[sel] = comparators[sel] & (p_within[sel] > design.equivalence_probability)
                _set(status, status_look, rows, equivalent, EQUIVALENT, look)
                comparators &= ~equivalent
                equivalence_stop[rows] |= equivalent.any(axis=1) & ~comparators.any(axis=1)
        if check_fut and quiet.any():
            eligible = quiet & (~control_changed[rows] if design.futility_only_first else True)
            sel = np.flatnonzero(eligible & comparators.any(axis=1))
            if sel.size:
                futile = np.zeros_like(comparators)
                futile[sel] = _futile(
                    comparators[sel],
                    a_r[sel],
                    b_r[sel],
                    a_c[sel],
                    b_c[sel],
                    p_better[sel],
                    design.futility_delta,
                    design.futility_threshold,
                )
                _set(status, status_look, rows, futile, FUTILE, look)
                comparators &= ~futile
                futility_stop[rows] |= futile.any(axis=1) & ~comparators.any(axis=1)
        # the in-trial set of the rows checked this round, after the round's decisions
        ctrl_mask = np.zeros_like(comparators)
        ctrl_mask[np.arange(rows.size), control[rows]] = True
        in_trial[rows] = comparators | ctrl_mask
        unchanged = (in_trial[rows] == before).all(axis=1)
        pb[rows] = np.where(unchanged[:, None], pb_r, np.nan)

    lone = in_trial.sum(axis=1) == 1
    last = in_trial.argmax(axis=1)
    quiet_end = lone & (equivalence_stop | futility_stop)
    stop[quiet_end & equivalence_stop] = STOP_EQUIVALENCE
    stop[quiet_end & ~equivalence_stop] = STOP_ARMS_DROPPED
    winner = lone & ~quiet_end
    status[winner, last[winner]] = SUPERIOR
    status_look[winner, last[winner]] = look
    stop[winner] = np.where(declared[winner].any(axis=1), STOP_SUPERIORITY, STOP_ARMS_DROPPED)
    return stop, pb


def _decide_with_control_compiled(
    design,
    look,
    a,
    b,
    status,
    status_look,
    declared,
    control,
    control_changed,
    refresh=False,
    need_pb=True,
    bound_rounds=True,
):
    """:func:`_decide_with_control` trial by trial in one compiled kernel
    (:func:`_with_control_kernel`): the same decisions and the same P(best) bit for bit
    (tests/test_rules_compiled.py), without the Python work of each round of comparisons.
    ``refresh``: rows that go on and would be NaN get P(best) among the arms left, as
    :func:`prob_best` gives it. ``need_pb=False``: P(best) is not computed (NaN), only the
    comparisons with the control that the rules read
    (:func:`~platform_sim.posterior.beta.vs_control_row`), and a round whose every answer bounds
    settle (:func:`_round_by_bounds`) needs no grid. With the bounds on (``bound_rounds``, the
    default), a round that checks equivalence fills the control's shifted copies only where the
    arms' panels cannot show every P(|arm - control| < margin) below the threshold (the ``below``
    of :func:`~platform_sim.posterior.beta.best_row`), with or without P(best);
    ``bound_rounds=False`` builds the whole grid of every round (the reference those answers are
    tested against)."""
    if refresh and not need_pb:
        raise ValueError("refresh recomputes P(best): it needs need_pb")
    n_trials, n_arms = status.shape
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    check_eq = _enabled(design.equivalence_probability)
    margin = float(design.equivalence_margin) if check_eq else 0.0
    stop = np.full(n_trials, CONTINUE, dtype=np.int8)
    pb = np.full((n_trials, n_arms), np.nan)
    n_comp = n_arms + 2 if margin > 0.0 else n_arms
    sup, inf = float(design.superiority[look]), float(design.inferiority[look])
    check_fut = futility_at(design, look)
    _with_control_kernel(
        look,
        a,
        b,
        status,
        status_look,
        declared,
        control,
        control_changed,
        sup,
        inf,
        check_eq,
        margin,
        float(design.equivalence_probability) if check_eq else 0.0,
        bool(design.equivalence_only_first),
        check_fut,
        bool(design.futility_only_first),
        float(design.futility_delta) if check_fut else 0.0,
        float(design.futility_threshold) if check_fut else 0.0,
        refresh,
        need_pb,
        bound_rounds,
        stop,
        pb,
        *grid_scratch(n_comp),
    )
    return stop, pb


_INV_E = math.exp(-1.0)


@njit(cache=True)
def _log_concave_bounds(a, b, a_c, b_c, x):
    """Bounds (lower, upper) on P(X_k - X_c > x) that need no quadrature, for X_k ~ Beta(a, b) and
    X_c ~ Beta(a_c, b_c) independent with every shape at least 1. Their densities are then
    log-concave, and so is that of D = X_k - X_c (Prekopa's theorem: convolutions of log-concave
    densities are log-concave), which puts at least 1/e of D's mass on each side of its mean mu
    (Grunbaum's inequality in one dimension). With M a bound on D's density
    (:func:`_difference_density_bound`), P(D > x) >= 1/e - (x - mu) M for x > mu (and >= 1/e for
    x <= mu), P(D > x) <= 1 - 1/e + (mu - x) M for x < mu (and <= 1 - 1/e for x >= mu); Cantelli's
    inequality bounds the tail on the side away from the mean, from mu and the variance v."""
    return _log_concave_bounds_m(a, b, a_c, b_c, x, _difference_density_bound(a, b, a_c, b_c))


@njit(cache=True)
def _log_concave_bounds_m(a, b, a_c, b_c, x, m):
    """:func:`_log_concave_bounds` with the bound m on D's density given (it does not depend on x)."""
    n, n_c = a + b, a_c + b_c
    mu = a / n - a_c / n_c
    var = a * b / (n * n * (n + 1.0)) + a_c * b_c / (n_c * n_c * (n_c + 1.0))
    t = mu - x
    if t > 0.0:
        lower = max(_INV_E, 1.0 - var / (var + t * t))
        upper = 1.0 - _INV_E + t * m
    else:
        lower = _INV_E + t * m
        upper = min(1.0 - _INV_E, var / (var + t * t)) if t < 0.0 else 1.0 - _INV_E
    return lower, upper


# A round whose comparisons with the control bounds settle, but for the futility of at most this many
# comparators, gets a grid of one arm and the control for each of those (that of prob_greater,
# :func:`_futile_one`'s last resort) instead of the grid of all its arms: measured on
# hierarchical_borrowing, a pair's grid costs about 2.2 us and the grid of five arms 5.5 us, and
# the decisions cost 154, 142, 136 and 141 us per trial with at most 1, 2, 3 and 4 pairs.
_OPEN_PAIRS = 3


@njit(cache=True)
def _log_beta(a, b):
    return lgamma(a) + lgamma(b) - lgamma(a + b)


@njit(cache=True)
def _product_bounds(a, b, log_b, a_c, b_c, log_b_c, x):
    """Bounds (lower, upper) on P(X_k - X_c > x) from two incomplete beta functions, for X_k ~ Beta(a, b)
    and X_c ~ Beta(a_c, b_c) independent (log_b, log_b_c: log B of each). For any q, X_k > q + x with
    X_c <= q implies X_k - X_c > x, and X_k <= q + x with X_c > q implies X_k - X_c <= x, so
    S_k(q + x) F_c(q) <= P(X_k - X_c > x) <= 1 - F_k(q + x) S_c(q). q is where q + x and q lie as many
    of their posterior's standard deviations from its mean, on either side."""
    n, n_c = a + b, a_c + b_c
    sd = math.sqrt(a * b / (n * n * (n + 1.0)))
    sd_c = math.sqrt(a_c * b_c / (n_c * n_c * (n_c + 1.0)))
    q = ((a / n - x) * sd_c + (a_c / n_c) * sd) / (sd + sd_c)
    f_k, s_k = _beta_cdf_sf(a, b, log_b, q + x)
    f_c, s_c = _beta_cdf_sf(a_c, b_c, log_b_c, q)
    return s_k * f_c, 1.0 - f_k * s_c


@njit(cache=True)
def _tail_bounds(a, b, a_c, b_c, x):
    """Bounds (lower, upper) on P(X_k - X_c > x) from the tail of D = X_k - X_c on the side of x away
    from its mean: Cantelli's inequality, and D's sub-Gaussian tail (a Beta(a, b) is sub-Gaussian with
    variance proxy 1/(4 (a + b + 1)), Marchal & Arbel 2017, and so D with the sum of its terms')."""
    n, n_c = a + b, a_c + b_c
    t = a / n - a_c / n_c - x
    var = a * b / (n * n * (n + 1.0)) + a_c * b_c / (n_c * n_c * (n_c + 1.0))
    proxy = 0.25 / (n + 1.0) + 0.25 / (n_c + 1.0)
    tail = min(var / (var + t * t), math.exp(-t * t / (2.0 * proxy)))
    return (1.0 - tail if t > 0 else 0.0), (tail if t < 0 else 1.0)


@njit(cache=True)
def _cheap_bounds(a, b, a_c, b_c, x):
    """The tighter of :func:`_log_concave_bounds` (which needs every shape at least 1) and
    :func:`_tail_bounds` (any shapes) on P(X_k - X_c > x)."""
    m = _difference_density_bound(a, b, a_c, b_c) if min(min(a, b), min(a_c, b_c)) >= 1.0 else np.nan
    return _cheap_bounds_m(a, b, a_c, b_c, x, m)


@njit(cache=True)
def _cheap_bounds_m(a, b, a_c, b_c, x, m):
    """:func:`_cheap_bounds` with the bound m on D's density given (read only when every shape is at
    least 1): a round computes it once per comparator, for the comparisons at 0 and at the futility
    delta, from the control's parts computed once (:func:`_density_bound`)."""
    low, up = _tail_bounds(a, b, a_c, b_c, x)
    if min(min(a, b), min(a_c, b_c)) < 1.0:
        return low, up
    lower, upper = _log_concave_bounds_m(a, b, a_c, b_c, x, m)
    return max(lower, low), min(upper, up)


# The smallest shape of a posterior whose comparisons a bound may settle: the quadrature of
# prob_greater is promised to 1e-6 from 1/2 on (tests/test_posterior.py), well within the margin a
# bound needs (``_BOUND_GUARD``), so that the answers are the quadrature's; below 1/2 it is not.
_MIN_BOUND_SHAPE = 0.5


@njit(cache=True)
def _settled(lower, upper, check_inf, inf, check_sup, sup):
    """Whether P(X_k > X_c) in [lower, upper] is certainly neither below ``inf`` nor above ``sup``
    (each by twice the quadrature error allowed for)."""
    return not (check_inf and not lower > inf + 2 * _BOUND_GUARD) and not (
        check_sup and not upper < sup - 2 * _BOUND_GUARD
    )


@njit(cache=True)
def _round_by_bounds(
    t,
    a,
    b,
    in_trial,
    c,
    check_inf,
    inf,
    check_sup,
    sup,
    fut_now,
    fut_delta,
    fut_threshold,
    futile,
    undecided,
    pair,
    scratch,
):
    """Whether a round of the rules with a common control is settled without the grid of its arms:
    every comparator certainly neither inferior nor superior and, when futility is judged in this
    round, futile[k] set, each bound clearing its threshold by twice the quadrature error allowed for
    (``_BOUND_GUARD``), so that the quadrature's answers are the same. The bounds: those of
    :func:`_cheap_bounds`, then where they leave an answer open those of :func:`_product_bounds`; the futility of up to ``_OPEN_PAIRS`` comparators left open is then
    decided on their pair's grid, as :func:`_futile_one` would. Only when every posterior of the
    round has shapes of at least ``_MIN_BOUND_SHAPE``. ``undecided`` (K,): scratch."""
    n_arms = a.shape[1]
    for k in range(n_arms):
        if not in_trial[t, k]:
            continue
        if a[t, k] < _MIN_BOUND_SHAPE or b[t, k] < _MIN_BOUND_SHAPE:
            return False
    a_c, b_c = a[t, c], b[t, c]
    log_b_c = _log_beta(a_c, b_c)
    sup_c = _log_beta_sup(a_c, b_c)
    l2_c = _log_beta_l2(a_c, b_c)
    n_open = 0
    for k in range(n_arms):
        futile[k] = False
        undecided[k] = False
        if not in_trial[t, k] or k == c:
            continue
        a_k, b_k = a[t, k], b[t, k]
        m = np.nan  # the bound on the difference's density, as _cheap_bounds computes it
        if min(min(a_k, b_k), min(a_c, b_c)) >= 1.0:
            m = _density_bound(_log_beta_sup(a_k, b_k), sup_c, _log_beta_l2(a_k, b_k), l2_c)
        lower, upper = _cheap_bounds_m(a_k, b_k, a_c, b_c, 0.0, m)
        log_b = np.nan
        if not _settled(lower, upper, check_inf, inf, check_sup, sup):
            log_b = _log_beta(a_k, b_k)
            low, up = _product_bounds(a_k, b_k, log_b, a_c, b_c, log_b_c, 0.0)
            if not _settled(max(lower, low), min(upper, up), check_inf, inf, check_sup, sup):
                return False
        if fut_now:
            lower, upper = _cheap_bounds_m(a_k, b_k, a_c, b_c, fut_delta, m)
            if not (upper < fut_threshold - 2 * _BOUND_GUARD or lower > fut_threshold + 2 * _BOUND_GUARD):
                if math.isnan(log_b):
                    log_b = _log_beta(a_k, b_k)
                low, up = _product_bounds(a_k, b_k, log_b, a_c, b_c, log_b_c, fut_delta)
                lower, upper = max(lower, low), min(upper, up)
            if upper < fut_threshold - 2 * _BOUND_GUARD:
                futile[k] = True
            elif not lower > fut_threshold + 2 * _BOUND_GUARD:
                n_open += 1
                if n_open > _OPEN_PAIRS:
                    return False
                undecided[k] = True
    for k in range(n_arms):
        if undecided[k]:
            futile[k] = greater_one(a[t, k], b[t, k], a_c, b_c, fut_delta, pair, scratch) < fut_threshold
    return True


@njit(cache=True)
def _with_control_kernel(
    look,
    a,
    b,
    status,
    status_look,
    declared,
    control,
    control_changed,
    sup,
    inf,
    check_eq,
    margin,
    eq_probability,
    eq_only_first,
    check_fut,
    fut_only_first,
    fut_delta,
    fut_threshold,
    refresh,
    need_pb,
    bound_rounds,
    stop,
    pb,
    bps,
    weights,
    pdf,
    cdf,
    g,
    work,
    logs,
    bits,
    wide,
    aux,
    rep,
):
    """The rules of :func:`_decide_with_control` for each trial in turn, with the
    rounds of a trial whose control changed repeated as there; writes the state arrays, ``stop``
    (T,) and ``pb`` (T, K: P(best) of the last round when it left the trial's arms unchanged,
    else NaN as filled by the caller; with ``refresh``, a trial that goes on gets P(best) among its
    arms left instead of NaN; without ``need_pb``, pb is not written). sup, inf: NaN when disabled."""
    n_trials, n_arms = status.shape
    scratch = (bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep)
    n_comp = n_arms + 2 if margin > 0.0 else n_arms
    components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
    in_trial = np.empty((n_trials, n_arms), dtype=np.bool_)
    compare = np.zeros(n_trials, dtype=np.bool_)
    no_control = np.full(n_trials, -1, dtype=np.int64)
    arms_only = (np.empty(n_arms), np.empty(n_arms), np.zeros(n_arms), np.zeros(n_arms, dtype=np.bool_))
    pair = (np.empty(2), np.empty(2), np.zeros(2), np.ones(2, dtype=np.bool_))
    out = np.zeros((n_trials, n_arms))
    vs_control = np.empty((n_trials, n_arms))
    within = np.empty((n_trials, n_arms))
    comparators = np.empty(n_arms, dtype=np.bool_)
    before = np.empty(n_arms, dtype=np.bool_)
    sure = np.zeros(n_arms, dtype=np.bool_)
    undecided = np.zeros(n_arms, dtype=np.bool_)
    check_sup = not math.isnan(sup)
    check_inf = not math.isnan(inf)
    # with the bounds, an equivalence check that provably cannot pass skips the control's shifted
    # copies (best_row's ``below``): the same decisions while the grid is within the guard
    eq_below = eq_probability - 2.0 * _BOUND_GUARD if bound_rounds and check_eq else 0.0
    for t in range(n_trials):
        n_in = 0
        for k in range(n_arms):
            in_trial[t, k] = status[t, k] == ACTIVE or status[t, k] == CONTROL
            n_in += in_trial[t, k]
        equivalence_stop = False
        futility_stop = False
        pending = n_in > 1
        for _ in range(n_arms):
            if not pending:
                break
            pending = False
            c = control[t]
            eq_row = not control_changed[t] if eq_only_first else True
            compare[t] = eq_row
            fut_now = check_fut and not (fut_only_first and control_changed[t])
            # without P(best) and the equivalence check, a round whose every answer bounds settle
            # needs no grid (_round_by_bounds: the answers the quadrature gives)
            bounded = (
                bound_rounds
                and not need_pb
                and not (check_eq and eq_row)
                and _round_by_bounds(
                    t,
                    a,
                    b,
                    in_trial,
                    c,
                    check_inf,
                    inf,
                    check_sup,
                    sup,
                    fut_now,
                    fut_delta,
                    fut_threshold,
                    sure,
                    undecided,
                    pair,
                    scratch,
                )
            )
            # a row without the equivalence check gets the copies of the control switched off,
            # which leaves its grid as without them
            if bounded:
                pass
            elif need_pb:
                best_row(
                    t, a, b, in_trial, control, margin, compare, out, vs_control, within, components, scratch, eq_below
                )
            else:
                vs_control_row(
                    t, a, b, in_trial, control, margin, compare, vs_control, within, components, scratch, eq_below
                )
            for k in range(n_arms):
                before[k] = in_trial[t, k]
                comparators[k] = in_trial[t, k] and k != c
                if not bounded and check_inf and comparators[k] and vs_control[t, k] < inf:
                    status[t, k] = INFERIOR
                    status_look[t, k] = look
                    comparators[k] = False
            pick = -1
            if check_sup and not bounded:
                top = -np.inf
                for k in range(n_arms):  # the first arm with the highest score (argmax)
                    score = vs_control[t, k] if comparators[k] and vs_control[t, k] > sup else -1.0
                    if score > top:
                        top = score
                        pick = k
                won = False
                for k in range(n_arms):
                    won |= comparators[k] and vs_control[t, k] > sup
                if not won:
                    pick = -1
            if pick >= 0:
                status[t, c] = INFERIOR
                status_look[t, c] = look
                status[t, pick] = CONTROL
                status_look[t, pick] = look
                declared[t, pick] = True
                control[t] = pick
                control_changed[t] = True
                in_trial[t, c] = False
                n_in = 0
                for k in range(n_arms):
                    n_in += in_trial[t, k]
                pending = n_in > 1
            else:
                if check_eq and eq_row:
                    any_equivalent = False
                    any_left = False
                    for k in range(n_arms):
                        if comparators[k] and within[t, k] > eq_probability:
                            status[t, k] = EQUIVALENT
                            status_look[t, k] = look
                            comparators[k] = False
                            any_equivalent = True
                        any_left |= comparators[k]
                    if any_equivalent and not any_left:
                        equivalence_stop = True
                if fut_now:
                    # every comparator judged on this round's comparisons, then dropped together
                    any_futile = False
                    any_left = False
                    for k in range(n_arms):
                        if comparators[k]:
                            futile = (
                                sure[k]
                                if bounded
                                else _futile_one(
                                    a[t, k],
                                    b[t, k],
                                    a[t, c],
                                    b[t, c],
                                    vs_control[t, k],
                                    fut_delta,
                                    fut_threshold,
                                    pair,
                                    scratch,
                                )
                            )
                            if futile:
                                status[t, k] = FUTILE
                                status_look[t, k] = look
                                comparators[k] = False
                                any_futile = True
                        any_left |= comparators[k]
                    if any_futile and not any_left:
                        futility_stop = True
            unchanged = True
            for k in range(n_arms):
                in_trial[t, k] = comparators[k] or k == control[t]
                unchanged &= in_trial[t, k] == before[k]
            if need_pb:
                for k in range(n_arms):
                    pb[t, k] = out[t, k] if unchanged else np.nan
        n_in = 0
        last = -1
        for k in range(n_arms):
            if in_trial[t, k]:
                n_in += 1
                if last < 0:
                    last = k
        if n_in == 1:
            if equivalence_stop or futility_stop:
                stop[t] = STOP_EQUIVALENCE if equivalence_stop else STOP_ARMS_DROPPED
            else:
                status[t, last] = SUPERIOR
                status_look[t, last] = look
                any_declared = False
                for k in range(n_arms):
                    any_declared |= declared[t, k]
                stop[t] = STOP_SUPERIORITY if any_declared else STOP_ARMS_DROPPED
        if refresh and stop[t] == CONTINUE and math.isnan(pb[t, 0]):
            # P(best) among the arms left, on their own grid (no control, no copies): prob_best
            best_row(t, a, b, in_trial, no_control, 0.0, compare, out, vs_control, within, arms_only, scratch, 0.0)
            for k in range(n_arms):
                pb[t, k] = out[t, k]


# Quadrature error allowed for in a decision taken from a bound instead of the quadrature: 100 times
# the accuracy the beta-posterior probabilities are tested to (1e-6, tests/test_posterior.py).
_BOUND_GUARD = 1e-4


@njit(cache=True)
def _log_beta_sup(a, b):
    """log of the largest value of the Beta(a, b) density (at its mode); inf when a or b is below 1."""
    if a < 1.0 or b < 1.0:
        return math.inf
    out = lgamma(a + b) - lgamma(a) - lgamma(b)
    if a + b > 2.0:
        mode = (a - 1.0) / (a + b - 2.0)
        if a > 1.0:
            out += (a - 1.0) * math.log(mode)
        if b > 1.0:
            out += (b - 1.0) * math.log1p(-mode)
    return out


@njit(cache=True)
def _log_beta_l2(a, b):
    """log of the L2 norm of the Beta(a, b) density, (log B(2a - 1, 2b - 1) - 2 log B(a, b)) / 2;
    inf when a or b is 1/2 or below (the square of the density is not integrable)."""
    if a <= 0.5 or b <= 0.5:
        return math.inf
    log_b = lgamma(a) + lgamma(b) - lgamma(a + b)
    log_b2 = lgamma(2.0 * a - 1.0) + lgamma(2.0 * b - 1.0) - lgamma(2.0 * (a + b) - 2.0)
    return 0.5 * (log_b2 - 2.0 * log_b)


@njit(cache=True)
def _difference_density_bound(a, b, a_c, b_c):
    """An upper bound on the density of D = X_k - X_c (X_k ~ Beta(a, b), X_c ~ Beta(a_c, b_c)
    independent) anywhere: f_D(z) = int f_k(z + x) f_c(x) dx is at most the largest value of either
    density (the other integrates to 1) and at most ||f_k||_2 ||f_c||_2 (Cauchy-Schwarz; the norms in
    closed form). inf when none is finite."""
    return _density_bound(_log_beta_sup(a, b), _log_beta_sup(a_c, b_c), _log_beta_l2(a, b), _log_beta_l2(a_c, b_c))


@njit(cache=True)
def _density_bound(sup, sup_c, l2, l2_c):
    """:func:`_difference_density_bound` from the logs of the two densities' largest values and L2
    norms (:func:`_log_beta_sup`, :func:`_log_beta_l2`)."""
    log_m = min(sup, sup_c, l2 + l2_c)
    return math.exp(log_m) if log_m < 700.0 else math.inf


@njit(cache=True)
def _difference_density_bounds(a, b, a_c, b_c, out):
    for i in range(out.shape[0]):
        out[i] = _difference_density_bound(a[i], b[i], a_c[i], b_c[i])


def futility_bounds(a, b, a_c, b_c, p_better, delta):
    """Bounds on P(X_k > X_c + delta) that need no quadrature, elementwise.

    X_k ~ Beta(a, b) and X_c ~ Beta(a_c, b_c) independent; p_better is P(X_k > X_c) (from the
    look's grid, so within its quadrature error). With D = X_k - X_c, mean mu, variance v and
    t = mu - delta: Cantelli's inequality gives P(D <= delta) <= v / (v + t^2) when t > 0 and
    P(D > delta) <= v / (v + t^2) when t < 0; a Beta(a, b) variable is sub-Gaussian with variance
    proxy 1 / (4 (a + b + 1)) (Elder 2016, proved by Marchal and Arbel, Electron. Commun. Probab.
    2017;22:54), so D is with the sum s^2 of the two proxies, and the same tails are at most
    exp(-t^2 / (2 s^2)); and P(D > delta) is at most P(D > 0) for delta >= 0 (at least for delta < 0).
    Between the two, P(D > 0) - P(D > delta) = P(0 < D <= delta) is at most |delta| times a bound M
    on D's density (:func:`_difference_density_bound`), so P(D > delta) is at least
    P(D > 0) - delta M for delta >= 0 (at most P(D > 0) + |delta| M for delta < 0).
    Returns (lower, upper) for the true probability; the bounds from p_better carry its
    quadrature error, which callers allow for.
    """
    n, n_c = a + b, a_c + b_c
    t = a / n - a_c / n_c - delta
    var = a * b / (n * n * (n + 1.0)) + a_c * b_c / (n_c * n_c * (n_c + 1.0))
    proxy = 0.25 / (n + 1.0) + 0.25 / (n_c + 1.0)
    tail = np.minimum(var / (var + t * t), np.exp(-t * t / (2.0 * proxy)))
    lower = np.where(t > 0, 1.0 - tail, 0.0)
    upper = np.where(t < 0, tail, 1.0)
    if delta == 0:
        return np.maximum(lower, p_better), np.minimum(upper, p_better)
    shape = np.broadcast(a, b, a_c, b_c).shape
    density = np.empty(int(np.prod(shape, dtype=np.int64)))
    _difference_density_bounds(
        *(
            np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), shape)).ravel()
            for x in (a, b, a_c, b_c)
        ),
        density,
    )
    width = abs(delta) * density.reshape(shape)
    if delta > 0:
        upper = np.minimum(upper, p_better)
        lower = np.maximum(lower, p_better - width)
    else:
        lower = np.maximum(lower, p_better)
        upper = np.minimum(upper, p_better + width)
    return lower, upper


def _futile(mask, a, b, a_c, b_c, p_better, delta, threshold) -> np.ndarray:
    """P(arm better than control by at least delta) < threshold, for the (trial, arm) pairs in
    ``mask`` (rows of a, b: (R, K); a_c, b_c: (R, 1); p_better: (R, K) P(arm > control)).

    The probability is computed (by quadrature, as :func:`prob_greater`) only for the pairs whose
    answer :func:`futility_bounds` leave open: a pair whose upper bound is below the threshold, or
    whose lower bound is above it, by more than the quadrature error allowed for (``_BOUND_GUARD``,
    100 times the tested accuracy), gets the answer the quadrature would give."""
    out = np.zeros(mask.shape, dtype=bool)
    r, k = np.nonzero(mask)
    if r.size == 0:
        return out
    lower, upper = futility_bounds(a[r, k], b[r, k], a_c[r, 0], b_c[r, 0], p_better[r, k], delta)
    sure_futile = upper < threshold - 2 * _BOUND_GUARD  # the guard twice: p_better's error and the quadrature's
    sure_not = lower > threshold + 2 * _BOUND_GUARD
    open_ = ~(sure_futile | sure_not)
    answer = sure_futile.copy()
    if open_.any():
        ro, ko = r[open_], k[open_]
        answer[open_] = prob_greater(a[ro, ko], b[ro, ko], a_c[ro, 0], b_c[ro, 0], delta) < threshold
    out[r, k] = answer
    return out


@njit(cache=True)
def _futile_one(a, b, a_c, b_c, p_better, delta, threshold, pair, scratch):
    """:func:`_futile` for one (arm, control) pair, in a compiled kernel: the bounds of
    :func:`futility_bounds` (its density bound from the same compiled function) with the same
    guard, then, when they leave the answer open, the pair's grid as :func:`prob_greater` builds it. The bounds' ``exp`` is the C library's here and numpy's
    there; they may differ in the last bit, which cannot change an answer: a bound settles a pair
    only with a margin of 2e-4, within which the quadrature gives the same answer."""
    lower, upper = _tail_bounds(a, b, a_c, b_c, delta)
    if delta > 0:
        upper = min(upper, p_better)
        lower = max(lower, p_better - delta * _difference_density_bound(a, b, a_c, b_c))
    elif delta < 0:
        lower = max(lower, p_better)
        upper = min(upper, p_better - delta * _difference_density_bound(a, b, a_c, b_c))
    else:
        upper = min(upper, p_better)
        lower = max(lower, p_better)
    if upper < threshold - 2 * _BOUND_GUARD:
        return True
    if lower > threshold + 2 * _BOUND_GUARD:
        return False
    return greater_one(a, b, a_c, b_c, delta, pair, scratch) < threshold


def _set(status, status_look, rows, mask, code, look) -> None:
    """Set ``code`` where ``mask`` (rows-subset by K) is true."""
    if mask.any():
        r, k = np.nonzero(mask)
        status[rows[r], k] = code
        status_look[rows[r], k] = look


def select_with_margin(score: np.ndarray, eligible: np.ndarray, margin: float) -> np.ndarray:
    """The end-of-trial selection with a margin: per trial, the ``eligible`` arm with the highest
    ``score`` (P(best), or the posterior mean rate on the better-outcome scale) when it exceeds the
    runner-up's score by at least ``margin``; otherwise no selection (-1). A lone eligible arm is
    selected. ``score``, ``eligible``: (T, K); returns (T,) arm indices."""
    s = np.where(eligible & np.isfinite(score), score, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    rows = np.arange(s.shape[0])
    best = order[:, 0]
    top = s[rows, best]
    second = s[rows, order[:, 1]] if s.shape[1] > 1 else np.full(s.shape[0], -np.inf)
    ok = np.isfinite(top) & (top - second >= margin - 1e-12)
    return np.where(ok, best, -1).astype(np.intp)
