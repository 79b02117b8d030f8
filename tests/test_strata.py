"""Stratified designs: classification, exact strata truth, routing, sub-studies, Simon designs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_sim import runner
from platform_sim.families import stratified as stratified_family
from platform_sim.config import ConfigError
from platform_sim.spec import Spec
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.population import RANDOMIZED
from platform_sim.posterior.simon import simon_oc
from platform_sim.results import ACTIVE, CONTROL, FUTILE, INELIGIBLE, SUPERIOR
from platform_sim.runner import run
from platform_sim.strata import compile_strata, route_shares
from platform_sim.streams import Streams

from test_simon import IDS, TABLE

N_SIMON = 4000


def _single_arm(r1, n1, r, n) -> dict:
    return {
        "name": "simon",
        "endpoint": {"name": "orr", "direction": "higher_is_better"},
        "arms": [{"name": "drug", "treatment": "drug"}],
        "prior": {"a": 1, "b": 1},
        "randomization": {"method": "fixed", "scheme": "simple"},
        "looks": {"randomized_n": [n1, n]},
        "decisions": {"superiority": None, "inferiority": None},
        "clinically_relevant_difference": 0.2,
        "strata": {
            "groups": [
                {
                    "name": "all",
                    "when": "other",
                    "arms": ["drug"],
                    "looks": [n1, n],
                    "reference_rate": 0.1,
                    "responder_boundaries": [r1, r],
                }
            ]
        },
    }


def _rate_scenario(rate: float) -> dict:
    return {
        "name": f"rate_{rate}",
        "endpoints": {"orr": {"kind": "binary"}},
        "treatments": {"drug": {"rates": {"orr": rate}}},
    }


@pytest.mark.parametrize("p0,p1,alpha,beta,kind,r1,n1,r,n,en0,pet0,exact_alpha,power", TABLE, ids=IDS)
def test_two_stage_sub_study_reproduces_simon(p0, p1, alpha, beta, kind, r1, n1, r, n, en0, pet0, exact_alpha, power):
    """A single-arm sub-study with a futility look after n1 patients and responder boundaries
    r1 and r has exactly Simon's operating characteristics: EN, PET and P(declared) at p0 and p1
    within 4 Monte Carlo SEs of the exact values (and the exact values match the published table)."""
    design = parse_design(_single_arm(r1, n1, r, n))
    for p, seed in ((p0, 11), (p1, 12)):
        spec = Spec.from_models(design, parse_scenario(_rate_scenario(p)))
        res = run(spec, N_SIMON, seed)
        exact = simon_oc(r1, n1, r, n, p)
        pet, en, rej = float(exact.pet), float(exact.en), float(exact.p_reject)
        size = res.n_randomized
        stopped = size == n1
        assert set(np.unique(size)) <= {n1, n}  # the stage pauses enrolment at exactly n1
        se_pet = math.sqrt(pet * (1 - pet) / N_SIMON)
        se_en = math.sqrt(pet * (1 - pet)) * (n - n1) / math.sqrt(N_SIMON)
        se_rej = math.sqrt(rej * (1 - rej) / N_SIMON)
        assert abs(stopped.mean() - pet) < 4 * se_pet
        assert abs(size.mean() - en) < 4 * se_en
        assert abs(res.claimed_any[:, 0].mean() - rej) < 4 * se_rej
        if p == p0:
            assert en == pytest.approx(en0, abs=0.006) and pet == pytest.approx(pet0, abs=6e-4)
            assert rej == pytest.approx(exact_alpha, abs=6e-5)
        else:
            assert rej == pytest.approx(power, abs=6e-5)


# --------------------------------------------------------------------------- classification and truth


def _umbrella(overlap="priority", **extra) -> dict:
    groups = [
        {"name": "atm", "when": {"atm": "positive"}, "arms": ["docetaxel", "durva_ceralasertib"]},
        {"name": "stk11_keap1", "when": {"stk11_or_keap1": "positive"}, "arms": ["docetaxel", "durva_tremelimumab"]},
        {"name": "rest", "when": "other", "arms": ["docetaxel", "dato_dxd"]},
    ]
    return {
        "name": "umbrella",
        "endpoint": {"name": "dcr12", "direction": "higher_is_better"},
        "arms": [
            {"name": a, "treatment": a} for a in ("docetaxel", "durva_ceralasertib", "durva_tremelimumab", "dato_dxd")
        ],
        "control": "docetaxel",
        "prior": {"a": 1, "b": 1},
        "randomization": {"method": "fixed", "scheme": "simple"},
        "control_allocation": {"rule": "fixed", "share": 0.5},
        "looks": {"randomized_n": [300]},
        "decisions": {"superiority": 0.99, "inferiority": None},
        "clinically_relevant_difference": 0.05,
        "strata": {"overlap": overlap, "groups": groups, **extra},
    }


@pytest.fixture(scope="module")
def umbrella_spec():
    return Spec.from_models(parse_design(_umbrella()), Spec.load(scenario="stk11_keap1_ctla4").scenario)


def test_exact_strata_shares_match_screened_cohorts(umbrella_spec):
    """The exact share of randomizable patients each group takes (reported profiles, assay errors
    and failures included) matches the shares in a large simulated cohort within 4 MCSE."""
    plan = umbrella_spec.compiled.plan
    pm = umbrella_spec.patients.population
    cohort = pm.cohort(Streams(5).for_trials(np.arange(4)), 20_000)
    ok = cohort.reason == RANDOMIZED
    mask = plan.classifier(cohort.observed[ok])
    shares = route_shares(mask, plan.n_strata, plan.other, plan.random_overlap).mean(axis=0)
    m = ok.sum()
    se = np.sqrt(plan.prevalence * (1 - plan.prevalence) / m)
    assert np.all(np.abs(shares - plan.prevalence) < 4 * se), (shares, plan.prevalence)
    assert plan.prevalence.sum() == pytest.approx(1.0)  # 'other' takes everyone else
    assert 0 < plan.overlap_share < 1


def test_random_overlap_splits_multi_match_patients(umbrella_spec):
    random = compile_strata(parse_design(_umbrella("random")), umbrella_spec.scenario)
    priority = umbrella_spec.compiled.plan
    # priority gives every ATM+ patient to the ATM group; random gives half of those also STK11/KEAP1+ away
    assert random.prevalence[0] == pytest.approx(priority.prevalence[0] - priority.overlap_share / 2, abs=1e-12)
    assert random.prevalence[1] == pytest.approx(priority.prevalence[1] + priority.overlap_share / 2, abs=1e-12)


def test_stratum_truth_matches_simulated_outcomes(umbrella_spec):
    """Each arm's true rate in each group (exact) against the simulated responders of the patients
    the group took, pooled over trials: within 4 MCSE."""
    res = run(umbrella_spec, 600, 3)
    plan = umbrella_spec.compiled.plan
    assert res.strata == tuple(plan.names)
    n = res.n.sum(axis=0)  # (K, S)
    y = res.events.sum(axis=0)
    for s in range(plan.n_strata):
        for k in np.flatnonzero(plan.arm_in[s]):
            p = plan.truth[s, k]
            se = math.sqrt(p * (1 - p) / n[k, s])
            assert abs(y[k, s] / n[k, s] - p) < 4 * se, (plan.names[s], k, y[k, s] / n[k, s], p)
    # patients go only to arms of their group, and routing shares match the exact prevalences
    assert np.all(res.n[:, ~plan.arm_in.T] == 0)
    share = res.n.sum(axis=(0, 1)) / res.n.sum()
    se = np.sqrt(plan.prevalence * (1 - plan.prevalence) / res.n.sum())
    assert np.all(np.abs(share - plan.prevalence) < 4 * se)
    assert np.all(res.extras["stratum_status"][:, ~plan.arm_in.T] == INELIGIBLE)
    # the exact truth the OCs are judged against is the plan's: each arm's rate in each group
    truth = umbrella_spec.truth
    np.testing.assert_array_equal(np.isfinite(truth.value), plan.arm_in.T)
    np.testing.assert_allclose(truth.value[plan.arm_in.T], plan.truth.T[plan.arm_in.T])


def test_results_do_not_depend_on_the_pool_size(umbrella_spec, monkeypatch):
    """A trial that reaches the end of its pool gets more of the same patients: a chunk forced
    through that path gives exactly the results of a chunk with a large pool."""
    ss = Streams(9).for_trials(np.arange(50))
    big = runner.run_chunk(umbrella_spec, ss)
    monkeypatch.setattr(stratified_family, "pool_size", lambda plan, max_n: 40)
    small = runner.run_chunk(umbrella_spec, ss)
    assert big.n_randomized.max() > 40  # the small pool is exhausted, so pools grow
    np.testing.assert_array_equal(big.n, small.n)
    np.testing.assert_array_equal(big.events, small.events)
    np.testing.assert_array_equal(big.n_screened, small.n_screened)


def _every_array(res) -> dict[str, np.ndarray]:
    """Every per-trial array of a chunk's results, by name (nested dicts flattened)."""
    import dataclasses

    out = {}
    for f in dataclasses.fields(res):
        value = getattr(res, f.name)
        items = value.items() if isinstance(value, dict) else [("", value)]
        for key, v in items:
            if isinstance(v, np.ndarray):
                out[f"{f.name}.{key}"] = v
    return out


