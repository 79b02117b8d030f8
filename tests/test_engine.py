"""The simulation engine end to end (spec -> runner -> engine -> TrialResults).

Exact checks compare simulated frequencies with probabilities obtained by
enumerating every possible data set, with posterior probabilities computed
independently of the package: Beta(1, 1) posteriors of n binary outcomes have
polynomial densities of degree <= n and polynomial distribution functions of
degree <= n + 1, so every integral below has a polynomial integrand of degree
< 2 * 64 and 64-point Gauss-Legendre quadrature is exact (up to rounding).
Simulated frequencies must lie within 4 Monte Carlo standard errors of the
exact values, the standard errors computed from the exact probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import integrate, stats

from platform_sim.allocation import allocation_probabilities
from platform_sim.compiled import CompiledDesign
from platform_sim.results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    STOP_ARMS_DROPPED,
    STOP_EQUIVALENCE,
    STOP_MAX,
    STOP_SUPERIORITY,
    SUPERIOR,
    TrialResults,
)
from platform_sim.runner import run as run_trials
from platform_sim.spec import Spec

Z = 4.0  # tolerance in Monte Carlo standard errors
EP = "y"  # endpoint name of the designs built here
DROPPED = (INFERIOR, FUTILE, EQUIVALENT)
# alloc_history is stored as float32: a value v <= 1 is off by at most 2**-24 from the float64 it came from
F32 = 2.0**-24


# --------------------------------------------------------------------------- results of designs with looks


class LookView:
    """The per-arm view of a design with looks' results (one subgroup, all patients): the common
    fields and the family's extras under the names the interim loop uses."""

    def __init__(self, res: TrialResults):
        self.common = res
        self.n, self.responders = res.n_by_arm, res.events_by_arm
        self.status, self.stop_reason = res.status, res.stop_reason
        self.declared_superior = res.claimed_any
        self.post_mean = res.estimates["rate"][:, :, 0]
        for name in (
            "n_followed",
            "status_look",
            "declared_look",
            "post_lower",
            "post_upper",
            "prob_best",
            "final_alloc",
            "alloc_history",
            "stop_look",
            "final_control",
        ):
            setattr(self, name, res.extras[name])

    @property
    def n_trials(self) -> int:
        return self.common.n_trials


def run(spec: Spec, n_sims: int, seed: int, **kw) -> LookView:
    """``runner.run`` seen through :class:`LookView`."""
    return LookView(run_trials(spec, n_sims, seed, **kw))


# --------------------------------------------------------------------------- building specs


def make_design(
    arms,
    *,
    looks,
    superiority,
    inferiority,
    control=None,
    control_allocation=None,
    direction="higher_is_better",
    randomization=None,
    futility=None,
    equivalence=None,
    caps=None,
    name="test_design",
) -> dict:
    """A design dict; arm names double as treatment names."""
    caps = caps or {}
    d = {
        "name": name,
        "endpoint": {"name": EP, "direction": direction},
        "arms": [{"name": a, "treatment": a, **({"max_n": caps[a]} if a in caps else {})} for a in arms],
        "prior": {"a": 1, "b": 1},
        "randomization": randomization or {"method": "fixed", "scheme": "block"},
        "looks": looks,
        "decisions": {"superiority": superiority, "inferiority": inferiority},
        "clinically_relevant_difference": 0.1,
    }
    if control is not None:
        d["control"] = control
    if control_allocation is not None:
        d["control_allocation"] = control_allocation
    if futility is not None:
        d["decisions"]["futility"] = futility
    if equivalence is not None:
        d["decisions"]["equivalence"] = equivalence
    return d


def make_scenario(rates: dict[str, float], name="test_scenario") -> dict:
    return {
        "name": name,
        "endpoints": {EP: {"kind": "binary"}},
        "treatments": {t: {"rates": {EP: r}} for t, r in rates.items()},
    }


def mcse(p, n_sims):
    return np.sqrt(np.asarray(p) * (1.0 - np.asarray(p)) / n_sims)


def assert_within_mcse(observed, exact, n_sims, what):
    observed, exact = np.atleast_1d(observed), np.atleast_1d(exact)
    tol = Z * mcse(exact, n_sims)
    bad = np.abs(observed - exact) > tol
    assert not bad.any(), f"{what}: simulated {observed} vs exact {exact} (4 MCSE = {tol})"


# --------------------------------------------------------------------------- exact references


_GL_T, _GL_W = np.polynomial.legendre.leggauss(64)
NODES = (_GL_T + 1.0) / 2.0
WEIGHTS = _GL_W / 2.0


def posterior_tables(n: int):
    """pdf and cdf at the nodes of the Beta(1 + y, 1 + m - y) posteriors, indexed [m, y, node] for
    0 <= y <= m <= n (entries with y > m unused)."""
    pdf = np.zeros((n + 1, n + 1, NODES.size))
    cdf = np.zeros_like(pdf)
    for m in range(n + 1):
        y = np.arange(m + 1)[:, None]
        pdf[m, : m + 1] = stats.beta.pdf(NODES[None, :], 1 + y, 1 + m - y)
        cdf[m, : m + 1] = stats.beta.cdf(NODES[None, :], 1 + y, 1 + m - y)
    return pdf, cdf


