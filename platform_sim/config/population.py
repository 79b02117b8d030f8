"""Validated models of a virtual patient population: who arrives, when, with which
biomarkers, and what happens to them during screening.

Markers are drawn one after the other, in the order they are listed. A marker
either has fixed probabilities or a *conditional probability table* given
markers listed before it (``given``), so a co-mutation structure reads like the
published tables it comes from::

    stk11:
      given: [histology, kras]
      prevalence:                       # P(stk11 = positive | histology, kras)
        nonsquamous, positive: 0.26
        nonsquamous, negative: 0.13
        squamous, positive: 0.03
        squamous, negative: 0.03

The first level of every marker is its reference level (``negative`` for the
default levels ``[negative, positive]``); effects in a scenario are relative to
it. ``region`` is a marker of its own when accrual has several regions.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Union

import numpy as np
from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import (
    MIN_POSITIVE_TIME,
    PROBLEM_SEPARATOR,
    Frozen,
    Months,
    Name,
    NonNegativeFloat,
    Probability,
)

LEVEL_TOLERANCE = 1e-6
REGION = "region"


def table_keys(given_levels: list[list[str]]) -> list[str]:
    """The keys a conditional table needs: one per combination of the given markers' levels."""
    return [", ".join(combo) for combo in itertools.product(*given_levels)]


def _normal_key(key) -> str:
    return ", ".join(part.strip() for part in str(key).split(","))


class AssayAccuracy(Frozen):
    """How a marker is measured by one assay. ``failure`` is the chance this marker has no
    result although the sample was adequate (e.g. too few tumour cells for PD-L1 scoring)."""

    sensitivity: Probability = 1.0
    specificity: Probability = 1.0
    failure: Probability = 0.0


class Marker(Frozen):
    """A baseline characteristic: a biomarker or a clinical covariate.

    * ``levels``: its categories, the first being the reference (default ``[negative, positive]``);
    * ``prevalence`` (two-level markers): P(second level), a number or a table keyed by the levels
      of the ``given`` markers; or ``probabilities``: one per level, a list or such a table of lists;
    * ``tissue`` / ``liquid``: the marker is measured by the tissue or plasma (ctDNA) assay with this
      accuracy; without either, it is a clinical characteristic known without testing.
    """

    description: str = ""
    levels: list[Name] = Field(default_factory=lambda: ["negative", "positive"], min_length=2)
    given: list[Name] = Field(default_factory=list)
    prevalence: Union[Probability, dict[str, Probability], None] = None
    probabilities: Union[list[Probability], dict[str, list[Probability]], None] = None
    tissue: AssayAccuracy | None = None
    liquid: AssayAccuracy | None = None

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_as_text(cls, levels):
        """Levels written as numbers (ECOG 0, 1, 2) are names like any other."""
        if isinstance(levels, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in levels]
        return levels

    @field_validator("prevalence", "probabilities", mode="before")
    @classmethod
    def _keys_as_text(cls, table):
        if isinstance(table, dict):
            return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in table.items()}
        return table

    @model_validator(mode="after")
    def _shape(self) -> "Marker":
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be distinct, got {self.levels}")
        if (self.prevalence is None) == (self.probabilities is None):
            raise ValueError("give exactly one of prevalence (two-level markers) or probabilities (one per level)")
        if self.prevalence is not None and len(self.levels) != 2:
            raise ValueError(
                f"prevalence is for two-level markers; this one has levels {self.levels}, so give probabilities"
            )
        if len(set(self.given)) != len(self.given):
            raise ValueError(f"given lists a marker twice: {self.given}")
        if isinstance(self.prevalence, dict) or isinstance(self.probabilities, dict):
            if not self.given:
                raise ValueError("a table of probabilities needs 'given': the markers it is conditional on")
        elif self.given:
            raise ValueError(f"given {self.given} needs a table keyed by their levels, not a single value")
        rows = self.probabilities if isinstance(self.probabilities, dict) else {"": self.probabilities}
        if self.probabilities is not None:
            for key, row in rows.items():
                where = f" for {key!r}" if key else ""
                if len(row) != len(self.levels):
                    raise ValueError(f"probabilities{where} need one value per level {self.levels}, got {len(row)}")
                if abs(sum(row) - 1.0) > LEVEL_TOLERANCE:
                    raise ValueError(f"probabilities{where} must add up to 1, they add up to {sum(row):.6g}")
        for assay in ("tissue", "liquid"):
            acc = getattr(self, assay)
            if acc is not None and len(self.levels) != 2 and (acc.sensitivity < 1 or acc.specificity < 1):
                raise ValueError(
                    f"{assay}: sensitivity and specificity apply to two-level markers; a marker with levels "
                    f"{self.levels} is read without misclassification (give only failure)"
                )
        return self

    @property
    def clinical(self) -> bool:
        return self.tissue is None and self.liquid is None

    def table(self, given_levels: list[list[str]]) -> tuple[list[list[float]], list[str]]:
        """Rows of level probabilities, one per combination of the given markers' levels
        (in :func:`table_keys` order), and the problems found (missing or unknown keys)."""
        keys = table_keys(given_levels)
        if self.prevalence is not None:
            raw = self.prevalence if isinstance(self.prevalence, dict) else {"": self.prevalence}
            rows = {_normal_key(k): [1.0 - v, v] for k, v in raw.items()}
        else:
            raw = self.probabilities if isinstance(self.probabilities, dict) else {"": self.probabilities}
            rows = {_normal_key(k): list(v) for k, v in raw.items()}
        problems = []
        missing = [k for k in keys if k not in rows]
        unknown = [k for k in rows if k not in keys]
        if missing:
            problems.append(f"the table has no row for {missing}; it needs one for each of {keys}")
        if unknown:
            problems.append(f"the table has rows {unknown} that match no combination of levels; expected {keys}")
        return [rows.get(k, [math.nan] * len(self.levels)) for k in keys], problems


