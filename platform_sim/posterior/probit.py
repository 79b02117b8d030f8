"""BATTLE's hierarchical probit model: exact posterior of every treatment x marker-group
disease control rate, vectorized over simulated trials, and the trial's allocation and
decision rules.

The model (Zhou, Liu, Kim, Herbst & Lee, Clin Trials 2008;5:181-193; see docs/probit_model.md
for what was verified and what is an assumption). For treatment j and marker group k, patient
i has a latent z_ijk ~ N(mu_jk, 1) and disease control at 8 weeks y_ijk = 1{z_ijk > 0}, so the
disease control rate (DCR) is gamma_jk = Phi(mu_jk). Marker groups borrow within a treatment:

    mu_jk | phi_j ~ N(phi_j, sigma^2),     phi_j ~ N(phi_mean, tau^2),

with sigma, tau and phi_mean fixed (:class:`ProbitPrior`). Treatments share no parameter, so
the posterior factorises by treatment. With y_k disease controls among n_k patients of one
treatment in group k and L_k(mu) = Phi(mu)^y_k (1 - Phi(mu))^(n_k - y_k):

    p(phi | data) ∝ N(phi; phi_mean, tau^2) prod_k m_k(phi),
    m_k(phi)      = ∫ N(mu; phi, sigma^2) L_k(mu) d mu,
    E[g(mu_k) | data] = ∫ p(phi | data) [∫ g(mu) N(mu; phi, sigma^2) L_k(mu) d mu / m_k(phi)] d phi

for g(mu) = Phi(mu) (posterior mean DCR), Phi(mu)^2 (its second moment) and
1{mu > Phi^-1(c)} (Pr(DCR > c | data)). :func:`probit_posterior` computes these nested
integrals by deterministic quadrature, no sampling:

* phi: the trapezoid rule on a uniform grid (spectrally accurate for smooth integrands that
  vanish at both ends). The grid is centred on the mode of a Laplace approximation of
  p(phi | data) and spans +-9 of its standard deviations. Its spacing is 0.8 times the
  narrowest scale an integrand in phi can have, 1 / sqrt(1/tau^2 + (K_obs + 1) / sigma^2):
  each of the K_obs groups with patients adds less than 1/sigma^2 to the curvature of
  log p(phi | data), and the conditional expectations vary on scales of at least sigma. The
  exact log posterior is log-concave, so the mass beyond an end node is at most its density
  over the secant slope of the last two nodes; the range is widened until that bound is below
  1e-13 of the total.
* mu_k for a group with patients: one set of nodes per group serves every phi node. The
  range runs from where the conditional log posterior of mu_k given the lowest phi node has
  fallen 40 below its mode to where that given the highest phi node has (found by Newton
  steps from outside, which cannot undershoot). It is cut at every Phi^-1(c), so that
  Pr(mu_k > Phi^-1(c)) is a sum over whole panels, and into Gauss-Legendre panels of 8 nodes
  whose width is 1.6 times the narrowest local scale of the integrand on the panel,
  1 / sqrt(1 + 1/sigma^2 + y i(left) + (n - y) i(-right)), where i(x) = -d^2/dx^2 log Phi(x)
  decreases from 1 to 0 and the 1 is the scale of the factor Phi(mu) of the moments. Panels
  are narrow where the likelihood is sharp and wide in its tails, so a group of 500 patients
  costs no more nodes than a group of 5 (about 100-190).
* mu_k for a group without patients is integrated in closed form: given phi, mu_k ~
  N(phi, sigma^2), so E[Phi(mu_k)] = Phi(phi / sqrt(1 + sigma^2)), Pr(mu_k > a) =
  Phi((phi - a) / sigma) and E[Phi(mu_k)^2] is a bivariate normal probability (Owen's T).

Accuracy (tests/test_probit.py): against a brute-force grid that does not adapt to the data
and against nested adaptive quadrature (scipy), the posterior mean, sd and Pr(DCR > c) agree
to 2e-11 (absolute) on 9 fixed and 160 random data sets of 1-5 groups with 0 to 500 patients,
all-success, no-success and empty groups, under priors with sigma from 0.05 to 5 and tau from
0.1 to 10. The promise is 1e-7 (``ACCURACY``). Cost: about 100-190 mu nodes per group with
patients and 30 phi nodes per treatment for the default prior; 40,000-55,000 group
posteriors per CPU second for 4 treatments x 5 groups
(``python -m platform_sim.posterior.probit``).

A hyperprior on sigma (or tau) instead of a fixed value: :func:`probit_posterior_mixture`
mixes the fixed-prior posteriors over a grid of priors by their marginal likelihoods
(``ProbitPosterior.log_evidence``).

Rules of the trial (Zhou et al. 2008; Kim et al., Cancer Discovery 2011;1:44-53):
:func:`battle_randomization` (probabilities proportional to the posterior mean DCR of the
open treatments in the patient's marker group), :func:`battle_suspension` and
:func:`battle_effective`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)

__all__ = [
    "ACCURACY",
    "BATTLE_EFFECTIVE_PROB",
    "BATTLE_NULL_DCR",
    "BATTLE_SUSPEND_PROB",
    "BATTLE_TARGET_DCR",
    "ProbitPosterior",
    "ProbitPrior",
    "battle_effective",
    "battle_randomization",
    "battle_suspension",
    "probit_posterior",
    "probit_posterior_mixture",
    "warm_up",
]

ACCURACY = 1e-7  # promised absolute error of mean, sd and Pr(DCR > c) (measured: < 1e-8)

# --------------------------------------------------------------------------- quadrature settings
_GL_NODES = 8  # Gauss-Legendre nodes per mu panel
_PANEL_SCALES = 1.6  # mu panel width in local scales of the integrand
_MU_DROP = 40.0  # the mu range ends where the conditional log posterior is this far below its mode
_PHI_Z = 9.0  # first phi range: Laplace mode +- this many Laplace standard deviations
_PHI_SPACING = 0.8  # phi spacing in the narrowest possible scale of log p(phi | data)
_PHI_TAIL = 1e-13  # bound on the relative posterior mass of phi left beyond the grid
_OWEN_NODES = 24  # Gauss-Legendre nodes for Owen's T function
_MAX_PHI = 4000  # most phi nodes for one treatment
_MAX_MU = 4000  # most mu nodes for one marker group

_GL_T, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_GL_T = (_GL_T + 1.0) / 2.0  # on [0, 1]
_GL_W = _GL_W / 2.0
_OW_T, _OW_W = np.polynomial.legendre.leggauss(_OWEN_NODES)
_OW_T = (_OW_T + 1.0) / 2.0
_OW_W = _OW_W / 2.0

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class ProbitPrior:
    """Hyperparameters of the hierarchical probit model, on the probit (latent normal) scale.

    mu_jk ~ N(phi_j, sigma^2) across the marker groups k of treatment j, and
    phi_j ~ N(phi_mean, tau^2). ``sigma`` sets how much marker groups borrow from each other
    (small sigma: strong borrowing), ``tau`` how vague the treatment's overall level is.
    Defaults: sigma = tau = 1, phi_mean = 0 (assumption: the published values of Zhou et al.
    2008 could not be checked against the paper; these make a cell's prior DCR Phi(N(0, 2)),
    spread over (0, 1) with prior mean 0.5; see docs/probit_model.md).
    """

    phi_mean: float = 0.0
    tau: float = 1.0
    sigma: float = 1.0

    def __post_init__(self):
        for name in ("tau", "sigma"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"ProbitPrior.{name} must be a positive finite number, got {value!r}")
        value = self.phi_mean
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"ProbitPrior.phi_mean must be a finite number, got {value!r}")


@dataclass(frozen=True)
class ProbitPosterior:
    """Posterior summaries of every treatment x marker-group DCR gamma_jk = Phi(mu_jk).

    ``mean`` and ``sd``: shape (..., J, K), the posterior mean and standard deviation of the
    DCR (a probability in [0, 1]). ``prob_above``: shape (..., J, K, C), Pr(gamma_jk > c | data)
    for each c in ``thresholds`` (in the order given). ``log_evidence``: shape (..., J), the log
    marginal likelihood of each treatment's outcomes, log p(y_j | n_j, prior), as a product of
    Bernoulli probabilities (no binomial coefficients), for comparing or mixing priors.
    """

    mean: np.ndarray
    sd: np.ndarray
    prob_above: np.ndarray
    thresholds: tuple[float, ...]
    log_evidence: np.ndarray

    def prob_above_threshold(self, threshold: float) -> np.ndarray:
        """Pr(DCR_jk > threshold | data), shape (..., J, K), for one of ``thresholds``."""
        for i, c in enumerate(self.thresholds):
            if c == threshold:
                return self.prob_above[..., i]
        raise KeyError(f"threshold {threshold!r} was not computed; thresholds are {self.thresholds}")


# --------------------------------------------------------------------------- normal helpers (compiled)


@njit(cache=True)
def _log_ndtr(x):
    """log Phi(x), accurate in both tails."""
    if x > 5.0:
        return math.log1p(-0.5 * math.erfc(x / _SQRT2))
    if x > -35.0:
        return math.log(0.5 * math.erfc(-x / _SQRT2))
    # asymptotic series of the Mills ratio; next term is below 5e-17 relative for x <= -35
    r = 1.0 / (x * x)
    series = 1.0 + r * (-1.0 + r * (3.0 + r * (-15.0 + r * (105.0 + r * (-945.0 + r * 10395.0)))))
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(series)


@njit(cache=True)
def _ndtr(x):
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True)
def _mills(x):
    """lambda(x) = phi(x) / Phi(x): the derivative of log Phi(x)."""
    return math.exp(-0.5 * x * x - _LOG_SQRT_2PI - _log_ndtr(x))


@njit(cache=True)
def _info(x):
    """i(x) = -d^2/dx^2 log Phi(x) = lambda(x) (x + lambda(x)), decreasing from 1 (x -> -inf) to 0."""
    lam = _mills(x)
    v = lam * (x + lam)
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v


@njit(cache=True)
def _loglik(y, n, mu):
    """log L(mu) = y log Phi(mu) + (n - y) log Phi(-mu)."""
    out = 0.0
    if y > 0:
        out += y * _log_ndtr(mu)
    if n - y > 0:
        out += (n - y) * _log_ndtr(-mu)
    return out


@njit(cache=True)
def _cond_logpost(y, n, mu, phi, s2):
    """Log posterior of mu given phi (up to a constant): log L(mu) - (mu - phi)^2 / (2 sigma^2)."""
    d = mu - phi
    return _loglik(y, n, mu) - 0.5 * d * d / s2


@njit(cache=True)
def _cond_grad(y, n, mu, phi, s2):
    g = -(mu - phi) / s2
    if y > 0:
        g += y * _mills(mu)
    if n - y > 0:
        g -= (n - y) * _mills(-mu)
    return g


@njit(cache=True)
def _cond_curv(y, n, mu, s2):
    """Minus the second derivative of the conditional log posterior (>= 1 / sigma^2)."""
    h = 1.0 / s2
    if y > 0:
        h += y * _info(mu)
    if n - y > 0:
        h += (n - y) * _info(-mu)
    return h


@njit(cache=True)
def _cond_mode(y, n, phi, s2, start):
    """Mode of the conditional posterior of mu given phi (strictly concave): safeguarded Newton.

    f'(mu) decreases with slope below -1/sigma^2, so the root lies between phi and
    phi + sigma^2 f'(phi): a bracket that bisection falls back to whenever Newton leaves it.
    """
    g0 = _cond_grad(y, n, phi, phi, s2)
    if g0 == 0.0:
        return phi
    if g0 > 0.0:
        lo = phi
        hi = phi + s2 * g0
    else:
        lo = phi + s2 * g0
        hi = phi
    mu = start
    if not (lo < mu < hi):
        mu = 0.5 * (lo + hi)
    for _ in range(100):
        g = _cond_grad(y, n, mu, phi, s2)
        if g > 0.0:
            lo = mu
        else:
            hi = mu
        step = g / _cond_curv(y, n, mu, s2)
        new = mu + step
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        if abs(new - mu) <= 1e-13 * (1.0 + abs(mu)) or hi - lo <= 1e-13 * (1.0 + abs(mu)):
            return new
        mu = new
    return mu


@njit(cache=True)
def _drop_point(y, n, phi, s2, mode, direction, drop):
    """The point beyond ``mode`` (direction +1 or -1) where the conditional log posterior is
    ``drop`` below its value at the mode.

    Starts at mode + direction sigma sqrt(2 drop), which is beyond that point (the log posterior
    is strictly concave with curvature >= 1/sigma^2), and takes Newton steps toward the mode: on
    a concave function they approach the point from outside and never pass it, so stopping
    early only widens the range.
    """
    target = _cond_logpost(y, n, mode, phi, s2) - drop
    x = mode + direction * math.sqrt(2.0 * drop * s2)
    for _ in range(30):
        f = _cond_logpost(y, n, x, phi, s2) - target
        if f >= 0.0:
            return x
        slope = _cond_grad(y, n, x, phi, s2)
        # slope has the sign of -direction here; the tangent's root is between x and the point
        if slope * direction >= 0.0:
            return x
        new = x - f / slope
        if abs(new - x) <= 1e-9 * (1.0 + abs(x)):
            return new
        x = new
    return x


@njit(cache=True)
def _owen_t(h, a, ow_t, ow_w):
    """Owen's T(h, a) = (1 / 2 pi) int_0^a exp(-h^2 (1 + x^2) / 2) / (1 + x^2) dx, for 0 < a <= 1."""
    total = 0.0
    for q in range(ow_t.size):
        x = a * ow_t[q]
        u = 1.0 + x * x
        total += ow_w[q] * math.exp(-0.5 * h * h * u) / u
    return total * a / (2.0 * math.pi)


