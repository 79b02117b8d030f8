"""The streaming summary: chunk summaries merge into the summary of all trials, exactly, whatever the chunks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from platform_sim import oc
from platform_sim.runner import plan_chunks, run, summarizer
from platform_sim.spec import Spec
from platform_sim.summary import BLOCK, QUANTILES, Summary, _Stat


def _blockwise_sum(x) -> Fraction:
    return sum((Fraction(math.fsum(x[i : i + BLOCK])) for i in range(0, len(x), BLOCK)), Fraction(0))


def _stat(kind, x):
    s = _Stat(kind)
    s.add(np.arange(len(x)), x)
    return s


def test_estimates_match_direct_formulas():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 1.5, 997)
    mean, se = _stat("mean", x).mean()
    # the exact sum of each block's correctly rounded sum, over the count, rounded once
    assert mean == float(_blockwise_sum(x) / x.size)
    assert mean == pytest.approx(x.mean(), rel=1e-14)
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=1e-12)
    sd, sd_se = _stat("mean", x).sd()
    assert sd == pytest.approx(x.std(ddof=1), rel=1e-12) and sd_se == pytest.approx(sd / math.sqrt(2 * 996))
    e = rng.normal(0.1, 0.3, 500)
    r, r_se = _stat("rmse", e).rmse()
    sq = e**2
    assert r == pytest.approx(math.sqrt(sq.mean()), rel=1e-14)
    assert r_se == pytest.approx(math.sqrt(sq.var(ddof=1) / sq.size) / (2 * r), rel=1e-10)
    b = rng.random(333) < 0.3
    p, p_se = _stat("p", b).proportion()
    assert p == b.mean() and p_se == math.sqrt(p * (1 - p) / b.size)
    n = rng.integers(0, 500, 777)
    m, m_se = _stat("dist", n).mean()
    assert m == pytest.approx(n.mean(), rel=1e-15) and m_se == pytest.approx(n.std(ddof=1) / math.sqrt(777))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantiles_of_counts_equal_numpy_exactly(seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 400, size=int(rng.integers(1, 3000)))
    stat = _stat("dist", n)
    x = np.sort(n.astype(float))
    m = x.size
    for q in QUANTILES:
        value, mcse = stat.quantile(q)
        assert value == pytest.approx(float(np.quantile(x, q)), abs=1e-9)
        half = 1.96 * math.sqrt(m * q * (1 - q))
        lo = min(max(math.floor(q * m - half), 1), m)
        hi = min(max(math.ceil(q * m + half), 1), m)
        assert mcse == (x[hi - 1] - x[lo - 1]) / (2 * 1.96)


def test_non_finite_values_do_not_count_and_empty_is_nan():
    s = _stat("mean", [1.0, np.nan, 3.0, np.inf])
    assert s.count() == 2 and s.mean()[0] == 2.0
    empty = _stat("p", [np.nan, np.nan])
    assert all(math.isnan(v) for v in empty.proportion())
    assert math.isnan(_stat("mean", [5.0]).mean()[1])


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="0 or 1"):
        _stat("p", [0.5])
    with pytest.raises(ValueError, match="non-negative integer"):
        _stat("dist", [1.5])
    with pytest.raises(ValueError, match="non-negative integer"):
        _stat("dist", [-1])
    with pytest.raises(ValueError, match="unknown summary kind"):
        _Stat("median")
    with pytest.raises(ValueError, match="values for"):
        _Stat("mean").add(np.arange(3), [1.0, 2.0])
    a, b = Summary().add([0], [("t", "r", "c", "p", [1])]), Summary().add([1], [("t", "r", "c", "mean", [1.0])])
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(b)


@pytest.mark.parametrize("sizes", [[1] * 40, [7] * 100, [BLOCK + 3, 2 * BLOCK - 5, 11], [700]])
def test_any_cut_of_the_trials_gives_the_same_summary(sizes):
    """However the trials are cut into chunks (and whatever order the chunks are merged in), the
    tables are identical to the last bit: sums are kept exactly, block by block of trial indices."""
    rng = np.random.default_rng(11)
    n = 700
    x = rng.lognormal(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n)  # wide range of magnitudes and signs
    x[rng.random(n) < 0.05] = np.nan
    d = rng.integers(0, 1000, n)
    p = rng.random(n) < 0.2

    def entries(t):
        return [
            ("t", "", "x", "mean", x[t]),
            ("t", "", "e", "rmse", x[t]),
            ("t", "", "p", "p", p[t]),
            ("t", "", "d", "dist", d[t]),
        ]

    reference = Summary().add(np.arange(n), entries(np.arange(n)))
    bounds = np.cumsum([0] + sizes)
    bounds = bounds[bounds <= n]
    parts = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if bounds[-1] < n:
        parts.append(np.arange(bounds[-1], n))
    for order in (range(len(parts)), reversed(range(len(parts)))):
        merged = Summary()
        for i in order:
            part = Summary().add(parts[i], entries(parts[i]))
            merged.merge(Summary.from_json(part.to_json()))
        assert merged.table("t").equals(reference.table("t"))
        assert merged.n_trials == n
    finite = [x[i : i + BLOCK][np.isfinite(x[i : i + BLOCK])] for i in range(0, n, BLOCK)]
    expected = sum((Fraction(math.fsum(b)) for b in finite), Fraction(0)) / sum(b.size for b in finite)
    assert reference.stat("t", "", "x").mean()[0] == float(expected)


def test_merging_chunks_equals_summarizing_everything():
    """Per-chunk summaries merged give exactly the table of one summary of every trial."""
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    results = run(spec, 600, seed=5, chunk_size=150)
    whole = oc.summarize(results, spec.truth)
    reduce = summarizer(spec)
    merged = Summary()
    for chunk in plan_chunks(600, 150):
        merged.merge(reduce(results.take(slice(chunk.first, chunk.first + chunk.size))))
    assert oc.frame(merged).equals(oc.frame(whole))


def test_tables_from_results_and_from_summary_agree():
    spec = Spec.load("battle_stratified_rar", "stk11_keap1_ctla4")
    results = run(spec, 120, seed=2, chunk_size=60)
    table = oc.subgroup_table(oc.frame(oc.summarize(results, spec.truth)), spec.truth)
    for s, stratum in enumerate(results.subgroups):
        for k, arm in enumerate(results.arms):
            if (arm, stratum) not in table.index:
                assert not (results.n[:, k, s] > 0).any()
                continue
            row = table.loc[(arm, stratum)]
            assert row["p_claimed"] == results.claimed[:, k, s].mean()
            assert row["mean_n"] == pytest.approx(results.n[:, k, s].mean(), rel=1e-14)


def test_platform_tables_from_summary():
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    results = run(spec, 30, seed=4, chunk_size=15)
    tidy = oc.frame(oc.summarize(results, spec.truth))
    arms = oc.arm_table(tidy, spec.truth)
    k = 1
    arm = results.arms[k]
    entered = ~np.isnan(results.extras["opened_at"][:, k])
    assert arms.at[arm, "p_entered"] == entered.mean()
    assert arms.at[arm, "mean_n"] == pytest.approx(results.n_by_arm[:, k].mean(), rel=1e-14)
    trial = oc.trial_table(tidy)
    assert list(trial.columns) == ["value", "mcse", "lower", "upper"]
    assert trial.loc["mean_n_randomized", "value"] == pytest.approx(results.n_randomized.mean(), rel=1e-14)
    sub = oc.subgroup_table(tidy, spec.truth)
    assert sub["p_claimed"].dropna().between(0, 1).all()


def test_json_round_trip_is_exact():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    summary = oc.summarize(run(spec, 80, seed=1, chunk_size=40), spec.truth)
    again = Summary.from_json(summary.to_json())
    assert again == summary
    assert oc.frame(again).equals(oc.frame(summary))
