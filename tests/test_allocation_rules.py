"""Allocation rules of response-adaptive randomization in designs with looks (docs/allocation.md).

Formulas are checked against values computed by hand in the docstrings; simulated properties
(the biased coin's convergence to its target, the number of patients followed under random
outcome delays) against their expectations within 4 Monte Carlo standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from platform_sim.allocation import adaptive_basis, allocation_probabilities, clip_renormalise, hu_zhang
from platform_sim.config import ConfigError
from platform_sim.config.models import OutcomeDelay
from platform_sim.delays import (
    WEEKS_PER_MONTH,
    delay_schedule,
    draw_delays,
    expected_followed,
    known_look,
    tally_known,
)
from platform_sim.results import ACTIVE, CONTROL, FUTILE, SUPERIOR
from platform_sim.rules import select_with_margin
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

Z = 4.0  # tolerance in Monte Carlo standard errors
ARMS4 = ["a", "b", "c", "d"]
EVERYONE = np.ones((1, 4), dtype=bool)
NO_CONTROL = np.array([-1])


def design(arms=ARMS4, *, randomization, looks=None, control=None, control_allocation=None, decisions=None):
    d = {
        "name": "rules",
        "endpoint": {"name": "y", "direction": "higher_is_better"},
        "arms": [{"name": a, "treatment": a} for a in arms],
        "prior": {"a": 1, "b": 1},
        "randomization": randomization,
        "looks": looks or {"randomized_n": [40, 80, 120, 160]},
        "decisions": decisions or {"superiority": 0.99, "inferiority": 0.01},
        "clinically_relevant_difference": 0.1,
    }
    if control is not None:
        d["control"] = control
    if control_allocation is not None:
        d["control_allocation"] = control_allocation
    return d


def scenario(rates: dict[str, float]) -> dict:
    return {
        "name": "rules_scenario",
        "endpoints": {"y": {"kind": "binary"}},
        "treatments": {t: {"rates": {"y": r}} for t, r in rates.items()},
    }


def rules_of(build_spec, d, rate=0.3):
    return build_spec(d, scenario({a["treatment"]: rate for a in d["arms"]})).compiled.rules


def adaptive(**extra):
    return {"method": "adaptive", "scheme": "simple", "softening": 1.0, **extra}


# --------------------------------------------------------------------------- limits: hold vs clip_renormalise


def test_limits_hold_and_clip_renormalise_differ_as_their_formulas_say(build_spec):
    """P(best) = (0.85, 0.10, 0.03, 0.02), c = 1, limits [0.1, 0.6].

    clip_renormalise: clip to (0.6, 0.1, 0.1, 0.1), total 0.9, renormalise: (2/3, 1/9, 1/9, 1/9); the
    first arm ends above its maximum 0.6. hold: p = clip(lambda w) summing to 1: the first arm at 0.6,
    the last two at 0.1, and lambda = 2 gives the second 0.2: (0.6, 0.2, 0.1, 0.1)."""
    pb = np.array([[0.85, 0.10, 0.03, 0.02]])
    out = {}
    for rule in ("hold", "clip_renormalise"):
        d = design(randomization=adaptive(min_allocation=0.1, max_allocation=0.6, limits=rule))
        out[rule] = allocation_probabilities(rules_of(build_spec, d), 0, pb, EVERYONE, EVERYONE, NO_CONTROL)[0]
    np.testing.assert_allclose(out["hold"], [0.6, 0.2, 0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(out["clip_renormalise"], [2 / 3, 1 / 9, 1 / 9, 1 / 9], atol=1e-12)


def test_clip_renormalise_inside_the_limits_is_the_identity():
    """Probabilities already within the limits are unchanged by either rule (hand: clip is a no-op)."""
    p = np.array([[0.4, 0.3, 0.2, 0.1]])
    out = clip_renormalise(p, EVERYONE, np.full(4, 0.05), np.full(4, 0.5), np.ones(1))
    np.testing.assert_allclose(out, p, atol=1e-15)


def test_clip_renormalise_keeps_the_controls_share(build_spec):
    """With a control on the sqrt(k) rule (k = 3: share sqrt 3 / (sqrt 3 + 3) = 0.366025), the limits apply
    to the other arms within the remaining 0.633975: P(best) (0.9, 0.08, 0.02) scaled to (0.570577,
    0.050718, 0.012679), clipped to [0.1, 1]: (0.570577, 0.1, 0.1), total 0.770577, renormalised to
    0.633975 (factor 0.822728): (0.469429, 0.082273, 0.082273)."""
    d = design(
        randomization=adaptive(min_allocation=0.1, limits="clip_renormalise"),
        control="a",
        control_allocation={"rule": "sqrt_k"},
    )
    pb = np.array([[np.nan, 0.9, 0.08, 0.02]])
    out = allocation_probabilities(rules_of(build_spec, d), 0, pb, EVERYONE, EVERYONE, np.array([0]))[0]
    share = math.sqrt(3) / (math.sqrt(3) + 3)
    rest = 1 - share
    scaled = np.array([0.9, 0.08, 0.02]) * rest
    clipped = np.maximum(scaled, 0.1)
    np.testing.assert_allclose(out, [share, *(clipped / clipped.sum() * rest)], atol=1e-12)
    np.testing.assert_allclose(out, [0.366025, 0.469429, 0.082273, 0.082273], atol=1e-6)


# --------------------------------------------------------------------------- Hu & Zhang's coin


def test_hu_zhang_by_hand():
    """rho = (0.5, 0.3, 0.2), x = (0.4, 0.4, 0.2), gamma = 2: weights 0.5 (1.25)^2 = 0.78125,
    0.3 (0.75)^2 = 0.16875, 0.2 (1)^2 = 0.2, total 1.15: g = (0.679348, 0.146739, 0.173913)."""
    mask = np.ones((1, 3), dtype=bool)
    rho, x = np.array([[0.5, 0.3, 0.2]]), np.array([[0.4, 0.4, 0.2]])
    np.testing.assert_allclose(hu_zhang(rho, x, mask, 2.0)[0], [0.78125 / 1.15, 0.16875 / 1.15, 0.2 / 1.15], atol=1e-12)
    np.testing.assert_allclose(hu_zhang(rho, x, mask, 0.0), rho, atol=1e-15)  # gamma 0: the target
    np.testing.assert_allclose(hu_zhang(rho, rho, mask, 5.0), rho, atol=1e-15)  # on target: the target
    # an arm with no patient yet takes everything (g(0, rho) = 1)
    np.testing.assert_allclose(hu_zhang(rho, np.array([[0.6, 0.4, 0.0]]), mask, 2.0), [[0, 0, 1]], atol=1e-15)
    # a closed arm gets nothing, and a large gamma does not overflow
    closed = np.array([[True, True, False]])
    g = hu_zhang(rho, np.array([[0.9, 0.1, 0.0]]), closed, 40.0)
    assert g[0, 2] == 0 and np.isfinite(g).all() and g.sum() == pytest.approx(1.0) and g[0, 1] > 0.999


def coin_run(build_spec, gamma, n_sims=400, seed=5):
    """Final shares of three arms with target ratios 5:3:2, 30 looks of 10 patients, simple randomization;
    equal rates and a superiority threshold no trial reaches, so every trial runs to 300 patients."""
    rnd = {"method": "fixed", "scheme": "simple", "ratios": {"a": 5, "b": 3, "c": 2}}
    if gamma is not None:
        rnd["coin"] = {"rule": "hu_zhang", "gamma": gamma}
    d = design(
        ["a", "b", "c"],
        randomization=rnd,
        looks={"first": 10, "every": 10, "last": 300},
        decisions={"superiority": 0.9999999, "inferiority": None},
    )
    spec = build_spec(d, scenario({"a": 0.3, "b": 0.3, "c": 0.3}))
    res = run(spec, n_sims, seed)
    n = res.n_by_arm.astype(float)
    assert (n.sum(axis=1) == 300).all()
    return n / 300.0


def test_hu_zhang_coin_converges_to_its_target_with_less_spread(build_spec):
    """The shares reach the target (0.5, 0.3, 0.2) within 4 MCSE, and the coin (gamma = 2) spreads them
    less than simple randomization does (Hu and Zhang 2004: the asymptotic variance falls by 1 + 2 gamma
    for a fixed target). The variance ratio is checked on the log scale, whose standard error is
    sqrt(2/(n-1) + 2/(n-1)) for two independent normal samples."""
    target = np.array([0.5, 0.3, 0.2])
    coin = coin_run(build_spec, 2.0)
    simple = coin_run(build_spec, None)
    for shares in (coin, simple):
        mcse = shares.std(axis=0, ddof=1) / math.sqrt(shares.shape[0])
        assert (np.abs(shares.mean(axis=0) - target) <= Z * mcse).all(), (shares.mean(axis=0), mcse)
    n = coin.shape[0]
    log_ratio = np.log(coin[:, 0].var(ddof=1) / simple[:, 0].var(ddof=1))
    se = math.sqrt(4.0 / (n - 1))
    assert log_ratio + Z * se < 0, (math.exp(log_ratio), se)


# --------------------------------------------------------------------------- posterior-mean basis


def test_posterior_mean_basis_is_proportional_to_the_posterior_mean(build_spec):
    """Posteriors Beta(3, 7), Beta(5, 5), Beta(2, 8), Beta(6, 4): means 0.3, 0.5, 0.2, 0.6, total 1.6,
    so with c = 1 the allocation is (0.1875, 0.3125, 0.125, 0.375) (BATTLE's rule)."""
    d = design(randomization=adaptive(basis="posterior_mean"))
    rules = rules_of(build_spec, d)
    a, b = np.array([[3.0, 5, 2, 6]]), np.array([[7.0, 5, 8, 4]])
    basis = adaptive_basis(rules, np.full((1, 4), np.nan), a, b, EVERYONE)
    np.testing.assert_allclose(basis, [[0.3, 0.5, 0.2, 0.6]], atol=1e-15)
    out = allocation_probabilities(rules, 0, basis, EVERYONE, EVERYONE, NO_CONTROL)
    np.testing.assert_allclose(out, [[0.1875, 0.3125, 0.125, 0.375]], atol=1e-12)


# --------------------------------------------------------------------------- random outcome delays


def test_random_delays_follow_the_analytic_expectation():
    """Lognormal delays (median 12 weeks, sdlog 0.5) on Poisson arrivals of 20 patients a month: at each
    look but the last, the mean number followed equals the expectation sum_i P(D <= date - r_i) within
    4 MCSE; the last look (the final analysis) follows everyone."""
    n_trials, n = 3000, 200
    randomized_n = np.array([40, 80, 120, 160, 200])
    rng = np.random.default_rng(11)
    ready = np.cumsum(rng.exponential(1 / 20.0, size=(n_trials, n)), axis=1)
    delay = OutcomeDelay(distribution="lognormal", median_weeks=12, sdlog=0.5)
    ts = Streams(3).for_trials(np.arange(n_trials))
    sched = delay_schedule(delay, ts, ready, randomized_n, assessment_months=0.0)
    median = 12 / WEEKS_PER_MONTH
    expected = expected_followed(ready, stats.lognorm(s=0.5, scale=median).cdf, randomized_n)
    for j in range(len(randomized_n) - 1):
        diff = (sched.known <= j).sum(axis=1) - expected[:, j]
        mcse = diff.std(ddof=1) / math.sqrt(n_trials)
        assert abs(diff.mean()) <= Z * mcse, (j, diff.mean(), mcse)
        assert 0 < expected[:, j].mean() < randomized_n[j]
    assert (sched.known <= len(randomized_n) - 1).all()
    assert (sched.look_month[:, -1] >= (ready + draw_delays(delay, ts, n, 0.0)).max(axis=1) - 1e-12).all()


def test_delay_distributions_have_their_median_and_scan_schedule():
    """The share of draws at or below the stated median is 1/2 within 4 MCSE (lognormal, gamma); fixed and
    endpoint delays are constant; with scans every 6 weeks a 12-week endpoint is read at week 12 and a
    10-week delay at week 12."""
    ts = Streams(4).for_trials(np.arange(2000))
    n = 50
    for delay in (
        OutcomeDelay(distribution="lognormal", median_weeks=8, sdlog=0.7),
        OutcomeDelay(distribution="gamma", median_weeks=8, shape=2.0),
    ):
        d = draw_delays(delay, ts, n, 0.0)
        share = (d <= 8 / WEEKS_PER_MONTH).mean()
        assert abs(share - 0.5) <= Z * math.sqrt(0.25 / d.size), (delay.distribution, share)
    twelve = 12 / WEEKS_PER_MONTH
    d = draw_delays(OutcomeDelay(distribution="endpoint", assessment_every_weeks=6), ts, n, twelve)
    np.testing.assert_allclose(d, twelve, rtol=1e-12)
    d = draw_delays(OutcomeDelay(distribution="fixed", median_weeks=10, assessment_every_weeks=6), ts, n, 0.0)
    np.testing.assert_allclose(d, twelve, rtol=1e-12)


def test_fixed_delay_follows_exactly_those_randomized_a_delay_before_the_look():
    """Arrivals one a month (months 1..20), a fixed delay of 3 months, looks after 5, 10, 20 patients (on
    months 5, 10, 20): patients 1..2 are followed at the first look, 1..7 at the second, everyone at the last."""
    ready = np.arange(1.0, 21.0)[None, :]
    delays = np.full((1, 20), 3.0)
    known = known_look(ready, delays, np.array([5, 10, 20]))
    assert [(known <= j).sum() for j in range(3)] == [2, 7, 20]


def test_a_tally_up_to_the_patients_randomized_by_a_look_misses_none_known_at_it():
    """No patient randomized after a look is known at it (known_look), so counting the patients known
    at look j among the first randomized_n[j] positions gives every one of them."""
    rng = np.random.default_rng(12)
    randomized_n = np.array([30, 60, 90, 120])
    ready = np.cumsum(rng.exponential(0.2, (50, 120)), axis=1)
    delays = rng.lognormal(0.5, 0.8, (50, 120))
    known = known_look(ready, delays, randomized_n)
    arms = rng.integers(-1, 3, (50, 120)).astype(np.int8)
    outcomes = rng.uniform(size=(50, 120, 3)) < 0.4
    treatment = np.arange(3)
    for j, upto in enumerate(randomized_n):
        at = np.full(50, j)
        whole = tally_known(arms, outcomes, treatment, known, at, at, 3)
        cut = tally_known(arms, outcomes, treatment, known, at, at, 3, upto=int(upto))
        assert whole[0].sum() > 0
        for w, c in zip(whole, cut):
            np.testing.assert_array_equal(w, c)
    # and a cut at fewer positions than are known does leave some out
    at = np.full(50, 3)
    assert (
        tally_known(arms, outcomes, treatment, known, at, at, 3, upto=60)[0].sum()
        < tally_known(arms, outcomes, treatment, known, at, at, 3)[0].sum()
    )


def delayed_design(**looks_extra):
    return design(
        ["ctl", "b", "c"],
        control="ctl",
        control_allocation={"rule": "sqrt_k"},
        randomization=adaptive(softening=0.5, burn_in_n=30, min_allocation=0.1),
        looks={"randomized_n": [40, 80, 120, 160], **looks_extra},
        decisions={"superiority": 0.99, "inferiority": 0.01},
    )


def test_trials_with_random_delays_run_and_follow_everyone_at_the_end(build_spec):
    d = delayed_design(outcome_delay={"distribution": "lognormal", "median_weeks": 12, "sdlog": 0.4})
    spec = build_spec(d, scenario({"ctl": 0.3, "b": 0.3, "c": 0.5}))
    res = run(spec, 300, 7)
    followed, n = res.extras["n_followed"], res.n_by_arm
    stop_look = res.extras["stop_look"]
    assert (followed <= n).all()
    last = stop_look == 3
    assert (followed[last] == n[last]).all()
    early = ~last
    assert early.any() and (followed[early].sum(axis=1) < n[early].sum(axis=1)).all()
    months = res.extras["look_month"]
    assert (np.diff(months, axis=1) >= 0).all()


def test_burn_in_counts_each_trials_own_followed_patients(build_spec):
    """With random delays the burn-in (30 followed patients) ends in each trial when its own count
    reaches 30: with a 1000-week median nobody is followed before the final look, so every interim
    allocation is the equal one (sqrt(2) : 1 : 1 for the control and two arms); with a median of
    0.01 week all but the last patient randomized before a look are followed there, and the allocation
    adapts from the first look (40 patients) in every trial whose two arms do not tie in P(best)
    (identical data leave the equal allocation; 99 of the 100 trials at this seed moved)."""
    rates = scenario({"ctl": 0.3, "b": 0.3, "c": 0.5})
    root = math.sqrt(2)
    equal = np.array([root, 1, 1]) / (root + 2)
    late = run(build_spec(delayed_design(outcome_delay={"distribution": "fixed", "median_weeks": 1000}), rates), 100, 4)
    ah = late.extras["alloc_history"].astype(float)
    defined = ~np.isnan(ah).any(axis=2)
    assert defined.any()
    np.testing.assert_allclose(ah[defined], np.broadcast_to(equal, ah[defined].shape), atol=1e-6)
    soon = run(build_spec(delayed_design(outcome_delay={"distribution": "fixed", "median_weeks": 0.01}), rates), 100, 4)
    first = soon.extras["alloc_history"][:, 0].astype(float)
    moved = ~np.isclose(first, equal[None, :], atol=1e-6).all(axis=1)
    assert moved.mean() > 0.9, moved.mean()


# --------------------------------------------------------------------------- futility per look and final selection


def test_futility_switched_off_at_a_look_drops_nothing_there(build_spec):
    """A futility threshold of 0.95 (P(better by 0.1) < 0.95 almost always) off at the first two looks:
    no arm is dropped for futility there, and some are at the third."""
    base = {"superiority": 0.999, "inferiority": None}
    d = design(
        ["ctl", "b", "c"],
        control="ctl",
        randomization={"method": "fixed", "scheme": "block"},
        decisions={**base, "futility": {"threshold": 0.95, "delta": 0.1, "looks": [False, False, True, True]}},
    )
    res = run(build_spec(d, scenario({"ctl": 0.3, "b": 0.3, "c": 0.3})), 200, 3)
    futile = res.status == FUTILE
    looks = res.extras["status_look"][futile]
    assert futile.any() and not np.isin(looks, (0, 1)).any() and (looks == 2).any()


def test_futility_on_at_every_look_equals_the_default(build_spec):
    base = {"superiority": 0.999, "inferiority": None}
    runs = []
    for looks in (None, [True] * 4):
        fut = {"threshold": 0.3, "delta": 0.05, **({"looks": looks} if looks else {})}
        d = design(
            ["ctl", "b", "c"],
            control="ctl",
            randomization={"method": "fixed", "scheme": "block"},
            decisions={**base, "futility": fut},
        )
        runs.append(run(build_spec(d, scenario({"ctl": 0.3, "b": 0.3, "c": 0.4})), 100, 3))
    np.testing.assert_array_equal(runs[0].status, runs[1].status)
    np.testing.assert_array_equal(runs[0].n, runs[1].n)


def test_select_with_margin_by_hand():
    score = np.array([[0.50, 0.30, 0.20], [0.45, 0.40, 0.15], [0.9, np.nan, 0.1], [0.2, 0.3, 0.5]])
    eligible = np.array([[True, True, True], [True, True, True], [True, False, True], [True, True, False]])
    # margins 0.20, 0.05, 0.8 (the dropped arm does not count), 0.1 (the ineligible 0.5 does not count)
    np.testing.assert_array_equal(select_with_margin(score, eligible, 0.1), [0, -1, 0, 1])
    np.testing.assert_array_equal(select_with_margin(score, eligible, 0.0), [0, 0, 0, 1])
    lone = np.array([[False, True, False]])
    np.testing.assert_array_equal(select_with_margin(score[:1], lone, 0.5), [1])


def test_final_selection_is_reported_beside_the_others(build_spec):
    d = design(
        ["a", "b", "c"],
        randomization={"method": "fixed", "scheme": "block"},
        decisions={
            "superiority": 0.99,
            "inferiority": 0.01,
            "final_selection": {"by": "posterior_mean", "margin": 0.05},
        },
    )
    res = run(build_spec(d, scenario({"a": 0.3, "b": 0.3, "c": 0.5})), 200, 9)
    pick = res.selections["best_with_margin"]
    mean = res.estimates["rate"][:, :, 0]
    rows = np.flatnonzero(pick >= 0)
    assert rows.size and (pick == 2).mean() > 0.5
    # where it picks, the pick has the highest posterior mean of the arms still in the trial, by the margin
    still_in = np.isin(res.status[rows], (ACTIVE, CONTROL, SUPERIOR))
    ranked = np.sort(np.where(still_in, mean[rows], -np.inf), axis=1)
    assert (pick[rows] == np.where(still_in, mean[rows], -np.inf).argmax(axis=1)).all()
    assert (ranked[:, -1] - ranked[:, -2] >= 0.05 - 1e-12).all()
    none = np.flatnonzero(pick < 0)
    ranked = np.sort(np.where(np.isin(res.status[none], (ACTIVE, CONTROL, SUPERIOR)), mean[none], -np.inf), axis=1)
    assert none.size and (ranked[:, -1] - ranked[:, -2] < 0.05).all()


# --------------------------------------------------------------------------- bad input


BAD = [
    (
        "min above max",
        {"randomization": adaptive(min_allocation=0.4, max_allocation=0.3)},
        "design.randomization.min_allocation",
    ),
    ("floors above 1", {"randomization": adaptive(min_allocation=0.3)}, "design.randomization.min_allocation"),
    (
        "negative delay",
        {"looks": {"randomized_n": [40, 80], "outcome_delay": {"distribution": "fixed", "median_weeks": -2}}},
        "outcome_delay.median_weeks",
    ),
    (
        "lognormal without sdlog",
        {"looks": {"randomized_n": [40, 80], "outcome_delay": {"distribution": "lognormal", "median_weeks": 8}}},
        "outcome_delay",
    ),
    (
        "delay and followed_n",
        {"looks": {"randomized_n": [40, 80], "followed_n": [20, 80], "outcome_delay": {"distribution": "endpoint"}}},
        "looks",
    ),
    (
        "futility looks of the wrong length",
        {
            "control": "a",
            "decisions": {
                "superiority": 0.99,
                "inferiority": 0.01,
                "futility": {"threshold": 0.1, "delta": 0.05, "looks": [True]},
            },
        },
        "design.decisions.futility.looks",
    ),
    (
        "softening list of the wrong length",
        {"randomization": adaptive(softening=[0.5, 1.0])},
        "design.randomization.softening",
    ),
    ("unknown limits rule", {"randomization": adaptive(limits="clip")}, "randomization.limits"),
    ("coin gamma negative", {"randomization": adaptive(coin={"rule": "hu_zhang", "gamma": -1})}, "coin.gamma"),
]


@pytest.mark.parametrize("what,change,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_field(build_spec, what, change, field):
    d = design(randomization=adaptive())
    d.update(change)
    with pytest.raises(ConfigError) as info:
        build_spec(d, scenario({a: 0.3 for a in ARMS4}))
    assert field in str(info.value), str(info.value)


def test_options_of_designs_with_looks_are_refused_with_strata(build_spec):
    """A stratified design does not implement the coin, the posterior-mean basis, random delays or the
    final selection: naming them is an error, not a silent no-op."""
    spec = Spec.load("battle_stratified_rar", "pioneer_alternative")
    data = spec.design.model_dump(exclude_none=True)
    data["randomization"]["coin"] = {"rule": "hu_zhang", "gamma": 2}
    data["looks"]["outcome_delay"] = {"distribution": "endpoint"}
    data["looks"].pop("followed_n", None)
    with pytest.raises(ConfigError) as info:
        build_spec(data, spec.scenario.model_dump(exclude_none=True))
    text = str(info.value)
    assert "design.randomization.coin" in text and "design.looks.outcome_delay" in text


# --------------------------------------------------------------------------- shipped designs unchanged


def fingerprint(res) -> str:
    """A digest of a run's integer results: counts, statuses, stops, claims, selections."""
    import hashlib

    h = hashlib.sha256()
    for a in (
        res.n,
        res.events,
        res.status,
        res.stop_reason,
        res.claimed,
        res.n_screened,
        res.extras.get("stop_look", np.zeros(1)),
        res.extras.get("n_followed", np.zeros(1)),
    ):
        h.update(np.ascontiguousarray(np.asarray(a).astype(np.int64)).tobytes())
    for k in sorted(res.selections):
        h.update(k.encode())
        h.update(np.ascontiguousarray(np.asarray(res.selections[k]).astype(np.int64)).tobytes())
    return h.hexdigest()[:16]


#: Digests of 60 trials (seed 3) computed with the code before the allocation options of this file
#: existed (commit df8a5c4); "pioneer_rar_followed_n" is pioneer_rar with its former followed_n
#: lag and threshold 0.98889. A design that uses none of the new options must give the same trials.
UNCHANGED = {
    ("allcomer_rar", "pioneer_null"): "a8996d10eb5a72c1",
    ("allcomer_fixed", "pioneer_alternative"): "86844e5d5a7a1e3d",
    ("battle_stratified_rar", "pioneer_alternative"): "a13881be08c1ee4b",
    ("lungmap_umbrella", "pioneer_alternative"): "db8548ab6cf063ec",
    ("hierarchical_borrowing", "pioneer_alternative"): "217107986d0b0d75",
    ("pioneer_platform", "pioneer_alternative"): "bf2cf2ccd5b23c6c",
    ("pioneer_rar_followed_n", "pioneer_alternative"): "8ce7917666df7db8",
}


@pytest.mark.parametrize("pair", list(UNCHANGED), ids=[d for d, _ in UNCHANGED])
def test_designs_without_the_new_options_are_unchanged(pair):
    from platform_sim.config.load import parse_design

    name, scenario_name = pair
    if name == "pioneer_rar_followed_n":
        base = Spec.load("pioneer_rar", scenario_name)
        data = base.design.model_dump(exclude_none=True)
        data["looks"] = {
            "randomized_n": [60, 90, 120, 150, 180, 210, 240],
            "followed_n": [40, 70, 100, 130, 160, 190, 240],
        }
        data["decisions"]["superiority"] = 0.98889
        spec = Spec.from_models(parse_design(data), base.scenario)
    else:
        spec = Spec.load(name, scenario_name)
    assert fingerprint(run(spec, 60, 3)) == UNCHANGED[pair]


def test_platform_designs_take_the_limits_rule_and_refuse_the_coin(build_spec):
    """A platform design allocates through the same limits step: clip_renormalise changes its trials
    (its 10% floor binds), and the coin, which it does not implement, is an error naming the field."""
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    data = spec.design.model_dump(exclude_none=True)
    scen = spec.scenario.model_dump(exclude_none=True)
    data["randomization"]["limits"] = "hold"
    held = run(build_spec(data, scen), 40, 2)
    np.testing.assert_array_equal(held.n, run(spec, 40, 2).n)  # hold is the default
    data["randomization"]["limits"] = "clip_renormalise"
    renormalised = run(build_spec(data, scen), 40, 2)
    assert (renormalised.n != held.n).any()
    data["randomization"]["coin"] = {"rule": "hu_zhang", "gamma": 2}
    with pytest.raises(ConfigError) as info:
        build_spec(data, scen)
    assert "design.randomization.coin" in str(info.value)
