"""Checks that look at a whole design, or at a design together with a scenario.

Each check returns :class:`Problem` records (field path, bad value, what is
allowed) so that ``platform-sim validate`` can report every problem at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .base import MAX_PATIENTS, MAX_SCREENED
from .models import Design, Scenario


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    value: Any = None
    file: str | None = None

    def format(self) -> str:
        where = f"{self.file}: " if self.file else ""
        shown = "" if self.value is None else f" (got {_shown(self.value)})"
        return f"{where}{self.path}: {self.message}{shown}"


_SHOWN_CHARACTERS = 200


def _shown(value) -> str:
    """A bad value as shown in a message: its repr, cut short when very long (a pasted file, a
    string of thousands of characters) so that the message stays one readable line."""
    text = repr(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return f"{text[:_SHOWN_CHARACTERS]}... ({len(text):,} characters)"


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
                    Problem(f"{path}.{name}", "the control's share is set by control_allocation; it takes no limit", name)
                )
        return {k: v for k, v in value.items() if k in adaptive_arms}
    return {a: value for a in adaptive_arms}


def design_problems(design: Design) -> list[Problem]:
    """Everything that can be wrong with a design on its own."""
    problems: list[Problem] = []
    arms = design.arm_names
    n_arms = len(arms)
    looks = design.looks

    if n_arms < 2 and (design.strata is None or design.strata.groups is None):
        problems.append(Problem("design.arms", "needs at least two arms (single-arm designs are strata groups with a "
                                "reference_rate)", arms))
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
        if a.enter_months is not None:
            problems.append(Problem(f"design.arms[{i}].enter_months", "arms enter over time only in a platform design "
                                    "(add a platform section)", a.enter_months))

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
    counted = design.strata is not None and design.strata.groups is not None and any(
        g.responder_boundaries for g in design.strata.groups)
    if sup is None and inf is None and dec.futility is None and dec.equivalence is None and not counted:
        problems.append(Problem("design.decisions", "no decision rule is enabled; every trial would run to the maximum"))
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
            problems.append(Problem("design.decisions.futility", "futility compares arms with a control; set design.control"))
        if design.control_allocation is not None:
            problems.append(Problem("design.control_allocation", "needs a control arm; set design.control"))
    elif ctrl is not None:
        if sup is not None and any(s <= 0.5 for s in sup):
            problems.append(
                Problem("design.decisions.superiority", "P(better than control) must exceed 0.5 to call superiority", dec.superiority)
            )
        if dec.futility is not None and dec.futility.delta >= 1:
            problems.append(Problem("design.decisions.futility.delta", "must be below 1", dec.futility.delta))

    problems.extend(_randomization_problems(design, arms, ctrl, looks))
    if design.strata is not None:
        problems.extend(_strata_problems(design))
    return problems


def _randomization_problems(design: Design, arms: list[str], ctrl: str | None, looks) -> list[Problem]:
    """The randomization section; ``looks`` is None for a platform design (analyses on a trigger)."""
    problems: list[Problem] = []
    n_arms = len(arms)
    rnd = design.randomization
    if rnd.ratios is not None:
        for name in rnd.ratios:
            if name not in arms:
                problems.append(
                    Problem(f"design.randomization.ratios.{name}", f"is not an arm of this design; arms are {arms}", name)
                )
        missing = [a for a in arms if a not in rnd.ratios]
        if missing:
            problems.append(Problem("design.randomization.ratios", f"gives no ratio for arms {missing}", None))
    if looks is None:
        if rnd.softening is not None and not isinstance(rnd.softening, (int, float)):
            problems.append(Problem("design.randomization.softening", "a platform design adapts at analyses that "
                                    "fall on a trigger, so softening must be one number", rnd.softening))
    elif isinstance(rnd.softening, list) and len(rnd.softening) != looks.n_looks:
        problems.append(
            Problem("design.randomization.softening", f"needs one value per look ({looks.n_looks} looks)",
                    f"{len(rnd.softening)} values")
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
                Problem(f"design.randomization.min_allocation.{a}", f"exceeds the maximum allocation {maxs[a]}", mins[a])
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
            problems.append(Problem(f"design.arms[{i}].max_n", "per-arm caps are not used with strata; cap the "
                                    "strata (groups[].max_n) instead", a.max_n))
    if st.enrichment is not None and ctrl is None:
        problems.append(Problem("design.strata.enrichment", "compares arms with a control; set design.control"))
    if st.groups is None:
        return problems
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
                problems.append(Problem(f"{path}.arms", "a group without reference_rate randomizes against the "
                                        f"design's control ({ctrl!r}); list it among the group's arms", g.arms))
            elif len(g.arms) < 2:
                problems.append(Problem(f"{path}.arms", "needs at least one arm besides the control", g.arms))
        elif ctrl is not None and ctrl in g.arms:
            problems.append(Problem(f"{path}.arms", f"compares its arms with reference_rate {g.reference_rate}; "
                                    f"the control {ctrl!r} has no place in it", g.arms))
        if g.cap is not None and g.cap > design.looks.max_n:
            problems.append(Problem(f"{path}.max_n", f"exceeds the trial's maximum sample size {design.looks.max_n}",
                                    g.cap))
        if g.looks is not None:
            for key in ("superiority", "inferiority"):
                if isinstance(getattr(design.decisions, key), list):
                    problems.append(Problem(f"design.decisions.{key}", f"group {g.name!r} has its own stages, so "
                                            "thresholds must be one number, not one per look", getattr(design.decisions, key)))
        if g.reference_rate is not None and g.responder_boundaries is not None and not design.endpoint.higher_is_better:
            problems.append(Problem(f"{path}.responder_boundaries", "count responders; the endpoint must be "
                                    "higher_is_better", design.endpoint.direction))
    used = {a for g in st.groups for a in g.arms}
    unused = [a for a in arms if a not in used]
    if unused:
        problems.append(Problem("design.strata.groups", f"arms {unused} are in no group; every arm needs a group", unused))
    return problems


def pair_problems(design: Design, scenario: Scenario) -> list[Problem]:
    """Names that tie a design to a scenario must resolve."""
    return checked_pair(design, scenario)[0]


def checked_pair(design: Design, scenario: Scenario, patients=None):
    """The problems of a design under a scenario (see :func:`pair_problems`), and the design's
    strata compiled under the scenario on the way (a :class:`platform_sim.strata.StrataPlan`, or
    None for a design without strata or when names do not resolve). ``patients``: the scenario's
    :class:`platform_sim.outcomes.VirtualPatients`, when the caller has them (built here otherwise)."""
    problems: list[Problem] = []
    if design.endpoint.name not in scenario.endpoints:
        problems.append(
            Problem(
                "design.endpoint.name",
                f"scenario {scenario.name!r} defines no such endpoint; it has {sorted(scenario.endpoints)}",
                design.endpoint.name,
            )
        )
    endpoint = scenario.endpoints.get(design.endpoint.name)
    if endpoint is not None and endpoint.kind == "time_to_event" and design.platform is None:
        binary = sorted(n for n, e in scenario.endpoints.items() if e.kind != "time_to_event")
        problems.append(
            Problem(
                "design.endpoint.name",
                "is a time-to-event endpoint; designs decide on binary or landmark endpoints "
                f"(this scenario has {binary})",
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
    if problems:
        return problems, None
    if design.platform is not None:  # (its size does not depend on the strata: check before compiling them)
        problems.extend(_capacity_problems(design, scenario, None))
        if problems:
            return problems, None
    plan = None
    if design.strata is not None:
        plan, found = _checked_strata(design, scenario, patients)
        problems.extend(found)
        if plan is None:  # strata markers or levels the scenario does not define
            return problems, None
    if design.platform is None:
        problems.extend(_capacity_problems(design, scenario, plan))
    if design.platform is not None and not problems:
        from .timeline_checks import platform_pair_problems

        problems.extend(platform_pair_problems(design, scenario, plan))
    return problems, plan


def _checked_strata(design: Design, scenario: Scenario, patients=None):
    """The strata of a stratified design under a scenario (None when its names do not resolve) and
    their problems: unknown markers or levels, strata nobody can enter, overlapping sub-studies
    without a rule. The population and outcome models are built once (``patients``) and shared with
    the strata, which :func:`platform_sim.strata.checked_strata` would build again."""
    from ..outcomes import VirtualPatients
    from ..strata import compile_strata, name_problems

    vp = patients if patients is not None else VirtualPatients(scenario)
    problems = name_problems(design, vp.population)
    if problems:
        return None, problems
    with _one_blas_thread():
        plan = compile_strata(design, scenario, vp)
    st = design.strata
    for s, name in enumerate(plan.names):
        if plan.prevalence[s] <= 0:
            where = f"design.strata.groups[{s}]" if st.groups is not None else "design.strata.by"
            problems.append(Problem(where, f"stratum {name!r} has no eligible patients under scenario "
                                    f"{scenario.name!r} (prevalence 0 among randomizable patients)", name))
    if st.groups is not None and st.overlap is None and plan.overlap_share > 0:
        problems.append(Problem("design.strata.overlap", f"{plan.overlap_share:.1%} of patients match more than one "
                                "group under this scenario; say how to choose: 'priority' (first matching group) or "
                                "'random'", None))
    return plan, problems


def _one_blas_thread():
    """Run the block with one BLAS thread. Compiling strata makes a few hundred small array products
    (the exact median PFS per stratum and arm); a multi-threaded BLAS spins up its threads for each,
    which on a machine whose cores are busy made loading the platform design take 1-2 s instead of
    0.1 s. Uses threadpoolctl when it is installed (a no-op otherwise)."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _capacity_problems(design: Design, scenario: Scenario, plan) -> list[Problem]:
    """A trial the simulator cannot run under this scenario: more patients than it randomizes
    (MAX_PATIENTS) or screens (MAX_SCREENED), because of the design's size or duration, or because
    the scenario's screening funnel or the design's strata take very few of the screened patients."""
    from ..population import expected_funnel
    from .timeline_checks import expected_randomizable

    problems: list[Problem] = []
    funnel = expected_funnel(scenario.population)["randomized"]
    taken = 1.0 if plan is None else max(1.0 - plan.unclassified, 0.0)
    if not (funnel > 0 and taken > 0):  # reported with the scenario (funnel) or the strata (no patients)
        return problems
    pf = design.platform
    if pf is not None:
        path, value = "design.platform.max_duration_months", pf.max_duration_months
        expected = expected_randomizable(scenario.population, pf.max_duration_months)
        if not expected <= MAX_PATIENTS:
            problems.append(Problem(path, f"about {expected:.3g} patients would be randomized by month "
                                    f"{pf.max_duration_months:g} under scenario {scenario.name!r}; the simulator "
                                    f"runs at most {MAX_PATIENTS} patients per trial", value))
            return problems
        # every patient arriving by the maximum duration is drawn, and at least 64 randomizable ones
        randomizable = 1.2 * expected + 5.0 * math.sqrt(expected) + 64
    else:
        path, value = "design.looks.randomized_n", design.looks.max_n
        # a stratified trial scans past the patients its strata do not take
        randomizable = design.looks.max_n / taken * (1.0 if plan is None else 1.3) + (0 if plan is None else 128)
    screened = randomizable / funnel
    if not screened <= MAX_SCREENED:
        share = funnel * taken
        problems.append(Problem(path, f"a simulated trial would screen about {screened:.3g} patients under scenario "
                                f"{scenario.name!r}, which randomizes {share:.3g} of the patients screened"
                                f"{'' if plan is None else ' into its strata'}; the simulator screens at most "
                                f"{MAX_SCREENED} per trial", value))
    return problems