# --------------------------------------------------------------------------- the kernel


@njit(cache=True)
def _laplace_phi(y_row, n_row, phi_mean, tau2, s2, mu_start):
    """Mode and sd of a Laplace approximation of p(phi | data) (used only to place the phi grid)."""
    k_groups = y_row.size
    phi = phi_mean
    sd = math.sqrt(tau2)
    for _ in range(60):
        g = -(phi - phi_mean) / tau2
        h = 1.0 / tau2
        for k in range(k_groups):
            if n_row[k] == 0:
                continue
            mu = _cond_mode(y_row[k], n_row[k], phi, s2, mu_start[k])
            mu_start[k] = mu
            info = _cond_curv(y_row[k], n_row[k], mu, s2) - 1.0 / s2
            g += (mu - phi) / s2
            # -(d/d phi)^2 of the Laplace log m_k(phi): info / (1 + sigma^2 info)
            h += info / (1.0 + s2 * info) if info > 0.0 else 0.0
        sd = 1.0 / math.sqrt(h)
        step = g / h
        limit = 3.0 * sd
        if step > limit:
            step = limit
        elif step < -limit:
            step = -limit
        phi += step
        if abs(step) <= 1e-10 * sd:
            break
    return phi, sd


@njit(cache=True)
def _mu_nodes(y, n, s2, lo, hi, cuts, gl_t, gl_w, nodes, weights):
    """Gauss-Legendre panels on [lo, hi], cut at every value of ``cuts`` inside it; returns the count."""
    count = 0
    left = lo
    c = 0
    while c < cuts.size and cuts[c] <= lo:
        c += 1
    while left < hi:
        segment_end = hi
        if c < cuts.size and cuts[c] < hi:
            segment_end = cuts[c]
        # panel width: _PANEL_SCALES local scales. The integrand's log curvature on [left, right]
        # is at most 1/s2 + y i(left) + (n - y) i(-right) because i is decreasing; the 1 added
        # is the scale of the factors Phi(mu) and Phi(mu)^2 of the moments
        curv = 1.0 + 1.0 / s2 + y * _info(left) + (n - y) * _info(-left)
        width = _PANEL_SCALES / math.sqrt(curv)
        for _ in range(4):
            right = min(left + width, segment_end)
            curv_bound = 1.0 + 1.0 / s2 + y * _info(left) + (n - y) * _info(-right)
            allowed = _PANEL_SCALES / math.sqrt(curv_bound)
            if width <= allowed * (1.0 + 1e-12):
                break
            width = allowed
        right = min(left + width, segment_end)
        if segment_end - right < 1e-3 * width:
            right = segment_end  # no sliver panel before a cut or the end
        if count + gl_t.size > nodes.size:
            return -1
        span = right - left
        for q in range(gl_t.size):
            nodes[count] = left + span * gl_t[q]
            weights[count] = span * gl_w[q]
            count += 1
        left = right
        if left >= segment_end and c < cuts.size and segment_end == cuts[c]:
            c += 1
    return count


