"""Size designs alike before comparing them: the same maximum sample size, or the same accrual duration.

A design's planned size under a scenario (:class:`~platform_sim.families.Size`) is its
maximum number of randomized patients and its planned accrual duration: the months its
screening funnel needs, at the scenario's expected accrual with every stratum open, to
randomize that many (a platform's maximum duration). ``equalize`` gives every design the
reference design's value of one of them:

* ``max_n``: every sample size of the design (looks, caps, stage sizes, burn-in) is
  scaled by one factor so that its maximum is the reference's;
* ``duration``: designs with looks or strata are scaled so that their funnel randomizes
  their maximum in the reference's planned accrual duration; a platform's maximum
  duration is set to it.

Sample sizes are whole numbers, so a scaled maximum can differ from the target by a patient.

``size_for_power`` finds the smallest size at which a design reaches a target power on an
alternative scenario, with its decision thresholds held where they are (calibrate them first):

* **What is sized.** The family's own ``resize``: every sample size of a design with looks or
  strata scaled by one factor (the maximum number of randomized patients, ``max_n``), or a
  platform's maximum duration (``months``), since its calendar sets its sample size. A family
  that cannot be resized (a two-stage design, whose stage sizes and responder boundaries are
  derived together) is refused with its reason.
* **What is power.** The disjunctive power of the common yardstick
  (:mod:`platform_sim.yardstick`): P(at least one true claim, a treatment claimed in a subgroup
  where it works), as ``platform-sim compare`` reads it.
* **Common random numbers.** Every size is simulated with the same seed, so the ``t``-th trial
  meets the same virtual patients, in the same order, with the same potential outcomes at every
  size; a larger design enrols more of the same sequence. The power curve is then far smoother
  than with independent runs, but not guaranteed monotone: more patients also move the looks.
  Every evaluated point is kept, and a drop in power at a larger size is reported, never hidden.
* **The search.** The design's own size is simulated first. If it reaches the target, the
  size is halved until it does not (or resizing fails); otherwise it is doubled until it does (or
  the ``limit`` is reached: the target is then *not reached*, and the largest size's power is
  reported). Bisection then narrows the bracket until it is narrower than ``tolerance`` (a
  share of the size; one patient at least). The size found is the smallest evaluated size whose
  estimated power is at or above the target; the next smaller evaluated size is below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .backends import Backend, LocalProcesses
from .config import ConfigError, Design, Problem, Scenario, load_file, resolve
from .families import Size
from .oc import proportion, trial_values
from .runner import DEFAULT_CHUNK_SIZE, run
from .spec import Spec
from .yardstick import for_specs, reading, values

#: What ``equalize`` can make equal.
EQUAL = ("none", "max_n", "duration")


def equalize(
    specs: Mapping[Hashable, Spec], reference: Hashable, how: str
) -> tuple[dict[Hashable, Design], pd.DataFrame]:
    """Every design of ``specs`` (one spec per design, all on one scenario) sized like ``reference``'s:
    the designs (the reference's unchanged, and a design already of that size unchanged) and a table
    of what changed (design, what, before, after, max_n before and after, months before and after)."""
    if how not in EQUAL:
        raise ConfigError([Problem("equal", f"unknown; allowed: {', '.join(EQUAL)}", how)])
    out: dict[Hashable, Design] = {}
    rows = []
    ref = specs[reference]
    target = ref.family.size(ref.compiled)
    if how == "max_n" and target.max_n is None:
        raise ConfigError(
            [
                Problem(
                    "equal",
                    f"the reference design {ref.design.name!r} has no maximum sample size (its "
                    "calendar sets it); use --equal duration or another reference",
                    how,
                )
            ]
        )
    problems = []
    for key, spec in specs.items():
        before = spec.family.size(spec.compiled)
        if (
            key == reference
            or how == "none"
            or (how == "max_n" and before.max_n == target.max_n)
            or (how == "duration" and abs(before.months - target.months) < 1e-9)
        ):
            out[key] = spec.design
            continue
        try:
            if how == "max_n":
                design = spec.family.resize(spec.compiled, max_n=target.max_n)
            else:
                design = spec.family.resize(spec.compiled, months=target.months)
        except ConfigError as exc:
            problems += [Problem(p.path, p.message, p.value, file=spec.design_file) for p in exc.problems]
            continue
        after = Spec.from_models(design, spec.scenario, spec.design_file, spec.scenario_file)
        size = after.family.size(after.compiled)
        out[key] = design
        rows.append(
            {
                "design": spec.design.name,
                "equal": how,
                "reference": ref.design.name,
                "max_n_before": before.max_n,
                "max_n_after": size.max_n,
                "months_before": before.months,
                "months_after": size.months,
                "target_max_n": target.max_n,
                "target_months": target.months,
            }
        )
    if problems:
        raise ConfigError(problems)
    return out, pd.DataFrame(
        rows,
        columns=[
            "design",
            "equal",
            "reference",
            "max_n_before",
            "max_n_after",
            "months_before",
            "months_after",
            "target_max_n",
            "target_months",
        ],
    )


# --------------------------------------------------------------------------- sizing for power

#: What ``size_for_power`` can size by.
SIZE_BY = ("max_n", "months")
#: The search stops when the bracket is narrower than this share of the size.
DEFAULT_SIZE_TOLERANCE = 0.02
#: Without a limit, sizes up to this multiple of the design's own are searched.
DEFAULT_LIMIT_FACTOR = 8.0


@dataclass
class PowerSizing:
    """The outcome of :func:`size_for_power`.

    ``design_size``: the design's own size; ``found``: the smallest evaluated size whose power is at
    or above the target (None when the target is not reached within ``limit``), with ``design``, the
    design sized to it (the thresholds unchanged). ``steps``: one row per evaluated size, in the
    order evaluated: ``step``, the size asked for (``asked``), the size it gave (``max_n``,
    ``months``), ``power`` and its ``mcse``, the mean number of patients randomized
    (``n_randomized``) with its MCSE, and ``meets`` (power at or above the target). ``fwer``: with a
    null scenario, P(any claim) there at the design's own and at the found size (thresholds held),
    one row each.
    """

    design_name: str
    scenario: str
    target_power: float
    by: str
    design_size: Size
    found: Size | None
    design: Design | None
    steps: pd.DataFrame
    limit: float
    n_sims: int
    seed: int
    tolerance: float
    monotone: bool
    notes: list[str] = field(default_factory=list)
    null_scenario: str | None = None
    fwer: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def reached(self) -> bool:
        """Whether some evaluated size within the limit reaches the target power."""
        return self.found is not None

    def row(self, size: Size | None) -> pd.Series | None:
        """The evaluated step of ``size`` (None if it was not evaluated)."""
        if size is None:
            return None
        key = "max_n" if self.by == "max_n" else "months"
        value = getattr(size, key)
        hit = self.steps[np.isclose(self.steps[key].astype(float), float(value))]
        return None if hit.empty else hit.iloc[0]


def _load_spec(design, scenario) -> Spec:
    """A spec from a design and a scenario, each a file, a shipped name or a loaded model; or
    ``design`` itself when it is a :class:`~platform_sim.spec.Spec` and ``scenario`` is None."""
    if isinstance(design, Spec):
        if scenario is not None and not (isinstance(scenario, Scenario) and scenario == design.scenario):
            raise ValueError("give a spec alone, or a design and a scenario")
        return design
    if not isinstance(design, Design) and not isinstance(scenario, Scenario):
        return Spec.load(design, scenario)
    problems: list[Problem] = []
    dfile = sfile = None
    if not isinstance(design, Design):
        try:
            path = resolve(design, "design")
            design, dfile = load_file(path, "design"), str(path)
        except ConfigError as exc:
            problems += exc.problems
    if not isinstance(scenario, Scenario):
        try:
            path = resolve(scenario, "scenario")
            scenario, sfile = load_file(path, "scenario"), str(path)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    assert isinstance(design, Design) and isinstance(scenario, Scenario)
    return Spec.from_models(design, scenario, dfile, sfile)


def sizing_unit(spec: Spec, by: str | None = None) -> str:
    """What ``size_for_power`` sizes ``spec``'s design by (``by``, or its family's natural unit:
    ``max_n`` when the design plans a maximum sample size, else ``months``); a
    :class:`ConfigError` when the family cannot resize the design that way, with its reason."""
    name = spec.design.name
    own = spec.family.size(spec.compiled)
    if by is None:
        by = "max_n" if own.max_n is not None else "months"
    if by not in SIZE_BY:
        raise ConfigError([Problem("by", f"unknown; allowed: {', '.join(SIZE_BY)}", by)])
    if by == "max_n" and own.max_n is None:
        raise ConfigError(
            [
                Problem(
                    "by",
                    f"{name!r} has no planned maximum sample size (its calendar sets it); size it by months",
                    by,
                    file=spec.design_file,
                )
            ]
        )
    try:
        spec.family.resize(spec.compiled, **({"max_n": own.max_n} if by == "max_n" else {"months": own.months}))
    except ConfigError as exc:
        reasons = "; ".join(p.message for p in exc.problems)
        raise ConfigError(
            [Problem("design", f"{name!r} cannot be sized for power: {reasons}", name, file=spec.design_file)]
        ) from None
    return by


def _resizer(spec: Spec, by: str) -> Callable[[float], Spec]:
    """A function from a size (patients or months) to the spec of the design sized to it."""
    scenario = spec.scenario

    def sized(x: float) -> Spec:
        kwargs = {"max_n": int(x)} if by == "max_n" else {"months": float(x)}
        design = spec.family.resize(spec.compiled, **kwargs)
        return Spec.from_models(design, scenario, spec.design_file, spec.scenario_file)

    return sized


def _mean(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def _check(target_power, n_sims, tolerance, by, limit) -> None:
    problems = []
    if not (isinstance(target_power, (int, float)) and 0.0 < float(target_power) < 1.0):
        problems.append(Problem("power", "the target power must be strictly between 0 and 1", target_power))
    if not (isinstance(n_sims, int) and n_sims >= 2):
        problems.append(Problem("n_sims", "needs at least 2 simulated trials for a Monte Carlo error", n_sims))
    if not (isinstance(tolerance, (int, float)) and 0.0 < float(tolerance) < 1.0):
        problems.append(Problem("tolerance", "a share of the size, strictly between 0 and 1", tolerance))
    if by is not None and by not in SIZE_BY:
        problems.append(Problem("by", f"unknown; allowed: {', '.join(SIZE_BY)}", by))
    if limit is not None and not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
        problems.append(Problem("limit", "the largest size searched must be a positive number", limit))
    if problems:
        raise ConfigError(problems)


def size_for_power(
    design,
    alternative,
    target_power: float,
    n_sims: int = 1000,
    seed: int = 1,
    *,
    by: str | None = None,
    limit: float | None = None,
    tolerance: float = DEFAULT_SIZE_TOLERANCE,
    null_scenario=None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
) -> PowerSizing:
    """The smallest size at which ``design`` reaches ``target_power`` on ``alternative``, its
    decision thresholds held (see the module docstring).

    ``design``, ``alternative`` and ``null_scenario``: files, shipped names or loaded models (or
    ``design`` a :class:`~platform_sim.spec.Spec` bound to the alternative, with ``alternative``
    None, and ``null_scenario`` a spec of the same design).
    ``by``: ``max_n`` (patients; the default for designs with a planned maximum) or ``months`` (a
    platform's maximum duration; its default). ``limit``: the largest size searched, in the same
    unit (default: ``DEFAULT_LIMIT_FACTOR`` times the design's own). ``tolerance``: the bracket's
    final width as a share of the size. Every size runs ``n_sims`` trials with ``seed``. With
    ``null_scenario``, P(any claim) there is reported at the design's own and the found size.
    Raises :class:`ConfigError` for bad input and for a design its family cannot resize.
    """
    _check(target_power, n_sims, tolerance, by, limit)
    spec = _load_spec(design, alternative)
    null_spec = None
    if null_scenario is not None:
        null_spec = (
            _load_spec(null_scenario, None)
            if isinstance(null_scenario, Spec)
            else _load_spec(spec.design, null_scenario)
        )
        if null_spec.design != spec.design:
            raise ConfigError(
                [Problem("null_scenario", "must be bound to the same design as the alternative", null_spec.design.name)]
            )
        null_spec = Spec(
            null_spec.design,
            null_spec.scenario,
            spec.design_file,
            null_spec.scenario_file,
            null_spec.compiled,
            null_spec.patients,
        )
    name = spec.design.name
    own = spec.family.size(spec.compiled)
    by = sizing_unit(spec, by)
    x0 = float(own.max_n) if by == "max_n" and own.max_n is not None else float(own.months)
    sized = _resizer(spec, by)
    from .config.base import MAX_PATIENTS

    top = float(limit) if limit is not None else x0 * DEFAULT_LIMIT_FACTOR
    if by == "max_n":
        top = float(min(int(top), MAX_PATIENTS))
    if top < x0:
        raise ConfigError([Problem("limit", f"is below the design's own size ({x0:g})", limit)])
    ys = for_specs([spec])
    if not ys.works.any():
        raise ConfigError(
            [
                Problem(
                    "alternative",
                    f"no treatment works in any subgroup of {ys.scenario!r} on the "
                    "yardstick, so the design has no power there to size for",
                    ys.scenario,
                    file=spec.scenario_file,
                )
            ]
        )

    owned = backend is None
    executor = (LocalProcesses(workers) if workers > 1 else None) if owned else backend
    points: dict[float, dict] = {}
    specs: dict[float, Spec] = {}

    def unit(x: float) -> float:
        return float(round(x)) if by == "max_n" else round(float(x), 2)

    x0 = unit(x0)
    floor = max(1.0, unit(x0 / DEFAULT_LIMIT_FACTOR))

    def evaluate(x: float) -> dict | None:
        x = unit(x)
        if x in points:
            return points[x]
        try:
            s = spec if x == x0 else sized(x)
        except ConfigError:
            return None
        results = run(s, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
        v = values(results, reading(s, ys))
        power, mcse = proportion(v[("trial", "", "", "power")])
        n_mean, n_se = _mean(v[("trial", "", "", "n_randomized")])
        size = s.family.size(s.compiled)
        points[x] = {
            "step": len(points),
            "asked": x,
            "max_n": size.max_n,
            "months": size.months,
            "power": power,
            "mcse": mcse,
            "n_randomized": n_mean,
            "n_randomized_mcse": n_se,
            "meets": bool(power >= target_power),
        }
        specs[x] = s
        return points[x]

    try:
        first = evaluate(x0)
        assert first is not None
        lo: float | None
        hi: float | None
        if first["meets"]:
            hi, lo = x0, None
            x = x0
            while lo is None:
                x = unit(x / 2.0)
                point = evaluate(x) if x >= floor else None
                if point is None:  # the design cannot be made smaller: the smallest size it takes meets the target
                    break
                if point["meets"]:
                    hi = x
                else:
                    lo = x
        else:
            lo, hi = x0, None
            x = x0
            while hi is None and x < top:
                x = min(unit(x * 2.0), top)
                point = evaluate(x)
                if point is None:
                    break
                if point["meets"]:
                    hi = x
                else:
                    lo = x
        if lo is not None and hi is not None:
            while hi - lo > max(tolerance * hi, 1.0 if by == "max_n" else 0.0):
                mid = unit((lo + hi) / 2.0)
                if mid in (lo, hi):
                    break
                point = evaluate(mid)
                if point is None:
                    break
                if point["meets"]:
                    hi = mid
                else:
                    lo = mid
        fwer = pd.DataFrame()
        found_spec = specs.get(hi) if hi is not None else None
        if null_spec is not None:
            rows: list[dict] = []
            for setting, s in (("design", spec), ("found", found_spec)):
                if s is None:
                    continue
                if setting == "found" and s is spec:  # the design's own size: the same trials
                    rows.append({**rows[0], "setting": "found"})
                    continue
                ns = (
                    null_spec
                    if s is spec
                    else Spec.from_models(s.design, null_spec.scenario, null_spec.design_file, null_spec.scenario_file)
                )
                results = run(ns, n_sims, seed, workers, chunk_size, progress=progress, executor=executor)
                claim, mcse = proportion(trial_values(results, ns.truth)["p_any_claim"])
                size = ns.family.size(ns.compiled)
                rows.append(
                    {
                        "setting": setting,
                        "scenario": ns.scenario.name,
                        "max_n": size.max_n,
                        "months": size.months,
                        "fwer": claim,
                        "mcse": mcse,
                    }
                )
            fwer = pd.DataFrame(rows)
    finally:
        if owned and executor is not None:
            executor.close()

    steps = pd.DataFrame(list(points.values()))
    monotone, notes = _power_monotone(steps, by)
    if (
        len(steps) > 1
        and np.allclose(steps["n_randomized"], steps["n_randomized"].iloc[0])
        and np.allclose(steps["power"], steps["power"].iloc[0])
    ):
        notes.append(
            f"every evaluated size randomized the same patients with the same power: the {by} is not what "
            "limits this design (its arms' caps or its stopping rules end every trial first), so resizing "
            "it this way cannot add power"
        )
    if hi is None:
        notes.append(f"the target power {target_power:g} is not reached within the limit ({by} {top:g})")
    found = None
    if found_spec is not None:
        found = found_spec.family.size(found_spec.compiled)
    return PowerSizing(
        design_name=name,
        scenario=spec.scenario.name,
        target_power=float(target_power),
        by=by,
        design_size=own,
        found=found,
        design=found_spec.design if found_spec is not None else None,
        steps=steps,
        limit=top,
        n_sims=n_sims,
        seed=seed,
        tolerance=float(tolerance),
        monotone=monotone,
        notes=notes,
        null_scenario=null_spec.scenario.name if null_spec is not None else None,
        fwer=fwer,
    )


def _power_monotone(steps: pd.DataFrame, by: str) -> tuple[bool, list[str]]:
    """Whether the evaluated power is non-decreasing in the size; a note at the first drop."""
    order = steps.sort_values("asked", kind="stable")
    p, x = order["power"].to_numpy(), order["max_n" if by == "max_n" else "months"].to_numpy(dtype=float)
    drops = np.flatnonzero(np.diff(p) < 0)
    if not drops.size:
        return True, []
    i = drops[0]
    return False, [
        f"NOT MONOTONE: power falls from {p[i]:.4f} at {by} {x[i]:g} to {p[i + 1]:.4f} at the larger "
        f"{x[i + 1]:g} ({drops.size} drop(s) over the evaluated sizes); the bisection found a crossing, "
        "not necessarily the smallest size that reaches the target"
    ]


def planned_sizing_trials(n_sims: int, tolerance: float = DEFAULT_SIZE_TOLERANCE, null: bool = False) -> int:
    """About how many trials :func:`size_for_power` simulates (for a progress bar): three doublings
    and the bisection down to ``tolerance``."""
    steps = 1 + 3 + max(1, math.ceil(math.log2(1.0 / tolerance)))
    return n_sims * (steps + (2 if null else 0))


def _patients(value: Any) -> str:
    """A number of patients as printed ("NA" for a platform, whose calendar sets it)."""
    return "NA" if value is None or pd.isna(value) else str(int(value))


def format_sizing(result: PowerSizing, digits: int = 3) -> str:
    """Plain-text report: the power at every evaluated size (smallest first) with its MCSE, the size
    found and, with a null scenario, the error at the design's own and the found size."""
    unit = "max_n" if result.by == "max_n" else "months"
    lines = [
        f"{result.design_name} on {result.scenario}: smallest {unit} with power >= {result.target_power:g} "
        f"(thresholds held; {result.n_sims} simulated trials per size, seed {result.seed}, common random "
        "numbers)",
        "",
    ]
    header = ["max_n", "months", "randomized (mean)", "power ± MCSE", ""]
    body = []
    found_row = result.row(result.found)
    for r in result.steps.sort_values("asked", kind="stable").itertuples():
        mark = []
        if found_row is not None and r.step == found_row.step:
            mark.append("<- found")
        if r.step == 0:
            mark.append("<- design")
        body.append(
            [
                _patients(r.max_n),
                f"{r.months:.1f}",
                f"{r.n_randomized:.1f}",
                f"{r.power:.{digits}f} ± {r.mcse:.{digits}f}",
                " ".join(mark),
            ]
        )
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    for row in [header] + body:
        lines.append(
            "  "
            + "  ".join(
                c.rjust(w) if i < len(row) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
    lines.append("")
    if result.found is not None:
        size = f"max_n {result.found.max_n}" if result.by == "max_n" else f"{result.found.months:g} months"
        assert found_row is not None
        lines.append(
            f"found: {size} (power {found_row.power:.{digits}f} ± {found_row.mcse:.{digits}f}; planned "
            f"accrual {result.found.months:.1f} months)"
        )
    else:
        lines.append(
            f"not reached: no size up to the limit ({unit} {result.limit:g}) has power >= {result.target_power:g}"
        )
    if not result.fwer.empty:
        lines.append("")
        lines.append(f"P(any claim) on {result.null_scenario} with the thresholds held:")
        for r in result.fwer.itertuples():
            size = f"max_n {_patients(r.max_n)}" if _patients(r.max_n) != "NA" else f"{r.months:g} months"
            lines.append(f"  {r.setting:<7} {size:<14} {r.fwer:.{digits}f} ± {r.mcse:.{digits}f}")
    if result.notes:
        lines.append("")
        lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


__all__ = [
    "DEFAULT_LIMIT_FACTOR",
    "DEFAULT_SIZE_TOLERANCE",
    "EQUAL",
    "PowerSizing",
    "SIZE_BY",
    "equalize",
    "format_sizing",
    "planned_sizing_trials",
    "size_for_power",
    "sizing_unit",
]
