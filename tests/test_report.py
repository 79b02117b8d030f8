"""The run directory (results.npz and the spec copies) and the HTML report of run and compare."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from platform_sim import oc
from platform_sim.cli import main
from platform_sim.config import ConfigError
from platform_sim.glossary import label
from platform_sim.report.figures import running_mean_se
from platform_sim.report.html import pm
from platform_sim.rundir import load_results, load_run
from platform_sim.spec import Spec

N_SIMS = 200
SMALL = ["--n-sims", N_SIMS, "--chunk-size", 100, "--quiet"]
RUN_SECTIONS = [
    "summary",
    "design",
    "scenario",
    "truth",
    "oc-tables",
    "fig-allocation",
    "fig-sample-size",
    "fig-stopping",
    "fig-heatmap",
    "fig-convergence",
    "glossary",
]
RUN_FIGURES = ["fig-allocation", "fig-sample-size", "fig-stopping", "fig-heatmap", "fig-convergence"]
XHTML = "{http://www.w3.org/1999/xhtml}"
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def parse(path):
    """Parse the page strictly (any HTML5 parse error raises) and return the element tree."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(path.read_bytes())


def ids(tree, tag: str) -> list[str]:
    return [e.get("id") for e in tree.iter(f"{XHTML}{tag}") if e.get("id")]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_page(
    path, sections: list[str], figure_sections: list[str], figure_ids: list[str] | None = None
) -> ET.Element:
    """Strict parse, every section present once, every figure a decodable PNG of sensible size with
    alt text and a caption, and nothing fetched from elsewhere."""
    tree = parse(path)
    found = ids(tree, "section")
    assert found == sections
    assert ids(tree, "footer") == ["reproducibility"]
    figures = {f.get("id"): f for f in tree.iter(f"{XHTML}figure")}
    assert sorted(figures) == sorted(figure_ids or [f"{s}-figure" for s in figure_sections])
    for fid, fig in figures.items():
        (img,) = list(fig.iter(f"{XHTML}img"))
        assert img.get("alt")
        (caption,) = list(fig.iter(f"{XHTML}figcaption"))
        assert len("".join(caption.itertext())) > 40
        src = img.get("src")
        assert src.startswith("data:image/png;base64,")
        pixels_wide, pixels_high = png_size(base64.b64decode(src.split(",", 1)[1], validate=True))
        width = int(img.get("width"))  # shown at half its pixel width: drawn at 2x for sharp screens
        assert pixels_wide // 2 == width, (fid, pixels_wide, width)
        height = pixels_high / 2
        assert 400 <= width <= 1400 and 200 <= height <= 1400, (fid, width, height)
    text = path.read_text()
    for element in tree.iter():
        for attr in ("src", "href"):
            value = element.get(attr)
            if value is not None:
                assert value.startswith(("data:", "#")), value
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<script" not in text and "@import" not in text and "url(" not in text
    return tree


def read_oc(path: Path) -> pd.DataFrame:
    """A run's oc.csv, with the empty arm and subgroup of trial-level rows as empty strings."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return table.fillna({"arm": "", "subgroup": ""})


def same_results(a, b) -> None:
    """Two TrialResults hold the same names and exactly the same arrays (dtype and values)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f.name
        elif isinstance(x, dict):
            assert list(x) == list(y), f.name
            for k, v in x.items():
                if isinstance(v, np.ndarray):
                    assert v.dtype == y[k].dtype and np.array_equal(v, y[k], equal_nan=True), (f.name, k)
                else:
                    assert v == y[k], (f.name, k)
        else:
            assert x == y, f.name


def table_text(tree, caption_start: str) -> list[list[str]]:
    """The rows (cell texts) of the table whose caption starts with ``caption_start``."""
    for t in tree.iter(f"{XHTML}table"):
        cap = t.find(f"{XHTML}caption")
        if cap is not None and "".join(cap.itertext()).startswith(caption_start):
            return [["".join(c.itertext()) for c in row] for row in t.iter(f"{XHTML}tr")]
    raise AssertionError(f"no table captioned {caption_start!r}")


CODE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # snake_case: how a code name looks


def user_words(*models) -> set[str]:
    """The snake_case words a user wrote in a design or scenario: names (of arms, treatments, strata,
    biomarkers, endpoints, the population...), string values and descriptions, but not the files'
    field names."""
    from pydantic import BaseModel

    out: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(k)
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            out.update(CODE_NAME.findall(value))

    for model in models:
        walk(model)
    return out


def glossary_of(tree) -> dict[str, list[str]]:
    """The page's glossary: code name -> [what it is, label, definition]."""
    rows = table_text(tree, "The code names of this page and of oc.csv")
    assert rows[0] == ["name", "what it is", "label on this page", "definition"]
    return {r[0]: r[1:] for r in rows[1:]}


def visible_words(element, skip) -> list[str]:
    """The snake_case words of the text under ``element``, leaving out the elements ``skip(e)`` is true for."""
    words: list[str] = []
    if skip(element):
        return words
    words += CODE_NAME.findall(element.text or "")
    for child in element:
        words += visible_words(child, skip)
        words += CODE_NAME.findall(child.tail or "")
    return words


def check_every_code_name_explained(run_dir: Path) -> dict[str, list[str]]:
    """Each code name the run report shows has a label and a glossary entry: every name in a table's
    code column, every metric and column of oc.csv, and every other snake_case word of the page that
    the user did not write in the design or scenario (the folded settings tables, which show the files'
    keys as written, and the command line the user typed are left out)."""
    tree = parse(run_dir / "report.html")
    glossary = glossary_of(tree)
    for name, (what, words, meaning) in glossary.items():
        assert what and words and meaning, (name, what, words, meaning)  # a label and a definition each
    oc_csv = pd.read_csv(run_dir / "oc.csv", keep_default_na=False)
    assert set(oc_csv["metric"]) <= set(glossary), set(oc_csv["metric"]) - set(glossary)
    assert set(oc_csv.columns) <= set(glossary), set(oc_csv.columns) - set(glossary)
    for t in tree.iter(f"{XHTML}table"):  # every code column: only glossary names, each beside its label
        rows = [["".join(c.itertext()) for c in row] for row in t.iter(f"{XHTML}tr")]
        if "code" in rows[0]:
            i = rows[0].index("code")
            for r in rows[1:]:
                assert r[i] in glossary, r[i]
                if rows[0][i - 1] == "metric":  # the label column shows the glossary's label
                    assert r[i - 1] == glossary[r[i]][1], r
    rd = load_run(run_dir)
    allowed = user_words(rd.spec.design, rd.spec.scenario) | set(glossary)
    command = rd.manifest.get("command") or ""

    def skip(e) -> bool:
        return (
            e.tag in (f"{XHTML}details", f"{XHTML}style", f"{XHTML}head")
            or e.get("id") == "glossary"
            or ("".join(e.itertext()) == command and e.tag == f"{XHTML}td")
        )

    unexplained = set(visible_words(tree, skip)) - allowed
    assert not unexplained, f"code names shown without a glossary entry: {sorted(unexplained)}"
    return glossary


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rar") / "out"
    result = invoke(
        "run",
        "--design",
        "pioneer_rar",
        "--scenario",
        "pioneer_alternative",
        *SMALL,
        "--seed",
        3,
        "--out",
        out,
        "--report",
    )
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def stratified_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("umbrella") / "out"
    result = invoke(
        "run", "--design", "lungmap_umbrella", "--scenario", "pioneer_alternative", *SMALL, "--out", out, "--report"
    )
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def platform_run(tmp_path_factory):
    """A small platform run directory written in process (the CLI path is tested on the designs with
    looks): save_run (results, copies, tables and manifest), then the report built from the directory."""
    from platform_sim.report import build_report
    from platform_sim.rundir import RunDir, save_run
    from platform_sim.runner import run

    out = tmp_path_factory.mktemp("platform") / "out"
    spec = Spec.load("pioneer_platform", "pioneer_alternative")
    results = run(spec, 30, 1, chunk_size=15)
    manifest = save_run(out, results, spec, seed=1, chunk_size=15, workers=1, command="in process")
    assert json.loads((out / "manifest.json").read_text()) == manifest
    build_report(out)
    return RunDir(out, spec, results, manifest, {})


# --------------------------------------------------------------------------- run reports


def test_look_based_report(rar_run):
    page = rar_run / "report.html"
    manifest = json.loads((rar_run / "manifest.json").read_text())
    assert manifest["kind"] == "run" and "report.html" in manifest["files"]
    assert {"design.yaml", "scenario.yaml", "oc.csv", "trials.parquet", "arms.parquet"} <= set(manifest["files"])
    assert manifest["records"] and manifest["segments"] == [manifest["n_sims"]]
    tree = check_page(page, RUN_SECTIONS, RUN_FIGURES)
    text = "".join(tree.itertext())
    # the design's descriptions and settings, the truth, the reproducibility footer
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    assert "allocation proportional to P(best)^0.5" in text
    assert "Interim analyses (looks)" in text and "Beta(1, 1)" in text
    for value in (spec.spec_hash, manifest["command"], manifest["created"], "seed", "chunk size"):
        assert str(value) in text
    # the operating characteristics are shown as value ± MCSE and agree with oc.csv
    table = read_oc(rar_run / "oc.csv")
    trial = oc.trial_table(table)
    rows = {r[1]: r[2] for r in table_text(tree, "Operating characteristics of the trial")[1:]}  # by metric code
    assert rows["power"] == pm(trial.at["power", "value"], trial.at["power", "mcse"], 3)
    assert rows["mean_n_randomized"] == pm(
        trial.at["mean_n_randomized", "value"], trial.at["mean_n_randomized", "mcse"], 1
    )
    arms = table_text(tree, "Operating characteristics by arm")
    names, control = spec.design.arm_names, spec.design.control
    assert arms[0][1:] == [f"{a} (control)" if a == control else a for a in names]
    claimed = next(r for r in arms if r[0] == "P(claimed effective)")
    by_arm = oc.arm_table(table, spec.truth)
    assert claimed[1:] == [
        "" if a == control else pm(by_arm.at[a, "p_claimed"], by_arm.at[a, "p_claimed_mcse"], 3) for a in names
    ]
    assert any(cell for cell in claimed[1:])
    glossary = check_every_code_name_explained(rar_run)
    assert glossary["fwer"][1] == label("fwer") != "fwer" and glossary["p_stop_max"][1] == label("p_stop_max")


def test_report_command_recreates_the_same_page(rar_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(rar_run, copy)
    (copy / "report.html").unlink()
    result = invoke("report", copy)
    assert result.exit_code == 0, result.stderr
    assert (copy / "report.html").read_bytes() == (rar_run / "report.html").read_bytes()


def test_run_directory_round_trip(rar_run):
    """The chunks' records hold every field exactly, and the tables recomputed from them equal the files."""
    from platform_sim.runner import run

    rd = load_run(rar_run)
    assert rd.spec.spec_hash == rd.manifest["spec_hash"]
    again = run(Spec.load("pioneer_rar", "pioneer_alternative"), N_SIMS, 3, chunk_size=100)
    same_results(again, rd.results)
    table = oc.frame(oc.summarize(rd.results, rd.spec.truth))
    saved = rd.tables["oc.csv"].drop(columns="spec_hash").fillna({"arm": "", "subgroup": ""})
    pd.testing.assert_frame_equal(table.reset_index(drop=True), saved, check_dtype=False, check_exact=False, rtol=1e-12)
    # the per-trial tables are the records' own
    pd.testing.assert_frame_equal(
        pd.read_parquet(rar_run / "trials.parquet").drop(columns="spec_hash"),
        rd.results.trial_frame(),
        check_categorical=False,
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(rar_run / "arms.parquet").drop(columns="spec_hash"),
        rd.results.arm_frame(),
        check_categorical=False,
    )
    # the copies are byte for byte the files the run loaded, which the manifest names relative to the folder
    # that ships them (never by an absolute path)
    for kind, name in (("design", "pioneer_rar"), ("scenario", "pioneer_alternative")):
        assert rd.manifest[kind]["file"] == f"{kind}s/{name}.yaml"
        assert (rar_run / f"{kind}.yaml").read_bytes() == (ROOT / rd.manifest[kind]["file"]).read_bytes()


def test_stratified_report(stratified_run):
    tree = check_page(stratified_run / "report.html", RUN_SECTIONS, RUN_FIGURES)
    text = "".join(tree.itertext())
    assert "Sub-studies" in text and "The truth by arm and subgroup" in text
    rows = table_text(tree, "Operating characteristics by arm and subgroup")
    assert rows[0][:5] == ["subgroup", "share", "arm", "truth", "P(claimed effective)"]
    rd = load_run(stratified_run)
    truth = rd.spec.truth.frame()
    judged = truth[~truth.role.isin(["control", "not in subgroup"])]
    sub = oc.subgroup_table(read_oc(stratified_run / "oc.csv"), rd.spec.truth)
    shown = {(r[0], r[2]): r[4] for r in rows[1:]}
    assert len(judged) > 0
    for r in judged.itertuples():
        assert shown[r.subgroup, r.arm] == pm(
            sub.at[(r.arm, r.subgroup), "p_claimed"], sub.at[(r.arm, r.subgroup), "p_claimed_mcse"], 3
        )
    # stratified results (per stratum) survive the round trip
    strata = ("atm", "stk11_keap1", "trop2_nmr", "non_match")
    assert rd.results.strata == strata and rd.results.subgroups == strata
    assert rd.results.n.shape == (N_SIMS, len(rd.spec.design.arms), len(strata))
    check_every_code_name_explained(stratified_run)


def test_platform_report(platform_run):
    rd = platform_run
    tree = check_page(rd.path / "report.html", RUN_SECTIONS, RUN_FIGURES)
    text = "".join(tree.itertext())
    assert "Graduation signatures" in text and "available from (month)" in text
    assert "Gamma(1, 4) on the monthly hazard" in text and "The truth by arm and subgroup" in text
    assert "effect (log hazard ratio)" in text
    # the trial table shown is oc.trial_table of the platform's results: every finite metric, in order
    expected = oc.trial_table(oc.frame(oc.summarize(rd.results, rd.spec.truth)))
    expected = expected[np.isfinite(expected["value"])]
    rows = table_text(tree, "Operating characteristics of the trial")[1:]
    assert [r[1] for r in rows] == list(expected.index)
    digits = {"p_any_claim": 3, "fwer": 3, "mean_n_randomized": 1, "duration_months": 1}
    shown = {r[1]: r[2] for r in rows}
    for metric, d in digits.items():
        assert shown[metric] == pm(expected.at[metric, "value"], expected.at[metric, "mcse"], d), metric
    glossary = check_every_code_name_explained(rd.path)
    assert {"max_duration", "not_entered", "p_reject_all"} <= set(glossary)  # stop reasons and statuses


# --------------------------------------------------------------------------- compare report


def test_compare_report_leads_with_the_answer(tmp_path):
    """The decision report of a calibrated comparison: the answer first, then the figures (paired
    differences, the power-FWER frontier, claims per treatment x subgroup), the calibration, every
    figure with its interval, and the methods last; its numbers are those of the CSV files."""
    out = tmp_path / "cmp"
    result = invoke(
        "compare",
        "--designs",
        "allcomer_fixed,lungmap_umbrella",
        "--scenarios",
        "stk11_keap1_only",
        "--null-scenario",
        "pioneer_null",
        "--target-fwer",
        0.1,
        *SMALL,
        "--out",
        out,
        "--report",
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "compare" and len(manifest["pairs"]) == 4
    for f in (
        "designs/allcomer_fixed.yaml",
        "designs/allcomer_fixed.as_run.yaml",
        "scenarios/pioneer_null.yaml",
        "calibration.csv",
        "frontier.csv",
        "winners.csv",
        "yardstick.csv",
        "report.html",
    ):
        assert f in manifest["files"] and (out / f).is_file()
    sections = ["answer", "fig-paired", "fig-frontier", "fig-claims", "calibration", "oc-tables", "methods", "glossary"]
    tree = check_page(
        out / "report.html",
        sections,
        [],
        ["fig-paired-figure", "fig-frontier-figure", "fig-claims-figure-stk11_keap1_only"],
    )
    text = "".join(tree.itertext())
    assert "calibrated on the global null pioneer_null" in text
    glossary = table_text(tree, "The metrics of comparison.csv")  # every metric name of the CSV is explained
    assert {r[0] for r in glossary[1:]} >= set(pd.read_csv(out / "comparison.csv").metric)
    assert str(tmp_path) not in (out / "report.html").read_text()  # no absolute paths
    table = pd.read_csv(out / "comparison.csv")
    rows = table_text(tree, "stk11_keap1_only: value ± Monte Carlo SE")
    header = rows[0]
    power = next(r for r in rows if r[1] == "power")
    ref = table[
        (table.level == "trial")
        & (table.metric == "power")
        & (table.design == "lungmap_umbrella")
        & (table.scenario == "stk11_keap1_only")
    ].iloc[0]
    assert power[header.index("lungmap_umbrella")] == f"{ref.value:.3f} ± {ref.mcse:.3f}"
    fwer = next(r for r in rows if r[1] == "fwer")
    zero = table[(table.level == "trial") & (table.metric == "fwer") & (table.value == 0)]
    for r in zero.itertuples():  # a proportion of 0 shows its Jeffreys bound, not 0 ± 0
        assert fwer[header.index(r.design)] == f"0.000 (≤ {r.upper:.3f})"
    winners = pd.read_csv(out / "winners.csv")
    w = winners[(winners.metric == "power")].iloc[0]
    answer = "".join(tree.find(f".//{XHTML}section[@id='answer']").itertext())
    assert f"{w.best} (" in answer and f"{w['diff']:+.3f}" in answer
    calibration = pd.read_csv(out / "calibration.csv")
    cal_rows = table_text(tree, "Decision thresholds calibrated on pioneer_null")
    assert {r[0] for r in cal_rows[1:]} == set(calibration.design)


# --------------------------------------------------------------------------- errors


def test_report_needs_out():
    for command in (["run", "--n-sims", 5], ["compare", "--designs", "pioneer_rar", "--scenarios", "pioneer_null"]):
        result = invoke(*command, "--report")
        assert result.exit_code == 2
        (line,) = errors(result)
        assert line == "error: --report needs --out DIR: the report is written to DIR/report.html"


def test_report_on_an_incomplete_directory(rar_run, tmp_path):
    result = invoke("report", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such directory" in errors(result)[0]
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "manifest.json: missing" in errors(result)[0]

    broken = tmp_path / "broken"
    shutil.copytree(rar_run, broken)
    (broken / "chunks" / "000000.npz").unlink()
    result = invoke("report", broken)
    assert result.exit_code == 2
    (line,) = errors(result)
    assert "chunks/000000.npz" in line and "missing" in line


def test_report_on_a_tampered_design(rar_run, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(rar_run, edited)
    design = edited / "design.yaml"
    text = design.read_text()
    # a comment does not change the spec hash: the report builds
    design.write_text(text + "# a note added after the run\n")
    assert invoke("report", edited).exit_code == 0
    # a threshold does: the copy no longer describes the results
    design.write_text(re.sub(r"(?m)^  superiority: [0-9.]+", "  superiority: 0.98", text, count=1))
    assert design.read_text() != text
    result = invoke("report", edited)
    assert result.exit_code == 2
    (line,) = errors(result)
    manifest = json.loads((edited / "manifest.json").read_text())
    assert "spec hash" in line and manifest["spec_hash"] in line and "edited" in line


def test_results_file_errors_are_clear(tmp_path):
    bad = tmp_path / "results.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="cannot read the results file"):
        load_results(bad)
    np.savez(bad, n=np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="__meta__: missing from the results file"):
        load_results(bad)
    # a file with its names but without one of its arrays names the array
    from platform_sim.rundir import save_results
    from platform_sim.runner import run

    good = tmp_path / "good.npz"
    save_results(good, run(Spec.load("pioneer_rar", "pioneer_alternative"), 3, 1))
    with np.load(good) as data:
        arrays = {k: data[k] for k in data.files if k != "events"}
    np.savez(bad, **arrays)
    with pytest.raises(ConfigError, match="events: missing from the results file"):
        load_results(bad)


def test_save_results_is_exact_for_platform_results(platform_run):
    rd = platform_run
    again = load_results(rd.path / "results.npz")
    assert list(again.arms) == rd.spec.design.arm_names
    same_results(again, rd.results)
    assert again.extras["n_period"].shape[:1] == (30,)
    assert (rd.path / "populations" / "post_ici_nsclc.yaml").is_file()


# --------------------------------------------------------------------------- figures


def test_value_and_mcse_format():
    assert pm(0.1894, 0.0087, 3) == "0.189 ± 0.009"
    assert pm(16.634, 0.041, 1) == "16.63 ± 0.04"  # the MCSE never prints as a bare zero
    assert pm(0.0, 0.0, 3) == "0.000 ± 0.000"  # an exact zero stays one
    assert pm(float("nan"), 0.1) == "NA" and pm(0.5, float("nan")) == "0.500"


def test_running_mean_and_standard_error_match_direct_computation():
    rng = np.random.default_rng(7)
    x = rng.normal(1000.0, 3.0, size=500)  # far from 0: a naive sum of squares would lose digits
    x[[3, 50]] = np.nan  # skipped
    n, mean, se = running_mean_se(x)
    finite = x[np.isfinite(x)]
    assert n[-1] == finite.size
    for k in (2, 10, 137, finite.size):
        np.testing.assert_allclose(mean[k - 1], finite[:k].mean(), rtol=1e-13)
        np.testing.assert_allclose(se[k - 1], finite[:k].std(ddof=1) / np.sqrt(k), rtol=1e-9)
    assert np.isnan(se[0])


def test_event_driven_report_shows_the_plan_beside_the_simulation(tmp_path):
    out = tmp_path / "out"
    result = invoke(
        "run",
        "--design",
        "textbook_group_sequential",
        "--scenario",
        "textbook_two_arm",
        *SMALL,
        "--out",
        out,
        "--report",
    )
    assert result.exit_code == 0, result.stderr
    # fixed allocation throughout: no allocation figure; arm decisions instead of stopping by look
    tree = check_page(
        out / "report.html",
        [s for s in RUN_SECTIONS if s != "fig-allocation"],
        [f for f in RUN_FIGURES if f != "fig-allocation"],
    )
    rows = table_text(tree, "Analytic plan beside simulation")[1:]
    assert [r[1] for r in rows][:4] == [
        "p_efficacy_look_1",
        "p_efficacy_look_2",
        "p_efficacy_look_3",
        "p_stop_efficacy",
    ]
    assert rows[3][2] == "0.899"  # the Lakatos power of the design (docs/survival.md)
    assert "Analyses: boundaries (z) and the analytic plan" in "".join(tree.itertext())
    check_every_code_name_explained(out)
