"""Checks that look at a whole design, or at a design together with a scenario.

Each check returns :class:`Problem` records (field path, bad value, what is
allowed) so that ``platform-sim validate`` can report every problem at once.
"""

from __future__ import annotations

import math

from .base import Problem
from .models import Design, Scenario


def _per_look(value, n_looks: int, path: str, problems: list[Problem]) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != n_looks:
            problems.append(Problem(path, f"needs one value per look ({n_looks} looks)", f"{len(value)} values"))
            return None
        return list(value)
    return [value] * n_looks


def _limits(value, arms: list[str], adaptive_arms: list[str], path: str, problems: list[Problem]) -> dict[str, float]:
    """Per-arm limits; a single number applies to every adaptively allocated arm."""
    if value is None:
        return {}
    if isinstance(value, dict):
        for name in value:
            if name not in arms:
                problems.append(Problem(f"{path}.{name}", f"is not an arm of this design; arms are {arms}", name))
            elif name not in adaptive_arms:
                problems.append(
                    Problem(
                        f"{path}.{name}", "the control's share is set by control_allocation; it takes no limit", name
                    )
                )
        return {k: v for k, v in value.items() if k in adaptive_arms}
    return {a: value for a in adaptive_arms}


def design_problems(design: Design) -> list[Problem]:
    """Everything that can be wrong with a design on its own."""
    problems: list[Problem] = []
    arms = design.arm_names
    n_arms = len(arms)
    looks = design.looks
    if design.two_stage is not None:  # one arm, checked by the model; its stages are checked by its family
        return problems
    if design.event_driven is not None:  # two arms and a control, checked by the model; the rest by its family
        names = design.arm_names
        if len(set(names)) != len(names):
            problems.append(Problem("design.arms", "arm names must be unique", names))
        if design.control not in names:
            problems.append(
                Problem("design.control", f"is not an arm of this design; arms are {names}", design.control)
            )
        return problems

    if n_arms < 2 and (design.strata is None or design.strata.groups is None):
        problems.append(
            Problem(
                "design.arms",
                "needs at least two arms (single-arm designs are strata groups with a reference_rate)",
                arms,
            )
        )
    seen: set[str] = set()
    for i, name in enumerate(arms):
        if name in seen:
            problems.append(Problem(f"design.arms[{i}].name", "arm names must be unique", name))
        seen.add(name)

    if design.control is not None and design.control not in arms:
        problems.append(Problem("design.control", f"is not an arm of this design; arms are {arms}", design.control))
    ctrl = design.control if design.control in arms else None

    if design.platform is not None:
        from .timeline_checks import platform_design_problems

        problems.extend(platform_design_problems(design))
        problems.extend(_randomization_problems(design, arms, ctrl, None))
        return problems
    for i, a in enumerate(design.arms):
        for key in ("enter_months", "closes_months"):
            if getattr(a, key) is not None:
                problems.append(
                    Problem(
                        f"design.arms[{i}].{key}",
                        "arms enter and leave over time only in a platform design (add a platform section)",
                        getattr(a, key),
                    )
                )
    if design.strata is not None:
        if design.strata.closed_match is not None:
            problems.append(
                Problem(
                    "design.strata.closed_match",
                    "routes patients over calendar time, only in a platform design (add a platform section)",
                    design.strata.closed_match,
                )
            )
        for i, g in enumerate(design.strata.groups or []):
            for key in ("opens_months", "closes_months", "opens_after"):
                if getattr(g, key) is not None:
                    problems.append(
                        Problem(
                            f"design.strata.groups[{i}].{key}",
                            "sub-studies open and close on dates "
                            "or triggers only in a platform design (add a platform section)",
                            getattr(g, key),
                        )
                    )

    n_looks = looks.n_looks
    # Caps: every arm capped and caps too small to ever reach the last look.
    caps = [a.max_n for a in design.arms]
    if all(c is not None for c in caps) and sum(caps) < looks.max_n:
        problems.append(
            Problem(
                "design.looks.randomized_n",
                f"the last look needs {looks.max_n} patients but the arm caps (max_n) add up to only {sum(caps)}",
                looks.max_n,
            )
        )
    for i, a in enumerate(design.arms):
        if a.max_n is not None and a.max_n > looks.max_n:
            problems.append(
                Problem(f"design.arms[{i}].max_n", f"exceeds the trial's maximum sample size {looks.max_n}", a.max_n)
            )

    # Thresholds per look and their consistency.
    dec = design.decisions
    sup = _per_look(dec.superiority, n_looks, "design.decisions.superiority", problems)
    inf = _per_look(dec.inferiority, n_looks, "design.decisions.inferiority", problems)
    counted = (
        design.strata is not None
        and design.strata.groups is not None
        and any(g.responder_boundaries for g in design.strata.groups)
    )
    if sup is None and inf is None and dec.futility is None and dec.equivalence is None and not counted:
        problems.append(
            Problem("design.decisions", "no decision rule is enabled; every trial would run to the maximum")
        )
    if sup is not None and inf is not None:
        for j, (s, f) in enumerate(zip(sup, inf)):
            if f >= s:
                problems.append(
                    Problem(
                        "design.decisions.inferiority",
                        f"look {j}: inferiority threshold {f} must be below the superiority threshold {s}",
                        f,
                    )
                )
                break
    if design.control is None:  # (an unknown control is reported above; no-control rules would only add noise)
        if inf is not None:
            bound = 1.0 / n_arms
            for j, f in enumerate(inf):
                if f >= bound:
                    problems.append(
                        Problem(
                            "design.decisions.inferiority",
                            f"look {j}: without a control the inferiority threshold compares P(best), which is "
                            f"1/{n_arms} = {bound:.3f} for equal arms; it must be below that",
                            f,
                        )
                    )
                    break
        if sup is not None:
            for j, s in enumerate(sup):
                if s <= 1.0 / n_arms:
                    problems.append(
                        Problem(
                            "design.decisions.superiority",
                            f"look {j}: a P(best) superiority threshold must be above 1/{n_arms}",
                            s,
                        )
                    )
                    break
        if dec.futility is not None:
            problems.append(
                Problem("design.decisions.futility", "futility compares arms with a control; set design.control")
            )
        if design.control_allocation is not None:
            problems.append(Problem("design.control_allocation", "needs a control arm; set design.control"))
    elif ctrl is not None:
        if sup is not None and any(s <= 0.5 for s in sup):
            problems.append(
                Problem(
                    "design.decisions.superiority",
                    "P(better than control) must exceed 0.5 to call superiority",
                    dec.superiority,
                )
            )
        if dec.futility is not None and dec.futility.delta >= 1:
            problems.append(Problem("design.decisions.futility.delta", "must be below 1", dec.futility.delta))
    if dec.futility is not None and dec.futility.looks is not None and len(dec.futility.looks) != n_looks:
        problems.append(
            Problem(
                "design.decisions.futility.looks",
                f"needs one true/false per look ({n_looks} looks)",
                f"{len(dec.futility.looks)} values",
            )
        )
    problems.extend(_looks_only_problems(design))

    problems.extend(_randomization_problems(design, arms, ctrl, looks))
    if design.strata is not None:
        problems.extend(_strata_problems(design))
    return problems


