"""Exact posterior probabilities for independent beta posteriors, vectorized over trials.

Every probability the decision rules need is a one-dimensional integral of
beta densities and distribution functions: P(arm k is best), P(X_k > X_c + d),
P(|X_k - X_c| < m), P(max - min < m). We compute them by composite quadrature
on a grid that adapts to each trial's posteriors:

* Each distribution ("component": a Beta(a, b) variable, possibly shifted by a
  constant) contributes breakpoints at its mean + z * sd for z in ``_Z``,
  clipped to its support. The sorted union of the breakpoints of all components
  of a trial cuts the line into panels; every panel gets ``_Q`` (8) Gauss-Legendre
  nodes, with the smoothstep substitution x = u + h (3t^2 - 2t^3) on a panel at
  a support boundary, which removes the integrable endpoint singularities of
  beta densities with a or b in [1/2, 1). Panels are therefore never wider than
  a fraction of the narrowest posterior that has mass there, whether an arm has
  3 patients or 30,000 (a fixed grid on [0, 1] fails as soon as posteriors get
  narrow). A grid whose every component has both shapes at least 20 (close to
  normal) gets ``_Q_SMOOTH`` (6) nodes per panel; a component whose tails beyond
  8 sd provably hold less than 1e-8 gets no breakpoints at +-16 sd (``_LIGHT_TAIL``).
* Densities are evaluated in closed form at the nodes; distribution functions
  are obtained on the same nodes by spectral integration (the exact integral of
  the polynomial interpolating the density on each panel), so no incomplete
  beta function is evaluated. Beyond 16 standard deviations a component's
  density is taken as 0, and each component is normalized to total mass 1.

The per-trial work runs in small compiled kernels (numba), one trial after the
other, with no Python loop over trials. A grid is filled in passes over all its
nodes, with exp and log computed by branch-free functions the compiler vectorizes;
``reference=True`` fills the same grid node by node with the C library's exp and
log (the two differ by rounding only, tests/test_posterior_fast.py). Accuracy is better than 1e-6 against
adaptive quadrature with exact incomplete beta functions for a, b >= 1/2 (see
tests/test_posterior.py; on grids of six nodes per panel the largest error measured is 2.1e-7).

All functions work on the "higher is better" scale. For an endpoint where
lower is better, pass Beta(b, a) (the posterior of 1 - p): see :func:`oriented`.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit
from scipy import special

from .. import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .._sorting import sort_values

# Breakpoints in posterior standard deviations around the mean (clipped to the support).
_Z = np.array([-16.0, -8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0, 16.0])
_Q = 8  # Gauss-Legendre nodes per panel (the fast grid writes a panel's nodes out: _spectral)
# Nodes per panel of a grid whose every component has both shapes at least _SMOOTH_SHAPE: such
# densities are close to normal, and 6 nodes keep the error within 2.1e-7 of brute-force quadrature
# on 3,000 random pairs and 600 sets of four arms (test_smooth_grids_census), against 4.6e-8 with 8
# on the same cases.
_Q_SMOOTH = 6
_SMOOTH_SHAPE = 20.0
_SMOOTH_REACH = 6.0  # ... and mean +- this many sd inside (0, 1) (_is_smooth)
_TAIL = 16.0  # a component's density is 0 beyond this many standard deviations
_TAIL_HEAVY = 64.0  # the same for skewed posteriors (a or b < 2), whose tails are heavy in sd units
_Z_HEAVY = np.array([-64.0, -40.0, -24.0, 24.0, 40.0, 64.0])  # their extra tail breakpoints
_GRADES = 30  # breakpoints refined geometrically toward a singular support boundary
_GRADE_RATIO = 0.5  # ratio of consecutive distances of graded breakpoints to the boundary
# ... at most: toward an end where the density vanishes (shape at least 1), the grading stops at the
# first breakpoint beyond which the component provably holds less than exp(_LOG_GRADE_MASS) (_grades)
_LOG_GRADE_MASS = math.log(1e-10)
_MIN_GAP = 0.3  # panels narrower than this many (narrowest) standard deviations are merged
# A component whose mass beyond 8 sd is provably below 1e-8 on either side gets no breakpoints at
# +-16 sd. Beta(a, b) is sub-Gaussian with variance proxy 1/(4 (a + b + 1)) (Marchal & Arbel, "On the
# sub-Gaussianity of the Beta and Dirichlet distributions", Electron. Commun. Probab. 22(54), 2017), so
# P(X - mean > 8 sd) <= exp(-2 (a + b + 1) (8 sd)^2) = exp(-128 p (1 - p)) with p = a / (a + b), and
# the same below: exp(-_LIGHT_TAIL) = 1e-8.
_LIGHT_TAIL = math.log(1e8)
# _component_breakpoints drops the outermost entries of _Z, which must be -+16 around -+8 (128 = 2 * 8^2)
assert _Z[1] == -8.0 and _Z[-2] == 8.0 and _Z[0] < _Z[1] and _Z[-1] > _Z[-2]


def _panel_rule(q: int):
    """Nodes (in x-fraction), Jacobian * weight, weights and spectral integration matrix on one panel."""
    t, w = np.polynomial.legendre.leggauss(q)
    t = (t + 1.0) / 2.0
    w = w / 2.0
    # integ[i, j] = integral from 0 to t_i of the j-th Lagrange basis polynomial on the nodes t.
    vander = np.vander(t, q, increasing=True)
    powers = np.arange(1, q + 1)
    antider = t[:, None] ** powers[None, :] / powers[None, :]
    integ = antider @ np.linalg.inv(vander)
    smooth = 3 * t**2 - 2 * t**3
    dsmooth = 6 * t * (1 - t)
    phi = np.stack([t, smooth])  # row 0: plain Gauss-Legendre; row 1: smoothstep for boundary panels
    dphi = np.stack([np.ones_like(t), dsmooth])
    return phi, dphi, w, integ


_PHI, _DPHI, _W, _S = _panel_rule(_Q)
_ST = np.ascontiguousarray(_S.T)  # the fast grid reads it along q
_PHI6, _DPHI6, _W6, _S6 = _panel_rule(_Q_SMOOTH)
_ST6 = np.ascontiguousarray(_S6.T)


def oriented(a, b, higher_is_better: bool):
    """Posterior parameters on the scale where higher is better (Beta(b, a) is the posterior of 1 - p)."""
    return (a, b) if higher_is_better else (b, a)


def beta_interval(a, b, level: float = 0.95):
    """Equal-tailed credible interval of Beta(a, b), elementwise. The quantiles are computed once
    per distinct (a, b): a batch's posteriors repeat (counts plus the same prior), and one
    quantile costs about 0.6 us."""
    tail = (1.0 - level) / 2.0
    a, b = np.asarray(a), np.asarray(b)
    if np.result_type(a, b, tail) != np.float64 or np.broadcast(a, b).size < _DISTINCT_FROM:
        return special.betaincinv(a, b, tail), special.betaincinv(a, b, 1.0 - tail)
    a, b = np.broadcast_arrays(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))
    both = np.empty(a.size, dtype=np.complex128)  # (a, b) as one number, for np.unique
    both.real, both.imag = a.ravel(), b.ravel()
    # np.unique keeps one of the pairs holding a NaN: betaincinv gives NaN for each alike
    pairs, where = np.unique(both, return_inverse=True)
    lower = special.betaincinv(pairs.real, pairs.imag, tail)[where].reshape(a.shape)
    upper = special.betaincinv(pairs.real, pairs.imag, 1.0 - tail)[where].reshape(a.shape)
    return lower, upper


_DISTINCT_FROM = 64  # elements from which beta_interval looks for repeated posteriors


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _lgamma_halves(n):
    """lgamma(k / 2) for k = 0 .. n - 1 (inf at 0), by the compiled lgamma the kernels call."""
    out = np.empty(n)
    out[0] = math.inf
    for k in range(1, n):
        out[k] = math.lgamma(k / 2.0)
    return out


# lgamma at the whole and half-whole numbers below 4,096 that a beta posterior's shapes and their sums
# take (counts plus a prior of whole or half-whole shapes): read, not computed (1.4 against 8.8 ns).
# The kernels hold the table as it was when they were compiled (at installation, on the same
# machine): the C library's lgamma, which the other arguments call, if it changes later, may then
# differ from it in the last bit.
_LGAMMA_HALVES = _lgamma_halves(8192)


@njit(cache=True, inline="always")
def lgamma(x):
    """math.lgamma(x), read from a table at the whole and half-whole numbers below 4,096: the same
    values (the table holds what math.lgamma gives there)."""
    k = 2.0 * x
    if k >= 1.0 and k < 8192.0 and k == math.floor(k):
        return _LGAMMA_HALVES[int(k)]
    return math.lgamma(x)


@njit(cache=True)
def _grades(s, other, dist, log_beta):
    """How many graded breakpoints, at distances dist * _GRADE_RATIO**j (j = 1, 2, ...) from a support
    end, a Beta(a, b) component gets toward it: with x the distance to the end, its density there is
    x^(s - 1) (1 - x)^(other - 1) / B(a, b) (s = a, other = b at 0; s = b, other = a at 1), and
    ``log_beta`` = log B(a, b). All ``_GRADES`` when s < 1 (the density is singular at the end);
    otherwise up to the first breakpoint whose distance d leaves less than exp(``_LOG_GRADE_MASS``)
    beyond it: that mass is at most d^s max(1, (1 - d)^(other - 1)) / (s B(a, b)) (the second factor
    bounds (1 - x)^(other - 1) on [0, d]). The innermost panel then holds at most that mass, and its
    rule's estimate there lies between 0 and d times the density's largest value on it, at most s
    times that bound."""
    if s < 1.0:
        return _GRADES
    for j in range(1, _GRADES + 1):
        d = dist * _GRADE_RATIO**j
        log_mass = s * math.log(d) - math.log(s) - log_beta
        if other < 1.0:
            log_mass += (other - 1.0) * math.log1p(-d)
        if log_mass < _LOG_GRADE_MASS:
            return j
    return _GRADES


@njit(cache=True)
def _component_breakpoints(a, b, shift, mean, sd, heavy, log_beta, bps, n_bp, graded, n_graded):
    """Append one used component's breakpoints: ``_Z`` standard deviations about its mean to ``bps``
    (without +-16 for a light-tailed one: ``_LIGHT_TAIL``);
    to ``graded``, farther ones for a heavy-tailed posterior and, where the density is singular or not
    smooth at a support boundary (x^(a-1) with a below 4 and not a whole number), breakpoints refined
    geometrically toward it, which keep every panel's distance to the boundary comparable to its width
    (the innermost panel uses the smoothstep substitution). Returns the new counts (n_bp, n_graded)."""
    # a light-tailed component's outermost breakpoints are its +-8 sd ones repeated (each run keeps
    # len(_Z) sorted values for _merge_runs; a repeated edge makes no panel)
    p = a / (a + b)
    outer = 1 if not heavy and 128.0 * p * (1.0 - p) >= _LIGHT_TAIL else 0
    last = _Z.shape[0] - 1
    for z in range(_Z.shape[0]):
        zz = _Z[min(max(z, outer), last - outer)]
        bps[n_bp] = min(max(mean + zz * sd, 0.0), 1.0) + shift
        n_bp += 1
    if heavy:
        for z in range(_Z_HEAVY.shape[0]):
            graded[n_graded] = min(max(mean + _Z_HEAVY[z] * sd, 0.0), 1.0) + shift
            n_graded += 1
    if _rough(a):
        for j in range(1, _grades(a, b, mean, log_beta) + 1):
            graded[n_graded] = shift + mean * _GRADE_RATIO**j
            n_graded += 1
    if _rough(b):
        for j in range(1, _grades(b, a, 1.0 - mean, log_beta) + 1):
            graded[n_graded] = shift + 1.0 - (1.0 - mean) * _GRADE_RATIO**j
            n_graded += 1
    return n_bp, n_graded


@njit(cache=True)
def _merge_runs(values, n, run, out):
    """out[:n] = np.sort(values[:n]) when values[:n] is made of consecutive runs of ``run`` values
    each sorted in increasing order (one run per component's breakpoints): a merge of the runs,
    which gives the same array as the sort (equal values are the same number) at less cost."""
    n_runs = n // run
    head = np.empty(n_runs, dtype=np.int64)
    for r in range(n_runs):
        head[r] = r * run
    for i in range(n):
        pick = -1
        best = np.inf
        for r in range(n_runs):
            h = head[r]
            if h < (r + 1) * run and (pick < 0 or values[h] < best):
                best = values[h]
                pick = r
        out[i] = best
        head[pick] += 1
    return out


@njit(cache=True)
def _edges(bps, n_bp, graded, n_graded, min_sd, shift, use, out):
    """The panel edges: the union of breakpoints thinned (an edge closer than _MIN_GAP narrowest
    standard deviations to the previous kept edge is dropped, unless it is a support boundary of a
    component, where its density may be singular or kinked, which replaces it), then the graded
    breakpoints added. ``bps[:n_bp]``: each used component's ``_Z`` breakpoints in turn (each run
    sorted); out: (>= n_bp,) scratch the edges may be written to. Returns (edges, number kept)."""
    edges = _merge_runs(bps, n_bp, _Z.shape[0], out)
    gap = _MIN_GAP * min_sd
    # support boundaries lie at or below the largest shift or at or above 1 + the smallest: an edge
    # strictly between cannot be one
    low_end = -np.inf
    high_end = np.inf
    for c in range(shift.shape[0]):
        if use[c]:
            low_end = max(low_end, shift[c])
            high_end = min(high_end, shift[c] + 1.0)
    kept = 1
    for p in range(1, n_bp):
        e = edges[p]
        if e - edges[kept - 1] >= gap or p == n_bp - 1:
            edges[kept] = e
            kept += 1
        elif (e <= low_end or e >= high_end) and _is_boundary(e, shift, use):
            if kept > 1 and not _is_boundary(edges[kept - 1], shift, use):
                edges[kept - 1] = e
            else:
                edges[kept] = e
                kept += 1
    if n_graded:
        edges = sort_values(np.concatenate((edges[:kept], graded[:n_graded])))
        kept = edges.shape[0]
    return edges, kept


@njit(cache=True)
def _grid(a, b, shift, use, bps, weights, pdf, cdf, g):
    """Fill quadrature weights, densities and CDFs of the components of one trial.

    a, b, shift, use: (C,) parameters of component c = Beta(a, b) + shift, and
    whether it takes part (an unused component has density 0 and CDF 1).
    Scratch/output: bps (C * len(_Z),), weights (N,), pdf and cdf (C, N), g (C, Q).
    Returns the number of nodes filled.
    """
    n_comp = a.shape[0]
    lo = np.empty(n_comp)
    hi = np.empty(n_comp)
    lognorm = np.empty(n_comp)
    inside = np.zeros(n_comp, dtype=np.bool_)
    log_y = np.empty(n_comp)  # log(x - shift) and log(1 - x + shift), shared by equal shifts
    log_1my = np.empty(n_comp)
    group = np.empty(n_comp, dtype=np.int64)
    n_bp = 0
    n_graded = 0
    graded = np.empty(n_comp * (2 * _GRADES + _Z_HEAVY.shape[0]))
    min_sd = np.inf
    for c in range(n_comp):
        group[c] = c
        for d in range(c):
            if shift[d] == shift[c]:
                group[c] = d
                break
        if not use[c]:
            continue
        s = a[c] + b[c]
        mean = a[c] / s
        sd = math.sqrt(a[c] * b[c] / (s * s * (s + 1.0)))
        min_sd = min(min_sd, sd)
        # Skewed posteriors (a or b below 2: few events or few non-events) have tails
        # that are heavy in units of sd; they get farther tail breakpoints and cutoff.
        heavy = a[c] < 2.0 or b[c] < 2.0
        tail = _TAIL_HEAVY if heavy else _TAIL
        lo[c] = max(mean - tail * sd, 0.0) + shift[c]
        hi[c] = min(mean + tail * sd, 1.0) + shift[c]
        lognorm[c] = lgamma(a[c]) + lgamma(b[c]) - lgamma(s)
        n_bp, n_graded = _component_breakpoints(
            a[c], b[c], shift[c], mean, sd, heavy, lognorm[c], bps, n_bp, graded, n_graded
        )
    edges, kept = _edges(bps, n_bp, graded, n_graded, min_sd, shift, use, np.empty(n_bp))
    n = 0
    mass = np.zeros(n_comp)
    state = (a, b, shift, use, lo, hi, lognorm, group, inside, log_y, log_1my, weights, pdf, cdf, g, mass)
    smooth = _is_smooth(a, b, use)
    for p in range(kept - 1):
        left = edges[p]
        right = edges[p + 1]
        if right <= left:
            continue
        singular = _is_singular_panel(left, right, a, b, shift, use)
        if smooth:
            n = _panel(left, right, 1 if singular else 0, n, state, _PHI6, _DPHI6, _W6, _S6)
        else:
            n = _panel(left, right, 1 if singular else 0, n, state, _PHI, _DPHI, _W, _S)
    for c in range(n_comp):
        if not use[c]:
            for i in range(n):
                pdf[c, i] = 0.0
                cdf[c, i] = 1.0
            continue
        total = mass[c]
        for i in range(n):
            pdf[c, i] /= total
            v = cdf[c, i] / total
            cdf[c, i] = min(max(v, 0.0), 1.0)
    return n


@njit(cache=True)
def _panel(left, right, rule, n, state, phi, dphi, w, spectral):
    """Densities and CDF increments of every component on one panel with the rule (``phi``, ``dphi``,
    ``w``, ``spectral``: :func:`_panel_rule`); returns the new node count."""
    a, b, shift, use, lo, hi, lognorm, group, inside, log_y, log_1my, weights, pdf, cdf, g, mass = state
    n_comp = a.shape[0]
    q_n = w.shape[0]
    width = right - left
    for c in range(n_comp):
        inside[c] = use[c] and not (right <= lo[c] or left >= hi[c])
    for q in range(q_n):
        x = left + width * phi[rule, q]
        dx = width * dphi[rule, q]
        weights[n + q] = dx * w[q]
        for c in range(n_comp):
            if not inside[c]:
                g[c, q] = 0.0
                continue
            y = x - shift[c]
            if y <= 0.0 or y >= 1.0:
                g[c, q] = 0.0
                continue
            r = group[c]
            if r == c or not inside[r]:
                log_y[c] = math.log(y)
                log_1my[c] = math.log1p(-y)
                r = c
            g[c, q] = math.exp((a[c] - 1.0) * log_y[r] + (b[c] - 1.0) * log_1my[r] - lognorm[c]) * dx
    for c in range(n_comp):
        if not use[c]:
            continue
        if not inside[c]:
            for q in range(q_n):
                pdf[c, n + q] = 0.0
                cdf[c, n + q] = mass[c]
            continue
        panel = 0.0
        for q in range(q_n):
            acc = 0.0
            for j in range(q_n):
                acc += spectral[q, j] * g[c, j]
            cdf[c, n + q] = mass[c] + acc
            dx = width * dphi[rule, q]  # 0 on a panel narrower than the smallest float (a subnormal shift)
            pdf[c, n + q] = g[c, q] / dx if dx > 0.0 else 0.0
            panel += w[q] * g[c, q]
        mass[c] += panel
    return n + q_n


@njit(cache=True)
def _is_smooth(a, b, use):
    """Whether every used component has both shapes at least ``_SMOOTH_SHAPE`` and its support's ends
    more than ``_SMOOTH_REACH`` sd from its mean (its grid then gets ``_Q_SMOOTH`` nodes per panel).
    Closer, the breakpoints clipped to the end leave a panel [0, mean - 4 sd] where the density is
    far from normal (it grows like x^(a - 1)), and six nodes there put another component's
    comparison off by up to 2e-6 (P(|X1 - X2| < 0.05) for Beta(13213, 707) and Beta(2705, 20))."""
    for c in range(a.shape[0]):
        if not use[c]:
            continue
        if a[c] < _SMOOTH_SHAPE or b[c] < _SMOOTH_SHAPE:
            return False
        s = a[c] + b[c]
        mean = a[c] / s
        reach = _SMOOTH_REACH * math.sqrt(a[c] * b[c] / (s * s * (s + 1.0)))
        if mean - reach <= 0.0 or mean + reach >= 1.0:
            return False
    return True


@njit(cache=True)
def _rough(shape):
    """x^(shape - 1) is singular or has a singular low-order derivative at 0."""
    return shape < 4.0 and shape != math.floor(shape)


@njit(cache=True)
def _is_singular_panel(left, right, a, b, shift, use):
    """Whether the panel [left, right] starts where some component's support starts, or ends where
    it ends, with a density singular or not smooth there: the panel then gets the smoothstep rule.
    A panel beside a support boundary on the outside (where that density is 0) keeps the plain rule:
    the smoothstep would bend the other components' smooth densities on it for nothing, and on a
    panel wide next to a narrow component's boundary, lose accuracy."""
    for c in range(shift.shape[0]):
        if use[c] and ((left == shift[c] and _rough(a[c])) or (right == shift[c] + 1.0 and _rough(b[c]))):
            return True
    return False


