"""Comparisons of an arm with its control adjusted for calendar time, by period.

Periods
-------
A platform's *periods* are the intervals between the calendar dates at which an arm enters
or leaves (Lee & Wason 2020, BMC Med Res Methodol 20:165; Bofill Roig et al. 2022, BMC Med
Res Methodol 22:228). Within a period the set of open arms, and with fixed allocation the
allocation, do not change; a time trend that moves every arm's linear predictor alike is then
absorbed by a period effect. :func:`period_bounds` gives each simulated trial's period
boundaries from its arms' opening and closing dates, and a patient randomized at date ``a``
belongs to period ``p`` when ``b_p < a <= b_{p+1}`` (the patient who fills an arm's cap, and
so closes it, is the last of that arm's period).

Model
-----
Patients are tallied per period p and arm j (arm 0 the control): patients ``n``, events ``y``
(responders, or progressions) and time at risk ``x`` (months; time-to-event only). The linear
predictor of cell (p, j) is

    eta_pj = alpha_p + beta_j,   beta_0 = 0,

the log-odds of response (binary: y ~ Binomial(n, expit(eta))) or the log of an exponential
progression hazard (time-to-event: y ~ Poisson(x exp(eta)), the likelihood of exponential
times with d events over exposure x), so ``beta_j`` is arm j's log-odds ratio or log hazard
ratio against the control, common to every period, and ``alpha_p`` the control's level in
period p. The priors are independent normals: ``alpha_p ~ N(m0, s0^2)`` and
``beta_j ~ N(0, s_j^2)``; the family takes (m0, s0^2) as the moments of the control's log rate
under the design's own prior on the control (:func:`log_rate_moments`) and ``s_j^2`` as the
variance of the log-ratio implied by the design's independent priors on arm j and the control,
so the adjustment adds no information the unadjusted analysis does not have.

Approximation
-------------
:func:`fit_period_model` returns the Laplace approximation of the posterior: the mode (found by
Newton's method; both likelihoods are log-concave and the priors Gaussian, so the mode is
unique) and the inverse of the negative Hessian there. ``beta``'s posterior is taken as the
normal with that mean and covariance. The Hessian's period block is diagonal, so every Newton
step solves only a (J-1) x (J-1) system (the Schur complement) however many periods there are.
With hundreds of patients the normal is close to exact (Bernstein-von Mises); with the
small counts of early analyses it is an approximation, checked against a PyMC fit of the same
model in tests/test_period.py.

Two analyses use the model (the family chooses the data):

* **stratified by period**: arm k and the control only, in the periods where arm k randomizes;
  ``alpha_p`` is then a period-specific control level and ``beta_k`` the common within-period
  effect (the stratified comparison; with flat priors and large counts it is the
  inverse-variance combination of the period-specific log ratios).
* **period as a covariate**: every arm, in every period (``controls: all``; Bofill Roig et al.
  2022) or in arm k's periods (``controls: concurrent``): the other arms inform the period
  effects, so controls randomized in periods where arm k was not open contribute through the
  arms that overlap both.

Decision quantities
-------------------
From the normal posterior N(m, v) of the effect: :func:`prob_better_normal` gives
P(arm better than control) = Phi(m / sqrt(v)) (log-odds ratio) or Phi(-m / sqrt(v)) (log hazard
ratio); :func:`pp_confirmatory_normal` the predictive probability that a 1:1 confirmatory trial
is positive at one-sided level alpha, the future trial's estimate being N(theta, sigma^2):
sigma^2 = 4 / D for D events (Schoenfeld 1981, Biometrika 68:316, as in
:func:`platform_sim.posterior.survival.pp_confirmatory_survival`), or the Wald variance of a
log-odds ratio with n patients per arm, 1 / (n p_t (1 - p_t)) + 1 / (n p_c (1 - p_c)), at the
control's rate in the latest period and the arm's rate implied by m. Then

    PP = Phi((m - z_{1-alpha} sigma) / sqrt(v + sigma^2))   (log-odds ratio; -m for a log HR).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "PeriodFit",
    "fit_period_model",
    "log_rate_moments",
    "period_bounds",
    "period_windows",
    "pp_confirmatory_normal",
    "prob_better_normal",
]


def period_bounds(opened: np.ndarray, closed: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sorted period boundaries (R, 2K) of R trials at analysis dates t (R,): every arm's opening
    date and every closing date on or before t (months), each date once, padded with +inf.

    opened, closed: (R, K) months (NaN: not yet). Period p of a trial runs from boundary p
    (excluded) to boundary p + 1 (included); the last finite boundary opens the last period."""
    dates = np.concatenate([opened, closed], axis=1)
    dates = np.where(np.isfinite(dates) & (dates <= np.asarray(t, dtype=float)[:, None]), dates, np.inf)
    dates = np.sort(dates, axis=1)
    repeated = np.zeros_like(dates, dtype=bool)
    repeated[:, 1:] = dates[:, 1:] == dates[:, :-1]
    dates = np.where(repeated, np.inf, dates)
    return np.sort(dates, axis=1)


