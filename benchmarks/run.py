"""Speed and memory benchmarks: simulated trials per second and peak memory, one core.

    python benchmarks/run.py                 # the standard workloads, 20,000 trials each
    python benchmarks/run.py --n-sims 100000 # the memory target: 100,000 trials of the core design
    python benchmarks/run.py --only population  # virtual patients only: 1,000,000 with all potential outcomes
    python benchmarks/run.py --only grid        # six designs x the shipped scenarios x 2,000 trials, 2 workers
    python benchmarks/run.py --only strata      # cost against the number of strata (2, 4, 8, 16)
    python benchmarks/run.py --only platform    # PIONeeR-like platform over 4 years, 10,000 trials, 2 workers

Each workload runs in a fresh process (so its peak resident memory is its own)
on one worker, after a short warm-up that loads the compiled kernels. The
figures depend on the machine; the header line says which one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

WORKLOADS = {
    # name: (design, scenario, what it exercises)
    "core_4arm": (
        "benchmark_four_arm",
        "benchmark_four_arm",
        "4 arms, common control, event rates 0.25/0.30/0.22/0.19 (lower is better), looks every 100 "
        "from 400 to 2000, sqrt(k) control allocation, softening 0.5, superiority 0.99, inferiority 0.01, "
        "equivalence 0.85 within 0.05 against the first control",
    ),
    "pioneer_rar": ("pioneer_rar", "pioneer_alternative", "shipped default: PIONeeR-like RAR with outcome lag"),
    "lungmap": ("lungmap_umbrella", "stk11_keap1_ctla4", "Lung-MAP-like umbrella: 4 sub-studies, priority routing, "
                "own controls and a two-stage single-arm non-match sub-study"),
}

GRID_DESIGNS = ["allcomer_fixed", "allcomer_rar", "lungmap_umbrella", "battle_stratified_rar",
                "hierarchical_borrowing", "adaptive_enrichment"]
GRID_SCENARIOS = ["pioneer_null", "s1800a_allcomer", "atm_ceralasertib", "stk11_keap1_ctla4", "trop2_adc",
                  "pioneer_alternative", "phase2_optimism", "qualitative_interaction"]
# strata scaling: the BATTLE-like design stratified by 1..4 two-level markers (2..16 strata)
STRATA_MARKERS = ["stk11_or_keap1", "trop2_nmr", "atm", "kras"]


POPULATION = ("pioneer_alternative", 1_000_000)  # scenario, patients


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
    print(json.dumps({
        "n": n,
        "seconds": elapsed,
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "what": f"{len(patients.population.names)} characteristics, screening funnel, potential outcomes for "
                f"{len(sc.treatments)} treatments x {len(sc.endpoints)} endpoints ({', '.join(sc.endpoints)})",
    }))


def _child(design: str, scenario: str, n_sims: int, seed: int) -> None:
    from platform_sim.config import Spec
    from platform_sim.runner import run

    spec = Spec.load(design, scenario)
    run(spec, 200, seed + 1)  # warm-up: loads the compiled kernels
    start = time.perf_counter()
    results = run(spec, n_sims, seed)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "n_sims": n_sims,
        "seconds": elapsed,
        "trials_per_second": n_sims / elapsed,
        "peak_memory_mib": peak_kib / 1024,
        "mean_n_total": float(results.n_total.mean()),
    }))


def _grid_child(n_sims: int, seed: int, workers: int) -> None:
    from platform_sim.compare import compare

    compare(GRID_DESIGNS[:1], GRID_SCENARIOS[:1], 200, seed + 1, workers=1)  # warm-up
    start = time.perf_counter()
    result = compare(GRID_DESIGNS, GRID_SCENARIOS, n_sims, seed, workers=workers)
    elapsed = time.perf_counter() - start
    total = n_sims * len(GRID_DESIGNS) * len(GRID_SCENARIOS)
    print(json.dumps({
        "n_sims": total, "seconds": elapsed, "trials_per_second": total / elapsed,
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": len(result.table),
    }))


def _strata_child(n_markers: int, n_sims: int, seed: int) -> None:
    from platform_sim.config import Spec
    from platform_sim.config.load import parse_design
    from platform_sim.runner import run

    base = Spec.load("battle_stratified_rar", "pioneer_alternative")
    data = base.design.model_dump(mode="json", exclude_none=True)
    data["strata"] = {"by": STRATA_MARKERS[:n_markers], "suspension": data["strata"]["suspension"]}
    spec = Spec.from_models(parse_design(data), base.scenario)
    run(spec, 200, seed + 1)
    start = time.perf_counter()
    run(spec, n_sims, seed)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "n_sims": n_sims, "seconds": elapsed, "trials_per_second": n_sims / elapsed,
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "strata": len(spec.strata.names),
    }))


PLATFORM = ("pioneer_platform", "pioneer_alternative", 10_000)  # design, scenario, trials


def _platform_child(n_sims: int, seed: int, workers: int) -> None:
    from platform_sim.config import Spec
    from platform_sim.runner import run

    design, scenario, _ = PLATFORM
    spec = Spec.load(design, scenario)
    run(spec, 200, seed + 1)  # warm-up: loads the compiled kernels
    start = time.perf_counter()
    results = run(spec, n_sims, seed, workers=workers)
    elapsed = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({
        "n_sims": n_sims, "seconds": elapsed, "trials_per_second": n_sims / elapsed,
        "peak_memory_mib": own, "peak_worker_mib": children,
        "mean_randomized": float(results.n.sum(axis=1).mean()), "mean_looks": float(results.n_looks.mean()),
    }))


def _spawn(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-sims", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", choices=sorted(WORKLOADS) + ["population", "grid", "strata", "platform"],
                        action="append")
    parser.add_argument("--grid-sims", type=int, default=2_000, help="trials per design x scenario in the grid")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the grid")
    parser.add_argument("--child", nargs=2, metavar=("DESIGN", "SCENARIO"), help=argparse.SUPPRESS)
    parser.add_argument("--population-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grid-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strata-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--platform-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--platform-sims", type=int, default=PLATFORM[2], help="trials of the platform workload")
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.n_sims, args.seed)
        return
    if args.grid_child:
        _grid_child(args.grid_sims, args.seed, args.workers)
        return
    if args.strata_child:
        _strata_child(args.strata_child, args.n_sims, args.seed)
        return
    if args.population_child:
        _population_child(*POPULATION, args.seed)
        return
    if args.platform_child:
        _platform_child(args.platform_sims, args.seed, args.workers)
        return

    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; one worker per workload")
    print(f"{'workload':<14}{'trials':>10}{'seconds':>10}{'trials/s':>12}{'peak MiB':>11}  description")
    for name in args.only or WORKLOADS:
        if name not in WORKLOADS:
            continue
        design, scenario, what = WORKLOADS[name]
        out = subprocess.run(
            [sys.executable, __file__, "--child", design, scenario, "--n-sims", str(args.n_sims), "--seed", str(args.seed)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<14}{r['n_sims']:>10,}{r['seconds']:>10.1f}{r['trials_per_second']:>12,.0f}"
              f"{r['peak_memory_mib']:>11,.0f}  {what}")
    if args.only is None or "strata" in args.only:
        n = min(args.n_sims, 5_000)
        print(f"\nstrata scaling: battle_stratified_rar stratified by 1-4 markers, {n:,} trials, one worker")
        print(f"{'markers':>8}{'strata':>8}{'trials/s':>12}{'peak MiB':>11}")
        for m in range(1, len(STRATA_MARKERS) + 1):
            r = _spawn("--strata-child", str(m), "--n-sims", str(n), "--seed", str(args.seed))
            print(f"{m:>8}{r['strata']:>8}{r['trials_per_second']:>12,.0f}{r['peak_memory_mib']:>11,.0f}")
    if args.only is None or "grid" in args.only:
        r = _spawn("--grid-child", "--grid-sims", str(args.grid_sims), "--seed", str(args.seed),
                   "--workers", str(args.workers))
        print(f"\ncomparison grid: {len(GRID_DESIGNS)} designs x {len(GRID_SCENARIOS)} scenarios x "
              f"{args.grid_sims:,} trials = {r['n_sims']:,} trials in {r['seconds']:.1f} s "
              f"({r['trials_per_second']:,.0f} trials/s, {args.workers} workers), peak {r['peak_memory_mib']:,.0f} MiB "
              "(main process)")
    if args.only is None or "platform" in args.only:
        r = _spawn("--platform-child", "--platform-sims", str(args.platform_sims), "--seed", str(args.seed),
                   "--workers", str(args.workers))
        print(f"\nplatform over time ({PLATFORM[0]} on {PLATFORM[1]}: 5 candidate arms, at most 3 open, shared "
              f"docetaxel control, 4 strata, PFS, analyses every 3 months for up to 4 years): {r['n_sims']:,} trials "
              f"in {r['seconds']:.1f} s ({r['trials_per_second']:,.0f} trials/s, {args.workers} workers), peak "
              f"{r['peak_memory_mib']:,.0f} MiB main, {r['peak_worker_mib']:,.0f} MiB per worker; "
              f"{r['mean_randomized']:,.0f} patients and {r['mean_looks']:.1f} analyses per platform")
    if args.only is None or "population" in args.only:
        out = subprocess.run(
            [sys.executable, __file__, "--population-child", "--seed", str(args.seed)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\nvirtual patients (scenario {POPULATION[0]}): {r['n']:,} in {r['seconds']:.2f} s "
              f"({r['n'] / r['seconds']:,.0f} patients/s), peak {r['peak_memory_mib']:,.0f} MiB; {r['what']}")


if __name__ == "__main__":
    main()