@njit(cache=True)
def _is_boundary(e, shift, use):
    for c in range(shift.shape[0]):
        if use[c] and (e == shift[c] or e == shift[c] + 1.0):
            return True
    return False


# --------------------------------------------------------------------------- the fast grid
#
# The same grid as :func:`_grid` (the same panels, nodes and weights, and the same sums and products
# for each node's CDF), with the nodes held in q-major order (node q of every panel, then node q + 1)
# and evaluated in passes over all nodes at once so that the compiler vectorizes them, with
# exp and log computed by the branch-free functions below instead of the C library. They are
# within a few units in the last place of the C library's, so the probabilities differ from the
# reference evaluation by rounding only (tests/test_posterior_fast.py checks 1e-12 on every
# probability, and 1e-9 is the bound the engine relies on).

# log: the algorithm of fdlibm's e_log.c (Sun Microsystems, 1993): log(x) = k ln2 + log(1 + f),
# 1 + f in [sqrt(2)/2, sqrt(2)), s = f / (2 + f), log(1 + f) = f - s (f - R(s^2)) with R its
# minimax polynomial.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT2 = 1.4142135623730951
_INV_LN2 = 1.4426950408889634
# exp: exp(x) = 2^k exp(r), |r| <= ln2 / 2, exp(r) by its Taylor polynomial of degree 13 (remainder
# below 1e-17), 2^k built from its bits in two factors so that results down to the smallest
# subnormal are right; below -745.2 (where exp rounds to 0) the result is 0.
_EXP_MIN = -745.2
_EXP_MAX = 709.0
_EXP_TAYLOR = np.array([1.0 / math.factorial(j) for j in range(13, -1, -1)])  # highest degree first


