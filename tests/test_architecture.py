"""The architecture holds: imports flow one way, and only the families know what kind a design is."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from platform_sim.families import FAMILIES, family_named, family_of
from platform_sim.results import TrialResults, Truth
from platform_sim.spec import Spec
from platform_sim.streams import Streams

PACKAGE = Path(__file__).resolve().parents[1] / "platform_sim"
SHIPPED = [
    ("pioneer_rar", "pioneer_alternative"),
    ("lungmap_umbrella", "stk11_keap1_ctla4"),
    ("pioneer_platform", "pioneer_null"),
    ("s1400f_two_stage", "stk11_keap1_ctla4"),
]


def test_import_contracts_are_kept():
    """The import-linter contracts in pyproject.toml: the layers from the configuration up to the
    command line, and no import of a family's module from outside the families."""
    pytest.importorskip("importlinter")
    out = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def _kind_tests(path: Path) -> list[str]:
    """``X.platform is (not) None`` / ``X.strata is (not) None`` comparisons in a module: asking what
    kind a design is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr in ("platform", "strata")
            and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators)
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_only_the_families_and_the_configuration_ask_what_kind_a_design_is():
    outside = [
        p
        for p in PACKAGE.rglob("*.py")
        if not p.is_relative_to(PACKAGE / "families") and not p.is_relative_to(PACKAGE / "config")
    ]
    hits = [hit for p in outside for hit in _kind_tests(p)]
    assert hits == [], f"design-kind dispatch outside platform_sim/families: {hits}"
    # and the rule has teeth: the families themselves do ask
    assert _kind_tests(PACKAGE / "families" / "platform.py")


@pytest.mark.parametrize("design, scenario", SHIPPED)
def test_every_family_meets_the_contract(design, scenario):
    spec = Spec.load(design, scenario)
    family = family_of(spec.design)
    assert family is spec.family and family_named(family.name) is family and family in FAMILIES
    for method in ("matches", "compile", "recompile", "simulate", "truth", "describe", "story"):
        assert callable(getattr(family, method)), method
    assert all(p.get(spec.design) is not None for p in family.parameters.values())
    assert isinstance(spec.compiled.needs_biomarker_result, bool)
    results = family.simulate(spec.compiled, Streams(3).for_trials(np.array([4, 9, 2])))
    assert isinstance(results, TrialResults)
    t, k = 3, len(spec.design.arms)
    s, g = len(results.strata), len(results.subgroups)
    assert results.trial.tolist() == [4, 9, 2]
    assert results.n.shape == results.events.shape == (t, k, s)
    assert results.claimed.shape == results.claim_month.shape == (t, k, g)
    assert results.membership.shape == (g, s) and results.status.shape == (t, k)
    for name, est in results.estimates.items():
        assert est.shape == (t, k, g) and results.estimate_targets[name] in ("value", "effect")
    for name, x in results.extras.items():
        assert x.shape[0] == t and len(results.extra_dims[name]) == x.ndim, name
    truth = spec.truth
    assert isinstance(truth, Truth) and truth.arms == results.arms and truth.subgroups == results.subgroups
    assert truth.value.shape == (k, g) and truth.works_in_stratum.shape == (k, s)
    assert not (truth.works & truth.null).any()
    description = spec.description
    assert description.kind == family.title and description.sections
    # recompiling with the same thresholds gives the same trials
    again = family.simulate(family.recompile(spec.compiled, spec.design), Streams(3).for_trials(np.array([4, 9, 2])))
    a, b = results.to_arrays(), again.to_arrays()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_trial_is_the_same_alone_or_in_any_batch():
    """A trial's numbers depend only on (seed, trial index): simulated alone, in a batch, or in
    another order, its results are identical, for every family."""
    for design, scenario in SHIPPED:
        spec = Spec.load(design, scenario)
        batch = spec.family.simulate(spec.compiled, Streams(8).for_trials(np.arange(10, 16)))
        alone = spec.family.simulate(spec.compiled, Streams(8).for_trials(np.array([13])))
        shuffled = spec.family.simulate(spec.compiled, Streams(8).for_trials(np.array([15, 13, 11])))
        full, one, mixed = batch.to_arrays(), alone.to_arrays(), shuffled.to_arrays()
        for name, x in one.items():
            if name in ("__meta__", "membership"):
                continue
            np.testing.assert_array_equal(x[0], full[name][3], err_msg=f"{design}: {name}")
            np.testing.assert_array_equal(mixed[name][1], full[name][3], err_msg=f"{design}: {name}")
