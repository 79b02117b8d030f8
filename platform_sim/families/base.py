"""The contract every design family meets.

A *family* is one kind of trial design: designs with looks, biomarker-stratified
designs, platforms over calendar time, single-arm two-stage designs. A family is a
module with one object that provides

=====================  ===========================================================
``check``              the problems of a design under a scenario that only the
                       family can see (strata nobody enters, triggers that never
                       fire), as :class:`~platform_sim.config.Problem` records
``compile``            a frozen compiled design: numbers and arrays, no YAML
``simulate``           per-trial results of a batch of trials, in the one
                       :class:`~platform_sim.results.TrialResults` type
``truth``              the true effect per arm x subgroup, as a
                       :class:`~platform_sim.results.Truth`
``describe``           the design in words, for reports
``parameters``         the decision thresholds ``calibrate`` may move
=====================  ===========================================================

Everything outside ``platform_sim.families`` (the runner, ``compare``,
``calibrate``, the reports, the trial storyboard, the Python API) goes through
this contract; :func:`platform_sim.families.family_of` is the only place that
looks at what kind a design is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Design, Problem, Scenario
    from ..outcomes import VirtualPatients
    from ..results import TrialResults, Truth
    from ..streams import TrialStreams
    from ..trace import Trace


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
class Section:
    """One part of a design's description: a title, paragraphs and key-value settings."""

    title: str
    paragraphs: tuple[str, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Description:
    """A compiled design in words: its kind, a one-line summary and sections for reports."""

    kind: str
    summary: str
    sections: tuple[Section, ...] = field(default=())


class Family(Protocol):
    """What every design family provides (see the module docstring)."""

    name: ClassVar[str]  # "looks", "stratified", "platform", "two_stage"
    title: ClassVar[str]  # words for reports: "design with looks", ...

    def matches(self, design: Design) -> bool:
        """Whether ``design`` belongs to this family (asked in registry order)."""

    def check(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> list[Problem]:
        """Problems of the pair that need the family's own compilation."""

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> Any:
        """The frozen compiled design."""

    def simulate(self, compiled: Any, streams: TrialStreams, trace: Trace | None = None) -> TrialResults:
        """Simulate one trial per index of ``streams``."""

    def truth(self, compiled: Any) -> Truth:
        """The true effect of every arm in every subgroup."""

    def describe(self, compiled: Any) -> Description:
        """The design in words."""

    @property
    def parameters(self) -> dict[str, Parameter]:
        """The thresholds ``calibrate`` may move, by name (the first is the default)."""
