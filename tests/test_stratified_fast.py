"""The stratified family's fast paths against the computations they replace, bit for bit."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import stats
from test_strata import _every_array

from platform_sim import runner
from platform_sim.families import stratified as stratified_family
from platform_sim.spec import Spec
from platform_sim.streams import Streams


@pytest.mark.parametrize(
    "design,scenario",
    [
        ("battle_stratified_rar", "pioneer_alternative"),
        ("battle_stratified_rar", "pioneer_null"),
        ("lungmap_umbrella", "stk11_keap1_ctla4"),
        ("hierarchical_borrowing", "atm_ceralasertib"),
    ],
)
def test_allocation_reads_the_decisions_p_best(design, scenario, monkeypatch):
    """The allocation of the controlled strata takes P(best) among the arms left from the look's
    compiled decisions instead of a second grid: every per-trial array equals that of a run that
    recomputes every P(best), bit for bit."""
    spec = Spec.load(design, scenario)
    ss = Streams(7).for_trials(np.arange(60))
    fast = runner.run_chunk(spec, ss)
    monkeypatch.setattr(
        stratified_family,
        "simulate_strata",
        functools.partial(stratified_family.simulate_strata, reuse_decided_pb=False),
    )
    slow = runner.run_chunk(spec, ss)
    a, b = _every_array(fast), _every_array(slow)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_reused_p_best_equals_prob_best():
    """What the compiled rules with a control return with ``refresh`` for the trials that go on is
    :func:`prob_best` among the arms left, bit for bit, whatever the control and the arms dropped."""
    from platform_sim.posterior import prob_best
    from platform_sim.results import ACTIVE, CONTROL
    from platform_sim.rules import CONTINUE, decide

    spec = Spec.load("battle_stratified_rar", "pioneer_alternative")
    design = spec.compiled.rules
    rng = np.random.default_rng(3)
    n, k = 4000, design.n_arms
    y = rng.integers(0, 30, size=(n, k))
    m = y + rng.integers(0, 30, size=(n, k))
    a, b = 1.0 + y, 1.0 + m - y
    status = np.full((n, k), ACTIVE, dtype=np.int8)
    control = rng.integers(0, k, size=n)
    status[np.arange(n), control] = CONTROL
    status_look = np.full((n, k), -1, dtype=np.int16)
    declared = np.zeros((n, k), dtype=bool)
    changed = rng.random(n) < 0.3
    stop, pb = decide(design, 2, a, b, status, status_look, declared, control, changed, refresh=True)
    going = stop == CONTINUE
    assert going.sum() > n // 2 and (status[going] != ACTIVE).sum() > 0  # some arms were dropped
    in_trial = (status == ACTIVE) | (status == CONTROL)
    np.testing.assert_array_equal(pb[going], prob_best(a[going], b[going], in_trial[going]))


def test_suspension_tail_equals_scipy_beta_sf():
    """The suspension rule's P(rate > reference) from the regularized incomplete beta function
    directly is scipy.stats.beta.sf's value, bit for bit."""
    from scipy import special

    rng = np.random.default_rng(5)
    a, b = 1.0 + rng.integers(0, 60, 5000), 1.0 + rng.integers(0, 60, 5000)
    for x in (0.5, 0.3, 0.85):
        np.testing.assert_array_equal(special.betaincc(a, b, x), stats.beta.sf(x, a, b))


@pytest.mark.parametrize("reference,below", [(0.5, 0.10), (0.3, 0.10), (0.7, 0.25), (0.5, 0.5)])
def test_suspension_bound_gives_the_exact_tails_answers(reference, below):
    """The arms suspended with Cantelli's bound settling most of them are exactly those the exact
    tail P(rate > reference) < below suspends, over posteriors from a few to a few hundred
    patients, close calls included."""
    rng = np.random.default_rng(11)
    shape = (400, 4, 5)
    m = rng.integers(0, 300, shape)
    y = rng.binomial(m, rng.uniform(0.05, 0.95, shape))
    a, b = 1.0 + y, 1.0 + m - y
    active = rng.random(shape) < 0.8
    exact = (stats.beta.sf(reference, a, b) < below) & active
    got = stratified_family.suspended_arms(a, b, active, reference, below)
    np.testing.assert_array_equal(got, exact)
    assert 0 < exact.sum() < active.sum()  # both answers occur
