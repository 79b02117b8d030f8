"""Validated models of a scenario: the population, the endpoints and every treatment's true
effect over the patient profile.

Outcome models, per treatment and endpoint:

* ``binary`` endpoints (objective response): logistic, ``rate`` in reference patients (every
  marker at its first level) and ``odds_ratios`` for markers;
* ``time_to_event`` endpoints (progression-free survival, months): proportional hazards on an
  exponential (``median_months``) or piecewise-exponential (``pieces``) baseline, with
  ``hazard_ratios`` for markers;
* ``landmark`` endpoints (disease control at week 12): alive and progression-free at ``weeks``
  on the time-to-event endpoint ``of``, so they always agree with it.

A treatment can be ``relative_to`` another: it then has that treatment's outcome model times
``odds_ratio`` / ``hazard_ratio`` (in reference patients) and its own marker ratios on top; a
hazard ratio can start after ``onset_weeks``. ``prognostic`` ratios apply to every treatment.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .base import (
    MAX_HAZARD_PER_MONTH,
    MAX_TREND_PER_YEAR,
    MIN_RATIO,
    PROBLEM_SEPARATOR,
    Cost,
    Frozen,
    Months,
    Name,
    OpenProbability,
    PositiveMonths,
    PositiveWeeks,
    Probability,
    Ratio,
    Weeks,
)
from .copula import Copula
from .illness_death import IllnessDeathEndpoints, TreatmentIllnessDeath
from .on_treatment import OnTreatmentMarker
from .population import Population

Ratios = Union[Ratio, dict[Name, Ratio]]
Hazard = Annotated[float, Field(ge=0.0, le=MAX_HAZARD_PER_MONTH, allow_inf_nan=False)]


class EndpointTruth(Frozen):
    kind: Literal["binary", "time_to_event", "landmark"] = "binary"
    description: str = ""
    of: Name | None = Field(default=None, description="landmark: the time-to-event endpoint it is read from")
    weeks: PositiveWeeks | None = Field(default=None, description="landmark: time of the assessment")

    @model_validator(mode="after")
    def _landmark_fields(self) -> "EndpointTruth":
        if self.kind == "landmark" and (self.of is None or self.weeks is None):
            raise ValueError("a landmark endpoint needs 'of' (a time_to_event endpoint) and 'weeks'")
        if self.kind != "landmark" and (self.of is not None or self.weeks is not None):
            raise ValueError(f"'of' and 'weeks' are for landmark endpoints, not {self.kind}")
        return self


class Piece(Frozen):
    from_months: Months
    hazard_per_month: Hazard


class OutcomeModel(Frozen):
    """One treatment's effect on one endpoint (see the module docstring)."""

    rate: Probability | None = None
    odds_ratio: Ratio | None = None
    odds_ratios: dict[Name, Ratios] = Field(default_factory=dict)
    median_months: PositiveMonths | None = None
    pieces: list[Piece] | None = Field(default=None, min_length=1)
    hazard_ratio: Ratio | None = None
    hazard_ratios: dict[Name, Ratios] = Field(default_factory=dict)
    onset_weeks: Weeks = 0.0

    @model_validator(mode="after")
    def _pieces(self) -> "OutcomeModel":
        if self.pieces is not None:
            starts = [p.from_months for p in self.pieces]
            if starts[0] != 0:
                raise ValueError(f"the first piece must start at from_months: 0, got {starts[0]}")
            if any(b <= a for a, b in zip(starts, starts[1:])):
                raise ValueError(f"pieces must start at increasing times, got {starts}")
            if self.pieces[-1].hazard_per_month <= 0:
                raise ValueError("the last piece needs a positive hazard, or no one would ever progress")
        if self.median_months is not None and self.pieces is not None:
            raise ValueError("give median_months (exponential) or pieces (piecewise exponential), not both")
        return self

    def given(self) -> set[str]:
        return {k for k, v in self.model_dump(exclude_defaults=True).items()}


_BINARY_FIELDS = {"rate", "odds_ratio", "odds_ratios"}
_SURVIVAL_FIELDS = {"median_months", "pieces", "hazard_ratio", "hazard_ratios", "onset_weeks"}


