"""Event-driven two-arm group-sequential designs: log-rank looks at event counts.

The trial randomizes ``max_n`` patients between an experimental arm and the control as the
scenario's accrual brings them (permuted blocks or simple randomization, ``allocation_ratio``
experimental : control). Each patient is followed until the event, dropout (the scenario's
``dropout``), the end of a fixed follow-up (``follow_up_months``) or the data cut-off. Analysis k
happens at the calendar month when the D_k-th event is observed, D_k = round(t_k D) with t_k the
information fractions and D the final events; if the trial's patients never produce D_k events,
it happens when the last patient's follow-up ends (a *shortfall*, counted in the results).

At each analysis the log-rank statistic of all patients randomized so far is computed with the
data cut at that month (:func:`~platform_sim.posterior.survival.logrank_vs_control`), oriented so
that Z > 0 favours the experimental arm. The trial stops for efficacy at the first analysis with
Z_k >= b_k, and for futility at the first with Z_k <= a_k. The boundaries are computed once, when
the design is compiled, by the exact recursion of
:mod:`platform_sim.posterior.group_sequential`, at the information fractions D_k / D the analyses
actually have. A non-binding futility boundary is followed in the simulation (the operating
characteristics are those of a trial that stops when it says so); its efficacy boundaries ignore
it, so the type I error stays at most alpha even if it is overruled.

Options
-------
* ``statistic`` / ``strata``: the Cox score test (Breslow or Efron ties) instead of the log-rank test,
  and the stratified version of either (:func:`~platform_sim.posterior.survival.score_at_cuts`).
* ``at_months``: looks at calendar months, with the boundary at their planned information fraction.
* ``accrual_months``: randomization closes at that month if ``max_n`` has not come by then.
* ``phase2``: a seamless phase II/III design. A go/no-go log-rank analysis of another endpoint (PFS)
  when its events reach a target; no-go stops the trial there for futility, go leads to the analyses
  above with every patient, those of phase II included.
* A scenario with an on-treatment marker: the landmark log-rank statistic within its positive and its
  negative re-biopsied patients at the stopping analysis (extras).

Analytic plan
-------------
The compiled design carries the analytic plan beside which the simulated operating
characteristics are read (:func:`analytic_versus_simulated`): the events of each look; the power
by look, under the design's alternative, from the canonical joint distribution with drift
-log(HR) sqrt(D_k r / (1 + r)^2) (Schoenfeld 1981); and, under the scenario's own survival curves,
the expected calendar month of each look, the expected patients enrolled by then, and the power
by look with the Lakatos (1988) drift (exact in the proportional-hazards limit, and correct to its
discretization under non-proportional hazards, as from a delayed effect or the illness-death
model of OS). Each arm's survival curve is the scenario's exact curve on a grid of
:data:`GRID_MONTHS`, held piecewise exponential between grid points; accrual is the scenario's
expected randomization curve in pieces of the same width.

The truth: the experimental arm *works* when its true effect (the log ratio of cumulative hazards at
the control's median, the log hazard ratio under proportional hazards) is at most
log(``relevant_hazard_ratio``), which defaults to the planned ``hazard_ratio``; it is *null* when the
effect is at least 0.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..config import ConfigError, Design, Problem, Scenario
from ..config.event_driven import Boundary, EventDriven
from ..outcomes import WEEKS_PER_MONTH, VirtualPatients
from ..posterior import group_sequential as gs
from ..posterior import planning
from ..results import CONTROL, EFFECTIVE, FUTILE, TrialResults, Truth
from ..streams import RANDOMIZATION, TrialStreams
from .base import Description, Parameter, Section, Size, Table, accrual_months, enrol_options, setting

STOP_NAMES = ("final", "efficacy", "futility")
_STATISTIC_WORDS = {
    "logrank": "log-rank test",
    "cox_score_breslow": "Cox score test (Breslow ties)",
    "cox_score_efron": "Cox score test (Efron ties)",
}
GRID_MONTHS = 0.1
"""Width (months) of the pieces on which survival curves and accrual are held for the analytic plan."""
_TOL = 1e-9
_HORIZON_SURVIVAL = 1e-9  # survival grids extend until the curve falls below this (or 600 months)


@dataclass(frozen=True)
class Plan:
    """The analytic plan of a compiled design (see the module docstring); per look (K,) arrays.

    ``events``: events at each analysis; ``power_planned``: P(efficacy at look k) at the design's
    hazard ratio (Schoenfeld drift); ``alpha_by_look``: P(efficacy at look k) under H0, with the
    futility boundary followed as in the simulation; ``month_null`` / ``month_scenario``: expected
    calendar month of each look with both arms on the control's survival / under the scenario;
    ``enrolled_scenario``: patients randomized by then; ``mean_z_scenario``: the Lakatos mean of Z_k
    under the scenario, and ``power_scenario`` / ``futility_scenario`` the probabilities of stopping
    for efficacy / futility at look k with it; ``expected_events_scenario`` and
    ``expected_month_scenario``: at stopping; ``max_expected_events``: events the scenario's patients
    are expected to produce in all; ``schoenfeld_fixed_events``: the fixed design's events at the
    planned hazard ratio."""

    events: np.ndarray
    power_planned: np.ndarray
    alpha_by_look: np.ndarray
    month_null: np.ndarray
    month_scenario: np.ndarray
    enrolled_scenario: np.ndarray
    mean_z_scenario: np.ndarray
    power_scenario: np.ndarray
    futility_scenario: np.ndarray
    expected_events_scenario: float
    expected_month_scenario: float
    max_expected_events: float
    schoenfeld_fixed_events: float
    phase2: Phase2Plan | None = None


@dataclass(frozen=True)
class Phase2Plan:
    """The analytic plan of a seamless design's phase II go/no-go analysis: ``go_z``, the Z it needs
    (z_{1-alpha}); ``month_null`` / ``month_scenario``: its expected calendar month with both arms on the
    control's curve of its endpoint / under the scenario; ``enrolled_scenario``: patients randomized by
    then; ``mean_z_scenario``: the Lakatos mean of its Z; ``p_go_scenario``: P(go) = Phi(mean - go_z)
    (alpha under the null); ``max_expected_events``: the events of its endpoint all patients are expected
    to produce."""

    go_z: float
    month_null: float
    month_scenario: float
    enrolled_scenario: float
    mean_z_scenario: float
    p_go_scenario: float
    max_expected_events: float


@dataclass(frozen=True, eq=False)
class EventDrivenDesign:
    """An event-driven two-arm design compiled for a scenario."""

    design: Design
    scenario: Scenario
    patients: VirtualPatients
    control: int  # index of the control arm in design order
    look_events: np.ndarray  # (K,) events D_k at each analysis
    efficacy_z: np.ndarray  # (K,) b_k
    futility_z: np.ndarray  # (K,) a_k, -inf: none
    gsd: gs.GroupSequentialDesign  # the boundaries' design, at fractions D_k / D
    plan: Plan
    true_median: np.ndarray  # (2,) exact median of each arm's treatment (months)
    true_effect: float  # the experimental arm's exact effect (log hazard ratio scale)
    # every eligible patient is randomized, whatever their biomarkers: no wait for a biomarker result
    needs_biomarker_result: bool = False
    strata_columns: tuple[int, ...] = ()  # profile columns of the design's strata (none: unstratified)
    strata_levels: tuple[int, ...] = ()  # levels of each

    @property
    def calendar_months(self) -> np.ndarray:
        """(K,) calendar month of each look set by ``at_months``, NaN for a look at its events."""
        at = self.section.at_months
        return np.full(self.n_looks, np.nan) if at is None else np.array([np.nan if m is None else m for m in at])

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(self.design.arm_names)

    @property
    def experimental(self) -> int:
        return 1 - self.control

    @property
    def section(self) -> EventDriven:
        return section(self.design)

    @property
    def n_looks(self) -> int:
        return int(self.look_events.size)


def section(design: Design) -> EventDriven:
    """The design's ``event_driven`` section (a design of this family has one)."""
    ed = design.event_driven
    assert ed is not None
    return ed


