"""Wheel build hook: compile the numba kernels at installation, so that the first run does not.

``pip install .`` builds a wheel and installs it. While the wheel is built (never for an editable
install), this hook runs a few simulated trials of every shipped design, in a separate process of the
build environment, with ``PLATFORM_SIM_KERNEL_CACHE_BUILD`` naming a temporary folder; every kernel
compiled then is cached there (see ``platform_sim/_kernel_cache.py``), and the wheel ships the folder
as ``platform_sim/_kernels/``. The build environment holds the runtime dependencies a simulation
imports (:meth:`KernelCacheHook.dependencies`), resolved from the same specifiers as the
installation's, so the kernels are compiled with the numba and numpy the installed package will use;
if they differ all the same, the shipped cache is ignored and kernels compile on first use.

The cache is specific to the CPU it was compiled on; pip builds the wheel on the machine that
installs it. A wheel built elsewhere still installs and runs, compiling on first use whatever
its cache does not hold for this CPU.

``PLATFORM_SIM_NO_KERNEL_CACHE=1`` builds a wheel without compiled kernels. If compiling fails, the
wheel is built without them (and says so on the build's output), never the installation.

Run as a script (``python hatch_build.py FOLDER``, the package importable), it compiles into FOLDER.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The package folder the compiled kernels are shipped in.
WHEEL_FOLDER = "platform_sim/_kernels"
#: Trials of each design at build time: enough for trials to stop at different looks, so that the
#: kernels are also compiled for the strided slices of a batch (one trial gives contiguous ones only).
TRIALS = 50
#: The runtime dependencies a simulation imports, installed in the build environment from the
#: project's own specifiers (the others draw plots, write reports and show progress bars).
COMPILE_DEPENDENCIES = frozenset(
    {"numpy", "scipy", "pandas", "pyarrow", "pydantic", "pyyaml", "click", "numba", "threadpoolctl"}
)


def _scenarios_for(design_file: Path, all_scenarios: list[str], default: str) -> list[str]:
    """The scenarios a design is run on at build time: those its calibration names, else the first
    shipped scenario (the default one first) that loads with it."""
    import yaml

    named: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("null_scenario", "alternative_scenario") and isinstance(value, str):
                    named.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(design_file.read_text()))
    if named:
        return list(dict.fromkeys(named))
    from platform_sim.config import ConfigError
    from platform_sim.spec import Spec

    for scenario in [default, *(s for s in all_scenarios if s != default)]:
        try:
            Spec.load(str(design_file), scenario)
        except ConfigError:
            continue
        return [scenario]
    return []


def compile_kernels(folder: Path, root: Path) -> None:
    """Run a few trials of every shipped design (``root``: the checkout) on its scenarios, in this process,
    with the kernel cache written to ``folder``; then record the versions compiled with."""
    import contextlib
    import io

    os.environ["PLATFORM_SIM_KERNEL_CACHE_BUILD"] = str(folder)
    from platform_sim import _kernel_cache
    from platform_sim.cli import main
    from platform_sim.config.defaults import DEFAULT_DESIGN, DEFAULT_SCENARIO

    if _kernel_cache.registered is None:
        raise RuntimeError("numba's cache internals are not the ones platform_sim knows: no kernels shipped")
    designs = sorted((root / "designs").glob("*.yaml"), key=lambda p: (p.stem != DEFAULT_DESIGN, p.stem))
    scenarios = sorted(p.stem for p in (root / "scenarios").glob("*.yaml"))
    failed = []
    for design in designs:
        for scenario in _scenarios_for(design, scenarios, DEFAULT_SCENARIO):
            start = time.perf_counter()
            args = ["run", "--design", str(design), "--scenario", scenario, "--n-sims", str(TRIALS), "--quiet"]
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    main.main(args, standalone_mode=False)
            except (Exception, SystemExit) as exc:  # the other designs' kernels are still good
                failed.append(f"{design.stem} on {scenario}: {exc!r}")
                continue
            print(f"  {design.stem} on {scenario}: {time.perf_counter() - start:.1f} s", flush=True)
    for line in failed:
        print(f"  not compiled: {line}", file=sys.stderr, flush=True)
    _kernel_cache.write_manifest(folder)


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script without hatchling
    BuildHookInterface = object  # type: ignore[assignment,misc]


class KernelCacheHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Adds the compiled kernels to a standard (not editable) wheel."""

    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        """The runtime dependencies the build step needs, with the project's specifiers: the kernels
        are compiled with the numba and numpy the installation resolves from the same ones."""
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        return [
            d for d in self.metadata.core.dependencies if canonicalize_name(Requirement(d).name) in COMPILE_DEPENDENCIES
        ]

    def initialize(self, version: str, build_data: dict) -> None:
        self._folder = None
        if self.target_name != "wheel" or version != "standard" or os.environ.get("PLATFORM_SIM_NO_KERNEL_CACHE"):
            return
        folder = Path(tempfile.mkdtemp(prefix="platform_sim_kernels_"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (self.root, env.get("PYTHONPATH")) if p)
        env.pop("PLATFORM_SIM_KERNEL_CACHE_BUILD", None)
        start = time.perf_counter()
        print("platform-sim: compiling the numba kernels of the shipped designs", flush=True)
        done = subprocess.run(
            [sys.executable, str(Path(self.root) / "hatch_build.py"), str(folder)],
            env=env,
            cwd=self.root,
            check=False,
            capture_output=True,
            text=True,
        )
        print(done.stdout, end="", flush=True)
        if done.returncode != 0 or not (folder / "manifest.json").is_file():
            print(
                "platform-sim: WARNING: the kernels could not be compiled at build time; the wheel ships "
                f"none and they will compile on first use:\n{done.stderr[-3000:]}",
                file=sys.stderr,
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)
            return
        if "not compiled:" in done.stderr:
            print(done.stderr[-3000:], file=sys.stderr, flush=True)
        print(f"platform-sim: kernels compiled in {time.perf_counter() - start:.1f} s", flush=True)
        self._folder = folder
        build_data["force_include"][str(folder)] = WHEEL_FOLDER
        # the compiled kernels hold machine code for this Python and platform: tag the wheel so
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if getattr(self, "_folder", None) is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


if __name__ == "__main__":
    compile_kernels(Path(sys.argv[1]), Path(__file__).resolve().parent)
