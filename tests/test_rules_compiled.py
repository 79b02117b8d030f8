"""The compiled decision rules with a common control against the vectorized ones.

``rules._decide_with_control_compiled`` applies the rules trial by trial in one compiled kernel;
``rules._decide_with_control`` is the vectorized definition. On random states (posteriors from no
data to 10^4 patients, any mix of statuses, controls that already changed, thresholds on and off,
equivalence and futility on every control or only the first, futility off at some looks) both must leave
the same statuses, looks, declarations, controls and stop codes, and the same P(best), bit for bit.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from platform_sim.posterior import prob_greater
from platform_sim.posterior.beta import (
    _best_components,
    _grid_components,
    _grid_layout,
    _within_upper,
    best_row,
    greater_one,
    grid_scratch,
    vs_control_row,
)
from platform_sim.results import ACTIVE, CONTROL, EQUIVALENT, FUTILE, INFERIOR
from platform_sim.rules import (
    _MIN_BOUND_SHAPE,
    _decide_with_control,
    _decide_with_control_compiled,
    _log_beta,
    _log_beta_l2,
    _log_beta_sup,
    _product_bounds,
    _settled,
    _tail_bounds,
)


def _design(rng, n_arms):
    on = lambda p: p if rng.uniform() < 0.8 else math.nan  # noqa: E731 - a threshold, sometimes off
    return SimpleNamespace(
        control=0,
        superiority=np.array([on(rng.choice([0.9, 0.975, 0.99]))]),
        inferiority=np.array([on(rng.choice([0.01, 0.05, 0.2]))]),
        equivalence_probability=on(rng.choice([0.5, 0.85])),
        equivalence_margin=float(rng.choice([0.02, 0.05, 0.2])),
        equivalence_only_first=bool(rng.uniform() < 0.5),
        futility_threshold=on(rng.choice([0.05, 0.1, 0.3])),
        futility_on=None if rng.uniform() < 0.7 else np.array([rng.uniform() < 0.5]),
        futility_only_first=bool(rng.uniform() < 0.5),
        futility_delta=float(rng.choice([0.0, 0.05, 0.1, -0.02])),
    )


def _state(rng, n_trials, n_arms):
    n = np.floor(10 ** rng.uniform(0, 4, (n_trials, n_arms)) * rng.integers(0, 2, (n_trials, n_arms)))
    # rates close to each other so that every rule fires in some trials
    rate = rng.uniform(0.05, 0.95, (n_trials, 1)) + rng.normal(0, 0.08, (n_trials, n_arms))
    y = np.clip(np.round(n * np.clip(rate, 0, 1)), 0, n)
    a, b = 1.0 + y, 1.0 + n - y
    control = rng.integers(0, n_arms, n_trials).astype(np.int64)
    status = rng.choice(np.array([ACTIVE, ACTIVE, ACTIVE, INFERIOR, EQUIVALENT], dtype=np.int8), (n_trials, n_arms))
    status[np.arange(n_trials), control] = CONTROL
    status_look = np.where(status == ACTIVE, -1, 0).astype(np.int16)
    declared = rng.uniform(size=(n_trials, n_arms)) < 0.1
    changed = rng.uniform(size=n_trials) < 0.3
    return a, b, status, status_look, declared, control, changed


def _decided(design, a, b, state, **options):
    """The compiled rules of look 0 applied to a copy of the state arrays (status, status_look,
    declared, control, control_changed): (stop codes, P(best), the arrays after)."""
    after = [x.copy() for x in state]
    stop, pb = _decide_with_control_compiled(design, 0, a, b, *after, **options)
    return stop, pb, after


def _assert_same_state(got, want):
    for x, y in zip(got, want, strict=True):
        assert np.array_equal(x, y)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6))
def test_compiled_rules_equal_the_vectorized_rules(seed, n_arms):
    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms)
    state = _state(rng, 40, n_arms)
    a, b = state[:2]
    mutable = [x.copy() for x in state[2:]]
    expected_stop, expected_pb = _decide_with_control(design, 0, a, b, *mutable)
    stop, pb, compiled = _decided(design, a, b, state[2:])
    assert np.array_equal(stop, expected_stop)
    assert np.array_equal(pb, expected_pb, equal_nan=True)
    _assert_same_state(compiled, mutable)


def test_random_states_exercise_every_rule():
    # over the seeds of a short run, controls change, arms drop and trials stop in both versions
    seen = {"control": 0, "inferior": 0, "equivalent": 0, "futile": 0, "stop": 0}
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n_arms = 2 + seed % 5
        design = _design(rng, n_arms)
        design.superiority[0], design.inferiority[0], design.equivalence_probability = 0.9, 0.2, 0.5
        design.futility_threshold, design.futility_on = 0.3, None
        state = _state(rng, 40, n_arms)
        a, b = state[:2]
        stop, _, compiled = _decided(design, a, b, state[2:])
        status, _, _, control, _ = compiled
        seen["control"] += int((control != state[5]).sum())
        seen["inferior"] += int(((status == INFERIOR) & (state[2] != INFERIOR)).sum())
        seen["equivalent"] += int(((status == EQUIVALENT) & (state[2] != EQUIVALENT)).sum())
        seen["futile"] += int(((status == FUTILE) & (state[2] != FUTILE)).sum())
        seen["stop"] += int((stop >= 0).sum())
        expected = [x.copy() for x in state[2:]]
        expected_stop, _ = _decide_with_control(design, 0, a, b, *expected)
        assert np.array_equal(stop, expected_stop)
    assert all(v > 0 for v in seen.values()), seen


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6))
def test_refreshed_prob_best_equals_prob_best_of_the_arms_left(seed, n_arms):
    # with refresh, the trials that go on and whose arms changed get P(best) among the arms left,
    # exactly as prob_best gives it (what adaptive allocation recomputed them with)
    from platform_sim.posterior import prob_best

    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms)
    state = _state(rng, 40, n_arms)
    a, b = state[:2]
    stop_plain, pb_plain, plain = _decided(design, a, b, state[2:])
    stop, pb, refreshed = _decided(design, a, b, state[2:], refresh=True)
    assert np.array_equal(stop, stop_plain)
    _assert_same_state(refreshed, plain)
    status = refreshed[0]
    in_trial = (status == ACTIVE) | (status == CONTROL)
    stale = np.isnan(pb_plain).any(axis=1) & (stop == -1)
    assert np.array_equal(pb[~stale], pb_plain[~stale], equal_nan=True)
    if stale.any():
        assert np.array_equal(pb[stale], prob_best(a[stale], b[stale], in_trial[stale]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6))
def test_rules_without_prob_best_decide_the_same(seed, n_arms):
    # need_pb=False skips P(best): the same decisions and stop codes, P(best) left NaN
    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms)
    state = _state(rng, 40, n_arms)
    a, b = state[:2]
    stop_full, _, full = _decided(design, a, b, state[2:])
    stop, pb, lean = _decided(design, a, b, state[2:], need_pb=False)
    assert np.array_equal(stop, stop_full)
    assert np.isnan(pb).all()
    _assert_same_state(lean, full)


def _comparison_state(rng, n_arms, p_compare):
    """40 random rows for the grid's comparisons with the control: (a, b, active, control, compare),
    with shapes below 1 and not whole numbers, a tenth of the rows without a control and
    ``p_compare`` of them checking equivalence."""
    a, b, status, _, _, control, _ = _state(rng, 40, n_arms)
    a = a * rng.uniform(0.3, 1.0, a.shape)
    active = (status == ACTIVE) | (status == CONTROL)
    compare = rng.uniform(size=40) < p_compare
    control = np.where(rng.uniform(size=40) < 0.1, -1, control)
    return a, b, active, control, compare


@njit
def _vs_control_rows(a, b, active, control, margin, compare, vs_control, within, scratch, below):
    n_comp = a.shape[1] + 2 if margin > 0.0 else a.shape[1]
    components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
    for t in range(a.shape[0]):
        vs_control_row(t, a, b, active, control, margin, compare, vs_control, within, components, scratch, below)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_arms=st.integers(2, 6),
    margin=st.sampled_from([0.0, 0.05]),
    below=st.sampled_from([0.0, 0.5, 0.85 - 2e-4]),
)
def test_comparisons_without_prob_best_are_those_of_the_full_grid(seed, n_arms, margin, below):
    # bit for bit: P(arm > control) and P(|arm - control| < margin) of prob_best_and_vs_control; with
    # ``below`` > 0, P(|arm - control| < margin) is left out (NaN) only on rows whose every such
    # probability is below it
    from platform_sim.posterior import prob_best_and_vs_control
    from platform_sim.posterior.beta import grid_scratch

    a, b, active, control, compare = _comparison_state(np.random.default_rng(seed), n_arms, 0.7)
    if margin > 0:
        _, want_vs, want_within = prob_best_and_vs_control(a, b, active, control, margin, compare)
    else:
        _, want_vs = prob_best_and_vs_control(a, b, active, control)
    vs, within = np.empty(a.shape), np.empty(a.shape)
    n_comp = n_arms + 2 if margin > 0 else n_arms
    _vs_control_rows(a, b, active, control, margin, compare, vs, within, grid_scratch(n_comp), below)
    assert np.array_equal(vs, want_vs, equal_nan=True)
    if margin > 0:
        kept = ~np.isnan(within).all(axis=1)
        assert np.array_equal(within[kept], want_within[kept], equal_nan=True)
        left_out = np.isnan(within) & ~np.isnan(want_within)
        assert (want_within[left_out] < below + 1e-6).all()
        if below == 0.0:
            assert not left_out.any()


@njit
def _equivalence_rows(a, b, active, control, margin, compare, below, out, vs_control, within, upper, scratch):
    """best_row with ``below`` on every row (out, vs_control, within), and into ``upper`` the bounds
    _within_upper gives from the arms' grid of the rows that check equivalence (NaN elsewhere)."""
    n_arms = a.shape[1]
    n_comp = n_arms + 2
    components = (np.empty(n_comp), np.empty(n_comp), np.zeros(n_comp), np.zeros(n_comp, dtype=np.bool_))
    aa, bb, shift, use = components
    bps, weights, pdf, cdf, g, work, logs, bits, wide, aux, rep = scratch
    for t in range(a.shape[0]):
        best_row(t, a, b, active, control, margin, compare, out, vs_control, within, components, scratch, below)
        for k in range(n_arms):
            upper[t, k] = np.nan
        c = control[t]
        if compare[t] and c >= 0 and active[t, c]:
            _best_components(t, a, b, active, control, margin, compare, aa, bb, shift, use)
            n, q_n = _grid_layout(aa, bb, shift, use, bps, weights, work, aux, rep)
            _grid_components(
                0, n_arms, n, q_n, aa, bb, shift, use, pdf, cdf, g, work, logs, bits, wide, aux, rep, n_arms
            )
            _within_upper(t, n, q_n, n_arms, c, active, margin, g, aux, work, work[4])
            for k in range(n_arms):
                upper[t, k] = work[4][k]


