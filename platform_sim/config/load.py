"""Load YAML into validated models, resolve shipped names, and hash the spec."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .base import PROBLEM_SEPARATOR, Problem
from .crosscheck import design_problems
from .models import Design, Scenario
from .population import Population

# Part of every spec hash: raised whenever the same design, scenario and seed simulate differently, so
# that a run is never resumed, grown or reported with chunks of another engine. 2: designs that need
# no biomarker result are no longer charged the assay's failures, waits and losses.
ENGINE_VERSION = "2"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_DESIGN = "pioneer_rar"
DEFAULT_SCENARIO = "pioneer_alternative"


class ConfigError(Exception):
    """One or more problems with configuration files; ``str()`` has one line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


def _shipped_dirs(kind: str) -> list[Path]:
    folder = {"population": "scenarios/populations", "suite": "scenarios/suites"}.get(kind, f"{kind}s")
    return [
        Path.cwd() / folder,
        _PACKAGE_DIR.parent / folder,  # a checkout or an editable install
        _PACKAGE_DIR / "shipped" / folder,  # a wheel
    ]


def shipped_names(kind: str) -> list[str]:
    """Names of the shipped files of a kind: 'design', 'scenario', 'population' or 'suite'."""
    names: set[str] = set()
    for d in _shipped_dirs(kind):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def resolve(ref: str | Path, kind: str, near: Path | None = None) -> Path:
    """A file path, or the name of a shipped design/scenario/population. ``near``: a folder
    searched first (a scenario's own folder, for the population it names)."""
    path = Path(ref)
    if near is not None and not path.is_absolute():
        for candidate in (near / path, near / "populations" / path):
            for c in (candidate, candidate.with_name(candidate.name + ".yaml")):
                if c.is_file():
                    return c
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError([Problem(kind, "no such file", str(ref))])
        return path
    for d in _shipped_dirs(kind):
        candidate = d / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        [Problem(kind, f"is neither a file nor a shipped {kind}; shipped: {shipped_names(kind)}", str(ref))]
    )


_SCALAR_TAGS = {"int", "float", "str", "bool", "none"}


def _is_tag(part) -> bool:
    """A location part pydantic adds for a union member or validator ('constrained-float',
    'list[constrained-float]', 'function-after[...]', '[key]'), not a field or key name."""
    return isinstance(part, str) and ("[" in part or "-" in part or part in _SCALAR_TAGS)


def _loc_to_path(prefix: str, loc: tuple, data: Any = None) -> tuple[str, str | None]:
    """The field path of an error location, and (for an error inside a union member) the
    path of the union field. Parts found in the input are kept even if they look like tags."""
    out, node, union_at = prefix, data, None
    for part in loc:
        if isinstance(node, dict) and part in node:
            out += f".{part}"
            node = node[part]
        elif isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
        elif _is_tag(part):
            union_at = union_at or out
        else:
            out += f".{part}"
            node = None
    return out, union_at


def _is_type_mismatch(err_type: str) -> bool:
    return err_type.endswith(("_type", "_parsing")) or err_type == "literal_error"


MAX_NESTING = 64  # no design, scenario or population file needs more than a handful of levels