@pytest.mark.parametrize(
    "design,scenario", [("lungmap_umbrella", "stk11_keap1_ctla4"), ("hierarchical_borrowing", "atm_ceralasertib")]
)
@pytest.mark.parametrize("size", [60, 250])
def test_trials_that_reach_the_end_of_their_pool_get_more_patients(design, scenario, size, monkeypatch):
    """With a pool some trials reach the end of and others do not, those trials alone get more of
    the same patients, look by look: every per-trial array equals that of a run with the default
    pool, bit for bit, and the batch is simulated once."""
    spec = Spec.load(design, scenario)
    ss = Streams(4).for_trials(np.arange(3, 43))
    big = runner.run_chunk(spec, ss)
    grown, rounds = [], []
    grow, simulate_pool = stratified_family.Pool.grow, stratified_family.StratifiedFamily._simulate_pool

    def counted_grow(pool, rows):
        before = pool.avail[rows].copy()
        out = grow(pool, rows)
        # each row below the limit doubles once, whatever the sizes of the others
        np.testing.assert_array_equal(pool.avail[rows], np.where(out, 2 * before, before))
        grown.append(rows.size)
        return out

    def counted_pool(*args):
        rounds.append(args[1].n_trials)
        return simulate_pool(*args)

    monkeypatch.setattr(stratified_family, "pool_size", lambda plan, max_n: size)
    monkeypatch.setattr(stratified_family.Pool, "grow", counted_grow)
    monkeypatch.setattr(stratified_family.StratifiedFamily, "_simulate_pool", staticmethod(counted_pool))
    small = runner.run_chunk(spec, ss)
    assert rounds == [40]
    assert grown and min(grown) < 40, grown  # some trials grew, not the whole batch
    a, b = _every_array(big), _every_array(small)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_pool_size_reaches_the_maximum_sample_size_through_capped_strata():
    """The pool covers the patients scanned until the strata, each filling at its prevalence up to
    its cap, hold the maximum sample size (or until the slowest fills), with the pool's margin (10%) and 128 more."""
    from types import SimpleNamespace

    uncapped = np.iinfo(np.int64).max // 4
    plan = SimpleNamespace(unclassified=0.2, prevalence=np.array([0.3, 0.5]), caps=np.array([uncapped, uncapped]))
    assert stratified_family.pool_size(plan, 400) == math.ceil(1.1 * 400 / 0.8) + 128
    # the first stratum fills at 100 scanned (50 patients), the second then takes the other 50 alone
    plan = SimpleNamespace(unclassified=0.0, prevalence=np.array([0.5, 0.5]), caps=np.array([50, uncapped]))
    assert stratified_family.pool_size(plan, 100) == math.ceil(1.1 * 100) + 128
    plan = SimpleNamespace(unclassified=0.0, prevalence=np.array([0.5, 0.25]), caps=np.array([20, uncapped]))
    assert stratified_family.pool_size(plan, 100) == math.ceil(1.1 * (100 - 20) / 0.25) + 128
    # caps adding up to less than the maximum: until the slowest capped stratum fills
    plan = SimpleNamespace(unclassified=0.0, prevalence=np.array([0.8, 0.2]), caps=np.array([10, 30]))
    assert stratified_family.pool_size(plan, 100) == math.ceil(1.1 * 30 / 0.2) + 128


