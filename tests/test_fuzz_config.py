"""The fuzz census: every shipped design, scenario and population file, mutated at random, either
validates and runs, or is refused with exit status 2 and ``error:`` lines that name the file and
the field, never a Python traceback or a hang.

Mutants are drawn by hypothesis (``derandomize=True``: the same mutants on every run, no example
database): a shipped file (``designs/*.yaml``, ``scenarios/*.yaml``,
``scenarios/populations/*.yaml``), a mutant class and a seed for the details. The classes, on
the parsed YAML tree (dumped back to YAML) or on the raw text (comments kept):

* keys and values: delete a key; a value of another type; NaN, inf, a negative number, zero, a
  huge or tiny number, other perturbations (scaled, 2**31 - 1, fractional counts, 1 - x); a
  probability out of [0, 1]; a YAML boolean in a number field; unicode and very long strings; an
  unknown key; a key that is not a string; empty lists and mappings; a duplicated list entry
  (markers in ``strata.by`` included) or a duplicated name (arms, sub-studies); a renamed
  reference (an arm, treatment, marker, level, endpoint that the file names elsewhere); a list
  reversed or two thresholds swapped; one part of the file copied over another; two or three of
  these at once;
* the text: a key given twice, a "billion laughs" alias bomb, a YAML Python tag, an empty file,
  invalid UTF-8 bytes, random bytes, truncation, tabs, deleted, duplicated, swapped or garbled
  lines, collections nested hundreds deep, another encoding (UTF-16, Latin-1...), and a directory
  in place of the file.

Each mutant goes through ``validate`` on the command line (a design with its usual scenario; an
edited scenario or population with a design that reads it), and when it validates through
``Spec.load`` and ``runner.run`` on a few trials, in this process; a sample goes through a real
``platform-sim run`` process. Some classes must be refused whatever the value (an alias bomb, a
Python tag, a key given twice, a boolean in a number field, NaN or inf, an out-of-range
probability, an unknown key where the schema has fixed fields, a repeated arm name...): a mutant
of those classes that validates fails the census. The default census tries ``N_CENSUS`` mutants;
the one marked ``slow`` more. With ``PLATFORM_SIM_CENSUS=DIR`` the counts by class and outcome are
written to DIR (see tests/census.py, which prints the table of docs/robustness.md).

Crashes found by the census, or by probing the same classes of edit by hand, are kept at the end
as explicit regression cases.
"""

from __future__ import annotations

import copy
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin

import numpy as np
import pytest
import yaml
from census import record_failure, write_mutants
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from platform_sim.cli import main
from platform_sim.config import ConfigError, Design, Scenario
from platform_sim.config.population import Population
from platform_sim.runner import run
from platform_sim.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = sorted(p.stem for p in (ROOT / "designs").glob("*.yaml"))
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
POPULATIONS = sorted(p.stem for p in (ROOT / "scenarios" / "populations").glob("*.yaml"))
FILES = (
    [("design", n) for n in DESIGNS] + [("scenario", n) for n in SCENARIOS] + [("population", n) for n in POPULATIONS]
)

# The scenario each shipped design is usually run on, and the designs a mutated scenario or
# population is run with (chosen by the mutant's seed: fast all-comer designs most of the time,
# stratified designs for the markers they read). Not the platform design: compiling its strata
# under a mutated scenario takes long (exact median PFS per stratum and arm); its own file is
# mutated, and the regression cases pair it with edited populations.
USUAL_SCENARIO = {"benchmark_four_arm": "benchmark_four_arm", "battle": "battle_kim2011", "battle2": "battle2_jco2016"}
DEFAULT_SCENARIO = "pioneer_alternative"
SCENARIO_DESIGNS = {
    "benchmark_four_arm": ["benchmark_four_arm"],
    "battle_null": ["battle"],
    "battle_kim2011": ["battle"],
    "battle2_null": ["battle2"],
    "battle2_jco2016": ["battle2"],
}
DEFAULT_SCENARIO_DESIGNS = ["pioneer_rar", "pioneer_rar", "lungmap_umbrella", "allcomer_rar"]
POPULATION_SCENARIO = "pioneer_alternative"
POPULATION_DESIGNS = ["pioneer_rar", "battle_stratified_rar", "allcomer_rar", "pioneer_rar"]
# populations of their own trials: read through one of their scenarios, run with their design
# (every population is read through a scenario that names it, or its mutant would never be loaded)
OWN_POPULATION = {
    "battle_nsclc": ("battle_kim2011", ["battle"]),
    "battle2_nsclc": ("battle2_jco2016", ["battle2"]),
    "post_ici_nsclc_poor_assay": ("stk11_keap1_only_poor_assay", POPULATION_DESIGNS),
    "lungmap_s1400": ("lungmap_null", ["lungmap_platform", "lungmap_umbrella"]),
}

# Trials simulated per mutant that validates (the platform design is the slowest).
CHUNK = 5
PLATFORM_CHUNK = 2
# Mutants per census, and through a real process; seconds before a mutant counts as a hang. The
# default census is part of the fast suite, so it is kept to a few hundred mutants (every file and
# every class still drawn at least 3 times: 10 per shipped file); the larger one, marked slow, tries ten
# times more.
N_CENSUS = 10 * len(FILES)
N_CENSUS_SLOW = 10 * N_CENSUS
N_PROCESS = 3
N_PROCESS_SLOW = 20
HANG_SECONDS = 60

ROOTS = {"design": Design, "scenario": Scenario, "population": Population}
# Measuring only (docs/robustness.md compares the census before and after the fixes): with
# PLATFORM_SIM_CENSUS_COLLECT=1 a failing mutant is counted instead of failing the census, and
# PLATFORM_SIM_CENSUS_HANG sets the seconds after which a mutant counts as a hang.
COLLECT = os.environ.get("PLATFORM_SIM_CENSUS_COLLECT") == "1"
HANG_SECONDS = int(os.environ.get("PLATFORM_SIM_CENSUS_HANG", HANG_SECONDS))


