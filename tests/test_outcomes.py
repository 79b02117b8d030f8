"""Potential outcomes of virtual patients (platform_sim.outcomes): outcome models by profile,
landmark and dropout, calendar-time trends, exact truths and common random numbers.

Expected values are computed here by hand from the configuration (logistic and
piecewise-exponential formulas written out below, marker distributions by the chain
rule); simulated frequencies must lie within ``Z`` Monte Carlo standard errors of the
exact value, the standard error computed from the exact probabilities. Seeds are fixed.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from scipy import optimize, special

from platform_sim.config import ConfigError
from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.outcomes import VirtualPatients
from platform_sim.population import MISSING, RANDOMIZED
from platform_sim.runner import run_chunk
from platform_sim.spec import Spec
from platform_sim.streams import Streams

Z = 4.0  # tolerance in Monte Carlo standard errors
DAYS = 365.25 / 12  # days per month
WEEK = 7 / DAYS  # one week in months
ONSET = 6 * WEEK  # onset of x's and pw_rel's hazard ratios (6 weeks, about 1.38 months)
LANDMARK = 12 * WEEK  # dcr12

# --------------------------------------------------------------------------- the scenario

P_HISTOLOGY = [0.7, 0.3]
P_KRAS = [0.3, 0.05]  # P(kras+ | histology)
P_STK11 = [0.12, 0.3]  # P(stk11+ | kras)
P_PDL1 = [0.48, 0.32, 0.2]

POPULATION = {
    "name": "p",
    "accrual": {"rate_per_month": 30, "ramp_up_months": 6},
    "screening": {
        "ineligible": 0.05,
        "tissue": {"failure": 0.09, "turnaround": {"median_days": 15, "sdlog": 0.5}},
        "liquid": {"detectable": 0.83, "turnaround": {"median_days": 9}},
        "loss_hazard_per_day": 0.004,
    },
    "markers": {
        "histology": {"levels": ["nonsquamous", "squamous"], "probabilities": P_HISTOLOGY},
        "kras": {
            "given": ["histology"],
            "prevalence": {"nonsquamous": P_KRAS[0], "squamous": P_KRAS[1]},
            "tissue": {},
            "liquid": {"sensitivity": 0.77},
        },
        "stk11": {"given": ["kras"], "prevalence": {"negative": P_STK11[0], "positive": P_STK11[1]}, "tissue": {}},
        "pdl1": {"levels": ["lt1", "1to49", "ge50"], "probabilities": P_PDL1, "tissue": {"failure": 0.06}},
    },
    "derived": {"kl": {"all_of": ["kras", "stk11"]}},
}

SCENARIO = {
    "name": "t",
    "population": POPULATION,
    "endpoints": {
        "pfs": {"kind": "time_to_event"},
        "dcr12": {"kind": "landmark", "of": "pfs", "weeks": 12},
        "orr": {"kind": "binary"},
    },
    "treatments": {
        "docetaxel": {
            "outcomes": {"pfs": {"median_months": 4.0, "hazard_ratios": {"histology": 1.1}}, "orr": {"rate": 0.14}}
        },
        "x": {
            "relative_to": "docetaxel",
            "outcomes": {
                "pfs": {"hazard_ratio": 0.8, "hazard_ratios": {"kl": 0.5, "pdl1": {"ge50": 0.7}}, "onset_weeks": 6},
                "orr": {"odds_ratio": 1.8, "odds_ratios": {"kras": 1.5, "pdl1": {"1to49": 1.2, "ge50": 2.0}}},
            },
        },
        "z": {"relative_to": "x", "outcomes": {"pfs": {"hazard_ratio": 1.5}, "orr": {"odds_ratio": 0.5}}},
        "pw": {
            "outcomes": {
                "pfs": {
                    "pieces": [
                        {"from_months": 0, "hazard_per_month": 0.3},
                        {"from_months": 2, "hazard_per_month": 0.0},
                        {"from_months": 4, "hazard_per_month": 0.2},
                    ]
                },
                "orr": {"rate": 0.3},
            }
        },
        "pw_rel": {"relative_to": "pw", "outcomes": {"pfs": {"hazard_ratio": 0.5, "onset_weeks": 6}}},
    },
    "prognostic": {"orr": {"odds_ratios": {"stk11": 0.5}}, "pfs": {"hazard_ratios": {"stk11": 1.3}}},
}
TREATMENTS = list(SCENARIO["treatments"])
NAMES = ["histology", "kras", "stk11", "pdl1", "kl"]


def scenario(**changes) -> dict:
    s = copy.deepcopy(SCENARIO)
    s.update(copy.deepcopy(changes))
    return s


# --------------------------------------------------------------------------- the truth, by hand
# Profiles are level indices h (histology), k (kras), s (stk11), p (pdl1); numpy arrays or ints.

OR_PDL1_X = np.array([1.0, 1.2, 2.0])


def orr_logit(t, h, k, s, p):
    """Linear predictor of the response probability."""
    s = np.asarray(s)
    prognostic = math.log(0.5) * s
    if t in ("pw", "pw_rel"):  # pw_rel has no orr model of its own: pw's
        return special.logit(0.3) + prognostic
    doc = special.logit(0.14) + prognostic
    if t == "docetaxel":
        return doc
    x = doc + math.log(1.8) + math.log(1.5) * np.asarray(k) + np.log(OR_PDL1_X[np.asarray(p)])
    return x if t == "x" else x + math.log(0.5)  # z


def hazard_pieces(t, h, k, s, p):
    """(start month, hazard per month) pieces of the patient's hazard under treatment t."""
    h, k, s, p = map(np.asarray, (h, k, s, p))
    kl = (k == 1) & (s == 1)
    prognostic = 1.3**s
    lam = math.log(2) / 4.0 * 1.1**h * prognostic  # docetaxel: exponential, median 4 in reference patients
    r_x = 0.8 * np.where(kl, 0.5, 1.0) * np.where(p == 2, 0.7, 1.0)  # x's ratio, after its onset
    return {
        "docetaxel": [(0.0, lam)],
        "x": [(0.0, lam), (ONSET, lam * r_x)],
        "z": [(0.0, 1.5 * lam), (ONSET, 1.5 * lam * r_x)],
        "pw": [(0.0, 0.3 * prognostic), (2.0, 0.0 * prognostic), (4.0, 0.2 * prognostic)],
        "pw_rel": [
            (0.0, 0.3 * prognostic),
            (ONSET, 0.15 * prognostic),
            (2.0, 0.0 * prognostic),
            (4.0, 0.1 * prognostic),
        ],
    }[t]


