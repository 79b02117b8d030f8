"""The compiled allocation shares and simple randomization against their definitions.

``allocation.allocate`` computes the shares of designs without allocation limits trial by trial in a
compiled kernel that repeats the vectorized definition's operations in the same order, numpy's sum
of a row included; ``allocation.allocate_vectorized`` is that definition. Over every control rule,
adaptive and fixed weights, arms closed or dropped, controls missing, and weights of very different
sizes (where the order of a sum shows in the last bits), both must give the same probabilities bit
for bit. ``allocation.draw_arms`` (simple randomization, its running sums added once per stretch of
patients between two arms filling) must give every patient the arm of
``allocation.draw_arms_reference``, which adds them up anew for each patient.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_sim.allocation import allocate, allocate_vectorized, draw_arms, draw_arms_reference
from platform_sim.compiled import control_share_table


def _design(rng, n_arms, rule):
    ratios = rng.integers(1, 4, n_arms).astype(float)
    ca = SimpleNamespace(rule=rule, share=0.25)
    return SimpleNamespace(
        control_rule=rule,
        control_share_by_k=control_share_table(ca, rule, n_arms) if rule is not None else np.zeros(n_arms + 1),
        ratios=ratios / ratios.sum(),
        has_limits=False,
        rescale_limits=False,
        limits_rule="apply",
        min_allocation=np.zeros(n_arms),
        max_allocation=np.ones(n_arms),
    )


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_arms=st.integers(2, 9),
    rule=st.sampled_from([None, "fixed", "sqrt_k", "match_best"]),
    adaptive=st.booleans(),
    power=st.sampled_from([0.0, 0.5, 1.0, 2.3]),
)
def test_compiled_shares_equal_the_vectorized_definition(seed, n_arms, rule, adaptive, power):
    rng = np.random.default_rng(seed)
    design = _design(rng, n_arms, rule)
    n_trials = 50
    # P(best)-like weights spanning many orders of magnitude, some exactly 0
    weights = 10.0 ** rng.uniform(-18, 0, (n_trials, n_arms)) * (rng.uniform(size=(n_trials, n_arms)) < 0.9)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    in_trial = rng.uniform(size=(n_trials, n_arms)) < 0.8
    open_ = in_trial & (rng.uniform(size=(n_trials, n_arms)) < 0.9)
    control = rng.integers(0, n_arms, n_trials)
    control[rng.uniform(size=n_trials) < 0.1] = -1  # a stratum or trial without control
    got = allocate(design, adaptive, power, weights if adaptive else None, in_trial, open_, control)
    want = allocate_vectorized(design, adaptive, power, weights if adaptive else None, in_trial, open_, control)
    assert np.array_equal(got, want)


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_arms=st.integers(1, 9),
    spread=st.sampled_from([0.0, 1.0, 30.0]),
    zeros=st.sampled_from([0.0, 0.3, 1.0]),
    n=st.sampled_from([1, 63, 64, 65, 200]),
)
def test_compiled_limits_equal_the_vectorized_definition(seed, n_arms, spread, zeros, n):
    """``apply_limits`` (the compiled bracket and bisection for up to 7 arms) gives the
    probabilities of ``apply_limits_vectorized`` bit for bit: over weights of very different sizes,
    weights of 0 (rows of none, rows where no scale reaches the budget), arms outside the mask,
    limits from none to tight, and budgets below 1 (a control's share set aside); in one tile of
    rows bisected side by side or several, whole or not."""
    from platform_sim.allocation import _LIMITS_TILE, apply_limits, apply_limits_vectorized

    assert _LIMITS_TILE == 64  # the sizes drawn straddle the tile
    rng = np.random.default_rng(seed)
    probs = rng.random((n, n_arms)) * np.exp(spread * rng.standard_normal((n, n_arms)))
    probs[rng.random((n, n_arms)) < zeros] = 0.0
    mask = rng.random((n, n_arms)) < 0.85
    k = np.maximum(mask.sum(axis=1), 1)[:, None]
    budget = np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.5, 1.0, n))
    lower = np.broadcast_to(rng.uniform(0.0, 0.9, (n, 1)) * budget[:, None] / k, (n, n_arms)).copy()
    upper = np.minimum(lower + rng.uniform(0.0, 1.0, (n, 1)), 1.0)
    upper = np.where((np.where(mask, upper, 0.0).sum(axis=1) < budget)[:, None], 1.0, upper)
    got = apply_limits(probs, mask, lower, upper, budget)
    want = apply_limits_vectorized(probs, mask, lower, upper, budget)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_arms=st.integers(1, 9),
    batch=st.integers(0, 300),
    zeros=st.booleans(),
    tight=st.booleans(),
)
def test_simple_randomization_equals_its_patient_by_patient_definition(seed, n_arms, batch, zeros, tight):
    # arms that fill in the middle of a batch (tight caps), arms of probability 0, rows of zeros,
    # rows with fewer patients than the batch: the same arm for every patient
    rng = np.random.default_rng(seed)
    rows = 20
    probs = rng.dirichlet(np.ones(n_arms), rows) * rng.uniform(0.5, 2.0, (rows, 1))
    if zeros:
        probs[rng.uniform(size=probs.shape) < 0.3] = 0.0
        probs[0] = 0.0
    high = max(batch // n_arms + 2, 2) if tight else 10 * batch + 2
    headroom = rng.integers(0, high, (rows, n_arms))
    u = rng.random((rows, batch))
    n = rng.integers(0, batch + 1, rows).astype(np.int64)
    n[:5] = batch
    got = draw_arms(u, n, probs, headroom)
    assert np.array_equal(got, draw_arms_reference(u, n, probs, headroom))
