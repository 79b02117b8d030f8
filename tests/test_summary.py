"""The streaming summary: chunk summaries merge into the summary of all trials, exactly where it can be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_sim import metrics, platform_metrics
from platform_sim.config import Spec
from platform_sim.runner import plan_chunks, run, summarizer
from platform_sim.summary import QUANTILES, Summary, _Stat


def _stat(kind, x):
    s = _Stat(kind)
    s.add(x)
    return s


def test_estimates_match_direct_formulas():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 1.5, 997)
    mean, se = _stat("mean", x).mean()
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
    assert s.moments.m == 2 and s.mean()[0] == 2.0
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
    a, b = Summary().add(1, [("t", "r", "c", "p", [1])]), Summary().add(1, [("t", "r", "c", "mean", [1.0])])
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(b)


def test_merging_chunks_equals_summarizing_everything():
    """Per-chunk summaries merged in order give the same tables as one summary of every trial
    (counts and quantiles exactly, moments to rounding)."""
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    results = run(spec, 600, seed=5, chunk_size=150)
    whole = metrics.summarize(results, spec)
    reduce = summarizer(spec)
    merged = Summary()
    for chunk in plan_chunks(600, 150):
        part = results.__class__(**{f: (None if v is None else v[chunk.first:chunk.first + chunk.size])
                                    for f, v in vars(results).items()})
        merged.merge(reduce(part))
    a, b = metrics.summary_frame(whole, spec), metrics.summary_frame(merged, spec)
    assert list(a.columns) == list(b.columns)
    numeric = a.select_dtypes("number").columns
    np.testing.assert_allclose(b[numeric].to_numpy(float), a[numeric].to_numpy(float), rtol=1e-12, atol=1e-15)
    exact = [c for c in numeric if c.startswith(("p_", "n_q", "n_total_q")) or c == "n_trials"]
    assert exact and a[exact].equals(b[exact])


def test_tables_from_results_and_from_summary_agree():
    spec = Spec.load("battle_stratified_rar", "stk11_keap1_ctla4")
    results = run(spec, 120, seed=2, chunk_size=60)
    summary = metrics.summarize(results, spec)
    table = metrics.stratum_table(summary, spec)
    st = results.strata
    for s, stratum in enumerate(st.names):
        for k, arm in enumerate(spec.design.arm_names):
            row = table.loc[(stratum, arm)]
            assert row["p_declared_effective"] == st.declared[:, s, k].mean()
            assert row["mean_n"] == pytest.approx(st.n[:, s, k].mean(), rel=1e-12)
    assert metrics.format_table(results, spec) == metrics.format_table(summary, spec)


def test_platform_tables_from_summary():
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    results = run(spec, 30, seed=4, chunk_size=15)
    summary = platform_metrics.summarize(results, spec)
    arms = platform_metrics.arm_table(summary, spec)
    k = spec.design.arm_names.index(arms.index[0])
    entered = ~np.isnan(results.opened_at[:, k])
    assert arms.iloc[0]["p_entered"] == entered.mean()
    assert arms.iloc[0]["mean_n"] == pytest.approx(results.n[entered, k].mean(), rel=1e-12)
    trial = platform_metrics.trial_table(summary, spec)
    assert list(trial.columns) == ["value", "mcse"]
    assert trial.loc["n_randomized", "value"] == pytest.approx(results.n.sum(axis=1).mean(), rel=1e-12)
    sig = platform_metrics.signature_table(summary, spec)
    assert sig["p_graduated"].between(0, 1).all()


def test_json_round_trip_is_exact():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    summary = metrics.summarize(run(spec, 80, seed=1, chunk_size=40), spec)
    again = Summary.from_json(summary.to_json())
    assert again == summary
    assert metrics.summary_frame(again, spec).equals(metrics.summary_frame(summary, spec))
