"""Operating characteristics of a batch of simulated trials, each with its Monte Carlo standard error.

Every operating characteristic (OC) is an average over the T simulated trials of
one design run on one scenario, so each is an *estimate* whose precision is its
Monte Carlo standard error (MCSE). The formulas used:

* a proportion p (e.g. the probability that an arm is declared superior):
  ``sqrt(p (1 - p) / T)``;
* a mean: ``sd / sqrt(m)`` with ``sd`` the sample standard deviation (ddof 1)
  over the m trials that contribute;
* a standard deviation s: ``s / sqrt(2 (m - 1))`` (delta method, normal data);
* a quantile x_q: from the binomial order-statistic interval,
  ``(x_(hi) - x_(lo)) / (2 * 1.96)`` where ``lo = floor(q m - 1.96 sqrt(m q (1-q)))``
  and ``hi = ceil(q m + 1.96 sqrt(m q (1-q)))`` are 1-based ranks clipped to [1, m];
* an RMSE r = sqrt(mean(e^2)): ``sqrt(var(e^2) / m) / (2 r)`` (delta method).

Everything here is a pure function of a :class:`~platform_sim.results.TrialResults`
and the :class:`~platform_sim.config.Spec` that produced it, returning pandas
objects; the only I/O is in :func:`write_summary` and :func:`write_trials`.

Direction: "better" always means better for patients, i.e. a higher endpoint
rate when ``design.endpoint.higher_is_better`` and a lower one otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import Spec
from .results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    STATUS_NAMES,
    STOP_MAX,
    STOP_NAMES,
    SUPERIOR,
    TrialResults,
)
from .summary import QUANTILES, Summary

__all__ = [
    "QUANTILES",
    "SELECTION_STRATEGIES",
    "Summarizer",
    "arm_table",
    "best_remaining",
    "control_if_active",
    "format_strata",
    "format_table",
    "stratified_trial_values",
    "stratum_table",
    "stratum_truth",
    "summarize",
    "summary_frame",
    "superior_or_none",
    "trial_table",
    "trials_frame",
    "truth",
    "write_summary",
    "write_trials",
]

_Z = 1.96
# Rate differences within this of a threshold count as reaching it (0.25 - 0.22 == 0.03 in floating point).
_TOL = 1e-9


# --------------------------------------------------------------------------- MCSE helpers


def _proportion(x: np.ndarray) -> tuple[float, float]:
    """Proportion of True among the trials in ``x`` and its binomial MCSE sqrt(p(1-p)/T)."""
    x = np.asarray(x, dtype=bool)
    m = x.size
    if m == 0:
        return math.nan, math.nan
    p = float(x.mean())
    return p, math.sqrt(p * (1.0 - p) / m)


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


def _mean(x) -> tuple[float, float]:
    """Mean over the finite values and its MCSE sd/sqrt(m) (NaN when fewer than 2 values)."""
    x = _finite(x)
    m = x.size
    if m == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if m < 2:
        return mean, math.nan
    return mean, float(x.std(ddof=1)) / math.sqrt(m)


def _put(out: dict, name: str, value_mcse: tuple[float, float]) -> None:
    out[name], out[f"{name}_mcse"] = value_mcse


def _qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


# --------------------------------------------------------------------------- truth


def _sign(spec: Spec) -> float:
    return 1.0 if spec.design.endpoint.higher_is_better else -1.0


def truth(spec: Spec) -> pd.DataFrame:
    """What is true in the scenario, arm by arm (index: arm name, design order).

    Columns:

    * ``true_rate``: the true endpoint event rate of the arm's treatment;
    * ``improvement``: how much better than the reference the arm truly is, on
      the rate scale, positive = better for patients. With a common control the
      reference is the control (the control's own improvement is 0); without a
      control it is the best *other* arm, so the improvement is the arm's true
      margin over its strongest competitor;
    * ``truly_better``: the arm truly beats the reference by at least the
      clinically relevant difference delta (strictly, when delta is 0). Without a
      control: the arm beats *every* other arm by at least delta. Declaring such
      an arm superior counts toward power;
    * ``truly_null``: the arm is truly no better than the reference (with a
      control: no better than the control; without: some other arm is at least
      as good). Declaring such an arm superior is a false positive (FWER).

    The control row is neither truly better nor truly null. An arm better than
    the reference by less than delta is neither (a "grey zone" arm).
    """
    design = spec.design
    rates = np.asarray(spec.true_rates, dtype=float)
    k = rates.size
    sign = _sign(spec)
    delta = float(design.clinically_relevant_difference)
    c = design.control_index
    if c is not None:
        improvement = (rates - rates[c]) * sign
        improvement[c] = 0.0
        not_control = np.arange(k) != c
    else:
        diff = (rates[:, None] - rates[None, :]) * sign  # diff[i, j]: how much i beats j
        np.fill_diagonal(diff, np.inf)
        improvement = diff.min(axis=1)
        not_control = np.ones(k, dtype=bool)
    if delta > 0:
        better = improvement >= delta - _TOL
    else:
        better = improvement > _TOL
    null = improvement <= _TOL
    return pd.DataFrame(
        {
            "true_rate": rates,
            "improvement": improvement,
            "truly_better": better & not_control,
            "truly_null": null & not_control,
        },
        index=pd.Index(design.arm_names, name="arm"),
    )


# --------------------------------------------------------------------------- selection strategies


def _pick_max(score: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Per trial, the eligible arm with the highest score (first in design order on ties), else -1."""
    masked = np.where(eligible, score, -np.inf)
    idx = np.argmax(masked, axis=1)
    return np.where(eligible.any(axis=1), idx, -1).astype(np.intp)


def _prob_best_filled(results: TrialResults) -> np.ndarray:
    pb = np.asarray(results.prob_best, dtype=float)
    return np.where(np.isfinite(pb), pb, -1.0)


def _final_control(results: TrialResults) -> tuple[np.ndarray, np.ndarray]:
    """Final control index per trial (clipped to 0 where there is none) and whether there is one."""
    fc = np.asarray(results.final_control).astype(np.intp)
    return np.clip(fc, 0, None), fc >= 0


def superior_or_none(results: TrialResults) -> np.ndarray:
    """The arm a trial recommends only when it has proven something.

    Per trial: the arm whose final status is SUPERIOR (several: the one with the
    highest final P(best), then the first in design order); otherwise the final
    control if that arm was itself declared superior at some look (it beat an
    earlier control and took its place); otherwise no selection (-1).
    """
    status = np.asarray(results.status)
    pick = _pick_max(_prob_best_filled(results), status == SUPERIOR)
    fc, has_fc = _final_control(results)
    rows = np.arange(status.shape[0])
    fc_declared = has_fc & np.asarray(results.declared_superior, dtype=bool)[rows, fc]
    return np.where(pick >= 0, pick, np.where(fc_declared, fc, -1)).astype(np.intp)


def best_remaining(results: TrialResults) -> np.ndarray:
    """The arm a sponsor would take forward whatever happened.

    Per trial: the :func:`superior_or_none` pick when there is one; otherwise,
    among arms still in the trial at the end (status ACTIVE or CONTROL), the one
    with the highest P(best) at the final analysis (NaN P(best), a dropped arm,
    is ignored); no selection (-1) only when every arm was dropped.
    """
    sor = superior_or_none(results)
    status = np.asarray(results.status)
    pb = np.asarray(results.prob_best, dtype=float)
    remaining = ((status == ACTIVE) | (status == CONTROL)) & np.isfinite(pb)
    rem = _pick_max(pb, remaining)
    return np.where(sor >= 0, sor, rem).astype(np.intp)


def control_if_active(results: TrialResults) -> np.ndarray:
    """The arm a conservative trialist would keep: the proven arm, else stay with the control.

    Per trial: the :func:`superior_or_none` pick when there is one; otherwise the
    final control if its status is CONTROL (still standing); otherwise none (-1).
    """
    sor = superior_or_none(results)
    status = np.asarray(results.status)
    fc, has_fc = _final_control(results)
    rows = np.arange(status.shape[0])
    keep = has_fc & (status[rows, fc] == CONTROL)
    return np.where(sor >= 0, sor, np.where(keep, fc, -1)).astype(np.intp)


#: Selection strategies by name: each maps a TrialResults to the selected arm index per trial (-1: none).
SELECTION_STRATEGIES: dict[str, Callable[[TrialResults], np.ndarray]] = {
    "superior_or_none": superior_or_none,
    "best_remaining": best_remaining,
    "control_if_active": control_if_active,
}


# --------------------------------------------------------------------------- per-trial values


def _arm_entries(results: TrialResults, spec: Spec):
    """Per-trial values of each arm's characteristics, as :class:`~platform_sim.summary.Summary` entries."""
    names = spec.design.arm_names
    n = np.asarray(results.n, dtype=float)
    k = n.shape[1]
    if k != len(names):
        raise ValueError(f"results have {k} arms but the design has {len(names)}: {names}")
    status = np.asarray(results.status)
    declared = np.asarray(results.declared_superior, dtype=bool)
    responders = np.asarray(results.responders, dtype=float)
    total = n.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, n / np.where(total > 0, total, 1.0), np.nan)
    selections = {s: f(results) for s, f in SELECTION_STRATEGIES.items()}
    for j, arm in enumerate(names):
        st = status[:, j]
        yield "arm", arm, "p_superior", "p", declared[:, j]
        yield "arm", arm, "p_inferior", "p", st == INFERIOR
        yield "arm", arm, "p_futile", "p", st == FUTILE
        yield "arm", arm, "p_dropped", "p", (st == INFERIOR) | (st == FUTILE)
        yield "arm", arm, "p_equivalent", "p", st == EQUIVALENT
        yield "arm", arm, "p_active_at_end", "p", (st == ACTIVE) | (st == CONTROL)
        yield "arm", arm, "n", "dist", n[:, j]
        yield "arm", arm, "alloc_share", "mean", share[:, j]
        yield "arm", arm, "mean_responders", "mean", responders[:, j]
        for s, sel in selections.items():
            yield "arm", arm, f"p_selected_{s}", "p", sel == j