def cumulative_hazard(pieces, t):
    total = 0.0
    for j, (start, rate) in enumerate(pieces):
        end = pieces[j + 1][0] if j + 1 < len(pieces) else math.inf
        total = total + rate * max(0.0, min(t, end) - start)
    return total


def survival(t_name, h, k, s, p, t):
    return np.exp(-cumulative_hazard(hazard_pieces(t_name, h, k, s, p), t))


def joint():
    """P(h, k, s, p) by the chain rule."""
    out = {}
    for h, k, s, p in itertools.product(range(2), range(2), range(2), range(3)):
        pk = P_KRAS[h] if k else 1 - P_KRAS[h]
        ps = P_STK11[k] if s else 1 - P_STK11[k]
        out[h, k, s, p] = P_HISTOLOGY[h] * pk * ps * P_PDL1[p]
    return out


def assert_binomial(hits, n, p, what):
    n, p = np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    assert np.all(n > 0), f"{what}: empty group"
    est = np.asarray(hits, dtype=float) / n
    tol = Z * np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(est - p) <= tol), f"{what}: simulated {est} vs exact {p} (n={n}, {Z} MCSE = {tol})"


def assert_mean_of_bernoullis(y, p, what):
    """The mean of independent Bernoulli(p_i) within Z standard errors sqrt(sum p(1-p)) / n."""
    y, p = np.asarray(y, dtype=float).ravel(), np.asarray(p, dtype=float).ravel()
    tol = Z * math.sqrt((p * (1 - p)).sum()) / y.size
    assert abs(y.mean() - p.mean()) <= tol, f"{what}: simulated {y.mean()} vs exact {p.mean()} ({Z} MCSE = {tol})"


# --------------------------------------------------------------------------- drawing


def enrol(vp, seed, n_trials, n, ep, treatments=TREATMENTS, **kw):
    """Enrolled patients' outcomes (T, n, K) and profiles {name: (T, n)} and the Enrolled."""
    e = vp.enrol(Streams(seed).for_trials(np.arange(n_trials)), n, ep, treatments, keep_cohort=True, **kw)
    rows = np.arange(n_trials)[:, None]
    idx = e.screened_index
    assert (e.cohort.reason[rows, idx] == RANDOMIZED).all()
    prof = {name: e.cohort.profile[rows, idx, i].astype(int) for i, name in enumerate(vp.population.names)}
    return e.outcomes, prof, e


@pytest.fixture(scope="module")
def vp() -> VirtualPatients:
    v = VirtualPatients(parse_scenario(scenario()))
    assert v.population.names == NAMES
    return v


@pytest.fixture(scope="module")
def orr(vp):
    return enrol(vp, 101, 200, 1024, "orr")


@pytest.fixture(scope="module")
def pfs(vp):
    return enrol(vp, 101, 200, 1024, "pfs")


def hksp(prof):
    return prof["histology"], prof["kras"], prof["stk11"], prof["pdl1"]


# --------------------------------------------------------------------------- exact model functions


def test_model_functions_match_the_hand_formulas(vp):
    codes, _ = vp.population.distribution()
    h, k, s, p = (codes[:, vp.population.index[n]].astype(int) for n in NAMES[:4])
    out = vp.outcomes
    for t in TREATMENTS:
        np.testing.assert_allclose(
            out.probability("orr", t, codes), special.expit(orr_logit(t, h, k, s, p)), rtol=1e-12
        )
        for time in (0.5, ONSET, 2.0, 3.0, LANDMARK, 4.5, 10.0):
            np.testing.assert_allclose(
                out.cumulative_hazard("pfs", t, codes, time),
                cumulative_hazard(hazard_pieces(t, h, k, s, p), time),
                rtol=1e-12,
                err_msg=f"{t} at {time}",
            )
        np.testing.assert_allclose(out.probability("dcr12", t, codes), survival(t, h, k, s, p, LANDMARK), rtol=1e-12)


def test_hand_truths_spot_values():
    # reference patients on docetaxel: median 4 months exactly
    assert survival("docetaxel", 0, 0, 0, 0, 4.0) == pytest.approx(0.5, abs=1e-15)
    # pw in reference patients: 0.3 x 2 months, nothing until 4, then 0.2 per month: median 4 + (log 2 - 0.6) / 0.2
    assert survival("pw", 0, 0, 0, 0, 4 + (math.log(2) - 0.6) / 0.2) == pytest.approx(0.5, abs=1e-15)
    assert 1.37 < ONSET < 1.39


# --------------------------------------------------------------------------- 6. binary outcomes


def test_binary_response_by_profile(orr):
    y, prof, _ = orr
    _, k, s, p = hksp(prof)
    for kk, ss, pp in itertools.product(range(2), range(2), range(3)):
        cell = (k == kk) & (s == ss) & (p == pp)
        for j, t in enumerate(TREATMENTS):
            rate = float(special.expit(orr_logit(t, 0, kk, ss, pp)))
            assert_binomial(y[..., j][cell].sum(), cell.sum(), rate, f"orr {t} | kras {kk}, stk11 {ss}, pdl1 {pp}")
    # the two profiles named in the configuration, for the record
    ref = (k == 0) & (s == 0) & (p == 0)
    assert_binomial(y[..., 0][ref].sum(), ref.sum(), 0.14, "docetaxel, reference patients")
    pos = (k == 1) & (s == 0) & (p == 2)
    x_rate = 1 / (1 + (0.86 / 0.14) / (1.8 * 1.5 * 2.0))  # odds 0.14/0.86 x 1.8 x 1.5 x 2
    assert_binomial(y[..., 1][pos].sum(), pos.sum(), x_rate, "x, kras+ pdl1 ge50")


