"""A platform's comparison of each arm with the control, adjusted for calendar time by period.

``platform.time_adjustment`` (config/timeline.py) chooses the analysis; the statistics are in
:mod:`platform_sim.posterior.period`. At an analysis on date t the randomized patients are tallied
per arm, period (the intervals between the dates arms opened or closed by t) and stratum, with
their outcomes as the assessment schedule shows them by t (the same reading as the unadjusted
analysis), and pooled over each signature's strata. Then, for each experimental arm k:

* ``stratified_by_period``: arm k and the control in the periods where arm k randomized;
* ``period_covariate`` with ``controls: concurrent``: every arm, in the periods where arm k
  randomized; with ``controls: all``: every arm in every period (one fit for all arms);

and the period model's normal posterior of arm k's log-odds ratio or log hazard ratio feeds the
graduation rule (P(arm better than control) or the predictive probability of the confirmatory
trial) and the reported effect. Response-adaptive allocation still uses the unadjusted
per-stratum P(better), as without adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from ..posterior.period import (
    fit_period_model,
    log_rate_moments,
    period_bounds,
    period_windows,
    pp_confirmatory_normal,
    prob_better_normal,
)
from .observation import outcome_seen

STRATIFIED = "stratified_by_period"
COVARIATE = "period_covariate"


@njit(cache=True)
def _tally_periods(
    arrive,
    stratum,
    assigned,
    outcomes,
    dropout,
    arm_treatment,
    bounds,
    rows,
    t,
    assess,
    survival,
    read_at,
    out_n,
    out_y,
    out_x,
):
    """Outcomes seen by t[i] per arm x period x stratum (patients with an outcome, events, time at
    risk) of trial rows[i]; a patient randomized at a is in period p when bounds[i, p] < a <=
    bounds[i, p + 1] (the last period is open-ended)."""
    n_periods = out_n.shape[2]
    for ii in range(rows.size):
        r = rows[ii]
        for i in range(arrive.shape[1]):
            a = arrive[r, i]
            if a > t[ii]:
                break
            k = assigned[r, i]
            if k < 0:
                continue
            has, event, x, _ = outcome_seen(
                outcomes[r, i, arm_treatment[k]], dropout[r, i], a, t[ii], assess, survival, read_at
            )
            if not (survival or has):
                continue
            p = np.searchsorted(bounds[ii], a, side="left") - 1
            p = min(max(p, 0), n_periods - 1)
            s = stratum[r, i]
            out_n[ii, k, p, s] += 1.0
            out_y[ii, k, p, s] += 1.0 if event else 0.0
            out_x[ii, k, p, s] += x


@dataclass(frozen=True)
class AdjustedComparison:
    """Period-adjusted comparisons of R trials' arms with the control at one analysis date."""

    success: np.ndarray  # (R, K, G) the graduation rule's success probability per signature (NaN: control)
    prob_better: np.ndarray  # (R, K) P(arm better than control), all patients
    effect: np.ndarray  # (R, K) posterior mean log-odds ratio / log hazard ratio, all patients (NaN: control)


def period_tallies(pd, opened, closed, pool, assigned, rows, t):
    """(n, y, x) each (R, K, P, S) per arm, period and stratum, with the period boundaries (R, P)
    and each arm's periods (R, K, P)."""
    opened_r, closed_r = opened[rows], closed[rows]
    bounds = period_bounds(opened_r, closed_r, t)
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    P = bounds.shape[1]
    n, y, x = (np.zeros((R, K, P, S)) for _ in range(3))
    _tally_periods(
        pool.arrive,
        pool.stratum,
        assigned,
        pool.outcomes,
        pool.dropout,
        pd.arm_treatment,
        bounds,
        rows,
        np.asarray(t, dtype=float),
        pd.assess,
        pd.survival,
        pd.read_at,
        n,
        y,
        x,
    )
    return (n, y, x), bounds, period_windows(bounds, opened_r, closed_r)


def _priors(pd):
    """The period model's priors from the design's priors: the control's log rate moments, and per
    arm the variance of its log ratio with the control implied by independent priors."""
    c = pd.control
    m0, v0 = log_rate_moments(pd.prior_a[c], pd.prior_b[c], pd.survival)
    _, v = log_rate_moments(pd.prior_a, pd.prior_b, pd.survival)
    return float(m0), float(v0), v + v0