def _equivalence_case(a, b, active, control, margin, compare, below):
    """(P(best), P(arm > control), P(within), bounds) of best_row with ``below``, and the first
    three of the full grid (below 0: the copies always filled)."""
    n_arms = a.shape[1]
    got = [np.empty(a.shape) for _ in range(4)]
    want = [np.empty(a.shape) for _ in range(4)]
    for value, arrays in ((below, got), (0.0, want)):
        _equivalence_rows(a, b, active, control, margin, compare, value, *arrays, grid_scratch(n_arms + 2))
    return got, want[:3]


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_arms=st.integers(2, 6),
    margin=st.sampled_from([0.02, 0.05, 0.2]),
    below=st.sampled_from([0.5, 0.85 - 2e-4]),
)
def test_equivalence_checks_left_out_by_the_bound_could_not_pass(seed, n_arms, margin, below):
    # best_row skips the control's shifted copies of a row where _within_upper shows every
    # P(|arm - control| < margin) below ``below``: P(best) and P(arm > control) stay those of the full
    # grid bit for bit; ``within`` is the full grid's bit for bit, or NaN where it is below ``below``;
    # and every bound is at least the full grid's value (to the 1e-6 the grid is tested to)
    a, b, active, control, compare = _comparison_state(np.random.default_rng(seed), n_arms, 0.8)
    (pb, vs, within, upper), (pb_full, vs_full, within_full) = _equivalence_case(
        a, b, active, control, margin, compare, below
    )
    assert np.array_equal(pb, pb_full)
    assert np.array_equal(vs, vs_full, equal_nan=True)
    kept = ~np.isnan(within).all(axis=1)
    assert np.array_equal(within[kept], within_full[kept], equal_nan=True)
    left_out = np.isnan(within) & ~np.isnan(within_full)
    assert (within_full[left_out] < below + 1e-6).all()
    bounded = ~np.isnan(upper)
    assert np.array_equal(bounded, ~np.isnan(within_full))
    assert (upper[bounded] >= within_full[bounded] - 1e-6).all(), (upper - within_full)[bounded].min()
    # a row is left out exactly when every bound of it is below ``below``
    checked = bounded.any(axis=1)
    settled = np.where(bounded, upper < below, True).all(axis=1) & checked
    assert np.array_equal(np.isnan(within).all(axis=1) & checked, settled)


