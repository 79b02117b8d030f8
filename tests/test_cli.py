"""The ``platform-sim`` command: run, validate, list."""

from __future__ import annotations

import json
import shlex
import subprocess
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from platform_sim import oc as oc_module
from platform_sim.cli import main
from platform_sim.config import shipped_names
from platform_sim.glossary import label
from platform_sim.spec import Spec

DESIGN, SCENARIO = "pioneer_rar", "pioneer_alternative"
ARMS = ["docetaxel", "durva_oleclumab", "durva_monalizumab", "durva_ceralasertib"]
N_SIMS = 200
# chunks of 50: four chunks, so --workers 2 really uses two processes
RUN = ["run", "--design", DESIGN, "--scenario", SCENARIO, "--n-sims", str(N_SIMS), "--chunk-size", "50", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One complete run with seed 5 into a fresh directory: (result, out dir)."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = invoke(*RUN, "--seed", 5, "--out", out)
    return result, out


# --------------------------------------------------------------------------- run


def test_run_writes_summary_trials_and_manifest(first_run):
    result, out = first_run
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "arms.parquet",
        "chunks",
        "design.yaml",
        "manifest.json",
        "oc.csv",
        "populations",
        "scenario.yaml",
        "trials.parquet",
    ]
    spec = Spec.load(DESIGN, SCENARIO)
    spec_hash = spec.spec_hash

    oc = pd.read_csv(out / "oc.csv", keep_default_na=False, na_values=[""])
    assert list(oc.columns) == [
        "spec_hash",
        "level",
        "arm",
        "subgroup",
        "metric",
        "value",
        "mcse",
        "lower",
        "upper",
        "n",
    ]
    assert list(dict.fromkeys(oc["level"])) == ["trial", "arm", "subgroup"]
    assert list(dict.fromkeys(oc.loc[oc.level == "arm", "arm"])) == ARMS
    assert (oc["spec_hash"] == spec_hash).all()
    # one value of each metric per trial / arm / arm x subgroup, each with its MCSE
    assert not oc.duplicated(["level", "arm", "subgroup", "metric"]).any()
    arms = oc_module.arm_table(oc, spec.truth)
    assert list(arms.index) == ARMS
    mcse_cols = [c for c in arms.columns if c.endswith("_mcse")]
    assert mcse_cols and all(c[: -len("_mcse")] in arms.columns for c in mcse_cols)
    for col in ("p_claimed", "mean_n"):
        assert col in arms.columns and f"{col}_mcse" in arms.columns
    trial = oc_module.trial_table(oc)
    for metric in ("p_any_claim", "power"):
        assert metric in trial.index and trial.loc[metric, ["value", "mcse"]].notna().all()
    assert (oc["n"] <= N_SIMS).all() and (oc.loc[oc.metric == "p_any_claim", "n"] == N_SIMS).all()

    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == N_SIMS
    assert list(trials["trial"]) == list(range(N_SIMS))
    assert (trials["spec_hash"] == spec_hash).all()
    per_arm = pd.read_parquet(out / "arms.parquet")
    assert len(per_arm) == N_SIMS * len(ARMS)
    assert list(per_arm["trial"]) == [t for t in range(N_SIMS) for _ in ARMS]
    assert list(per_arm["arm"].astype(str)) == ARMS * N_SIMS
    assert (per_arm["spec_hash"] == spec_hash).all()
    # the tables agree: the mean patients per arm of oc.csv is the mean of arms.parquet's n
    means = per_arm.groupby("arm", observed=True)["n"].mean()
    for arm in ARMS:
        assert arms.loc[arm, "mean_n"] == pytest.approx(means[arm], rel=1e-12)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["seed"] == 5
    assert manifest["n_sims"] == N_SIMS
    assert manifest["chunk_size"] == 50
    assert manifest["spec_hash"] == spec_hash
    assert manifest["design"]["name"] == DESIGN and manifest["scenario"]["name"] == SCENARIO
    assert {"platform_sim", "python", "numpy", "scipy", "pandas", "pydantic"} <= set(manifest["versions"])
    assert all(isinstance(v, str) and v for v in manifest["versions"].values())
    assert isinstance(manifest["command"], str) and manifest["command"].startswith("platform-sim")
    assert set(manifest["files"]) == {
        "oc.csv",
        "trials.parquet",
        "arms.parquet",
        "design.yaml",
        "scenario.yaml",
        "populations/post_ici_nsclc.yaml",
    }

    # the printed arm table: every arm named, the control marked, value ± MCSE entries
    assert spec_hash in result.stdout
    table = result.stdout[result.stdout.index("Arms") :]
    assert "docetaxel (control)" in table
    for arm in ARMS:
        assert arm in table
    for metric in ("p_claimed", "p_dropped", "mean_n", "alloc_share", "p_any_claim"):
        assert label(metric) in table
    assert "±" in table
    assert result.stderr == ""


