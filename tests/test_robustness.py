"""Regression tests of the robustness defects: every input gets a run or a clear refusal, and no
fault loses or silently changes results.

Each test names the defect it guards against: a traceback or a hang on some input, an invalid
input accepted, or results overwritten, changed or read from outside the run directory. The
fuzz census (tests/test_fuzz_config.py) and the fault census (tests/test_scale.py) try the same
classes of input and fault at random; these are the cases found, kept explicit.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from platform_sim.cli import main
from platform_sim.config import ConfigError
from platform_sim.config.load import MAX_YAML_BYTES, MAX_YAML_VALUES, parse_design
from platform_sim.results import EQUIVALENT, INELIGIBLE, INFERIOR
from platform_sim.runner import run
from platform_sim.spec import Spec

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
    per_stratum = results.extras["stratum_status"][:, 1, :]  # (trial, stratum) of the second arm
    everywhere = ((per_stratum == EQUIVALENT) | (per_stratum == INELIGIBLE)).all(axis=1) & (
        per_stratum == EQUIVALENT
    ).any(axis=1)
    assert everywhere.sum() >= 30, per_stratum  # the case under test happens in most trials
    assert (results.status[everywhere, 1] == EQUIVALENT).all(), results.status[everywhere]
    assert not (results.status[everywhere, 1] == INFERIOR).any()


# --------------------------------------------------------------------------- YAML input


def _laughs(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" file: each alias list repeats the one before ``width`` times."""
    lines = ["name: laughs", f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _merge_laughs(levels: int = 9, width: int = 9) -> str:
    """The same with merge keys: each mapping merges the one before ``width`` times."""
    keys = ", ".join(f"k{i}: {i}" for i in range(width))
    lines = ["name: merges", f"m0: &m0 {{{keys}}}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * width)}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (_laughs(), ["file.l9", "expand the collection there to more than 100,000 values"]),
        (_merge_laughs(), ["file.m9", "merge keys (<<)"]),
        ("arms: &a [1, *a]\n", ["file.arms", "an alias refers to a collection that contains it"]),
    ],
    ids=["billion_laughs", "merge_key_laughs", "recursive_alias"],
)
def test_alias_expansion_is_bounded(tmp_path, text, expected):
    """A billion-laughs file (3.9e8 values once expanded) made validate hang."""
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    start = time.perf_counter()
    result = invoke("validate", path)
    assert time.perf_counter() - start < 10
    refused(result, str(path), "malformed YAML", *expected)


def test_aliases_within_the_bound_are_read(tmp_path):
    """Aliases and merge keys are YAML a user may write: within the bound they work."""
    text = (ROOT / "designs" / "pioneer_rar.yaml").read_text()
    assert "prior: {a: 1, b: 1}" in text
    text = text.replace("prior: {a: 1, b: 1}", "prior: *uniform", 1).replace(
        "{name: durva_oleclumab, treatment: durva_oleclumab}",
        "{name: durva_oleclumab, treatment: durva_oleclumab, prior: &uniform {a: 1, b: 1}}",
        1,
    )
    path = _write(tmp_path, "aliased.yaml", text)
    spec = Spec.load(path, "pioneer_alternative")
    assert spec.design.arms[1].prior == spec.design.prior
    # 9^3 values once expanded: read (and refused only for not being a design)
    assert 9**3 * 2 < MAX_YAML_VALUES
    small = _write(tmp_path, "small.yaml", _laughs(3, 9))
    refused(invoke("validate", small), str(small), "is neither a design")


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_duplicated_key_is_an_error_naming_the_key_and_lines(tmp_path):
    """A key given twice silently kept the last value."""
    text = (ROOT / "designs" / "pioneer_rar.yaml").read_text()
    assert "\ndecisions:\n" in text
    twice = text.replace("\ndecisions:\n", "\ndecisions:\n  superiority: 0.9\n", 1)
    path = _write(tmp_path, "twice.yaml", twice)
    first, second = [i + 1 for i, row in enumerate(twice.splitlines()) if row.startswith("  superiority:")][:2]
    line = refused(
        invoke("validate", path),
        str(path),
        "file.decisions.superiority",
        "duplicate key 'superiority'",
        f"at line {second}",
        f"first given at line {first}",
    )
    assert line.startswith(f"error: {path}: ")
    with pytest.raises(ConfigError) as info:
        Spec.load(path, "pioneer_alternative")
    assert info.value.problems[0].path == "design.decisions.superiority"
    # a merged mapping may be overridden by the mapping's own keys: that is not a duplicate
    merged = _write(
        tmp_path, "merged.yaml", text.replace("prior: {a: 1, b: 1}", "prior: {<<: {a: 2, b: 2}, a: 1, b: 1}")
    )
    assert Spec.load(merged, "pioneer_alternative").design.prior.a == 1


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        (
            "design",
            "name: x\narms: !!python/object/apply:os.system ['echo owned']\n",
            "could not determine a constructor",
        ),
        ("design", "name: !!python/name:os.system\narms: []\n", "could not determine a constructor"),
        ("design", "", "the file is empty"),
        ("design", "# nothing but a comment\n", "the file is empty"),
        ("scenario", b"name: caf\xe9\n", "not UTF-8 text: line 1, column 10"),
        ("design", "name: x\n" + "#" * (MAX_YAML_BYTES + 1) + "\n", "larger than 1,000,000 bytes"),
    ],
    ids=["python_tag", "python_name_tag", "empty", "comment_only", "latin1", "too_large"],
)
def test_unsafe_empty_or_oversized_files_are_refused(tmp_path, kind, text, expected):
    path = _write(tmp_path, "input.yaml", text)
    result = invoke("run", f"--{kind}", path, "--n-sims", 5)
    refused(result, str(path), expected)
    assert not (tmp_path / "owned").exists()