def _looks_only_problems(design: Design) -> list[Problem]:
    """Options that only a design with looks on all patients (no strata) implements."""
    if design.strata is None:
        return []
    rnd, dec = design.randomization, design.decisions
    used = [
        ("design.looks.outcome_delay", design.looks.outcome_delay if design.looks else None),
        ("design.randomization.coin", rnd.coin if rnd else None),
        ("design.randomization.basis", rnd.basis if rnd and rnd.basis != "prob_best" else None),
        ("design.decisions.final_selection", dec.final_selection if dec else None),
    ]
    return [
        Problem(path, "is implemented for designs with looks on all patients, not with strata", value)
        for path, value in used
        if value is not None
    ]


def _randomization_problems(design: Design, arms: list[str], ctrl: str | None, looks) -> list[Problem]:
    """The randomization section; ``looks`` is None for a platform design (analyses on a trigger)."""
    problems: list[Problem] = []
    n_arms = len(arms)
    rnd = design.randomization
    if rnd.ratios is not None:
        for name in rnd.ratios:
            if name not in arms:
                problems.append(
                    Problem(
                        f"design.randomization.ratios.{name}", f"is not an arm of this design; arms are {arms}", name
                    )
                )
        missing = [a for a in arms if a not in rnd.ratios]
        if missing:
            problems.append(Problem("design.randomization.ratios", f"gives no ratio for arms {missing}", None))
    if looks is None:
        for key in ("coin", "basis"):
            value = getattr(rnd, key)
            if value is not None and value != "prob_best":
                problems.append(
                    Problem(
                        f"design.randomization.{key}",
                        "is implemented for designs with looks, not for platform designs",
                        value if key == "basis" else value.rule,
                    )
                )
        if rnd.softening is not None and not isinstance(rnd.softening, (int, float)):
            problems.append(
                Problem(
                    "design.randomization.softening",
                    "a platform design adapts at analyses that fall on a trigger, so softening must be one number",
                    rnd.softening,
                )
            )
    elif isinstance(rnd.softening, list) and len(rnd.softening) != looks.n_looks:
        problems.append(
            Problem(
                "design.randomization.softening",
                f"needs one value per look ({looks.n_looks} looks)",
                f"{len(rnd.softening)} values",
            )
        )
    if looks is not None and rnd.burn_in_n >= looks.max_n:
        problems.append(
            Problem(
                "design.randomization.burn_in_n",
                f"must be below the maximum sample size {looks.max_n}, or adaptation never starts",
                rnd.burn_in_n,
            )
        )
    fixed_share = 0.0
    ca = design.control_allocation
    adaptive_arms = [a for a in arms if not (ca is not None and a == ctrl)]
    mins = _limits(rnd.min_allocation, arms, adaptive_arms, "design.randomization.min_allocation", problems)
    maxs = _limits(rnd.max_allocation, arms, adaptive_arms, "design.randomization.max_allocation", problems)
    for a in arms:
        if a in mins and a in maxs and mins[a] > maxs[a]:
            problems.append(
                Problem(
                    f"design.randomization.min_allocation.{a}", f"exceeds the maximum allocation {maxs[a]}", mins[a]
                )
            )
    if ca is not None and ctrl is not None:
        if ca.rule == "fixed":
            if isinstance(ca.share, dict):
                n_other = n_arms - 1
                missing = [k for k in range(1, n_other + 1) if k not in ca.share]
                if missing:
                    problems.append(
                        Problem(
                            "design.control_allocation.share",
                            f"needs a share for every possible number of active non-control arms 1..{n_other}",
                            f"missing {missing}",
                        )
                    )
                fixed_share = max(ca.share.values())
            else:
                fixed_share = ca.share
        elif ca.rule == "sqrt_k":
            k = n_arms - 1  # (a design with the control alone is reported elsewhere)
            fixed_share = math.sqrt(k) / (math.sqrt(k) + k) if k > 0 else 0.0
    if rnd.method == "adaptive":
        total_min = sum(mins.get(a, 0.0) for a in adaptive_arms)
        if total_min > 1.0 - fixed_share + 1e-12:
            problems.append(
                Problem(
                    "design.randomization.min_allocation",
                    f"minimum allocations add up to {total_min:.3f} but only {1 - fixed_share:.3f} is left after the control",
                    rnd.min_allocation,
                )
            )
        if all(a in maxs for a in adaptive_arms):
            total_max = sum(maxs[a] for a in adaptive_arms)
            if total_max < 1.0 - fixed_share - 1e-12:
                problems.append(
                    Problem(
                        "design.randomization.max_allocation",
                        f"maximum allocations add up to {total_max:.3f}, less than the {1 - fixed_share:.3f} "
                        "that must be allocated",
                        rnd.max_allocation,
                    )
                )
    return problems


