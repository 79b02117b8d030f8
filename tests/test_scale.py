"""Runs at scale: identical results on every backend, chunk-by-chunk output, resume, grow and interruption."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from platform_sim.backends import Backend, DaskBackend, LocalProcesses
from platform_sim.checkpoint import Checkpoint
from platform_sim.cli import main
from platform_sim.rundir import load_run
from platform_sim.runner import plan_chunks, run, stream, summarizer
from platform_sim.spec import Spec

CASES = [("pioneer_rar", "pioneer_alternative", 240, 40),
         ("battle_stratified_rar", "stk11_keap1_ctla4", 60, 20),
         ("pioneer_platform", "pioneer_alternative", 16, 4)]


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


def test_a_simulation_process_imports_no_pymc():
    code = ("import sys, numpy as np\n"
            "from platform_sim.spec import Spec\n"
            "from platform_sim.runner import run_chunk\n"
            "from platform_sim.streams import Streams\n"
            "for d, s in [('pioneer_rar', 'pioneer_alternative'), ('hierarchical_borrowing', 'trop2_adc'),\n"
            "             ('pioneer_platform', 'pioneer_alternative')]:\n"
            "    run_chunk(Spec.load(d, s), Streams(1).for_trials(np.arange(3)))\n"
            "print(sorted(m for m in ('pymc', 'arviz', 'pytensor', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_run_equals_stream_and_the_number_of_workers_does_not_matter():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    one = run(spec, 90, seed=3, chunk_size=30)
    two = run(spec, 90, seed=3, workers=2, chunk_size=30)
    _same_results(one, two)


# --------------------------------------------------------------------------- output directories

ARGS = ["--design", "pioneer_rar", "--scenario", "pioneer_alternative", "--seed", "7", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 1200 trials in chunks of 50."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = invoke("run", *ARGS, "--n-sims", 1200, "--chunk-size", 50, "--out", out)
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
            result = invoke("run", "--design", design, "--scenario", "pioneer_alternative", "--seed", 13,
                            "--n-sims", n, "--chunk-size", chunk, "--workers", workers, "--quiet", "--out", out)
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
            pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(reference / name),
                                          obj=f"{name} {key}")


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
    for extra in (["--chunk-size", "50", "--workers", "2"],
                  ["--chunk-size", "50", "--backend", "dask", "--workers", "2"],
                  ["--chunk-size", "500", "--workers", "2"]):
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
    import shutil

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


def _start(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "platform_sim.cli", "run", *ARGS, "--n-sims", "1200", "--chunk-size", "50",
           "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_chunks(proc: subprocess.Popen, out: Path, n: int) -> None:
    deadline = time.monotonic() + 120
    while _chunks_done(out) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run wrote no chunks"
        time.sleep(0.01)


def _resume_and_compare(reference: Path, out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    done = _chunks_done(out)
    assert 0 < done < 24
    result = invoke("run", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"in {done} chunks already done" in result.output
    _same_run(reference, out)


def test_killed_main_process_resumes_to_the_same_numbers(reference, tmp_path):
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_chunks(proc, out, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    refused = invoke("run", *ARGS, "--out", out)
    assert refused.exit_code == 2 and "interrupted run" in refused.output and "--resume" in refused.output
    _resume_and_compare(reference, out)


def test_ctrl_c_leaves_a_consistent_directory_and_says_how_to_resume(reference, tmp_path):
    out = tmp_path / "interrupted"
    proc = _start(out, "--workers", "2")
    _wait_for_chunks(proc, out, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and f"platform-sim run --out {out} --resume" in err and "Traceback" not in err
    assert not list(out.rglob("*.tmp"))
    _resume_and_compare(reference, out)


def test_killed_worker_process_resumes_to_the_same_numbers(reference, tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "worker"
    proc = _start(out, "--workers", "2")
    _wait_for_chunks(proc, out, 3)
    workers = psutil.Process(proc.pid).children()
    assert workers
    os.kill(workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "a worker process died" in err and "--resume" in err and "Traceback" not in err
    _resume_and_compare(reference, out)


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
            np.testing.assert_allclose(record[column].to_numpy(float), expected[column].to_numpy(float),
                                       rtol=1e-12, equal_nan=True, err_msg=column)
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