@pytest.mark.parametrize("option", ["--design", "--scenario"])
def test_a_directory_in_place_of_a_file(tmp_path, option):
    folder = tmp_path / "looks_like.yaml"
    folder.mkdir()
    refused(invoke("run", option, folder, "--n-sims", 5), f"error: {folder}: ", "is a directory, not a file")
    refused(invoke("validate", folder), f"error: {folder}: ", "is a directory, not a file")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "kind, path, value",
    [
        ("scenario", ("dropout",), {"probability": True, "before_weeks": 12}),
        ("scenario", ("treatments", "docetaxel", "outcomes", "orr", "rate"), True),
        ("design", ("decisions", "superiority"), True),
        ("design", ("looks", "randomized_n"), [40, True, 120]),
        ("design", ("prior", "b"), False),
        ("design", ("control_allocation",), {"rule": "fixed", "share": {True: 0.4, 2: 0.35, 3: 0.3}}),
    ],
    ids=["dropout_probability", "rate", "superiority", "look_list_item", "prior_false", "share_key"],
)
def test_a_yaml_boolean_in_a_number_field_is_an_error(tmp_path, kind, path, value):
    """`dropout.probability: true` was read as 1: every patient dropped out."""
    data = shipped(kind, "pioneer_rar" if kind == "design" else "pioneer_alternative")
    if kind == "scenario" and path[0] == "treatments":
        data["treatments"]["docetaxel"]["outcomes"]["orr"] = {"rate": True}
    node = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    text = yaml.safe_dump(data, sort_keys=False)
    file = _write(tmp_path, f"{kind}.yaml", text)
    field = ".".join((kind, *path))
    refused(invoke("validate", file), str(file), field, "a yes/no value", "where a number is expected")


def test_yes_no_switches_still_take_booleans(build_spec):
    design = shipped("design", "pioneer_rar")
    design["decisions"]["futility"]["only_first_control"] = True
    assert build_spec(design, shipped("scenario", "pioneer_alternative")).design.decisions.futility.only_first_control


def test_a_marker_listed_twice_in_strata_by_is_an_error_without_a_scenario(tmp_path):
    design = shipped("design", "hierarchical_borrowing")
    design["strata"]["by"] = ["stk11_or_keap1", "trop2_nmr", "stk11_or_keap1"]
    file = _write(tmp_path, "twice.yaml", yaml.safe_dump(design))
    refused(invoke("validate", file), str(file), "design.strata.by", "lists ['stk11_or_keap1'] more than once")


