"""Shared fixtures: the repository root, shipped YAML as dicts, small specs built in memory, and
command-line processes that never outlive their test."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
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


@pytest.fixture
def spawn():
    """``spawn(args)``: start ``args`` as a :class:`subprocess.Popen` (text pipes for stdout and
    stderr) in a process group of its own. When the test ends, passed or failed, the whole group is
    killed (SIGKILL): the process and every worker it started, even those it left orphaned, so an
    assertion or a timeout never leaves a run going behind the test session."""
    started: list[subprocess.Popen] = []

    def start(args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )  # its own session and process group, id proc.pid
        started.append(proc)
        return proc

    yield start
    for proc in started:
        try:
            # (a group id is not reused while any member lives, so this reaches only this run's processes)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # every process of the group has ended
            pass
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
