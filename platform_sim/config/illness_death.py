"""The scenario sections of the joint response / PFS / OS model (illness-death, semi-Markov).

A scenario with an ``illness_death`` section draws three of its endpoints jointly (see
:mod:`platform_sim.posterior.illness_death` for the model)::

    illness_death:
      response: orr            # a binary endpoint: objective response (optional)
      progression_free: pfs    # a time_to_event endpoint: progression-free survival
      overall: os              # a time_to_event endpoint: overall survival

Each treatment then says how it acts in the model, in ``treatments.<name>.illness_death``: the
treatment that is not ``relative_to`` another gives the ``baseline`` (facts of its arm the model
is calibrated to); the others give effects, multiplied along the ``relative_to`` chain:

* ``response_odds_ratio``: on the odds of response;
* ``progression_hazard_ratio``: on the hazard of progression, a number or pieces
  ``[{from_months: 0, hazard_ratio: 1.0}, {from_months: 3, hazard_ratio: 0.6}]`` (a delayed
  effect; crossing curves when a ratio is above 1 and a later one below);
* ``death_hazard_ratio``: on the hazard of death before progression;
* ``post_progression_hazard_ratio``: on the hazard of death after progression, a number or pieces
  in months since progression.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .base import Frozen, Months, Name, OpenProbability, PositiveMonths, Ratio


class HazardRatioPiece(Frozen):
    """A hazard ratio from ``from_months`` on (until the next piece starts)."""

    from_months: Months
    hazard_ratio: Ratio


HazardRatio = Ratio | list[HazardRatioPiece]


def _check_pieces(value):
    if isinstance(value, list):
        if not value:
            raise ValueError(
                "a piecewise hazard ratio needs at least one piece, e.g. [{from_months: 0, hazard_ratio: 1}]"
            )
        starts = [p.from_months for p in value]
        if starts[0] != 0.0:
            raise ValueError(f"the first piece must start at from_months: 0, got {starts[0]}")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"pieces must start at increasing times, got {starts}")
    return value


def as_pieces(value) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A hazard ratio as ``(starts, ratios)``."""
    if isinstance(value, list):
        return tuple(p.from_months for p in value), tuple(p.hazard_ratio for p in value)
    return (0.0,), (float(value),)


class Baseline(Frozen):
    """The facts of the reference treatment's arm the model is calibrated to (constant hazards)."""

    response_rate: float = Field(ge=0.0, lt=1.0, description="objective response rate")
    median_pfs_months: PositiveMonths
    median_os_months: PositiveMonths
    responder_progression_hazard_ratio: Ratio = Field(
        description="progression hazard of responders relative to non-responders"
    )
    death_share_of_pfs_events: OpenProbability = Field(
        description="share of PFS events that are deaths without progression"
    )

    @model_validator(mode="after")
    def _os_after_pfs(self) -> Baseline:
        if self.median_os_months <= self.median_pfs_months:
            raise ValueError(
                f"median_os_months ({self.median_os_months:g}) must exceed median_pfs_months "
                f"({self.median_pfs_months:g}): every death ends progression-free survival"
            )
        return self


class TreatmentIllnessDeath(Frozen):
    """One treatment in the illness-death model (see the module docstring)."""

    baseline: Baseline | None = None
    response_odds_ratio: Ratio = 1.0
    progression_hazard_ratio: HazardRatio = 1.0
    death_hazard_ratio: Ratio = 1.0
    post_progression_hazard_ratio: HazardRatio = 1.0

    _pieces = field_validator("progression_hazard_ratio", "post_progression_hazard_ratio")(_check_pieces)

    def effects_given(self) -> list[str]:
        return sorted(k for k in self.model_dump(exclude_defaults=True) if k != "baseline")


class IllnessDeathEndpoints(Frozen):
    """Which endpoints of the scenario the illness-death model draws."""

    response: Name | None = Field(default=None, description="binary endpoint: objective response")
    progression_free: Name = Field(description="time_to_event endpoint: progression-free survival")
    overall: Name = Field(description="time_to_event endpoint: overall survival")

    @model_validator(mode="after")
    def _distinct(self) -> IllnessDeathEndpoints:
        names = [n for n in (self.response, self.progression_free, self.overall) if n is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"response, progression_free and overall must be different endpoints, got {names}")
        return self

    def roles(self) -> dict[str, str]:
        """endpoint name -> 'response', 'pfs' or 'os'."""
        out = {self.progression_free: "pfs", self.overall: "os"}
        if self.response is not None:
            out[self.response] = "response"
        return out
