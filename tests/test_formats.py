"""--format table|csv|json on run, compare, calibrate and list: numbers as numbers, for programs."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from platform_sim.cli import EXIT_BAD_INPUT, main

NUMBERS = ["value", "mcse", "lower", "upper"]
OC_COLUMNS = ["level", "arm", "subgroup", "metric", "value", "mcse", "lower", "upper", "n"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def check_numeric(frame: pd.DataFrame, columns=NUMBERS) -> None:
    """Each column is a float column (no "0.020 ± 0.020" cells), and every interval holds its value."""
    for c in columns:
        assert pd.api.types.is_float_dtype(frame[c]), c
    finite = frame.dropna(subset=["value", "lower", "upper"])
    assert len(finite) and ((finite.lower <= finite.value + 1e-12) & (finite.value <= finite.upper + 1e-12)).all()


def check_header(text: str) -> None:
    header = text.splitlines()[0]
    assert header.isascii() and "±" not in text and "−" not in text


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    args = ["run", "--design", "allcomer_rar", "--scenario", "trop2_adc", "--n-sims", 80, "--chunk-size", 40, "--quiet"]
    csv = invoke(*args, "--format", "csv", "--out", out)
    js = invoke(*args, "--format", "json")
    table = invoke(*args)
    return csv, js, table, out


def test_run_csv_is_the_tidy_table_and_nothing_else(run_outputs):
    csv, _, _, out = run_outputs
    assert csv.exit_code == 0, csv.stderr
    check_header(csv.stdout)
    frame = read_csv(csv.stdout)
    assert list(frame.columns) == OC_COLUMNS
    check_numeric(frame)
    # the lines about the run went to stderr, and the table is oc.csv's
    assert "simulated trials, seed" in csv.stderr and "wrote" in csv.stderr
    saved = read_csv((out / "oc.csv").read_text()).drop(columns="spec_hash")
    pd.testing.assert_frame_equal(frame, saved)


def test_run_json_holds_the_same_numbers(run_outputs):
    csv, js, table, _ = run_outputs
    assert js.exit_code == 0, js.stderr
    document = json.loads(js.stdout)
    assert document["design"] == "allcomer_rar" and document["n_sims"] == 80 and document["seed"] == 1
    rows = pd.DataFrame(document["oc"]).fillna({"arm": "", "subgroup": ""})
    frame = read_csv(csv.stdout).fillna({"arm": "", "subgroup": ""})
    assert list(rows.columns) == OC_COLUMNS
    for c in NUMBERS:
        np.testing.assert_allclose(rows[c].astype(float), frame[c], rtol=1e-12, equal_nan=True)
    # the table format is the one for reading
    assert table.exit_code == 0 and "±" in table.stdout


def test_compare_csv_and_json_are_the_comparison_table(tmp_path):
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--designs",
        "allcomer_fixed,allcomer_rar",
        "--scenarios",
        "trop2_adc",
        "--n-sims",
        40,
        "--quiet",
    ]
    csv = invoke(*args, "--format", "csv", "--out", out)
    assert csv.exit_code == 0, csv.stderr
    check_header(csv.stdout)
    frame = read_csv(csv.stdout)
    check_numeric(frame, NUMBERS + ["diff_vs_reference", "diff_se", "diff_lower", "diff_upper"])
    pd.testing.assert_frame_equal(frame, read_csv((out / "comparison.csv").read_text()))
    assert "common random numbers" in csv.stderr
    js = invoke(*args, "--format", "json")
    assert js.exit_code == 0, js.stderr
    document = json.loads(js.stdout)
    assert document["designs"] == ["allcomer_fixed", "allcomer_rar"] and document["reference"] == "allcomer_fixed"
    assert len(document["table"]) == len(frame) and {"diff", "se", "lower", "upper"} <= set(document["pairs"][0])
    power = [r for r in document["table"] if r["level"] == "trial" and r["metric"] == "power"]
    assert all(isinstance(r["value"], float) and isinstance(r["mcse"], float) for r in power)


def test_calibrate_csv_has_intervals():
    result = invoke(
        "calibrate",
        "--design",
        "allcomer_fixed",
        "--null-scenarios",
        "pioneer_null",
        "--target-fwer",
        0.1,
        "--n-sims",
        100,
        "--seed",
        3,
        "--quiet",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.stderr
    check_header(result.stdout)
    frame = read_csv(result.stdout)
    check_numeric(frame)
    assert set(frame.setting) == {"calibrated", "design"} and "calibrated threshold" not in result.stdout
    fwer = frame[(frame.metric == "fwer") & (frame.setting == "calibrated")].iloc[0]
    assert fwer.value <= 0.1 and fwer.lower < fwer.upper


def test_list_formats():
    csv = invoke("list", "--format", "csv")
    frame = read_csv(csv.stdout)
    assert list(frame.columns) == ["kind", "name", "description"]
    assert {"pioneer_rar", "pioneer_null"} <= set(frame.name)
    js = json.loads(invoke("list", "--format", "json").stdout)
    assert {"kind": "design", "name": "pioneer_rar"}.items() <= next(
        r for r in js if r["name"] == "pioneer_rar"
    ).items()


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["compare", "--designs", "pioneer_rar", "--scenarios", "pioneer_null"],
        ["calibrate", "--null-scenarios", "pioneer_null", "--target-fwer", "0.1"],
        ["list"],
    ],
)
def test_an_unknown_format_exits_2(command):
    result = invoke(*command, "--format", "xml")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "'xml' is not one of" in result.stderr
