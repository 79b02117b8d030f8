"""Operating characteristics of simulated trials: one definition of every metric, for every design.

Every operating characteristic (OC) is the average over the T simulated trials of
one per-trial value computed from a :class:`~platform_sim.results.TrialResults`
and the :class:`~platform_sim.results.Truth` of its design under its scenario.
This module defines those per-trial values once (:func:`entries`); summaries
(:mod:`platform_sim.summary`) reduce them chunk by chunk, and :func:`frame` turns a
summary into one tidy table with the Monte Carlo standard error (MCSE) of every
estimate and an interval. ``compare`` and ``calibrate`` take the same per-trial
values (:func:`per_trial`) to form paired differences.

**Claims.** A design claims an arm effective in a subgroup (a stratum, a signature,
or all patients). A claim where the arm works (its true effect reaches the
clinically relevant size there) is a true positive; a claim where the arm is no
better than its reference is a false positive.

Trial level (``level == "trial"``):

* ``p_any_claim``: at least one claim;
* ``fwer``: at least one false-positive claim (NaN when no arm is null anywhere);
* ``power``: at least one true-positive claim (NaN when no arm works anywhere);
* ``p_correct_finding``: no false claim, and every working arm claimed: in every
  subgroup where it works when the subgroups do not overlap (strata), in one of them
  when they do (platform signatures, which graduate an arm once);
* ``n_randomized`` (mean, sd and quantiles), ``n_screened``, ``n_not_randomized``, split into
  ``n_lost_in_screening`` (screen failures, patients lost while waiting, ineligible ones) and
  ``n_not_assigned`` (randomizable, but no open stratum, sub-study or arm took them);
* ``duration_months``: months from the opening to the last analysis;
* ``months_to_first_claim`` and ``months_to_first_true_claim`` (over the trials with one);
* ``n_on_effective_arms`` / ``n_on_null_arms``: patients randomized to an arm that
  works / is null for their stratum; ``share_on_effective_arms`` of the patients
  on experimental arms;
* ``responders``: endpoint events among the randomized patients;
* ``p_stop_<reason>``: the trial stopped for that reason;
* the family's own trial values (``p_stopped_early``, ``n_looks``, ...);
* per selection strategy ``s``: ``p_no_selection_<s>``, and the selected arm's
  ``bias_<s>`` and ``rmse_<s>`` (final rate estimate minus its truth) and ``idp_<s>``
  (ideal design percentage: 100 when the truly best arm is always selected, 0 the worst).

Arm level (``level == "arm"``): ``p_claimed``, ``p_effective``, ``p_inferior``,
``p_futile``, ``p_equivalent``, ``p_dropped`` (inferior or futile), ``p_active_at_end``
(active or control), ``n`` (patients; mean, sd, quantiles), ``alloc_share`` (share of
the trial's patients), ``events``, ``p_selected_<s>`` and the family's own arm values.

Arm x subgroup level (``level == "subgroup"``): ``p_claimed``, ``mean_n`` and, for each
final estimate ``e`` of the design, ``e`` (its mean), ``bias_e`` and ``rmse_e``
against its truth.

MCSE: ``sqrt(p (1 - p) / m)`` for proportions, ``sd / sqrt(m)`` for means, the delta
method for SDs and RMSEs and order-statistic intervals for quantiles. The interval
of a proportion is the Jeffreys interval, the Beta(k + 1/2, m - k + 1/2) quantiles
(Brown, Cai & DasGupta, Statistical Science 2001), which stays inside [0, 1] and is
not degenerate at 0 or 1; that of any other estimate is value +/- 1.96 MCSE.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .results import (
    ACTIVE,
    CONTROL,
    EFFECTIVE,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    TrialResults,
    Truth,
)
from .summary import Summary

if TYPE_CHECKING:  # pandas loads with the first table built (the terminal report needs none)
    import pandas as pd

__all__ = [
    "LEVELS",
    "Estimates",
    "Summarizer",
    "arm_table",
    "entries",
    "estimates",
    "frame",
    "jeffreys_interval",
    "per_trial",
    "proportion",
    "subgroup_table",
    "summarize",
    "trial_table",
]

#: The levels of the tidy table, in order.
LEVELS = ("trial", "arm", "subgroup")
_LEVEL_OF_TABLE = {"trial": "trial", "arm": "arm", "cell": "subgroup"}
_Z = 1.96


def _kind(name: str, values: np.ndarray) -> str:
    return "p" if name.startswith("p_") or np.asarray(values).dtype == bool else "mean"


# --------------------------------------------------------------------------- per-trial values


def trial_values(results: TrialResults, truth: Truth) -> dict[str, np.ndarray]:
    """Per-trial values (T,) of every trial-level characteristic (see the module docstring)."""
    t = results.n_trials
    nan = np.full(t, np.nan)
    claimed = np.asarray(results.claimed, dtype=bool)
    works: np.ndarray = truth.works[None]
    null: np.ndarray = truth.null[None]
    true_claim = claimed & works
    false_claim = claimed & null
    disjoint = bool((truth.membership.sum(axis=0) <= 1).all())
    if disjoint:
        missed = (works & ~claimed).any(axis=(1, 2))
    else:
        arm_works = np.asarray(truth.works.any(axis=1))
        missed = (arm_works[None, :] & ~true_claim.any(axis=2)).any(axis=1)
    n = np.asarray(results.n, dtype=float)
    randomized = n.sum(axis=(1, 2))
    screened = np.asarray(results.n_screened, dtype=float)
    on_effective = (n * truth.works_in_stratum[None]).sum(axis=(1, 2))
    on_null = (n * truth.null_in_stratum[None]).sum(axis=(1, 2))
    experimental = np.ones(len(truth.arms), dtype=bool)
    if truth.control >= 0:
        experimental[truth.control] = False
    on_experimental = n[:, experimental].sum(axis=(1, 2))
    not_assigned = np.asarray(results.trial_values.get("n_not_assigned", np.zeros(t)), dtype=float)
    claim_month = np.where(claimed, results.claim_month, np.inf)
    first_claim = claim_month.min(axis=(1, 2))
    first_true = np.where(true_claim, results.claim_month, np.inf).min(axis=(1, 2))
    values = {
        "p_any_claim": claimed.any(axis=(1, 2)),
        "fwer": false_claim.any(axis=(1, 2)) if truth.null.any() else nan,
        "power": true_claim.any(axis=(1, 2)) if truth.works.any() else nan,
        "p_correct_finding": ~false_claim.any(axis=(1, 2)) & ~missed,
        "n_randomized": randomized,
        "n_screened": screened,
        "n_not_randomized": screened - randomized,
        "n_lost_in_screening": screened - randomized - not_assigned,
        "n_not_assigned": not_assigned,
        "duration_months": np.asarray(results.duration_months, dtype=float),
        "months_to_first_claim": np.where(np.isfinite(first_claim), first_claim, np.nan),
        "months_to_first_true_claim": np.where(np.isfinite(first_true), first_true, np.nan),
        "n_on_effective_arms": on_effective,
        "n_on_null_arms": on_null,
        "share_on_effective_arms": np.where(on_experimental > 0, on_effective / np.maximum(on_experimental, 1), np.nan),
        "responders": np.asarray(results.events, dtype=float).sum(axis=(1, 2)),
    }
    for code, name in enumerate(results.stop_names):
        values[f"p_stop_{name}"] = results.stop_reason == code
    values.update({k: v for k, v in results.trial_values.items() if k != "n_not_assigned"})
    values.update(_selection_values(results, truth))
    return values


def _selection_values(results: TrialResults, truth: Truth) -> dict[str, np.ndarray]:
    """Per selection strategy: no selection, and the selected arm's bias, RMSE and ideal design
    percentage (NaN where the strategy selects no arm)."""
    out: dict[str, np.ndarray] = {}
    if not results.selections:
        return out
    estimate = results.selection_estimate
    value = truth.value_all
    good = value * truth.effect_better
    finite = good[np.isfinite(good)]
    best, worst = (finite.max(), finite.min()) if finite.size else (np.nan, np.nan)
    rows = np.arange(results.n_trials)
    for s, sel in results.selections.items():
        has = sel >= 0
        idx = np.where(has, sel, 0)
        out[f"p_no_selection_{s}"] = ~has
        if estimate is not None:
            err = np.where(has, estimate[rows, idx] - value[idx], np.nan)
            out[f"bias_{s}"] = err
            out[f"rmse_{s}"] = err
        if np.isfinite(best - worst) and best - worst > 1e-9:
            out[f"idp_{s}"] = np.where(has, 100.0 * (good[idx] - worst) / (best - worst), np.nan)
        else:
            out[f"idp_{s}"] = np.full(results.n_trials, np.nan)
    return out


def arm_values(results: TrialResults) -> dict[str, np.ndarray]:
    """Per-trial values (T, K) of every arm-level characteristic (see the module docstring)."""
    n = results.n_by_arm.astype(float)
    total = n.sum(axis=1, keepdims=True)
    status = results.status
    values = {
        "p_claimed": results.claimed_any,
        "p_effective": status == EFFECTIVE,
        "p_inferior": status == INFERIOR,
        "p_futile": status == FUTILE,
        "p_equivalent": status == EQUIVALENT,
        "p_dropped": (status == INFERIOR) | (status == FUTILE),
        "p_active_at_end": (status == ACTIVE) | (status == CONTROL),
        "n": n,
        "alloc_share": np.where(total > 0, n / np.where(total > 0, total, 1.0), np.nan),
        "events": results.events_by_arm.astype(float),
    }
    for s, sel in results.selections.items():
        values[f"p_selected_{s}"] = sel[:, None] == np.arange(results.n_arms)[None, :]
    values.update(results.arm_values)
    return values


def cell_values(results: TrialResults, truth: Truth) -> dict[str, np.ndarray]:
    """Per-trial values (T, K, G) of every arm x subgroup characteristic."""
    n_sub = np.einsum("tks,gs->tkg", results.n.astype(float), truth.membership.astype(float))
    values = {"p_claimed": np.asarray(results.claimed, dtype=bool), "mean_n": n_sub}
    for name, estimate in results.estimates.items():
        target = getattr(truth, results.estimate_targets[name])
        error = estimate - target[None]
        values[name] = estimate
        values[f"bias_{name}"] = error
        values[f"rmse_{name}"] = error
    return values


def entries(results: TrialResults, truth: Truth) -> Iterator[tuple]:
    """Every characteristic as a :class:`~platform_sim.summary.Summary` entry: ``(table, row, column,
    kind, per-trial values)``."""
    for name, x in trial_values(results, truth).items():
        kind = "dist" if name == "n_randomized" else "rmse" if name.startswith("rmse_") else _kind(name, x)
        yield "trial", "", name, kind, x
    per_arm = arm_values(results)
    for k, arm in enumerate(results.arms):
        for name, x in per_arm.items():
            kind = "dist" if name == "n" else _kind(name, x)
            yield "arm", arm, name, kind, x[:, k]
    cells = cell_values(results, truth)
    for k, arm in enumerate(results.arms):
        for g, sub in enumerate(results.subgroups):
            if not np.isfinite(truth.value[k, g]):  # the arm takes no patients of the subgroup
                continue
            for name, x in cells.items():
                column = x[:, k, g]
                if name.startswith(("bias_", "rmse_")) and not np.isfinite(column).any():
                    continue
                kind = "rmse" if name.startswith("rmse_") else _kind(name, column)
                yield "cell", (arm, sub), name, kind, column


class Summarizer:
    """Reduces batches of a spec's :class:`~platform_sim.results.TrialResults` to a
    :class:`~platform_sim.summary.Summary` (the exact truth is computed once, with the spec)."""

    def __init__(self, spec):
        self.spec = spec
        self.truth = spec.truth

    def __call__(self, results: TrialResults) -> Summary:
        return Summary().add(results.trial, entries(results, self.truth))


def summarize(results: TrialResults, truth: Truth) -> Summary:
    """The :class:`~platform_sim.summary.Summary` of ``results``: what every table below is built from."""
    return Summary().add(results.trial, entries(results, truth))


def per_trial(results: TrialResults, truth: Truth) -> dict[tuple[str, str, str, str], np.ndarray]:
    """Per-trial values of every characteristic keyed by ``(level, arm, subgroup, metric)``: what
    paired differences between designs are computed from (``dist`` counts as their mean)."""
    out = {}
    for table, row, column, _, x in entries(results, truth):
        level = _LEVEL_OF_TABLE[table]
        arm, sub = (row, "") if table == "arm" else row if table == "cell" else ("", "")
        out[level, arm, sub, column] = np.asarray(x, dtype=float)
    return out


# --------------------------------------------------------------------------- the tidy table


def proportion(x) -> tuple[float, float]:
    """The proportion of true values among the finite values of ``x`` and its Monte Carlo standard
    error, sqrt(p (1 - p) / m); NaN for both when no value is finite."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    p = float(x.mean())
    return p, math.sqrt(p * (1.0 - p) / x.size)


