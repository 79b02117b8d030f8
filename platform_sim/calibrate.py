"""Calibrate a design's decision threshold to a type I error target, with common random numbers.

The threshold that declares an arm effective (``decisions.superiority`` for a design with
looks, ``platform.graduation.graduate`` for a platform over calendar time) is searched so
that the type I error stays at or below a target in *every* given null scenario:

* ``fwer``: the family-wise error rate, P(at least one truly null arm declared effective);
* ``per_arm``: the largest, over the truly null arms (arm x stratum for stratified designs),
  of P(that arm declared effective).

Every candidate threshold is simulated on the *same* trials: the same seed gives the same virtual
patients, potential outcomes and randomization numbers (common random numbers), so
the error curve is a deterministic function of the threshold and the search cannot be misled
by Monte Carlo noise between candidates. A trial's path up to its first declaration does not
depend on the threshold, so under a global null a trial that declares an arm at threshold c
also declares one (at the same look or earlier) at every c' < c, and the FWER curve is
non-increasing: a trial's random numbers are keyed by the seed and its own index
(:mod:`platform_sim.streams`), so they do not depend on the other trials. The search is a bisection on the logit scale; every evaluated point is kept, and a
rise in the evaluated curve is reported, never hidden.

A threshold given per look moves as a whole: every look's value keeps its distance from the
others on the logit scale, ``logit(c_j) = logit(c_j^design) + shift``. The threshold reported
(and bounded by ``bounds``) is the smallest of the per-look values, the loosest look; with one
number for every look it is that number. Candidate values are rounded to four significant
digits of 1 - c, so the printed threshold reproduces the calibrated decisions exactly.

At the calibrated threshold the power on each alternative scenario (P(at least one truly
effective arm declared effective)) is reported with its Monte Carlo standard error, next to
the power at the design's own threshold and the paired difference between the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .backends import Backend, LocalProcesses
from .config import ConfigError, Design, Problem, parse_design
from .families import Parameter
from .oc import jeffreys_interval, proportion, trial_values
from .runner import DEFAULT_CHUNK_SIZE, run
from .spec import Spec

__all__ = [
    "CRITERIA",
    "DEFAULT_BOUNDS",
    "DEFAULT_TOLERANCE",
    "Calibration",
    "calibrate",
    "format_calibration",
    "load_specs",
    "planned_trials",
]

#: Type I error criteria.
CRITERIA = {
    "fwer": "family-wise error rate: P(at least one truly null arm declared effective)",
    "per_arm": "largest per-arm error: max over truly null arms of P(arm declared effective)",
    "any_claim": "P(at least one arm declared effective): the family-wise error rate under a global null, whatever "
    "the design's own subgroups",
}
_CRITERION_WORDS = {"fwer": "FWER", "per_arm": "largest per-arm error", "any_claim": "P(any claim)"}
#: Rules that exist but cannot hold a type I error, and why.
_NOT_TYPE_I = {
    "inferiority": "drops arms that are worse than the control (or unlikely to be best); it never declares an arm "
    "effective, so it cannot hold a type I error",
    "futility": "drops arms unlikely to beat the control by delta; it never declares an arm effective",
    "equivalence": "drops arms (or stops the trial) for equivalence; it never declares an arm effective",
    "drop": "drops arms whose success probability is low; it never graduates an arm",
}
#: Loosest and tightest thresholds searched (the loosest look's value).
DEFAULT_BOUNDS = (0.6, 0.9999)
#: The search stops when the bracket is this narrow on the logit scale.
DEFAULT_TOLERANCE = 0.01
_SIGNIFICANT = 4  # significant digits kept of 1 - threshold


# --------------------------------------------------------------------------- the threshold


def _logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def _expit(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _tidy(c: float) -> float:
    """c rounded to ``_SIGNIFICANT`` significant digits of 1 - c (kept inside (0, 1))."""
    rest = min(max(1.0 - float(c), 1e-12), 1.0 - 1e-12)
    decimals = _SIGNIFICANT - 1 - math.floor(math.log10(rest))
    return round(1.0 - rest, decimals) if decimals > 0 else 1.0 - rest


@dataclass(frozen=True)
class _Knob:
    """The calibrated threshold of one design: the family's parameter, the design's values and how to
    move them."""

    parameter: Parameter
    design_values: tuple[float, ...]  # one per look, or one
    per_look: bool

    @property
    def param(self) -> str:
        return self.parameter.name

    @property
    def path(self) -> str:
        return self.parameter.path

    @property
    def offsets(self) -> np.ndarray:
        logits = _logit(self.design_values)
        return logits - logits.min()

    @property
    def design_threshold(self) -> float:
        return float(min(self.design_values))

    def values(self, threshold: float) -> tuple[float, ...]:
        """Per-look values whose loosest is ``threshold`` (before rounding)."""
        raw = _expit(_logit(threshold) + self.offsets)
        return tuple(_tidy(c) for c in raw)

    def design(self, base: Design, values: tuple[float, ...], file: str | None) -> Design:
        new = list(values) if self.per_look else values[0]
        return parse_design(self.parameter.set(base.model_dump(), new), file)


def _knob(spec: Spec, param: str | None) -> _Knob:
    d = spec.design
    allowed = spec.family.parameters
    if not allowed:
        raise ConfigError(
            [
                Problem(
                    "param",
                    f"design {d.name!r} has no decision threshold that declares an arm "
                    "effective, so there is nothing to calibrate",
                    None,
                    file=spec.design_file,
                )
            ]
        )
    if param is None:
        param = next(iter(allowed))
    if param not in allowed:
        if param in _NOT_TYPE_I:
            why = f"{param} {_NOT_TYPE_I[param]}"
        else:
            why = f"not a threshold of a {spec.family.title}"
        listing = ", ".join(f"{k} ({v.path}: {v.meaning})" for k, v in allowed.items())
        raise ConfigError(
            [
                Problem(
                    "param",
                    f"cannot be calibrated for design {d.name!r}: {why}; allowed: {listing}",
                    param,
                    file=spec.design_file,
                )
            ]
        )
    parameter = allowed[param]
    value = parameter.get(d)
    if value is None:
        raise ConfigError(
            [
                Problem(
                    parameter.path,
                    "is null: the rule is disabled, so there is no threshold to "
                    "calibrate; give it a value (a starting point) first",
                    None,
                    file=spec.design_file,
                )
            ]
        )
    values = tuple(float(v) for v in value) if isinstance(value, list) else (float(value),)
    return _Knob(parameter, values, isinstance(value, list))


# --------------------------------------------------------------------------- what counts as an error


@dataclass
class _Judged:
    """Per-trial findings of one run: FWER and power indicators (T,), and (T, U) claims of the truly
    null units (arm x subgroup cells)."""

    fwer: np.ndarray
    power: np.ndarray
    null_declared: np.ndarray
    any_claim: np.ndarray


class _Judge:
    """The truth of one scenario for one design (exact, computed once with the spec; it does not
    change with the threshold), applied to each run through the operating characteristics' own
    per-trial values (:func:`platform_sim.oc.trial_values`)."""

    def __init__(self, spec: Spec):
        self.truth = truth = spec.truth
        self._null = np.argwhere(truth.null)
        self.null_units = [_unit(truth, k, g) for k, g in self._null]
        self.effective_units = [_unit(truth, k, g) for k, g in np.argwhere(truth.works)]

    def __call__(self, results, spec: Spec) -> _Judged:
        values = trial_values(results, self.truth)
        claimed = np.asarray(results.claimed, dtype=bool)
        declared = (
            claimed[:, self._null[:, 0], self._null[:, 1]]
            if len(self._null)
            else np.zeros((results.n_trials, 0), dtype=bool)
        )
        return _Judged(
            np.asarray(values["fwer"], dtype=float),
            np.asarray(values["power"], dtype=float),
            declared,
            np.asarray(values["p_any_claim"], dtype=float),
        )


def _unit(truth, k: int, g: int) -> str:
    """An arm, with its subgroup when the design has several."""
    return truth.arms[k] if len(truth.subgroups) == 1 else f"{truth.arms[k]} [{truth.subgroups[g]}]"


def _paired(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean of the per-trial differences x - y and its paired standard error."""
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan, math.nan
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