def test_the_equivalence_bound_settles_most_checks_of_posteriors_like_the_core_design():
    # four arms of 100 to 600 patients, event rates 0.19 to 0.30 (the core design's scenario), margin
    # 0.05, threshold 0.85: most rows need no shifted copies, and the bounds are within a few hundredths
    # of the quadrature for the closest arms (measured on 1,000 trials of the core design: 59% of the
    # rows that check equivalence settled, the bound 0.14 above the quadrature on average)
    rng = np.random.default_rng(3)
    n = rng.integers(100, 600, (400, 4)).astype(float)
    y = rng.binomial(n.astype(int), np.array([0.25, 0.30, 0.22, 0.19]))
    a, b = 1.0 + n - y, 1.0 + y  # lower is better: the posterior of 1 - p
    active = np.ones(a.shape, dtype=bool)
    control = np.zeros(400, dtype=np.int64)
    compare = np.ones(400, dtype=bool)
    (pb, _, within, upper), (pb_full, _, within_full) = _equivalence_case(
        a, b, active, control, 0.05, compare, 0.85 - 2e-4
    )
    assert np.array_equal(pb, pb_full)
    settled = np.isnan(within).all(axis=1)
    assert 0.3 < settled.mean() < 1.0, settled.mean()
    gap = (upper - within_full)[:, 1:]
    assert (gap >= 0).all() and np.median(gap) < 0.2, np.median(gap)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6), spread=st.sampled_from([0.02, 0.08]))