def _members(annotation) -> list:
    """The types a field accepts: ``Annotated`` stripped, unions and optionals flattened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for a in get_args(annotation) for m in _members(a)]
    return [annotation]


# --------------------------------------------------------------------------- the schema at a path


def annotation_at(kind: str, path: tuple):
    """The type the configuration models expect at ``path`` of a file of ``kind`` (None where
    the path leaves the schema: an unknown key, a shorthand, a population given by name)."""
    ann = ROOTS[kind]
    for part in path:
        members = _members(ann)
        model = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)
        if isinstance(part, str) and model is not None and part in model.model_fields:
            ann = model.model_fields[part].annotation
            continue
        lists = [m for m in members if get_origin(m) is list]
        dicts = [m for m in members if get_origin(m) is dict]
        if isinstance(part, int) and lists:
            ann = get_args(lists[0])[0]
        elif dicts and not isinstance(part, bool):
            ann = get_args(dicts[0])[1]
        else:
            return None
    return ann


def is_model(ann) -> bool:
    return (
        ann is not None
        and any(isinstance(m, type) and issubclass(m, BaseModel) for m in _members(ann))
        and not any(get_origin(m) is dict for m in _members(ann))
    )


def takes_number(ann) -> bool:
    members = _members(ann) if ann is not None else []
    return any(m in (int, float) for m in members) and bool not in members


def is_probability(ann) -> bool:
    """A number field bounded by 0 and 1 (Probability, OpenProbability)."""
    for member in _flat_annotated(ann):
        lo = hi = None
        for info in get_args(member)[1:]:
            for c in getattr(info, "metadata", []):
                lo = getattr(c, "ge", getattr(c, "gt", lo))
                hi = getattr(c, "le", getattr(c, "lt", hi))
        if get_args(member)[0] is float and lo == 0 and hi == 1:
            return True
    return False


def _flat_annotated(ann) -> list:
    if ann is None:
        return []
    if get_origin(ann) is Annotated:
        return [ann]
    return [m for a in get_args(ann) for m in _flat_annotated(a)] if get_args(ann) else []


# --------------------------------------------------------------------------- mutations


def nodes(node, path=()):
    """Every (path, node) of a parsed YAML tree, the root first."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from nodes(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from nodes(v, path + (i,))


def get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def put(tree, path, value):
    get(tree, path[:-1])[path[-1]] = value


def number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _has_tag(text: bytes) -> bool:
    """Whether YAML reads a tag in ``text`` (scanning only: nothing is constructed)."""
    try:
        return any(isinstance(token, yaml.TagToken) for token in yaml.scan(text.decode("utf-8", "replace")))
    except yaml.YAMLError:
        return True  # malformed: it must be refused all the same


class Skip(Exception):
    """The mutant class finds nothing to act on in this file."""


@dataclass
class Mutant:
    kind: str
    name: str
    cls: str
    what: str
    data: bytes | None  # None: a directory in place of the file
    must_refuse: bool = False


