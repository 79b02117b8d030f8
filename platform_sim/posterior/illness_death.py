"""A joint model of objective response, progression-free and overall survival (illness-death).

The model
---------
Each patient starts *stable* on treatment. Three things can happen (times in months since
randomization; Putter, Fiocco & Geskus 2007, Stat Med 26:2389, for the illness-death model):

* **response**: a patient is a responder with probability ``p`` (a baseline class: the patients
  whose tumour will shrink). Responders progress more slowly: their progression hazard is the
  non-responders' times ``responder_hazard_ratio`` (rho < 1), so response and PFS are correlated;
* **progression** from the stable state, hazard ``rho^R lambda_P(s)``, piecewise constant in the
  time since randomization s;
* **death before progression**, hazard ``lambda_D(s)``, piecewise constant;
* **death after progression** (post-progression survival), hazard ``lambda_Q(v)`` piecewise
  constant in the time v since progression (semi-Markov: the clock restarts at progression).

So, with T_P, T_D and V the latent times of the three transitions,

    PFS = min(T_P, T_D),    OS = T_D if T_D <= T_P else T_P + V,

and PFS <= OS always. A treatment changes the model through an odds ratio on response, hazard
ratios on progression (piecewise constant in time: delayed effects, crossing curves), on death
before progression and on post-progression death. The consequences for the other endpoints
follow from the model, and are exact: :meth:`IllnessDeath.pfs_survival` and
:meth:`IllnessDeath.os_survival` give the survival curves, whatever the effects.

Exact survival functions
------------------------
With Lambda the cumulative hazards,

    S_PFS(t) = [(1 - p) e^{-Lambda_P(t)} + p e^{-rho Lambda_P(t)}] e^{-Lambda_D(t)},
    S_OS(t)  = S_PFS(t) + int_0^t f_prog(u) e^{-Lambda_Q(t - u)} du,
    f_prog(u) = [(1 - p) lambda_P(u) e^{-Lambda_P(u)} + p rho lambda_P(u) e^{-rho Lambda_P(u)}] e^{-Lambda_D(u)},

the second term being the patients who progressed at u and are alive t - u months later. The
integrand is smooth between the break points of the three hazards (u at a piece start of
lambda_P or lambda_D, t - u at a piece start of lambda_Q); on each such interval a 24-point
Gauss-Legendre rule integrates it to about 1e-13 (checked in the tests against adaptive
quadrature and the closed form of constant hazards).

Calibration
-----------
:func:`calibrate` finds constant hazards that reproduce a control arm's response rate, median
PFS and median OS, given two assumptions the literature rarely reports: the responders'
progression hazard ratio rho and the share of PFS events that are deaths without progression.
Each unknown is found by bracketing root finding on a monotone function (to 1e-12).

Sampling
--------
:meth:`IllnessDeath.sample` inverts the cumulative hazards at exponential variates (four
uniforms per patient), vectorized over arrays of any shape (leading axis: the simulated trial).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit

from .planning import PiecewiseExponential

__all__ = ["IllnessDeath", "Outcomes", "calibrate", "inverse_cumulative_hazard"]

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(24)


def inverse_cumulative_hazard(hazard: PiecewiseExponential, target: np.ndarray) -> np.ndarray:
    """Times t with Lambda(t) = target (array of any shape, >= 0), for a piecewise-constant hazard.

    A target beyond what the hazard ever reaches (a last piece of hazard 0) gives +inf."""
    target = np.asarray(target, dtype=np.float64)
    s = np.asarray(hazard.starts)
    h = np.asarray(hazard.hazards)
    if s.size == 1:  # one constant hazard: the same arithmetic without the search
        if h[0] > 0.0:
            return s[0] + (target - 0.0) / h[0]
        return np.where(target <= 0.0, s[0], np.inf)
    at_start = np.concatenate(([0.0], np.cumsum(h[:-1] * np.diff(s))))
    j = np.clip(np.searchsorted(at_start, target, side="right") - 1, 0, s.size - 1)
    # pieces of hazard 0 never hold the crossing except when the target is exactly reached
    with np.errstate(divide="ignore", invalid="ignore"):
        t = s[j] + (target - at_start[j]) / h[j]
    return np.where(h[j] > 0.0, t, np.where(target <= at_start[j], s[j], np.inf))


def _hazard_at(hazard: PiecewiseExponential, t: np.ndarray) -> np.ndarray:
    s = np.asarray(hazard.starts)
    return np.asarray(hazard.hazards)[np.clip(np.searchsorted(s, t, side="right") - 1, 0, s.size - 1)]


@dataclass(frozen=True)
class Outcomes:
    """Joint outcomes of a set of patients (arrays of one shape): ``response`` (bool),
    ``pfs`` and ``os`` (months, PFS <= OS) and ``progressed`` (bool: the PFS event is a
    progression, not a death)."""

    response: np.ndarray
    pfs: np.ndarray
    os: np.ndarray
    progressed: np.ndarray


@dataclass(frozen=True)
class IllnessDeath:
    """One treatment's illness-death model (see the module docstring).

    response_probability: p; progression: lambda_P (non-responders), in months since randomization;
    responder_hazard_ratio: rho; death: lambda_D before progression; post_progression: lambda_Q in
    months since progression. Hazards are per patient-month."""

    response_probability: float
    progression: PiecewiseExponential
    responder_hazard_ratio: float
    death: PiecewiseExponential
    post_progression: PiecewiseExponential

    def __post_init__(self):
        p = float(self.response_probability)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"response_probability must be in [0, 1), got {self.response_probability!r}")
        rho = float(self.responder_hazard_ratio)
        if not (math.isfinite(rho) and rho > 0.0):
            raise ValueError(f"responder_hazard_ratio must be finite and > 0, got {self.responder_hazard_ratio!r}")
        for name in ("progression", "death", "post_progression"):
            if not isinstance(getattr(self, name), PiecewiseExponential):
                raise ValueError(f"{name} must be a PiecewiseExponential, got {getattr(self, name)!r}")
        if self.post_progression.hazards[-1] <= 0.0:
            raise ValueError("post_progression: the last piece needs a positive hazard, or no one would ever die")
        if self.progression.hazards[-1] + self.death.hazards[-1] <= 0.0:
            raise ValueError("progression and death: one of their last pieces needs a positive hazard")
        object.__setattr__(self, "response_probability", p)
        object.__setattr__(self, "responder_hazard_ratio", rho)

    # ------------------------------------------------------------------ effects

    def with_effects(
        self,
        response_odds_ratio: float = 1.0,
        progression_hazard_ratio=((0.0,), (1.0,)),
        death_hazard_ratio: float = 1.0,
        post_progression_hazard_ratio=((0.0,), (1.0,)),
    ) -> IllnessDeath:
        """This model under a treatment effect: an odds ratio on response, piecewise hazard ratios
        ``(starts, ratios)`` on progression (time since randomization) and on post-progression death
        (time since progression), and a hazard ratio on death before progression."""
        p = self.response_probability
        p_new = 0.0 if p == 0.0 else float(expit(logit(p) + math.log(response_odds_ratio)))
        return IllnessDeath(
            p_new,
            self.progression.with_hazard_ratio(*progression_hazard_ratio),
            self.responder_hazard_ratio,
            PiecewiseExponential(self.death.starts, tuple(h * death_hazard_ratio for h in self.death.hazards)),
            self.post_progression.with_hazard_ratio(*post_progression_hazard_ratio),
        )

    # ------------------------------------------------------------------ exact survival

    def pfs_survival(self, t) -> np.ndarray:
        """S_PFS(t) at times t (months, any shape)."""
        t = np.asarray(t, dtype=np.float64)
        p, rho = self.response_probability, self.responder_hazard_ratio
        lam_p = self.progression.cumulative_hazard(t)
        return ((1.0 - p) * np.exp(-lam_p) + p * np.exp(-rho * lam_p)) * np.exp(-self.death.cumulative_hazard(t))

    def progression_density(self, u) -> np.ndarray:
        """f_prog(u): density of progressing (before death) at u months (any shape)."""
        u = np.asarray(u, dtype=np.float64)
        p, rho = self.response_probability, self.responder_hazard_ratio
        lam_p = self.progression.cumulative_hazard(u)
        rate = _hazard_at(self.progression, u)
        mix = (1.0 - p) * rate * np.exp(-lam_p) + p * rho * rate * np.exp(-rho * lam_p)
        return mix * np.exp(-self.death.cumulative_hazard(u))

    def os_survival(self, t) -> np.ndarray:
        """S_OS(t) at times t (months, any shape), by Gauss-Legendre quadrature between break points
        (every time at once: each time's break points, padded with the time itself, which adds
        intervals of length 0)."""
        t = np.asarray(t, dtype=np.float64)
        flat = np.clip(t.reshape(-1), 0.0, None)
        finite = np.isfinite(flat)
        ti = np.where(finite, flat, 0.0)[:, None]
        own = np.union1d(self.progression.starts, self.death.starts)[None, :]
        q = np.asarray(self.post_progression.starts)[None, :]
        cuts = np.concatenate(
            (np.zeros_like(ti), np.broadcast_to(own, (ti.shape[0], own.shape[1])), ti - q, ti), axis=1
        )
        cuts = np.sort(np.clip(cuts, 0.0, ti), axis=1)
        lo, hi = cuts[:, :-1, None], cuts[:, 1:, None]
        u = 0.5 * (hi - lo) * _GAUSS_NODES + 0.5 * (hi + lo)
        integrand = self.progression_density(u) * self.post_progression.survival(ti[:, :, None] - u)
        progressed_alive = (0.5 * (hi - lo) * integrand * _GAUSS_WEIGHTS).sum(axis=(1, 2))
        out = np.where(finite, self.pfs_survival(ti[:, 0]) + progressed_alive, 0.0)
        return out.reshape(t.shape)

    def survival(self, endpoint: str, t) -> np.ndarray:
        """``pfs_survival`` or ``os_survival`` by name ('pfs' or 'os')."""
        if endpoint == "pfs":
            return self.pfs_survival(t)
        if endpoint == "os":
            return self.os_survival(t)
        raise ValueError(f"endpoint must be 'pfs' or 'os', got {endpoint!r}")

    def median(self, endpoint: str) -> float:
        """The median of PFS or OS (months), to 1e-10."""
        hi = 1.0
        while float(self.survival(endpoint, hi)) > 0.5:
            hi *= 2.0
            if hi > 1e6:
                return math.inf
        return float(brentq(lambda t: float(self.survival(endpoint, t)) - 0.5, 0.0, hi, xtol=1e-10))

    def death_share_of_pfs_events(self) -> float:
        """The share of PFS events that are deaths without progression (exact, by quadrature)."""
        from scipy.integrate import quad

        def death_density(u):
            return float(_hazard_at(self.death, np.array(u)) * self.pfs_survival(u))

        breaks = sorted(set(self.progression.starts) | set(self.death.starts))
        total, edges = 0.0, [*breaks, math.inf]
        for a, b in zip(edges[:-1], edges[1:]):
            total += quad(death_density, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        return total

    # ------------------------------------------------------------------ sampling

    def sample(self, u_response, u_progression, u_death, u_post) -> Outcomes:
        """Joint outcomes from four arrays of uniforms in (0, 1) of one shape (one per patient)."""
        responder = np.asarray(u_response) < self.response_probability
        e_prog = -np.log(u_progression)
        if self.responder_hazard_ratio != 1.0:
            e_prog = np.where(responder, e_prog / self.responder_hazard_ratio, e_prog)
        t_prog = inverse_cumulative_hazard(self.progression, e_prog)
        t_death = inverse_cumulative_hazard(self.death, -np.log(u_death))
        after = inverse_cumulative_hazard(self.post_progression, -np.log(u_post))
        progressed = t_prog < t_death
        pfs = np.minimum(t_prog, t_death)
        return Outcomes(responder, pfs, np.where(progressed, t_prog + after, t_death), progressed)


def calibrate(
    response_rate: float, median_pfs: float, median_os: float, responder_hazard_ratio: float, death_share: float
) -> IllnessDeath:
    """Constant hazards reproducing a response rate, a median PFS and a median OS (months).

    responder_hazard_ratio: rho, the responders' progression hazard relative to non-responders';
    death_share: the share of PFS events that are deaths without progression. Raises ValueError
    naming the input when no model has these values (for instance a median OS not above the
    median PFS)."""
    p = float(response_rate)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"response_rate must be in [0, 1), got {response_rate!r}")
    rho = float(responder_hazard_ratio)
    if not (math.isfinite(rho) and 0.0 < rho):
        raise ValueError(f"responder_hazard_ratio must be finite and > 0, got {responder_hazard_ratio!r}")
    share = float(death_share)
    if not 0.0 < share < 1.0:
        raise ValueError(f"death_share must be in (0, 1), got {death_share!r}")
    m_pfs, m_os = float(median_pfs), float(median_os)
    if not (math.isfinite(m_pfs) and m_pfs > 0.0):
        raise ValueError(f"median_pfs must be finite and > 0, got {median_pfs!r}")
    if not (math.isfinite(m_os) and m_os > m_pfs):
        raise ValueError(f"median_os ({median_os!r}) must exceed median_pfs ({median_pfs!r}): every death ends PFS")

    # death hazard kappa * lambda_P: a responder's PFS event is a death with probability kappa / (rho + kappa)
    def share_at(kappa: float) -> float:
        return (1.0 - p) * kappa / (1.0 + kappa) + p * kappa / (rho + kappa) - share

    # share_at rises from -share (kappa = 0) to 1 - share (kappa -> inf), and share_at(kappa) <=
    # kappa ((1 - p) + p / rho) - share, so the root lies above half of share / ((1 - p) + p / rho):
    # a bracket that holds for any share in (0, 1), however small or close to 1
    low = 0.5 * share / ((1.0 - p) + p / rho)
    if not low >= sys.float_info.min:  # a subnormal bracket: no tolerance can be put on the root
        raise ValueError(f"death_share ({death_share!r}) is too small to calibrate a death hazard from")
    high = max(1.0, 2.0 * low)
    while share_at(high) <= 0.0:
        high *= 10.0
        if not math.isfinite(high):
            raise ValueError(f"death_share ({death_share!r}) cannot be reached with responder_hazard_ratio {rho!r}")
    kappa = brentq(share_at, low, high, xtol=min(1e-14, 1e-3 * low), rtol=1e-13)

    def pfs_half(lam: float) -> float:
        surv = (1.0 - p) * math.exp(-lam * m_pfs) + p * math.exp(-rho * lam * m_pfs)
        return surv * math.exp(-kappa * lam * m_pfs) - 0.5

    # pfs_half falls from 0.5 at lam = 0 toward -0.5: bracket [0, lam_high], with lam_high grown
    # until it is past the root (a fixed upper end misses it when kappa is huge or tiny)
    lam_high = 1.0 / m_pfs
    while pfs_half(lam_high) >= 0.0:
        lam_high *= 2.0
    lam = brentq(pfs_half, 0.0, lam_high, xtol=1e-15 * lam_high, rtol=1e-13)
    progression = PiecewiseExponential.exponential(lam)
    death = PiecewiseExponential.exponential(kappa * lam)

    def model(q: float) -> IllnessDeath:
        return IllnessDeath(p, progression, rho, death, PiecewiseExponential.exponential(q))

    def os_half(log_q: float) -> float:
        return float(model(math.exp(log_q)).os_survival(m_os)) - 0.5

    lo, hi = math.log(1e-6), math.log(1e4)
    if os_half(lo) < 0.0:
        raise ValueError(
            f"median_os ({median_os!r}) is too long for median_pfs ({median_pfs!r}) and death_share "
            f"({death_share!r}): even without post-progression deaths half the patients die earlier"
        )
    return model(math.exp(brentq(os_half, lo, hi, xtol=1e-13, rtol=1e-13)))
