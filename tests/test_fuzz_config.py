"""Fuzzed configuration files never crash: every random edit of a shipped design, scenario or
population file either gives a spec that validates and simulates, or clear validation errors
(a ConfigError naming the field and value; through the CLI, exit status 2 and ``error:`` lines on
stderr, never a Python traceback).

The edits are seeded and deterministic (one numpy generator per case, keyed by the file and the
case number), so a failing case id such as ``design-pioneer_rar-17`` always reproduces; the
assertion message shows the edits that were applied. Edits on the parsed YAML tree (one to three
per file, dumped back to YAML): delete a key; replace a value by one of another type (string,
negative, 0, huge, NaN/inf, list, mapping, null, bool); perturb a number (scaled, negated, out of
[0, 1], fractional counts, 2**31 - 1, 1e300, 1e-300, NaN, inf); reverse a list (looks, stage sizes,
level probabilities) or swap two numbers of a mapping (drop/graduate, superiority/inferiority);
empty a list or mapping; rename a name that the file references elsewhere (an arm, treatment,
marker, level, endpoint) to an unknown one; give a key that is not a string; duplicate a list entry;
copy one part of the file over another. Edits on the raw text (comments kept): truncate it mid-way,
insert random or invalid UTF-8 bytes, control characters, tabs or YAML syntax, delete, duplicate,
swap or garble lines, nest a value hundreds of lists deep, re-encode the file (UTF-16, Latin-1...).

Each edited file goes through ``validate`` on the command line (a design with ``--scenario`` and its
usual scenario; an edited scenario or population, then a design against it), and when it validates
through ``Spec.load`` and ``run_chunk`` on a few trials.

Crashes found by this fuzzer, or by probing the same classes of edit by hand, are kept at the end
as explicit regression cases.
"""

from __future__ import annotations

import copy
import math
import re
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.config import ConfigError, Spec
from platform_sim.runner import run_chunk

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = sorted(p.stem for p in (ROOT / "designs").glob("*.yaml"))
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
POPULATIONS = sorted(p.stem for p in (ROOT / "scenarios" / "populations").glob("*.yaml"))

# The scenario each shipped design is usually run on, and the designs a fuzzed scenario or
# population is run with (cycled over the cases: fast all-comer designs most of the time, and a
# stratified design for the markers it reads). Not the platform design: compiling its strata under
# an edited scenario takes seconds (exact median PFS per stratum and arm); its own file is fuzzed,
# and the regression cases pair it with edited populations.
USUAL_SCENARIO = {"benchmark_four_arm": "benchmark_four_arm"}
DEFAULT_SCENARIO = "pioneer_alternative"
SCENARIO_DESIGNS = {"benchmark_four_arm": ["benchmark_four_arm"]}
DEFAULT_SCENARIO_DESIGNS = ["pioneer_rar", "pioneer_rar", "lungmap_umbrella", "allcomer_rar"]
POPULATION_SCENARIO = "pioneer_alternative"
POPULATION_DESIGNS = ["pioneer_rar", "battle_stratified_rar", "allcomer_rar", "pioneer_rar"]

# Trials simulated per fuzzed spec that validates (the platform design is the slowest).
CHUNK = 5
PLATFORM_CHUNK = 2

# Cases per file: many for the designs that load and simulate in milliseconds, fewer for the
# stratified and platform designs (strata are compiled exactly at load time).
SLOW_DESIGNS = {"adaptive_enrichment", "battle_stratified_rar", "hierarchical_borrowing", "lungmap_umbrella",
                "pioneer_platform"}
N_FAST_DESIGN = 32
N_SLOW_DESIGN = 12
N_SCENARIO = 12
N_POPULATION = 32


# --------------------------------------------------------------------------- edits


