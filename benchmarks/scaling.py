"""Scaling-table variants of the core benchmark design, one factor at a time.

The core workload (``designs/benchmark_four_arm.yaml`` on ``scenarios/benchmark_four_arm.yaml``:
4 arms, 17 looks from 400 to 2000 every 100 patients) is read as YAML, changed in memory in one
factor, written to temporary files and loaded through :meth:`platform_sim.config.Spec.load`, so
each variant goes through the same validation as a user's file.

* ``arms``: the first k arms of A..H (A stays the control). Arms E..H do not exist in the
  shipped scenario; their rates below are benchmark assumptions.
* ``looks``: L looks up to the same maximum of 2000: the first at 400 as in the base design,
  the others equally spaced up to 2000 (one look: a single analysis at 2000).
* ``max_n``: the maximum sample size N with the base design's 17 looks at the same fractions
  of N (0.20, 0.25, ..., 1.00).

The ``strata`` factor is not a variant of this design: it reuses the strata workload of
``run.py`` (``battle_stratified_rar`` stratified by 1..4 two-level markers).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

BASE = "benchmark_four_arm"  # design and scenario name
ROOT = Path(__file__).resolve().parent.parent

ARM_NAMES = ["A", "B", "C", "D", "E", "F", "G", "H"]
# Event rates (lower is better) of the arms that the shipped scenario does not have.
# Benchmark assumptions, not data: a mix of worse, null and better arms so that larger
# designs do not simply stop earlier.
EXTRA_RATES = {
    "E": 0.27,  # benchmark assumption: worse than control A (0.25)
    "F": 0.23,  # benchmark assumption: slightly better than A
    "G": 0.25,  # benchmark assumption: same as A
    "H": 0.21,  # benchmark assumption: better than A
}

FACTORS = {
    # factor: (levels, value in the base design or None, label)
    "arms": ([2, 3, 4, 6, 8], 4, "arms (incl. control)"),
    "strata": ([2, 4, 8, 16], None, "strata"),
    "looks": ([1, 2, 5, 10, 20], 17, "looks"),
    "max_n": ([250, 500, 1000, 2000, 4000], 2000, "max sample size"),
}
QUICK_LEVELS = {"arms": [2, 8], "strata": [2, 16], "looks": [1, 20], "max_n": [250, 4000]}


def _base_files() -> tuple[dict, dict]:
    design = yaml.safe_load((ROOT / "designs" / f"{BASE}.yaml").read_text())
    scenario = yaml.safe_load((ROOT / "scenarios" / f"{BASE}.yaml").read_text())
    return design, scenario


def _looks_up_to(last: int, n_looks: int, first: int) -> list[int]:
    if n_looks == 1:
        return [last]
    return [round(first + (last - first) * j / (n_looks - 1)) for j in range(n_looks)]


def variant(factor: str, value: int) -> tuple[dict, dict]:
    """The base design and scenario (as YAML data) with ``factor`` set to ``value``."""
    design, scenario = _base_files()
    design["name"] = scenario["name"] = f"{BASE}_{factor}_{value}"
    if factor == "arms":
        if not 2 <= value <= len(ARM_NAMES):
            raise ValueError(f"arms must be 2..{len(ARM_NAMES)}, got {value}")
        names = ARM_NAMES[:value]
        design["arms"] = [{"name": a, "treatment": a} for a in names]
        rates = {a: t["rates"]["event"] for a, t in scenario["treatments"].items()} | EXTRA_RATES
        scenario["treatments"] = {a: {"rates": {"event": rates[a]}} for a in names}
    elif factor == "looks":
        design["looks"] = {"randomized_n": _looks_up_to(2000, value, 400)}
    elif factor == "max_n":
        # the base design's 17 looks at 0.20, 0.25, ..., 1.00 of the maximum
        looks = sorted({round(value * k / 20) for k in range(4, 21)})
        design["looks"] = {"randomized_n": looks}
    else:
        raise ValueError(f"no design variant for factor {factor!r}")
    return design, scenario


def write_variant(factor: str, value: int, folder: str | Path) -> tuple[Path, Path]:
    """Write the variant's design and scenario as YAML files in ``folder``; load them with
    ``Spec.load(*paths)`` while the folder exists (the spec keeps the file names)."""
    design, scenario = variant(factor, value)
    d, s = Path(folder) / f"{design['name']}.yaml", Path(folder) / f"{scenario['name']}_scenario.yaml"
    d.write_text(yaml.safe_dump(design, sort_keys=False))
    s.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return d, s


def slope(values: list[float], costs: list[float]) -> float:
    """Least-squares slope of log(cost) on log(value): cost grows about as value**slope."""
    xs, ys = [math.log(v) for v in values], [math.log(c) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else math.nan