class Mutator:
    """Mutants of one shipped file, each of one class, with details drawn from a seeded generator."""

    NAME_POOL = ("unknown_name", "no_such_marker")
    VALUES = (
        "fuzz",
        "",
        "1e3",
        "-1",
        -1,
        -0.5,
        0,
        0.0,
        1,
        10**9,
        2**63,
        1e300,
        -1e300,
        math.nan,
        math.inf,
        -math.inf,
        [],
        [1, 2],
        ["fuzz"],
        {},
        {"fuzz": 1},
        None,
        True,
        False,
        0.5,
        1.5,
    )
    UNICODE = ("café", "π≈3.14", "名前", "😀", "\u200bzero\u200bwidth", "עברית", "Ω_arm", "e\u0301", "\ufeffbom")
    GARBAGE = (
        b"\t",
        b"\x00",
        b": : -",
        b"[",
        b"{",
        b"}",
        b"&a *a",
        b"*undefined",
        b"<<: *x",
        b"%YAML 9.9",
        b"---\n- x\n",
        b"\x1b[31m",
        b"key: [unclosed",
        b"'",
        b'"\\q"',
        b"\xe2\x80\x8b",
        b"? [a, b]\n: c\n",
    )
    INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")

    def __init__(self, kind: str, name: str, seed: int):
        self.kind, self.name = kind, name
        self.rng = np.random.default_rng(seed)
        self.raw = source(kind, name).read_bytes()

    def pick(self, seq):
        seq = list(seq)
        if not seq:
            raise Skip
        return seq[int(self.rng.integers(len(seq)))]

    def tree(self):
        return yaml.safe_load(self.raw)

    def dump(self, tree) -> bytes:
        return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode()

    def leaves(self, tree, test):
        return [(p, n) for p, n in nodes(tree) if p and test(p, n)]

    # ---------------------------------------------------------- classes on the tree: name -> (what, must refuse)

    def delete_key(self, tree):
        path, _ = self.pick(self.leaves(tree, lambda p, n: isinstance(get(tree, p[:-1]), dict)))
        del get(tree, path[:-1])[path[-1]]
        return f"delete {path}", False

    def wrong_type(self, tree):
        path, old = self.pick(self.leaves(tree, lambda p, n: True))
        value = copy.deepcopy(self.pick(self.VALUES))
        put(tree, path, value)
        return f"set {path} = {value!r} (was {type(old).__name__})", False

    def _number(self, tree, new, refuse):
        path, x = self.pick(self.leaves(tree, lambda p, n: number(n) and takes_number(annotation_at(self.kind, p))))
        value = new(x)
        put(tree, path, value)
        return f"{path}: {x!r} -> {value!r}", refuse

    def number_nan(self, tree):
        return self._number(tree, lambda x: math.nan, True)

    def number_inf(self, tree):
        return self._number(tree, lambda x: self.pick([math.inf, -math.inf]), True)

    def number_negative(self, tree):
        return self._number(tree, lambda x: -abs(x) if x else -1, False)

    def number_zero(self, tree):
        return self._number(tree, lambda x: 0 if isinstance(x, int) else 0.0, False)

    def number_huge(self, tree):
        return self._number(tree, lambda x: self.pick([1e300, 1.7e308, 2**63, 10**12, 2**31 - 1, x * 1e6]), False)

    def number_tiny(self, tree):
        return self._number(tree, lambda x: self.pick([1e-300, 5e-324, 1e-12, x / 1e6]), False)

    def number_other(self, tree):
        how = self.pick(["scale", "minus1", "plus1", "one_minus", "half", "fraction", "above1", "below0"])
        factor = float(self.rng.choice([0.1, 0.5, 0.9, 1.1, 2.0, 10.0]))
        return self._number(
            tree,
            lambda x: {
                "scale": max(1, round(x * factor)) if isinstance(x, int) else x * factor,
                "minus1": x - 1,
                "plus1": x + 1,
                "one_minus": 1 - x,
                "half": x / 2,
                "fraction": x + 0.5,
                "above1": 1.0 + abs(x) + 1e-9,
                "below0": -1e-9,
            }[how],
            False,
        )

    def probability_out_of_range(self, tree):
        path, x = self.pick(self.leaves(tree, lambda p, n: number(n) and is_probability(annotation_at(self.kind, p))))
        value = self.pick([-0.1, -1e-9, 1.0 + 1e-9, 1.1, 1.5, 100.0])
        put(tree, path, value)
        return f"probability {path}: {x!r} -> {value!r}", True

    def bool_in_number(self, tree):
        path, x = self.pick(self.leaves(tree, lambda p, n: number(n) and takes_number(annotation_at(self.kind, p))))
        value = self.pick([True, False])
        put(tree, path, value)
        return f"{path}: {x!r} -> {value!r}", True

    def unicode_string(self, tree):
        path, x = self.pick(self.leaves(tree, lambda p, n: isinstance(n, str)))
        value = self.pick(self.UNICODE) + ("" if self.rng.random() < 0.5 else x)
        put(tree, path, value)
        return f"{path}: {x!r} -> {value!r}", False

    def long_string(self, tree):
        path, x = self.pick(self.leaves(tree, lambda p, n: isinstance(n, str)))
        value = (x or "x") * int(self.pick([1000, 10_000, 100_000]) // max(len(x), 1) + 1)
        put(tree, path, value)
        return f"{path}: {len(x)} -> {len(value)} characters", False

    def unknown_key(self, tree):
        path, node = self.pick([(p, n) for p, n in nodes(tree) if isinstance(n, dict)])
        key = self.pick(["unknown_field", "superiorty", "Name", "prior ", "ｎａｍｅ"])
        if key in node:
            raise Skip
        node[key] = self.pick([1, "x", None, {"a": 1}])
        return f"add key {key!r} in {path}", is_model(annotation_at(self.kind, path))

    def non_string_key(self, tree):
        path, _ = self.pick(self.leaves(tree, lambda p, n: isinstance(get(tree, p[:-1]), dict)))
        parent, old = get(tree, path[:-1]), path[-1]
        new = self.pick([1, 0, True, None, 2.5, -1])
        items = list(parent.items())
        parent.clear()
        parent.update({(new if k == old else k): v for k, v in items})
        return f"rename key {path} -> {new!r}", False

    def empty_collection(self, tree):
        path, node = self.pick([(p, n) for p, n in nodes(tree) if isinstance(n, (list, dict)) and n and p])
        node.clear()
        return f"empty {path}", False

    def duplicate_entry(self, tree):
        path, node = self.pick([(p, n) for p, n in nodes(tree) if isinstance(n, list) and n])
        i = int(self.rng.integers(len(node)))
        node.insert(int(self.rng.integers(len(node) + 1)), copy.deepcopy(node[i]))
        repeated_marker = self.kind == "design" and path == ("strata", "by")
        return f"duplicate {path}[{i}]", repeated_marker

    def duplicate_name(self, tree):
        path, node = self.pick(
            [
                (p, n)
                for p, n in nodes(tree)
                if isinstance(n, list)
                and len(n) >= 2
                and all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in n)
            ]
        )
        i, j = (int(v) for v in self.rng.choice(len(node), 2, replace=False))
        node[j]["name"] = node[i]["name"]
        return f"{path}[{j}].name = {node[i]['name']!r} (as [{i}])", self.kind == "design"

    def rename_reference(self, tree):
        counts, spots = Counter(), []
        for p, n in nodes(tree):
            if p and isinstance(p[-1], str):
                counts[p[-1]] += 1
                spots.append(("key", p, p[-1]))
            if isinstance(n, str) and p and p[-1] != "description":
                counts[n] += 1
                spots.append(("value", p, n))
        referenced = [s for s in spots if counts[s[2]] > 1]
        where, path, name = self.pick(referenced if referenced and self.rng.random() < 0.8 else spots)
        new = self.pick(self.NAME_POOL) if self.rng.random() < 0.7 else f"{name}_x"
        if where == "value":
            put(tree, path, new)
        else:
            parent = get(tree, path[:-1])
            items = list(parent.items())
            parent.clear()
            parent.update({(new if k == name else k): v for k, v in items})
        return f"rename {where} {path}: {name!r} -> {new!r}", False

    def reverse(self, tree):
        lists = [p for p, n in nodes(tree) if isinstance(n, list) and len(n) >= 2]
        pairs = [p for p, n in nodes(tree) if isinstance(n, dict) and sum(number(v) for v in n.values()) >= 2]
        path = self.pick(lists + pairs)
        node = get(tree, path)
        if isinstance(node, list):
            node.reverse()
            return f"reverse {path}", False
        keys = [k for k, v in node.items() if number(v)]
        i, j = (int(v) for v in self.rng.choice(len(keys), 2, replace=False))
        node[keys[i]], node[keys[j]] = node[keys[j]], node[keys[i]]
        return f"swap {path}.{keys[i]} and .{keys[j]}", False

    def transplant(self, tree):
        everything = [p for p, _ in nodes(tree) if p]
        target, origin = self.pick(everything), self.pick(everything)
        if target[: len(origin)] == origin:
            raise Skip
        put(tree, target, copy.deepcopy(get(tree, origin)))
        return f"copy {origin} into {target}", False

    TREE = (
        "delete_key",
        "wrong_type",
        "number_nan",
        "number_inf",
        "number_negative",
        "number_zero",
        "number_huge",
        "number_tiny",
        "number_other",
        "probability_out_of_range",
        "bool_in_number",
        "unicode_string",
        "long_string",
        "unknown_key",
        "non_string_key",
        "empty_collection",
        "duplicate_entry",
        "duplicate_name",
        "rename_reference",
        "reverse",
        "transplant",
    )

    def several_edits(self, tree):
        done = []
        for _ in range(40):
            if len(done) == 2 + int(self.rng.integers(2)):
                break
            try:
                done.append(getattr(self, self.pick(self.TREE))(tree)[0])
            except Skip:
                continue
        return "; ".join(done), False

    # ---------------------------------------------------------- classes on the text

    def _lines(self):
        return self.raw.split(b"\n")

    def duplicate_key(self):
        """Repeat one entry of a block mapping (its key line and value) right after it."""
        node = yaml.compose(self.raw.decode())
        entries = []
        stack = [node]
        text_lines = self.raw.decode().split("\n")
        while stack:
            n = stack.pop()
            if isinstance(n, yaml.MappingNode):
                for k, v in n.value:
                    line = text_lines[k.start_mark.line]
                    if not n.flow_style and line[: k.start_mark.column].strip() == "":
                        end = v.end_mark.line + (1 if v.end_mark.column > 0 else 0)
                        entries.append((k.start_mark.line, max(end, k.start_mark.line + 1), k.value))
                    stack.append(v)
            elif isinstance(n, yaml.SequenceNode):
                stack.extend(n.value)
        first, end, key = self.pick(entries)
        lines = self._lines()
        block = lines[first:end]
        return b"\n".join(lines[:end] + block + lines[end:]), f"repeat key {key!r} (lines {first + 1}-{end})", True

    def alias_bomb(self):
        levels, width = int(self.pick([7, 8, 9])), int(self.pick([8, 9, 10]))
        bomb = [f"laugh0: &laugh0 [{', '.join(['lol'] * width)}]"]
        bomb += [f"laugh{i}: &laugh{i} [{', '.join([f'*laugh{i - 1}'] * width)}]" for i in range(1, levels + 1)]
        return (
            self.raw.rstrip(b"\n") + b"\n" + "\n".join(bomb).encode() + b"\n",
            f"append {width}^{levels} alias expansion",
            True,
        )

    def python_tag(self):
        tag = self.pick(
            [
                "!!python/object/apply:os.system ['touch PWNED']",
                "!!python/name:os.system",
                "!!python/object/new:type ['x', !!python/tuple [], {}]",
                "!!python/module:os",
            ]
        )
        lines = self._lines()
        keyed = [i for i, line in enumerate(lines) if re.match(rb"^\s*[A-Za-z_]\w*: \S", line)]
        i = self.pick(keyed)
        head = lines[i][: lines[i].index(b": ") + 2]
        lines[i] = head + tag.encode()
        text = b"\n".join(lines)
        # inside a block scalar (a folded description) the tag is only text: nothing to refuse
        return text, f"line {i + 1}: {tag}", _has_tag(text)

    def empty_file(self):
        data = self.pick([b"", b"\n", b"# only a comment\n", b"   \n\n", b"---\n", b"...\n"])
        return data, f"the file is {data!r}", True

    def non_utf8(self):
        at = int(self.rng.integers(len(self.raw) + 1))
        junk = self.pick(self.INVALID_UTF8)
        return self.raw[:at] + junk + self.raw[at:], f"insert {junk!r} at byte {at}", True

    def random_bytes(self):
        at = int(self.rng.integers(len(self.raw) + 1))
        junk = bytes(self.rng.integers(0, 256, int(self.rng.integers(1, 9))).astype(np.uint8))
        return self.raw[:at] + junk + self.raw[at:], f"insert random bytes {junk!r} at byte {at}", False

    def insert_garbage(self):
        at = int(self.rng.integers(len(self.raw) + 1))
        junk = self.pick(self.GARBAGE)
        return self.raw[:at] + junk + self.raw[at:], f"insert {junk!r} at byte {at}", False

    def truncate(self):
        at = int(self.rng.integers(len(self.raw)))
        return self.raw[:at], f"truncate at byte {at} of {len(self.raw)}", False

    def deep_nesting(self):
        lines = self._lines()
        i = int(self.rng.integers(len(lines)))
        depth = int(self.pick([20, 70, 500, 5000]))
        head = lines[i].split(b":")[0] if b":" in lines[i] else b"nested"
        lines[i] = head + b": " + b"[" * depth + b"1" + b"]" * depth
        return b"\n".join(lines), f"nest line {i + 1}'s value in {depth} lists", False

    def line_edit(self):
        lines = self._lines()
        how = self.pick(["tab", "delete", "duplicate", "garble", "swap"])
        i = int(self.rng.integers(len(lines)))
        if how == "tab":
            lines[i] = b"\t" + lines[i]
        elif how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "garble":
            lines[i] = lines[i][: len(lines[i]) // 2] + self.pick(self.GARBAGE)
        else:
            i = min(i, len(lines) - 2)
            lines[i : i + 2] = lines[i : i + 2][::-1]
        return b"\n".join(lines), f"{how} line {i + 1}", False

    def reencode(self):
        encoding = self.pick(["utf-16", "utf-32", "latin-1", "utf-8-sig", "cp1252"])
        return self.raw.decode().encode(encoding, errors="replace"), f"re-encode as {encoding}", False

    def directory(self):
        return None, "a directory in place of the file", True

    TEXT = (
        "duplicate_key",
        "alias_bomb",
        "python_tag",
        "empty_file",
        "non_utf8",
        "random_bytes",
        "insert_garbage",
        "truncate",
        "deep_nesting",
        "line_edit",
        "reencode",
        "directory",
    )
    CLASSES = TREE + ("several_edits",) + TEXT

    def mutant(self, cls: str) -> Mutant:
        if cls in self.TEXT:
            data, what, refuse = getattr(self, cls)()
        else:
            tree = self.tree()
            what, refuse = getattr(self, cls)(tree)
            data = self.dump(tree)
        return Mutant(self.kind, self.name, cls, what, data, refuse)


def source(kind: str, name: str) -> Path:
    folder = {"design": "designs", "scenario": "scenarios", "population": "scenarios/populations"}[kind]
    return ROOT / folder / f"{name}.yaml"


# --------------------------------------------------------------------------- checks

# The field a problem names: the file's kind, then keys and list indices ("design.arms[2].treatment";
# a key is reported as written, so it may hold any character).
FIELD_PATH = re.compile(r"(design|scenario|population|file)([.\[].*)?", re.S)
ERROR_LINE = re.compile(r"error: (\S+: )?(design|scenario|population|file)([.\[][^\n]*?)?: \S[^\n]*")
# The same, naming a file: "error: FILE: field.path: what is wrong (got VALUE)"
NAMED_ERROR = re.compile(r"error: (?P<file>\S+): (design|scenario|population|file)([.\[][^\n]*?)?: \S[^\n]*")


class Failure(AssertionError):
    """A mutant the census must not produce: its class (an outcome) and what happened."""

    def __init__(self, outcome: str, message: str):
        super().__init__(f"{outcome}: {message}")
        self.outcome = outcome


class _Hang(BaseException):
    pass


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _check_cli(result, edits, files=None) -> None:
    """Exit status 0 or 2, one ``error:`` line per problem on stderr when 2 (naming one of ``files``
    when given), and never an exception or a traceback."""
    shown = f"edits: {edits}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    exc = result.exception
    if isinstance(exc, _Hang):
        raise exc
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(exc))
        raise Failure("traceback", f"{type(exc).__name__}: {str(exc)[:300]}\n{shown}\n{tb[-4000:]}")
    if result.exit_code not in (0, 2) or "Traceback" in result.output:
        raise Failure("traceback", f"exit {result.exit_code}\n{shown}")
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        pattern = ERROR_LINE if files is None else NAMED_ERROR
        ok = lines and all(pattern.fullmatch(line) for line in lines)
        if ok and files is not None:
            names = {str(f) for f in files}
            ok = all(NAMED_ERROR.fullmatch(line).group("file") in names for line in lines)
        if not ok:
            raise Failure("unclear refusal", f"an error line does not name the file and the field\n{shown}")