def adjusted_comparison(pd, opened, closed, pool, assigned, rows, t) -> AdjustedComparison:
    """The period-adjusted analysis of trials ``rows`` at dates ``t`` (see the module docstring).

    pd: the compiled platform (``platform.PlatformDesign``); pool: its randomizable patients
    (``platform.PlatformPool``), both passed in by ``platform.py``, which this module does not import;
    opened, closed: (T, K) the arms' opening and closing dates so far (NaN: not yet);
    assigned: (T, N) each randomizable patient's arm (-1: none)."""
    (n, y, x), _, windows = period_tallies(pd, opened, closed, pool, assigned, rows, t)
    R, K = rows.size, pd.n_arms
    c = pd.control
    groups = np.concatenate([pd.signatures.T, np.ones((pd.n_strata, 1), dtype=bool)], axis=1).astype(float)  # (S, H)
    n, y, x = (v @ groups for v in (n, y, x))  # (R, K, P, H)
    H = groups.shape[1]
    m0, v0, effect_var = _priors(pd)
    others = np.array([k for k in range(K) if k != c])
    order = np.concatenate([[c], others])  # control first
    mean = np.full((R, K, H), np.nan)
    var = np.full((R, K, H), np.nan)
    level = np.full((R, K, H), np.nan)  # control's log rate in the latest period with control data

    def cells(v, keep):  # (R, K, P, H) -> (R, H, P, J) with periods outside ``keep`` (R, P) emptied
        return np.transpose(v[:, order] * keep[:, None, :, None], (0, 3, 2, 1))

    def latest(fit_level, cn):  # fit_level (..., P), cn (..., P): control's level in its latest period with data
        has = cn > 0
        last = np.where(has.any(axis=-1), cn.shape[-1] - 1 - np.argmax(has[..., ::-1], axis=-1), 0)
        return np.take_along_axis(fit_level, last[..., None], axis=-1)[..., 0]

    if pd.time_adjustment == COVARIATE and not pd.concurrent:
        keep = np.ones(windows.shape[::2], dtype=float)
        cn, cy, cx = (cells(v, keep) for v in (n, y, x))
        fit = fit_period_model(cn, cy, cx, pd.survival, m0, v0, effect_var[others])
        mean[:, others] = np.transpose(fit.effect, (0, 2, 1))
        var[:, others] = np.transpose(fit.effect_var, (0, 2, 1))
        control_n = cn[..., 0] if not pd.survival else cx[..., 0]
        level[:, others] = latest(fit.level, control_n)[:, None, :]
    else:
        for k in others:
            keep = windows[:, k].astype(float)
            if pd.time_adjustment == STRATIFIED:
                pick = np.array([0, int(np.flatnonzero(order == k)[0])])
                cn, cy, cx = (cells(v, keep)[..., pick] for v in (n, y, x))
                fit = fit_period_model(cn, cy, cx, pd.survival, m0, v0, effect_var[k])
                j = 0
            else:
                cn, cy, cx = (cells(v, keep) for v in (n, y, x))
                fit = fit_period_model(cn, cy, cx, pd.survival, m0, v0, effect_var[others])
                j = int(np.flatnonzero(others == k)[0])
            mean[:, k] = fit.effect[..., j]
            var[:, k] = fit.effect_var[..., j]
            control_n = cn[..., 0] if not pd.survival else cx[..., 0]
            level[:, k] = latest(fit.level, control_n)
    G = pd.signatures.shape[0]
    p_better = prob_better_normal(mean, var, pd.survival)
    if pd.graduate_by == "posterior":
        success = p_better[:, :, :G]
    elif pd.survival:
        success = pp_confirmatory_normal(mean[:, :, :G], var[:, :, :G], True, pd.alpha, events=pd.confirmatory_events)
    else:
        success = pp_confirmatory_normal(
            mean[:, :, :G],
            var[:, :, :G],
            False,
            pd.alpha,
            n_per_arm=pd.confirmatory_n // 2,
            control_level=level[:, :, :G],
        )
    return AdjustedComparison(success=success, prob_better=p_better[:, :, G], effect=mean[:, :, G])
