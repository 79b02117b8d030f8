"""Scenario suites: named sets of scenarios that together span one question.

A suite file names its scenarios (the global null first), which of them is the global null, and
the designs it is meant to compare by default::

    name: core
    description: >
      ...
    null_scenario: pioneer_null
    scenarios: [pioneer_null, allcomer_effect, ...]
    designs: [allcomer_fixed, allcomer_rar, ...]

A shipped suite lives in ``scenarios/suites/NAME.yaml`` and is found by name like a shipped
scenario. Each entry of ``scenarios`` and ``designs`` is a shipped name or a file path (relative
paths are read from the suite file's folder first). Wherever a list of scenarios is accepted,
``suite:NAME`` stands for the suite's scenarios (:func:`expand_scenarios`) or designs
(:func:`expand_designs`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from .base import Frozen, Name, Problem, _shown
from .load import ConfigError, _read_yaml, _validate, resolve, shipped_names

SUITE_PREFIX = "suite:"

Reference = str  # a shipped name or a file path


class Suite(Frozen):
    """A named set of scenarios, the global null among them, and the designs to compare on them.

    ``scenarios``: the scenarios in the order they are reported, the global null first;
    ``null_scenario``: that global null (every treatment equal to the control for everyone), on
    which error rates are calibrated; ``designs``: the designs the suite is meant to compare when
    no others are given."""

    name: Name
    description: str = Field(min_length=1, description="what each scenario asks, in a paragraph")
    scenarios: list[Reference] = Field(min_length=1)
    null_scenario: Reference = Field(min_length=1)
    designs: list[Reference] = Field(min_length=1)

    @field_validator("scenarios", "designs")
    @classmethod
    def _distinct(cls, entries: list[str]) -> list[str]:
        problems = []
        for i, entry in enumerate(entries):
            if not entry.strip():
                problems.append(f"entry {i} is empty; give a shipped name or a file path")
            elif entries.index(entry) != i:
                problems.append(f"entry {i}, {entry!r}, is listed twice (first as entry {entries.index(entry)})")
        if problems:
            raise ValueError("; ".join(problems))
        return entries

    @field_validator("null_scenario")
    @classmethod
    def _null_first(cls, null: str, info: ValidationInfo) -> str:
        scenarios = info.data.get("scenarios")
        if scenarios is None:  # reported on its own
            return null
        if null not in scenarios:
            raise ValueError(f"{null!r} is not one of the suite's scenarios {scenarios}; list it first there")
        if scenarios[0] != null:
            raise ValueError(f"the null scenario must come first in scenarios, which starts with {scenarios[0]!r}")
        return null


def shipped_suites() -> list[str]:
    """Names of the shipped suites (the files ``scenarios/suites/*.yaml``), sorted."""
    return shipped_names("suite")


def _is_path(entry: str) -> bool:
    path = Path(entry)
    return path.suffix in (".yaml", ".yml") or len(path.parts) > 1


def _reference(entry: str, kind: str, folder: Path) -> str:
    """A suite's entry as a reference any caller can resolve: a shipped name stays a name; a file
    path (relative paths are read from the suite's folder first, then the working directory)
    becomes an absolute path. Raises :class:`ConfigError` when the entry is neither."""
    path = Path(entry)
    if _is_path(entry) and not path.is_absolute() and (folder / path).is_file():
        return str((folder / path).resolve())
    found = resolve(entry, kind)
    return str(found.resolve()) if _is_path(entry) else entry


def load_suite(ref: str | Path) -> Suite:
    """The suite ``ref`` names: a shipped suite's name (``scenarios/suites/NAME.yaml``) or a file.

    Every scenario and design it lists must resolve to a file; file paths are returned as paths
    that resolve from any working directory. Raises :class:`ConfigError` with every problem, each
    naming the file, the field (``suite.scenarios[2]``) and the bad entry."""
    path = resolve(ref, "suite")
    file = str(path)
    data, problems = _read_yaml(path, "suite")
    if data is None:
        raise ConfigError(problems)
    suite, problems = _validate(Suite, data, "suite", file)
    if problems:
        raise ConfigError(problems)
    folder = path.parent
    entries: dict[str, list[str]] = {}
    for field, kind in (("scenarios", "scenario"), ("designs", "design")):
        entries[field] = []
        for i, entry in enumerate(getattr(suite, field)):
            try:
                entries[field].append(_reference(entry, kind, folder))
            except ConfigError as exc:
                problems.extend(Problem(f"suite.{field}[{i}]", p.message, entry, file=file) for p in exc.problems)
    if problems:
        raise ConfigError(problems)
    null = entries["scenarios"][suite.scenarios.index(suite.null_scenario)]
    return suite.model_copy(update={"null_scenario": null, **entries})


def _suite_problem(name: str) -> Problem:
    # (a very long name is cut short, as the value is, so that the message stays one readable line)
    return Problem(
        "scenarios",
        f"no such suite {_shown(name)}: neither a suite file nor a shipped suite; shipped suites: {shipped_suites()}",
        f"{SUITE_PREFIX}{name}",
    )


def _expand(refs: list[str], what: str) -> list[str]:
    """``refs`` with each ``suite:NAME`` item replaced by the ``what`` ("scenarios" or "designs") of
    suite NAME (a shipped suite or a suite file), in the suite's order; other items are kept as
    they are. An item a suite brings that is already listed is kept at its first place only; an item
    named twice by hand stays twice, for the caller to refuse.

    Raises :class:`ConfigError` naming every unknown suite (with the shipped ones) and every problem
    of the suites' files."""
    out: list[str] = []
    by_hand: set[str] = set()
    problems: list[Problem] = []
    for ref in refs:
        if not ref.startswith(SUITE_PREFIX):
            if ref in by_hand or ref not in out:
                out.append(ref)
            by_hand.add(ref)
            continue
        name = ref[len(SUITE_PREFIX) :].strip()
        if not name:
            problems.append(
                Problem(what, f"{SUITE_PREFIX!r} needs a suite name after it; shipped suites: {shipped_suites()}", ref)
            )
            continue
        try:
            suite_path = resolve(name, "suite")
        except ConfigError:
            problems.append(_suite_problem(name))
            continue
        try:
            out.extend(x for x in getattr(load_suite(suite_path), what) if x not in out)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


def expand_scenarios(refs: list[str]) -> list[str]:
    """``refs`` with each ``suite:NAME`` replaced by the suite's scenarios (see :func:`_expand`)."""
    return _expand(refs, "scenarios")


def expand_designs(refs: list[str]) -> list[str]:
    """``refs`` with each ``suite:NAME`` replaced by the suite's designs (see :func:`_expand`)."""
    return _expand(refs, "designs")


__all__ = ["SUITE_PREFIX", "Suite", "expand_designs", "expand_scenarios", "load_suite", "shipped_suites"]
