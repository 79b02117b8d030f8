"""Configuration: scenarios (truth) and designs (rules), validated and frozen.

This package only reads and checks files; it imports nothing else of platform_sim.
A design bound to a scenario is a :class:`platform_sim.spec.Spec`.

The names below are loaded when first used (PEP 562), so that importing the package for
``DEFAULT_DESIGN`` alone (the command line's help) does not load pydantic, numpy and the models.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .defaults import DEFAULT_DESIGN, DEFAULT_SCENARIO

if TYPE_CHECKING:
    from .base import Problem
    from .crosscheck import design_problems, pair_problems
    from .load import (
        ENGINE_VERSION,
        ConfigError,
        load_file,
        load_files,
        load_pair,
        parse_design,
        parse_scenario,
        resolve,
        shipped_names,
        spec_hash,
        target_scenarios,
    )
    from .models import Design, Scenario
    from .suites import Suite, expand_designs, expand_scenarios, load_suite, shipped_suites

# name -> submodule that defines it
_WHERE = {
    "Problem": "base",
    "design_problems": "crosscheck",
    "pair_problems": "crosscheck",
    "ENGINE_VERSION": "load",
    "ConfigError": "load",
    "load_file": "load",
    "load_files": "load",
    "load_pair": "load",
    "parse_design": "load",
    "parse_scenario": "load",
    "resolve": "load",
    "shipped_names": "load",
    "spec_hash": "load",
    "target_scenarios": "load",
    "Design": "models",
    "Scenario": "models",
    "Suite": "suites",
    "expand_designs": "suites",
    "expand_scenarios": "suites",
    "load_suite": "suites",
    "shipped_suites": "suites",
}

__all__ = [
    "ConfigError",
    "DEFAULT_DESIGN",
    "DEFAULT_SCENARIO",
    "Design",
    "ENGINE_VERSION",
    "Problem",
    "Scenario",
    "Suite",
    "design_problems",
    "expand_designs",
    "expand_scenarios",
    "load_file",
    "load_files",
    "load_pair",
    "load_suite",
    "pair_problems",
    "parse_design",
    "parse_scenario",
    "resolve",
    "shipped_names",
    "shipped_suites",
    "spec_hash",
    "target_scenarios",
]


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