def exact_prob_greater(m0, y0, m1, y1, pdf, cdf):
    """P(p1 > p0 | data) = integral of f0 (1 - F1), arms with m_k patients and y_k events."""
    return np.sum(WEIGHTS * pdf[m0, y0] * (1.0 - cdf[m1, y1]), axis=-1)


def test_reference_quadrature_agrees_with_adaptive_quadrature():
    """The Gauss-Legendre reference itself, against scipy.integrate.quad on a few data sets."""
    pdf, cdf = posterior_tables(20)
    for m0, y0, m1, y1 in [(20, 6, 20, 10), (20, 0, 20, 20), (7, 3, 13, 9), (0, 0, 20, 4), (20, 11, 20, 11)]:
        f0 = stats.beta(1 + y0, 1 + m0 - y0)
        f1 = stats.beta(1 + y1, 1 + m1 - y1)
        ref, err = integrate.quad(lambda x: f0.pdf(x) * f1.sf(x), 0.0, 1.0, epsabs=1e-13, epsrel=1e-13)
        assert err < 1e-10
        assert exact_prob_greater(m0, y0, m1, y1, pdf, cdf) == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------- 1. two arms, one look


@pytest.mark.parametrize(
    "direction,rates",
    [("higher_is_better", (0.3, 0.5)), ("lower_is_better", (0.3, 0.5)), ("lower_is_better", (0.5, 0.3))],
)
def test_two_arms_one_look_matches_enumeration(direction, rates, build_spec):
    n, sup, inf, n_sims = 20, 0.95, 0.05, 4000
    design = make_design(
        ["ctl", "exp"],
        control="ctl",
        direction=direction,
        looks={"randomized_n": [2 * n]},
        superiority=sup,
        inferiority=inf,
    )
    spec = build_spec(design, make_scenario({"ctl": rates[0], "exp": rates[1]}))
    res = run(spec, n_sims, seed=20240601, chunk_size=1000)

    # block randomization with equal ratios: exactly n per arm, everyone followed at the single look
    assert_array_equal(res.n, np.full((n_sims, 2), n))
    assert_array_equal(res.n_followed, res.n)
    assert (res.stop_look == 0).all()

    pdf, cdf = posterior_tables(n)
    y = np.arange(n + 1)
    p_gt = exact_prob_greater(n, y[:, None], n, y[None, :], pdf, cdf)  # [y0, y1]: P(p_exp > p_ctl)
    p_better = p_gt if direction == "higher_is_better" else 1.0 - p_gt
    # no data set sits on a threshold, so the engine's quadrature (accurate to ~1e-8) takes the same decisions
    assert np.abs(p_better - sup).min() > 1e-6 and np.abs(p_better - inf).min() > 1e-6
    w = stats.binom.pmf(y, n, rates[0])[:, None] * stats.binom.pmf(y, n, rates[1])[None, :]
    exact_sup = w[p_better > sup].sum()
    exact_inf = w[p_better < inf].sum()
    assert 0.0 < exact_sup + exact_inf < 1.0

    declared = res.declared_superior[:, 1]
    inferior = res.status[:, 1] == INFERIOR
    assert_within_mcse(declared.mean(), exact_sup, n_sims, "P(experimental declared superior)")
    assert_within_mcse(inferior.mean(), exact_inf, n_sims, "P(experimental inferior)")

    # how each outcome is recorded
    assert not res.declared_superior[:, 0].any()
    assert_array_equal(res.status[declared], np.tile([INFERIOR, SUPERIOR], (declared.sum(), 1)))
    assert (res.stop_reason[declared] == STOP_SUPERIORITY).all()
    assert (res.final_control[declared] == 1).all()
    # experimental arm inferior: the control is the one arm left
    assert_array_equal(res.status[inferior], np.tile([SUPERIOR, INFERIOR], (inferior.sum(), 1)))
    assert (res.stop_reason[inferior] == STOP_ARMS_DROPPED).all()
    neither = ~declared & ~inferior
    assert_array_equal(res.status[neither], np.tile([CONTROL, ACTIVE], (neither.sum(), 1)))
    assert (res.stop_reason[neither] == STOP_MAX).all()


# --------------------------------------------------------------------------- 2. three arms, no control


