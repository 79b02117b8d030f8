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
        problems.append(
            Problem(
                "design.control",
                "a platform design compares every arm with a shared control; name the control arm",
                None,
            )
        )
    if len(arms) < 2:
        problems.append(Problem("design.arms", "needs the control and at least one experimental arm", arms))
    if design.randomization.method == "adaptive" and design.control_allocation is None:
        problems.append(
            Problem(
                "design.control_allocation",
                "an adaptive platform weights arms by P(better than "
                "control), which says nothing about the control itself; give its share, e.g. "
                "{rule: sqrt_k}",
                None,
            )
        )
    for i, a in enumerate(design.arms):
        if a.enter_months is None:
            continue
        if a.name == design.control and a.enter_months > 0:
            problems.append(
                Problem(f"design.arms[{i}].enter_months", "the shared control is open from the start", a.enter_months)
            )
        if a.enter_months >= pf.max_duration_months:
            problems.append(
                Problem(
                    f"design.arms[{i}].enter_months",
                    f"arm {a.name!r} would enter at {a.enter_months:g} months, not before the platform's maximum duration "
                    f"(platform.max_duration_months = {pf.max_duration_months:g})",
                    a.enter_months,
                )
            )
    assess = pf.assessment_weeks / WEEKS_PER_MONTH
    if pf.follow_up_months < assess:
        problems.append(
            Problem(
                "design.platform.assessment_weeks",
                f"an assessment every {pf.assessment_weeks:g} weeks ({assess:.2f} months) is longer than the follow-up "
                f"after enrolment stops (platform.follow_up_months = {pf.follow_up_months:g}); the last patients would "
                "never be assessed",
                pf.assessment_weeks,
            )
        )
    if assess >= pf.max_duration_months:
        problems.append(
            Problem(
                "design.platform.assessment_weeks",
                "the first assessment would come after the "
                f"platform's maximum duration ({pf.max_duration_months:g} months)",
                pf.assessment_weeks,
            )
        )
    it = pf.interims
    if it.trigger == "calendar" and it.first <= pf.max_duration_months:
        n_analyses = (pf.max_duration_months - it.first) / it.every_months + 1
        if n_analyses > MAX_ANALYSES:
            problems.append(
                Problem(
                    "design.platform.interims.every_months",
                    f"schedules about {n_analyses:.3g} analyses before the "
                    f"platform's maximum duration ({pf.max_duration_months:g} months); at most {MAX_ANALYSES} are "
                    "supported",
                    it.every_months,
                )
            )
    if it.trigger == "calendar" and it.first >= pf.max_duration_months + pf.follow_up_months:
        problems.append(
            Problem(
                "design.platform.interims",
                f"the first calendar analysis at {it.first:g} months can never fire: the "
                f"platform ends by {pf.max_duration_months + pf.follow_up_months:g} months (maximum duration plus "
                "follow-up)",
                it.first,
            )
        )
    caps = [a.max_n for a in design.arms]
    if it.every_enrolled is not None and all(c is not None for c in caps) and sum(caps) < it.every_enrolled:
        problems.append(
            Problem(
                "design.platform.interims.every_enrolled",
                f"can never fire: the arms' max_n add up to {sum(caps)} patients",
                it.every_enrolled,
            )
        )
    g = pf.graduation
    for i, a in enumerate(design.arms):
        if a.max_n is not None and a.name != design.control and g.min_n > a.max_n:
            problems.append(
                Problem(
                    "design.platform.graduation.min_n",
                    f"exceeds arm {a.name!r}'s max_n ({a.max_n}); that arm could never be decided",
                    g.min_n,
                )
            )
    for i, a in enumerate(design.arms):
        if a.closes_months is None:
            continue
        if a.name == design.control:
            problems.append(
                Problem(
                    f"design.arms[{i}].closes_months",
                    "the shared control stays open while any "
                    "experimental arm is open; close the experimental arms instead",
                    a.closes_months,
                )
            )
        elif a.closes_months <= (a.enter_months or 0.0):
            problems.append(
                Problem(
                    f"design.arms[{i}].closes_months",
                    f"arm {a.name!r} would close at "
                    f"{a.closes_months:g} months, not after it enters ({a.enter_months or 0.0:g})",
                    a.closes_months,
                )
            )
    problems.extend(_substudy_problems(design))
    if design.strata is not None:
        extra = [k for k in ("enrichment", "suspension", "borrowing") if getattr(design.strata, k, None) is not None]
        if design.strata.analysis != "independent" or extra:
            problems.append(
                Problem(
                    "design.strata",
                    f"a platform design analyses strata independently; remove {extra or ['analysis: hierarchical']}",
                    None,
                )
            )
    if g.signatures is not None and design.strata is None:
        problems.append(
            Problem(
                "design.platform.graduation.signatures",
                "signatures are unions of strata; the design has no strata",
                list(g.signatures),
            )
        )
    problems.extend(time_adjustment_problems(design))
    return problems