# --------------------------------------------------------------------------- 6. time to event

TIMES = [0.5, ONSET, 2.0, 3.0, 5.0, 8.0]
RELEVANT = {  # markers each treatment's hazard depends on
    "docetaxel": ("histology", "stk11"),
    "x": ("histology", "stk11", "kl", "ge50"),
    "z": ("histology", "stk11", "kl", "ge50"),
    "pw": ("stk11",),
    "pw_rel": ("stk11",),
}


def test_survival_by_profile(pfs):
    """P(T > t) in each group of patients with the same hazard is exp(-H(t)): hazard ratios by marker
    (including a categorical level and a derived marker), a relative treatment's ratio switching on
    at its onset, a chain of relative treatments, piecewise-exponential baselines."""
    y, prof, _ = pfs
    h, k, s, p = hksp(prof)
    feature = {"histology": h, "stk11": s, "kl": prof["kl"], "ge50": (p == 2).astype(int)}
    np.testing.assert_array_equal(prof["kl"], (k == 1) & (s == 1))
    for j, t in enumerate(TREATMENTS):
        keys = np.stack([feature[f] for f in RELEVANT[t]], axis=-1)
        groups = {tuple(g) for g in keys.reshape(-1, keys.shape[-1])}
        assert len(groups) == {1: 2, 2: 4, 4: 12}[len(RELEVANT[t])]
        for g in groups:
            cell = (keys == g).all(axis=-1)
            # a representative profile of the group
            f = dict(zip(RELEVANT[t], g))
            hh, ss = f.get("histology", 0), f["stk11"]
            kk = f.get("kl", 0)
            pp = 2 if f.get("ge50", 0) else 0
            for time in TIMES:
                expect = float(survival(t, hh, kk, ss, pp, time))
                assert_binomial((y[..., j][cell] > time).sum(), cell.sum(), expect, f"P(T > {time:.3f}) {t} {f}")


def test_median_in_reference_patients(pfs):
    """The sample median is within MC error of the configured median: the proportion of patients
    progressing before it is 1/2 within the binomial bound."""
    y, prof, _ = pfs
    h, k, s, p = hksp(prof)
    ref = (h == 0) & (k == 0) & (s == 0) & (p == 0)
    lam = math.log(2) / 4.0
    medians = {
        "docetaxel": 4.0,
        # x: docetaxel's hazard until the onset, 0.8 of it after
        "x": ONSET + (math.log(2) / lam - ONSET) / 0.8,
        "pw": 4 + (math.log(2) - 0.6) / 0.2,
        # pw_rel: 0.3 until the onset, 0.15 until 2, nothing until 4, then 0.1
        "pw_rel": 4 + (math.log(2) - 0.3 * ONSET - 0.15 * (2 - ONSET)) / 0.1,
    }
    for t, m in medians.items():
        j = TREATMENTS.index(t)
        assert_binomial((y[..., j][ref] <= m).sum(), ref.sum(), 0.5, f"{t}: P(T <= configured median {m:.3f})")
        # the same statement about the sample median
        n = ref.sum()
        lo, hi = np.quantile(y[..., j][ref], [0.5 - Z * 0.5 / math.sqrt(n), 0.5 + Z * 0.5 / math.sqrt(n)])
        assert lo <= m <= hi, (t, lo, m, hi)


def test_hazard_free_piece_has_no_events(pfs):
    y, _, _ = pfs
    for t in ("pw", "pw_rel"):
        yt = y[..., TREATMENTS.index(t)]
        assert not ((yt > 2.0) & (yt < 4.0)).any(), t
        assert ((yt > 0) & (yt <= 2.0)).any() and (yt >= 4.0).any(), t


def test_delayed_onset_same_uniforms(vp, pfs):
    """Before the onset a relative treatment has its comparator's hazard: with the same uniform, the
    event times agree exactly when they come before the onset, and differ after it."""
    _, prof, _ = pfs
    codes = np.stack([prof[n] for n in NAMES], axis=-1).astype(np.int8)[:20]
    u = np.random.default_rng(7).random(codes.shape[:-1])
    out = vp.outcomes
    for t, comparator in (("x", "docetaxel"), ("pw_rel", "pw")):
        a = out.time_to_event("pfs", t, codes, None, u)
        b = out.time_to_event("pfs", comparator, codes, None, u)
        early = b <= ONSET
        assert early.any() and (~early).any()
        np.testing.assert_allclose(a[early], b[early], rtol=1e-12)
        assert (a[~early] > ONSET).all()
        assert (a[~early] != b[~early]).all()  # no profile has a ratio of 1 after the onset


# --------------------------------------------------------------------------- 6. landmark, dropout


def test_landmark_is_the_time_to_event_past_the_landmark(vp, pfs):
    """Same seed, same patients, same uniforms: dcr12 is exactly pfs > 12 weeks."""
    y_pfs, _, e_pfs = pfs
    y_dcr, _, e_dcr = enrol(vp, 101, 200, 1024, "dcr12")
    np.testing.assert_array_equal(e_dcr.screened_index, e_pfs.screened_index)
    np.testing.assert_array_equal(y_dcr, y_pfs > LANDMARK)
    assert 0.3 < y_dcr.mean() < 0.8


DROPOUT = {"probability": 0.2, "before_weeks": 8}