@pytest.mark.parametrize(
    "path, value, bound",
    [
        (("treatments", "durva_oleclumab", "outcomes", "pfs", "hazard_ratio"), 1e308, "less than or equal to 1000"),
        (("treatments", "durva_oleclumab", "outcomes", "orr", "odds_ratio"), 1e4, "less than or equal to 1000"),
        (
            ("treatments", "durva_oleclumab", "outcomes", "pfs", "hazard_ratios"),
            {"atm": 1e308},
            "less than or equal to 1000",
        ),
        (("treatments", "docetaxel", "outcomes", "pfs", "median_months"), 1e308, "less than or equal to 1200"),
        (("dropout",), {"probability": 0.1, "before_weeks": 1e6}, "less than or equal to 5217"),
        (("endpoints", "dcr12", "weeks"), 1e308, "less than or equal to 5217"),
        (("time_trend",), {"orr": {"per_year": 1e308}}, "less than or equal to 10"),
    ],
    ids=[
        "hazard_ratio",
        "odds_ratio",
        "marker_hazard_ratio",
        "median_months",
        "dropout_weeks",
        "landmark_weeks",
        "time_trend",
    ],
)
def test_ratios_and_times_have_upper_bounds(tmp_path, path, value, bound):
    """Hazard ratios, odds ratios and times had no upper bound: 1e308 overflowed."""
    data = shipped("scenario", "pioneer_alternative")
    node = data
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    file = _write(tmp_path, "huge.yaml", yaml.safe_dump(data, sort_keys=False))
    refused(invoke("validate", file), str(file), "scenario." + ".".join(path), bound)


@pytest.mark.parametrize("field", ["max_duration_months", "follow_up_months", "assessment_weeks"])
def test_platform_times_have_upper_bounds(tmp_path, field):
    design = shipped("design", "pioneer_platform")
    design["platform"][field] = 1e308
    file = _write(tmp_path, "huge.yaml", yaml.safe_dump(design, sort_keys=False))
    refused(invoke("validate", file), str(file), f"design.platform.{field}", "less than or equal to")


# --------------------------------------------------------------------------- changing a loaded design


@pytest.fixture(scope="module")
def rar():
    return Spec.load("pioneer_rar", "pioneer_alternative")


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_replace_validates_the_changed_design_like_a_file(rar):
    d = rar.design
    stricter = d.replace(decisions__superiority=0.995)
    assert stricter.decisions.superiority == 0.995 and d.decisions.superiority != 0.995
    assert stricter.replace(decisions__superiority=d.decisions.superiority) == d
    with pytest.raises(ValueError) as info:
        d.replace(decisions__superiority=1.7)
    assert str(info.value) == "design.decisions.superiority: Input should be less than 1 (got 1.7)"
    # the whole-design checks (config/crosscheck.py) run too
    with pytest.raises(ConfigError) as info:
        d.replace(decisions__inferiority=0.995)
    assert "design.decisions.inferiority: look 0: inferiority threshold 0.995 must be below the superiority" in str(
        info.value
    )
    with pytest.raises(ConfigError, match=r"design.arms\[7\]: is not an item of the list \(4 items\)"):
        d.replace(arms__7__max_n=10)
    with pytest.raises(ConfigError, match="design.decisions.superiorty: Extra inputs are not permitted"):
        d.replace(decisions__superiorty=0.9)
    assert d.replace(arms__1__max_n=50).arms[1].max_n == 50
    with pytest.raises(ConfigError, match=r"design.platform: is not set"):
        d.replace(platform__max_duration_months=12)


def test_model_copy_with_an_update_is_validated_too(rar):
    """model_copy(update=...) skipped validation: superiority 1.7 was accepted and ran."""
    d = rar.design
    with pytest.raises(ConfigError, match="superiority: Input should be less than 1"):
        d.model_copy(update={"decisions": d.decisions.model_copy(update={"superiority": 1.7})})
    with pytest.raises(ConfigError, match="superiority: Input should be less than 1"):
        d.model_copy(update={"decisions": {**d.decisions.model_dump(), "superiority": 1.7}})
    assert d.model_copy(update={"decisions__superiority": 0.995}).decisions.superiority == 0.995
    assert d.model_copy() == d and d.model_copy(deep=True) == d


