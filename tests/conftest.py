"""Shared fixtures: the repository root, shipped YAML as dicts, small specs built in memory."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from platform_sim.config.load import parse_design, parse_scenario
from platform_sim.spec import Spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository checkout (holds designs/ and scenarios/)."""
    return ROOT


@pytest.fixture(scope="session")
def shipped_yaml():
    """``shipped_yaml(kind, name)``: a fresh dict of the shipped design or scenario ``name``."""
    cache: dict[tuple[str, str], dict] = {}

    def load(kind: str, name: str) -> dict:
        key = (kind, name)
        if key not in cache:
            cache[key] = yaml.safe_load((ROOT / f"{kind}s" / f"{name}.yaml").read_text())
        return copy.deepcopy(cache[key])

    return load


@pytest.fixture(scope="session")
def build_spec():
    """``build_spec(design_dict, scenario_dict)``: a Spec after every check a file would go through
    (pydantic models, whole-design checks, design x scenario cross-checks)."""

    def build(design: dict, scenario: dict) -> Spec:
        return Spec.from_models(parse_design(copy.deepcopy(design)), parse_scenario(copy.deepcopy(scenario)))

    return build


@pytest.fixture
def write_yaml(tmp_path):
    """``write_yaml(data, name)``: dump ``data`` (a dict, or raw text) to tmp_path/name and return the path."""

    def write(data, name: str) -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write