def test_dropout_turns_outcomes_into_failures(vp):
    with_dropout = VirtualPatients(parse_scenario(scenario(dropout=DROPOUT)))
    # an exponential dropout time with P(before 8 weeks) = 0.2: P(before 12 weeks) = 1 - 0.8^(12/8)
    p_binary, p_landmark = 0.2, 1 - 0.8 ** (12 / 8)
    seen = {}
    for ep, p_drop in (("orr", p_binary), ("dcr12", p_landmark)):
        y0, _, e0 = enrol(vp, 202, 200, 512, ep)
        y1, _, e1 = enrol(with_dropout, 202, 200, 512, ep)
        np.testing.assert_array_equal(e0.screened_index, e1.screened_index)
        assert not (y1 & ~y0).any(), "dropout never creates a success"
        lost = y0 & ~y1
        for j, t in enumerate(TREATMENTS):
            assert_binomial(lost[..., j].sum(), y0[..., j].sum(), p_drop, f"{ep} {t}: successes lost to dropout")
        seen[ep] = (y0, y1)
    # one dropout time per patient, shared by treatments and endpoints: who drops out before 8 weeks
    # also drops out before 12, and a patient who lost a response on one treatment lost it on all
    (o0, o1), (_, d1) = seen["orr"], seen["dcr12"]
    dropped_early = (o0 & ~o1).any(axis=-1)
    assert not (d1.any(axis=-1) & dropped_early).any()
    assert not (o1.any(axis=-1) & dropped_early).any()
    # time-to-event potential outcomes are not censored here (that is the follow-up model's job)
    y0, _, _ = enrol(vp, 202, 20, 512, "pfs")
    y1, _, _ = enrol(with_dropout, 202, 20, 512, "pfs")
    np.testing.assert_array_equal(y0, y1)


# --------------------------------------------------------------------------- 6. time trend

TREND = {"pfs": {"per_year": -0.15, "treatments": ["docetaxel"]}, "orr": {"per_year": 0.2}}


@pytest.fixture(scope="module")
def trend():
    pop = copy.deepcopy(POPULATION)
    pop["accrual"] = {"rate_per_month": 10}  # about ten years to screen 1200 patients
    vp = VirtualPatients(parse_scenario(scenario(population=pop, time_trend=TREND)))
    out = {}
    for ep in ("pfs", "orr", "dcr12"):
        y, prof, e = enrol(vp, 303, 100, 1024, ep)
        rows = np.arange(100)[:, None]
        months = e.cohort.arrival[rows, e.screened_index] + e.cohort.wait_days[rows, e.screened_index] / DAYS
        out[ep] = (y, prof, months)
    return out


def test_time_trend_on_hazard(trend):
    y, prof, at = trend["pfs"]
    h, k, s, p = hksp(prof)
    late = at > np.median(at)
    assert at.max() > 8 * 12
    for t, per_year in (("docetaxel", -0.15), ("x", 0.0), ("z", 0.0), ("pw", 0.0)):
        j = TREATMENTS.index(t)
        for time in (1.0, 3.0, 6.0):
            h_i = cumulative_hazard(hazard_pieces(t, h, k, s, p), time) * np.exp(per_year * at / 12)
            expect = np.exp(-h_i)
            for part, sel in (("early", ~late), ("late", late)):
                assert_mean_of_bernoullis(y[..., j][sel] > time, expect[sel], f"{t} P(T > {time}) {part}")
    # the direction: docetaxel's hazard falls over calendar time, its comparator x's does not
    j = TREATMENTS.index("docetaxel")
    assert (y[..., j][late] > 3.0).mean() > (y[..., j][~late] > 3.0).mean()


def test_time_trend_on_log_odds(trend):
    y, prof, at = trend["orr"]
    h, k, s, p = hksp(prof)
    late = at > np.median(at)
    for j, t in enumerate(TREATMENTS):  # no treatments listed: every treatment
        expect = special.expit(orr_logit(t, h, k, s, p) + 0.2 * at / 12)
        for part, sel in (("early", ~late), ("late", late)):
            assert_mean_of_bernoullis(y[..., j][sel], expect[sel], f"orr {t} {part}")
        assert y[..., j][late].mean() > y[..., j][~late].mean()


def test_time_trend_landmark_follows_its_endpoint(trend):
    y_pfs, _, at_pfs = trend["pfs"]
    y_dcr, _, at_dcr = trend["dcr12"]
    np.testing.assert_array_equal(at_pfs, at_dcr)
    np.testing.assert_array_equal(y_dcr, y_pfs > LANDMARK)


# --------------------------------------------------------------------------- 8. truth()


def test_truth_against_hand_values_and_monte_carlo():
    vp = VirtualPatients(parse_scenario(scenario(dropout=DROPOUT)))
    cells = joint()
    keep_orr, keep_dcr = 0.8, 0.8 ** (12 / 8)  # no dropout before the assessment

    def by_hand(ep, t):
        if ep == "orr":
            return keep_orr * sum(pr * special.expit(orr_logit(t, *c)) for c, pr in cells.items())
        if ep == "dcr12":
            return keep_dcr * sum(pr * survival(t, *c, LANDMARK) for c, pr in cells.items())
        # pfs: the median of the mixture
        return optimize.brentq(
            lambda m: sum(pr * survival(t, *c, m) for c, pr in cells.items()) - 0.5, 0.01, 100, xtol=1e-12
        )

    for ep in ("orr", "dcr12", "pfs"):
        truth = vp.truth(ep, TREATMENTS)
        hand = [by_hand(ep, t) for t in TREATMENTS]
        np.testing.assert_allclose(truth, hand, rtol=1e-8, err_msg=ep)
        y, _, _ = enrol(vp, 404, 400, 2048 if ep != "pfs" else 1024, ep)
        n = y.shape[0] * y.shape[1]
        for j, t in enumerate(TREATMENTS):
            if ep == "pfs":
                assert_binomial((y[..., j] <= truth[j]).sum(), n, 0.5, f"P(pfs <= true median) {t}")
            else:
                assert_binomial(y[..., j].sum(), n, truth[j], f"{ep} {t}")