def _strata_problems(design: Design) -> list[Problem]:
    """A stratified design's own consistency (names against the scenario are checked per pair)."""
    problems: list[Problem] = []
    st = design.strata
    arms = design.arm_names
    ctrl = design.control
    for i, a in enumerate(design.arms):
        if a.max_n is not None:
            problems.append(
                Problem(
                    f"design.arms[{i}].max_n",
                    "per-arm caps are not used with strata; cap the strata (groups[].max_n) instead",
                    a.max_n,
                )
            )
    if st.enrichment is not None and ctrl is None:
        problems.append(Problem("design.strata.enrichment", "compares arms with a control; set design.control"))
    if st.groups is None:
        return problems
    if st.analysis == "hierarchical_probit":
        problems.extend(_probit_problems(design))
    names = [g.name for g in st.groups]
    for i, g in enumerate(st.groups):
        path = f"design.strata.groups[{i}]"
        if names.count(g.name) > 1:
            problems.append(Problem(f"{path}.name", "group names must be unique", g.name))
        for a in g.arms:
            if a not in arms:
                problems.append(Problem(f"{path}.arms", f"{a!r} is not an arm of this design; arms are {arms}", a))
        if len(set(g.arms)) != len(g.arms):
            problems.append(Problem(f"{path}.arms", "lists an arm twice", g.arms))
        if g.reference_rate is None:
            if ctrl is None or ctrl not in g.arms:
                problems.append(
                    Problem(
                        f"{path}.arms",
                        "a group without reference_rate randomizes against the "
                        f"design's control ({ctrl!r}); list it among the group's arms",
                        g.arms,
                    )
                )
            elif len(g.arms) < 2:
                problems.append(Problem(f"{path}.arms", "needs at least one arm besides the control", g.arms))
        elif ctrl is not None and ctrl in g.arms:
            problems.append(
                Problem(
                    f"{path}.arms",
                    f"compares its arms with reference_rate {g.reference_rate}; "
                    f"the control {ctrl!r} has no place in it",
                    g.arms,
                )
            )
        if g.cap is not None and g.cap > design.looks.max_n:
            problems.append(
                Problem(f"{path}.max_n", f"exceeds the trial's maximum sample size {design.looks.max_n}", g.cap)
            )
        if g.looks is not None:
            for key in ("superiority", "inferiority"):
                if isinstance(getattr(design.decisions, key), list):
                    problems.append(
                        Problem(
                            f"design.decisions.{key}",
                            f"group {g.name!r} has its own stages, so thresholds must be one number, not one per look",
                            getattr(design.decisions, key),
                        )
                    )
        if g.reference_rate is not None and g.responder_boundaries is not None and not design.endpoint.higher_is_better:
            problems.append(
                Problem(
                    f"{path}.responder_boundaries",
                    "count responders; the endpoint must be higher_is_better",
                    design.endpoint.direction,
                )
            )
    used = {a for g in st.groups for a in g.arms}
    unused = [a for a in arms if a not in used]
    if unused:
        problems.append(
            Problem("design.strata.groups", f"arms {unused} are in no group; every arm needs a group", unused)
        )
    return problems