def _check_problems(exc: ConfigError, edits) -> None:
    assert exc.problems, edits
    for p in exc.problems:
        assert FIELD_PATH.fullmatch(p.path) and p.message and "\n" not in p.format(), (p, edits)


def _check_runs(design, scenario, edits) -> bool:
    """A spec that validated loads and simulates a few trials; only a ConfigError may stop it."""
    try:
        spec = Spec.load(design, scenario)
        n = PLATFORM_CHUNK if spec.design.platform is not None else CHUNK
        results = run(spec, n, seed=1, chunk_size=n)
    except ConfigError as exc:
        _check_problems(exc, edits)
        return False
    except _Hang:
        raise
    except Exception as exc:  # noqa: BLE001 - any other exception is the crash the census looks for
        tb = "".join(traceback.format_exception(exc))
        raise Failure(
            "traceback",
            f"{design} on {scenario}: simulating raised {type(exc).__name__}: "
            f"{str(exc)[:300]}\nedits: {edits}\n{tb[-4000:]}",
        ) from None
    assert results.n_trials == n, edits
    prob = np.asarray(results.extras.get("prob_best", np.zeros(1)), dtype=float)
    assert not (prob[np.isfinite(prob)] < 0).any() and not (prob[np.isfinite(prob)] > 1 + 1e-9).any(), edits
    return True


