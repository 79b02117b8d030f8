"""The speed targets, this checkout beside a previous release, measured in the same run.

    python benchmarks/run.py --only targets --baseline /path/to/previous/checkout
    python benchmarks/targets.py --baseline /path/to/previous/checkout [--quick] [--json out.json]
    python benchmarks/targets.py --baseline PATH --only looks:200 benchmark_four_arm   (just those rows)
    python benchmarks/targets.py --baseline PATH --only warm-run help --cpu   (the command's start-up)
    python benchmarks/targets.py --baseline PATH --only dask   (Dask's per-trial overhead alone)

Every figure comes from a fresh process whose ``PYTHONPATH`` is one checkout or the other (the
measuring code is this file in both cases, so only the package differs). The two checkouts run
one after the other, workload by workload and repeat by repeat, so that a change in the load of a
shared machine hits both columns alike; each figure is the best of its repeats. On one worker,
trials per second is trials per second per core.

Rows (targets from the performance issue of the project):

* trials/s of the core 4-arm design, pioneer_rar, lungmap_umbrella and every other stratified
  design, pioneer_platform on pioneer_null, and a 200-look variant of the core design
  (``benchmarks/scaling.py``); a warm-up run loads the compiled kernels first;
* pioneer_platform's fixed overhead: loading and compiling the design and its truth table, the
  work a run does once before its first trial;
* ``platform-sim --help`` and ``platform-sim run --n-sims 1`` (warm: after one such run), wall time
  (with ``--cpu``: the command's process CPU time);
* the first run after installation: ``pip install CHECKOUT`` into a fresh virtual environment (a
  real installation: the wheel is built in pip's isolated build environment, kernels compiled at
  build time included), timed, then that environment's ``platform-sim run --n-sims 1`` from an empty
  folder (with ``--cpu``: its process CPU time); needs pip's package index;
* Dask's per-trial overhead over local processes (2 workers each): the slope of time against
  trials from two run lengths, so that start-up costs are left out;
* peak memory of a streamed run of the core design at two numbers of trials.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent

# (label, design, scenario, trials of a full run, target trials/s/core)
TRIAL_ROWS = [
    ("core 4-arm design (exact posteriors)", "benchmark_four_arm", "benchmark_four_arm", 4000, 10_000),
    ("pioneer_rar", "pioneer_rar", "pioneer_alternative", 4000, 10_000),
    ("lungmap_umbrella", "lungmap_umbrella", "stk11_keap1_ctla4", 1000, 2_000),
    ("battle_stratified_rar", "battle_stratified_rar", "pioneer_alternative", 1000, 2_000),
    ("hierarchical_borrowing", "hierarchical_borrowing", "atm_ceralasertib", 300, 2_000),
    ("adaptive_enrichment", "adaptive_enrichment", "trop2_adc", 1000, 2_000),
    ("pioneer_platform on pioneer_null", "pioneer_platform", "pioneer_null", 400, 1_000),
    ("200-look design", "looks:200", "", 400, 1_000),
]

# (label, name for --only, arguments of platform-sim, target seconds)
COMMAND_ROWS = [
    ("platform-sim --help", "help", ["--help"], 0.3),
    ("platform-sim run --n-sims 1 (warm)", "warm-run", ["run", "--n-sims", "1", "--quiet"], 1.0),
]


# --------------------------------------------------------------------------- children (either checkout)


def _spec_class():
    try:
        from platform_sim.spec import Spec
    except ImportError:  # releases before the spec module
        from platform_sim.config import Spec
    return Spec


def _load(design: str, scenario: str, folder: str):
    Spec = _spec_class()
    if design.startswith("looks:"):
        sys.path.insert(0, str(HERE.parent))
        import scaling

        return Spec.load(*scaling.write_variant("looks", int(design.split(":")[1]), folder))
    return Spec.load(design, scenario)


def _child_trials(design: str, scenario: str, n_sims: int, warmup: int) -> dict:
    from platform_sim.runner import run

    with tempfile.TemporaryDirectory(prefix="platform_sim_targets_") as folder:
        start = time.perf_counter()
        spec = _load(design, scenario, folder)
        _ = getattr(spec, "truth", None)  # releases before the truth property computed it per chunk
        fixed = time.perf_counter() - start
        run(spec=spec, n_sims=warmup, seed=11)
        start, start_cpu = time.perf_counter(), time.process_time()
        run(spec=spec, n_sims=n_sims, seed=1)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "fixed_seconds": fixed,
        "trials_per_second": n_sims / elapsed,
        "seconds": elapsed,
        "cpu_trials_per_second": n_sims / cpu,
        "cpu_seconds": cpu,
    }


def _child_dask(n_sims: int, repeats: int = 3) -> dict:
    """Wall seconds per trial of two local processes and of a two-worker Dask cluster, each the slope
    between runs of ``n_sims`` and ``3 * n_sims`` trials (start-up costs cancel). Both backends stay
    open and are measured in turn, run length by run length and repeat by repeat, so that a change in
    the load of a shared machine hits both alike; each time is the best of ``repeats``."""
    from platform_sim.backends import open_backend
    from platform_sim.runner import run

    spec = _spec_class().load("benchmark_four_arm", "benchmark_four_arm")
    _ = getattr(spec, "truth", None)
    run(spec=spec, n_sims=200, seed=11)
    backends = {kind: open_backend(kind, 2) for kind in ("local", "dask")}
    out: dict[str, float] = {}
    try:
        for backend in backends.values():
            run(spec=spec, n_sims=1000, seed=12, chunk_size=250, executor=backend)  # warm the workers
        for _ in range(repeats):
            for n in (n_sims, 3 * n_sims):
                for kind, backend in backends.items():
                    start = time.perf_counter()
                    run(spec=spec, n_sims=n, seed=1, chunk_size=250, executor=backend)
                    seconds = time.perf_counter() - start
                    out[f"{kind}_{n}"] = min(out.get(f"{kind}_{n}", math.inf), seconds)
    finally:
        for backend in backends.values():
            backend.close()
    slope = {k: (out[f"{k}_{3 * n_sims}"] - out[f"{k}_{n_sims}"]) / (2 * n_sims) for k in ("local", "dask")}
    return {
        **out,
        "local_us_per_trial": 1e6 * slope["local"],
        "dask_us_per_trial": 1e6 * slope["dask"],
        "overhead": slope["dask"] / slope["local"] - 1.0,
    }


def _child_memory(n_sims: int) -> dict:
    from platform_sim.checkpoint import Checkpoint
    from platform_sim.runner import plan_chunks

    spec = _spec_class().load("benchmark_four_arm", "benchmark_four_arm")
    Checkpoint(None, spec, 3, plan_chunks(n_sims, 500), False).execute()
    return {"peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# --------------------------------------------------------------------------- the parent


def _env(checkout: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)
    return env


def _spawn(checkout: Path, *args: str, timeout: float = 1800) -> dict | None:
    # run in the checkout's folder: shipped names resolve to its own designs and scenarios
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", *args],
        env=_env(checkout),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=checkout,
    )
    if out.returncode != 0:
        print(f"  ({checkout}: {' '.join(args)} failed: {out.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wall(checkout: Path, args: list[str]) -> tuple[float, float]:
    """Wall and process CPU seconds (user and system) of ``platform-sim ARGS`` run from ``checkout``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "platform_sim.cli", *args],
        env=_env(checkout),
        cwd=checkout,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _first_run(checkout: Path) -> dict:
    """``pip install CHECKOUT`` into a fresh virtual environment (whatever the installation does,
    including compiling kernels at build time), then its first ``platform-sim run --n-sims 1``, from an
    empty folder: seconds of the installation, wall and process CPU seconds of the run."""
    with tempfile.TemporaryDirectory(prefix="platform_sim_fresh_") as folder:
        venv, work = Path(folder) / "venv", Path(folder) / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")}
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        start = time.perf_counter()
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(checkout)],
            env=env,
            cwd=work,
            capture_output=True,
            check=True,
        )
        install = time.perf_counter() - start
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [str(venv / "bin" / "platform-sim"), "run", "--n-sims", "1", "--quiet"],
            env=env,
            cwd=work,
            capture_output=True,
            check=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"install": install, "wall": wall, "cpu": cpu}


