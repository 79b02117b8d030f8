"""What an install promises: optional extras fail clearly when missing, and the metadata agrees
with itself (README, CI script, pyproject, CITATION.cff)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import platform_sim
from platform_sim.backends import BackendError, open_backend
from platform_sim.cli import EXIT_BAD_INPUT, main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DASK_HINT = 'pip install "platform-sim[dask]"'


@pytest.fixture
def without_dask(monkeypatch):
    """Make ``import distributed`` fail as it does where the extra [dask] is not installed
    (a ``None`` entry in ``sys.modules`` makes the import raise ModuleNotFoundError)."""
    for name in [m for m in sys.modules if m == "distributed" or m.startswith("distributed.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "distributed", None)


def test_dask_backend_without_dask_names_the_extra(without_dask):
    with pytest.raises(BackendError, match=re.escape(DASK_HINT)):
        open_backend("dask", workers=2)
    with pytest.raises(BackendError, match=re.escape(DASK_HINT)):
        open_backend("local", scheduler="tcp://127.0.0.1:8786")


@pytest.mark.parametrize(
    "options,flag",
    [(["--backend", "dask"], "--backend dask"), (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler")],
)
@pytest.mark.parametrize(
    "command",
    [
        ["run", "--n-sims", "20"],
        ["compare", "--designs", "pioneer_rar", "--scenarios", "pioneer_null", "--n-sims", "20"],
    ],
)
def test_cli_without_dask_exits_2_with_the_install_command(without_dask, command, options, flag):
    result = CliRunner().invoke(main, [*command, *options, "--quiet"])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {flag}") and DASK_HINT in errors[0], errors
    assert "Traceback" not in result.output


def test_the_dask_extra_holds_distributed_and_the_core_does_not():
    project = PYPROJECT["project"]
    assert not [d for d in project["dependencies"] if d.startswith("dask")]
    assert [d for d in project["optional-dependencies"]["dask"] if d.startswith("dask[distributed]")]
    # the fast test suite still exercises the Dask backend
    assert "platform-sim[dask]" in project["optional-dependencies"]["test"]
    assert "platform-sim[bayes]" in project["optional-dependencies"]["test-bayes"]


def _requirements():
    project = PYPROJECT["project"]
    yield from project["dependencies"]
    for extra in project["optional-dependencies"].values():
        yield from extra


def test_no_dependency_is_capped():
    """Upper bounds break installs beside newer releases. Only the static-check tools of the extra
    [lint] are pinned (exactly), so that their new findings arrive in a commit."""
    capped = [r for r in _requirements() if "<" in r.split(";")[0]]
    assert capped == []
    pinned = [r for r in _requirements() if "==" in r]
    assert sorted(pinned) == sorted(PYPROJECT["project"]["optional-dependencies"]["lint"])


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Run the tests.*?```bash\n(.*?)\n```", readme, re.S)
    assert block, "README.md lost its 'Run the tests:' block"
    return block.group(1)


def test_readme_test_command_installs_both_test_extras():
    """An editable installation: the suite, its console-script subprocesses and the notebooks use the
    checkout's files, so each kernel compiles once (README: *Run the tests*)."""
    command = _readme_test_command()
    assert 'pip install -e ".[test,test-bayes]"' in command and command.endswith("python -m pytest")


def test_ci_installs_what_the_readme_says():
    """.ci/run installs the README's test extras (and the tool extras), editable as the README does, and
    runs the same pytest."""
    ci = (ROOT / ".ci" / "run").read_text()
    installs = re.findall(r'pip install -e "\.\[([a-z,\-]+)\]"', ci)
    assert installs, ci
    extras = set(",".join(installs).split(","))
    assert {"test", "test-bayes"} <= extras
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])
    assert re.search(r"^\s*python -m pytest\s*$", ci, re.M)


def test_pre_commit_hooks_are_the_ci_checks_at_the_pinned_versions():
    """The git hooks (.pre-commit-config.yaml) run the static checks of .ci/run with the tools the extra
    [lint] pins: ruff check and ruff format from PyPI at the pinned version, mypy and the import
    contracts in the project's own environment, reading their configuration from pyproject.toml."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert all(repo["repo"] == "local" for repo in config["repos"])  # every hook from PyPI or the environment
    pins = dict(r.split("==") for r in PYPROJECT["project"]["optional-dependencies"]["lint"])
    for hook in ("ruff", "ruff-format"):
        assert hooks[hook]["additional_dependencies"] == [f"ruff=={pins['ruff']}"], hook
    assert hooks["ruff"]["entry"].split()[:2] == ["ruff", "check"]
    assert hooks["ruff-format"]["entry"].split()[:2] == ["ruff", "format"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^ruff check ", ci, re.M) and re.search(r"^mypy$", ci, re.M)
    assert re.search(r"^ruff format --check ", ci, re.M) and "stages" not in hooks["ruff-format"]
    for hook in ("mypy", "lint-imports"):  # no file arguments: the files come from pyproject.toml, as in CI
        assert hooks[hook]["entry"] == hook and hooks[hook]["language"] == "system"
        assert hooks[hook]["pass_filenames"] is False
    assert "pre-commit" in " ".join(PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_version_and_licence_agree():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == platform_sim.__version__
    assert citation["license"] == PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "platform_sim" / "py.typed").is_file()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{platform_sim.__version__}]" in changelog
