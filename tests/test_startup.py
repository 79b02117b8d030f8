"""What the command line loads: `platform-sim --help` and a small run start fast because heavy libraries
load only where they are used. These check which modules a fresh interpreter holds, not how long it
took (timings belong to benchmarks/targets.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("numpy", "pandas", "pyarrow", "numba", "llvmlite", "scipy", "pydantic", "yaml")

# Run the CLI in a fresh interpreter and report, as JSON on stderr at exit, the modules it loaded.
_LOADED_AT_EXIT = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["platform-sim", *sys.argv[1:]]
runpy.run_module("platform_sim.cli", run_name="__main__")
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _modules_after(*args: str) -> tuple[set[str], str]:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED_AT_EXIT, *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stderr.strip().splitlines()[-1])), out.stdout


def _top(modules: set[str], names) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


def test_importing_the_command_line_loads_no_heavy_library():
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys, platform_sim.cli; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        check=True,
    )
    loaded = set(json.loads(out.stdout))
    assert _top(loaded, HEAVY) == []


def test_help_loads_no_heavy_library():
    loaded, text = _modules_after("--help")
    assert "run" in text
    assert _top(loaded, HEAVY) == []


def test_a_small_run_of_the_default_design_loads_only_what_it_uses():
    # the default design has looks and a binary endpoint: the terminal table needs no pandas, its
    # scenario no illness-death model (scipy.optimize)
    loaded, text = _modules_after("run", "--n-sims", "1", "--quiet")
    assert "P(any claim)" in text
    assert _top(loaded, ("pandas", "pyarrow")) == []
    assert [m for m in loaded if m.startswith(("scipy.optimize", "scipy.stats", "scipy.integrate"))] == []
    assert "platform_sim.posterior.illness_death" not in loaded
    # its kernels load from the cache without readying numba's compiler (platform_sim/_kernel_cache.py)
    assert [m for m in loaded if m.startswith(("numba.np.arraymath", "numba.np.linalg", "numba.np.polynomial"))] == []


_TUNED_AT_EXIT = """
import atexit, gc, json, os, runpy, sys
atexit.register(lambda: print(json.dumps([os.environ.get("OPENBLAS_THREAD_TIMEOUT"), gc.get_threshold()[0],
                                          gc.get_freeze_count()]), file=sys.stderr))
sys.argv = ["platform-sim", *sys.argv[1:]]
runpy.run_module("platform_sim.cli", run_name="__main__")
"""


@pytest.mark.parametrize("given", [None, "20"])
def test_the_program_tunes_its_own_process_only(given):
    from platform_sim import cli

    env = _env()
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    if given is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = given
    out = subprocess.run(
        [sys.executable, "-c", _TUNED_AT_EXIT, "--help"], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    timeout, threshold, frozen = json.loads(out.stderr.strip().splitlines()[-1])
    assert timeout == (cli.OPENBLAS_IDLE if given is None else given)  # a value the user set is kept
    assert threshold == cli.GC_THRESHOLD
    assert frozen > 0  # every object frozen before the interpreter shuts down
    # the installed program is the same function
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["platform-sim"] == "platform_sim.cli:command_line"


def test_the_click_group_called_in_another_program_leaves_its_process_alone():
    import gc

    from click.testing import CliRunner

    from platform_sim.cli import main

    before = (os.environ.get("OPENBLAS_THREAD_TIMEOUT"), gc.get_threshold(), gc.get_freeze_count())
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert (os.environ.get("OPENBLAS_THREAD_TIMEOUT"), gc.get_threshold(), gc.get_freeze_count()) == before


def test_libyaml_reads_every_shipped_file_as_pyyaml_does():
    from platform_sim.config import load

    files = sorted(p for folder in ("designs", "scenarios") for p in (ROOT / folder).rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        fast = load._load_yaml_libyaml(text)
        assert fast is not None, path
        assert fast[0] == load._load_yaml_pyyaml(text), path


def test_yaml_libyaml_refuses_goes_to_pyyaml_and_its_message():
    from platform_sim.config import load

    duplicate = "name: a\narms: [1, 2]\nname: b\n"
    too_deep = "x: " + "[" * (load.MAX_NESTING + 5) + "]" * (load.MAX_NESTING + 5) + "\n"
    malformed = "name: a\n  arms: [1, 2\n"
    for text in (duplicate, too_deep, malformed):
        assert load._load_yaml_libyaml(text) is None
    with pytest.raises(load._YamlProblem, match=r"duplicate key 'name' at line 3 \(first given at line 1\)"):
        load.load_yaml(duplicate)
