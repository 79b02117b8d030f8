"""Load-time checks of platform designs (config/timeline.py): on their own and under a scenario."""

from __future__ import annotations

from .base import MAX_ANALYSES
from .crosscheck import Problem
from .models import Design
from .scenario import Scenario

WEEKS_PER_MONTH = 30.4375 / 7.0


def platform_design_problems(design: Design) -> list[Problem]:
    pf = design.platform
    problems: list[Problem] = []
    arms = design.arm_names
    if design.control is None:
        problems.append(Problem("design.control", "a platform design compares every arm with a shared control; "
                                "name the control arm", None))
    if len(arms) < 2:
        problems.append(Problem("design.arms", "needs the control and at least one experimental arm", arms))
    if design.randomization.method == "adaptive" and design.control_allocation is None:
        problems.append(Problem("design.control_allocation", "an adaptive platform weights arms by P(better than "
                                "control), which says nothing about the control itself; give its share, e.g. "
                                "{rule: sqrt_k}", None))
    for i, a in enumerate(design.arms):
        if a.enter_months is None:
            continue
        if a.name == design.control and a.enter_months > 0:
            problems.append(Problem(f"design.arms[{i}].enter_months", "the shared control is open from the start",
                                    a.enter_months))
        if a.enter_months >= pf.max_duration_months:
            problems.append(Problem(
                f"design.arms[{i}].enter_months",
                f"arm {a.name!r} would enter at {a.enter_months:g} months, not before the platform's maximum duration "
                f"(platform.max_duration_months = {pf.max_duration_months:g})", a.enter_months))
    assess = pf.assessment_weeks / WEEKS_PER_MONTH
    if pf.follow_up_months < assess:
        problems.append(Problem(
            "design.platform.assessment_weeks",
            f"an assessment every {pf.assessment_weeks:g} weeks ({assess:.2f} months) is longer than the follow-up "
            f"after enrolment stops (platform.follow_up_months = {pf.follow_up_months:g}); the last patients would "
            "never be assessed", pf.assessment_weeks))
    if assess >= pf.max_duration_months:
        problems.append(Problem("design.platform.assessment_weeks", "the first assessment would come after the "
                                f"platform's maximum duration ({pf.max_duration_months:g} months)", pf.assessment_weeks))
    it = pf.interims
    if it.trigger == "calendar" and it.first <= pf.max_duration_months:
        n_analyses = (pf.max_duration_months - it.first) / it.every_months + 1
        if n_analyses > MAX_ANALYSES:
            problems.append(Problem(
                "design.platform.interims.every_months", f"schedules about {n_analyses:.3g} analyses before the "
                f"platform's maximum duration ({pf.max_duration_months:g} months); at most {MAX_ANALYSES} are "
                "supported", it.every_months))
    if it.trigger == "calendar" and it.first >= pf.max_duration_months + pf.follow_up_months:
        problems.append(Problem(
            "design.platform.interims", f"the first calendar analysis at {it.first:g} months can never fire: the "
            f"platform ends by {pf.max_duration_months + pf.follow_up_months:g} months (maximum duration plus "
            "follow-up)", it.first))
    caps = [a.max_n for a in design.arms]
    if it.every_enrolled is not None and all(c is not None for c in caps) and sum(caps) < it.every_enrolled:
        problems.append(Problem("design.platform.interims.every_enrolled", f"can never fire: the arms' max_n add up "
                                f"to {sum(caps)} patients", it.every_enrolled))
    g = pf.graduation
    for i, a in enumerate(design.arms):
        if a.max_n is not None and a.name != design.control and g.min_n > a.max_n:
            problems.append(Problem("design.platform.graduation.min_n", f"exceeds arm {a.name!r}'s max_n ({a.max_n}); "
                                    "that arm could never be decided", g.min_n))
    if design.strata is not None:
        if design.strata.by is None:
            problems.append(Problem("design.strata", "a platform design stratifies with strata.by (every arm in "
                                    "every stratum); sub-study groups are not supported over calendar time", None))
        extra = [k for k in ("enrichment", "suspension", "borrowing") if getattr(design.strata, k, None) is not None]
        if design.strata.analysis != "independent" or extra:
            problems.append(Problem("design.strata", "a platform design analyses strata independently; remove "
                                    f"{extra or ['analysis: hierarchical']}", None))
    if g.signatures is not None and design.strata is None:
        problems.append(Problem("design.platform.graduation.signatures", "signatures are unions of strata; the design "
                                "has no strata", list(g.signatures)))
    return problems