Condition = Union[Name, dict[Name, Union[Name, list[Name]]]]


class Derived(Frozen):
    """A two-level marker defined from others, e.g. ``stk11_or_keap1: {any_of: [stk11, keap1]}``.
    A condition is a two-level marker's name (meaning its second level) or ``{marker: level}`` /
    ``{marker: [levels]}``."""

    description: str = ""
    any_of: list[Condition] | None = None
    all_of: list[Condition] | None = None

    @model_validator(mode="after")
    def _one(self) -> "Derived":
        if (self.any_of is None) == (self.all_of is None):
            raise ValueError("give exactly one of any_of or all_of")
        if not (self.any_of or self.all_of):
            raise ValueError("needs at least one condition")
        return self

    @property
    def conditions(self) -> list[tuple[str, list[str] | None]]:
        out = []
        for c in self.any_of or self.all_of:
            if isinstance(c, str):
                out.append((c, None))
            else:
                for marker, levels in c.items():
                    out.append((marker, [levels] if isinstance(levels, str) else list(levels)))
        return out


# Patients arriving for screening per month: a million is far beyond any trial network (the shipped
# populations screen 20 to 65 a month); rates near 1e308 overflowed the integrated accrual and every
# patient arrived at month 0.
MAX_ACCRUAL_PER_MONTH = 1e6
AccrualRate = Annotated[float, Field(gt=0.0, le=MAX_ACCRUAL_PER_MONTH, allow_inf_nan=False)]


def _no_ramp_or_at_least_min(months: float) -> float:
    if 0.0 < months < MIN_POSITIVE_TIME:
        raise ValueError(
            f"a ramp-up is 0 (none) or at least {MIN_POSITIVE_TIME} months; a shorter one overflowed "
            "the accrual rate's slope and put every patient at month 0"
        )
    return months


# The months over which sites open: 0 (none) or at least MIN_POSITIVE_TIME (5e-324 months made the
# slope of the accrual rate infinite and every arrival time 0).
RampMonths = Annotated[Months, AfterValidator(_no_ramp_or_at_least_min)]


class Region(Frozen):
    rate_per_month: AccrualRate
    ramp_up_months: RampMonths = 0.0
    start_month: Months = 0.0


