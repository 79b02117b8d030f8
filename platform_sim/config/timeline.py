"""A platform over calendar time: interim triggers, arm entry, shared controls and graduation.

A design with a ``platform`` section runs on the calendar. Patients arrive as the
population's accrual and screening say; each is randomized on arrival among the arms
open in their stratum (simple randomization with the current allocation
probabilities), and their outcome is observed when the assessment schedule would
observe it. Analyses happen when their trigger fires:

* ``every_months`` (first at ``first_months``): calendar time;
* ``every_enrolled``: each time that many more patients have been randomized;
* ``every_observed``: each time that many more outcomes (events, for progression-free
  survival) have been observed;

and, with ``min_new_outcomes``, only when at least that many outcomes are new since
the last analysis (otherwise the analysis is skipped until the next trigger).

Arms listed with ``enter_months`` become available at that date; the others are
available from the start. Available arms open in the order listed while fewer than
``max_open_arms`` experimental arms are open; an arm leaves when it graduates, is
dropped, reaches its ``max_n`` (its slot is then free at the next analysis) or its
``closes_months``. With sub-studies (``strata.groups``) a sub-study's arms open on its
``opens_months`` or ``opens_after`` trigger and close on its ``closes_months``, and the
sub-studies named in ``queue`` wait for a free slot in that order (the others do not). The
platform stops enrolling when no arm is open and none is waiting, or at
``max_duration_months``; arms still undecided then get a final analysis after
``follow_up_months``.

Each arm is compared with the control patients randomized while it was open (``controls:
concurrent``) or with all of them (``all``), and with ``time_adjustment`` the comparison is
adjusted for calendar time by *period*, the intervals between the dates arms enter or leave:
``stratified_by_period`` compares the arm with the control within each period (concurrent
controls only), ``period_covariate`` fits every arm with a fixed effect per period
(families/platform_period.py, posterior/period.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import (
    Frozen,
    Months,
    Name,
    NonNegativeInt,
    OpenProbability,
    PositiveFloat,
    PositiveInt,
    PositiveMonths,
    PositiveWeeks,
)


class Interims(Frozen):
    every_months: PositiveMonths | None = Field(default=None, description="Calendar trigger: months between analyses.")
    first_months: PositiveMonths | None = Field(default=None, description="Calendar trigger: the first analysis.")
    every_enrolled: PositiveInt | None = Field(default=None, description="An analysis per this many new patients.")
    every_observed: PositiveInt | None = Field(default=None, description="An analysis per this many new outcomes.")
    min_new_outcomes: NonNegativeInt = Field(default=0, description="Skip an analysis with fewer new outcomes.")

    @model_validator(mode="after")
    def _one_trigger(self) -> "Interims":
        given = [k for k in ("every_months", "every_enrolled", "every_observed") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one trigger: every_months (calendar), every_enrolled or every_observed"
                + (f"; got {given}" if given else "")
            )
        if self.first_months is not None and self.every_months is None:
            raise ValueError("first_months goes with every_months (a calendar trigger)")
        return self

    @property
    def trigger(self) -> str:
        if self.every_months is not None:
            return "calendar"
        return "enrolled" if self.every_enrolled is not None else "observed"

    @property
    def first(self) -> float:
        return self.first_months if self.first_months is not None else self.every_months


class Graduation(Frozen):
    """When an arm leaves with success (graduates) or for futility (is dropped).

    ``by: predictive`` (I-SPY 2): the success probability is the predictive probability that a
    1:1 confirmatory trial (``confirmatory_n`` patients on a binary endpoint, ``confirmatory_events``
    events on progression-free survival) is positive at one-sided level ``alpha``. ``by: posterior``:
    it is P(arm better than control), i.e. P(p_arm > p_control) or P(hazard ratio < 1).

    The arm graduates when the success probability reaches ``graduate`` in any signature and is
    dropped when it is below ``drop`` in every signature, once it has ``min_n`` patients.
    Signatures are unions of strata (default: each stratum and all of them together).
    """

    by: Literal["predictive", "posterior"] = "predictive"
    graduate: OpenProbability
    drop: OpenProbability | None = None
    confirmatory_n: PositiveInt = Field(default=300, description="Patients of the 1:1 confirmatory trial.")
    confirmatory_events: PositiveInt | None = Field(
        default=None, description="Events of the confirmatory trial (time-to-event endpoint; default confirmatory_n)."
    )
    alpha: OpenProbability = 0.025
    min_n: NonNegativeInt = Field(default=0, description="Patients an arm needs before any decision.")
    signatures: dict[Name, list[str]] | None = Field(
        default=None, description="Named unions of strata (stratum names)."
    )

    @field_validator("signatures")
    @classmethod
    def _some_signature(cls, signatures):
        if signatures is not None and not signatures:
            raise ValueError(
                "names no signature (got {}); give at least one, or leave signatures out for the default "
                "(each stratum and all of them together)"
            )
        return signatures

    @model_validator(mode="after")
    def _order(self) -> "Graduation":
        if self.drop is not None and self.drop >= self.graduate:
            raise ValueError(f"drop ({self.drop}) must be below graduate ({self.graduate})")
        for name, strata in (self.signatures or {}).items():
            if not strata:
                raise ValueError(f"signature {name!r} lists no strata")
        return self


class GammaPrior(Frozen):
    """Gamma(shape, rate) prior on an exponential hazard (per month): mean shape / rate."""

    shape: PositiveFloat
    rate: PositiveFloat


class Platform(Frozen):
    max_duration_months: PositiveMonths = Field(description="Enrolment stops at this date at the latest.")
    follow_up_months: Months = Field(
        default=0.0, description="Follow-up after enrolment stops before the final analysis of undecided arms."
    )
    max_open_arms: PositiveInt | None = Field(default=None, description="Experimental arms open at once.")
    queue: list[Name] | None = Field(
        default=None,
        min_length=1,
        description="Sub-studies (strata groups) that wait for a free slot (max_open_arms), in this order; the "
        "others open at their date or trigger without waiting.",
    )
    assessment_weeks: PositiveWeeks = Field(
        default=6.0, description="Tumour assessments every this many weeks; progression is seen at the next one."
    )
    controls: Literal["concurrent", "all"] = Field(
        default="concurrent",
        description="Compare each arm with the control patients randomized while it was open, or with all of them.",
    )
    time_adjustment: Literal["none", "stratified_by_period", "period_covariate"] = Field(
        default="none",
        description="Adjust the comparison with the control for calendar time by period (the intervals between the "
        "dates arms enter or leave): none; stratified_by_period (arm and control within each period, "
        "concurrent controls); period_covariate (every arm with a fixed effect per period).",
    )
    interims: Interims
    graduation: Graduation
    hazard_prior: GammaPrior | None = Field(
        default=None, description="Prior on every arm's progression hazard (time-to-event endpoint)."
    )

    @field_validator("time_adjustment")
    @classmethod
    def _periods_need_their_controls(cls, value, info):
        if value == "stratified_by_period" and info.data.get("controls") == "all":
            raise ValueError(
                "stratified_by_period compares an arm with the control only within the periods in which "
                "both randomize, so it uses the concurrent controls whatever 'controls' says; write "
                "controls: concurrent, or use period_covariate to let non-concurrent controls contribute "
                "through a model of every arm"
            )
        return value

    working_hazard_ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.8,
        description="Time-to-event endpoint: an arm whose true hazard ratio is at most this works (counts toward power).",
    )
