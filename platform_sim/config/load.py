"""Load YAML into validated models, resolve shipped names, and hash the spec."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .base import PROBLEM_SEPARATOR, Problem, register_revalidation
from .crosscheck import design_problems
from .defaults import DEFAULT_DESIGN, DEFAULT_SCENARIO  # noqa: F401  (re-exported)
from .models import Design, Scenario
from .population import Population

# Part of every spec hash: raised whenever the same design, scenario and seed simulate differently, so
# that a run is never resumed, grown or reported with chunks of another engine. 2: designs that need
# no biomarker result are no longer charged the assay's failures, waits and losses.
ENGINE_VERSION = "2"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """One or more problems with configuration files; ``str()`` has one line per problem.

    A ``ValueError``, so code that catches bad values catches it too."""

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
    searched first (see :func:`resolve_population` for the population a scenario names)."""
    if kind == "population" and near is not None:
        return resolve_population(ref, near)
    try:
        return _resolve(ref, kind)
    except OSError as exc:  # a name too long for the file system, ...
        raise ConfigError([Problem(kind, f"cannot be opened: {exc.strerror or exc}", file=str(ref)[:200])]) from None


def _resolve(ref: str | Path, kind: str) -> Path:
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise ConfigError([Problem(kind, "is a directory, not a file", file=str(ref))])
        if not path.is_file():
            raise ConfigError([Problem(kind, "no such file", file=str(ref))])
        return path
    for d in _shipped_dirs(kind):
        candidate = d / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        [Problem(kind, f"is neither a file nor a shipped {kind}; shipped: {shipped_names(kind)}", str(ref))]
    )


def resolve_population(ref: str | Path, near: Path) -> Path:
    try:
        return _resolve_population(ref, near)
    except OSError as exc:  # a name too long for the file system, ...
        raise ConfigError(
            [Problem("scenario.population", f"cannot be opened: {exc.strerror or exc}", str(ref)[:200])]
        ) from None