def _spending(b: Boundary):
    """A spending function object, or the z values of a given boundary."""
    if b.z is not None:
        return np.asarray(b.z, dtype=float)
    if b.spending == "obrien_fleming":
        return gs.LanDeMetsOBrienFleming()
    if b.spending == "pocock":
        return gs.LanDeMetsPocock()
    if b.spending == "hwang_shih_decani":
        return gs.HwangShihDeCani(float(b.gamma))  # type: ignore[arg-type]
    return gs.KimDeMetsPower(float(b.rho))  # type: ignore[arg-type]


def _boundary_design(ed: EventDriven, fractions) -> gs.GroupSequentialDesign:
    futility = None if ed.futility is None else _spending(ed.futility)
    return gs.group_sequential_design(
        fractions,
        ed.alpha,
        1.0 - ed.power,
        _spending(ed.efficacy),
        futility,
        binding_futility=bool(ed.futility is not None and ed.futility.binding),
    )


def look_events(ed: EventDriven) -> tuple[np.ndarray, float]:
    """(K,) events at each analysis and Schoenfeld's fixed-design events at the planned hazard ratio."""
    fixed = planning.schoenfeld_events(ed.hazard_ratio, ed.alpha, ed.power, ed.allocation_ratio)
    if ed.events is not None:
        total = int(ed.events)
        if total < ed.n_looks:
            raise ValueError(f"events ({total}) must be at least the number of analyses ({ed.n_looks})")
    else:
        total = int(math.ceil(_boundary_design(ed, ed.information_fractions).events(fixed)[-1] - 1e-9))
    events = np.maximum(np.round(np.asarray(ed.information_fractions) * total), 1).astype(np.int64)
    for k in range(1, events.size):  # distinct analyses
        events[k] = max(events[k], events[k - 1] + 1)
    return events, fixed


def _survival_grid(
    patients: VirtualPatients, ep: str, treatment: str, codes, prob, follow_up: float | None
) -> planning.PiecewiseExponential:
    """The treatment's exact survival curve over the population, held piecewise exponential on a grid
    of GRID_MONTHS (hazard 0 after a fixed follow-up: later events are not observed)."""
    horizon = 600.0 if follow_up is None else float(follow_up)
    starts = np.append(np.arange(0.0, horizon, GRID_MONTHS), horizon)
    starts = starts[np.concatenate(([True], np.diff(starts) > 1e-9))]
    surv = patients.outcomes.survival_curve(ep, treatment, codes, prob, starts)
    keep = np.concatenate(([True], surv[:-1] >= _HORIZON_SURVIVAL))  # up to the first point below the threshold
    starts, surv = starts[keep], surv[keep]
    log_s = np.log(np.maximum(surv, 1e-300))
    hazards = np.maximum(-np.diff(log_s), 0.0) / np.diff(starts)
    tail = 0.0 if follow_up is not None else float(hazards[-1])
    return planning.PiecewiseExponential(tuple(starts), tuple(hazards) + (tail,))


def _accrual(patients: VirtualPatients, n: float) -> planning.Accrual:
    """The scenario's expected randomization curve up to ``n`` patients, in pieces of GRID_MONTHS
    (merged where the rate is constant), the last piece stopping at ``n`` patients."""
    from ..config.population import expected_randomizable

    population = patients.population.config
    durations: list[float] = []
    rates: list[float] = []
    t, before = 0.0, 0.0
    while before < n - 1e-9 and t < 1e5:
        after = expected_randomizable(population, t + GRID_MONTHS, biomarker_result=False)
        width = GRID_MONTHS if after < n else GRID_MONTHS * (n - before) / (after - before)
        rate = (min(after, n) - before) / width
        if rates and abs(rate - rates[-1]) <= 1e-9 * max(rate, rates[-1]):
            durations[-1] += width
        else:
            durations.append(width)
            rates.append(rate)
        t += GRID_MONTHS
        before = min(after, n)
    return planning.Accrual(tuple(durations), tuple(rates))


def planned_patients(ed: EventDriven, patients: VirtualPatients) -> float:
    """The patients the design expects to randomize: ``max_n``, or those the scenario's accrual brings by
    ``accrual_months`` when fewer."""
    if ed.accrual_months is None:
        return float(ed.max_n)
    from ..config.population import expected_randomizable

    return min(float(ed.max_n), float(expected_randomizable(patients.population.config, ed.accrual_months, False)))


def _patients_words(ed: EventDriven, patients: VirtualPatients) -> str:
    if ed.accrual_months is None:
        return f"{ed.max_n} patients"
    return (
        f"the {planned_patients(ed, patients):.1f} patients expected by month {setting(ed.accrual_months)} "
        f"(at most {ed.max_n})"
    )


