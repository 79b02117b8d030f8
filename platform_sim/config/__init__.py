"""Configuration: scenarios (truth) and designs (rules), validated and frozen.

This package only reads and checks files; it imports nothing else of platform_sim.
A design bound to a scenario is a :class:`platform_sim.spec.Spec`.
"""

from .base import Problem
from .crosscheck import design_problems, pair_problems
from .load import (
    DEFAULT_DESIGN,
    DEFAULT_SCENARIO,
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
from .suites import Suite, expand_scenarios, load_suite, shipped_suites

__all__ = [
    "ConfigError", "DEFAULT_DESIGN", "DEFAULT_SCENARIO", "Design", "ENGINE_VERSION", "Problem", "Scenario", "Suite",
    "design_problems", "expand_scenarios", "load_file", "load_files", "load_pair", "load_suite", "pair_problems",
    "parse_design", "parse_scenario", "resolve", "shipped_names", "shipped_suites", "spec_hash",
    "target_scenarios",
]