def test_rounds_settled_by_bounds_decide_as_the_grid(seed, n_arms, spread):
    # without P(best), rounds whose answers bounds settle skip the grid (those left open by them, up to
    # three futility comparisons, get their pair's grid): the same decisions as with every round's grid,
    # on states where many rounds are settled that way
    from platform_sim.rules import _log_beta, _log_concave_bounds, _product_bounds, _tail_bounds

    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms)
    n = np.floor(10 ** rng.uniform(1, 3, (40, n_arms)))
    rate = rng.uniform(0.1, 0.9, (40, 1)) + rng.normal(0, spread, (40, n_arms))
    y = np.clip(np.round(n * np.clip(rate, 0, 1)), 0, n)
    state = list(_state(rng, 40, n_arms))
    state[0], state[1] = 1.0 + y, 1.0 + n - y
    a, b = state[:2]
    stop_grid, _, grid = _decided(design, a, b, state[2:], need_pb=False, bound_rounds=False)
    stop, _, bounded = _decided(design, a, b, state[2:], need_pb=False)
    assert np.array_equal(stop, stop_grid)
    _assert_same_state(bounded, grid)
    # the bounds hold: against the quadrature (tested to 1e-6) at 0 and at the futility delta
    a_c, b_c = a[:, :1], b[:, :1]
    for x in (0.0, design.futility_delta):
        exact = prob_greater(a, b, a_c, b_c, x)
        for i in range(40):
            for k in range(1, n_arms):
                args = (a[i, k], b[i, k], a_c[i, 0], b_c[i, 0])
                log_b, log_b_c = _log_beta(*args[:2]), _log_beta(*args[2:])
                for lower, upper in (
                    _log_concave_bounds(*args, x),
                    _tail_bounds(*args, x),
                    _product_bounds(args[0], args[1], log_b, args[2], args[3], log_b_c, x),
                ):
                    assert lower <= exact[i, k] + 1e-6 and exact[i, k] <= upper + 1e-6


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_arms=st.integers(2, 6))
def test_rounds_with_shapes_below_one_settled_by_bounds_decide_as_the_grid(seed, n_arms):
    # shapes from 1/2 to 1 (moment-matched posteriors of few patients): bounds without the
    # log-concave one (which needs shapes of at least 1) settle rounds, with the grid's answers;
    # rounds with a shape below 1/2 keep the grid
    from platform_sim.rules import _MIN_BOUND_SHAPE, _cheap_bounds, _log_beta, _product_bounds, _round_by_bounds

    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms)
    n = rng.integers(0, 12, (40, n_arms)).astype(float)
    y = np.floor(n * rng.uniform(0.0, 1.0, (40, n_arms)))
    low = rng.uniform(0.3, 1.0, (40, n_arms, 2))
    state = list(_state(rng, 40, n_arms))
    state[0], state[1] = low[..., 0] + y, low[..., 1] + n - y
    a, b = state[:2]
    stop_grid, _, grid = _decided(design, a, b, state[2:], need_pb=False, bound_rounds=False)
    stop, _, bounded = _decided(design, a, b, state[2:], need_pb=False)
    assert np.array_equal(stop, stop_grid)
    _assert_same_state(bounded, grid)
    # some rounds with a shape below 1 are settled by bounds; none with a shape below 1/2
    in_trial = np.ones(n_arms, dtype=bool)[None, :].repeat(40, axis=0)
    sure, pair = np.zeros(n_arms, dtype=bool), (np.empty(2), np.empty(2), np.zeros(2), np.ones(2, dtype=bool))
    settled = np.array(
        [
            _round_by_bounds(
                t, a, b, in_trial, 0, True, 0.01, True, 0.99, False, 0.0, 0.1, sure, sure.copy(), pair, grid_scratch(2)
            )
            for t in range(40)
        ]
    )
    smallest = np.minimum(a, b).min(axis=1)
    assert not settled[smallest < _MIN_BOUND_SHAPE].any()
    # the bounds hold against the quadrature (tested to 1e-6 for shapes of at least 1/2)
    ok = (np.minimum(a, b) >= _MIN_BOUND_SHAPE).all(axis=1)
    a_c, b_c = a[:, :1], b[:, :1]
    for x in (0.0, design.futility_delta):
        exact = prob_greater(a, b, a_c, b_c, x)
        for i in np.flatnonzero(ok):
            for k in range(1, n_arms):
                args = (a[i, k], b[i, k], a_c[i, 0], b_c[i, 0])
                log_b, log_b_c = _log_beta(*args[:2]), _log_beta(*args[2:])
                for lower, upper in (
                    _cheap_bounds(*args, x),
                    _product_bounds(args[0], args[1], log_b, args[2], args[3], log_b_c, x),
                ):
                    assert lower <= exact[i, k] + 1e-6 and exact[i, k] <= upper + 1e-6


