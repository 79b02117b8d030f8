"""A simulating process keeps the memory of its temporary arrays from one chunk to the next
(platform_sim.backends.tune_allocator): counted in page faults, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# three runs of the core design in one fresh process, the minor page faults of each
_RUNS = """
    import json, resource
    from platform_sim.backends import tune_allocator
    from platform_sim.runner import run
    from platform_sim.spec import Spec

    spec = Spec.load("benchmark_four_arm", "benchmark_four_arm")
    faults = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        run(spec=spec, n_sims=1000, seed=1)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    from numpy._core.multiarray import _set_madvise_hugepage

    huge = _set_madvise_hugepage(False)  # whether numpy still asked for huge pages (the previous setting)
    print(json.dumps({"tuned": tune_allocator(), "faults": faults, "huge_pages": huge}))
"""


def _runs(**env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RUNS)], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are glibc's")
def test_later_chunks_reuse_the_memory_of_earlier_ones():
    tuned = _runs()
    assert tuned["tuned"] is True
    # the environment's own setting is kept: the arrays are then mapped anew in every chunk
    kept = _runs(MALLOC_TRIM_THRESHOLD_="131072")
    assert kept["tuned"] is False
    # after the first run the memory is there: a third run of 1,000 trials touches almost no new page
    # (measured: a handful, against about 50,000 with glibc's memory mapped per array)
    assert tuned["faults"][2] < 1_000
    assert kept["faults"][2] > 10 * max(tuned["faults"][2], 100)
    # numpy no longer asks for transparent huge pages on the heap it now reuses
    assert tuned["huge_pages"] is False


def test_tune_allocator_is_done_once_per_process(monkeypatch):
    from platform_sim import backends

    calls = []
    monkeypatch.setattr(backends, "_tuned", None)
    monkeypatch.setattr(backends, "_set_malloc", lambda: calls.append(1) or True)
    assert backends.tune_allocator() is True
    assert backends.tune_allocator() is True
    assert calls == [1]


def test_the_environment_s_allocator_settings_are_kept(monkeypatch):
    from platform_sim import backends

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert backends._set_malloc() is False