# --------------------------------------------------------------------------- 7. common random numbers


def test_more_patients_same_first_patients(vp):
    for ep in ("orr", "pfs"):
        a = vp.enrol(Streams(5).for_trials(np.arange(30)), 100, ep, TREATMENTS)
        b = vp.enrol(Streams(5).for_trials(np.arange(30)), 300, ep, TREATMENTS)
        np.testing.assert_array_equal(a.outcomes, b.outcomes[:, :100])
        np.testing.assert_array_equal(a.screened_index, b.screened_index[:, :100])
        np.testing.assert_array_equal(a.n_screened, a.screened_index[:, -1] + 1)
    # arrival times drawn or not: the same patients
    c = vp.enrol(Streams(5).for_trials(np.arange(30)), 300, "pfs", TREATMENTS, times=True)
    np.testing.assert_array_equal(c.outcomes, b.outcomes)


def test_treatment_order_and_subset_do_not_matter(vp):
    a = vp.enrol(Streams(6).for_trials(np.arange(30)), 200, "pfs", TREATMENTS).outcomes
    b = vp.enrol(Streams(6).for_trials(np.arange(30)), 200, "pfs", ["pw", "docetaxel"]).outcomes
    np.testing.assert_array_equal(b[..., 0], a[..., TREATMENTS.index("pw")])
    np.testing.assert_array_equal(b[..., 1], a[..., TREATMENTS.index("docetaxel")])


def test_adding_a_marker_and_a_treatment_changes_nothing_else(vp):
    s = scenario()
    markers = s["population"]["markers"]
    # a new marker, listed second (before kras, stk11, pdl1), measured on tissue and in plasma, and a
    # derived marker and a treatment using it
    s["population"]["markers"] = {
        "histology": markers["histology"],
        "egfr": {
            "given": ["histology"],
            "prevalence": {"nonsquamous": 0.2, "squamous": 0.03},
            "tissue": {"failure": 0.1},
            "liquid": {"sensitivity": 0.8},
        },
        **{m: v for m, v in markers.items() if m != "histology"},
    }
    s["population"]["derived"]["egfr_or_kras"] = {"any_of": ["egfr", "kras"]}
    s["treatments"] = {
        "osimertinib": {
            "relative_to": "docetaxel",
            "outcomes": {
                "pfs": {"hazard_ratio": 0.9, "hazard_ratios": {"egfr": 0.3}},
                "orr": {"odds_ratios": {"egfr": 5}},
            },
        },
        **s["treatments"],
    }
    bigger = VirtualPatients(parse_scenario(s))
    assert bigger.population.names != vp.population.names
    for ep in ("orr", "pfs"):
        a = vp.enrol(Streams(8).for_trials(np.arange(40)), 300, ep, TREATMENTS, keep_cohort=True)
        b = bigger.enrol(Streams(8).for_trials(np.arange(40)), 300, ep, ["osimertinib"] + TREATMENTS, keep_cohort=True)
        np.testing.assert_array_equal(a.outcomes, b.outcomes[..., 1:])
        np.testing.assert_array_equal(a.screened_index, b.screened_index)
        for f in ("arrival", "wait_days", "reason"):
            np.testing.assert_array_equal(getattr(a.cohort, f), getattr(b.cohort, f), err_msg=f)
        for name in NAMES:
            i, j = vp.population.index[name], bigger.population.index[name]
            np.testing.assert_array_equal(a.cohort.profile[..., i], b.cohort.profile[..., j], err_msg=name)
            np.testing.assert_array_equal(a.cohort.observed[..., i], b.cohort.observed[..., j], err_msg=name)


def test_patients_of_a_trial_do_not_depend_on_the_number_of_trials(vp):
    """Trial t of a chunk sees the same patients whether the chunk simulates 20 or 60 trials."""
    a = vp.enrol(Streams(9).for_trials(np.arange(20)), 300, "orr", TREATMENTS, keep_cohort=True)
    b = vp.enrol(Streams(9).for_trials(np.arange(60)), 300, "orr", TREATMENTS, keep_cohort=True)
    np.testing.assert_array_equal(a.outcomes, b.outcomes[:20])
    np.testing.assert_array_equal(a.screened_index, b.screened_index[:20])
    n = a.cohort.reason.shape[1]
    for f in ("arrival", "profile", "observed", "wait_days", "reason"):
        np.testing.assert_array_equal(getattr(a.cohort, f), getattr(b.cohort, f)[:20, :n], err_msg=f)


def test_enrolled_screening_results_equal_the_kept_cohort_s(vp):
    """``observed=True`` gives the enrolled patients' screening results without keeping the cohort:
    value for value those of the kept cohort at their screened positions; nothing else changes."""
    ss = Streams(12).for_trials(np.arange(25))
    names = vp.population.names
    kept = vp.enrol(ss, 300, "orr", TREATMENTS, times=True, keep_cohort=True, characteristics=names)
    light = vp.enrol(ss, 300, "orr", TREATMENTS, times=True, characteristics=names, observed=True)
    assert light.cohort is None and kept.observed is None
    rows = np.arange(25)[:, None]
    assert (kept.cohort.observed[rows, kept.screened_index] != MISSING).any()
    np.testing.assert_array_equal(light.observed, kept.cohort.observed[rows, kept.screened_index])
    for f in ("outcomes", "screened_index", "n_screened", "randomized_at"):
        np.testing.assert_array_equal(getattr(light, f), getattr(kept, f), err_msg=f)


