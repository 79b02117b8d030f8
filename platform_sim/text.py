"""Operating characteristics as plain text for the terminal: the same tidy table for every design.

Estimates are shown as ``value ± MCSE``. A proportion of 0 or 1 has no useful MCSE,
so it is shown with the far end of its Jeffreys interval instead (``0.000 (≤ 0.0012)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .glossary import label, short
from .oc import arm_table, subgroup_table, trial_table

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


def _from(table: pd.DataFrame, row, metric: str, digits: int) -> str:
    if metric not in table.columns:
        return ""
    get = table.at
    return estimate(
        get[row, metric],
        get[row, f"{metric}_mcse"],
        get[row, f"{metric}_lower"],
        get[row, f"{metric}_upper"],
        _digits(metric, digits),
        _is_proportion(metric),
    )


def _lines(header: list[str], body: list[list[str]], left: int = 1) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in body]


def format_run(spec, table: pd.DataFrame, digits: int = 3) -> str:
    """A run's tidy OC table (:func:`platform_sim.oc.frame`) as text: the arms, the arms by subgroup
    (designs with strata or signatures), then the trial."""
    truth = spec.truth
    d = spec.design
    n_trials = int(table.loc[(table.level == "trial") & (table.metric == "p_any_claim"), "n"].iloc[0])
    direction = "higher is better" if d.endpoint.higher_is_better else "lower is better"
    out = [
        f"design {d.name} on scenario {spec.scenario.name}: {n_trials} simulated trials "
        f"({spec.family.title}; endpoint {d.endpoint.name}, {direction}; value ± Monte Carlo SE)",
        "",
    ]
    arms = arm_table(table, truth, bounds=True)
    names = list(truth.arms)
    control = truth.control
    body = []
    for m in _ARM_METRICS:
        if m not in arms.columns or (m == "p_equivalent" and not (arms[m].fillna(0) > 0).any()):
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
            + ["" if skip_control and k == control else _from(arms, a, m, digits) for k, a in enumerate(names)]
        )
    if truth.membership.all(axis=1).any():  # the truth among all patients (else: by subgroup, below)
        body.append(
            [f"true {truth.value_name}"] + [f"{v:.{digits}f}" if np.isfinite(v) else "" for v in arms["true_value"]]
        )
        body.append(
            [f"true effect ({truth.effect_scale})"]
            + [f"{v:+.{digits}f}" if np.isfinite(v) else "" for v in arms["true_effect"]]
        )
        body.append(["truth"] + list(arms["role"]))
    heads = [f"{a} (control)" if k == control else a for k, a in enumerate(names)]
    out += ["Arms"] + _lines(["metric"] + heads, body)
    if len(truth.subgroups) > 1:
        sub = subgroup_table(table, truth, bounds=True)
        lines: list[list[str]] = []
        previous = None
        for key, r in sub.iterrows():
            arm, subgroup = str(key[0]), str(key[1])  # type: ignore[index]
            if r["role"] == "not in subgroup":
                continue
            claim = "" if r["role"] == "control" else _from(sub, (arm, subgroup), "p_claimed", digits)
            first = subgroup != previous
            lines.append(
                [
                    subgroup if first else "",
                    f"{r['share']:.3f}" if first else "",
                    arm,
                    claim,
                    _from(sub, (arm, subgroup), "mean_n", digits),
                    f"{r['true_value']:.{digits}f}" if np.isfinite(r["true_value"]) else "",
                    f"{r['true_effect']:+.{digits}f}" if np.isfinite(r["true_effect"]) else "",
                    r["role"],
                ]
            )
            previous = subgroup
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
            lines,
            left=3,
        )
    trial = trial_table(table)
    values = trial["value"].to_dict()
    shown = [
        (label(m), m)
        for m in _TRIAL_METRICS
        if m in values and np.isfinite(float(values[m])) and not (m == "n_not_assigned" and float(values[m]) == 0)
    ]  # a design that takes every patient
    width = max(len(text) for text, _ in shown)
    out += ["", "Trial"]
    for text, m in shown:
        v, se, lo, hi = trial.loc[m, ["value", "mcse", "lower", "upper"]].to_numpy(dtype=float)
        out.append(f"{text.ljust(width)}  {estimate(v, se, lo, hi, _digits(m, digits), _is_proportion(m))}")
    out += analytic_lines(spec, trial, digits)
    return "\n".join(out)


def analytic_lines(spec, trial: pd.DataFrame, digits: int = 3) -> list[str]:
    """The family's analytic predictions (:attr:`~platform_sim.families.Description.analytic`) beside the
    simulated values ± Monte Carlo SE of the same trial values; no lines when the family makes none."""
    predicted = spec.family.describe(spec.compiled).analytic
    rows = []
    for metric, words, value in predicted:
        if metric not in trial.index:
            continue
        v, se, lo, hi = trial.loc[metric, ["value", "mcse", "lower", "upper"]].to_numpy(dtype=float)
        d = _digits(metric, digits) if _is_proportion(metric) else 2
        rows.append([words, f"{value:.{d}f}", estimate(v, se, lo, hi, d, _is_proportion(metric))])
    if not rows:
        return []
    return ["", "Analytic plan beside simulation"] + _lines(["quantity", "analytic", "simulated ± MCSE"], rows)