def _check_pipeline(files, design, scenario, edits) -> bool:
    """What a user does: ``validate`` the edited files, then ``validate DESIGN --scenario SCENARIO``,
    then run the spec (a few trials) when it validates. True when the spec was simulated."""
    involved = [*files, design, scenario]
    result = _invoke("validate", *files)
    _check_cli(result, edits, involved)
    if result.exit_code != 0:
        return False
    if files != [design]:  # an edited scenario or population: the pair check through the CLI
        result = _invoke("validate", design, "--scenario", scenario)
        _check_cli(result, edits, involved)
        if result.exit_code != 0:
            return False
    return _check_runs(design, scenario, edits)


def _write_case(kind: str, name: str, data: bytes | None, folder: Path) -> tuple[list[Path], Path | None, Path]:
    """Write a mutated file (``data`` None: a directory in its place); return the files to validate
    and the design and scenario to pair. A mutated population is found through a copy of its usual
    scenario in the same folder."""

    def write(path: Path) -> Path:
        if data is None:
            path.mkdir(parents=True)
        else:
            path.write_bytes(data)
        return path

    if kind == "design":
        path = write(folder / f"{name}.yaml")
        return [path], path, source("scenario", USUAL_SCENARIO.get(name, DEFAULT_SCENARIO))
    if kind == "scenario":
        return [write(folder / f"{name}.yaml")], None, folder / f"{name}.yaml"
    (folder / "populations").mkdir(exist_ok=True)
    path = write(folder / "populations" / f"{name}.yaml")
    usual = OWN_POPULATION.get(name, (POPULATION_SCENARIO, None))[0]
    scenario = folder / f"{usual}.yaml"
    scenario.write_bytes(source("scenario", usual).read_bytes())
    return [path, scenario], None, scenario


def _paired_design(kind: str, name: str, seed: int) -> Path:
    if kind == "scenario":
        options = SCENARIO_DESIGNS.get(name, DEFAULT_SCENARIO_DESIGNS)
    else:
        options = OWN_POPULATION.get(name, (None, POPULATION_DESIGNS))[1]
    return source("design", options[seed % len(options)])


def _on_alarm(signum, frame):
    raise _Hang


def check_mutant(mutant: Mutant, folder: Path, seed: int) -> str:
    """'ran' or 'refused'; a Failure (traceback, hang, unclear refusal, accepted although invalid)
    for anything else."""
    edits = [f"{mutant.kind} {mutant.name}: {mutant.cls}: {mutant.what}"]
    files, design, scenario = _write_case(mutant.kind, mutant.name, mutant.data, folder)
    design = design or _paired_design(mutant.kind, mutant.name, seed)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    try:
        ran = _check_pipeline(files, design, scenario, edits)
    except _Hang:
        raise Failure("hang", f"no answer within {HANG_SECONDS} s\nedits: {edits}") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if (folder / "PWNED").exists() or Path("PWNED").exists():
        raise Failure("code run", f"a YAML tag ran a command\nedits: {edits}")
    if ran and mutant.must_refuse:
        raise Failure("accepted although invalid", f"validated and ran\nedits: {edits}")
    return "ran" if ran else "refused"


# --------------------------------------------------------------------------- the census


OUTCOMES = ["ran", "refused", "traceback", "hang", "unclear refusal", "accepted although invalid", "code run"]


@st.composite
def mutants(draw):
    kind, name = draw(st.sampled_from(FILES))
    cls = draw(st.sampled_from(Mutator.CLASSES))
    seed = draw(st.integers(0, 2**32 - 1))
    return kind, name, cls, seed


def _file_label(kind: str, name: str) -> str:
    return f"{'scenarios/populations' if kind == 'population' else kind + 's'}/{name}"


@dataclass
class Tally:
    title: str
    by_class: dict = field(default_factory=lambda: defaultdict(Counter))
    by_file: Counter = field(default_factory=Counter)
    skipped: int = 0
    through_subprocess: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, mutant: Mutant, outcome: str) -> None:
        self.by_class[mutant.cls][outcome] += 1
        self.by_file[_file_label(mutant.kind, mutant.name)] += 1

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_class.values())

    def write(self, name: str) -> None:
        write_mutants(
            name,
            {
                "title": self.title,
                "total": self.total,
                "seconds": time.perf_counter() - self.started,
                "through_subprocess": self.through_subprocess,
                "skipped": self.skipped,
                "outcome_names": OUTCOMES,
                "by_class": {k: dict(v) for k, v in self.by_class.items()},
                "by_file": dict(self.by_file),
            },
        )