def _depth(data) -> int:
    """How deeply lists and mappings nest in ``data`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_NESTING:
            stack.extend((child, level + 1) for child in children)
    return deepest


def _read_yaml(path: Path, kind: str) -> tuple[dict | None, list[Problem]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(kind, f"cannot read file: {exc.strerror}", str(path), file=str(path))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(kind, f"not UTF-8 text: line {line}, column {column}: {exc.reason}",
                              raw[exc.start:exc.end], file=str(path))]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None)
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow (a control character)
            pos = exc.position
            line = text.count("\n", 0, pos) + 1
            column = pos - (text.rfind("\n", 0, pos) + 1) + 1
            where = f"line {line}, column {column}: "
            char = exc.character if isinstance(exc.character, int) else ord(exc.character)
            problem = f"character #x{char:04x} is not allowed in YAML (a control character)"
        # one line per problem: PyYAML's own message spans several lines
        problem = " ".join((problem or str(exc)).split())
        return None, [Problem(kind, f"malformed YAML: {where}{problem}", file=str(path))]
    except RecursionError:  # PyYAML composes nested collections recursively
        data = None
        too_deep = True
    else:
        too_deep = _depth(data) > MAX_NESTING
    # checked here as well, since whether PyYAML runs out of stack depends on the recursion limit
    if too_deep:
        return None, [Problem(kind, f"malformed YAML: collections are nested too deeply (more than {MAX_NESTING} "
                              "levels)", file=str(path))]
    if not isinstance(data, dict):
        return None, [Problem(kind, "the file must hold a mapping of keys to values", type(data).__name__, file=str(path))]
    return data, []


_SUBPATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_.+\-\[\]]*\.[A-Za-z0-9_.+\-\[\]]+): (.*)$", re.S)


def _split_problems(loc: str, msg: str, file: str | None) -> list[Problem]:
    """One problem per line of a model validator's message, located at its field path."""
    out = []
    for part in msg.split(PROBLEM_SEPARATOR):
        m = _SUBPATH.match(part)
        out.append(Problem(f"{loc}.{m.group(1)}", m.group(2), file=file) if m else Problem(loc, part, file=file))
    return out


def _validate(model, data: dict, kind: str, file: str | None) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems, unions = [], {}
        for err in exc.errors(include_url=False):
            loc, union_at = _loc_to_path(kind, err["loc"], data)
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            value = err.get("input")
            if isinstance(value, (dict, list)) or err["type"] == "missing":
                value = None
            if PROBLEM_SEPARATOR in msg or _SUBPATH.match(msg):
                problems.extend(_split_problems(loc, msg, file))
                continue
            problem = Problem(loc, msg, value, file=file)
            if union_at is None:
                problems.append(problem)
            else:
                unions.setdefault(union_at, []).append((problem, _is_type_mismatch(err["type"])))
        # A value that fits no member of a union: report the member it came closest to
        # (an error past the type check), else one problem listing every allowed type.
        for union_at, alternatives in unions.items():
            closest = [p for p, mismatch in alternatives if not mismatch]
            if closest:
                problems.extend(closest)
            else:
                first = alternatives[0][0]
                message = "; or ".join(dict.fromkeys(p.message for p, _ in alternatives))
                problems.append(Problem(union_at, message, first.value, file=file))
        # keep the first problem of each (path, message)
        unique, seen = [], set()
        for p in problems:
            key = (p.path, p.message)
            if key not in seen:
                seen.add(key)
                unique.append(p)
        return None, unique


def parse_design(data: dict, file: str | None = None) -> Design:
    design, problems = _validate(Design, data, "design", file)
    if design is not None:
        problems = [Problem(p.path, p.message, p.value, file=file) for p in design_problems(design)]
    if problems:
        raise ConfigError(problems)
    return design


def _inline_population(data: dict, file: str | None) -> tuple[dict, list[Problem]]:
    """Replace a population given by name (a file) with its validated content."""
    ref = data.get("population")
    if not isinstance(ref, str):
        return data, []
    near = Path(file).parent if file else None
    try:
        path = resolve(ref, "population", near=near)
    except ConfigError as exc:
        return data, [Problem("scenario.population", p.message, p.value, file=file) for p in exc.problems]
    pdata, problems = _read_yaml(path, "population")
    if problems:
        return data, problems
    _, problems = _validate(Population, pdata, "population", str(path))
    if problems:
        return data, problems
    return {**data, "population": pdata}, []


def parse_scenario(data: dict, file: str | None = None) -> Scenario:
    data, problems = _inline_population(data, file)
    if problems:
        raise ConfigError(problems)
    scenario, problems = _validate(Scenario, data, "scenario", file)
    if problems:
        raise ConfigError(problems)
    return scenario


