"""The compiled kernels' own sorts (platform_sim/_sorting.py): equal to numpy's, used by every
kernel in place of numpy's sorts, whose cached helpers can take each other's place across processes.

numba compiles ``np.sort`` / ``np.argsort`` (and the selections behind ``np.median``, ``np.partition``,
``np.percentile``) as helpers named by a counter of the compiling process; two cached kernels compiled
in different processes can then hold helpers of the same name that compare differently, and a process
that loads both from the cache calls one in place of the other and crashes. The static test keeps
those calls out of every compiled kernel; the slow test compiles the families' kernels into an empty
cache in separate processes and then loads them all in one.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_sim import _kernel_cache
from platform_sim._sorting import sort_order, sort_values
from platform_sim.posterior.survival import SCORE_METHODS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "platform_sim"

#: numpy functions numba compiles with per-process helper names (sorts, and the quickselect of
#: medians, partitions and percentiles), and the array methods and builtin that sort.
_NUMPY_SORTS = {
    "sort",
    "argsort",
    "lexsort",
    "unique",
    "partition",
    "argpartition",
    "median",
    "nanmedian",
    "percentile",
    "nanpercentile",
    "quantile",
    "nanquantile",
}
_METHOD_SORTS = {"sort", "argsort", "partition", "argpartition"}


def _ties_and_scales(seed: int, n: int) -> np.ndarray:
    """n values of random scale with many ties (a fifth share one value, the rest few distinct)."""
    rng = np.random.default_rng(seed)
    if rng.uniform() < 0.5:
        values = rng.normal(size=n) * 10.0 ** rng.integers(-9, 9)
        values[rng.uniform(size=n) < 0.2] = 0.5
    else:
        values = rng.integers(0, max(1, n // 4), size=n).astype(np.float64)  # ties everywhere
    values[rng.uniform(size=n) < 0.05] = np.inf
    values[rng.uniform(size=n) < 0.05] = -np.inf
    return values


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 700))
def test_sort_values_equals_numpys_sort(seed, n):
    values = _ties_and_scales(seed, n)
    before = values.copy()
    out = sort_values(values)
    assert np.array_equal(out, np.sort(values))
    assert np.array_equal(values, before)  # a copy: the input is left as it was


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 700))
def test_sort_order_equals_numpys_stable_argsort(seed, n):
    values = _ties_and_scales(seed, n)
    before = values.copy()
    order = sort_order(values)
    assert order.dtype == np.int64
    assert np.array_equal(order, np.argsort(values, kind="stable"))
    assert np.array_equal(values, before)


def test_nan_sorts_last_as_in_numpy():
    rng = np.random.default_rng(11)
    for n in (1, 5, 16, 17, 40, 300):
        values = np.round(rng.normal(size=n), 1)
        values[rng.uniform(size=n) < 0.3] = np.nan
        assert np.array_equal(sort_values(values), np.sort(values), equal_nan=True)
        assert np.array_equal(sort_order(values), np.argsort(values, kind="stable"))


def test_every_length_around_the_insertion_runs_and_merge_passes():
    rng = np.random.default_rng(2)
    for n in range(0, 140):
        values = rng.integers(0, 7, size=n).astype(np.float64)
        assert np.array_equal(sort_values(values), np.sort(values))
        assert np.array_equal(sort_order(values), np.argsort(values, kind="stable"))
    strided = rng.normal(size=(50, 3))[:, 1]  # a non-contiguous view
    assert np.array_equal(sort_order(strided), np.argsort(strided, kind="stable"))


def _tied_trials(seed, t=10, n=90):
    rng = np.random.default_rng(seed)
    entry = np.round(rng.uniform(0, 12, (t, n)), 0)  # whole months: ties in entry, time and cut - entry
    outcome = np.round(rng.exponential(6, (t, n)), 0)
    dropout = np.round(rng.exponential(40, (t, n)), 0)
    return entry, np.minimum(outcome, dropout), outcome <= dropout, rng, (t, n)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_survival_statistics_do_not_depend_on_the_patients_order_within_ties(seed):
    """Every survival kernel that sorts (tied-time grouping, the cut-off merges) gives the same bits
    whatever the order of the patients, so the order a sort leaves tied times in cannot matter."""
    from platform_sim.posterior.survival import logrank_at_cuts, logrank_vs_control, score_at_cuts

    entry, followed, event, rng, (t, n) = _tied_trials(seed)
    experimental = rng.random((t, n)) < 0.5
    stratum = rng.integers(0, 4, (t, n))
    arm = rng.integers(-1, 3, (t, n))  # -1: not in the analysis
    time = np.where(rng.random((t, n)) < 0.05, np.nan, followed)
    cuts = np.sort(rng.uniform(6, 30, (t, 3)), axis=1)
    perm = np.argsort(rng.random((t, n)), axis=1)  # a different shuffle of each trial's patients
    shuffle = lambda x: np.take_along_axis(x, perm, axis=1)  # noqa: E731
    runs = [
        (logrank_vs_control, (time, event, arm, None, 0, 3)),
        (logrank_at_cuts, (entry, followed, event, experimental, cuts)),
        *[(score_at_cuts, (entry, followed, event, experimental, cuts, stratum, m)) for m in SCORE_METHODS],
    ]
    for f, args in runs:
        shuffled = tuple(shuffle(a) if isinstance(a, np.ndarray) and a.shape == (t, n) else a for a in args)
        for a, b in zip(f(*args), f(*shuffled), strict=True):
            assert np.array_equal(a, b, equal_nan=True), f.__name__
            assert np.isfinite(a).sum() > 0


def _compiled_functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name in ("njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc"):
                    yield node
                    break


def _sort_calls(function: ast.FunctionDef) -> list[str]:
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "sorted":
            found.append(f"line {node.lineno}: sorted(...)")
        elif isinstance(f, ast.Attribute):
            numpy_call = isinstance(f.value, ast.Name) and f.value.id in ("np", "numpy")
            if (numpy_call and f.attr in _NUMPY_SORTS) or (not numpy_call and f.attr in _METHOD_SORTS):
                found.append(f"line {node.lineno}: {ast.unparse(f)}(...)")
    return found


def test_no_compiled_kernel_calls_a_numpy_sort():
    offenders = []
    n_kernels = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in _compiled_functions(tree):
            n_kernels += 1
            offenders += [f"{path.relative_to(ROOT)}:{function.name} {c}" for c in _sort_calls(function)]
    assert n_kernels > 100  # the walk does find the package's kernels
    assert not offenders, "use platform_sim._sorting.sort_values / sort_order instead:\n" + "\n".join(offenders)


def test_the_static_check_catches_each_form_of_sort():
    source = textwrap.dedent(
        """
        @njit(cache=True)
        def a(x):
            return np.sort(x), np.argsort(-x), x.argsort(), np.median(x)

        @numba.njit
        def b(x):
            x.sort()
            return sorted(x)

        def not_compiled(x):
            return np.sort(x)
        """
    )
    tree = ast.parse(source)
    found = {f.name: _sort_calls(f) for f in _compiled_functions(tree)}
    assert set(found) == {"a", "b"}
    assert len(found["a"]) == 4 and len(found["b"]) == 2


_SCAN = """
import importlib, sys
import numpy as np
from numba import njit