def test_same_seed_same_summary_and_workers_do_not_matter(first_run, tmp_path):
    _, out1 = first_run
    again = invoke(*RUN, "--seed", 5, "--out", tmp_path / "again")
    two = invoke(*RUN, "--seed", 5, "--workers", 2, "--out", tmp_path / "two")
    other = invoke(*RUN, "--seed", 6, "--out", tmp_path / "other")
    for r in (again, two, other):
        assert r.exit_code == 0, r.stderr
    reference = (out1 / "oc.csv").read_bytes()
    assert (tmp_path / "again" / "oc.csv").read_bytes() == reference
    assert (tmp_path / "two" / "oc.csv").read_bytes() == reference
    for name in ("trials.parquet", "arms.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out1 / name), pd.read_parquet(tmp_path / "two" / name))
    assert (tmp_path / "other" / "oc.csv").read_bytes() != reference


def test_console_script_in_a_subprocess(first_run, tmp_path):
    """The installed ``platform-sim`` script, run from a directory without designs/ or scenarios/."""
    script = Path(sysconfig.get_path("scripts")) / "platform-sim"
    assert script.is_file(), f"console script not installed at {script}"
    args = [*RUN, "--seed", "5", "--out", str(tmp_path / "out")]
    proc = subprocess.run([str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "docetaxel (control)" in proc.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["command"] == shlex.join(["platform-sim", *args])
    assert manifest["complete"] is True
    # the same numbers as the in-process run with the same arguments
    _, out1 = first_run
    assert (tmp_path / "out" / "oc.csv").read_bytes() == (out1 / "oc.csv").read_bytes()


def test_outputs_record_no_absolute_path_the_user_did_not_type(tmp_path):
    """Run, compare and population from a working directory, with design and scenario files given by
    relative paths and shipped names: the manifests, tables, copies and reports record those paths and
    names as given, never an absolute path of the machine (the working directory, the repository, the
    installed package or the virtual environment)."""
    import re
    import sys

    root = Path(__file__).resolve().parents[1]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "design.yaml").write_bytes((root / "designs" / f"{DESIGN}.yaml").read_bytes())
    (mine / "scenario.yaml").write_bytes((root / "scenarios" / f"{SCENARIO}.yaml").read_bytes())
    script = Path(sysconfig.get_path("scripts")) / "platform-sim"
    commands = {
        "run": [
            "run",
            "--design",
            "mine/design.yaml",
            "--scenario",
            "mine/scenario.yaml",
            "--n-sims",
            "40",
            "--chunk-size",
            "20",
            "--quiet",
            "--out",
            "run",
            "--report",
        ],
        "compare": [
            "compare",
            "--designs",
            "mine/design.yaml,allcomer_fixed",
            "--scenarios",
            "mine/scenario.yaml",
            "--n-sims",
            "40",
            "--chunk-size",
            "20",
            "--quiet",
            "--out",
            "cmp",
            "--report",
        ],
        "pop": ["population", "--scenario", SCENARIO, "--n", "500", "--out", "pop"],
    }
    for args in commands.values():
        proc = subprocess.run([str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    machine = {str(tmp_path), str(tmp_path.resolve()), str(root), str(Path(sys.prefix)), str(Path.home())}
    machine.discard("/")
    written = [
        p
        for d in ("run", "cmp", "pop")
        for p in (tmp_path / d).rglob("*")
        if p.suffix in (".json", ".csv", ".yaml", ".html")
    ]
    assert {p.suffix for p in written} == {".json", ".csv", ".yaml", ".html"}
    for path in written:
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
        for prefix in machine:
            assert prefix not in text, f"{path.relative_to(tmp_path)} records the absolute path {prefix}"
    for name, args in commands.items():
        manifest = json.loads(
            (tmp_path / {"run": "run", "compare": "cmp", "pop": "pop"}[name] / "manifest.json").read_text()
        )
        assert manifest["command"] == shlex.join(["platform-sim", *args])  # as typed
    run = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert run["design"]["file"] == "mine/design.yaml" and run["scenario"]["file"] == "mine/scenario.yaml"
    pop = json.loads((tmp_path / "pop" / "manifest.json").read_text())
    assert pop["scenario"]["file"] == f"scenarios/{SCENARIO}.yaml"  # a shipped file, by its folder
    assert "loaded from mine/design.yaml" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- bad input


def _typo_design(shipped_yaml, write_yaml):
    d = shipped_yaml("design", DESIGN)
    d["arms"][1]["treatment"] = "durva_olecumab"
    return ["--design", write_yaml(d, "typo_design.yaml")]


def _malformed_design(shipped_yaml, write_yaml):
    return ["--design", write_yaml("name: broken\narms: [unclosed\n", "malformed.yaml")]


def _probability_above_one(shipped_yaml, write_yaml):
    s = shipped_yaml("scenario", SCENARIO)
    s["treatments"]["docetaxel"]["outcomes"]["orr"]["rate"] = 1.5
    return ["--scenario", write_yaml(s, "bad_scenario.yaml")]


BAD_INPUTS = {
    # id: (arguments builder, substrings the single error line must contain)
    "unknown_design_name": (lambda *_: ["--design", "no_such_design"], ["no_such_design", "pioneer_rar"]),
    "typo_in_treatment": (_typo_design, ["typo_design.yaml", "design.arms[1].treatment", "durva_olecumab"]),
    "malformed_yaml": (_malformed_design, ["malformed.yaml", "malformed YAML", "line"]),
    "probability_above_one": (
        _probability_above_one,
        ["bad_scenario.yaml", "scenario.treatments.docetaxel.outcomes.orr.rate", "1.5"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_config_exits_2_with_one_line_and_no_manifest(case, shipped_yaml, write_yaml, tmp_path):
    build, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    result = invoke("run", "--n-sims", 20, "--quiet", "--out", out, *build(shipped_yaml, write_yaml))
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Arms" not in result.stdout
    assert not (out / "manifest.json").exists()
    assert not list(tmp_path.rglob("manifest.json"))


def test_n_sims_zero_is_a_usage_error(tmp_path):
    result = invoke("run", "--n-sims", 0, "--quiet", "--out", tmp_path / "out")
    assert result.exit_code == 2
    problems = [line for line in error_lines(result) if line.startswith("Error")]
    assert len(problems) == 1 and "--n-sims" in problems[0], result.stderr
    assert not list(tmp_path.rglob("manifest.json"))


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file\n")
    result = invoke("run", "--n-sims", 20, "--quiet", "--out", blocker / "out")
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: --out") and "file.txt" in lines[0], lines
    assert blocker.read_text() == "a regular file\n"
    assert not list(tmp_path.rglob("manifest.json"))


def test_failed_run_leaves_a_previous_run_untouched(tmp_path):
    out = tmp_path / "out"
    ok = invoke("run", "--design", DESIGN, "--scenario", SCENARIO, "--n-sims", 30, "--quiet", "--out", out)
    assert ok.exit_code == 0, ok.stderr
    before = files_of(out)
    assert set(before) == {"manifest.json", "oc.csv", "trials.parquet", "arms.parquet", "design.yaml", "scenario.yaml"}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    bad = invoke("run", "--design", "no_such_design", "--n-sims", 30, "--quiet", "--out", out)
    assert bad.exit_code == 2
    assert len(error_lines(bad)) == 1
    assert files_of(out) == before
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


# --------------------------------------------------------------------------- validate and list


def test_validate_all_shipped_files(root):
    files = sorted((root / "designs").glob("*.yaml")) + sorted((root / "scenarios").glob("*.yaml"))
    assert len(files) >= 5
    result = invoke("validate", *files)
    assert result.exit_code == 0, result.stderr
    ok = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert len(ok) == len(files)
    for path, line in zip(files, ok):
        assert str(path) in line and path.stem in line
    assert result.stderr == ""


def test_validate_reports_every_problem_of_a_file(shipped_yaml, write_yaml):
    d = shipped_yaml("design", DESIGN)
    d["endpoint"]["direction"] = "upwards"
    d["arms"][1]["max_n"] = -5
    d["prior"]["a"] = 0
    path = write_yaml(d, "three_problems.yaml")
    result = invoke("validate", path)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 3, lines
    assert all(line.startswith(f"error: {path}: ") for line in lines)
    for field, value in (
        ("design.endpoint.direction", "upwards"),
        ("design.arms[1].max_n", "-5"),
        ("design.prior.a", "0"),
    ):
        assert sum(field in line and value in line for line in lines) == 1, (field, lines)
    assert "ok:" not in result.stdout


def test_validate_design_against_a_scenario_without_its_treatments(root):
    design = root / "designs" / "pioneer_rar.yaml"
    result = invoke("validate", design, "--scenario", "benchmark_four_arm")
    assert result.exit_code == 2
    lines = error_lines(result)
    assert all(line.startswith("error: ") for line in lines)
    for i, arm in enumerate(ARMS):
        matching = [line for line in lines if f"design.arms[{i}].treatment" in line]
        assert len(matching) == 1 and arm in matching[0] and "benchmark_four_arm" in matching[0], lines
    assert any("design.endpoint.name" in line and "dcr12" in line for line in lines)


def test_list_shows_shipped_names():
    result = invoke("list")
    assert result.exit_code == 0
    out = result.stdout
    designs, rest = out.split("scenarios:")
    scenarios, suites = rest.split("scenario suites (--designs/--scenarios suite:NAME):")
    assert designs.startswith("designs:")

    def names(block: str) -> set[str]:  # each entry line: "  name  one-line description"
        return {line.split()[0] for line in block.splitlines() if line.startswith("  ") and line.strip()}

    assert names(designs) == set(shipped_names("design")) >= {"pioneer_rar", "benchmark_four_arm"}
    assert (
        names(scenarios)
        == set(shipped_names("scenario"))
        >= {"pioneer_null", "pioneer_alternative", "benchmark_four_arm"}
    )
    assert names(suites) == set(shipped_names("suite")) >= {"core"}


def test_a_shipped_file_of_an_installed_package_is_named_by_its_shipped_folder(tmp_path, monkeypatch):
    """Installed (not a checkout), the package's parent folder is site-packages: a shipped design is
    still named designs/NAME.yaml, never platform_sim/shipped/designs/NAME.yaml."""
    from platform_sim import rundir

    package = tmp_path / "site-packages" / "platform_sim"
    shipped = package / "shipped" / "designs" / "pioneer_rar.yaml"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("name: pioneer_rar\n")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(rundir, "_PACKAGE_DIR", package)
    assert rundir.source_path(shipped) == "designs/pioneer_rar.yaml"