# error_model="numpy": a float division by zero gives inf or nan instead of raising, which lets
# the compiler vectorize the loops (the divisions here never divide by zero).
@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _vlog(x, out, n, mant, expo):
    """out[:n] = log(x[:n]) for positive normal x; mant, expo: (>= n,) int64 / float64 scratch."""
    xi = x.view(np.int64)
    mi = mant.view(np.int64)
    for i in range(n):
        h = xi[i]
        expo[i] = float((h >> 52) - 1023)
        mi[i] = (h & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    m = mant.view(np.float64)
    for i in range(n):
        mm = m[i]
        k = expo[i]
        big = mm > _SQRT2
        mm = mm * 0.5 if big else mm
        k = k + 1.0 if big else k
        f = mm - 1.0
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
        t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
        r = t2 + t1
        hfsq = 0.5 * f * f
        out[i] = k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _vexp(x, out, n, bits):
    """out[:n] = exp(x[:n]) (0 below -745.2); bits: (2, >= n) int64 scratch."""
    c = _EXP_TAYLOR
    b1 = bits[0]
    b2 = bits[1]
    for i in range(n):
        v = min(max(x[i], _EXP_MIN), _EXP_MAX)
        k = math.floor(v * _INV_LN2 + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = c[0]
        for j in range(1, 14):
            p = p * r + c[j]
        out[i] = p
        ki = np.int64(k)
        half = ki >> 1
        b1[i] = (half + 1023) << 52
        b2[i] = (ki - half + 1023) << 52
    s1 = b1.view(np.float64)
    s2 = b2.view(np.float64)
    for i in range(n):
        out[i] = out[i] * s1[i] * s2[i] if x[i] >= _EXP_MIN else 0.0


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _logs(x, shift, out, n, yu, scratch, mant):
    """out[:n] = log(y) and out[n:2 n] = log(1 - y) at y = x[:n] - shift (0 where y is outside
    (0, 1)); yu, scratch (>= 2 n,) float64 and mant (>= 2 n,) int64 scratch."""
    tiny = False
    for i in range(n):
        v = x[i] - shift
        ok = v > 0.0 and v < 1.0
        yu[i] = v if ok else 0.5
        yu[n + i] = 1.0 - v if ok else 0.5  # 1 - y, rounded
        tiny |= ok and v < 2.2250738585072014e-308
    _vlog(yu, out, 2 * n, mant, scratch)
    for i in range(n):
        # log1p(-y) = log(u) (-y) / (u - 1) (Kahan's correction for the rounding of u); -y when u == 1
        y = yu[i]
        d = yu[n + i] - 1.0
        out[n + i] = -y if d == 0.0 else out[n + i] * (-y / d)
    if tiny:  # subnormal y: _vlog needs a normal number
        for i in range(n):
            if yu[i] < 2.2250738585072014e-308:
                out[i] = math.log(yu[i])


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _densities(x, dxs, shift, a, b, lognorm, logs, g, n, arg, ex, bits):
    """ex[:n] = Beta(a, b) density at x - shift and g[:n] = it times the node width dxs (0 outside
    the support); logs: log(y) and log(1 - y) from :func:`_logs`."""
    am1 = a - 1.0
    bm1 = b - 1.0
    for i in range(n):
        y = x[i] - shift
        v = am1 * logs[i] + bm1 * logs[n + i] - lognorm
        arg[i] = v if (y > 0.0 and y < 1.0) else -np.inf
    _vexp(arg, ex, n, bits)
    for i in range(n):
        g[i] = ex[i] * dxs[i]


@njit(cache=True)
def _nodes(panel_left, panel_right, n_panels, any_rough, a, b, shift, use, x, dxs, weights, phi, dphi, w):
    """The fast grid's nodes x, node widths dxs and weights, in q-major order (node q of panel p
    at q * n_panels + p), with the rule (``phi``, ``dphi``, ``w``: :func:`_panel_rule`): the numbers
    :func:`_panel` computes for the reference grid (compiled, as it is, without contraction into
    fused multiply-adds). Without a rough component no panel takes the singular rule, and the
    nodes are computed row by row of the q-major order, in loops along the panels that the compiler
    vectorizes: the same products and sums."""
    q_n = w.shape[0]
    if not any_rough:
        for q in range(q_n):
            row = q * n_panels
            phi_q = phi[0, q]
            dphi_q = dphi[0, q]
            w_q = w[q]
            for p in range(n_panels):
                width = panel_right[p] - panel_left[p]
                x[row + p] = panel_left[p] + width * phi_q
                dx = width * dphi_q
                dxs[row + p] = dx
                weights[row + p] = dx * w_q
        return
    for p in range(n_panels):
        left = panel_left[p]
        right = panel_right[p]
        rule = 1 if _is_singular_panel(left, right, a, b, shift, use) else 0
        width = right - left
        for q in range(q_n):
            i = q * n_panels + p
            x[i] = left + width * phi[rule, q]
            dxs[i] = width * dphi[rule, q]
            weights[i] = dxs[i] * w[q]


@njit(cache=True, error_model="numpy")
def _spectral(g, n_panels, cdf, start, density, dxs, with_density):
    """One component's CDF on the fast grid, whose nodes are in q-major order (node q of panel p
    at q * n_panels + p), normalized to total mass 1: the mass of the panels before plus the spectral
    integral of g (density times node width) up to each node, divided by the total and clipped to
    [0, 1]; with ``with_density``, the density row is divided by the total too (0 where the node
    width is 0: a panel narrower than the smallest float). The same sums in the same order as
    :func:`_panel`, written out for a panel's eight nodes (:func:`_spectral6`: six) and run across
    panels, which the compiler vectorizes; start: (>= n_panels,) scratch."""
    m = 0.0
    for p in range(n_panels):
        panel = 0.0 + _W[0] * g[p]
        panel += _W[1] * g[1 * n_panels + p]
        panel += _W[2] * g[2 * n_panels + p]
        panel += _W[3] * g[3 * n_panels + p]
        panel += _W[4] * g[4 * n_panels + p]
        panel += _W[5] * g[5 * n_panels + p]
        panel += _W[6] * g[6 * n_panels + p]
        panel += _W[7] * g[7 * n_panels + p]
        start[p] = m
        m = m + panel
    if m == 0.0:
        raise ZeroDivisionError("a posterior has no mass on its grid")
    for p in range(n_panels):
        g0 = g[p]
        g1 = g[1 * n_panels + p]
        g2 = g[2 * n_panels + p]
        g3 = g[3 * n_panels + p]
        g4 = g[4 * n_panels + p]
        g5 = g[5 * n_panels + p]
        g6 = g[6 * n_panels + p]
        g7 = g[7 * n_panels + p]
        m0 = start[p]
        for q in range(8):
            acc = 0.0 + _ST[0, q] * g0
            acc += _ST[1, q] * g1
            acc += _ST[2, q] * g2
            acc += _ST[3, q] * g3
            acc += _ST[4, q] * g4
            acc += _ST[5, q] * g5
            acc += _ST[6, q] * g6
            acc += _ST[7, q] * g7
            cdf[q * n_panels + p] = min(max((m0 + acc) / m, 0.0), 1.0)
    if with_density:
        for i in range(n_panels * 8):
            density[i] = density[i] / m if dxs[i] > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def _spectral6(g, n_panels, cdf, start, density, dxs, with_density):
    """:func:`_spectral` for the six-node rule of smooth grids (``_Q_SMOOTH``): the same sums in the
    same order as :func:`_panel` with that rule. One function looping over a rule's nodes gives the
    same bits but costs 2.6 (8 nodes) to 3.6 (6 nodes) times as much as these written-out ones."""
    m = 0.0
    for p in range(n_panels):
        panel = 0.0 + _W6[0] * g[p]
        panel += _W6[1] * g[1 * n_panels + p]
        panel += _W6[2] * g[2 * n_panels + p]
        panel += _W6[3] * g[3 * n_panels + p]
        panel += _W6[4] * g[4 * n_panels + p]
        panel += _W6[5] * g[5 * n_panels + p]
        start[p] = m
        m = m + panel
    if m == 0.0:
        raise ZeroDivisionError("a posterior has no mass on its grid")
    for p in range(n_panels):
        g0 = g[p]
        g1 = g[1 * n_panels + p]
        g2 = g[2 * n_panels + p]
        g3 = g[3 * n_panels + p]
        g4 = g[4 * n_panels + p]
        g5 = g[5 * n_panels + p]
        m0 = start[p]
        for q in range(6):
            acc = 0.0 + _ST6[0, q] * g0
            acc += _ST6[1, q] * g1
            acc += _ST6[2, q] * g2
            acc += _ST6[3, q] * g3
            acc += _ST6[4, q] * g4
            acc += _ST6[5, q] * g5
            cdf[q * n_panels + p] = min(max((m0 + acc) / m, 0.0), 1.0)
    if with_density:
        for i in range(n_panels * 6):
            density[i] = density[i] / m if dxs[i] > 0.0 else 0.0


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _grid_fast(a, b, shift, use, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf):
    """:func:`_grid` in passes over all nodes (see above); the same outputs up to rounding, with the
    nodes in q-major order: node q of panel p at q * n_panels + p.

    Extra scratch: work (5, N), wide (2, 2 N), logs (C, 2 N) and aux (8, N) float64, bits (2, 2 N)
    and rep (C,) int64 (no allocation per trial). Densities are filled for the first ``n_pdf``
    components only (the others' CDFs are all their callers read).
    """
    n, q_n = _grid_layout(a, b, shift, use, bps, weights, work, aux, rep)
    _grid_components(0, a.shape[0], n, q_n, a, b, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf)
    return n


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _grid_layout(a, b, shift, use, bps, weights, work, aux, rep):
    """The first half of :func:`_grid_fast`: the panels, every component's tail cutoff (aux[0],
    aux[1]) and normalizing constant (aux[2]), and the nodes (work[0]), their widths (work[1]) and
    weights, with ``rep`` (the first used component with the same shift as each); returns the
    number of nodes and of nodes per panel. The components' densities and CDFs on these nodes are
    :func:`_grid_components`'s."""
    n_comp = a.shape[0]
    lo = aux[0]
    hi = aux[1]
    lognorm = aux[2]
    panel_left = aux[4]
    panel_right = aux[5]
    graded = aux[6]
    # rep[c]: the first used component with the same shift as c
    n_bp = 0
    n_graded = 0
    min_sd = np.inf
    any_rough = False  # no density singular or rough at a support boundary: no panel needs the check
    for c in range(n_comp):
        rep[c] = c
        for d in range(c):
            if use[d] and shift[d] == shift[c]:
                rep[c] = d
                break
        if not use[c]:
            continue
        s = a[c] + b[c]
        mean = a[c] / s
        sd = math.sqrt(a[c] * b[c] / (s * s * (s + 1.0)))
        min_sd = min(min_sd, sd)
        heavy = a[c] < 2.0 or b[c] < 2.0
        tail = _TAIL_HEAVY if heavy else _TAIL
        lo[c] = max(mean - tail * sd, 0.0) + shift[c]
        hi[c] = min(mean + tail * sd, 1.0) + shift[c]
        copy_of = -1  # a shifted copy of a used component has the same constant: computed once
        for d in range(c):
            if use[d] and a[d] == a[c] and b[d] == b[c]:
                copy_of = d
                break
        if copy_of >= 0:
            lognorm[c] = lognorm[copy_of]
        else:
            lognorm[c] = lgamma(a[c]) + lgamma(b[c]) - lgamma(s)
        if _rough(a[c]) or _rough(b[c]):
            any_rough = True
        n_bp, n_graded = _component_breakpoints(
            a[c], b[c], shift[c], mean, sd, heavy, lognorm[c], bps, n_bp, graded, n_graded
        )
    edges, kept = _edges(bps, n_bp, graded, n_graded, min_sd, shift, use, aux[7])
    smooth = _is_smooth(a, b, use)
    q_n = _Q_SMOOTH if smooth else _Q
    x = work[0]
    dxs = work[1]
    # the panels, then their nodes in q-major order (node q of panel p at q * n_panels + p), so
    # that the spectral integration runs across panels (:func:`_spectral`)
    n_panels = 0
    for p in range(kept - 1):
        left = edges[p]
        right = edges[p + 1]
        if right <= left:
            continue
        panel_left[n_panels] = left
        panel_right[n_panels] = right
        n_panels += 1
    if smooth:
        _nodes(panel_left, panel_right, n_panels, any_rough, a, b, shift, use, x, dxs, weights, _PHI6, _DPHI6, _W6)
    else:
        _nodes(panel_left, panel_right, n_panels, any_rough, a, b, shift, use, x, dxs, weights, _PHI, _DPHI, _W)
    return n_panels * q_n, q_n


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _grid_components(first, stop, n, q_n, a, b, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf):
    """The second half of :func:`_grid_fast`: the densities (components below ``n_pdf``) and CDFs of
    components ``first`` to ``stop - 1`` on the n nodes (q_n per panel) :func:`_grid_layout` laid
    out. A component's numbers do not depend on which others are filled: the components of a grid
    can be filled in two calls (:func:`best_row`), provided every component's ``rep`` (the first
    used component with its shift, whose call computes the shift's logs) is filled in the same call
    or an earlier one (the arms, shift 0, first; the control's shifted copies after)."""
    smooth = q_n == _Q_SMOOTH
    n_panels = n // q_n
    lo = aux[0]
    hi = aux[1]
    lognorm = aux[2]
    panel_left = aux[4]
    panel_right = aux[5]
    x = work[0]
    dxs = work[1]
    arg = work[2]
    ex = work[3]
    # log(y) and log(1 - y), y = x - shift, once per distinct shift
    for c in range(first, stop):
        if use[c] and rep[c] == c:
            _logs(x, shift[c], logs[c], n, wide[0], wide[1], bits[0])
    for c in range(first, stop):
        if not use[c]:
            for i in range(n):
                pdf[c, i] = 0.0
                cdf[c, i] = 1.0
            continue
        gc = g[c]
        # the density straight into its row when it is read, else into scratch
        density = pdf[c] if c < n_pdf else ex
        _densities(x, dxs, shift[c], a[c], b[c], lognorm[c], logs[rep[c]], gc, n, arg, density, bits)
        for p in range(n_panels):  # 0 beyond the tail cutoff
            if panel_right[p] <= lo[c] or panel_left[p] >= hi[c]:
                for q in range(q_n):
                    gc[q * n_panels + p] = 0.0
                    density[q * n_panels + p] = 0.0
        if smooth:
            _spectral6(gc, n_panels, cdf[c], work[4], density, dxs, c < n_pdf)
        else:
            _spectral(gc, n_panels, cdf[c], work[4], density, dxs, c < n_pdf)


_SCRATCH = threading.local()


def grid_scratch(n_comp: int):
    """Scratch arrays of the grid kernels for grids of ``n_comp`` components (a tuple of arrays,
    kept per thread and reused: the kernels overwrite what they read), for :func:`best_row`."""
    return _scratch(n_comp)


def _scratch(n_comp: int):
    """Scratch arrays of the kernels for grids of ``n_comp`` components, kept per thread and reused
    (the kernels overwrite what they read)."""
    cache = getattr(_SCRATCH, "by_size", None)
    if cache is None:
        cache = _SCRATCH.by_size = {}
    if n_comp not in cache:
        cache[n_comp] = _new_scratch(n_comp)
    return cache[n_comp]


def _new_scratch(n_comp: int):
    n_nodes = (n_comp * (len(_Z) + len(_Z_HEAVY) + 2 * _GRADES) - 1) * _Q
    return (
        np.empty(n_comp * len(_Z)),
        np.empty(n_nodes),
        np.empty((n_comp, n_nodes)),
        np.empty((n_comp, n_nodes)),
        np.empty((n_comp, n_nodes)),  # g: the fast grid keeps every node (the reference grid one panel)
        np.empty((5, n_nodes)),
        np.empty((n_comp, 2 * n_nodes)),
        np.empty((2, 2 * n_nodes), dtype=np.int64),
        np.empty((2, 2 * n_nodes)),
        np.empty((8, n_nodes)),
        np.empty(n_comp, dtype=np.int64),
    )


@njit(cache=True)
def _probabilities(t, n, n_arms, c, check_within, active, weights, pdf, cdf, out, vs_control, within):
    """Row t of the outputs of :func:`_prob_best_kernel` from a filled grid, node by node (the
    reference); returns the unnormalized total of P(best)."""
    for k in range(n_arms):
        vs_control[t, k] = np.nan
        within[t, k] = np.nan
        if c >= 0 and k != c and active[t, k]:
            acc = 0.0
            for i in range(n):
                acc += weights[i] * pdf[c, i] * (1.0 - cdf[k, i])
            vs_control[t, k] = min(max(acc, 0.0), 1.0)
            if check_within:  # X_c - m < X_k < X_c + m
                acc = 0.0
                for i in range(n):
                    acc += weights[i] * pdf[k, i] * (cdf[n_arms, i] - cdf[n_arms + 1, i])
                within[t, k] = min(max(acc, 0.0), 1.0)
    total = 0.0
    for k in range(n_arms):
        if not active[t, k]:
            out[t, k] = 0.0
            continue
        acc = 0.0
        for i in range(n):
            if pdf[k, i] == 0.0:
                continue
            prod = pdf[k, i] * weights[i]
            for j in range(n_arms):
                if j != k:
                    prod *= cdf[j, i]
            acc += prod
        out[t, k] = acc
        total += acc
    return total


@njit(cache=True, fastmath={"reassoc"})
def _sum(v, n):
    """v[:n].sum(), in any order (the compiler vectorizes it)."""
    acc = 0.0
    for i in range(n):
        acc += v[i]
    return acc


@njit(cache=True)
def _vs_control_sums(t, n, n_arms, c, check_within, active, weights, pdf, cdf, vs_control, within, terms):
    """Row t of ``vs_control`` (P(arm better than control c)) and, with ``check_within``, of
    ``within`` (P(|arm - control| < margin), from the control's shifted components n_arms and
    n_arms + 1) from a filled fast grid of n nodes; NaN for the control and inactive arms.
    terms: (>= n,) scratch."""
    for k in range(n_arms):
        vs_control[t, k] = np.nan
        within[t, k] = np.nan
        if c >= 0 and k != c and active[t, k]:
            for i in range(n):
                terms[i] = weights[i] * pdf[c, i] * (1.0 - cdf[k, i])
            vs_control[t, k] = min(max(_sum(terms, n), 0.0), 1.0)
            if check_within:
                for i in range(n):
                    terms[i] = weights[i] * pdf[k, i] * (cdf[n_arms, i] - cdf[n_arms + 1, i])
                within[t, k] = min(max(_sum(terms, n), 0.0), 1.0)


@njit(cache=True)
def _probabilities_fast(t, n, n_arms, c, check_within, active, a, b, weights, pdf, cdf, out, vs_control, within, terms):
    """:func:`_probabilities` with each node's term computed as there and the sums vectorized
    (the same up to the rounding of the sums), and arms with the same posterior (a, b: (K,) of
    row t) given exactly the same P(best), so that ties are exact; terms: (>= n,) scratch."""
    _vs_control_sums(t, n, n_arms, c, check_within, active, weights, pdf, cdf, vs_control, within, terms)
    total = 0.0
    for k in range(n_arms):
        if not active[t, k]:
            out[t, k] = 0.0
            continue
        twin = -1  # an earlier active arm with the same posterior has exactly the same P(best)
        for j in range(k):
            if active[t, j] and a[j] == a[k] and b[j] == b[k]:
                twin = j
                break
        if twin >= 0:
            out[t, k] = out[t, twin]
            total += out[t, k]
            continue
        for i in range(n):
            terms[i] = pdf[k, i] * weights[i]
        for j in range(n_arms):
            if j != k:
                for i in range(n):
                    terms[i] *= cdf[j, i]
        acc = _sum(terms, n)
        out[t, k] = acc
        total += acc
    return total


# The kernels, each in two versions: the fast grid and the reference (node by node) one. They are
# separate functions so that a run compiles only the fast one; the reference is compiled when a
# test asks for it.


@njit(cache=True)
def _best_components(t, a, b, active, control, margin, compare, aa, bb, shift, use):
    """The components of trial t's grid for :func:`_prob_best_kernel`: the arms, then (margin > 0)
    the control shifted by -margin and +margin."""
    n_arms = a.shape[1]
    c = control[t]
    for k in range(n_arms):
        aa[k] = a[t, k]
        bb[k] = b[t, k]
        use[k] = active[t, k]
    if margin > 0.0:
        shift[n_arms] = -margin
        shift[n_arms + 1] = margin
        for e in range(n_arms, n_arms + 2):
            aa[e] = a[t, max(c, 0)]
            bb[e] = b[t, max(c, 0)]
            use[e] = c >= 0 and compare[t] and active[t, c]


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _within_upper(t, n, q_n, n_arms, c, active, margin, g, aux, work, upper):
    """Upper bounds on P(|X_k - X_c| < margin) for every active arm k other than the control c
    (``upper[k]``; NaN for the others, and for all when the control has no mass) from the grid before
    the control's shifted copies are filled: the arms' rows of g (the density times the node width,
    :func:`_grid_components`), q_n nodes per panel.

    For x in a panel [l, r], F_c(x + margin) - F_c(x - margin) is at most the control's mass between
    the last panel edge at or below l - margin and the first at or above r + margin (0 and 1 beyond
    the grid), so P(|X_k - X_c| < margin) is at most the sum over panels of the arm's mass there
    times that mass of the control: masses the grid's panel sums give, to the grid's accuracy.
    Scratch: aux[3] (not used by the grid), and work[2] and work[3] (the densities' scratch, which
    the copies' filling overwrites)."""
    w = _W6 if q_n == _Q_SMOOTH else _W
    n_panels = n // q_n
    left = aux[4]
    right = aux[5]
    cum = work[2]  # the control's mass before panel p, then (cum[p + 1]) through it
    reach = work[3]  # the control's mass about panel p, as above, normalized
    mass = aux[3]
    for k in range(n_arms):
        upper[k] = np.nan
    gc = g[c]
    for p in range(n_panels):
        mass[p] = w[0] * gc[p]
    for q in range(1, q_n):  # along the panels (q-major nodes), which the compiler vectorizes
        wq = w[q]
        row = q * n_panels
        for p in range(n_panels):
            mass[p] += wq * gc[row + p]
    total = 0.0
    for p in range(n_panels):
        cum[p] = total
        total += mass[p]
    cum[n_panels] = total
    if not total > 0.0:  # no bound (the copies' grid will say why)
        return
    inv = 1.0 / total
    j = 0  # the first panel whose right edge is at or above right[p] + margin (n_panels: none)
    i = -1  # the last panel whose left edge is at or below left[p] - margin (-1: none)
    for p in range(n_panels):
        up_to = right[p] + margin
        while j < n_panels and right[j] < up_to:
            j += 1
        down_to = left[p] - margin
        while i + 1 < n_panels and left[i + 1] <= down_to:
            i += 1
        high = cum[j + 1] * inv if j < n_panels else 1.0
        low = cum[i] * inv if i >= 0 else 0.0
        reach[p] = high - low
    for k in range(n_arms):
        if k == c or not active[t, k]:
            continue
        gk = g[k]
        arm = 0.0
        acc = 0.0
        for q in range(q_n):
            wq = w[q]
            row = q * n_panels
            for p in range(n_panels):
                v = wq * gk[row + p]
                arm += v
                acc += v * reach[p]
        upper[k] = acc / arm


@njit(cache=True, inline="always")
def _fill_row(t, n_arms, margin, compare, control, active, below, n_pdf, components, scratch):
    """The grid of row t's components (:func:`_best_components`, already set), its arms first; with
    the equivalence check and ``below`` > 0 (the equivalence threshold less a guard for the grid's
    error: the caller's), the control's shifted copies only where :func:`_within_upper` cannot show
    every P(|arm - control| < margin) below ``below``. Returns (number of nodes, whether the copies
    were filled for the check: ``within`` is computed). Scratch: work[4] holds the bounds."""
    bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep = scratch
    aa, bb, shift, use = components
    n_comp = aa.shape[0]
    check_within = margin > 0.0 and compare[t]
    n, q_n = _grid_layout(aa, bb, shift, use, bps, weights, work, aux, rep)
    if below > 0.0 and check_within and use[n_arms]:
        _grid_components(0, n_arms, n, q_n, aa, bb, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf)
        upper = work[4]
        _within_upper(t, n, q_n, n_arms, control[t], active, margin, g, aux, work, upper)
        c = control[t]
        settled = True
        for k in range(n_arms):
            if k != c and active[t, k]:
                settled &= upper[k] < below  # a NaN bound settles nothing
        if settled:
            return n, False
        _grid_components(
            n_arms, n_comp, n, q_n, aa, bb, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf
        )
    else:
        _grid_components(0, n_comp, n, q_n, aa, bb, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_pdf)
    return n, check_within


@njit(cache=True, inline="always")
def best_row(t, a, b, active, control, margin, compare, out, vs_control, within, components, scratch, below):
    """Row t of :func:`prob_best_and_vs_control` (a, b, active: (T, K); control, compare: (T,)),
    written into row t of ``out`` (P(best), normalized), ``vs_control`` and ``within``: the same
    arithmetic as the vectorized call, for compiled callers that decide trial by trial.
    ``components``: (aa, bb, shift, use) of length K (margin 0) or K + 2, shift zeroed;
    ``scratch``: :func:`grid_scratch` for that many components. ``below`` > 0: where every
    P(|arm - control| < margin) is shown to be below it (:func:`_within_upper`), ``within`` is left
    NaN and the control's shifted copies are not filled (0: always computed)."""
    bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep = scratch
    aa, bb, shift, use = components
    n_arms = a.shape[1]
    _best_components(t, a, b, active, control, margin, compare, aa, bb, shift, use)
    n, check_within = _fill_row(t, n_arms, margin, compare, control, active, below, n_arms, components, scratch)
    total = _probabilities_fast(
        t,
        n,
        n_arms,
        control[t],
        check_within,
        active,
        aa,
        bb,
        weights,
        pdf,
        cdf,
        out,
        vs_control,
        within,
        work[4],
    )
    if total > 0.0:
        for k in range(n_arms):
            out[t, k] /= total


@njit(cache=True)
def vs_control_row(t, a, b, active, control, margin, compare, vs_control, within, components, scratch, below):
    """The comparisons with the control of :func:`best_row` (row t of
    ``vs_control`` and, where it checks equivalence, ``within``) without P(best): the same grid, built
    with densities only for the components the comparisons read (the control's, and every arm's for
    ``within``; a component's density and distribution function do not depend on which others get a
    density), and the same terms summed by the same function, so the same numbers bit for bit
    (tests/test_rules_compiled.py); ``below`` as there."""
    work = scratch[5]
    weights = scratch[1]
    pdf = scratch[2]
    cdf = scratch[3]
    aa, bb, shift, use = components
    n_arms = a.shape[1]
    c = control[t]
    _best_components(t, a, b, active, control, margin, compare, aa, bb, shift, use)
    n_pdf = n_arms if margin > 0.0 and compare[t] else c + 1
    n, check_within = _fill_row(t, n_arms, margin, compare, control, active, below, n_pdf, components, scratch)
    _vs_control_sums(t, n, n_arms, c, check_within, active, weights, pdf, cdf, vs_control, within, work[4])


@njit(cache=True)
def _prob_best_kernel(
    a,
    b,
    active,
    control,
    margin,
    compare,
    out,
    vs_control,
    within,
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
    """P(best) among active arms and, when control[t] >= 0, P(arm > control) for the other
    active arms; with margin > 0 also P(|arm - control| < margin), from copies of the
    control shifted by -margin and +margin added to the same grid. (The scratch arrays come one
    by one: a tuple of arrays costs a Python caller more to pass than its arrays.)"""
    scratch = (bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep)
    n_trials, n_arms = a.shape
    n_comp = n_arms + 2 if margin > 0.0 else n_arms
    components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
    for t in range(n_trials):
        best_row(t, a, b, active, control, margin, compare, out, vs_control, within, components, scratch, 0.0)


@njit(cache=True)
def _prob_best_kernel_reference(
    a, b, active, control, margin, compare, out, vs_control, within, bps, weights, pdf, cdf, g
):
    """:func:`_prob_best_kernel` on the reference grid."""
    n_trials, n_arms = a.shape
    n_comp = n_arms + 2 if margin > 0.0 else n_arms
    aa = np.empty(n_comp)
    bb = np.empty(n_comp)
    shift = np.zeros(n_comp)
    use = np.zeros(n_comp, dtype=np.bool_)
    for t in range(n_trials):
        _best_components(t, a, b, active, control, margin, compare, aa, bb, shift, use)
        n = _grid(aa, bb, shift, use, bps, weights, pdf, cdf, g)
        total = _probabilities(
            t, n, n_arms, control[t], margin > 0.0 and compare[t], active, weights, pdf, cdf, out, vs_control, within
        )
        if total > 0.0:
            for k in range(n_arms):
                out[t, k] /= total


@njit(cache=True)
def _pair_components(t, a1, b1, a2, b2, offset, within, a, b, shift):
    """Trial t's components for :func:`_pair_kernel`: X1, then X2 shifted by offset (within:
    by -offset and +offset)."""
    a[0] = a1[t]
    b[0] = b1[t]
    for c in range(1, a.shape[0]):
        a[c] = a2[t]
        b[c] = b2[t]
    if within:
        shift[1] = -offset[t]
        shift[2] = offset[t]
    else:
        shift[1] = offset[t]


@njit(cache=True)
def _pair_value(n, within, weights, pdf, cdf):
    acc = 0.0
    if within:  # X2 - m < X1 < X2 + m: f_X1(x) [F_{X2-m}(x) - F_{X2+m}(x)]
        for i in range(n):
            acc += weights[i] * pdf[0, i] * (cdf[1, i] - cdf[2, i])
    else:  # X1 > Y with Y = X2 + d: f_Y(y) (1 - F_X1(y))
        for i in range(n):
            acc += weights[i] * pdf[1, i] * (1.0 - cdf[0, i])
    return min(max(acc, 0.0), 1.0)


@njit(cache=True)
def _pair_kernel(a1, b1, a2, b2, offset, within, out, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep):
    """within False: P(X1 > X2 + offset); within True: P(|X1 - X2| < offset)."""
    n_comp = 3 if within else 2
    a = np.empty(n_comp)
    b = np.empty(n_comp)
    shift = np.zeros(n_comp)
    use = np.ones(n_comp, dtype=np.bool_)
    for t in range(a1.shape[0]):
        _pair_components(t, a1, b1, a2, b2, offset, within, a, b, shift)
        # within: the density of X1 and the CDFs of the shifted X2; otherwise the density of X2 + d
        n = _grid_fast(
            a, b, shift, use, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep, 1 if within else 2
        )
        out[t] = _pair_value(n, within, weights, pdf, cdf)


@njit(cache=True)
def greater_one(a1, b1, a2, b2, delta, components, scratch):
    """P(X1 > X2 + delta) for one pair, as :func:`prob_greater` computes it (the same grid and
    sums), for compiled callers. ``components``: (a, b, shift, use) of length 2, use all true;
    ``scratch``: :func:`grid_scratch` for at least 2 components."""
    bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep = scratch
    a, b, shift, use = components
    a[0] = a1
    b[0] = b1
    a[1] = a2
    b[1] = b2
    shift[1] = delta
    n = _grid_fast(a, b, shift, use, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep, 2)
    return _pair_value(n, False, weights, pdf, cdf)


@njit(cache=True)
def _pair_kernel_reference(a1, b1, a2, b2, offset, within, out, bps, weights, pdf, cdf, g):
    """:func:`_pair_kernel` on the reference grid."""
    n_comp = 3 if within else 2
    a = np.empty(n_comp)
    b = np.empty(n_comp)
    shift = np.zeros(n_comp)
    use = np.ones(n_comp, dtype=np.bool_)
    for t in range(a1.shape[0]):
        _pair_components(t, a1, b1, a2, b2, offset, within, a, b, shift)
        n = _grid(a, b, shift, use, bps, weights, pdf, cdf, g)
        out[t] = _pair_value(n, within, weights, pdf, cdf)


@njit(cache=True)
def _all_within_components(t, a, b, active, margin, aa, bb, shift, use):
    """Trial t's components for :func:`_all_within_kernel`: the arms, then the arms shifted by margin."""
    n_arms = a.shape[1]
    for k in range(n_arms):
        shift[n_arms + k] = margin
        aa[k] = aa[n_arms + k] = a[t, k]
        bb[k] = bb[n_arms + k] = b[t, k]
        use[k] = use[n_arms + k] = active[t, k]


@njit(cache=True)
def _all_within_value(t, n, active, weights, pdf, cdf):
    n_arms = active.shape[1]
    acc = 0.0
    for k in range(n_arms):
        if not active[t, k]:
            continue
        for i in range(n):
            if pdf[k, i] == 0.0:
                continue
            prod = pdf[k, i] * weights[i]
            for j in range(n_arms):
                if j != k and active[t, j]:
                    prod *= cdf[j, i] - cdf[n_arms + j, i]
            acc += prod
    return min(max(acc, 0.0), 1.0)


@njit(cache=True)
def _all_within_kernel(a, b, active, margin, out, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep):
    n_arms = a.shape[1]
    aa = np.empty(2 * n_arms)
    bb = np.empty(2 * n_arms)
    shift = np.zeros(2 * n_arms)
    use = np.empty(2 * n_arms, dtype=np.bool_)
    for t in range(a.shape[0]):
        _all_within_components(t, a, b, active, margin, aa, bb, shift, use)
        n = _grid_fast(aa, bb, shift, use, bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_arms)
        out[t] = _all_within_value(t, n, active, weights, pdf, cdf)


@njit(cache=True)
def _all_within_kernel_reference(a, b, active, margin, out, bps, weights, pdf, cdf, g):
    """:func:`_all_within_kernel` on the reference grid."""
    n_arms = a.shape[1]
    aa = np.empty(2 * n_arms)
    bb = np.empty(2 * n_arms)
    shift = np.zeros(2 * n_arms)
    use = np.empty(2 * n_arms, dtype=np.bool_)
    for t in range(a.shape[0]):
        _all_within_components(t, a, b, active, margin, aa, bb, shift, use)
        n = _grid(aa, bb, shift, use, bps, weights, pdf, cdf, g)
        out[t] = _all_within_value(t, n, active, weights, pdf, cdf)


# --------------------------------------------------------------------------- public API


def _as_float(*arrays):
    return [np.ascontiguousarray(x, dtype=np.float64) for x in arrays]


def prob_best(a, b, active=None, *, reference: bool = False) -> np.ndarray:
    """P(arm k has the highest rate) among active arms, for each trial.

    a, b: (T, K) posterior parameters (higher is better); active: (T, K) bool.
    Returns (T, K): zero for inactive arms; each row sums to 1 over its active arms.
    ``reference``: see :func:`prob_best_and_vs_control`.
    """
    return prob_best_and_vs_control(a, b, active, reference=reference)[0]


def prob_best_and_vs_control(
    a, b, active=None, control=None, margin=None, within_rows=None, *, reference: bool = False
):
    """P(best) among active arms and comparisons with each trial's control, from one grid.

    control: (T,) index of each trial's control (-1: none). Returns ``(prob_best,
    p_vs_control)``, both (T, K), or with ``margin`` ``(prob_best, p_vs_control,
    p_within)`` where ``p_within`` is P(|arm - control| < margin). The comparisons
    are NaN for the control itself, inactive arms and trials without a control;
    ``within_rows`` (T,) bool limits ``p_within`` to some trials (NaN elsewhere).
    ``reference``: evaluate the grid node by node with the C library's exp and log (the slow
    reference the fast evaluation is tested against; the two differ by rounding only).
    """
    a, b = _as_float(a, b)
    active = np.ones(a.shape, dtype=bool) if active is None else np.ascontiguousarray(active, dtype=bool)
    control = (
        np.full(a.shape[0], -1, dtype=np.int64) if control is None else np.ascontiguousarray(control, dtype=np.int64)
    )
    out = np.zeros(a.shape)
    vs_control = np.empty(a.shape)
    within = np.empty(a.shape)
    m = 0.0 if margin is None else float(margin)
    n_comp = a.shape[1] + (2 if m > 0 else 0)
    compare = np.ones(a.shape[0], dtype=bool) if within_rows is None else np.ascontiguousarray(within_rows, dtype=bool)
    if reference:
        _prob_best_kernel_reference(a, b, active, control, m, compare, out, vs_control, within, *_scratch(n_comp)[:5])
    else:
        _prob_best_kernel(a, b, active, control, m, compare, out, vs_control, within, *_scratch(n_comp))
    return (out, vs_control) if margin is None else (out, vs_control, within)


def _pair(a1, b1, a2, b2, offset, within: bool, reference: bool = False) -> np.ndarray:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a1, b1, a2, b2, offset)))
    shape = arrays[0].shape
    flat = [np.array(x, dtype=np.float64).reshape(-1) for x in arrays]  # a copy: broadcast views are read-only
    out = np.empty(flat[0].size)
    scratch = _scratch(3 if within else 2)
    if reference:
        _pair_kernel_reference(*flat, within, out, *scratch[:5])
    else:
        _pair_kernel(*flat, within, out, *scratch)
    return out.reshape(shape)


