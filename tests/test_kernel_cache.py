"""The compiled-kernel cache shipped with an installed package (platform_sim/_kernel_cache.py,
hatch_build.py): keyed on the source's content, used from another folder than the one it was built
in, never in the way of numba's default caching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from platform_sim import _kernel_cache

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, pythonpath: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter whose package is the one in ``pythonpath``; its stdout."""
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", _kernel_cache.BUILD_ENV)}
    full.update(env, PYTHONPATH=str(pythonpath))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full,
        cwd=pythonpath,  # `python -c` puts the working folder first on the path
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _copy_package(to: Path) -> Path:
    """A copy of the package without caches, every file with a new modification time (as pip leaves
    an installed file)."""
    shutil.copytree(
        ROOT / "platform_sim", to / "platform_sim", ignore=shutil.ignore_patterns("__pycache__", "_kernels")
    )
    for path in (to / "platform_sim").rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    return to


def test_the_locator_is_registered_first():
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    assert _kernel_cache.registered is not None
    assert impl._locator_classes[0] is _kernel_cache.registered


def test_unknown_numba_internals_leave_numba_as_it_is(monkeypatch):
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    before = list(impl._locator_classes)
    monkeypatch.delattr(caching, "_CacheLocator")
    assert _kernel_cache._register() is None
    assert impl._locator_classes == before


def test_the_index_stamp_is_the_source_content_not_its_modification_time(tmp_path):
    def kernel():
        return 1

    first, second, other = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    first.write_text("x = 1\n")
    second.write_text("x = 1\n")
    other.write_text("x = 2\n")
    os.utime(first, (1_000_000_000, 1_000_000_000))
    os.utime(second, (1_700_000_000, 1_700_000_000))
    locator = _kernel_cache.registered
    stamps = [locator(kernel, str(p), tmp_path).get_source_stamp() for p in (first, second, other)]
    assert stamps[0] == stamps[1]
    assert stamps[0] != stamps[2]


def test_a_shipped_cache_is_used_only_with_the_versions_it_was_compiled_with(tmp_path, monkeypatch):
    monkeypatch.delenv(_kernel_cache.BUILD_ENV, raising=False)
    monkeypatch.setattr(_kernel_cache, "SHIPPED", tmp_path)
    _kernel_cache.cache_root.cache_clear()
    try:
        assert _kernel_cache.cache_root() is None  # no manifest: a checkout or an editable install
        _kernel_cache.cache_root.cache_clear()
        _kernel_cache.write_manifest(tmp_path)
        assert _kernel_cache.cache_root() == tmp_path
        _kernel_cache.cache_root.cache_clear()
        recorded = json.loads((tmp_path / _kernel_cache.MANIFEST).read_text())
        (tmp_path / _kernel_cache.MANIFEST).write_text(json.dumps({**recorded, "numpy": "0.0.1"}))
        assert _kernel_cache.cache_root() is None  # another numpy: numba's default caching
    finally:
        _kernel_cache.cache_root.cache_clear()


def test_a_read_only_shipped_cache_is_copied_to_a_user_folder(tmp_path, monkeypatch):
    from numba.core import config

    shipped, user = tmp_path / "shipped", tmp_path / "user"
    (shipped / "posterior").mkdir(parents=True)
    (shipped / "posterior" / "beta._merge_runs-1.py311.nbi").write_bytes(b"index")
    monkeypatch.setenv(_kernel_cache.BUILD_ENV, str(shipped))
    monkeypatch.setattr(config, "CACHE_DIR", str(user))
    really_writable = _kernel_cache.writable
    monkeypatch.setattr(
        _kernel_cache, "writable", lambda folder: not folder.is_relative_to(shipped) and really_writable(folder)
    )
    for cached in (_kernel_cache.cache_root, _kernel_cache.cache_folder):
        cached.cache_clear()
    try:
        folder = _kernel_cache.cache_folder("posterior")
    finally:
        for cached in (_kernel_cache.cache_root, _kernel_cache.cache_folder):
            cached.cache_clear()
    assert folder is not None and folder.is_relative_to(user)
    assert (folder / "beta._merge_runs-1.py311.nbi").read_bytes() == b"index"


