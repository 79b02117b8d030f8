"""The contract every design family meets.

A *family* is one kind of trial design: designs with looks, biomarker-stratified
designs, platforms over calendar time, single-arm two-stage designs. A family is a
module with one object that provides

=====================  ===========================================================
``matches``            whether a design is the family's
``compile``            a frozen compiled design: numbers and arrays, no YAML; the
                       problems only the family can see (strata nobody enters,
                       triggers that never fire) raised as one ConfigError
``recompile``          the same with other decision thresholds (for ``calibrate``)
``simulate``           per-trial results of a batch of trials, in the one
                       :class:`~platform_sim.results.TrialResults` type
``truth``              the true effect per arm x subgroup, as a
                       :class:`~platform_sim.results.Truth`
``profiles``           who is randomized in which stratum, by true profile
``size``, ``resize``   the planned sample size and accrual duration, and the
                       design sized to another
``describe``           the design in words, for reports
``story``              the storyboard of one trial
``parameters``         the decision thresholds ``calibrate`` may move
=====================  ===========================================================

Every compiled design says whether its patients wait for a biomarker result before they are
randomized (``needs_biomarker_result``): a design that classifies, routes or allocates patients by
a characteristic an assay measures does; an all-comer design does not, and its patients meet no
assay (no assay failure, turnaround or loss while waiting; see
:meth:`~platform_sim.population.PopulationModel.block`). The family passes it to
:meth:`~platform_sim.outcomes.VirtualPatients.enrol`.

Everything outside ``platform_sim.families`` (the runner, ``compare``,
``calibrate``, the reports, the trial storyboard, the Python API) goes through
this contract; :func:`platform_sim.families.family_of` is the only place that
looks at what kind a design is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Design, Scenario
    from ..outcomes import VirtualPatients
    from ..results import TrialResults, Truth
    from ..strata import ProfileStrata
    from ..streams import TrialStreams
    from ..trace import Trace
    from .story import Story


@dataclass(frozen=True)
class Parameter:
    """A decision threshold that ``calibrate`` may move.

    ``path``: its field in the design (``design.decisions.superiority``);
    ``get(design)``: its value (a number, one per look, or None when the rule is off);
    ``set(data, value)``: a copy of the design's data (``Design.model_dump()``) with the value
    replaced; ``meaning``: what crossing it does, in words.
    """

    name: str
    path: str
    meaning: str
    get: Callable[[Any], Any]
    set: Callable[[dict, Any], dict]


@dataclass(frozen=True)
class Size:
    """A design's planned size under a scenario.

    ``max_n``: the most patients it randomizes (None when its calendar sets that);
    ``months``: its planned accrual duration, the months its screening funnel needs, at the
    scenario's expected accrual and with every stratum open, to randomize ``max_n`` (a platform's
    maximum duration)."""

    max_n: int | None
    months: float


def accrual_months(population, n: float, share: float = 1.0, biomarker_result: bool = True) -> float:
    """Months after opening by which ``n`` patients are expected to be randomized, when a share
    ``share`` of the patients passing screening can be randomized (exact accrual integral and funnel,
    with or without the biomarker assay, solved by bisection)."""
    from ..config.population import expected_randomizable

    def count(t: float) -> float:
        return expected_randomizable(population, t, biomarker_result) * share

    hi = 1.0
    while count(hi) < n:
        hi *= 2.0
        if hi > 1e5:
            return float("inf")
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if count(mid) < n:
            lo = mid
        else:
            hi = mid
    return hi


def scaled_sample_sizes(data: dict, factor: float) -> dict:
    """A copy of a design's data (``Design.model_dump()``) with every sample size multiplied by
    ``factor`` and rounded: the looks (kept strictly increasing), the arms' and strata's caps, stage
    sizes, the randomization burn-in and the end of a two-stage probit model's first stage. Responder boundaries cannot be scaled this way (they are
    derived with their stage sizes), so a design with them raises ``ValueError``."""
    import copy

    out = copy.deepcopy(data)

    def scale(n):
        return max(1, int(round(n * factor)))

    def increasing(values):
        res: list[int] = []
        for v in values:
            res.append(max(scale(v), res[-1] + 1) if res else scale(v))
        return res

    looks = out.get("looks")
    if looks:
        looks["randomized_n"] = increasing(looks["randomized_n"])
        if looks.get("followed_n"):
            looks["followed_n"] = [min(f, r) for f, r in zip(increasing(looks["followed_n"]), looks["randomized_n"])]
    for arm in out.get("arms", []):
        if arm.get("max_n") is not None:
            arm["max_n"] = scale(arm["max_n"])
    rnd = out.get("randomization") or {}
    if rnd.get("burn_in_n"):
        rnd["burn_in_n"] = int(round(rnd["burn_in_n"] * factor))
    refit = ((out.get("strata") or {}).get("probit") or {}).get("refit")
    if refit:  # the end of the probit model's first stage, in followed patients
        refit["after_followed"] = scale(refit["after_followed"])
    for group in (out.get("strata") or {}).get("groups") or []:
        if group.get("responder_boundaries"):
            raise ValueError(f"stratum {group.get('name')!r} has responder boundaries derived with its stage sizes")
        if group.get("looks"):
            group["looks"] = increasing(group["looks"])
            if group.get("max_n") is not None:
                group["max_n"] = group["looks"][-1]
        elif group.get("max_n") is not None:
            group["max_n"] = scale(group["max_n"])
    return out


def resize_sample_sizes(
    design: Design,
    population,
    current: int,
    share: float,
    max_n: int | None = None,
    months: float | None = None,
    biomarker_result: bool = True,
) -> Design:
    """A design with looks or strata sized to ``max_n`` patients, or to the number its funnel is
    expected to randomize in ``months`` (``share``: the share of patients passing screening it can
    randomize); every sample size is scaled by the same factor (:func:`scaled_sample_sizes`)."""
    from ..config.population import expected_randomizable

    target = (
        float(max_n)
        if max_n is not None
        else expected_randomizable(population, float(months or 0.0), biomarker_result) * share
    )
    return scale_design(design, target / current)


def scale_design(design: Design, factor: float) -> Design:
    """``design`` with every sample size scaled by ``factor`` (:func:`scaled_sample_sizes`), validated."""
    from ..config import ConfigError, Problem, parse_design

    if design.looks is None or factor * design.looks.max_n < 2:
        raise ConfigError(
            [
                Problem(
                    "design.looks.randomized_n",
                    f"sizing {design.name!r} by {factor:.3g} leaves nothing to randomize",
                    factor,
                )
            ]
        )
    try:
        data = scaled_sample_sizes(design.model_dump(), factor)
    except ValueError as exc:
        raise ConfigError([Problem("design.strata", f"{design.name!r} cannot be resized: {exc}", None)]) from None
    return parse_design(data)


@dataclass(frozen=True)
class Table:
    """A small table of words and numbers: a caption, column names and rows."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple, ...]