@njit(cache=True)
def _cell_sums(y, n, m_mu, mu_nodes, mu_w, phi, m_phi, h, s2, a_cuts, per_panel, k, log_m, r1, r2, rt, scratch):
    """For one marker group with patients and every phi node i: log m_k(phi_i) and the conditional
    expectations of Phi(mu), Phi(mu)^2 and 1{mu > a_c}, by the mu quadrature (nodes in panels of
    ``per_panel``).

    The integrand at node q and phi node i is w_q exp(e_iq), e_iq = log L(mu_q) - (mu_q - phi_i)^2 / (2 sigma^2).
    Within a panel, e_iq - e_i,anchor = b_q + i log r_q is linear in i on the uniform phi grid
    (r_q = exp((mu_q - mu_anchor) h / sigma^2)), so the panel's terms are updated by one
    multiplication per node and phi node, and only one exponential per panel and phi node is
    taken. The exponents stay bounded because a panel spans less than two local scales of
    the integrand; where a bound of 600 could be passed, the terms are computed directly.
    """
    n_cuts = a_cuts.size
    n_panels = m_mu // per_panel
    v = scratch[0]
    ratio = scratch[1]
    wg = scratch[2]
    wg2 = scratch[3]
    ll = scratch[4]
    anchor_mu = scratch[5]
    anchor_ll = scratch[6]
    pan_e = scratch[7]
    pan_s0 = scratch[8]
    first_panel = scratch[11]  # first panel above each cut (as float)
    half = per_panel // 2
    phi0 = phi[0]
    direct = False
    for p in range(n_panels):
        qa = p * per_panel + half
        anchor_mu[p] = mu_nodes[qa]
        anchor_ll[p] = _loglik(y, n, mu_nodes[qa])
    for q in range(m_mu):
        p = q // per_panel
        muq = mu_nodes[q]
        ll[q] = _loglik(y, n, muq)
        g = _ndtr(muq)
        wg[q] = mu_w[q] * g
        wg2[q] = mu_w[q] * g * g
        dmu = muq - anchor_mu[p]
        log_base = ll[q] - anchor_ll[p] - dmu * (muq + anchor_mu[p] - 2.0 * phi0) / (2.0 * s2)
        log_ratio = dmu * h / s2
        if abs(log_base) + (m_phi - 1) * abs(log_ratio) > 600.0:
            direct = True
        v[q] = math.exp(log_base)
        ratio[q] = math.exp(log_ratio)
    for c in range(n_cuts):
        first_panel[c] = n_panels
        for p in range(n_panels):
            if mu_nodes[p * per_panel] > a_cuts[c]:
                first_panel[c] = p
                break
    log_norm = -0.5 * math.log(2.0 * math.pi * s2)
    for i in range(m_phi):
        p_i = phi[i]
        top = -1e300
        for p in range(n_panels):
            d = anchor_mu[p] - p_i
            e = anchor_ll[p] - 0.5 * d * d / s2
            pan_e[p] = e
            top = max(top, e)
        s0 = 0.0
        s1 = 0.0
        sq = 0.0
        for p in range(n_panels):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            q0 = p * per_panel
            if direct:
                for q in range(q0, q0 + per_panel):
                    d = mu_nodes[q] - p_i
                    t = math.exp(ll[q] - 0.5 * d * d / s2 - pan_e[p])
                    a0 += mu_w[q] * t
                    a1 += wg[q] * t
                    a2 += wg2[q] * t
            else:
                for q in range(q0, q0 + per_panel):
                    t = v[q]
                    a0 += mu_w[q] * t
                    a1 += wg[q] * t
                    a2 += wg2[q] * t
                    v[q] = t * ratio[q]
            f = math.exp(pan_e[p] - top) if pan_e[p] - top > -745.0 else 0.0
            pan_s0[p] = a0 * f
            s0 += pan_s0[p]
            s1 += a1 * f
            sq += a2 * f
        log_m[i, k] = math.log(s0) + top + log_norm
        r1[i, k] = s1 / s0
        r2[i, k] = sq / s0
        for c in range(n_cuts):
            above = 0.0
            for p in range(int(first_panel[c]), n_panels):
                above += pan_s0[p]
            rt[i, k, c] = above / s0


