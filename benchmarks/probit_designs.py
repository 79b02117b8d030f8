"""Speed of the designs analysed with BATTLE's hierarchical probit model (battle, battle2).

    python benchmarks/probit_designs.py               # 1,000 trials per design x scenario, seed 1
    python benchmarks/probit_designs.py --n-sims 200

For each design x scenario: trials per CPU second (process CPU time, one core, after a warm-up run
that compiles the kernels), and the share of (trial, arm) posterior rows the engine recomputed out of
those the looks asked for. ``--no-reuse`` recomputes every row at every look, to measure what the
reuse of unchanged rows saves.
"""

from __future__ import annotations

import argparse
import time

PAIRS = [
    ("battle", "battle_null"),
    ("battle", "battle_kim2011"),
    ("battle2", "battle2_null"),
    ("battle2", "battle2_jco2016"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-sims", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-reuse", action="store_true", help="recompute every (trial, arm) row at every look")
    args = parser.parse_args()

    from platform_sim.families import probit_looks
    from platform_sim.runner import run
    from platform_sim.spec import Spec

    counts = {"computed": 0, "requested": 0}
    original = probit_looks._RowCache.__call__

    def counted(self, rows, y, n):
        before = self.computed, self.requested
        if args.no_reuse:
            self.y[rows] = -1  # forget the rows: every one is recomputed
        original(self, rows, y, n)
        counts["computed"] += self.computed - before[0]
        counts["requested"] += self.requested - before[1]

    probit_looks._RowCache.__call__ = counted
    for design, scenario in PAIRS:
        spec = Spec.load(design, scenario)
        run(spec, 20, args.seed + 1, 1)  # warm-up: compile or load the kernels
        counts.update(computed=0, requested=0)
        t0 = time.process_time()
        run(spec, args.n_sims, args.seed, 1)
        cpu = time.process_time() - t0
        print(
            f"{design:8s} {scenario:16s} {args.n_sims / cpu:7.1f} trials per CPU second; engine rows "
            f"{counts['computed']:,} of {counts['requested']:,} asked ({counts['computed'] / counts['requested']:.1%})"
        )


if __name__ == "__main__":
    main()
