"""Load-time checks of platform designs (config/timeline.py): on their own and under a scenario."""

from __future__ import annotations

from .base import MAX_ANALYSES, Problem
from .models import Design

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
    problems.extend(time_adjustment_problems(design))
    return problems


def time_adjustment_problems(design: Design) -> list[Problem]:
    """A period adjustment needs periods: with a single experimental arm the control randomizes
    exactly while that arm does, so there is one period and nothing to adjust."""
    pf = design.platform
    experimental = [a for a in design.arm_names if a != design.control]
    if pf.time_adjustment != "none" and len(experimental) < 2:
        return [Problem("design.platform.time_adjustment", f"{pf.time_adjustment} needs periods, the intervals between "
                        "the dates arms enter or leave; with one experimental arm the control randomizes exactly "
                        "while it does, so there is a single period; use time_adjustment: none",
                        pf.time_adjustment)]
    return []