def _plan(
    ed: EventDriven,
    events: np.ndarray,
    fixed: float,
    gsd: gs.GroupSequentialDesign,
    patients: VirtualPatients,
    ep: str,
    treatments: list[str],
    control: int,
) -> Plan:
    r = float(ed.allocation_ratio)
    info = events * r / (1.0 + r) ** 2
    planned = gs.crossing_probabilities(gsd.efficacy_z, gsd.futility_z, info, -math.log(ed.hazard_ratio))
    null = gs.crossing_probabilities(gsd.efficacy_z, gsd.futility_z, info, 0.0)
    relevant = patients._relevant_markers(ep, treatments)
    codes, prob = patients.population.distribution(relevant)
    rate = patients.outcomes.dropout_rate
    arms = [
        planning.ArmModel(_survival_grid(patients, ep, t, codes, prob, ed.follow_up_months), dropout=rate)
        for t in treatments
    ]
    accrual = _accrual(patients, planned_patients(ed, patients))
    exp = 1 - control
    weights = (r, 1.0)
    ever = float(planning.expected_events([1e4], accrual, (arms[exp], arms[control]), weights)[0].sum())
    if ever < events[-1]:
        raise ConfigError(
            [
                Problem(
                    "design.event_driven.events",
                    f"{_patients_words(ed, patients)} randomized as the scenario accrues them, followed "
                    f"{'for ' + setting(ed.follow_up_months) + ' months' if ed.follow_up_months else 'until the final analysis'}"
                    f" with its dropout, are expected to produce only {ever:.1f} events under scenario "
                    f"{patients.scenario.name!r}; the final analysis needs {int(events[-1])}. Raise max_n or the follow-up, or "
                    "lower the events",
                    int(events[-1]),
                )
            ]
        )
    tte = planning.group_sequential_tte(gsd, accrual, arms[control], arms[exp], r, max_events=float(events[-1]))
    if ed.at_months is not None:
        return _calendar_plan(
            ed,
            events,
            fixed,
            gsd,
            accrual,
            arms[control],
            arms[exp],
            planned.efficacy,
            null.efficacy,
            ever,
            tte,
            patients.scenario.name,
        )
    return Plan(
        events=events.astype(float),
        power_planned=planned.efficacy,
        alpha_by_look=null.efficacy,
        month_null=tte.time_null,
        month_scenario=tte.time_alternative,
        enrolled_scenario=tte.enrolled_alternative,
        mean_z_scenario=tte.mean_z,
        power_scenario=tte.alternative.efficacy,
        futility_scenario=tte.alternative.futility,
        expected_events_scenario=tte.expected_events_alternative,
        expected_month_scenario=tte.expected_time_alternative,
        max_expected_events=ever,
        schoenfeld_fixed_events=fixed,
    )


def _calendar_plan(
    ed: EventDriven,
    events: np.ndarray,
    fixed: float,
    gsd: gs.GroupSequentialDesign,
    accrual: planning.Accrual,
    control: planning.ArmModel,
    experimental: planning.ArmModel,
    power_planned: np.ndarray,
    alpha_by_look: np.ndarray,
    ever: float,
    tte: planning.TTEPlan,
    scenario_name: str,
) -> Plan:
    """The analytic plan when some looks are at calendar months: those looks fall at their month, the others
    when the expected events reach D_k (and no look before the one ahead of it); Z_k has the Lakatos mean at
    the look's month and the canonical correlation of the expected events by then. ``power_planned`` and
    ``alpha_by_look`` are those at the planned events (the boundaries' own fractions)."""
    r = float(ed.allocation_ratio)
    at = np.array([np.nan if m is None else m for m in ed.at_months or ()])
    calendar = np.isfinite(at)
    month_null = np.where(calendar, at, tte.time_null)
    month = np.where(calendar, at, tte.time_alternative)
    last = accrual.duration + (ed.follow_up_months if ed.follow_up_months is not None else math.inf)
    end_null = float(month_null[-1]) if not calendar[-1] else last
    for k in (int(i) for i in np.flatnonzero(calendar)):
        if at[k] > min(last, end_null) + _TOL:
            where = (
                f"the last patient's follow-up ends (month {last:.1f}: accrual {accrual.duration:.1f} + follow-up "
                f"{setting(ed.follow_up_months)})"
                if last <= end_null
                else f"the final analysis is expected (month {end_null:.1f}, with both arms on the control's survival "
                f"under scenario {scenario_name!r})"
            )
            raise ConfigError(
                [
                    Problem(
                        f"design.event_driven.at_months[{k}]",
                        f"look {k + 1} is dated month "
                        f"{setting(float(at[k]))}, after {where}: the trial is over by then",
                        float(at[k]),
                    )
                ]
            )
    for k in range(1, month.size):
        for when, name in (
            (month, f"under scenario {scenario_name!r}"),
            (month_null, "with both arms on the control's survival"),
        ):
            if when[k] <= when[k - 1] + _TOL:
                j = k - 1 if calendar[k - 1] else k
                raise ConfigError(
                    [
                        Problem(
                            f"design.event_driven.at_months[{j}]",
                            f"look {k + 1} is expected at month {when[k]:.1f} "
                            f"{name}, not after look {k} (month {when[k - 1]:.1f}): date the calendar look so that the looks "
                            "keep their order, or change the information fractions",
                            ed.at_months[j] if ed.at_months else None,
                        )
                    ]
                )
    expected = planning.expected_events(month, accrual, (experimental, control), (r, 1.0)).sum(axis=1)
    expected = np.maximum(expected, 1e-9)
    means = np.array([planning.lakatos(float(t), accrual, control, experimental, r).mean_z for t in month])
    alt = gs.crossing_probabilities(gsd.efficacy_z, gsd.futility_z, expected, means=means, grid_points=gsd.grid_points)
    stop = alt.efficacy + alt.futility  # P(stop at look k); at the final look, P(reaching it)
    return Plan(
        events=events.astype(float),
        power_planned=power_planned,
        alpha_by_look=alpha_by_look,
        month_null=month_null,
        month_scenario=month,
        enrolled_scenario=planning.expected_enrolled(month, accrual),
        mean_z_scenario=means,
        power_scenario=alt.efficacy,
        futility_scenario=alt.futility,
        expected_events_scenario=float(stop @ expected),
        expected_month_scenario=float(stop @ month),
        max_expected_events=ever,
        schoenfeld_fixed_events=fixed,
    )