def exact_no_control_one_look(n, rates, sup, inf):
    """Probabilities of each arm being declared superior / inferior at a single look with n per arm,
    following the documented P(best) rules: drop arms with P(best) < inf (recomputing P(best) among
    the rest until none is), then declare the best arm superior if its P(best) > sup."""
    k = len(rates)
    pdf, cdf = posterior_tables(n)
    grids = np.meshgrid(*[np.arange(n + 1)] * k, indexing="ij")
    ys = np.stack([g.ravel() for g in grids], axis=1)  # (C, K) every data set
    weight = np.prod([stats.binom.pmf(ys[:, j], n, rates[j]) for j in range(k)], axis=0)
    f, F = pdf[n][ys], cdf[n][ys]  # (C, K, nodes)

    def prob_best(active):
        Fm = np.where(active[:, :, None], F, 1.0)
        p = np.empty(active.shape)
        for j in range(k):
            others = np.prod(np.delete(Fm, j, axis=1), axis=1)
            p[:, j] = np.sum(WEIGHTS * f[:, j] * others, axis=-1)
        return np.where(active, p, 0.0)

    active = np.ones(ys.shape, dtype=bool)
    pb = prob_best(active)
    margins = [np.abs(pb - inf).min()] if not math.isnan(inf) else []
    for _ in range(k - 1):
        inferior = active & (pb < inf)
        if not inferior.any():
            break
        active &= ~inferior
        pb = prob_best(active)
        margins.append(np.abs(np.where(active, pb, 1.0) - inf).min())
    top = pb.max(axis=1)
    lone = active.sum(axis=1) == 1  # P(best) = 1 for the last arm standing
    margins.append(np.abs(top[~lone] - sup).min())
    win = top > sup
    best = pb.argmax(axis=1)
    declared = np.zeros(ys.shape, dtype=bool)
    declared[np.flatnonzero(win), best[win]] = True
    return {
        "declared": weight @ declared,
        "inferior": weight @ ~active,
        "any": weight[win].sum(),
        "margin": min(margins),
        "total_weight": weight.sum(),
    }


@pytest.mark.parametrize("inferiority", [None, 0.3])
def test_three_arms_no_control_one_look_matches_enumeration(inferiority, build_spec):
    n, sup, rates, n_sims = 10, 0.75, (0.2, 0.35, 0.5), 4000
    arms = ["a", "b", "c"]
    design = make_design(arms, looks={"randomized_n": [3 * n]}, superiority=sup, inferiority=inferiority)
    spec = build_spec(design, make_scenario(dict(zip(arms, rates))))
    res = run(spec, n_sims, seed=31337, chunk_size=1000)
    assert_array_equal(res.n, np.full((n_sims, 3), n))

    ex = exact_no_control_one_look(n, rates, sup, math.nan if inferiority is None else inferiority)
    assert ex["total_weight"] == pytest.approx(1.0, abs=1e-12)
    assert ex["margin"] > 1e-6  # no data set sits on a threshold
    assert 0.05 < ex["any"] < 0.95

    declared_any = res.declared_superior.any(axis=1)
    assert_within_mcse(declared_any.mean(), ex["any"], n_sims, "P(any superiority)")
    assert_within_mcse(res.declared_superior.mean(axis=0), ex["declared"], n_sims, "P(arm declared superior)")
    assert_within_mcse((res.status == INFERIOR).mean(axis=0), ex["inferior"], n_sims, "P(arm inferior)")
    if inferiority is None:
        assert not (res.status == INFERIOR).any()
    else:
        assert (res.status == INFERIOR).any()
    assert_array_equal(res.stop_reason == STOP_SUPERIORITY, declared_any)
    assert_array_equal(res.status == SUPERIOR, res.declared_superior)
    assert (res.final_control == -1).all()


# --------------------------------------------------------------------------- 3. outcome lag


def test_outcome_lag_exact_first_look_and_patient_counts(build_spec):
    """Look 0 at 40 randomized / 20 followed, look 1 at 80 / 80. Block randomization gives 20 per arm
    in the first batch; the 20 followed patients are the first 20 in random order, so the control's
    share m of them is hypergeometric(40, 20, 20) and the look-0 decision is exact by enumeration."""
    sup, inf, rates, n_sims = 0.7, 0.3, (0.35, 0.5), 4000
    design = make_design(
        ["ctl", "exp"],
        control="ctl",
        looks={"randomized_n": [40, 80], "followed_n": [20, 80]},
        superiority=sup,
        inferiority=inf,
    )
    spec = build_spec(design, make_scenario({"ctl": rates[0], "exp": rates[1]}))
    res = run(spec, n_sims, seed=4242, chunk_size=1000)

    early = res.stop_look == 0
    late = res.stop_look == 1
    assert_array_equal(early | late, np.ones(n_sims, dtype=bool))
    assert early.sum() > 100 and late.sum() > 100  # both branches exercised

    # stop at look 0: 20 patients with an outcome, all 40 randomized analysed at the end, 20 per arm
    assert_array_equal(res.n_followed[early].sum(axis=1), np.full(early.sum(), 20))
    assert_array_equal(res.n[early], np.full((early.sum(), 2), 20))
    assert (res.n_followed[early] <= res.n[early]).all()
    assert (res.n_followed[early] < res.n[early]).any()
    # stop at the last look: everyone followed
    assert_array_equal(res.n_followed[late], res.n[late])
    assert_array_equal(res.n[late].sum(axis=1), np.full(late.sum(), 80))
    # the final analysis uses every randomized patient
    np.testing.assert_allclose(res.post_mean, (1 + res.responders) / (2 + res.n), rtol=1e-12)

    # exact look-0 decisions from the 20 followed patients
    pdf, cdf = posterior_tables(20)
    p_sup = p_inf = 0.0
    margin = np.inf
    for m in range(21):  # control patients among the 20 followed
        hyp = stats.hypergeom.pmf(m, 40, 20, 20)
        y0 = np.arange(m + 1)[:, None]
        y1 = np.arange(20 - m + 1)[None, :]
        p_better = exact_prob_greater(m, y0, 20 - m, y1, pdf, cdf)
        w = hyp * stats.binom.pmf(y0, m, rates[0]) * stats.binom.pmf(y1, 20 - m, rates[1])
        p_sup += w[p_better > sup].sum()
        p_inf += w[p_better < inf].sum()
        margin = min(margin, np.abs(p_better - sup).min(), np.abs(p_better - inf).min())
    assert margin > 1e-6
    sup0 = early & res.declared_superior[:, 1]
    inf0 = early & (res.status[:, 1] == INFERIOR)
    assert_array_equal(sup0 | inf0, early)
    assert_within_mcse(sup0.mean(), p_sup, n_sims, "P(superior at look 0)")
    assert_within_mcse(inf0.mean(), p_inf, n_sims, "P(inferior at look 0)")