def census(n: int, n_process: int, tally: Tally) -> None:
    """Draw ``n`` mutants with hypothesis and check each in this process, then ``n_process`` more
    through a real ``platform-sim run`` process."""

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(mutants())
    def in_process(drawn):
        kind, name, cls, seed = drawn
        try:
            mutant = Mutator(kind, name, seed).mutant(cls)
        except Skip:
            tally.skipped += 1
            return
        with tempfile.TemporaryDirectory() as folder:
            tally.add(mutant, _outcome(lambda: check_mutant(mutant, Path(folder), seed)))

    in_process()
    if not n_process:
        return

    @settings(
        max_examples=n_process,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(mutants())
    def through_process(drawn):
        kind, name, cls, seed = drawn
        try:
            mutant = Mutator(kind, name, seed ^ 0x5EED).mutant(cls)
        except Skip:
            tally.skipped += 1
            return
        with tempfile.TemporaryDirectory() as folder:
            tally.add(mutant, _outcome(lambda: check_in_a_process(mutant, Path(folder), seed)))
            tally.through_subprocess += 1

    through_process()


def _outcome(check) -> str:
    try:
        return check()
    except Failure as exc:
        if not COLLECT:
            raise
        record_failure(exc.outcome, str(exc)[:3000])
        return exc.outcome


def check_in_a_process(mutant: Mutant, folder: Path, seed: int) -> str:
    """``platform-sim run --n-sims 5`` on the mutant in a fresh process: exit 0 or 2, no traceback,
    an answer within HANG_SECONDS (plus the interpreter's start)."""
    files, design, scenario = _write_case(mutant.kind, mutant.name, mutant.data, folder)
    design = design or _paired_design(mutant.kind, mutant.name, seed)
    edits = f"{mutant.kind} {mutant.name}: {mutant.cls}: {mutant.what}"
    cmd = [
        sys.executable,
        "-m",
        "platform_sim.cli",
        "run",
        "--design",
        str(design),
        "--scenario",
        str(scenario),
        "--n-sims",
        "5",
        "--quiet",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_SECONDS + 60, cwd=folder)
    except subprocess.TimeoutExpired:
        raise Failure("hang", f"no answer from {cmd}\nedits: {edits}") from None
    shown = f"edits: {edits}\nstderr: {proc.stderr[-3000:]}"
    if proc.returncode not in (0, 2) or "Traceback" in proc.stderr + proc.stdout:
        raise Failure("traceback", f"exit {proc.returncode}\n{shown}")
    if proc.returncode == 2:
        lines = proc.stderr.splitlines()
        names = {str(f) for f in [*files, design, scenario]}
        if not lines or not all((m := NAMED_ERROR.fullmatch(line)) and m.group("file") in names for line in lines):
            raise Failure("unclear refusal", shown)
        return "refused"
    if mutant.must_refuse:
        raise Failure("accepted although invalid", shown)
    return "ran"


def _census_test(n: int, n_process: int, name: str, title: str) -> None:
    tally = Tally(title)
    census(n, n_process, tally)
    tally.write(name)
    assert tally.total >= 0.95 * (n + n_process), (tally.total, tally.skipped)  # (a class can find nothing to edit)
    assert set(tally.by_file) == {_file_label(k, n) for k, n in FILES}, "a shipped file was never mutated"
    assert set(tally.by_class) == set(Mutator.CLASSES), set(Mutator.CLASSES) - set(tally.by_class)
    assert min(tally.by_file.values()) >= 3 and min(sum(c.values()) for c in tally.by_class.values()) >= 3, (
        "a shipped file or a mutant class was drawn fewer than 3 times"
    )
    for cls, outcomes in tally.by_class.items():
        assert set(outcomes) <= {"ran", "refused"} or COLLECT, (cls, outcomes)


def test_fuzz_census():
    """A few hundred mutants of the shipped files, every file and class among them: each runs or is
    refused cleanly."""
    _census_test(N_CENSUS, N_PROCESS, "census", "Default census (`python -m pytest tests/test_fuzz_config.py`)")


@pytest.mark.slow
def test_fuzz_census_large():
    _census_test(
        N_CENSUS_SLOW,
        N_PROCESS_SLOW,
        "census_slow",
        "Larger census (`python -m pytest -m slow tests/test_fuzz_config.py`)",
    )


# --------------------------------------------------------------------------- regressions
#
# Every edit below crashed (an exception other than ConfigError, a hang, or a multi-line message)
# before the fix named in its comment; each must now give a clear validation error naming the field.
# "fuzzed" marks edits this fuzzer produced (the case id, before its edit kinds were extended: the
# same id now draws other edits); "probe" marks the same classes of edit (a huge or tiny number,
# NaN/inf, an emptied list) tried by hand on every field of a kind; "one-edit sweep" marks a
# systematic pass that deleted, emptied, nulled, zeroed, duplicated or set to 1, 1e-300 or 1e300
# every node of every shipped file in turn.

DELETE = object()


def _apply(tree, edits):
    for path, value in edits:
        node = tree
        for p in path[:-1]:
            node = node[p]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return tree


def _regression_files(kind: str, name: str, edits, tmp_path: Path):
    if isinstance(edits, bytes):  # an edit of the raw text: the bytes to write
        data = edits
    else:
        data = yaml.safe_dump(_apply(yaml.safe_load(source(kind, name).read_text()), edits), sort_keys=False).encode()
    return _write_case(kind, name, data, tmp_path)


def _raw(kind: str, name: str, at: int, junk: bytes) -> bytes:
    raw = source(kind, name).read_bytes()
    return raw[:at] + junk + raw[at:]


def _nested(kind: str, name: str, key: str, depth: int) -> bytes:
    text = source(kind, name).read_bytes()
    return text.replace(f"{key}:".encode(), f"{key}: {'[' * depth}1{']' * depth}\nunused_{key}:".encode(), 1)


_GROUPS_34 = [
    {"name": f"g{i}", "when": {"atm": "positive"}, "arms": ["docetaxel", "durva_ceralasertib"]} for i in range(33)
] + [
    {
        "name": "other",
        "when": "other",
        "arms": ["docetaxel", "durva_tremelimumab", "dato_dxd", "ramucirumab_pembrolizumab"],
    }
]

# (id, kind, file, edits, design paired with an edited scenario/population, what the error names)
REGRESSIONS = [
    # fuzzed (allcomer_fixed-3): UnicodeDecodeError from Path.read_text -> config/load.py reads bytes and
    # reports "not UTF-8 text: line, column" with the bytes.
    (
        "non_utf8_bytes",
        "design",
        "allcomer_fixed",
        _raw("design", "allcomer_fixed", 422, b"\xc9\x8d]u\xdf\x85\xb6"),
        None,
        ["not UTF-8 text: line 7, column", "got b'\\xb6'"],
    ),
    (
        "latin1_byte",
        "scenario",
        "benchmark_four_arm",
        _raw("scenario", "benchmark_four_arm", 40, b"\xe9"),
        None,
        ["not UTF-8 text: line 1", "got b'\\xe9'"],
    ),
    # fuzzed (adaptive_enrichment-17): PyYAML's ReaderError message spans two lines, so stderr had a line
    # without "error:" -> one line with the line and column of the character.
    (
        "nul_character",
        "design",
        "adaptive_enrichment",
        _raw("design", "adaptive_enrichment", 5, b"\x00"),
        None,
        ["malformed YAML: line 1, column 6: character #x0000 is not allowed"],
    ),
    (
        "escape_character",
        "population",
        "post_ici_nsclc",
        _raw("population", "post_ici_nsclc", 815, b"\x1b[31m"),
        "pioneer_rar",
        ["malformed YAML: line", "#x001b"],
    ),
    # fuzzed (allcomer_fixed-3010, -3013): RecursionError in yaml.safe_load -> reported as malformed YAML.
    # (whether PyYAML or the node walk refuses it depends on the recursion limit, which PyTensor raises)
    (
        "deep_nesting",
        "design",
        "allcomer_fixed",
        _nested("design", "allcomer_fixed", "control", 1000),
        None,
        ["malformed YAML: ", "collections are nested too deeply"],
    ),
    (
        "deep_nesting_500",
        "design",
        "pioneer_rar",
        _nested("design", "pioneer_rar", "description", 500),
        None,
        ["malformed YAML: ", "collections are nested too deeply"],
    ),
    # fuzzed (allcomer_fixed-112, hierarchical_borrowing-22, adaptive_enrichment-24, benchmark_four_arm-10):
    # a maximum sample size of 4e8 or 2**31 - 1 patients validated, then the run allocated arrays for
    # them, hung, or stopped with RuntimeError("the screening funnel randomizes almost nobody") after
    # 10,000 blocks; the look shorthand built range(first, 10**9, every) -> at most MAX_PATIENTS (100,000).
    (
        "huge_sample_size",
        "design",
        "allcomer_fixed",
        [(("looks", "randomized_n", 0), 400_000_000)],
        None,
        ["design.looks.randomized_n", "400000000", "100000"],
    ),
    (
        "int_max_last_look",
        "design",
        "adaptive_enrichment",
        [(("looks", "randomized_n", 6), 2**31 - 1)],
        None,
        ["design.looks.randomized_n", "2147483647"],
    ),
    (
        "huge_look_shorthand",
        "design",
        "benchmark_four_arm",
        [(("looks", "last"), 10**9), (("looks", "every"), 1)],
        None,
        ["design.looks: last (1000000000) exceeds"],
    ),
    # probe: a screening funnel that randomizes nobody validated; a stratified design then crashed in
    # validate --scenario (ValueError: need at least one array to concatenate, strata.reported_distribution)
    # and other designs in the run (RuntimeError in outcomes.enrol) -> config/population.py.
    (
        "all_ineligible",
        "population",
        "post_ici_nsclc",
        [(("screening", "ineligible"), 1.0)],
        "battle_stratified_rar",
        ["population.screening.ineligible", "no screened patient is ever randomized"],
    ),
    (
        "all_lost_while_waiting",
        "population",
        "post_ici_nsclc",
        [(("screening", "loss_hazard_per_day"), 1e300)],
        "lungmap_umbrella",
        ["population.screening.loss_hazard_per_day", "1e+300"],
    ),
    # (a turnaround of 1e300 days lost everybody the same way; waits are now at most ten years, and an
    # sdlog of 1e300 with a median of 0 days gave NaN waits (0 x inf) and a NaN funnel -> at most 5)
    (
        "endless_turnaround",
        "population",
        "post_ici_nsclc",
        [(("screening", "tissue", "turnaround", "median_days"), 1e300)],
        "pioneer_platform",
        ["population.screening.tissue.turnaround.median_days", "1e+300"],
    ),
    (
        "turnaround_sdlog_huge",
        "population",
        "post_ici_nsclc",
        [
            (("screening", "tissue", "turnaround", "sdlog"), 1e300),
            (("screening", "tissue", "turnaround", "median_days"), 0),
        ],
        "pioneer_rar",
        ["population.screening.tissue.turnaround.sdlog", "1e+300"],
    ),
    (
        "no_tissue_or_plasma_result",
        "population",
        "post_ici_nsclc",
        [(("screening", "tissue", "failure"), 1.0), (("screening", "liquid", "detectable"), 0.0)],
        "pioneer_rar",
        ["population.screening.tissue.failure", "failure = 1.0"],
    ),
    # probe: a funnel that randomizes 1 in 10,000 screened patients: RuntimeError in outcomes.enrol after
    # 2.5 million screened patients -> config/crosscheck.py (_capacity_problems) in the pair check.
    (
        "almost_all_ineligible",
        "population",
        "post_ici_nsclc",
        [(("screening", "ineligible"), 0.9999)],
        "pioneer_rar",
        ["design.looks.randomized_n", "would screen about", "1000000"],
    ),
    (
        "almost_all_ineligible_strata",
        "population",
        "post_ici_nsclc",
        [(("screening", "ineligible"), 0.9999)],
        "battle_stratified_rar",
        ["design.looks.randomized_n", "into its strata"],
    ),
    # probe: a platform under a huge accrual rate or duration: RuntimeError in outcomes.enrol, or a hang
    # -> config/crosscheck.py (_capacity_problems). (1e300 a month is now refused by the population
    # itself; the largest rate it accepts still overfills the platform)
    (
        "platform_huge_accrual",
        "population",
        "post_ici_nsclc",
        [(("accrual", "regions", "europe", "rate_per_month"), 1e6)],
        "pioneer_platform",
        ["design.platform.max_duration_months", "would be randomized"],
    ),
    # probe: calendar analyses every 3e-6 months (16 million of them) or for 1e5 months: a run that
    # never ends -> config/timeline_checks.py (MAX_ANALYSES = 10,000).
    (
        "platform_analyses_every_3e-6_months",
        "design",
        "pioneer_platform",
        [(("platform", "interims", "every_months"), 3e-6)],
        None,
        ["design.platform.interims.every_months", "3e-06"],
    ),
    # (a maximum duration of 1e5 months scheduled too many analyses; durations are now at most 100 years)
    (
        "platform_duration_1e5_months",
        "design",
        "pioneer_platform",
        [(("platform", "max_duration_months"), 1e5)],
        None,
        ["design.platform.max_duration_months", "less than or equal to 1200"],
    ),
    # probe: ValueError("at most 32 strata are supported") raised from compile_strata inside
    # validate --scenario -> strata.name_problems (strata.by) and config/strata.py (groups).
    (
        "64_strata",
        "design",
        "hierarchical_borrowing",
        [(("strata", "by"), ["histology", "kras", "stk11", "keap1", "smarca4", "atm"])],
        None,
        ["design.strata.by", "defines 64 strata"],
    ),
    (
        "34_groups",
        "design",
        "lungmap_umbrella",
        [(("strata", "groups"), _GROUPS_34)],
        None,
        ["design.strata", "at most 32 groups"],
    ),
    # probe: hierarchical borrowing priors outside what its grid handles: ValueError from scipy's
    # roots_jacobi, OverflowError in engine_grid, ZeroDivisionError in the beta kernel, or
    # HierarchicalPrior's own ValueError for NaN -> bounds in config/strata.py.
    (
        "borrowing_mu_a_tiny",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "mu_a"), 1e-300)],
        None,
        ["design.strata.borrowing.mu_a", "1e-300"],
    ),
    (
        "borrowing_mu_b_huge",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "mu_b"), 1e300)],
        None,
        ["design.strata.borrowing.mu_b", "1e+300"],
    ),
    (
        "borrowing_log_kappa_mean_huge",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "log_kappa_mean"), 1e300)],
        None,
        ["design.strata.borrowing.log_kappa_mean"],
    ),
    (
        "borrowing_log_kappa_mean_-50",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "log_kappa_mean"), -50)],
        None,
        ["design.strata.borrowing.log_kappa_mean", "-50"],
    ),
    (
        "borrowing_log_kappa_mean_nan",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "log_kappa_mean"), math.nan)],
        None,
        ["design.strata.borrowing.log_kappa_mean", "nan"],
    ),
    (
        "borrowing_log_kappa_sd_huge",
        "design",
        "hierarchical_borrowing",
        [(("strata", "borrowing", "log_kappa_sd"), 1e300)],
        None,
        ["design.strata.borrowing.log_kappa_sd"],
    ),
    # probe: a beta prior of 1e300 pseudo-patients: ZeroDivisionError in posterior/beta.py -> at most 1e6;
    # inf validated as well -> finite.
    ("prior_huge", "design", "pioneer_rar", [(("prior", "b"), 1e300)], None, ["design.prior.b", "1e+300"]),
    (
        "arm_prior_huge",
        "design",
        "pioneer_rar",
        [(("arms", 0, "prior"), {"a": 1, "b": 1e300})],
        None,
        ["design.arms[0].prior.b"],
    ),
    ("prior_inf", "design", "benchmark_four_arm", [(("prior", "a"), math.inf)], None, ["design.prior.a", "inf"]),
    # fuzzed (pioneer_platform-7050): graduation signatures emptied to {}: ValueError (matmul dimension
    # mismatch) in timeline._analyse -> config/timeline.py requires at least one signature.
    (
        "platform_no_signatures",
        "design",
        "pioneer_platform",
        [(("platform", "graduation", "signatures"), {})],
        None,
        ["design.platform.graduation.signatures", "names no signature"],
    ),
    # one-edit sweep: a sub-study's stage sizes emptied to []: IndexError in StratumGroup.cap -> config/strata.py
    # requires at least one stage.
    (
        "group_without_stages",
        "design",
        "lungmap_umbrella",
        [(("strata", "groups", 3, "looks"), [])],
        None,
        ["design.strata.groups[3].looks", "at least 1 item"],
    ),
    # probe: the control alone with control_allocation sqrt_k: ZeroDivisionError in
    # crosscheck._randomization_problems (sqrt(0) / (sqrt(0) + 0)).
    (
        "control_alone_sqrt_k",
        "design",
        "pioneer_rar",
        [(("arms",), [{"name": "docetaxel", "treatment": "docetaxel"}])],
        None,
        ["design.arms", "needs at least two arms"],
    ),
    # probe: non-finite softening and allocation ratios validated and simulated with NaN allocations.
    (
        "softening_inf",
        "design",
        "pioneer_rar",
        [(("randomization", "softening"), math.inf)],
        None,
        ["design.randomization.softening", "inf"],
    ),
    # census (the larger one: number_tiny, scenario s1800a_allcomer): a dropout window of 5e-324 weeks
    # became 0 months, then ZeroDivisionError in the outcome models -> positive times are at least 0.001
    (
        "dropout_before_5e-324_weeks",
        "scenario",
        "s1800a_allcomer",
        [(("dropout", "before_weeks"), 5e-324)],
        "allcomer_rar",
        ["scenario.dropout.before_weeks", "greater than or equal to 0.001", "5e-324"],
    ),
    (
        "median_1e-300_months",
        "scenario",
        "pioneer_alternative",
        [(("treatments", "docetaxel", "outcomes", "pfs", "median_months"), 1e-300)],
        "pioneer_rar",
        ["scenario.treatments.docetaxel.outcomes.pfs.median_months", "greater than or equal to 0.001"],
    ),
    # probe (single-arm two-stage designs): a Simon search up to 10^6 patients raised MemoryError (a
    # terabyte of tables), one up to 400 patients for hypotheses no design meets ran for minutes, and
    # stages of 2**31 - 1 patients a RuntimeError from the screening -> searched at most 200, stages at
    # most 100,000 patients (config/two_stage.py); a funnel that lets 1 in 100,000 screened patients
    # through ended in the same RuntimeError -> the family's capacity check (families/two_stage.py).
    (
        "two_stage_search_1e6",
        "design",
        "s1400f_two_stage",
        [(("two_stage", "max_n"), 10**6)],
        None,
        ["design.two_stage.max_n", "less than or equal to 200", "1000000"],
    ),
    (
        "two_stage_search_400",
        "design",
        "s1400f_two_stage",
        [(("two_stage", "max_n"), 400), (("two_stage", "p0"), 0.5), (("two_stage", "p1"), 0.55)],
        None,
        ["design.two_stage.max_n", "less than or equal to 200"],
    ),
    (
        "two_stage_stages_int_max",
        "design",
        "s1400f_two_stage",
        [(("two_stage", "stages"), {"n1": 10, "r1": 0, "n": 2**31 - 1, "r": 5})],
        None,
        ["design.two_stage.stages.n", "2147483647"],
    ),
    (
        "two_stage_almost_all_ineligible",
        "population",
        "post_ici_nsclc",
        [(("screening", "ineligible"), 0.99999)],
        "s1400f_two_stage",
        ["design.two_stage", "would screen about"],
    ),
    # census (number_tiny on a population, after the merge of the design families): a ramp-up of 5e-324
    # months overflowed the accrual rate's slope; every patient arrived at month 0 (the trials ran with
    # wrong times) and a platform stopped with RuntimeError -> a ramp-up is 0 or at least 0.001 months,
    # and a rate near 1e308 did the same -> at most 1,000,000 a month (config/population.py).
    (
        "ramp_up_5e-324_months",
        "population",
        "post_ici_nsclc",
        [(("accrual", "regions", "europe", "ramp_up_months"), 5e-324)],
        "pioneer_platform",
        ["population.accrual.regions.europe.ramp_up_months", "at least 0.001 months"],
    ),
    (
        "accrual_rate_1.7e308",
        "population",
        "post_ici_nsclc",
        [(("accrual", "regions", "north_america", "rate_per_month"), 1.7e308)],
        "pioneer_rar",
        ["population.accrual.regions.north_america.rate_per_month", "1000000", "1.7e+308"],
    ),
    (
        "ratios_inf",
        "design",
        "allcomer_fixed",
        [
            (
                ("randomization", "ratios"),
                {
                    a: math.inf
                    for a in (
                        "docetaxel",
                        "durva_ceralasertib",
                        "durva_tremelimumab",
                        "dato_dxd",
                        "ramucirumab_pembrolizumab",
                    )
                },
            )
        ],
        None,
        ["design.randomization.ratios.docetaxel", "inf"],
    ),
]


