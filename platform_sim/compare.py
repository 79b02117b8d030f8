"""Compare designs on scenarios: the same patients, one yardstick, one error rate.

**Common random numbers.** Every design runs on every scenario with the same seed, so
the ``t``-th simulated trial of every design enrols the same virtual patients with the
same potential outcomes and randomization numbers. A difference between two designs
is estimated trial by trial; its standard error (the standard deviation of the
per-trial differences over sqrt(T)) is much smaller than that of two independent runs
whenever the designs' outcomes are correlated.

**One yardstick.** Claims are read per treatment x subgroup of patients defined by the
scenario's true characteristics (:mod:`platform_sim.yardstick`), whatever the design's
own subgroups: an all-comer claim counts in every subgroup, true where the treatment
works there and false where it does not.

**One error rate.** With a null scenario and a target, each design's decision
threshold is first calibrated (:func:`platform_sim.calibrate.calibrate`, with common
random numbers) so that P(any claim) on the global null is at most the target; every
scenario is then run with the calibrated designs. ``equal`` also sizes every design to
the reference design's maximum sample size or planned accrual duration first.

The result holds one tidy table (one row per design x scenario x level x arm or
treatment x subgroup x metric, with the value, its Monte Carlo standard error, a 95%
interval and the paired difference from the reference design with its 95% interval),
every paired difference between two designs on the trial-level metrics, the
yardstick's truth, the calibration and the power-versus-FWER frontier.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .backends import Backend, LocalProcesses
from .calibrate import Calibration, calibrate
from .config import ConfigError, Design, Problem, Scenario, load_file, resolve
from .oc import jeffreys_interval, per_trial
from .runner import DEFAULT_CHUNK_SIZE, run
from .sizing import EQUAL, equalize
from .spec import Spec
from .yardstick import CELL_METRICS, DRUG_METRICS, TRIAL_METRICS, Yardstick, check_null, for_specs, reading, values

#: The design's own arm-level values kept beside the yardstick.
ARM_METRICS = {
    "p_claimed": "the arm was claimed effective in one of the design's own subgroups",
    "n": "patients randomized to the arm",
}
#: The design's own trial-level values kept beside the yardstick.
OWN_METRICS = {
    "months_to_first_claim": "months from the opening to the first claim (trials with one)",
    "n_lost_in_screening": "screen failures, patients lost while waiting for results, and ineligible patients",
    "n_not_assigned": "passed screening but no open stratum, sub-study or arm took them",
}
#: Whether a larger value of a trial-level metric is better (absent: neither).
BETTER = {
    "power": 1,
    "p_correct_finding": 1,
    "n_on_effective": 1,
    "expected_responders": 1,
    "fwer": -1,
    "n_screened": -1,
    "n_randomized": -1,
    "n_assayed": -1,
    "n_on_ineffective": -1,
    "cost": -1,
    "months_to_first_true_claim": -1,
    "duration_months": -1,
}
#: Metrics that are proportions (their intervals are Jeffreys intervals, their paired differences Newcombe's).
_Z = 1.959963984540054
_FRONTIER_SHIFTS = (-1.0, -0.5, 0.5, 1.0)  # logit shifts of the calibrated threshold drawn on the frontier


def _is_proportion(metric: str) -> bool:
    return metric.startswith("p_") or metric in ("fwer", "power")


# --------------------------------------------------------------------------- intervals


def _wilson(k: float, m: float) -> tuple[float, float]:
    """Wilson score interval of a proportion k/m (Wilson, JASA 1927)."""
    if m <= 0:
        return math.nan, math.nan
    p = k / m
    z2 = _Z * _Z
    centre = (p + z2 / (2 * m)) / (1 + z2 / m)
    half = _Z * math.sqrt(p * (1 - p) / m + z2 / (4 * m * m)) / (1 + z2 / m)
    return max(0.0, centre - half), min(1.0, centre + half)


def _jeffreys(k: float, m: float) -> tuple[float, float]:
    """The 95% Jeffreys interval of k events in m trials, as numbers (see :func:`platform_sim.oc.jeffreys_interval`)."""
    lower, upper = jeffreys_interval(k, m)
    return float(lower), float(upper)


def paired_proportion_interval(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Difference of two paired proportions, mean(x) - mean(y), with its standard error and
    Newcombe's hybrid score interval (method 10 of Newcombe, Statistics in Medicine 1998;17:2635),
    which stays inside [-1, 1] and is not degenerate when the designs agree in every trial."""
    x, y = np.asarray(x, dtype=bool), np.asarray(y, dtype=bool)
    m = x.size
    if m == 0:
        return (math.nan,) * 4
    a = float(np.sum(x & y))
    b = float(np.sum(x & ~y))
    c = float(np.sum(~x & y))
    d = float(m - a - b - c)
    p1, p2 = (a + b) / m, (a + c) / m
    diff = p1 - p2
    se = float(np.std(x.astype(float) - y.astype(float), ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    l1, u1 = _wilson(a + b, m)
    l2, u2 = _wilson(a + c, m)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denominator) if denominator > 0 else 0.0
    delta = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    epsilon = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return diff, se, max(-1.0, diff - delta), min(1.0, diff + epsilon)


def _estimate(metric: str, x: np.ndarray) -> tuple[float, float, float, float, int]:
    """value, MCSE, 95% interval and the number of trials counted (finite values)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    m = x.size
    if m == 0:
        return math.nan, math.nan, math.nan, math.nan, 0
    value = float(x.mean())
    if _is_proportion(metric):
        lower, upper = _jeffreys(float(x.sum()), m)
        return value, math.sqrt(value * (1 - value) / m), lower, upper, m
    se = float(x.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    return value, se, value - _Z * se, value + _Z * se, m


def _paired(metric: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Paired difference mean(x - y) over the trials where both are finite, its SE and 95% interval."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    if x.size == 0:
        return (math.nan,) * 4
    if _is_proportion(metric):
        return paired_proportion_interval(x > 0.5, y > 0.5)
    d = x - y
    diff = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.nan
    return diff, se, diff - _Z * se, diff + _Z * se


# --------------------------------------------------------------------------- result


@dataclass
class Comparison:
    """The outcome of :func:`compare` (see the module docstring).

    ``table``: design, scenario, level (``trial``, ``drug``, ``subgroup``, ``arm``), arm, treatment,
    subgroup, role, metric, value, mcse, lower, upper, n, diff_vs_reference, diff_se, diff_lower,
    diff_upper. ``pairs``: every pair of designs on every trial-level metric (design_a - design_b).
    ``truth``: the yardstick of each scenario, one row per treatment x subgroup. ``calibration``:
    one row per design (empty without a null scenario). ``frontier``: FWER on the null scenario and
    power on the others at thresholds around the calibrated one. ``sizing``: what ``equal`` changed.
    ``designs``: each design as it ran (calibrated and sized), by name; ``scenarios``: each scenario
    (the null scenario too), by name.
    """

    table: pd.DataFrame
    reference: str
    n_sims: int
    seed: int
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    frontier: pd.DataFrame = field(default_factory=pd.DataFrame)
    sizing: pd.DataFrame = field(default_factory=pd.DataFrame)
    designs: dict[str, Design] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    null_scenario: str | None = None
    target_fwer: float | None = None
    equal: str = "none"


@dataclass(frozen=True, eq=False)
class _Given:
    """A design or scenario given as a model rather than a file or name: compared by identity, so it can
    key the tables of a comparison like a reference does."""

    model: Design | Scenario
    kind: str

    def __str__(self) -> str:
        return f"the {self.kind} object named {self.model.name!r}"


def _as_refs(items: Sequence, kind: str, given: dict[int, _Given]) -> list:
    """Files and names as they are; each model wrapped once (the same object twice is one reference)."""
    out = []
    for item in items:
        if isinstance(item, (Design, Scenario)):
            out.append(given.setdefault(id(item), _Given(item, kind)))
        else:
            out.append(item)
    return out


def _model(ref, kind: str):
    """A reference's model and file (None for a model given in memory)."""
    model_type = Design if kind == "design" else Scenario
    if isinstance(ref, _Given):
        if not isinstance(ref.model, model_type):
            raise ConfigError(
                [Problem(kind, f"expected a {model_type.__name__}, got a {type(ref.model).__name__}", ref.model.name)]
            )
        return ref.model, None
    if not isinstance(ref, (str, Path)):
        raise ConfigError(
            [
                Problem(
                    kind,
                    f"expected a file path, a shipped name or a {model_type.__name__}, got a {type(ref).__name__}",
                    repr(ref),
                )
            ]
        )
    path = resolve(ref, kind)
    return load_file(path, kind), str(path)


def _spec(d, s) -> Spec:
    if not isinstance(d, _Given) and not isinstance(s, _Given):
        return Spec.load(d, s)
    return Spec.from_refs(d, s, _model)


def _listed_twice(kind: str, refs: Sequence) -> list[Problem]:
    """One problem per design (or scenario) given more than once: the table would hold it twice
    under one name."""
    problems: list[Problem] = []
    for i, ref in enumerate(refs):
        if ref in refs[:i] and all(p.value != str(ref) for p in problems):
            problems.append(Problem(f"{kind}.name", f"{ref} is listed twice; list each {kind} once", str(ref)))
    return problems


def load_pairs(designs: Sequence, scenarios: Sequence) -> tuple[dict, dict]:
    """Every design x scenario pair as a :class:`~platform_sim.spec.Spec` (keyed by the given
    references) and each design's name. A reference is a file, a shipped name, or a model wrapped by
    :func:`compare` (a :class:`~platform_sim.config.Design` or :class:`~platform_sim.config.Scenario`
    given in memory). Every problem is raised at once, before anything runs; a reference listed twice
    and two designs (or scenarios) with the same name are problems, since the tables could not tell
    them apart."""
    specs: dict[tuple, Spec] = {}
    problems = _listed_twice("design", designs) + _listed_twice("scenario", scenarios)
    if problems:
        raise ConfigError(problems)
    for s in scenarios:
        for d in designs:
            try:
                specs[d, s] = _spec(d, s)
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    names = {d: specs[d, scenarios[0]].design.name for d in designs}
    seen: dict[str, object] = {}
    for d, name in names.items():
        if name in seen:
            problems.append(
                Problem(
                    "design.name",
                    f"{d} and {seen[name]} are both named {name!r}; rename one (its "
                    "name: field) so the comparison can tell them apart",
                    name,
                    file=specs[d, scenarios[0]].design_file,
                )
            )
        seen.setdefault(name, d)
    scenario_names: dict[str, object] = {}
    for s in scenarios:
        name = specs[designs[0], s].scenario.name
        if name in scenario_names:
            problems.append(
                Problem(
                    "scenario.name",
                    f"{s} and {scenario_names[name]} are both named {name!r}; rename "
                    "one so the comparison can tell them apart",
                    name,
                    file=specs[designs[0], s].scenario_file,
                )
            )
        scenario_names.setdefault(name, s)
    if problems:
        raise ConfigError(problems)
    return specs, names


def _check_options(null_scenario, target_fwer, equal) -> None:
    problems = []
    if target_fwer is not None:
        if not (isinstance(target_fwer, (int, float)) and 0.0 < float(target_fwer) < 1.0):
            problems.append(Problem("target_fwer", "the target FWER must be strictly between 0 and 1", target_fwer))
        if null_scenario is None:
            problems.append(Problem("null_scenario", "a target FWER needs a null scenario to calibrate on"))
    elif null_scenario is not None:
        problems.append(Problem("target_fwer", "a null scenario is for calibrating; give the target FWER too"))
    if equal not in EQUAL:
        problems.append(Problem("equal", f"unknown; allowed: {', '.join(EQUAL)}", equal))
    if problems:
        raise ConfigError(problems)


def compare(
    designs: Sequence,
    scenarios: Sequence,
    n_sims: int,
    seed: int,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    reference=None,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
    *,
    null_scenario=None,
    target_fwer: float | None = None,
    equal: str = "none",
    frontier: bool = True,
    frontier_sims: int | None = None,
) -> Comparison:
    """Run every design on every scenario with common random numbers and tabulate them on one yardstick.

    ``designs`` and ``scenarios`` (and ``null_scenario``): files, shipped names or models in memory
    (:class:`~platform_sim.config.Design`, :class:`~platform_sim.config.Scenario`); ``reference``: one
    of the designs, or a design's name. With ``null_scenario`` and ``target_fwer``, every
    design's decision threshold is first calibrated on the null scenario; with ``equal``
    (``max_n`` or ``duration``) every design is first sized like the reference design. Every pair is
    loaded and checked before anything runs; all problems are raised together as one
    :class:`ConfigError`. ``backend`` (see :mod:`platform_sim.backends`) replaces the ``workers``
    local processes."""
    given: dict[int, _Given] = {}
    designs, scenarios = _as_refs(designs, "design", given), _as_refs(scenarios, "scenario", given)
    if not designs or not scenarios:
        raise ConfigError(
            [
                Problem(
                    "designs" if not designs else "scenarios",
                    "none given; compare needs at least one design and one scenario",
                )
            ]
        )
    if null_scenario is not None:
        null_scenario = _as_refs([null_scenario], "scenario", given)[0]
    if reference is not None and isinstance(reference, Design):
        reference = _as_refs([reference], "design", given)[0]
    _check_options(null_scenario, target_fwer, equal)
    everything = scenarios + ([null_scenario] if null_scenario is not None and null_scenario not in scenarios else [])
    specs, names = load_pairs(designs, everything)
    reference = designs[0] if reference is None else reference
    if reference not in designs:
        ref_names = [k for k, v in names.items() if v == reference]
        if not ref_names:
            raise ConfigError([Problem("reference", f"not one of the designs {list(names.values())}", str(reference))])
        reference = ref_names[0]
    scenario_name = {s: specs[designs[0], s].scenario.name for s in everything}
    yardsticks = {s: for_specs([specs[d, s] for d in designs]) for s in everything}
    if null_scenario is not None:
        check_null(yardsticks[null_scenario], specs[designs[0], null_scenario].scenario_file)

    own = backend is None
    executor = (LocalProcesses(workers) if workers > 1 else None) if own else backend
    out = Comparison(
        pd.DataFrame(),
        names[reference],
        n_sims,
        seed,
        null_scenario=None if null_scenario is None else scenario_name[null_scenario],
        target_fwer=target_fwer,
        equal=equal,
    )
    try:
        if equal != "none":
            sized, out.sizing = equalize({d: specs[d, everything[0]] for d in designs}, reference, equal)
            specs = {
                (d, s): spec
                if sized[d] is spec.design
                else Spec.from_models(sized[d], spec.scenario, spec.design_file, spec.scenario_file)
                for (d, s), spec in specs.items()
            }
        calibrations: dict = {}
        if null_scenario is not None:
            assert target_fwer is not None
            for d in designs:
                cal = _calibrate(
                    specs[d, null_scenario], float(target_fwer), n_sims, seed, workers, chunk_size, progress, executor
                )
                calibrations[d] = cal
                specs.update({(d, s): specs[d, s].with_design(cal.design) for s in everything})
            out.calibration = _calibration_table(calibrations, names, scenario_name[null_scenario])
        rows, pairs = [], []
        for s in scenarios:
            r, p = _scenario_rows(
                designs,
                s,
                specs,
                names,
                reference,
                yardsticks[s],
                n_sims,
                seed,
                workers,
                chunk_size,
                progress,
                executor,
            )
            rows += r
            pairs += p
        if calibrations and frontier:
            out.frontier = _frontier(
                designs,
                scenarios,
                null_scenario,
                specs,
                names,
                calibrations,
                yardsticks,
                frontier_sims or frontier_trials(n_sims),
                seed,
                workers,
                chunk_size,
                progress,
                executor,
                pd.DataFrame(rows, columns=_COLUMNS),
                out.calibration,
            )
    finally:
        if own and executor is not None:
            executor.close()
    out.table = pd.DataFrame(rows, columns=_COLUMNS)
    out.pairs = pd.DataFrame(pairs, columns=_PAIR_COLUMNS)
    out.truth = pd.concat(
        [yardsticks[s].frame().assign(scenario=scenario_name[s]) for s in everything], ignore_index=True
    )[["scenario", "treatment", "subgroup", "share", "value", "reference", "effect", "role"]]
    out.designs = {names[d]: specs[d, everything[0]].design for d in designs}
    out.scenarios = {scenario_name[s]: specs[designs[0], s].scenario for s in everything}
    return out


_COLUMNS = [
    "design",
    "scenario",
    "level",
    "arm",
    "treatment",
    "subgroup",
    "role",
    "metric",
    "value",
    "mcse",
    "lower",
    "upper",
    "n",
    "diff_vs_reference",
    "diff_se",
    "diff_lower",
    "diff_upper",
]
_PAIR_COLUMNS = ["scenario", "metric", "design_a", "design_b", "diff", "se", "lower", "upper"]


def frontier_trials(n_sims: int) -> int:
    """Simulated trials per frontier point by default: a quarter of ``n_sims``, at least 100, and
    never more than ``n_sims``."""
    return max(min(100, n_sims), n_sims // 4)


def planned_trials(
    n_designs: int,
    n_scenarios: int,
    n_sims: int,
    calibrating: bool,
    frontier: bool = True,
    frontier_sims: int | None = None,
) -> int:
    """Simulated trials a comparison runs at most (for a progress bar)."""
    from .calibrate import planned_trials as calibration_trials

    total = n_designs * n_scenarios * n_sims
    if calibrating:
        total += n_designs * calibration_trials(1, 0, n_sims)
        if frontier:
            total += n_designs * len(_FRONTIER_SHIFTS) * (n_scenarios + 1) * (frontier_sims or frontier_trials(n_sims))
    return total


def _calibrate(spec: Spec, target: float, n_sims, seed, workers, chunk_size, progress, executor) -> Calibration:
    if not spec.family.parameters:
        raise ConfigError(
            [
                Problem(
                    "design",
                    f"{spec.design.name!r} has no decision threshold that declares an arm "
                    "effective, so there is nothing to calibrate; leave it out or compare without "
                    "--target-fwer",
                    spec.design.name,
                    file=spec.design_file,
                )
            ]
        )
    return calibrate(
        [spec],
        target,
        criterion="any_claim",
        n_sims=n_sims,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
        backend=executor,
    )


def _calibration_table(calibrations: dict, names: dict, null_name: str) -> pd.DataFrame:
    rows = []
    for d, cal in calibrations.items():
        curve = cal.curve
        value = curve[curve.threshold == cal.threshold].iloc[0]
        design_value = curve[curve.threshold == cal.design_threshold].iloc[0]
        lower, upper = _jeffreys(round(value.error * cal.n_sims), cal.n_sims)
        rows.append(
            {
                "design": names[d],
                "null_scenario": null_name,
                "parameter": cal.path,
                "design_values": ", ".join(f"{v:.10g}" for v in cal.design_values),
                "calibrated_values": ", ".join(f"{v:.10g}" for v in cal.values),
                "setting": cal.setting,
                "target_fwer": cal.target,
                "fwer": float(value.error),
                "fwer_mcse": float(value.mcse),
                "fwer_lower": lower,
                "fwer_upper": upper,
                "design_fwer": float(design_value.error),
                "design_fwer_mcse": float(design_value.mcse),
                "n_sims": cal.n_sims,
                "seed": cal.seed,
                "thresholds_evaluated": len(curve),
                "monotone": cal.monotone,
                "notes": " | ".join(cal.notes),
            }
        )
    return pd.DataFrame(rows)


def _wanted_own(level: str, metric: str) -> bool:
    if level == "trial":
        return metric in OWN_METRICS
    return level == "arm" and metric in ARM_METRICS


def _scenario_rows(
    designs, s, specs, names, reference, ys: Yardstick, n_sims, seed, workers, chunk_size, progress, executor
):
    per: dict = {}
    for d in designs:
        spec = specs[d, s]
        results = run(spec, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
        ours = {k: v for k, v in values(results, reading(spec, ys)).items()}
        own = {
            (lvl, arm, "", m): x
            for (lvl, arm, sub, m), x in per_trial(results, spec.truth).items()
            if _wanted_own(lvl, m)
        }
        per[d] = (ours, own, spec)
    scenario_name = specs[designs[0], s].scenario.name
    rows = []
    for d in designs:
        ours, own, spec = per[d]
        ref_ours, ref_own, _ = per[reference]
        for (level, treatment, subgroup, metric), x in ours.items():
            role = ""
            if level == "subgroup":
                role = ys.role(ys.treatments.index(treatment), ys.subgroups.index(subgroup))
            elif level == "drug":
                dd = ys.treatments.index(treatment)
                role = (
                    "works somewhere" if ys.works[dd].any() else "null everywhere" if ys.null[dd].all() else "grey zone"
                )
            other = ref_ours.get((level, treatment, subgroup, metric)) if d != reference else None
            rows.append(_row(names[d], scenario_name, level, "", treatment, subgroup, role, metric, x, other))
        for (level, arm, _, metric), x in own.items():
            other = ref_own.get((level, arm, "", metric)) if d != reference else None
            role = ""
            if level == "arm":
                treatment = spec.design.arms[spec.design.arm_names.index(arm)].treatment
                role = "control" if treatment == ys.control else ""
            rows.append(_row(names[d], scenario_name, level, arm, "", "", role, metric, x, other))
    pairs = []
    metrics = [m for m in TRIAL_METRICS]
    for i, a in enumerate(designs):
        for b in designs[i + 1 :]:
            for metric in metrics:
                key = ("trial", "", "", metric)
                if key in per[a][0] and key in per[b][0]:
                    diff, se, lo, hi = _paired(metric, per[a][0][key], per[b][0][key])
                    pairs.append(
                        {
                            "scenario": scenario_name,
                            "metric": metric,
                            "design_a": names[a],
                            "design_b": names[b],
                            "diff": diff,
                            "se": se,
                            "lower": lo,
                            "upper": hi,
                        }
                    )
    return rows, pairs


def _row(design, scenario, level, arm, treatment, subgroup, role, metric, x, other) -> dict:
    value, se, lower, upper, m = _estimate(metric, x)
    diff = _paired(metric, x, other) if other is not None else (math.nan,) * 4
    return {
        "design": design,
        "scenario": scenario,
        "level": level,
        "arm": arm,
        "treatment": treatment,
        "subgroup": subgroup,
        "role": role,
        "metric": metric,
        "value": value,
        "mcse": se,
        "lower": lower,
        "upper": upper,
        "n": m,
        "diff_vs_reference": diff[0],
        "diff_se": diff[1],
        "diff_lower": diff[2],
        "diff_upper": diff[3],
    }


def _frontier(
    designs,
    scenarios,
    null_scenario,
    specs,
    names,
    calibrations,
    yardsticks,
    n_sims,
    seed,
    workers,
    chunk_size,
    progress,
    executor,
    table: pd.DataFrame,
    calibration: pd.DataFrame,
) -> pd.DataFrame:
    """FWER on the null scenario and power on every other scenario at the calibrated threshold moved
    by each of ``_FRONTIER_SHIFTS`` on the logit scale (every look's value moves together), run with
    ``n_sims`` trials; the calibrated threshold's own point is the calibration's FWER and the
    comparison's power, with all their trials."""
    from .calibrate import _expit, _logit

    rows = []
    for d in designs:
        cal = calibrations[d]
        knob = cal.knob
        assert knob is not None
        thresholds = ", ".join(f"{t:.10g}" for t in cal.values)
        c = calibration[calibration.design == names[d]].iloc[0]
        rows.append(
            {
                "design": names[d],
                "setting": "calibrated",
                "shift": 0.0,
                "threshold": min(cal.values),
                "thresholds": thresholds,
                "scenario": c.null_scenario,
                "null": True,
                "metric": "fwer",
                "value": c.fwer,
                "mcse": c.fwer_mcse,
                "lower": c.fwer_lower,
                "upper": c.fwer_upper,
                "n": c.n_sims,
            }
        )
        power = table[(table.design == names[d]) & (table.level == "trial") & (table.metric == "power")]
        for r in power.itertuples():
            if r.scenario == c.null_scenario or not np.isfinite(r.value):
                continue
            rows.append(
                {
                    "design": names[d],
                    "setting": "calibrated",
                    "shift": 0.0,
                    "threshold": min(cal.values),
                    "thresholds": thresholds,
                    "scenario": r.scenario,
                    "null": False,
                    "metric": "power",
                    "value": r.value,
                    "mcse": r.mcse,
                    "lower": r.lower,
                    "upper": r.upper,
                    "n": r.n,
                }
            )
        settings = []
        for shift in _FRONTIER_SHIFTS:
            c = float(_expit(_logit(cal.threshold) + shift))
            if not 0.0 < c < 1.0:
                continue
            settings.append((f"{shift:+g}", shift, knob.values(c)))
        for label, shift, vals in settings:
            try:
                design = knob.design(specs[d, null_scenario].design, vals, specs[d, null_scenario].design_file)
            except ConfigError:
                continue
            for s in [null_scenario] + [x for x in scenarios if x != null_scenario]:
                spec = specs[d, s].with_design(design)
                results = run(spec, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
                v = values(results, reading(spec, yardsticks[s]))
                for metric in ("fwer", "power"):
                    x = v[("trial", "", "", metric)]
                    value, se, lower, upper, m = _estimate(metric, x)
                    if m == 0:
                        continue
                    rows.append(
                        {
                            "design": names[d],
                            "setting": label,
                            "shift": shift,
                            "threshold": min(vals),
                            "thresholds": ", ".join(f"{t:.10g}" for t in vals),
                            "scenario": spec.scenario.name,
                            "null": s == null_scenario,
                            "metric": metric,
                            "value": value,
                            "mcse": se,
                            "lower": lower,
                            "upper": upper,
                            "n": m,
                        }
                    )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- winners and text


#: Metrics averaged only over the trials that make a true claim, and the rate of such trials: a
#: design competes on them only when its rate is at least half the best design's, so that a design
#: that rarely finds the drug is not "fastest" on the few trials where it does.
CONDITIONAL = {"months_to_first_true_claim": "power"}


def winners(comparison: Comparison) -> pd.DataFrame:
    """For every scenario and trial-level yardstick metric with a better direction: the best design,
    the runner-up, the paired difference best - runner-up with its 95% interval (common random
    numbers), and whether the interval excludes 0 (``clear``). On a metric of :data:`CONDITIONAL`
    only designs whose rate is at least half the best rate compete."""
    t = comparison.table
    trial = t[t.level == "trial"]
    t = trial[trial.metric.isin(list(BETTER))]
    pairs = comparison.pairs
    rows = []
    for (scenario, metric), part in t.groupby(["scenario", "metric"], sort=False):
        part = part[np.isfinite(part.value)]
        if metric in CONDITIONAL:
            rate = trial[(trial.scenario == scenario) & (trial.metric == CONDITIONAL[metric])]
            rate = rate.set_index("design")["value"]
            best_rate = rate.max() if len(rate) else np.nan
            if not np.isfinite(best_rate) or best_rate <= 0:
                continue
            part = part[part.design.map(rate).fillna(0) >= best_rate / 2]
            if len(part) == 1:
                only = part.iloc[0]
                rows.append(
                    {
                        "scenario": scenario,
                        "metric": metric,
                        "best": only.design,
                        "value": only.value,
                        "mcse": only.mcse,
                        "runner_up": "",
                        "runner_up_value": np.nan,
                        "diff": np.nan,
                        "diff_lower": np.nan,
                        "diff_upper": np.nan,
                        "clear": False,
                    }
                )
                continue
        if len(part) < 2:
            continue
        direction = BETTER[metric]
        order = part.sort_values("value", ascending=direction < 0, kind="stable")
        best, second = order.iloc[0], order.iloc[1]
        p = pairs[(pairs.scenario == scenario) & (pairs.metric == metric)]
        hit = p[(p.design_a == best.design) & (p.design_b == second.design)]
        sign = 1.0
        if hit.empty:
            hit, sign = p[(p.design_a == second.design) & (p.design_b == best.design)], -1.0
        if hit.empty:
            continue
        h = hit.iloc[0]
        diff = sign * h["diff"]
        lower, upper = (h.lower, h.upper) if sign > 0 else (-h.upper, -h.lower)
        tie = bool(best.value == second.value)
        rows.append(
            {
                "scenario": scenario,
                "metric": metric,
                "best": "" if tie else best.design,
                "value": best.value,
                "mcse": best.mcse,
                "runner_up": second.design,
                "runner_up_value": second.value,
                "diff": diff,
                "diff_lower": lower,
                "diff_upper": upper,
                "clear": bool(not tie and (lower > 0 or upper < 0)),
            }
        )
    return pd.DataFrame(rows)


_WINNER_COLUMNS = ["power", "fwer", "p_correct_finding", "n_screened", "months_to_first_true_claim", "cost"]


def format_winners(table: pd.DataFrame) -> str:
    """The winners table as text: per scenario, the best design on each key metric and its paired
    difference from the runner-up, starred when the 95% interval excludes 0."""
    if table.empty:
        return ""
    columns = [m for m in _WINNER_COLUMNS if m in set(table.metric)]
    header = ["scenario"] + ["cost (millions)" if m == "cost" else m for m in columns]
    body = []
    for scenario, part in table.groupby("scenario", sort=False):
        part = part.set_index("metric")
        row = [scenario]
        for m in columns:
            if m not in part.index or not part.at[m, "best"]:
                row.append("tie" if m in part.index else "NA")
                continue
            diff = part.at[m, "diff"] / (1e6 if m == "cost" else 1.0)
            digits = 3 if _is_proportion(m) else 1
            shown = (
                f"{diff:+.{digits}f}"
                if np.isfinite(diff)
                else "sole contender"
                if not part.at[m, "runner_up"]
                else "not paired"
            )
            row.append(f"{part.at[m, 'best']} ({shown}{'*' if part.at[m, 'clear'] else ''})")
        body.append(row)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["Best design per scenario (paired difference from the runner-up; * its 95% interval excludes 0)"]
    for r in [header, ["-" * w for w in widths]] + body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if "months_to_first_true_claim" in columns:
        lines.append(
            "months_to_first_true_claim: among the designs with at least half the best power (sole "
            "contender: no other has)"
        )
    return "\n".join(lines)


_SHOWN = [
    "power",
    "fwer",
    "p_correct_finding",
    "n_screened",
    "n_randomized",
    "n_on_effective",
    "n_on_ineffective",
    "expected_responders",
    "months_to_first_true_claim",
    "duration_months",
    "cost",
]


def side_by_side(comparison: Comparison, fmt: str = "text", digits: int = 3) -> str:
    """The trial-level yardstick as a table for reading (``fmt``: ``text`` or ``markdown``): one row per
    scenario x metric, one column per design (value ± MCSE), then the paired difference of each other
    design from the reference. For numbers, read ``comparison.table``."""
    t = comparison.table
    t = t[(t.level == "trial") & t.metric.isin(_SHOWN)]
    designs = list(dict.fromkeys(t.design))
    others = [d for d in designs if d != comparison.reference]

    def cell(v, se, d, scale=1.0, lower=math.nan, upper=math.nan):
        if not np.isfinite(v):
            return "NA"
        if se == 0 and v == 0 and np.isfinite(upper) and upper > 0:  # a proportion of 0: its Jeffreys bound
            return f"{v:.{d}f} (≤ {upper:.{d}f})"
        if se == 0 and v == 1 and np.isfinite(lower) and lower < 1:
            return f"{v:.{d}f} (≥ {lower:.{d}f})"
        v, se = v / scale, se / scale
        return f"{v:.{d}f} ± {se:.{d}f}" if np.isfinite(se) else f"{v:.{d}f}"

    header = ["scenario", "metric"] + designs + [f"{d} - {comparison.reference}" for d in others]
    body = []
    for scen in dict.fromkeys(t.scenario):
        for metric in _SHOWN:
            part = t[(t.scenario == scen) & (t.metric == metric)].set_index("design")
            if part.empty:
                continue
            d = digits if _is_proportion(metric) else 1
            scale = 1e6 if metric == "cost" else 1.0
            label = "cost (millions)" if metric == "cost" else metric
            row = [scen, label]
            row += [
                cell(part.at[x, "value"], part.at[x, "mcse"], d, scale, part.at[x, "lower"], part.at[x, "upper"])
                if x in part.index
                else "NA"
                for x in designs
            ]
            row += [
                cell(part.at[x, "diff_vs_reference"], part.at[x, "diff_se"], d, scale) if x in part.index else "NA"
                for x in others
            ]
            body.append(row)
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


def format_calibration_table(comparison: Comparison, digits: int = 4) -> str:
    """The calibration in words: one line per design with the threshold found and the FWER it achieves."""
    c = comparison.calibration
    if c.empty:
        return ""
    lines = [
        f"calibrated on {comparison.null_scenario}: P(any claim) <= {comparison.target_fwer:g} "
        f"({int(c.n_sims.iloc[0])} simulated trials per threshold, common random numbers)"
    ]
    width = max(len(d) for d in c.design)
    for r in c.itertuples():
        lines.append(
            f"  {r.design:<{width}}  {r.parameter}: {r.design_values} -> {r.calibrated_values}   "
            f"FWER {r.fwer:.{digits}f} ± {r.fwer_mcse:.{digits}f} (95% {r.fwer_lower:.{digits}f} to "
            f"{r.fwer_upper:.{digits}f}; at the design's own threshold {r.design_fwer:.{digits}f})"
        )
    return "\n".join(lines)


__all__ = [
    "ARM_METRICS",
    "BETTER",
    "CELL_METRICS",
    "Comparison",
    "DRUG_METRICS",
    "OWN_METRICS",
    "TRIAL_METRICS",
    "compare",
    "format_calibration_table",
    "format_winners",
    "load_pairs",
    "paired_proportion_interval",
    "planned_trials",
    "side_by_side",
    "winners",
]