class Treatment(Frozen):
    description: str = ""
    relative_to: Name | None = None
    rates: dict[Name, Probability] | None = Field(
        default=None, description="Shorthand: outcomes {endpoint: {rate: p}} for binary endpoints."
    )
    outcomes: dict[Name, OutcomeModel] = Field(default_factory=dict)
    illness_death: TreatmentIllnessDeath | None = Field(
        default=None,
        description="The treatment in the scenario's joint response / PFS / OS model (see config/illness_death.py).",
    )

    @model_validator(mode="after")
    def _shorthand(self) -> "Treatment":
        both = set(self.rates or {}) & set(self.outcomes)
        if both:
            raise ValueError(f"{sorted(both)} given both in rates and in outcomes; keep one")
        return self

    def outcome(self, endpoint: str) -> OutcomeModel | None:
        if self.rates and endpoint in self.rates:
            return OutcomeModel(rate=self.rates[endpoint])
        return self.outcomes.get(endpoint)

    def endpoints_given(self) -> set[str]:
        return set(self.rates or {}) | set(self.outcomes)


class TimeTrend(Frozen):
    """A drift of the linear predictor (log-odds, or log-hazard) per year of calendar time at
    randomization, for the listed treatments (all when omitted)."""

    per_year: Annotated[float, Field(ge=-MAX_TREND_PER_YEAR, le=MAX_TREND_PER_YEAR, allow_inf_nan=False)]
    treatments: list[Name] | None = None


class Dropout(Frozen):
    """Patients who leave before their binary endpoint is assessed count as failures (no response,
    no disease control); time-to-event outcomes are censored at an exponential dropout time with
    the same probability before ``before_weeks``."""

    probability: Probability
    before_weeks: PositiveWeeks