@dataclass(frozen=True)
class Section:
    """One part of a design's description: a title, paragraphs (each a sentence or two, in a
    statistician's words) and tables."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class Description:
    """A compiled design in words: its kind, a one-line summary and sections for reports.

    ``analytic``: what theory predicts for some of the design's per-trial operating characteristics,
    as ``(metric, words, value)`` with ``metric`` the name of a trial value of its results (for
    example ``p_efficacy_look_1``); reports print each beside its simulated value and Monte Carlo
    standard error."""

    kind: str
    summary: str
    sections: tuple[Section, ...] = field(default=())
    analytic: tuple[tuple[str, str, float], ...] = field(default=())


def setting(value) -> str:
    """A configuration value as written in a description: numbers without trailing zeros."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(setting(v) for v in value)
    return str(value)


def enrol_options(trace, characteristics: list[str] | None, all_characteristics: list[str]) -> dict:
    """Arguments of :meth:`~platform_sim.outcomes.VirtualPatients.enrol` for a batch: a traced batch
    keeps its screened patients with every characteristic drawn. Each characteristic and screening
    result has its own random numbers, so this does not change who is randomized or their outcomes."""
    if trace is None:
        return {"keep_cohort": characteristics is not None, "characteristics": characteristics}
    return {"keep_cohort": True, "characteristics": list(all_characteristics)}


class Family(Protocol):
    """What every design family provides (see the module docstring)."""

    name: str  # "looks", "stratified", "platform", "two_stage"
    title: str  # words for reports: "design with looks", ...

    def matches(self, design: Design) -> bool:
        """Whether ``design`` belongs to this family (asked in registry order)."""

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> Any:
        """The frozen compiled design, with ``needs_biomarker_result`` (bool) among its attributes; a
        :class:`~platform_sim.config.ConfigError` lists every problem of the pair that only the family
        can see."""

    def recompile(self, compiled: Any, design: Design) -> Any:
        """``compiled`` with ``design``, a design that differs from its own only in decision thresholds:
        what does not depend on them (patients, strata, exact truths) is kept."""

    def simulate(self, compiled: Any, streams: TrialStreams, trace: Trace | None = None) -> TrialResults:
        """Simulate one trial per index of ``streams``."""

    def truth(self, compiled: Any) -> Truth:
        """The true effect of every arm in every subgroup."""

    def size(self, compiled: Any) -> Size:
        """The design's planned maximum sample size and accrual duration under its scenario."""

    def resize(self, compiled: Any, max_n: int | None = None, months: float | None = None) -> Design:
        """The design sized to randomize at most ``max_n`` patients, or to accrue for ``months``
        (its sample sizes scaled, or its calendar changed); a
        :class:`~platform_sim.config.ConfigError` when it cannot be sized that way."""

    def profiles(self, compiled: Any, characteristics: list[str]) -> ProfileStrata:
        """Who the design randomizes in which stratum, by true profile over ``characteristics``:
        exact, screening and misclassification included (:class:`~platform_sim.strata.ProfileStrata`)."""

    def describe(self, compiled: Any) -> Description:
        """The design in words."""

    def story(self, compiled: Any, trace: Trace, result: TrialResults) -> Story:
        """The storyboard of one trial simulated with ``trace``."""

    @property
    def parameters(self) -> dict[str, Parameter]:
        """The thresholds ``calibrate`` may move, by name (the first is the default)."""