def test_scenario_replace(rar):
    s = rar.scenario
    with pytest.raises(ConfigError, match=r"scenario.dropout.probability: a yes/no value \(true\)"):
        s.replace(dropout={"probability": True, "before_weeks": 12})
    with pytest.raises(ConfigError, match="scenario.treatments.docetaxel.outcomes.orr.rate: Input should be less"):
        s.replace(treatments__docetaxel__outcomes__orr__rate=1.5)
    changed = s.replace(treatments__docetaxel__outcomes__orr__rate=0.2)
    assert changed.treatments["docetaxel"].outcome("orr").rate == 0.2
    spec = Spec.from_models(rar.design, changed)
    assert spec.spec_hash != rar.spec_hash


# --------------------------------------------------------------------------- beta priors


@pytest.mark.parametrize("prior", [{"a": 0.49, "b": 1}, {"a": 1, "b": 0.051}])
def test_beta_prior_shapes_below_one_half_are_refused(tmp_path, prior):
    """Shapes below 1/2 were accepted, where the exact posterior probabilities are inaccurate
    (tests/test_posterior.py measures the error)."""
    design = shipped("design", "pioneer_rar")
    design["prior"] = prior
    file = _write(tmp_path, "tiny_prior.yaml", yaml.safe_dump(design, sort_keys=False))
    field = "a" if prior["a"] < 0.5 else "b"
    refused(invoke("validate", file), str(file), f"design.prior.{field}", "greater than or equal to 0.5")
    design["prior"] = {"a": 0.5, "b": 0.5}  # Jeffreys' prior is accepted
    assert parse_design(design).prior.a == 0.5


# --------------------------------------------------------------------------- paths in configs


def _scenario_naming(tmp_path: Path, ref: str) -> Path:
    data = shipped("scenario", "pioneer_alternative")
    data["population"] = ref
    return _write(tmp_path, "scenario.yaml", yaml.safe_dump(data, sort_keys=False))