def test_closed_sub_study_sends_its_patients_to_the_next_match():
    """With the ATM group capped at 10 patients, later ATM+ patients go to the STK11/KEAP1 group
    when they match it and to 'other' otherwise, so the other groups take more than their
    all-open share, and the ATM group never exceeds its cap."""
    design = _umbrella()
    design["strata"]["groups"][0]["max_n"] = 10
    spec = Spec.from_models(parse_design(design), Spec.load(scenario="stk11_keap1_ctla4").scenario)
    res = run(spec, 300, 4)
    per_group = res.n.sum(axis=1)  # (T, S)
    assert per_group[:, 0].max() <= 10
    assert (per_group[:, 0] == 10).mean() > 0.9
    share = per_group.sum(axis=0) / per_group.sum()
    prevalence = spec.compiled.plan.prevalence
    assert share[0] < prevalence[0] / 2
    assert np.all(share[1:] > prevalence[1:])
    assert np.all(res.n_screened >= res.n_randomized)


# --------------------------------------------------------------------------- load-time errors


def _problems(design: dict, scenario: str = "stk11_keap1_ctla4") -> str:
    with pytest.raises(ConfigError) as err:
        Spec.from_models(parse_design(design), Spec.load(scenario=scenario).scenario)
    return str(err.value)


