"""Speed and memory benchmarks: simulated trials per second and peak memory, one core.

    python benchmarks/run.py                 # the standard workloads, 20,000 trials each
    python benchmarks/run.py --n-sims 100000 # the memory target: 100,000 trials of the core design
    python benchmarks/run.py --only population  # virtual patients only: 1,000,000 with all potential outcomes

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
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-sims", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", choices=sorted(WORKLOADS) + ["population"], action="append")
    parser.add_argument("--child", nargs=2, metavar=("DESIGN", "SCENARIO"), help=argparse.SUPPRESS)
    parser.add_argument("--population-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.n_sims, args.seed)
        return
    if args.population_child:
        _population_child(*POPULATION, args.seed)
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
