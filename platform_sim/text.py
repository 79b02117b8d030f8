"""Operating characteristics as plain text for the terminal: the same tidy table for every design.

Estimates are shown as ``value ± MCSE``. A proportion of 0 or 1 has no useful MCSE,
so it is shown with the far end of its Jeffreys interval instead (``0.000 (≤ 0.0012)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .glossary import label, short
from .oc import Estimates

if TYPE_CHECKING:
    import pandas as pd

_NA = (np.nan, np.nan, np.nan, np.nan)

__all__ = ["estimate", "format_run"]

_ARM_METRICS = (
    "p_claimed",
    "p_dropped",
    "p_equivalent",
    "p_entered",
    "mean_n",
    "alloc_share",
    "entered_month",
    "months_to_decision",
    "p_reject_concurrent",
    "p_reject_all",
)
_TRIAL_METRICS = (
    "p_any_claim",
    "fwer",
    "power",
    "p_correct_finding",
    "mean_n_randomized",
    "n_screened",
    "duration_months",
    "months_to_first_claim",
    "n_on_effective_arms",
    "n_on_null_arms",
    "p_stopped_early",
    "p_inconclusive_at_max",
    "n_looks",
    "enrolment_months",
    "arms_evaluated",
    "n_not_assigned",
    "n_lost_in_screening",
    "bias_best_remaining",
    "rmse_best_remaining",
    "idp_best_remaining",
)


def _is_proportion(metric: str) -> bool:
    return metric.startswith("p_") or metric in ("fwer", "power")


def _digits(metric: str, digits: int) -> int:
    return (
        digits if _is_proportion(metric) or metric in ("alloc_share",) or metric.startswith(("bias_", "rmse_")) else 1
    )


def estimate(value, mcse, lower=np.nan, upper=np.nan, digits: int = 3, proportion: bool = False) -> str:
    """``value ± mcse`` (NA when there is no value); a proportion at 0 or 1 shows its interval's far end."""
    if value is None or not np.isfinite(value):
        return "NA"
    if proportion and value <= 0 and np.isfinite(upper):
        return f"{value:.{digits}f} (≤ {upper:.2g})"
    if proportion and value >= 1 and np.isfinite(lower):
        return f"{value:.{digits}f} (≥ {lower:.4g})"
    if mcse is None or not np.isfinite(mcse):
        return f"{value:.{digits}f}"
    if 0 < mcse < 0.5 * 10.0**-digits:  # more decimals, so that the error never reads as ± 0.0
        digits = min(int(np.ceil(-np.log10(mcse))), 6)
    return f"{value:.{digits}f} ± {mcse:.{digits}f}"


def _positive(value) -> bool:
    return value is not None and value > 0


def _from(cells: dict, metrics: set[str], arm: str, subgroup: str, metric: str, digits: int) -> str:
    """``metric`` of one arm (x subgroup) as :func:`estimate` writes it: NA where the arm has no value
    of a metric that others have, nothing where no row of the table has the metric."""
    if metric not in metrics:
        return ""
    value, mcse, lower, upper = cells.get((arm, subgroup, metric), _NA)[:4]
    return estimate(value, mcse, lower, upper, _digits(metric, digits), _is_proportion(metric))


def _lines(header: list[str], body: list[list[str]], left: int = 1) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in body]