def test_unknown_marker_and_level_are_named():
    d = _umbrella()
    d["strata"]["groups"][0]["when"] = {"atmm": "positive"}
    d["strata"]["groups"][1]["when"] = {"stk11_or_keap1": "yes"}
    text = _problems(d)
    assert "design.strata.groups[0].when.atmm" in text and "no characteristic 'atmm'" in text
    assert "no level 'yes'" in text and "['negative', 'positive']" in text
    by = _umbrella()
    by["strata"] = {"by": ["egfr"]}
    by["arms"] = by["arms"][:2]
    assert "design.strata.by[0]" in _problems(by)


def test_sub_study_without_patients_is_an_error():
    d = _umbrella()
    # ATM+ patients always go to the ATM group first, so an ATM+ group listed second gets nobody
    d["strata"]["groups"].insert(
        1, {"name": "atm_again", "when": {"atm": "positive"}, "arms": ["docetaxel", "durva_ceralasertib"]}
    )
    text = _problems(d)
    assert "stratum 'atm_again' has no eligible patients" in text


def test_overlap_without_rule_is_an_error():
    d = _umbrella(overlap=None)
    text = _problems(d)
    assert "design.strata.overlap" in text and "match more than one group" in text


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["strata"]["groups"][0].update(arms=["docetaxel", "nivolumab"]), "'nivolumab' is not an arm"),
        (
            lambda d: d["strata"]["groups"][0].update(arms=["durva_ceralasertib"]),
            "randomizes against the design's control",
        ),
        (
            lambda d: d["strata"]["groups"].append({"name": "x", "when": "other", "arms": ["docetaxel", "dato_dxd"]}),
            "only one group can take 'other'",
        ),
        (lambda d: d["strata"].update(by=["atm"]), "either 'by'"),
        (lambda d: d["strata"]["groups"][0].update(looks=[20, 10]), "strictly increasing"),
        (
            lambda d: d["strata"]["groups"][0].update(reference_rate=0.3, looks=[10, 20], responder_boundaries=[5, 30]),
            "can never be exceeded",
        ),
    ],
)
def test_design_level_strata_errors(edit, message):
    d = _umbrella()
    edit(d)
    with pytest.raises(ConfigError) as err:
        Spec.from_models(parse_design(d), Spec.load(scenario="stk11_keap1_ctla4").scenario)
    assert message in str(err.value)


# --------------------------------------------------------------------------- enrichment