def test_every_cached_kernel_of_the_package_uses_the_shipped_locator(tmp_path):
    # numba picks a kernel's locator when its decorator runs: a module that decorates before
    # importing _kernel_cache would cache its kernels where no installation ships them
    out = _python(
        """
        import importlib, pkgutil
        import platform_sim
        from numba.core.dispatcher import Dispatcher
        seen = {}
        for info in pkgutil.walk_packages(platform_sim.__path__, "platform_sim."):
            if info.name.startswith(("platform_sim.bayes", "platform_sim.plot", "platform_sim.report")):
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, Dispatcher) and value._cache.cache_path is not None:
                    seen[value.py_func.__module__ + "." + name] = type(value._cache._impl.locator).__name__
        print(len(seen), sorted(set(seen.values())))
        """,
        ROOT,
        **{_kernel_cache.BUILD_ENV: str(tmp_path)},
    )
    count, kinds = out.split(" ", 1)
    assert int(count) >= 50
    assert kinds.strip() == "['ShippedKernelLocator']"


def test_help_does_not_import_numba():
    out = _python(
        """
        import sys
        from platform_sim.cli import main
        try:
            main.main(["--help"])
        except SystemExit:
            pass
        print("numba" in sys.modules)
        """,
        ROOT,
    )
    assert out.strip().splitlines()[-1] == "False"


_COMPILE_ONE = """
    from platform_sim.posterior import beta
    import numpy as np
    beta._merge_runs(np.array([1.0, 3.0, 2.0, 4.0]), 4, 2, np.empty(4))
    print(sum(beta._merge_runs.stats.cache_hits.values()), sum(beta._merge_runs.stats.cache_misses.values()))
"""


def test_a_cache_built_in_one_folder_is_used_from_a_copy_with_new_modification_times(tmp_path):
    built = tmp_path / "built"
    # build: the kernel compiles (a miss) and is written to the build folder
    assert _python(_COMPILE_ONE, ROOT, **{_kernel_cache.BUILD_ENV: str(built)}).split() == ["0", "1"]
    _python(
        f"from platform_sim import _kernel_cache; _kernel_cache.write_manifest(__import__('pathlib').Path({str(built)!r}))",
        ROOT,
    )
    installed = _copy_package(tmp_path / "site")
    shutil.copytree(built, installed / "platform_sim" / "_kernels")
    # installed copy, other path and modification times: loaded from the shipped folder
    assert _python(_COMPILE_ONE, installed).split() == ["1", "0"]
    # a copy without a shipped cache compiles as before (numba's in-tree __pycache__)
    plain = _copy_package(tmp_path / "plain")
    assert _python(_COMPILE_ONE, plain).split() == ["0", "1"]
    assert list((plain / "platform_sim" / "posterior" / "__pycache__").glob("beta._merge_runs-*.nbi"))