def _best(values, key, better=max):
    values = [v[key] for v in values if v is not None]
    return better(values) if values else None


def measure(
    checkouts: dict[str, Path], quick: bool, repeats: int, only: list[str] | None = None, cpu: bool = False
) -> list[dict]:
    """Every row of the table for every checkout (name -> path); with ``only``, just the trials/s
    rows whose design is named there (``looks:200`` for the 200-look design) and the command rows
    named there (``help``, ``warm-run``) and Dask's overhead (``dask``); with ``cpu``, trials per second (and the commands'
    seconds) of the child's process CPU time instead of wall time (steadier on a shared machine)."""
    rows = []
    scale = 0.1 if quick else 1.0
    for label, design, scenario, n_sims, target in TRIAL_ROWS:
        if only is not None and design not in only:
            continue
        n = max(20, int(n_sims * scale))
        got = {name: [] for name in checkouts}
        for _ in range(repeats):
            for name, path in checkouts.items():
                got[name].append(_spawn(path, "trials", design, scenario, str(n), "50"))
        rows.append(
            {
                "row": label,
                "unit": "trials/s/core",
                "target": f">= {target:,}",
                "good": "high",
                "target_value": target,
                **{name: _best(v, "cpu_trials_per_second" if cpu else "trials_per_second") for name, v in got.items()},
            }
        )
        if design == "pioneer_platform":
            rows.append(
                {
                    "row": "pioneer_platform fixed overhead",
                    "unit": "s",
                    "target": "< 0.5",
                    "good": "low",
                    "target_value": 0.5,
                    **{name: _best(v, "fixed_seconds", min) for name, v in got.items()},
                }
            )
    for label, key, args, target in COMMAND_ROWS:
        if only is not None and key not in only:
            continue
        got = {name: [] for name in checkouts}
        for path in checkouts.values():
            _wall(path, args)  # warm: byte code and kernels cached
        for _ in range(repeats + 1):
            for name, path in checkouts.items():
                got[name].append(_wall(path, args)[1 if cpu else 0])
        rows.append(
            {
                "row": label + (" (process CPU)" if cpu else ""),
                "unit": "s",
                "target": f"< {target}",
                "good": "low",
                "target_value": target,
                **{name: min(v) for name, v in got.items()},
            }
        )
    if only is None:
        fresh = {name: _first_run(path) for name, path in checkouts.items()}
        rows.append(
            {
                "row": "first run after install" + (" (process CPU)" if cpu else ""),
                "unit": "s",
                "target": "< 3",
                "good": "low",
                "target_value": 3.0,
                **{name: f["cpu" if cpu else "wall"] for name, f in fresh.items()},
            }
        )
        rows.append(
            {
                "row": "pip install of the checkout into a fresh venv",
                "unit": "s",
                "target": "-",
                "good": "low",
                "target_value": None,
                **{name: f["install"] for name, f in fresh.items()},
            }
        )
    if only is None or "dask" in only:
        # runs of a few seconds: at about 15,000 trials/s on two workers, 2,000 trials took 0.1 s, too
        # short for a slope on a shared machine
        n_dask = 2000 if quick else 20_000
        dask = {
            name: _spawn(path, "dask", str(n_dask), str(1 if quick else repeats)) for name, path in checkouts.items()
        }
        rows.append(
            {
                "row": "Dask per-trial overhead over local (2 workers)",
                "unit": "%",
                "target": "< 10",
                "good": "low",
                "target_value": 10.0,
                **{name: None if d is None else 100 * d["overhead"] for name, d in dask.items()},
            }
        )
    if only is not None:
        return rows
    small, large = (2000, 10_000) if quick else (10_000, 50_000)
    for n in (small, large):
        mem = {name: _spawn(path, "memory", str(n)) for name, path in checkouts.items()}
        rows.append(
            {
                "row": f"peak memory, core design streamed, {n:,} trials",
                "unit": "MiB",
                "target": "flat",
                "good": "low",
                "target_value": None,
                **{name: None if m is None else m["peak_memory_mib"] for name, m in mem.items()},
            }
        )
    return rows


