"""Shared building blocks of the configuration models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
OpenProbability = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
# Model validators that find several problems join them with this separator, each as
# "field.path: message"; the loader splits them into one reported problem each.
PROBLEM_SEPARATOR = "\n"

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.+\-]+$")]


class Frozen(BaseModel):
    """Base: immutable, unknown keys are errors (a typo is never ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
