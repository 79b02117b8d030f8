"""The virtual patient generator (platform_sim.population): biomarker profiles, accrual and
the screening funnel, checked against values computed by hand from the configuration.

Every expected value below is computed here, independently of the package: joint and
marginal marker probabilities by enumerating the conditional tables, the integrated
accrual rate from its closed form, funnel shares by numerical integration over the
lognormal turnaround times (scipy). Simulated frequencies must lie within ``Z`` Monte
Carlo standard errors of the exact value, the standard error computed from the exact
probability (binomial) or the exact Poisson mean; the seeds are fixed.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_scenario
from platform_sim.config.population import expected_randomizable
from platform_sim.population import (
    BLOCK,
    DECLINED,
    INELIGIBLE,
    LOST_WAITING,
    MISSING,
    NOT_ASSIGNED,
    NOT_SUBMITTED,
    RANDOMIZED,
    SCREEN_FAILURE,
    PopulationModel,
    expected_funnel,
    screening_paths,
)
from platform_sim.streams import Streams

Z = 4.0  # tolerance in Monte Carlo standard errors
DAYS = 365.25 / 12  # days per month, as documented for the package

# --------------------------------------------------------------------------- the test population

HISTOLOGY = ["nonsquamous", "squamous"]
PDL1 = ["lt1", "1to49", "ge50"]
P_HISTOLOGY = [0.7, 0.3]
P_KRAS = {"nonsquamous": 0.3, "squamous": 0.05}  # P(kras+ | histology)
P_STK11 = {  # P(stk11+ | histology, kras)
    ("nonsquamous", "positive"): 0.26,
    ("nonsquamous", "negative"): 0.13,
    ("squamous", "positive"): 0.08,
    ("squamous", "negative"): 0.03,
}
P_PDL1 = {"negative": [0.5, 0.3, 0.2], "positive": [0.35, 0.3, 0.35]}  # P(pdl1 | kras)

KRAS_TISSUE = (0.9, 0.95)  # sensitivity, specificity
KRAS_LIQUID = (0.77, 0.99)
STK11_TISSUE = (0.95, 0.98)
PDL1_TISSUE_FAILURE = 0.06

POPULATION = {
    "name": "testpop",
    "accrual": {"rate_per_month": 30, "ramp_up_months": 6},
    "screening": {
        "ineligible": 0.05,
        "tissue": {"failure": 0.09, "turnaround": {"median_days": 15, "sdlog": 0.5}},
        "liquid": {"detectable": 0.83, "turnaround": {"median_days": 9, "sdlog": 0.3}},
        "loss_hazard_per_day": 0.004,
    },
    "markers": {
        "histology": {"levels": HISTOLOGY, "probabilities": P_HISTOLOGY},
        "kras": {
            "given": ["histology"],
            "prevalence": dict(P_KRAS),
            "tissue": {"sensitivity": KRAS_TISSUE[0], "specificity": KRAS_TISSUE[1]},
            "liquid": {"sensitivity": KRAS_LIQUID[0], "specificity": KRAS_LIQUID[1]},
        },
        "stk11": {
            "given": ["histology", "kras"],
            # keys as people type them: spacing is free
            "prevalence": {
                "nonsquamous, positive": 0.26,
                "nonsquamous,negative": 0.13,
                "squamous ,positive": 0.08,
                "squamous, negative": 0.03,
            },
            "tissue": {"sensitivity": STK11_TISSUE[0], "specificity": STK11_TISSUE[1]},
        },
        "pdl1": {
            "levels": PDL1,
            "given": ["kras"],
            "probabilities": {k: list(v) for k, v in P_PDL1.items()},
            "tissue": {"failure": PDL1_TISSUE_FAILURE},
        },
    },
    "derived": {
        "kl": {"all_of": ["kras", "stk11"]},
        "hi": {"any_of": ["stk11", {"pdl1": "ge50"}]},
        "ns_pos": {"all_of": [{"histology": "nonsquamous"}, {"pdl1": ["1to49", "ge50"]}]},
    },
}
MARKERS = ["histology", "kras", "stk11", "pdl1"]
DERIVED = ["kl", "hi", "ns_pos"]
LEVELS = {"histology": HISTOLOGY, "kras": ["negative", "positive"], "stk11": ["negative", "positive"], "pdl1": PDL1}


def scenario_with(population: dict) -> dict:
    """A minimal valid scenario around a population."""
    return {
        "name": "s",
        "population": copy.deepcopy(population),
        "endpoints": {"y": {"kind": "binary"}},
        "treatments": {"a": {"rates": {"y": 0.5}}},
    }


def model_of(population: dict) -> PopulationModel:
    return PopulationModel(parse_scenario(scenario_with(population)).population)


def derived_by_hand(h, k, s, p):
    """The derived markers from their definitions (level indices in, booleans out)."""
    kl = (k == 1) & (s == 1)
    hi = (s == 1) | (p == 2)
    ns_pos = (h == 0) & ((p == 1) | (p == 2))
    return {"kl": kl, "hi": hi, "ns_pos": ns_pos}


def joint_by_hand() -> dict[tuple[int, int, int, int], float]:
    """P(histology, kras, stk11, pdl1) from the tables, by the chain rule."""
    out = {}
    for h, k, s, p in itertools.product(range(2), range(2), range(2), range(3)):
        hist, kras = HISTOLOGY[h], LEVELS["kras"][k]
        pk = P_KRAS[hist] if k else 1 - P_KRAS[hist]
        ps = P_STK11[hist, kras] if s else 1 - P_STK11[hist, kras]
        out[h, k, s, p] = P_HISTOLOGY[h] * pk * ps * P_PDL1[kras][p]
    return out


def marginals_by_hand() -> dict[str, list[float]]:
    """P(level) of every marker and derived marker (index 1 = positive for derived ones)."""
    joint = joint_by_hand()
    out = {m: [0.0] * len(LEVELS[m]) for m in MARKERS}
    out.update({d: [0.0, 0.0] for d in DERIVED})
    for (h, k, s, p), pr in joint.items():
        for m, code in zip(MARKERS, (h, k, s, p)):
            out[m][code] += pr
        for d, v in derived_by_hand(h, k, s, p).items():
            out[d][int(v)] += pr
    return out


def assert_binomial(observed_hits, n, p, what):
    """observed_hits / n within Z binomial standard errors of p (standard error from p)."""
    n = np.asarray(n, dtype=float)
    p = np.asarray(p, dtype=float)
    assert np.all(n > 0), f"{what}: empty group"
    est = np.asarray(observed_hits, dtype=float) / n
    tol = Z * np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(est - p) <= tol), f"{what}: simulated {est} vs exact {p} (n={n}, {Z} MCSE = {tol})"


@pytest.fixture(scope="module")
def pm() -> PopulationModel:
    return model_of(POPULATION)


@pytest.fixture(scope="module")
def cohort(pm):
    return pm.cohort(Streams(20240601).for_trials(np.arange(200)), 2048)


def columns(pm, arr):
    return {n: arr[..., pm.index[n]].astype(int) for n in pm.names}


# --------------------------------------------------------------------------- streams and blocks


def test_cohort_is_its_blocks_in_order(pm):
    ts = Streams(12).for_trials(np.arange(7))
    c = pm.cohort(ts, BLOCK + 1)  # rounded up to whole blocks
    assert c.arrival.shape == (7, 2 * BLOCK) and c.profile.shape == (7, 2 * BLOCK, len(pm.names))
    first, carry = pm.block(ts, 0, np.zeros(7))
    second, _ = pm.block(ts, 1, carry)
    for f in ("arrival", "profile", "observed", "wait_days", "reason"):
        np.testing.assert_array_equal(getattr(c, f), np.concatenate([getattr(first, f), getattr(second, f)], axis=1))
    # without times nothing else changes
    untimed, _ = pm.block(ts, 1, np.zeros(7), times=False)
    assert np.isnan(untimed.arrival).all()
    for f in ("profile", "observed", "wait_days", "reason"):
        np.testing.assert_array_equal(getattr(untimed, f), getattr(second, f))
    np.testing.assert_allclose(c.randomized_at, c.arrival + c.wait_days / DAYS, rtol=1e-12)


def test_a_block_cut_to_the_patients_still_needed_is_the_start_of_the_whole_block(pm):
    """With ``still_needed``, a block stops after the patient that gives every trial the randomizable
    patients it still needs; those patients are the first ones of the whole block, field by field."""
    ts = Streams(13).for_trials(np.arange(9))
    whole, carry = pm.block(ts, 1, np.full(9, 2.5))
    ok = whole.reason == RANDOMIZED
    still = np.array([0, 1, 2, 5, 17, 40, 3, 8, 1])
    cut, carry_cut = pm.block(ts, 1, np.full(9, 2.5), still_needed=still)
    width = cut.reason.shape[1]
    expected = max(int(np.flatnonzero(np.cumsum(row) >= k)[0]) + 1 if k > 0 else 0 for row, k in zip(ok, still))
    assert width == expected < BLOCK
    for f in ("arrival", "profile", "observed", "wait_days", "reason"):
        np.testing.assert_array_equal(getattr(cut, f), getattr(whole, f)[:, :width])
    np.testing.assert_array_equal(carry_cut, carry)  # the next block starts where the whole one ends
    # a trial that needs more than the block holds gets the whole block
    more = still.copy()
    more[4] = int(ok[4].sum()) + 1
    full, _ = pm.block(ts, 1, np.full(9, 2.5), still_needed=more)
    np.testing.assert_array_equal(full.profile, whole.profile)


def _shipped_populations():
    import glob
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent / "scenarios"
    return {
        Path(f).stem: parse_scenario(yaml.safe_load(open(f))).population for f in sorted(glob.glob(f"{root}/*.yaml"))
    }


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"biomarker_result": False},
        {"times": False},
        {"needed": {"stk11_or_keap1", "histology"}, "reported": {"stk11_or_keap1"}},
        {"needed": {"trop2_nmr", "atm", "ecog"}, "reported": set()},
        {"still_needed": np.arange(30) % 7},
    ],
    ids=["all", "no_assay", "untimed", "derived", "unreported", "cut"],
)
def test_compiled_block_equals_the_numpy_passes(options):
    """The compiled markers and screening results of a block (every shipped scenario's population,
    which between them have regions, conditional tables, multi-level markers, tissue and plasma
    assays with failures, and derived markers) are value for value those of the numpy passes."""
    ts = Streams(21).for_trials(np.arange(100, 130))
    results = 0
    for name, population in _shipped_populations().items():
        pm_ = PopulationModel(population)
        opts = dict(options)
        for key in ("needed", "reported"):
            if key in opts:
                opts[key] = {n for n in opts[key] if n in pm_.index}
        for b in (0, 2):
            fast, carry_fast = pm_.block(ts, b, np.full(30, 0.5), **opts)
            slow, carry_slow = pm_.block(ts, b, np.full(30, 0.5), reference=True, **opts)
            results += int((fast.observed != MISSING).sum())
            for f in ("arrival", "profile", "observed", "wait_days", "reason"):
                np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f"{name} {f}")
            np.testing.assert_array_equal(carry_fast, carry_slow)
    if options.get("biomarker_result", True) and options.get("reported", True):
        assert results > 0  # screening results were compared, not only MISSING


@pytest.mark.parametrize("observed", [False, True], ids=["true", "observed"])
def test_compiled_derived_markers_equal_the_numpy_passes(observed):
    """Derived markers by the compiled pass equal those of the numpy passes on every shipped
    population's derived markers (any-of and all-of conditions, multi-level markers), from codes
    drawn at random among each marker's levels and MISSING, so that conditions hold, fail and are
    unknown in every mix, with the shipped level masks and with their complements (which hold the
    first level); the profiles are written in place, so a derived marker that reads another reads
    it derived."""
    rng = np.random.default_rng(31)
    compared = 0
    for name, population in _shipped_populations().items():
        pm_ = PopulationModel(population)
        if not pm_._derived:
            continue
        n_levels = np.array([len(levels) for levels in pm_.levels])
        for masks in ("shipped", "complement"):
            if masks == "complement":  # the other levels, the first level among them
                pm_._derived = [(idx, any_of, [(m, ~mask) for m, mask in conds]) for idx, any_of, conds in pm_._derived]
                pm_._pack_derived()
            codes = rng.integers(-1, n_levels, size=(7, 300, len(n_levels))).astype(np.int8)
            fast, slow = codes.copy(), codes.copy()
            pm_._derive(fast, fast, observed=observed)
            pm_._derive(slow, slow, observed=observed, reference=True)
            np.testing.assert_array_equal(fast, slow, err_msg=f"{name} {masks}")
            columns = [idx for idx, _, _ in pm_._derived]
            compared += len(columns)
            if observed:  # every outcome of a derived marker occurs: 0, 1 and undecided
                assert {-1, 0, 1} <= set(np.unique(fast[..., columns]).tolist()), name
    assert compared > 0


def test_liquid_turnaround_of_the_patients_who_need_it_is_that_of_the_whole_block(pm):
    """Plasma turnaround times are computed only for the patients whose tissue gave no result:
    each is the same as computed for the whole block."""
    from platform_sim.population import _turnaround

    sc = pm.config.screening
    if sc.liquid is None or sc.liquid.turnaround.sdlog == 0:
        pytest.skip("the test population has no random plasma turnaround")
    ts = Streams(22).for_trials(np.arange(40))

    def uniform(q):
        return ts.uniform(1, q, 0, BLOCK)

    where = uniform("screening:tissue") < 0.3
    whole = _turnaround(uniform, "screening:liquid_days", sc.liquid.turnaround, where.shape)
    masked = _turnaround(uniform, "screening:liquid_days", sc.liquid.turnaround, where.shape, where)
    np.testing.assert_array_equal(masked[where], whole[where])
    assert (masked[~where] == 0).all()


# --------------------------------------------------------------------------- 1. marginal prevalences


def test_hand_computation_is_a_distribution():
    joint = joint_by_hand()
    assert len(joint) == 24 and math.isclose(sum(joint.values()), 1.0, abs_tol=1e-14)
    m = marginals_by_hand()
    # spot values done on paper: P(kras+) = .7 x .3 + .3 x .05
    assert math.isclose(m["kras"][1], 0.225, abs_tol=1e-14)
    # P(stk11+) = .7 (.3 x .26 + .7 x .13) + .3 (.05 x .08 + .95 x .03)
    assert math.isclose(
        m["stk11"][1], 0.7 * (0.3 * 0.26 + 0.7 * 0.13) + 0.3 * (0.05 * 0.08 + 0.95 * 0.03), abs_tol=1e-14
    )


def test_model_layout(pm):
    assert pm.names == MARKERS + DERIVED
    assert pm.levels == [LEVELS[m] for m in MARKERS] + [["negative", "positive"]] * 3


def test_exact_distribution_matches_the_tables(pm):
    codes, prob = pm.distribution()
    joint = joint_by_hand()
    assert math.isclose(prob.sum(), 1.0, abs_tol=1e-12)
    assert len(prob) == len(joint)  # every combination has positive probability here
    seen = set()
    for row, pr in zip(codes, prob):
        key = tuple(int(row[pm.index[m]]) for m in MARKERS)
        seen.add(key)
        assert pr == pytest.approx(joint[key], abs=1e-14), key
        for d, v in derived_by_hand(*key).items():
            assert row[pm.index[d]] == int(v), (key, d)
    assert seen == set(joint)

    hand = marginals_by_hand()
    for name in MARKERS + DERIVED:
        i = pm.index[name]
        got = [prob[codes[:, i] == lv].sum() for lv in range(len(hand[name]))]
        np.testing.assert_allclose(got, hand[name], rtol=0, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("names", [["kl"], ["stk11"], ["pdl1"], ["hi"], ["histology"]])
def test_exact_distribution_of_a_subset(pm, names):
    """Asking for some characteristics closes over what they depend on; their marginals are exact."""
    codes, prob = pm.distribution(names)
    hand = marginals_by_hand()
    for name in names:
        i = pm.index[name]
        got = [prob[codes[:, i] == lv].sum() for lv in range(len(hand[name]))]
        np.testing.assert_allclose(got, hand[name], rtol=0, atol=1e-14, err_msg=name)


def test_sampled_marginals(pm, cohort):
    prof = columns(pm, cohort.profile)
    n = cohort.profile.shape[0] * cohort.profile.shape[1]
    hand = marginals_by_hand()
    for name in MARKERS + DERIVED:
        for lv, p in enumerate(hand[name]):
            assert_binomial((prof[name] == lv).sum(), n, p, f"P({name} = {lv})")


# --------------------------------------------------------------------------- 2. co-occurrence


def test_conditional_frequencies_follow_the_tables(pm, cohort):
    prof = columns(pm, cohort.profile)
    h, k, s, p = (prof[m] for m in MARKERS)
    for hi, hist in enumerate(HISTOLOGY):
        cond = h == hi
        assert_binomial((k[cond] == 1).sum(), cond.sum(), P_KRAS[hist], f"P(kras+ | {hist})")
        for ki, kras in enumerate(LEVELS["kras"]):
            cond = (h == hi) & (k == ki)
            assert_binomial((s[cond] == 1).sum(), cond.sum(), P_STK11[hist, kras], f"P(stk11+ | {hist}, {kras})")
    for ki, kras in enumerate(LEVELS["kras"]):
        cond = k == ki
        for lv in range(3):
            assert_binomial((p[cond] == lv).sum(), cond.sum(), P_PDL1[kras][lv], f"P(pdl1 = {PDL1[lv]} | kras {kras})")
    # pdl1 depends on kras only: given kras it does not depend on histology
    for hi, ki in itertools.product(range(2), range(2)):
        cond = (h == hi) & (k == ki)
        assert_binomial(
            (p[cond] == 2).sum(), cond.sum(), P_PDL1[LEVELS["kras"][ki]][2], "P(pdl1 ge50 | histology, kras)"
        )


def test_joint_frequencies(pm, cohort):
    prof = columns(pm, cohort.profile)
    n = cohort.profile.shape[0] * cohort.profile.shape[1]
    joint = joint_by_hand()
    h, k, s, p = (prof[m] for m in MARKERS)
    # every cell of the four-way table
    cell = ((h * 2 + k) * 2 + s) * 3 + p
    counts = np.bincount(cell.ravel(), minlength=24)
    for (hh, kk, ss, pp), pr in joint.items():
        assert_binomial(counts[((hh * 2 + kk) * 2 + ss) * 3 + pp], n, pr, f"P({hh}, {kk}, {ss}, {pp})")
    # the co-mutation the tables build in: P(kras+ and stk11+)
    p_ks = sum(pr for (hh, kk, ss, pp), pr in joint.items() if kk == 1 and ss == 1)
    assert_binomial(((k == 1) & (s == 1)).sum(), n, p_ks, "P(kras+, stk11+)")
    # kras and stk11 are positively associated: P(stk11+ | kras+) > P(stk11+ | kras-)
    p_k = marginals_by_hand()["kras"][1]
    p_s = marginals_by_hand()["stk11"][1]
    assert p_ks / p_k > (p_s - p_ks) / (1 - p_k)


def test_derived_markers_follow_their_definition_on_the_true_profile(pm, cohort):
    prof = columns(pm, cohort.profile)
    want = derived_by_hand(prof["histology"], prof["kras"], prof["stk11"], prof["pdl1"])
    for d in DERIVED:
        np.testing.assert_array_equal(prof[d], want[d].astype(int), err_msg=d)


def _decide(conditions, any_of):
    """Derived value from observed conditions, each (hit, missing): (value, decided)."""
    known_true = [hit & ~miss for hit, miss in conditions]
    known_false = [~hit & ~miss for hit, miss in conditions]
    if any_of:
        value = np.logical_or.reduce(known_true)
        decided = value | np.logical_and.reduce(known_false)
    else:
        value = np.logical_and.reduce(known_true)
        decided = value | np.logical_or.reduce(known_false)
    return value, decided


def test_observed_derived_markers_missing_only_when_undecidable(pm, cohort):
    obs = columns(pm, cohort.observed)
    h, k, s, p = (obs[m] for m in MARKERS)
    assert (h != MISSING).all()  # a clinical characteristic is always known
    miss = {m: obs[m] == MISSING for m in MARKERS}
    definitions = {
        "kl": ([(k == 1, miss["kras"]), (s == 1, miss["stk11"])], False),
        "hi": ([(s == 1, miss["stk11"]), (p == 2, miss["pdl1"])], True),
        "ns_pos": ([(h == 0, miss["histology"]), ((p == 1) | (p == 2), miss["pdl1"])], False),
    }
    for d, (conds, any_of) in definitions.items():
        value, decided = _decide(conds, any_of)
        np.testing.assert_array_equal(obs[d] == MISSING, ~decided, err_msg=f"{d}: missing exactly when undecidable")
        np.testing.assert_array_equal(obs[d][decided], value[decided].astype(int), err_msg=d)
        # every case occurs: decided by a missing component's partner, and undecidable
        some_missing = np.logical_or.reduce([m for _, m in conds])
        assert (some_missing & decided).any() and (~decided).any(), d


# --------------------------------------------------------------------------- 3. accrual


def integrated_rate(t, rate, ramp, start=0.0):
    """Expected arrivals by time t: 0 before start, rate (t - s)^2 / (2 R) during the ramp-up,
    rate R / 2 + rate (t - s - R) after it."""
    x = np.clip(np.asarray(t, dtype=float) - start, 0.0, None)
    if ramp == 0:
        return rate * x
    return np.where(x < ramp, rate * x**2 / (2 * ramp), rate * ramp / 2 + rate * (x - ramp))


def assert_poisson_means(counts, lam, what):
    """Mean of T Poisson(lam) counts within Z standard errors sqrt(lam / T)."""
    n_trials = counts.shape[0]
    mean = counts.mean(axis=0)
    tol = Z * np.sqrt(lam / n_trials)
    assert np.all(np.abs(mean - lam) <= tol), f"{what}: mean counts {mean} vs {lam} ({Z} MCSE = {tol})"


TIMES = np.array([0.5, 1.0, 2.0, 4.0, 6.0, 9.0, 15.0])


def test_arrivals_follow_the_integrated_rate_with_ramp_up(pm):
    n_trials, n = 400, 1024
    c = pm.cohort(Streams(31).for_trials(np.arange(n_trials)), n)
    arr = c.arrival
    assert np.all(np.diff(arr, axis=1) > 0), "arrivals in order, also across blocks"
    lam = integrated_rate(TIMES, 30.0, 6.0)
    assert lam[-1] + 10 * math.sqrt(lam[-1]) < n  # the first n arrivals cover every time checked
    counts = (arr[:, :, None] <= TIMES).sum(axis=1)
    assert_poisson_means(counts, lam, "arrivals by t")
    # the ramp-up is quadratic: a quarter of the first month's arrivals in its first half
    assert lam[0] == pytest.approx(30 * 0.25 / 12)


def test_arrival_time_inversion_is_exact(pm):
    t = np.array([1e-3, 0.5, 3.0, 5.999, 6.0, 6.001, 10.0, 100.0])
    np.testing.assert_allclose(pm.arrival_times(integrated_rate(t, 30.0, 6.0)), t, rtol=1e-12)


def test_inter_arrival_times_are_exponential_at_steady_state(pm):
    c = pm.cohort(Streams(32).for_trials(np.arange(400)), 1024)
    arr = c.arrival
    gaps = np.diff(arr, axis=1)[arr[:, :-1] > 6.0]  # the gap after every arrival past the ramp-up
    rate = 30.0
    n = gaps.size
    assert n > 100_000
    # mean 1 / rate; standard error of the mean of exponentials: (1 / rate) / sqrt(n)
    assert abs(gaps.mean() - 1 / rate) <= Z / rate / math.sqrt(n)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        x = -math.log(1 - q) / rate  # exponential quantile
        assert_binomial((gaps <= x).sum(), n, q, f"P(gap <= {q} quantile)")


REGIONS = {  # rate, ramp-up, start
    "eu": (20.0, 4.0, 0.0),
    "us": (10.0, 0.0, 3.0),
    "asia": (15.0, 6.0, 5.0),
}
P_EGFR = {"eu": 0.1, "us": 0.15, "asia": 0.4}


@pytest.fixture(scope="module")
def regional():
    pop = {
        "name": "regional",
        "accrual": {
            "regions": {
                r: {"rate_per_month": rate, "ramp_up_months": ramp, "start_month": start}
                for r, (rate, ramp, start) in REGIONS.items()
            }
        },
        "markers": {"egfr": {"given": ["region"], "prevalence": dict(P_EGFR)}},
    }
    pm = model_of(pop)
    return pm, pm.cohort(Streams(33).for_trials(np.arange(400)), 1024)


def test_regions_arrivals_by_region_and_time(regional):
    pm, c = regional
    assert pm.names == ["region", "egfr"] and pm.levels[0] == list(REGIONS)
    region = c.profile[..., 0]
    times = np.array([1.0, 3.0, 4.0, 5.5, 8.0, 11.0, 14.0])
    total = np.zeros(times.size)
    for r, (name, (rate, ramp, start)) in enumerate(REGIONS.items()):
        lam = integrated_rate(times, rate, ramp, start)
        total += lam
        counts = ((c.arrival[:, :, None] <= times) & (region[:, :, None] == r)).sum(axis=1)
        before = times <= start
        assert (counts[:, before] == 0).all(), f"{name}: no arrivals before it starts"
        assert_poisson_means(counts[:, ~before], lam[~before], f"arrivals from {name} by t")
    assert total[-1] + 10 * math.sqrt(total[-1]) < c.arrival.shape[1]
    counts = (c.arrival[:, :, None] <= times).sum(axis=1)
    assert_poisson_means(counts, total, "all arrivals by t")
    # exact inversion of the total integrated rate, through every knot
    t = np.array([0.5, 3.0, 3.5, 4.0, 5.0, 7.0, 11.0, 20.0])
    lam_t = sum(integrated_rate(t, *v) for v in REGIONS.values())
    np.testing.assert_allclose(pm.arrival_times(lam_t), t, rtol=1e-12)


def test_compiled_inversion_equals_numpy_reference(pm, regional):
    """The compiled inversion of the accrual gives the numpy passes' values bit for bit, at the
    knots themselves, just beside them and at random points, for one ramp and for regions."""
    rng = np.random.default_rng(5)
    late = model_of(  # no accrual before month 2: two knots with the same integrated rate
        {
            "name": "late",
            "accrual": {"regions": {"a": {"rate_per_month": 5.0, "ramp_up_months": 3.0, "start_month": 2.0}}},
            "markers": {},
        }
    )
    for model in (pm, regional[0], late):
        cum = model._cum
        special = np.concatenate([cum, np.nextafter(cum, np.inf), np.nextafter(cum, -np.inf)[1:]])
        x = np.concatenate([special, rng.uniform(0, cum[-1] * 3 + 50, 7 * 700 - special.size)]).reshape(-1, 7)
        for events in (x, np.sort(x, axis=1), np.sort(x.reshape(-1, 350), axis=1)):  # any order, and rising runs
            fast, slow = model.arrival_times(events), model.arrival_times(events, reference=True)
            assert fast.shape == events.shape
            np.testing.assert_array_equal(fast, slow)
    assert late._cum[0] == late._cum[1] == 0.0


def test_regions_shares_over_time(regional):
    pm, c = regional
    region = c.profile[..., 0]
    windows = [(0.0, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 8.0), (8.0, 11.0), (11.0, np.inf)]
    for lo, hi in windows:
        inside = (c.arrival > lo) & (c.arrival <= hi)
        if np.isinf(hi):  # steady state: shares are rates over the total rate
            share = np.array([v[0] for v in REGIONS.values()]) / sum(v[0] for v in REGIONS.values())
        else:
            per = np.array([integrated_rate(hi, *v) - integrated_rate(lo, *v) for v in REGIONS.values()])
            share = per / per.sum()
        for r, name in enumerate(REGIONS):
            assert_binomial(((region == r) & inside).sum(), inside.sum(), share[r], f"share of {name} in ({lo}, {hi}]")
    # the exact distribution uses the steady-state shares
    codes, prob = pm.distribution(["region"])
    rates = np.array([v[0] for v in REGIONS.values()])
    np.testing.assert_allclose([prob[codes[:, 0] == r].sum() for r in range(3)], rates / rates.sum(), atol=1e-14)


def test_marker_given_region(regional):
    pm, c = regional
    region, egfr = c.profile[..., 0], c.profile[..., 1]
    for r, name in enumerate(REGIONS):
        assert_binomial(((region == r) & (egfr == 1)).sum(), (region == r).sum(), P_EGFR[name], f"P(egfr+ | {name})")
    codes, prob = pm.distribution(["egfr"])
    rates = np.array([v[0] for v in REGIONS.values()])
    assert prob[codes[:, 1] == 1].sum() == pytest.approx(
        rates @ np.array(list(P_EGFR.values())) / rates.sum(), abs=1e-14
    )


# --------------------------------------------------------------------------- 4. screening funnel


def laplace_lognormal(h: float, median: float, sdlog: float) -> float:
    """E[exp(-h W)] for W lognormal(log median, sdlog), by quadrature over the standard normal
    (truncated at +-12 sd, which leaves out less than 1e-32)."""
    if sdlog == 0:
        return math.exp(-h * median)
    value, err = integrate.quad(
        lambda z: math.exp(-h * median * math.exp(sdlog * z)) * stats.norm.pdf(z), -12.0, 12.0, epsabs=1e-13, limit=200
    )
    assert err < 1e-9
    return value


def funnel_by_hand(pop: dict) -> dict[str, float]:
    """Shares of screened patients by reason. Eligible patients wait for tissue (turnaround T);
    when tissue fails (ft) plasma is tested too (T + L, L independent of T), which gives a result
    with probability ``detectable``. A patient waiting W days is lost with probability
    1 - exp(-h W); lost takes precedence over a screen failure; ineligibility over everything. A
    patient without a sample (ns) is neither tested nor lost; one with a result is not assigned with
    probability na, and one assigned declines with probability dc."""
    sc = pop["screening"]
    pi, h = sc.get("ineligible", 0.0), sc.get("loss_hazard_per_day", 0.0)
    tis = sc["tissue"]
    ns, na, dc = tis.get("not_submitted", 0.0), sc.get("not_assigned", 0.0), sc.get("declined", 0.0)
    ft = tis["failure"]
    s_t = laplace_lognormal(h, tis["turnaround"]["median_days"], tis["turnaround"].get("sdlog", 0.0))
    if "liquid" in sc:
        liq = sc["liquid"]
        d = liq["detectable"]
        s_tl = s_t * laplace_lognormal(h, liq["turnaround"]["median_days"], liq["turnaround"].get("sdlog", 0.0))
    else:
        d, s_tl = 0.0, s_t
    tested = (1 - pi) * (1 - ns)
    result = tested * ((1 - ft) * s_t + ft * d * s_tl)
    return {
        "randomized": result * (1 - na) * (1 - dc),
        "screen_failure": tested * ft * (1 - d) * s_tl,
        "lost_while_waiting": tested * ((1 - ft) * (1 - s_t) + ft * (1 - s_tl)),
        "ineligible": pi,
        "not_submitted": (1 - pi) * ns,
        "not_assigned": result * na,
        "declined": result * (1 - na) * dc,
    }


REASONS = {
    "randomized": RANDOMIZED,
    "screen_failure": SCREEN_FAILURE,
    "lost_while_waiting": LOST_WAITING,
    "ineligible": INELIGIBLE,
    "not_submitted": NOT_SUBMITTED,
    "not_assigned": NOT_ASSIGNED,
    "declined": DECLINED,
}


def no_liquid(pop):
    pop = copy.deepcopy(pop)
    del pop["screening"]["liquid"]
    del pop["markers"]["kras"]["liquid"]
    return pop


def with_lungmap_steps(pop):
    """Every step of the funnel: no sample, no assignment and declining as well."""
    pop = copy.deepcopy(pop)
    pop["screening"]["tissue"]["not_submitted"] = 0.05
    pop["screening"].update(not_assigned=0.15, declined=0.4)
    return pop


@pytest.mark.parametrize("variant", ["tissue_and_liquid", "tissue_only", "every_step"])
def test_funnel_shares(variant, pm):
    pop = {
        "tissue_and_liquid": POPULATION,
        "tissue_only": no_liquid(POPULATION),
        "every_step": with_lungmap_steps(POPULATION),
    }[variant]
    model = pm if variant == "tissue_and_liquid" else model_of(pop)
    mine = funnel_by_hand(pop)
    package = expected_funnel(model.config)
    assert set(package) == set(mine)
    assert sum(mine.values()) == pytest.approx(1.0, abs=1e-12)
    for reason in mine:
        assert package[reason] == pytest.approx(mine[reason], abs=1e-9), reason
    c = model.cohort(Streams(41).for_trials(np.arange(200)), 4096)
    n = c.reason.size
    possible = {code for reason, code in REASONS.items() if mine[reason] > 0}
    assert set(np.unique(c.reason)) == possible  # one code per screened patient
    for reason, code in REASONS.items():
        assert_binomial((c.reason == code).sum(), n, mine[reason], f"share {reason}")


def test_funnel_without_screening_tests():
    pop = {"name": "clinic", "screening": {"ineligible": 0.2}, "markers": {"ecog": {"prevalence": 0.4}}}
    model = model_of(pop)
    assert expected_funnel(model.config) == pytest.approx(
        {
            "randomized": 0.8,
            "screen_failure": 0.0,
            "lost_while_waiting": 0.0,
            "ineligible": 0.2,
            "not_submitted": 0.0,
            "not_assigned": 0.0,
            "declined": 0.0,
        },
        abs=1e-15,
    )
    c = model.cohort(Streams(42).for_trials(np.arange(50)), 1024)
    assert set(np.unique(c.reason)) == {RANDOMIZED, INELIGIBLE}
    assert (c.wait_days == 0).all()
    assert_binomial((c.reason == INELIGIBLE).sum(), c.reason.size, 0.2, "ineligible")
    np.testing.assert_array_equal(c.observed, c.profile)  # clinical characteristics are known


def test_funnel_of_a_design_that_needs_no_biomarker_result(pm):
    """No assay: nobody fails it, waits for it or is lost waiting; ineligibility is the only loss, and
    the screened patients, their profiles and their eligibility are those of the assay funnel."""
    pop = model_of(POPULATION).config
    p_inel = POPULATION["screening"]["ineligible"]
    assert expected_funnel(pop, biomarker_result=False) == pytest.approx(
        {
            "randomized": 1 - p_inel,
            "screen_failure": 0.0,
            "lost_while_waiting": 0.0,
            "ineligible": p_inel,
            "not_submitted": 0.0,
            "not_assigned": 0.0,
            "declined": 0.0,
        },
        abs=1e-15,
    )
    assert screening_paths(pop, biomarker_result=False) == pytest.approx({"none": 1 - p_inel}, abs=1e-15)
    # the exact accrual integral is the same; only the share passing screening changes
    for months in (3.0, 6.0, 20.0):
        with_assay = expected_randomizable(pop, months) / expected_funnel(pop)["randomized"]
        assert expected_randomizable(pop, months, biomarker_result=False) == pytest.approx(
            with_assay * (1 - p_inel), rel=1e-12
        )
    ts = Streams(44).for_trials(np.arange(200))
    with_assay = pm.cohort(ts, 2048)
    without = pm.cohort(ts, 2048, biomarker_result=False)
    np.testing.assert_array_equal(without.arrival, with_assay.arrival)
    np.testing.assert_array_equal(without.profile, with_assay.profile)
    np.testing.assert_array_equal(without.reason == INELIGIBLE, with_assay.reason == INELIGIBLE)
    assert set(np.unique(without.reason)) == {RANDOMIZED, INELIGIBLE}
    assert (without.wait_days == 0).all()
    np.testing.assert_array_equal(without.randomized_at, without.arrival)
    assert_binomial((without.reason == INELIGIBLE).sum(), without.reason.size, p_inel, "ineligible")
    # assayed markers (and what is derived from them alone) are not reported; clinical ones are known
    obs, true = columns(pm, without.observed), columns(pm, without.profile)
    for m in ("kras", "stk11", "pdl1", "kl"):
        assert (obs[m] == MISSING).all(), m
    np.testing.assert_array_equal(obs["histology"], true["histology"])
    # a derived marker is still decided where the known conditions decide it: squamous is never ns_pos
    squamous = true["histology"] == 1
    assert (obs["ns_pos"][squamous] == 0).all() and (obs["ns_pos"][~squamous] == MISSING).all()


def test_loss_probability_increases_with_waiting_time(pm):
    c = pm.cohort(Streams(43).for_trials(np.arange(200)), 4096)
    h = POPULATION["screening"]["loss_hazard_per_day"]
    eligible = c.reason != INELIGIBLE  # eligibility is decided independently and overrides the rest
    wait = c.wait_days[eligible].astype(float)
    lost = c.reason[eligible] == LOST_WAITING
    edges = np.quantile(wait, np.linspace(0, 1, 6))
    bins = np.clip(np.searchsorted(edges, wait, side="right") - 1, 0, 4)
    observed, expected = [], []
    for b in range(5):
        w = wait[bins == b]
        p = 1 - np.exp(-h * w)  # exact loss probability of each patient given the wait
        m = lost[bins == b].sum()
        tol = Z * math.sqrt((p * (1 - p)).sum()) / w.size
        assert abs(m / w.size - p.mean()) <= tol, f"wait quintile {b}: {m / w.size} vs {p.mean()} (tol {tol})"
        observed.append(m / w.size)
        expected.append(p.mean())
    assert np.all(np.diff(expected) > 0) and np.all(np.diff(observed) > 0)


def test_waiting_times(pm, cohort):
    """Tissue turnaround for everyone, plus the plasma turnaround exactly when tissue failed."""
    obs = columns(pm, cohort.observed)
    # stk11 is read on tissue only, with no marker-level failure: known exactly when tissue worked
    tissue_ok = obs["stk11"] != MISSING
    tis = POPULATION["screening"]["tissue"]["turnaround"]
    liq = POPULATION["screening"]["liquid"]["turnaround"]
    w = cohort.wait_days.astype(float)
    for q in (0.1, 0.5, 0.9):
        x = tis["median_days"] * math.exp(tis["sdlog"] * stats.norm.ppf(q))
        assert_binomial((w[tissue_ok] <= x).sum(), tissue_ok.sum(), q, f"tissue turnaround {q} quantile")
    # tissue failed: W = T + L, log-normals; P(W <= median_T + median_L) by quadrature
    failed = ~tissue_ok
    x = tis["median_days"] + liq["median_days"]
    p, _ = integrate.quad(
        lambda z: (
            stats.norm.pdf(z)
            * stats.lognorm.cdf(
                x - tis["median_days"] * math.exp(tis["sdlog"] * z), liq["sdlog"], scale=liq["median_days"]
            )
        ),
        -np.inf,
        math.log(x / tis["median_days"]) / tis["sdlog"],
    )
    assert_binomial((w[failed] <= x).sum(), failed.sum(), p, "tissue + plasma turnaround")


def test_reasons_are_consistent_with_results(pm, cohort):
    obs = columns(pm, cohort.observed)
    assay_markers = ["kras", "stk11", "pdl1"]
    failure = cohort.reason == SCREEN_FAILURE
    # a screen failure has no biomarker result at all
    for m in assay_markers:
        assert (obs[m][failure] == MISSING).all(), m
    # kras is read on tissue and in plasma without marker-level failure: every randomized patient has it
    assert (obs["kras"][cohort.reason == RANDOMIZED] != MISSING).all()
    # and so does every eligible patient with any result who was not lost
    eligible_kept = (cohort.reason != INELIGIBLE) & (cohort.reason != LOST_WAITING)
    np.testing.assert_array_equal(obs["kras"][eligible_kept] != MISSING, cohort.reason[eligible_kept] == RANDOMIZED)


# --------------------------------------------------------------------------- 5. assay misclassification

LIQUID_KRAS_FAILURE = 0.1
P_CTDNA = 0.2
CTDNA_LIQUID = (0.8, 0.97)


@pytest.fixture(scope="module")
def assay():
    """Fixed turnarounds (tissue 15 days, plasma 9 more): the wait tells whether tissue failed."""
    pop = copy.deepcopy(POPULATION)
    sc = pop["screening"]
    sc["tissue"]["turnaround"] = {"median_days": 15}
    sc["liquid"]["turnaround"] = {"median_days": 9}
    sc["ineligible"] = 0.0
    sc["loss_hazard_per_day"] = 0.0
    pop["markers"]["kras"]["liquid"]["failure"] = LIQUID_KRAS_FAILURE
    pop["markers"]["ctdna_only"] = {
        "prevalence": P_CTDNA,
        "liquid": {"sensitivity": CTDNA_LIQUID[0], "specificity": CTDNA_LIQUID[1]},
    }
    pm = model_of(pop)
    return pm, pm.cohort(Streams(51).for_trials(np.arange(200)), 2048)


def test_tissue_failure_rate(assay):
    pm, c = assay
    assert set(np.unique(c.wait_days)) == {15.0, 24.0}
    failed = c.wait_days == 24.0
    assert_binomial(failed.sum(), failed.size, POPULATION["screening"]["tissue"]["failure"], "tissue failure")
    np.testing.assert_array_equal(
        c.reason == SCREEN_FAILURE, failed & (c.observed[..., pm.index["ctdna_only"]] == MISSING)
    )


def _call_rates(truth, call, sens, spec, what):
    """Among true positives the positive call rate is the sensitivity; among true negatives 1 - specificity."""
    pos, neg = truth == 1, truth == 0
    assert_binomial((call[pos] == 1).sum(), pos.sum(), sens, f"{what}: sensitivity")
    assert_binomial((call[neg] == 1).sum(), neg.sum(), 1 - spec, f"{what}: 1 - specificity")


def test_tissue_calls(assay):
    pm, c = assay
    prof, obs = columns(pm, c.profile), columns(pm, c.observed)
    ok = c.wait_days == 15.0
    # kras and stk11: no marker-level failure on tissue
    assert (obs["kras"][ok] != MISSING).all() and (obs["stk11"][ok] != MISSING).all()
    _call_rates(prof["kras"][ok], obs["kras"][ok], *KRAS_TISSUE, "kras on tissue")
    _call_rates(prof["stk11"][ok], obs["stk11"][ok], *STK11_TISSUE, "stk11 on tissue")
    # pdl1: its own failure rate; read without misclassification when there is a result
    pd_missing = obs["pdl1"][ok] == MISSING
    assert_binomial(pd_missing.sum(), ok.sum(), PDL1_TISSUE_FAILURE, "pdl1 failure on tissue")
    np.testing.assert_array_equal(obs["pdl1"][ok][~pd_missing], prof["pdl1"][ok][~pd_missing])
    # the pdl1 failure does not depend on the level
    for lv in range(3):
        sel = prof["pdl1"][ok] == lv
        assert_binomial(pd_missing[sel].sum(), sel.sum(), PDL1_TISSUE_FAILURE, f"pdl1 failure at level {lv}")
    # plasma is not tested when tissue worked: the plasma-only marker is missing
    assert (obs["ctdna_only"][ok] == MISSING).all()
    # clinical characteristics are known whatever happens
    np.testing.assert_array_equal(obs["histology"], prof["histology"])


def test_liquid_calls_only_when_tissue_failed(assay):
    pm, c = assay
    prof, obs = columns(pm, c.profile), columns(pm, c.observed)
    failed = c.wait_days == 24.0
    # tissue-only markers have no result
    assert (obs["stk11"][failed] == MISSING).all() and (obs["pdl1"][failed] == MISSING).all()
    detectable = POPULATION["screening"]["liquid"]["detectable"]
    # plasma gives a result when ctDNA is detectable; kras has its own failure on top
    ctdna_known = obs["ctdna_only"][failed] != MISSING
    kras_known = obs["kras"][failed] != MISSING
    assert_binomial(ctdna_known.sum(), failed.sum(), detectable, "ctDNA detectable")
    assert_binomial(kras_known.sum(), failed.sum(), detectable * (1 - LIQUID_KRAS_FAILURE), "kras result in plasma")
    assert_binomial(kras_known.sum(), ctdna_known.sum(), 1 - LIQUID_KRAS_FAILURE, "kras failure in plasma")
    assert not (kras_known & ~ctdna_known).any()
    _call_rates(prof["kras"][failed][kras_known], obs["kras"][failed][kras_known], *KRAS_LIQUID, "kras in plasma")
    _call_rates(
        prof["ctdna_only"][failed][ctdna_known],
        obs["ctdna_only"][failed][ctdna_known],
        *CTDNA_LIQUID,
        "ctdna_only in plasma",
    )
    # the plasma-only marker keeps its prevalence
    assert_binomial((prof["ctdna_only"] == 1).sum(), c.profile[..., 0].size, P_CTDNA, "P(ctdna_only+)")


# --------------------------------------------------------------------------- 9. bad population files


def population_problem(change) -> list:
    pop = copy.deepcopy(POPULATION)
    change(pop["markers"])
    with pytest.raises(ConfigError) as info:
        parse_scenario(scenario_with(pop))
    return info.value.problems


def test_prevalence_above_one():
    (p,) = population_problem(lambda m: m["kras"]["prevalence"].__setitem__("squamous", 1.2))
    assert p.path == "scenario.population.markers.kras.prevalence.squamous"
    assert "less than or equal to 1" in p.message and p.value == 1.2


def test_single_prevalence_above_one():
    (p,) = population_problem(lambda m: m.__setitem__("egfr", {"prevalence": 1.5}))
    assert p.path == "scenario.population.markers.egfr.prevalence"
    assert "less than or equal to 1" in p.message and p.value == 1.5


def test_probabilities_not_adding_up_to_one():
    (p,) = population_problem(lambda m: m["histology"].__setitem__("probabilities", [0.7, 0.2]))
    assert p.path == "scenario.population.markers.histology"
    assert "probabilities must add up to 1, they add up to 0.9" in p.message


def test_conditional_probabilities_not_adding_up_to_one():
    (p,) = population_problem(lambda m: m["pdl1"]["probabilities"].__setitem__("positive", [0.35, 0.3, 0.3]))
    assert p.path == "scenario.population.markers.pdl1"
    assert "probabilities for 'positive' must add up to 1, they add up to 0.95" in p.message


def test_given_names_a_later_marker():
    def change(m):
        m["kras"] = {"given": ["pdl1"], "prevalence": {"lt1": 0.2, "1to49": 0.25, "ge50": 0.3}}
        m["pdl1"] = {"levels": PDL1, "probabilities": [0.5, 0.3, 0.2]}

    (p,) = population_problem(change)
    assert p.path == "scenario.population.markers.kras.given"
    assert "'pdl1' is listed after it" in p.message


def test_conditional_table_missing_a_row():
    (p,) = population_problem(lambda m: m["stk11"]["prevalence"].pop("squamous ,positive"))
    assert p.path == "scenario.population.markers.stk11"
    assert "no row for ['squamous, positive']" in p.message and "'nonsquamous, negative'" in p.message


def test_categorical_marker_with_sensitivity():
    (p,) = population_problem(lambda m: m["pdl1"]["tissue"].__setitem__("sensitivity", 0.9))
    assert p.path == "scenario.population.markers.pdl1"
    assert p.message.startswith("tissue: sensitivity and specificity apply to two-level markers")
    assert "['lt1', '1to49', 'ge50']" in p.message


def test_patients_needed_kernel_equals_the_numpy_passes():
    """The compiled count of first patients a block must keep equals the numpy computation on
    random screening outcomes, needs from negative to more than a block holds."""
    from platform_sim.population import _patients_needed, _patients_needed_reference

    rng = np.random.default_rng(3)
    widths = set()
    for _ in range(400):
        n_trials = int(rng.integers(1, 12))
        reason = np.where(rng.random((n_trials, BLOCK)) < rng.uniform(0.05, 1.0), RANDOMIZED, SCREEN_FAILURE)
        reason = reason.astype(np.int8)
        still = rng.integers(-3, int(rng.integers(1, 300)), size=n_trials)
        got = _patients_needed(reason, still)
        assert got == _patients_needed_reference(reason == RANDOMIZED, still), (reason, still)
        widths.add(got == BLOCK)
    assert widths == {True, False}  # both cut and whole blocks were checked
