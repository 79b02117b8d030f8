"""Speed and memory benchmarks: simulated trials per second and peak memory.

    python benchmarks/run.py                 # every standard workload and the scaling table (~10 min)
    python benchmarks/run.py --quick         # smoke run: every workload with a few trials (< 1 min)
    python benchmarks/run.py --json out.json # also write every figure to out.json
    python benchmarks/run.py --n-sims 100000 --only core_4arm  # the memory target: 100,000 trials of the core design
    python benchmarks/run.py --only core_4arm   # the core 4-arm design, 20,000 trials (also pioneer_rar, lungmap,
                                                # event_driven, seamless)
    python benchmarks/run.py --only population  # virtual patients only: 1,000,000 with all potential outcomes
    python benchmarks/run.py --only grid        # six designs x eight scenarios x 2,000 trials, 2 workers
    python benchmarks/run.py --only platform    # PIONeeR-like platform over 4 years, 10,000 trials, 2 workers
    python benchmarks/run.py --only stream      # 1,000,000 trials of the core design, streamed, 2 workers: flat memory
    python benchmarks/run.py --only scaling     # cost against arms, strata, looks and maximum sample size
    python benchmarks/run.py --only strata      # the strata rows of the scaling table only (2, 4, 8, 16)
    python benchmarks/run.py --only scaling --factor looks  # one factor of the scaling table
    python benchmarks/run.py --only targets --baseline ../previous  # the speed targets beside a previous release

Each workload runs in a fresh process (so its peak resident memory is its own), after a short
warm-up that loads the compiled kernels; only the simulation itself is timed. Workloads run on one
worker unless stated; with worker processes the main process and the largest worker are reported.
The figures depend on the machine (and on whatever else it is running): the header line says which.
The scaling table varies one factor at a time from the core design (see benchmarks/scaling.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor

import scaling  # benchmarks/scaling.py (the script's folder is on sys.path)

WORKLOADS = {
    # name: (design, scenario, what it exercises)
    "core_4arm": (
        "benchmark_four_arm",
        "benchmark_four_arm",
        (
            "4 arms, common control, event rates 0.25/0.30/0.22/0.19 (lower is better), looks every 100 "
            "from 400 to 2000, sqrt(k) control allocation, softening 0.5, superiority 0.99, inferiority 0.01, "
            "equivalence 0.85 within 0.05 against the first control"
        ),
    ),
    "pioneer_rar": ("pioneer_rar", "pioneer_alternative", "shipped default: PIONeeR-like RAR with outcome lag"),
    "lungmap": (
        "lungmap_umbrella",
        "stk11_keap1_ctla4",
        (
            "Lung-MAP-like umbrella: 4 sub-studies, priority "
            "routing, own controls and a two-stage single-arm non-match sub-study"
        ),
    ),
    "event_driven": (
        "benchmark_event_driven",
        "textbook_two_arm",
        (
            "event-driven two-arm design: 600 patients, "
            "3 log-rank analyses at event counts, efficacy and non-binding futility boundaries"
        ),
    ),
    "seamless": (
        "seamless_pfs_os",
        "pfs_os_effect",
        (
            "seamless phase II/III: PFS go/no-go at 130 events, then 2 OS "
            "log-rank analyses, 620 patients, PFS and OS drawn jointly (illness-death)"
        ),
    ),
}

GRID_DESIGNS = [
    "allcomer_fixed",
    "allcomer_rar",
    "lungmap_umbrella",
    "battle_stratified_rar",
    "hierarchical_borrowing",
    "adaptive_enrichment",
]
GRID_SCENARIOS = [
    "pioneer_null",
    "s1800a_allcomer",
    "atm_ceralasertib",
    "stk11_keap1_ctla4",
    "trop2_adc",
    "pioneer_alternative",
    "phase2_optimism",
    "qualitative_interaction",
]
# strata scaling: the BATTLE-like design stratified by 1..4 two-level markers (2..16 strata)
STRATA_DESIGN = ("battle_stratified_rar", "pioneer_alternative")
STRATA_MARKERS = ["stk11_or_keap1", "trop2_nmr", "atm", "kras"]

POPULATION = "pioneer_alternative"  # scenario of the virtual-patients workload
PLATFORM = ("pioneer_platform", "pioneer_alternative")  # design, scenario

SECTIONS = [*WORKLOADS, "grid", "platform", "population", "stream", "scaling"]  # the default run, in order

# settings of a full run and of --quick (a smoke run: the figures are not measurements)
FULL = {
    "n_sims": 20_000,
    "grid_sims": 2_000,
    "grid_scenarios": len(GRID_SCENARIOS),
    "platform_sims": 10_000,
    "population_n": 1_000_000,
    "scaling_sims": 5_000,
    "stream_sims": 1_000_000,
    "warmup": 200,
    "jobs": 1,
}
QUICK = {
    "n_sims": 200,
    "grid_sims": 10,
    "grid_scenarios": 2,
    "platform_sims": 200,
    "population_n": 20_000,
    "scaling_sims": 200,
    "stream_sims": 5_000,
    "warmup": 20,
    "jobs": os.cpu_count() or 1,
}


def _peak_mib(who: int = resource.RUSAGE_SELF) -> float | None:
    """Peak resident memory in MiB; RUSAGE_CHILDREN: the largest waited-for child process (None:
    no child process was started, e.g. a run too small to be split between workers)."""
    kib = resource.getrusage(who).ru_maxrss
    return kib / 1024 if kib else None


def _run(spec, n_sims: int, seed: int, workers: int = 1):
    from platform_sim.runner import run

    return run(spec=spec, n_sims=n_sims, seed=seed, workers=workers)


def _timed_run(spec, n_sims: int, seed: int, warmup: int, workers: int = 1) -> tuple[object, dict]:
    """Warm up (loads the compiled kernels) on one worker, then time ``n_sims`` trials."""
    _run(spec, warmup, seed + 1)
    start = time.perf_counter()
    results = _run(spec, n_sims, seed, workers)
    elapsed = time.perf_counter() - start
    return results, {
        "n_sims": n_sims,
        "seconds": elapsed,
        "trials_per_second": n_sims / elapsed,
        "us_per_trial": 1e6 * elapsed / n_sims,
        "peak_memory_mib": _peak_mib(),
        "workers": workers,
        "mean_n_total": float(results.n_randomized.mean()),
    }


# --- children: each prints one JSON line -------------------------------------------------------


def _population_child(scenario: str, n: int, seed: int) -> None:
    from platform_sim.cohort_summary import generate
    from platform_sim.config import load_file, resolve
    from platform_sim.outcomes import VirtualPatients

    patients = VirtualPatients(load_file(resolve(scenario, "scenario"), "scenario"))
    generate(patients, 10_000, seed + 1)  # warm-up
    start = time.perf_counter()
    generate(patients, n, seed)
    elapsed = time.perf_counter() - start
    sc = patients.scenario
    print(
        json.dumps(
            {
                "n": n,
                "seconds": elapsed,
                "patients_per_second": n / elapsed,
                "peak_memory_mib": _peak_mib(),
                "what": f"{len(patients.population.names)} characteristics, screening funnel, potential outcomes for "
                f"{len(sc.treatments)} treatments x {len(sc.endpoints)} endpoints ({', '.join(sc.endpoints)})",
            }
        )
    )


def _child(design: str, scenario: str, n_sims: int, seed: int, warmup: int) -> None:
    from platform_sim.spec import Spec

    _, out = _timed_run(Spec.load(design, scenario), n_sims, seed, warmup)
    print(json.dumps(out))


def _grid_child(n_sims: int, seed: int, workers: int, warmup: int, n_scenarios: int) -> None:
    from platform_sim.compare import compare

    scenarios = GRID_SCENARIOS[:n_scenarios]
    compare(GRID_DESIGNS[:1], GRID_SCENARIOS[:1], warmup, seed + 1, workers=1)  # warm-up
    start = time.perf_counter()
    result = compare(GRID_DESIGNS, scenarios, n_sims, seed, workers=workers)
    elapsed = time.perf_counter() - start
    total = n_sims * len(GRID_DESIGNS) * len(scenarios)
    print(
        json.dumps(
            {
                "n_sims": total,
                "seconds": elapsed,
                "trials_per_second": total / elapsed,
                "us_per_trial": 1e6 * elapsed / total,
                "workers": workers,
                "peak_memory_mib": _peak_mib(),
                "peak_worker_mib": _peak_mib(resource.RUSAGE_CHILDREN),
                "scenarios": scenarios,
                "rows": len(result.table),
            }
        )
    )


def _strata_child(n_markers: int, n_sims: int, seed: int, warmup: int) -> None:
    from platform_sim.config.load import parse_design
    from platform_sim.spec import Spec

    base = Spec.load(*STRATA_DESIGN)
    data = base.design.model_dump(mode="json", exclude_none=True)
    data["strata"] = {"by": STRATA_MARKERS[:n_markers], "suspension": data["strata"]["suspension"]}
    spec = Spec.from_models(parse_design(data), base.scenario)
    results, out = _timed_run(spec, n_sims, seed, warmup)
    print(
        json.dumps(
            {
                **out,
                "factor": "strata",
                "value": len(spec.truth.strata),
                "markers": n_markers,
                "mean_looks": float(results.extras["stop_look"].mean() + 1),
            }
        )
    )


def _scaling_child(factor: str, value: int, n_sims: int, seed: int, warmup: int) -> None:
    from platform_sim.spec import Spec

    with tempfile.TemporaryDirectory(prefix="platform_sim_bench_") as folder:
        spec = Spec.load(*scaling.write_variant(factor, value, folder))
        results, out = _timed_run(spec, n_sims, seed, warmup)
    print(
        json.dumps(
            {
                **out,
                "factor": factor,
                "value": value,
                "arms": len(spec.design.arm_names),
                "looks": len(spec.design.looks.randomized_n),
                "max_n": spec.design.looks.randomized_n[-1],
                "mean_looks": float(results.extras["stop_look"].mean() + 1),
            }
        )
    )


def _platform_child(n_sims: int, seed: int, workers: int, warmup: int) -> None:
    from platform_sim.spec import Spec

    results, out = _timed_run(Spec.load(*PLATFORM), n_sims, seed, warmup, workers)
    print(
        json.dumps(
            {
                **out,
                "peak_worker_mib": _peak_mib(resource.RUSAGE_CHILDREN),
                "mean_randomized": float(results.n_randomized.mean()),
                "mean_looks": float(results.trial_values["n_looks"].mean()),
            }
        )
    )


def _stream_child(n_sims: int, seed: int, workers: int, warmup: int) -> None:
    """The core design streamed as `platform-sim run` runs it: chunk summaries merged as they
    finish, no per-trial records kept, so memory should not depend on the number of trials."""
    from platform_sim.backends import LocalProcesses
    from platform_sim.checkpoint import Checkpoint
    from platform_sim.runner import plan_chunks
    from platform_sim.spec import Spec

    spec = Spec.load(*WORKLOADS["core_4arm"][:2])
    Checkpoint(None, spec, seed + 1, plan_chunks(warmup, 500), False).execute()
    backend = LocalProcesses(workers) if workers > 1 else None
    start = time.perf_counter()
    try:
        summary = Checkpoint(None, spec, seed, plan_chunks(n_sims, 500), False).execute(backend)
    finally:
        if backend is not None:
            backend.close()
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "n_sims": summary.n_trials,
                "seconds": elapsed,
                "trials_per_second": n_sims / elapsed,
                "us_per_trial": 1e6 * elapsed / n_sims,
                "workers": workers,
                "peak_memory_mib": _peak_mib(),
                "peak_worker_mib": _peak_mib(resource.RUSAGE_CHILDREN),
                "mean_n_total": summary.stat("trial", "", "n_randomized").mean()[0],
            }
        )
    )


# --- the parent ------------------------------------------------------------------------------


def _spawn(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "system": platform.system(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg()[0],
    }


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _workers_mib(r: dict) -> str:
    if r.get("peak_worker_mib") is None:
        return "no worker process started (a single chunk)"
    return f"{_mib(r['peak_worker_mib'])} MiB largest worker"


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        choices=SECTIONS + ["strata", "targets"],
        action="append",
        help="run only this workload (repeatable); default: all of them",
    )
    parser.add_argument(
        "--factor",
        choices=list(scaling.FACTORS),
        action="append",
        help="scaling table: only this factor (repeatable; alone, runs only the scaling table)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a few trials per workload, extreme levels of each scaling factor, "
        "workloads run side by side; checks the script works, the figures mean little",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument(
        "--baseline",
        metavar="PATH",
        help="with --only targets: a previous release's checkout, measured beside this one (benchmarks/targets.py)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--n-sims", type=int, help=f"trials of core_4arm, pioneer_rar, lungmap ({FULL['n_sims']:,})")
    parser.add_argument(
        "--grid-sims", type=int, help=f"trials per design x scenario in the grid ({FULL['grid_sims']:,})"
    )
    parser.add_argument(
        "--grid-scenarios",
        type=int,
        choices=range(1, len(GRID_SCENARIOS) + 1),
        metavar="K",
        help=f"grid: the first K of the {len(GRID_SCENARIOS)} scenarios (all; --quick: 2)",
    )
    parser.add_argument(
        "--platform-sims", type=int, help=f"trials of the platform workload ({FULL['platform_sims']:,})"
    )
    parser.add_argument("--population-n", type=int, help=f"virtual patients ({FULL['population_n']:,})")
    parser.add_argument(
        "--scaling-sims", type=int, help=f"trials per row of the scaling table ({FULL['scaling_sims']:,})"
    )
    parser.add_argument("--stream-sims", type=int, help=f"trials of the streamed core design ({FULL['stream_sims']:,})")
    parser.add_argument("--warmup", type=int, help=f"warm-up trials before timing ({FULL['warmup']})")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the grid and the platform (2)")
    parser.add_argument(
        "--jobs",
        type=int,
        help="workloads run side by side (1; --quick: one per core). "
        "Above 1 the processes compete for the cores and the timings are not measurements",
    )
    parser.add_argument("--child", nargs=2, metavar=("DESIGN", "SCENARIO"), help=argparse.SUPPRESS)
    parser.add_argument("--population-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grid-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strata-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scaling-child", nargs=2, metavar=("FACTOR", "VALUE"), help=argparse.SUPPRESS)
    parser.add_argument("--platform-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stream-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    if args.child:
        return _child(*args.child, args.n_sims, args.seed, args.warmup)
    if args.grid_child:
        return _grid_child(args.grid_sims, args.seed, args.workers, args.warmup, args.grid_scenarios)
    if args.strata_child:
        return _strata_child(args.strata_child, args.scaling_sims, args.seed, args.warmup)
    if args.scaling_child:
        return _scaling_child(
            args.scaling_child[0], int(args.scaling_child[1]), args.scaling_sims, args.seed, args.warmup
        )
    if args.population_child:
        return _population_child(POPULATION, args.population_n, args.seed)
    if args.platform_child:
        return _platform_child(args.platform_sims, args.seed, args.workers, args.warmup)
    if args.stream_child:
        return _stream_child(args.stream_sims, args.seed, args.workers, args.warmup)

    if args.only and "targets" in args.only:  # the speed targets table, beside a previous release
        import targets  # benchmarks/targets.py

        return targets.main(
            [
                *(["--baseline", args.baseline] if args.baseline else []),
                *(["--quick"] if args.quick else []),
                *(["--json", args.json] if args.json else []),
            ]
        )
    only = set(args.only or (["scaling"] if args.factor else SECTIONS))
    factors = list(scaling.FACTORS) if "scaling" in only else ["strata"] if "strata" in only else []
    if args.factor:  # implies the scaling table
        factors = [f for f in scaling.FACTORS if f in args.factor]
    common = ["--seed", str(args.seed), "--warmup", str(args.warmup)]

    machine = _machine()
    print(
        f"machine: {machine['cpu']} ({machine['arch']}), {machine['cores']} cores, {machine['system']}, "
        f"Python {machine['python']}; load average {machine['load_average_at_start']:.2f} at start; "
        f"each workload in a fresh process, one worker unless stated"
        + (
            f"; QUICK smoke run, {args.jobs} workloads at a time: not measurements"
            if args.quick
            else f"; {args.jobs} workloads at a time: not measurements"
            if args.jobs > 1
            else ""
        ),
        flush=True,
    )
    report: dict = {
        "machine": machine,
        "settings": {k: getattr(args, k) for k in [*FULL, "seed", "workers", "quick"]},
        "workloads": {},
    }

    # Submit every child up front (in printing order); with --jobs 1 they run one after another.
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    try:
        standard: dict[str, Future] = {
            name: pool.submit(_spawn, "--child", *WORKLOADS[name][:2], "--n-sims", str(args.n_sims), *common)
            for name in WORKLOADS
            if name in only
        }
        grid = (
            pool.submit(
                _spawn,
                "--grid-child",
                "--grid-sims",
                str(args.grid_sims),
                "--grid-scenarios",
                str(args.grid_scenarios),
                "--workers",
                str(args.workers),
                *common,
            )
            if "grid" in only
            else None
        )
        plat = (
            pool.submit(
                _spawn,
                "--platform-child",
                "--platform-sims",
                str(args.platform_sims),
                "--workers",
                str(args.workers),
                *common,
            )
            if "platform" in only
            else None
        )
        pop = (
            pool.submit(_spawn, "--population-child", "--population-n", str(args.population_n), *common)
            if "population" in only
            else None
        )
        streamed = (
            pool.submit(
                _spawn,
                "--stream-child",
                "--stream-sims",
                str(args.stream_sims),
                "--workers",
                str(args.workers),
                *common,
            )
            if "stream" in only
            else None
        )
        levels = {
            f: (scaling.QUICK_LEVELS if args.quick else {k: v[0] for k, v in scaling.FACTORS.items()})[f]
            for f in factors
        }
        rows: dict[str, list[Future]] = {}
        for f in factors:
            if f == "strata":  # 2**markers strata
                rows[f] = [
                    pool.submit(
                        _spawn,
                        "--strata-child",
                        str(int(math.log2(v))),
                        "--scaling-sims",
                        str(args.scaling_sims),
                        *common,
                    )
                    for v in levels[f]
                ]
            else:
                rows[f] = [
                    pool.submit(_spawn, "--scaling-child", f, str(v), "--scaling-sims", str(args.scaling_sims), *common)
                    for v in levels[f]
                ]

        if standard:
            print(
                f"{'workload':<14}{'trials':>10}{'seconds':>10}{'trials/s':>12}{'µs/trial':>10}{'peak MiB':>10}"
                "  description",
                flush=True,
            )
        for name, fut in standard.items():
            r = fut.result()
            report["workloads"][name] = {"design": WORKLOADS[name][0], "scenario": WORKLOADS[name][1], **r}
            print(
                f"{name:<14}{r['n_sims']:>10,}{r['seconds']:>10.1f}{_rate(r['trials_per_second']):>12}"
                f"{r['us_per_trial']:>10,.0f}{_mib(r['peak_memory_mib']):>10}  {WORKLOADS[name][2]}",
                flush=True,
            )
        if grid is not None:
            r = grid.result()
            report["workloads"]["grid"] = {"designs": GRID_DESIGNS, "n_sims_per_pair": args.grid_sims, **r}
            print(
                f"\ngrid (comparison): {len(GRID_DESIGNS)} designs x {len(r['scenarios'])} scenarios x "
                f"{args.grid_sims:,} trials = {r['n_sims']:,} trials in {r['seconds']:.1f} s "
                f"({_rate(r['trials_per_second'])} trials/s, {r['workers']} workers), peak "
                f"{_mib(r['peak_memory_mib'])} MiB main process, {_workers_mib(r)}",
                flush=True,
            )
        if plat is not None:
            r = plat.result()
            report["workloads"]["platform"] = {"design": PLATFORM[0], "scenario": PLATFORM[1], **r}
            print(
                f"\nplatform over time ({PLATFORM[0]} on {PLATFORM[1]}: 5 candidate arms, at most 3 open, shared "
                f"docetaxel control, 4 strata, PFS, analyses every 3 months for up to 4 years): {r['n_sims']:,} "
                f"trials in {r['seconds']:.1f} s ({_rate(r['trials_per_second'])} trials/s, {r['workers']} "
                f"workers), peak {_mib(r['peak_memory_mib'])} MiB main process, {_workers_mib(r)}; "
                f"{r['mean_randomized']:,.0f} patients and {r['mean_looks']:.1f} analyses per "
                "platform",
                flush=True,
            )
        if pop is not None:
            r = pop.result()
            report["workloads"]["population"] = {"scenario": POPULATION, **r}
            print(
                f"\npopulation (virtual patients of scenario {POPULATION}): {r['n']:,} in {r['seconds']:.2f} s "
                f"({r['patients_per_second']:,.0f} patients/s), peak {_mib(r['peak_memory_mib'])} MiB; {r['what']}",
                flush=True,
            )
        if streamed is not None:
            r = streamed.result()
            report["workloads"]["stream"] = {"design": WORKLOADS["core_4arm"][0], **r}
            print(
                f"\nstreamed core design (operating characteristics merged chunk by chunk, no per-trial records): "
                f"{r['n_sims']:,} trials in {r['seconds']:.1f} s ({_rate(r['trials_per_second'])} trials/s, "
                f"{r['workers']} workers), peak {_mib(r['peak_memory_mib'])} MiB main process, {_workers_mib(r)}; "
                f"mean sample size {r['mean_n_total']:,.1f}",
                flush=True,
            )
        if rows:
            _scaling_table(rows, args, report)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    report["machine"]["load_average_at_end"] = os.getloadavg()[0]
    print(
        f"\nload average {report['machine']['load_average_at_end']:.2f} at end (above 0 the figures include "
        "competition from other processes)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"\nwrote {args.json}")


def _scaling_table(rows: dict[str, list[Future]], args, report: dict) -> None:
    print(
        f"\nscaling: cost against one factor at a time, {args.scaling_sims:,} trials per row, one worker. "
        f"Base: {scaling.BASE} (4 arms, 17 looks from 400 to 2000, max 2000; * marks the base row); "
        f"strata: {STRATA_DESIGN[0]} on {STRATA_DESIGN[1]} stratified by 1-{len(STRATA_MARKERS)} two-level "
        f"markers. Arms E-H have assumed event rates {', '.join(f'{a} {r}' for a, r in scaling.EXTRA_RATES.items())}."
    )
    print(
        f"{'factor':<16}{'value':>7}{'trials/s':>10}{'µs/trial':>10}{'peak MiB':>10}{'mean N':>9}{'mean looks':>12}",
        flush=True,
    )
    table, slopes = [], {}
    for factor, futures in rows.items():
        _, base, _ = scaling.FACTORS[factor]
        got = []
        for fut in futures:
            r = fut.result()
            got.append(r)
            table.append({"factor": factor, **r})
            mark = "*" if r["value"] == base else " "
            print(
                f"{factor:<16}{r['value']:>6}{mark}{_rate(r['trials_per_second']):>10}{r['us_per_trial']:>10,.0f}"
                f"{_mib(r['peak_memory_mib']):>10}{r['mean_n_total']:>9,.0f}{r['mean_looks']:>12.1f}",
                flush=True,
            )
        if len(got) > 1:
            slopes[factor] = {
                "us_per_trial": scaling.slope([r["value"] for r in got], [r["us_per_trial"] for r in got]),
                "mean_n_total": scaling.slope([r["value"] for r in got], [r["mean_n_total"] for r in got]),
                "peak_memory_mib": scaling.slope([r["value"] for r in got], [r["peak_memory_mib"] for r in got]),
            }
    report["scaling"] = {
        "base_design": scaling.BASE,
        "strata_design": list(STRATA_DESIGN),
        "extra_arm_rates_assumed": scaling.EXTRA_RATES,
        "n_sims_per_row": args.scaling_sims,
        "rows": table,
        "log_log_slopes": slopes,
    }
    if slopes:
        names = {"arms": "arms", "strata": "strata", "looks": "looks", "max_n": "max N"}
        print(
            "reading: µs/trial grows about as "
            + ", ".join(f"{names[f]}^{s['us_per_trial']:.2f}" for f, s in slopes.items())
            + " (least-squares slope of log µs/trial on log factor: 1 = proportional, 0 = flat; mean patients "
            + ", ".join(f"{names[f]}^{s['mean_n_total']:.2f}" for f, s in slopes.items())
            + ")",
            flush=True,
        )


if __name__ == "__main__":
    main()
