"""BATTLE and BATTLE-2: the hierarchical probit model wired into the stratified family.

1. The model at the looks (``ProbitLooks``) gives the engine's posterior (platform_sim.posterior.probit)
   on the same counts, and recomputes only the (trial, arm) rows whose counts changed.
2. The shipped designs' final estimates are the engine's posterior at the final counts; their
   effect declarations are exactly P(DCR > 0.3) > 0.8 there.
3. Allocation after every look of traced trials is the posterior mean DCR of the open arms of the
   stratum, normalised, with arms suspended where P(DCR > 0.5) < 0.1.
4. The decision rule on hand cases; bad input names the field.
5. The PyMC twin agrees with the exact posterior of one simulated trial's final counts.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from platform_sim.config import ConfigError
from platform_sim.config.load import load_file, parse_design
from platform_sim.families.probit_looks import ProbitLooks, ProbitSetup
from platform_sim.families.stratified import _decide_reference
from platform_sim.posterior.probit import ACCURACY, ProbitPrior, battle_randomization, probit_posterior
from platform_sim.results import ACTIVE, SUPERIOR
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams
from platform_sim.trace import Trace

THRESHOLDS = (0.3, 0.5)


def _counts(rng, shape, n_max=12):
    n = rng.integers(0, n_max + 1, shape)
    return rng.binomial(n, rng.uniform(0.1, 0.8, shape)), n


# --------------------------------------------------------------------------- 1. the model at the looks


def test_probit_looks_give_the_engine_posterior_and_recompute_only_changed_rows():
    rng = np.random.default_rng(2008)
    T, S, K = 6, 5, 4
    setup = ProbitSetup.from_config(None, [f"g{s}" for s in range(S)], THRESHOLDS, [10])
    looks = ProbitLooks(setup, T, S, K)
    rows = np.arange(T)
    y, n = _counts(rng, (T, S, K))
    post = looks(0, rows, y, n)
    direct = probit_posterior(np.swapaxes(y, 1, 2), np.swapaxes(n, 1, 2), THRESHOLDS, ProbitPrior())
    np.testing.assert_allclose(post.mean, np.swapaxes(direct.mean, 1, 2), rtol=0, atol=1e-13)
    np.testing.assert_allclose(post.sd, np.swapaxes(direct.sd, 1, 2), rtol=0, atol=1e-13)
    for i, c in enumerate(THRESHOLDS):
        np.testing.assert_allclose(post.prob_above(c), np.swapaxes(direct.prob_above[..., i], 1, 2), atol=1e-13)
    assert looks.computed == T * K
    # three (trial, arm) rows gain a patient: only they are recomputed, and the view is still the engine's
    changed = [(0, 1, 2), (3, 4, 0), (5, 0, 3)]  # (trial, stratum, arm)
    for t, s, k in changed:
        n[t, s, k] += 1
        y[t, s, k] += 1
    post = looks(1, rows, y, n)
    assert looks.computed == T * K + len(changed)
    direct = probit_posterior(np.swapaxes(y, 1, 2), np.swapaxes(n, 1, 2), THRESHOLDS, ProbitPrior())
    np.testing.assert_allclose(post.mean, np.swapaxes(direct.mean, 1, 2), rtol=0, atol=1e-13)
    # a subset of trials, counts unchanged: nothing to compute
    looks(2, rows[2:4], y[2:4], n[2:4])
    assert looks.computed == T * K + len(changed)


def test_prob_above_reads_each_stratum_s_own_threshold():
    rng = np.random.default_rng(5)
    y, n = _counts(rng, (2, 3, 2))
    setup = ProbitSetup.from_config(None, ["a", "b", "c"], (0.2, 0.3, 0.5), [10])
    post = ProbitLooks(setup, 2, 3, 2)(0, np.arange(2), y, n)
    per_stratum = post.prob_above(np.array([0.3, 0.2, 0.5]))
    for s, c in enumerate([0.3, 0.2, 0.5]):
        np.testing.assert_array_equal(per_stratum[:, s], post.prob_above(c)[:, s])
    with pytest.raises(KeyError, match="not computed"):
        post.prob_above(0.4)


def test_two_stage_model_pools_the_coarse_groups_until_the_refit_and_then_chooses_by_bayes_factor():
    """Before the refit look every stratum of a coarse group has the coarse group's posterior; at
    the refit look a trial keeps the fine strata exactly when their summed log evidence is larger."""
    from platform_sim.config.strata import ProbitModel

    model = ProbitModel.model_validate({"refit": {"after_followed": 20, "coarse": {"m": ["a", "b"], "w": ["c", "d"]}}})
    setup = ProbitSetup.from_config(model, ["a", "b", "c", "d"], THRESHOLDS, [10, 20, 30])
    assert setup.refit_look == 1
    T, S, K = 4, 4, 2
    looks = ProbitLooks(setup, T, S, K)
    rows = np.arange(T)
    y = np.zeros((T, S, K), dtype=np.int64)
    n = np.full((T, S, K), 6)
    y[0] = [[6, 0], [0, 0], [3, 3], [3, 3]]  # strata a and b disagree: the fine model should win
    y[1:] = 3  # every stratum alike: the coarse model should win
    early = looks(0, rows, y, n)
    coarse = probit_posterior(
        np.stack([y[:, :2].sum(1), y[:, 2:].sum(1)], 2), np.stack([n[:, :2].sum(1), n[:, 2:].sum(1)], 2), THRESHOLDS
    )
    np.testing.assert_allclose(early.mean[:, 0], coarse.mean[:, :, 0], atol=1e-13)
    np.testing.assert_allclose(early.mean[:, 1], coarse.mean[:, :, 0], atol=1e-13)
    np.testing.assert_allclose(early.mean[:, 3], coarse.mean[:, :, 1], atol=1e-13)
    after = looks(1, rows, y, n)
    fine = probit_posterior(np.swapaxes(y, 1, 2), np.swapaxes(n, 1, 2), THRESHOLDS)
    gain = fine.log_evidence.sum(axis=1) - coarse.log_evidence.sum(axis=1)
    np.testing.assert_array_equal(looks.refined, gain > 0)
    assert looks.refined[0] and not looks.refined[1:].any()
    np.testing.assert_allclose(after.mean[0], fine.mean[0].T, atol=1e-13)
    np.testing.assert_allclose(after.mean[1], early.mean[1], atol=1e-13)


# --------------------------------------------------------------------------- 2. the shipped designs end to end


@pytest.fixture(scope="module")
def battle_run():
    spec = Spec.load("battle", "battle_kim2011")
    return spec, run(spec, 12, 7, 1)


def test_battle_estimates_and_declarations_are_the_engine_s_at_the_final_counts(battle_run):
    spec, res = battle_run
    assert res.n.sum(axis=(1, 2)).tolist() == [200] * 12
    post = probit_posterior(res.events, res.n, THRESHOLDS, ProbitPrior())
    np.testing.assert_allclose(res.estimates["rate"], post.mean, rtol=0, atol=1e-13)
    # BATTLE's rule, at the end only: effective where P(DCR > 0.3) > 0.8
    np.testing.assert_array_equal(res.claimed, post.prob_above[..., 0] > 0.8)
    assert res.claimed.any() and not res.claimed.all()


def test_battle2_estimates_follow_each_trial_s_chosen_marker_model():
    spec = Spec.load("battle2", "battle2_jco2016")
    res = run(spec, 40, 3, 1)
    refined = res.extras["probit_refined"]
    assert refined.any() and not refined.all()  # both models are chosen in this batch (about 1 in 4 refits)
    fine = probit_posterior(res.events, res.n, THRESHOLDS)
    pooled_y = np.stack([res.events[..., :2].sum(-1), res.events[..., 2:].sum(-1)], -1)
    pooled_n = np.stack([res.n[..., :2].sum(-1), res.n[..., 2:].sum(-1)], -1)
    coarse = probit_posterior(pooled_y, pooled_n, THRESHOLDS).mean[..., [0, 0, 1, 1]]
    expected = np.where(refined[:, None, None], fine.mean, coarse)
    np.testing.assert_allclose(res.estimates["rate"], expected, rtol=0, atol=1e-13)


# --------------------------------------------------------------------------- 3. allocation and suspension


def test_allocation_after_each_look_is_proportional_to_the_posterior_mean_of_the_open_arms():
    spec = Spec.load("battle", "battle_kim2011")
    checked = suspended_seen = 0
    for index in range(4):
        trace = Trace(0)
        spec.family.simulate(spec.compiled, Streams(11).for_trials([index]), trace)
        looks = [e for e in trace.events if e["kind"] == "look"]
        # before the first look (97 patients) every stratum randomizes equally
        np.testing.assert_allclose(looks[0]["alloc"], 0.25)
        for e in looks[:-1]:
            post = probit_posterior(e["y"].T, e["n"].T, THRESHOLDS)
            mean, p_target = post.mean.T, post.prob_above[..., 1].T  # (S, K)
            suspend = p_target < 0.1
            suspend &= ~suspend.all(axis=1, keepdims=True)  # a stratum keeps at least one arm
            expected = battle_randomization(mean.T, open_arms=~suspend.T).T
            np.testing.assert_allclose(e["alloc_next"], expected, rtol=0, atol=1e-12)
            checked += 1
            suspended_seen += int(suspend.sum())
    assert checked >= 40 and suspended_seen > 0  # suspension happened in these trials


# --------------------------------------------------------------------------- 4. the decision rule, hand cases


def test_effective_when_p_above_the_reference_exceeds_the_threshold_and_only_when_declaring():
    spec = Spec.load("battle", "battle_kim2011")
    design, plan = spec.compiled.rules, spec.compiled.plan
    S, K = plan.n_strata, design.n_arms
    p_above = np.array([[0.81, 0.80, 0.79, 0.99]])
    last = design.n_looks - 1
    for declare_now, expected in ((True, [SUPERIOR, ACTIVE, ACTIVE, SUPERIOR]), (False, [ACTIVE] * 4)):
        status = np.full((1, S, K), ACTIVE, dtype=np.int8)
        status_look = np.full((1, S, K), -1, dtype=np.int16)
        declared = np.zeros((1, S, K), dtype=bool)
        stage = np.zeros((1, S), dtype=np.int64)
        a = b = np.ones((1, K))
        _decide_reference(
            design,
            plan,
            last,
            True,
            np.array([0]),
            np.array([2]),
            a,
            b,
            np.zeros((1, K), dtype=np.int64),
            stage,
            status,
            status_look,
            declared,
            p_above,
            declare_now=declare_now,
        )
        assert status[0, 2].tolist() == expected
        assert declared[0, 2].tolist() == [x == SUPERIOR for x in expected]
        assert not declared[0, [0, 1, 3, 4]].any()


def _battle_dict() -> dict:
    import yaml

    from platform_sim.config import resolve

    with open(resolve("battle", "design")) as f:
        return yaml.safe_load(f)


def _problem(design: dict, scenario: str = "battle_kim2011") -> str:
    with pytest.raises(ConfigError) as err:
        Spec.from_models(parse_design(design), Spec.load("battle", scenario).scenario)
    return str(err.value)


@pytest.mark.parametrize(
    "edit, path, words",
    [
        (lambda d: d.update(control="erlotinib"), "design.control", "has no control arm"),
        (lambda d: d["strata"]["probit"].update(tau=0), "design.strata.probit.tau", "greater than or equal to 0.001"),
        (
            lambda d: d["strata"]["probit"].update(tau=1e-300),
            "design.strata.probit.tau",
            "greater than or equal to 0.001",
        ),
        (
            lambda d: d["strata"]["probit"].update(sigma=-1.0),
            "design.strata.probit.sigma",
            "greater than or equal to 0.05",
        ),
        (lambda d: d["strata"]["probit"].update(tau=10, sigma=0.1), "design.strata.probit", "above 70"),
        # beyond the range the exact posterior is tested on (a grid of sigma = 97 needed > 4000 nodes)
        (lambda d: d["strata"]["probit"].update(sigma=97), "design.strata.probit.sigma", "less than or equal to 5"),
        (lambda d: d["strata"]["probit"].update(tau=100), "design.strata.probit.tau", "less than or equal to 10"),
        (lambda d: d["strata"]["probit"].update(sigma=0.001, tau=0.05), "design.strata.probit.sigma", "0.05"),
        # P(DCR > 0) and P(DCR > 1) are not probabilities the probit model gives
        (
            lambda d: d["strata"]["groups"][2].update(reference_rate=0.0),
            "design.strata",
            "groups[2].reference_rate is 0",
        ),
        (
            lambda d: d["strata"]["groups"][0].update(reference_rate=1.0),
            "design.strata",
            "groups[0].reference_rate is 1",
        ),
        (lambda d: d["strata"]["suspension"].update(reference=0.0), "design.strata", "suspension.reference is 0"),
        (
            lambda d: d["strata"]["groups"][1].pop("reference_rate"),
            "design.strata.groups[1].reference_rate",
            "set it (BATTLE: 0.3)",
        ),
        (lambda d: d["strata"].update(analysis="independent"), "design.strata", "needs analysis: hierarchical_probit"),
        (
            lambda d: d.update(endpoint={"name": "dcr8", "direction": "lower_is_better"}),
            "design.endpoint.direction",
            "higher is better",
        ),
        (
            lambda d: d["strata"]["probit"].update(
                refit={"after_followed": 500, "coarse": {"x": ["egfr", "kras_braf", "vegf", "rxr_cyclind1", "none"]}}
            ),
            "design.strata.probit.refit.after_followed",
            "no look follows that many",
        ),
        (
            lambda d: d["strata"]["probit"].update(refit={"after_followed": 100, "coarse": {"x": ["egfr", "kras"]}}),
            "design.strata",
            "not groups",
        ),
    ],
)
def test_bad_probit_input_names_the_field(edit, path, words):
    d = copy.deepcopy(_battle_dict())
    edit(d)
    text = _problem(d)
    assert path in text and words in text, text


@pytest.mark.parametrize(
    "prior",
    [
        {"phi_mean": 10.0, "tau": 10.0, "sigma": 5.0},
        {"phi_mean": -10.0, "tau": 10.0, "sigma": 5.0},
        {"phi_mean": -10.0, "tau": 3.5, "sigma": 0.05},
        {"phi_mean": 10.0, "tau": 0.05, "sigma": 0.05},
        {"phi_mean": 0.0, "tau": 0.001, "sigma": 5.0},
        {"phi_mean": 0.0, "tau": 0.001, "sigma": 0.05},
    ],
)
def test_every_corner_of_the_accepted_prior_range_simulates(prior):
    """The accepted range is one the engine computes: BATTLE with its prior at a corner of it runs
    (its posterior there is checked against brute force in tests/test_probit.py)."""
    d = copy.deepcopy(_battle_dict())
    d["strata"]["probit"].update(prior)
    spec = Spec.from_models(parse_design(d), Spec.load("battle", "battle_kim2011").scenario)
    res = run(spec, 6, 3, 6)
    assert np.isfinite(res.estimates["rate"]).all(), prior


def test_the_probit_model_needs_groups_not_markers():
    d = copy.deepcopy(_battle_dict())
    d["strata"].pop("groups")
    d["strata"].pop("overlap")
    d["strata"]["by"] = ["kras"]
    text = _problem(d)
    assert "design.strata" in text and "give strata as groups" in text


# --------------------------------------------------------------------------- 5. reports and the PyMC twin


def test_battle_describes_itself_and_replays_a_trial():
    from platform_sim.storyboard import replay

    spec = Spec.load("battle2", "battle2_null")
    words = " ".join(p for s in spec.family.describe(spec.compiled).sections for p in s.paragraphs)
    assert "hierarchical probit" in words and "Bayes factor" in words and "posterior mean rate" in words
    story = replay(spec, seed=1, index=0, n_sims=1)
    table = story.analyses
    assert table["look"].nunique() == spec.compiled.rules.n_looks
    # the storyboard's posterior mean is the model's exact mean (its interval and P(best) come from the
    # beta with the posterior's mean and sd)
    last = table[table["look"] == table["look"].max()]
    rate = np.asarray(story.result.estimates["rate"])[0]  # (arms, strata) at the final counts
    names, arms = list(spec.compiled.plan.names), list(spec.compiled.rules.arm_names)
    shown = [rate[arms.index(a), names.index(s)] for a, s in zip(last["arm"], last["stratum"])]
    np.testing.assert_allclose(last["post_mean"].to_numpy(), shown, rtol=0, atol=1e-9)


def test_battle_design_files_load():
    for name in ("battle", "battle2"):
        from platform_sim.config import resolve

        design = load_file(resolve(name, "design"), "design")
        assert design.strata.analysis == "hierarchical_probit" and design.control is None


def test_exact_posterior_of_a_simulated_trial_agrees_with_nuts(battle_run):
    pytest.importorskip("pymc")
    pytest.importorskip("arviz")
    from platform_sim.bayes.probit import dcr_summary, fit_probit

    _, res = battle_run
    y, n = res.events[0], res.n[0]  # (arms, groups) of one trial at its final look
    idata = fit_probit(y, n, draws=1500, tune=1000, chains=2, seed=3)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    table = dcr_summary(idata, thresholds=THRESHOLDS)
    assert table["r_hat"].max() < 1.01
    exact = probit_posterior(y[None], n[None], THRESHOLDS)
    np.testing.assert_allclose(exact.mean[0], res.estimates["rate"][0], atol=1e-13)
    checks = (
        ("mean", exact.mean[0]),
        ("sd", exact.sd[0]),
        ("p_above_0.3", exact.prob_above[0, ..., 0]),
        ("p_above_0.5", exact.prob_above[0, ..., 1]),
    )
    for column, value in checks:
        mcse = table[f"mcse_{column}"].to_numpy()
        if column.startswith("p_above"):
            p = value.ravel()
            mcse = np.fmax(np.nan_to_num(mcse), np.sqrt(p * (1 - p) / table["ess_bulk"].to_numpy()))
        gap = np.abs(table[column].to_numpy() - value.ravel())
        assert np.all(gap < 4 * mcse + ACCURACY), (column, gap / (4 * mcse + ACCURACY))


def test_resizing_a_two_stage_probit_design_scales_the_end_of_stage_one():
    spec = Spec.load("battle2", "battle2_null")
    design = spec.family.resize(spec.compiled, max_n=400)
    assert design.looks.randomized_n[-1] == 400 and design.strata.probit.refit.after_followed == 200
    resized = Spec.from_models(design, spec.scenario)
    assert resized.compiled.probit.refit_look == spec.compiled.probit.refit_look


def test_hand_case_allocation_is_the_posterior_means_normalised_over_the_open_arms():
    """BATTLE's compiled randomization (softening 1, no limits, no control) turns the posterior mean
    DCRs 0.2, 0.4, 0.6, 0.8 into 0.1, 0.2, 0.3, 0.4; with the third arm suspended, 0.2/1.4, 0.4/1.4,
    0, 0.8/1.4. Before the first look allocation is equal."""
    from platform_sim.allocation import allocation_probabilities

    design = Spec.load("battle", "battle_null").compiled.rules
    mean = np.array([[0.2, 0.4, 0.6, 0.8]])
    every = np.ones((1, 4), dtype=bool)
    no_control = np.array([-1])
    np.testing.assert_allclose(
        allocation_probabilities(design, 0, mean, every, every, no_control), [[0.1, 0.2, 0.3, 0.4]], atol=1e-15
    )
    open_ = np.array([[True, True, False, True]])
    np.testing.assert_allclose(
        allocation_probabilities(design, 3, mean, every, open_, no_control),
        [[0.2 / 1.4, 0.4 / 1.4, 0.0, 0.8 / 1.4]],
        atol=1e-15,
    )
    np.testing.assert_allclose(allocation_probabilities(design, -1, None, every, every, no_control), 0.25)


def test_declaring_at_every_look_declares_early_and_closes_the_arm_in_that_group():
    d = copy.deepcopy(_battle_dict())
    d["strata"]["probit"]["declare"] = "every_look"
    spec = Spec.from_models(parse_design(d), Spec.load("battle", "battle_kim2011").scenario)
    res = run(spec, 30, 7, 1)
    last_month = res.extras["look_month"][:, -1][:, None, None]
    early = res.claimed & (res.claim_month < last_month)
    assert early.any()  # sorafenib is declared before the end in some groups
    # a declared arm leaves the group's randomization: its status there is no longer active
    final = Spec.load("battle", "battle_kim2011")
    assert spec.compiled.probit.declare_final is False and final.compiled.probit.declare_final is True
    status = res.extras["stratum_status"]
    assert (status[early] == SUPERIOR).all()
