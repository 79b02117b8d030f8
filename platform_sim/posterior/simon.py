"""Exact operating characteristics and exhaustive search of Simon two-stage designs.

A Simon (1989) two-stage design for H0: p <= p0 against H1: p >= p1 treats n1
patients, stops for futility if their responses X1 <= r1, otherwise treats
n - n1 more and rejects H0 if the total X1 + X2 > r. With b(x; m, p) the
binomial probability and S(k; m, p) = P(Bin(m, p) > k):

    PET(p)      = P(X1 <= r1) = sum_{x=0}^{r1} b(x; n1, p)
    EN(p)       = n1 + (1 - PET(p)) (n - n1)
    P_reject(p) = sum_{x=r1+1}^{n1} b(x; n1, p) S(r - x; n - n1, p)

(alpha = P_reject(p0), power = P_reject(p1)). Everything is a finite binomial
sum, computed exactly.

:func:`simon_design` searches all designs with n <= n_max for those with
alpha <= the target and power >= 1 - beta, with the definitions of
``clinfun::ph2simon``: *optimal* minimizes EN(p0); *minimax* minimizes n,
then EN(p0). See docs/bayesian_models.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class SimonOC:
    """Operating characteristics of Simon two-stage designs at a response rate p.

    pet: probability of early termination (stop after stage 1); en: expected
    sample size; p_reject: probability of rejecting H0 (alpha at p = p0, power at
    p = p1). Arrays with the broadcast shape of the inputs (0-d for scalars).
    """

    pet: np.ndarray
    en: np.ndarray
    p_reject: np.ndarray


@dataclass(frozen=True)
class SimonDesign:
    """A Simon two-stage design and its exact operating characteristics.

    Stop after n1 patients if at most r1 respond; reject H0 if more than r of n
    respond. en0, pet0: expected sample size and probability of early termination
    at p0; alpha, power: exact P(reject H0) at p0 and p1. kind: "optimal" or
    "minimax".
    """

    r1: int
    n1: int
    r: int
    n: int
    en0: float
    pet0: float
    alpha: float
    power: float
    kind: str


def simon_oc(r1, n1, r, n, p) -> SimonOC:
    """Exact PET, EN and P(reject H0) of Simon designs (r1/n1, r/n) at response rate p.

    r1, n1, r, n: whole numbers with 0 <= r1 <= n1 <= n and r <= n; p in [0, 1]. All
    broadcastable (for example a (D,) batch of designs against a (P, 1) column of
    rates). Returns a :class:`SimonOC` of arrays with the broadcast shape.

    Cost: O(size * max(n1)) binomial terms.
    """
    from scipy import stats

    r1, n1, r, n, p = np.broadcast_arrays(*(np.asarray(v) for v in (r1, n1, r, n, p)))
    shape = r1.shape
    ints = []
    for v in (r1, n1, r, n):
        vf = np.asarray(v, dtype=np.float64).reshape(-1)
        if np.any(vf != np.round(vf)):
            raise ValueError("r1, n1, r and n must be whole numbers")
        ints.append(vf.astype(np.int64))
    r1, n1, r, n = ints
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if np.any(r1 < 0) or np.any(r1 > n1) or np.any(n1 < 1) or np.any(n1 > n) or np.any(r > n):
        raise ValueError("need 0 <= r1 <= n1 <= n, n1 >= 1 and r <= n")
    if np.any(~((p >= 0.0) & (p <= 1.0))):
        raise ValueError("p must be in [0, 1]")
    x1 = np.arange(int(n1.max(initial=1)) + 1)[None, :]
    stage1 = stats.binom.pmf(x1, n1[:, None], p[:, None])  # zero beyond n1
    # P(X2 > r - x1) with X2 ~ Bin(n - n1, p); 1 when r - x1 < 0.
    stage2 = stats.binom.sf(r[:, None] - x1, (n - n1)[:, None], p[:, None])
    go_on = x1 > r1[:, None]
    pet = stats.binom.cdf(r1, n1, p)
    en = n1 + (1.0 - pet) * (n - n1)
    p_reject = np.where(go_on, stage1 * stage2, 0.0).sum(axis=1)
    return SimonOC(pet=pet.reshape(shape), en=en.reshape(shape), p_reject=np.minimum(p_reject, 1.0).reshape(shape))


def simon_design(
    p0: float, p1: float, alpha: float, beta: float, kind: str = "optimal", n_max: int = 100
) -> SimonDesign:
    """The optimal or minimax Simon two-stage design (definitions of clinfun::ph2simon).

    Searches every design with 1 <= n1 < n <= n_max and 0 <= r1 < n1. For given
    (n1, r1, n), EN(p0) does not depend on r and alpha and power both decrease with
    r, so the best r is the smallest with alpha <= ``alpha``; the design is feasible
    if its power is >= 1 - ``beta``. *optimal*: the feasible design with the smallest
    EN(p0); *minimax*: the smallest n, then the smallest EN(p0).

    The optimal search stops before n_max once no larger n can beat the best EN(p0)
    found: a feasible design needs P(X1 > r1 | p1) >= 1 - beta, so its EN(p0) is at
    least min over n1 of n1 + P(X1 > r1*(n1) | p0) (n - n1), with r1*(n1) the largest
    such r1, a bound that grows with n. If the search reaches n_max without that
    proof, a warning says the optimum may need a larger n_max. Raises ValueError if
    no design with n <= n_max is feasible.

    Cost: O(n^3) array work for each total n (vectorized over n1, r1 and r), about
    0.1 s for the designs of Simon's table.
    """
    if kind not in ("optimal", "minimax"):
        raise ValueError(f"kind must be 'optimal' or 'minimax', not {kind!r}")
    if not 0.0 < p0 < p1 < 1.0:
        raise ValueError("need 0 < p0 < p1 < 1")
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0):
        raise ValueError("alpha and beta must be in (0, 1)")
    if int(n_max) != n_max or n_max < 2:
        raise ValueError("n_max must be a whole number >= 2")
    minimax, optimal, proven = _search(float(p0), float(p1), float(alpha), float(beta), int(n_max), kind == "minimax")
    best = minimax if kind == "minimax" else optimal
    if best is None:
        raise ValueError(f"no Simon design with n <= {n_max} has alpha <= {alpha} and power >= {1 - beta}")
    if kind == "optimal" and not proven:
        warnings.warn(f"the optimal design may need n > n_max = {n_max}; increase n_max", stacklevel=2)
    r1, n1, r, n = best
    oc = simon_oc([r1, r1], n1, r, n, [p0, p1])
    return SimonDesign(
        r1=r1,
        n1=n1,
        r=r,
        n=n,
        en0=float(oc.en[0]),
        pet0=float(oc.pet[0]),
        alpha=float(oc.p_reject[0]),
        power=float(oc.p_reject[1]),
        kind=kind,
    )


@lru_cache(maxsize=64)
def _search(p0: float, p1: float, alpha: float, beta: float, n_max: int, minimax_only: bool, prune: bool = True):
    """Exhaustive search: (minimax, optimal, proven) with designs as (r1, n1, r, n) tuples or None.

    ``proven``: the search ended because no n beyond it can beat the optimal EN(p0).
    ``prune=False`` searches every n up to n_max (for tests of the bound).
    """
    from scipy import stats

    size = n_max + 1
    x = np.arange(size)
    m = np.arange(size)[:, None]
    # pmf0[m, x] = b(x; m, p0); sf[m, k + n_max] = P(Bin(m, p) > k) for k = -n_max..n_max.
    pmf0 = stats.binom.pmf(x[None, :], m, p0)
    pmf1 = stats.binom.pmf(x[None, :], m, p1)
    k = np.arange(-n_max, n_max + 1)[None, :]
    sf0 = stats.binom.sf(k, m, p0)
    sf1 = stats.binom.sf(k, m, p1)
    # Futility bound: for stage-1 size n1, the largest r1 with P(X1 > r1 | p1) >= 1 - beta
    # (-1: none) and P(X1 > r1* | p0), the least probability of going on at p0.
    go_on1 = sf1[:, n_max : n_max + size]  # [n1, r1] = P(X1 > r1 | p1)
    ok = (go_on1 >= 1.0 - beta) & (x[None, :] < m)
    r1_star = np.where(ok.any(axis=1), size - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    q0 = np.where(r1_star >= 0, sf0[np.arange(size), n_max + np.maximum(r1_star, 0)], np.inf)

    minimax = optimal = None
    best_en = np.inf
    for n in range(2, n_max + 1):
        n1 = np.arange(1, n)  # stage-1 sizes
        lower = (n1 + q0[n1] * (n - n1)).min()
        if prune and optimal is not None and lower > best_en and n > best_en:
            return minimax, optimal, True  # no n' >= n can do better (the bound grows with n)
        found = _best_for_n(n, n1, pmf0, pmf1, sf0, sf1, n_max, alpha, beta)
        if found is None:
            continue
        en, design = found
        if minimax is None:
            minimax = design
            if minimax_only:
                return minimax, None, False
        if en < best_en:
            best_en, optimal = en, design
    return minimax, optimal, False


def _best_for_n(n, n1, pmf0, pmf1, sf0, sf1, n_max, alpha, beta):
    """The feasible design with total n and the smallest EN(p0): (en0, (r1, n1, r, n)) or None."""
    x1 = np.arange(n)  # stage-1 responses (x1 <= n1 <= n - 1)
    r = np.arange(n)  # final boundary (r = n never rejects)
    n2 = n - n1
    # c[i, x1, r] = b(x1; n1_i, p) P(X2 > r - x1), X2 ~ Bin(n - n1_i, p).
    idx = r[None, None, :] - x1[None, :, None] + n_max
    c0 = pmf0[n1][:, :n, None] * sf0[n2[:, None, None], idx]
    c1 = pmf1[n1][:, :n, None] * sf1[n2[:, None, None], idx]
    # reject[i, r1, r] = sum_{x1 > r1} c[i, x1, r]: reversed cumulative sums over x1, shifted by one.
    rej0 = np.cumsum(c0[:, ::-1], axis=1)[:, ::-1]
    rej1 = np.cumsum(c1[:, ::-1], axis=1)[:, ::-1]
    rej0 = np.concatenate((rej0[:, 1:], np.zeros_like(rej0[:, :1])), axis=1)
    rej1 = np.concatenate((rej1[:, 1:], np.zeros_like(rej1[:, :1])), axis=1)
    # The smallest r with alpha <= target (alpha decreases with r); r below r1 gives the same
    # rejection region as r = r1, so r is at least r1.
    meets = rej0 <= alpha
    has = meets.any(axis=2)
    r_best = np.maximum(np.argmax(meets, axis=2), x1[None, :])  # [i, r1]
    power = np.take_along_axis(rej1, r_best[:, :, None], axis=2)[:, :, 0]
    valid = has & (x1[None, :] < n1[:, None]) & (power >= 1.0 - beta)
    if not valid.any():
        return None
    pet0 = np.cumsum(pmf0[n1][:, :n], axis=1)  # [i, r1] = P(X1 <= r1 | p0)
    en0 = n1[:, None] + (1.0 - pet0) * n2[:, None]
    en0 = np.where(valid, en0, np.inf)
    i, r1 = np.unravel_index(np.argmin(en0), en0.shape)
    return float(en0[i, r1]), (int(r1), int(n1[i]), int(r_best[i, r1]), int(n))
