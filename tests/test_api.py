"""The Python interface (platform_sim.api, re-exported by the package): the same numbers as the engine
and the command line, models wherever names work, run directories and reports from memory, clear errors."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import platform_sim as ps
from platform_sim import oc
from platform_sim.config import ConfigError
from platform_sim.rundir import DEPENDENCIES, load_run
from platform_sim.runner import run as engine_run
from platform_sim.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
N_SIMS = 60
CHUNK = 25  # several chunks, the last one short


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.strip()


def _strings(value):
    """Every string in a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.fixture(scope="module")
def rar():
    design, scenario = ps.load_design("pioneer_rar"), ps.load_scenario("pioneer_alternative")
    return ps.run(design, scenario, n_sims=N_SIMS, seed=3, chunk_size=CHUNK)


@pytest.fixture(scope="module")
def calibrated():
    """A calibrated comparison: an in-memory design (renamed, so a model no file holds) against a shipped name."""
    renamed = ps.load_design("allcomer_rar").model_copy(update={"name": "allcomer_rar_copy"})
    return ps.compare(
        ["pioneer_rar", renamed],
        [ps.load_scenario("pioneer_alternative"), "pioneer_null"],
        n_sims=N_SIMS,
        seed=2,
        null_scenario="pioneer_null",
        target_fwer=0.2,
        chunk_size=CHUNK,
    )


# --------------------------------------------------------------------------- the package


def test_import_is_light_and_names_are_exported():
    # no numpy, pandas or scipy at import; the API arrives on first use
    heavy = _python(
        "import sys, platform_sim; print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'matplotlib', "
        "'platform_sim.api') if m in sys.modules))"
    )
    assert heavy == "[]"
    for name in ps.__all__:
        assert getattr(ps, name) is not None, name
    assert set(ps.__all__) >= {
        "load_design",
        "load_scenario",
        "load_suite",
        "run",
        "compare",
        "Results",
        "Comparison",
        "plot",
    }
    assert ps.run is ps.api.run and ps.Results is ps.api.Results


def test_compare_is_the_verb_even_after_the_module_is_imported():
    out = _python(
        "from platform_sim.compare import winners\nimport platform_sim as ps\n"
        "import platform_sim.compare\nprint(type(ps.compare).__name__, ps.compare.__module__)"
    )
    assert out == "function platform_sim.api"


# --------------------------------------------------------------------------- run and read


def test_run_gives_the_engines_numbers(rar):
    """The same seed gives the same trials as the engine run on the spec loaded from the names (the CLI's
    path), whatever the chunk size, and the same tidy table."""
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    again = engine_run(spec, N_SIMS, 3, chunk_size=N_SIMS)
    for name in ("n", "events", "claimed", "status", "stop_reason", "n_screened"):
        np.testing.assert_array_equal(getattr(rar.trials, name), getattr(again, name), err_msg=name)
    assert rar.spec.spec_hash == spec.spec_hash
    table = rar.oc()
    expected = oc.frame(oc.summarize(again, spec.truth))
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)
    assert list(table.columns) == ["level", "arm", "subgroup", "metric", "value", "mcse", "lower", "upper", "n"]
    finite = table.dropna(subset=["value", "lower", "upper"])
    assert (finite["lower"] <= finite["value"] + 1e-12).all() and (finite["value"] <= finite["upper"] + 1e-12).all()
    table.loc[:, "value"] = 0.0  # a copy: the cached table is not changed by its reader
    assert rar.oc()["value"].abs().sum() > 0
    assert rar.summary().loc["p_any_claim", "value"] == pytest.approx(again.claimed.any(axis=(1, 2)).mean())
    assert {"p_claimed", "p_claimed_lower", "p_claimed_upper", "role"} <= set(rar.arm_table().columns)


