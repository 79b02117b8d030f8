"""Compare designs on scenarios with the same simulated patients, and paired differences.

Every design runs on every scenario with the same seed and chunk size, so the
``t``-th simulated trial of every design enrols the same virtual patients with the
same potential outcomes (common random numbers). A difference between two designs
is then estimated trial by trial, and its standard error (the standard deviation
of the per-trial differences over sqrt(T)) is much smaller than that of two
independent runs whenever the designs' outcomes are correlated.

The result is one tidy table, one row per design x scenario x metric (x arm for
arm-level metrics, x arm x stratum for stratified designs), with the value, its Monte Carlo standard error and the
paired difference from the reference design with its paired standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ConfigError, Spec
from .config.crosscheck import Problem
from .metrics import stratified_trial_values, stratum_truth, truth
from .results import TrialResults
from .backends import Backend, LocalProcesses
from .runner import DEFAULT_CHUNK_SIZE, run

# Trial-level metrics: per-trial values whose mean is the operating characteristic.
TRIAL_METRICS = {
    "p_any_effective": "at least one arm declared effective (superior to the control, or best without one)",
    "power": "at least one truly effective arm declared effective (NaN without one)",
    "fwer": "at least one truly null arm declared effective (NaN without one)",
    "p_correct_finding": "every arm declared effective exactly when it truly works",
    "n_randomized": "patients randomized",
    "n_screened": "patients screened to randomize them",
    "n_not_randomized": "screened but not randomized (screen failures, lost while waiting, ineligible, no open sub-study)",
    "n_lost_in_screening": "screen failures, patients lost while waiting for results, and ineligible patients",
    "n_not_assigned": "passed screening but no open stratum or sub-study took them (stratified designs)",
    "duration_months": "months from the platform opening to the last patient's endpoint assessment",
    "n_on_effective_arms": "patients randomized to truly effective arms",
    "n_on_null_arms": "patients randomized to truly null arms",
    "responders": "endpoint events (responses / disease control) among randomized patients",
}
ARM_METRICS = {
    "p_declared_effective": "the arm was declared effective (power where it works, false-positive rate where not)",
    "mean_n": "patients randomized to the arm",
}


def _per_trial(results: TrialResults, spec: Spec) -> dict[str, np.ndarray]:
    tr = truth(spec)
    better = tr["truly_better"].to_numpy(dtype=bool)
    null = tr["truly_null"].to_numpy(dtype=bool)
    declared = np.asarray(results.declared_superior, dtype=bool)
    n = np.asarray(results.n, dtype=float)
    c = spec.design.control_index
    judged = np.ones(n.shape[1], dtype=bool)
    if c is not None:
        judged[c] = False
    nan = np.full(results.n_trials, np.nan)
    screened = np.asarray(results.n_screened, dtype=float) if results.n_screened is not None else nan
    total = n.sum(axis=1)
    not_assigned = np.zeros(results.n_trials)
    if results.strata is not None and results.strata.n_unrouted is not None:
        not_assigned = np.asarray(results.strata.n_unrouted, dtype=float)
    values = {
        "p_any_effective": declared[:, judged].any(axis=1).astype(float),
        "power": declared[:, better].any(axis=1).astype(float) if better.any() else nan,
        "fwer": declared[:, null].any(axis=1).astype(float) if null.any() else nan,
        "p_correct_finding": (declared[:, judged] == better[judged]).all(axis=1).astype(float),
        "n_randomized": total,
        "n_screened": screened,
        "n_not_randomized": screened - total,
        "n_lost_in_screening": screened - total - not_assigned,
        "n_not_assigned": not_assigned,
        "duration_months": (np.asarray(results.duration_months, dtype=float) if results.duration_months is not None
                            else nan),
        "n_on_effective_arms": n[:, better].sum(axis=1),
        "n_on_null_arms": n[:, null].sum(axis=1),
        "responders": np.asarray(results.responders, dtype=float).sum(axis=1),
    }
    if results.strata is not None:  # findings judged per arm x stratum
        values.update(stratified_trial_values(results, spec))
    return values


def _per_arm_stratum(results: TrialResults, spec: Spec) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    if results.strata is None:
        return {}
    st = results.strata
    out = {}
    for s, stratum in enumerate(st.names):
        for k, arm in enumerate(spec.design.arm_names):
            if spec.strata.arm_in[s, k]:
                out[stratum, arm] = {"p_declared_effective": np.asarray(st.declared, dtype=float)[:, s, k],
                                     "mean_n": np.asarray(st.n, dtype=float)[:, s, k]}
    return out


def _per_arm(results: TrialResults, spec: Spec) -> dict[str, dict[str, np.ndarray]]:
    declared = np.asarray(results.declared_superior, dtype=float)
    n = np.asarray(results.n, dtype=float)
    return {
        arm: {"p_declared_effective": declared[:, j], "mean_n": n[:, j]}
        for j, arm in enumerate(spec.design.arm_names)
    }


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


@dataclass
class Comparison:
    table: pd.DataFrame  # tidy: design, scenario, level, arm, stratum, role, metric, value, mcse, diff, diff_se
    reference: str
    n_sims: int
    seed: int


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
    specs: dict[tuple[str, str], Spec] = {}
    problems = []
    for s in scenarios:
        for d in designs:
            try:
                specs[d, s] = Spec.load(d, s)
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                continue
            if specs[d, s].design.platform is not None:
                problem = Problem("design.platform", f"design {d!r} runs over calendar time; compare runs designs "
                                  "with looks. Run it with `platform-sim run`, whose report shows concurrent and "
                                  "all-control analyses side by side", None, file=specs[d, s].design_file)
                if problem not in problems:
                    problems.append(problem)
    if problems:
        raise ConfigError(problems)
    problems = _same_names("design", designs, [specs[d, scenarios[0]] for d in designs]) + _same_names(
        "scenario", scenarios, [specs[designs[0], s] for s in scenarios])
    if problems:  # found before anything is simulated
        raise ConfigError(problems)
    names = {d: specs[d, scenarios[0]].design.name for d in designs}
    reference = reference or designs[0]
    if reference not in designs:
        raise ValueError(f"reference design {reference!r} is not one of {designs}")

    own = backend is None
    executor = (LocalProcesses(workers) if workers > 1 else None) if own else backend
    try:
        rows = _compare_rows(designs, scenarios, specs, names, reference, n_sims, seed, workers, chunk_size,
                             progress, executor)
    finally:
        if own and executor is not None:
            executor.close()
    return Comparison(pd.DataFrame(rows), names[reference], n_sims, seed)


def _same_names(kind: str, refs: list[str], specs: list[Spec]) -> list[Problem]:
    """Designs (or scenarios) that share a name: the comparison table tells them apart by name only,
    so two of them would be mixed up. One problem per name, on the file that repeats it."""
    problems = []
    seen: dict[str, str] = {}
    for ref, spec in zip(refs, specs):
        model, file = (spec.design, spec.design_file) if kind == "design" else (spec.scenario, spec.scenario_file)
        if model.name in seen:
            first = seen[model.name]
            what = f"is listed twice ({ref})" if first == ref else f"has the same name as {first}"
            problems.append(Problem(f"{kind}.name", f"{what}; compare tells {kind}s apart by their names, so give each "
                                    f"{kind} a distinct name (and list each once)", model.name, file=file))
        else:
            seen[model.name] = ref
    return problems


def _metric_rows(keys: dict, metrics: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None) -> list[dict]:
    """One row per metric: ``keys`` plus the value, its MCSE and, when the reference design has
    the same metric (per-trial values), the paired difference and its SE."""
    out = []
    for metric, x in metrics.items():
        value, se = _mean_se(x)
        diff, diff_se = _mean_se(x - reference[metric]) if reference is not None else (math.nan, math.nan)
        out.append({**keys, "metric": metric, "value": value, "mcse": se, "diff_vs_reference": diff,
                    "diff_se": diff_se})
    return out


def _compare_rows(designs, scenarios, specs, names, reference, n_sims, seed, workers, chunk_size, progress, executor):
    rows = []
    for s in scenarios:
        per_trial, per_arm, per_stratum = {}, {}, {}
        for d in designs:
            spec = specs[d, s]
            results = run(spec, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
            per_trial[d], per_arm[d] = _per_trial(results, spec), _per_arm(results, spec)
            per_stratum[d] = _per_arm_stratum(results, spec)
        scen_name = specs[designs[0], s].scenario.name
        for d in designs:
            is_ref = d == reference
            base = {"design": names[d], "scenario": scen_name}
            rows += _metric_rows({**base, "level": "trial", "arm": "", "stratum": "", "role": ""},
                                 per_trial[d], None if is_ref else per_trial[reference])
            roles = truth(specs[d, s])
            for arm, metrics in per_arm[d].items():
                r = roles.loc[arm]
                role = "better" if r["truly_better"] else "null" if r["truly_null"] else (
                    "control" if arm == specs[d, s].design.control else "grey zone")
                rows += _metric_rows({**base, "level": "arm", "arm": arm, "stratum": "", "role": role},
                                     metrics, None if is_ref else per_arm[reference].get(arm))
            if per_stratum[d]:
                roles_s = stratum_truth(specs[d, s])
                for (stratum, arm), metrics in per_stratum[d].items():
                    rows += _metric_rows(
                        {**base, "level": "arm_stratum", "arm": arm, "stratum": stratum,
                         "role": roles_s.loc[(stratum, arm), "role"]},
                        metrics, None if is_ref else per_stratum[reference].get((stratum, arm)))
    return rows


_SHOWN = ["power", "fwer", "p_correct_finding", "n_randomized", "n_screened", "n_lost_in_screening", "n_not_assigned",
          "duration_months", "n_on_effective_arms", "responders"]


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

    header = ["scenario", "metric"] + designs + [f"{d} − {comparison.reference}" for d in others]
    body = []
    for scen in dict.fromkeys(t.scenario):
        for metric in _SHOWN:
            part = t[(t.scenario == scen) & (t.metric == metric)].set_index("design")
            if part.empty:
                continue
            d = 1 if metric.startswith(("n_", "responders", "duration")) else digits
            row = [scen, metric]
            row += [cell(part.at[x, "value"], part.at[x, "mcse"], d) for x in designs]
            row += [cell(part.at[x, "diff_vs_reference"], part.at[x, "diff_se"], d) for x in others]
            body.append(row)
    if fmt == "csv":
        return pd.DataFrame(body, columns=header).to_csv(index=False)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    fmt_row = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    out = [fmt_row(header), fmt_row(["-" * w for w in widths])]
    previous = None
    for r in body:
        if previous is not None and r[0] != previous:
            out.append("")
        out.append(fmt_row(r if r[0] != previous else [""] + r[1:]))
        previous = r[0]
    return "\n".join(out)


__all__ = ["ARM_METRICS", "Comparison", "TRIAL_METRICS", "compare", "side_by_side"]
