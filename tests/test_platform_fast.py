"""The calendar platform's shortcuts give, bit for bit, what the computations they replace give
(platform_sim/families/platform.py, docs/performance.md):

* the allocation after an analysis reads that analysis's tallies instead of tallying again;
* the graduation rule is evaluated only for the arms that can be decided, the effect at decision
  only for the arms decided, P(better) for the allocation only where the allocation reads it;
* P(hazard ratio below h) evaluates one incomplete beta function per element instead of two.

Every comparison is exact (``np.array_equal`` / equal bits), on random inputs with a fixed seed and
on whole simulated platforms.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import special

from platform_sim.config.load import parse_design
from platform_sim.config.population import expected_randomizable
from platform_sim.families import platform as timeline
from platform_sim.posterior.survival import prob_hr_below
from platform_sim.runner import run, run_chunk
from platform_sim.spec import Spec
from platform_sim.streams import Streams
from platform_sim.trace import Trace


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _pioneer(**platform) -> Spec:
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    if not platform:
        return spec
    d = spec.design.model_dump()
    for key, value in platform.items():
        d["platform"][key] = value
    return Spec.from_models(parse_design(d), spec.scenario)


def _binary(by: str) -> Spec:
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    d = spec.design.model_dump()
    d["endpoint"]["name"] = "orr"
    d["platform"]["hazard_prior"] = None
    d["prior"] = {"a": 1.0, "b": 1.0}
    d["platform"]["graduation"].update(by=by, graduate=0.99)
    return Spec.from_models(parse_design(d), spec.scenario)


# --------------------------------------------------------------------------- P(HR < h)


def _prob_hr_below_both_branches(a_k, b_k, a_c, b_c, h=1.0):
    """The previous evaluation: both incomplete beta functions everywhere, then a choice."""
    a_k, b_k, a_c, b_c, h = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a_k, b_k, a_c, b_c, h)))
    r = h * b_k / b_c
    with np.errstate(divide="ignore", invalid="ignore"):
        x = r / (1.0 + r)
        one_minus_x = 1.0 / (1.0 + r)
    low = r <= 1.0
    return np.where(
        low,
        special.betainc(a_k, a_c, np.where(low, x, 0.0)),
        special.betaincc(a_c, a_k, np.where(low, 0.5, one_minus_x)),
    )


def test_prob_hr_below_evaluates_one_branch_with_the_same_values():
    rng = np.random.default_rng(7)
    shape = (50, 6, 4)
    a_k, a_c = rng.uniform(0.5, 300.0, shape), rng.uniform(0.5, 300.0, shape)
    b_k = rng.uniform(1.0, 2000.0, shape)
    b_c = b_k * rng.choice([0.5, 1.0, 2.0, np.nextafter(1.0, 2.0)], shape)  # r on both sides of 1 and at 1
    for h in (1.0, 0.8, np.full(shape, 1.25)):
        assert _same(prob_hr_below(a_k, b_k, a_c, b_c, h), _prob_hr_below_both_branches(a_k, b_k, a_c, b_c, h))
    # scalars and edge values (a rate of 0 or infinity gives r = 0, inf or NaN)
    for args in ((3.0, 10.0, 4.0, 12.0), (3.0, 12.0, 4.0, 10.0), (2.0, 0.0, 2.0, 5.0), (2.0, np.inf, 2.0, 5.0)):
        got = prob_hr_below(*args)
        assert np.ndim(got) == 0 and _same(got, _prob_hr_below_both_branches(*args))
    with np.errstate(invalid="ignore"):
        edge = [np.array([2.0, 2.0]), np.array([np.inf, 0.0]), np.array([2.0, 2.0]), np.array([np.inf, 0.0])]
        assert _same(prob_hr_below(*edge), _prob_hr_below_both_branches(*edge))


# --------------------------------------------------------------------------- rule for live arms only


@pytest.mark.parametrize(
    "spec_of", [lambda: _pioneer(), lambda: _binary("posterior"), lambda: _binary("predictive")], ids=str
)
def test_success_and_effect_of_some_arms_equal_the_whole_computation(spec_of):
    pd = spec_of().compiled.arrays
    rng = np.random.default_rng(3)
    R, K, G = 40, pd.n_arms, pd.signatures.shape[0]
    n = rng.integers(0, 120, (R, K, G)).astype(float)
    y = np.floor(n * rng.uniform(0.0, 1.0, (R, K, G)))
    x = n * rng.uniform(0.0, 12.0, (R, K, G))
    cn = rng.integers(0, 120, (R, K, G)).astype(float)
    cy = np.floor(cn * rng.uniform(0.0, 1.0, (R, K, G)))
    cx = cn * rng.uniform(0.0, 12.0, (R, K, G))
    live = rng.uniform(size=(R, K)) < 0.5
    live[:, pd.control] = False
    whole = timeline._success(pd, n, y, x, cn, cy, cx)
    some = timeline._success_of(pd, live, n, y, x, cn, cy, cx)
    assert _same(some[live], whole[live])
    assert live.any() and (~live).any()
    r_idx, k_idx = np.nonzero(live)
    total = [v.sum(axis=2) for v in (n, y, x, cn, cy, cx)]
    assert _same(timeline._effect_of(pd, r_idx, k_idx, *total), timeline._effect(pd, *total)[r_idx, k_idx])


# --------------------------------------------------------------------------- whole platforms


def _checked_run(spec: Spec, n_sims: int, seed: int, monkeypatch) -> int:
    """Run ``spec`` checking that every allocation's tallies equal tallies computed afresh, and
    that the allocation probabilities equal those from P(better) computed in every cell."""
    checks = [0, 0]  # allocations checked, rows read from an analysis's tallies
    real_tallies_at, real_allocation = timeline._tallies_at, timeline._allocation

    def tallies_at(pd, st, pool, rows, t):
        if st.tallies is not None:
            a_rows, a_t = st.tallies[0], st.tallies[1]
            checks[1] += sum(1 for r, d in zip(rows, t) if r in a_rows and a_t[np.searchsorted(a_rows, r)] == d)
        got = real_tallies_at(pd, st, pool, rows, t)
        fresh = timeline._data(pd, st, pool, rows, t)
        for g, f in zip(got[0] + got[1] + [got[2]], fresh[0] + fresh[1] + [fresh[2]]):
            assert _same(g, f)
        checks[0] += 1
        return got

    def allocation(pd, st, rows, pool, t):
        got = real_allocation(pd, st, rows, pool, t)
        assert _same(got, _allocation_every_cell(pd, st, rows, pool, t))
        return got

    monkeypatch.setattr(timeline, "_tallies_at", tallies_at)
    monkeypatch.setattr(timeline, "_allocation", allocation)
    run(spec=spec, n_sims=n_sims, seed=seed)
    return checks


def _allocation_every_cell(pd, st, rows, pool, t):
    """The allocation as computed before: tallied afresh, P(better) in every cell."""
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    status = st.status[rows]
    open_ = status == timeline.OPEN
    open_[:, pd.control] = open_.any(axis=1)
    weights, adaptive = None, False
    if pd.adaptive and pool is not None:
        (n, y, x), (cn, cy, cx), seen = timeline._data(pd, st, pool, rows, t)
        adaptive_rows = seen >= pd.burn_in_n
        if adaptive_rows.any():
            adaptive = True
            a, b = timeline._posterior(pd, n, y, x)
            ac, bc = timeline._control_posterior(pd, cn, cy, cx)
            p = timeline._prob_better(pd, a, b, ac, bc)
            weights = np.nan_to_num(np.where(adaptive_rows[:, None, None], p, 0.5), nan=0.5)
    if pd.arm_in is not None:
        open_s = open_[:, None, :] & pd.arm_in.T[None, :, :]
        experimental = np.ones(K, dtype=bool)
        experimental[pd.control] = False
        open_s[:, :, pd.control] = open_s[:, :, experimental].any(axis=2)
        open_s = open_s.reshape(R * S, K)
    else:
        open_s = np.repeat(open_[:, None, :], S, axis=1).reshape(R * S, K)
    w = None if weights is None else np.transpose(weights, (0, 2, 1)).reshape(R * S, K)
    probs = timeline.allocate(pd, adaptive, pd.power, w, open_s, open_s, np.full(R * S, pd.control))
    return probs.reshape(R, S, K)


@pytest.mark.parametrize(
    "spec_of",
    [
        lambda: _pioneer(),
        lambda: _pioneer(controls="all"),
        lambda: _pioneer(interims={"every_enrolled": 60, "min_new_outcomes": 5}),
        lambda: _binary("posterior"),
    ],
    ids=["pioneer_platform", "all_controls", "every_enrolled", "binary"],
)
def test_allocations_read_the_same_tallies_and_probabilities(spec_of, monkeypatch):
    allocations, reused = _checked_run(spec_of(), 24, 5, monkeypatch)
    assert allocations > 5 and reused > 24


# --------------------------------------------------------------------------- resumed tallies


def _reference_tally(pd, st, pool, rows, t):
    """:func:`timeline._tally`, the full scan from the first patient, on fresh arrays."""
    R, K, S = rows.size, pd.n_arms, pd.n_strata
    out = [np.zeros((R, K, S)) for _ in range(6)]
    seen = np.zeros(R)
    closed = np.where(np.isnan(st.closed), np.inf, st.closed)
    opened = np.where(np.isnan(st.opened), np.inf, st.opened)
    timeline._tally(
        pool.arrive,
        pool.stratum,
        st.assigned,
        pool.outcomes,
        pool.dropout,
        pd.arm_treatment,
        pd.control,
        opened,
        closed,
        rows,
        t,
        pd.assess,
        pd.survival,
        pd.read_at,
        *out,
        seen,
    )
    return out, seen


@pytest.mark.parametrize(
    "spec_of",
    [
        lambda: _pioneer(),
        lambda: Spec.load("lungmap_platform", "lungmap_stk11_keap1"),
        lambda: _pioneer(interims={"every_observed": 40}),
        lambda: _pioneer(time_adjustment="stratified_by_period"),
        lambda: _binary("posterior"),
    ],
    ids=["pioneer_platform", "lungmap_platform", "every_observed", "by_period", "binary"],
)
def test_resumed_tallies_equal_the_full_scan_at_every_call(spec_of, monkeypatch):
    """Every tally of a run (interim, final, allocation and results) equals the full scan bit
    for bit, and the scans do resume past settled patients."""
    real = timeline._data
    resumed = [0, 0]  # calls, patients skipped

    def data(pd, st, pool, rows, t, concurrent=None):
        ref, ref_seen = _reference_tally(pd, st, pool, rows, t)
        skipped = np.where(t >= st.front_t[rows], st.front[rows], 0)
        arm, ctrl, seen = real(pd, st, pool, rows, t, concurrent)
        resumed[0] += 1
        resumed[1] += int(skipped.sum())
        assert _same(seen, ref_seen)
        assert all(_same(g, f) for g, f in zip(arm, ref[:3]))
        if concurrent is not False and (pd.concurrent if concurrent is None else concurrent):
            c_ref = ref[3:]
            if pd.arm_in is not None:
                c_ref = [v * pd.arm_in[None] for v in c_ref]
            assert all(_same(g, f) for g, f in zip(ctrl, c_ref))
        return arm, ctrl, seen

    monkeypatch.setattr(timeline, "_data", data)
    run(spec=spec_of(), n_sims=16, seed=2)
    assert resumed[0] > 5 and resumed[1] > 0


@pytest.mark.parametrize("with_substudies", [False, True])
@pytest.mark.parametrize("n_trials", [1, 7])
def test_control_windows_equal_the_array_expression(with_substudies, n_trials):
    rng = np.random.default_rng(11)
    T, N, K, S = n_trials, 50, 4, 3
    arrive = np.sort(rng.uniform(0.0, 30.0, (T, N)), axis=1)
    opened = np.where(rng.uniform(size=(T, K)) < 0.2, np.inf, rng.uniform(0.0, 15.0, (T, K)))
    closed = np.where(rng.uniform(size=(T, K)) < 0.3, np.inf, opened + rng.uniform(0.0, 20.0, (T, K)))
    opened[0, 0], closed[0, 1] = arrive[0, 3], arrive[0, 9]  # boundaries on a patient's date
    stratum = rng.integers(-1, S, (T, N)).astype(np.int16)
    arm_in = rng.uniform(size=(K, S)) < 0.6
    a = arrive[:, :, None]
    want = (a >= opened[:, None, :]) & (a <= closed[:, None, :])
    include = np.empty((T, N, K), dtype=bool)
    same = np.empty((T, N, K) if with_substudies else (1, 1, K), dtype=bool)
    timeline._control_windows(arrive, opened, closed, stratum, with_substudies, arm_in, include, same)
    if with_substudies:
        want_same = arm_in.T[np.maximum(stratum, 0)] & (stratum >= 0)[:, :, None]
        assert np.array_equal(same, want_same)
        want = want & want_same
    assert np.array_equal(include, want)


def test_in_order_gathers_what_advanced_indexing_gathers():
    rng = np.random.default_rng(5)
    T, N = 6, 40
    order = np.argsort(rng.uniform(size=(T, N)), axis=1, kind="stable")
    rows = np.arange(T)[:, None]
    for values in (
        rng.uniform(size=(T, N)),
        rng.integers(-1, 4, (T, N)).astype(np.int16),
        rng.integers(0, 1000, (T, 2 * N))[:, ::2],  # not contiguous
        rng.uniform(size=(T, N, 5)).astype(np.float32),
        (rng.uniform(size=(T, N, 3)) < 0.5).astype(np.float32),
    ):
        got = timeline._in_order(values, order)
        assert got.dtype == values.dtype and got.flags["C_CONTIGUOUS"]
        assert np.array_equal(got, values[rows, order])


@pytest.mark.parametrize(
    "spec_of",
    [lambda: _pioneer(), lambda: Spec.load("lungmap_platform", "lungmap_null"), lambda: _binary("posterior")],
    ids=["pioneer_platform", "lungmap_platform", "binary"],
)
def test_results_read_the_final_analyses_tallies_unchanged(spec_of, monkeypatch):
    """The results' tallies at each trial's end equal a fresh tally, bit for bit, and most trials
    take them from their final analysis."""
    real = timeline._final_data
    reused = []

    def final_data(pd, st, pool, t):
        got = real(pd, st, pool, t)
        fresh = timeline._data(pd, st, pool, np.arange(t.size), t)[:2]
        assert all(_same(g, f) for g, f in zip(got[0] + got[1], fresh[0] + fresh[1]))
        reused.append(0 if st.final_tallies is None else int((st.final_tallies[0] == t).sum()))
        return got

    monkeypatch.setattr(timeline, "_final_data", final_data)
    run(spec=spec_of(), n_sims=16, seed=4)
    assert sum(reused) > 0


def test_an_arm_opened_on_the_analysis_date_is_tallied_again():
    """A control patient randomized exactly on the date of an analysis counts as a concurrent control
    of an arm opened on that date after the analysis: the allocation's tallies for that trial
    are computed afresh, not read from the analysis (whose tallies lack that patient)."""
    pd = _pioneer().compiled.arrays
    c = pd.control
    arrive = np.array([[0.5, 1.0, 1.5, 2.0, 3.0, 4.0]])
    pool = timeline.PlatformPool(
        arrive=arrive,
        stratum=np.zeros((1, 6), dtype=np.int16),
        u=np.full((1, 6), 0.5),
        outcomes=np.full((1, 6, len(pd.treatments)), 0.2, dtype=np.float32),  # progression at the first visit
        dropout=np.full((1, 6), np.inf),
    )
    st = timeline._State(pd, pool)
    st.assigned[0] = [c, 1, c, 1, c, -1]  # the control patient randomized at month 3.0 exactly
    st.opened[0, [c, 1]] = 0.0
    rows, t = np.array([0]), np.array([3.0])
    arm, ctrl, seen = timeline._data(pd, st, pool, rows, t)
    st.tallies = (rows, t, arm, ctrl, seen)  # as the analysis on month 3 leaves them
    st.opened[0, 2] = 3.0  # arm 2 opens on the analysis date
    got = timeline._tallies_at(pd, st, pool, rows, t)
    fresh = timeline._data(pd, st, pool, rows, t)
    assert all(_same(g, f) for g, f in zip(got[0] + got[1], fresh[0] + fresh[1]))
    assert fresh[1][0][0, 2].sum() == 1.0 and ctrl[0][0, 2].sum() == 0.0  # the patient at month 3.0
    # without the new arm, the analysis's tallies are read as they are
    st.opened[0, 2] = np.nan
    st.tallies = (rows, t, arm, ctrl, seen)
    again = timeline._tallies_at(pd, st, pool, rows, t)
    assert all(g is not None and _same(g, f) for g, f in zip(again[0] + again[1], arm + ctrl))


# --------------------------------------------------------------------------- patients enough, in steps


def _same_results(one, two) -> bool:
    """Every field of two TrialResults equal, bit for bit (NaN equal to NaN)."""
    for f in dataclasses.fields(one):
        x, y = getattr(one, f.name), getattr(two, f.name)
        if isinstance(x, dict):
            if x.keys() != y.keys() or not all(
                np.array_equal(x[k], y[k], equal_nan=np.asarray(x[k]).dtype.kind in "fc") for k in x
            ):
                return False
        elif isinstance(x, np.ndarray):
            if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(
    "spec_of", [lambda: _pioneer(), lambda: Spec.load("lungmap_platform", "lungmap_stk11_keap1")], ids=str
)
def test_results_do_not_depend_on_the_first_guess_of_patients(spec_of, monkeypatch):
    """A first guess of each trial's randomizable patients far too low takes several steps, each
    drawing only the next patients, until every trial's last one arrives after the maximum duration;
    the results are those of the usual guess, bit for bit, and so are a traced trial's, whose batch
    draws its patients again at each step."""
    spec = spec_of()
    pd_ = spec.compiled.arrays
    streams = Streams(5).for_trials(np.arange(40))
    real = timeline._enrolled_past
    sizes = []

    def enrolled_past(*args, **kwargs):
        enrolled = real(*args, **kwargs)
        sizes.append(enrolled.outcomes.shape[1])
        assert (enrolled.last_arrival > pd_.max_duration).all()
        return enrolled

    monkeypatch.setattr(timeline, "_enrolled_past", enrolled_past)
    usual = run_chunk(spec, streams)
    monkeypatch.setattr(timeline, "_GUESS_SDS", -12.0)
    low = run_chunk(spec, streams)
    assert _same_results(usual, low)
    expected = expected_randomizable(spec.scenario.population, pd_.max_duration, spec.compiled.needs_biomarker_result)
    assert sizes[1] > math.ceil(expected - 12.0 * math.sqrt(expected)) + 16  # it took steps
    traced = []
    for sds in (3.0, -12.0):
        monkeypatch.setattr(timeline, "_GUESS_SDS", sds)
        traced.append(spec.family.simulate(spec.compiled, Streams(5).for_trials([3]), Trace(0)))
    assert _same_results(traced[0], traced[1])
    assert _same_results(traced[0], run_chunk(spec, Streams(5).for_trials([3])))
