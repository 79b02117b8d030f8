"""Runs at scale: identical results on every backend, chunk-by-chunk output, resume, grow and interruption."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from census import record_fault  # tests/census.py
from click.testing import CliRunner

from platform_sim.backends import Backend, DaskBackend, LocalProcesses
from platform_sim.checkpoint import Checkpoint
from platform_sim.cli import main
from platform_sim.rundir import TABLE_FILES, load_run
from platform_sim.runner import plan_chunks, run, stream, summarizer
from platform_sim.spec import Spec

CASES = [
    ("pioneer_rar", "pioneer_alternative", 240, 40),
    ("battle_stratified_rar", "stk11_keap1_ctla4", 60, 20),
    ("pioneer_platform", "pioneer_alternative", 16, 4),
]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _outputs(spec, n, chunk, backend):
    outs = list(stream(summarizer(spec), 11, plan_chunks(n, chunk), backend, records=True))
    return outs


def _same_results(a, b):
    """Two TrialResults hold the same names and bit-identical arrays (dtype and values)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert list(x) == list(y), f.name
            pairs = [(f"{f.name}.{k}", v, y[k]) for k, v in x.items()]
        else:
            pairs = [(f.name, x, y)]
        for name, u, v in pairs:
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype, name
                np.testing.assert_array_equal(u, v, err_msg=name)
            else:
                assert u == v, name


def _same_outputs(a, b):
    assert [o.chunk for o in a] == [o.chunk for o in b]
    for x, y in zip(a, b):
        assert x.summary.to_json() == y.summary.to_json()
        _same_results(x.results, y.results)


@pytest.fixture(scope="module")
def dask_backend():
    backend = DaskBackend(workers=2)
    yield backend
    backend.close()


@pytest.mark.parametrize("design,scenario,n,chunk", CASES)
def test_backends_give_bit_identical_results(design, scenario, n, chunk, dask_backend):
    """In this process, two local processes and a two-worker Dask LocalCluster give the same
    summaries and per-trial records, bit for bit."""
    spec = Spec.load(design, scenario)
    here = _outputs(spec, n, chunk, Backend())
    with LocalProcesses(2) as pool:
        local = _outputs(spec, n, chunk, pool)
    _same_outputs(here, local)
    _same_outputs(here, _outputs(spec, n, chunk, dask_backend))


def test_dask_workers_import_no_pymc(dask_backend):
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    list(stream(summarizer(spec), 1, plan_chunks(40, 20), dask_backend))
    loaded = dask_backend.client.run(lambda: sorted(m for m in ("pymc", "arviz", "pytensor") if m in sys.modules))
    assert len(loaded) == 2 and all(v == [] for v in loaded.values()), loaded


def test_tasks_of_several_chunks_keep_order_and_give_each_worker_two():
    from platform_sim.runner import tasks_of

    chunks = plan_chunks(240, 10)  # 24 chunks
    tasks = tasks_of(chunks, workers=2, chunks_per_task=4)
    assert [len(t) for t in tasks] == [4] * 6 and [c for t in tasks for c in t] == chunks
    assert [len(t) for t in tasks_of(chunks[:8], 2, 4)] == [2, 2, 2, 2]  # two tasks per worker at least
    assert [len(t) for t in tasks_of(chunks[:3], 2, 4)] == [1, 1, 1]
    assert [len(t) for t in tasks_of(chunks[:10], 2, 4)] == [2, 2, 2, 2, 2]


class _Batching(Backend):
    """This process, asking for tasks of three chunks (as Dask asks for four)."""

    chunks_per_task = 3
    workers = 2


@pytest.mark.parametrize("backend", ["batching", "dask"])
def test_tasks_of_several_chunks_give_the_outputs_of_one_chunk_each(backend, dask_backend):
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    here = _outputs(spec, 240, 10, Backend())
    _same_outputs(here, _outputs(spec, 240, 10, _Batching() if backend == "batching" else dask_backend))


def test_dask_local_workers_keep_glibc_defaults_and_quiet_monitors(dask_backend):
    """The local cluster's workers run with the malloc settings of this process (not Dask's
    MALLOC_TRIM_THRESHOLD_, which turns numpy's temporaries into page faults) and with the
    cluster's own monitoring settings, and results come straight from the workers."""

    def settings():
        import dask

        return (
            os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.admin.tick.interval"),
        )

    got = dask_backend.client.run(settings)
    assert len(got) == 2
    assert all(v == (os.environ.get("MALLOC_TRIM_THRESHOLD_"), False, "1s") for v in got.values()), got
    assert dask_backend.client.direct_to_workers is True