# --------------------------------------------------------------------------- 4. reproducibility


@pytest.fixture(scope="module")
def small_adaptive_spec(build_spec):
    """Adaptive, simple randomization, outcome lag, an arm cap: every random draw of the engine."""
    arms = ["ctl", "a", "b"]
    design = make_design(
        arms,
        control="ctl",
        control_allocation={"rule": "sqrt_k"},
        caps={"b": 30},
        randomization={"method": "adaptive", "scheme": "simple", "softening": 0.5, "min_allocation": 0.1},
        looks={"randomized_n": [30, 60, 90], "followed_n": [20, 45, 90]},
        superiority=0.95,
        inferiority=0.05,
    )
    return build_spec(design, make_scenario({"ctl": 0.3, "a": 0.45, "b": 0.3}))


def assert_results_equal(r1: TrialResults, r2: TrialResults) -> None:
    a1, a2 = r1.common.to_arrays(), r2.common.to_arrays()
    assert a1.keys() == a2.keys()
    for name in a1:
        assert a1[name].dtype == a2[name].dtype, name
        assert_array_equal(a1[name], a2[name], err_msg=name)  # NaNs compare equal here


def test_results_do_not_depend_on_workers_and_do_on_seed(small_adaptive_spec):
    spec = small_adaptive_spec
    one = run(spec, 1200, seed=7, workers=1, chunk_size=250)
    two = run(spec, 1200, seed=7, workers=2, chunk_size=250)
    assert one.n_trials == two.n_trials == 1200
    assert_results_equal(one, two)
    assert len(np.unique(one.stop_look)) > 1  # a non-trivial run

    other = run(spec, 1200, seed=8, workers=1, chunk_size=250)
    assert not np.array_equal(one.responders, other.responders)
    assert not np.array_equal(one.n, other.n)


def test_trials_depend_only_on_the_seed_and_their_index(small_adaptive_spec):
    """A trial's numbers depend only on (seed, trial index): a longer run starts with the shorter
    one, any chunk size gives the same trials, and another seed gives other trials."""
    spec = small_adaptive_spec
    full = run(spec, 1000, seed=11, chunk_size=250)
    head = run(spec, 500, seed=11, chunk_size=250)
    assert_results_equal(LookView(full.common.take(slice(0, 500))), head)
    for chunk_size in (1, 7, 500):
        assert_results_equal(run(spec, 500, seed=11, chunk_size=chunk_size), head)
    other = run(spec, 500, seed=12, chunk_size=250)
    assert not np.array_equal(other.responders, head.responders)


# --------------------------------------------------------------------------- 5. invariants


def _dropped_by_look(res: LookView, n_looks: int) -> np.ndarray:
    """(T, J, K): arm dropped (inferior, futile, equivalent) at or before look j."""
    dropped = np.isin(res.status, DROPPED)
    looks = np.arange(n_looks)[None, :, None]
    return dropped[:, None, :] & (res.status_look.astype(int)[:, None, :] <= looks)


def _control_share(cd: CompiledDesign, n_other: np.ndarray) -> np.ndarray | None:
    """The control's share by the design's rule with n_other open non-control arms (None: not computable)."""
    if cd.control_rule == "sqrt_k":
        root = np.sqrt(n_other)
        share = np.divide(root, root + n_other, out=np.ones(n_other.shape), where=n_other > 0)
    elif cd.control_rule == "fixed":
        share = np.where(n_other > 0, cd.control_share_by_k[n_other], 1.0)
    else:
        return None
    return share