@pytest.mark.parametrize("n_trials", [3, 25, 200])
def test_patients_taken_in_steps_are_those_of_one_enrolment(vp, n_trials):
    """Patients taken a few at a time by different groups of trials (which then go on from
    different blocks) are those one enrolment of them all gives, bit for bit: outcomes, positions
    among the screened, randomization times and screening results. With 3 or 25 trials several
    blocks are drawn at once; with 200 one at a time."""
    from platform_sim.outcomes import Enrolment

    ss = Streams(13).for_trials(np.arange(5, 5 + n_trials))
    names = vp.population.names
    whole = vp.enrol(ss, 700, "orr", TREATMENTS, times=True, characteristics=names, observed=True)
    assert (whole.screened_index[:, -1] >= 700).all()  # some screened patients are not randomizable
    steps = Enrolment(vp, ss, "orr", TREATMENTS, times=True, characteristics=names)
    taken = [[] for _ in range(n_trials)]
    rng = np.random.default_rng(1)
    plan = [(np.arange(n_trials), 90)] + [(np.flatnonzero(rng.random(n_trials) < 0.5), m) for m in (1, 250, 33, 7)]
    plan.append((np.arange(n_trials), 60))
    for rows, m in plan:
        if rows.size == 0:
            continue
        got = steps.take(rows[::-1], m)  # rows in any order come back in that order
        for i, t in enumerate(rows[::-1]):
            taken[t].append((got.outcomes[i], got.screened_index[i], got.randomized_at[i], got.observed[i]))
    for t in range(n_trials):
        k = sum(part[0].shape[0] for part in taken[t])
        for j, name in enumerate(("outcomes", "screened_index", "randomized_at", "observed")):
            np.testing.assert_array_equal(
                np.concatenate([part[j] for part in taken[t]]), getattr(whole, name)[t, :k], err_msg=f"{t} {name}"
            )


def test_patients_taken_then_more_are_those_of_one_enrolment(vp):
    """Enrolled.then joins one enrolment's patients and the next ones taken from it, field by field, into
    those of one enrolment of them all; the last one's arrival is that of the screened patient at its
    position."""
    from platform_sim.outcomes import Enrolment

    ss = Streams(17).for_trials(np.arange(30))
    names = vp.population.names
    kept = vp.enrol(ss, 500, "orr", TREATMENTS, times=True, keep_cohort=True, characteristics=names, observed=True)
    steps = Enrolment(vp, ss, "orr", TREATMENTS, times=True, characteristics=names)
    rows = np.arange(30)
    joined = steps.take(rows, 180).then(steps.take(rows, 320))
    for f in ("outcomes", "screened_index", "n_screened", "randomized_at", "observed", "last_arrival"):
        np.testing.assert_array_equal(getattr(joined, f), getattr(kept, f), err_msg=f)
    np.testing.assert_array_equal(kept.last_arrival, kept.cohort.arrival[rows, kept.screened_index[:, -1]])
    assert (kept.randomized_at[:, -1] > kept.last_arrival).any()  # some waited for a result


def design(arms, looks, randomization=None, name="d") -> dict:
    return {
        "name": name,
        "endpoint": {"name": "orr", "direction": "higher_is_better"},
        "arms": [{"name": a, "treatment": t} for a, t in arms],
        "prior": {"a": 1, "b": 1},
        "randomization": randomization or {"method": "fixed", "scheme": "block"},
        "looks": {"randomized_n": looks},
        "decisions": {"superiority": 0.99, "inferiority": 0.01},
        "clinically_relevant_difference": 0.1,
    }


def test_designs_on_the_same_seed_randomize_the_same_patients():
    """Two designs whose arms all give docetaxel: whatever the allocation, the number of responders
    in a trial is the number among its first n randomizable patients, as VirtualPatients.enrol
    draws them from the trial's own streams (designs with looks wait for no biomarker result: the
    randomizable patients are the eligible ones)."""
    sc = parse_scenario(scenario())
    one = Spec.from_models(parse_design(design([("A", "docetaxel"), ("B", "docetaxel")], [200])), sc)
    two = Spec.from_models(
        parse_design(
            design(
                [("C", "docetaxel"), ("A", "docetaxel"), ("B", "docetaxel")],
                [60, 120, 300],
                randomization={"method": "adaptive", "scheme": "simple", "softening": 1.0},
                name="d2",
            )
        ),
        sc,
    )
    n_trials = 40
    ss = Streams(2024).for_trials(np.arange(100, 100 + n_trials))
    reference = VirtualPatients(sc).enrol(ss, 300, "orr", ["docetaxel"], biomarker_result=False)
    cum = np.cumsum(reference.outcomes[..., 0], axis=1)
    rows = np.arange(n_trials)
    for spec in (one, two):
        res = run_chunk(spec, ss)
        n = res.n_randomized
        assert (n > 0).all()
        np.testing.assert_array_equal(res.events.sum(axis=(1, 2)), cum[rows, n - 1])
        np.testing.assert_array_equal(res.n_screened, reference.screened_index[rows, n - 1] + 1)
    # the identity is not trivial: adaptive allocation spreads the patients unevenly over the arms
    assert (res.n_by_arm.max(axis=1) - res.n_by_arm.min(axis=1) > 50).any()


def test_run_chunk_gives_every_design_the_same_patients(monkeypatch):
    """Designs with different treatments, arm orders and sizes: run_chunk asks for the patients of
    the trials' own streams, and the patients (potential outcomes) they share are identical."""
    calls = []
    original = VirtualPatients.enrol

    def spy(self, ts, n_needed, ep, treatments, **kw):
        e = original(self, ts, n_needed, ep, treatments, **kw)
        calls.append((ts, dict(zip(treatments, np.moveaxis(e.outcomes, -1, 0))), e.screened_index))
        return e

    monkeypatch.setattr(VirtualPatients, "enrol", spy)
    sc = parse_scenario(scenario())
    ss = Streams(77).for_trials(np.arange(30))
    run_chunk(Spec.from_models(parse_design(design([("a", "docetaxel"), ("b", "x")], [100, 200])), sc), ss)
    run_chunk(Spec.from_models(parse_design(design([("b", "x"), ("c", "pw"), ("a", "docetaxel")], [150])), sc), ss)
    (r1, o1, i1), (r2, o2, i2) = calls
    for r in (r1, r2):
        assert r.streams.seed == 77 and np.array_equal(r.trials, np.arange(30))
    for t in ("docetaxel", "x"):
        np.testing.assert_array_equal(o1[t][:, :150], o2[t][:, :150])
    np.testing.assert_array_equal(i1[:, :150], i2)


