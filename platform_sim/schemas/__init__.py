"""JSON Schemas of the three YAML inputs (design, scenario, population), for editors and validators.

The schemas are generated from the pydantic models that load the files
(:class:`platform_sim.config.Design`, :class:`platform_sim.config.Scenario` and
:class:`platform_sim.config.population.Population`), in their *validation* form: they describe what
a file may contain, not what a loaded model prints. The forms that the loader rewrites before the
models see them are added, so that every file the loader accepts also passes its schema:

* ``looks: {first, every, last}``, the shorthand for ``randomized_n: [first, first + every, ..., last]``;
* a scenario's ``population`` given by name (a shipped population or a file next to the scenario),
  besides a population written inline;
* a marker's ``levels`` written as whole numbers (ECOG ``[0, 1, 2]``), which are read as names.

A schema accepts some files that loading rejects: checks across fields (a control that is not an
arm, a table with a missing key, a design that names a treatment the scenario lacks) are made only
by ``platform-sim validate``.

The generated schemas are shipped beside this module as ``<kind>.schema.json``, and each shipped
YAML file names its schema on its first line, for editors that read the ``yaml-language-server``
modeline::

    # yaml-language-server: $schema=../platform_sim/schemas/design.schema.json

Regenerate a shipped schema after changing the models with
``platform-sim schema design --out platform_sim/schemas/design.schema.json`` (likewise ``scenario``
and ``population``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["KINDS", "json_schema", "schema_text", "shipped_schema_path"]

KINDS = ("design", "scenario", "population")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_HERE = Path(__file__).resolve().parent

_DESCRIPTIONS = {
    "design": "A platform-sim design: what the trial does (arms, control, endpoint, priors, randomization, "
    "interim analyses, decision rules, strata, platform over calendar time).",
    "scenario": "A platform-sim scenario: what nature is (the population and each treatment's true effect "
    "by biomarker, time trends, dropout).",
    "population": "A platform-sim population: who arrives, when, with which biomarkers, and what happens to "
    "them during screening.",
}


def _models() -> dict[str, type[BaseModel]]:
    from ..config.models import Design, Scenario
    from ..config.population import Population

    return {"design": Design, "scenario": Scenario, "population": Population}


def _looks_shorthand() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Looks (shorthand)",
        "description": "Looks after first, first + every, ... up to last randomized patients "
        "(the shorthand for randomized_n).",
        "properties": {
            "first": {"type": "integer", "exclusiveMinimum": 0},
            "every": {"type": "integer", "exclusiveMinimum": 0},
            "last": {"type": "integer", "exclusiveMinimum": 0},
            "followed_n": {
                "anyOf": [{"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}}, {"type": "null"}]
            },
            "outcome_delay": {"anyOf": [{"$ref": "#/$defs/OutcomeDelay"}, {"type": "null"}]},
        },
        "required": ["first", "every", "last"],
        "additionalProperties": False,
    }


def _add_loader_forms(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Add the input forms the loader rewrites before validation (see the module docstring)."""
    defs = schema.get("$defs", {})
    missing = []
    if kind == "design":
        if "Looks" in defs and "OutcomeDelay" in defs:
            defs["Looks"] = {"anyOf": [defs["Looks"], _looks_shorthand()]}
        else:
            missing.append("$defs.Looks or $defs.OutcomeDelay")
    if kind == "scenario":
        population = schema.get("properties", {}).get("population")
        if population is not None:
            by_name = {
                "type": "string",
                "minLength": 1,
                "description": "The name of a shipped population, or a population file (a path relative "
                "to the scenario's folder or its populations/ folder).",
            }
            schema["properties"]["population"] = {"anyOf": [population, by_name]}
        else:
            missing.append("properties.population")
    if kind in ("scenario", "population"):
        levels = defs.get("Marker", {}).get("properties", {}).get("levels")
        if levels is not None and "items" in levels:
            levels["items"] = {"anyOf": [levels["items"], {"type": "integer", "minimum": 0}]}
        else:
            missing.append("$defs.Marker.properties.levels")
    if missing:
        # the models changed shape: the additions above need updating (a test runs this)
        raise LookupError(f"the {kind} schema has no {', '.join(missing)}; update platform_sim/schemas/__init__.py")
    return schema


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``kind`` file: 'design', 'scenario' or 'population'."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    schema = _models()[kind].model_json_schema(mode="validation")
    schema = _add_loader_forms(kind, schema)
    head = {"$schema": SCHEMA_DIALECT, "title": f"platform-sim {kind}", "description": _DESCRIPTIONS[kind]}
    return {**head, **{k: v for k, v in schema.items() if k not in head}}


def schema_text(kind: str) -> str:
    """:func:`json_schema` as the text of a ``.schema.json`` file (sorted keys are not used, so the
    fields keep the order of the model; two-space indent, final newline)."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def shipped_schema_path(kind: str) -> Path:
    """Where the package ships the generated schema of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return _HERE / f"{kind}.schema.json"