def check_invariants(spec: Spec, res: LookView) -> None:
    cd = spec.compiled.rules
    t, k = res.n.shape
    j_looks = cd.n_looks
    assert k == cd.n_arms and res.alloc_history.shape == (t, j_looks, k)
    stop = res.stop_look.astype(int)
    st, sl = res.status, res.status_look.astype(int)
    reason = res.stop_reason
    uncapped = bool((cd.caps >= cd.max_n).all())
    has_control = cd.control >= 0

    # --- patient counts
    n_total = res.n.sum(axis=1)
    assert ((stop >= 0) & (stop < j_looks)).all()
    assert (res.n >= 0).all() and (n_total <= cd.max_n).all()
    assert (res.n <= cd.caps[None, :]).all(), "an arm exceeds its cap"
    assert ((res.responders >= 0) & (res.responders <= res.n)).all()
    assert ((res.n_followed >= 0) & (res.n_followed <= res.n)).all()
    if cd.outcome_delay is not None:  # followed by the accrual of each trial; the final analysis follows all
        final = stop == j_looks - 1
        assert_array_equal(res.n_followed[final], res.n[final])
        if uncapped:
            assert_array_equal(n_total, cd.randomized_n[stop])
    elif uncapped:
        assert_array_equal(n_total, cd.randomized_n[stop])
        assert_array_equal(res.n_followed.sum(axis=1), cd.followed_n[stop])
    else:
        assert (n_total <= cd.randomized_n[stop]).all()
        assert (res.n_followed.sum(axis=1) <= cd.followed_n[stop]).all()

    # --- statuses and stop reasons
    assert (sl <= stop[:, None]).all(), "a status set after the trial stopped"
    assert (sl[st == ACTIVE] == -1).all()
    assert (sl[np.isin(st, DROPPED + (SUPERIOR,))] >= 0).all()
    n_sup = (st == SUPERIOR).sum(axis=1)
    assert (n_sup <= 1).all(), "more than one superior arm"
    in_trial_end = np.isin(st, (ACTIVE, CONTROL, SUPERIOR))
    # every arm gone only when the trial stopped for equivalence (the remaining arms become EQUIVALENT)
    assert (in_trial_end.sum(axis=1) >= 1)[reason != STOP_EQUIVALENCE].all()
    assert (res.declared_superior[reason == STOP_SUPERIORITY].any(axis=1)).all()
    assert (n_sup[reason == STOP_SUPERIORITY] == 1).all()
    assert (n_sup[reason == STOP_MAX] == 0).all()
    assert (st[reason == STOP_EQUIVALENCE] == EQUIVALENT).any(axis=1).all()
    assert (in_trial_end[reason == STOP_ARMS_DROPPED].sum(axis=1) == 1).all()
    early_max = (reason == STOP_MAX) & (stop < j_looks - 1)
    if uncapped:
        assert not early_max.any()
    else:  # stopped early only because no arm could take patients
        still = np.isin(st, (ACTIVE, CONTROL))
        assert (res.n[early_max] >= np.where(still[early_max], cd.caps[None, :], 0)).all()
    if has_control:
        fc = res.final_control.astype(int)
        assert ((fc >= 0) & (fc < k)).all()
        assert np.isin(st[np.arange(t), fc], (CONTROL, SUPERIOR)).all(), "final control inferior/futile"
        assert (st == CONTROL).sum(axis=1).max() <= 1
        assert not res.declared_superior[:, cd.control].any(), "the initial control declared superior"
        sup_rows = np.flatnonzero(n_sup == 1)
        assert_array_equal((st[sup_rows] == SUPERIOR).argmax(axis=1), fc[sup_rows])
        # an arm that beat the control of the day became the control, or was later replaced itself
        assert np.isin(st[res.declared_superior], (CONTROL, SUPERIOR, INFERIOR)).all()
        changed = res.declared_superior.any(axis=1)
        assert (fc[~changed] == cd.control).all()
    else:
        assert (res.final_control == -1).all()
        assert (res.declared_superior.sum(axis=1) <= 1).all()
        assert_array_equal(res.declared_superior, st == SUPERIOR)
        assert_array_equal(res.declared_superior.any(axis=1), reason == STOP_SUPERIORITY)

    # --- final P(best): NaN exactly for dropped arms, a distribution over the others
    pb = res.prob_best
    gone = np.isin(st, (INFERIOR, FUTILE))
    assert_array_equal(np.isnan(pb), gone)
    kept = pb[~gone]
    assert np.isfinite(kept).all() and (kept >= 0).all() and (kept <= 1).all()
    np.testing.assert_allclose(np.nansum(pb, axis=1), 1.0, atol=1e-6)
    assert (res.post_lower <= res.post_mean).all() and (res.post_mean <= res.post_upper).all()

    # --- allocation history: rows defined exactly for the looks after which the trial went on
    ah = res.alloc_history.astype(float)
    defined = ~np.isnan(ah).any(axis=2)
    assert (np.isnan(ah).all(axis=2) | defined).all(), "partly-NaN allocation row"
    assert_array_equal(defined, np.arange(j_looks)[None, :] < stop[:, None])
    rows = ah[defined]
    assert (rows >= 0).all()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-6)
    dropped = _dropped_by_look(res, j_looks)
    assert (ah[dropped & defined[:, :, None]] == 0).all(), "allocation to a dropped arm"
    # the allocation recorded after the last look but one is the one the last batch was drawn with
    went_on = np.flatnonzero(stop >= 1)
    last_used = ah[went_on, stop[went_on] - 1]
    positive = last_used > 0
    np.testing.assert_allclose(res.final_alloc[went_on][positive], last_used[positive], rtol=0, atol=F32)

    # --- control share and allocation limits, where the control of the day is known (never changed)
    in_trial = ~dropped  # after each look's decisions; no arm is at its cap in designs with limits
    arm = np.arange(k)
    same_control = ~res.declared_superior.any(axis=1) if has_control else np.ones(t, dtype=bool)
    check = defined & same_control[:, None]
    is_ctrl = (arm == cd.control)[None, None, :] if cd.control_rule is not None else np.zeros((1, 1, k), bool)
    others = in_trial & ~is_ctrl
    n_other = others.sum(axis=2)
    share = _control_share(cd, n_other)
    if share is not None and uncapped:
        np.testing.assert_allclose(ah[..., cd.control][check], share[check], atol=1e-6)
    budget = 1.0 - share if share is not None else (np.ones(n_other.shape) if cd.control_rule is None else None)
    adaptive = cd.adaptive & (cd.followed_n >= cd.burn_in_n)[None, :]
    if not cd.adaptive or cd.burn_in_n > 0:  # before adaptation: the ratios (equal here) among the others
        fixed_rows = check & ~adaptive
        if budget is not None and uncapped and fixed_rows.any():
            w = np.where(others, cd.ratios[None, None, :], 0.0)
            total = w.sum(axis=2, keepdims=True)
            expect = np.divide(w, total, out=np.zeros_like(w), where=total > 0) * budget[..., None]
            np.testing.assert_allclose(np.where(others, ah, 0)[fixed_rows], expect[fixed_rows], atol=1e-6)
    if cd.adaptive and cd.has_limits:
        assert uncapped and budget is not None, "limits are only checked in uncapped designs with a known budget"
        factor = k / in_trial.sum(axis=2, keepdims=True) if cd.rescale_limits else np.ones((1, 1, 1))
        lower = np.minimum(cd.min_allocation * factor, 1.0)
        upper = np.minimum(cd.max_allocation * factor, 1.0)
        satisfiable = (np.where(others, lower, 0).sum(axis=2) <= budget + 1e-12) & (
            np.where(others, upper, 0).sum(axis=2) >= budget - 1e-12
        )
        rows = check & adaptive & satisfiable
        assert rows.any()
        tol = 1e-9 + F32
        mask = others & rows[..., None]
        low_bad = mask & (ah < lower - tol)
        high_bad = mask & (ah > upper + tol)
        if low_bad.any() or high_bad.any():
            ti, jj, kk = np.argwhere(low_bad | high_bad)[0]
            pytest.fail(
                f"{(low_bad | high_bad).sum()} allocations outside satisfiable limits; e.g. trial {ti} look {jj}: "
                f"alloc {ah[ti, jj]}, limits [{lower[min(ti, lower.shape[0] - 1), min(jj, lower.shape[1] - 1)]}, "
                f"{upper[min(ti, upper.shape[0] - 1), min(jj, upper.shape[1] - 1)]}], in trial {in_trial[ti, jj]}"
            )