def _substudy_problems(design: Design) -> list[Problem]:
    """Sub-studies (strata groups) of a platform: each randomizes its own experimental arms against
    the shared control, opens and closes on dates or triggers inside the platform's calendar, and
    the queue names sub-studies."""
    pf = design.platform
    st = design.strata
    groups = st.groups if st is not None else None
    problems: list[Problem] = []
    if groups is None:
        if pf.queue is not None:
            problems.append(
                Problem(
                    "design.platform.queue",
                    "names sub-studies, but the design has none (give "
                    "strata.groups); without sub-studies arms open in the order listed",
                    pf.queue,
                )
            )
        return problems
    names = [g.name for g in groups]
    for j, q in enumerate(pf.queue or []):
        if q not in names:
            problems.append(
                Problem(
                    f"design.platform.queue[{j}]",
                    f"{q!r} is not a sub-study of this design; its sub-studies are {names}",
                    q,
                )
            )
    if pf.queue is not None:
        twice = sorted({q for q in pf.queue if pf.queue.count(q) > 1})
        if twice:
            problems.append(Problem("design.platform.queue", f"lists {twice} more than once", twice))
        if pf.max_open_arms is None:
            problems.append(
                Problem("design.platform.queue", "a queue waits for a free slot; give platform.max_open_arms", pf.queue)
            )
    if pf.graduation.signatures is not None:
        problems.append(
            Problem(
                "design.platform.graduation.signatures",
                "with sub-studies each arm graduates in its "
                "own sub-study against that sub-study's controls; remove signatures",
                list(pf.graduation.signatures),
            )
        )
    if st.overlap == "random":
        problems.append(
            Problem(
                "design.strata.overlap",
                "a platform routes a patient to the first open sub-study they match; use overlap: priority",
                st.overlap,
            )
        )
    owner: dict[str, str] = {}
    for i, g in enumerate(groups):
        at = f"design.strata.groups[{i}]"
        if names.index(g.name) != i:
            problems.append(
                Problem(
                    f"{at}.name",
                    f"sub-study name {g.name!r} is already used by "
                    f"strata.groups[{names.index(g.name)}]; names must be unique",
                    g.name,
                )
            )
        unknown = [a for a in g.arms if a not in design.arm_names]
        if unknown:
            problems.append(
                Problem(
                    f"{at}.arms",
                    f"{unknown} are not arms of this design; its arms are {list(design.arm_names)}",
                    unknown,
                )
            )
        for key in ("max_n", "looks", "reference_rate", "responder_boundaries"):
            if getattr(g, key) is not None:
                problems.append(
                    Problem(
                        f"{at}.{key}",
                        "a platform sub-study randomizes against the shared control "
                        "and is capped by its arms' max_n; remove it (single-arm and staged "
                        "sub-studies run without a platform section)",
                        getattr(g, key),
                    )
                )
        if design.control is not None and design.control not in g.arms:
            problems.append(
                Problem(
                    f"{at}.arms",
                    f"sub-study {g.name!r} must randomize against the shared control "
                    f"{design.control!r}; list it among its arms",
                    g.arms,
                )
            )
        experimental = [a for a in g.arms if a != design.control]
        if not experimental:
            problems.append(Problem(f"{at}.arms", f"sub-study {g.name!r} has no experimental arm", g.arms))
        for a in experimental:
            if a in owner:
                problems.append(
                    Problem(
                        f"{at}.arms",
                        f"arm {a!r} is already in sub-study {owner[a]!r}; in a platform "
                        "each experimental arm belongs to one sub-study",
                        a,
                    )
                )
            owner.setdefault(a, g.name)
        opens = g.opens_months if g.opens_months is not None else 0.0
        if g.opens_months is not None and g.opens_months >= pf.max_duration_months:
            problems.append(
                Problem(
                    f"{at}.opens_months",
                    f"sub-study {g.name!r} would open at {g.opens_months:g} "
                    f"months, not before the platform's maximum duration "
                    f"(platform.max_duration_months = {pf.max_duration_months:g})",
                    g.opens_months,
                )
            )
        if g.closes_months is not None and g.closes_months <= opens:
            problems.append(
                Problem(
                    f"{at}.closes_months",
                    f"sub-study {g.name!r} would close at {g.closes_months:g} months, not after it opens ({opens:g})",
                    g.closes_months,
                )
            )
        after = g.opens_after
        if after is not None and after.closed is not None:
            if after.closed not in names:
                problems.append(
                    Problem(
                        f"{at}.opens_after.closed",
                        f"{after.closed!r} is not a sub-study of this design; its sub-studies are {names}",
                        after.closed,
                    )
                )
            elif after.closed == g.name:
                problems.append(
                    Problem(f"{at}.opens_after.closed", "a sub-study cannot wait for itself to close", after.closed)
                )
    for k, a in enumerate(design.arms):
        if a.name != design.control and a.name not in owner:
            problems.append(
                Problem(
                    f"design.arms[{k}]",
                    f"arm {a.name!r} is in no sub-study, so no patient could be "
                    "randomized to it; list it in one of strata.groups",
                    a.name,
                )
            )
    problems.extend(_waits_problems(groups))
    return problems