def test_rounds_with_shapes_below_one_are_settled_by_bounds():
    # posteriors of 0-6 patients per arm, moment-matched shapes from 1/2 to 1: many rounds settled
    from platform_sim.rules import _round_by_bounds

    rng = np.random.default_rng(4)
    n = rng.integers(0, 7, (200, 4)).astype(float)
    y = np.floor(n * 0.4)
    a, b = rng.uniform(0.5, 1.0, (200, 4)) + y, rng.uniform(0.5, 1.0, (200, 4)) + n - y
    in_trial = np.ones((200, 4), dtype=bool)
    sure = np.zeros(4, dtype=bool)
    pair = (np.empty(2), np.empty(2), np.zeros(2), np.ones(2, dtype=bool))
    settled = [
        _round_by_bounds(
            t, a, b, in_trial, 0, True, 0.01, True, 0.99, True, 0.05, 0.1, sure, sure.copy(), pair, grid_scratch(2)
        )
        for t in range(200)
    ]
    assert np.mean(settled) > 0.5, np.mean(settled)  # measured: 1.0 (0.13 of the rows have every shape at least 1)


def test_some_rounds_are_settled_by_bounds():
    # the bounds do settle rounds (counted on similar arms), and not all of them
    from platform_sim.rules import _round_by_bounds

    rng = np.random.default_rng(3)
    n = np.full((200, 4), 80.0)
    y = np.round(n * np.clip(0.4 + rng.normal(0, 0.03, (200, 4)), 0, 1))
    a, b = 1.0 + y, 1.0 + n - y
    in_trial = np.ones((200, 4), dtype=bool)
    sure = np.zeros(4, dtype=bool)
    pair = (np.empty(2), np.empty(2), np.zeros(2), np.ones(2, dtype=bool))
    scratch = grid_scratch(2)
    settled = [
        _round_by_bounds(
            t, a, b, in_trial, 0, True, 0.01, True, 0.99, True, 0.05, 0.1, sure, sure.copy(), pair, scratch
        )
        for t in range(200)
    ]
    assert 0.0 < np.mean(settled) < 1.0, np.mean(settled)  # measured: 0.99