def _selection_entries(results: TrialResults, spec: Spec, s: str, sel: np.ndarray):
    """Bias, RMSE and ideal design percentage of the selected arm's estimate and truth, per trial
    (NaN where the strategy selects no arm)."""
    rates = np.asarray(spec.true_rates, dtype=float)
    has = sel >= 0
    idx = np.where(has, sel, 0)
    rows = np.arange(sel.size)
    post = np.asarray(results.post_mean, dtype=float)[rows, idx]
    err = np.where(has, post - rates[idx], np.nan)
    yield "trial", "trial", f"bias_{s}", "mean", err
    yield "trial", "trial", f"rmse_{s}", "rmse", err
    good = rates * _sign(spec)
    best, worst = float(good.max()), float(good.min())
    if best - worst <= _TOL:
        idp = np.full(sel.size, np.nan)
    else:
        idp = np.where(has, 100.0 * (good[idx] - worst) / (best - worst), np.nan)
    yield "trial", "trial", f"idp_{s}", "mean", idp


def _trial_entries(results: TrialResults, spec: Spec, tr: pd.DataFrame, st_truth: pd.DataFrame | None):
    """Per-trial values of the trial-level characteristics (see :func:`trial_table`)."""
    n_looks = spec.design.looks.n_looks
    status = np.asarray(results.status)
    declared = np.asarray(results.declared_superior, dtype=bool)
    stop_look = np.asarray(results.stop_look)
    stop_reason = np.asarray(results.stop_reason)
    t = results.n_trials
    nan = np.full(t, np.nan)
    null = tr["truly_null"].to_numpy(dtype=bool)
    better = tr["truly_better"].to_numpy(dtype=bool)
    yield "trial", "trial", "p_any_superior", "p", declared.any(axis=1)
    yield "trial", "trial", "p_stopped_early", "p", stop_look < n_looks - 1
    inconclusive = (stop_reason == STOP_MAX) & ~(status == SUPERIOR).any(axis=1) & ~declared.any(axis=1)
    yield "trial", "trial", "p_inconclusive_at_max", "p", inconclusive
    for code, name in enumerate(STOP_NAMES):
        yield "trial", "trial", f"p_stop_{name}", "p", stop_reason == code
    yield "trial", "trial", "n_total", "dist", np.asarray(results.n, dtype=float).sum(axis=1)
    if results.n_screened is not None:
        yield "trial", "trial", "mean_n_screened", "mean", results.n_screened
    if results.duration_months is not None:
        yield "trial", "trial", "mean_duration_months", "mean", results.duration_months
    if results.strata is not None:  # findings are judged per arm x stratum
        values = stratified_trial_values(results, spec, st_truth)
        yield "trial", "trial", "fwer", "p", values["fwer"]
        yield "trial", "trial", "power", "p", values["power"]
    else:
        yield "trial", "trial", "fwer", "p", declared[:, null].any(axis=1) if null.any() else nan
        yield "trial", "trial", "power", "p", declared[:, better].any(axis=1) if better.any() else nan
    for s, f in SELECTION_STRATEGIES.items():
        sel = f(results)
        yield "trial", "trial", f"p_no_selection_{s}", "p", sel < 0
        yield from _selection_entries(results, spec, s, sel)