class Accrual(Frozen):
    """Patients arriving for screening: a Poisson process whose rate rises linearly from 0 to
    ``rate_per_month`` over ``ramp_up_months`` (sites opening); or several ``regions``, each with
    its own rate, ramp-up and start."""

    rate_per_month: AccrualRate | None = None
    ramp_up_months: RampMonths = 0.0
    regions: dict[Name, Region] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> "Accrual":
        if (self.rate_per_month is None) == (self.regions is None):
            raise ValueError("give either rate_per_month (one region) or regions (each with its own rate)")
        if self.regions is not None and self.ramp_up_months:
            raise ValueError("with regions, give ramp_up_months per region")
        return self

    @property
    def region_list(self) -> dict[str, Region]:
        if self.regions is not None:
            return dict(self.regions)
        return {"all": Region(rate_per_month=self.rate_per_month, ramp_up_months=self.ramp_up_months)}


class Turnaround(Frozen):
    """Days from sample to result: lognormal with this median and log-scale sd (0: fixed).

    Bounded so that every drawn wait is a finite number of days: at most ten years, and an sdlog
    of at most 5 (a 99% range of a factor 10^11; real assays are below 1.5)."""

    median_days: Annotated[float, Field(ge=0.0, le=3652.5, allow_inf_nan=False)]
    sdlog: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = 0.0


class TissueTest(Frozen):
    not_submitted: Probability = Field(
        default=0.0, description="No tissue is submitted for testing (a screen failure before any assay)."
    )
    failure: Probability = Field(description="Tissue insufficient or the assay failed.")
    turnaround: Turnaround


class LiquidTest(Frozen):
    detectable: Probability = Field(description="The tumour sheds enough ctDNA for a result.")
    turnaround: Turnaround
    when: Annotated[str, Field(pattern="^fallback$")] = "fallback"


class Screening(Frozen):
    """What happens between arrival and randomization.

    A patient is ``ineligible`` (other criteria) with probability ``ineligible``. For a design that
    waits for a biomarker result before randomizing, tissue is submitted (or not: ``tissue.
    not_submitted``, a screen failure of its own) and tested; when the assay fails and a liquid
    test is configured, plasma is tested next. Without any result the patient is a screen failure.
    While waiting for results the patient can progress, deteriorate or die and never be randomized:
    probability 1 - exp(-loss_hazard_per_day x days). A patient with a result gets no assignment
    with probability ``not_assigned`` (ineligible for every sub-study once the result is known).
    Last, any patient who would be randomized does not register with probability ``declined``
    (withdraws, deteriorates or chooses another treatment after the assignment); this step is not an
    assay's cost and applies to every design. A design that needs no biomarker result (an all-comer
    design) runs no assay: every eligible patient is randomized without waiting, unless they decline.
    """

    ineligible: Probability = 0.0
    tissue: TissueTest | None = None
    liquid: LiquidTest | None = None
    loss_hazard_per_day: NonNegativeFloat = 0.0
    not_assigned: Probability = Field(
        default=0.0,
        description="A patient with a biomarker result gets no assignment (ineligible once the result is known).",
    )
    declined: Probability = Field(
        default=0.0,
        description="A patient who would be randomized does not register (withdraws, deteriorates, declines).",
    )

    @model_validator(mode="after")
    def _liquid_needs_tissue(self) -> "Screening":
        if self.liquid is not None and self.tissue is None:
            raise ValueError("liquid biopsy is a fallback for tissue testing; configure tissue too")
        if self.not_assigned > 0 and self.tissue is None:
            raise ValueError(
                f"not_assigned ({self.not_assigned!r}) is the share of patients with a biomarker result "
                "who get no assignment; configure the tissue test that gives the result"
            )
        return self