def prob_greater(a1, b1, a2, b2, delta=0.0, *, reference: bool = False) -> np.ndarray:
    """P(X1 > X2 + delta) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), elementwise (broadcasting);
    ``reference``: see :func:`prob_best_and_vs_control`."""
    return _pair(a1, b1, a2, b2, delta, False, reference)


def prob_within(a1, b1, a2, b2, margin, *, reference: bool = False) -> np.ndarray:
    """P(|X1 - X2| < margin), elementwise (broadcasting); ``reference``: see
    :func:`prob_best_and_vs_control`."""
    return _pair(a1, b1, a2, b2, margin, True, reference)


def prob_all_within(a, b, active, margin: float, *, reference: bool = False) -> np.ndarray:
    """P(max - min < margin) over the active arms of each trial: (T,) probabilities.

    The sum over k of the integral of f_k(x) times the product over the other
    active arms j of P(x - margin < X_j <= x): X_k is the largest and all others
    lie within the margin below it. ``reference``: see :func:`prob_best_and_vs_control`.
    """
    a, b = _as_float(a, b)
    active = np.ascontiguousarray(active, dtype=bool)
    out = np.empty(a.shape[0])
    scratch = _scratch(2 * a.shape[1])
    if reference:
        _all_within_kernel_reference(a, b, active, float(margin), out, *scratch[:5])
    else:
        _all_within_kernel(a, b, active, float(margin), out, *scratch)
    return out