def _resolve_population(ref: str | Path, near: Path) -> Path:
    """The population file a scenario names: a path relative to the scenario's folder ``near`` (tried
    as written, with ``.yaml`` added, and under ``near/populations/``) that stays inside that folder,
    or else the name of a shipped population. An absolute path, or one that leaves the scenario's
    folder (``../``, a symbolic link elsewhere), is refused: a scenario file can only make the
    simulator read files beside it."""
    text = str(ref)
    path = Path(text)
    if not text.strip() or "\x00" in text:
        raise ConfigError([Problem("scenario.population", "is not a file name", text)])
    if path.is_absolute():
        raise ConfigError(
            [
                Problem(
                    "scenario.population",
                    "must be relative to the scenario's folder (or the name "
                    "of a shipped population), not an absolute path",
                    text,
                )
            ]
        )
    home = Path(near).resolve()
    names = [path] if path.suffix in (".yaml", ".yml") else [path, path.with_name(path.name + ".yaml")]
    for base in (home, home / "populations"):
        for name in names:
            where = (base / name).resolve()  # symbolic links and '..' followed
            if not where.is_relative_to(home):
                raise ConfigError(
                    [
                        Problem(
                            "scenario.population",
                            f"points outside the scenario's folder {home}; a "
                            "population file must be in that folder or below it",
                            text,
                        )
                    ]
                )
            if where.is_dir():
                raise ConfigError([Problem("scenario.population", "is a directory, not a file", text)])
            if where.is_file():
                return where
    if len(path.parts) == 1 and path.suffix not in (".yaml", ".yml"):
        for d in _shipped_dirs("population"):
            candidate = d / f"{text}.yaml"
            if candidate.is_file():
                return candidate
    raise ConfigError(
        [
            Problem(
                "scenario.population",
                f"no such file in the scenario's folder {home} (or its "
                f"populations/ folder), nor a shipped population; shipped: "
                f"{shipped_names('population')}",
                text,
            )
        ]
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
# A file is read whole: the shipped files are a few kilobytes, the largest conceivable population
# table (every combination of a dozen markers) well under a megabyte.
MAX_YAML_BYTES = 1_000_000
# Values in a file once its aliases (*name) and merge keys (<<) are expanded: the shipped files
# hold a few hundred. A "billion laughs" file, a few aliases each repeating the one before, expands
# to billions; it is refused before anything walks or validates the expanded tree.
MAX_YAML_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlProblem(Exception):
    """A problem of a YAML file found before its values are built: where (a field path below the
    file's kind, possibly empty) and what."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where, self.message = where, message


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: no Python objects, no tags that run code) that refuses
    collections nested more than MAX_NESTING deep as it composes them, before PyYAML's recursive
    composer could exhaust the stack (whether it would depends on the recursion limit)."""

    _level = 0

    def compose_node(self, parent, index):
        self._level += 1
        try:
            if self._level > MAX_NESTING + 1:  # (a scalar inside MAX_NESTING collections is at level + 1)
                line = self.peek_event().start_mark.line + 1
                raise _YamlProblem(
                    "", f"line {line}: collections are nested too deeply (more than {MAX_NESTING} levels)"
                )
            return super().compose_node(parent, index)
        finally:
            self._level -= 1


def _key_text(loader: _SafeLoader, node) -> tuple[object, str]:
    """A mapping key as YAML reads it (1, true, 'arms'), and as shown in a field path."""
    if isinstance(node, yaml.ScalarNode):
        key = loader.construct_object(node)
        if isinstance(key, (str, int, float, bool)) or key is None:
            return key, str(key)
    return None, None


def _check_nodes(loader: _SafeLoader, root) -> None:
    """Refuse, before building any value: a key given twice in one mapping (PyYAML silently keeps
    the last), an alias inside the collection it names (a cycle), more than MAX_YAML_VALUES values
    once aliases are expanded, and more than MAX_NESTING levels. Every node is visited once
    (aliases share nodes), so the check is fast whatever the file expands to."""
    size: dict[int, int] = {}  # expanded number of values under each node
    height: dict[int, int] = {}  # nesting levels of collections under each node (0: a scalar)
    on_path: set[int] = set()
    stack = [(root, "", False)]
    while stack:
        node, where, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            line = node.start_mark.line + 1
            top = re.match(r"^(\.[^.\[]*)?", where).group(0)  # the top-level key (aliases make deeper paths arbitrary)
            if size[key] > MAX_YAML_VALUES:
                raise _YamlProblem(
                    top,
                    f"line {line}: aliases (*name) or merge keys (<<) expand the collection "
                    f"there to more than {MAX_YAML_VALUES:,} values; write the values out, or use "
                    "fewer aliases",
                )
            if height[key] > MAX_NESTING:
                raise _YamlProblem(
                    top, f"line {line}: collections are nested too deeply (more than {MAX_NESTING} levels)"
                )
            continue
        if key in size:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise _YamlProblem(where, f"line {line}: an alias refers to a collection that contains it (a cycle)")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            size[key], height[key] = 1, 0
            continue
        on_path.add(key)
        stack.append((node, where, True))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[object, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    stack.append((key_node, where, False))
                    stack.append((value_node, where, False))
                    continue
                value, text = _key_text(loader, key_node)
                line = key_node.start_mark.line + 1
                path = f"{where}.{text}" if text is not None else where
                if text is not None:
                    marker = value  # as a Python dict would: 1, 1.0 and true are the same key
                    if marker in first_line:
                        raise _YamlProblem(
                            path,
                            f"duplicate key {text!r} at line {line} (first given at line "
                            f"{first_line[marker]}); YAML would keep only the last, so give each "
                            "key once",
                        )
                    first_line[marker] = line
                stack.append((key_node, path, False))
                stack.append((value_node, path, False))
        else:
            for i, item in enumerate(node.value):
                stack.append((item, f"{where}[{i}]", False))


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _nesting(text: str) -> int:
    """The deepest nesting of collections in ``text``, read from libyaml's event stream (which, unlike
    its composer, does not recurse)."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return deepest


def _load_yaml_libyaml(text: str):
    """:func:`load_yaml` with libyaml's parser and composer (a C extension, ten times faster than PyYAML's
    own): the same safe constructor and the same checks. None when libyaml is not installed or
    cannot compose ``text`` as it stands (malformed, too deep, ...): the pure-Python loader then reads
    it and words the problem."""
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    try:
        if _nesting(text) > MAX_NESTING:
            return None
        loader = yaml.CSafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(loader, node)  # type: ignore[arg-type]  (the same constructor and node classes)
            return (loader.construct_document(node),)
        finally:
            loader.dispose()
    except (yaml.YAMLError, _YamlProblem, RecursionError, ValueError, TypeError):
        return None


def load_yaml(text: str):
    """Parse one YAML document safely: plain data only (``yaml.SafeLoader``), with the checks of
    :func:`_check_nodes`. Raises ``yaml.YAMLError`` for malformed YAML and ``_YamlProblem``.

    A well-formed file is read by libyaml when it is installed (the same data, faster); any file
    libyaml refuses is read again by PyYAML's own loader, whose messages the problems quote."""
    fast = _load_yaml_libyaml(text)
    return fast[0] if fast is not None else _load_yaml_pyyaml(text)


def _load_yaml_pyyaml(text: str):
    """:func:`load_yaml` with PyYAML's pure-Python loader."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(loader, node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml_file(path: Path, kind: str = "file") -> tuple[Any, list[Problem]]:
    """The parsed content of a YAML file (any type), or the problems that prevent reading it."""
    try:
        if path.is_dir():
            return None, [Problem(kind, "is a directory, not a file", file=str(path))]
        with open(path, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        return None, [Problem(kind, f"cannot read file: {exc.strerror or exc}", file=str(path))]
    if len(raw) > MAX_YAML_BYTES:
        return None, [
            Problem(
                kind,
                f"the file is larger than {MAX_YAML_BYTES:,} bytes; design, scenario and "
                "population files are a few kilobytes",
                file=str(path),
            )
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                kind,
                f"not UTF-8 text: line {line}, column {column}: {exc.reason}",
                raw[exc.start : exc.end],
                file=str(path),
            )
        ]
    try:
        data = load_yaml(text)
    except _YamlProblem as exc:
        return None, [Problem(f"{kind}{exc.where}", f"malformed YAML: {exc.message}", file=str(path))]
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
    except RecursionError:  # (not expected: the loader stops composing at MAX_NESTING levels)
        return None, [
            Problem(
                kind,
                f"malformed YAML: collections are nested too deeply (more than {MAX_NESTING} levels)",
                file=str(path),
            )
        ]
    return data, []


def _read_yaml(path: Path, kind: str) -> tuple[dict | None, list[Problem]]:
    data, problems = read_yaml_file(path, kind)
    if problems:
        return None, problems
    if data is None:
        return None, [Problem(kind, "the file is empty; it must hold a mapping of keys to values", file=str(path))]
    if not isinstance(data, dict):
        return None, [
            Problem(kind, "the file must hold a mapping of keys to values", type(data).__name__, file=str(path))
        ]
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
                msg = msg[len("Value error, ") :]
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
    near = Path(file).parent if file else Path.cwd()
    try:
        path = resolve_population(ref, near)
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
    raise ConfigError(
        [
            Problem(
                "file",
                "is neither a design (it has no 'arms'), a scenario (no 'treatments') nor a population (no 'markers', "
                "'accrual' or 'screening')",
                file=str(path),
            )
        ]
    )


def load_files(paths: list[str | Path]) -> tuple[list[tuple[str, Design | Scenario]], list[Problem]]:
    """Load every file, collecting the problems of those that fail instead of stopping at the first."""
    loaded, problems = [], []
    for p in paths:
        try:
            loaded.append((str(p), load_file(p)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return loaded, problems


def _plain(value):
    """A value given to ``replace``: models (and lists or mappings of them) as plain data."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_KINDS = {Design: "design", Scenario: "scenario", Population: "population"}


def revalidate(model, changes: dict[str, Any]):
    """``model`` with ``changes`` (keys as in :meth:`platform_sim.config.base.Frozen.replace`),
    validated again from plain data like a file; a ConfigError names every bad field."""
    kind = _KINDS.get(type(model), type(model).__name__.lower())
    data = model.model_dump()
    problems = []
    for key, value in changes.items():
        parts = key.split("__")
        node, path = data, kind
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part) if part.lstrip("-").isdigit() else None
                path += f"[{part}]"
                if index is None or not -len(node) <= index < len(node):
                    problems.append(Problem(path, f"is not an item of the list ({len(node)} items)"))
                    break
                if last:
                    node[index] = _plain(value)
                else:
                    node = node[index]
            else:
                path += f".{part}"
                if last:
                    node[part] = _plain(value)
                elif not isinstance(node.get(part), (dict, list)):
                    problems.append(
                        Problem(
                            path,
                            "is not set (or is not a section), so nothing can be changed inside "
                            f"it; give it whole: replace({'__'.join(parts[: i + 1])}=...)",
                            node.get(part),
                        )
                    )
                    break
                else:
                    node = node[part]
    if problems:
        raise ConfigError(problems)
    if isinstance(model, Design):
        return parse_design(data)
    if isinstance(model, Scenario):
        return parse_scenario(data)
    result, problems = _validate(type(model), data, kind, None)
    if problems:
        raise ConfigError(problems)
    return result


register_revalidation(revalidate)


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
        raise ConfigError(
            [
                Problem(
                    "design.targets",
                    f"design {design.name!r} states no targets (fwer, null_scenario, power, alternative_scenario)",
                    None,
                    file=file,
                )
            ]
        )
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
