"""The JSON Schemas of the YAML inputs: shipped up to date, named by every shipped file, accepting
every file the loader accepts, and catching the mistakes an editor should flag."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

# valid designs and scenarios drawn by the property tests (modifications of the shipped files that
# go through every check the loader makes)
from test_properties import look_cases, platform_cases, stratified_cases

from platform_sim.cli import main
from platform_sim.schemas import KINDS, json_schema, schema_text, shipped_schema_path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"design": ROOT / "designs", "scenario": ROOT / "scenarios", "population": ROOT / "scenarios" / "populations"}
SHIPPED = [(kind, path) for kind, folder in FOLDERS.items() for path in sorted(folder.glob("*.yaml"))]
MODELINE = "# yaml-language-server: $schema="


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(json_schema(kind))


def _as_json(data):
    """What an editor validates: the YAML document as JSON (mapping keys become strings)."""
    return json.loads(json.dumps(data))


def _errors(kind: str, data) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<file>'}: {e.message}"
        for e in _validator(kind).iter_errors(_as_json(data))
    ]


def test_shipped_files_are_found():
    assert {kind for kind, _ in SHIPPED} == set(KINDS)
    assert len(SHIPPED) >= 15


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schema_is_up_to_date(kind):
    path = shipped_schema_path(kind)
    rel = path.relative_to(ROOT)
    assert path.is_file(), f"{rel} is missing; generate it with: platform-sim schema {kind} --out {rel}"
    assert path.read_text(encoding="utf-8") == schema_text(kind), (
        f"{rel} is out of date with the {kind} model; regenerate it with: platform-sim schema {kind} --out {rel}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_a_valid_draft_2020_12_schema(kind):
    Draft202012Validator.check_schema(json_schema(kind))


@pytest.mark.parametrize("kind,path", SHIPPED, ids=[str(p.relative_to(ROOT)) for _, p in SHIPPED])
def test_shipped_file_names_its_schema_on_the_first_line(kind, path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    expected = Path(
        "..", *[".."] * (len(path.parent.relative_to(ROOT).parts) - 1), "platform_sim", "schemas", f"{kind}.schema.json"
    ).as_posix()
    assert first == MODELINE + expected, (
        f"{path.relative_to(ROOT)}: the first line must be '{MODELINE}{expected}', got {first!r}"
    )
    target = (path.parent / first[len(MODELINE) :]).resolve()
    assert target == shipped_schema_path(kind) and target.is_file()


@pytest.mark.parametrize("kind,path", SHIPPED, ids=[str(p.relative_to(ROOT)) for _, p in SHIPPED])
def test_shipped_file_passes_its_schema(kind, path):
    assert _errors(kind, yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def _shipped(kind: str, name: str) -> dict:
    return yaml.safe_load((FOLDERS[kind] / f"{name}.yaml").read_text(encoding="utf-8"))


def test_loader_forms_are_in_the_schema():
    """The forms the loader rewrites before the models see them: the look shorthand, a population
    given by name or inline, marker levels written as numbers."""
    design = _shipped("design", "pioneer_rar")
    design["looks"] = {"first": 40, "every": 20, "last": 120}
    assert _errors("design", design) == []
    design["looks"] = {"first": 40, "every": 20}
    assert _errors("design", design)

    scenario = _shipped("scenario", "pioneer_null")
    assert isinstance(scenario["population"], str) and _errors("scenario", scenario) == []
    scenario["population"] = _shipped("population", "post_ici_nsclc")
    assert _errors("scenario", scenario) == []

    population = _shipped("population", "post_ici_nsclc")
    population["markers"]["ecog"] = {"levels": [0, 1], "prevalence": 0.6}
    assert _errors("population", population) == []


def _mistakes():
    """(kind, shipped name, edit, the path the schema must flag): mistakes an editor should catch."""

    def setter(*keys, value):
        def edit(data):
            node = data
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = value

        return edit

    def deleter(*keys):
        def edit(data):
            node = data
            for k in keys[:-1]:
                node = node[k]
            del node[keys[-1]]

        return edit

    return [
        ("design", "pioneer_rar", setter("randomisation", value={}), "<file>"),  # a misspelt key
        ("design", "pioneer_rar", setter("arms", 0, "treatmnt", value="docetaxel"), "arms.0"),
        ("design", "pioneer_rar", setter("endpoint", "direction", value="up"), "endpoint.direction"),
        ("design", "pioneer_rar", setter("arms", value=[]), "arms"),
        ("design", "pioneer_rar", deleter("name"), "<file>"),
        ("design", "pioneer_rar", setter("looks", "randomized_n", value=[0, 60]), "looks"),
        ("scenario", "pioneer_null", setter("population", value=7), "population"),
        ("scenario", "pioneer_null", setter("treatments", value={}), "treatments"),
        ("population", "post_ici_nsclc", setter("accrual", "rate_per_month", value=-3), "accrual.rate_per_month"),
        ("population", "post_ici_nsclc", setter("name", value="two words"), "name"),
    ]


@pytest.mark.parametrize("kind,name,edit,where", _mistakes(), ids=[f"{m[0]}-{i}" for i, m in enumerate(_mistakes())])
def test_schema_flags_mistakes(kind, name, edit, where):
    data = _shipped(kind, name)
    edit(data)
    errors = _errors(kind, data)
    assert errors and any(e.startswith(f"{where}:") or e.startswith(f"{where}.") for e in errors), errors


# Every valid design and scenario the property tests draw passes the schemas too.
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check_case(case):
    case.spec()  # the loader accepts it
    assert _errors("design", copy.deepcopy(case.design)) == []
    assert _errors("scenario", copy.deepcopy(case.scenario)) == []


@SETTINGS
@given(case=look_cases())
def test_valid_look_designs_pass_the_schemas(case):
    _check_case(case)


@SETTINGS
@given(case=stratified_cases())
def test_valid_stratified_designs_pass_the_schemas(case):
    _check_case(case)


@SETTINGS
@given(case=platform_cases())
def test_valid_platform_designs_pass_the_schemas(case):
    _check_case(case)


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize("kind", KINDS)
def test_schema_command_prints_the_schema(kind):
    result = CliRunner().invoke(main, ["schema", kind])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_schema(kind)


def test_schema_command_writes_out(tmp_path):
    out = tmp_path / "design.schema.json"
    result = CliRunner().invoke(main, ["schema", "design", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == schema_text("design")
    assert result.stdout.strip() == f"wrote {out}"


def test_schema_command_rejects_an_unknown_kind_and_an_unwritable_out(tmp_path):
    result = CliRunner().invoke(main, ["schema", "trial"])
    assert result.exit_code == 2 and "'trial' is not one of" in result.stderr
    result = CliRunner().invoke(main, ["schema", "design", "--out", str(tmp_path / "missing" / "d.json")])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: --out {tmp_path / 'missing' / 'd.json'}")
