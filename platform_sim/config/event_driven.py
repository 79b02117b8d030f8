"""The section of an event-driven two-arm group-sequential design.

Two arms, an experimental arm against the ``control``, on a time-to-event endpoint. The trial
randomizes ``max_n`` patients as they arrive (a fixed total; the scenario's accrual sets when) and
analyses the log-rank test when the events observed reach ``information_fractions`` of the final
number of ``events``. At each analysis it stops for efficacy when the log-rank Z (positive for a
benefit) reaches the efficacy boundary and, with a futility boundary, for futility when Z falls to
or below it. Boundaries come from alpha spending (Lan & DeMets 1983), beta spending for futility,
or are given on the z scale::

    event_driven:
      max_n: 600
      information_fractions: [0.33, 0.67, 1.0]
      hazard_ratio: 0.7          # the alternative the trial is planned for
      alpha: 0.025               # one-sided
      power: 0.9
      events: null               # null: Schoenfeld's events for hazard_ratio, alpha and power, inflated
      efficacy: {spending: obrien_fleming}
      futility: {spending: hwang_shih_decani, gamma: -2, binding: false}
      follow_up_months: null     # or the months each patient is followed at most
      accrual_months: null       # or the month randomization closes, if max_n is not reached before
      allocation_ratio: 1        # experimental : control
      randomization: block       # permuted blocks, or simple
      statistic: logrank         # or cox_score_breslow, cox_score_efron (Cox score tests at beta = 0)
      strata: null               # or population characteristics: the stratified version of the statistic
      at_months: null            # or per look a calendar month (null: at its events), e.g. [18, null, null]

A seamless phase II/III design adds a ``phase2`` go/no-go analysis on another endpoint (Lung-MAP's
original sub-studies: a phase II analysis of PFS, then phase III on OS with the phase II patients
kept)::

      phase2:
        endpoint: pfs            # a time_to_event endpoint of the scenario
        events: 60               # the go/no-go analysis when this many PFS events are observed
        alpha: 0.2               # go when the PFS log-rank test is significant at this one-sided level

Accrual goes on through the phase II analysis. At no-go the trial stops for futility there; at go it
goes on to the group-sequential analyses of ``endpoint`` (OS) with every patient randomized, those
of phase II included. The go/no-go can only remove claims, so the OS boundaries keep alpha.

A look with a month in ``at_months`` happens at that calendar month (months since the first patient
could be randomized) instead of when its events are observed; its boundary is the one at its
planned information fraction (``information_fractions``), and the analyses keep their order (a look
by events that would come before an earlier calendar look happens with it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import MAX_PATIENTS, Frozen, Name, OpenProbability, PositiveInt, PositiveMonths, Ratio

SPENDING_NAMES = ("obrien_fleming", "pocock", "hwang_shih_decani", "kim_demets")
STATISTICS = ("logrank", "cox_score_breslow", "cox_score_efron")


class Boundary(Frozen):
    """A boundary from a spending function (``spending``: ``obrien_fleming`` and ``pocock`` are the
    Lan-DeMets forms; ``hwang_shih_decani`` takes ``gamma``; ``kim_demets`` takes ``rho``), or given
    on the z scale (``z``: one value per look for efficacy, per interim look for futility)."""

    spending: Literal["obrien_fleming", "pocock", "hwang_shih_decani", "kim_demets"] | None = None
    gamma: Annotated[float, Field(ge=-40.0, le=40.0, allow_inf_nan=False)] | None = None
    rho: Annotated[float, Field(gt=0.0, le=20.0, allow_inf_nan=False)] | None = None
    z: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_way(self) -> Boundary:
        if (self.spending is None) == (self.z is None):
            raise ValueError(
                "give a spending function (spending: obrien_fleming, pocock, hwang_shih_decani or "
                "kim_demets) or the boundaries on the z scale (z: [...]), not both or neither"
            )
        if self.spending == "hwang_shih_decani" and self.gamma is None:
            raise ValueError("hwang_shih_decani spending needs gamma (in [-40, 40]; -4 is O'Brien-Fleming-like)")
        if self.spending == "kim_demets" and self.rho is None:
            raise ValueError("kim_demets spending needs rho (> 0; 3 is O'Brien-Fleming-like, 1 spends linearly)")
        if self.gamma is not None and self.spending != "hwang_shih_decani":
            raise ValueError("gamma is the parameter of hwang_shih_decani spending only")
        if self.rho is not None and self.spending != "kim_demets":
            raise ValueError("rho is the parameter of kim_demets spending only")
        return self


class Futility(Boundary):
    """A futility boundary; ``binding``: the efficacy boundaries count on every futility stop
    (non-binding, the default, keeps the type I error at alpha even when a futility stop is
    overruled)."""

    binding: bool = False


class Phase2(Frozen):
    """The phase II go/no-go analysis of a seamless phase II/III design (see the module docstring)."""

    endpoint: Name = Field(description="time_to_event endpoint of the go/no-go analysis (e.g. pfs)")
    events: PositiveInt = Field(le=MAX_PATIENTS, description="events on that endpoint at the go/no-go analysis")
    alpha: OpenProbability = Field(description="one-sided level of its log-rank test: go when significant")


class EventDriven(Frozen):
    """An event-driven two-arm group-sequential design (see the module docstring)."""

    max_n: PositiveInt = Field(le=MAX_PATIENTS, description="patients randomized in all (fixed total)")
    information_fractions: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        min_length=1, description="event fractions of the final events at which the analyses happen, ending at 1"
    )
    hazard_ratio: OpenProbability = Field(description="the alternative hazard ratio the design is planned for")
    alpha: OpenProbability = Field(default=0.025, description="one-sided type I error")
    power: OpenProbability = Field(default=0.9, description="power at hazard_ratio (to plan events)")
    events: PositiveInt | None = Field(
        default=None,
        description="events at the final analysis; omitted: the group-sequential inflation of "
        "Schoenfeld's events for hazard_ratio, alpha and power",
    )
    efficacy: Boundary = Field(default_factory=lambda: Boundary(spending="obrien_fleming"))
    futility: Futility | None = None
    follow_up_months: PositiveMonths | None = Field(
        default=None, description="months each patient is followed at most (omitted: until the final analysis)"
    )
    allocation_ratio: Ratio = Field(default=1.0, description="experimental : control")
    randomization: Literal["block", "simple"] = "block"
    relevant_hazard_ratio: OpenProbability | None = Field(
        default=None, description="a true hazard ratio at most this counts as working (omitted: hazard_ratio)"
    )
    statistic: Literal["logrank", "cox_score_breslow", "cox_score_efron"] = Field(
        default="logrank",
        description="the decision statistic: the log-rank test, or the Cox score test at beta = 0 "
        "with Breslow's or Efron's partial likelihood for tied times",
    )
    strata: list[Name] | None = Field(
        default=None,
        min_length=1,
        description="population characteristics whose level combinations stratify the statistic (omitted: none)",
    )
    accrual_months: PositiveMonths | None = Field(
        default=None,
        description="randomization closes at this calendar month even if max_n has not been reached "
        "(omitted: when max_n patients are randomized)",
    )
    phase2: Phase2 | None = Field(
        default=None,
        description="a phase II go/no-go analysis on another endpoint before these analyses (seamless phase II/III)",
    )
    at_months: list[PositiveMonths | None] | None = Field(
        default=None, description="per look, the calendar month of the analysis (null: when its events are observed)"
    )

    @field_validator("information_fractions")
    @classmethod
    def _fractions(cls, t: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError(f"information_fractions must be strictly increasing, got {t}")
        if t[-1] != 1.0:
            raise ValueError(f"information_fractions must end at 1 (the final analysis), got {t}")
        return t

    @model_validator(mode="after")
    def _boundaries(self) -> EventDriven:
        k = len(self.information_fractions)
        if self.efficacy.z is not None and len(self.efficacy.z) != k:
            raise ValueError(f"efficacy.z needs one boundary per look ({k} looks), got {len(self.efficacy.z)}")
        if self.futility is not None and self.futility.z is not None and len(self.futility.z) != k - 1:
            raise ValueError(f"futility.z needs one boundary per interim look ({k - 1}), got {len(self.futility.z)}")
        if self.futility is not None and k == 1:
            raise ValueError("a futility boundary needs an interim look (information_fractions has only the final one)")
        if self.at_months is not None:
            if len(self.at_months) != k:
                raise ValueError(
                    f"at_months needs one entry per look ({k} looks; null for a look at its events), "
                    f"got {len(self.at_months)}"
                )
            dates = [m for m in self.at_months if m is not None]
            if not dates:
                raise ValueError("at_months gives no month; omit it for analyses at event counts only")
            if any(b <= a for a, b in zip(dates, dates[1:])):
                raise ValueError(f"at_months: the calendar months must increase from look to look, got {dates}")
        if self.strata is not None and len(set(self.strata)) != len(self.strata):
            raise ValueError(f"strata: each characteristic once, got {self.strata}")
        if 1.0 - self.power <= 0 or self.alpha >= self.power:
            raise ValueError(f"alpha ({self.alpha:g}) must be below the power ({self.power:g})")
        return self

    @property
    def n_looks(self) -> int:
        return len(self.information_fractions)