for i in range(int(sys.argv[2])):  # compile i throwaway functions first: numba's name counter moves on by i
    exec(f"@njit\\ndef d{i}(x):\\n    return x + {i}\\nd{i}(1.0)")
for name in sys.argv[1].split(","):
    print(name, importlib.import_module(name).kernel(np.array([3.0, 1.0, 2.0, 1.0])).tolist())
"""


@pytest.mark.slow
def test_a_sort_and_an_argsort_compiled_at_every_counter_offset_load_together(tmp_path):
    """Two cached kernels, one sorting values and one an argsort, compiled in two processes whose name
    counters are offset by 0..8, then loaded in a third. With np.sort and np.argsort in their place
    (numba 0.65.1) an offset of 3 makes the loaded argsort return the sort's values as indices."""
    (tmp_path / "by_value.py").write_text(
        "from numba import njit\nfrom platform_sim._sorting import sort_values\n\n\n"
        "@njit(cache=True)\ndef kernel(x):\n    return sort_values(x)\n"
    )
    (tmp_path / "by_order.py").write_text(
        "from numba import njit\nfrom platform_sim._sorting import sort_order\n\n\n"
        "@njit(cache=True)\ndef kernel(x):\n    return sort_order(x)\n"
    )
    (tmp_path / "scan.py").write_text(_SCAN)
    expected = "by_value [1.0, 1.0, 2.0, 3.0]\nby_order [1, 3, 2, 0]\n"
    for offset in range(9):
        cache = tmp_path / f"cache{offset}"
        env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", _kernel_cache.BUILD_ENV)}
        env.update(
            PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
            NUMBA_CACHE_DIR=str(cache / "numba"),
            **{_kernel_cache.BUILD_ENV: str(cache / "package")},
        )
        outputs = []
        for modules, skip in (("by_value", 0), ("by_order", offset), ("by_value,by_order", 0)):
            done = subprocess.run(
                [sys.executable, str(tmp_path / "scan.py"), modules, str(skip)],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"offset {offset}, {modules}: exit {done.returncode}\n{done.stderr[-2000:]}"
            outputs.append(done.stdout)
        assert outputs[2] == expected, f"offset {offset}: {outputs[2]!r}"


# One small run of each family, each kernel set compiled in a process of its own, then all loaded in one.
_RUNS = {
    "survival": [("benchmark_event_driven", "textbook_two_arm"), ("seamless_pfs_os", "pfs_os_effect")],
    "looks": [("allcomer_fixed", "pioneer_alternative")],
    "hierarchical": [("hierarchical_borrowing", "pioneer_alternative"), ("battle", "battle_kim2011")],
    "platform": [("pioneer_platform", "pioneer_alternative")],
}


def _run_in_fresh_process(runs, cache: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import platform_sim.api as api
        for design, scenario in {runs!r}:
            api.run(design, scenario, n_sims=4, seed=3)
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", _kernel_cache.BUILD_ENV)}
    # the package's kernels go to an empty folder (installed or not), numba's others to another
    env.update(
        PYTHONPATH=str(ROOT),
        NUMBA_CACHE_DIR=str(cache / "numba"),
        **{_kernel_cache.BUILD_ENV: str(cache / "package")},
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800
    )


@pytest.mark.slow
def test_kernels_compiled_in_separate_processes_load_together_from_the_cache(tmp_path):
    for family, runs in _RUNS.items():
        done = _run_in_fresh_process(runs, tmp_path)
        assert done.returncode == 0, f"{family} (compiling): exit {done.returncode}\n{done.stderr[-3000:]}"
    assert any((tmp_path / "package").rglob("*.nbc"))  # the kernels were cached there
    every = [run for runs in _RUNS.values() for run in runs]
    done = _run_in_fresh_process(every, tmp_path)
    assert done.returncode == 0, f"all families (from the cache): exit {done.returncode}\n{done.stderr[-3000:]}"