@njit(cache=True)
def _row(
    y_row,
    n_row,
    a_cuts,
    phi_mean,
    tau2,
    s2,
    gl_t,
    gl_w,
    ow_t,
    ow_w,
    phi,
    log_post,
    log_m,
    r1,
    r2,
    rt,
    mu_nodes,
    mu_w,
    scratch,
    mu_start,
    mean_out,
    var_out,
    tail_out,
    log_evidence,
    cost,
):
    """Posterior summaries of the K marker groups of one treatment; writes the number of phi
    nodes and of mu nodes (all groups) used to cost[0], cost[1]. Returns 0, or a negative code
    if a node budget was exceeded (-1: phi, -2: mu, -3: the phi range never covered the mass)."""
    k_groups = y_row.size
    n_cuts = a_cuts.size
    sigma = math.sqrt(s2)
    for k in range(k_groups):
        mu_start[k] = phi_mean
    phi_hat, phi_sd = _laplace_phi(y_row, n_row, phi_mean, tau2, s2, mu_start)
    k_obs = 0
    for k in range(k_groups):
        if n_row[k] > 0:
            k_obs += 1
    # the integrands in phi are p(phi | data) (log curvature below 1/tau^2 + k_obs/sigma^2) times
    # conditional expectations that vary on scales of at least sigma
    spacing = _PHI_SPACING / math.sqrt(1.0 / tau2 + (k_obs + 1.0) / s2)
    left_z = _PHI_Z
    right_z = _PHI_Z
    total_mu = 0
    for _attempt in range(12):
        lo = phi_hat - left_z * phi_sd
        hi = phi_hat + right_z * phi_sd
        m_phi = math.ceil((hi - lo) / spacing) + 1
        if m_phi > phi.size:
            return -1
        h = (hi - lo) / (m_phi - 1)
        for i in range(m_phi):
            p = lo + i * h
            phi[i] = p
            d = p - phi_mean
            log_post[i] = -0.5 * d * d / tau2
        total_mu = 0
        for k in range(k_groups):
            yk = y_row[k]
            nk = n_row[k]
            if nk == 0:
                # closed form given phi: mu ~ N(phi, sigma^2)
                scale = math.sqrt(1.0 + s2)
                a_owen = 1.0 / math.sqrt(1.0 + 2.0 * s2)
                for i in range(m_phi):
                    hh = phi[i] / scale
                    p1 = _ndtr(hh)
                    log_m[i, k] = 0.0
                    r1[i, k] = p1
                    r2[i, k] = p1 - 2.0 * _owen_t(hh, a_owen, ow_t, ow_w)
                    for c in range(n_cuts):
                        rt[i, k, c] = _ndtr((phi[i] - a_cuts[c]) / sigma)
                continue
            mode_lo = _cond_mode(yk, nk, phi[0], s2, mu_start[k])
            mode_hi = _cond_mode(yk, nk, phi[m_phi - 1], s2, mu_start[k])
            mu_lo = _drop_point(yk, nk, phi[0], s2, mode_lo, -1.0, _MU_DROP)
            mu_hi = _drop_point(yk, nk, phi[m_phi - 1], s2, mode_hi, 1.0, _MU_DROP)
            m_mu = _mu_nodes(yk, nk, s2, mu_lo, mu_hi, a_cuts, gl_t, gl_w, mu_nodes, mu_w)
            if m_mu < 0:
                return -2
            total_mu += m_mu
            _cell_sums(
                yk,
                nk,
                m_mu,
                mu_nodes,
                mu_w,
                phi,
                m_phi,
                h,
                s2,
                a_cuts,
                gl_t.size,
                k,
                log_m,
                r1,
                r2,
                rt,
                scratch,
            )
            for i in range(m_phi):
                log_post[i] += log_m[i, k]
        # normalise and check the tails (log-concave: mass beyond an end <= density / |secant slope|)
        top = -1e300
        for i in range(m_phi):
            top = max(top, log_post[i])
        total = 0.0
        for i in range(m_phi):
            total += math.exp(log_post[i] - top)
        grow = False
        slope = (log_post[1] - log_post[0]) / h
        if slope <= 0.0 or math.exp(log_post[0] - top) / slope > _PHI_TAIL * total * h:
            left_z *= 1.5
            grow = True
        slope = (log_post[m_phi - 2] - log_post[m_phi - 1]) / h
        if slope <= 0.0 or math.exp(log_post[m_phi - 1] - top) / slope > _PHI_TAIL * total * h:
            right_z *= 1.5
            grow = True
        if grow:
            continue
        for k in range(k_groups):
            e1 = 0.0
            e2 = 0.0
            for c in range(n_cuts):
                tail_out[k, c] = 0.0
            for i in range(m_phi):
                w = math.exp(log_post[i] - top) / total
                e1 += w * r1[i, k]
                e2 += w * r2[i, k]
                for c in range(n_cuts):
                    tail_out[k, c] += w * rt[i, k, c]
            mean_out[k] = e1
            var_out[k] = max(e2 - e1 * e1, 0.0)
            for c in range(n_cuts):
                v = tail_out[k, c]
                tail_out[k, c] = min(max(v, 0.0), 1.0)
        # log of int N(phi; phi_mean, tau^2) prod_k m_k(phi) d phi (trapezoid rule)
        log_evidence[0] = top + math.log(total * h) - 0.5 * math.log(2.0 * math.pi * tau2)
        cost[0] = m_phi
        cost[1] = total_mu
        return 0
    return -3


