"""The fast evaluation of the beta-posterior grid against its reference evaluation.

Both evaluate the same quadrature (the same panels, nodes and weights); the fast one computes exp
and log with its own branch-free functions, in passes over all nodes, and sums in any order. The
two must agree to rounding: 1e-12 on every probability (the engine's bound is 1e-9), over random
posteriors from no data to 10^5 patients, integer and half-integer shapes (Jeffreys priors), with
and without equivalence margins, and over the extreme inputs of tests/test_posterior.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_sim.posterior.beta import (
    _DPHI,
    _DPHI6,
    _GRADES,
    _MIN_GAP,
    _PHI,
    _PHI6,
    _W,
    _W6,
    _Z,
    _Z_HEAVY,
    _component_breakpoints,
    _edges,
    _merge_runs,
    _nodes,
    _vexp,
    _vlog,
    prob_all_within,
    prob_best_and_vs_control,
    prob_greater,
    prob_within,
)

BOUND = 1e-12  # rounding only; the engine relies on 1e-9


def _close(fast, ref):
    fast, ref = np.asarray(fast), np.asarray(ref)
    assert np.array_equal(np.isnan(fast), np.isnan(ref))
    diff = np.abs(np.where(np.isnan(fast), 0.0, fast - ref))
    assert diff.max(initial=0.0) <= BOUND, diff.max()


def _posteriors(rng, n_trials, n_arms):
    """Posterior shapes of trials with 0 to 10^5 patients per arm, uniform or Jeffreys prior."""
    n = np.floor(10 ** rng.uniform(0, 5, (n_trials, n_arms)) * rng.integers(0, 2, (n_trials, n_arms)))
    rate = rng.uniform(0, 1, (n_trials, 1)) + rng.normal(0, 0.05, (n_trials, n_arms))
    y = np.clip(np.round(n * np.clip(rate, 0, 1)), 0, n)
    prior = np.where(rng.uniform(size=(n_trials, 1)) < 0.5, 1.0, 0.5)
    return prior + y, prior + n - y


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6), margin=st.sampled_from([None, 0.02, 0.05, 0.2]))
def test_one_grid_fast_equals_reference(seed, n_arms, margin):
    rng = np.random.default_rng(seed)
    a, b = _posteriors(rng, 20, n_arms)
    active = rng.uniform(size=a.shape) < 0.85
    control = np.where(rng.uniform(size=20) < 0.2, -1, rng.integers(0, n_arms, 20))
    within_rows = rng.uniform(size=20) < 0.7
    fast = prob_best_and_vs_control(a, b, active, control, margin, within_rows)
    ref = prob_best_and_vs_control(a, b, active, control, margin, within_rows, reference=True)
    for f, r in zip(fast, ref):
        _close(f, r)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), offset=st.floats(-0.3, 0.3))
def test_pairs_fast_equal_reference(seed, offset):
    rng = np.random.default_rng(seed)
    a, b = _posteriors(rng, 30, 2)
    _close(
        prob_greater(a[:, 0], b[:, 0], a[:, 1], b[:, 1], offset),
        prob_greater(a[:, 0], b[:, 0], a[:, 1], b[:, 1], offset, reference=True),
    )
    margin = abs(offset) + 1e-3
    _close(
        prob_within(a[:, 0], b[:, 0], a[:, 1], b[:, 1], margin),
        prob_within(a[:, 0], b[:, 0], a[:, 1], b[:, 1], margin, reference=True),
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), margin=st.floats(0.01, 0.5))
def test_all_within_fast_equals_reference(seed, margin):
    rng = np.random.default_rng(seed)
    a, b = _posteriors(rng, 10, 4)
    active = rng.uniform(size=a.shape) < 0.8
    _close(prob_all_within(a, b, active, margin), prob_all_within(a, b, active, margin, reference=True))


def test_extreme_inputs_fast_equal_reference():
    big = 1e5
    extreme = [
        (0.5, 0.5),
        (1, 1),
        (1, big),
        (0.5, big - 0.5),
        (big, 1),
        (big - 0.5, 0.5),
        (big, big),
        (5e4 + 1, 5e4 + 1),
        (2, 1e5),
    ]
    pa = np.array([p[0] for p in extreme], float)
    pb = np.array([p[1] for p in extreme], float)
    a1, a2 = np.meshgrid(pa, pa, indexing="ij")
    b1, b2 = np.meshgrid(pb, pb, indexing="ij")
    for d in (0.0, 0.01, -0.01):
        _close(prob_greater(a1, b1, a2, b2, d), prob_greater(a1, b1, a2, b2, d, reference=True))
    _close(prob_within(a1, b1, a2, b2, 0.01), prob_within(a1, b1, a2, b2, 0.01, reference=True))
    for i in range(len(pa) - 3):
        a, b = pa[None, i : i + 4], pb[None, i : i + 4]
        for f, r in zip(
            prob_best_and_vs_control(a, b, control=np.zeros(1, int), margin=0.05),
            prob_best_and_vs_control(a, b, control=np.zeros(1, int), margin=0.05, reference=True),
        ):
            _close(f, r)


def _edges_by_sorting(bps, graded, min_sd, shift, use):
    """The panel edges as the grid built them by sorting every breakpoint and checking every dropped
    edge against every support boundary (the definition the merged, prefiltered version must meet)."""
    boundaries = {float(s + e) for s, u in zip(shift, use) if u for e in (0.0, 1.0)}
    edges = list(np.sort(bps))
    kept = [edges[0]] if edges else []
    for p, e in enumerate(edges[1:], start=1):
        if e - kept[-1] >= _MIN_GAP * min_sd or p == len(edges) - 1:
            kept.append(e)
        elif e in boundaries:
            if len(kept) > 1 and kept[-1] not in boundaries:
                kept[-1] = e
            else:
                kept.append(e)
    if len(graded):
        kept = list(np.sort(np.concatenate([kept, graded])))
    return np.array(kept)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_comp=st.integers(1, 8), margin=st.sampled_from([0.0, 0.02, 0.05, 0.2]))
def test_edges_from_merged_breakpoints_equal_edges_from_sorted_ones(seed, n_comp, margin):
    # the breakpoints of each component come in increasing order: merging them gives the sorted
    # array, and the thinning that checks only edges near a support boundary keeps the same edges
    rng = np.random.default_rng(seed)
    a, b = _posteriors(rng, 1, n_comp)
    a, b = a[0], b[0]
    shift = np.where(rng.uniform(size=n_comp) < 0.3, rng.choice([-margin, margin], n_comp), 0.0)
    use = rng.uniform(size=n_comp) < 0.85
    bps = np.empty(n_comp * len(_Z))
    graded = np.empty(n_comp * (2 * _GRADES + len(_Z_HEAVY)))
    n_bp = n_graded = 0
    min_sd = np.inf
    for c in np.flatnonzero(use):
        s = a[c] + b[c]
        mean, sd = a[c] / s, math.sqrt(a[c] * b[c] / (s * s * (s + 1.0)))
        min_sd = min(min_sd, sd)
        heavy = a[c] < 2.0 or b[c] < 2.0
        log_beta = math.lgamma(a[c]) + math.lgamma(b[c]) - math.lgamma(s)
        n_bp, n_graded = _component_breakpoints(
            a[c], b[c], shift[c], mean, sd, heavy, log_beta, bps, n_bp, graded, n_graded
        )
    assert np.array_equal(_merge_runs(bps, n_bp, len(_Z), np.empty(n_bp)), np.sort(bps[:n_bp]))
    if n_bp == 0:
        return
    edges, kept = _edges(bps, n_bp, graded, n_graded, min_sd, shift, use, np.empty(n_bp))
    expected = _edges_by_sorting(bps[:n_bp], graded[:n_graded], min_sd, shift, use)
    assert np.array_equal(edges[:kept], expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_panels=st.integers(1, 60), six=st.booleans())
def test_nodes_along_the_panels_equal_the_nodes_panel_by_panel(seed, n_panels, six):
    # without a rough component the nodes are computed along the panels, row by row of the q-major
    # order; with every shape whole, the panel-by-panel loop (any_rough) picks the plain rule on
    # every panel too, and must give the same nodes, widths and weights bit for bit
    rng = np.random.default_rng(seed)
    edges = np.sort(rng.uniform(-0.2, 1.2, n_panels + 1) * 10.0 ** rng.uniform(-6, 0))
    left, right = edges[:-1].copy(), edges[1:].copy()
    n_comp = int(rng.integers(1, 7))
    a = rng.integers(1, 400, n_comp).astype(float)
    b = rng.integers(1, 400, n_comp).astype(float)
    shift = rng.choice([0.0, -0.05, 0.05], n_comp)
    use = np.ones(n_comp, dtype=bool)
    rule = (_PHI6, _DPHI6, _W6) if six else (_PHI, _DPHI, _W)
    size = n_panels * len(rule[2])
    got = [np.full(size, np.nan) for _ in range(3)]
    ref = [np.full(size, np.nan) for _ in range(3)]
    _nodes(left, right, n_panels, False, a, b, shift, use, *got, *rule)
    _nodes(left, right, n_panels, True, a, b, shift, use, *ref, *rule)
    for g, r in zip(got, ref):
        assert np.array_equal(g.view(np.int64), r.view(np.int64))


def test_exp_and_log_match_the_c_library_to_a_few_units_in_the_last_place():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-745, 709, 20_000), rng.uniform(-1, 1, 20_000), [-745.1, -745.3, -np.inf, 0.0]])
    out = np.empty_like(x)
    _vexp(x, out, x.size, np.empty((2, x.size), dtype=np.int64))
    expected = np.array([math.exp(v) for v in x])
    normal = expected > 2.3e-308
    assert np.all(np.abs(out[normal] / expected[normal] - 1.0) <= 4 * 2.0**-52)
    assert np.all(np.abs(out[~normal] - expected[~normal]) <= 4 * 5e-324)  # subnormal results and 0
    y = np.concatenate([10 ** rng.uniform(-300, 0, 20_000), rng.uniform(0.5, 1.5, 20_000), [1.0, 2.0**-1022]])
    out = np.empty_like(y)
    _vlog(y, out, y.size, np.empty(y.size, dtype=np.int64), np.empty(y.size))
    expected = np.array([math.log(v) for v in y])
    assert np.all(
        np.abs(out - expected) <= 4 * 2.0**-52 * np.maximum(np.abs(expected), 1e-300) + 2 * np.spacing(np.abs(expected))
    )


@pytest.mark.parametrize("n_arms", [2, 4, 8])
def test_fast_grid_reports_the_same_nan_pattern(n_arms):
    a = np.full((3, n_arms), 30.0)
    b = np.full((3, n_arms), 70.0)
    active = np.ones((3, n_arms), bool)
    active[1, 1] = False
    control = np.array([0, 0, -1])
    fast = prob_best_and_vs_control(a, b, active, control, 0.05, np.array([True, False, True]))
    ref = prob_best_and_vs_control(a, b, active, control, 0.05, np.array([True, False, True]), reference=True)
    for f, r in zip(fast, ref):
        _close(f, r)


def test_arms_with_the_same_posterior_have_exactly_the_same_prob_best():
    # ties are exact, so "first in design order on ties" (selection strategies, allocation) does
    # not depend on the rounding of products taken in a different order for each arm
    rng = np.random.default_rng(8)
    a, b = _posteriors(rng, 50, 5)
    a[:, 4], b[:, 4] = a[:, 0], b[:, 0]
    a[:, 3], b[:, 3] = a[:, 1], b[:, 1]
    pb = prob_best_and_vs_control(a, b, control=np.zeros(50, int))[0]
    assert np.array_equal(pb[:, 4], pb[:, 0]) and np.array_equal(pb[:, 3], pb[:, 1])
    _close(pb, prob_best_and_vs_control(a, b, control=np.zeros(50, int), reference=True)[0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), delta=st.sampled_from([0.0, 0.02, 0.05, 0.1, -0.05]))
def test_futility_bounds_hold_and_futility_decisions_equal_the_quadrature(seed, delta):
    from platform_sim.rules import _futile, futility_bounds

    rng = np.random.default_rng(seed)
    a, b = _posteriors(rng, 40, 4)
    a_c, b_c = a[:, :1], b[:, :1]
    truth = prob_greater(a, b, a_c, b_c, delta, reference=True)
    p_better = prob_greater(a, b, a_c, b_c, 0.0)
    lower, upper = futility_bounds(a, b, a_c, b_c, p_better, delta)
    # the moment bounds are exact; the monotone one carries p_better's quadrature error (1e-6 tested)
    assert np.all(lower <= truth + 1e-6) and np.all(truth <= upper + 1e-6)
    mask = rng.uniform(size=a.shape) < 0.8
    mask[:, 0] = False
    for threshold in (0.05, 0.1, 0.2, 0.5):
        got = _futile(mask, a, b, a_c, b_c, p_better, delta, threshold)
        assert np.array_equal(got, mask & (prob_greater(a, b, a_c, b_c, delta) < threshold))


@pytest.mark.parametrize(
    "design, scenario", [("benchmark_four_arm", "benchmark_four_arm"), ("pioneer_rar", "pioneer_null")]
)
def test_trials_with_the_fast_grid_equal_trials_with_the_reference(monkeypatch, design, scenario):
    # the engine end to end: every count, decision and time the same, estimates within 1e-9
    import functools
    import sys

    import platform_sim.posterior.beta as beta
    from platform_sim.runner import run_chunk
    from platform_sim.spec import Spec
    from platform_sim.streams import Streams

    spec = Spec.load(design, scenario)
    streams = Streams(3).for_trials(np.arange(60))
    fast = run_chunk(spec, streams)
    names = ("prob_best", "prob_best_and_vs_control", "prob_greater", "prob_within", "prob_all_within")
    reference = {getattr(beta, n): functools.partial(getattr(beta, n), reference=True) for n in names}
    patched = set()
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("platform_sim") and module is not beta:
            for attr, value in list(vars(module).items()):
                if callable(value) and value in reference:
                    monkeypatch.setattr(module, attr, reference[value])
                    patched.add(f"{module.__name__}.{attr}")
    assert {"platform_sim.rules.prob_best_and_vs_control", "platform_sim.families.looks.prob_best"} <= patched
    slow = run_chunk(spec, streams)
    for field in ("n", "events", "claimed", "status", "stop_reason", "n_screened"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    assert np.array_equal(fast.claim_month, slow.claim_month, equal_nan=True)
    assert np.array_equal(fast.duration_months, slow.duration_months)
    for group in ("estimates", "selections", "arm_values", "trial_values", "extras"):
        for key, value in getattr(fast, group).items():
            other = getattr(slow, group)[key]
            if np.asarray(value).dtype.kind == "f":
                _close(np.asarray(value, float), np.asarray(other, float))
            else:
                assert np.array_equal(value, other), f"{group}.{key}"


def test_the_density_bound_of_a_difference_of_betas_holds():
    """The bound on the density of X_k - X_c that lets futility skip its quadrature: the largest
    value of a Beta density and its L2 norm in closed form against the density on a fine grid, and
    the bound against the largest value of the difference's density (a convolution on that grid)."""
    from scipy import stats

    from platform_sim.rules import _difference_density_bound, _log_beta_l2, _log_beta_sup

    x = (np.arange(200_000) + 0.5) / 200_000
    rng = np.random.default_rng(11)
    shapes = [(1.0, 1.0), (1.0, 5.0), (7.0, 1.0), (0.7, 3.0), (3.0, 0.4), (0.5, 0.5), (30.0, 70.0)]
    shapes += [tuple(v) for v in rng.uniform(0.6, 120.0, (12, 2))]
    for a, b in shapes:
        f = stats.beta.pdf(x, a, b)
        sup, l2 = math.exp(_log_beta_sup(a, b)), math.exp(_log_beta_l2(a, b))
        if a >= 1 and b >= 1:
            assert abs(sup - f.max()) <= 1e-3 * sup  # the grid's largest value, near the mode
        else:
            assert sup == math.inf
        if a > 0.5 and b > 0.5:
            assert abs(l2**2 - np.mean(f**2)) <= 1e-2 * l2**2  # midpoint rule (singular ends: 1%)
        else:
            assert l2 == math.inf
    h = 1.0 / 4000
    grid = (np.arange(4000) + 0.5) * h
    for _ in range(30):
        a, b, a_c, b_c = rng.uniform(1.0, 80.0, 4)
        fk, fc = stats.beta.pdf(grid, a, b), stats.beta.pdf(grid, a_c, b_c)
        f_d = np.convolve(fk, fc[::-1]) * h  # density of X_k - X_c on the grid of differences
        bound = _difference_density_bound(a, b, a_c, b_c)
        assert f_d.max() <= bound * (1 + 1e-3)
        assert bound <= 3.0 * f_d.max()  # and not far above it for unimodal posteriors