def test_enrichment_restricts_an_arm_futile_in_negatives_and_promising_in_positives():
    from types import SimpleNamespace

    from platform_sim.posterior import oriented
    from platform_sim.families.stratified import _decide_enrichment

    design = SimpleNamespace(
        control=0,
        n_arms=3,
        superiority=np.array([0.995]),
        inferiority=np.array([np.nan]),
        prior_a=np.ones(3),
        prior_b=np.ones(3),
        higher_is_better=True,
        futility_threshold=np.nan,
        futility_delta=0.0,
        futility_on=None,
    )
    plan = SimpleNamespace(enrichment=SimpleNamespace(delta=0.05, futility=0.10, promising=0.5))
    # strata: 0 negative, 1 positive; arms: control, restricted candidate, futile everywhere
    n = np.array([[[40, 40, 40], [40, 40, 40]]])
    y = np.array([[[24, 18, 14], [24, 30, 14]]])
    a, b = oriented(1.0 + y, 1.0 + n - y, True)
    status = np.full((1, 2, 3), ACTIVE, dtype=np.int8)
    status[:, :, 0] = CONTROL
    look = np.full(status.shape, -1, dtype=np.int16)
    declared = np.zeros(status.shape, dtype=bool)
    done = _decide_enrichment(design, plan, 0, 1, np.arange(1), a, b, status, look, declared, y, n)
    assert status[0, 0, 1] == FUTILE and status[0, 1, 1] == ACTIVE  # restricted to positives
    assert status[0, 0, 2] == FUTILE and status[0, 1, 2] == FUTILE  # dropped everywhere
    assert not done[0] and not declared.any()
    # once restricted, the arm is judged on the positive stratum alone
    y2 = y.copy()
    y2[0, 1, 1] = 36
    a, b = oriented(1.0 + y2, 1.0 + n - y2, True)
    _decide_enrichment(design, plan, 0, 1, np.arange(1), a, b, status, look, declared, y2, n)
    assert declared[0, 1, 1] and not declared[0, 0, 1] and status[0, 1, 1] == SUPERIOR


def test_enrichment_design_restricts_the_adc_to_qcs_nmr_positive_patients():
    """On the TROP2 ADC scenario (benefit in QCS-NMR+ only), the enrichment design closes the
    negative stratum to Dato-DXd more often than to the null arms, and never the reverse."""
    spec = Spec.load("adaptive_enrichment", "trop2_adc")
    res = run(spec, 400, 2)
    st = res.extras["stratum_status"]  # (T, K, S)
    assert res.extra_dims["stratum_status"] == ("trial", "arm", "stratum")
    k = spec.design.arm_names.index("dato_dxd")
    neg, pos = 0, 1
    restricted = (st[:, :, neg] == FUTILE) & (st[:, :, pos] != FUTILE)
    others = [j for j in range(1, 5) if j != k]
    assert restricted[:, k].mean() > restricted[:, others].mean(axis=0).max() + 4 * math.sqrt(0.25 / 400)
    # no arm is ever open in negatives while closed in positives
    assert not ((st[:, 1:, pos] == FUTILE) & (st[:, 1:, neg] == ACTIVE)).any()


def test_cli_run_prints_and_writes_the_stratum_table(tmp_path):
    from click.testing import CliRunner

    from platform_sim.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "run",
            "--design",
            "battle_stratified_rar",
            "--scenario",
            "atm_ceralasertib",
            "--n-sims",
            "100",
            "--out",
            str(out),
            "--quiet",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "Arms by subgroup" in res.output
    import pandas as pd

    table = pd.read_csv(out / "oc.csv", keep_default_na=False)
    cells = table[table.level == "subgroup"]
    assert set(cells.subgroup) == {"atm", "stk11_keap1", "trop2_nmr", "other"}
    row = cells[(cells.subgroup == "atm") & (cells.arm == "durva_ceralasertib") & (cells.metric == "p_claimed")]
    assert len(row) == 1 and 0 <= float(row.value.iloc[0]) <= 1
    truth = Spec.load("battle_stratified_rar", "atm_ceralasertib").truth
    assert truth.role(truth.arms.index("durva_ceralasertib"), truth.subgroups.index("atm")) == "works"


def test_hierarchical_borrowing_shrinks_sparse_strata_toward_the_arm_s_other_strata():
    """Under the null every arm's stratum rates are close; with borrowing, the final estimate in
    the smallest stratum is closer to the arm's pooled rate than the stratum's own proportion."""
    spec = Spec.load("hierarchical_borrowing", "pioneer_null")
    res = run(spec, 200, 6)
    small = int(np.argmin(spec.compiled.plan.prevalence))
    n, y = res.n[:, :, small], res.events[:, :, small]  # (T, K)
    pooled = res.events_by_arm / np.maximum(res.n_by_arm, 1)
    ok = n > 0
    rate = res.estimates["rate"]  # (T, K, S) final posterior means
    raw_gap = np.abs(y / np.maximum(n, 1) - pooled)[ok]
    shrunk_gap = np.abs(rate[:, :, small] - pooled)[ok]
    assert shrunk_gap.mean() < 0.5 * raw_gap.mean()
    # the borrowing posterior is defined for every arm in every stratum it randomizes in
    assert np.isfinite(rate[:, np.isfinite(spec.truth.value)]).all()
