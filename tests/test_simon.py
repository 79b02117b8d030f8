"""Simon two-stage designs (platform_sim.posterior.simon): exact OCs and the design search.

References: the table "Simon two-stage designs — exact" (Simon, Control Clin Trials 1989;10:1-10, Table 1)
(the designs of Simon 1989, Control Clin Trials 10:1, with their exact OCs), a brute-force
enumeration of every outcome (x1, x2) with math.comb, and a brute-force search that scores every
design with simon_oc (a code path independent of the vectorized search).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_sim.posterior.simon import SimonOC, _search, simon_design, simon_oc

# Finite binomial sums of at most a few thousand terms: only rounding separates two exact values.
ROUNDING_TOL = 1e-12

# p0, p1, alpha, beta, kind, r1, n1, r, n, EN(p0), PET(p0), exact alpha, exact power
TABLE = [
    (0.05, 0.25, 0.05, 0.20, "optimal", 0, 9, 2, 17, 11.96, 0.630, 0.0466, 0.8122),
    (0.05, 0.25, 0.05, 0.20, "minimax", 0, 12, 2, 16, 13.84, 0.540, 0.0427, 0.8013),
    (0.10, 0.30, 0.05, 0.20, "optimal", 1, 10, 5, 29, 15.01, 0.736, 0.0471, 0.8051),
    (0.10, 0.30, 0.05, 0.20, "minimax", 1, 15, 5, 25, 19.51, 0.549, 0.0328, 0.8017),
    (0.20, 0.40, 0.05, 0.20, "optimal", 3, 13, 12, 43, 20.58, 0.747, 0.0496, 0.8002),
    (0.20, 0.40, 0.05, 0.20, "minimax", 4, 18, 10, 33, 22.25, 0.716, 0.0458, 0.8011),
    (0.10, 0.30, 0.10, 0.10, "optimal", 1, 12, 5, 35, 19.84, 0.659, 0.0977, 0.9014),
    (0.10, 0.30, 0.10, 0.10, "minimax", 1, 16, 4, 25, 20.37, 0.515, 0.0951, 0.9030),
    (0.20, 0.40, 0.10, 0.10, "optimal", 3, 17, 10, 37, 26.02, 0.549, 0.0948, 0.9033),
    (0.20, 0.40, 0.10, 0.10, "minimax", 3, 19, 10, 36, 28.26, 0.455, 0.0861, 0.9024),
    (0.30, 0.50, 0.05, 0.20, "optimal", 5, 15, 18, 46, 23.63, 0.722, 0.0499, 0.8032),
    (0.30, 0.50, 0.05, 0.20, "minimax", 6, 19, 16, 39, 25.69, 0.666, 0.0455, 0.8036),
]
IDS = [f"{row[0]}-{row[1]}-a{row[2]}-b{row[3]}-{row[4]}" for row in TABLE]


def printed(value: float, decimals: int) -> float:
    """Half a unit of the last printed decimal: a value that rounds to the printed one is this close."""
    return 0.5 * 10.0**-decimals + 1e-12


def brute_oc(r1, n1, r, n, p):
    """PET, EN and P(reject) by summing over every outcome (x1, x2)."""
    b = lambda x, m: math.comb(m, x) * p**x * (1 - p) ** (m - x)
    pet = sum(b(x1, n1) for x1 in range(r1 + 1))
    reject = sum(b(x1, n1) * b(x2, n - n1) for x1 in range(r1 + 1, n1 + 1) for x2 in range(n - n1 + 1) if x1 + x2 > r)
    return pet, n1 + (1 - pet) * (n - n1), reject


@pytest.mark.parametrize("p0,p1,alpha,beta,kind,r1,n1,r,n,en0,pet0,exact_alpha,power", TABLE, ids=IDS)
def test_simon_oc_reproduces_table(p0, p1, alpha, beta, kind, r1, n1, r, n, en0, pet0, exact_alpha, power):
    oc = simon_oc(r1, n1, r, n, np.array([p0, p1]))
    assert isinstance(oc, SimonOC)
    assert abs(oc.en[0] - en0) <= printed(en0, 2)
    assert abs(oc.pet[0] - pet0) <= printed(pet0, 3)
    assert abs(oc.p_reject[0] - exact_alpha) <= printed(exact_alpha, 4)
    assert abs(oc.p_reject[1] - power) <= printed(power, 4)
    # ... and the design meets its error targets.
    assert oc.p_reject[0] <= alpha and oc.p_reject[1] >= 1 - beta


@pytest.mark.parametrize("p0,p1,alpha,beta,kind,r1,n1,r,n,en0,pet0,exact_alpha,power", TABLE, ids=IDS)
def test_simon_design_finds_table(p0, p1, alpha, beta, kind, r1, n1, r, n, en0, pet0, exact_alpha, power):
    d = simon_design(p0, p1, alpha, beta, kind=kind)
    assert (d.r1, d.n1, d.r, d.n) == (r1, n1, r, n)
    assert d.kind == kind
    assert abs(d.en0 - en0) <= printed(en0, 2) and abs(d.pet0 - pet0) <= printed(pet0, 3)
    assert abs(d.alpha - exact_alpha) <= printed(exact_alpha, 4) and abs(d.power - power) <= printed(power, 4)


def test_simon_oc_against_enumeration():
    rng = np.random.default_rng(89)
    for _ in range(25):
        n = int(rng.integers(2, 40))
        n1 = int(rng.integers(1, n + 1))
        r1 = int(rng.integers(0, n1 + 1))
        r = int(rng.integers(r1, n + 1))
        p = float(rng.uniform(0.02, 0.98))
        oc = simon_oc(r1, n1, r, n, p)
        pet, en, reject = brute_oc(r1, n1, r, n, p)
        assert abs(float(oc.pet) - pet) < ROUNDING_TOL
        assert abs(float(oc.en) - en) < ROUNDING_TOL * n
        assert abs(float(oc.p_reject) - reject) < ROUNDING_TOL


def test_simon_oc_vectorized_and_extremes():
    designs = np.array([row[5:9] for row in TABLE])
    p = np.array([0.0, 0.1, 0.3, 1.0])[:, None]
    oc = simon_oc(designs[:, 0], designs[:, 1], designs[:, 2], designs[:, 3], p)
    assert oc.pet.shape == oc.en.shape == oc.p_reject.shape == (4, len(TABLE))
    for i, (r1, n1, r, n) in enumerate(designs):
        for k in range(4):
            one = simon_oc(r1, n1, r, n, p[k, 0])
            assert abs(float(one.p_reject) - oc.p_reject[k, i]) < ROUNDING_TOL
            assert (
                abs(float(one.pet) - oc.pet[k, i]) < ROUNDING_TOL
                and abs(float(one.en) - oc.en[k, i]) < ROUNDING_TOL * n
            )
    # p = 0: no responses, stop after stage 1, never reject; p = 1: always go on and reject.
    assert np.all(oc.pet[0] == 1.0) and np.all(oc.p_reject[0] == 0.0) and np.all(oc.en[0] == designs[:, 1])
    assert np.all(oc.pet[-1] == 0.0) and np.all(oc.p_reject[-1] == 1.0) and np.all(oc.en[-1] == designs[:, 3])


def _brute_search(p0, p1, alpha, beta, n_hi):
    """Every design with n <= n_hi scored by simon_oc: (r1, n1, r, n, en0) of the feasible ones."""
    rows = [(r1, n1, r, n) for n in range(2, n_hi + 1) for n1 in range(1, n) for r1 in range(n1) for r in range(r1, n)]
    r1, n1, r, n = (np.array(c) for c in zip(*rows))
    oc = simon_oc(r1, n1, r, n, np.array([[p0], [p1]]))
    ok = (oc.p_reject[0] <= alpha) & (oc.p_reject[1] >= 1 - beta)
    return r1[ok], n1[ok], r[ok], n[ok], oc.en[0][ok]


@pytest.mark.parametrize("p0,p1,alpha,beta,n_hi", [(0.05, 0.25, 0.05, 0.20, 28), (0.10, 0.30, 0.05, 0.20, 30)])
def test_search_against_brute_force(p0, p1, alpha, beta, n_hi):
    # Every design with n <= n_hi scored independently: the minimax design has the smallest n (then
    # EN(p0)), and no feasible design beats the optimal EN(p0) (both optima have n <= n_hi).
    r1, n1, _, n, en0 = _brute_search(p0, p1, alpha, beta, n_hi)
    mini = simon_design(p0, p1, alpha, beta, kind="minimax")
    opt = simon_design(p0, p1, alpha, beta, kind="optimal")
    assert mini.n == n.min()
    assert abs(mini.en0 - en0[n == n.min()].min()) < ROUNDING_TOL
    assert abs(opt.en0 - en0.min()) < ROUNDING_TOL
    i = int(np.argmin(en0))
    assert (opt.r1, opt.n1, opt.n) == (r1[i], n1[i], n[i])


@pytest.mark.parametrize("p0,p1,alpha,beta", [(0.20, 0.40, 0.05, 0.20), (0.30, 0.50, 0.05, 0.20)])
def test_pruned_search_equals_full_search(p0, p1, alpha, beta):
    # The early stop of the optimal search (a lower bound on EN(p0) that grows with n) must not
    # change the answer of a search over every n up to n_max.
    pruned = _search(p0, p1, alpha, beta, 70, False, True)
    full = _search(p0, p1, alpha, beta, 70, False, False)
    assert pruned[:2] == full[:2]
    assert pruned[2] and not full[2]


def test_simon_design_limits_and_errors():
    with pytest.warns(UserWarning, match="n_max"):
        d = simon_design(0.30, 0.50, 0.05, 0.20, kind="optimal", n_max=47)
    assert (d.r1, d.n1, d.r, d.n) == (5, 15, 18, 46)  # found, but not proven optimal below 54
    with pytest.raises(ValueError, match="no Simon design"):
        simon_design(0.30, 0.50, 0.05, 0.20, kind="minimax", n_max=38)
    with pytest.raises(ValueError):
        simon_design(0.5, 0.3, 0.05, 0.2)
    with pytest.raises(ValueError):
        simon_design(0.1, 0.3, 0.05, 0.2, kind="admissible")
    with pytest.raises(ValueError):
        simon_oc(3, 2, 5, 10, 0.2)