def format_run(spec, table: Estimates | pd.DataFrame, digits: int = 3) -> str:
    """A run's OC table (:func:`platform_sim.oc.estimates`, or the tidy table of
    :func:`platform_sim.oc.frame`) as text: the arms, the arms by subgroup (designs with strata or
    signatures), then the trial."""
    oc = Estimates.of(table)
    truth = spec.truth
    d = spec.design
    trial = {metric: row for (_, _, metric), row in oc.index("trial").items()}
    n_trials = int(trial["p_any_claim"][4])
    direction = "higher is better" if d.endpoint.higher_is_better else "lower is better"
    out = [
        f"design {d.name} on scenario {spec.scenario.name}: {n_trials} simulated trials "
        f"({spec.family.title}; endpoint {d.endpoint.name}, {direction}; value ± Monte Carlo SE)",
        "",
    ]
    arms = oc.index("arm")
    arm_metrics = {metric for _, _, metric in arms}
    names = list(truth.arms)
    control = truth.control
    body = []
    for m in _ARM_METRICS:
        if m not in arm_metrics:
            continue
        if m == "p_equivalent" and not any(_positive(arms.get((a, "", m), _NA)[0]) for a in names):
            continue
        skip_control = m in (
            "p_claimed",
            "p_entered",
            "entered_month",
            "months_to_decision",
            "p_reject_concurrent",
            "p_reject_all",
        )
        body.append(
            [label(m)]
            + [
                "" if skip_control and k == control else _from(arms, arm_metrics, a, "", m, digits)
                for k, a in enumerate(names)
            ]
        )
    if truth.membership.all(axis=1).any():  # the truth among all patients (else: by subgroup, below)
        g = truth.all_patients
        body.append(
            [f"true {truth.value_name}"] + [f"{v:.{digits}f}" if np.isfinite(v) else "" for v in truth.value_all]
        )
        body.append(
            [f"true effect ({truth.effect_scale})"]
            + [f"{v:+.{digits}f}" if np.isfinite(v) else "" for v in truth.effect_all]
        )
        body.append(["truth"] + ([str(role) for role in truth.roles[:, g]] if g is not None else [""] * len(names)))
    heads = [f"{a} (control)" if k == control else a for k, a in enumerate(names)]
    out += ["Arms"] + _lines(["metric"] + heads, body)
    if len(truth.subgroups) > 1:
        out += ["", "Arms by subgroup (share: of randomizable patients; effect: against the arm's reference there)"]
        out += _lines(
            [
                "subgroup",
                "share",
                "arm",
                short("p_claimed"),
                short("mean_n"),
                f"true {truth.value_name}",
                "true effect",
                "truth",
            ],
            _subgroup_lines(oc, truth, digits),
            left=3,
        )
    values = {m: row[0] for m, row in trial.items()}
    shown = [
        (label(m), m)
        for m in _TRIAL_METRICS
        if m in values and np.isfinite(float(values[m])) and not (m == "n_not_assigned" and float(values[m]) == 0)
    ]  # a design that takes every patient
    width = max(len(text) for text, _ in shown)
    out += ["", "Trial"]
    for text, m in shown:
        v, se, lo, hi = (float(x) for x in trial[m][:4])
        out.append(f"{text.ljust(width)}  {estimate(v, se, lo, hi, _digits(m, digits), _is_proportion(m))}")
    out += analytic_lines(spec, oc, digits)
    return "\n".join(out)


def _subgroup_lines(oc: Estimates, truth, digits: int) -> list[list[str]]:
    """The rows of the arms-by-subgroup block: every arm x subgroup with operating characteristics,
    in the truth's order (arm by arm), but those of arms that take no patient of the subgroup."""
    cells = oc.index("subgroup")
    cell_metrics = {metric for _, _, metric in cells}
    present = {(arm, subgroup) for arm, subgroup, _ in cells}
    roles = truth.roles
    lines: list[list[str]] = []
    previous = None
    for k, arm in enumerate(truth.arms):
        for g, subgroup in enumerate(truth.subgroups):
            if (arm, subgroup) not in present or roles[k, g] == "not in subgroup":
                continue
            role = str(roles[k, g])
            value, effect = float(truth.value[k, g]), float(truth.effect[k, g])
            claim = "" if role == "control" else _from(cells, cell_metrics, arm, subgroup, "p_claimed", digits)
            first = subgroup != previous
            lines.append(
                [
                    subgroup if first else "",
                    f"{float(truth.share[g]):.3f}" if first else "",
                    arm,
                    claim,
                    _from(cells, cell_metrics, arm, subgroup, "mean_n", digits),
                    f"{value:.{digits}f}" if np.isfinite(value) else "",
                    f"{effect:+.{digits}f}" if np.isfinite(effect) else "",
                    role,
                ]
            )
            previous = subgroup
    return lines


def analytic_lines(spec, oc: Estimates, digits: int = 3) -> list[str]:
    """The family's analytic predictions (:attr:`~platform_sim.families.Description.analytic`) beside the
    simulated values ± Monte Carlo SE of the same trial values (``oc``: the run's
    :class:`~platform_sim.oc.Estimates`); no lines when the family makes none."""
    predicted = spec.family.describe(spec.compiled).analytic
    trial = {metric: row for (_, _, metric), row in oc.index("trial").items()}
    rows = []
    for metric, words, value in predicted:
        if metric not in trial:
            continue
        v, se, lo, hi = (float(x) for x in trial[metric][:4])
        d = _digits(metric, digits) if _is_proportion(metric) else 2
        rows.append([words, f"{value:.{d}f}", estimate(v, se, lo, hi, d, _is_proportion(metric))])
    if not rows:
        return []
    return ["", "Analytic plan beside simulation"] + _lines(["quantity", "analytic", "simulated ± MCSE"], rows)
