"""Validated, immutable configuration models.

A *scenario* says what nature is (the true outcome rate of every treatment);
a *design* says what the trial does (arms, randomization, looks, priors and
decision rules). Both are plain YAML files loaded into these frozen pydantic
models. Checks that involve one file only live here; checks that tie a design
to a scenario live in :mod:`platform_sim.config.crosscheck`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .base import (
    MAX_ARMS,
    MAX_PATIENTS,
    MAX_PRIOR_WEIGHT,
    Frozen,
    Months,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    OpenProbability,
    PositiveFloat,
    PositiveInt,
    PositiveWeeks,
    Probability,
)
from .event_driven import EventDriven
from .scenario import Scenario
from .strata import Strata
from .targets import Targets
from .timeline import Platform
from .two_stage import TwoStage

# --------------------------------------------------------------------------- design


# Beta shapes of at least 1/2 (Jeffreys' prior is Beta(1/2, 1/2)): the exact posterior
# probabilities are accurate to 1e-6 there, but not below, where a density's singularity at 0 or
# 1 is too strong for the quadrature (docs/bayesian_models.md, "Accuracy").
MIN_BETA_SHAPE = 0.5
PriorWeight = Annotated[float, Field(ge=MIN_BETA_SHAPE, le=MAX_PRIOR_WEIGHT, allow_inf_nan=False)]


class BetaPrior(Frozen):
    """Beta(a, b) prior of a rate: a and b in [1/2, 1e6] (prior events and non-events)."""

    a: PriorWeight
    b: PriorWeight


class Endpoint(Frozen):
    name: Name
    direction: Literal["higher_is_better", "lower_is_better"]

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher_is_better"


class Arm(Frozen):
    name: Name
    treatment: Name
    max_n: PositiveInt | None = Field(
        default=None, le=MAX_PATIENTS, description="Cap on patients randomized to this arm."
    )
    prior: BetaPrior | None = Field(default=None, description="Overrides the design prior for this arm.")
    enter_months: Months | None = Field(
        default=None, description="Platform designs: the date the arm becomes available (default: the start)."
    )
    closes_months: Months | None = Field(
        default=None, description="Platform designs: the date the arm stops randomizing (default: never)."
    )


class OutcomeDelay(Frozen):
    """Months from randomization until a patient's outcome is known, drawn per patient.

    * ``endpoint``: the scenario's assessment time of the design's endpoint (e.g. 12 weeks for
      12-week disease control), the same for every patient: no free lag parameter;
    * ``fixed``: ``median_weeks`` for every patient;
    * ``lognormal``: median ``median_weeks``, log-scale standard deviation ``sdlog``;
    * ``gamma``: median ``median_weeks``, shape ``shape``.

    With ``assessment_every_weeks`` the outcome is known at the first scheduled assessment
    (every that many weeks from randomization) at or after the drawn delay, as with RECIST scans.
    """

    distribution: Literal["endpoint", "fixed", "lognormal", "gamma"]
    median_weeks: PositiveWeeks | None = Field(default=None, description="the delay's median, in weeks")
    sdlog: PositiveFloat | None = Field(default=None, description="lognormal: standard deviation of log(delay)")
    shape: PositiveFloat | None = Field(default=None, description="gamma: shape parameter")
    assessment_every_weeks: PositiveWeeks | None = Field(
        default=None, description="outcomes are read at scans every this many weeks after randomization"
    )

    @model_validator(mode="after")
    def _parameters(self) -> "OutcomeDelay":
        needs = {
            "endpoint": (),
            "fixed": ("median_weeks",),
            "lognormal": ("median_weeks", "sdlog"),
            "gamma": ("median_weeks", "shape"),
        }[self.distribution]
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"outcome_delay with distribution {self.distribution!r} needs {missing}")
        extra = [k for k in ("median_weeks", "sdlog", "shape") if k not in needs and getattr(self, k) is not None]
        if extra:
            raise ValueError(f"outcome_delay with distribution {self.distribution!r} does not use {extra}; remove them")
        return self


class Looks(Frozen):
    """Interim analyses, by numbers of patients.

    ``randomized_n[j]`` patients have been randomized when look ``j`` happens and
    ``followed_n[j]`` of them (the earliest randomized) have an observed outcome.
    Without ``followed_n`` every randomized patient has an outcome at the look.
    With ``outcome_delay`` instead, look ``j`` happens on the date its last patient is
    randomized and its followed patients are those whose outcome date (randomization
    plus a delay drawn per patient) falls on or before it, so their number varies from
    trial to trial with the accrual.
    The shorthand ``{first, every, last}`` expands to ``range(first, last+1, every)``.
    """

    randomized_n: list[PositiveInt] = Field(min_length=1)
    followed_n: list[PositiveInt] | None = None
    outcome_delay: OutcomeDelay | None = Field(
        default=None, description="random outcome delays, instead of followed_n (see OutcomeDelay)"
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data):
        if isinstance(data, dict) and "randomized_n" not in data and {"first", "every", "last"} & set(data):
            missing = {"first", "every", "last"} - set(data)
            if missing:
                raise ValueError(f"the look shorthand needs first, every and last; missing {sorted(missing)}")
            first, every, last = data["first"], data["every"], data["last"]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (first, every, last)):
                raise ValueError(
                    f"first, every and last must be positive whole numbers, got {first!r}, {every!r}, {last!r}"
                )
            if last < first:
                raise ValueError(f"last ({last}) is before first ({first})")
            if last > MAX_PATIENTS:
                raise ValueError(f"last ({last}) exceeds the largest trial the simulator runs, {MAX_PATIENTS} patients")
            rest = {k: v for k, v in data.items() if k not in ("first", "every", "last")}
            return {**rest, "randomized_n": list(range(first, last + 1, every))}
        return data

    # Field validators (not a model validator) so that errors name looks.randomized_n / looks.followed_n.
    @field_validator("randomized_n")
    @classmethod
    def _randomized_increasing(cls, r: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(r, r[1:])):
            raise ValueError(f"randomized_n must be strictly increasing, got {r}")
        if max(r) > MAX_PATIENTS:
            raise ValueError(f"{max(r)} patients exceed the largest trial the simulator runs, {MAX_PATIENTS} patients")
        return r

    @field_validator("followed_n")
    @classmethod
    def _followed_fits(cls, f: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if f is None:
            return f
        if any(b <= a for a, b in zip(f, f[1:])):
            raise ValueError(f"followed_n must be strictly increasing, got {f}")
        r = info.data.get("randomized_n")
        if r is None:  # randomized_n is itself invalid and reported
            return f
        if len(f) != len(r):
            raise ValueError(f"followed_n has {len(f)} looks but randomized_n has {len(r)}; it needs one per look")
        bad = [j for j, (fj, rj) in enumerate(zip(f, r)) if fj > rj]
        if bad:
            j = bad[0]
            raise ValueError(
                f"look {j}: followed_n ({f[j]}) exceeds randomized_n ({r[j]}); "
                "outcomes can only be observed for randomized patients"
            )
        return f

    @model_validator(mode="after")
    def _one_lag(self) -> "Looks":
        if self.followed_n is not None and self.outcome_delay is not None:
            raise ValueError("looks.followed_n and looks.outcome_delay both say when outcomes are known; give one")
        return self

    @property
    def n_looks(self) -> int:
        return len(self.randomized_n)

    @property
    def max_n(self) -> int:
        return self.randomized_n[-1]

    @property
    def followed(self) -> list[int]:
        return list(self.followed_n) if self.followed_n is not None else list(self.randomized_n)


Softening = Union[NonNegativeFloat, list[NonNegativeFloat], Literal["thall_wathen"]]
Limits = Union[Probability, dict[Name, Probability]]


class Coin(Frozen):
    """A biased coin that steers the realised allocation toward the target probabilities.

    ``hu_zhang``: the doubly-adaptive biased coin of Hu and Zhang (2004, Ann Stat 32:268): with x_k
    the share of patients arm k has received so far and rho_k its target probability,
    g_k = rho_k (rho_k / x_k)^gamma / sum_j rho_j (rho_j / x_j)^gamma. gamma = 0 is the target
    itself; larger gamma pulls harder toward it.
    """

    rule: Literal["hu_zhang"]
    gamma: Annotated[float, Field(ge=0.0, le=50.0, allow_inf_nan=False)] = 2.0


class Randomization(Frozen):
    """How patients are allocated between looks.

    * ``fixed``: allocation proportional to ``ratios`` (equal when omitted) for
      the whole trial; dropped arms' shares go to the remaining arms.
    * ``adaptive``: allocation proportional to P(best)^c where c is
      ``softening`` (a constant, one value per look, or ``thall_wathen`` for
      c = n / (2 N)), after an equal-randomization burn-in of ``burn_in_n``
      followed patients, then clipped to ``min_allocation``/``max_allocation``.
    * ``basis``: what is raised to the power c: ``prob_best`` (P(arm best), Thall and Wathen
      2007) or ``posterior_mean`` (the posterior mean rate of the better outcome, as in BATTLE).
    * ``limits``: how the limits are applied. ``hold`` (default): scale then clip, so that every
      arm ends exactly within its limits; ``clip_renormalise``: clip once, then renormalise, so
      that arms can end slightly outside them (the one-step restriction).
    * ``coin``: a doubly-adaptive biased coin toward these probabilities (see :class:`Coin`).
    """

    method: Literal["fixed", "adaptive"]
    scheme: Literal["simple", "block"]
    ratios: dict[Name, PositiveFloat] | None = None
    softening: Softening | None = None
    burn_in_n: NonNegativeInt = 0
    min_allocation: Limits | None = None
    max_allocation: Limits | None = None
    rescale_limits: bool = Field(
        default=False,
        description="Scale allocation limits by (initial arms / active arms) when arms drop.",
    )
    basis: Literal["prob_best", "posterior_mean"] = Field(
        default="prob_best", description="adaptive: allocation proportional to P(best)^c or posterior mean^c"
    )
    limits: Literal["hold", "clip_renormalise"] = Field(
        default="hold",
        description="hold: limits hold exactly (scale then clip); clip_renormalise: clip once, "
        "then renormalise (probabilities may end slightly outside the limits)",
    )
    coin: Coin | None = Field(
        default=None,
        description="a doubly-adaptive biased coin toward the allocation probabilities (Hu and Zhang 2004)",
    )

    @model_validator(mode="after")
    def _method_fields(self) -> "Randomization":
        if self.method == "adaptive" and self.softening is None:
            raise ValueError(
                "adaptive randomization needs softening: a number c >= 0, a list with one per look, or 'thall_wathen'"
            )
        if self.method == "fixed":
            extra = [k for k in ("softening", "min_allocation", "max_allocation") if getattr(self, k) is not None]
            extra += [k for k, default in (("basis", "prob_best"), ("limits", "hold")) if getattr(self, k) != default]
            if extra or self.burn_in_n:
                raise ValueError(
                    f"fixed randomization does not use {extra + (['burn_in_n'] if self.burn_in_n else [])}; "
                    "use method: adaptive or remove them"
                )
        return self


class ControlAllocation(Frozen):
    """The common control's share of each batch of patients.

    * ``fixed``: ``share`` (a number, or a table keyed by the number of active
      non-control arms, e.g. ``{3: 0.35, 2: 0.40, 1: 0.5}``);
    * ``sqrt_k``: control : each other arm = sqrt(k) : 1 with k active non-control arms;
    * ``match_best``: the control gets the share of the best-allocated other arm.
    """

    rule: Literal["fixed", "sqrt_k", "match_best"]
    share: OpenProbability | dict[PositiveInt, OpenProbability] | None = None

    @model_validator(mode="after")
    def _share(self) -> "ControlAllocation":
        if self.rule == "fixed" and self.share is None:
            raise ValueError("rule 'fixed' needs a share (a number in (0, 1) or a table by number of active arms)")
        if self.rule != "fixed" and self.share is not None:
            raise ValueError(f"rule {self.rule!r} computes the share itself; remove share")
        return self


Threshold = Union[OpenProbability, list[OpenProbability]]


class Futility(Frozen):
    """Drop an arm when P(arm better than control by at least delta) < threshold.

    ``looks``: one true/false per look, whether futility is assessed there (default: at every look)."""

    threshold: OpenProbability
    delta: Annotated[float, Field(ge=0.0, lt=1.0)]
    only_first_control: bool = False
    looks: list[bool] | None = Field(default=None, description="one true/false per look: assess futility there")


class FinalSelection(Frozen):
    """At the final analysis, select the arm with the highest ``by`` among the arms still in the
    trial only when it beats the runner-up by at least ``margin`` (P(best) or posterior mean rate
    on the better-outcome scale); otherwise select none. The selection is reported as
    ``best_with_margin`` beside the other selection strategies."""

    by: Literal["prob_best", "posterior_mean"] = "prob_best"
    margin: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]


class Equivalence(Frozen):
    """With a control: drop an arm when P(|arm - control| < margin) > probability.
    Without a control: stop when P(max - min of all active arms < margin) > probability."""

    probability: OpenProbability
    margin: Annotated[float, Field(gt=0.0, lt=1.0)]
    only_first_control: bool = False


class Decisions(Frozen):
    """Decision thresholds, a number or one value per look.

    Without a control, superiority/inferiority compare P(best) among active arms;
    with a control, they compare P(arm better than control). ``null`` disables a rule.
    """

    superiority: Threshold | None
    inferiority: Threshold | None
    futility: Futility | None = None
    equivalence: Equivalence | None = None
    final_selection: FinalSelection | None = Field(
        default=None, description="select the best arm at the end only by a margin (see FinalSelection)"
    )


class Design(Frozen):
    name: Name
    description: str = ""
    endpoint: Endpoint
    arms: list[Arm] = Field(min_length=1, max_length=MAX_ARMS)
    control: Name | None = None
    prior: BetaPrior | None = Field(default=None, description="Beta prior of every arm's rate (binary endpoints).")
    randomization: Randomization | None = None
    control_allocation: ControlAllocation | None = None
    looks: Looks | None = None
    decisions: Decisions | None = None
    clinically_relevant_difference: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        description="delta: an arm truly better than the reference by at least this much counts toward power."
    )
    strata: Strata | None = Field(default=None, description="Biomarker strata or sub-studies (see config/strata.py).")
    platform: Platform | None = Field(
        default=None, description="Run over calendar time with arms entering and leaving (see config/timeline.py)."
    )
    two_stage: TwoStage | None = Field(
        default=None, description="A single-arm two-stage design (Simon 1989; see config/two_stage.py)."
    )
    event_driven: EventDriven | None = Field(
        default=None, description="An event-driven two-arm group-sequential design (see config/event_driven.py)."
    )
    targets: Targets | None = Field(
        default=None,
        description="The family-wise error rate and power the design promises, and the scenarios they "
        "are read on (see config/targets.py).",
    )

    @model_validator(mode="after")
    def _sections(self) -> "Design":
        if self.event_driven is not None:
            extra = [
                k
                for k in (
                    "randomization",
                    "control_allocation",
                    "looks",
                    "decisions",
                    "prior",
                    "strata",
                    "platform",
                    "two_stage",
                )
                if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(
                    f"an event-driven design randomizes, analyses and decides with its event_driven "
                    f"section; remove {extra}"
                )
            if len(self.arms) != 2 or self.control is None:
                raise ValueError(
                    f"an event-driven design has two arms, one of them the control; got "
                    f"{len(self.arms)} arms and control {self.control!r}"
                )
            return self
        if self.two_stage is not None:
            extra = [
                k
                for k in ("control", "randomization", "control_allocation", "looks", "decisions", "strata", "platform")
                if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(
                    f"a single-arm two-stage design treats every patient with its one arm and decides "
                    f"with two_stage; remove {extra}"
                )
            if len(self.arms) != 1:
                raise ValueError(f"a single-arm two-stage design has exactly one arm, got {len(self.arms)}")
            return self
        if self.randomization is None:
            raise ValueError("randomization is required (or add a two_stage section for a single-arm design)")
        if self.platform is None:
            missing = [k for k in ("looks", "decisions", "prior") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"{missing} are required (or add a platform section for a design over calendar time)")
        else:
            extra = [k for k in ("looks", "decisions") if getattr(self, k) is not None]
            if extra:
                raise ValueError(
                    f"a platform design schedules analyses with platform.interims and decides with "
                    f"platform.graduation; remove {extra}"
                )
        return self

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    @property
    def control_index(self) -> int | None:
        return None if self.control is None else self.arm_names.index(self.control)