# --------------------------------------------------------------------------- 9. bad scenario files


def problems(s: dict) -> list:
    with pytest.raises(ConfigError) as info:
        parse_scenario(s)
    return info.value.problems


def test_unknown_marker_in_an_effect():
    s = scenario()
    s["treatments"]["docetaxel"]["outcomes"]["orr"]["odds_ratios"] = {"nope": 2}
    (p,) = problems(s)
    assert p.path == "scenario.treatments.docetaxel.outcomes.orr.odds_ratios.nope"
    assert p.message.startswith("'nope' is not a marker of the population; markers are ['histology', 'kl'")


def test_unknown_level_in_an_effect():
    s = scenario()
    s["treatments"]["x"]["outcomes"]["pfs"]["hazard_ratios"]["pdl1"] = {"gt50": 0.7}
    (p,) = problems(s)
    assert p.path == "scenario.treatments.x.outcomes.pfs.hazard_ratios.pdl1"
    assert "['gt50'] are not non-reference levels of 'pdl1'" in p.message


def test_unknown_marker_in_a_prognostic_effect():
    s = scenario()
    s["prognostic"]["pfs"]["hazard_ratios"]["egfr"] = 2
    (p,) = problems(s)
    assert p.path == "scenario.prognostic.pfs.hazard_ratios.egfr"
    assert "'egfr' is not a marker of the population" in p.message


def test_landmark_of_a_binary_endpoint():
    s = scenario()
    s["endpoints"]["dcr12"]["of"] = "orr"
    (p,) = problems(s)
    assert p.path == "scenario.endpoints.dcr12.of"
    assert p.message == "'orr' is not a time_to_event endpoint of this scenario; those are ['pfs']"


def test_cycle_in_relative_to():
    s = scenario()
    s["treatments"]["a"] = {"relative_to": "b"}
    s["treatments"]["b"] = {"relative_to": "a"}
    (p,) = problems(s)
    assert p.path == "scenario.treatments.a.relative_to"
    assert p.message == "a cycle a -> b -> a"


def test_relative_treatment_giving_a_rate():
    s = scenario()
    s["treatments"]["x"]["outcomes"]["orr"]["rate"] = 0.3
    (p,) = problems(s)
    assert p.path == "scenario.treatments.x.outcomes.orr"
    assert "['rate'] set an absolute baseline, but the treatment is relative_to another" in p.message


def test_absolute_treatment_missing_its_median():
    s = scenario()
    del s["treatments"]["docetaxel"]["outcomes"]["pfs"]["median_months"]
    (p,) = problems(s)
    assert p.path == "scenario.treatments.docetaxel.outcomes.pfs"
    assert p.message == "needs median_months or pieces (the hazard in reference patients)"


def test_absolute_treatment_missing_an_endpoint():
    s = scenario()
    del s["treatments"]["pw"]["outcomes"]["orr"]
    (p,) = problems(s)
    assert p.path == "scenario.treatments.pw.outcomes.orr"
    assert "missing; a treatment that is not relative_to another needs rate" in p.message


@pytest.mark.parametrize(
    "design, scenario", [("pioneer_platform", "pioneer_alternative"), ("lungmap_umbrella", "stk11_keap1_ctla4")]
)
def test_expectations_on_merged_profiles_equal_those_on_every_profile(monkeypatch, design, scenario):
    """Expectations merge the profiles that the models cannot tell apart before root finding; against
    the same computation on every profile (tens of thousands of screening paths), they agree to
    rounding: 1e-12 on rates and on medians in months (brentq's xtol is 1e-10 on the root)."""
    from platform_sim.outcomes import OutcomesModel
    from platform_sim.strata import reported_distribution

    spec = Spec.load(design, scenario)
    vp = VirtualPatients(spec.scenario)
    ep = spec.design.endpoint.name
    treatments = [a.treatment for a in spec.design.arms]
    markers = list(spec.design.strata.markers) if spec.design.strata is not None else []
    codes, _, prob = reported_distribution(vp.population, markers, vp._relevant_markers(ep, treatments))
    rng = np.random.default_rng(4)
    weights = [prob, prob * rng.random(prob.size), np.where(rng.random(prob.size) < 0.5, prob, 0.0)]
    merged = [[vp.outcomes.expected(ep, t, codes, w) for t in treatments] for w in weights]
    merged_effect = [vp.outcomes.effect(ep, treatments[1], treatments[0], codes, w) for w in weights]
    monkeypatch.setattr(OutcomesModel, "_collapse", lambda self, ep, ts, c, p: (c, p))
    every = [[vp.outcomes.expected(ep, t, codes, w) for t in treatments] for w in weights]
    every_effect = [vp.outcomes.effect(ep, treatments[1], treatments[0], codes, w) for w in weights]
    assert codes.shape[0] > 1000  # the case the merging is for
    np.testing.assert_allclose(merged, every, rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged_effect, every_effect, rtol=0, atol=1e-12)