def expected_randomizable(population, months: float) -> float:
    """Expected patients passing screening by ``months`` after opening (exact accrual integral x funnel)."""
    from ..population import expected_funnel

    total = 0.0
    for region in population.accrual.region_list.values():
        t = max(months - region.start_month, 0.0)
        ramp = region.ramp_up_months
        if ramp > 0 and t < ramp:
            total += region.rate_per_month * t * t / (2.0 * ramp)
        else:
            total += region.rate_per_month * (t - ramp / 2.0)
    return total * expected_funnel(population)["randomized"]


def platform_pair_problems(design: Design, scenario: Scenario, plan=None) -> list[Problem]:
    """Checks that need the scenario: endpoint, signatures' strata, triggers that can never fire."""
    problems: list[Problem] = []
    pf = design.platform
    ep = scenario.endpoints[design.endpoint.name]
    if ep.kind == "time_to_event":
        if pf.hazard_prior is None:
            problems.append(Problem("design.platform.hazard_prior", "a time-to-event endpoint needs a gamma prior on "
                                    "the hazard, e.g. {shape: 1, rate: 4}", None))
        if not design.endpoint.higher_is_better:
            problems.append(Problem("design.endpoint.direction", "longer progression-free survival is better; use "
                                    "higher_is_better", design.endpoint.direction))
    else:
        if design.prior is None:
            problems.append(Problem("design.prior", f"endpoint {design.endpoint.name!r} is {ep.kind}; it needs a beta "
                                    "prior {a, b}", None))
        if pf.hazard_prior is not None:
            problems.append(Problem("design.platform.hazard_prior", f"endpoint {design.endpoint.name!r} is {ep.kind}, "
                                    "not time-to-event; use prior {a, b}", None))
        if ep.kind == "landmark" and pf.follow_up_months < ep.weeks / WEEKS_PER_MONTH:
            problems.append(Problem(
                "design.platform.follow_up_months", f"the {design.endpoint.name!r} outcome is read at week "
                f"{ep.weeks:g} ({ep.weeks / WEEKS_PER_MONTH:.2f} months), after the follow-up; the last patients would "
                "never have an outcome", pf.follow_up_months))
    if plan is not None and pf.graduation.signatures is not None:
        for name, strata in pf.graduation.signatures.items():
            bad = [s for s in strata if s not in plan.names]
            if bad:
                problems.append(Problem(f"design.platform.graduation.signatures.{name}", f"{bad} are not strata of "
                                        f"this design; its strata are {list(plan.names)}", bad))
    it = pf.interims
    count = it.every_enrolled or it.every_observed or 0
    need = max(count, it.min_new_outcomes)
    if need:
        share = 1.0 if plan is None else max(1.0 - plan.unclassified, 0.0)
        expected = expected_randomizable(scenario.population, pf.max_duration_months) * share
        field = ("every_enrolled" if it.every_enrolled else "every_observed") if count >= it.min_new_outcomes \
            else "min_new_outcomes"
        if need > expected:
            problems.append(Problem(
                f"design.platform.interims.{field}", f"can never fire in practice: {need} patients or outcomes are "
                f"needed but only {expected:.0f} patients are expected to be randomized by the maximum duration "
                f"({pf.max_duration_months:g} months) under scenario {scenario.name!r}", need))
    return problems
