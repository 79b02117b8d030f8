"""Cox score tests (Breslow and Efron ties) and the stratified log-rank test at data cut-offs
(platform_sim.posterior.survival.score_at_cuts).

References are computed independently here: the unstratified log-rank statistic by scipy.stats.logrank;
every statistic by a plain-Python loop over the cut data, and the Cox score tests, in addition, by
central finite differences of the Breslow and Efron log partial likelihoods at beta = 0 (the score is
the first derivative, the information minus the second). Finite differences with step h = 1e-4 on a
log partial likelihood of order 100 carry an error of about h^2 |l'''| + eps |l| / h^2 <= 1e-5 here, so
they are compared at 1e-4 (relative); the loop references agree to 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from platform_sim.posterior.survival import logrank_at_cuts, score_at_cuts


def _trials(seed=3, t=12, n=70, k=3, strata=3):
    rng = np.random.default_rng(seed)
    entry = np.sort(rng.uniform(0, 12, (t, n)), axis=1)
    outcome = np.round(rng.exponential(6, (t, n)), 0)  # whole months: many ties
    dropout = np.round(rng.exponential(40, (t, n)), 0)
    followed = np.minimum(outcome, dropout)
    event = outcome <= dropout
    experimental = rng.random((t, n)) < 0.5
    stratum = rng.integers(0, strata, (t, n))
    cuts = np.sort(rng.uniform(6, 30, (t, k)), axis=1)
    return entry, followed, event, experimental, stratum, cuts


def _cut(entry, followed, event, experimental, stratum, c):
    """One trial's data at cut c: (time, event, experimental, stratum) of the patients randomized by c."""
    inside = entry <= c
    ended = entry + followed <= c
    time = np.where(ended, followed, c - entry)[inside]
    return time, (ended & event)[inside], experimental[inside], stratum[inside]


def _reference(time, event, x, stratum, method):
    """U and I by a loop over each stratum's distinct event times (the textbook formulas)."""
    u = info = 0.0
    for s in np.unique(stratum):
        ts, es, xs = time[stratum == s], event[stratum == s], x[stratum == s]
        for tj in np.unique(ts[es]):
            risk = ts >= tj
            n, n1 = risk.sum(), (risk & xs).sum()
            dead = es & (ts == tj)
            d, d1 = dead.sum(), (dead & xs).sum()
            if method == "cox_score_efron":
                for j in range(d):
                    mu = (n1 - j * d1 / d) / (n - j)
                    u += (d1 / d) - mu
                    info += mu * (1 - mu)
                continue
            u += d1 - d * n1 / n
            if method == "logrank":
                info += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0.0
            else:
                info += d * (n1 / n) * (1 - n1 / n)
    return u, info


def _log_partial_likelihood(beta, time, event, x, stratum, ties):
    """Breslow's or Efron's log partial likelihood of the Cox model with one binary covariate x and a
    baseline hazard per stratum."""
    total = 0.0
    w = np.exp(beta * x)
    for s in np.unique(stratum):
        on = stratum == s
        ts, es, xs, ws = time[on], event[on], x[on], w[on]
        for tj in np.unique(ts[es]):
            risk = ws[ts >= tj].sum()
            dead = es & (ts == tj)
            d = dead.sum()
            total += beta * xs[dead].sum()
            if ties == "breslow":
                total -= d * math.log(risk)
            else:
                tied = ws[dead].sum()
                total -= sum(math.log(risk - j / d * tied) for j in range(d))
    return total


@pytest.mark.parametrize("method", ["logrank", "cox_score_breslow", "cox_score_efron"])
@pytest.mark.parametrize("stratified", [False, True])
def test_score_at_cuts_matches_the_textbook_loop(method, stratified):
    entry, followed, event, experimental, stratum, cuts = _trials()
    strata = stratum if stratified else None
    z, u, info = score_at_cuts(entry, followed, event, experimental, cuts, strata, method)
    for t in range(entry.shape[0]):
        for k in range(cuts.shape[1]):
            time, ev, x, s = _cut(entry[t], followed[t], event[t], experimental[t], stratum[t], cuts[t, k])
            u_ref, i_ref = _reference(time, ev, x, s if stratified else np.zeros_like(s), method)
            assert u[t, k] == pytest.approx(u_ref, abs=1e-10)
            assert info[t, k] == pytest.approx(i_ref, abs=1e-10)
            assert z[t, k] == pytest.approx(u_ref / math.sqrt(i_ref), abs=1e-10)