# The bounds of a round as they were computed before the density bound was shared within a round
# (each call of the log-concave bounds computing it afresh), kept to test that sharing it changed no
# number.


@njit
def _density_bound_each_time(a, b, a_c, b_c):
    log_m = min(_log_beta_sup(a, b), _log_beta_sup(a_c, b_c), _log_beta_l2(a, b) + _log_beta_l2(a_c, b_c))
    return math.exp(log_m) if log_m < 700.0 else math.inf


@njit
def _cheap_bounds_each_time(a, b, a_c, b_c, x):
    low, up = _tail_bounds(a, b, a_c, b_c, x)
    if min(min(a, b), min(a_c, b_c)) < 1.0:
        return low, up
    n, n_c = a + b, a_c + b_c
    mu = a / n - a_c / n_c
    var = a * b / (n * n * (n + 1.0)) + a_c * b_c / (n_c * n_c * (n_c + 1.0))
    m = _density_bound_each_time(a, b, a_c, b_c)
    t = mu - x
    inv_e = math.exp(-1.0)
    if t > 0.0:
        lower = max(inv_e, 1.0 - var / (var + t * t))
        upper = 1.0 - inv_e + t * m
    else:
        lower = inv_e + t * m
        upper = min(1.0 - inv_e, var / (var + t * t)) if t < 0.0 else 1.0 - inv_e
    return max(lower, low), min(upper, up)