def test_population_file_is_found_next_to_the_scenario(tmp_path):
    population = (ROOT / "scenarios" / "populations" / "post_ici_nsclc.yaml").read_text()
    (tmp_path / "mine").mkdir()
    _write(tmp_path / "mine", "cohort.yaml", population.replace("name: post_ici_nsclc", "name: cohort", 1))
    for ref in ("mine/cohort.yaml", "mine/cohort", "post_ici_nsclc"):  # relative paths, and a shipped name
        spec = Spec.load("pioneer_rar", _scenario_naming(tmp_path, ref))
        assert spec.scenario.population.name == ("post_ici_nsclc" if ref == "post_ici_nsclc" else "cohort")
    # the run directory keeps a copy that its scenario copy finds
    out = tmp_path / "run"
    result = invoke("run", "--scenario", tmp_path / "scenario.yaml", "--n-sims", 4, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("../outside.yaml", "points outside the scenario's folder"),
        ("../../../../../../../../etc/passwd", "points outside the scenario's folder"),
        ("/etc/passwd", "not an absolute path"),
        ("populations/../../outside", "points outside the scenario's folder"),
        ("link.yaml", "points outside the scenario's folder"),
        ("folder", "is a directory, not a file"),
        ("x" * 5000, "cannot be opened"),
        ("no_such_population", "no such file in the scenario's folder"),
    ],
)
def test_population_path_cannot_leave_the_scenario_folder(tmp_path, ref, expected):
    """Paths in configs are resolved relative to the config file and cannot escape it."""
    home = tmp_path / "scenarios"
    home.mkdir()
    population = (ROOT / "scenarios" / "populations" / "post_ici_nsclc.yaml").read_text()
    _write(tmp_path, "outside.yaml", population)  # a valid population, but outside the scenario's folder
    (home / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    (home / "folder").mkdir()
    scenario = _scenario_naming(home, ref)
    line = refused(invoke("validate", scenario), f"error: {scenario}: scenario.population: ", expected)
    assert len(line) < 600


# --------------------------------------------------------------------------- loading a stratified spec


def test_spec_load_builds_the_population_and_strata_once(monkeypatch):
    """Spec.load built the population model two or three times and the strata again."""
    import platform_sim.outcomes as outcomes
    import platform_sim.population as population
    import platform_sim.strata as strata

    counts = {"population": 0, "patients": 0, "strata": 0}

    def counted(target, name, key):
        original = getattr(target, name)

        def wrapper(*args, **kwargs):
            counts[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, wrapper)

    counted(population.PopulationModel, "__init__", "population")
    counted(outcomes.VirtualPatients, "__init__", "patients")
    counted(strata, "compile_strata", "strata")
    for design in ("pioneer_platform", "battle_stratified_rar", "hierarchical_borrowing"):
        for key in counts:
            counts[key] = 0
        spec = Spec.load(design, "pioneer_alternative")
        _ = spec.patients, spec.compiled, spec.truth
        assert counts == {"population": 1, "patients": 1, "strata": 1}, (design, counts)
        assert spec.compiled.plan.classifier is not None and spec.patients.population is not None


# --------------------------------------------------------------------------- output directories


RUN = [
    "run",
    "--design",
    "pioneer_rar",
    "--scenario",
    "pioneer_alternative",
    "--n-sims",
    20,
    "--chunk-size",
    10,
    "--quiet",
]


def test_out_refuses_a_directory_holding_the_users_own_files(tmp_path):
    """--out pointed at an existing folder silently overwrote the user's own oc.csv and design.yaml."""
    out = tmp_path / "mine"
    out.mkdir()
    own = {"oc.csv": b"my,own\n1,2\n", "design.yaml": b"# my notes\n", "notes.txt": b"keep\n"}
    for name, data in own.items():
        (out / name).write_bytes(data)
    for args in (
        RUN + ["--out", out],
        [
            "compare",
            "--designs",
            "pioneer_rar",
            "--scenarios",
            "pioneer_alternative",
            "--n-sims",
            4,
            "--quiet",
            "--out",
            out,
        ],
        ["population", "--n", 100, "--out", out],
        ["trial", "--no-bayes", "--n-sims", 4, "--out", out],
    ):
        line = refused(invoke(*args), "--out", "holds files platform-sim did not write", "design.yaml")
        assert "choose a new or empty directory" in line
    assert sorted(p.name for p in out.iterdir()) == sorted(own)
    assert all((out / name).read_bytes() == data for name, data in own.items())


def test_out_rewrites_its_own_output_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    assert invoke(*RUN, "--out", out).exit_code == 0
    first = (out / "oc.csv").read_bytes()
    (out / "notes.txt").write_text("the user's notes\n")
    (out / "chunks" / "readme.txt").write_text("also the user's\n")
    result = invoke(*RUN, "--seed", 2, "--out", out)  # a new run into the same directory replaces its own files
    assert result.exit_code == 0, result.output
    assert (out / "oc.csv").read_bytes() != first
    assert (out / "notes.txt").read_text() == "the user's notes\n"
    assert (out / "chunks" / "readme.txt").read_text() == "also the user's\n"
    # the output of another command is not this command's to replace
    line = refused(
        invoke(
            "compare",
            "--designs",
            "pioneer_rar",
            "--scenarios",
            "pioneer_alternative",
            "--n-sims",
            4,
            "--quiet",
            "--out",
            out,
        ),
        "--out",
        "holds the output of `platform-sim run`",
    )
    assert "choose another directory" in line
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".probe-*"))


def test_every_command_marks_its_directory(tmp_path):
    for kind, args in (
        ("population", ["population", "--n", 200]),
        ("trial", ["trial", "--no-bayes", "--n-sims", 4]),
        ("run", RUN),
    ):
        out = tmp_path / kind
        result = invoke(*args, "--out", out)
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["kind"] == kind and manifest["complete"] is True
        assert invoke(*args, "--out", out).exit_code == 0  # and may write there again


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert invoke(*RUN, "--out", out).exit_code == 0
    return out


