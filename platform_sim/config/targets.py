"""The operating characteristics a design promises: the ``targets`` section of a design.

A design states the family-wise error rate it holds on a null scenario and the power it reaches on
an alternative scenario, each named (a shipped scenario or a scenario file, resolved next to the
design first)::

    targets:
      fwer: 0.10                          # one-sided family-wise error rate on null_scenario
      null_scenario: pioneer_null
      power: 0.80                         # P(at least one true claim) on alternative_scenario
      alternative_scenario: allcomer_effect
      power_shortfall: >                  # required when the power target is knowingly missed
        ...

The error is P(any claim) on the null scenario, which must be a global null, and the power is the
disjunctive power of the common yardstick (:mod:`platform_sim.yardstick`), as ``platform-sim
compare`` reads them. ``platform-sim calibrate`` and ``platform-sim size`` find the threshold and
the size that meet them; a slow test holds every shipped design to its targets.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from .base import Frozen

#: A one-sided family-wise error target above this is not an error rate a trial states.
MAX_FWER = 0.5


class Targets(Frozen):
    """A design's operating-characteristic targets (see the module docstring)."""

    fwer: float = Field(
        description="One-sided family-wise error rate held on null_scenario, in (0, 0.5).",
        json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": MAX_FWER},
    )
    null_scenario: str = Field(min_length=1, description="The global-null scenario (shipped name or file).")
    power: float = Field(
        description="Power reached on alternative_scenario, in (0, 1).",
        json_schema_extra={"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    )
    alternative_scenario: str = Field(
        min_length=1, description="The scenario the power is read on (shipped name or file)."
    )
    power_shortfall: str | None = Field(
        default=None, description="Why the power target is not met; required when it is knowingly missed."
    )

    @field_validator("fwer")
    @classmethod
    def _fwer(cls, v: float) -> float:
        if not 0.0 < v < MAX_FWER:
            raise ValueError(f"the one-sided family-wise error target must be strictly between 0 and {MAX_FWER:g}")
        return v

    @field_validator("null_scenario")
    @classmethod
    def _null(cls, v: str) -> str:
        return _scenario(v)

    @field_validator("power")
    @classmethod
    def _power(cls, v: float, info: ValidationInfo) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError("the power target must be strictly between 0 and 1")
        fwer = info.data.get("fwer")
        if fwer is not None and v <= fwer:
            raise ValueError(
                f"a power target ({v:g}) at or below the error target ({fwer:g}) asks for nothing a "
                "design that claims at random could not do"
            )
        return v

    @field_validator("alternative_scenario")
    @classmethod
    def _alternative(cls, v: str, info: ValidationInfo) -> str:
        v = _scenario(v)
        if v == info.data.get("null_scenario"):
            raise ValueError("is the null scenario: the power is read on a scenario where some treatment works")
        return v

    @field_validator("power_shortfall")
    @classmethod
    def _shortfall(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("is empty: say why the power target is not met, or remove power_shortfall")
        return v


def _scenario(v: str) -> str:
    if not v.strip():
        raise ValueError("give a scenario: a shipped scenario's name or a scenario file")
    return v


__all__ = ["MAX_FWER", "Targets"]
