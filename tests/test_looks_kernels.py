"""The compiled per-look bookkeeping of designs with looks against the numpy passes it replaces."""

import numpy as np

from platform_sim.allocation import tally
from platform_sim.families.looks import _after_decisions, _follow_up, _take_batch, look_months, look_months_reference
from platform_sim.results import ACTIVE, CONTROL, INFERIOR, STOP_MAX, SUPERIOR
from platform_sim.rules import CONTINUE


def test_batch_counts_and_follow_up_equal_tally_and_segment_sums():
    rng = np.random.default_rng(3)
    n_trials, n_arms, n_treat = 9, 4, 3
    bounds = np.array([0, 5, 12, 20, 31, 40])
    outcomes = rng.random((n_trials, 40, n_treat)) < 0.4
    arm_treatment = np.array([0, 1, 2, 1], dtype=np.int64)
    seg_n = np.zeros((n_trials, 5, n_arms), dtype=np.int32)
    seg_y = np.zeros_like(seg_n)
    randomized_n = np.zeros((n_trials, n_arms), dtype=np.int64)
    followed_n, followed_y = np.zeros_like(randomized_n), np.zeros_like(randomized_n)
    ref_n, ref_y = seg_n.copy(), seg_y.copy()
    rows = np.array([0, 2, 3, 7, 8])
    for first, end in ((0, 2), (2, 3), (3, 5)):  # three batches of segments
        width = bounds[end] - bounds[first]
        arms = rng.integers(-1, n_arms, size=(rows.size, width)).astype(np.int8)
        _take_batch(rows, arms, outcomes, arm_treatment, bounds, first, end, seg_n, seg_y, randomized_n)
        for seg in range(first, end):
            s0, s1 = bounds[seg] - bounds[first], bounds[seg + 1] - bounds[first]
            n, y = tally(arms[:, s0:s1], outcomes[rows, bounds[seg] : bounds[seg + 1]], arm_treatment, n_arms)
            ref_n[rows, seg], ref_y[rows, seg] = n, y
    np.testing.assert_array_equal(seg_n, ref_n)
    np.testing.assert_array_equal(seg_y, ref_y)
    np.testing.assert_array_equal(randomized_n, ref_n.sum(axis=1))
    assert randomized_n[rows].sum() > 0 and randomized_n[[1, 4, 5, 6]].sum() == 0
    _follow_up(rows, seg_n, seg_y, 1, 4, followed_n, followed_y)
    np.testing.assert_array_equal(followed_n[rows], ref_n[rows, 1:4].sum(axis=1))
    np.testing.assert_array_equal(followed_y[rows], ref_y[rows, 1:4].sum(axis=1))
    assert followed_n[[1, 4, 5, 6]].sum() == 0


def test_after_decisions_writes_back_and_settles_stops_as_the_numpy_passes():
    rng = np.random.default_rng(8)
    n_trials, n_arms, look = 12, 3, 4
    codes = np.array([ACTIVE, CONTROL, INFERIOR, SUPERIOR], dtype=np.int8)
    status = rng.choice(codes, size=(n_trials, n_arms))
    status_look = rng.integers(-1, look, size=(n_trials, n_arms)).astype(np.int16)
    declared = rng.random((n_trials, n_arms)) < 0.3
    declared_look = np.where(declared, 1, -1).astype(np.int16)
    control = rng.integers(-1, n_arms, size=n_trials)
    control_changed = np.zeros(n_trials, dtype=bool)
    stop_look = np.full(n_trials, 9, dtype=np.int16)
    stop_reason = np.zeros(n_trials, dtype=np.int8)
    running = np.ones(n_trials, dtype=bool)
    randomized_n = rng.integers(0, 6, size=(n_trials, n_arms))
    caps = np.array([5, 4, 5], dtype=np.int64)
    rows = np.array([0, 1, 3, 4, 6, 7, 9, 10, 11])
    st = rng.choice(codes, size=(rows.size, n_arms))
    sl = np.where(st != status[rows], look, status_look[rows]).astype(np.int16)
    dc = declared[rows] | (rng.random((rows.size, n_arms)) < 0.3)
    ctrl = rng.integers(-1, n_arms, size=rows.size)
    changed = rng.random(rows.size) < 0.5
    stop = np.where(rng.random(rows.size) < 0.3, 2, CONTINUE).astype(np.int64)
    state = [status, status_look, declared, declared_look, control, control_changed, stop_look, stop_reason, running]
    ref = [x.copy() for x in state]
    for last in (False, True):
        got = [x.copy() for x in state]
        out, in_trial, open_, ended = _after_decisions(
            rows, look, last, st, sl, dc, ctrl, changed, stop, caps, randomized_n, *got
        )
        # the numpy passes
        r_status, r_sl, r_dec, r_dl, r_ctrl, r_chg, r_sto, r_reason, r_run = [x.copy() for x in ref]
        r_dl[rows] = np.where(dc & ~r_dec[rows], look, r_dl[rows])
        r_status[rows], r_sl[rows], r_dec[rows], r_ctrl[rows], r_chg[rows] = st, sl, dc, ctrl, changed
        r_in = (st == ACTIVE) | (st == CONTROL)
        r_open = r_in & (randomized_n[rows] < caps[None, :])
        r_stop = np.where((stop == CONTINUE) & (last | ~r_open.any(axis=1)), STOP_MAX, stop)
        r_end = r_stop != CONTINUE
        r_sto[rows[r_end]], r_reason[rows[r_end]], r_run[rows[r_end]] = look, r_stop[r_end], False
        np.testing.assert_array_equal(out, r_stop)
        np.testing.assert_array_equal(in_trial, r_in)
        np.testing.assert_array_equal(open_, r_open)
        np.testing.assert_array_equal(ended, r_end)
        for a, b in zip(got, [r_status, r_sl, r_dec, r_dl, r_ctrl, r_chg, r_sto, r_reason, r_run]):
            np.testing.assert_array_equal(a, b)
        assert 0 < r_end.sum() < (rows.size if not last else rows.size + 1)


def test_look_months_equal_the_running_maximum_over_every_slot():
    from types import SimpleNamespace

    rng = np.random.default_rng(21)
    slot_month = np.cumsum(rng.exponential(0.3, size=(15, 60)), axis=1)
    slot_month[rng.random(slot_month.shape) < 0.2] = np.nan  # empty slots
    slot_month[3, :25] = np.nan  # nothing randomized before the second look
    slot_month[4] = np.nan  # nothing at all
    slot_month[5, 40] = np.inf
    rules = SimpleNamespace(randomized_n=np.array([10, 25, 40, 60]), followed_n=np.array([0, 10, 30, 60]))
    got = look_months(rules, slot_month[:, :60], 2.5)
    want = look_months_reference(rules, slot_month[:, :60], 2.5)
    np.testing.assert_array_equal(got, want)
    assert got[4].tolist() == [0.0, 2.5, 2.5, 2.5] and np.isfinite(got).all()