def test_hazards_per_combination_of_levels_equal_hazards_per_patient():
    """Potential outcomes computed once per combination of the levels the models read (ProfileIndex)
    and with the one-piece shortcut are the same, value for value, as per patient through the
    piecewise loop."""
    from dataclasses import replace

    from platform_sim.outcomes import ProfileIndex

    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    vp = VirtualPatients(spec.scenario)
    om = vp.outcomes
    ts = Streams(3).for_trials(np.arange(40))
    treatments = [a.treatment for a in spec.design.arms]
    block, _ = vp.population.block(ts, 0, np.zeros(40), True, set(vp._relevant_markers("pfs", treatments)), set())
    codes = block.profile
    cols = om._used_columns("pfs", treatments)
    index = ProfileIndex.build(codes, cols, [len(vp.population.levels[c]) for c in cols])
    assert index is not None and index.n_combos > 1
    u = ts.uniform(2, "test", 0, codes.shape[1])
    for t in treatments:
        m = om._models["pfs", t]
        assert len(m.pieces) == 1
        fast = om.time_to_event("pfs", t, codes, None, u, index)
        np.testing.assert_array_equal(fast, om.time_to_event("pfs", t, codes, None, u))
        # the same model as two pieces, the second out of reach: the general loop
        om._models["pfs", t] = replace(m, starts=np.array([0.0, 1e12]), pieces=(m.pieces[0], m.pieces[0]))
        try:
            np.testing.assert_array_equal(fast, om.time_to_event("pfs", t, codes, None, u))
        finally:
            om._models["pfs", t] = m
    rates = index.values(om._models["orr", treatments[1]].pieces[0])[index.index]
    np.testing.assert_array_equal(rates, om._models["orr", treatments[1]].pieces[0](codes))


def test_first_randomizable_positions_equal_the_stable_sort():
    """The compiled positions of each trial's first randomizable patients are those of the stable
    argsort they replace, and after skipping some, the next ones of that order; a row with too few
    is refused."""
    from platform_sim.outcomes import _first_randomizable

    rng = np.random.default_rng(4)
    for share in (0.02, 0.5, 1.0):
        ok = rng.random((17, 300)) < share
        ok[:, :5] = True
        n = int(ok.sum(axis=1).min())
        order = np.argsort(~ok, axis=1, kind="stable")
        np.testing.assert_array_equal(_first_randomizable(ok, np.zeros(17, dtype=np.int64), n), order[:, :n])
        skip = rng.integers(0, n // 2 + 1, 17)
        m = n - int(skip.max())
        expected = np.stack([order[t, skip[t] : skip[t] + m] for t in range(17)])
        np.testing.assert_array_equal(_first_randomizable(ok, skip, m), expected)
    with pytest.raises(ValueError, match="fewer randomizable"):
        _first_randomizable(np.zeros((2, 10), dtype=bool), np.zeros(2, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="fewer randomizable"):
        _first_randomizable(np.ones((2, 10), dtype=bool), np.array([0, 6]), 5)


def test_profile_index_kernel_equals_the_numpy_sum():
    """Each profile's combination index (compiled) is the sum of its level codes times their
    strides, and a profile with a missing level in a read column refuses the index."""
    from platform_sim.outcomes import ProfileIndex

    rng = np.random.default_rng(5)
    n_levels = [3, 2, 4]
    columns = [4, 0, 2]
    codes = np.zeros((6, 50, 5), dtype=np.int8)
    for c, n in zip(columns, n_levels):
        codes[..., c] = rng.integers(0, n, size=codes.shape[:-1])
    codes[..., 1] = -1  # a column no model reads may be missing
    index = ProfileIndex.build(codes, columns, n_levels)
    expected = codes[..., 4].astype(np.intp) * 8 + codes[..., 0].astype(np.intp) * 4 + codes[..., 2]
    np.testing.assert_array_equal(index.index, expected)
    assert index.n_combos == 24
    np.testing.assert_array_equal(ProfileIndex.build(codes, [], []).index, np.zeros((6, 50), dtype=np.intp))
    codes[3, 7, 0] = -1
    assert ProfileIndex.build(codes, columns, n_levels) is None


@pytest.mark.parametrize("tail", [(), (3,), (2, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int8, np.bool_])
def test_picked_from_parts_equals_the_joined_parts_gathered(tail, dtype):
    """The enrolled patients' values written straight from the screened parts equal those of the
    joined parts gathered by numpy's indexing, bit for bit: rising positions (as takes give them),
    each row's first n (prefix), one part, and positions that do not rise (which join the parts)."""
    from platform_sim.outcomes import _picked

    rng = np.random.default_rng(4)
    n_trials, widths = 7, [5, 256, 1, 40]
    parts = [(rng.random((n_trials, w) + tail) * 100).astype(dtype) for w in widths]
    joined = np.concatenate(parts, axis=1)
    rows = np.arange(n_trials)[:, None]
    rising = np.sort(np.stack([rng.choice(joined.shape[1], 60, replace=False) for _ in rows]), axis=1)
    shuffled = rising.copy()
    shuffled[2] = shuffled[2][::-1]
    for order, prefix in ((rising, False), (shuffled, False), (np.broadcast_to(np.arange(60), (n_trials, 60)), True)):
        got = _picked(parts, order, prefix)
        assert got.dtype == joined.dtype and got.shape == (n_trials, 60) + tail
        assert np.array_equal(got, joined[rows, order])
    one = _picked(parts[1:2], rising % 256, False)
    assert np.array_equal(one, parts[1][rows, rising % 256])
    # an empty part, a strided one and parts of two dtypes; no patient at all
    mixed = [parts[0], parts[1][:, :0], parts[1][:, ::2].astype(np.float64), parts[3]]
    joined = np.concatenate(mixed, axis=1)
    order = np.sort(np.stack([rng.choice(joined.shape[1], 30, replace=False) for _ in rows]), axis=1)
    for prefix, take in ((False, order), (True, np.broadcast_to(np.arange(30), (n_trials, 30)))):
        got = _picked(mixed, take, prefix)
        assert got.dtype == joined.dtype and np.array_equal(got, joined[rows, take])
        assert _picked(mixed, take[:, :0], prefix).shape == (n_trials, 0) + tail
    with pytest.raises(ValueError, match="trailing shape"):
        _picked([parts[0], parts[1][..., None]], rising, False)
