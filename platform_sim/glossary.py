"""The one table of words for the code names a user meets: the label a report or the terminal shows
for each metric, column, stop reason, arm status, truth role and table level, and what it means.

Every table the package prints or draws takes its words from here (:func:`label`, :func:`short`),
and a report's glossary from :func:`term`, so a name has one label wherever it appears. Names are
grouped by kind, because one name can mean two things: ``n`` is a metric (patients) and a column
of ``oc.csv`` (the simulated trials counted), ``control`` an arm status and a truth role.

Names built from a pattern are read from the pattern: ``mean_<m>``, ``sd_<m>`` and ``<m>_q05`` ...
(the summaries of a per-trial count ``<m>``), ``p_stop_<reason>``, ``p_no_selection_<s>``,
``p_selected_<s>``, ``bias_<x>``, ``rmse_<x>`` and ``idp_<s>`` (``<s>``: a selection strategy,
``<x>``: a strategy or a final estimate), ``p_efficacy_look_<k>``, ``p_futility_look_<k>`` and
``month_of_look_<k>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KINDS", "TERMS", "Term", "label", "short", "term"]


@dataclass(frozen=True)
class Term:
    """What a code name means: ``label``, the words a table shows for it; ``meaning``, its
    definition in a sentence; ``short``, the words of a figure panel or a narrow column (the label
    when None)."""

    label: str
    meaning: str
    short: str | None = None


#: What each kind of name is, in a reader's words (the glossary's second column).
KINDS = {
    "metric": "operating characteristic",
    "column": "column of oc.csv",
    "level": "level of oc.csv (column level)",
    "stop": "reason a trial stopped",
    "status": "final status of an arm",
    "role": "truth of an arm in a subgroup",
    "selection": "arm-selection strategy",
    "estimate": "final estimate",
    "endpoint": "kind of endpoint",
}

_METRICS = {
    # trial level
    "p_any_claim": Term("P(any claim)", "at least one arm claimed effective, in any subgroup"),
    "fwer": Term(
        "FWER (any false claim)",
        "family-wise error rate: at least one arm claimed effective in a subgroup "
        "where it is no better than its reference (NA when no arm is null anywhere)",
        "FWER",
    ),
    "power": Term(
        "power (any true claim)",
        "at least one arm claimed effective in a subgroup where it works "
        "(disjunctive power; NA when no arm works anywhere)",
        "power",
    ),
    "p_correct_finding": Term(
        "P(correct finding)",
        "no false claim, and every working arm claimed: in every subgroup "
        "where it works when the subgroups do not overlap, in one of them when they do",
    ),
    "n_randomized": Term("patients randomized", "patients randomized in a trial"),
    "n_screened": Term("patients screened", "patients screened in a trial"),
    "n_not_randomized": Term("patients screened, not randomized", "patients screened but not randomized"),
    "n_lost_in_screening": Term(
        "patients lost in screening",
        "screen failures, patients lost while waiting for their biomarker results, and ineligible patients",
    ),
    "n_not_assigned": Term(
        "patients no open sub-study took", "eligible patients whom no open stratum, sub-study or arm took"
    ),
    "n_assayed": Term(
        "patients tested for biomarkers",
        "patients whose biomarkers were tested (designs that need a result before randomizing)",
    ),
    "duration_months": Term(
        "trial duration (months)", "months from the opening to the last analysis", "duration (months)"
    ),
    "months_to_first_claim": Term(
        "months to the first claim", "months from the opening to the first claim, over the trials with one"
    ),
    "months_to_first_true_claim": Term(
        "months to the first true claim",
        "months from the opening to the first claim where the arm works, over the trials with one",
        "months to first true claim",
    ),
    "n_on_effective_arms": Term(
        "patients on effective arms", "patients randomized to an arm that works in their stratum"
    ),
    "n_on_null_arms": Term(
        "patients on null arms", "patients randomized to an arm that is no better than its reference in their stratum"
    ),
    "share_on_effective_arms": Term(
        "share of experimental patients on effective arms",
        "of the patients randomized to experimental arms, the share on an arm that works in their stratum",
    ),
    "n_on_effective": Term(
        "patients on a treatment that works for them",
        "patients randomized to a treatment that works in their subgroup",
        "patients on effective treatment",
    ),
    "n_on_ineffective": Term(
        "patients on a treatment no better than the standard of care for them",
        "patients randomized to a treatment no better than the standard of care in their subgroup",
    ),
    "n_on_control": Term("patients on the standard of care", "patients randomized to the standard of care"),
    "responders": Term("patients with the endpoint's event", "endpoint events among the randomized patients"),
    "expected_responders": Term(
        "expected patients with the endpoint's event",
        "expected patients with the yardstick endpoint's event (binary and landmark endpoints)",
    ),
    "cost": Term(
        "cost (millions)",
        "assay cost of the screened patients plus the cost of the randomized patients, in "
        "millions of the scenario's currency",
    ),
    "p_stopped_early": Term("P(stopped early)", "the trial stopped before its last planned analysis"),
    "p_inconclusive_at_max": Term(
        "P(inconclusive at the maximum)", "the trial reached its last analysis with no arm declared superior"
    ),
    "n_looks": Term("analyses", "interim and final analyses the trial held"),
    "enrolment_months": Term("months of enrolment", "months from the opening until enrolment ended"),
    "arms_evaluated": Term("arms evaluated", "experimental arms that entered the platform"),
    "events_at_stop": Term("events at stopping", "endpoint events counted at the analysis where the trial stopped"),
    "p_shortfall": Term(
        "P(event shortfall)",
        "some planned analysis never reached its number of events, so it was "
        "held when the last patient's follow-up ended",
    ),
    "p_go": Term(
        "P(go at phase II)", "a seamless design passed its phase II go/no-go analysis and went on to phase III"
    ),
    "month_of_phase2": Term(
        "month of the phase II analysis", "calendar month of the phase II go/no-go analysis of a seamless design"
    ),
    "p_phase2_shortfall": Term(
        "P(phase II event shortfall)",
        "the phase II analysis never reached its number of "
        "events, so it was held when the last patient's follow-up ended",
    ),
    "p_efficacy_without_gate": Term(
        "P(efficacy without the gate)",
        "the phase III analyses would have claimed efficacy had every trial gone on past the phase II analysis",
    ),
    "rebiopsied_at_stop": Term(
        "re-biopsied at stopping", "patients with an on-treatment biopsy result at the analysis where the trial stopped"
    ),
    "on_treatment_positive_at_stop": Term(
        "on-treatment marker positive at stopping",
        "re-biopsied patients whose on-treatment marker was positive, at the analysis where the trial stopped",
    ),
    "p_false_claim": Term("P(false claim)", "the treatment claimed in at least one subgroup where it is null"),
    # arm level
    "p_claimed": Term(
        "P(claimed effective)",
        "the arm claimed effective: at the arm level in at least one subgroup; "
        "in an arm x subgroup row, in that subgroup (power where it works there, a false-positive rate "
        "where it is null)",
        "P(claimed)",
    ),
    "p_effective": Term("P(declared effective)", "the arm's final status is effective (superior, or graduated)"),
    "p_inferior": Term("P(dropped as inferior)", "the arm was dropped as inferior"),
    "p_futile": Term("P(dropped for futility)", "the arm was dropped for futility"),
    "p_equivalent": Term("P(dropped as equivalent)", "the arm was dropped as equivalent to the control"),
    "p_dropped": Term("P(dropped)", "the arm was dropped as inferior or for futility"),
    "p_active_at_end": Term(
        "P(still randomizing at the end)", "the arm was still randomizing (or the control) when the trial ended"
    ),
    "n": Term("patients", "patients randomized to the arm (an arm x subgroup row: of the subgroup)"),
    "alloc_share": Term("allocation share", "the arm's share of the patients the trial randomized"),
    "events": Term("endpoint events", "endpoint events among the arm's patients"),
    "p_entered": Term("P(entered)", "the arm entered the platform before it closed"),
    "entered_month": Term("month entered", "calendar month at which the arm entered, over the trials where it did"),
    "months_to_decision": Term("months to decision", "months from the arm's entry to its graduation or its dropping"),
    "p_reject_concurrent": Term(
        "P(final test rejects), concurrent controls",
        "the arm's final test against the control patients randomized while it was open rejects the null hypothesis",
    ),
    "p_reject_all": Term(
        "P(final test rejects), all controls",
        "the arm's final test against every control patient rejects the null hypothesis",
    ),
}

_COLUMNS = {
    "level": Term("level", "what a row describes: the trial, an arm, or an arm in a subgroup"),
    "arm": Term("arm", "the arm of the design (empty for a trial-level row)"),
    "subgroup": Term("subgroup", "the subgroup of an arm x subgroup row (empty otherwise)"),
    "metric": Term("code", "the code name of the operating characteristic"),
    "value": Term("value", "the estimate: the mean over the simulated trials, or a summary of them"),
    "mcse": Term("MCSE", "Monte Carlo standard error of the value"),
    "lower": Term("lower 95%", "lower end of the 95% interval (Jeffreys for proportions, value - 1.96 MCSE otherwise)"),
    "upper": Term("upper 95%", "upper end of the 95% interval"),
    "n": Term(
        "trials counted",
        "simulated trials with a value (for example those with a claim, for the months to the first claim)",
    ),
    "spec_hash": Term("spec hash", "fingerprint of every design and scenario value that can change a result"),
}

_LEVELS = {
    "trial": Term("trial", "one value per simulated trial"),
    "arm": Term("arm", "one value per arm and simulated trial"),
    "subgroup": Term("arm x subgroup", "one value per arm, subgroup and simulated trial"),
    "drug": Term("treatment", "one value per treatment and simulated trial (comparison.csv)"),
}

_STOPS = {
    "max": Term("reached the last look", "the trial ran to its last planned look"),
    "superiority": Term("superiority", "an arm was declared superior"),
    "equivalence": Term("equivalence", "the arms were declared equivalent"),
    "arms_dropped": Term("comparators dropped", "every comparator of the control was dropped"),
    "final": Term("final analysis", "the trial ran to its final analysis"),
    "efficacy": Term("efficacy", "an interim analysis crossed the efficacy boundary"),
    "futility": Term("futility", "an interim analysis crossed the futility boundary"),
    "max_duration": Term("maximum duration", "the platform reached its maximum duration"),
    "no_arms_left": Term("no arms left", "no experimental arm was left to randomize to and none was waiting"),
    "stage_1_futility": Term("stage 1 futility", "too few responses in stage 1: the trial stopped for futility"),
    "end": Term("end of stage 2", "the trial completed stage 2"),
}

_STATUSES = {
    "active": Term("still in", "still randomizing, undecided, when the trial ended"),
    "control": Term("control", "the control arm"),
    "effective": Term("claimed effective", "declared effective (superior, or graduated)"),
    "inferior": Term("inferior", "dropped as inferior"),
    "futile": Term("futile", "dropped for futility"),
    "equivalent": Term("equivalent", "dropped as equivalent to the control"),
    "not_entered": Term("never entered", "never randomized (not in the stratum, or never entered the platform)"),
}

_ROLES = {
    "works": Term("works", "the arm's true effect reaches the clinically relevant size: a claim is a true positive"),
    "null": Term("null", "the arm is no better than its reference: a claim is a false positive"),
    "grey zone": Term(
        "grey zone", "better than its reference, but by less than the relevant size: a claim is neither true nor false"
    ),
    "control": Term("control", "the reference arm"),
    "not in subgroup": Term("not in subgroup", "the arm takes no patients of the subgroup"),
}

_SELECTIONS = {
    "superior_or_none": Term(
        "the superior arm, else none",
        "the arm declared superior (the highest final P(best) "
        "among several), else the final control if it was itself declared superior, else no "
        "selection",
    ),
    "best_remaining": Term(
        "the best remaining arm",
        "the superior arm if any, else the arm with the highest final P(best) among those still in the trial",
    ),
    "control_if_active": Term(
        "the control unless beaten", "the superior arm if any, else the final control if it is still in the trial"
    ),
}

_ESTIMATES = {
    "rate": Term("rate estimate", "the arm's final estimate of its response rate"),
    "log_hazard_ratio": Term(
        "log hazard ratio estimate", "the final estimate of the arm's log hazard ratio against the control"
    ),
    "effect_concurrent": Term(
        "effect, concurrent controls",
        "the arm's final posterior mean effect against the controls randomized while it was open",
    ),
    "effect_all": Term("effect, all controls", "the arm's final posterior mean effect against every control"),
    "effect_at_decision": Term(
        "effect at decision", "the arm's posterior mean effect when it graduated or was dropped"
    ),
    "final_estimate": Term(
        "final estimate", "the arm's final posterior estimate of its own value (median PFS in months, or response rate)"
    ),
}

_ENDPOINTS = {
    "binary": Term("binary", "a patient responds or not (for example objective response)"),
    "time_to_event": Term(
        "time to event",
        "months from randomization to an event, censored at the end of "
        "follow-up (for example progression-free survival)",
    ),
    "landmark": Term(
        "landmark", "event-free at a fixed time after randomization (a binary endpoint read from a time to event)"
    ),
}

#: Every code name by kind (see :data:`KINDS`): its :class:`Term`.
TERMS: dict[str, dict[str, Term]] = {
    "metric": _METRICS,
    "column": _COLUMNS,
    "level": _LEVELS,
    "stop": _STOPS,
    "status": _STATUSES,
    "role": _ROLES,
    "selection": _SELECTIONS,
    "estimate": _ESTIMATES,
    "endpoint": _ENDPOINTS,
}

_QUANTILE = re.compile(r"^(?P<base>.+)_q(?P<q>\d\d)$")
_LOOK = re.compile(r"^(?P<what>p_efficacy|p_futility|month_of)_look_(?P<k>\d+)$")


def _pattern(code: str) -> Term | None:
    """The term of a metric name built from a pattern (see the module docstring), or None."""
    if code.startswith(("mean_", "sd_")):
        what, base = code.split("_", 1)
        t = _METRICS.get(base)
        if t is not None:
            if what == "mean":
                return Term(
                    f"mean {t.label}", f"mean over the simulated trials of: {t.meaning}", f"mean {t.short or t.label}"
                )
            return Term(f"SD of {t.label}", f"standard deviation over the simulated trials of: {t.meaning}")
    m = _QUANTILE.match(code)
    if m and m["base"] in _METRICS:
        t, q = _METRICS[m["base"]], int(m["q"])
        return Term(f"{t.label}, {q}th percentile", f"the {q}th percentile over the simulated trials of: {t.meaning}")
    if code.startswith("p_stop_") and code[7:] in _STOPS:
        t = _STOPS[code[7:]]
        return Term(f"P(stopped: {t.label})", f"the trial stopped because {t.meaning}")
    if code.startswith("p_no_selection_") and code[15:] in _SELECTIONS:
        t = _SELECTIONS[code[15:]]
        return Term(f"P(no arm selected), {t.label}", f"strategy '{t.label}' ({t.meaning}) selects no arm")
    if code.startswith("p_selected_") and code[11:] in _SELECTIONS:
        t = _SELECTIONS[code[11:]]
        return Term(f"P(selected), {t.label}", f"strategy '{t.label}' ({t.meaning}) selects the arm")
    for prefix, words, error in (("bias_", "bias", "mean error"), ("rmse_", "RMSE", "root mean squared error")):
        name = code[len(prefix) :]
        if code.startswith(prefix) and name in _SELECTIONS:
            t = _SELECTIONS[name]
            return Term(
                f"{words} of the selected arm's rate, {t.label}",
                f"{error} of the final rate estimate of the "
                f"arm that strategy '{t.label}' selects ({t.meaning}), against its true rate",
            )
        if code.startswith(prefix) and name in _ESTIMATES:
            t = _ESTIMATES[name]
            return Term(f"{words} of the {t.label}", f"{error} of {t.meaning}, against its true value")
    if code.startswith("idp_") and code[4:] in _SELECTIONS:
        t = _SELECTIONS[code[4:]]
        return Term(
            f"ideal design percentage, {t.label}",
            f"100 when the truly best arm is always selected, 0 when the worst is (strategy: {t.meaning})",
        )
    m = _LOOK.match(code)
    if m:
        k = int(m["k"])
        return {
            "p_efficacy": Term(f"P(efficacy at look {k})", f"the trial stopped for efficacy at look {k}"),
            "p_futility": Term(f"P(futility at look {k})", f"the trial stopped for futility at look {k}"),
            "month_of": Term(f"month of look {k}", f"calendar month of look {k}, had the trial gone on to it"),
        }[m["what"]]
    return None


def term(code: str, kind: str = "metric") -> Term | None:
    """The :class:`Term` of ``code`` as a name of ``kind`` (a key of :data:`KINDS`), or None when the
    glossary does not know it."""
    if kind not in TERMS:
        raise ValueError(f"unknown kind of name {kind!r}: one of {', '.join(TERMS)}")
    found = TERMS[kind].get(code)
    if found is None and kind == "metric":  # a final estimate is also a metric (its mean) of oc.csv
        found = _ESTIMATES.get(code) or _pattern(code)
    return found


def label(code: str, kind: str = "metric") -> str:
    """The words a table shows for ``code`` (``code`` itself when the glossary does not know it)."""
    t = term(code, kind)
    return code if t is None else t.label


def short(code: str, kind: str = "metric") -> str:
    """The words of a figure panel or a narrow column for ``code``: its short label, else its label."""
    t = term(code, kind)
    return code if t is None else (t.short or t.label)