ARMS4 = ["ctl", "a", "b", "c"]
LOOKS4 = {"randomized_n": [40, 80, 120, 160]}


def _variants():
    """(id, design dict, scenario dict, n_sims) for modified designs."""
    rates4 = {"ctl": 0.3, "a": 0.3, "b": 0.4, "c": 0.55}
    out = []
    out.append(
        (
            "no_control_equivalence_lower_is_better",
            make_design(
                ARMS4,
                direction="lower_is_better",
                looks={"randomized_n": [60, 90, 120, 150]},
                randomization={"method": "adaptive", "scheme": "simple", "softening": 0.7},
                superiority=0.95,
                inferiority=0.03,
                equivalence={"probability": 0.6, "margin": 0.15},
            ),
            make_scenario({"ctl": 0.3, "a": 0.35, "b": 0.3, "c": 0.2}),
            300,
        )
    )
    out.append(
        (
            "fixed_control_share_table_futility_softening_list",
            make_design(
                ARMS4,
                control="ctl",
                control_allocation={"rule": "fixed", "share": {3: 0.35, 2: 0.4, 1: 0.5}},
                looks=LOOKS4,
                randomization={"method": "adaptive", "scheme": "block", "softening": [0.2, 0.5, 1.0, 1.0]},
                superiority=0.97,
                inferiority=0.05,
                futility={"threshold": 0.2, "delta": 0.05, "only_first_control": True},
            ),
            make_scenario(rates4),
            300,
        )
    )
    out.append(
        (
            "match_best_thall_wathen_burn_in_lag_equivalence",
            make_design(
                ARMS4,
                control="ctl",
                control_allocation={"rule": "match_best"},
                looks={"randomized_n": [40, 70, 100, 140], "followed_n": [20, 50, 80, 140]},
                randomization={"method": "adaptive", "scheme": "simple", "softening": "thall_wathen", "burn_in_n": 40},
                superiority=0.97,
                inferiority=0.05,
                equivalence={"probability": 0.7, "margin": 0.15, "only_first_control": True},
            ),
            make_scenario(rates4),
            300,
        )
    )
    out.append(
        (
            "no_control_min_max_limits_rescaled",
            make_design(
                ARMS4,
                looks=LOOKS4,
                randomization={
                    "method": "adaptive",
                    "scheme": "simple",
                    "softening": 1.0,
                    "min_allocation": 0.1,
                    "max_allocation": 0.5,
                    "rescale_limits": True,
                },
                superiority=0.99,
                inferiority=0.02,
            ),
            make_scenario({"ctl": 0.2, "a": 0.2, "b": 0.2, "c": 0.5}),
            300,
        )
    )
    out.append(
        (
            "sqrt_k_min_limit_rescaled_burn_in",
            make_design(
                ARMS4,
                control="ctl",
                control_allocation={"rule": "sqrt_k"},
                looks=LOOKS4,
                randomization={
                    "method": "adaptive",
                    "scheme": "block",
                    "softening": 0.5,
                    "burn_in_n": 60,
                    "min_allocation": {"a": 0.15, "b": 0.15, "c": 0.15},
                    "rescale_limits": True,
                },
                superiority=0.97,
                inferiority=0.05,
                futility={"threshold": 0.1, "delta": 0.05},
            ),
            make_scenario(rates4),
            300,
        )
    )
    out.append(
        (
            "arm_caps_sqrt_k_lag",
            make_design(
                ARMS4,
                control="ctl",
                control_allocation={"rule": "sqrt_k"},
                caps={"a": 25, "b": 40, "c": 60},
                looks={"randomized_n": [40, 80, 120, 160], "followed_n": [30, 60, 100, 160]},
                randomization={"method": "adaptive", "scheme": "simple", "softening": 0.5},
                superiority=0.99,
                inferiority=0.01,
            ),
            make_scenario(rates4),
            300,
        )
    )
    out.append(
        (
            "arm_caps_fixed_block_no_control",
            make_design(
                ["a", "b", "c"],
                caps={"a": 20, "b": 30, "c": 30},
                looks={"randomized_n": [30, 60, 80]},
                superiority=0.9,
                inferiority=0.05,
            ),
            make_scenario({"a": 0.3, "b": 0.4, "c": 0.35}),
            300,
        )
    )
    out.append(
        (
            "fixed_ratios_simple_no_control",
            make_design(
                ["a", "b", "c"],
                looks={"randomized_n": [30, 60, 90]},
                randomization={"method": "fixed", "scheme": "simple", "ratios": {"a": 2, "b": 1, "c": 1}},
                superiority=0.9,
                inferiority=0.05,
            ),
            make_scenario({"a": 0.3, "b": 0.4, "c": 0.5}),
            300,
        )
    )
    out.append(
        (
            "fixed_block_control_competes_lag",
            make_design(
                ARMS4,
                control="ctl",
                looks={"randomized_n": [40, 80, 120], "followed_n": [20, 60, 120]},
                superiority=0.95,
                inferiority=0.05,
            ),
            make_scenario(rates4),
            300,
        )
    )
    return out