def _phase2_plan(
    ed: EventDriven, plan: Plan, patients: VirtualPatients, treatments: list[str], control: int
) -> Phase2Plan:
    """The analytic plan of the phase II analysis (see :class:`Phase2Plan`); errors name the field when its
    events cannot be reached or it would not come before the first analysis of the design's endpoint."""
    from scipy import special

    p2 = ed.phase2
    assert p2 is not None
    r = float(ed.allocation_ratio)
    ep = p2.endpoint
    relevant = patients._relevant_markers(ep, treatments)
    codes, prob = patients.population.distribution(relevant)
    rate = patients.outcomes.dropout_rate
    arms = [
        planning.ArmModel(_survival_grid(patients, ep, t, codes, prob, ed.follow_up_months), dropout=rate)
        for t in treatments
    ]
    exp = 1 - control
    accrual = _accrual(patients, planned_patients(ed, patients))
    weights = (r, 1.0)
    ever = float(planning.expected_events([1e4], accrual, (arms[exp], arms[control]), weights)[0].sum())
    if ever < p2.events:
        raise ConfigError(
            [
                Problem(
                    "design.event_driven.phase2.events",
                    f"the phase II analysis needs {p2.events} {ep} events, but the "
                    f"{_patients_words(ed, patients)} the trial accrues under scenario {patients.scenario.name!r} are expected to produce "
                    f"only {ever:.1f} in all. Lower the events or raise max_n",
                    p2.events,
                )
            ]
        )
    null_arms = (planning.ArmModel(arms[control].hazard, dropout=rate), arms[control])
    month = float(planning.time_of_events([float(p2.events)], accrual, (arms[exp], arms[control]), weights)[0])
    month_null = float(planning.time_of_events([float(p2.events)], accrual, null_arms, weights)[0])
    for when, first, words in (
        (month, plan.month_scenario[0], f"under scenario {patients.scenario.name!r}"),
        (month_null, plan.month_null[0], "with both arms on the control's survival"),
    ):
        if when >= first - _TOL:
            raise ConfigError(
                [
                    Problem(
                        "design.event_driven.phase2.events",
                        f"the phase II analysis ({p2.events} {ep} events) is expected at "
                        f"month {when:.1f} {words}, not before the first analysis of the design's endpoint (month "
                        f"{first:.1f}). Lower the phase II events or raise the first information fraction",
                        p2.events,
                    )
                ]
            )
    go_z = float(-special.ndtri(p2.alpha))
    mean = float(planning.lakatos(month, accrual, arms[control], arms[exp], r).mean_z)
    return Phase2Plan(
        go_z=go_z,
        month_null=month_null,
        month_scenario=month,
        enrolled_scenario=float(planning.expected_enrolled(np.array([month]), accrual)[0]),
        mean_z_scenario=mean,
        p_go_scenario=float(special.ndtr(mean - go_z)),
        max_expected_events=ever,
    )


def assign_arms(u: np.ndarray, ratio: float, scheme: str) -> np.ndarray:
    """(T, N) arm of each patient, 1 for experimental and 0 for control, from uniforms ``u``.

    ``simple``: experimental with probability ratio / (1 + ratio). ``block``: permuted blocks holding
    2 (e + c) patients, e : c the ratio as a fraction with denominator at most 10; patients beyond the
    last full block are randomized simply."""
    p = ratio / (1.0 + ratio)
    if scheme == "simple":
        return (u < p).astype(np.int8)
    frac = Fraction(ratio).limit_denominator(10)
    e, c = frac.numerator, frac.denominator
    size = 2 * (e + c)
    t, n = u.shape
    full = n // size * size
    out = (u < p).astype(np.int8)
    if full:
        block = u[:, :full].reshape(t, -1, size)
        rank = block.argsort(axis=2).argsort(axis=2)
        out[:, :full] = (rank < 2 * e).reshape(t, full)
    return out


