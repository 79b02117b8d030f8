"""Virtual patients: arrival in calendar time, baseline profile and the screening funnel.

Patients are generated for a batch of simulated trials at once, in *blocks* of
:data:`BLOCK` screened patients per trial. Every quantity of patient ``i`` of
trial ``t`` is a uniform of :mod:`platform_sim.streams` keyed by the seed, the
trial, the quantity's name (``"marker:kras"``, ``"screening:tissue"``...) and ``i``. So:

* patient ``i`` of trial ``t`` is the same whatever design asks for it, however
  many patients that design needs, and whatever other trials run beside it
  (common random numbers);
* adding a marker or a treatment to a scenario leaves every other quantity of
  every patient unchanged.

Arrays are ``(T, N)``: trial by screened patient, in order of arrival; the
profile adds a last axis over characteristics (region, markers, derived markers).
Times are in months (:data:`DAYS_PER_MONTH` days), turnaround times in days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .config.population import REGION, Population, expected_funnel, screening_paths
from .streams import PATIENTS, TrialStreams, fill_row, quantity_id

BLOCK = 256
DAYS_PER_MONTH = 365.25 / 12
MISSING = -1

# Why a screened patient was or was not randomized.
RANDOMIZED = 0
SCREEN_FAILURE = 1  # no biomarker result: tissue failed and no plasma result
LOST_WAITING = 2  # progressed, deteriorated or died while waiting for results
INELIGIBLE = 3
NOT_SUBMITTED = 4  # no tissue submitted for testing
NOT_ASSIGNED = 5  # a biomarker result, but no assignment
DECLINED = 6  # would be randomized, but does not register
REASON_NAMES = (
    "randomized",
    "screen_failure",
    "lost_while_waiting",
    "ineligible",
    "not_submitted",
    "not_assigned",
    "declined",
)


@dataclass
class Cohort:
    """Screened patients of ``T`` trials (``N`` per trial, in order of arrival)."""

    arrival: np.ndarray  # (T, N) float64, months since the platform opened
    profile: np.ndarray  # (T, N, C) int8, true level index of each characteristic
    observed: np.ndarray  # (T, N, C) int8, level reported by screening, MISSING without a result
    wait_days: np.ndarray  # (T, N) float32, days from arrival to the last screening result
    reason: np.ndarray  # (T, N) int8, RANDOMIZED / SCREEN_FAILURE / LOST_WAITING / INELIGIBLE

    @property
    def randomized_at(self) -> np.ndarray:
        """Calendar time (months) at which the patient is ready to be randomized."""
        return self.arrival + self.wait_days / DAYS_PER_MONTH

    @classmethod
    def concatenate(cls, parts: list["Cohort"], axis: int = 1) -> "Cohort":
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts], axis=axis) for f in fields(cls)})


@dataclass(frozen=True)
class _MarkerPlan:
    name: str
    parents: tuple[int, ...]  # characteristic indices
    strides: tuple[int, ...]
    cumulative: np.ndarray  # (rows, L-1) cumulative probabilities of all but the last level
    tissue: tuple[float, float, float] | None  # sensitivity, specificity, failure
    liquid: tuple[float, float, float] | None


class PopulationModel:
    """A :class:`~platform_sim.config.population.Population` made ready to draw patients."""

    def __init__(self, population: Population):
        self.config = population
        acc = population.accrual
        self.has_regions = acc.regions is not None
        regions = acc.region_list
        self.region_names = list(regions)
        self._rate = np.array([r.rate_per_month for r in regions.values()])
        self._ramp = np.array([r.ramp_up_months for r in regions.values()])
        self._start = np.array([r.start_month for r in regions.values()])
        self._build_intensity()

        self.names: list[str] = (
            ([REGION] if self.has_regions else []) + list(population.markers) + list(population.derived)
        )
        self.levels: list[list[str]] = [
            population.levels()[n] if n != REGION else self.region_names for n in self.names
        ]
        self.index = {n: i for i, n in enumerate(self.names)}
        self._plans: list[_MarkerPlan] = []
        for name, m in population.markers.items():
            parents = tuple(self.index[g] for g in m.given)
            sizes = [len(self.levels[p]) for p in parents]
            strides = tuple(int(np.prod(sizes[i + 1 :], dtype=np.int64)) for i in range(len(sizes)))
            rows, _ = m.table([self.levels[p] for p in parents])
            cum = np.cumsum(np.asarray(rows, dtype=float), axis=1)[:, :-1]
            acc_t = None if m.tissue is None else (m.tissue.sensitivity, m.tissue.specificity, m.tissue.failure)
            acc_l = None if m.liquid is None else (m.liquid.sensitivity, m.liquid.specificity, m.liquid.failure)
            self._plans.append(_MarkerPlan(name, parents, strides, cum, acc_t, acc_l))
        self._pack_markers()
        self._derived = []  # (index, any_of?, [(marker index, mask of levels that count)])
        for name, d in population.derived.items():
            conds = [(self.index[m], self._level_mask(m, lv)) for m, lv in d.conditions]
            self._derived.append((self.index[name], d.any_of is not None, conds))
        self._pack_derived()

    def _pack_derived(self) -> None:
        """The derived markers' conditions as arrays for :func:`_derive_kernel`: their columns, and
        their level masks padded with False."""
        self._derived_packed = []
        for _, _, conds in self._derived:
            masks = np.zeros((len(conds), max(len(mask) for _, mask in conds)), dtype=np.bool_)
            for q, (_, mask) in enumerate(conds):
                masks[q, : len(mask)] = mask
            self._derived_packed.append((np.array([m for m, _ in conds], dtype=np.int64), masks))

    def _pack_markers(self) -> None:
        """The marker plans as padded arrays for the compiled kernels: per marker its column, parents
        and strides (padded with 0), its conditional cumulative table (padded with +inf, which no
        uniform reaches), and per characteristic its assays' sensitivity, specificity and failure."""
        n = len(self._plans)
        n_par = max([len(p.parents) for p in self._plans], default=0)
        n_rows = max([p.cumulative.shape[0] for p in self._plans], default=1)
        n_cuts = max([p.cumulative.shape[1] for p in self._plans], default=0)
        self._column = np.array([self.index[p.name] for p in self._plans], dtype=np.int64)
        self._n_parents = np.array([len(p.parents) for p in self._plans], dtype=np.int64)
        self._parents = np.zeros((n, max(n_par, 1)), dtype=np.int64)
        self._strides = np.zeros((n, max(n_par, 1)), dtype=np.int64)
        self._cuts = np.full((n, n_rows, max(n_cuts, 1)), np.inf)
        self._n_cuts = np.array([p.cumulative.shape[1] for p in self._plans], dtype=np.int64)
        for m, p in enumerate(self._plans):
            self._parents[m, : len(p.parents)] = p.parents
            self._strides[m, : len(p.strides)] = p.strides
            self._cuts[m, : p.cumulative.shape[0], : p.cumulative.shape[1]] = p.cumulative

    def _level_mask(self, marker: str, levels: list[str] | None) -> np.ndarray:
        lv = self.levels[self.index[marker]]
        wanted = [lv[-1]] if levels is None else levels
        return np.array([x in wanted for x in lv])

    # ------------------------------------------------------------------ arrivals

    def _build_intensity(self) -> None:
        """Piecewise-linear total accrual rate lambda(t) and its integral, for exact inversion."""
        knots = sorted({0.0, *self._start.tolist(), *(self._start + self._ramp).tolist()})
        t = np.array(knots)
        alpha = np.array([self._rates_at(x).sum() for x in t])  # rate at the start of each piece
        beta = np.zeros_like(t)  # slope within each piece
        for r in range(self._rate.size):
            if self._ramp[r] > 0:
                inside = (t >= self._start[r]) & (t < self._start[r] + self._ramp[r])
                beta[inside] += self._rate[r] / self._ramp[r]
        widths = np.diff(t)
        cum = np.concatenate([[0.0], np.cumsum(alpha[:-1] * widths + 0.5 * beta[:-1] * widths**2)])
        self._knots, self._alpha, self._beta, self._cum = t, alpha, beta, cum

    def _rates_at(self, t):
        """Per-region accrual rate at time(s) t, shape t.shape + (regions,)."""
        t = np.asarray(t, dtype=float)[..., None]
        ramp = np.where(
            self._ramp > 0, np.clip((t - self._start) / np.where(self._ramp > 0, self._ramp, 1.0), 0, 1), 1.0
        )
        return np.where(t >= self._start, self._rate * ramp, 0.0)

    def arrival_times(self, cumulative_events: np.ndarray, reference: bool = False) -> np.ndarray:
        """Invert the integrated accrual rate: the times of unit-rate Poisson events (by a compiled
        pass, :func:`_invert_accrual`; ``reference=True``: by the numpy passes it replaces, the
        same operations on the same values)."""
        if self._knots.size == 1:  # constant rate from time 0
            return cumulative_events / self._alpha[0]
        if not reference:
            events = np.require(cumulative_events, np.float64, ["C"])
            out = np.empty_like(events)
            _invert_accrual(self._knots, self._alpha, self._beta, self._cum, events.reshape(-1), out.reshape(-1))
            return out
        j = np.searchsorted(self._cum, cumulative_events, side="right") - 1
        c = cumulative_events - self._cum[j]
        a, b = self._alpha[j], self._beta[j]
        disc = np.sqrt(a * a + 2.0 * b * c)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(a + disc > 0, 2.0 * c / (a + disc), 0.0)
        return self._knots[j] + x

    @property
    def steady_region_shares(self) -> np.ndarray:
        return self._rate / self._rate.sum()

    # ------------------------------------------------------------------ drawing

    def block(
        self,
        ts: TrialStreams,
        b: int,
        carry: np.ndarray,
        times: bool = True,
        needed: set[str] | None = None,
        reported: set[str] | None = None,
        biomarker_result: bool = True,
        still_needed: np.ndarray | None = None,
        reference: bool = False,
        blocks: int = 1,
    ) -> tuple[Cohort, np.ndarray]:
        """Block ``b`` of screened patients for the trials of ``ts``; ``carry`` is the integrated accrual
        reached by the previous block (zeros for the first) and is returned updated.

        ``needed``: the characteristics to draw (with :meth:`closure`; all when None); the others
        are left MISSING. ``reported``: the characteristics whose screening result is needed
        (with their closure; all needed ones when None); the others are MISSING when reported.
        ``times=False`` leaves arrival times out (NaN) unless a needed region depends on them.
        ``biomarker_result``: whether the design waits for a biomarker result before randomizing;
        without (an all-comer design) no assay is run: nobody fails it, waits or is lost waiting,
        only clinical ineligibility applies, and characteristics measured by an assay are MISSING.
        Each quantity has its own stream, so what is drawn does not change the values of what is
        drawn.

        ``still_needed`` (T,): randomizable patients each trial still needs. The screening funnel
        (who is randomizable) depends on no characteristic, so it is drawn first; when every trial
        finds what it needs within the first ``m < BLOCK`` patients of the block, the block is cut
        to those ``m`` patients before the characteristics, screening results and (by the caller)
        potential outcomes are drawn: each is a function of the patient's position, so the ``m``
        patients are the same as the first ``m`` of a whole block.

        ``blocks``: draw blocks ``b .. b + blocks - 1`` at once, as one block of ``blocks * BLOCK``
        patients (the same patients, since each quantity is a function of the patient's position;
        fewer calls when the batch holds few trials).

        Markers, assay results and the running sums of the arrival process are computed by
        compiled kernels in one pass over the block; ``reference=True`` computes them with the numpy
        passes they replace (the same comparisons of the same uniforms and the same sums in the same
        order, so the same values: kept to test against)."""
        n_trials = ts.n_trials
        first = b * BLOCK
        span = blocks * BLOCK

        def uniform(name, n=span):
            return ts.uniform(PATIENTS, name, first, n)

        needed = self.closure(needed)
        with_region = self.has_regions and REGION in needed
        if times or with_region:
            gaps = -np.log(uniform("arrival"))
            # the accrual reached at each patient: compiled (numpy's cumsum along rows is ~6 ns a value)
            if reference:
                runs = []
                for j0 in range(0, span, BLOCK):
                    runs.append(carry[:, None] + np.cumsum(gaps[:, j0 : j0 + BLOCK], axis=1))
                    carry = runs[-1][:, -1]
                events = np.concatenate(runs, axis=1)
            else:
                events = _running_sums(np.require(carry, np.float64, ["C", "W"]), gaps, BLOCK)
            arrival, carry = self.arrival_times(events, reference=reference), events[:, -1]
        else:
            arrival = np.full((n_trials, span), np.nan)
        funnel = self._funnel(uniform, (n_trials, span), biomarker_result)
        width = span if still_needed is None else _patients_needed(funnel[0], np.asarray(still_needed, dtype=np.int64))
        if width < span:
            arrival = arrival[:, :width]
            funnel = tuple(x[:, :width] for x in funnel)
            full_uniform = uniform

            def uniform(name, n=width):
                return full_uniform(name, n)

        shape = (n_trials, width)
        n_char = len(self.names)
        profile = np.full(shape + (n_char,), MISSING, dtype=np.int8)
        if with_region:
            share = self._rates_at(arrival)
            share /= share.sum(axis=-1, keepdims=True)
            u = uniform("region")
            profile[..., 0] = (u[..., None] > np.cumsum(share, axis=-1)[..., :-1]).sum(axis=-1)
        if reference:
            self._markers_reference(uniform, profile, shape, needed)
        else:
            drawn = np.array([m for m, plan in enumerate(self._plans) if plan.name in needed], dtype=np.int64)
            k0, k1 = ts.key
            _draw_markers(
                profile,
                np.uint64(k0),
                np.uint64(k1),
                np.array([quantity_id(f"marker:{self._plans[m].name}") for m in drawn], dtype=np.uint64),
                ts.trials,
                int(first),
                drawn,
                self._column,
                self._parents,
                self._strides,
                self._n_parents,
                self._cuts,
                self._n_cuts,
            )
        self._derive(profile, profile, needed=needed, reference=reference)

        reported = needed if reported is None else self.closure(reported) & needed
        if reference:
            observed = self._screen(uniform, profile, shape, reported, biomarker_result, funnel)
        else:
            observed = self._screen_fast(ts, first, width, profile, reported, biomarker_result, funnel)
        reason, wait = funnel[0], funnel[1]
        return Cohort(arrival, profile, observed, wait, reason), carry

    def _markers_reference(self, uniform, profile, shape, needed) -> None:
        """The needed markers of a block by numpy passes, marker by marker (the reference of
        :func:`_draw_markers`)."""
        for plan in self._plans:
            if plan.name not in needed:
                continue
            row = np.zeros(shape, dtype=np.int64)
            for p, s in zip(plan.parents, plan.strides):
                row += profile[..., p].astype(np.int64) * s
            u = uniform(f"marker:{plan.name}")
            cum = plan.cumulative[row]
            profile[..., self.index[plan.name]] = (u[..., None] >= cum).sum(axis=-1, dtype=np.int8)

    def _screen_fast(self, ts, first, width, profile, reported, biomarker_result, funnel) -> np.ndarray:
        """:meth:`_screen` by one compiled pass over the block (the same values)."""
        _, _, tissue_ok, liquid_ok = funnel
        n_char = len(self.names)
        # per characteristic: 0 not reported (MISSING), 1 known at screening, 2 measured by an assay
        how = np.zeros(n_char, dtype=np.int64)
        for name in reported:
            how[self.index[name]] = 1
        assayed = [
            m
            for m, plan in enumerate(self._plans)
            if plan.name in reported and (plan.tissue is not None or plan.liquid is not None)
        ]
        slot = np.full(n_char, -1, dtype=np.int64)
        accuracy = np.zeros((max(len(assayed), 1), 2, 3))
        present = np.zeros((max(len(assayed), 1), 2), dtype=np.bool_)
        binary = np.zeros(n_char, dtype=np.bool_)
        q_call = np.zeros((max(len(assayed), 1), 2), dtype=np.uint64)
        q_fail = np.zeros((max(len(assayed), 1), 2), dtype=np.uint64)
        for j, m in enumerate(assayed):
            plan = self._plans[m]
            i = self.index[plan.name]
            how[i] = 2 if biomarker_result else 0  # no assay was run: no result
            slot[i] = j
            binary[i] = len(self.levels[i]) == 2
            if not biomarker_result:
                continue
            for a, assay in enumerate(("tissue", "liquid")):
                acc = getattr(plan, assay)
                if acc is None:
                    continue
                present[j, a] = True
                accuracy[j, a] = acc
                q_call[j, a] = quantity_id(f"assay:{assay}:{plan.name}")
                q_fail[j, a] = quantity_id(f"assay_failure:{assay}:{plan.name}")
        observed = np.empty_like(profile)
        k0, k1 = ts.key
        _screen_block(
            observed,
            profile,
            how,
            slot,
            binary,
            present,
            accuracy,
            np.uint64(k0),
            np.uint64(k1),
            q_call,
            q_fail,
            ts.trials,
            int(first),
            tissue_ok,
            liquid_ok,
        )
        self._derive(observed, observed, observed=True, needed=reported)
        return observed

    def _derive(
        self, source: np.ndarray, out: np.ndarray, observed: bool = False, needed=None, reference: bool = False
    ) -> None:
        """Fill the derived characteristics of ``out`` from the markers in ``source``, in order (a
        derived marker may read one derived before it). On observed profiles a derived marker is
        missing when the known conditions cannot decide it. Profiles of int8 codes in C order go
        through :func:`_derive_kernel`, one compiled pass per derived marker; ``reference=True`` (and
        any other array) takes numpy passes over whole columns, which give the same codes."""
        compiled = (
            not reference
            and source.dtype == np.int8
            and out.dtype == np.int8
            and source.shape == out.shape
            and source.flags.c_contiguous
            and out.flags.c_contiguous
        )
        for (idx, any_of, conds), (columns, masks) in zip(self._derived, self._derived_packed):
            if needed is not None and self.names[idx] not in needed:
                continue
            if compiled:
                n_char = source.shape[-1]
                _derive_kernel(
                    source.reshape(-1, n_char), out.reshape(-1, n_char), idx, any_of, columns, masks, observed
                )
                continue
            hits, unknown = [], []
            for m, mask in conds:
                code = source[..., m]
                miss = code < 0
                hits.append(mask[np.where(miss, 0, code)] & ~miss)
                unknown.append(miss)
            hit, unk = np.array(hits), np.array(unknown)
            if any_of:
                value = hit.any(axis=0).astype(np.int8)
                undecided = ~hit.any(axis=0) & unk.any(axis=0)
            else:
                value = hit.all(axis=0).astype(np.int8)
                undecided = unk.any(axis=0) & ~(~hit & ~unk).any(axis=0)
            out[..., idx] = np.where(undecided, MISSING, value) if observed else value

    def _funnel(self, uniform, shape, biomarker_result: bool = True):
        """Reasons (RANDOMIZED or why not), waits (days) and which assay gave a result, for a block:
        ``(reason, wait, tissue_ok, liquid_ok)``. Without ``biomarker_result`` the assay streams are
        not read: the other quantities keep their values."""
        sc = self.config.screening
        reason = np.full(shape, RANDOMIZED, dtype=np.int8)
        wait = np.zeros(shape, dtype=np.float32)
        tissue_ok = np.zeros(shape, dtype=bool)
        liquid_ok = np.zeros(shape, dtype=bool)
        if sc.tissue is not None and biomarker_result:
            tissue_ok = uniform("screening:tissue") >= sc.tissue.failure
            wait += _turnaround(uniform, "screening:tissue_days", sc.tissue.turnaround, shape)
            if sc.liquid is not None:
                liquid_ok = ~tissue_ok & (uniform("screening:liquid") < sc.liquid.detectable)
                wait += np.where(
                    tissue_ok,
                    0.0,
                    _turnaround(uniform, "screening:liquid_days", sc.liquid.turnaround, shape, ~tissue_ok),
                )
            reason[~tissue_ok & ~liquid_ok] = SCREEN_FAILURE
        if sc.loss_hazard_per_day > 0 and biomarker_result:
            lost = uniform("screening:loss") < -np.expm1(-sc.loss_hazard_per_day * wait)
            reason[lost] = LOST_WAITING
        tissue = sc.tissue if biomarker_result else None
        if tissue is not None and tissue.not_submitted > 0:  # no sample: no assay, no wait, no result
            none = uniform("screening:not_submitted") < tissue.not_submitted
            reason[none] = NOT_SUBMITTED
            tissue_ok &= ~none
            liquid_ok &= ~none
        if sc.ineligible > 0:
            reason[uniform("screening:eligibility") < sc.ineligible] = INELIGIBLE
        # after the result: steps that stop only patients still on their way to randomization
        if tissue is not None and sc.not_assigned > 0:
            reason[(reason == RANDOMIZED) & (uniform("screening:not_assigned") < sc.not_assigned)] = NOT_ASSIGNED
        if sc.declined > 0:
            reason[(reason == RANDOMIZED) & (uniform("screening:declined") < sc.declined)] = DECLINED
        return reason, wait, tissue_ok, liquid_ok

    def _screen(self, uniform, profile, shape, needed, biomarker_result, funnel):
        """Screening results of a block: the observed profile (``funnel``: from :meth:`_funnel`)."""
        _, _, tissue_ok, liquid_ok = funnel
        observed = np.where(
            np.isin(np.arange(len(self.names)), [self.index[n] for n in needed]), profile, np.int8(MISSING)
        )
        for plan in self._plans:
            if (plan.tissue is None and plan.liquid is None) or plan.name not in needed:
                continue  # clinical characteristic (known), or not asked for
            i = self.index[plan.name]
            call = np.full(shape, MISSING, dtype=np.int8)
            if not biomarker_result:  # no assay was run
                observed[..., i] = call
                continue
            for assay, ok in (("tissue", tissue_ok), ("liquid", liquid_ok)):
                acc = getattr(plan, assay)
                if acc is None:
                    continue
                sens, spec, fail = acc
                u_call = uniform(f"assay:{assay}:{plan.name}")
                u_fail = uniform(f"assay_failure:{assay}:{plan.name}")
                truth = profile[..., i]
                if len(self.levels[i]) == 2:
                    positive = np.where(truth == 1, u_call < sens, u_call >= spec)
                    value = positive.astype(np.int8)
                else:
                    value = truth
                use = ok & (u_fail >= fail)
                call = np.where(use, value, call)
            observed[..., i] = call
        self._derive(observed, observed, observed=True, needed=needed, reference=True)
        return observed

    def cohort(self, ts: TrialStreams, n_patients: int, biomarker_result: bool = True) -> Cohort:
        """The first ``n_patients`` screened patients (rounded up to whole blocks) of the trials of ``ts``
        (``biomarker_result`` as in :meth:`block`)."""
        carry = np.zeros(ts.n_trials)
        parts = []
        for b in range(math.ceil(n_patients / BLOCK)):
            part, carry = self.block(ts, b, carry, biomarker_result=biomarker_result)
            parts.append(part)
        return Cohort.concatenate(parts)

    # ------------------------------------------------------------------ exact distribution

    def needs_assay(self, names: list[str] | tuple[str, ...] | set[str]) -> bool:
        """Whether reporting ``names`` (with everything they are derived from) needs an assay: some
        marker among them is measured on tissue or in plasma. A design that classifies patients by
        such a characteristic waits for a biomarker result before randomizing them; clinical
        characteristics (history, histology, ECOG, region) are known at screening."""
        wanted = self.closure(set(names)) if names else set()
        return any(plan.name in wanted and (plan.tissue is not None or plan.liquid is not None) for plan in self._plans)

    def closure(self, names: list[str] | set[str] | None) -> set[str]:
        """``names`` (all when None) with everything they are drawn from: parents in the conditional
        tables and the inputs of derived markers."""
        needed = set(self.index if names is None else names)
        changed = True
        while changed:
            changed = False
            for plan in self._plans:
                if plan.name in needed:
                    for p in plan.parents:
                        if self.names[p] not in needed:
                            needed.add(self.names[p])
                            changed = True
            for idx, _, conds in self._derived:
                if self.names[idx] in needed:
                    for m, _mask in conds:
                        if self.names[m] not in needed:
                            needed.add(self.names[m])
                            changed = True
        return needed

    def distribution(self, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The exact joint distribution of the characteristics ``names`` (all when None): every
        combination of levels with positive probability, as codes ``(S, C)`` over all
        characteristics (those not needed by ``names`` are 0, meaningless) and probabilities ``(S,)``. Regions take their
        steady-state shares."""
        needed = self.closure(names)
        codes = np.zeros((1, len(self.names)), dtype=np.int8)
        prob = np.ones(1)
        if self.has_regions and REGION in needed:
            shares = self.steady_region_shares
            codes = np.repeat(codes, shares.size, axis=0)
            codes[:, 0] = np.arange(shares.size)
            prob = shares.copy()
        for plan in self._plans:
            if plan.name not in needed:
                continue
            i = self.index[plan.name]
            row = np.zeros(len(prob), dtype=np.int64)
            for p, s in zip(plan.parents, plan.strides):
                row += codes[:, p].astype(np.int64) * s
            cum = np.concatenate([np.zeros((len(row), 1)), plan.cumulative[row], np.ones((len(row), 1))], axis=1)
            level_p = np.diff(cum, axis=1)  # (S, L)
            n_levels = level_p.shape[1]
            codes = np.repeat(codes, n_levels, axis=0)
            codes[:, i] = np.tile(np.arange(n_levels), len(prob))
            prob = (prob[:, None] * level_p).ravel()
            keep = prob > 0
            codes, prob = codes[keep], prob[keep]
        self._derive(codes, codes, needed=needed)
        return codes, prob


@njit(cache=True)
def _draw_markers(profile, k0, k1, qids, trials, first, drawn, column, parents, strides, n_parents, cuts, n_cuts):
    """Fill the drawn markers of a block's profiles (T, N, C) int8 in place, in plan order.

    The markers ``drawn`` (M plan indices) read the uniforms of their quantities ``qids`` (M,
    uint64) at positions ``first ..`` of the batch's ``trials`` under the key (k0, k1), each trial's
    run drawn just before it is used (:func:`~platform_sim.streams.fill_row`: the values of
    ``TrialStreams.uniform``, never held for the whole block). Per plan its column, its parents'
    columns and strides (the row of its conditional table) and its cumulative table (rows,
    levels - 1). A marker's level is the number of cumulative probabilities its uniform reaches:
    the comparisons of the numpy passes (``PopulationModel._markers_reference``)."""
    n_trials, n_patients, _ = profile.shape
    last = parents.shape[1] - 1
    x_row = np.empty(n_patients)
    pairs = np.empty(n_patients + 2)
    fam = np.uint64(PATIENTS)
    for j in range(drawn.size):
        m = drawn[j]
        col = column[m]
        n_par = n_parents[m]
        n_cut = n_cuts[m]
        table = cuts[m]
        # a two-level marker with up to three parents (most of them) by a loop without inner loops,
        # which the compiler can unroll and vectorize: the same comparisons (about twice as fast)
        simple = n_par <= 3 and n_cut == 1
        p0, p1, p2 = parents[m, 0], parents[m, min(1, last)], parents[m, min(2, last)]
        s0, s1, s2 = strides[m, 0], strides[m, min(1, last)], strides[m, min(2, last)]
        for t in range(n_trials):
            prof = profile[t]
            fill_row(x_row, pairs, k0, k1, fam, qids[j], trials[t], first)
            if simple:
                for i in range(n_patients):
                    row = 0
                    if n_par >= 1:
                        row += np.int64(prof[i, p0]) * s0
                    if n_par >= 2:
                        row += np.int64(prof[i, p1]) * s1
                    if n_par >= 3:
                        row += np.int64(prof[i, p2]) * s2
                    prof[i, col] = x_row[i] >= table[row, 0]
                continue
            for i in range(n_patients):
                row = 0
                for q in range(n_par):
                    row += np.int64(prof[i, parents[m, q]]) * strides[m, q]
                x = x_row[i]
                level = 0
                for c in range(n_cut):
                    level += x >= table[row, c]
                prof[i, col] = level


@njit(cache=True)
def _derive_kernel(source, out, column, any_of, columns, masks, observed):
    """One derived marker of profiles (R, C) int8: out[r, column] from the conditions on
    ``columns`` of source[r] (``masks`` (Q, L): the levels that meet each), as
    ``PopulationModel._derive``'s numpy passes give it. A condition holds where its marker is known
    and at a level of its mask; the marker is 1 when any (``any_of``) or every condition holds, and
    on observed profiles (``observed``) MISSING when the unknown markers could still decide it."""
    for r in range(source.shape[0]):
        any_hit = False
        any_unknown = False
        any_known_miss = False
        for q in range(columns.shape[0]):
            code = source[r, columns[q]]
            unknown = code < 0
            hit = (not unknown) and masks[q, max(code, 0)]
            any_hit |= hit
            any_unknown |= unknown
            any_known_miss |= not unknown and not hit
        if any_of:
            value = any_hit
            undecided = not any_hit and any_unknown
        else:
            value = not any_known_miss and not any_unknown
            undecided = any_unknown and not any_known_miss
        out[r, column] = MISSING if observed and undecided else (1 if value else 0)


@njit(cache=True)
def _screen_block(
    observed, profile, how, slot, binary, present, accuracy, k0, k1, q_call, q_fail, trials, first, tissue_ok, liquid_ok
):
    """Screening results of a block (T, N, C) int8 from its true profiles.

    how (C,): 0 not reported (MISSING), 1 reported as it is (known at screening), 2 measured by
    the assays of its ``slot``: per assay (tissue, liquid) that is ``present``, its result counts
    where the assay gave a result (``tissue_ok``, ``liquid_ok``) and did not fail for this marker
    (u_fail >= failure); a binary marker is called positive when u_call < sensitivity if truly
    positive, u_call >= specificity if not; the liquid result, when counted, replaces the tissue's.
    The same comparisons as ``PopulationModel._screen``. u_call and u_fail are the uniforms of the
    quantities ``q_call`` and ``q_fail`` (per slot and assay) at positions ``first ..`` of the
    batch's ``trials``, drawn trial by trial as they are used (:func:`~platform_sim.streams.fill_row`).

    Every result is a function of its own patient's values, so the order of the work is free: the
    block is set MISSING in one pass, and a measured characteristic is worked out trial by trial
    in a contiguous column (its true values gathered first), by loops without a branch that the
    compiler vectorizes, then written into place."""
    n_trials, n_patients, n_char = profile.shape
    flat = observed.reshape(-1)
    for e in range(flat.shape[0]):
        flat[e] = MISSING
    column = np.empty(n_patients, dtype=np.int8)
    truth = np.empty(n_patients, dtype=np.int8)
    fails = np.empty(n_patients)
    calls = np.empty(n_patients)
    pairs = np.empty(n_patients + 2)
    fam = np.uint64(PATIENTS)
    for c in range(n_char):
        h = how[c]
        if h == 0:
            continue
        if h == 1:
            for t in range(n_trials):
                for i in range(n_patients):
                    observed[t, i, c] = profile[t, i, c]
            continue
        j = slot[c]
        for t in range(n_trials):
            for i in range(n_patients):
                column[i] = MISSING
                truth[i] = profile[t, i, c]
            for a in range(2):
                if not present[j, a]:
                    continue
                ok = tissue_ok[t] if a == 0 else liquid_ok[t]
                sens, spec, fail = accuracy[j, a, 0], accuracy[j, a, 1], accuracy[j, a, 2]
                fill_row(fails, pairs, k0, k1, fam, q_fail[j, a], trials[t], first)
                if binary[c]:
                    fill_row(calls, pairs, k0, k1, fam, q_call[j, a], trials[t], first)
                    for i in range(n_patients):
                        x = calls[i]
                        positive = (x < sens) if truth[i] == 1 else (x >= spec)
                        use = ok[i] & (fails[i] >= fail)
                        column[i] = (np.int8(1) if positive else np.int8(0)) if use else column[i]
                else:
                    for i in range(n_patients):
                        use = ok[i] & (fails[i] >= fail)
                        column[i] = truth[i] if use else column[i]
            for i in range(n_patients):
                observed[t, i, c] = column[i]


@njit(cache=True)
def _patients_needed(reason: np.ndarray, still_needed: np.ndarray) -> int:
    """The fewest first patients of a block (T, BLOCK) of screening outcomes (``reason``) that give
    every trial the randomizable patients it still needs (the whole block when some trial needs
    more than it holds)."""
    n_trials, n_patients = reason.shape
    width = 0
    for t in range(n_trials):
        need = still_needed[t]
        if need <= 0:
            continue
        found = 0
        reached = -1
        for i in range(n_patients):
            found += reason[t, i] == RANDOMIZED
            if found >= need:
                reached = i + 1
                break
        if reached < 0:
            return n_patients
        width = max(width, reached)
    return width


@njit(cache=True)
def _invert_accrual(knots, alpha, beta, cum, events, out):
    """out[i] = the time at which the integrated accrual rate reaches events[i] (1-D), the piece
    found as ``np.searchsorted(cum, x, side="right") - 1`` finds it and the time within it by the
    same operations as :meth:`PopulationModel.arrival_times` with ``reference=True``."""
    n_knots = cum.shape[0]
    j = 0
    for i in range(events.shape[0]):
        x = events[i]
        if cum[j] <= x:  # at or after the previous piece (a trial's events increase): step forward
            while j + 1 < n_knots and cum[j + 1] <= x:
                j += 1
        else:  # the last knot with cum <= x, by bisection
            lo, hi = 0, n_knots
            while lo < hi:
                mid = (lo + hi) >> 1
                if cum[mid] <= x:
                    lo = mid + 1
                else:
                    hi = mid
            j = lo - 1
            if j < 0:  # as numpy's index -1: the last piece
                j = n_knots - 1
        c = x - cum[j]
        a, b = alpha[j], beta[j]
        disc = math.sqrt(a * a + 2.0 * b * c)
        s = a + disc
        out[i] = knots[j] + (2.0 * c / s if s > 0 else 0.0)


@njit(cache=True)
def _running_sums(start, steps, block):
    """(T, n) running sums of ``steps`` (T, n) float64 from ``start`` (T,), block by block as
    separate calls would form them: within each run of ``block`` steps, the run's start plus
    ``np.cumsum`` of its steps (the same additions in the same order; numpy's cumulative sum adds
    left to right), the next run starting from the last sum. In one compiled pass."""
    n_rows, n = steps.shape
    out = np.empty((n_rows, n))
    for r in range(n_rows):
        base = start[r]
        for j0 in range(0, n, block):
            acc = steps[r, j0]
            out[r, j0] = base + acc
            end = min(j0 + block, n)
            for j in range(j0 + 1, end):
                acc += steps[r, j]
                out[r, j] = base + acc
            base = out[r, end - 1]
    return out


def _patients_needed_reference(randomizable: np.ndarray, still_needed: np.ndarray) -> int:
    """:func:`_patients_needed` by numpy passes over ``randomizable`` (T, BLOCK) bool (kept to test against)."""
    found = np.cumsum(randomizable, axis=1)
    enough = found[:, -1] >= still_needed
    if not enough.all():
        return randomizable.shape[1]
    need = np.maximum(still_needed, 0)
    return int((np.argmax(found >= need[:, None], axis=1) + (need > 0)).max(initial=0))


def _turnaround(uniform, name: str, t, shape, where: np.ndarray | None = None) -> np.ndarray:
    """Lognormal turnaround times (days) from the uniforms of quantity ``name``; with ``where``
    (a boolean mask of ``shape``) only there, 0 elsewhere. Each time is a function of its own
    uniform alone (element-wise ufuncs), so the masked times are those of the whole block."""
    if t.sdlog == 0:
        return np.full(shape, t.median_days, dtype=np.float32)
    from scipy.special import ndtri

    u = uniform(name)
    if where is None:
        return (t.median_days * np.exp(t.sdlog * ndtri(u))).astype(np.float32)
    out = np.zeros(shape, dtype=np.float32)
    out[where] = (t.median_days * np.exp(t.sdlog * ndtri(u[where]))).astype(np.float32)
    return out


__all__ = [
    "BLOCK",
    "Cohort",
    "DECLINED",
    "DAYS_PER_MONTH",
    "INELIGIBLE",
    "LOST_WAITING",
    "MISSING",
    "NOT_ASSIGNED",
    "NOT_SUBMITTED",
    "PopulationModel",
    "RANDOMIZED",
    "REASON_NAMES",
    "SCREEN_FAILURE",
    "expected_funnel",
    "screening_paths",
]