@dataclass(frozen=True)
class _Error:
    value: float
    mcse: float
    worst: str  # the truly null unit with the largest error (per_arm), else ""


def _error(judged: _Judged, criterion: str, units: list[str]) -> _Error:
    if criterion == "fwer":
        return _Error(*proportion(judged.fwer), "")
    if criterion == "any_claim":
        return _Error(*proportion(judged.any_claim), "")
    rates = judged.null_declared.mean(axis=0)
    j = int(np.argmax(rates))
    return _Error(*proportion(judged.null_declared[:, j]), units[j])


# --------------------------------------------------------------------------- loading


def load_specs(design, null_scenarios: Sequence, alternative_scenarios: Sequence = ()) -> tuple[list[Spec], list[Spec]]:
    """Load the design with every scenario (files or shipped names); every problem is raised at once."""
    problems: list[Problem] = []
    out: dict[str, list[Spec]] = {"null": [], "alternative": []}
    for role, names in (("null", null_scenarios), ("alternative", alternative_scenarios)):
        for s in names:
            try:
                out[role].append(Spec.load(design, s))
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    return out["null"], out["alternative"]


def _with_design(base: Spec, design: Design) -> Spec:
    """``base`` with another design that differs only in a decision threshold: the scenario's
    patients, the strata and the truth do not depend on the threshold and are carried over."""
    return base.with_design(design)