def test_to_xarray_has_named_dimensions_and_the_records(rar):
    ds = rar.to_xarray()
    trials = rar.trials
    assert ds["n"].dims == ("trial", "arm", "stratum")
    assert ds["claimed"].dims == ("trial", "arm", "subgroup")
    assert ds["alloc_history"].dims == ("trial", "look", "arm")
    assert list(ds["arm"].values) == list(rar.design.arm_names)
    np.testing.assert_array_equal(ds["trial"].values, np.arange(N_SIMS))
    np.testing.assert_array_equal(ds["n"].values, trials.n)
    np.testing.assert_array_equal(ds["claimed"].values, trials.claimed)
    np.testing.assert_array_equal(ds["alloc_history"].values, trials.extras["alloc_history"])
    # codes become words
    from platform_sim.results import STATUS_NAMES

    assert ds["status"].values[4, 0] == STATUS_NAMES[trials.status[4, 0]]
    assert set(np.unique(ds["stop_reason"].values)) <= set(trials.stop_names)
    # the truth beside the trials
    np.testing.assert_array_equal(ds["true_value"].values, rar.truth.value)
    assert ds.attrs["spec_hash"] == rar.spec.spec_hash and ds.attrs["seed"] == 3
    assert float(ds["claimed"].any(dim=("arm", "subgroup")).mean()) == pytest.approx(
        rar.summary().loc["p_any_claim", "value"]
    )


def test_workers_and_a_progress_bar_change_nothing_but_the_speed(rar, capsys):
    again = ps.run("pioneer_rar", "pioneer_alternative", n_sims=N_SIMS, seed=3, chunk_size=20, workers=2, progress=True)
    np.testing.assert_array_equal(again.trials.n, rar.trials.n)
    np.testing.assert_array_equal(again.trials.claim_month, rar.trials.claim_month)
    assert f"{N_SIMS}/{N_SIMS}" in capsys.readouterr().err  # the tqdm bar, on stderr outside a notebook