def _fmt(x, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "s":
        return f"{x:.2f}"
    if unit == "%":
        return f"{x:+.0f}"
    return f"{x:,.0f}"


def _met(row: dict, name: str) -> str:
    x, t = row.get(name), row["target_value"]
    if x is None or t is None:
        return ""
    ok = x >= t if row["good"] == "high" else x < t
    return "met" if ok else "NOT met"


def table(rows: list[dict], names: list[str]) -> str:
    """The rows as a Markdown table: each checkout's figure, the ratio new / previous, the target."""
    head = ["workload", "unit", *names, "new / previous" if len(names) == 2 else "", "target", "met (new)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        figures = [_fmt(r.get(n), r["unit"]) for n in names]
        ratio = ""
        if len(names) == 2 and r.get(names[0]) is not None and r.get(names[1]) not in (None, 0) and r["unit"] != "%":
            ratio = f"{r[names[1]] / r[names[0]]:.2f}x"
        lines.append("| " + " | ".join([r["row"], r["unit"], *figures, ratio, r["target"], _met(r, names[-1])]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="checkout of the previous release (its root folder)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the trials, one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure, best kept (2; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="ROW",
        help="only these rows: trials/s of designs (e.g. benchmark_four_arm pioneer_rar looks:200), "
        "help (platform-sim --help), warm-run (platform-sim run --n-sims 1, warm), dask (Dask's overhead)",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="trials/s from each child's process CPU time rather than wall time"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "trials":
            out = _child_trials(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif kind == "dask":
            out = _child_dask(int(rest[0]), *(int(r) for r in rest[1:2]))
        else:
            out = _child_memory(int(rest[0]))
        print(json.dumps(out))
        return
    checkouts = {"previous": args.baseline.resolve(), "new": ROOT} if args.baseline else {"new": ROOT}
    repeats = args.repeats or (1 if args.quick else 2)
    load = os.getloadavg()[0]
    if args.only:
        names = [row[1] for row in TRIAL_ROWS] + [row[1] for row in COMMAND_ROWS] + ["dask"]
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"--only: no row named {', '.join(unknown)}; rows: {', '.join(names)}")
    rows = measure(checkouts, args.quick, repeats, args.only, args.cpu)
    print(
        f"speed targets, {os.cpu_count()} cores, load average at start {load:.1f}; best of {repeats} "
        f"repeat(s); trials/s by {'process CPU' if args.cpu else 'wall'} time; previous = {checkouts.get('previous', '-')}, new = {ROOT}\n"
    )
    print(table(rows, list(checkouts)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