# --------------------------------------------------------------------------- result


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`.

    ``threshold`` is the calibrated (loosest-look) threshold and ``values`` the per-look values
    to put in the design (one value when the design gives one number); ``looser`` / ``looser_values``
    is the nearest looser threshold evaluated, whose error exceeds the target. ``curve`` has one
    row per evaluated threshold x null scenario; ``summary`` one row per scenario x setting
    ('calibrated' or 'design') x metric, with paired differences calibrated - design.
    """

    design_name: str
    param: str
    path: str
    criterion: str
    target: float
    threshold: float
    values: tuple[float, ...]
    per_look: bool
    looser: float
    looser_values: tuple[float, ...]
    design_threshold: float
    design_values: tuple[float, ...]
    binding_scenario: str
    design: Design
    curve: pd.DataFrame
    summary: pd.DataFrame
    monotone: bool
    notes: list[str] = field(default_factory=list)
    n_sims: int = 0
    seed: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    bounds: tuple[float, float] = DEFAULT_BOUNDS
    tolerance: float = DEFAULT_TOLERANCE
    knob: _Knob | None = None  # how the threshold moves (to put other values in the design)

    @property
    def setting(self) -> str:
        """The calibrated threshold as a line of YAML for the design file."""
        key = self.path.rsplit(".", 1)[-1]
        shown = f"[{', '.join(_fmt(v) for v in self.values)}]" if self.per_look else _fmt(self.values[0])
        return f"{key}: {shown}"


def _fmt(c: float) -> str:
    return f"{c:.10g}"


class _Search:
    """Simulates candidate thresholds on every null scenario, each point once."""

    def __init__(self, knob, nulls, judges, criterion, n_sims, seed, workers, chunk_size, progress, executor):
        self.knob, self.nulls, self.judges, self.criterion = knob, nulls, judges, criterion
        self.n_sims, self.seed, self.workers, self.chunk_size = n_sims, seed, workers, chunk_size
        self.progress, self.executor = progress, executor
        self.points: dict[tuple[float, ...], list[_Judged]] = {}
        self.order: list[tuple[float, ...]] = []
        self.designs: dict[tuple[float, ...], Design] = {}

    def design(self, values: tuple[float, ...]) -> Design:
        if values not in self.designs:
            base = self.nulls[0]
            self.designs[values] = self.knob.design(base.design, values, base.design_file)
        return self.designs[values]

    def simulate(self, spec: Spec, values: tuple[float, ...]):
        return run(
            _with_design(spec, self.design(values)),
            self.n_sims,
            self.seed,
            self.workers,
            self.chunk_size,
            progress=self.progress,
            executor=self.executor,
        )

    def evaluate(self, values: tuple[float, ...]) -> list[_Error]:
        if values not in self.points:
            judged = [judge(self.simulate(spec, values), spec) for spec, judge in zip(self.nulls, self.judges)]
            self.points[values] = judged
            self.order.append(values)
        return self.errors(values)

    def errors(self, values) -> list[_Error]:
        return [_error(j, self.criterion, judge.null_units) for j, judge in zip(self.points[values], self.judges)]

    def worst(self, values) -> float:
        return max(e.value for e in self.evaluate(values))


def calibrate(
    nulls: Sequence[Spec],
    target: float,
    *,
    alternatives: Sequence[Spec] = (),
    param: str | None = None,
    criterion: str = "fwer",
    n_sims: int = 2000,
    seed: int = 1,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    bounds: tuple[float, float] = DEFAULT_BOUNDS,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
) -> Calibration:
    """Find the loosest threshold whose type I error is at most ``target`` in every null scenario.

    ``nulls`` and ``alternatives`` are specs of one design with the null and alternative
    scenarios. ``param``: 'superiority' (designs with looks) or 'graduate' (platform designs);
    None picks the one the design has. ``criterion``: 'fwer' or 'per_arm'. ``bounds``: the
    loosest and tightest thresholds searched. The search is a bisection on the logit scale until
    the bracket is narrower than ``tolerance``; every point runs ``n_sims`` trials with ``seed``
    on every null scenario. Raises :class:`ConfigError` for bad input and for a target no
    threshold within ``bounds`` separates (unreachable, or not binding).
    """
    nulls, alternatives = list(nulls), list(alternatives)
    problems = []
    if not nulls:
        problems.append(Problem("null_scenarios", "give at least one null scenario"))
    if not (isinstance(target, (int, float)) and 0.0 < float(target) < 1.0):
        problems.append(Problem("target", "the type I error target must be strictly between 0 and 1", target))
    if criterion not in CRITERIA:
        problems.append(Problem("criterion", f"unknown; allowed: {', '.join(CRITERIA)}", criterion))
    loose, tight = (float(b) for b in bounds)
    if not 0.0 < loose < tight < 1.0:
        problems.append(Problem("bounds", "need 0 < loosest < tightest < 1", (loose, tight)))
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        problems.append(Problem("tolerance", "must be positive (a width on the logit scale)", tolerance))
    if n_sims < 2:
        problems.append(Problem("n_sims", "needs at least 2 simulated trials for a Monte Carlo error", n_sims))
    if problems:
        raise ConfigError(problems)
    base = nulls[0]
    if any(s.design != base.design for s in nulls + alternatives):
        raise ConfigError(
            [
                Problem(
                    "design",
                    "every scenario must run the same design",
                    sorted({s.design.name for s in nulls + alternatives}),
                )
            ]
        )
    knob = _knob(base, param)
    judges = [_Judge(s) for s in nulls]
    empty = [s.scenario.name for s, j in zip(nulls, judges) if not j.null_units]
    if empty and criterion != "any_claim":
        raise ConfigError(
            [
                Problem(
                    "null_scenarios",
                    "no arm of the design is truly null there, so it has no type I "
                    "error to hold; use it as an alternative scenario",
                    ", ".join(empty),
                )
            ]
        )

    own = backend is None
    executor = (LocalProcesses(workers) if workers > 1 else None) if own else backend
    try:
        search = _Search(knob, nulls, judges, criterion, n_sims, seed, workers, chunk_size, progress, executor)
        hi_values, lo_values = _bisect(search, knob, float(target), loose, tight, tolerance)
        alt_rows, alt_notes = _alternatives(search, alternatives, hi_values, knob)
    finally:
        if own and executor is not None:
            executor.close()

    curve = _curve(search, criterion)
    monotone, notes = _monotonicity(curve, criterion)
    for spec, judge in zip(nulls, judges):
        if judge.effective_units:
            notes.append(
                f"null scenario {spec.scenario.name!r} is a partial null ({', '.join(judge.effective_units)} "
                "truly work): its error curve need not be monotone in the threshold"
            )
    notes += alt_notes
    errors = search.errors(hi_values)
    binding = int(np.argmax([e.value for e in errors]))
    summary = _with_interval(pd.DataFrame(_null_rows(search, nulls, hi_values, knob) + alt_rows), "value", n_sims)
    curve = _with_interval(curve, "error", n_sims)
    return Calibration(
        design_name=base.design.name,
        param=knob.param,
        path=knob.path,
        criterion=criterion,
        target=float(target),
        threshold=min(hi_values),
        values=hi_values,
        per_look=knob.per_look,
        looser=min(lo_values),
        looser_values=lo_values,
        design_threshold=knob.design_threshold,
        design_values=knob.design_values,
        binding_scenario=nulls[binding].scenario.name,
        design=search.design(hi_values),
        curve=curve,
        summary=summary,
        monotone=monotone,
        notes=notes,
        n_sims=n_sims,
        seed=seed,
        chunk_size=chunk_size,
        bounds=(loose, tight),
        tolerance=float(tolerance),
        knob=knob,
    )


def _bisect(search: _Search, knob: _Knob, target: float, loose: float, tight: float, tolerance: float):
    """(calibrated values, nearest looser values evaluated). The design's own threshold is
    evaluated first (it is reported, and narrows the bracket when it lies inside it)."""
    design_values = knob.design_values
    search.evaluate(design_values)
    ends = {}
    for name, c in (("tightest", tight), ("loosest", loose)):
        values = knob.values(c)
        try:
            search.design(values)
        except ConfigError as exc:
            raise ConfigError(
                [
                    Problem("bounds", f"the {name} threshold {c:g} gives an invalid design: {p.format()}", c)
                    for p in exc.problems
                ]
            ) from None
        ends[name] = values
    crit = _CRITERION_WORDS[search.criterion]
    hi, lo = ends["tightest"], ends["loosest"]
    errors = search.evaluate(hi)
    if max(e.value for e in errors) > target:
        bad = "; ".join(
            f"{s.scenario.name} {e.value:.4f} ± {e.mcse:.4f}" for s, e in zip(search.nulls, errors) if e.value > target
        )
        raise ConfigError(
            [
                Problem(
                    "target",
                    f"unreachable: even the tightest threshold {_fmt(min(hi))} gives {crit} "
                    f"above {target:g} ({bad}); raise the target or the tightest bound",
                    target,
                )
            ]
        )
    errors = search.evaluate(lo)
    if max(e.value for e in errors) <= target:
        worst = max(errors, key=lambda e: e.value)
        raise ConfigError(
            [
                Problem(
                    "target",
                    f"not binding: even the loosest threshold {_fmt(min(lo))} holds {crit} "
                    f"at or below {target:g} in every null scenario (largest {worst.value:.4f} ± "
                    f"{worst.mcse:.4f}); lower the loosest bound to search further",
                    target,
                )
            ]
        )

    def u(values) -> float:
        return float(_logit(min(values)))

    if u(lo) < u(design_values) < u(hi):
        if search.worst(design_values) <= target:
            hi = design_values
        else:
            lo = design_values
    while u(hi) - u(lo) > tolerance:
        mid = knob.values(float(_expit((u(hi) + u(lo)) / 2.0)))
        if mid in (hi, lo):  # the rounding cannot split the bracket further
            break
        if search.worst(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi, lo


def _curve(search: _Search, criterion: str) -> pd.DataFrame:
    rows = []
    for step, values in enumerate(search.order):
        threshold = min(values)
        shift = float(_logit(threshold) - _logit(min(search.knob.design_values)))
        for spec, e in zip(search.nulls, search.errors(values)):
            rows.append(
                {
                    "step": step,
                    "scenario": spec.scenario.name,
                    "threshold": threshold,
                    "shift": shift,
                    "thresholds": ", ".join(_fmt(v) for v in values),
                    "criterion": criterion,
                    "error": e.value,
                    "mcse": e.mcse,
                    "worst_arm": e.worst,
                }
            )
    return pd.DataFrame(rows).sort_values(["scenario", "threshold"], kind="stable").reset_index(drop=True)


def _with_interval(table: pd.DataFrame, column: str, n_sims: int) -> pd.DataFrame:
    """``table`` with the 95% Jeffreys interval (``lower``, ``upper``) of its proportions ``column`` over
    ``n_sims`` trials beside their ``mcse`` (every error rate and power here is one; per-arm errors
    are the worst arm's proportion)."""
    value = table[column].to_numpy(float)
    lower, upper = jeffreys_interval(np.round(value * n_sims), np.full(value.shape, float(n_sims)))
    finite = np.isfinite(value)
    at = list(table.columns).index("mcse") + 1
    table = table.copy()
    table.insert(at, "lower", np.where(finite, lower, np.nan))
    table.insert(at + 1, "upper", np.where(finite, upper, np.nan))
    return table


def _monotonicity(curve: pd.DataFrame, criterion: str) -> tuple[bool, list[str]]:
    """Whether each scenario's evaluated error is non-increasing in the threshold; a note per break."""
    notes = []
    for scen, part in curve.groupby("scenario", sort=False):
        t, e = part["threshold"].to_numpy(), part["error"].to_numpy()
        rises = np.flatnonzero(np.diff(e) > 0)
        if rises.size:
            i = rises[0]
            name = _CRITERION_WORDS[criterion]
            notes.append(
                f"NOT MONOTONE: in {scen!r} the {name} rises from {e[i]:.4f} at threshold {_fmt(t[i])} "
                f"to {e[i + 1]:.4f} at the tighter {_fmt(t[i + 1])} ({rises.size} rise(s) over the evaluated "
                "points); the bisection found a crossing, not necessarily the loosest threshold that holds "
                "the target"
            )
    return not notes, notes


def _null_rows(search: _Search, nulls: list[Spec], values, knob: _Knob) -> list[dict]:
    design_values = knob.design_values
    rows = []
    for i, spec in enumerate(nulls):
        judge = search.judges[i]
        for setting, vals in (("calibrated", values), ("design", design_values)):
            j, ref = search.points[vals][i], search.points[design_values][i]
            for metric, crit in (("fwer", "fwer"), ("per_arm_error", "per_arm")):
                e = _error(j, crit, judge.null_units)
                diff = _paired(j.fwer, ref.fwer) if metric == "fwer" and setting == "calibrated" else (math.nan,) * 2
                rows.append(_row(spec, "null", setting, vals, metric, e.value, e.mcse, diff, e.worst))
    return rows


def _row(spec, role, setting, values, metric, value, mcse, diff, worst=""):
    return {
        "scenario": spec.scenario.name,
        "role": role,
        "setting": setting,
        "threshold": min(values),
        "thresholds": ", ".join(_fmt(v) for v in values),
        "metric": metric,
        "value": value,
        "mcse": mcse,
        "diff_vs_design": diff[0],
        "diff_se": diff[1],
        "worst_arm": worst,
    }


def _alternatives(search: _Search, alternatives: list[Spec], values, knob: _Knob) -> tuple[list[dict], list[str]]:
    """Power (and FWER where some arm is null) at the calibrated and the design's thresholds."""
    design_values = knob.design_values
    rows, notes = [], []
    for spec in alternatives:
        judge = _Judge(spec)
        if not judge.effective_units:
            notes.append(f"alternative scenario {spec.scenario.name!r} has no truly effective arm: its power is NA")
        judged = {v: judge(search.simulate(spec, v), spec) for v in dict.fromkeys((values, design_values))}
        ref = judged[design_values]
        for setting, vals in (("calibrated", values), ("design", design_values)):
            j = judged[vals]
            for metric in ("power", "fwer"):
                x, y = getattr(j, metric), getattr(ref, metric)
                diff = _paired(x, y) if setting == "calibrated" else (math.nan, math.nan)
                rows.append(_row(spec, "alternative", setting, vals, metric, *proportion(x), diff))
    return rows, notes


def planned_trials(
    n_nulls: int, n_alternatives: int, n_sims: int, bounds=DEFAULT_BOUNDS, tolerance: float = DEFAULT_TOLERANCE
) -> int:
    """Simulated trials a calibration runs at most (for a progress bar)."""
    width = float(_logit(bounds[1]) - _logit(bounds[0]))
    steps = 3 + max(0, math.ceil(math.log2(max(width / tolerance, 1.0))))
    return n_sims * (n_nulls * steps + 2 * n_alternatives)


# --------------------------------------------------------------------------- report


def format_calibration(cal: Calibration, digits: int = 4) -> str:
    """Plain-text report: the evaluated curve (one column per null scenario), the calibrated
    threshold, the error it achieves and the power it gives, each with its MCSE."""
    crit = _CRITERION_WORDS[cal.criterion]
    lines = [f"{cal.path} of {cal.design_name}: {crit} <= {cal.target:g} in every null scenario"]
    if cal.per_look:
        lines.append("  (one value per look, moved together on the logit scale; 'threshold' is the loosest look's)")
    curve = cal.curve
    scenarios = list(dict.fromkeys(curve.scenario))
    wide = curve.pivot_table(index="threshold", columns="scenario", values=["error", "mcse"], aggfunc="first")
    header = ["threshold"] + scenarios + [""]
    body = []
    for t in sorted(wide.index):
        mark = "<- calibrated" if t == cal.threshold else "<- design" if t == cal.design_threshold else ""
        body.append(
            [_fmt(t)] + [_pm(wide.loc[t, ("error", s)], wide.loc[t, ("mcse", s)], digits) for s in scenarios] + [mark]
        )
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines.append("")
    lines.append(f"{crit} at each threshold evaluated (same simulated trials at every threshold):")
    for r in [header] + body:
        lines.append(
            "  "
            + "  ".join(
                c.rjust(w) if 0 < i < len(r) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
            ).rstrip()
        )
    lines.append("")
    lines.append(
        f"calibrated threshold: {_fmt(cal.threshold)} (design: {_fmt(cal.design_threshold)}; the next looser "
        f"threshold evaluated, {_fmt(cal.looser)}, exceeds the target)"
    )
    lines.append(f"  in the design file: {cal.setting}")
    lines.append(f"  binding null scenario: {cal.binding_scenario}")
    s = cal.summary
    metric_names = {"fwer": "FWER", "per_arm_error": "largest per-arm error", "power": "power"}
    for role, metrics in (("null", ("fwer", "per_arm_error")), ("alternative", ("power", "fwer"))):
        part = s[s.role == role]
        if part.empty:
            continue
        lines.append("")
        lines.append(
            f"{role} scenarios: calibrated threshold vs the design's, paired difference (common random numbers)"
        )
        for scen in dict.fromkeys(part.scenario):
            for metric in metrics:
                rows = part[(part.scenario == scen) & (part.metric == metric)].set_index("setting")
                c, d = rows.loc["calibrated"], rows.loc["design"]
                if not np.isfinite(c.value) and not np.isfinite(d.value):
                    continue
                text = (
                    f"  {scen:<24} {metric_names[metric]:<22} {_pm(c.value, c.mcse, digits)}   design "
                    f"{_pm(d.value, d.mcse, digits)}"
                )
                if np.isfinite(c.diff_vs_design):
                    text += f"   difference {c.diff_vs_design:+.{digits}f} ± {c.diff_se:.{digits}f}"
                if c.worst_arm:
                    text += f"   ({c.worst_arm})"
                lines.append(text)
    if cal.notes:
        lines.append("")
        lines += [f"note: {n}" for n in cal.notes]
    return "\n".join(lines)


def _pm(v: float, se: float, digits: int) -> str:
    if not np.isfinite(v):
        return "NA"
    return f"{v:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{v:.{digits}f}"