class EventDrivenFamily:
    """Event-driven two-arm group-sequential designs (see the module docstring)."""

    name = "event_driven"
    title = "event-driven group-sequential design"

    def matches(self, design: Design) -> bool:
        return design.event_driven is not None

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> EventDrivenDesign:
        ed = section(design)
        ep = design.endpoint.name
        if scenario.endpoints[ep].kind != "time_to_event":
            tte = sorted(n for n, e in scenario.endpoints.items() if e.kind == "time_to_event")
            raise ConfigError(
                [
                    Problem(
                        "design.endpoint.name",
                        f"is a {scenario.endpoints[ep].kind} endpoint; an "
                        f"event-driven design analyses a time_to_event endpoint (this scenario has "
                        f"{tte})",
                        ep,
                    )
                ]
            )
        control = design.arm_names.index(design.control)  # type: ignore[arg-type]
        treatments = [a.treatment for a in design.arms]
        try:
            events, fixed = look_events(ed)
            gsd = _boundary_design(ed, events / events[-1])
        except ValueError as exc:
            raise ConfigError([Problem("design.event_driven", str(exc), None)]) from None
        if ed.max_n < 2:
            raise ConfigError([Problem("design.event_driven.max_n", "needs at least 2 patients", ed.max_n)])
        columns, levels = [], []
        for i, name in enumerate(ed.strata or ()):
            if name not in patients.population.index:
                raise ConfigError(
                    [
                        Problem(
                            f"design.event_driven.strata[{i}]",
                            f"{name!r} is not a characteristic of "
                            f"scenario {scenario.name!r}'s population (it has "
                            f"{sorted(patients.population.index)})",
                            name,
                        )
                    ]
                )
            columns.append(patients.population.index[name])
            levels.append(len(patients.population.levels[columns[-1]]))
        plan = _plan(ed, events, fixed, gsd, patients, ep, treatments, control)
        if ed.phase2 is not None:
            p2 = ed.phase2.endpoint
            if p2 not in scenario.endpoints or scenario.endpoints[p2].kind != "time_to_event" or p2 == ep:
                tte = sorted(n for n, e in scenario.endpoints.items() if e.kind == "time_to_event" and n != ep)
                raise ConfigError(
                    [
                        Problem(
                            "design.event_driven.phase2.endpoint",
                            f"must be a time_to_event endpoint "
                            f"of scenario {scenario.name!r} other than the design's {ep!r}; it has {tte}",
                            p2,
                        )
                    ]
                )
            plan = dataclasses.replace(plan, phase2=_phase2_plan(ed, plan, patients, treatments, control))
        relevant = patients._relevant_markers(ep, treatments)
        codes, prob = patients.population.distribution(relevant)
        effect = patients.outcomes.effect(ep, treatments[1 - control], treatments[control], codes, prob)
        return EventDrivenDesign(
            design,
            scenario,
            patients,
            control,
            events,
            gsd.efficacy_z,
            gsd.futility_z,
            gsd,
            plan,
            patients.truth(ep, treatments),
            float(effect),
            strata_columns=tuple(columns),
            strata_levels=tuple(levels),
        )

    def recompile(self, compiled: EventDrivenDesign, design: Design) -> EventDrivenDesign:
        return self.compile(design, compiled.scenario, compiled.patients)

    def simulate(self, compiled: EventDrivenDesign, streams: TrialStreams, trace=None) -> TrialResults:
        c = compiled
        ed = c.section
        n = ed.max_n
        treatments = [a.treatment for a in c.design.arms]
        enrolled = c.patients.enrol(
            streams,
            n,
            c.design.endpoint.name,
            treatments,
            times=True,
            biomarker_result=c.needs_biomarker_result,
            **enrol_options(trace, list(ed.strata) if ed.strata else None, c.patients.population.names),
            also=(ed.phase2.endpoint,) if ed.phase2 is not None else (),
            on_treatment=c.scenario.on_treatment_marker is not None,
        )
        rows = np.arange(streams.n_trials)
        entry = enrolled.ready[:, :n].astype(np.float64)
        experimental = assign_arms(
            streams.uniform(RANDOMIZATION, "randomization:arm", 0, n), ed.allocation_ratio, ed.randomization
        )
        arm = np.where(experimental == 1, c.experimental, c.control).astype(np.int64)
        if ed.accrual_months is not None:  # randomization closes: later patients are never in the trial
            entry = np.where(entry <= ed.accrual_months, entry, np.inf)
        outcome = np.take_along_axis(enrolled.outcomes[:, :n, :], arm[:, :, None], axis=2)[:, :, 0].astype(np.float64)
        censor = (
            np.full(entry.shape, np.inf) if enrolled.dropout is None else enrolled.dropout[:, :n].astype(np.float64)
        )
        if ed.follow_up_months is not None:
            censor = np.minimum(censor, ed.follow_up_months)
        event = outcome <= censor
        followed = np.minimum(outcome, censor)  # months from randomization to event or censoring
        event_month = np.where(event, entry + outcome, np.inf)
        ordered = np.sort(event_month, axis=1)
        last_follow_up = np.where(np.isfinite(entry), entry + followed, 0.0).max(axis=1)
        K = c.n_looks
        target = np.minimum(c.look_events, n) - 1
        look_month = ordered[:, target]  # (T, K)
        shortfall = ~np.isfinite(look_month)
        look_month = np.where(shortfall, last_follow_up[:, None], look_month)
        if ed.at_months is not None:  # calendar looks; the analyses keep their order
            calendar = np.isfinite(c.calendar_months)
            shortfall &= ~calendar
            look_month = np.maximum.accumulate(np.where(calendar, c.calendar_months, look_month), axis=1)
        phase2 = None
        if ed.phase2 is not None:  # the go/no-go analysis; the later analyses do not come before it
            phase2 = self._phase2(c, enrolled, entry, censor, arm)
            look_month = np.maximum(look_month, phase2["month"][:, None])
            look_month = np.concatenate((look_month, phase2["month"][:, None]), axis=1)  # last: OS at the phase II cut
        if ed.statistic == "logrank" and not c.strata_columns:
            from ..posterior.survival import logrank_at_cuts

            z, oe, var = logrank_at_cuts(entry, followed, event, arm == c.experimental, look_month)
        else:
            from ..posterior.survival import score_at_cuts

            z, oe, var = score_at_cuts(
                entry, followed, event, arm == c.experimental, look_month, self._stratum(c, enrolled, n), ed.statistic
            )
        if phase2 is not None:
            look_month, z = look_month[:, :-1], z[:, :-1]  # oe and var keep the phase II cut (column K)
        z_benefit = -z
        z_benefit = np.where(np.isfinite(z_benefit), z_benefit, 0.0)
        # sequential decisions
        stopped = np.zeros(streams.n_trials, dtype=bool)
        stop_look = np.full(streams.n_trials, K - 1, dtype=np.int64)
        reason = np.zeros(streams.n_trials, dtype=np.int8)
        for k in range(K):
            eff = ~stopped & (z_benefit[:, k] >= c.efficacy_z[k])
            fut = ~stopped & ~eff & (z_benefit[:, k] <= c.futility_z[k]) & (k < K - 1)
            stop_look = np.where(eff | fut, k, stop_look)
            reason = np.where(eff, 1, np.where(fut, 2, reason)).astype(np.int8)
            stopped |= eff | fut
        claimed = reason == 1
        at_stop = look_month[rows, stop_look]
        estimate_look = stop_look
        if phase2 is not None:
            ungated = claimed
            no_go = ~phase2["go"]
            claimed = claimed & ~no_go
            reason = np.where(no_go, 2, reason).astype(np.int8)
            stop_look = np.where(no_go, -1, stop_look)
            at_stop = np.where(no_go, phase2["month"], at_stop)
            estimate_look = np.where(no_go, K, stop_look)  # the OS estimate at the phase II cut
        randomized = entry <= at_stop[:, None]
        n_arm = np.stack([(randomized & (arm == a)).sum(axis=1) for a in range(2)], axis=1)
        events_stop = event_month <= at_stop[:, None]
        events_arm = np.stack([(events_stop & (arm == a)).sum(axis=1) for a in range(2)], axis=1)
        n_enrolled = randomized.sum(axis=1)
        log_hr = np.full((streams.n_trials, 2), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_hr[:, c.experimental] = oe[rows, estimate_look] / var[rows, estimate_look]
        status = np.empty((streams.n_trials, 2), dtype=np.int8)
        status[:, c.control] = CONTROL
        status[:, c.experimental] = np.where(claimed, EFFECTIVE, FUTILE)
        claim = np.zeros((streams.n_trials, 2, 1), dtype=bool)
        claim[:, c.experimental, 0] = claimed
        claim_month = np.full((streams.n_trials, 2, 1), np.nan)
        claim_month[:, c.experimental, 0] = np.where(claimed, at_stop, np.nan)
        events_by_look = (event_month[:, None, :] <= look_month[:, :, None]).sum(axis=2)
        if trace is not None:
            trace.enrolled = enrolled
            trace.arm = arm
            # each randomized patient's data at the stopping analysis: time and event with the data cut there
            cut = at_stop[:, None] - entry
            trace.keep(
                entry=entry,
                stop_month=at_stop,
                time=np.where(randomized, np.minimum(followed, cut), np.nan),
                event=randomized & event & (entry + followed <= at_stop[:, None]),
            )
            if phase2 is not None:
                p2 = ed.phase2
                assert p2 is not None
                trace.record(
                    "phase2",
                    rows,
                    month=phase2["month"],
                    z=phase2["z"],
                    go=phase2["go"],
                    events=phase2["events"],
                    patients=(entry <= phase2["month"][:, None]).sum(axis=1),
                )
            for k in range(K):
                reached = stop_look >= k
                trace.record(
                    "look",
                    rows[reached],
                    look=k,
                    month=look_month[reached, k],
                    events=events_by_look[reached, k],
                    z=z_benefit[reached, k],
                    patients=(entry[reached] <= look_month[reached, k, None]).sum(axis=1),
                    decision=np.where(stop_look[reached] == k, reason[reached], 0),
                )
        trial_values: dict[str, np.ndarray] = {
            "events_at_stop": events_arm.sum(axis=1).astype(float),
            "p_stopped_early": stop_look < K - 1,
            "p_shortfall": shortfall.any(axis=1),
        }
        for k in range(K):
            trial_values[f"p_efficacy_look_{k + 1}"] = claimed & (stop_look == k)
            if k < K - 1 and np.isfinite(c.futility_z[k]):
                trial_values[f"p_futility_look_{k + 1}"] = (reason == 2) & (stop_look == k)
            trial_values[f"month_of_look_{k + 1}"] = look_month[:, k]  # the look's month, had the trial gone on
        extras: dict[str, np.ndarray] = {
            "z": z_benefit,
            "look_month": look_month,
            "events_by_look": events_by_look,
            "stop_look": stop_look,
        }
        extra_dims = {
            "z": ("trial", "look"),
            "look_month": ("trial", "look"),
            "events_by_look": ("trial", "look"),
            "stop_look": ("trial",),
        }
        if c.scenario.on_treatment_marker is not None:
            marker = self._on_treatment_subgroups(c, enrolled, entry, followed, event, arm, at_stop)
            for key in ("rebiopsied_at_stop", "on_treatment_positive_at_stop"):
                trial_values[key] = marker.pop(key)
            for key, value in marker.items():
                extras[key] = value
                extra_dims[key] = ("trial",)
        if phase2 is not None:
            trial_values["p_go"] = phase2["go"]
            trial_values["month_of_phase2"] = phase2["month"]
            trial_values["p_phase2_shortfall"] = phase2["shortfall"]
            trial_values["p_efficacy_without_gate"] = ungated  # had every trial gone on to phase III
            extras["phase2_z"] = phase2["z"]
            extra_dims["phase2_z"] = ("trial",)
        return TrialResults(
            trial=np.asarray(streams.trials, dtype=np.int64),
            arms=c.arm_names,
            strata=("all",),
            subgroups=("all",),
            membership=np.ones((1, 1), dtype=bool),
            stop_names=STOP_NAMES,
            n=n_arm[:, :, None].astype(np.int64),
            events=events_arm[:, :, None].astype(np.int64),
            claimed=claim,
            claim_month=claim_month,
            status=status,
            stop_reason=reason,
            n_screened=(enrolled.screened_index[rows, np.maximum(n_enrolled, 1) - 1] + 1).astype(np.int64),
            duration_months=at_stop,
            estimates={"log_hazard_ratio": log_hr[:, :, None]},
            estimate_targets={"log_hazard_ratio": "effect"},
            trial_values=trial_values,
            extras=extras,
            extra_dims=extra_dims,
        )

    @staticmethod
    def _phase2(c: EventDrivenDesign, enrolled, entry: np.ndarray, censor: np.ndarray, arm: np.ndarray) -> dict:
        """The phase II analysis of every trial: its calendar ``month`` (when its events are observed, or the
        last follow-up on a ``shortfall``), the log-rank ``z`` of its endpoint (positive for a benefit) and
        ``go`` (z at least the go threshold); (T,) arrays."""
        from ..posterior.survival import logrank_at_cuts

        p2 = c.section.phase2
        assert p2 is not None and c.plan.phase2 is not None
        n = entry.shape[1]
        rows = np.arange(entry.shape[0])
        outcome = np.take_along_axis(enrolled.also[p2.endpoint][:, :n, :], arm[:, :, None], axis=2)[:, :, 0]
        outcome = outcome.astype(np.float64)
        event = outcome <= censor
        followed = np.minimum(outcome, censor)
        ordered = np.sort(np.where(event, entry + outcome, np.inf), axis=1)
        month = ordered[rows, min(p2.events, n) - 1]
        shortfall = ~np.isfinite(month)
        month = np.where(shortfall, np.where(np.isfinite(entry), entry + followed, 0.0).max(axis=1), month)
        z = -logrank_at_cuts(entry, followed, event, arm == c.experimental, month[:, None])[0][:, 0]
        z = np.where(np.isfinite(z), z, 0.0)
        events = (event & (entry + outcome <= month[:, None])).sum(axis=1)
        return {"month": month, "z": z, "go": z >= c.plan.phase2.go_z, "shortfall": shortfall, "events": events}

    @staticmethod
    def _on_treatment_subgroups(c: EventDrivenDesign, enrolled, entry, followed, event, arm, at_stop) -> dict:
        """The analysis by the scenario's on-treatment marker at the stopping analysis: among the patients
        re-biopsied at its week (randomized at least that long before the cut and event-free, still followed,
        then), the landmark log-rank statistic from the week on within the marker-positive and within the
        marker-negative patients. Returns (T,) arrays: ``rebiopsied_at_stop``, ``on_treatment_positive_at_stop``
        (counts), ``z_on_treatment_positive`` / ``_negative`` (positive for a benefit, NaN without
        information) and ``log_hr_on_treatment_positive`` / ``_negative`` ((O - E) / V)."""
        from ..posterior.survival import logrank_at_cuts

        marker = c.scenario.on_treatment_marker
        assert marker is not None
        w = marker.week / WEEKS_PER_MONTH
        n = entry.shape[1]
        positive = np.take_along_axis(enrolled.marker_positive[:, :n, :], arm[:, :, None], axis=2)[:, :, 0]
        landmark = enrolled.rebiopsied[:, :n] & (followed > w) & (entry + w <= at_stop[:, None])
        out = {
            "rebiopsied_at_stop": landmark.sum(axis=1).astype(float),
            "on_treatment_positive_at_stop": (landmark & positive).sum(axis=1).astype(float),
        }
        for name, members in (("positive", landmark & positive), ("negative", landmark & ~positive)):
            z, oe, var = logrank_at_cuts(
                np.where(members, entry + w, np.inf),
                np.maximum(followed - w, 0.0),
                event,
                arm == c.experimental,
                at_stop[:, None],
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"z_on_treatment_{name}"] = -z[:, 0]
                out[f"log_hr_on_treatment_{name}"] = oe[:, 0] / var[:, 0]
        return out

    @staticmethod
    def _stratum(c: EventDrivenDesign, enrolled, n: int) -> np.ndarray | None:
        """(T, n) stratum index of each randomized patient (the combination of its levels of the design's
        strata), or None when the design has none."""
        if not c.strata_columns:
            return None
        rows = np.arange(enrolled.screened_index.shape[0])[:, None]
        profile = enrolled.kept.profile[rows, enrolled.screened_index[:, :n]]
        stratum = np.zeros(profile.shape[:2], dtype=np.int64)
        for col, levels in zip(c.strata_columns, c.strata_levels):
            stratum = stratum * levels + profile[:, :, col]
        return stratum

    def truth(self, compiled: EventDrivenDesign) -> Truth:
        c = compiled
        ed = c.section
        bound = math.log(ed.relevant_hazard_ratio if ed.relevant_hazard_ratio is not None else ed.hazard_ratio)
        effect = np.zeros(2)
        effect[c.experimental] = c.true_effect
        judged = np.arange(2) == c.experimental
        works = judged & (effect <= bound + _TOL)
        null = judged & (effect >= -_TOL)
        value = c.true_median.astype(float)
        return Truth(
            arms=c.arm_names,
            subgroups=("all",),
            strata=("all",),
            membership=np.ones((1, 1), dtype=bool),
            share=np.ones(1),
            value=value[:, None],
            reference=np.full((2, 1), value[c.control]),
            effect=effect[:, None],
            works=works[:, None],
            null=null[:, None],
            judged=judged[:, None],
            works_in_stratum=works[:, None],
            null_in_stratum=null[:, None],
            control=c.control,
            value_name=f"median {c.design.endpoint.name} (months)",
            effect_scale="log hazard ratio",
            effect_better=-1.0,
        )

    def size(self, compiled: EventDrivenDesign) -> Size:
        ed = compiled.section
        n = compiled.section.max_n
        months = accrual_months(compiled.patients.population.config, n, 1.0, compiled.needs_biomarker_result)
        if ed.accrual_months is not None and ed.accrual_months < months:
            return Size(int(round(planned_patients(ed, compiled.patients))), float(ed.accrual_months))
        return Size(n, months)

    def resize(self, compiled: EventDrivenDesign, max_n: int | None = None, months: float | None = None) -> Design:
        """The design with ``max_n`` patients (or those its accrual brings in ``months``), its events scaled by
        the same factor when they are given."""
        from ..config import parse_design
        from ..config.population import expected_randomizable

        ed = compiled.section
        target = (
            max_n
            if max_n is not None
            else int(round(expected_randomizable(compiled.patients.population.config, float(months or 0.0), False)))
        )
        if target < 2:
            raise ConfigError(
                [
                    Problem(
                        "design.event_driven.max_n",
                        f"sizing {compiled.design.name!r} leaves fewer than 2 patients",
                        target,
                    )
                ]
            )
        data = compiled.design.model_dump()
        data["event_driven"]["max_n"] = int(target)
        if ed.events is not None:
            data["event_driven"]["events"] = max(1, int(round(ed.events * target / ed.max_n)))
        return parse_design(data)

    def profiles(self, compiled: EventDrivenDesign, characteristics: list[str]):
        from ..strata import profile_strata

        return profile_strata(compiled.patients.population, None, characteristics)

    def describe(self, compiled: EventDrivenDesign) -> Description:
        c = compiled
        ed = c.section
        exp, ctl = c.arm_names[c.experimental], c.arm_names[c.control]
        fut = (
            "none"
            if ed.futility is None
            else (f"{'binding' if ed.futility.binding else 'non-binding'}, {c.gsd.futility_spending}")
        )
        given = (
            "given"
            if ed.events is not None
            else (
                f"Schoenfeld's {c.plan.schoenfeld_fixed_events:.1f} for HR {setting(ed.hazard_ratio)}, one-sided alpha "
                f"{setting(ed.alpha)} and power {setting(ed.power)}, inflated by {c.gsd.inflation_factor:.4f}"
            )
        )
        words: tuple[str, ...] = (
            f"{ed.max_n} patients are randomized {setting(ed.allocation_ratio)} : 1 to {exp} or {ctl} "
            f"({ed.randomization} randomization) and followed "
            f"{'for at most ' + setting(ed.follow_up_months) + ' months' if ed.follow_up_months else 'until the final analysis'}"
            + (
                f"; randomization closes at month {setting(ed.accrual_months)} if they have not all come by then "
                f"({planned_patients(ed, c.patients):.1f} patients expected)."
                if ed.accrual_months is not None
                else "."
            ),
            f"The {_STATISTIC_WORDS[ed.statistic]} of {c.design.endpoint.name}"
            f"{' stratified by ' + ', '.join(ed.strata) if ed.strata else ''} is analysed "
            + (
                "when " + ", ".join(str(int(e)) for e in c.look_events) + " events have been observed"
                if ed.at_months is None
                else ", ".join(
                    f"at month {setting(m)} (planned {int(e)} events)" if m is not None else f"at {int(e)} events"
                    for m, e in zip(ed.at_months, c.look_events)
                )
            )
            + f" (final events: {given}).",
            f"Efficacy boundaries: {c.gsd.efficacy_spending}; futility: {fut}. The trial stops for efficacy when Z "
            "(positive for a benefit) reaches the efficacy boundary, and for futility when it falls to the futility "
            "boundary.",
            f"{exp} works when its true hazard ratio is at most "
            f"{setting(ed.relevant_hazard_ratio or ed.hazard_ratio)}; it is null when it is at least 1. Its true "
            f"effect here: {math.exp(c.true_effect):.3f} (median {c.true_median[c.experimental]:.2f} vs "
            f"{c.true_median[c.control]:.2f} months).",
            f"The scenario's patients are expected to produce {c.plan.max_expected_events:.1f} events in all.",
        )
        p = c.plan
        rows = tuple(
            (
                k + 1,
                int(c.look_events[k]),
                round(float(c.efficacy_z[k]), 4),
                "" if not np.isfinite(c.futility_z[k]) else round(float(c.futility_z[k]), 4),
                round(float(p.alpha_by_look[k]), 5),
                round(float(p.power_planned[k]), 4),
                round(float(p.month_scenario[k]), 2),
                round(float(p.enrolled_scenario[k]), 1),
                round(float(p.power_scenario[k]), 4),
            )
            for k in range(c.n_looks)
        )
        table = Table(
            "Analyses: boundaries (z) and the analytic plan",
            (
                "look",
                "events",
                "efficacy z",
                "futility z",
                "alpha spent",
                "power at planned HR",
                "expected month (scenario)",
                "enrolled by then",
                "P(efficacy here), scenario",
            ),
            rows,
        )
        marker = c.scenario.on_treatment_marker
        if marker is not None:
            words = words + (
                f"On-treatment marker {marker.name}: measured at a re-biopsy at week {setting(marker.week)} in "
                f"{setting(marker.rebiopsied)} of the patients event-free then; at the stopping analysis the landmark "
                f"log-rank test from that week on is computed within its positive and its negative patients "
                "(extras z_on_treatment_positive / _negative). It cannot route: a patient's arm is given at "
                "randomization, before the re-biopsy.",
            )
        if ed.phase2 is not None and p.phase2 is not None:
            q = p.phase2
            words = words + (
                f"Seamless phase II/III: a go/no-go analysis of {ed.phase2.endpoint} when {ed.phase2.events} "
                f"{ed.phase2.endpoint} events have been observed (expected at month {q.month_scenario:.1f}, "
                f"{q.enrolled_scenario:.0f} patients randomized): go when its log-rank Z reaches {q.go_z:.4f} (one-sided "
                f"alpha {setting(ed.phase2.alpha)}); at no-go the trial stops there for futility. At go, accrual goes on "
                f"and every patient, those of phase II included, enters the analyses of {c.design.endpoint.name}.",
                f"P(go) under the scenario (Lakatos): {q.p_go_scenario:.4f}. The powers by look below are those of a "
                "trial that always goes on to phase III (an upper bound on the seamless design's power).",
            )
            analytic = [
                ("p_go", "P(go at the phase II analysis), Lakatos", q.p_go_scenario),
                ("month_of_phase2", "month of the phase II analysis", q.month_scenario),
                (
                    "p_efficacy_without_gate",
                    "P(efficacy) had every trial gone on to phase III, Lakatos",
                    float(p.power_scenario.sum()),
                ),
            ]
            analytic += [
                (f"month_of_look_{k + 1}", f"month of look {k + 1}", float(p.month_scenario[k]))
                for k in range(c.n_looks)
            ]
            return Description(
                kind=self.title,
                summary=f"{exp} vs {ctl}, a phase II go/no-go on "
                f"{ed.phase2.endpoint}, then {c.n_looks} log-rank analyses at events, {ed.max_n} patients",
                sections=(Section("Design and analyses", words, (table,)),),
                analytic=tuple(analytic),
            )
        analytic = [
            (f"p_efficacy_look_{k + 1}", f"P(efficacy at look {k + 1}), Lakatos", float(p.power_scenario[k]))
            for k in range(c.n_looks)
        ]
        analytic.append(("p_stop_efficacy", "P(efficacy), Lakatos", float(p.power_scenario.sum())))
        analytic += [
            (f"p_futility_look_{k + 1}", f"P(futility at look {k + 1}), Lakatos", float(p.futility_scenario[k]))
            for k in range(c.n_looks - 1)
            if np.isfinite(c.futility_z[k])
        ]
        analytic += [
            (f"month_of_look_{k + 1}", f"month of look {k + 1}", float(p.month_scenario[k])) for k in range(c.n_looks)
        ]
        analytic.append(("events_at_stop", "events at stopping", float(p.expected_events_scenario)))
        analytic.append(("duration_months", "month at stopping", float(p.expected_month_scenario)))
        return Description(
            kind=self.title,
            summary=f"{exp} vs {ctl}, {c.n_looks} log-rank analyses at events, {ed.max_n} patients",
            sections=(Section("Design and analyses", words, (table,)),),
            analytic=tuple(analytic),
        )

    def story(self, compiled: EventDrivenDesign, trace, result: TrialResults):
        """The analyses (month, events, Z and the boundaries, decision; timeline ``events``), and every
        screened patient with, when randomized, the time and event at the stopping analysis."""
        import pandas as pd

        from .story import Story, screened_frame

        c = compiled
        rows = []
        gate = None
        for ev in trace.events:
            if ev["kind"] == "phase2":
                assert c.section.phase2 is not None and c.plan.phase2 is not None
                gate = {
                    "endpoint": c.section.phase2.endpoint,
                    "month": float(ev["month"]),
                    "z": float(ev["z"]),
                    "go": bool(ev["go"]),
                    "events": int(ev["events"]),
                    "patients_randomized": int(ev["patients"]),
                    "go_z": c.plan.phase2.go_z,
                }
                continue
            k = int(ev["look"])
            decision = ("", "effective", "futile")[int(ev["decision"])]
            rows.append(
                {
                    "look": k + 1,
                    "month": float(ev["month"]),
                    "events": int(ev["events"]),
                    "patients_randomized": int(ev["patients"]),
                    "z": float(ev["z"]),
                    "efficacy_z": float(c.efficacy_z[k]),
                    "futility_z": float(c.futility_z[k]),
                    "stratum": "all",
                    "arm": c.arm_names[c.experimental],
                    "status": decision or "active",
                    "decision": decision,
                }
            )
        enrolled, row = trace.enrolled, trace.row
        n = int(result.n_randomized[0])
        positions = enrolled.screened_index[row, :n]
        frame = screened_frame(
            c.patients.population,
            c.arm_names,
            enrolled,
            row,
            int(result.n_screened[0]),
            {int(p): int(trace.arm[row, i]) for i, p in enumerate(positions)},
            {int(p): "all" for p in positions},
        )
        at = {int(p): i for i, p in enumerate(positions)}
        index = np.array([at.get(int(p), -1) for p in frame["patient"]])
        on = index >= 0
        frame["time"] = np.where(on, trace.data["time"][np.maximum(index, 0)], np.nan)
        frame["event"] = np.where(on, trace.data["event"][np.maximum(index, 0)], False).astype(int)
        summary = {
            "looks": len(rows),
            "stop_reason": result.stop_names[int(result.stop_reason[0])],
            "patients_randomized": n,
            "events": int(result.events[0].sum()),
            "claimed_effective": [c.arm_names[c.experimental]] if result.claimed[0].any() else [],
            "duration_months": float(result.duration_months[0]),
        }
        if gate is not None:
            summary["phase2"] = gate
        return Story(pd.DataFrame(rows), frame, summary, timeline="events")

    @property
    def parameters(self) -> dict[str, Parameter]:
        return {}  # boundaries follow from alpha and the spending functions: nothing for calibrate to move


def analytic_versus_simulated(compiled: EventDrivenDesign, results: TrialResults):
    """The analytic plan beside the simulated operating characteristics (pandas): one row per quantity of
    the description's ``analytic`` list (Lakatos power by look under the scenario, expected months of the
    looks, expected events and month at stopping), with ``analytic``, ``simulated`` (the mean over the
    simulated trials) and ``mcse`` (its Monte Carlo standard error)."""
    import pandas as pd

    values = dict(results.trial_values)
    values["p_stop_efficacy"] = results.stop_reason == 1
    values["duration_months"] = results.duration_months
    rows = []
    for metric, words, analytic in EVENT_DRIVEN.describe(compiled).analytic:
        v = np.asarray(values[metric], dtype=float)
        rows.append(
            {
                "quantity": words,
                "metric": metric,
                "analytic": analytic,
                "simulated": float(v.mean()),
                "mcse": float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan,
            }
        )
    return pd.DataFrame(rows)


EVENT_DRIVEN = EventDrivenFamily()
