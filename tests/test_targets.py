"""A design's targets section: validated where it is read, its scenarios resolved, and no part of the spec hash."""

from __future__ import annotations

import math

import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.config import ConfigError, parse_design, resolve, shipped_names, spec_hash, target_scenarios
from platform_sim.config.load import load_file
from platform_sim.spec import Spec
from platform_sim.yardstick import check_null, for_specs

TARGETS = {"fwer": 0.10, "null_scenario": "pioneer_null", "power": 0.80, "alternative_scenario": "allcomer_effect"}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# --------------------------------------------------------------------------- the targets section


@pytest.mark.parametrize(
    "edit, path, words",
    [
        ({"fwer": 0.5}, "design.targets.fwer", "strictly between 0 and 0.5"),
        ({"fwer": 0.0}, "design.targets.fwer", "strictly between 0 and 0.5"),
        ({"fwer": float("nan")}, "design.targets.fwer", "strictly between 0 and 0.5"),
        ({"power": 1.0}, "design.targets.power", "strictly between 0 and 1"),
        ({"power": 0.05}, "design.targets.power", "at or below the error target"),
        ({"null_scenario": " "}, "design.targets.null_scenario", "give a scenario"),
        ({"alternative_scenario": "pioneer_null"}, "design.targets.alternative_scenario", "is the null scenario"),
        ({"power_shortfall": "  "}, "design.targets.power_shortfall", "say why"),
        ({"powr": 0.8}, "design.targets.powr", "Extra inputs"),
    ],
)
def test_bad_targets_name_the_field_and_the_value(shipped_yaml, edit, path, words):
    data = shipped_yaml("design", "allcomer_fixed")
    data["targets"] = {**TARGETS, **edit}
    with pytest.raises(ConfigError) as exc:
        parse_design(data, "designs/allcomer_fixed.yaml")
    problems = exc.value.problems
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.path == path and words in p.message and p.file == "designs/allcomer_fixed.yaml"
    shown = p.format()
    bad = next(iter(edit.values()))
    if path != "design.targets.powr" and not (isinstance(bad, float) and math.isnan(bad)):
        assert repr(bad) in shown, shown


def test_targets_do_not_change_the_spec_hash(shipped_yaml):
    """Targets state what a design should achieve; they do not change a simulated number."""
    data = shipped_yaml("design", "allcomer_fixed")
    data.pop("targets", None)
    scenario = load_file(resolve("pioneer_null", "scenario"), "scenario")
    without = parse_design(data)
    with_targets = parse_design({**data, "targets": {**TARGETS, "power_shortfall": "a reason"}})
    assert with_targets.targets is not None and without.targets is None
    assert spec_hash(without, scenario) == spec_hash(with_targets, scenario)


def test_target_scenarios_resolve_names_and_files_next_to_the_design(shipped_yaml, write_yaml, tmp_path):
    data = shipped_yaml("design", "allcomer_fixed")
    scenario = yaml.safe_load(resolve("pioneer_null", "scenario").read_text())
    write_yaml(scenario, "my_null.yaml")
    data["targets"] = {**TARGETS, "null_scenario": "my_null.yaml"}
    path = write_yaml(data, "design.yaml")
    design = load_file(path, "design")
    null, alternative = target_scenarios(design, str(path))
    assert null == tmp_path / "my_null.yaml" and alternative == resolve("allcomer_effect", "scenario")

    data["targets"] = {**TARGETS, "null_scenario": "missing.yaml", "alternative_scenario": "no_such_scenario"}
    path = write_yaml(data, "design.yaml")
    with pytest.raises(ConfigError) as exc:
        target_scenarios(load_file(path, "design"), str(path))
    found = {p.path: p for p in exc.value.problems}
    assert set(found) == {"design.targets.null_scenario", "design.targets.alternative_scenario"}
    assert found["design.targets.null_scenario"].value == "missing.yaml"
    assert found["design.targets.alternative_scenario"].value == "no_such_scenario"
    assert all(p.file == str(path) for p in exc.value.problems)
    result = invoke("validate", path)
    assert result.exit_code == 2 and "design.targets.alternative_scenario" in result.output


# Shipped designs that state no targets, and why (docs/designs.md, "Design targets").
WITHOUT_TARGETS = {
    "s1400f_two_stage": "a two-stage design: Simon's stages fix its errors at p0 and p1; it has no threshold to "
    "calibrate and cannot be resized",
    "benchmark_four_arm": "the speed benchmark's reference workload, not a trial",
    "benchmark_event_driven": "the speed benchmark's event-driven workload, not a trial",
    "textbook_group_sequential": "an event-driven group-sequential design: its one-sided alpha and power are set by "
    "its spending boundaries and planned events, held to theory in test_event_driven.py",
    "s1800a": "an event-driven design on OS: its one-sided 10% level is set by its log-rank boundary, held to theory "
    "in test_event_driven.py",
    "battle": "BATTLE's published effect rule, P(DCR > 0.3) > 0.8 per treatment x group, declares something on its "
    "global null in 0.94 of trials: no error target below 0.5 can hold for it",
    "battle2": "BATTLE's effect rule carried over to BATTLE-2: P(any declaration) on its global null is 0.77",
}


@pytest.mark.parametrize("name", shipped_names("design"))
def test_every_shipped_design_states_targets_that_bind(name):
    """Every shipped design states targets (or is listed, with its reason, as one that cannot): its null
    scenario is a global null on the yardstick, its alternative has a treatment that works, and the design
    runs on both."""
    path = resolve(name, "design")
    design = load_file(path, "design")
    if name in WITHOUT_TARGETS:
        assert design.targets is None
        return
    assert design.targets is not None, f"{name} states no targets"
    null_file, alternative_file = target_scenarios(design, str(path))
    null, alternative = Spec.load(path, null_file), Spec.load(path, alternative_file)
    check_null(for_specs([null]), str(null_file))
    assert for_specs([alternative]).works.any()
    assert (design.targets.power_shortfall is None) or len(design.targets.power_shortfall.split()) >= 10