@njit
def _round_by_bounds_each_time(
    t, a, b, in_trial, c, inf, sup, fut_delta, fut_threshold, futile, undecided, pair, scratch
):
    """_round_by_bounds as it was (every threshold on), with the bounds of _cheap_bounds_each_time."""
    n_arms = a.shape[1]
    for k in range(n_arms):
        if in_trial[t, k] and (a[t, k] < _MIN_BOUND_SHAPE or b[t, k] < _MIN_BOUND_SHAPE):
            return False
    a_c, b_c = a[t, c], b[t, c]
    log_b_c = _log_beta(a_c, b_c)
    n_open = 0
    for k in range(n_arms):
        futile[k] = False
        undecided[k] = False
        if not in_trial[t, k] or k == c:
            continue
        a_k, b_k = a[t, k], b[t, k]
        lower, upper = _cheap_bounds_each_time(a_k, b_k, a_c, b_c, 0.0)
        log_b = np.nan
        if not _settled(lower, upper, True, inf, True, sup):
            log_b = _log_beta(a_k, b_k)
            low, up = _product_bounds(a_k, b_k, log_b, a_c, b_c, log_b_c, 0.0)
            if not _settled(max(lower, low), min(upper, up), True, inf, True, sup):
                return False
        lower, upper = _cheap_bounds_each_time(a_k, b_k, a_c, b_c, fut_delta)
        if not (upper < fut_threshold - 2e-4 or lower > fut_threshold + 2e-4):
            if math.isnan(log_b):
                log_b = _log_beta(a_k, b_k)
            low, up = _product_bounds(a_k, b_k, log_b, a_c, b_c, log_b_c, fut_delta)
            lower, upper = max(lower, low), min(upper, up)
        if upper < fut_threshold - 2e-4:
            futile[k] = True
        elif not lower > fut_threshold + 2e-4:
            n_open += 1
            if n_open > 3:
                return False
            undecided[k] = True
    for k in range(n_arms):
        if undecided[k]:
            futile[k] = greater_one(a[t, k], b[t, k], a_c, b_c, fut_delta, pair, scratch) < fut_threshold
    return True


def test_a_rounds_density_bound_computed_once_gives_the_same_bounds():
    # _round_by_bounds computes the bound on the difference's density once per comparator, from the
    # control's parts computed once per round, for the bounds at 0 and at the futility delta: the
    # same rounds settled with the same answers, and the same bounds bit for bit, as the code before
    # (kept above), which computed it afresh in every call
    from platform_sim.rules import _OPEN_PAIRS, _cheap_bounds, _round_by_bounds

    assert _OPEN_PAIRS == 3  # as the copy above
    rng = np.random.default_rng(5)
    n_arms, n = 5, 600
    scale = np.exp(rng.uniform(np.log(2.0), np.log(3000.0), (n, 1)))
    rate = rng.uniform(0.1, 0.9, (n, 1)) + rng.normal(0, 0.06, (n, n_arms))
    a = np.clip(rate, 0.02, 0.98) * scale * rng.uniform(0.8, 1.2, (n, n_arms))
    b = (1 - np.clip(rate, 0.02, 0.98)) * scale * rng.uniform(0.8, 1.2, (n, n_arms))
    in_trial = rng.uniform(size=a.shape) < 0.85
    control = rng.integers(0, n_arms, n)
    in_trial[np.arange(n), control] = True
    pair = (np.empty(2), np.empty(2), np.zeros(2), np.ones(2, dtype=bool))
    scratch = grid_scratch(2)
    futile, undecided = np.zeros(n_arms, dtype=bool), np.zeros(n_arms, dtype=bool)
    was_futile, was_undecided = futile.copy(), undecided.copy()
    settled = 0
    for t in range(n):
        c = control[t]
        args = (t, a, b, in_trial, c)
        now = _round_by_bounds(*args, True, 0.01, True, 0.99, True, 0.05, 0.1, futile, undecided, pair, scratch)
        before = _round_by_bounds_each_time(*args, 0.01, 0.99, 0.05, 0.1, was_futile, was_undecided, pair, scratch)
        assert now == before
        if now:
            settled += 1
            assert np.array_equal(futile, was_futile) and np.array_equal(undecided, was_undecided)
        for k in np.flatnonzero(in_trial[t]):
            if k != c:
                pair_args = (a[t, k], b[t, k], a[t, c], b[t, c])
                for x in (0.0, 0.05):
                    assert _cheap_bounds(*pair_args, x) == _cheap_bounds_each_time(*pair_args, x)
    assert 0 < settled < n, settled