@njit(cache=True)
def _kernel(y, n, a_cuts, phi_mean, tau2, s2, gl_t, gl_w, ow_t, ow_w, mean, var, tail, log_evidence, cost):
    rows, k_groups = y.shape
    n_cuts = a_cuts.size
    phi = np.empty(_MAX_PHI)
    log_post = np.empty(_MAX_PHI)
    log_m = np.empty((_MAX_PHI, k_groups))
    r1 = np.empty((_MAX_PHI, k_groups))
    r2 = np.empty((_MAX_PHI, k_groups))
    rt = np.empty((_MAX_PHI, k_groups, max(n_cuts, 1)))
    mu_nodes = np.empty(_MAX_MU)
    mu_w = np.empty(_MAX_MU)
    scratch = np.empty((12, _MAX_MU))
    mu_start = np.empty(k_groups)
    for r in range(rows):
        status = _row(
            y[r],
            n[r],
            a_cuts,
            phi_mean,
            tau2,
            s2,
            gl_t,
            gl_w,
            ow_t,
            ow_w,
            phi,
            log_post,
            log_m,
            r1,
            r2,
            rt,
            mu_nodes,
            mu_w,
            scratch,
            mu_start,
            mean[r],
            var[r],
            tail[r],
            log_evidence[r : r + 1],
            cost[r],
        )
        if status < 0:
            cost[r, 0] = status
            return r
    return -1


