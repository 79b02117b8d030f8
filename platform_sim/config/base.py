"""Shared building blocks of the configuration models."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# How Frozen.replace validates a changed model again, as a file is: the loader (config/load.py,
# which builds on this module) registers it when it is imported, and the package imports the loader,
# so it is in place before any model exists. Registered rather than imported, so that imports among
# the configuration modules run one way.
_revalidation: list[Callable[[Any, dict[str, Any]], Any]] = []


def register_revalidation(revalidate: Callable[[Any, dict[str, Any]], Any]) -> None:
    """Make ``revalidate(model, changes)`` the check behind :meth:`Frozen.replace`."""
    _revalidation[:] = [revalidate]


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
# Arms of a design: the engines store arm indices (the control of the day, the arm each patient of
# a platform is randomized to) as 8-bit integers; a hundred arms is far beyond any platform trial.
MAX_ARMS = 100
# Strata of a stratified design: a patient's matching strata are a 32-bit mask.
MAX_STRATA = 32
# Interim analyses of a platform on a calendar trigger before its maximum duration.
MAX_ANALYSES = 10_000
# Beta prior parameters (prior events and non-events): a prior worth a million patients is the most
# the posterior quadrature takes.
MAX_PRIOR_WEIGHT = 1e6
# Odds ratios and hazard ratios: a factor of 1000 either way is far beyond any effect in the
# sources (the shipped scenarios use 0.4 to 5.5); beyond it exp() of sums of log ratios overflows.
MIN_RATIO = 1e-3
MAX_RATIO = 1e3
# Times (medians, piece starts, onsets, dropout windows, arm entry, platform durations, intervals
# between analyses, assessments): at most 100 years, far beyond any trial or survival time; a
# larger number is a typo, and 1e308 months overflowed the drawn event times.
MAX_MONTHS = 1200.0
MAX_WEEKS = 100 * 365.25 / 7  # 5217.9 weeks
# A time that must be positive is at least 0.001 of its unit (10 minutes in weeks, 44 in months):
# a smaller one is a typo, and 5e-324 weeks became 0 months, then a division by zero.
MIN_POSITIVE_TIME = 1e-3
# Hazards per month (pieces of a piecewise-exponential baseline): 1000 per month is a median of
# about 20 minutes.
MAX_HAZARD_PER_MONTH = 1e3
# A calendar time trend of the linear predictor (log-odds or log-hazard per year): 10 is a factor
# of e^10 (22,000) per year.
MAX_TREND_PER_YEAR = 10.0
# A cost per patient (any currency): a billion is far beyond any trial (the defaults are 3,500 per
# assay and 69,700 per randomized patient); the cost of a trial multiplies it by up to millions of
# screened patients, and 1e308 made it infinite.
MAX_COST_PER_PATIENT = 1e9
# Model validators that find several problems join them with this separator, each as
# "field.path: message"; the loader splits them into one reported problem each.
PROBLEM_SEPARATOR = "\n"

Ratio = Annotated[float, Field(ge=MIN_RATIO, le=MAX_RATIO, allow_inf_nan=False)]
Months = Annotated[float, Field(ge=0.0, le=MAX_MONTHS, allow_inf_nan=False)]
PositiveMonths = Annotated[float, Field(ge=MIN_POSITIVE_TIME, le=MAX_MONTHS, allow_inf_nan=False)]
Weeks = Annotated[float, Field(ge=0.0, le=MAX_WEEKS, allow_inf_nan=False)]
Cost = Annotated[float, Field(ge=0.0, le=MAX_COST_PER_PATIENT, allow_inf_nan=False)]
PositiveWeeks = Annotated[float, Field(ge=MIN_POSITIVE_TIME, le=MAX_WEEKS, allow_inf_nan=False)]

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
        shown = "" if self.value is None else f" (got {_shown(self.value)})"
        return f"{where}{self.path}: {self.message}{shown}"


_SHOWN_CHARACTERS = 200


def _shown(value) -> str:
    """A bad value as shown in a message: its repr, cut short when very long (a pasted file, a
    string of thousands of characters) so that the message stays one readable line."""
    text = repr(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return f"{text[:_SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def _members(annotation) -> list:
    """The types a field accepts: ``Annotated`` stripped, unions and optionals flattened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for a in get_args(annotation) for m in _members(a)]
    return [annotation]


def _takes_bool(members: list) -> bool:
    return any(
        m is bool or (get_origin(m) is Literal and any(isinstance(v, bool) for v in get_args(m))) for m in members
    )


def _takes_number(members: list) -> bool:
    return any(m is int or m is float for m in members)


def _bool_as_number(value, annotation) -> tuple[str, bool] | None:
    """Where ``value`` holds a YAML boolean (true/false, yes/no, on/off) that pydantic would read as
    the number 1 or 0 in a field that takes numbers but no booleans: the place below the field
    ('' for the value itself, '[i]' or '.key' below it) and the boolean; None when there is none."""
    members = _members(annotation)
    if _takes_bool(members):
        return None
    if isinstance(value, bool):
        return ("", value) if _takes_number(members) else None
    if isinstance(value, list):
        for m in members:
            if get_origin(m) is list:
                for i, item in enumerate(value):
                    found = _bool_as_number(item, get_args(m)[0])
                    if found is not None:
                        return f"[{i}]{found[0]}", found[1]
    elif isinstance(value, dict):
        for m in members:
            if get_origin(m) is dict:
                key_type, value_type = get_args(m)
                for k, v in value.items():
                    if isinstance(k, bool) and _takes_number(_members(key_type)):
                        return " as a key", k
                    found = _bool_as_number(v, value_type)
                    if found is not None:
                        return f".{k}{found[0]}", found[1]
    return None


class Frozen(BaseModel):
    """Base: immutable, unknown keys are errors (a typo is never ignored), a YAML boolean is never
    read as a number, and a changed copy is made with :meth:`replace`, which validates it again."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value, info: ValidationInfo):
        # pydantic reads true/false as 1/0 in a number field, so `probability: true` would be a
        # probability of 1: refuse it wherever the field takes numbers and no booleans.
        field = cls.model_fields.get(info.field_name) if info.field_name else None
        if field is not None:
            found = _bool_as_number(value, field.annotation)
            if found is not None:
                where, flag = found
                raise ValueError(
                    f"a yes/no value ({str(flag).lower()}{(where if where.startswith(' ') else ' at ' + where.lstrip('.')) if where else ''}) "
                    "where a number is expected; YAML reads true/false, yes/no and on/off as booleans, "
                    "so write the number"
                )
        return value

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like a file: every field and, for a design, the checks
        of the whole design. A key reaches into nested sections with ``__``
        (``design.replace(decisions__superiority=0.995)``; ``arms__0__max_n`` for a list item).
        Raises :class:`platform_sim.config.ConfigError` (a ``ValueError``) naming each bad field."""
        (revalidate,) = _revalidation
        return revalidate(self, changes)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update``, the same as :meth:`replace` (validated again), since pydantic's
        own ``model_copy(update=...)`` would skip every check."""
        if update:
            return self.replace(**update)
        return super().model_copy(deep=deep)