def test_progress_and_bad_counts():
    seen: list[int] = []
    res = ps.run("allcomer_fixed", "pioneer_null", n_sims=30, seed=1, chunk_size=20, progress=seen.append)
    assert seen == [20, 10] and res.n_sims == 30
    for bad in ({"n_sims": 0}, {"workers": 0}, {"seed": -1}, {"n_sims": 2.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ps.run("allcomer_fixed", "pioneer_null", **bad)


def test_bad_input_is_a_config_error_naming_the_problem():
    with pytest.raises(ConfigError, match="neither a file nor a shipped design"):
        ps.load_design("no_such_design")
    with pytest.raises(ConfigError, match="expected a Design, got a Scenario"):
        ps.run(ps.load_scenario("pioneer_null"), "pioneer_null", n_sims=10)
    with pytest.raises(ConfigError, match="expected a file path, a shipped name or a Scenario"):
        ps.run("pioneer_rar", 42, n_sims=10)


# --------------------------------------------------------------------------- save and report


def test_save_writes_a_run_directory_the_cli_reads(rar, tmp_path):
    out = rar.save(tmp_path / "run")
    rd = load_run(out)
    assert rd.spec.spec_hash == rar.spec.spec_hash
    np.testing.assert_array_equal(rd.results.n, rar.trials.n)
    manifest = rd.manifest
    assert manifest["kind"] == "run" and manifest["seed"] == 3 and manifest["n_sims"] == N_SIMS
    assert manifest["command"] is None and manifest["chunk_size"] == CHUNK
    # a model loaded from a file is copied byte for byte, named relative to the folder that ships it
    assert manifest["design"]["file"] == "designs/pioneer_rar.yaml"
    assert (out / "design.yaml").read_bytes() == (ROOT / "designs/pioneer_rar.yaml").read_bytes()
    # no absolute path anywhere in the manifest
    assert not [s for s in _strings(manifest) if s.startswith("/") or str(ROOT) in s or str(tmp_path) in s]
    # every dependency's version
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    required = {
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in pyproject["project"]["dependencies"]
    }
    assert required == set(DEPENDENCIES)
    assert required | {"platform_sim", "python"} <= set(manifest["versions"])
    # the tables, as run --out writes them
    saved = pd.read_csv(out / "oc.csv", keep_default_na=False, na_values=[""]).drop(columns="spec_hash")
    pd.testing.assert_frame_equal(
        saved.fillna({"arm": "", "subgroup": ""}), rar.oc(), check_dtype=False, check_exact=False, rtol=1e-12
    )
    assert len(pd.read_parquet(out / "arms.parquet")) == N_SIMS * len(rar.design.arm_names)
    # and `platform-sim report DIR` builds its page
    from click.testing import CliRunner

    from platform_sim.cli import main

    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file()


def test_a_model_changed_in_memory_is_saved_as_yaml_that_loads_back(tmp_path):
    design = ps.load_design("allcomer_fixed")
    changed = design.model_copy(update={"description": "allcomer_fixed, described again in memory"})
    res = ps.run(changed, "pioneer_null", n_sims=20, seed=1)
    out = res.save(tmp_path / "changed")
    text = (out / "design.yaml").read_text()
    assert text.startswith("# design allcomer_fixed, written from the model held in memory")
    rd = load_run(out)  # checks the spec hash of the copies against the manifest
    assert rd.spec.design == changed and rd.manifest["design"]["file"] is None


def test_report_from_memory(rar, tmp_path):
    path = rar.report(tmp_path / "pages" / "rar.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<img ") >= 5
    assert "made from Python" in page and "designs/pioneer_rar.yaml" in page
    assert str(ROOT) not in page and str(tmp_path) not in page


# --------------------------------------------------------------------------- compare


def test_compare_takes_models_and_names_alike():
    design, scenario = ps.load_design("allcomer_fixed"), ps.load_scenario("allcomer_effect")
    by_model = ps.compare([design, "lungmap_umbrella"], [scenario], n_sims=40, seed=5)
    by_name = ps.compare(["allcomer_fixed", "lungmap_umbrella"], ["allcomer_effect"], n_sims=40, seed=5)
    pd.testing.assert_frame_equal(by_model.table, by_name.table)
    pd.testing.assert_frame_equal(by_model.pairs, by_name.pairs)
    assert isinstance(by_model, ps.Comparison) and by_model.reference == "allcomer_fixed"
    assert set(by_model.scenarios) == {"allcomer_effect"} and set(by_model.designs) == {
        "allcomer_fixed",
        "lungmap_umbrella",
    }
    assert list(by_model.winners().columns)[:3] == ["scenario", "metric", "best"]


def test_suites_load_and_expand_in_compare():
    suite = ps.load_suite("core")
    assert suite.name == "core" and suite.null_scenario in suite.scenarios and len(suite.designs) >= 2
    with pytest.raises(ConfigError, match="no such suite 'nope'"):
        ps.compare("suite:nope", ["pioneer_null"], n_sims=10)
    with pytest.raises(ConfigError, match="no such suite 'nope'"):
        ps.compare(["allcomer_fixed"], "suite:nope", n_sims=10)


def test_duplicate_designs_are_a_clear_error():
    design = ps.load_design("allcomer_fixed")
    twin = design.model_copy(update={"description": "the same name, another object"})
    with pytest.raises(ConfigError, match="both named 'allcomer_fixed'; rename one"):
        ps.compare([design, twin], ["pioneer_null"], n_sims=10)
    with pytest.raises(ConfigError, match="both named 'allcomer_fixed'"):
        ps.compare(["allcomer_fixed", twin], ["pioneer_null"], n_sims=10)
    with pytest.raises(ConfigError, match="listed twice"):
        ps.compare([twin, twin], ["pioneer_null"], n_sims=10)
    with pytest.raises(ConfigError, match="none given"):
        ps.compare([], ["pioneer_null"], n_sims=10)


def test_calibrated_comparison_plots_and_reports(calibrated, tmp_path):
    from matplotlib.figure import Figure

    assert list(calibrated.designs) == ["pioneer_rar", "allcomer_rar_copy"]
    assert not calibrated.calibration.empty and not calibrated.frontier.empty
    for kind in ("paired", "frontier", "claims"):
        assert isinstance(calibrated.plot(kind), Figure), kind
    one = calibrated.plot("frontier", scenario="pioneer_alternative")
    assert len([a for a in one.axes if a.get_visible()]) == 1
    with pytest.raises(ValueError, match="not an alternative scenario"):
        calibrated.plot("frontier", scenario="pioneer_null")
    with pytest.raises(ValueError, match="unknown"):
        calibrated.plot("pie")
    path = calibrated.report(tmp_path / "compare.html")
    page = path.read_text()
    assert "Which design? 2 designs on 2 scenarios" in page and "calibrated to FWER" in page
    assert page.count("<img ") >= 3 and str(ROOT) not in page


def test_frontier_needs_calibration():
    cmp = ps.compare(["allcomer_fixed", "allcomer_rar"], ["pioneer_null"], n_sims=20, seed=1)
    with pytest.raises(ValueError, match="null_scenario= and target_fwer="):
        cmp.plot("frontier")