# --------------------------------------------------------------------------- public API


def _whole_counts(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold whole numbers of patients, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(f"{name} must hold whole numbers of patients, got {float(arr[bad].flat[0])!r}")
    return arr.astype(np.int64)


def probit_posterior(y, n, thresholds=(0.3,), prior: ProbitPrior | None = None) -> ProbitPosterior:
    """Exact posterior summaries of the hierarchical probit model for every treatment x marker group.

    y, n: disease controls and evaluable patients, shape (..., J, K) (leading axes: simulated
    trials, looks; J treatments, K marker groups), whole numbers with 0 <= y <= n. An empty
    cell (n = 0) gets the posterior of a new group given the treatment's other groups.
    thresholds: DCR values c in (0, 1) for Pr(DCR_jk > c | data) (BATTLE: 0.3 to declare a
    treatment effective, 0.5 for suspension; see :func:`battle_suspension`).
    prior: :class:`ProbitPrior` (default ``ProbitPrior()``).

    Returns a :class:`ProbitPosterior` (mean and sd of each DCR, shape (..., J, K);
    prob_above, shape (..., J, K, C)). Deterministic quadrature, absolute error below
    ``ACCURACY`` (see the module docstring).
    """
    prior = ProbitPrior() if prior is None else prior
    if not isinstance(prior, ProbitPrior):
        raise TypeError(f"prior must be a ProbitPrior, got {type(prior).__name__}")
    y_arr = _whole_counts("y", y)
    n_arr = _whole_counts("n", n)
    if y_arr.shape != n_arr.shape:
        raise ValueError(f"y and n must have the same shape (..., J, K), got {y_arr.shape} and {n_arr.shape}")
    if y_arr.ndim < 2 or y_arr.shape[-1] == 0 or y_arr.shape[-2] == 0:
        raise ValueError(f"y and n need axes (..., J treatments, K marker groups), got shape {y_arr.shape}")
    if np.any(n_arr < 0) or np.any(y_arr < 0) or np.any(y_arr > n_arr):
        bad = np.argwhere((n_arr < 0) | (y_arr < 0) | (y_arr > n_arr))[0]
        idx = tuple(int(i) for i in bad)
        raise ValueError(f"counts must satisfy 0 <= y <= n; at index {idx}: y = {y_arr[idx]}, n = {n_arr[idx]}")
    thr = tuple(float(c) for c in np.atleast_1d(np.asarray(thresholds, dtype=float)))
    for c in thr:
        if not (0.0 < c < 1.0):
            raise ValueError(f"thresholds must be DCR values strictly between 0 and 1, got {c!r}")
    from scipy.special import ndtri

    # the kernel takes distinct thresholds in increasing order (as cuts of the mu range)
    distinct, position = np.unique(np.asarray(thr, dtype=float), return_inverse=True)
    a_sorted = np.ascontiguousarray(ndtri(distinct))
    batch = y_arr.shape[:-1]
    k_groups = y_arr.shape[-1]
    rows = int(np.prod(batch, dtype=np.int64))
    y2 = np.ascontiguousarray(y_arr.reshape(rows, k_groups))
    n2 = np.ascontiguousarray(n_arr.reshape(rows, k_groups))
    mean = np.empty((rows, k_groups))
    var = np.empty((rows, k_groups))
    tail = np.empty((rows, k_groups, max(distinct.size, 1)))
    log_evidence = np.empty(rows)
    cost = np.zeros((rows, 2), dtype=np.int64)
    failed = _kernel(
        y2,
        n2,
        a_sorted,
        float(prior.phi_mean),
        float(prior.tau) ** 2,
        float(prior.sigma) ** 2,
        _GL_T,
        _GL_W,
        _OW_T,
        _OW_W,
        mean,
        var,
        tail,
        log_evidence,
        cost,
    )
    if failed >= 0:
        where = np.unravel_index(failed, batch)
        reason = {
            -1: f"the phi grid would need more than {_MAX_PHI} nodes (its spacing is below sigma / sqrt(K + 1); "
            f"tau / sigma = {prior.tau / prior.sigma:.3g} is too large: keep it below about 70)",
            -2: f"a marker group would need more than {_MAX_MU} mu nodes",
            -3: "the phi range did not cover the posterior after 12 widenings",
        }.get(int(cost[failed, 0]), f"code {int(cost[failed, 0])}")
        raise RuntimeError(
            f"probit_posterior: quadrature failed for counts y = {y2[failed].tolist()}, n = {n2[failed].tolist()} "
            f"at index {tuple(int(i) for i in where)} with {prior}: {reason}"
        )
    tail = tail[:, :, position.ravel()] if thr else tail[:, :, :0]
    return ProbitPosterior(
        mean=mean.reshape(y_arr.shape),
        sd=np.sqrt(var).reshape(y_arr.shape),
        prob_above=tail.reshape(y_arr.shape + (len(thr),)),
        thresholds=thr,
        log_evidence=log_evidence.reshape(batch),
    )


def probit_posterior_mixture(y, n, priors, weights=None, thresholds=(0.3,)) -> ProbitPosterior:
    """The posterior under a discrete hyperprior over :class:`ProbitPrior` values.

    For a design that puts a prior on sigma (or tau, or phi_mean) rather than fixing it:
    ``priors`` is a sequence of S ProbitPrior (say a grid of sigma values) and ``weights``
    their prior probabilities (default equal; normalised here). Each treatment's posterior is
    the mixture of its fixed-prior posteriors with weights proportional to
    weight_s * p(y_j | n_j, prior_s) (``log_evidence``): exact for a discrete hyperprior, a
    quadrature rule for a continuous one whose nodes and weights are passed. Costs S calls of
    :func:`probit_posterior`. Arguments and shapes as there; the returned ``log_evidence`` is
    that of the mixture.
    """
    priors = list(priors)
    if not priors:
        raise ValueError("priors must hold at least one ProbitPrior")
    for i, prior in enumerate(priors):
        if not isinstance(prior, ProbitPrior):
            raise TypeError(f"priors[{i}] must be a ProbitPrior, got {type(prior).__name__}")
    w = np.full(len(priors), 1.0 / len(priors)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(priors),) or np.any(~np.isfinite(w)) or np.any(w < 0.0) or not w.sum() > 0.0:
        raise ValueError(f"weights must be {len(priors)} non-negative numbers with a positive sum, got {weights!r}")
    w = w / w.sum()
    posts = [probit_posterior(y, n, thresholds=thresholds, prior=prior) for prior in priors]
    with np.errstate(divide="ignore"):
        log_joint = np.stack([np.log(ws) + post.log_evidence for ws, post in zip(w, posts)])  # (S, ..., J)
    top = log_joint.max(axis=0)
    mix = np.exp(log_joint - top)
    total = mix.sum(axis=0)
    mix /= total
    mean = sum(m[..., None] * post.mean for m, post in zip(mix, posts))
    second = sum(m[..., None] * (post.sd**2 + post.mean**2) for m, post in zip(mix, posts))
    above = sum(m[..., None, None] * post.prob_above for m, post in zip(mix, posts))
    return ProbitPosterior(
        mean=mean,
        sd=np.sqrt(np.maximum(second - mean**2, 0.0)),
        prob_above=above,
        thresholds=posts[0].thresholds,
        log_evidence=top + np.log(total),
    )


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the kernels on a tiny problem."""
    probit_posterior(np.array([[[0, 1], [2, 0]]]), np.array([[[1, 2], [3, 0]]]), thresholds=(0.3, 0.5))


# --------------------------------------------------------------------------- BATTLE's rules

# Zhou et al. 2008 / Kim et al. 2011 (see docs/probit_model.md for what is verified):
BATTLE_NULL_DCR = 0.3  # a treatment is effective in a group if Pr(DCR > 0.3 | data) > 0.8
BATTLE_EFFECTIVE_PROB = 0.8
BATTLE_TARGET_DCR = 0.5  # suspended in a group if Pr(DCR > 0.5 | data) < 0.1 (recalled, not checked: docs)
BATTLE_SUSPEND_PROB = 0.1


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def battle_randomization(mean_dcr, open_arms=None) -> np.ndarray:
    """BATTLE's adaptive randomization probabilities, for a patient of each marker group.

    mean_dcr: posterior mean DCR of every treatment x marker group, shape (..., J, K) (for
    example ``probit_posterior(y, n).mean``). open_arms: boolean, broadcastable to the same
    shape; False where treatment j is closed to group k (suspended, or not yet in the trial);
    default all open.

    Returns an array of shape (..., J, K): entry [..., j, k] is the probability that the next
    patient of marker group k is randomized to treatment j, proportional to the posterior mean
    DCR of the open treatments in group k (Zhou et al. 2008: the randomization rate of a
    treatment in a marker group is its posterior mean DCR there, normalised over the
    treatments). Columns sum to 1 over the J axis; a group in which every treatment is closed
    gets a column of zeros (no treatment to randomize to). BATTLE randomized its first patients
    equally (97 of them, Kim et al. 2011) before switching to this rule: that burn-in belongs
    to the trial's conduct, not to this function.
    """
    mean = np.asarray(mean_dcr, dtype=float)
    if mean.ndim < 2:
        raise ValueError(f"mean_dcr needs axes (..., J treatments, K marker groups), got shape {mean.shape}")
    if np.any(~np.isfinite(mean)) or np.any(mean < 0.0) or np.any(mean > 1.0):
        bad = float(mean[~(np.isfinite(mean) & (mean >= 0.0) & (mean <= 1.0))].flat[0])
        raise ValueError(f"mean_dcr must hold disease control rates in [0, 1], got {bad!r}")
    if open_arms is None:
        weight = mean
    else:
        mask = np.asarray(open_arms)
        if mask.dtype != bool:
            raise ValueError(f"open_arms must be a boolean array, got dtype {mask.dtype}")
        try:
            mask = np.broadcast_to(mask, mean.shape)
        except ValueError:
            raise ValueError(
                f"open_arms of shape {np.shape(open_arms)} does not broadcast to mean_dcr's shape {mean.shape}"
            ) from None
        weight = np.where(mask, mean, 0.0)
    total = weight.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0.0, weight / np.where(total > 0.0, total, 1.0), 0.0)


def battle_suspension(prob_above_target, cutoff: float = BATTLE_SUSPEND_PROB) -> np.ndarray:
    """BATTLE's suspension rule: True where treatment j should be closed to marker group k.

    prob_above_target: Pr(DCR_jk > 0.5 | data), shape (..., J, K) (``posterior.prob_above_threshold(0.5)``
    after ``probit_posterior(y, n, thresholds=(0.3, 0.5))``). A treatment is suspended from
    randomization in a group when this probability falls below ``cutoff`` (0.1). The rule as
    recalled from Zhou et al. 2008 (target DCR 0.5, cutoff 0.1) could not be checked against
    the paper's text; both numbers are parameters (the target through the threshold passed to
    :func:`probit_posterior`). Whether a suspension is final, or lifted when the probability
    recovers through borrowing from other groups, is the trial's conduct and left to the caller.
    """
    cutoff = _probability("cutoff", cutoff)
    prob = np.asarray(prob_above_target, dtype=float)
    return prob < cutoff


def battle_effective(prob_above_null, cutoff: float = BATTLE_EFFECTIVE_PROB) -> np.ndarray:
    """BATTLE's decision rule: True where treatment j is declared effective in marker group k.

    prob_above_null: Pr(DCR_jk > 0.3 | data), shape (..., J, K) (``posterior.prob_above_threshold(0.3)``).
    Effective when this posterior probability exceeds ``cutoff`` (0.8) at the end of the trial
    (Zhou et al. 2008; Kim et al. 2011).
    """
    cutoff = _probability("cutoff", cutoff)
    prob = np.asarray(prob_above_null, dtype=float)
    return prob > cutoff


def _benchmark(trials: int = 2000, treatments: int = 4, groups: int = 5, repeats: int = 3) -> None:
    """Cell posteriors per CPU second for BATTLE-sized looks (``python -m platform_sim.posterior.probit``).

    Timed by process CPU time, so that other work on a shared machine does not count; the
    kernel runs on one core.
    """
    import time

    warm_up()
    rng = np.random.default_rng(0)
    print(f"{trials} trial-looks of {treatments} treatments x {groups} marker groups, thresholds (0.3, 0.5)")
    for n_max in (0, 5, 20, 60, 200, 500):
        n = rng.integers(0, n_max + 1, (trials, treatments, groups))
        y = rng.binomial(n, rng.uniform(0.1, 0.7, (trials, treatments, groups)))
        best = math.inf
        for _ in range(repeats):
            t0 = time.process_time()
            probit_posterior(y, n, thresholds=(0.3, 0.5))
            best = min(best, time.process_time() - t0)
        print(
            f"patients per cell 0-{n_max:>3}: {trials / best:8.0f} trial-looks per CPU second, "
            f"{trials * treatments * groups / best:9.0f} cell posteriors per CPU second"
        )


if __name__ == "__main__":
    _benchmark()
