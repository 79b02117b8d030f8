"""Regression tests of the robustness defects: every input gets a run or a clear refusal, and no
fault loses or silently changes results.

Each test names the defect it guards against: a traceback or a hang on some input, an invalid
input accepted, or results overwritten, changed or read from outside the run directory. The
fuzz census (tests/test_fuzz_config.py) and the fault census (tests/test_scale.py) try the same
classes of input and fault at random; these are the cases found, kept explicit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.config import ConfigError, Design, Scenario, Spec
from platform_sim.config.load import MAX_YAML_BYTES, MAX_YAML_VALUES, parse_design, parse_scenario
from platform_sim.results import EQUIVALENT, INELIGIBLE, INFERIOR
from platform_sim.runner import run

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def shipped(kind: str, name: str) -> dict:
    folder = {"design": "designs", "scenario": "scenarios", "population": "scenarios/populations"}[kind]
    return yaml.safe_load((ROOT / folder / f"{name}.yaml").read_text())


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def refused(result, *expected: str) -> str:
    """The command exited 2 with no traceback and an error line holding every ``expected`` text."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = error_lines(result)
    hit = [line for line in lines if all(e in line for e in expected)]
    assert hit, f"no error line with {expected}: {lines}"
    return hit[0]


# --------------------------------------------------------------------------- stratified designs


def test_arm_dropped_as_equivalent_in_every_stratum_is_equivalent_in_the_pooled_view(build_spec):
    """An arm dropped as equivalent to the control in every stratum was labelled inferior in the
    pooled (all-comer) view of a stratified design."""
    design = {
        "name": "equivalent_everywhere",
        "endpoint": {"name": "orr", "direction": "higher_is_better"},
        "arms": [{"name": "docetaxel", "treatment": "docetaxel"}, {"name": "twin", "treatment": "docetaxel"}],
        "control": "docetaxel",
        "prior": {"a": 1, "b": 1},
        "randomization": {"method": "fixed", "scheme": "block"},
        "looks": {"randomized_n": [120, 240]},
        # the same treatment on both arms: P(|difference| < 0.3) is far above 0.5 at the first look
        "decisions": {"superiority": 0.999, "inferiority": None, "equivalence": {"probability": 0.5, "margin": 0.3}},
        "clinically_relevant_difference": 0.1,
        "strata": {"by": ["stk11_or_keap1"]},
    }
    spec = build_spec(design, shipped("scenario", "pioneer_alternative"))
    results = run(spec, 40, seed=3)
    per_stratum = results.strata.status[:, :, 1]
    everywhere = ((per_stratum == EQUIVALENT) | (per_stratum == INELIGIBLE)).all(axis=1) & (
        per_stratum == EQUIVALENT).any(axis=1)
    assert everywhere.sum() >= 30, per_stratum  # the case under test happens in most trials
    assert (results.status[everywhere, 1] == EQUIVALENT).all(), results.status[everywhere]
    assert not (results.status[everywhere, 1] == INFERIOR).any()