def _stratum_entries(results: TrialResults, spec: Spec):
    st = results.strata
    status = np.asarray(st.status)
    declared = np.asarray(st.declared)
    n = np.asarray(st.n, dtype=float)
    for s, stratum in enumerate(st.names):
        for k, arm in enumerate(spec.design.arm_names):
            yield "stratum", (stratum, arm), "p_declared_effective", "p", declared[:, s, k]
            yield "stratum", (stratum, arm), "p_dropped", "p", np.isin(status[:, s, k], (INFERIOR, FUTILE))
            yield "stratum", (stratum, arm), "mean_n", "mean", n[:, s, k]


class Summarizer:
    """Reduces batches of :class:`~platform_sim.results.TrialResults` of one look-based design to a
    :class:`~platform_sim.summary.Summary` (the truth is computed once, here)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.truth = truth(spec)
        self.stratum_truth = stratum_truth(spec) if spec.strata is not None else None

    def __call__(self, results: TrialResults) -> Summary:
        summary = Summary()
        summary.add(results.n_trials, _arm_entries(results, self.spec))
        summary.add(0, _trial_entries(results, self.spec, self.truth, self.stratum_truth))
        if results.strata is not None:
            summary.add(0, _stratum_entries(results, self.spec))
        return summary


def summarize(results: TrialResults, spec: Spec) -> Summary:
    """The :class:`~platform_sim.summary.Summary` of ``results``: what every table below is built from."""
    return Summarizer(spec)(results)


def _as_summary(results: TrialResults | Summary, spec: Spec) -> Summary:
    return results if isinstance(results, Summary) else summarize(results, spec)


# --------------------------------------------------------------------------- tables


def arm_table(results: TrialResults | Summary, spec: Spec) -> pd.DataFrame:
    """Operating characteristics of each arm (index: arm name, design order).

    ``results`` is a batch of trials or the :class:`~platform_sim.summary.Summary` of a run. Each
    column is followed by ``<column>_mcse``. Probabilities are over the simulated trials:

    * ``p_superior``: the arm was declared superior at some look (beat the
      control of the day, or was declared best without a control);
    * ``p_inferior``: final status inferior (includes a control replaced by a
      superior arm); ``p_futile``: dropped for futility; ``p_dropped``: inferior
      or futile; ``p_equivalent``: dropped as equivalent;
    * ``p_active_at_end``: still randomizing when the trial stopped (active or
      the control);
    * ``mean_n``, ``sd_n``, ``n_q05`` ... ``n_q95``: patients randomized to the
      arm (mean, standard deviation, quantiles);
    * ``alloc_share``: average share of the trial's patients randomized to the arm;
    * ``mean_responders``: average number of endpoint events on the arm;
    * ``p_selected_<strategy>``: the arm is the one selected by each strategy of
      :data:`SELECTION_STRATEGIES`;

    followed by the columns of :func:`truth` (no MCSE: they are known).
    """
    table = _as_summary(results, spec).table("arm")
    table.index = pd.Index(list(table.index), name="arm")
    return table.join(truth(spec))


def trial_table(results: TrialResults | Summary, spec: Spec) -> pd.DataFrame:
    """Operating characteristics of the trial as a whole: one row, index ``'trial'``.

    Each column except ``n_trials`` is followed by ``<column>_mcse``:

    * ``p_any_superior``: at least one arm was declared superior;
    * ``p_stopped_early``: the trial stopped before its last planned look;
    * ``p_inconclusive_at_max``: the trial ran to its maximum sample size
      without declaring any arm superior;
    * ``p_stop_<reason>``: the trial stopped for that reason (max, superiority,
      equivalence, futility);
    * ``mean_n_total``, ``sd_n_total``, ``n_total_q05`` ... ``n_total_q95``:
      the trial's total sample size;
    * ``mean_duration_months``: months from the platform opening to the last randomized
      patient's endpoint assessment (enrolment time plus the endpoint's assessment time);
    * ``mean_n_screened``: patients screened to randomize the trial's patients
      (screen failures, patients lost while waiting and ineligible ones included);
    * ``fwer``: family-wise error rate, the probability of declaring superior
      at least one arm that is truly no better than its reference (NaN when the
      scenario has no such arm);
    * ``power``: the probability of declaring superior at least one arm that is
      truly better by the clinically relevant difference (NaN when none is);

    and for each selection strategy ``s`` (see :data:`SELECTION_STRATEGIES`):

    * ``p_no_selection_<s>``: the strategy selects no arm;
    * ``bias_<s>``: mean of (final posterior mean - true rate) of the selected
      arm, over trials with a selection (the selection bias of the estimate);
    * ``rmse_<s>``: root mean squared error of that estimate;
    * ``idp_<s>``: ideal design percentage, 100 * (E[true rate of the selected
      arm] - worst rate) / (best rate - worst rate), direction-aware: 100 means
      the truly best arm is always selected, 0 the truly worst (NaN when every
      arm has the same true rate).
    """
    summary = _as_summary(results, spec)
    table = summary.table("trial")
    table.insert(0, "n_trials", summary.n_trials)
    return table


# --------------------------------------------------------------------------- frames and files


def summary_frame(results: TrialResults | Summary, spec: Spec) -> pd.DataFrame:
    """The content of ``summary.csv``: one row per arm then one trial row.

    Columns ``level`` ('arm' or 'trial') and ``arm`` (the arm name; '' on the
    trial row), then the columns of :func:`arm_table` and of :func:`trial_table`;
    a column that does not apply to a row is NaN there.
    """
    results = _as_summary(results, spec)
    arms = arm_table(results, spec)
    arms.insert(0, "arm", arms.index.astype(str))
    arms.insert(0, "level", "arm")
    trial = trial_table(results, spec)
    trial.insert(0, "arm", "")
    trial.insert(0, "level", "trial")
    return pd.concat([arms.reset_index(drop=True), trial.reset_index(drop=True)], ignore_index=True)


def trials_frame(results: TrialResults, spec: Spec, first: int = 0) -> pd.DataFrame:
    """One row per simulated trial, in the trial's own words.

    Columns: ``trial`` (its number in the run: ``first`` .. ``first + T - 1``), ``stop_look`` (index of the last look
    conducted), ``stop_reason`` (max, superiority, equivalence, futility),
    ``final_control`` (arm name of the control at the end, '' without one),
    ``n_total``, ``n_screened`` (patients screened), then for every arm ``n_<arm>`` (patients randomized),
    ``responders_<arm>`` (endpoint events), ``status_<arm>`` (final status),
    ``declared_superior_<arm>``, ``post_mean_<arm>`` (final posterior mean rate)
    and ``prob_best_<arm>`` (final P(best), NaN for a dropped arm).
    """
    names = spec.design.arm_names
    t = results.n_trials
    fc = np.asarray(results.final_control).astype(np.intp)
    fc_names = np.array(names + [""], dtype=object)[np.where(fc >= 0, fc, len(names))]
    cols: dict[str, object] = {
        "trial": np.arange(first, first + t),
        "stop_look": np.asarray(results.stop_look),
        "stop_reason": pd.Categorical.from_codes(np.asarray(results.stop_reason).astype(int), categories=list(STOP_NAMES)),
        "final_control": pd.Categorical(fc_names, categories=names + [""]),
        "n_total": np.asarray(results.n).sum(axis=1),
    }
    if results.n_screened is not None:
        cols["n_screened"] = np.asarray(results.n_screened)
    if results.duration_months is not None:
        cols["duration_months"] = np.asarray(results.duration_months)
    per_arm = [
        ("n", lambda j: np.asarray(results.n)[:, j]),
        ("responders", lambda j: np.asarray(results.responders)[:, j]),
        (
            "status",
            lambda j: pd.Categorical.from_codes(np.asarray(results.status)[:, j].astype(int), categories=list(STATUS_NAMES)),
        ),
        ("declared_superior", lambda j: np.asarray(results.declared_superior, dtype=bool)[:, j]),
        ("post_mean", lambda j: np.asarray(results.post_mean, dtype=float)[:, j]),
        ("prob_best", lambda j: np.asarray(results.prob_best, dtype=float)[:, j]),
    ]
    for prefix, get in per_arm:
        for j, name in enumerate(names):
            cols[f"{prefix}_{name}"] = get(j)
    return pd.DataFrame(cols)


def write_summary(results: TrialResults, spec: Spec, path: str | Path) -> Path:
    """Write :func:`summary_frame` as CSV to ``path`` and return the path."""
    path = Path(path)
    summary_frame(results, spec).to_csv(path, index=False)
    return path


def write_trials(results: TrialResults, spec: Spec, path: str | Path) -> Path:
    """Write :func:`trials_frame` to ``path``: Parquet for ``.parquet`` (needs pyarrow), CSV otherwise."""
    path = Path(path)
    frame = trials_frame(results, spec)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- terminal table


def _pm(value: float, mcse: float, digits: int) -> str:
    if value is None or not np.isfinite(value):
        return "NA"
    if mcse is None or not np.isfinite(mcse):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {mcse:.{digits}f}"


def format_table(results: TrialResults | Summary, spec: Spec, digits: int = 3) -> str:
    """A compact plain-text table of the key operating characteristics, as ``value ± mcse``.

    First the arm block (arms as columns), then the trial-level metrics, one a
    line. Probabilities, shares, rates, bias and RMSE are shown with ``digits``
    decimals; sample sizes and the ideal design percentage with one.
    """
    results = _as_summary(results, spec)
    arms = arm_table(results, spec)
    trial = trial_table(results, spec).iloc[0]
    names = spec.design.arm_names
    c = spec.design.control_index
    count_digits = 1

    def arm_label(j: int, name: str) -> str:
        return f"{name} (control)" if j == c else name

    def role(r) -> str:
        if r["truly_better"]:
            return "better"
        if r["truly_null"]:
            return "null"
        return "control" if r.name == (names[c] if c is not None else None) else "grey zone"

    arm_rows: list[tuple[str, list[str]]] = []
    for metric, d in (
        ("p_superior", digits),
        ("p_dropped", digits),
        ("p_equivalent", digits),
        ("mean_n", count_digits),
        ("alloc_share", digits),
    ):
        arm_rows.append((metric, [_pm(arms.at[a, metric], arms.at[a, f"{metric}_mcse"], d) for a in names]))
    arm_rows.append(("true_rate", [f"{arms.at[a, 'true_rate']:.{digits}f}" for a in names]))
    arm_rows.append(("truth", [role(arms.loc[a]) for a in names]))

    header = ["metric"] + [arm_label(j, a) for j, a in enumerate(names)]
    body = [[m] + vals for m, vals in arm_rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    direction = "higher is better" if spec.design.endpoint.higher_is_better else "lower is better"
    out = [
        f"design {spec.design.name} on scenario {spec.scenario.name}: {int(trial['n_trials'])} simulated trials "
        f"(endpoint {spec.design.endpoint.name}, {direction}; value ± Monte Carlo SE)",
        "",
        "Arms",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(r) for r in body]

    s = "best_remaining"
    trial_rows = [
        ("p_any_superior", digits),
        ("p_stopped_early", digits),
        ("p_inconclusive_at_max", digits),
        ("mean_n_total", count_digits),
        ("mean_n_screened", count_digits),
        ("mean_duration_months", count_digits),
        ("fwer", digits),
        ("power", digits),
        (f"bias_{s}", digits),
        (f"rmse_{s}", digits),
        (f"idp_{s}", count_digits),
    ]
    w = max(len(m) for m, _ in trial_rows)
    out += ["", "Trial"]
    out += [f"{m.ljust(w)}  {_pm(trial[m], trial[f'{m}_mcse'], d)}" for m, d in trial_rows if m in trial.index]
    return "\n".join(out)


# --------------------------------------------------------------------------- strata


def stratum_truth(spec: Spec) -> pd.DataFrame:
    """What is true in each stratum of a stratified design, arm by arm (index: stratum, arm).

    Columns: ``prevalence`` (exact share of randomizable patients the stratum takes with every
    stratum open), ``eligible`` (the arm randomizes there), ``true_rate`` (exact, over the
    patients the stratum takes, screening misclassification included), ``reference`` (the
    control's true rate in the stratum, or the stratum's reference rate for single-arm
    sub-studies), ``improvement`` (rate minus reference, positive = better for patients),
    ``truly_better`` (improvement of at least the clinically relevant difference) and
    ``truly_null`` (no improvement). The control and arms not in the stratum are neither.
    """
    plan = spec.strata
    design = spec.design
    sign = _sign(spec)
    delta = float(design.clinically_relevant_difference)
    c = design.control_index
    names = design.arm_names
    rows = []
    for s, stratum in enumerate(plan.names):
        ref = plan.reference[s] if not plan.controlled[s] else (plan.truth[s, c] if c is not None else math.nan)
        for k, arm in enumerate(names):
            eligible = bool(plan.arm_in[s, k])
            rate = plan.truth[s, k]
            judged = eligible and not (plan.controlled[s] and k == c)
            imp = (rate - ref) * sign if judged else math.nan
            better = judged and (imp >= delta - _TOL if delta > 0 else imp > _TOL)
            rows.append({
                "stratum": stratum, "arm": arm, "prevalence": plan.prevalence[s], "eligible": eligible,
                "true_rate": rate if eligible else math.nan, "reference": ref, "improvement": imp,
                "truly_better": bool(better), "truly_null": bool(judged and imp <= _TOL),
                "role": ("better" if better else "null" if judged and imp <= _TOL else "grey zone") if judged
                else ("control" if eligible else "not in stratum"),
            })
    return pd.DataFrame(rows).set_index(["stratum", "arm"])


def stratified_trial_values(results: TrialResults, spec: Spec, tr: pd.DataFrame | None = None
                            ) -> dict[str, np.ndarray]:
    """Per-trial values of the stratum-level operating characteristics (T,) each: findings are
    judged per arm x stratum against :func:`stratum_truth` (``tr``, computed when not given)."""
    st = results.strata
    tr = stratum_truth(spec) if tr is None else tr
    n_strata, n_arms = len(st.names), len(spec.design.arm_names)
    better = tr["truly_better"].to_numpy(dtype=bool).reshape(n_strata, n_arms)
    null = tr["truly_null"].to_numpy(dtype=bool).reshape(n_strata, n_arms)
    judged = (tr["role"].isin(["better", "null", "grey zone"])).to_numpy().reshape(n_strata, n_arms)
    declared = np.asarray(st.declared, dtype=bool)
    n = np.asarray(st.n, dtype=float)
    t = results.n_trials
    nan = np.full(t, np.nan)
    return {
        "p_any_effective": declared[:, judged].any(axis=1).astype(float),
        "power": declared[:, better].any(axis=1).astype(float) if better.any() else nan,
        "fwer": declared[:, null].any(axis=1).astype(float) if null.any() else nan,
        "p_correct_finding": (declared[:, judged] == better[judged]).all(axis=1).astype(float),
        "n_on_effective_arms": n[:, better].sum(axis=1),
        "n_on_null_arms": n[:, null].sum(axis=1),
    }


def stratum_table(results: TrialResults | Summary, spec: Spec) -> pd.DataFrame:
    """Operating characteristics per arm x stratum (index: stratum, arm), each with its MCSE:
    ``p_declared_effective`` (power where the arm truly works in the stratum, false-positive rate
    where it does not), ``p_dropped`` (inferior or futile there), ``mean_n`` (patients), and the
    truth columns of :func:`stratum_truth`."""
    tr = stratum_truth(spec)
    frame = _as_summary(results, spec).table("stratum")
    frame.index = tr.index
    return pd.concat([tr, frame], axis=1)


def format_strata(results: TrialResults | Summary, spec: Spec, digits: int = 3) -> str:
    """Per arm x stratum table: P(declared effective) ± MCSE, mean patients, true rate and role."""
    table = stratum_table(results, spec)
    table = table[table["eligible"]]
    header = ["stratum", "share", "arm", "P(declared)", "mean n", "true rate", "vs", "truth"]
    body = []
    for (stratum, arm), r in table.iterrows():
        body.append([
            stratum, f"{r['prevalence']:.3f}", arm,
            _pm(r["p_declared_effective"], r["p_declared_effective_mcse"], digits) if r["role"] != "control" else "",
            _pm(r["mean_n"], r["mean_n_mcse"], 1), f"{r['true_rate']:.{digits}f}",
            f"{r['reference']:.{digits}f}", r["role"],
        ])
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in (0, 2, 7) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = ["Arms by stratum (share: of randomizable patients; vs: the control's true rate there, or the "
           "sub-study's reference rate)", line(header), line(["-" * w for w in widths])]
    previous = None
    for r in body:
        out.append(line(r if r[0] != previous else ["", ""] + r[2:]))
        previous = r[0]
    return "\n".join(out)