def _funnel_problems(population: "Population") -> list[str]:
    """A screening funnel that never lets anybody through to randomization, named by its largest loss."""
    sc = population.screening
    funnel = expected_funnel(population)
    if funnel["randomized"] > 0:
        return []
    causes = ("ineligible", "not_submitted", "screen_failure", "lost_while_waiting", "not_assigned", "declined")
    shares = ", ".join(f"{c.replace('_', ' ')} {funnel[c]:.3g}" for c in causes)
    cause = max(causes, key=funnel.get)
    if cause == "ineligible":
        where = f"screening.ineligible: every screened patient is ineligible (ineligible = {sc.ineligible!r})"
    elif cause == "declined":
        where = f"screening.declined: every patient declines to register (declined = {sc.declined!r})"
    elif cause == "not_submitted":
        where = (
            f"screening.tissue.not_submitted: no patient submits tissue (not_submitted = {sc.tissue.not_submitted!r})"
        )
    elif cause == "not_assigned":
        where = f"screening.not_assigned: no patient with a result is assigned (not_assigned = {sc.not_assigned!r})"
    elif cause == "screen_failure":
        liquid = "" if sc.liquid is None else f" and no plasma result (liquid.detectable = {sc.liquid.detectable!r})"
        where = f"screening.tissue.failure: no patient gets a tissue result (failure = {sc.tissue.failure!r}){liquid}"
    else:
        where = (
            f"screening.loss_hazard_per_day: every patient is lost while waiting for results "
            f"(loss_hazard_per_day = {sc.loss_hazard_per_day!r}, tissue turnaround median_days = "
            f"{sc.tissue.turnaround.median_days!r}, sdlog = {sc.tissue.turnaround.sdlog!r})"
        )
    by = "" if cause in ("ineligible", "declined") else " by a design that waits for a biomarker result"
    return [f"{where}; no screened patient is ever randomized{by} ({shares})"]


class Population(Frozen):
    name: Name
    description: str = ""
    accrual: Accrual = Field(default_factory=lambda: Accrual(rate_per_month=20.0))
    screening: Screening = Field(default_factory=Screening)
    markers: dict[Name, Marker] = Field(default_factory=dict)
    derived: dict[Name, Derived] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> "Population":
        problems = []
        has_regions = self.accrual.regions is not None
        if REGION in self.markers or REGION in self.derived:
            problems.append(f"{REGION!r} is reserved for the accrual region; rename the marker")
        both = set(self.markers) & set(self.derived)
        if both:
            problems.append(f"{sorted(both)} are both markers and derived markers")
        seen: dict[str, list[str]] = {REGION: list(self.accrual.region_list)} if has_regions else {}
        for name, marker in self.markers.items():
            for g in marker.given:
                if g not in seen:
                    later = g in self.markers
                    problems.append(
                        f"markers.{name}.given: {g!r} "
                        + (
                            "is listed after it; list the markers it depends on first"
                            if later
                            else f"is not a marker{' or region' if has_regions else ''}; known: {sorted(seen)}"
                        )
                    )
            if all(g in seen for g in marker.given):
                _, table_problems = marker.table([seen[g] for g in marker.given])
                problems.extend(f"markers.{name}: {p}" for p in table_problems)
            seen[name] = marker.levels
        for name, d in self.derived.items():
            for marker, levels in d.conditions:
                if marker not in seen:
                    problems.append(f"derived.{name}: {marker!r} is not a marker; known: {sorted(seen)}")
                elif levels is None and len(seen[marker]) != 2:
                    problems.append(
                        f"derived.{name}: {marker!r} has levels {seen[marker]}; name the levels that count, "
                        f"e.g. {{{marker}: {seen[marker][-1]}}}"
                    )
                elif levels is not None and set(levels) - set(seen[marker]):
                    problems.append(
                        f"derived.{name}: {sorted(set(levels) - set(seen[marker]))} are not levels of "
                        f"{marker!r} ({seen[marker]})"
                    )
            seen[name] = ["negative", "positive"]
        for name, m in self.markers.items():
            if m.tissue is not None and self.screening.tissue is None:
                problems.append(
                    f"markers.{name}.tissue: the marker is measured on tissue, but screening has no tissue test"
                )
            if m.liquid is not None and self.screening.liquid is None:
                problems.append(
                    f"markers.{name}.liquid: the marker is measured in plasma, but screening has no liquid test"
                )
        problems.extend(_funnel_problems(self))
        if problems:
            raise ValueError(PROBLEM_SEPARATOR.join(problems))
        return self

    def levels(self) -> dict[str, list[str]]:
        """Every characteristic a scenario or design can name, with its levels (region first)."""
        out = {REGION: list(self.accrual.region_list)} if self.accrual.regions is not None else {}
        out.update({n: list(m.levels) for n, m in self.markers.items()})
        out.update({n: ["negative", "positive"] for n in self.derived})
        return out


# --------------------------------------------------------------------------- exact funnel