@pytest.mark.slow
def test_a_built_and_installed_wheel_runs_the_default_design_without_compiling(tmp_path):
    pytest.importorskip("hatchling")
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", _kernel_cache.BUILD_ENV)}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-build-isolation", "--no-deps", "-w", str(wheels), str(ROOT)], env=env, check=True
    )
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], env=env, check=True)
    assert (site / "platform_sim" / "_kernels" / _kernel_cache.MANIFEST).is_file()
    done = subprocess.run(
        [sys.executable, "-m", "platform_sim.cli", "run", "--n-sims", "1", "--quiet"],
        env={**env, "PYTHONPATH": str(site), "NUMBA_DEBUG_CACHE": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "data loaded" in done.stdout
    assert "data saved" not in done.stdout, [line for line in done.stdout.splitlines() if "saved" in line]


def test_the_build_environment_holds_every_runtime_dependency_a_simulation_imports():
    # hatch_build.py installs only these runtime dependencies in pip's build environment: one that a
    # run imports and that is missing there would leave the wheel without compiled kernels
    import importlib.util
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    out = _python(
        """
        import contextlib, io, sys
        from importlib.metadata import packages_distributions
        from platform_sim.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            main.main(["run", "--n-sims", "1", "--quiet"], standalone_mode=False)
        owners = packages_distributions()
        print(" ".join(sorted({d for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])})))
        """,
        ROOT,
    )
    imported = {canonicalize_name(name) for name in out.split()}
    runtime = {
        canonicalize_name(Requirement(d).name)
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert "numba" in imported and "numpy" in imported
    assert (imported & runtime) <= hook.COMPILE_DEPENDENCIES, (imported & runtime) - hook.COMPILE_DEPENDENCIES


_LOAD_AND_COMPILE = """
    import sys
    import numpy as np
    from numba import njit
    from platform_sim.posterior import beta
    runs = np.array([1.0, 3.0, 2.0, 4.0])
    out = np.empty(4)
    beta._merge_runs(runs, 4, 2, out)
    hits = sum(beta._merge_runs.stats.cache_hits.values())
    print(hits, "numba.np.arraymath" in sys.modules, out.tolist())

    @njit
    def total(a):  # no cache: numba's compiler readies itself
        return np.sum(np.sort(a))

    print(total(runs), "numba.np.arraymath" in sys.modules)
"""


def test_a_cached_kernel_loads_without_readying_the_compiler_and_computes_the_same(tmp_path):
    env = {_kernel_cache.BUILD_ENV: str(tmp_path / "built")}
    compiled = _python(_LOAD_AND_COMPILE, ROOT, **env).splitlines()
    loaded = _python(_LOAD_AND_COMPILE, ROOT, **env).splitlines()
    assert compiled[0].startswith("0 True ")  # compiled: the compiler was readied
    assert loaded[0].startswith("1 False ")  # loaded: numba's compiler registries never imported
    assert compiled[0].split(" ", 2)[2] == loaded[0].split(" ", 2)[2] == "[1.0, 2.0, 3.0, 4.0]"
    assert compiled[1] == loaded[1] == "10.0 True"  # a later compilation in the same process works


def test_only_the_package_kernels_load_the_light_way():
    from platform_sim.posterior import beta

    class Cache:
        def __init__(self, py_func):
            self._py_func = py_func

    def elsewhere():
        return 1

    assert _kernel_cache.light_loading
    assert _kernel_cache._ours(Cache(beta._merge_runs.py_func))
    assert not _kernel_cache._ours(Cache(elsewhere))


def test_unknown_numba_internals_keep_numba_loading(monkeypatch):
    from numba.core import caching

    monkeypatch.setattr(caching.FunctionCache, "load_overload", caching.Cache.load_overload)
    monkeypatch.delattr(caching.Cache, "_guard_against_spurious_io_errors")
    assert _kernel_cache._load_without_compiler() is False
    assert caching.FunctionCache.load_overload is caching.Cache.load_overload


def test_the_warm_up_of_a_run_compiles_only_what_the_cache_lacks(monkeypatch):
    from platform_sim.posterior import beta

    beta.warm_up()  # compiled or loaded: every kernel now has its index in the cache
    kernels = (beta._prob_best_kernel, beta._pair_kernel, beta._all_within_kernel)
    assert all(beta._has_cache(k) for k in kernels)
    assert not beta._has_cache(object())  # unknown: as if not cached
    codegen = beta._pair_kernel.targetctx.codegen()
    with monkeypatch.context() as patch:  # compiled for another machine only: not cached for this one
        patch.setattr(codegen, "magic_tuple", lambda: ("another-cpu", "", ""))
        assert not beta._has_cache(beta._pair_kernel)

    calls = []
    for name in ("prob_best_and_vs_control", "prob_greater", "prob_within", "prob_all_within"):
        monkeypatch.setattr(beta, name, lambda *a, name=name, **k: calls.append(name))
    beta.warm_up(if_uncached=True)
    assert calls == []  # all cached: each loads when a design first uses it
    monkeypatch.setattr(beta, "_has_cache", lambda kernel: kernel is not beta._pair_kernel)
    beta.warm_up(if_uncached=True)
    assert sorted(set(calls)) == ["prob_all_within", "prob_best_and_vs_control", "prob_greater", "prob_within"]


def test_a_kernel_missing_from_the_cache_is_not_taken_for_cached(tmp_path):
    out = _python(
        """
        from platform_sim.posterior import beta
        print([beta._has_cache(k) for k in (beta._prob_best_kernel, beta._pair_kernel, beta._all_within_kernel)])
        """,
        ROOT,
        **{_kernel_cache.BUILD_ENV: str(tmp_path / "empty")},
    )
    assert out.strip() == "[False, False, False]"


_PROBE = """
    from platform_sim import _probe_kernel
    print(_probe_kernel.value(), sum(_probe_kernel.value.stats.cache_hits.values()))
"""


def test_a_kernel_is_compiled_again_when_a_module_it_compiled_in_changes(tmp_path):
    # numba stamps a cached kernel with its own file only: a kernel that compiled in a constant of
    # another module would be loaded from the cache with the old constant after that module changed
    tree = _copy_package(tmp_path)
    package = tree / "platform_sim"
    (package / "_probe_constant.py").write_text("LEVEL = 1\n")
    (package / "_probe_kernel.py").write_text(
        textwrap.dedent(
            """
            from numba import njit

            from . import _kernel_cache  # noqa: F401
            from ._probe_constant import LEVEL


            @njit(cache=True)
            def value():
                return LEVEL
            """
        )
    )
    assert _python(_PROBE, tree).split() == ["1", "0"]  # compiled
    assert _python(_PROBE, tree).split() == ["1", "1"]  # loaded from the cache
    (package / "_probe_constant.py").write_text("LEVEL = 2\n")
    assert _python(_PROBE, tree).split() == ["2", "0"]  # compiled again, not the stale kernel
    assert _python(_PROBE, tree).split() == ["2", "1"]