class Fuzz:
    """Random edits of one YAML document, drawn from a seeded generator."""

    NAME_POOL = ("unknown_name", "no_such_marker")
    # Replacement values of another type (or an out-of-range value of the same type).
    VALUES = (
        "fuzz", "", "1e3", "-1", -1, -0.5, 0, 0.0, 1, 10**9, 2**63, 1e300, -1e300, math.nan, math.inf, -math.inf,
        [], [1, 2], ["fuzz"], {}, {"fuzz": 1}, None, True, False, 0.5, 1.5,
    )

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, seq):
        seq = list(seq)
        return seq[int(self.rng.integers(len(seq)))] if seq else None

    # ---------------------------------------------------------- tree helpers

    @staticmethod
    def nodes(node, path=()):
        """Every (path, node) of a parsed YAML tree, the root first."""
        yield path, node
        if isinstance(node, dict):
            for k, v in node.items():
                yield from Fuzz.nodes(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from Fuzz.nodes(v, path + (i,))

    @staticmethod
    def get(tree, path):
        for p in path:
            tree = tree[p]
        return tree

    def put(self, tree, path, value):
        self.get(tree, path[:-1])[path[-1]] = value

    # ---------------------------------------------------------- edits of the tree (each returns a description)

    def delete_key(self, tree):
        paths = [p for p, n in self.nodes(tree) if p and isinstance(self.get(tree, p[:-1]), dict)]
        path = self.pick(paths)
        if path is None:
            return None
        del self.get(tree, path[:-1])[path[-1]]
        return f"delete {path}"

    def retype(self, tree):
        path = self.pick([p for p, _ in self.nodes(tree) if p])
        if path is None:
            return None
        value = copy.deepcopy(self.pick(self.VALUES))
        self.put(tree, path, value)
        return f"set {path} = {value!r}"

    def perturb(self, tree):
        paths = [p for p, n in self.nodes(tree) if p and isinstance(n, (int, float)) and not isinstance(n, bool)]
        path = self.pick(paths)
        if path is None:
            return None
        x = self.get(tree, path)
        factor = float(self.rng.choice([0.1, 0.5, 0.9, 1.1, 2.0, 10.0]))
        how = self.pick(["scale", "scale", "scale", "neg", "minus1", "zero", "plus1", "above1", "below0", "times1e6",
                         "div1e6", "one_minus", "half", "int_max", "fraction", "huge", "tiny", "nan", "inf"])
        value = {
            "neg": -x, "minus1": x - 1, "zero": 0, "plus1": x + 1, "above1": 1.0 + abs(x) + 1e-9, "below0": -1e-9,
            "times1e6": x * 10**6, "div1e6": x / 1e6, "one_minus": 1 - x, "half": x / 2, "int_max": 2**31 - 1,
            "fraction": x + 0.5, "huge": 1e300, "tiny": 1e-300, "nan": math.nan, "inf": math.inf,
            # a plausible change that often still validates, so that the simulation sees odd values
            "scale": (max(1, round(x * factor)) if isinstance(x, int) else x * factor),
        }[how]
        self.put(tree, path, value)
        return f"perturb ({how}) {path}: {x!r} -> {value!r}"

    def reverse(self, tree):
        """Reverse a list (increasing looks, stage sizes, level probabilities) or swap two numbers of a
        mapping (thresholds such as drop/graduate, superiority/inferiority)."""
        lists = [p for p, n in self.nodes(tree) if isinstance(n, list) and len(n) >= 2]
        pairs = [p for p, n in self.nodes(tree) if isinstance(n, dict)
                 and sum(isinstance(v, (int, float)) and not isinstance(v, bool) for v in n.values()) >= 2]
        path = self.pick(lists + pairs)
        if path is None:
            return None
        node = self.get(tree, path)
        if isinstance(node, list):
            node.reverse()
            return f"reverse {path}"
        keys = [k for k, v in node.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        i, j = self.rng.choice(len(keys), 2, replace=False)
        a, b = keys[i], keys[j]
        node[a], node[b] = node[b], node[a]
        return f"swap {path}.{a} and .{b}"

    def empty(self, tree):
        path = self.pick([p for p, n in self.nodes(tree) if isinstance(n, (list, dict)) and n])
        if path is None:
            return None
        node = self.get(tree, path)
        node.clear()
        return f"empty {path}"

    def rename_ref(self, tree):
        """Rename one occurrence of a name that the file uses more than once (an arm, treatment,
        marker, level or endpoint referenced elsewhere), or any key or string, to an unknown name."""
        counts: dict[str, int] = {}
        spots = []
        for p, n in self.nodes(tree):
            if p and isinstance(p[-1], str):
                counts[p[-1]] = counts.get(p[-1], 0) + 1
                spots.append(("key", p, p[-1]))
            if isinstance(n, str) and p and p[-1] != "description":
                counts[n] = counts.get(n, 0) + 1
                spots.append(("value", p, n))
        referenced = [s for s in spots if counts[s[2]] > 1]
        spot = self.pick(referenced if referenced and self.rng.random() < 0.8 else spots)
        if spot is None:
            return None
        where, path, name = spot
        new = self.pick(self.NAME_POOL) if self.rng.random() < 0.7 else f"{name}_x"
        if where == "value":
            self.put(tree, path, new)
        else:
            parent = self.get(tree, path[:-1])
            items = list(parent.items())
            parent.clear()
            parent.update({(new if k == name else k): v for k, v in items})
        return f"rename {where} {path}: {name!r} -> {new!r}"

    def duplicate(self, tree):
        path = self.pick([p for p, n in self.nodes(tree) if isinstance(n, list) and n])
        if path is None:
            return None
        node = self.get(tree, path)
        i = int(self.rng.integers(len(node)))
        node.insert(int(self.rng.integers(len(node) + 1)), copy.deepcopy(node[i]))
        return f"duplicate {path}[{i}]"

    def rekey(self, tree):
        """Give a mapping entry a key that is not a string (YAML allows 1:, true:, null:, 2.5:)."""
        paths = [p for p, n in self.nodes(tree) if p and isinstance(self.get(tree, p[:-1]), dict)]
        path = self.pick(paths)
        if path is None:
            return None
        parent, old = self.get(tree, path[:-1]), path[-1]
        new = self.pick([1, 0, True, None, 2.5, -1])
        items = list(parent.items())
        parent.clear()
        parent.update({(new if k == old else k): v for k, v in items})
        return f"rename key {path} -> {new!r}"

    def transplant(self, tree):
        """Replace a value by a copy of another part of the same file."""
        everything = [p for p, _ in self.nodes(tree) if p]
        target, source = self.pick(everything), self.pick(everything)
        if target is None or target[: len(source)] == source:
            return None
        self.put(tree, target, copy.deepcopy(self.get(tree, source)))
        return f"copy {source} into {target}"

    TREE_EDITS = ("delete_key", "retype", "perturb", "reverse", "empty", "rename_ref", "duplicate", "rekey",
                  "transplant")
    TREE_WEIGHTS = (3, 4, 5, 2, 1, 4, 2, 1, 1)

    def edit_tree(self, tree) -> list[str]:
        done = []
        n_edits = int(self.pick([1, 1, 1, 2, 3]))
        weights = np.array(self.TREE_WEIGHTS, dtype=float)
        for _ in range(50):  # an edit can find nothing to act on (e.g. once the whole file is emptied)
            if len(done) == n_edits:
                break
            name = self.TREE_EDITS[int(self.rng.choice(len(weights), p=weights / weights.sum()))]
            what = getattr(self, name)(tree)
            if what is not None:
                done.append(what)
        return done

    # ---------------------------------------------------------- edits of the raw text

    GARBAGE = (b"\t", b"\x00", b"\xff\xfe", b"\xc3\x28", b"\x80", b": : -", b"[", b"{", b"}", b"&a *a", b"*undefined",
               b"!!python/object/apply:os.system ['true']", b"<<: *x", b"%YAML 9.9", b"---\n- x\n", b"\x1b[31m",
               b"key: [unclosed", b"'", b'"\\q"', b"\xe2\x80\x8b", b"? [a, b]\n: c\n")

    def edit_text(self, raw: bytes) -> tuple[bytes, str]:
        lines = raw.split(b"\n")
        how = self.pick(["truncate", "insert", "insert", "tab", "delete_line", "duplicate_line", "garble_line",
                         "swap_lines", "reencode", "random_bytes", "nest"])
        if how == "truncate":
            at = int(self.rng.integers(len(raw)))
            return raw[:at], f"truncate the text at byte {at} of {len(raw)}"
        if how == "insert":
            at = int(self.rng.integers(len(raw) + 1))
            junk = self.pick(self.GARBAGE)
            return raw[:at] + junk + raw[at:], f"insert {junk!r} at byte {at}"
        if how == "random_bytes":
            at = int(self.rng.integers(len(raw) + 1))
            junk = bytes(self.rng.integers(0, 256, int(self.rng.integers(1, 9))).astype(np.uint8))
            return raw[:at] + junk + raw[at:], f"insert random bytes {junk!r} at byte {at}"
        if how == "nest":  # a value nested deeper than the YAML composer's recursion allows, or not quite
            i = int(self.rng.integers(len(lines)))
            depth = int(self.pick([20, 500, 5000]))
            head = lines[i].split(b":")[0] if b":" in lines[i] else b"nested"
            lines[i] = head + b": " + b"[" * depth + b"1" + b"]" * depth
            return b"\n".join(lines), f"nest line {i + 1}'s value in {depth} lists"
        if how == "tab":
            i = int(self.rng.integers(len(lines)))
            lines[i] = b"\t" + lines[i]
            return b"\n".join(lines), f"indent line {i + 1} with a tab"
        if how == "delete_line":
            i = int(self.rng.integers(len(lines)))
            del lines[i]
            return b"\n".join(lines), f"delete line {i + 1}"
        if how == "duplicate_line":
            i = int(self.rng.integers(len(lines)))
            lines.insert(i, lines[i])
            return b"\n".join(lines), f"duplicate line {i + 1}"
        if how == "garble_line":
            i = int(self.rng.integers(len(lines)))
            junk = self.pick(self.GARBAGE)
            lines[i] = lines[i][: len(lines[i]) // 2] + junk
            return b"\n".join(lines), f"garble line {i + 1} with {junk!r}"
        if how == "swap_lines":
            i = int(self.rng.integers(max(len(lines) - 1, 1)))
            lines[i:i + 2] = lines[i:i + 2][::-1]
            return b"\n".join(lines), f"swap lines {i + 1} and {i + 2}"
        encoding = self.pick(["utf-16", "latin-1", "utf-8-sig", "cp1252"])
        text = raw.decode("utf-8", errors="replace")
        return text.encode(encoding, errors="replace"), f"re-encode the file as {encoding}"


def fuzz_file(source: Path, seed: tuple) -> tuple[bytes, list[str]]:
    """The bytes of a randomly edited copy of ``source`` and the edits made: mostly edits of the
    parsed tree dumped back to YAML, sometimes edits of the raw text (comments kept)."""
    fz = Fuzz(np.random.default_rng(list(seed)))
    raw = source.read_bytes()
    if fz.rng.random() < 0.25:
        data, what = fz.edit_text(raw)
        return data, [what]
    tree = yaml.safe_load(raw)
    edits = fz.edit_tree(tree)
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode(), edits


# --------------------------------------------------------------------------- checks


# The field a problem names: the file's kind, then keys and list indices ("design.arms[2].treatment";
# a key is reported as written, so it may hold any character).
FIELD_PATH = re.compile(r"(design|scenario|population|file)([.\[].*)?", re.S)
ERROR_LINE = re.compile(r"error: (\S+: )?(design|scenario|population|file)([.\[][^\n]*?)?: \S[^\n]*")


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _check_cli(result, edits: list[str]) -> None:
    """Exit status 0 or 2, ``error:`` lines on stderr when 2, and never an exception or a traceback."""
    shown = f"edits: {edits}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(exc))
        pytest.fail(f"validate crashed with {type(exc).__name__}: {str(exc)[:300]}\n{shown}\n{tb}")
    assert result.exit_code in (0, 2), shown
    assert "Traceback" not in result.output, shown
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        # one line per problem: "error: FILE: field.path: what is wrong (got VALUE)"
        assert lines and all(ERROR_LINE.fullmatch(line) for line in lines), shown


def _check_problems(exc: ConfigError, edits: list[str]) -> None:
    assert exc.problems, edits
    for p in exc.problems:
        assert FIELD_PATH.fullmatch(p.path) and p.message and "\n" not in p.format(), (p, edits)


def _check_runs(design: Path | str, scenario: Path | str, edits: list[str]) -> bool:
    """A spec that validated loads and simulates a tiny chunk; only a ConfigError may stop it."""
    try:
        spec = Spec.load(design, scenario)
        n = PLATFORM_CHUNK if spec.design.platform is not None else CHUNK
        results = run_chunk(spec, np.random.SeedSequence(1), n)
    except ConfigError as exc:
        _check_problems(exc, edits)
        return False
    except Exception as exc:  # noqa: BLE001 - any other exception is the crash this test looks for
        tb = "".join(traceback.format_exception(exc))
        pytest.fail(f"{design} on {scenario}: simulating crashed with {type(exc).__name__}: {str(exc)[:300]}\n"
                    f"edits: {edits}\n{tb}")
    assert results.n_trials == n, edits
    return True


def _pick(options: list[str], case: int) -> str:
    return options[case % len(options)]


def _check_pipeline(files: list[Path], design: Path | str, scenario: Path | str, edits: list[str]) -> bool:
    """What a user does: ``validate`` the edited files, then ``validate DESIGN --scenario SCENARIO``,
    then run the spec (a tiny chunk) when it validates. True when the spec was simulated."""
    result = _invoke("validate", *files)
    _check_cli(result, edits)
    if result.exit_code != 0:
        return False
    if files != [design]:  # an edited scenario or population: the pair check through the CLI
        result = _invoke("validate", design, "--scenario", scenario)
        _check_cli(result, edits)
        if result.exit_code != 0:
            return False
    return _check_runs(design, scenario, edits)


def _write_case(kind: str, name: str, data: bytes, tmp_path: Path) -> tuple[list[Path], Path | None, Path | str]:
    """Write an edited file; return the files to validate and the design and scenario to pair.
    An edited population is found through a copy of its usual scenario in the same folder."""
    if kind == "design":
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        return [path], path, USUAL_SCENARIO.get(name, DEFAULT_SCENARIO)
    if kind == "scenario":
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        return [path], None, path
    (tmp_path / "populations").mkdir(exist_ok=True)
    path = tmp_path / "populations" / f"{name}.yaml"
    path.write_bytes(data)
    scenario = tmp_path / f"{POPULATION_SCENARIO}.yaml"
    scenario.write_bytes((ROOT / "scenarios" / f"{POPULATION_SCENARIO}.yaml").read_bytes())
    return [path, scenario], None, scenario


def _source(kind: str, name: str) -> Path:
    folder = {"design": "designs", "scenario": "scenarios", "population": "scenarios/populations"}[kind]
    return ROOT / folder / f"{name}.yaml"


# --------------------------------------------------------------------------- the fuzzed cases


def _cases():
    out = []
    for name in DESIGNS:
        n = N_SLOW_DESIGN if name in SLOW_DESIGNS else N_FAST_DESIGN
        out += [pytest.param("design", name, i, id=f"design-{name}-{i}") for i in range(n)]
    for name in SCENARIOS:
        out += [pytest.param("scenario", name, i, id=f"scenario-{name}-{i}") for i in range(N_SCENARIO)]
    for name in POPULATIONS:
        out += [pytest.param("population", name, i, id=f"population-{name}-{i}") for i in range(N_POPULATION)]
    return out


_KIND_NUMBER = {"design": 1, "scenario": 2, "population": 3}


def _seed(kind: str, name: str, case: int) -> tuple:
    return (_KIND_NUMBER[kind], sum(name.encode()) * 1009 + len(name), case)


def _paired_design(kind: str, name: str, case: int) -> Path:
    if kind == "scenario":
        design = _pick(SCENARIO_DESIGNS.get(name, DEFAULT_SCENARIO_DESIGNS), case)
    else:
        design = _pick(POPULATION_DESIGNS, case)
    return _source("design", design)


def run_case(kind: str, name: str, case: int, tmp_path: Path) -> bool:
    """Fuzz one file, validate it through the CLI, and simulate it when it validates."""
    data, edits = fuzz_file(_source(kind, name), _seed(kind, name, case))
    files, design, scenario = _write_case(kind, name, data, tmp_path)
    return _check_pipeline(files, design or _paired_design(kind, name, case), scenario, edits)


@pytest.mark.parametrize("kind, name, case", _cases())
def test_fuzzed_file_validates_or_fails_cleanly(kind, name, case, tmp_path):
    run_case(kind, name, case, tmp_path)


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
        data = yaml.safe_dump(_apply(yaml.safe_load(_source(kind, name).read_text()), edits), sort_keys=False).encode()
    return _write_case(kind, name, data, tmp_path)


def _raw(kind: str, name: str, at: int, junk: bytes) -> bytes:
    raw = _source(kind, name).read_bytes()
    return raw[:at] + junk + raw[at:]


def _nested(kind: str, name: str, key: str, depth: int) -> bytes:
    text = _source(kind, name).read_bytes()
    return text.replace(f"{key}:".encode(), f"{key}: {'[' * depth}1{']' * depth}\nunused_{key}:".encode(), 1)


_GROUPS_34 = [{"name": f"g{i}", "when": {"atm": "positive"}, "arms": ["docetaxel", "durva_ceralasertib"]}
              for i in range(33)] + [{"name": "other", "when": "other",
                                     "arms": ["docetaxel", "durva_tremelimumab", "dato_dxd", "ramucirumab_pembrolizumab"]}]

# (id, kind, file, edits, design paired with an edited scenario/population, what the error names)
REGRESSIONS = [
    # fuzzed (allcomer_fixed-3): UnicodeDecodeError from Path.read_text -> config/load.py reads bytes and
    # reports "not UTF-8 text: line, column" with the bytes.
    ("non_utf8_bytes", "design", "allcomer_fixed", _raw("design", "allcomer_fixed", 422, b"\xc9\x8d]u\xdf\x85\xb6"),
     None, ["not UTF-8 text: line 7, column", "got b'\\xb6'"]),
    ("latin1_byte", "scenario", "benchmark_four_arm", _raw("scenario", "benchmark_four_arm", 40, b"\xe9"),
     None, ["not UTF-8 text: line 1", "got b'\\xe9'"]),
    # fuzzed (adaptive_enrichment-17): PyYAML's ReaderError message spans two lines, so stderr had a line
    # without "error:" -> one line with the line and column of the character.
    ("nul_character", "design", "adaptive_enrichment", _raw("design", "adaptive_enrichment", 5, b"\x00"),
     None, ["malformed YAML: line 1, column 6: character #x0000 is not allowed"]),
    ("escape_character", "population", "post_ici_nsclc", _raw("population", "post_ici_nsclc", 815, b"\x1b[31m"),
     "pioneer_rar", ["malformed YAML: line", "#x001b"]),
    # fuzzed (allcomer_fixed-3010, -3013): RecursionError in yaml.safe_load -> reported as malformed YAML.
    ("deep_nesting", "design", "allcomer_fixed", _nested("design", "allcomer_fixed", "control", 1000),
     None, ["malformed YAML: collections are nested too deeply"]),
    ("deep_nesting_500", "design", "pioneer_rar", _nested("design", "pioneer_rar", "description", 500),
     None, ["malformed YAML: collections are nested too deeply"]),
    # fuzzed (allcomer_fixed-112, hierarchical_borrowing-22, adaptive_enrichment-24, benchmark_four_arm-10):
    # a maximum sample size of 4e8 or 2**31 - 1 patients validated, then the run allocated arrays for
    # them, hung, or stopped with RuntimeError("the screening funnel randomizes almost nobody") after
    # 10,000 blocks; the look shorthand built range(first, 10**9, every) -> at most MAX_PATIENTS (100,000).
    ("huge_sample_size", "design", "allcomer_fixed", [(("looks", "randomized_n", 0), 400_000_000)],
     None, ["design.looks.randomized_n", "400000000", "100000"]),
    ("int_max_last_look", "design", "adaptive_enrichment", [(("looks", "randomized_n", 6), 2**31 - 1)],
     None, ["design.looks.randomized_n", "2147483647"]),
    ("huge_look_shorthand", "design", "benchmark_four_arm", [(("looks", "last"), 10**9), (("looks", "every"), 1)],
     None, ["design.looks: last (1000000000) exceeds"]),
    # probe: a screening funnel that randomizes nobody validated; a stratified design then crashed in
    # validate --scenario (ValueError: need at least one array to concatenate, strata.reported_distribution)
    # and other designs in the run (RuntimeError in outcomes.enrol) -> config/population.py.
    ("all_ineligible", "population", "post_ici_nsclc", [(("screening", "ineligible"), 1.0)],
     "battle_stratified_rar", ["population.screening.ineligible", "no screened patient is ever randomized"]),
    ("all_lost_while_waiting", "population", "post_ici_nsclc", [(("screening", "loss_hazard_per_day"), 1e300)],
     "lungmap_umbrella", ["population.screening.loss_hazard_per_day", "1e+300"]),
    # (a turnaround of 1e300 days lost everybody the same way; waits are now at most ten years, and an
    # sdlog of 1e300 with a median of 0 days gave NaN waits (0 x inf) and a NaN funnel -> at most 5)
    ("endless_turnaround", "population", "post_ici_nsclc",
     [(("screening", "tissue", "turnaround", "median_days"), 1e300)],
     "pioneer_platform", ["population.screening.tissue.turnaround.median_days", "1e+300"]),
    ("turnaround_sdlog_huge", "population", "post_ici_nsclc",
     [(("screening", "tissue", "turnaround", "sdlog"), 1e300), (("screening", "tissue", "turnaround", "median_days"), 0)],
     "pioneer_rar", ["population.screening.tissue.turnaround.sdlog", "1e+300"]),
    ("no_tissue_or_plasma_result", "population", "post_ici_nsclc",
     [(("screening", "tissue", "failure"), 1.0), (("screening", "liquid", "detectable"), 0.0)],
     "pioneer_rar", ["population.screening.tissue.failure", "failure = 1.0"]),
    # probe: a funnel that randomizes 1 in 10,000 screened patients: RuntimeError in outcomes.enrol after
    # 2.5 million screened patients -> config/crosscheck.py (_capacity_problems) in the pair check.
    ("almost_all_ineligible", "population", "post_ici_nsclc", [(("screening", "ineligible"), 0.9999)],
     "pioneer_rar", ["design.looks.randomized_n", "would screen about", "1000000"]),
    ("almost_all_ineligible_strata", "population", "post_ici_nsclc", [(("screening", "ineligible"), 0.9999)],
     "battle_stratified_rar", ["design.looks.randomized_n", "into its strata"]),
    # probe: a platform under a huge accrual rate or duration: RuntimeError in outcomes.enrol, or a hang
    # -> config/crosscheck.py (_capacity_problems).
    ("platform_huge_accrual", "population", "post_ici_nsclc",
     [(("accrual", "regions", "europe", "rate_per_month"), 1e300)],
     "pioneer_platform", ["design.platform.max_duration_months", "would be randomized"]),
    # probe: calendar analyses every 3e-6 months (16 million of them) or for 1e5 months: a run that
    # never ends -> config/timeline_checks.py (MAX_ANALYSES = 10,000).
    ("platform_analyses_every_3e-6_months", "design", "pioneer_platform",
     [(("platform", "interims", "every_months"), 3e-6)], None, ["design.platform.interims.every_months", "3e-06"]),
    # (a maximum duration of 1e5 months scheduled too many analyses; durations are now at most 100 years)
    ("platform_duration_1e5_months", "design", "pioneer_platform", [(("platform", "max_duration_months"), 1e5)],
     None, ["design.platform.max_duration_months", "less than or equal to 1200"]),
    # probe: ValueError("at most 32 strata are supported") raised from compile_strata inside
    # validate --scenario -> strata.name_problems (strata.by) and config/strata.py (groups).
    ("64_strata", "design", "hierarchical_borrowing",
     [(("strata", "by"), ["histology", "kras", "stk11", "keap1", "smarca4", "atm"])],
     None, ["design.strata.by", "defines 64 strata"]),
    ("34_groups", "design", "lungmap_umbrella", [(("strata", "groups"), _GROUPS_34)],
     None, ["design.strata", "at most 32 groups"]),
    # probe: hierarchical borrowing priors outside what its grid handles: ValueError from scipy's
    # roots_jacobi, OverflowError in engine_grid, ZeroDivisionError in the beta kernel, or
    # HierarchicalPrior's own ValueError for NaN -> bounds in config/strata.py.
    ("borrowing_mu_a_tiny", "design", "hierarchical_borrowing", [(("strata", "borrowing", "mu_a"), 1e-300)],
     None, ["design.strata.borrowing.mu_a", "1e-300"]),
    ("borrowing_mu_b_huge", "design", "hierarchical_borrowing", [(("strata", "borrowing", "mu_b"), 1e300)],
     None, ["design.strata.borrowing.mu_b", "1e+300"]),
    ("borrowing_log_kappa_mean_huge", "design", "hierarchical_borrowing",
     [(("strata", "borrowing", "log_kappa_mean"), 1e300)], None, ["design.strata.borrowing.log_kappa_mean"]),
    ("borrowing_log_kappa_mean_-50", "design", "hierarchical_borrowing",
     [(("strata", "borrowing", "log_kappa_mean"), -50)], None, ["design.strata.borrowing.log_kappa_mean", "-50"]),
    ("borrowing_log_kappa_mean_nan", "design", "hierarchical_borrowing",
     [(("strata", "borrowing", "log_kappa_mean"), math.nan)], None, ["design.strata.borrowing.log_kappa_mean", "nan"]),
    ("borrowing_log_kappa_sd_huge", "design", "hierarchical_borrowing",
     [(("strata", "borrowing", "log_kappa_sd"), 1e300)], None, ["design.strata.borrowing.log_kappa_sd"]),
    # probe: a beta prior of 1e300 pseudo-patients: ZeroDivisionError in posterior/beta.py -> at most 1e6;
    # inf validated as well -> finite.
    ("prior_huge", "design", "pioneer_rar", [(("prior", "b"), 1e300)], None, ["design.prior.b", "1e+300"]),
    ("arm_prior_huge", "design", "pioneer_rar", [(("arms", 0, "prior"), {"a": 1, "b": 1e300})],
     None, ["design.arms[0].prior.b"]),
    ("prior_inf", "design", "benchmark_four_arm", [(("prior", "a"), math.inf)], None, ["design.prior.a", "inf"]),
    # fuzzed (pioneer_platform-7050): graduation signatures emptied to {}: ValueError (matmul dimension
    # mismatch) in timeline._analyse -> config/timeline.py requires at least one signature.
    ("platform_no_signatures", "design", "pioneer_platform", [(("platform", "graduation", "signatures"), {})],
     None, ["design.platform.graduation.signatures", "names no signature"]),
    # one-edit sweep: a sub-study's stage sizes emptied to []: IndexError in StratumGroup.cap -> config/strata.py
    # requires at least one stage.
    ("group_without_stages", "design", "lungmap_umbrella", [(("strata", "groups", 3, "looks"), [])],
     None, ["design.strata.groups[3].looks", "at least 1 item"]),
    # probe: the control alone with control_allocation sqrt_k: ZeroDivisionError in
    # crosscheck._randomization_problems (sqrt(0) / (sqrt(0) + 0)).
    ("control_alone_sqrt_k", "design", "pioneer_rar", [(("arms",), [{"name": "docetaxel", "treatment": "docetaxel"}])],
     None, ["design.arms", "needs at least two arms"]),
    # probe: non-finite softening and allocation ratios validated and simulated with NaN allocations.
    ("softening_inf", "design", "pioneer_rar", [(("randomization", "softening"), math.inf)],
     None, ["design.randomization.softening", "inf"]),
    ("ratios_inf", "design", "allcomer_fixed",
     [(("randomization", "ratios"), {a: math.inf for a in ("docetaxel", "durva_ceralasertib", "durva_tremelimumab",
                                                           "dato_dxd", "ramucirumab_pembrolizumab")})],
     None, ["design.randomization.ratios.docetaxel", "inf"]),
]


@pytest.mark.parametrize("kind, name, edits, design, expected", [pytest.param(*r[1:], id=r[0]) for r in REGRESSIONS])
def test_regression_edit_is_a_clear_validation_error(kind, name, edits, design, expected, tmp_path):
    files, own_design, scenario = _regression_files(kind, name, edits, tmp_path)
    design = own_design or _source("design", design)
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
