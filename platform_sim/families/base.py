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
    """A compiled design in words: its kind, a one-line summary and sections for reports."""

    kind: str
    summary: str
    sections: tuple[Section, ...] = field(default=())


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

    def describe(self, compiled: Any) -> Description:
        """The design in words."""

    def story(self, compiled: Any, trace: Trace, result: TrialResults) -> Story:
        """The storyboard of one trial simulated with ``trace``."""

    @property
    def parameters(self) -> dict[str, Parameter]:
        """The thresholds ``calibrate`` may move, by name (the first is the default)."""