def _probit_problems(design: Design) -> list[Problem]:
    """BATTLE's hierarchical probit model: no control arm, every group judged against a reference
    disease control rate, on a higher-is-better binary endpoint."""
    problems: list[Problem] = []
    if design.control is not None:
        problems.append(
            Problem(
                "design.control",
                "the hierarchical probit model (BATTLE) compares every arm with "
                "its group's reference_rate and has no control arm; remove control",
                design.control,
            )
        )
    if not design.endpoint.higher_is_better:
        problems.append(
            Problem(
                "design.endpoint.direction",
                "the hierarchical probit model is for a disease control rate, where higher is better",
                design.endpoint.direction,
            )
        )
    for i, g in enumerate(design.strata.groups or []):
        if g.reference_rate is None:
            problems.append(
                Problem(
                    f"design.strata.groups[{i}].reference_rate",
                    "the hierarchical probit model "
                    "declares an arm effective in a group when P(DCR > reference_rate) exceeds the "
                    "superiority threshold; set it (BATTLE: 0.3)",
                    None,
                )
            )
        if g.responder_boundaries is not None:
            problems.append(
                Problem(
                    f"design.strata.groups[{i}].responder_boundaries",
                    "count rules do not use the hierarchical probit model; remove them",
                    g.responder_boundaries,
                )
            )
    if design.platform is not None:
        problems.append(
            Problem(
                "design.strata.analysis",
                "the hierarchical probit model runs in a stratified design "
                "with looks, not in a platform over calendar time",
                "hierarchical_probit",
            )
        )
    refit = design.strata.probit.refit if design.strata.probit is not None else None
    if refit is not None and design.looks is not None:
        followed = design.looks.followed_n or design.looks.randomized_n
        if refit.after_followed > followed[-1]:
            problems.append(
                Problem(
                    "design.strata.probit.refit.after_followed",
                    f"no look follows that many patients; the last look follows {followed[-1]}",
                    refit.after_followed,
                )
            )
    return problems


def pair_problems(design: Design, scenario: Scenario) -> list[Problem]:
    """Names that tie a design to a scenario must resolve: the endpoint and every arm's treatment.
    (Checks that need the design compiled under the scenario belong to its family.)"""
    problems: list[Problem] = []
    if design.endpoint.name not in scenario.endpoints:
        problems.append(
            Problem(
                "design.endpoint.name",
                f"scenario {scenario.name!r} defines no such endpoint; it has {sorted(scenario.endpoints)}",
                design.endpoint.name,
            )
        )
    for i, arm in enumerate(design.arms):
        if arm.treatment not in scenario.treatments:
            problems.append(
                Problem(
                    f"design.arms[{i}].treatment",
                    f"scenario {scenario.name!r} defines no such treatment; it has {sorted(scenario.treatments)}",
                    arm.treatment,
                )
            )
    return problems