def _survival(sc) -> tuple[float, float]:
    """E[exp(-h W)] for the wait W of the tissue path and of the tissue-then-plasma path
    (Gauss-Hermite over the lognormal turnaround times)."""
    h = sc.loss_hazard_per_day
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()

    def survive(t_days):
        if h == 0 or t_days.median_days == 0:  # no loss, even when a huge sdlog makes some waits infinite (0 x inf)
            return 1.0
        return float((w * np.exp(-h * t_days.median_days * np.exp(t_days.sdlog * x))).sum())

    s_tissue = survive(sc.tissue.turnaround)
    s_both = s_tissue * survive(sc.liquid.turnaround) if sc.liquid is not None else s_tissue
    return s_tissue, s_both


def screening_paths(population: Population, biomarker_result: bool = True) -> dict[str, float]:
    """Exact probability that a screened patient is randomized with a tissue result, with a plasma
    result, or (screening without assays, or a design that randomizes without waiting for a
    biomarker result: ``biomarker_result=False``) with no result at all."""
    sc = population.screening
    keep = (1 - sc.ineligible) * (1 - sc.declined)
    if sc.tissue is None or not biomarker_result:
        return {"none": keep}
    keep = keep * (1 - sc.tissue.not_submitted) * (1 - sc.not_assigned)
    s_tissue, s_both = _survival(sc)
    ft = sc.tissue.failure
    liquid = ft * sc.liquid.detectable * s_both if sc.liquid is not None else 0.0
    return {"tissue": keep * (1 - ft) * s_tissue, "liquid": keep * liquid}


def expected_funnel(population: Population, biomarker_result: bool = True) -> dict[str, float]:
    """Exact expected share of screened patients leaving the funnel for each reason.

    The steps, in order (a patient leaves at the first that stops them): ``ineligible``;
    ``not_submitted`` (no tissue); ``lost_while_waiting`` (progressed or died before the result);
    ``screen_failure`` (no result from any assay); ``not_assigned`` (a result but no assignment);
    ``declined`` (assigned but not registered); the rest are ``randomized``.

    ``biomarker_result``: whether the design waits for a biomarker result before randomizing. A
    design that does not (``False``: an all-comer design) runs no assay, so nobody is without a
    sample, fails the assay, is lost while waiting for it or is left unassigned by it; clinical
    ineligibility and declining to register remain."""
    sc = population.screening
    p_inel = sc.ineligible
    if sc.tissue is None or not biomarker_result:
        p_none, p_fail, p_lost, p_unassigned = 0.0, 0.0, 0.0, 0.0
    else:
        p_none, p_unassigned = sc.tissue.not_submitted, sc.not_assigned
        ft = sc.tissue.failure
        p_liquid = ft * (sc.liquid.detectable if sc.liquid is not None else 0.0)
        p_fail = ft - p_liquid
        s_tissue, s_both = _survival(sc)
        # lost while waiting takes precedence over screen failure
        p_lost = (
            (1 - ft) * (1 - s_tissue)
            + p_liquid * (1 - s_both)
            + p_fail * (1 - s_both if sc.liquid is not None else 1 - s_tissue)
        )
        p_fail = p_fail * (s_both if sc.liquid is not None else s_tissue)
    keep = 1 - p_inel
    submitted = keep * (1 - p_none)
    result = submitted * (1 - p_fail - p_lost)
    assigned = result * (1 - p_unassigned)
    return {
        "randomized": assigned * (1 - sc.declined),
        "screen_failure": submitted * p_fail,
        "lost_while_waiting": submitted * p_lost,
        "ineligible": p_inel,
        "not_submitted": keep * p_none,
        "not_assigned": result * p_unassigned,
        "declined": assigned * sc.declined,
    }


def expected_randomizable(population, months: float, biomarker_result: bool = True) -> float:
    """Expected patients passing screening by ``months`` after opening (exact accrual integral x funnel);
    ``biomarker_result`` as in :func:`expected_funnel`."""
    total = 0.0
    for region in population.accrual.region_list.values():
        t = max(months - region.start_month, 0.0)
        ramp = region.ramp_up_months
        if ramp > 0 and t < ramp:
            total += region.rate_per_month * t * t / (2.0 * ramp)
        else:
            total += region.rate_per_month * (t - ramp / 2.0)
    return total * expected_funnel(population, biomarker_result)["randomized"]