def test_unstratified_logrank_equals_logrank_at_cuts_and_scipy():
    entry, followed, event, experimental, stratum, cuts = _trials(seed=8)
    z, u, info = score_at_cuts(entry, followed, event, experimental, cuts)
    z_ref, oe_ref, var_ref = logrank_at_cuts(entry, followed, event, experimental, cuts)
    np.testing.assert_allclose(u, oe_ref, atol=1e-10)
    np.testing.assert_allclose(info, var_ref, atol=1e-10)
    for t in range(3):
        time, ev, x, _ = _cut(entry[t], followed[t], event[t], experimental[t], stratum[t], cuts[t, -1])
        exp = stats.CensoredData(uncensored=time[x & ev], right=time[x & ~ev])
        ctl = stats.CensoredData(uncensored=time[~x & ev], right=time[~x & ~ev])
        assert z[t, -1] == pytest.approx(stats.logrank(exp, ctl).statistic, abs=1e-10)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
@pytest.mark.parametrize("stratified", [False, True])
def test_cox_score_is_the_derivative_of_the_partial_likelihood(ties, stratified):
    entry, followed, event, experimental, stratum, cuts = _trials(seed=4, t=4)
    z, u, info = score_at_cuts(
        entry, followed, event, experimental, cuts, stratum if stratified else None, f"cox_score_{ties}"
    )
    h = 1e-4
    for t in range(entry.shape[0]):
        time, ev, x, s = _cut(entry[t], followed[t], event[t], experimental[t], stratum[t], cuts[t, -1])
        s = s if stratified else np.zeros_like(s)
        xf = x.astype(float)
        lp = [_log_partial_likelihood(b, time, ev, xf, s, ties) for b in (-h, 0.0, h)]
        score = (lp[2] - lp[0]) / (2 * h)
        information = -(lp[2] - 2 * lp[1] + lp[0]) / h**2
        assert u[t, -1] == pytest.approx(score, rel=1e-4, abs=1e-6)
        assert info[t, -1] == pytest.approx(information, rel=1e-4)


def test_without_ties_every_method_is_the_log_rank_test():
    entry, followed, event, experimental, stratum, cuts = _trials(seed=6)
    followed = followed + np.random.default_rng(1).uniform(0, 1e-3, followed.shape)  # distinct times
    out = [
        score_at_cuts(entry, followed, event, experimental, cuts, stratum, m)[0]
        for m in ("logrank", "cox_score_breslow", "cox_score_efron")
    ]
    np.testing.assert_allclose(out[1], out[0], atol=1e-12)
    np.testing.assert_allclose(out[2], out[0], atol=1e-12)


def test_with_ties_the_methods_differ():
    entry, followed, event, experimental, stratum, cuts = _trials(seed=6)
    z = [
        score_at_cuts(entry, followed, event, experimental, cuts, None, m)[0]
        for m in ("logrank", "cox_score_breslow", "cox_score_efron")
    ]
    assert np.abs(z[0] - z[1]).max() > 1e-3  # Breslow's binomial variance exceeds the hypergeometric one
    assert np.all(np.abs(z[1]) <= np.abs(z[0]) + 1e-12)
    assert np.abs(z[2] - z[1]).max() > 1e-3


def test_bad_input_is_named():
    entry, followed, event, experimental, stratum, cuts = _trials(t=2)
    with pytest.raises(ValueError, match="method must be one of"):
        score_at_cuts(entry, followed, event, experimental, cuts, method="wald")
    with pytest.raises(ValueError, match="stratum must have"):
        score_at_cuts(entry, followed, event, experimental, cuts, stratum[:, :3])
    with pytest.raises(ValueError, match="stratum indices"):
        score_at_cuts(entry, followed, event, experimental, cuts, stratum - 1)