def detect_kind(data: dict) -> str | None:
    if "arms" in data:
        return "design"
    if "treatments" in data:
        return "scenario"
    if {"markers", "accrual", "screening", "derived"} & set(data):
        return "population"
    return None


def parse_population(data: dict, file: str | None = None) -> Population:
    population, problems = _validate(Population, data, "population", file)
    if problems:
        raise ConfigError(problems)
    return population


def load_file(path: str | Path, kind: str | None = None) -> Design | Scenario | Population:
    """Load one design, scenario or population file (kind detected from its keys when not given)."""
    path = Path(path)
    data, problems = _read_yaml(path, kind or "file")
    if problems:
        raise ConfigError(problems)
    kind = kind or detect_kind(data)
    if kind == "design":
        return parse_design(data, str(path))
    if kind == "scenario":
        return parse_scenario(data, str(path))
    if kind == "population":
        return parse_population(data, str(path))
    raise ConfigError([Problem(
        "file",
        "is neither a design (it has no 'arms'), a scenario (no 'treatments') nor a population (no 'markers', "
        "'accrual' or 'screening')",
        file=str(path),
    )])


def load_files(paths: list[str | Path]) -> tuple[list[tuple[str, Design | Scenario]], list[Problem]]:
    """Load every file, collecting the problems of those that fail instead of stopping at the first."""
    loaded, problems = [], []
    for p in paths:
        try:
            loaded.append((str(p), load_file(p)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return loaded, problems


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def spec_hash(design: Design, scenario: Scenario) -> str:
    """sha256 of the normalized design, scenario and engine version (first 16 hex digits): comments,
    key order and formatting do not change it; any value that could change a result does. A design's
    ``targets`` only state what it should achieve, so they are left out."""
    payload = {
        "design": design.model_dump(mode="json", exclude={"targets"}),
        "scenario": scenario.model_dump(mode="json"),
        "engine": ENGINE_VERSION,
    }
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:16]


def target_scenarios(design: Design, file: str | None = None) -> tuple[Path, Path]:
    """The null and alternative scenario files of ``design.targets``: a shipped scenario's name, or a
    file (a path ending in .yaml, relative to the design's folder); a :class:`ConfigError` names the field and the value that does not
    resolve, and a design without targets."""
    targets = design.targets
    if targets is None:
        raise ConfigError([Problem("design.targets", f"design {design.name!r} states no targets (fwer, null_scenario, "
                                   "power, alternative_scenario)", None, file=file)])
    folder = Path(file).parent if file else Path.cwd()
    found, problems = [], []
    for key in ("null_scenario", "alternative_scenario"):
        ref = getattr(targets, key)
        is_file = Path(ref).suffix in (".yaml", ".yml") or "/" in ref
        try:
            found.append(resolve(folder / ref if is_file else ref, "scenario"))
        except ConfigError as exc:
            problems += [Problem(f"design.targets.{key}", p.message, ref, file=file) for p in exc.problems]
    if problems:
        raise ConfigError(problems)
    return found[0], found[1]


def load_pair(design: str | Path, scenario: str | Path) -> tuple[Design, str, Scenario, str]:
    """A design and a scenario, each a file path or a shipped name, validated on their own: the models
    and their resolved files. Every problem of both files is raised at once."""
    problems: list[Problem] = []
    models = {}
    for kind, ref, parser in (("design", design, parse_design), ("scenario", scenario, parse_scenario)):
        try:
            path = resolve(ref, kind)
            data, read_problems = _read_yaml(path, kind)
            if read_problems:
                problems.extend(read_problems)
                continue
            models[kind] = (parser(data, str(path)), str(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    (d, dfile), (s, sfile) = models["design"], models["scenario"]
    return d, dfile, s, sfile
