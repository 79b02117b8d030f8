"""Compare designs on scenarios with the same simulated patients, and paired differences.

Every design runs on every scenario with the same seed, so the ``t``-th simulated
trial of every design enrols the same virtual patients with the same potential
outcomes and randomization numbers (common random numbers). A difference between
two designs is then estimated trial by trial, and its standard error (the standard
deviation of the per-trial differences over sqrt(T)) is much smaller than that of
two independent runs whenever the designs' outcomes are correlated.

Every design family goes through the same operating characteristics
(:mod:`platform_sim.oc`), so a platform over calendar time, a design with looks
and a stratified design stand in one table with the same metrics. The result is
one tidy table, one row per design x scenario x level x arm x subgroup x metric,
with the value, its Monte Carlo standard error and the paired difference from the
reference design with its paired standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .backends import Backend, LocalProcesses
from .config import ConfigError, Problem
from .oc import per_trial
from .runner import DEFAULT_CHUNK_SIZE, run
from .spec import Spec

# Trial-level metrics of the side-by-side table, in order, with their meaning.
TRIAL_METRICS = {
    "p_any_claim": "at least one arm claimed effective in some subgroup",
    "power": "at least one true claim: an arm claimed where it works (NaN when no arm works anywhere)",
    "fwer": "at least one false claim: an arm claimed where it is null (NaN when no arm is null anywhere)",
    "p_correct_finding": "no false claim, and every working arm claimed",
    "n_randomized": "patients randomized",
    "n_screened": "patients screened to randomize them",
    "n_not_randomized": "screened but not randomized (screen failures, lost while waiting, ineligible, no open stratum)",
    "n_lost_in_screening": "screen failures, patients lost while waiting for results, and ineligible patients",
    "n_not_assigned": "passed screening but no open stratum, sub-study or arm took them",
    "duration_months": "months from the opening to the last analysis",
    "months_to_first_claim": "months from the opening to the first claim (trials with one)",
    "months_to_first_true_claim": "months from the opening to the first true claim (trials with one)",
    "n_on_effective_arms": "patients randomized to an arm that works for their stratum",
    "n_on_null_arms": "patients randomized to an arm that is null for their stratum",
    "responders": "endpoint events (responses, disease control, progressions) among randomized patients",
}
ARM_METRICS = {
    "p_claimed": "the arm was claimed effective (in some subgroup)",
    "n": "patients randomized to the arm",
}
SUBGROUP_METRICS = {
    "p_claimed": "the arm was claimed effective in the subgroup (power where it works, false-positive rate where "
                 "it is null)",
    "mean_n": "patients of the subgroup randomized to the arm",
}


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


@dataclass
class Comparison:
    table: pd.DataFrame  # tidy: design, scenario, level, arm, subgroup, role, metric, value, mcse, diff, diff_se
    reference: str
    n_sims: int
    seed: int


def load_pairs(designs: list, scenarios: list) -> tuple[dict, dict[str, str]]:
    """Every design x scenario pair as a :class:`~platform_sim.spec.Spec` (keyed by the given
    references) and each design's name. Every problem is raised at once, before anything runs;
    two designs with the same name are a problem, since the table could not tell them apart."""
    specs: dict[tuple[str, str], Spec] = {}
    problems: list[Problem] = []
    for s in scenarios:
        for d in designs:
            try:
                specs[d, s] = Spec.load(d, s)
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    names = {d: specs[d, scenarios[0]].design.name for d in designs}
    seen: dict[str, str] = {}
    for d, name in names.items():
        if name in seen:
            problems.append(Problem("design.name", f"{d} and {seen[name]} are both named {name!r}; rename one (its "
                                    "name: field) so the comparison can tell them apart", name,
                                    file=specs[d, scenarios[0]].design_file))
        seen.setdefault(name, d)
    if problems:
        raise ConfigError(problems)
    return specs, names


def compare(
    designs: list[str],
    scenarios: list[str],
    n_sims: int,
    seed: int,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    reference: str | None = None,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
) -> Comparison:
    """Run every design on every scenario with common random numbers and tabulate the OCs.

    Every design x scenario pair is loaded and checked before anything runs; all problems
    are raised together as one :class:`ConfigError`. ``backend`` (see :mod:`platform_sim.backends`)
    replaces the ``workers`` local processes."""
    specs, names = load_pairs(designs, scenarios)
    reference = reference or designs[0]
    if reference not in designs:
        raise ValueError(f"reference design {reference!r} is not one of {designs}")

    own = backend is None
    executor = (LocalProcesses(workers) if workers > 1 else None) if own else backend
    try:
        rows = []
        for s in scenarios:
            rows += _scenario_rows(designs, s, specs, names, reference, n_sims, seed, workers, chunk_size, progress,
                                   executor)
    finally:
        if own and executor is not None:
            executor.close()
    return Comparison(pd.DataFrame(rows), names[reference], n_sims, seed)


def _wanted(level: str, metric: str) -> bool:
    if level == "trial":
        return True
    if level == "arm":
        return metric in ARM_METRICS
    return metric in SUBGROUP_METRICS


def _scenario_rows(designs, s, specs, names, reference, n_sims, seed, workers, chunk_size, progress, executor):
    values = {}
    for d in designs:
        spec = specs[d, s]
        results = run(spec, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
        values[d] = {key: x for key, x in per_trial(results, spec.truth).items() if _wanted(key[0], key[3])}
    scenario_name = specs[designs[0], s].scenario.name
    rows = []
    for d in designs:
        truth = specs[d, s].truth
        roles = truth.roles
        g_all = np.flatnonzero(truth.membership.all(axis=1))
        for (level, arm, subgroup, metric), x in values[d].items():
            if level == "arm":
                k = truth.arms.index(arm)
                role = roles[k, g_all[0]] if g_all.size else ""
            elif level == "subgroup":
                role = roles[truth.arms.index(arm), truth.subgroups.index(subgroup)]
            else:
                role = ""
            value, se = _mean_se(x)
            other = values[reference].get((level, arm, subgroup, metric)) if d != reference else None
            diff, diff_se = _mean_se(x - other) if other is not None else (math.nan, math.nan)
            rows.append({"design": names[d], "scenario": scenario_name, "level": level, "arm": arm,
                         "subgroup": subgroup, "role": role, "metric": metric, "value": value, "mcse": se,
                         "diff_vs_reference": diff, "diff_se": diff_se})
    return rows


_SHOWN = ["p_any_claim", "power", "fwer", "p_correct_finding", "n_randomized", "n_screened", "n_lost_in_screening",
          "n_not_assigned", "duration_months", "months_to_first_claim", "n_on_effective_arms", "responders"]


def side_by_side(comparison: Comparison, fmt: str = "text", digits: int = 3) -> str:
    """The trial-level OCs as a table: one row per scenario x metric, one column per design
    (value ± MCSE), then the paired difference of each other design from the reference."""
    t = comparison.table
    t = t[(t.level == "trial") & t.metric.isin(_SHOWN)]
    designs = list(dict.fromkeys(t.design))
    others = [d for d in designs if d != comparison.reference]

    def cell(v, se, d):
        if not np.isfinite(v):
            return "NA"
        return f"{v:.{d}f} ± {se:.{d}f}" if np.isfinite(se) else f"{v:.{d}f}"

    header = ["scenario", "metric"] + designs + [f"{d} - {comparison.reference}" for d in others]
    body = []
    for scen in dict.fromkeys(t.scenario):
        for metric in _SHOWN:
            part = t[(t.scenario == scen) & (t.metric == metric)].set_index("design")
            if part.empty:
                continue
            d = digits if metric.startswith("p_") or metric in ("power", "fwer") else 1
            row = [scen, metric]
            row += [cell(part.at[x, "value"], part.at[x, "mcse"], d) if x in part.index else "NA" for x in designs]
            row += [cell(part.at[x, "diff_vs_reference"], part.at[x, "diff_se"], d) if x in part.index else "NA"
                    for x in others]
            body.append(row)
    if fmt == "csv":
        return pd.DataFrame(body, columns=header).to_csv(index=False)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def fmt_row(r):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    out = [fmt_row(header), fmt_row(["-" * w for w in widths])]
    previous = None
    for r in body:
        if previous is not None and r[0] != previous:
            out.append("")
        out.append(fmt_row(r if r[0] != previous else [""] + r[1:]))
        previous = r[0]
    return "\n".join(out)


__all__ = ["ARM_METRICS", "Comparison", "SUBGROUP_METRICS", "TRIAL_METRICS", "compare", "load_pairs", "side_by_side"]