@pytest.mark.parametrize("kind, name, edits, design, expected", [pytest.param(*r[1:], id=r[0]) for r in REGRESSIONS])
def test_regression_edit_is_a_clear_validation_error(kind, name, edits, design, expected, tmp_path):
    files, own_design, scenario = _regression_files(kind, name, edits, tmp_path)
    design = own_design or source("design", design)
    shown = f"{kind} {name}: {edits if not isinstance(edits, bytes) else 'raw text edit'}"
    # through the CLI: validate the edited files, then the design against the scenario
    lines = []
    for args in ([*files], [design, "--scenario", scenario]):
        result = _invoke("validate", *args)
        _check_cli(result, [shown])
        lines += result.stderr.splitlines()
    assert lines, f"{shown}: validated"
    assert any(all(e in line for e in expected) for line in lines), f"{shown}: no error line with {expected}: {lines}"
    # through the API: a ConfigError whose problems name the field
    with pytest.raises(ConfigError) as info:
        Spec.load(design, scenario)
    _check_problems(info.value, [shown])
    formatted = [p.format() for p in info.value.problems]
    assert any(all(e in line for e in expected) for line in formatted), formatted


def test_every_shipped_population_is_read_through_a_scenario_that_names_it():
    """A population mutant is loaded only through a scenario whose ``population:`` names it; the
    census's pairing must give each shipped population such a scenario."""
    for path in sorted((ROOT / "scenarios" / "populations").glob("*.yaml")):
        name = path.stem
        usual = OWN_POPULATION.get(name, (POPULATION_SCENARIO, None))[0]
        named = yaml.safe_load((ROOT / "scenarios" / f"{usual}.yaml").read_text())["population"]
        assert named == name, f"population {name} would be read through {usual}, which uses {named}"