class Yardstick(Frozen):
    """How claims are judged when designs are compared on this scenario: per treatment and per
    subgroup of patients defined by their *true* characteristics, against one standard of care.

    ``by``: the characteristics whose levels define the subgroups (every combination of their
    levels; none: all patients only; omitted: the markers that change some treatment's effect in
    this scenario). ``endpoint``: the endpoint a treatment is judged on (omitted: the endpoint
    every compared design analyses). ``control``: the standard of care (omitted: the treatment the
    others are ``relative_to``). A treatment *works* in a subgroup when its effect there reaches
    ``relevant_difference`` (a rate difference, binary and landmark endpoints) or
    ``relevant_hazard_ratio`` (time-to-event endpoints); omitted, the compared designs' own
    clinically relevant size. It is *null* there when it is no better than the control.
    """

    by: list[Name] | None = None
    endpoint: Name | None = None
    control: Name | None = None
    relevant_difference: OpenProbability | None = None
    relevant_hazard_ratio: Annotated[float, Field(ge=MIN_RATIO, lt=1.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _distinct(self) -> "Yardstick":
        if self.by is not None and len(set(self.by)) != len(self.by):
            raise ValueError(f"by: lists a characteristic twice: {self.by}")
        return self


class Costs(Frozen):
    """What a trial costs, per patient (any currency; the defaults are US dollars).

    ``assay_per_patient``: the biomarker tests of one screened patient (charged only to designs
    that need a biomarker result before randomizing); ``per_randomized_patient``: the trial's cost
    of one randomized patient (treatment, visits, data)."""

    assay_per_patient: Cost = Field(
        default=3_500.0,
        description=(
            "cost of the biomarker tests of one screened patient; default 3,500: the US Medicare payment for one "
            "comprehensive genomic profile of a solid tumour (FoundationOne CDx, clinical laboratory fee schedule "
            "code 0037U, 2018)"
        ),
    )
    per_randomized_patient: Cost = Field(
        default=69_700.0,
        description=(
            "trial cost of one randomized patient; default 69,700: phase 3 oncology trials cost 74,800 per patient and "
            "phase 2 trials 5,100 less (Cutting Edge Information, Oncology Clinical Trials benchmark, 2013)"
        ),
    )


def _homogeneous() -> Population:
    return Population(name="homogeneous", description="no biomarkers, no screening")


class Scenario(Frozen):
    name: Name
    description: str = ""
    population: Population = Field(default_factory=_homogeneous)
    endpoints: dict[Name, EndpointTruth] = Field(min_length=1)
    treatments: dict[Name, Treatment] = Field(min_length=1)
    prognostic: dict[Name, OutcomeModel] = Field(default_factory=dict)
    time_trend: dict[Name, TimeTrend] = Field(default_factory=dict)
    dropout: Dropout | None = None
    illness_death: IllnessDeathEndpoints | None = Field(
        default=None, description="Endpoints drawn jointly by the illness-death model (config/illness_death.py)."
    )
    copula: Copula | None = Field(
        default=None, description="Two time_to_event endpoints coupled by a Gaussian copula (config/copula.py)."
    )
    on_treatment_marker: OnTreatmentMarker | None = Field(
        default=None, description="An on-treatment biomarker measured at a re-biopsy (config/on_treatment.py)."
    )
    yardstick: Yardstick = Field(default_factory=Yardstick)
    costs: Costs = Field(default_factory=Costs)

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        problems: list[str] = []
        levels = self.population.levels()
        eps = self.endpoints
        joint = self.joint_endpoints
        for name, ep in eps.items():
            if ep.kind == "landmark" and (ep.of not in eps or eps[ep.of].kind != "time_to_event"):
                problems.append(
                    f"endpoints.{name}.of: {ep.of!r} is not a time_to_event endpoint of this scenario; "
                    f"those are {sorted(n for n, e in eps.items() if e.kind == 'time_to_event')}"
                )
        for tname, t in self.treatments.items():
            where = f"treatments.{tname}"
            if t.relative_to is not None and t.relative_to not in self.treatments:
                problems.append(
                    f"{where}.relative_to: {t.relative_to!r} is not a treatment; known: {sorted(self.treatments)}"
                )
            for ep in t.endpoints_given():
                if ep not in eps:
                    problems.append(
                        f"{where}.outcomes.{ep}: not an endpoint of this scenario; endpoints are {sorted(eps)}"
                    )
                elif eps[ep].kind == "landmark":
                    problems.append(
                        f"{where}.outcomes.{ep}: a landmark endpoint follows from {eps[ep].of!r}; "
                        f"give the {eps[ep].of!r} model instead"
                    )
            for ep, e in eps.items():
                if e.kind == "landmark" or ep in joint:
                    continue
                model = t.outcome(ep)
                problems.extend(
                    _outcome_problems(f"{where}.outcomes.{ep}", model, e.kind, t.relative_to is not None, levels)
                )
        problems.extend(_cycles(self.treatments))
        problems.extend(self._illness_death_problems())
        if self.copula is not None:
            if self.illness_death is not None:
                problems.append(
                    "copula: the scenario draws its joint endpoints with illness_death; give one of "
                    "illness_death and copula, not both"
                )
            for field in ("first", "second"):
                ep = getattr(self.copula, field)
                if ep not in eps or eps[ep].kind != "time_to_event":
                    problems.append(
                        f"copula.{field}: {ep!r} is not a time_to_event endpoint of this scenario; those "
                        f"are {sorted(n for n, e in eps.items() if e.kind == 'time_to_event')}"
                    )
        problems.extend(self._on_treatment_problems())
        for ep, model in self.prognostic.items():
            where = f"prognostic.{ep}"
            if ep not in eps or eps[ep].kind == "landmark":
                problems.append(
                    f"{where}: not a binary or time_to_event endpoint of this scenario; endpoints are {sorted(eps)}"
                )
                continue
            extra = model.given() - {"odds_ratios", "hazard_ratios"}
            if extra:
                problems.append(
                    f"{where}: prognostic effects are odds_ratios or hazard_ratios only, got {sorted(extra)}"
                )
            problems.extend(_outcome_problems(where, model, eps[ep].kind, True, levels, baseline_check=False))
        for ep, trend in self.time_trend.items():
            if ep not in eps or eps[ep].kind == "landmark":
                problems.append(
                    f"time_trend.{ep}: not a binary or time_to_event endpoint of this scenario; endpoints are {sorted(eps)}"
                )
            for tname in trend.treatments or []:
                if tname not in self.treatments:
                    problems.append(
                        f"time_trend.{ep}.treatments: {tname!r} is not a treatment; known: {sorted(self.treatments)}"
                    )
        problems.extend(self._yardstick_problems(levels))
        if problems:
            raise ValueError(PROBLEM_SEPARATOR.join(problems))
        return self

    @property
    def joint_endpoints(self) -> dict[str, str]:
        """Endpoints the illness-death model draws: name -> 'response', 'pfs' or 'os' (none without it)."""
        return {} if self.illness_death is None else self.illness_death.roles()

    def _illness_death_problems(self) -> list[str]:
        problems: list[str] = []
        eps, joint = self.endpoints, self.joint_endpoints
        if self.illness_death is None:
            for tname, t in self.treatments.items():
                if t.illness_death is not None:
                    problems.append(
                        f"treatments.{tname}.illness_death: the scenario has no illness_death section "
                        "naming the endpoints the model draws"
                    )
            return problems
        fields = {"response": "response", "pfs": "progression_free", "os": "overall"}
        for ep, role in joint.items():
            want = "binary" if role == "response" else "time_to_event"
            if ep not in eps:
                problems.append(
                    f"illness_death.{fields[role]}: {ep!r} is not an endpoint of this scenario; endpoints "
                    f"are {sorted(eps)}"
                )
            elif eps[ep].kind != want:
                problems.append(f"illness_death.{fields[role]}: {ep!r} is a {eps[ep].kind} endpoint; it must be {want}")
        for tname, t in self.treatments.items():
            where = f"treatments.{tname}"
            for ep in sorted(set(t.endpoints_given()) & set(joint)):
                problems.append(
                    f"{where}.outcomes.{ep}: drawn by the illness_death model; set the treatment's effect "
                    f"in {where}.illness_death instead"
                )
            model = t.illness_death
            if t.relative_to is None and (model is None or model.baseline is None):
                problems.append(
                    f"{where}.illness_death.baseline: missing; the treatment that is not relative_to "
                    "another gives the facts the model is calibrated to (response_rate, "
                    "median_pfs_months, median_os_months, ...)"
                )
            if t.relative_to is None and model is not None and model.effects_given():
                problems.append(
                    f"{where}.illness_death: {model.effects_given()} need relative_to (a comparator treatment)"
                )
            if t.relative_to is not None and model is not None and model.baseline is not None:
                problems.append(
                    f"{where}.illness_death.baseline: sets an absolute baseline, but the treatment is "
                    "relative_to another; give hazard and odds ratios"
                )
        for section in ("prognostic", "time_trend"):
            for ep in sorted(set(getattr(self, section)) & set(joint)):
                problems.append(
                    f"{section}.{ep}: the illness_death model draws {ep!r}; it takes no {section} "
                    "effects (its patients share one model whatever their characteristics)"
                )
        return problems

    def _on_treatment_problems(self) -> list[str]:
        marker = self.on_treatment_marker
        if marker is None:
            return []
        problems = []
        for i, ep in enumerate(marker.endpoints):
            e = self.endpoints.get(ep)
            if e is None or e.kind != "time_to_event":
                problems.append(
                    f"on_treatment_marker.endpoints[{i}]: {ep!r} is not a time_to_event endpoint of this "
                    f"scenario; those are {sorted(n for n, x in self.endpoints.items() if x.kind == 'time_to_event')}"
                )
            elif ep in self.joint_endpoints:
                problems.append(
                    f"on_treatment_marker.endpoints[{i}]: {ep!r} is drawn by the illness_death model, which "
                    "takes no on-treatment marker; use endpoints with their own outcome models (or a copula)"
                )
        if isinstance(marker.positive, dict):
            unknown = sorted(set(marker.positive) - set(self.treatments))
            missing = sorted(set(self.treatments) - set(marker.positive))
            if unknown:
                problems.append(
                    f"on_treatment_marker.positive: {unknown} are not treatments; known: {sorted(self.treatments)}"
                )
            if missing:
                problems.append(
                    f"on_treatment_marker.positive: no probability for {missing}; give every treatment "
                    "one, or one number for all"
                )
        return problems

    def _yardstick_problems(self, levels: dict[str, list[str]]) -> list[str]:
        y, problems = self.yardstick, []
        for name in y.by or []:
            if name not in levels:
                problems.append(
                    f"yardstick.by: {name!r} is not a characteristic of the population; known: {sorted(levels)}"
                )
        if y.endpoint is not None and y.endpoint not in self.endpoints:
            problems.append(
                f"yardstick.endpoint: {y.endpoint!r} is not an endpoint of this scenario; endpoints are "
                f"{sorted(self.endpoints)}"
            )
        if y.control is not None and y.control not in self.treatments:
            problems.append(f"yardstick.control: {y.control!r} is not a treatment; known: {sorted(self.treatments)}")
        return problems

    def resolved(self, treatment: str, endpoint: str) -> list[tuple[OutcomeModel, str]]:
        """The chain of outcome models from ``treatment`` back to its absolute ancestor."""
        chain, name = [], treatment
        while name is not None:
            t = self.treatments[name]
            model = t.outcome(endpoint) or OutcomeModel()
            chain.append((model, name))
            name = t.relative_to
        return chain


def _outcome_problems(where, model, kind, relative, levels, baseline_check=True) -> list[str]:
    problems = []
    if model is None:
        if not relative:
            need = "rate" if kind == "binary" else "median_months or pieces"
            problems.append(f"{where}: missing; a treatment that is not relative_to another needs {need}")
        return problems
    given = model.given()
    wrong = given & (_SURVIVAL_FIELDS if kind == "binary" else _BINARY_FIELDS)
    if wrong:
        hint = (
            "rate, odds_ratio, odds_ratios"
            if kind == "binary"
            else "median_months, pieces, hazard_ratio, hazard_ratios, onset_weeks"
        )
        problems.append(f"{where}: {sorted(wrong)} do not apply to a {kind} endpoint; it takes {hint}")
    if baseline_check:
        baseline = given & {"rate", "median_months", "pieces"}
        if relative and baseline:
            problems.append(
                f"{where}: {sorted(baseline)} set an absolute baseline, but the treatment is relative_to another; "
                "use odds_ratio / hazard_ratio"
            )
        if not relative:
            if kind == "binary" and model.rate is None:
                problems.append(f"{where}: needs rate (the response probability in reference patients)")
            if kind == "time_to_event" and model.median_months is None and model.pieces is None:
                problems.append(f"{where}: needs median_months or pieces (the hazard in reference patients)")
            relative_only = (given - wrong) & {"odds_ratio", "hazard_ratio", "onset_weeks"}
            if relative_only:
                problems.append(f"{where}: {sorted(relative_only)} need relative_to (a comparator treatment)")
    field = "odds_ratios" if kind == "binary" else "hazard_ratios"
    for marker, value in getattr(model, field).items():
        at = f"{where}.{field}.{marker}"  # the path of the ratio in the file
        if marker not in levels:
            problems.append(f"{at}: {marker!r} is not a marker of the population; markers are {sorted(levels)}")
            continue
        lv = levels[marker]
        if not isinstance(value, dict):
            if len(lv) != 2:
                problems.append(f"{at}: has levels {lv}; give a ratio per non-reference level, e.g. {{{lv[-1]}: 1.5}}")
        else:
            bad = [k for k in value if k not in lv[1:]]
            if bad:
                problems.append(
                    f"{at}: {bad} are not non-reference levels of {marker!r}; "
                    f"the reference is {lv[0]!r}, the others {lv[1:]}"
                )
    return problems


def _cycles(treatments) -> list[str]:
    problems = []
    for start in treatments:
        seen, name = [], start
        while name is not None and name in treatments:
            if name in seen:
                problems.append(f"treatments.{start}.relative_to: a cycle {' -> '.join(seen + [name])}")
                break
            seen.append(name)
            name = treatments[name].relative_to
    return problems[:1]