VARIANTS = _variants()
SHIPPED_PAIRS = [
    ("pioneer_rar", "pioneer_null", 300),
    ("pioneer_rar", "pioneer_alternative", 300),
    ("benchmark_four_arm", "benchmark_four_arm", 120),
]


@pytest.mark.parametrize("design,scenario,n_sims", SHIPPED_PAIRS, ids=[f"{d}-{s}" for d, s, _ in SHIPPED_PAIRS])
def test_invariants_shipped(design, scenario, n_sims):
    spec = Spec.load(design, scenario)
    check_invariants(spec, run(spec, n_sims, seed=2024, chunk_size=n_sims))


@pytest.mark.parametrize("name,design,scenario,n_sims", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_invariants_modified_designs(name, design, scenario, n_sims, build_spec):
    spec = build_spec(design, scenario)
    res = run(spec, n_sims, seed=99, chunk_size=n_sims)
    check_invariants(spec, res)
    assert (res.stop_look < spec.design.looks.n_looks - 1).any(), "no trial stopped early: rules not exercised"


def test_allocation_limits_hold_when_an_arm_hits_its_maximum_and_others_their_minimum(build_spec):
    """Limits [0.1, 0.5] on four arms are satisfiable (e.g. 0.5, 1/6, 1/6, 1/6). Regression: with
    P(best) = (0.97, 0.01, 0.01, 0.01) the iterative clipping at c00b8e9 fixed one arm at its maximum and
    the others at their minimum in the same round (total 0.8), and the final renormalization gave
    (0.625, 0.125, 0.125, 0.125)."""
    design = make_design(
        ARMS4,
        looks=LOOKS4,
        randomization={
            "method": "adaptive",
            "scheme": "simple",
            "softening": 1.0,
            "min_allocation": 0.1,
            "max_allocation": 0.5,
        },
        superiority=0.99,
        inferiority=0.02,
    )
    cd = build_spec(design, make_scenario({a: 0.3 for a in ARMS4})).compiled.rules
    pb = np.array([[0.97, 0.01, 0.01, 0.01]])
    everyone = np.ones((1, 4), dtype=bool)
    probs = allocation_probabilities(cd, 0, pb, everyone, everyone, np.array([-1]))
    assert probs.sum() == pytest.approx(1.0)
    assert (probs >= 0.1 - 1e-9).all() and (probs <= 0.5 + 1e-9).all(), probs


def test_adaptive_randomization_favours_the_better_arm():
    """pioneer_rar on pioneer_alternative: the truly better arm gets more patients than each null arm
    (paired per trial, by more than 4 MCSE of the mean difference)."""
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    res = run(spec, 300, seed=8, chunk_size=300)
    better = spec.design.arm_names.index("durva_oleclumab")
    for null_arm in ("durva_monalizumab", "durva_ceralasertib"):
        d = res.n[:, better] - res.n[:, spec.design.arm_names.index(null_arm)]
        assert d.mean() > Z * d.std(ddof=1) / np.sqrt(d.size), (null_arm, d.mean(), d.std(ddof=1))


# --------------------------------------------------------------------------- 6. null scenario symmetry


@pytest.mark.parametrize("with_control", [True, False], ids=["control", "no_control"])
def test_null_scenario_symmetric_arms_have_equal_superiority_rates(with_control, build_spec):
    n_sims = 600
    if with_control:
        design = make_design(
            ARMS4,
            control="ctl",
            control_allocation={"rule": "sqrt_k"},
            looks={"randomized_n": [40, 80, 120]},
            randomization={"method": "adaptive", "scheme": "block", "softening": 0.5},
            superiority=0.9,
            inferiority=0.1,
        )
        arms = ARMS4
    else:
        arms = ["a", "b", "c"]
        design = make_design(
            arms,
            looks={"randomized_n": [30, 60, 90]},
            randomization={"method": "adaptive", "scheme": "simple", "softening": 0.5},
            superiority=0.8,
            inferiority=0.1,
        )
    spec = build_spec(design, make_scenario({a: 0.4 for a in arms}))
    res = run(spec, n_sims, seed=555, chunk_size=300)
    comparators = slice(1, None) if with_control else slice(None)
    p = res.declared_superior[:, comparators].mean(axis=0)
    mean = p.mean()
    assert mean > 0.05  # enough declarations for the comparison to mean something
    # Var(p_k - mean) <= Var(p_k) for exchangeable arms, so the MCSE of one arm's rate is conservative.
    tol = Z * mcse(mean, n_sims)
    assert np.abs(p - mean).max() <= tol, f"P(declared superior) per arm {p}, mean {mean}, 4 MCSE {tol}"
    if with_control:
        assert not res.declared_superior[:, 0].any()


# --------------------------------------------------------------------------- 7. fixed randomization shares


@pytest.mark.parametrize(
    "scheme,ratios,control_share",
    [
        ("simple", None, None),
        ("block", None, None),
        ("block", {"a": 2, "b": 1, "c": 1}, None),
        ("simple", None, 0.4),
    ],
    ids=["simple_equal", "block_equal", "block_2_1_1", "simple_control_share_0.4"],
)
def test_fixed_randomization_mean_shares(scheme, ratios, control_share, build_spec):
    """One look only (decisions only at the end): the mean share of patients per arm equals the
    design's allocation, within 4 MCSE (from the simulated shares' standard deviation)."""
    arms = ["a", "b", "c"]
    n_patients, n_sims = 100, 400
    randomization = {"method": "fixed", "scheme": scheme, **({"ratios": ratios} if ratios else {})}
    extra = {}
    if control_share is not None:
        extra = {"control": "a", "control_allocation": {"rule": "fixed", "share": control_share}}
    design = make_design(
        arms,
        looks={"randomized_n": [n_patients]},
        randomization=randomization,
        superiority=0.99 if control_share else 0.9,
        inferiority=0.01,
        **extra,
    )
    spec = build_spec(design, make_scenario({a: 0.3 for a in arms}))
    res = run(spec, n_sims, seed=77, chunk_size=200)
    assert (res.n.sum(axis=1) == n_patients).all()
    share = res.n / n_patients
    if control_share is not None:
        expected = np.array([control_share, (1 - control_share) / 2, (1 - control_share) / 2])
    elif ratios:
        w = np.array([ratios[a] for a in arms], dtype=float)
        expected = w / w.sum()
    else:
        expected = np.full(3, 1 / 3)
    if scheme == "block":  # floor or ceiling of the expected count, never further
        assert (np.abs(res.n - n_patients * expected) < 1).all()
    se = share.std(axis=0, ddof=1) / np.sqrt(n_sims)  # 0 when every trial gets the same counts (2:1:1 of 100)
    assert (np.abs(share.mean(axis=0) - expected) <= Z * se + 1e-12).all(), (share.mean(axis=0), expected, se)
    if scheme == "simple" or ratios is None:
        assert (se > 0).all()
    np.testing.assert_allclose(res.final_alloc, np.broadcast_to(expected, res.final_alloc.shape), atol=1e-12)
