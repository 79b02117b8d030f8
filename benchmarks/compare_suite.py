"""The fair comparison of a scenario suite, timed end to end: calibration, sizing, every design on
every scenario and the power-versus-FWER frontier.

    python benchmarks/compare_suite.py                      # suite:core, 2,000 trials, 2 workers
    python benchmarks/compare_suite.py --n-sims 200 --quick # a smoke run
    python benchmarks/compare_suite.py --no-frontier        # calibration and the comparison only

Prints the wall time, the CPU time of this process and its workers (on a busy machine, CPU time
over the number of workers is what the run would take on idle cores), the simulated trials per
second and the peak memory of this process and of the workers.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished workers (user + system)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="core", help="shipped suite name or suite file (default: core)")
    parser.add_argument("--n-sims", type=int, default=2000, help="simulated trials per design x scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target-fwer", type=float, default=0.10)
    parser.add_argument("--equal", choices=["none", "max_n", "duration"], default="max_n")
    parser.add_argument("--frontier", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true", help="two designs only, for a smoke run")
    args = parser.parse_args()

    start = time.perf_counter()
    from platform_sim.compare import compare, planned_trials
    from platform_sim.config import load_suite
    from platform_sim.posterior import warm_up

    warm_up()
    suite = load_suite(args.suite)
    designs = suite.designs[:2] if args.quick else suite.designs
    startup = time.perf_counter() - start
    total = planned_trials(len(designs), len(suite.scenarios), args.n_sims, True, args.frontier)
    print(
        f"suite {suite.name}: {len(designs)} designs x {len(suite.scenarios)} scenarios x {args.n_sims:,} trials, "
        f"calibrated to FWER {args.target_fwer:g} on {suite.null_scenario}, equal {args.equal}, "
        f"frontier {'on' if args.frontier else 'off'}, {args.workers} workers",
        flush=True,
    )
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    result = compare(
        designs,
        suite.scenarios,
        args.n_sims,
        args.seed,
        workers=args.workers,
        null_scenario=suite.null_scenario,
        target_fwer=args.target_fwer,
        equal=args.equal,
        frontier=args.frontier,
    )
    elapsed = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    evaluated = int(result.calibration["thresholds_evaluated"].sum()) * args.n_sims
    frontier = 0
    if args.frontier and not result.frontier.empty:
        runs = result.frontier[result.frontier["setting"] != "calibrated"]
        frontier = int(runs.drop_duplicates(["design", "setting", "scenario"])["n"].sum())
    main_trials = len(designs) * len(suite.scenarios) * args.n_sims
    simulated = evaluated + main_trials + frontier
    print(f"{'start-up (imports, kernels, suite)':<40}{startup:>9.1f} s")
    print(f"{'comparison':<40}{elapsed:>9.1f} s  ({elapsed / 60:.1f} min)")
    print(
        f"{'CPU time (process and workers)':<40}{cpu:>9.1f} s  (on {args.workers} idle cores: "
        f"{cpu / args.workers / 60:.1f} min)"
    )
    print(
        f"{'trials simulated':<40}{simulated:>11,}  (calibration {evaluated:,}, comparison {main_trials:,}, "
        f"frontier {frontier:,}; planned bound {total:,})"
    )
    print(
        f"{'trials per second':<40}{simulated / elapsed:>11,.0f}  ({simulated / elapsed / args.workers:,.0f} per "
        "worker)"
    )
    print(f"{'peak memory, this process':<40}{_peak_mib(resource.RUSAGE_SELF):>9.0f} MiB")
    print(f"{'peak memory, largest worker':<40}{_peak_mib(resource.RUSAGE_CHILDREN):>9.0f} MiB")
    print(f"{'total':<40}{time.perf_counter() - start:>9.1f} s", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