def jeffreys_interval(k, m) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Jeffreys interval of proportions of ``k`` events in ``m`` trials (arrays or numbers): the
    Beta(k + 1/2, m - k + 1/2) quantiles, 0 at k = 0 and 1 at k = m, NaN where m = 0 (Brown, Cai &
    DasGupta, Statistical Science 2001)."""
    # the beta quantile function (scipy.special's betaincinv is scipy.stats.beta.ppf, without loading scipy.stats)
    from scipy.special import betaincinv

    k, m = np.asarray(k, dtype=float), np.asarray(m, dtype=float)

    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, betaincinv(k + 0.5, m - k + 0.5, 0.025), 0.0)
        upper = np.where(k < m, betaincinv(k + 0.5, m - k + 0.5, 0.975), 1.0)
    return np.where(m > 0, lower, np.nan), np.where(m > 0, upper, np.nan)


_COLUMNS = ("level", "arm", "subgroup", "metric", "value", "mcse", "n")


@dataclass(frozen=True)
class Estimates:
    """The tidy table of :func:`frame` as plain rows, without pandas (what the terminal report reads).

    ``rows``: one dict per level x arm x subgroup x metric with the keys ``level``, ``arm``,
    ``subgroup``, ``metric``, ``value``, ``mcse`` and ``n``, in the order of the table;
    ``lower`` and ``upper``: the 95% interval of each row, arrays of shape (rows,)."""

    rows: tuple[dict, ...]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def of(cls, table: Estimates | pd.DataFrame) -> Estimates:
        """``table`` itself, or the rows of a tidy table made by :func:`frame`."""
        if isinstance(table, Estimates):
            return table
        records = table.to_dict("records")
        rows = tuple({c: r[c] for c in _COLUMNS} for r in records)
        lower = np.array([r["lower"] for r in records], dtype=float)
        upper = np.array([r["upper"] for r in records], dtype=float)
        return cls(rows, lower, upper)

    def to_frame(self) -> pd.DataFrame:
        """The tidy table as a pandas DataFrame (the columns of :func:`frame`)."""
        import pandas as pd

        out = pd.DataFrame(list(self.rows), columns=list(_COLUMNS))
        out.insert(6, "lower", self.lower.copy())
        out.insert(7, "upper", self.upper.copy())
        return out

    def index(self, level: str) -> dict[tuple[str, str, str], tuple[float, float, float, float, int]]:
        """The rows of ``level`` by ``(arm, subgroup, metric)``: ``(value, mcse, lower, upper, n)``
        (table order; an arm x subgroup x metric given twice keeps its first row)."""
        out: dict[tuple[str, str, str], tuple[float, float, float, float, int]] = {}
        for i, r in enumerate(self.rows):
            if r["level"] == level:
                out.setdefault(
                    (r["arm"], r["subgroup"], r["metric"]),
                    (r["value"], r["mcse"], float(self.lower[i]), float(self.upper[i]), r["n"]),
                )
        return out


def estimates(summary: Summary) -> Estimates:
    """The operating characteristics of a summary as :class:`Estimates`: the rows of :func:`frame`."""
    rows: list[dict] = []
    k_p: list[int] = []
    m_p: list[int] = []
    is_p: list[bool] = []
    for table, row, column in summary.keys():
        stat = summary.stat(table, row, column)
        level = _LEVEL_OF_TABLE[table]
        arm, sub = (row, "") if table == "arm" else row if table == "cell" else ("", "")
        for metric, (estimate, se) in stat.estimates(column).items():
            rows.append(
                {
                    "level": level,
                    "arm": arm,
                    "subgroup": sub,
                    "metric": metric,
                    "value": estimate,
                    "mcse": se,
                    "n": stat.count(),
                }
            )
            is_p.append(stat.kind == "p")
            k_p.append(stat.k)
            m_p.append(stat.m)
    value = np.array([r["value"] for r in rows], dtype=float)
    mcse = np.array([r["mcse"] for r in rows], dtype=float)
    lower: np.ndarray = value - _Z * mcse
    upper: np.ndarray = value + _Z * mcse
    proportion = np.asarray(is_p, dtype=bool)
    if proportion.any():
        lo, hi = jeffreys_interval(np.asarray(k_p, dtype=float)[proportion], np.asarray(m_p, dtype=float)[proportion])
        lower[proportion], upper[proportion] = lo, hi
    return Estimates(tuple(rows), lower, upper)


def frame(summary: Summary) -> pd.DataFrame:
    """The operating characteristics of a summary as one tidy table: one row per level x arm x
    subgroup x metric with ``value``, ``mcse``, ``lower`` and ``upper`` (a 95% interval: Jeffreys for
    proportions, value +/- 1.96 MCSE otherwise) and ``n`` (the trials counted)."""
    return estimates(summary).to_frame()


# --------------------------------------------------------------------------- wide views


def _wide(long: pd.DataFrame, index: list[str], bounds: bool = False) -> pd.DataFrame:
    """Metrics as columns: ``<metric>`` and ``<metric>_mcse`` (and ``_lower``, ``_upper`` with ``bounds``)."""
    import pandas as pd

    parts = {"": "value", "_mcse": "mcse"} | ({"_lower": "lower", "_upper": "upper"} if bounds else {})
    pivots = {
        suffix: long.pivot_table(index=index, columns="metric", values=col, sort=False, dropna=False)
        for suffix, col in parts.items()
    }
    cols = {}
    for m in dict.fromkeys(long["metric"]):
        for suffix, table in pivots.items():
            cols[f"{m}{suffix}"] = table[m]
    return pd.DataFrame(cols)


def trial_table(table: pd.DataFrame) -> pd.DataFrame:
    """The trial-level metrics of a tidy table: one row per metric (index), value, mcse, lower, upper."""
    t = table[table["level"] == "trial"]
    return t.set_index("metric")[["value", "mcse", "lower", "upper"]]


def arm_table(table: pd.DataFrame, truth: Truth, bounds: bool = False) -> pd.DataFrame:
    """One row per arm: the arm-level metrics (``<metric>`` and ``<metric>_mcse`` columns; with
    ``bounds`` also ``_lower`` and ``_upper``), and the truth among all patients (``true_value``,
    ``true_effect``; ``role`` only when the design claims for all patients)."""
    t = table[table["level"] == "arm"]
    wide = _wide(t, ["arm"], bounds)
    wide = wide.reindex(list(truth.arms))
    g = truth.all_patients
    wide.insert(0, "role", truth.roles[:, g] if g is not None else np.full(len(truth.arms), "", dtype=object))
    wide.insert(0, "true_effect", truth.effect_all)
    wide.insert(0, "true_value", truth.value_all)
    wide.index.name = "arm"
    return wide


def subgroup_table(table: pd.DataFrame, truth: Truth, bounds: bool = False) -> pd.DataFrame:
    """One row per arm x subgroup: the truth there (share, true value and effect, role) and the
    arm x subgroup metrics with their MCSE."""
    import pandas as pd

    t = table[table["level"] == "subgroup"]
    wide = _wide(t, ["arm", "subgroup"], bounds) if len(t) else pd.DataFrame()
    tf = truth.frame().set_index(["arm", "subgroup"])
    tf = tf.rename(columns={"value": "true_value", "effect": "true_effect", "reference": "true_reference"})
    tf = tf.drop(columns=["works", "null"])
    return tf.join(wide, how="inner") if len(wide) else tf.iloc[0:0]


def value_of(table: pd.DataFrame, metric: str, level: str = "trial", arm: str = "", subgroup: str = "") -> float:
    """One estimate of a tidy table (NaN when absent)."""
    hit = table[
        (table["level"] == level)
        & (table["arm"] == arm)
        & (table["subgroup"] == subgroup)
        & (table["metric"] == metric)
    ]
    return float(hit["value"].iloc[0]) if len(hit) else math.nan