def period_windows(bounds: np.ndarray, opened: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """(R, K, P) True where period p lies inside arm k's randomization window [opened, closed]
    (NaN closed: still open). bounds: (R, P) from :func:`period_bounds` (P = 2K periods at most)."""
    start = bounds[:, None, :]
    close = np.where(np.isnan(closed), np.inf, closed)[:, :, None]
    with np.errstate(invalid="ignore"):
        return np.isfinite(start) & (start >= opened[:, :, None]) & (start < close)


def log_rate_moments(a, b, survival: bool):
    """Mean and variance of the log hazard under Gamma(a, b) (survival) or of the log-odds under
    Beta(a, b): (psi(a) - log b, psi'(a)) or (psi(a) - psi(b), psi'(a) + psi'(b))."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if survival:
        return special.digamma(a) - np.log(b), special.polygamma(1, a)
    return special.digamma(a) - special.digamma(b), special.polygamma(1, a) + special.polygamma(1, b)


@dataclass(frozen=True)
class PeriodFit:
    """Laplace approximation of the period model's posterior, for a batch of shape (...)."""

    effect: np.ndarray  # (..., J-1) posterior mode of beta_j, j = 1..J-1 (log-odds or log hazard ratio)
    effect_var: np.ndarray  # (..., J-1) its approximate posterior variance
    level: np.ndarray  # (..., P) posterior mode of alpha_p (the control's log-odds or log hazard per period)
    iterations: int  # Newton steps taken


def fit_period_model(
    n, y, x, survival: bool, level_mean: float, level_var: float, effect_var, tol: float = 1e-10, max_iter: int = 100
) -> PeriodFit:
    """Posterior mode and Laplace variance of eta_pj = alpha_p + beta_j (see the module docstring).

    n, y, x: (..., P, J) patients, events and time at risk (months) per period and arm, arm 0
    the reference (control); x is unused for a binary endpoint and n for a time-to-event one.
    Empty cells contribute nothing. level_mean, level_var: prior N(m0, s0^2) of every alpha_p.
    effect_var: (J-1,) or scalar prior variance of beta_j. Newton starts from each period's pooled
    log rate and no arm effect; its steps are shortened to at most 1 on the log scale, and it stops
    when no coordinate moves by more than ``tol`` (RuntimeError after ``max_iter`` steps).
    """
    n, y, x = (np.asarray(v, dtype=float) for v in (n, y, x))
    n, y, x = np.broadcast_arrays(n, y, x)
    P, J = n.shape[-2:]
    if J < 2:
        raise ValueError(f"fit_period_model: needs the reference arm and at least one other; got J = {J}")
    if P < 1:
        raise ValueError("fit_period_model: needs at least one period; got P = 0")
    batch = n.shape[:-2]
    prec_a = 1.0 / float(level_var)
    prec_b = 1.0 / np.broadcast_to(np.asarray(effect_var, dtype=float), (J - 1,))
    # start: each period's pooled log rate (the prior mean where a period has no data), no arm effect
    if survival:
        has = x.sum(axis=-1) > 0
        start = np.log((y.sum(axis=-1) + 0.5) / np.where(has, x.sum(axis=-1), 1.0))
    else:
        has = n.sum(axis=-1) > 0
        start = special.logit((y.sum(axis=-1) + 0.5) / (n.sum(axis=-1) + 1.0))
    alpha = np.where(has, start, float(level_mean))
    beta = np.zeros(batch + (J - 1,))
    iterations = 0
    while True:
        iterations += 1
        eta = alpha[..., :, None] + np.concatenate([np.zeros(batch + (1,)), beta], axis=-1)[..., None, :]
        if survival:
            mu = x * np.exp(eta)
            g, w = y - mu, mu
        else:
            pi = special.expit(eta)
            g, w = y - n * pi, n * pi * (1.0 - pi)
        g_a = g.sum(axis=-1) - (alpha - level_mean) * prec_a  # (..., P)
        g_b = g[..., 1:].sum(axis=-2) - beta * prec_b  # (..., J-1)
        d = w.sum(axis=-1) + prec_a  # (..., P) diagonal period block
        cross = w[..., 1:]  # (..., P, J-1)
        schur = np.zeros(batch + (J - 1, J - 1))
        idx = np.arange(J - 1)
        schur[..., idx, idx] = w[..., 1:].sum(axis=-2) + prec_b
        schur -= np.einsum("...pi,...p,...pj->...ij", cross, 1.0 / d, cross)
        rhs = g_b - np.einsum("...pi,...p->...i", cross, g_a / d)
        step_b = np.linalg.solve(schur, rhs[..., None])[..., 0]
        step_a = (g_a - np.einsum("...pi,...i->...p", cross, step_b)) / d
        biggest = np.maximum(np.abs(step_a).max(axis=-1), np.abs(step_b).max(axis=-1))
        shrink = np.minimum(1.0, 1.0 / np.maximum(biggest, 1e-300))[..., None]
        alpha = alpha + shrink * step_a
        beta = beta + shrink * step_b
        if not (biggest > tol).any():
            break
        if iterations >= max_iter:
            raise RuntimeError(
                f"fit_period_model: Newton's method still moved by {np.max(biggest):.3g} after {max_iter} steps"
            )
    # curvature at the mode
    eta = alpha[..., :, None] + np.concatenate([np.zeros(batch + (1,)), beta], axis=-1)[..., None, :]
    if survival:
        w = x * np.exp(eta)
    else:
        pi = special.expit(eta)
        w = n * pi * (1.0 - pi)
    d = w.sum(axis=-1) + prec_a
    cross = w[..., 1:]
    schur = np.zeros(batch + (J - 1, J - 1))
    idx = np.arange(J - 1)
    schur[..., idx, idx] = w[..., 1:].sum(axis=-2) + prec_b
    schur -= np.einsum("...pi,...p,...pj->...ij", cross, 1.0 / d, cross)
    cov = np.linalg.inv(schur)
    return PeriodFit(
        effect=beta, effect_var=np.diagonal(cov, axis1=-2, axis2=-1).copy(), level=alpha, iterations=iterations
    )


def prob_better_normal(mean, var, survival: bool):
    """P(arm better than control) under the normal posterior N(mean, var) of the effect: P(log-odds
    ratio > 0), or P(log hazard ratio < 0) for a time-to-event endpoint."""
    z = np.asarray(mean, dtype=float) / np.sqrt(np.asarray(var, dtype=float))
    return special.ndtr(-z if survival else z)


def pp_confirmatory_normal(
    mean,
    var,
    survival: bool,
    alpha: float,
    *,
    events: float | None = None,
    n_per_arm: int | None = None,
    control_level=None,
):
    """Predictive probability that a 1:1 confirmatory trial is positive at one-sided level alpha,
    given the normal posterior N(mean, var) of the effect (see the module docstring).

    Time-to-event: ``events`` (D) of the future trial; its log-HR estimate is N(theta, 4 / D).
    Binary: ``n_per_arm`` patients per arm and ``control_level``, the control's log-odds in the
    latest period (broadcast with mean); the future log-odds ratio estimate is N(theta, sigma^2)
    with the Wald variance at p_c = expit(control_level), p_t = expit(control_level + mean).
    """
    mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    z = -special.ndtri(alpha)
    if survival:
        if events is None or not events > 0:
            raise ValueError(f"pp_confirmatory_normal: a time-to-event endpoint needs events > 0; got {events}")
        se2 = 4.0 / float(events)
        return special.ndtr((-z * np.sqrt(se2) - mean) / np.sqrt(var + se2))
    if n_per_arm is None or not n_per_arm > 0 or control_level is None:
        raise ValueError(
            "pp_confirmatory_normal: a binary endpoint needs n_per_arm > 0 and control_level; got "
            f"n_per_arm = {n_per_arm}"
        )
    level = np.asarray(control_level, dtype=float)
    p_c, p_t = special.expit(level), special.expit(level + mean)
    se2 = (1.0 / (p_t * (1.0 - p_t)) + 1.0 / (p_c * (1.0 - p_c))) / float(n_per_arm)
    return special.ndtr((mean - z * np.sqrt(se2)) / np.sqrt(var + se2))
