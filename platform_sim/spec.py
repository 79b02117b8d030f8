"""A design bound to a scenario: validated, compiled once, and named by its hash.

A :class:`Spec` is what one simulation run needs. Making one runs every check: each
file on its own (:mod:`platform_sim.config`), the names that tie the design to the
scenario, and the checks only the design's family can make once it compiles the
design under the scenario (strata nobody enters, a trial too large to simulate,
triggers that can never fire). Every problem is reported at once, as a
:class:`~platform_sim.config.ConfigError`. The compiled design, its truth and the
scenario's virtual patients are built once and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import (
    DEFAULT_DESIGN,
    DEFAULT_SCENARIO,
    ConfigError,
    Design,
    Problem,
    Scenario,
    load_files,
    load_pair,
    pair_problems,
    spec_hash,
)
from .families import Family, family_of
from .outcomes import VirtualPatients
from .results import Truth


def _compile(design: Design, scenario: Scenario, patients: VirtualPatients, design_file: str | None):
    """The compiled design, or the problems of the pair (located in the design file)."""
    problems = pair_problems(design, scenario)
    if not problems:
        try:
            return family_of(design).compile(design, scenario, patients), []
        except ConfigError as exc:
            problems = exc.problems
    return None, [Problem(p.path, p.message, p.value, file=design_file) for p in problems]


@dataclass(frozen=True)
class Spec:
    """A design paired with a scenario: everything one simulation run needs (see the module docstring)."""

    design: Design
    scenario: Scenario
    design_file: str | None = None
    scenario_file: str | None = None
    _compiled: object = field(default=None, repr=False, compare=False)
    _patients: VirtualPatients | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_models(cls, design: Design, scenario: Scenario, design_file=None, scenario_file=None) -> Spec:
        """Bind validated models; raises :class:`~platform_sim.config.ConfigError` with every problem
        of the pair."""
        patients = VirtualPatients(scenario)
        compiled, problems = _compile(design, scenario, patients, design_file)
        if problems:
            raise ConfigError(problems)
        return cls(design, scenario, design_file, scenario_file, compiled, patients)

    @classmethod
    def from_refs(cls, design, scenario, model_of) -> Spec:
        """Bind a design and a scenario given in any form: ``model_of(ref, kind)`` returns a
        reference's model and its file (None for a model made in memory). Every problem of both is
        raised at once."""
        problems: list[Problem] = []
        loaded = {}
        for kind, ref in (("design", design), ("scenario", scenario)):
            try:
                loaded[kind] = model_of(ref, kind)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        (d, design_file), (s, scenario_file) = loaded["design"], loaded["scenario"]
        return cls.from_models(d, s, design_file, scenario_file)

    @classmethod
    def load(cls, design: str | Path = DEFAULT_DESIGN, scenario: str | Path = DEFAULT_SCENARIO) -> Spec:
        """Load a design and a scenario, each a file path or a shipped name."""
        d, dfile, s, sfile = load_pair(design, scenario)
        return cls.from_models(d, s, dfile, sfile)

    @property
    def spec_hash(self) -> str:
        """sha256 of the normalized design, scenario and engine version (first 16 hex digits)."""
        return spec_hash(self.design, self.scenario)

    @property
    def family(self) -> Family:
        """The design's family."""
        return family_of(self.design)

    @property
    def patients(self) -> VirtualPatients:
        """The scenario's virtual patients (population and outcome models)."""
        if self._patients is None:  # a spec made directly, not by from_models or load
            object.__setattr__(self, "_patients", VirtualPatients(self.scenario))
        assert self._patients is not None
        return self._patients

    @property
    def compiled(self):
        """The design compiled under the scenario by its family."""
        return self._compiled

    def with_design(self, design: Design) -> Spec:
        """This spec with ``design``, which differs from its design only in decision thresholds (what
        ``calibrate`` moves): the patients, strata and truth are kept, and the design's whole-file
        checks are the caller's (a design from :func:`~platform_sim.config.parse_design` had them)."""
        compiled = self.family.recompile(self._compiled, design)
        spec = Spec(design, self.scenario, self.design_file, self.scenario_file, compiled, self._patients)
        if "truth" in self.__dict__:
            spec.__dict__["truth"] = self.__dict__["truth"]
        return spec

    @cached_property
    def truth(self) -> Truth:
        """What is true in the scenario for the design's arms and subgroups (exact)."""
        return self.family.truth(self._compiled)

    @cached_property
    def description(self):
        """The design in words (:class:`~platform_sim.families.Description`)."""
        return self.family.describe(self._compiled)


def cross_problems(designs, scenarios) -> list[Problem]:
    """Every problem of every (file, design) bound to every (file, scenario)."""
    out = []
    patients = {}
    for sfile, scenario in scenarios:
        try:  # a scenario's outcome models are calibrated here: facts no model reproduces are its problems
            patients[sfile] = VirtualPatients(scenario)
        except ConfigError as exc:
            out += [Problem(p.path, p.message, p.value, file=p.file or sfile) for p in exc.problems]
    for dfile, design in designs:
        for sfile, scenario in scenarios:
            if sfile not in patients:
                continue
            _, problems = _compile(design, scenario, patients[sfile], dfile)
            out += [Problem(p.path, p.message + f" [checked against {sfile}]", p.value, file=dfile) for p in problems]
    return out


def validate_files(paths: list[str | Path]) -> list[Problem]:
    """Every problem in the given files, including design x scenario cross-checks."""
    loaded, problems = load_files(paths)
    designs = [(f, m) for f, m in loaded if isinstance(m, Design)]
    scenarios = [(f, m) for f, m in loaded if isinstance(m, Scenario)]
    return problems + cross_problems(designs, scenarios)


__all__ = ["Spec", "cross_problems", "validate_files"]