def _has_cache(kernel) -> bool:
    """Whether numba's on-disk cache holds ``kernel`` compiled from its current source for this
    machine, for some argument types (False when that is unknown)."""
    try:
        cache = kernel._cache
        _, machine, code = cache._index_key(None, kernel.targetctx.codegen())
        return any(key[1:] == (machine, code) for key in cache._cache_file._load_index())
    except Exception:  # numba internals other than those known here: as if not cached
        return False


def warm_up(*, if_uncached: bool = False) -> None:
    """Compile (or load from the on-disk cache) every kernel on a tiny problem.

    With ``if_uncached``, only when one of them is not in the on-disk cache yet, so that what
    follows does not compile (a timed simulation, worker processes that would each compile the
    same kernels); cached kernels then load when first used, and those a design never uses cost
    nothing.
    """
    if if_uncached and all(_has_cache(k) for k in (_prob_best_kernel, _pair_kernel, _all_within_kernel)):
        return
    one = np.ones((1, 2))
    prob_best_and_vs_control(one, one, control=np.zeros(1, dtype=np.int64))
    prob_best_and_vs_control(one, one, control=np.zeros(1, dtype=np.int64), margin=0.1)
    prob_greater(1.0, 1.0, 1.0, 1.0, 0.1)
    prob_within(1.0, 1.0, 1.0, 1.0, 0.1)
    prob_all_within(one, one, np.ones((1, 2), dtype=bool), 0.1)