def _waits_problems(groups) -> list[Problem]:
    """Sub-studies that wait for each other to close in a circle would never open."""
    after = {g.name: g.opens_after.closed for g in groups if g.opens_after is not None and g.opens_after.closed}
    for start in after:
        seen, name = [start], after[start]
        while name in after and name not in seen:
            seen.append(name)
            name = after[name]
        if name == start and len(seen) > 1:
            i = [g.name for g in groups].index(start)
            return [
                Problem(
                    f"design.strata.groups[{i}].opens_after.closed",
                    "sub-studies wait for each other to "
                    f"close in a circle ({' -> '.join(seen + [start])}); none of them would ever open",
                    start,
                )
            ]
    return []


def time_adjustment_problems(design: Design) -> list[Problem]:
    """A period adjustment needs periods: with a single experimental arm the control randomizes
    exactly while that arm does, so there is one period and nothing to adjust."""
    pf = design.platform
    experimental = [a for a in design.arm_names if a != design.control]
    if pf.time_adjustment != "none" and len(experimental) < 2:
        return [
            Problem(
                "design.platform.time_adjustment",
                f"{pf.time_adjustment} needs periods, the intervals between "
                "the dates arms enter or leave; with one experimental arm the control randomizes exactly "
                "while it does, so there is a single period; use time_adjustment: none",
                pf.time_adjustment,
            )
        ]
    if pf.time_adjustment != "none" and design.strata is not None and design.strata.groups is not None:
        return [
            Problem(
                "design.platform.time_adjustment",
                f"{pf.time_adjustment} fits one period model to every "
                "arm and the shared control, whereas with sub-studies (strata.groups) each arm is compared "
                "with its own sub-study's control patients; the period adjustment of sub-studies is not "
                "available: use time_adjustment: none",
                pf.time_adjustment,
            )
        ]
    return []