@pytest.mark.parametrize("entry", ["../secret.csv", "/etc/passwd", "chunks/../../secret.csv", "link.csv", "", None, 7])
def test_manifest_paths_must_stay_inside_the_run_directory(finished_run, tmp_path, entry):
    """manifest.json file entries could point outside the run directory, and report read them."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    (out / "link.csv").symlink_to(tmp_path / "secret.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append(entry)
    (out / "manifest.json").write_text(json.dumps(manifest))
    refused(invoke("report", out), f"error: {out}: manifest.json: lists a path outside the run directory")
    assert not (out / "report.html").exists()


@pytest.mark.parametrize("key", ["design_file", "scenario_file"])
def test_compare_manifest_paths_must_stay_inside(tmp_path, key):
    out = tmp_path / "cmp"
    result = invoke(
        "compare",
        "--designs",
        "pioneer_rar",
        "--scenarios",
        "pioneer_alternative",
        "--n-sims",
        4,
        "--quiet",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["pairs"][0][key] = str(ROOT / "designs" / "pioneer_rar.yaml")  # an absolute path, readable elsewhere
    (out / "manifest.json").write_text(json.dumps(manifest))
    refused(invoke("report", out), "manifest.json: lists a path outside the run directory")


# --------------------------------------------------------------------------- the report


def test_report_escapes_every_user_string(tmp_path):
    """A design or scenario string with HTML in it is shown as text, never run as a script."""
    script = "<script>alert('owned')</script>"
    design = shipped("design", "pioneer_rar")
    design["name"] = script  # names are refused: they are restricted to letters, digits and _ . + -
    named = _write(tmp_path, "named.yaml", yaml.safe_dump(design))
    refused(invoke("validate", named), "design.name: String should match pattern")
    design["name"] = "pioneer_rar_script"
    design["description"] = f"A design {script} with <b>markup</b> & an ampersand"
    scenario = shipped("scenario", "pioneer_alternative")
    scenario["description"] = f"A scenario {script}"
    scenario["population"] = "post_ici_nsclc"
    d, s = _write(tmp_path, "d.yaml", yaml.safe_dump(design)), _write(tmp_path, "s.yaml", yaml.safe_dump(scenario))
    out = tmp_path / "run"
    result = invoke("run", "--design", d, "--scenario", s, "--n-sims", 20, "--out", out, "--report", "--quiet")
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;markup&lt;/b&gt; &amp; an ampersand" in page
    import html5lib

    html5lib.HTMLParser(strict=True).parse(page)  # still valid HTML5


# --------------------------------------------------------------------------- nothing untrusted is unpickled or executed


def test_the_code_reads_yaml_safely_and_unpickles_nothing():
    """Only the safe YAML loader (a SafeLoader subclass), no pickle, no numpy object arrays."""
    forbidden = [
        r"yaml\.load\(",
        r"yaml\.unsafe_load",
        r"yaml\.full_load",
        r"yaml\.(Unsafe|Full)?Loader\b",
        r"yaml\.safe_load",
        r"\bpickle\b",
        r"allow_pickle\s*=\s*True",
        r"\beval\(",
        r"\bexec\(",
    ]
    found = []
    for path in sorted((ROOT / "platform_sim").rglob("*.py")):
        text = path.read_text()
        for pattern in forbidden:
            for m in __import__("re").finditer(pattern, text):
                found.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    # the one YAML entry point: a yaml.SafeLoader subclass with the checks of config/load.py
    assert found == [], found
    from platform_sim.config.load import _SafeLoader

    assert issubclass(_SafeLoader, yaml.SafeLoader)


def test_a_results_file_with_pickled_objects_is_refused(tmp_path):
    from platform_sim.rundir import load_results

    path = tmp_path / "results.npz"
    with open(path, "wb") as fh:
        np.savez(fh, __class__=np.array("TrialResults"), n=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ConfigError, match="cannot read the results file"):
        load_results(path)


@pytest.mark.parametrize(
    "design, where",
    [
        ("lungmap_platform", ("arms", 1, "max_n")),
        ("lungmap_umbrella", ("strata", "groups", 0, "max_n")),
        ("battle2", ("strata", "probit", "refit", "after_followed")),
        ("seamless_pfs_os", ("event_driven", "phase2", "events")),
    ],
)
def test_a_count_beyond_the_largest_trial_is_refused_naming_the_field(design, where):
    """A huge count (a typo, or 2**63 that no 64-bit integer holds) is a clear error at load time,
    never an overflow inside the engine."""
    data = yaml.safe_load((Path(__file__).parents[1] / "designs" / f"{design}.yaml").read_text())
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = 2**63
    with pytest.raises(ConfigError) as exc:
        parse_design(data)
    path = "design." + ".".join(str(k) for k in where).replace(".1.", "[1].").replace(".0.", "[0].")
    assert any(p.path == path and "100000" in p.message for p in exc.value.problems), [
        p.format() for p in exc.value.problems
    ]
