"""Configuration: scenarios (truth) and designs (rules), validated and frozen."""

from .crosscheck import Problem, design_problems, pair_problems
from .load import (
    DEFAULT_DESIGN,
    DEFAULT_SCENARIO,
    ENGINE_VERSION,
    ConfigError,
    cross_problems,
    load_files,
    Spec,
    load_file,
    resolve,
    shipped_names,
    validate_files,
)
from .models import Design, Scenario

__all__ = [
    "ConfigError", "DEFAULT_DESIGN", "DEFAULT_SCENARIO", "Design", "ENGINE_VERSION", "Problem", "Scenario",
    "Spec", "cross_problems", "design_problems", "load_file", "load_files", "pair_problems", "resolve", "shipped_names", "validate_files",
]
