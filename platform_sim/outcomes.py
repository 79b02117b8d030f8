"""Potential outcomes: every patient's outcome under every treatment, from patient-level uniforms.

Each (endpoint, treatment) pair has its own uniform per patient, keyed by the
seed, the trial, the pair's name and the patient's position
(:mod:`platform_sim.streams`), so the outcome of a patient under a treatment is
the same in every design run on the same seed (common random numbers), whichever
arm the patient ends up on.

* binary endpoints: ``U < p(x, t)`` with ``logit p = linear predictor``;
* time-to-event endpoints (months): inversion of the patient's piecewise-constant
  cumulative hazard at ``-log U``;
* landmark endpoints: the time-to-event outcome exceeds the landmark;
* endpoints of the scenario's illness-death model (response, PFS, OS): drawn jointly from four
  uniforms per patient and treatment (:mod:`platform_sim.posterior.illness_death`), so that a
  responder progresses later and PFS <= OS for every patient.

Dropout (one exponential time per patient, shared by all treatments) turns a binary
or landmark outcome into a failure when it comes before the assessment.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from scipy import special

from .config.scenario import Scenario
from .population import DAYS_PER_MONTH, BLOCK, Cohort, PopulationModel, RANDOMIZED
from .streams import OUTCOMES, TrialStreams

if TYPE_CHECKING:  # the illness-death model (and scipy.optimize) loads only for the scenarios that use it
    from .posterior.illness_death import IllnessDeath

WEEKS_PER_MONTH = DAYS_PER_MONTH / 7.0
MARKER_POSITIVE = ":on_treatment_positive"  # keys of Enrolled.also (no endpoint name starts with ':')
REBIOPSIED = ":rebiopsied"
MONTHS_PER_YEAR = 12.0


def outcome_stream(source: str, treatment: str) -> str:
    """The name of the uniforms an outcome of ``source`` under ``treatment`` is drawn from."""
    return f"outcome:{source}:{treatment}"


@dataclass(frozen=True)
class Predictor:
    """constant + sum over characteristics of a per-level table: a linear predictor over profiles."""

    constant: float
    tables: tuple[tuple[int, np.ndarray], ...] = ()

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        out = np.full(codes.shape[:-1], self.constant)
        for i, table in self.tables:
            out = out + table[codes[..., i]]
        return out

    def __add__(self, other: "Predictor") -> "Predictor":
        return Predictor(self.constant + other.constant, self.tables + other.tables)


MAX_COMBINATIONS = 1 << 16  # beyond, a ProfileIndex would not pay (ProfileIndex.build)


class ProfileIndex:
    """Each patient's combination of levels of the characteristics some predictors read, so that a
    predictor (and a function of it, like a hazard rate) is computed once per combination and then
    looked up, instead of once per patient and treatment. Values are the same bit for bit: per
    combination the predictor adds its constant and tables in the same order as per patient.

    codes: (..., C) int8 profiles, drawn (no MISSING) in ``columns``; n_levels: levels per column."""

    def __init__(self, codes: np.ndarray, columns: list[int], n_levels: list[int]):
        self.columns = tuple(columns)
        strides = np.cumprod([1, *n_levels[::-1]])[::-1][1:] if columns else np.array([], dtype=np.int64)
        self.n_combos = self.count(n_levels)
        if columns:
            flat = codes.reshape(-1, codes.shape[-1])
            self.index = _combination_index(
                flat, np.asarray(columns, dtype=np.int64), np.asarray(strides, dtype=np.int64)
            ).reshape(codes.shape[:-1])
        else:
            self.index = np.zeros(codes.shape[:-1], dtype=np.intp)
        combos = np.arange(self.n_combos)
        self.digits = {c: (combos // int(stride)) % n for c, stride, n in zip(columns, strides, n_levels)}

    @staticmethod
    def count(n_levels: list[int]) -> int:
        """The number of combinations of characteristics with ``n_levels`` levels (1 for none)."""
        return int(np.prod(n_levels))

    @classmethod
    def build(cls, codes: np.ndarray, columns: list[int], n_levels: list[int], max_combos: int = MAX_COMBINATIONS):
        """The index, or None when it would not pay (too many combinations) or a column is not drawn."""
        if cls.count(n_levels) > max_combos:
            return None
        if columns and _any_missing(codes.reshape(-1, codes.shape[-1]), np.asarray(columns, dtype=np.int64)):
            return None
        return cls(codes, columns, n_levels)

    def with_index(self, index: np.ndarray) -> ProfileIndex:
        """The same characteristics for other patients, given by their combinations ``index``."""
        other = copy.copy(self)
        other.index = index
        return other

    def profiles(self, n_characteristics: int) -> np.ndarray:
        """(..., n_characteristics) int8 profiles with each patient's levels in the index's columns
        (0 in the others): a predictor that reads only those columns gives every patient its value."""
        codes = np.zeros(self.index.shape + (n_characteristics,), dtype=np.int8)
        for c in self.columns:
            codes[..., c] = self.digits[c][self.index]
        return codes

    def values(self, pred: Predictor) -> np.ndarray:
        """(n_combos,) the predictor at every combination."""
        out = np.full(self.n_combos, pred.constant)
        for i, table in pred.tables:
            out = out + table[self.digits[i]]
        return out


@njit(cache=True)
def _combination_index(codes: np.ndarray, columns: np.ndarray, strides: np.ndarray) -> np.ndarray:
    """(R,) intp: sum over ``columns`` of the level code (codes (R, C) int8) times its stride."""
    out = np.zeros(codes.shape[0], dtype=np.intp)
    for r in range(codes.shape[0]):
        total = 0
        for j in range(columns.size):
            total += np.intp(codes[r, columns[j]]) * strides[j]
        out[r] = total
    return out


@njit(cache=True)
def _any_missing(codes: np.ndarray, columns: np.ndarray) -> bool:
    """Whether some profile (codes (R, C) int8) has a negative code (MISSING) in ``columns``."""
    for r in range(codes.shape[0]):
        for j in range(columns.size):
            if codes[r, columns[j]] < 0:
                return True
    return False


@dataclass(frozen=True)
class TreatmentOutcome:
    """One treatment on one endpoint: a logit (binary) or log-hazards on pieces starting at ``starts``."""

    kind: str
    starts: np.ndarray  # (P,) months; [0] for binary
    pieces: tuple[Predictor, ...]
    trend_per_year: float


@dataclass(frozen=True)
class OutcomeTables:
    """Each treatment's outcome model on a binary or landmark endpoint per combination of levels
    (:meth:`OutcomesModel.outcome_tables`): ``value`` (K, P, combinations) the probability (P = 1)
    or the hazard of each piece starting at ``starts`` (K, P) months, of which treatment k has
    ``n_pieces[k]``; ``landmark`` the landmark in months."""

    binary: bool
    landmark: float
    value: np.ndarray
    starts: np.ndarray
    n_pieces: np.ndarray


@njit(cache=True, error_model="numpy", inline="always")
def _event_time(k, c, x, value, starts, n_pieces):
    """The event time under treatment ``k`` of a patient with combination ``c`` and ``x`` = -log(u):
    the operations of :meth:`OutcomesModel.time_to_event` (one piece; the loop over pieces), on one
    patient, in the same order."""
    if n_pieces[k] == 1:
        return starts[k, 0] + x / value[k, 0, c]
    time = np.inf
    cum = 0.0
    done = False
    for j in range(n_pieces[k]):
        rate = value[k, j, c]
        width = starts[k, j + 1] - starts[k, j] if j + 1 < n_pieces[k] else np.inf
        reach = cum + rate * width
        if not done and x <= reach:
            time = starts[k, j] + (x - cum) / rate
            done = True
        if not done:
            cum = reach
    return time


@njit(cache=True, error_model="numpy")
def _outcomes_from_tables(which, combination, target, binary, landmark, value, starts, n_pieces, out):
    """out[i]: the outcome of patient i under treatment ``which[i]`` with combination
    ``combination[i]``; ``target`` its uniform (binary: below the probability) or -log of it
    (landmark: the event time after the landmark), as :meth:`OutcomesModel.outcome_given` has it."""
    for i in range(which.size):
        k, c = which[i], combination[i]
        if binary:
            out[i] = target[i] < value[k, 0, c]
        else:
            out[i] = _event_time(k, c, target[i], value, starts, n_pieces) > landmark


@njit(cache=True, error_model="numpy")
def _event_times_from_tables(which, combination, target, value, starts, n_pieces):
    """The event times :func:`_outcomes_from_tables` compares with the landmark (to test them)."""
    out = np.empty(which.size)
    for i in range(which.size):
        out[i] = _event_time(which[i], combination[i], target[i], value, starts, n_pieces)
    return out


class OutcomesModel:
    """The outcome models of a scenario, made ready to draw potential outcomes."""

    def __init__(self, scenario: Scenario, population: PopulationModel):
        self.scenario = scenario
        self.population = population
        self.endpoints = scenario.endpoints
        self._models: dict[tuple[str, str], TreatmentOutcome] = {}
        self._outcome_tables: dict[tuple[str, tuple[str, ...]], OutcomeTables | None] = {}
        self.joint_roles = scenario.joint_endpoints  # endpoint -> 'response', 'pfs' or 'os'
        self.joint: dict[str, IllnessDeath] = (
            {t: self._joint_model(t) for t in scenario.treatments} if self.joint_roles else {}
        )
        for ep, e in scenario.endpoints.items():
            if e.kind == "landmark":
                continue
            for t in scenario.treatments:
                if ep in self.joint_roles:  # no marker effects; a binary one carries its logit for probability()
                    p = self.joint[t].response_probability
                    logit = float(special.logit(p)) if p > 0 else -np.inf
                    self._models[ep, t] = TreatmentOutcome(
                        e.kind, np.zeros(1), (Predictor(logit if e.kind == "binary" else 0.0),), 0.0
                    )
                else:
                    self._models[ep, t] = self._compile(ep, e.kind, t)
        self.marker = scenario.on_treatment_marker
        self.marker_months = 0.0 if self.marker is None else self.marker.week / WEEKS_PER_MONTH
        self.marked = set() if self.marker is None else set(self.marker.endpoints)
        d = scenario.dropout
        self.dropout_rate = (
            0.0 if d is None else -math.log1p(-min(d.probability, 1 - 1e-12)) / (d.before_weeks / WEEKS_PER_MONTH)
        )

    def _joint_model(self, treatment: str) -> IllnessDeath:
        """The treatment's illness-death model: the root's calibrated baseline with every effect of the
        ``relative_to`` chain applied."""
        from .config.illness_death import as_pieces
        from .posterior.illness_death import calibrate

        chain, name, root = [], treatment, treatment
        while name is not None:
            t = self.scenario.treatments[name]
            chain.append(t.illness_death)
            root, name = name, t.relative_to
        base = chain[-1].baseline
        try:
            model = calibrate(
                base.response_rate,
                base.median_pfs_months,
                base.median_os_months,
                base.responder_progression_hazard_ratio,
                base.death_share_of_pfs_events,
            )
        except ValueError as exc:  # facts no illness-death model with constant hazards reproduces
            from .config import ConfigError, Problem

            raise ConfigError(
                [Problem(f"scenario.treatments.{root}.illness_death.baseline", str(exc), base.model_dump())]
            ) from None
        for link in chain[:-1]:
            if link is not None:
                model = model.with_effects(
                    link.response_odds_ratio,
                    as_pieces(link.progression_hazard_ratio),
                    link.death_hazard_ratio,
                    as_pieces(link.post_progression_hazard_ratio),
                )
        return model

    def _joint_outcome(
        self, ts: TrialStreams, b: int, n: int, ep: str, treatment: str, drawn_before: dict | None = None
    ) -> np.ndarray:
        """One endpoint of the illness-death model for block ``b``: (T, n) bool (response) or months.
        ``drawn_before``: the joint outcomes already drawn for this batch, by (block, patients, treatment),
        reused when another endpoint of the same patients is asked for (the same numbers either way)."""
        key = (b, n, treatment)
        drawn = None if drawn_before is None else drawn_before.get(key)
        if drawn is None:
            u = [
                ts.uniform(OUTCOMES, f"illness_death:{part}:{treatment}", b * BLOCK, n)
                for part in ("response", "progression", "death", "post_progression")
            ]
            drawn = self.joint[treatment].sample(*u)
            if drawn_before is not None:
                drawn_before[key] = drawn
        role = self.joint_roles[ep]
        return drawn.response if role == "response" else drawn.pfs if role == "pfs" else drawn.os

    def _tables(self, ratios: dict) -> tuple[tuple[int, np.ndarray], ...]:
        out = []
        pop = self.population
        for marker, value in ratios.items():
            i = pop.index[marker]
            levels = pop.levels[i]
            table = np.zeros(len(levels))
            if isinstance(value, dict):
                for lv, r in value.items():
                    table[levels.index(lv)] = math.log(r)
            else:
                table[-1] = math.log(value)
            out.append((i, table))
        return tuple(out)

    def _compile(self, ep: str, kind: str, treatment: str) -> TreatmentOutcome:
        chain = self.scenario.resolved(treatment, ep)
        root, _ = chain[-1]
        prognostic = self.scenario.prognostic.get(ep)
        trend = self.scenario.time_trend.get(ep)
        per_year = 0.0
        if trend is not None and (trend.treatments is None or treatment in trend.treatments):
            per_year = trend.per_year
        if kind == "binary":
            pred = Predictor(float(special.logit(root.rate)))
            for model, _ in chain:
                pred = pred + Predictor(math.log(model.odds_ratio or 1.0), self._tables(model.odds_ratios))
            if prognostic is not None:
                pred = pred + Predictor(0.0, self._tables(prognostic.odds_ratios))
            return TreatmentOutcome(kind, np.zeros(1), (pred,), per_year)
        # time to event: the root's baseline pieces, each relative link switching on at its onset
        if root.pieces is not None:
            base_starts = [p.from_months for p in root.pieces]
            base_logh = [math.log(p.hazard_per_month) if p.hazard_per_month > 0 else -np.inf for p in root.pieces]
        else:
            base_starts, base_logh = [0.0], [math.log(math.log(2.0) / root.median_months)]
        links = [
            (m.onset_weeks / WEEKS_PER_MONTH, Predictor(math.log(m.hazard_ratio or 1.0), self._tables(m.hazard_ratios)))
            for m, _ in chain[:-1]
        ]
        common = Predictor(0.0, self._tables(root.hazard_ratios))
        if prognostic is not None:
            common = common + Predictor(0.0, self._tables(prognostic.hazard_ratios))
        starts = np.array(sorted(set(base_starts) | {onset for onset, _ in links}))
        pieces = []
        for s in starts:
            j = int(np.searchsorted(base_starts, s, side="right") - 1)
            pred = Predictor(base_logh[j]) + common
            for onset, link in links:
                if s >= onset:
                    pred = pred + link
            pieces.append(pred)
        return TreatmentOutcome(kind, starts, tuple(pieces), per_year)

    # ------------------------------------------------------------------ drawing

    def time_to_event(
        self,
        ep: str,
        treatment: str,
        codes: np.ndarray,
        at: np.ndarray | None,
        u: np.ndarray,
        index: ProfileIndex | None = None,
    ) -> np.ndarray:
        """Event times (months) by inverting the cumulative hazard at -log(u) (not for the endpoints of
        the illness-death model, which are drawn jointly by :meth:`potential`). ``index`` (of the
        characteristics the model reads) computes the hazards once per combination of levels."""
        if ep in self.joint_roles:
            raise ValueError(f"{ep!r} is drawn jointly by the illness-death model, not from one uniform")
        m = self._models[ep, treatment]
        trend = not (at is None or m.trend_per_year == 0)
        shift = m.trend_per_year * at / MONTHS_PER_YEAR if trend else 0.0
        target = -np.log(u)

        def hazard(pred):
            if index is None:
                return np.exp(pred(codes) + shift)
            if trend:
                return np.exp(index.values(pred)[index.index] + shift)
            return np.exp(index.values(pred) + shift)[index.index]

        if len(m.pieces) == 1:  # one constant hazard: the loop below reduces to this, value for value
            with np.errstate(divide="ignore"):
                return m.starts[0] + target / hazard(m.pieces[0])
        time = np.full(u.shape, np.inf)
        cum = np.zeros(u.shape)
        done = np.zeros(u.shape, dtype=bool)
        for j, pred in enumerate(m.pieces):
            rate = hazard(pred)
            width = m.starts[j + 1] - m.starts[j] if j + 1 < len(m.starts) else np.inf
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                reach = cum + rate * width
                here = ~done & (target <= reach)
                time = np.where(here, m.starts[j] + (target - cum) / rate, time)
            done |= here
            cum = np.where(done, cum, reach)
        return time

    def probability(self, ep: str, treatment: str, codes: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
        """P(event) of a binary or landmark endpoint for each profile (without dropout)."""
        e = self.endpoints[ep]
        if e.kind == "binary":
            m = self._models[ep, treatment]
            eta = m.pieces[0](codes)
            if at is not None and m.trend_per_year:
                eta = eta + m.trend_per_year * at / MONTHS_PER_YEAR
            return special.expit(eta)
        if e.kind == "landmark":
            return np.exp(-self.cumulative_hazard(e.of, treatment, codes, e.weeks / WEEKS_PER_MONTH, at))
        raise ValueError(f"{ep!r} is a {e.kind} endpoint, not binary or landmark")

    def constant_binary(self, ep: str, treatments) -> np.ndarray | None:
        """The probability of a binary ``ep`` under each of ``treatments`` when every patient's potential
        outcome is its own stream's uniform below one probability per treatment (:meth:`potential`
        draws exactly that), so an outcome can be drawn for one patient and treatment alone; else
        None: another kind of endpoint, an illness-death model, a copula, dropout, or a probability
        that depends on the patient or on calendar time."""
        e = self.endpoints[ep]
        if e.kind != "binary" or ep in self.joint_roles or self.dropout_rate > 0 or self._coupled(ep):
            return None
        p = [self._constant_probability(ep, t) for t in treatments]
        if any(x is None for x in p):
            return None
        return np.array(p, dtype=np.float64)

    def drawn_alone(self, ep: str, treatments) -> bool:
        """Whether an outcome of ``ep`` under one of ``treatments`` is a function of the patient's
        combination of the levels its models read (:class:`ProfileIndex`, of at most
        :data:`MAX_COMBINATIONS`), randomization month and own uniform under that treatment alone
        (:meth:`outcome_given`), so that it can be drawn for the treatment a patient gets when the
        patient is counted (:meth:`outcomes_at`): a binary or landmark endpoint without dropout,
        on-treatment marker, copula or illness-death model. :meth:`potential` draws these outcomes
        through :meth:`outcome_given` too."""
        e = self.endpoints[ep]
        if e.kind not in ("binary", "landmark") or self.dropout_rate > 0:
            return False
        source = e.of if e.kind == "landmark" else ep
        if source in self.joint_roles or source in self.marked or self._coupled(source):
            return False
        return self._n_combinations(ep, treatments) <= MAX_COMBINATIONS

    def outcome_given(
        self, ep: str, treatment: str, codes: np.ndarray | None, at: np.ndarray | None, u: np.ndarray, index=None
    ) -> np.ndarray:
        """The outcome (bool) of a binary or landmark ``ep`` under ``treatment`` of patients with
        profiles ``codes`` (..., C; or None, with an ``index`` that holds what the models read),
        randomized at ``at`` (months, or None without a calendar-time trend) and with uniforms ``u``
        of their own stream for the pair, before dropout and without the on-treatment marker
        (``index``: as in :meth:`time_to_event`). Each value is a function of its patient's
        arguments alone (element-wise operations), so the patients may be any subset."""
        e = self.endpoints[ep]
        if e.kind == "binary":
            return u < self._binary_probability(ep, treatment, codes, at, index)
        if e.kind != "landmark":
            raise ValueError(f"{ep!r} is a {e.kind} endpoint, not binary or landmark")
        return self.time_to_event(e.of, treatment, codes, at, u, index) > e.weeks / WEEKS_PER_MONTH

    def _constant_probability(self, ep, treatment) -> float | None:
        """The probability of binary ``ep`` under ``treatment`` when it is the same for every patient
        at any time (no marker, prognostic factor or calendar-time trend in its model); else None."""
        m = self._models[ep, treatment]
        if m.pieces[0].tables or m.trend_per_year:
            return None
        return float(special.expit(m.pieces[0].constant))

    def _binary_probability(self, ep, treatment, codes, at, index: ProfileIndex | None = None):
        """As :meth:`probability`, but a scalar when it is the same for every patient (``index``: as
        in :meth:`time_to_event`)."""
        m = self._models[ep, treatment]
        constant = self._constant_probability(ep, treatment)
        if constant is not None:
            return constant
        if index is not None and (at is None or not m.trend_per_year):
            return special.expit(index.values(m.pieces[0]))[index.index]
        return self.probability(ep, treatment, codes, at)

    def cumulative_hazard(self, ep, treatment, codes, t, at=None) -> np.ndarray:
        """Cumulative hazard of a time-to-event endpoint at ``t`` months for each profile of ``codes`` (with the
        on-treatment marker's mixture after its week, and the illness-death model's exact curve)."""
        if ep in self.joint_roles:
            survival = float(self.joint[treatment].survival(self.joint_roles[ep], t))
            return np.full(codes.shape[:-1], -math.log(survival) if survival > 0 else np.inf)
        if ep in self.marked and t > self.marker_months:  # the mixture of marker-positive and -negative patients
            before = self._own_cumulative_hazard(ep, treatment, codes, self.marker_months, at)
            after = self._own_cumulative_hazard(ep, treatment, codes, t, at) - before
            assert self.marker is not None
            p = self.marker.positive_probability(treatment)
            with np.errstate(over="ignore", invalid="ignore"):
                mix = p * np.exp(-self.marker.hazard_ratio * after) + (1.0 - p) * np.exp(-after)
                return before - np.log(mix)
        return self._own_cumulative_hazard(ep, treatment, codes, t, at)

    def _own_cumulative_hazard(self, ep, treatment, codes, t, at=None) -> np.ndarray:
        """The cumulative hazard of the treatment's own model (that of marker-negative patients)."""
        m = self._models[ep, treatment]
        shift = 0.0 if at is None or m.trend_per_year == 0 else m.trend_per_year * at / MONTHS_PER_YEAR
        total = np.zeros(codes.shape[:-1])
        for j, pred in enumerate(m.pieces):
            end = m.starts[j + 1] if j + 1 < len(m.starts) else np.inf
            width = np.clip(min(end, t) - m.starts[j], 0, None)
            if width > 0:
                total = total + np.exp(pred(codes) + shift) * width
        return total

    def survival_curve(self, ep: str, treatment: str, codes: np.ndarray, prob: np.ndarray, times) -> np.ndarray:
        """Survival of a time-to-event endpoint over a profile distribution (``prob``) at ``times``
        (months, 1-D), without dropout, exact; every time at once for the illness-death model."""
        times = np.asarray(times, dtype=np.float64)
        if ep in self.joint_roles:
            return self.joint[treatment].survival(self.joint_roles[ep], times)
        w = prob / prob.sum()
        return np.array([float(w @ np.exp(-self.cumulative_hazard(ep, treatment, codes, float(t)))) for t in times])

    def dropout_before(self, months: float) -> float:
        return -math.expm1(-self.dropout_rate * months)

    def assessment_months(self, ep: str) -> float:
        e = self.endpoints[ep]
        if e.kind == "landmark":
            return e.weeks / WEEKS_PER_MONTH
        d = self.scenario.dropout
        return 0.0 if d is None else d.before_weeks / WEEKS_PER_MONTH

    def potential(
        self, ts: TrialStreams, b: int, cohort: Cohort, ep: str, treatments: list[str], drawn_before: dict | None = None
    ) -> np.ndarray:
        """Potential outcomes of block ``b`` under each treatment: ``(T, N, K)``; bool for binary and
        landmark endpoints (True: response / disease control), months for time-to-event.
        ``drawn_before``: a dict shared by the calls for several endpoints of one batch, so the
        illness-death model is drawn once for all of them."""
        e = self.endpoints[ep]
        source = e.of if e.kind == "landmark" else ep
        at = cohort.randomized_at if self.scenario.time_trend else None
        codes = cohort.profile
        shape = cohort.arrival.shape
        dropout = None
        if self.dropout_rate > 0:
            dropout = self.dropout_times(ts, b, shape[1])
        kind = e.kind
        index = self.profile_index(ep, treatments, codes)
        out = np.empty(shape + (len(treatments),), dtype=np.float32 if kind == "time_to_event" else bool)
        for k, t in enumerate(treatments):
            if source in self.joint_roles:
                y = self._joint_outcome(ts, b, shape[1], source, t, drawn_before)
                if kind == "time_to_event":
                    out[..., k] = y
                    continue
                if kind == "landmark":
                    y = y > e.weeks / WEEKS_PER_MONTH
                if dropout is not None:
                    y &= dropout >= self.assessment_months(ep)
                out[..., k] = y
                continue
            u = self.uniform(ts, b, shape[1], source, t)
            if kind == "binary" or (kind == "landmark" and source not in self.marked):
                y = self.outcome_given(ep, t, codes, at, u, index)
                if dropout is not None:
                    y &= dropout >= self.assessment_months(ep)
            else:
                time = self.time_to_event(source, t, codes, at, u, index)
                if source in self.marked:
                    time = self._after_rebiopsy(ts, b, source, t, codes, at, u, index, time)
                if kind == "landmark":
                    w = e.weeks / WEEKS_PER_MONTH
                    y = time > w
                    if dropout is not None:
                        y &= dropout >= w
                else:
                    y = time  # censoring by dropout is applied where follow-up is modelled
            out[..., k] = y
        return out

    def _index_columns(self, ep: str, treatments) -> tuple[list[int], list[int]]:
        """The characteristics the models of ``treatments`` on ``ep`` read, and their numbers of levels."""
        columns = self._used_columns(ep, treatments)
        return columns, [len(self.population.levels[c]) for c in columns]

    def _n_combinations(self, ep: str, treatments) -> int:
        """The number of combinations of the levels the models of ``treatments`` on ``ep`` read
        (:attr:`ProfileIndex.n_combos` of those characteristics)."""
        return ProfileIndex.count(self._index_columns(ep, treatments)[1])

    def profile_index(self, ep: str, treatments, codes: np.ndarray) -> ProfileIndex | None:
        """:meth:`ProfileIndex.build` of ``codes`` on the characteristics the models of ``treatments`` read."""
        return ProfileIndex.build(codes, *self._index_columns(ep, treatments))

    def combinations(self, ep: str, treatments, codes: np.ndarray) -> np.ndarray:
        """(...) each profile's combination of the levels the models of ``treatments`` on ``ep`` read
        (:attr:`ProfileIndex.index`; ``codes`` (..., C) drawn in those characteristics), from which
        :meth:`outcomes_at` draws its outcomes."""
        index = self.profile_index(ep, treatments, codes)
        if index is None:
            raise ValueError(f"the profiles do not give the combinations the models of {ep!r} read")
        return index.index

    def outcomes_at(
        self,
        ts: TrialStreams,
        ep: str,
        treatments: list[str],
        which: np.ndarray,
        rows: np.ndarray,
        positions: np.ndarray,
        combination: np.ndarray,
        at: np.ndarray | None,
        reference: bool = False,
    ) -> np.ndarray:
        """(n,) bool the outcomes of ``n`` patients, each under its treatment ``treatments[which[i]]``:
        the patient at screened position ``positions[i]`` of the batch row ``rows[i]``, with the
        combination of levels ``combination[i]`` (:meth:`combinations` of the same treatments) and
        randomized at month ``at[i]`` (read with a calendar-time trend). The values
        :meth:`potential` draws there, for an endpoint :meth:`drawn_alone` accepts: the uniforms at
        the positions, then, without a calendar-time trend, one compiled pass over the patients
        that reads each treatment's probability or hazards per combination (:meth:`outcome_tables`;
        ``reference=True``: :meth:`outcome_given`, treatment by treatment, as with a trend)."""
        e = self.endpoints[ep]
        source = e.of if e.kind == "landmark" else ep
        if not self.drawn_alone(ep, treatments):
            raise ValueError(f"the outcomes of {ep!r} cannot be drawn one treatment at a time")
        which = np.asarray(which, dtype=np.int64)
        combination = np.asarray(combination, dtype=np.int64)
        n_combos = self._n_combinations(ep, treatments)
        if combination.shape != which.shape or (
            combination.size and not 0 <= combination.min() <= combination.max() < n_combos
        ):
            raise ValueError(f"combination must give one combination of levels in [0, {n_combos}) per patient")
        trend = bool(self.scenario.time_trend)
        if trend and (at is None or np.shape(at) != which.shape):
            raise ValueError("the scenario has a calendar-time trend: give each patient's randomization month (at)")
        u = ts.uniform_at(OUTCOMES, [outcome_stream(source, t) for t in treatments], rows, positions, which)
        tables = None if reference else self.outcome_tables(ep, tuple(treatments))
        out = np.empty(u.size, dtype=bool)
        if tables is not None:
            # the same -log(u) as time_to_event's, element by element
            target = u if tables.binary else -np.log(u)
            _outcomes_from_tables(
                which, combination, target, tables.binary, tables.landmark, tables.value, tables.starts,
                tables.n_pieces, out,
            )  # fmt: skip
            return out
        template = self._template_index(ep, tuple(treatments))
        for k, t in enumerate(treatments):
            sel = np.flatnonzero(which == k)
            if not sel.size:
                continue
            index = template.with_index(combination[sel])
            # a predictor read patient by patient (a binary endpoint's trend) reads it from profiles
            codes = index.profiles(len(self.population.names)) if trend and e.kind == "binary" else None
            out[sel] = self.outcome_given(ep, t, codes, at[sel] if at is not None and trend else None, u[sel], index)
        return out

    def _template_index(self, ep: str, treatments: tuple[str, ...]) -> ProfileIndex:
        """A :class:`ProfileIndex` of no patient on the characteristics the models of ``treatments``
        read, for :meth:`ProfileIndex.with_index`."""
        return ProfileIndex(
            np.zeros((0, len(self.population.names)), dtype=np.int8), *self._index_columns(ep, treatments)
        )

    def outcome_tables(self, ep: str, treatments: tuple[str, ...]) -> OutcomeTables | None:
        """What :meth:`outcome_given` reads of each treatment, per combination of levels (those of
        :meth:`combinations` of the same treatments), for a binary or landmark endpoint without a
        calendar-time trend; else None. The probabilities and hazards are computed as
        :meth:`outcome_given` computes them (the same operations on the same values)."""
        key = (ep, tuple(treatments))
        if key not in self._outcome_tables:  # every look of a batch asks for the same
            self._outcome_tables[key] = self._build_outcome_tables(ep, key[1])
        return self._outcome_tables[key]

    def _build_outcome_tables(self, ep: str, treatments: tuple[str, ...]) -> OutcomeTables | None:
        e = self.endpoints[ep]
        if e.kind not in ("binary", "landmark") or self.scenario.time_trend:
            return None
        source = e.of if e.kind == "landmark" else ep
        index = self._template_index(ep, treatments)
        models = [self._models[source, t] for t in treatments]
        if e.kind == "binary":
            value = np.empty((len(treatments), 1, index.n_combos))
            for k, (t, m) in enumerate(zip(treatments, models)):
                constant = self._constant_probability(ep, t)
                value[k, 0] = constant if constant is not None else special.expit(index.values(m.pieces[0]))
            return OutcomeTables(True, 0.0, value, np.zeros((len(treatments), 1)), np.ones(len(treatments), np.int64))
        n_pieces = np.array([len(m.pieces) for m in models], dtype=np.int64)
        value = np.zeros((len(treatments), int(n_pieces.max()), index.n_combos))
        starts = np.full(value.shape[:2], np.inf)
        for k, m in enumerate(models):
            starts[k, : len(m.starts)] = m.starts
            for j, pred in enumerate(m.pieces):
                value[k, j] = np.exp(index.values(pred) + 0.0)  # time_to_event's hazard without a trend
        return OutcomeTables(False, e.weeks / WEEKS_PER_MONTH, value, starts, n_pieces)

    def on_treatment(self, ts: TrialStreams, b: int, n: int, treatments: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The on-treatment marker of the first ``n`` patients of block ``b``: ``(T, n, K)`` bool, positive under
        each treatment, and ``(T, n)`` bool, re-biopsied if still event-free at the week."""
        assert self.marker is not None
        name = self.marker.name
        positive = np.stack(
            [
                ts.uniform(OUTCOMES, f"on_treatment:{name}:{t}", b * BLOCK, n) < self.marker.positive_probability(t)
                for t in treatments
            ],
            axis=-1,
        )
        return positive, ts.uniform(OUTCOMES, f"rebiopsy:{name}", b * BLOCK, n) < self.marker.rebiopsied

    def _after_rebiopsy(self, ts, b, source, treatment, codes, at, u, index, time) -> np.ndarray:
        """Event times with the on-treatment marker's hazard ratio from the week on, for the marker-positive
        patients: the cumulative hazard after the week is divided by it (exact for any piecewise hazard)."""
        assert self.marker is not None
        positive = self.on_treatment(ts, b, u.shape[1], [treatment])[0][..., 0]
        before = self._own_cumulative_hazard(source, treatment, codes, self.marker_months, at)
        target = -np.log(u)
        late = positive & (target > before)
        if not late.any():
            return time
        shifted = before + (target - before) / self.marker.hazard_ratio
        changed = self.time_to_event(source, treatment, codes, at, np.exp(-np.where(late, shifted, target)), index)
        return np.where(late, changed, time)

    def uniform(self, ts: TrialStreams, b: int, n: int, source: str, treatment: str) -> np.ndarray:
        """(T, n) the uniforms of block ``b`` from which ``source`` is drawn under ``treatment``: the pair's own
        stream, or for the second endpoint of the scenario's copula, coupled to the first's (Gaussian copula)."""
        own = ts.uniform(OUTCOMES, outcome_stream(source, treatment), b * BLOCK, n)
        if not self._coupled(source):
            return own
        copula = self.scenario.copula
        assert copula is not None
        first = ts.uniform(OUTCOMES, outcome_stream(copula.first, treatment), b * BLOCK, n)
        r = copula.correlation
        latent = r * special.ndtri(first) + math.sqrt(max(1.0 - r * r, 0.0)) * special.ndtri(own)
        return np.clip(special.ndtr(latent), np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)

    def _coupled(self, source: str) -> bool:
        """Whether ``source``'s uniforms are coupled to another endpoint's (the second endpoint of a
        Gaussian copula with a correlation), not its own stream's alone (:meth:`uniform`)."""
        copula = self.scenario.copula
        return copula is not None and source == copula.second and copula.correlation != 0.0

    def dropout_times(self, ts: TrialStreams, b: int, n: int = BLOCK) -> np.ndarray:
        """Months from randomization to dropout of the first ``n`` patients of block ``b``: ``(T, n)``."""
        return -np.log(ts.uniform(OUTCOMES, "dropout", b * BLOCK, n)) / self.dropout_rate

    # ------------------------------------------------------------------ exact expectations

    def _used_columns(self, ep: str, treatments) -> list[int]:
        """The characteristics (columns of a profile) that the models of ``treatments`` on ``ep`` read."""
        e = self.endpoints[ep]
        source = e.of if e.kind == "landmark" else ep
        return sorted({i for t in treatments for pred in self._models[source, t].pieces for i, _ in pred.tables})

    def _collapse(self, ep: str, treatments, codes: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same distribution on fewer rows: profiles with zero probability dropped and profiles that
        agree on every characteristic the models read merged (their probabilities added). Every model
        value is a function of those characteristics, so expectations are unchanged (up to the order
        of floating-point additions); a distribution over tens of thousands of screening paths shrinks
        to a few dozen rows before the root finding that evaluates it many times."""
        keep = prob > 0
        codes, prob = codes[keep], prob[keep]
        cols = self._used_columns(ep, treatments)
        if codes.shape[0] <= 1:
            return codes, prob
        if not cols:
            return codes[:1], np.array([prob.sum()])
        sub = codes[:, cols].astype(np.int64)
        sub -= sub.min(axis=0)
        key = np.zeros(sub.shape[0], dtype=np.int64)
        for j in range(sub.shape[1]):
            key = key * (int(sub[:, j].max()) + 1) + sub[:, j]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return codes[first], np.bincount(inverse.reshape(-1), weights=prob)

    def expected(self, ep: str, treatment: str, codes: np.ndarray, prob: np.ndarray) -> float:
        """Exact population value over a profile distribution: P(event) including dropout for binary
        and landmark endpoints; the median event time (months, without dropout) for time-to-event."""
        prob = prob / prob.sum()
        codes, prob = self._collapse(ep, [treatment], codes, prob)
        e = self.endpoints[ep]
        if e.kind in ("binary", "landmark"):
            p = float(prob @ self.probability(ep, treatment, codes))
            return p * (1.0 - self.dropout_before(self.assessment_months(ep)))
        from scipy import optimize

        def surv(t):
            return float(prob @ np.exp(-self.cumulative_hazard(ep, treatment, codes, t))) - 0.5

        hi = 1.0
        while surv(hi) > 0:
            hi *= 2.0
            if hi > 1e6:
                return math.inf
        return float(optimize.brentq(surv, 0.0, hi, xtol=1e-10))

    def effect(self, ep: str, treatment: str, control: str, codes: np.ndarray, prob: np.ndarray) -> float:
        """Exact effect of ``treatment`` against ``control`` over a profile distribution: on a
        time-to-event endpoint log(H_treatment(m) / H_control(m)), the log ratio of the
        cumulative hazards of the two mixtures at the control's median m (the log hazard ratio
        itself when every profile has the same one); on a binary or landmark endpoint the
        difference of the rates."""
        prob = prob / prob.sum()
        if self.endpoints[ep].kind != "time_to_event":
            return self.expected(ep, treatment, codes, prob) - self.expected(ep, control, codes, prob)
        codes, prob = self._collapse(ep, [treatment, control], codes, prob)
        from scipy import optimize

        def surv(t, tr):
            return float(prob @ np.exp(-self.cumulative_hazard(ep, tr, codes, t)))

        hi = 1.0
        while surv(hi, control) > 0.5:
            hi *= 2.0
            if hi > 1e6:
                return math.nan
        m = optimize.brentq(lambda t: surv(t, control) - 0.5, 0.0, hi, xtol=1e-12)
        return math.log(math.log(surv(m, treatment)) / math.log(0.5))


class VirtualPatients:
    """A scenario's population and outcome models: draws the patients a batch of trials randomizes."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.population = PopulationModel(scenario.population)
        self.outcomes = OutcomesModel(scenario, self.population)

    def truth(self, ep: str, treatments: list[str]) -> np.ndarray:
        """Exact marginal value of each treatment over the whole population (calendar time 0)."""
        relevant = self._relevant_markers(ep, treatments)
        codes, prob = self.population.distribution(relevant)
        return np.array([self.outcomes.expected(ep, t, codes, prob) for t in treatments])

    def _relevant_markers(self, ep, treatments) -> list[str]:
        e = self.scenario.endpoints[ep]
        source = e.of if e.kind == "landmark" else ep
        used = set()
        for t in treatments:
            m = self.outcomes._models[source, t]
            for pred in m.pieces:
                used.update(self.population.names[i] for i, _ in pred.tables)
        return sorted(used)

    def enrol(
        self,
        ts: TrialStreams,
        n_needed: int,
        ep: str,
        treatments: list[str],
        times: bool = False,
        keep_cohort: bool = False,
        characteristics: list[str] | None = None,
        biomarker_result: bool = True,
        also: tuple[str, ...] = (),
        on_treatment: bool = False,
        observed: bool = False,
    ) -> "Enrolled":
        """The first ``n_needed`` randomizable patients of each trial of ``ts``, with their
        potential outcomes on ``ep`` under ``treatments``. Arrival times are drawn when ``times``
        is set or the outcomes depend on calendar time; of the profile, only what the outcomes
        depend on and the listed ``characteristics`` are drawn. ``biomarker_result``: whether the
        design waits for a biomarker result before randomizing (the design's family says); without,
        the randomizable patients are the clinically eligible ones, in order of arrival, with no
        wait (:meth:`~platform_sim.population.PopulationModel.block`). ``also``: further endpoints whose
        potential outcomes the same patients bring (:attr:`Enrolled.also`), e.g. PFS beside OS; each
        endpoint has its own random numbers, so they change nothing else. ``on_treatment``: also the
        scenario's on-treatment marker (:attr:`Enrolled.marker_positive`, :attr:`Enrolled.rebiopsied`).
        ``observed``: also the enrolled patients' screening results (:attr:`Enrolled.observed`), without
        keeping every screened patient's cohort."""
        options = self._options(ep, treatments, times, characteristics, biomarker_result, also, on_treatment)
        n_trials = ts.n_trials
        d = self._draw(
            ts, 0, np.zeros(n_trials), np.full(n_trials, n_needed, dtype=np.int64), options, keep_cohort, observed
        )
        cohort = Cohort.concatenate(d.cohort_parts) if keep_cohort else None
        if d.ok.all():  # no one is lost in screening
            return d.take(np.broadcast_to(np.arange(n_needed), (n_trials, n_needed)), cohort, prefix=True)
        return d.take(_first_randomizable(d.ok, np.zeros(n_trials, dtype=np.int64), n_needed), cohort)

    def _options(self, ep, treatments, times, characteristics, biomarker_result, also, on_treatment) -> "_DrawOptions":
        needed = set(self._relevant_markers(ep, treatments)) | set(characteristics or ())
        for other in also:
            needed |= set(self._relevant_markers(other, treatments))
        return _DrawOptions(
            ep=ep,
            treatments=list(treatments),
            times=times or bool(self.scenario.time_trend),
            needed=needed,
            reported=set(characteristics or ()),
            biomarker_result=biomarker_result,
            also=tuple(also),
            marker=on_treatment and self.outcomes.marker is not None,
            censor=self.scenario.endpoints[ep].kind == "time_to_event" and self.outcomes.dropout_rate > 0,
        )

    def _draw(
        self,
        ts: TrialStreams,
        b0: int,
        carry: np.ndarray,
        need: np.ndarray,
        o: "_DrawOptions",
        keep_cohort: bool = False,
        observed: bool = False,
        per_slot: float = 0.0,
    ) -> "_Drawn":
        """Screened patients of the trials of ``ts`` from block ``b0`` on (``carry``: the accrual reached
        before it), block after block until each trial has found ``need`` (T,) randomizable ones.
        ``per_slot``: the share of screened patients found randomizable so far, if known (it sets how
        many blocks the first call draws; see :func:`_blocks_at_once`)."""
        n_trials = ts.n_trials
        d = _Drawn(b0, o, {other: [] for other in o.also})
        found = np.zeros(n_trials, dtype=np.int64)
        b = b0
        while (found < need).any():
            span = _blocks_at_once(n_trials, b - b0, found, need, per_slot)
            d.starts.append((b, carry, found.copy()))
            block, carry = self.population.block(
                ts,
                b,
                carry,
                o.times,
                o.needed,
                o.reported,
                o.biomarker_result,
                still_needed=need - found,
                blocks=span,
            )
            ok = block.reason == RANDOMIZED
            width = block.reason.shape[1]
            drawn_before: dict | None = {} if o.also else None
            if o.outcomes:
                d.outcome_parts.append(self.outcomes.potential(ts, b, block, o.ep, o.treatments, drawn_before))
            if o.combination:
                d.combination_parts.append(self.outcomes.combinations(o.ep, o.treatments, block.profile))
            for other in o.also:
                d.also_parts[other].append(self.outcomes.potential(ts, b, block, other, o.treatments, drawn_before))
            if o.marker:
                positive, biopsy = self.outcomes.on_treatment(ts, b, width, o.treatments)
                d.positive_parts.append(positive)
                d.biopsy_parts.append(biopsy)
            if keep_cohort:
                d.cohort_parts.append(block)
            if observed:
                d.observed_parts.append(block.observed)
            d.index_parts.append(ok)
            if o.times:
                d.time_parts.append(block.randomized_at)
                d.arrival_parts.append(block.arrival)
            if o.censor:  # the same stream the binary endpoints' dropout comes from
                d.dropout_parts.append(self.outcomes.dropout_times(ts, b, width))
            found += ok.sum(axis=1)
            b += span
            if b - b0 > 10_000:
                raise RuntimeError("the screening funnel randomizes almost nobody; check the scenario's screening")
        return d


@dataclass
class _DrawOptions:
    """What :meth:`VirtualPatients.enrol` draws of each screened patient (see its arguments)."""

    ep: str
    treatments: list[str]
    times: bool
    needed: set[str]
    reported: set[str]
    biomarker_result: bool
    also: tuple[str, ...]
    marker: bool
    censor: bool
    outcomes: bool = True  # the potential outcomes on ep under every treatment
    combination: bool = False  # the patients' combinations of the levels the outcomes read (drawn later)


@dataclass
class _Drawn:
    """The blocks :meth:`VirtualPatients._draw` drew, in parts, and where each call started: (block,
    accrual reached before it, randomizable patients found before it) per call."""

    b0: int
    options: _DrawOptions
    also_parts: dict[str, list[np.ndarray]]
    starts: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    outcome_parts: list[np.ndarray] = field(default_factory=list)
    combination_parts: list[np.ndarray] = field(default_factory=list)
    index_parts: list[np.ndarray] = field(default_factory=list)
    cohort_parts: list[Cohort] = field(default_factory=list)
    time_parts: list[np.ndarray] = field(default_factory=list)
    arrival_parts: list[np.ndarray] = field(default_factory=list)
    dropout_parts: list[np.ndarray] = field(default_factory=list)
    observed_parts: list[np.ndarray] = field(default_factory=list)
    positive_parts: list[np.ndarray] = field(default_factory=list)
    biopsy_parts: list[np.ndarray] = field(default_factory=list)

    @functools.cached_property
    def ok(self) -> np.ndarray:
        """(T, W) randomizable, for the W screened patients drawn (the parts joined once)."""
        return np.concatenate(self.index_parts, axis=1)

    def take(self, order: np.ndarray, cohort: Cohort | None, prefix: bool = False) -> Enrolled:
        """The patients at positions ``order`` (T, n) of those drawn, as :class:`Enrolled`
        (``prefix``: ``order`` is each row's first n positions)."""
        o = self.options
        n_trials, n = order.shape

        def pick(parts):
            return _picked(parts, order, prefix)

        also = {other: pick(parts) for other, parts in self.also_parts.items()}
        if o.marker:
            also[MARKER_POSITIVE] = pick(self.positive_parts)
            also[REBIOPSIED] = pick(self.biopsy_parts)
        return Enrolled(
            outcomes=pick(self.outcome_parts) if o.outcomes else np.zeros((n_trials, n, 0), dtype=bool),
            screened_index=self.b0 * BLOCK + order,
            cohort=cohort,
            n_screened=self.b0 * BLOCK + order[:, -1] + 1 if n else np.zeros(n_trials, dtype=np.int64),
            randomized_at=pick(self.time_parts) if o.times else None,
            last_arrival=_picked(self.arrival_parts, order[:, -1:])[:, 0] if o.times and n else None,
            dropout=pick(self.dropout_parts) if o.censor else None,
            also=also,
            observed=pick(self.observed_parts) if self.observed_parts else None,
            combination=pick(self.combination_parts) if o.combination else None,
        )


class Enrolment:
    """The randomizable patients of a batch of trials, taken in order, as many as asked at a time:
    :meth:`take` gives some trials their next ``n``, drawing only the screened patients they need
    (from the block where each trial's last patient taken lies). The patients are those of
    :meth:`VirtualPatients.enrol` with ``observed`` and the same arguments (each quantity is a
    function of the patient's position), without the cohort of every screened patient."""

    def __init__(
        self,
        patients: VirtualPatients,
        ts: TrialStreams,
        ep: str,
        treatments: list[str],
        times: bool = False,
        biomarker_result: bool = True,
        characteristics: list[str] | None = None,
        outcomes_later: bool = False,
    ):
        self.patients, self.ts = patients, ts
        self.options = patients._options(ep, treatments, times, characteristics, biomarker_result, (), False)
        if outcomes_later:  # the combinations of levels instead, to draw the outcomes when counted
            if not patients.outcomes.drawn_alone(ep, treatments):
                raise ValueError(f"the outcomes of {ep!r} cannot be drawn one treatment at a time")
            self.options = dataclasses.replace(self.options, outcomes=False, combination=True)
        n_trials = ts.n_trials
        self.block = np.zeros(n_trials, dtype=np.int64)  # the block to go on from
        self.carry = np.zeros(n_trials)  # the accrual reached before it
        self.taken = np.zeros(n_trials, dtype=np.int64)  # randomizable patients taken from it on
        self.per_slot = 0.0  # the share of the screened patients drawn so far found randomizable

    def take(self, rows: np.ndarray, n: int) -> Enrolled:
        """The next ``n`` randomizable patients of the batch rows ``rows`` (each row once), in the
        order of ``rows``; ``screened_index`` counts from the trial's first screened patient."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.block[rows]
        if (starts == starts[0]).all():
            return self._take_from(rows, int(starts[0]), n)
        parts, order = [], []
        for b0 in np.unique(starts):
            sel = np.flatnonzero(starts == b0)
            parts.append(self._take_from(rows[sel], int(b0), n))
            order.append(sel)
        where = np.empty(rows.size, dtype=np.int64)
        where[np.concatenate(order)] = np.arange(rows.size)
        return Enrolled(
            **{f.name: _joined_rows([getattr(p, f.name) for p in parts], where) for f in dataclasses.fields(Enrolled)}
        )

    def _take_from(self, rows: np.ndarray, b0: int, n: int) -> Enrolled:
        skip = self.taken[rows]
        need = skip + n
        d = self.patients._draw(
            self.ts.subset(rows), b0, self.carry[rows], need, self.options, observed=True, per_slot=self.per_slot
        )
        if not self.per_slot:
            self.per_slot = float(d.ok.mean())
        enrolled = d.take(_first_randomizable(d.ok, skip, n), None)
        # each trial goes on next time from the call in which its last patient was found
        for b, carry, found_before in d.starts:
            here = found_before < need
            self.block[rows[here]] = b
            self.carry[rows[here]] = carry[here]
            self.taken[rows[here]] = need[here] - found_before[here]
        return enrolled


def _joined_rows(parts: list, where: np.ndarray):
    """Per-row arrays (or dicts of them, or None) of several groups of rows, joined back in order."""
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {key: _joined_rows([p[key] for p in parts], where) for key in first}
    return np.concatenate(parts, axis=0)[where]


# Patient slots (trials times patients) worth drawing in one call when a batch holds few trials
# (the trials of a stratified batch whose pools grow): each call costs about a millisecond of
# Python and numpy overhead whatever its size, which 32,768 slots' work outweighs.
_SLOTS_AT_ONCE = 1 << 15
_RATE_MARGIN = 0.8  # a first call reckons with this share of the randomizable rate seen before


def _blocks_at_once(n_trials: int, drawn: int, found: np.ndarray, need: np.ndarray, per_slot: float = 0.0) -> int:
    """Blocks of patients to draw at once, when ``drawn`` blocks have given the trials ``found``
    randomizable patients of the ``need`` (T,) each needs: one while the batch alone fills
    :data:`_SLOTS_AT_ONCE`; before anything is drawn, as many as ``per_slot`` (the share of screened
    patients found randomizable before, if known; else one) says the neediest trial needs, with a
    margin (a block drawn beyond the last patient needed costs only its funnel, since a call's
    patients are cut after the last one needed, while a call more costs about a millisecond); else
    as many as each trial's rate so far says it still needs. At most that many slots. The blocks
    drawn at once do not change the patients (each quantity is a function of the patient's
    position), only the calls made."""
    most = _SLOTS_AT_ONCE // (max(n_trials, 1) * BLOCK)
    if most <= 1:
        return 1
    if drawn == 0:
        if per_slot <= 0:
            return 1
        blocks = math.ceil((need - found).max(initial=0) / (_RATE_MARGIN * per_slot * BLOCK))
        return int(min(max(blocks, 1), most))
    left = need - found
    short = left > 0
    per_block = found[short] / drawn
    if (per_block <= 0).any():
        return most
    blocks = np.ceil(left[short] / per_block).max(initial=1.0)
    return int(min(max(blocks, 1.0), most))


def _picked(parts: list[np.ndarray], order: np.ndarray, prefix: bool = False) -> np.ndarray:
    """``x[rows, order]`` of ``x``, the (T, W_j, ...) ``parts`` laid end to end along axis 1
    (``prefix``: ``order`` is each row's first n positions), written straight from the parts into
    the result: the parts are not joined first (a copy of every screened patient) unless some row's
    position falls back into an earlier part (:meth:`_Drawn.take`'s callers give rising ones)."""
    n_trials, n = order.shape
    tail = parts[0].shape[2:]
    if any(p.shape[0] != n_trials or p.shape[2:] != tail for p in parts):
        raise ValueError(
            f"parts of {n_trials} trials and trailing shape {tail} expected, got {[p.shape for p in parts]}"
        )
    parts = [p for p in parts if p.shape[1]] or parts[:1]
    if len(parts) == 1 and prefix:
        return parts[0][:, :n]
    out = np.empty((n_trials, n) + tail, dtype=np.result_type(*parts))
    if out.size == 0:
        return out
    if prefix:
        start = 0
        for part in parts:
            width = min(part.shape[1], n - start)
            if width <= 0:
                break
            out[:, start : start + width] = part[:, :width]
            start += width
        return out
    flat = out.reshape(n_trials, n, -1)
    cursor = np.zeros(n_trials, dtype=np.int64)
    start = 0
    for part in parts:
        _gather_from(
            part.reshape(n_trials, part.shape[1], -1).astype(out.dtype, copy=False), order, start, cursor, flat
        )
        start += part.shape[1]
    if (cursor < n).any():  # the joined parts hold every position: one pass over them from the start
        x = np.concatenate(parts, axis=1)
        _gather_from(x.reshape(n_trials, x.shape[1], -1), order, 0, np.zeros(n_trials, dtype=np.int64), flat)
    return out


@njit(cache=True)
def _gather_from(x, order, start, cursor, out):
    """out[t, j] = x[t, order[t, j] - start] for the positions of row t from ``cursor[t]`` on that lie
    in x (T, W, m), positions ``start .. start + W - 1`` of the parts laid end to end; ``cursor`` (T,)
    moves past them, and stops where a position falls before x (a row whose positions do not
    rise)."""
    n_trials, n = order.shape
    width, m = x.shape[1], x.shape[2]
    for t in range(n_trials):
        j = cursor[t]
        while j < n:
            i = order[t, j] - start
            if i < 0 or i >= width:
                break
            for c in range(m):
                out[t, j, c] = x[t, i, c]
            j += 1
        cursor[t] = j


@njit(cache=True)
def _first_randomizable(ok: np.ndarray, skip: np.ndarray, n: int) -> np.ndarray:
    """(T, n) int64 the positions of the randomizable patients ``skip[t] + 1 .. skip[t] + n`` of each
    row of ``ok`` (T, N) bool, in order (each row holds that many); with no skip,
    ``np.argsort(~ok, axis=1, kind="stable")[:, :n]``."""
    n_trials, n_patients = ok.shape
    out = np.empty((n_trials, n), dtype=np.int64)
    for t in range(n_trials):
        j = -skip[t]
        for i in range(n_patients):
            if j == n:
                break
            if ok[t, i]:
                if j >= 0:
                    out[t, j] = i
                j += 1
        if j < n:
            raise ValueError("a trial has fewer randomizable patients than asked for")
    return out


@dataclass
class Enrolled:
    outcomes: np.ndarray  # (T, n, K) potential outcomes of the randomizable patients, in order (K = 0: drawn later)
    screened_index: np.ndarray  # (T, n) their position in the stream of screened patients
    cohort: Cohort | None  # every screened patient generated for these trials (when kept)
    n_screened: np.ndarray  # (T,) screened patients up to the n-th randomizable one
    randomized_at: np.ndarray | None = None  # (T, n) months from opening to randomization (with times)
    dropout: np.ndarray | None = None  # (T, n) months from randomization to dropout (time-to-event endpoints)
    also: dict[str, np.ndarray] = field(default_factory=dict)  # endpoint -> (T, n, K) its potential outcomes
    observed: np.ndarray | None = None  # (T, n, C) int8 their screening results (enrolled with observed)
    last_arrival: np.ndarray | None = None  # (T,) months from opening to the last one's arrival (with times)
    combination: np.ndarray | None = None  # (T, n) their combinations of levels (outcomes drawn later)

    @property
    def marker_positive(self) -> np.ndarray:
        """(T, n, K) the on-treatment marker, positive under each treatment (patients enrolled with on_treatment)."""
        return self.also[MARKER_POSITIVE]

    @property
    def rebiopsied(self) -> np.ndarray:
        """(T, n) re-biopsied at the marker's week if still event-free then (patients enrolled with on_treatment)."""
        return self.also[REBIOPSIED]

    @property
    def ready(self) -> np.ndarray:
        """(T, n) months from opening to randomization (patients enrolled with times)."""
        if self.randomized_at is None:
            raise ValueError("these patients were enrolled without times (enrol(..., times=True))")
        return self.randomized_at

    def then(self, more: "Enrolled") -> "Enrolled":
        """These patients followed by ``more``, the same trials' next ones (from
        :meth:`Enrolment.take`); without a cohort."""

        def joined(x, y):
            return None if x is None else np.concatenate((x, y), axis=1)

        return Enrolled(
            outcomes=joined(self.outcomes, more.outcomes),
            screened_index=joined(self.screened_index, more.screened_index),
            cohort=None,
            n_screened=more.n_screened,
            randomized_at=joined(self.randomized_at, more.randomized_at),
            dropout=joined(self.dropout, more.dropout),
            also={key: joined(value, more.also[key]) for key, value in self.also.items()},
            observed=joined(self.observed, more.observed),
            last_arrival=more.last_arrival,
            combination=joined(self.combination, more.combination),
        )

    @property
    def kept(self) -> Cohort:
        """Every screened patient generated (patients enrolled with keep_cohort)."""
        if self.cohort is None:
            raise ValueError("these patients were enrolled without their cohort (enrol(..., keep_cohort=True))")
        return self.cohort


__all__ = [
    "BLOCK",
    "Enrolled",
    "Enrolment",
    "OutcomesModel",
    "Predictor",
    "ProfileIndex",
    "VirtualPatients",
    "WEEKS_PER_MONTH",
    "outcome_stream",
]