def test_a_simulation_process_imports_no_pymc():
    code = (
        "import sys, numpy as np\n"
        "from platform_sim.spec import Spec\n"
        "from platform_sim.runner import run_chunk\n"
        "from platform_sim.streams import Streams\n"
        "for d, s in [('pioneer_rar', 'pioneer_alternative'), ('hierarchical_borrowing', 'trop2_adc'),\n"
        "             ('pioneer_platform', 'pioneer_alternative')]:\n"
        "    run_chunk(Spec.load(d, s), Streams(1).for_trials(np.arange(3)))\n"
        "print(sorted(m for m in ('pymc', 'arviz', 'pytensor', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_run_equals_stream_and_the_number_of_workers_does_not_matter():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    one = run(spec, 90, seed=3, chunk_size=30)
    two = run(spec, 90, seed=3, workers=2, chunk_size=30)
    _same_results(one, two)


# --------------------------------------------------------------------------- output directories

ARGS = ["--design", "pioneer_rar", "--scenario", "pioneer_alternative", "--seed", "7", "--quiet"]
# Runs interrupted by a signal after a few of their 24 chunks (Ctrl-C, a killed worker) must still be
# going when the signal lands, whatever the load of the machine: pioneer_rar simulates 1,200 trials in
# about a tenth of a second on two workers, so such a run could end first; the hierarchical design
# takes about ten times as long per trial.
SLOW_ARGS = ["--design", "hierarchical_borrowing", "--scenario", "pioneer_null", "--seed", "7", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 1200 trials in chunks of 50."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = invoke("run", *ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory):
    """An uninterrupted run of 1200 trials in chunks of 50 of the slower design (``SLOW_ARGS``)."""
    out = tmp_path_factory.mktemp("slow_reference") / "run"
    result = invoke("run", *SLOW_ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _same_run(a: Path, b: Path) -> None:
    assert (a / "oc.csv").read_bytes() == (b / "oc.csv").read_bytes()
    for name in ("trials.parquet", "arms.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))


# one design of each family: with looks, stratified, platform over calendar time
FAMILY_DESIGNS = ["pioneer_rar", "lungmap_umbrella", "pioneer_platform"]


@pytest.mark.parametrize("design", FAMILY_DESIGNS)
def test_chunk_size_and_workers_do_not_change_the_run_directory(design, tmp_path, monkeypatch):
    """A trial's numbers depend only on (seed, trial index) and the summaries are exact, so oc.csv is
    byte-identical for any --chunk-size (1: one chunk per trial; 7: chunks of 7, 7, 7 and 2 trials; 500:
    the whole run in one chunk) with one or two workers, and the per-trial tables hold the same rows.
    (Chunks cutting a block of exactly summed values are tested in test_summary.py.)"""
    n = 23
    specs = {}
    load = Spec.load

    def load_once(design_, scenario_):  # the exact truth of a platform takes seconds: load each spec once
        key = (str(design_), str(scenario_))
        if key not in specs:
            specs[key] = load(design_, scenario_)
        return specs[key]

    monkeypatch.setattr(Spec, "load", staticmethod(load_once))  # the class the command line loads with
    runs = {}
    for chunk in (500, 7, 1):
        for workers in (1, 2):
            out = tmp_path / f"c{chunk}_w{workers}"
            result = invoke(
                "run",
                "--design",
                design,
                "--scenario",
                "pioneer_alternative",
                "--seed",
                13,
                "--n-sims",
                n,
                "--chunk-size",
                chunk,
                "--workers",
                workers,
                "--quiet",
                "--out",
                out,
            )
            assert result.exit_code == 0, result.output
            assert json.loads((out / "manifest.json").read_text())["chunk_size"] == chunk
            runs[chunk, workers] = out
    assert len(specs) == 1
    reference = runs[500, 1]
    table = pd.read_csv(reference / "oc.csv")
    assert (table.loc[table.metric == "p_any_claim", "n"] == n).all()
    for key, out in runs.items():
        assert (out / "oc.csv").read_bytes() == (reference / "oc.csv").read_bytes(), key
        for name in ("trials.parquet", "arms.parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(out / name), pd.read_parquet(reference / name), obj=f"{name} {key}"
            )


def test_run_directory_is_written_chunk_by_chunk(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["complete"] and manifest["segments"] == [1200] and manifest["records"]
    chunks = sorted((reference / "chunks").glob("*.json"))
    assert [p.stem for p in chunks] == [f"{i:06d}" for i in range(24)]
    first = json.loads(chunks[0].read_text())
    assert (first["index"], first["size"], first["first"], first["spec_hash"]) == (0, 50, 0, manifest["spec_hash"])
    assert not list(reference.rglob("*.tmp"))
    assert load_run(reference).results.n_trials == 1200


def test_backends_write_the_same_directory(reference, tmp_path):
    """Other backends, and other chunks (500, 500, 200 trials: cut elsewhere than the reference's
    chunks of 50 through the blocks of exactly summed values), write the same tables."""
    for extra in (
        ["--chunk-size", "50", "--workers", "2"],
        ["--chunk-size", "50", "--backend", "dask", "--workers", "2"],
        ["--chunk-size", "500", "--workers", "2"],
    ):
        out = tmp_path / "_".join(extra).replace("-", "")
        result = invoke("run", *ARGS, "--n-sims", 1200, "--out", out, *extra)
        assert result.exit_code == 0, result.output
        _same_run(reference, out)


def test_grow_continues_the_seed_sequence(reference, tmp_path):
    out = tmp_path / "grown"
    assert invoke("run", *ARGS, "--n-sims", 500, "--chunk-size", 50, "--out", out).exit_code == 0
    result = invoke("run", "--out", out, "--grow", 700, "--quiet")
    assert result.exit_code == 0, result.output
    assert "500 trials in 10 chunks already done" in result.output
    _same_run(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["segments"] == [500, 700] and manifest["n_sims"] == 1200 and manifest["complete"]


def test_resume_refuses_another_spec_and_other_streams(reference, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    result = invoke("run", "--out", out, "--resume", "--scenario", "pioneer_null", "--quiet")
    assert result.exit_code == 2
    assert "spec hash" in result.output and "pioneer_null" in result.output and "mixing" in result.output
    result = invoke("run", "--out", out, "--resume", "--seed", "8", "--quiet")
    assert result.exit_code == 2 and "--seed 8" in result.output and "started with 7" in result.output
    result = invoke("run", "--out", out, "--grow", "10", "--n-sims", "20")
    assert result.exit_code == 2 and "--n-sims does not apply" in result.output
    result = invoke("run", "--resume")
    assert result.exit_code == 2 and "--resume needs --out" in result.output
    result = invoke("run", "--out", tmp_path / "nothing", "--resume")
    assert result.exit_code == 2 and "nothing to resume" in result.output


def _chunks_done(out: Path) -> int:
    return len(list((out / "chunks").glob("*.json"))) if (out / "chunks").is_dir() else 0


def _chunks_vouched(out: Path) -> int:
    """Chunks whose summary file matches the checksum the manifest recorded (those a resume keeps)."""
    from platform_sim.rundir import sha256

    manifest = json.loads((out / "manifest.json").read_text())
    sums = manifest.get("checksums", {})
    return sum(1 for p in (out / "chunks").glob("*.json") if sums.get(f"chunks/{p.name}") == sha256(p))


def _start(spawn, out: Path, *extra: str, args: list[str] = ARGS) -> subprocess.Popen:
    """``platform-sim run`` of the reference's 1,200 trials (of ``args``' design) into ``out``, in a
    process group that the ``spawn`` fixture kills with all its workers when the test ends."""
    cmd = [
        sys.executable,
        "-m",
        "platform_sim.cli",
        "run",
        *args,
        "--n-sims",
        "1200",
        "--chunk-size",
        "50",
        "--out",
        str(out),
        *extra,
    ]
    return spawn(cmd)


def _wait_for_chunks(proc: subprocess.Popen, out: Path, n: int) -> None:
    deadline = time.monotonic() + 120
    while _chunks_done(out) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run wrote no chunks"
        time.sleep(0.01)


def _resume_and_compare(reference: Path, out: Path, fault: str | None = None, injected: str = "") -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    done = _chunks_vouched(out)
    assert 0 < done < 24
    result = invoke("run", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"in {done} chunks already done" in result.output
    _same_run(reference, out)
    if fault:
        record_fault(
            fault,
            injected,
            f"{done} of 24 chunks kept; --resume gave byte-identical oc.csv and the "
            "same trials.parquet and arms.parquet",
        )


# --------------------------------------------------------------------------- the fault census
#
# Faults injected into `run --out` (each test records what it injected and what happened; with
# PLATFORM_SIM_CENSUS=DIR set, the records are written to DIR/faults.json and `python
# tests/census.py DIR` prints the table in docs/robustness.md).


def _directory_is_consistent(out: Path) -> None:
    """What a run killed at any moment leaves: a readable manifest, no half-written file under a
    final name (every chunk summary parses), and every recorded checksum matching its file."""
    from platform_sim.rundir import sha256

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "run" and manifest["spec_hash"]
    for path in (out / "chunks").glob("*.json") if (out / "chunks").is_dir() else []:
        json.loads(path.read_text())
    for name, digest in manifest.get("checksums", {}).items():
        assert sha256(out / name) == digest, name


def test_sigkill_at_random_points_then_resume_gives_the_same_numbers(reference, tmp_path, spawn):
    """SIGKILL the run at seeded random points, again and again: first while it starts, then each
    time a random number of chunks later plus a random fraction of a chunk's time, so that kills
    land in a simulation, in the middle of writing a chunk or between writing a chunk and recording
    its checksum. After every kill the directory is consistent; the last resume gives the numbers
    of the uninterrupted run."""
    rng = np.random.default_rng(20251204)
    out = tmp_path / "killed"
    resume = [sys.executable, "-m", "platform_sim.cli", "run", "--out", str(out), "--resume", "--quiet"]
    for round_ in range(6):
        started = (out / "manifest.json").is_file()
        before = _chunks_done(out)
        if before >= 12:  # leave chunks for the last kill to land among, however fast chunks are
            break
        proc = spawn(resume) if started else _start(spawn, out)
        if round_ == 0:  # while the run starts: before or just after it claims its directory
            time.sleep(float(rng.uniform(0.0, 2.5)))
            where = "while starting"
        else:
            more = int(rng.integers(1, 4))
            _wait_for_chunks(proc, out, before + more)
            time.sleep(float(rng.uniform(0.0, 0.05)))
            where = f"{more} chunk(s) after {'resuming' if started else 'starting'}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (out / "manifest.json").is_file():
            record_fault(
                "SIGKILL of `run --out` at a random point",
                where,
                "killed before the run claimed its directory: nothing written",
            )
            continue
        _directory_is_consistent(out)
        left = [p.name for p in out.rglob("*.tmp")]
        unvouched = _chunks_done(out) - _chunks_vouched(out)
        record_fault(
            "SIGKILL of `run --out` at a random point",
            f"{where}; {_chunks_vouched(out)} of 24 chunks saved and vouched for"
            + (f", {unvouched} written but not yet recorded" if unvouched else "")
            + (f", {len(left)} half-written temporary file(s)" if left else ""),
            "manifest readable, no half-written file under a final name, every recorded checksum matches",
        )
        if round_ == 1 and _chunks_vouched(out):  # a new run must not discard an interrupted run's chunks
            refused = invoke("run", *ARGS, "--out", out)
            assert refused.exit_code == 2 and "interrupted run" in refused.output and "--resume" in refused.output
    assert 0 < _chunks_vouched(out) < 24
    _resume_and_compare(reference, out, "SIGKILL, then --resume", "6 kills in a row at seeded random points")
    assert not list(out.rglob("*.tmp"))


def _interrupt_in_kernel_callback(monkeypatch, after: int, cause: BaseException) -> None:
    """From chunk ``after`` on, simulating a chunk fails as a compiled kernel does when an exception
    (Ctrl-C) is raised in the Python callback that boxes the arrays it returns: a SystemError caused
    by that exception."""
    from platform_sim import runner

    original, calls = runner.run_chunk, []

    def run_chunk(*args, **kwargs):
        if len(calls) >= after:
            raise SystemError(
                "CPUDispatcher(<function _tally_known>) returned a result with an exception set"
            ) from cause
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_chunk", run_chunk)


def test_ctrl_c_inside_a_compiled_kernel_is_an_interruption(reference, tmp_path, monkeypatch):
    """Ctrl-C landing while a compiled kernel calls back into Python reaches the command as a
    SystemError caused by the KeyboardInterrupt: it is stopped like any Ctrl-C (exit 130, the saved
    chunks and how to resume), and the resumed run gives the uninterrupted numbers."""
    out = tmp_path / "kernel_interrupted"
    _interrupt_in_kernel_callback(monkeypatch, 5, KeyboardInterrupt())
    result = invoke("run", *ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out)
    monkeypatch.undo()
    assert result.exit_code == 130, result.output
    assert "interrupted: 5 of 24 chunks (250 of 1200 trials) are saved" in result.stderr
    assert f"platform-sim run --out {out} --resume" in result.stderr
    _resume_and_compare(
        reference,
        out,
        "SIGINT (Ctrl-C) inside a compiled kernel's call back into Python",
        "after 5 chunks, as a SystemError caused by KeyboardInterrupt; exit 130 and the resume command printed",
    )


def test_ctrl_c_delivered_to_another_thread_waits_for_the_chunk_to_be_recorded():
    """SIGINT may reach any thread of the process (the numerical libraries start their own); while
    a chunk is written and recorded it is held back all the same, then raised when the block ends."""
    import threading

    from platform_sim.checkpoint import _deferred_interrupt

    ready, done = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (ready.set(), done.wait(10)))
    other.start()
    ready.wait(10)
    reached_end = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with _deferred_interrupt():
                signal.pthread_kill(other.ident, signal.SIGINT)
                time.sleep(0.2)  # the interpreter runs the handler at its next check
                for _ in range(1000):
                    pass
                reached_end = True
    finally:
        done.set()
        other.join()
    assert reached_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_system_error_not_caused_by_ctrl_c_is_not_taken_for_one(tmp_path, monkeypatch):
    _interrupt_in_kernel_callback(monkeypatch, 0, ValueError("a genuine fault"))
    result = invoke("run", *ARGS, "--n-sims", 200, "--chunk-size", 50, "--out", tmp_path / "faulty")
    assert result.exit_code == 1 and isinstance(result.exception, SystemError), result.output
    assert "interrupted" not in result.stderr
    nothing_kept = invoke("compare", "--designs", "pioneer_rar", "--scenarios", "pioneer_null", "--n-sims", 100)
    assert isinstance(nothing_kept.exception, SystemError) and "interrupted" not in nothing_kept.stderr


def test_ctrl_c_inside_a_compiled_kernel_without_out_keeps_nothing(monkeypatch):
    _interrupt_in_kernel_callback(monkeypatch, 0, KeyboardInterrupt())
    result = invoke("compare", "--designs", "pioneer_rar", "--scenarios", "pioneer_null", "--n-sims", 100, "--quiet")
    assert result.exit_code == 130, result.output
    assert "interrupted: nothing was written" in result.stderr


def test_ctrl_c_leaves_a_consistent_directory_and_says_how_to_resume(slow_reference, tmp_path, spawn):
    reference = slow_reference
    out = tmp_path / "interrupted"
    proc = _start(spawn, out, "--workers", "2", args=SLOW_ARGS)
    _wait_for_chunks(proc, out, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and f"platform-sim run --out {out} --resume" in err and "Traceback" not in err
    assert not list(out.rglob("*.tmp"))
    _resume_and_compare(
        reference,
        out,
        "SIGINT (Ctrl-C) during `run --out --workers 2`",
        "after 3 chunks; exit 130 and the resume command printed",
    )


def test_killed_worker_process_resumes_to_the_same_numbers(slow_reference, tmp_path, spawn):
    reference = slow_reference
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "worker"
    proc = _start(spawn, out, "--workers", "2", args=SLOW_ARGS)
    _wait_for_chunks(proc, out, 3)
    workers = psutil.Process(proc.pid).children()
    assert workers
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "a worker process died" in err and "--resume" in err and "Traceback" not in err
    _resume_and_compare(
        reference,
        out,
        "a local worker process killed (SIGKILL)",
        "`--workers 2`, after 3 chunks; exit 1 with the resume command",
    )


# The pool's main process stops itself (SIGSTOP) from inside the first task, so nothing reads the
# worker's connection while it sends back 64 MB: the connection's buffer fills and the worker blocks
# in the middle of the message. The test then kills the worker and lets the main process go on.
_MID_SEND = """
import os, signal
from concurrent.futures.process import BrokenProcessPool
from platform_sim.backends import LocalProcesses

def result_with_reader_stopped():
    os.kill(os.getppid(), signal.SIGSTOP)
    return bytes(64 * 2**20)

if __name__ == "__main__":
    pool = LocalProcesses(1)
    first = pool.submit(result_with_reader_stopped)
    try:
        print(len(first.result()), flush=True)
    except BrokenProcessPool as exc:
        print("broken:", exc, flush=True)
    try:
        pool.submit(len, b"ab")
    except BrokenProcessPool:
        print("still broken", flush=True)
    pool.close()
    print("closed", flush=True)
"""


def test_worker_killed_while_sending_a_result_breaks_the_pool_without_a_hang(tmp_path, spawn):
    """A local worker killed while it sends back a large result: the pool must report it broken,
    not wait for ever on a message cut in two (as a pool whose workers share one result pipe does,
    CPython's ProcessPoolExecutor among them)."""
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "mid_send.py"
    script.write_text(_MID_SEND)
    proc = spawn([sys.executable, str(script)])
    main_process = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while main_process.status() != psutil.STATUS_STOPPED:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    (worker,) = main_process.children()
    time.sleep(0.5)  # the worker has sent all the connection holds with nothing reading
    worker.kill()
    while worker.status() != psutil.STATUS_ZOMBIE:  # dead, not yet reaped by the stopped main process
        assert time.monotonic() < deadline
        time.sleep(0.01)
    main_process.resume()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"broken: pid {worker.pid}, killed by SIGKILL while it ran a task", out
    assert lines[1:] == ["still broken", "closed"], out
    record_fault(
        "a local worker process killed (SIGKILL) while sending a result",
        "64 MB, with the pool's main process stopped (SIGSTOP) so nothing read it",
        "the pool reported the worker's death (BrokenProcessPool) and closed; no hang",
    )


def _lock():
    import threading

    return threading.Lock()  # cannot be sent between processes


class _CannotBeSent(Exception):
    def __init__(self):
        super().__init__("bad input in chunk 7")
        self.lock = _lock()


def _raise_cannot_be_sent():
    raise _CannotBeSent()


class _CannotBeRebuilt(Exception):  # sent whole, but its class wants two arguments to be rebuilt
    def __init__(self, field, why):
        super().__init__(f"{field}: {why}")


def _raise_cannot_be_rebuilt():
    raise _CannotBeRebuilt("n_arms", "must be at least 2")


def test_local_pool_errors_stay_with_their_task():
    """A task whose arguments, result or exception cannot travel between the processes fails with
    its own error, and the pool goes on; a task left queued when the pool closes is cancelled
    (not waited for: nothing would finish it)."""
    import faulthandler
    from concurrent.futures import CancelledError

    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails the session rather than stalls it
    try:
        _errors_stay_with_their_task(CancelledError)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _errors_stay_with_their_task(CancelledError):
    with LocalProcesses(1) as pool:
        bad_args = pool.submit(len, _lock())
        with pytest.raises(TypeError, match="pickle"):
            bad_args.result()
        with pytest.raises(RuntimeError, match="result cannot be sent back"):
            pool.submit(_lock).result()
        with pytest.raises(RuntimeError, match=r"exception \(_CannotBeSent\('bad input in chunk 7'\)\) cannot be sent"):
            pool.submit(_raise_cannot_be_sent).result()
        # (rebuilt after all where a library has registered its own way of sending exceptions, as
        # dask.distributed does through tblib)
        with pytest.raises((TypeError, _CannotBeRebuilt), match="why|n_arms"):
            pool.submit(_raise_cannot_be_rebuilt).result()
        assert pool.submit(len, b"abc").result() == 3
    pool = LocalProcesses(1)
    tasks = [pool.submit(time.sleep, 0.2) for _ in range(3)]
    pool.close()
    with pytest.raises(CancelledError):
        tasks[2].result()


_FORKSERVER = """
import multiprocessing, time
from platform_sim.backends import LocalProcesses

if __name__ == "__main__":
    multiprocessing.set_start_method("forkserver")
    with LocalProcesses(1) as pool:
        first = pool.submit(len, b"ab").result()
        time.sleep(1.6)  # idle workers check every second that their parent (the fork server) lives
        print(first, pool.submit(len, b"abc").result())
"""


def test_local_pool_with_the_forkserver_start_method_survives_idle_time(tmp_path):
    script = tmp_path / "forkserver.py"
    script.write_text(_FORKSERVER)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["2", "3"], done.stderr


def test_workers_of_a_killed_main_process_exit(tmp_path, spawn):
    """The main process of a run on local workers killed (SIGKILL): its workers find it gone and
    exit, rather than wait for ever to send a result nobody reads."""
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "orphans"
    proc = _start(spawn, out, "--workers", "2", args=SLOW_ARGS)
    _wait_for_chunks(proc, out, 1)
    workers = psutil.Process(proc.pid).children()
    assert len(workers) == 2
    proc.kill()
    proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == [], [w.status() for w in alive]
    record_fault(
        "the main process of `run --workers 2` killed (SIGKILL)",
        "after 1 chunk, the workers left running",
        "both workers found it gone and exited",
    )


def test_killed_dask_worker_is_replaced_and_the_run_completes(reference, tmp_path, spawn):
    """A Dask worker killed mid-run: its nanny starts a new one, the scheduler reruns the lost
    chunks (same seeds), and the run ends normally with the uninterrupted numbers."""
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "dask"
    proc = _start(spawn, out, "--backend", "dask", "--workers", "2")
    _wait_for_chunks(proc, out, 3)
    workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2, [c.cmdline() for c in psutil.Process(proc.pid).children(recursive=True)]
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _same_run(reference, out)
    record_fault(
        "a Dask worker process killed (SIGKILL)",
        "`--backend dask --workers 2`, after 3 chunks",
        "the nanny restarted it and the run completed (exit 0) with byte-identical numbers",
    )


@pytest.fixture
def interrupted(reference, tmp_path):
    """A copy of the reference run directory as if it had been interrupted after 10 chunks."""
    out = tmp_path / "interrupted"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for i in range(10, 24):
        for suffix in (".json", ".npz"):
            (out / "chunks" / f"{i:06d}{suffix}").unlink()
            manifest["checksums"].pop(f"chunks/{i:06d}{suffix}")
    for name in TABLE_FILES:
        (out / name).unlink()
    manifest["complete"] = False
    manifest["files"] = [f for f in manifest["files"] if f.endswith(".yaml")]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_summary(path: Path) -> None:
    record = json.loads(path.read_text())
    # one more trial with a 1 in the first proportion (a state [kind, m, k, ...]): still a valid chunk,
    # with different numbers
    state = next(stat[3] for stat in record["summary"]["stats"] if stat[3][0] == "p" and stat[3][2] < stat[3][1])
    state[2] += 1
    path.write_text(json.dumps(record) + "\n")


def _foreign_records(path: Path) -> None:
    other = path.with_name(f"{int(path.stem) + 1:06d}.npz")  # another chunk's records: a valid file
    path.write_bytes(other.read_bytes())


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, file",
    [
        (_truncate, "000003.npz"),
        (_edit_summary, "000004.json"),
        (_foreign_records, "000005.npz"),
        (_flip_byte, "000002.npz"),
        (_truncate, "000006.json"),
    ],
    ids=["truncated_records", "edited_summary", "records_of_another_chunk", "flipped_byte", "truncated_summary"],
)
def test_damaged_chunk_is_simulated_again_on_resume(reference, interrupted, damage, file):
    """A saved chunk that does not match its recorded sha256 is named in a warning and simulated
    again: an edited summary no longer changes the results, another run's records no longer end up
    in trials.parquet, and a truncated archive no longer fails after every other chunk has run."""
    damage(interrupted / "chunks" / file)
    index = int(file[:6])
    result = invoke("run", "--out", interrupted, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning == [
        f"warning: chunks/{file} does not match the checksum manifest.json recorded when it was "
        "written (it was changed, damaged or copied from another run): chunk "
        f"{index} is simulated again"
    ], result.stderr
    assert "450 trials in 9 chunks already done" in result.output
    _same_run(reference, interrupted)
    report = invoke("report", interrupted)
    assert report.exit_code == 0, report.output
    record_fault(
        f"a saved chunk file damaged ({damage.__name__.strip('_').replace('_', ' ')})",
        f"chunks/{file}",
        "--resume warned, simulated it again, byte-identical numbers",
    )


def test_chunk_written_but_not_recorded_and_half_written_files(reference, interrupted):
    """A run killed between writing a chunk and recording its checksum, and in the middle of
    writing another: the unrecorded chunk is simulated again with a warning, the temporary files
    are removed, and the numbers are those of the uninterrupted run."""
    manifest = json.loads((interrupted / "manifest.json").read_text())
    del manifest["checksums"]["chunks/000009.json"]
    (interrupted / "manifest.json").write_text(json.dumps(manifest))
    half = interrupted / "chunks" / ".000010.npz.k3j9x2ab.tmp"
    half.write_bytes(b"PK\x03\x04 half an archive")
    (interrupted / ".manifest.json.q8w7e6r5.tmp").write_text("{")
    result = invoke("run", "--out", interrupted, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert "warning: chunks/000009.json has no checksum in manifest.json: chunk 9 is simulated again" in result.stderr
    assert not list(interrupted.rglob("*.tmp"))
    _same_run(reference, interrupted)
    record_fault(
        "killed between writing a chunk and recording its checksum, and in the middle of a write",
        "chunk 9's checksum removed from the manifest; half-written temporary files left",
        "--resume warned, simulated chunk 9 again, removed the temporary files, byte-identical numbers",
    )


def test_chunk_damaged_after_the_run_is_refused_by_the_report(reference, tmp_path):
    out = tmp_path / "finished"
    shutil.copytree(reference, out)
    _flip_byte(out / "chunks" / "000007.npz")
    result = invoke("report", out)
    assert result.exit_code == 2 and "chunks/000007.npz: does not match the checksum" in result.stderr
    assert "--resume" in result.stderr
    result = invoke("run", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0 and "chunk 7 is simulated again" in result.stderr
    _same_run(reference, out)
    assert invoke("report", out).exit_code == 0
    record_fault(
        "a chunk file of a finished run damaged",
        "one byte of chunks/000007.npz flipped",
        "report refused it (exit 2, naming the file); --resume repaired it",
    )


def test_manifest_of_another_spec_is_refused(reference, tmp_path):
    other = tmp_path / "other"
    assert (
        invoke(
            "run",
            "--design",
            "pioneer_rar",
            "--scenario",
            "pioneer_null",
            "--seed",
            "7",
            "--n-sims",
            100,
            "--chunk-size",
            50,
            "--out",
            other,
            "--quiet",
        ).exit_code
        == 0
    )
    out = tmp_path / "mixed"
    shutil.copytree(reference, out)
    shutil.copy(other / "manifest.json", out / "manifest.json")
    before = {p.name: p.read_bytes() for p in (out / "chunks").iterdir()}
    for args in (
        ["run", "--out", out, "--resume", "--quiet"],
        ["run", "--out", out, "--grow", 10, "--quiet"],
        ["report", out],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "spec hash" in result.stderr and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (out / "chunks").iterdir()} == before
    record_fault(
        "manifest.json of another spec copied into a run directory",
        "pioneer_null's manifest over pioneer_alternative's run",
        "--resume, --grow and report refused it (exit 2, spec hash); nothing changed",
    )


def _read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` read-only. The superuser ignores permissions, so for root the same refusal is
    emulated where files are created (platform_sim.rundir._temporary, the only place a run creates
    files once its directory exists)."""
    from platform_sim import rundir

    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        path.chmod(0o555)
    if os.geteuid() == 0:
        original = rundir._temporary

        def refuse(path: Path) -> Path:
            if not Path(path).parent.stat().st_mode & 0o200:
                raise PermissionError(13, "Permission denied", str(path.parent))
            return original(path)

        monkeypatch.setattr(rundir, "_temporary", refuse)


def test_output_directory_made_read_only_partway(reference, tmp_path, monkeypatch):
    """A full disk or a directory that becomes read-only during the run: a clean refusal (exit 1,
    the file that could not be written, how to resume), every chunk saved before intact, and a
    resume once the directory is writable again gives the uninterrupted numbers."""
    from platform_sim import checkpoint

    out = tmp_path / "read_only"
    original, written = checkpoint.write_chunk, []

    def write_then_lock(folder, output, *args):
        if len(written) == 7:
            _read_only(monkeypatch, folder)
        sums = original(folder, output, *args)
        written.append(output.chunk.index)
        return sums

    monkeypatch.setattr(checkpoint, "write_chunk", write_then_lock)
    result = invoke("run", *ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out)
    for path in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        path.chmod(0o755)
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: cannot write to" in result.stderr and "Permission denied" in result.stderr
    assert "7 of 24 chunks (350 of 1200 trials) are saved" in result.stderr
    assert f"platform-sim run --out {out} --resume" in result.stderr
    _directory_is_consistent(out)
    assert not list(out.rglob("*.tmp"))
    _resume_and_compare(
        reference,
        out,
        "output directory made read-only partway (a full disk)",
        "after 7 chunks; exit 1 naming the file and how to resume, 7 chunks intact",
    )


def test_no_records_keeps_only_the_summaries(reference, tmp_path):
    out = tmp_path / "lean"
    result = invoke("run", *ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out, "--no-records")
    assert result.exit_code == 0, result.output
    assert (out / "oc.csv").read_bytes() == (reference / "oc.csv").read_bytes()
    assert not (out / "trials.parquet").exists() and not (out / "arms.parquet").exists()
    assert not list((out / "chunks").glob("*.npz"))
    result = invoke("report", out)
    assert result.exit_code == 2 and "no per-trial records" in result.output
    result = invoke("run", *ARGS, "--out", out, "--no-records", "--report")
    assert result.exit_code == 2 and "--report needs the per-trial records" in result.output


def test_checkpoint_without_directory_streams_in_memory():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    seen = []
    summary = Checkpoint(None, spec, 7, plan_chunks(100, 30), False).execute(progress=seen.append)
    assert seen == [30, 30, 30, 10] and summary.n_trials == 100


def test_trial_replays_a_trial_of_a_grown_run(tmp_path):
    """A grown run whose first segment ends in a short chunk: `trial --run` finds each trial's chunk."""
    out = tmp_path / "grown"
    assert invoke("run", *ARGS, "--n-sims", 130, "--chunk-size", 50, "--out", out).exit_code == 0
    assert invoke("run", "--out", out, "--grow", 100, "--quiet").exit_code == 0
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial")
    arms = pd.read_parquet(out / "arms.parquet")
    assert json.loads((out / "manifest.json").read_text())["segments"] == [130, 100]
    for index in (129, 170):
        story = tmp_path / f"story{index}"
        result = invoke("trial", "--run", out, "--index", index, "--no-bayes", "--out", story)
        assert result.exit_code == 0, result.output
        record = pd.read_csv(story / "record.csv")  # the replayed trial's rows of arms.parquet
        expected = arms[arms["trial"] == index].drop(columns="spec_hash").reset_index(drop=True)
        assert list(record.columns) == list(expected.columns)
        assert list(record["arm"]) == list(expected["arm"].astype(str))
        assert list(record["status"]) == list(expected["status"].astype(str))
        for column in ("n", "events", "rate", "post_lower", "post_upper", "status_look", "claim_month"):
            np.testing.assert_allclose(
                record[column].to_numpy(float),
                expected[column].to_numpy(float),
                rtol=1e-12,
                equal_nan=True,
                err_msg=column,
            )
        assert record["n"].sum() == trials.at[index, "n_randomized"]


class _Terminal:
    """A stand-in for stderr that says it is a terminal."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass


def test_progress_bar_shows_rate_and_time_left_on_a_terminal_only(monkeypatch):
    from platform_sim.cli import _with_progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _with_progress(100, False, lambda progress: [progress(40), progress(30)] and "done", initial=20) == "done"
    text = terminal.buffer.getvalue()
    assert "90/90" in text and "trial/s" in text and "<" in text  # the bar ends at what was done
    assert "20/100" in text  # a resumed run starts at the trials already done
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    _with_progress(100, True, lambda progress: progress is None or progress(1))
    assert quiet.buffer.getvalue() == ""
