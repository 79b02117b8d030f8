"""Shared building blocks of the configuration models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
OpenProbability = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
# Limits of what the simulator runs, checked when files are loaded so that a typo (an extra zero,
# a huge number) is a clear error instead of an exhausted memory or a run that never ends.
# Randomized patients per trial: its arrays are simulated trials x patients, and every patient is
# drawn; far beyond any real trial.
MAX_PATIENTS = 100_000
# Screened patients a simulated trial may need (expected): patients are drawn in blocks, and a trial
# whose screening funnel would need more than about 2.5 million is stopped (outcomes.py, enrol).
MAX_SCREENED = 1_000_000
# Strata of a stratified design: a patient's matching strata are a 32-bit mask.
MAX_STRATA = 32
# Interim analyses of a platform on a calendar trigger before its maximum duration.
MAX_ANALYSES = 10_000
# Beta prior parameters (prior events and non-events): a prior worth a million patients is the most
# the posterior quadrature takes.
MAX_PRIOR_WEIGHT = 1e6
# Model validators that find several problems join them with this separator, each as
# "field.path: message"; the loader splits them into one reported problem each.
PROBLEM_SEPARATOR = "\n"

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.+\-]+$")]


@dataclass(frozen=True)
class Problem:
    """One problem with a configuration: the field path, what is wrong and allowed, the bad value
    and the file."""

    path: str
    message: str
    value: Any = None
    file: str | None = None

    def format(self) -> str:
        where = f"{self.file}: " if self.file else ""
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}{self.path}: {self.message}{shown}"


class Frozen(BaseModel):
    """Base: immutable, unknown keys are errors (a typo is never ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
