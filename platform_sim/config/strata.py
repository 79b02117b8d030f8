"""Biomarker strata and sub-studies of a design.

A design without ``strata`` randomizes every patient who passes screening among
all its arms. With ``strata`` the patients are classified by the profile their
screening *reported* (which can differ from their true biology, see the
population's assay accuracy), and allocation, decisions and operating
characteristics are per arm x stratum:

* ``by: [marker, ...]``: one stratum per combination of the markers' levels
  (``kras=positive``; ``kras=positive, stk11=negative`` for two markers), every arm
  in every stratum. A patient without a result for one of the markers is not
  classified and not randomized.
* ``groups``: sub-studies in priority order, each with a ``when`` condition on the
  reported profile (``{atm: positive}``; a list of levels matches any of them; several
  markers must all match) or ``when: other`` for a non-match sub-study that takes
  every patient no open sub-study takes. Each group lists its arms; a group either
  randomizes against the design's control (the control is one of its arms) or
  compares each of its arms with a ``reference_rate`` (single-arm sub-studies).
  A patient who matches several open groups goes to the first one (``overlap:
  priority``) or to one of them at random (``overlap: random``); the rule is
  required when groups can overlap under the scenario's prevalences.

Sub-studies open and close on their own: a group closes when its arms are all
decided, at its ``max_n`` or after its last stage. In a platform design (calendar time) a
group can also open and close on dates (``opens_months``, ``closes_months``), open on an
event (``opens_after``: another group closed, or N patients randomized) or wait in the
platform's ``queue`` for a free slot; a patient is routed when their result arrives, to
what is open then (``closed_match``: the non-match group, or nowhere). With ``looks`` (stage sizes in
patients *of the group*), a group's enrolment pauses at each stage size until the
stage is analysed (at the first interim look of the trial when all its patients
have an outcome), as in a two-stage single-arm design; ``responder_boundaries``
then gives Simon-style count rules: the arm continues past stage j (is declared
effective at the last stage) only with more than ``r_j`` responders.

``analysis: hierarchical_probit`` (BATTLE, docs/probit_model.md) analyses groups that
each compare their arms with a ``reference_rate`` by the hierarchical probit model whose
prior is ``probit`` (:class:`ProbitModel`): allocation proportional to the posterior mean
rate, suspension and the effect decision on exact posterior probabilities, no control arm.
``probit.refit`` makes it two-stage (BATTLE-2): the model pools groups until a look, then
keeps the fine groups where their Bayes factor says so.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import (
    MAX_PATIENTS,
    MAX_STRATA,
    Frozen,
    Months,
    Name,
    NonNegativeInt,
    OpenProbability,
    PositiveInt,
    Probability,
)

Levels = Name | list[Name]


class OpensAfter(Frozen):
    """A sub-study that opens on an event rather than on a date: when another sub-study has closed
    (``closed: NAME``: every experimental arm of NAME has stopped randomizing) or once the platform
    has randomized ``enrolled`` patients. Platform designs only."""

    closed: Name | None = None
    enrolled: PositiveInt | None = Field(default=None, le=MAX_PATIENTS)

    @model_validator(mode="after")
    def _one(self) -> "OpensAfter":
        if (self.closed is None) == (self.enrolled is None):
            raise ValueError("give exactly one of closed (a sub-study's name) or enrolled (a number of patients)")
        return self


class StratumGroup(Frozen):
    name: Name
    when: dict[Name, Levels] | Literal["other"] = Field(
        description="Reported levels that put a patient in this group (all markers must match), or 'other'."
    )
    arms: list[Name] = Field(min_length=1, description="The design arms this group randomizes among.")
    max_n: PositiveInt | None = Field(default=None, le=MAX_PATIENTS, description="Cap on patients of this group.")
    looks: list[PositiveInt] | None = Field(
        default=None,
        min_length=1,
        description="Stage sizes (patients of the group); enrolment pauses at each until it is analysed.",
    )
    reference_rate: Probability | None = Field(
        default=None, description="Compare each arm with this rate instead of with the design's control."
    )
    responder_boundaries: list[NonNegativeInt] | None = Field(
        default=None,
        description="One per stage: continue (at the last stage: declare effective) only with more responders.",
    )
    opens_months: Months | None = Field(
        default=None, description="Platform designs: the date the sub-study opens (default: the start)."
    )
    closes_months: Months | None = Field(
        default=None, description="Platform designs: the date the sub-study closes to accrual (default: never)."
    )
    opens_after: OpensAfter | None = Field(
        default=None, description="Platform designs: open when another sub-study has closed, or after N patients."
    )

    @model_validator(mode="after")
    def _stages(self) -> "StratumGroup":
        if self.looks is not None:
            if any(b <= a for a, b in zip(self.looks, self.looks[1:])):
                raise ValueError(f"looks must be strictly increasing stage sizes, got {self.looks}")
            if self.max_n is not None and self.max_n != self.looks[-1]:
                raise ValueError(
                    f"max_n ({self.max_n}) must equal the last stage size ({self.looks[-1]}) or be left out"
                )
        if self.responder_boundaries is not None:
            if self.reference_rate is None:
                raise ValueError("responder_boundaries compare with a reference rate; set reference_rate")
            if self.looks is None or len(self.looks) != len(self.responder_boundaries):
                raise ValueError("responder_boundaries needs looks with one stage size per boundary")
            bad = [(r, n) for r, n in zip(self.responder_boundaries, self.looks) if r >= n]
            if bad:
                r, n = bad[0]
                raise ValueError(f"a boundary of {r} responders can never be exceeded by a stage of {n} patients")
        return self

    @property
    def stage_sizes(self) -> list[int] | None:
        return self.looks

    @property
    def cap(self) -> int | None:
        return self.looks[-1] if self.looks is not None else self.max_n


def _bounded(low: float, high: float, low_open: bool = False):
    return Annotated[float, Field(**{"gt" if low_open else "ge": low}, le=high, allow_inf_nan=False)]


class HierarchicalBorrowing(Frozen):
    """Prior of the hierarchical model of each arm's rates across strata (docs/hierarchical_model.md).

    The bounds are where the model's quadrature grid over (mu, kappa) and the beta approximation
    of the stratum posteriors are sound: mu ~ Beta(mu_a, mu_b) with mu_a, mu_b in [0.001, 1e6];
    log kappa ~ Normal(mean, sd) with mean in [-20, 20] (kappa around 2e-9 to 5e8) and sd in (0, 10]."""

    mu_a: _bounded(1e-3, 1e6) = 1.0
    mu_b: _bounded(1e-3, 1e6) = 1.0
    log_kappa_mean: _bounded(-20.0, 20.0) = 2.302585092994046  # log 10: assumption, see docs/hierarchical_model.md
    log_kappa_sd: _bounded(0.0, 10.0, low_open=True) = 1.5


class ProbitRefit(Frozen):
    """Two-stage adaptive randomization (BATTLE-2, Gu et al., Stat Biosci 2016;8:99): in stage 1 the
    probit model sees only the ``coarse`` groups (each a union of the design's strata, e.g. KRAS
    mutant and wild type); at the first look with at least ``after_followed`` patients followed
    the marker model is refitted: the fine strata replace the coarse groups for the rest of the
    trial when the Bayes factor of the fine model over the coarse one, p(y | fine) / p(y | coarse)
    summed over the arms on the log scale, exceeds ``min_bayes_factor`` (a simplification of
    BATTLE-2's Bayesian lasso: a choice between two marker models, not a selection among many)."""

    after_followed: PositiveInt = Field(le=MAX_PATIENTS, description="Followed patients that end stage 1.")
    coarse: dict[Name, list[Name]] = Field(
        min_length=1, description="Stage-1 groups, each a list of the design's strata (groups) it pools."
    )
    min_bayes_factor: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 1.0


class ProbitModel(Frozen):
    """Prior of BATTLE's hierarchical probit model (docs/probit_model.md): for arm j in stratum k the
    8-week disease control rate is Phi(mu_jk), mu_jk ~ Normal(phi_j, sigma^2) across the strata and
    phi_j ~ Normal(phi_mean, tau^2), with sigma in [0.05, 5], tau in [0.001, 10] and tau / sigma at most 70
    (the range where the exact posterior is tested). ``declare: final`` makes the effect decisions
    only at the last look, as BATTLE did; ``every_look`` at every look."""

    # The exact posterior is tested to its promised accuracy (1e-7) for sigma in [0.05, 5] and tau up
    # to 10 (tests/test_probit.py, the corners included); beyond them its grids can need more nodes
    # than it allows (sigma = 97, or tau = 100, with all-failure groups), and a tau of 1e-300 divides
    # by zero (1 / tau^2 overflows), so a design stays within; tau = 0.001 already pools the groups'
    # levels on phi_mean.
    phi_mean: Annotated[float, Field(ge=-10.0, le=10.0, allow_inf_nan=False)] = 0.0
    tau: Annotated[float, Field(ge=0.001, le=10.0, allow_inf_nan=False)] = 1.0
    sigma: Annotated[float, Field(ge=0.05, le=5.0, allow_inf_nan=False)] = 1.0
    declare: Literal["final", "every_look"] = "final"
    refit: ProbitRefit | None = None

    @model_validator(mode="after")
    def _grid(self) -> "ProbitModel":
        if self.tau / self.sigma > 70.0:
            raise ValueError(
                f"tau / sigma = {self.tau / self.sigma:.3g} is above 70: the exact posterior's phi grid "
                "would need more than 4000 nodes (such a prior pools the strata almost completely)"
            )
        return self


class Suspension(Frozen):
    """Randomize no patient of a stratum to an arm while P(rate better than ``reference``) < ``below``
    in that stratum (the arm comes back when the probability recovers)."""

    reference: Probability
    below: OpenProbability


class Enrichment(Frozen):
    """Start all-comer (strata by one two-level marker, analysed pooled); when an arm is futile in
    the ``negative`` stratum (P(better than control by ``delta``) < ``futility``) but promising in
    the ``positive`` one (P(better than control) > ``promising``), restrict the arm to the positive
    stratum; futile in both: drop it."""

    positive: Name
    futility: OpenProbability
    delta: Annotated[float, Field(ge=0.0, lt=1.0)]
    promising: OpenProbability


class Strata(Frozen):
    by: list[Name] | None = Field(default=None, min_length=1)
    groups: list[StratumGroup] | None = Field(default=None, min_length=1)
    overlap: Literal["priority", "random"] | None = None
    analysis: Literal["independent", "hierarchical", "hierarchical_probit"] = "independent"
    borrowing: HierarchicalBorrowing | None = None
    probit: ProbitModel | None = Field(
        default=None, description="Prior of the hierarchical probit model (analysis: hierarchical_probit)."
    )
    suspension: Suspension | None = None
    enrichment: Enrichment | None = None
    closed_match: Literal["other", "not_registered"] | None = Field(
        default=None,
        description="Platform designs: where a patient goes whose matched sub-studies are all closed when the "
        "result arrives: the 'other' (non-match) sub-study (the default), or nowhere.",
    )

    @field_validator("by")
    @classmethod
    def _distinct_markers(cls, by: list[str] | None) -> list[str] | None:
        if by is not None and len(set(by)) != len(by):
            twice = sorted({m for m in by if by.count(m) > 1})
            raise ValueError(f"lists {twice} more than once; give each marker once")
        return by

    @model_validator(mode="after")
    def _one_way(self) -> "Strata":
        if (self.by is None) == (self.groups is None):
            raise ValueError("give strata either 'by' (markers) or 'groups' (sub-studies), not both or neither")
        if self.groups is not None:
            if len(self.groups) > MAX_STRATA:
                raise ValueError(f"at most {MAX_STRATA} groups are supported, got {len(self.groups)}")
            others = [g.name for g in self.groups if g.when == "other"]
            if len(others) > 1:
                raise ValueError(f"only one group can take 'other' patients, got {others}")
            if others and self.groups[-1].when != "other":
                raise ValueError(f"the 'other' group ({others[0]}) must come last: it takes patients no group takes")
            if self.analysis == "hierarchical":
                raise ValueError("hierarchical borrowing needs strata 'by' markers (every arm in every stratum)")
            if self.enrichment is not None:
                raise ValueError("enrichment needs strata 'by' one marker")
        if self.by is not None and self.overlap is not None:
            raise ValueError("strata 'by' markers cannot overlap; remove overlap")
        if self.enrichment is not None:
            if self.by is None or len(self.by) != 1:
                raise ValueError("enrichment needs strata 'by' exactly one marker")
            if self.analysis != "independent":
                raise ValueError("enrichment pools the strata itself; use analysis: independent")
        if self.borrowing is not None and self.analysis != "hierarchical":
            raise ValueError("borrowing sets the hierarchical prior; it needs analysis: hierarchical")
        if self.probit is not None and self.analysis != "hierarchical_probit":
            raise ValueError("probit sets the hierarchical probit prior; it needs analysis: hierarchical_probit")
        if self.analysis == "hierarchical_probit":
            if self.groups is None:
                raise ValueError(
                    "the hierarchical probit model compares each arm with its group's reference_rate; "
                    "give strata as groups"
                )
            if self.enrichment is not None:
                raise ValueError("enrichment compares arms with a control; the hierarchical probit model has none")
            for i, g in enumerate(self.groups):
                if g.reference_rate is not None and not 0.0 < g.reference_rate < 1.0:
                    raise ValueError(
                        f"groups[{i}].reference_rate is {g.reference_rate:g}: the hierarchical probit model "
                        "gives P(DCR > reference_rate) for a rate strictly between 0 and 1"
                    )
            if self.suspension is not None and not 0.0 < self.suspension.reference < 1.0:
                raise ValueError(
                    f"suspension.reference is {self.suspension.reference:g}: the hierarchical probit model "
                    "gives P(DCR > reference) for a rate strictly between 0 and 1"
                )
            refit = self.probit.refit if self.probit is not None else None
            if refit is not None:
                names = [g.name for g in self.groups]
                listed = [n for members in refit.coarse.values() for n in members]
                unknown = [n for n in listed if n not in names]
                if unknown:
                    raise ValueError(f"probit.refit.coarse lists {unknown}, which are not groups; groups are {names}")
                if sorted(listed) != sorted(names):
                    raise ValueError(
                        f"probit.refit.coarse must list every group exactly once; it lists {listed}, "
                        f"the groups are {names}"
                    )
        return self

    @property
    def markers(self) -> list[str]:
        if self.by is not None:
            return list(self.by)
        out: dict[str, None] = {}
        for g in self.groups:
            if g.when != "other":
                out.update(dict.fromkeys(g.when))
        return list(out)


__all__ = [
    "Enrichment",
    "HierarchicalBorrowing",
    "OpensAfter",
    "ProbitModel",
    "ProbitRefit",
    "Strata",
    "StratumGroup",
    "Suspension",
]
